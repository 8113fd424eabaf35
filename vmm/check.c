#include "vmm/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"

int check_result_init(struct check_result *r, unsigned nodes)
{
	r->nodes = nodes;
	r->pairs = calloc((size_t)nodes * nodes, sizeof(*r->pairs));
	return r->pairs ? 0 : -1;
}

void check_result_free(struct check_result *r)
{
	free(r->pairs);
	r->pairs = NULL;
}

/* The value of " key=" in line, a decimal number; -1 if absent or bad. */
static int field(const char *line, const char *key, uint64_t *out)
{
	size_t n = strlen(key);
	char num[32], perr[PARSE_ERR_MAX];

	for (const char *p = line; (p = strstr(p, key)); p += n) {
		size_t len;

		if (p == line || p[-1] != ' ' || p[n] != '=')
			continue;
		p += n + 1;
		len = strcspn(p, " \r\n");
		if (!len || len >= sizeof(num))
			return -1;
		memcpy(num, p, len);
		num[len] = '\0';
		return parse_u64(num, 0, UINT64_MAX, out, perr);
	}
	return -1;
}

int check_parse_line(struct check_result *r, const char *line, char *err)
{
	static const char *const keys[] = { "from", "to", "ipi_rounds", "ipi_median_ns",
					    "fault_median_ns", "read_bytes", "read_ns" };
	enum { FROM, TO, ROUNDS, IPI, FAULT, BYTES, NS, NR_KEYS };
	uint64_t v[NR_KEYS];
	struct check_pair *p;

	if (strncmp(line, "pair: ", 6))
		return 0;
	for (unsigned k = 0; k < NR_KEYS; k++)
		if (field(line, keys[k], &v[k])) {
			snprintf(err, CHECK_ERR_MAX, "the probe's pair line has no valid %s: %.120s",
				 keys[k], line);
			return -1;
		}
	if (v[FROM] >= r->nodes || v[TO] >= r->nodes) {
		snprintf(err, CHECK_ERR_MAX, "the probe measured node %llu -> node %llu, but the "
			 "guest has %u nodes", (unsigned long long)v[FROM],
			 (unsigned long long)v[TO], r->nodes);
		return -1;
	}
	p = check_pair_at(r, (unsigned)v[FROM], (unsigned)v[TO]);
	if (p->seen) {
		snprintf(err, CHECK_ERR_MAX, "the probe measured node %llu -> node %llu twice",
			 (unsigned long long)v[FROM], (unsigned long long)v[TO]);
		return -1;
	}
	*p = (struct check_pair){
		.seen = true,
		.has_ipi = v[ROUNDS] > 0,
		.ipi_us = v[IPI] / 1e3,
		.fault_us = v[FAULT] / 1e3,
		.read_mbps = v[NS] ? v[BYTES] * 1e3 / v[NS] : 0,
	};
	return 1;
}

