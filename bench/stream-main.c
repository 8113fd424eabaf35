/*
 * bench/stream: memory bandwidth in the manner of McCalpin's STREAM (this
 * is not its code): the copy, scale, add and triad kernels over three arrays
 * of doubles, best and average rate of each over the repetitions.
 *
 * Placement is the point here (job-templates/stream.sh): the arrays are cut
 * into one contiguous slice per thread; each thread is pinned to its CPU,
 * and its slices are bound to that CPU's NUMA node and first touched by it,
 * so that every access is local.  In a gvm guest each vCPU's node is the
 * host node that runs it, so the aggregate rate is the sum of the nodes'
 * local bandwidths, with no DSM traffic, once the pages are placed.
 *
 * Each kernel, each repetition, runs between two spinning barriers (no
 * system call inside the timed region: a guest whose kernel code is emulated
 * pays milliseconds for one); its time is from the first thread's start to
 * the last thread's end.  Validation replays the same operations on one
 * scalar per array: every element must equal it exactly (one rounding per
 * operation, -ffp-contract=off), which catches a lost or misplaced slice.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/host.h"
#include "bench/tsc.h"
#include "common/log.h"
#include "common/parse.h"

enum { COPY, SCALE, ADD, TRIAD, KERNELS };

static const char *const kernel_name[KERNELS] = { "copy", "scale", "add", "triad" };
/* arrays each kernel reads or writes: the bytes it moves per element are 8 x this */
static const unsigned kernel_arrays[KERNELS] = { 2, 2, 3, 3 };

#define SCALAR 3.0

struct stream_run {
	uint64_t n;            /* elements per array, in all */
	unsigned reps;
	uint64_t *t0, *t1;     /* [thread][rep][kernel] */
	int *cpu, *node;
	unsigned *on, *sampled; /* of a thread's pages sampled, on its node */
	uint64_t *bad;         /* elements that fail validation, per thread */
	double expect[3];      /* a, b, c after the last repetition */
};

static size_t at(const struct stream_run *run, unsigned id, unsigned rep, unsigned k)
{
	return ((size_t)id * run->reps + rep) * KERNELS + k;
}

