/*
 * The atomic shared-counter test: every thread does "lock xadd" on counters
 * one per page, the pages spread over the nodes.  Thread t's i-th increment
 * goes to counter (7 t + i) mod K, so every counter's final value is known,
 * and the old values each counter returned must be exactly 0 .. n-1: each
 * thread sums what it got, and the sums must add up to n (n - 1) / 2.
 */
#include "images/probe/user/probe.h"

struct counter_run {
	volatile uint64_t *ctr[4096];
	uint64_t *sums[PROBE_MAX_CPUS]; /* per thread, K entries, on its node */
	int nomem;
};

static struct counter_run run;
/* Written at the end of each thread's timed loop: apart from what the loops read. */
static struct {
	uint64_t t0, t1;
} __attribute__((aligned(64))) times[PROBE_MAX_CPUS] __attribute__((aligned(4096)));

static void counter_job(unsigned tid, void *arg)
{
	uint64_t k = opts.counter_pages, iters = opts.counter_iters;
	uint64_t *sums = node_alloc(team.node[tid], k * sizeof(uint64_t));
	uint64_t c = (7 * (uint64_t)tid) % k;

	(void)arg;
	if (!sums)
		run.nomem = 1;
	else
		for (uint64_t j = 0; j < k; j++)
			sums[j] = 0;
	run.sums[tid] = sums;
	team_barrier(tid);
	if (run.nomem)
		return;
	volatile uint64_t *const *ctr = run.ctr;
	uint64_t t0 = tsc_read();

	for (uint64_t i = 0; i < iters; i++) {
		sums[c] += atomic_xadd(ctr[c], 1);
		if (++c == k)
			c = 0;
	}
	times[tid].t1 = tsc_read();
	times[tid].t0 = t0;
}

void run_counter(void)
{
	uint64_t k = opts.counter_pages, iters = opts.counter_iters, marks[PROBE_ACPI_MAX_DOMAINS];
	unsigned nt = team.nthreads, bad = 0;

	for (unsigned d = 0; d < team.nnodes; d++)
		marks[d] = node_alloc_mark(d);
	for (uint64_t j = 0; j < k; j++) {
		run.ctr[j] = node_alloc(opts.naive ? 0 : j % team.nnodes, 4096);
		if (!run.ctr[j]) {
			ufail("counter: out of memory for %lu pages", k);
			goto out;
		}
		*run.ctr[j] = 0;
	}
	run.nomem = 0;
	team_run(counter_job, NULL);
	if (run.nomem) {
		ufail("counter: out of memory for the per-thread sums");
		goto out;
	}

	uint64_t start = times[0].t0, end = times[0].t1, total = 0;

	for (unsigned t = 0; t < nt; t++) {
		start = times[t].t0 < start ? times[t].t0 : start;
		end = times[t].t1 > end ? times[t].t1 : end;
	}
	for (uint64_t j = 0; j < k; j++) {
		uint64_t expect = 0, sum = 0, got = *run.ctr[j];

		for (unsigned t = 0; t < nt; t++) {
			/* Thread t hits j once per k increments, plus once if j is among the first r. */
			uint64_t first = (7 * (uint64_t)t) % k, off = (j + k - first) % k;

			expect += iters / k + (off < iters % k);
			sum += run.sums[t][j];
		}
		total += got;
		if (got != expect || sum != expect * (expect - 1) / 2) {
			if (bad++ < 8)
				ufail("counter: page %lu holds %lu (expected %lu), old values sum to %lu "
				      "(expected %lu)", j, got, expect, sum, expect * (expect - 1) / 2);
		}
	}
	uprintf("counter: threads=%u pages=%lu iters=%lu total=%lu expected=%lu result=%s "
		"cycles=%lu mops=%.3f\n", nt, k, iters, total, iters * nt, bad ? "FAIL" : "ok",
		end - start,
		tsc_khz && end > start ? (double)total / ((double)(end - start) / tsc_khz / 1e3) / 1e6 :
		0.0);
out:
	for (unsigned d = 0; d < team.nnodes; d++)
		node_alloc_release(d, marks[d]);
}
