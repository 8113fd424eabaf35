/*
 * libgvdsm basics with real processes: one node alone (zero-fill, no
 * message; /dev/userfaultfd opened by the parent and handed over; its pages bound
 * to NUMA node 0), two nodes passing pages both ways, reads then writes of
 * pages homed on the other node, the home map and the statistics; the
 * trace of the fault path (cfg.trace) of one remote read, step by step.
 */
#include "dsm/internal.h"
#include "tests/dsm/cluster.h"
#include "tests/lib/check.h"

#define PAGES 64

static uint8_t pattern(uint64_t pg, unsigned version, size_t i)
{
	return (uint8_t)(pg * 131 + version * 17 + i * 7 + (i >> 8));
}

static int check_pages(uint8_t *base, uint64_t first, uint64_t n, unsigned version)
{
	for (uint64_t pg = first; pg < first + n; pg++)
		for (size_t i = 0; i < DSM_PAGE_SIZE; i++)
			if (base[pg * DSM_PAGE_SIZE + i] != pattern(pg, version, i)) {
				fprintf(stderr, "page %llu byte %zu: 0x%02x, expected 0x%02x\n",
					(unsigned long long)pg, i, base[pg * DSM_PAGE_SIZE + i],
					pattern(pg, version, i));
				return 1;
			}
	return 0;
}

static void fill_pages(uint8_t *base, uint64_t first, uint64_t n, unsigned version)
{
	for (uint64_t pg = first; pg < first + n; pg++)
		for (size_t i = 0; i < DSM_PAGE_SIZE; i++)
			base[pg * DSM_PAGE_SIZE + i] = pattern(pg, version, i);
}

static int single_node(struct dsm *d, unsigned rank, void *arg)
{
	uint8_t *base = dsm_addr(d);
	struct dsm_stats st;

	(void)rank;
	(void)arg;
	/* Never touched: zeros, resolved here. */
	for (uint64_t pg = 0; pg < PAGES; pg++)
		if (base[pg * DSM_PAGE_SIZE + 5]) {
			fprintf(stderr, "page %llu is not zero\n", (unsigned long long)pg);
			return 1;
		}
	fill_pages(base, 0, PAGES, 1);
	if (check_pages(base, 0, PAGES, 1))
		return 1;
	dsm_get_stats(d, &st);
	if (st.faults[DSM_FAULT_ZERO] != PAGES || st.msgs_sent || st.faults[DSM_FAULT_READ]) {
		fprintf(stderr, "zero faults %llu, messages %llu\n",
			(unsigned long long)st.faults[DSM_FAULT_ZERO],
			(unsigned long long)st.msgs_sent);
		return 1;
	}
	return 0;
}

static void test_single_node(void)
{
	struct cluster c;

	cluster_init(&c, 1, PAGES * DSM_PAGE_SIZE);
	/* As the Slurm plugin will: /dev/userfaultfd opened by the parent, handed over. */
	c.tmpl.uffd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	CHECK(c.tmpl.uffd >= 0);
	c.tmpl.numa_node = 0;
	if (cluster_run(&c, single_node, NULL))
		cluster_report(&c);
	CHECK_EQ(c.status[0], 0);
	close(c.tmpl.uffd);
}

/*
 * Round 1: each node writes the pages homed on the other.  Round 2: each
 * reads everything.  Round 3: rank 1 rewrites everything, rank 0 checks.
 */
static int two_nodes(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	uint8_t *base = dsm_addr(d);
	uint64_t half = PAGES / 2, other = rank ? 0 : half;
	struct dsm_stats st;

	if (dsm_home_of(d, 0) != 0 || dsm_home_of(d, (PAGES - 1) * DSM_PAGE_SIZE) != 1) {
		fprintf(stderr, "home map is wrong\n");
		return 1;
	}
	/* What carries the messages: the transport asked for (tests/dsm/fabric.t's, or TCP). */
	{
		const char *want = getenv("GVM_DSM_TRANSPORT"), *got = dsm_transport_describe(d);

		if (want && !strncmp(want, "fabric:", 7) ?
		    strncmp(got, "fabric: provider ", 17) || strncmp(got + 17, want + 7, strlen(want + 7)) ||
		    got[17 + strlen(want + 7)] != ',' :
		    strcmp(got, getenv("GVM_DSM_INTEGRITY") ? "tcp, every message checked (--integrity)"
							    : "tcp")) {
			fprintf(stderr, "rank %u: carried by '%s', not '%s'\n", rank, got,
				want ? want : "tcp");
			return 1;
		}
		if (rank == 0) {
			printf("two nodes carried by %s\n", got);
			fflush(stdout);
		}
	}
	fill_pages(base, other, half, 1);
	cluster_barrier(c);
	if (check_pages(base, 0, PAGES, 1))
		return 1;
	cluster_barrier(c);
	if (rank == 1)
		fill_pages(base, 0, PAGES, 2);
	cluster_barrier(c);
	if (rank == 0 && check_pages(base, 0, PAGES, 2))
		return 1;
	cluster_barrier(c);
	dsm_get_stats(d, &st);
	if (!st.faults[DSM_FAULT_ZERO] || !st.faults[DSM_FAULT_READ] ||
	    !st.pages_received || !st.msgs_received) {
		fprintf(stderr, "stats: zero %llu read %llu write %llu pages in %llu\n",
			(unsigned long long)st.faults[DSM_FAULT_ZERO],
			(unsigned long long)st.faults[DSM_FAULT_READ],
			(unsigned long long)st.faults[DSM_FAULT_WRITE],
			(unsigned long long)st.pages_received);
		return 1;
	}
	return 0;
}