static void stream_thread(struct host_team *team, unsigned id, void *arg)
{
	struct stream_run *run = arg;
	uint64_t lo = run->n * id / team->nthreads, hi = run->n * (id + 1) / team->nthreads;
	size_t len = hi - lo, bytes = (len ? len : 1) * sizeof(double);
	int node = host_cpu_node(team->cpus[id]);
	double *a = host_alloc_on(bytes, node), *b = host_alloc_on(bytes, node);
	double *c = host_alloc_on(bytes, node);
	unsigned n;

	/* first touch, by the thread that uses them */
	for (size_t i = 0; i < len; i++) {
		a[i] = 1.0;
		b[i] = 2.0;
		c[i] = 0.0;
	}
	run->cpu[id] = team->cpus[id];
	run->node[id] = node;
	run->on[id] = host_pages_on_node(a, bytes, node, &n);
	run->sampled[id] = n;
	run->on[id] += host_pages_on_node(b, bytes, node, &n);
	run->sampled[id] += n;
	run->on[id] += host_pages_on_node(c, bytes, node, &n);
	run->sampled[id] += n;

	host_team_wait(team);
	for (unsigned r = 0; r < run->reps; r++) {
		host_team_spin(team);
		run->t0[at(run, id, r, COPY)] = tsc_read();
		for (size_t i = 0; i < len; i++)
			c[i] = a[i];
		run->t1[at(run, id, r, COPY)] = tsc_read();

		host_team_spin(team);
		run->t0[at(run, id, r, SCALE)] = tsc_read();
		for (size_t i = 0; i < len; i++)
			b[i] = SCALAR * c[i];
		run->t1[at(run, id, r, SCALE)] = tsc_read();

		host_team_spin(team);
		run->t0[at(run, id, r, ADD)] = tsc_read();
		for (size_t i = 0; i < len; i++)
			c[i] = a[i] + b[i];
		run->t1[at(run, id, r, ADD)] = tsc_read();

		host_team_spin(team);
		run->t0[at(run, id, r, TRIAD)] = tsc_read();
		for (size_t i = 0; i < len; i++)
			a[i] = b[i] + SCALAR * c[i];
		run->t1[at(run, id, r, TRIAD)] = tsc_read();
	}

	for (size_t i = 0; i < len; i++)
		run->bad[id] += a[i] != run->expect[0] || b[i] != run->expect[1] ||
				c[i] != run->expect[2];
	host_free(a, bytes);
	host_free(b, bytes);
	host_free(c, bytes);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stream [OPTION]...\n"
		"STREAM-style bandwidth (copy, scale, add, triad) with every thread's slice of\n"
		"the arrays on its own CPU's NUMA node; prints a 'stream:' line per kernel and\n"
		"a summary 'stream:' line last.\n"
		"  -n, --elements N   elements per array, in all (default 2M: 3 arrays of 16 MB);\n"
		"                     K/M/G suffixes are powers of 1024\n"
		"  -r, --reps N       repetitions of the four kernels (default 10); the first\n"
		"                     is not counted (it warms up)\n"
		"  -t, --threads N    threads, pinned round robin to the allowed CPUs; 'all': one\n"
		"                     per allowed CPU (default all)\n"
		"  -v, --verbose      a 'placement:' line per thread\n"
		"      --tsc-khz N    TSC rate for MB/s (default: measured)\n"
		"      --no-thp       no transparent huge pages for the arrays\n"
		"  -h, --help         this help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "elements", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "tsc-khz", required_argument, NULL, 'k' },
		{ "no-thp", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct stream_run run = { .n = 2u << 20, .reps = 10 };
	unsigned threads = host_cpu_count();
	uint64_t tsc_khz = 0;
	int verbose = 0, c;
	char err[PARSE_ERR_MAX];

	log_init("stream");
	while ((c = getopt_long(argc, argv, "n:r:t:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (parse_size(optarg, &run.n, err))
				die("--elements: %s", err);
			if (run.n < 1 || run.n > (1ull << 34))
				die("--elements: %s is not in [1, 16G]", optarg);
			break;
		case 'r':
			if (parse_uint(optarg, 2, 100000, &run.reps, err))
				die("--reps: %s", err);
			break;
		case 't':
			if (!strcmp(optarg, "all"))
				threads = host_cpu_count();
			else if (parse_uint(optarg, 1, 1024, &threads, err))
				die("--threads: %s", err);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'k':
			if (parse_u64(optarg, 1, 100000000, &tsc_khz, err))
				die("--tsc-khz: %s", err);
			break;
		case 'T':
			host_no_thp = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s' (see --help)", argv[optind]);
	if (threads > run.n)
		threads = (unsigned)run.n;

	size_t slots = (size_t)threads * run.reps * KERNELS;

	run.t0 = calloc(slots, sizeof(*run.t0));
	run.t1 = calloc(slots, sizeof(*run.t1));
	run.cpu = calloc(threads, sizeof(*run.cpu));
	run.node = calloc(threads, sizeof(*run.node));
	run.on = calloc(threads, sizeof(*run.on));
	run.sampled = calloc(threads, sizeof(*run.sampled));
	run.bad = calloc(threads, sizeof(*run.bad));
	if (!run.t0 || !run.t1 || !run.cpu || !run.node || !run.on || !run.sampled || !run.bad)
		die("out of memory");

	/* what every element must be at the end: the kernels on one element */
	double ea = 1.0, eb = 2.0, ec = 0.0;

	for (unsigned r = 0; r < run.reps; r++) {
		ec = ea;
		eb = SCALAR * ec;
		ec = ea + eb;
		ea = eb + SCALAR * ec;
	}
	run.expect[0] = ea;
	run.expect[1] = eb;
	run.expect[2] = ec;

	host_team_run(threads, stream_thread, &run);
	if (!tsc_khz)
		tsc_khz = host_tsc_khz();

	unsigned on = 0, sampled = 0;
	uint64_t bad = 0;

	for (unsigned i = 0; i < threads; i++) {
		on += run.on[i];
		sampled += run.sampled[i];
		bad += run.bad[i];
		if (verbose)
			printf("placement: thread=%u cpu=%d node=%d elements=%lu-%lu "
			       "pages_on_node=%u/%u\n", i, run.cpu[i], run.node[i],
			       run.n * i / threads, run.n * (i + 1) / threads, run.on[i],
			       run.sampled[i]);
	}

	double best_mbs[KERNELS];

	printf("tsc: khz=%lu\n", tsc_khz);
	for (unsigned k = 0; k < KERNELS; k++) {
		uint64_t best = 0, sum = 0, worst = 0;

		/* repetition 0 warms up (caches, TLB, the DSM's first transfers) */
		for (unsigned r = 1; r < run.reps; r++) {
			uint64_t s = run.t0[at(&run, 0, r, k)], e = run.t1[at(&run, 0, r, k)], d;

			for (unsigned i = 1; i < threads; i++) {
				s = run.t0[at(&run, i, r, k)] < s ? run.t0[at(&run, i, r, k)] : s;
				e = run.t1[at(&run, i, r, k)] > e ? run.t1[at(&run, i, r, k)] : e;
			}
			d = e > s ? e - s : 1;
			best = !best || d < best ? d : best;
			worst = d > worst ? d : worst;
			sum += d;
		}

		double bytes = 8.0 * kernel_arrays[k] * (double)run.n;
		double sec = (double)best / ((double)tsc_khz * 1e3);
		double avg = (double)sum / (run.reps - 1) / ((double)tsc_khz * 1e3);
		double max = (double)worst / ((double)tsc_khz * 1e3);

		best_mbs[k] = bytes / sec / 1e6;
		printf("stream: kernel=%s best_mbs=%.1f avg_mbs=%.1f min_s=%.6f avg_s=%.6f "
		       "max_s=%.6f\n", kernel_name[k], best_mbs[k], bytes / avg / 1e6, sec, avg, max);
	}
	printf("stream: threads=%u elements=%lu reps=%u copy=%.1f scale=%.1f add=%.1f "
	       "triad=%.1f verify=%s bad=%lu numa_nodes=%d on_node=%u/%u\n", threads, run.n,
	       run.reps, best_mbs[COPY], best_mbs[SCALE], best_mbs[ADD], best_mbs[TRIAD],
	       bad ? "FAIL" : "ok", bad, host_numa_nodes(), on, sampled);

	free(run.t0);
	free(run.t1);
	free(run.cpu);
	free(run.node);
	free(run.on);
	free(run.sampled);
	free(run.bad);
	return bad ? 1 : 0;
}
