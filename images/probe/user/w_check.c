/*
 * The links between NUMA nodes, pair by pair, for `gvm check`: for every
 * ordered pair (i, j) of nodes, a thread of node i (its first) measures
 *   - IPI round trips to a thread of node j (its first; for i == j, the
 *     second thread of node i, if there is one): one round per request, so
 *     that the median of the rounds can be taken;
 *   - read faults: the first read of pages that a thread of node j wrote
 *     (so they are held at their home, node j) and node i never touched,
 *     one word each, every other page in descending order so that no
 *     sequential read-ahead hides a fault; for i == j, pages nobody
 *     touched (what a fault costs without the network);
 *   - bandwidth: a sequential read of a range node j wrote, never read
 *     from node i before (read-ahead allowed: this is a stream).
 * Every region is fresh for its pair.  Medians, not means: on a shared
 * host, one descheduled thread must not move a pair's number.  The threads
 * that do not measure nap in their kernels (SYS_NAP) until the pair is
 * done, rather than spin: on a host with fewer cores than vCPUs, spinning
 * threads would take the CPU the measured ones need.
 *
 * One "pair:" line per pair (docs/probe.md, "Output"), read by gvm check.
 */
#include "images/probe/user/probe.h"

#define PAGE 4096ull
#define NO_THREAD (~0u)
#define NAP_TICKS 10000000 /* 10 ms at gvm's LAPIC timer rate: how late a napper notices the end */

struct check_pair {
	unsigned from, to;           /* node indices */
	unsigned reader, writer, target; /* thread ids; target may be NO_THREAD */
	uint8_t *fault;              /* 2 * check_pages pages on node `to` */
	uint8_t *bw;                 /* check_size bytes on node `to` */
	uint64_t *samples;           /* the reader's scratch, on its node */
};

/* Written by the reader after its timed loops, apart from what they read. */
static struct {
	uint64_t ipi_rounds, ipi_median, ipi_min;
	uint64_t fault_median, fault_min;
	uint64_t bw_cycles, sum;
	int ipi_failed;
} res __attribute__((aligned(4096)));
/* The pair is measured; its own page, which the nappers read while it stays 0. */
static struct {
	volatile uint64_t done;
} pair_done __attribute__((aligned(4096)));

static void sort_u64(uint64_t *a, uint64_t n)
{
	for (uint64_t i = 1; i < n; i++) {
		uint64_t v = a[i], k = i;

		for (; k > 0 && a[k - 1] > v; k--)
			a[k] = a[k - 1];
		a[k] = v;
	}
}

/* The median of a[0..n) (sorted in place; the lower middle when n is even), and the least. */
static uint64_t median_u64(uint64_t *a, uint64_t n, uint64_t *min)
{
	sort_u64(a, n);
	*min = a[0];
	return a[(n - 1) / 2];
}

static void measure_ipi(const struct check_pair *p)
{
	uint64_t n = 0;

	for (uint64_t r = 0; r < opts.check_rounds; r++) {
		struct probe_ping ping = { 0, 0, 0, 0, 0 };

		if (sys_call(SYS_IPI_PING, team.cpu[p->target], 1, (long)&ping, 0) || !ping.rounds) {
			res.ipi_failed = 1;
			break;
		}
		p->samples[n++] = ping.min;
	}
	res.ipi_rounds = n;
	if (n)
		res.ipi_median = median_u64(p->samples, n, &res.ipi_min);
}

static void measure_faults(const struct check_pair *p)
{
	uint64_t n = opts.check_pages, sum = 0;

	for (uint64_t k = n; k-- > 0;) {
		volatile const uint64_t *w = (const uint64_t *)(p->fault + 2 * k * PAGE);
		uint64_t t0 = tsc_read();

		sum += *w;
		p->samples[k] = tsc_read() - t0;
	}
	res.sum += sum;
	res.fault_median = median_u64(p->samples, n, &res.fault_min);
}

static void measure_bandwidth(const struct check_pair *p)
{
	const volatile uint64_t *w = (const uint64_t *)p->bw;
	uint64_t words = opts.check_size / 8, sum = 0, t0 = tsc_read();

	for (uint64_t k = 0; k < words; k++)
		sum += w[k];
	res.bw_cycles = tsc_read() - t0;
	res.sum += sum;
}