static void test_two_nodes(void)
{
	struct cluster c;

	cluster_init(&c, 2, PAGES * DSM_PAGE_SIZE);
	if (cluster_run(&c, two_nodes, &c))
		cluster_report(&c);
	CHECK_EQ(c.status[0], 0);
	CHECK_EQ(c.status[1], 0);
}

/*
 * One remote read traced into one buffer shared by both nodes: rank 1's
 * fault on a page homed on rank 0 must leave, in this order in time, the
 * fault read at rank 1, READ sent by rank 1, READ received by rank 0, PAGE
 * sent by rank 0, PAGE received by rank 1 and the page mapped at rank 1.
 */
#define TRACE_CAP 256

static int traced_read(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	volatile uint8_t *base = dsm_addr(d);

	if (rank == 0)
		base[0] = 42;
	cluster_barrier(c);
	if (rank == 1 && base[0] != 42) {
		fprintf(stderr, "read %u, not 42\n", base[0]);
		return 1;
	}
	cluster_barrier(c);
	return 0;
}

/* The first event at or after *from that matches; its index, or -1. */
static int trace_find(const struct dsm_trace *t, unsigned n, unsigned from, uint8_t point,
		      uint8_t rank, uint16_t type)
{
	for (unsigned i = from; i < n; i++)
		if (t->ev[i].point == point && t->ev[i].rank == rank && t->ev[i].pg == 0 &&
		    (point == DSM_TP_FAULT || t->ev[i].type == type))
			return (int)i;
	return -1;
}

static int trace_cmp(const void *a, const void *b)
{
	const struct dsm_trace_event *x = a, *y = b;

	return x->ns < y->ns ? -1 : x->ns > y->ns;
}

static void test_trace(void)
{
	static const struct {
		uint8_t point, rank;
		uint16_t type;
		const char *what;
	} want[] = {
		{ DSM_TP_FAULT, 1, 0, "rank 1's fault" },
		{ DSM_TP_SEND, 1, DSM_MSG_READ, "rank 1 sending READ" },
		{ DSM_TP_RECV, 0, DSM_MSG_READ, "rank 0 receiving READ" },
		{ DSM_TP_SEND, 0, DSM_MSG_PAGE, "rank 0 sending PAGE" },
		{ DSM_TP_RECV, 1, DSM_MSG_PAGE, "rank 1 receiving PAGE" },
		{ DSM_TP_MAPPED, 1, DSM_MSG_PAGE, "the page mapped at rank 1" },
	};
	size_t size = sizeof(struct dsm_trace) + TRACE_CAP * sizeof(struct dsm_trace_event);
	struct dsm_trace *t = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				   -1, 0);
	struct cluster c;
	unsigned n, at = 0;

	CHECK(t != MAP_FAILED);
	t->cap = TRACE_CAP;
	cluster_init(&c, 2, 2 * DSM_PAGE_SIZE);
	c.tmpl.trace = t;
	if (cluster_run(&c, traced_read, &c))
		cluster_report(&c);
	CHECK_EQ(c.status[0], 0);
	CHECK_EQ(c.status[1], 0);
	n = atomic_load(&t->n);
	CHECK(n > 0 && n <= TRACE_CAP);
	if (n > TRACE_CAP)
		n = TRACE_CAP;
	qsort(t->ev, n, sizeof(t->ev[0]), trace_cmp);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int k = trace_find(t, n, at, want[i].point, want[i].rank, want[i].type);

		if (k < 0) {
			fprintf(stderr, "trace: no %s after event %u of %u\n", want[i].what, at, n);
			CHECK(k >= 0);
			break;
		}
		at = (unsigned)k + 1;
	}
	munmap(t, size);
}

int main(void)
{
	log_init("test-dsm-basic");
	RUN(test_single_node);
	RUN(test_two_nodes);
	RUN(test_trace);
	return check_summary();
}
