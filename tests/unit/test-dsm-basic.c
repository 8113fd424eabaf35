/*
 * libgvdsm basics with real processes: one node alone (zero-fill, no
 * message; /dev/userfaultfd opened by the parent and handed over; its pages bound
 * to NUMA node 0), two nodes passing pages both ways, reads then writes of
 * pages homed on the other node, the home map and the statistics.
 */
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

int main(void)
{
	log_init("test-dsm-basic");
	RUN(test_single_node);
	RUN(test_two_nodes);
	return check_summary();
}
