/* vmm/check.c: the probe's pair lines, completeness, the flagging rule, the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/check.h"
#include "vmm/check.h"

/* feed's last error */
static char feed_err[CHECK_ERR_MAX];

/* A pair line as the probe prints it (docs/probe.md), latencies in µs. */
static int feed(struct check_result *r, unsigned from, unsigned to, unsigned rounds,
		unsigned ipi_us, unsigned fault_us, unsigned mbps)
{
	char line[512];

	snprintf(line, sizeof(line), "pair: from=%u to=%u cpu=0 target=%d ipi_rounds=%u "
		 "ipi_median_ns=%u ipi_min_ns=1 fault_pages=64 fault_median_ns=%u fault_min_ns=1 "
		 "read_bytes=2000000 read_ns=%u read_mbps=%u", from, to, rounds ? 1 : -1, rounds,
		 ipi_us * 1000, fault_us * 1000, 2000000u * 1000 / mbps, mbps);
	return check_parse_line(r, line, feed_err);
}

/* n nodes, every remote pair alike (500 µs, 100 µs, 200 MB/s), local ones faster. */
static void uniform(struct check_result *r, unsigned n)
{
	CHECK(check_result_init(r, n) == 0);
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < n; j++)
			CHECK(feed(r, i, j, 20, i == j ? 250 : 500 + i + j, i == j ? 50 : 100 + i,
				   i == j ? 20000 : 200 - j) == 1);
}

static void test_parse(void)
{
	struct check_result r;
	char err[CHECK_ERR_MAX];
	struct check_pair *p;

	CHECK(check_result_init(&r, 2) == 0);
	CHECK(check_parse_line(&r, "check: acpi-checksums ok", err) == 0);
	CHECK(check_parse_line(&r, "pairs: nodes=2 threads=4 pages=64", err) == 0);
	CHECK(check_parse_line(&r, "pair: from=0 to=1 cpu=0 target=2 ipi_rounds=20 "
			       "ipi_median_ns=425732 ipi_min_ns=373073 fault_pages=64 "
			       "fault_median_ns=114770 fault_min_ns=72026 read_bytes=2097152 "
			       "read_ns=27412527 read_mbps=76\r", err) == 1);
	p = check_pair_at(&r, 0, 1);
	CHECK(p->seen && p->has_ipi);
	CHECK(p->ipi_us > 425.7 && p->ipi_us < 425.8);
	CHECK(p->fault_us > 114.7 && p->fault_us < 114.8);
	CHECK(p->read_mbps > 76.4 && p->read_mbps < 76.6);
	/* a node of one CPU has no local IPI */
	CHECK(feed(&r, 1, 1, 0, 0, 50, 20000) == 1);
	CHECK(!check_pair_at(&r, 1, 1)->has_ipi);
	/* the same pair twice, a node the guest lacks, a field missing or bad */
	CHECK(feed(&r, 0, 1, 20, 1, 1, 1) == -1);
	CHECK(strstr(feed_err, "twice") != NULL);
	CHECK(feed(&r, 2, 0, 20, 1, 1, 1) == -1);
	CHECK(strstr(feed_err, "2 nodes") != NULL);
	CHECK(check_parse_line(&r, "pair: from=1 to=0 cpu=2", err) == -1);
	CHECK(check_parse_line(&r, "pair: from=1 to=0 ipi_rounds=x ipi_median_ns=1 "
			       "fault_median_ns=1 read_bytes=1 read_ns=1", err) == -1);
	CHECK(strstr(err, "ipi_rounds") != NULL);
	/* a key is matched whole: fault_min_ns is not min_ns, xfrom is not from */
	CHECK(check_parse_line(&r, "pair: xfrom=1 to=0 ipi_rounds=1 ipi_median_ns=1 "
			       "fault_median_ns=1 read_bytes=1 read_ns=1", err) == -1);
	CHECK(strstr(err, "from") != NULL);
	/* 1 -> 0 and 0 -> 0 are missing */
	CHECK(check_complete(&r, err) == -1);
	CHECK(strstr(err, "node 0 -> node 0") != NULL);
	CHECK(feed(&r, 0, 0, 20, 250, 50, 20000) == 1);
	CHECK(feed(&r, 1, 0, 20, 400, 100, 100) == 1);
	CHECK(check_complete(&r, err) == 0);
	check_result_free(&r);
}