int check_complete(const struct check_result *r, char *err)
{
	for (unsigned i = 0; i < r->nodes; i++)
		for (unsigned j = 0; j < r->nodes; j++)
			if (!check_pair_at(r, i, j)->seen) {
				snprintf(err, CHECK_ERR_MAX, "the probe did not measure node %u -> "
					 "node %u", i, j);
				return -1;
			}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

enum metric { M_IPI, M_FAULT, M_READ, M_NR };

/* The metric m of p; false if p has none. */
static bool metric(const struct check_pair *p, enum metric m, double *out)
{
	switch (m) {
	case M_IPI:
		*out = p->ipi_us;
		return p->has_ipi;
	case M_FAULT:
		*out = p->fault_us;
		return true;
	default:
		*out = p->read_mbps;
		return true;
	}
}

/* The median of metric m over the remote pairs but `skip`; false if there are none. */
static bool others_median(const struct check_result *r, const struct check_pair *skip,
			  enum metric m, double *scratch, double *out)
{
	size_t n = 0;

	for (unsigned i = 0; i < r->nodes; i++)
		for (unsigned j = 0; j < r->nodes; j++) {
			const struct check_pair *p = check_pair_at(r, i, j);

			if (i != j && p != skip && p->seen && metric(p, m, &scratch[n]))
				n++;
		}
	if (!n)
		return false;
	qsort(scratch, n, sizeof(*scratch), cmp_double);
	*out = n % 2 ? scratch[n / 2] : (scratch[n / 2 - 1] + scratch[n / 2]) / 2;
	return true;
}

/* Is p's metric m far from med?  Latencies are far above, bandwidth far below. */
static bool far(double v, double med, enum metric m, double factor)
{
	return m == M_READ ? v * factor < med : v > med * factor;
}

unsigned check_flag(struct check_result *r, double factor)
{
	double *scratch = malloc((size_t)r->nodes * r->nodes * sizeof(*scratch));
	unsigned flagged = 0;

	if (!scratch)
		die("out of memory");
	for (unsigned i = 0; i < r->nodes; i++)
		for (unsigned j = 0; j < r->nodes; j++) {
			struct check_pair *p = check_pair_at(r, i, j);
			double v, med;

			p->flags = 0;
			if (i == j || !p->seen)
				continue;
			for (enum metric m = 0; m < M_NR; m++)
				if (metric(p, m, &v) && others_median(r, p, m, scratch, &med) &&
				    far(v, med, m, factor))
					p->flags |= 1u << m;
			flagged += p->flags != 0;
		}
	free(scratch);
	return flagged;
}

static const char *host_of(const char *const *hosts, unsigned i)
{
	return hosts && hosts[i] ? hosts[i] : "?";
}

void check_print(const struct check_result *r, const char *const *hosts, double factor,
		 FILE *f)
{
	static const char *const what[M_NR] = { "IPI round trip", "read-fault latency",
						"read bandwidth" };
	static const char *const unit[M_NR] = { "µs", "µs", "MB/s" };
	double *scratch = malloc((size_t)r->nodes * r->nodes * sizeof(*scratch));

	if (!scratch)
		die("out of memory");
	fprintf(f, "from -> to  IPI round trip (µs)  read fault (µs)  read (MB/s)  hosts\n");
	/* the local baselines first: what a remote pair is to be compared with */
	for (int local = 1; local >= 0; local--)
		for (unsigned i = 0; i < r->nodes; i++)
			for (unsigned j = 0; j < r->nodes; j++) {
				const struct check_pair *p = check_pair_at(r, i, j);
				char ipi[32];

				if ((i == j) != local)
					continue;
				if (p->has_ipi)
					snprintf(ipi, sizeof(ipi), "%.1f", p->ipi_us);
				else
					snprintf(ipi, sizeof(ipi), "-");
				fprintf(f, "%4u -> %-4u %18s %16.1f %12.1f  ", i, j, ipi, p->fault_us,
					p->read_mbps);
				if (i == j)
					fprintf(f, "%s (local)", host_of(hosts, i));
				else
					fprintf(f, "%s -> %s", host_of(hosts, i), host_of(hosts, j));
				fprintf(f, "%s\n", p->flags ? "  FLAGGED" : "");
			}
	for (unsigned i = 0; i < r->nodes; i++)
		for (unsigned j = 0; j < r->nodes; j++) {
			const struct check_pair *p = check_pair_at(r, i, j);

			for (enum metric m = 0; m < M_NR; m++) {
				double v, med;

				if (!(p->flags & (1u << m)) || !metric(p, m, &v) ||
				    !others_median(r, p, m, scratch, &med))
					continue;
				fprintf(f, "FLAGGED: node %u (%s) -> node %u (%s): %s %.1f %s, %s "
					"%g %s the median of the other pairs (%.1f %s)\n", i,
					host_of(hosts, i), j, host_of(hosts, j), what[m], v, unit[m],
					m == M_READ ? "below 1 /" : "above", factor,
					m == M_READ ? "of" : "x", med, unit[m]);
			}
		}
	free(scratch);
}
