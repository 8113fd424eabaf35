/*
 * The seed microbenchmark: thread 0 fills one source buffer on node 0; every
 * thread copies it to its own destination on its own node, reps times.
 */
#include "bench/checksum.h"
#include "bench/report.h"
#include "images/probe/user/probe.h"

struct memcpy_run {
	void *src;
	uint64_t src_sum;
	int nomem;
};

static struct memcpy_run run;
/* Written after each thread's timed loop: apart from what the loops read. */
static struct {
	uint64_t t0, t1;
	int ok;
} __attribute__((aligned(64))) res[PROBE_MAX_CPUS] __attribute__((aligned(4096)));

static void memcpy_job(unsigned tid, void *arg)
{
	uint64_t size = opts.memcpy_size;
	void *dst;

	(void)arg;
	if (tid == 0) {
		run.src = node_alloc(0, size);
		if (run.src) {
			copy_fill(run.src, size, 1);
			run.src_sum = checksum_words(CHECKSUM_INIT, run.src, size);
		} else {
			run.nomem = 1;
		}
	}
	dst = node_alloc(data_node(tid), size);
	if (!dst)
		run.nomem = 1;
	team_barrier(tid);
	if (run.nomem)
		return;
	const void *src = run.src;
	enum copy_method m = opts.memcpy_method;
	uint64_t reps = opts.memcpy_reps;

	/*
	 * Each warm-up ends at a barrier: over several instances the first
	 * one also moves the source to the readers, and the home's next pass
	 * pays for that (docs/performance.md), which a second one takes out
	 * of the timing.
	 */
	for (uint64_t i = 0; i < opts.memcpy_warmups; i++) {
		copy_run(m, dst, src, size);
		team_barrier(tid);
	}

	uint64_t t0 = tsc_read();

	for (uint64_t i = 0; i < reps; i++)
		copy_run(m, dst, src, size);
	res[tid].t1 = tsc_read();
	res[tid].t0 = t0;
	res[tid].ok = checksum_words(CHECKSUM_INIT, dst, size) == run.src_sum;
}

void run_memcpy(void)
{
	uint64_t marks[PROBE_ACPI_MAX_DOMAINS];
	unsigned nt = team.nthreads;
	char line[512];
	int ok = 1;

	for (unsigned d = 0; d < team.nnodes; d++)
		marks[d] = node_alloc_mark(d);
	run.nomem = 0;
	team_run(memcpy_job, NULL);
	if (run.nomem) {
		ufail("memcpy: out of memory for %u buffers of %lu bytes", nt + 1, opts.memcpy_size);
		goto out;
	}

	uint64_t start = res[0].t0, end = res[0].t1;

	for (unsigned t = 0; t < nt; t++) {
		start = res[t].t0 < start ? res[t].t0 : start;
		end = res[t].t1 > end ? res[t].t1 : end;
		ok &= res[t].ok;
	}

	struct memcpy_report r = {
		.threads = nt, .size = opts.memcpy_size, .reps = (unsigned)opts.memcpy_reps,
		.method = copy_method_name(opts.memcpy_method),
		.placement = opts.naive ? "naive" : "node",
		.cycles = end - start, .tsc_khz = tsc_khz, .verified = ok,
	};

	memcpy_report_line(line, sizeof(line), &r);
	uprintf("%s\n", line);
	if (!ok)
		ufail("memcpy: a destination differs from the source");
out:
	for (unsigned d = 0; d < team.nnodes; d++)
		node_alloc_release(d, marks[d]);
}