static void pair_job(unsigned tid, void *arg)
{
	const struct check_pair *p = arg;

	if (tid == p->writer) {
		/* one word per page makes the page node `to`'s: its home holds it, modified */
		for (uint64_t off = 0; off < opts.check_size; off += PAGE)
			*(volatile uint64_t *)(p->bw + off) = off | 1;
		if (p->from != p->to)
			for (uint64_t k = 0; k < opts.check_pages; k++)
				*(volatile uint64_t *)(p->fault + 2 * k * PAGE) = k | 1;
	}
	if (tid == p->reader)
		for (uint64_t k = 0; k < opts.check_pages || k < opts.check_rounds; k++)
			p->samples[k] = 0; /* its own pages, before anything is timed */
	team_barrier(tid);
	if (tid != p->reader) {
		while (!__atomic_load_n(&pair_done.done, __ATOMIC_ACQUIRE))
			sys_call(SYS_NAP, NAP_TICKS, 0, 0, 0);
		return;
	}
	if (p->target != NO_THREAD)
		measure_ipi(p);
	measure_faults(p);
	measure_bandwidth(p);
	__atomic_store_n(&pair_done.done, 1, __ATOMIC_RELEASE);
}

/* The first thread of node d after `after` (NO_THREAD: the first one). */
static unsigned node_thread(unsigned d, unsigned after)
{
	for (unsigned t = after == NO_THREAD ? 0 : after + 1; t < team.nthreads; t++)
		if (team.node[t] == d)
			return t;
	return NO_THREAD;
}

static uint64_t cycles_to_ns(uint64_t c)
{
	return c * 1000000 / tsc_khz;
}

static void check_pair(unsigned from, unsigned to)
{
	const uint32_t *dom = probe_bootinfo.acpi.domains;
	uint64_t fault_size = 2 * opts.check_pages * PAGE, ns;
	uint64_t scratch = (opts.check_pages > opts.check_rounds ? opts.check_pages :
			    opts.check_rounds) * 8;
	struct check_pair p = {
		.from = from, .to = to,
		.reader = node_thread(from, NO_THREAD), .writer = node_thread(to, NO_THREAD),
	};

	p.target = from == to ? node_thread(from, p.reader) : p.writer;
	p.fault = node_alloc(to, fault_size);
	p.bw = node_alloc(to, opts.check_size);
	p.samples = node_alloc(from, scratch);
	if (p.reader == NO_THREAD || p.writer == NO_THREAD) {
		ufail("check: node %u or node %u has no CPU", dom[from], dom[to]);
		return;
	}
	if (!p.fault || !p.bw || !p.samples) {
		ufail("check: out of memory for node %u -> node %u (%lu bytes on node %u): give "
		      "more memory, or smaller probe.check_size", dom[from], dom[to],
		      fault_size + opts.check_size, dom[to]);
		return;
	}
	res.ipi_rounds = res.ipi_median = res.ipi_min = 0;
	res.ipi_failed = 0;
	pair_done.done = 0;
	team_run(pair_job, &p);
	if (res.ipi_failed)
		ufail("check: no IPI reply from cpu %u (node %u) to cpu %u (node %u) after %lu "
		      "round trips", team.cpu[p.target], dom[to], team.cpu[p.reader], dom[from],
		      res.ipi_rounds);
	ns = cycles_to_ns(res.bw_cycles);
	uprintf("pair: from=%u to=%u cpu=%u target=%d ipi_rounds=%lu ipi_median_ns=%lu "
		"ipi_min_ns=%lu fault_pages=%lu fault_median_ns=%lu fault_min_ns=%lu "
		"read_bytes=%lu read_ns=%lu read_mbps=%lu\n", dom[from], dom[to],
		team.cpu[p.reader], p.target == NO_THREAD ? -1 : (int)team.cpu[p.target],
		res.ipi_rounds, cycles_to_ns(res.ipi_median), cycles_to_ns(res.ipi_min),
		opts.check_pages, cycles_to_ns(res.fault_median), cycles_to_ns(res.fault_min),
		opts.check_size, ns, ns ? opts.check_size * 1000 / ns : 0);
}

void run_check(void)
{
	uint64_t marks[PROBE_ACPI_MAX_DOMAINS];

	if (!tsc_khz) {
		ufail("check: the TSC rate is unknown: give probe.tsc_khz");
		return;
	}
	for (unsigned d = 0; d < team.nnodes; d++)
		marks[d] = node_alloc_mark(d);
	uprintf("pairs: nodes=%u threads=%u pages=%lu size=%lu rounds=%lu\n", team.nnodes,
		team.nthreads, opts.check_pages, opts.check_size, opts.check_rounds);
	for (unsigned i = 0; i < team.nnodes; i++)
		for (unsigned j = 0; j < team.nnodes; j++)
			check_pair(i, j);
	for (unsigned d = 0; d < team.nnodes; d++)
		node_alloc_release(d, marks[d]);
}