static void test_nothing_flagged(void)
{
	struct check_result r;

	for (unsigned n = 1; n <= 5; n++) {
		uniform(&r, n);
		CHECK_EQ(check_flag(&r, CHECK_FACTOR_DEFAULT), 0);
		check_result_free(&r);
	}
}

/* One pair 10x slower than the others, in each metric in turn: that pair alone. */
static void test_one_slow_pair(void)
{
	struct check_result r;

	for (unsigned m = 0; m < 3; m++) {
		struct check_pair *p;

		uniform(&r, 4);
		p = check_pair_at(&r, 2, 1);
		if (m == 0)
			p->ipi_us *= 10;
		else if (m == 1)
			p->fault_us *= 10;
		else
			p->read_mbps /= 10;
		CHECK_EQ(check_flag(&r, CHECK_FACTOR_DEFAULT), 1);
		CHECK_EQ(p->flags, 1u << m);
		for (unsigned i = 0; i < 4; i++)
			for (unsigned j = 0; j < 4; j++)
				if (i != 2 || j != 1)
					CHECK_EQ(check_pair_at(&r, i, j)->flags, 0);
		check_result_free(&r);
	}
}

/* The rule's edges: the factor is a strict bound; local pairs never count. */
static void test_rule_edges(void)
{
	struct check_result r;

	CHECK(check_result_init(&r, 3) == 0);
	for (unsigned i = 0; i < 3; i++)
		for (unsigned j = 0; j < 3; j++)
			CHECK(feed(&r, i, j, 20, 100, 100, 300) == 1);
	/* exactly 3x the others' median: not above it */
	check_pair_at(&r, 0, 1)->fault_us = 300;
	CHECK_EQ(check_flag(&r, 3.0), 0);
	check_pair_at(&r, 0, 1)->fault_us = 301;
	CHECK_EQ(check_flag(&r, 3.0), 1);
	CHECK_EQ(check_pair_at(&r, 0, 1)->flags, CHECK_FLAG_FAULT);
	/* a slower factor lets it pass */
	CHECK_EQ(check_flag(&r, 4.0), 0);
	check_pair_at(&r, 0, 1)->fault_us = 100;
	/* a local pair 100x slower is a baseline, not a flagged pair */
	check_pair_at(&r, 2, 2)->ipi_us = 10000;
	check_pair_at(&r, 2, 2)->read_mbps = 1;
	CHECK_EQ(check_flag(&r, 3.0), 0);
	/* with factor 1, any pair above the others' median is flagged */
	check_pair_at(&r, 1, 2)->ipi_us = 101;
	CHECK_EQ(check_flag(&r, 1.0), 1);
	CHECK_EQ(check_pair_at(&r, 1, 2)->flags, CHECK_FLAG_IPI);
	check_result_free(&r);

	/* two nodes: each direction is judged against the other */
	uniform(&r, 2);
	check_pair_at(&r, 1, 0)->ipi_us = 10 * check_pair_at(&r, 0, 1)->ipi_us;
	CHECK_EQ(check_flag(&r, 3.0), 1);
	CHECK_EQ(check_pair_at(&r, 1, 0)->flags, CHECK_FLAG_IPI);
	CHECK_EQ(check_pair_at(&r, 0, 1)->flags, 0);
	check_result_free(&r);
}

static void test_print(void)
{
	static const char *const hosts[] = { "alpha", "beta", "gamma" };
	struct check_result r;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	uniform(&r, 3);
	check_pair_at(&r, 0, 2)->fault_us *= 10;
	CHECK_EQ(check_flag(&r, 3.0), 1);
	check_print(&r, hosts, 3.0, f);
	fclose(f);
	CHECK(strstr(buf, "   0 -> 0 ") && strstr(buf, "alpha (local)"));
	CHECK(strstr(buf, "   2 -> 1 ") && strstr(buf, "gamma -> beta"));
	CHECK(strstr(buf, "alpha -> gamma  FLAGGED"));
	CHECK(strstr(buf, "FLAGGED: node 0 (alpha) -> node 2 (gamma): read-fault latency "
			  "1000.0 µs, above 3 x the median of the other pairs"));
	/* the local rows come first */
	CHECK(strstr(buf, "   2 -> 2 ") < strstr(buf, "   0 -> 1 "));
	free(buf);
	check_result_free(&r);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_nothing_flagged);
	RUN(test_one_slow_pair);
	RUN(test_rule_edges);
	RUN(test_print);
	return check_summary();
}
