/*
 * bench/spmv: SpMV (CSR) on the host with the same kernel, generator, parser
 * and checksum as the probe guest, printing the same "spmv:" line, so a test
 * compares checksums and a benchmark compares speeds.  The Linux guest runs
 * it too (job-templates/spmv.sh): there each thread is pinned to its vCPU
 * and its rows live in that vCPU's NUMA node, i.e. with gvm on the host
 * node that runs the vCPU.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/checksum.h"
#include "bench/host.h"
#include "bench/report.h"
#include "bench/tsc.h"
#include "common/log.h"
#include "common/parse.h"

struct spmv_run {
	const struct csr *a;
	uint32_t *bounds;
	unsigned iters;
	int naive; /* every thread's data on node 0 */
	double *y;
	uint64_t *t0, *t1;
	int *cpu, *node;          /* thread i's CPU, where its data was meant to be */
	unsigned *on, *sampled;   /* of its pages sampled, how many are there */
};

static void spmv_thread(struct host_team *team, unsigned id, void *arg)
{
	struct spmv_run *run = arg;
	uint32_t r0 = run->bounds[id], r1 = run->bounds[id + 1];
	uint64_t nnz = csr_block_nnz(run->a, r0, r1);
	struct csr b;
	size_t xs = ((size_t)run->a->ncols + 1) * sizeof(double);
	size_t ys = ((size_t)(r1 - r0) + 1) * sizeof(double);
	size_t rs = ((size_t)(r1 - r0) + 1) * sizeof(uint64_t);
	size_t cs = (nnz + 1) * sizeof(uint32_t), vs = (nnz + 1) * sizeof(double);
	/*
	 * Bound to this thread's node (its CPU's, or node 0 for the naive
	 * placement) and first touched here, on the CPU it is pinned to: with
	 * the binding alone a page would still be placed right, but first
	 * touch by the thread that uses it is what an unmodified OpenMP
	 * program relies on, so it is what this measures.
	 */
	int node = run->naive ? 0 : host_cpu_node(team->cpus[id]);
	double *x = host_alloc_on(xs, node), *y = host_alloc_on(ys, node);
	unsigned on, n;

	b.row_ptr = host_alloc_on(rs, node);
	b.col = host_alloc_on(cs, node);
	b.val = host_alloc_on(vs, node);
	csr_block_copy(run->a, r0, r1, &b);
	spmv_fill_x(x, run->a->ncols);
	spmv_csr(&b, x, y); /* warm-up */

	/* where the kernel put them: the values and the columns are the bulk */
	run->cpu[id] = team->cpus[id];
	run->node[id] = node;
	run->on[id] = host_pages_on_node(b.val, vs, node, &n);
	run->sampled[id] = n;
	run->on[id] += host_pages_on_node(b.col, cs, node, &n);
	run->sampled[id] += n;
	on = host_pages_on_node(x, xs, node, &n);
	run->on[id] += on;
	run->sampled[id] += n;

	host_team_wait(team);
	run->t0[id] = tsc_read();
	for (unsigned i = 0; i < run->iters; i++)
		spmv_csr(&b, x, y);
	run->t1[id] = tsc_read();

	memcpy(run->y + r0, y, (size_t)(r1 - r0) * sizeof(*y));
	host_free(b.row_ptr, rs);
	host_free(b.col, cs);
	host_free(b.val, vs);
	host_free(x, xs);
	host_free(y, ys);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: spmv [OPTION]... [MATRIX]\n"
		"Run y = A x (CSR) on the host and print the probe guest's 'spmv:' line.\n"
		"MATRIX is a Matrix Market file or gen[:ROWS:PER_ROW:SEED] (default: gen,\n"
		"i.e. gen:200000:16:1).\n"
		"  -i, --iters N      timed iterations (default 20)\n"
		"  -t, --threads N    threads, pinned round robin to the allowed CPUs; 'all': one\n"
		"                     per allowed CPU (default 1)\n"
		"  -p, --placement P  node: each thread's rows, x and y bound to its CPU's NUMA\n"
		"                     node and first touched by it; naive: all on node 0\n"
		"                     (default node)\n"
		"  -v, --verbose      a 'placement:' line per thread: its CPU, node, and how many\n"
		"                     of its pages sampled are on that node\n"
		"      --check        only read MATRIX, as the probe guest would, and print its\n"
		"                     size; an error names the file and the line (exit 1)\n"
		"      --tsc-khz N    TSC rate for GFLOP/s (default: measured)\n"
		"      --no-thp       no transparent huge pages for the threads' data (default:\n"
		"                     madvise them, as gvm does for guest RAM)\n"
		"  -h, --help         this help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "iters", required_argument, NULL, 'i' },
		{ "threads", required_argument, NULL, 't' },
		{ "placement", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "tsc-khz", required_argument, NULL, 'k' },
		{ "no-thp", no_argument, NULL, 'T' },
		{ "check", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned iters = 20, threads = 1;
	int check = 0, naive = 0, verbose = 0;
	uint64_t tsc_khz = 0;
	char err[PARSE_ERR_MAX], label[256], line[512];
	const char *name = "gen";
	int c;

	log_init("spmv");
	while ((c = getopt_long(argc, argv, "i:t:p:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (parse_uint(optarg, 1, 1000000, &iters, err))
				die("--iters: %s", err);
			break;
		case 't':
			if (!strcmp(optarg, "all"))
				threads = host_cpu_count();
			else if (parse_uint(optarg, 1, 1024, &threads, err))
				die("--threads: %s", err);
			break;
		case 'p':
			if (!strcmp(optarg, "node") || !strcmp(optarg, "naive"))
				naive = !strcmp(optarg, "naive");
			else
				die("--placement: '%s' is neither node nor naive", optarg);
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
		case 'c':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 < argc)
		die("more than one matrix given (see --help)");
	if (optind < argc)
		name = argv[optind];

	struct csr a;

	host_load_matrix(name, &a, label, sizeof(label));
	if (check) {
		printf("%s: %u x %u, %lu non-zeros\n", label, a.nrows, a.ncols, a.nnz);
		host_free_matrix(&a);
		return 0;
	}
	if (threads > a.nrows)
		threads = a.nrows;

	uint32_t *bounds = calloc(threads + 1, sizeof(*bounds));
	uint64_t *t0 = calloc(threads, sizeof(*t0)), *t1 = calloc(threads, sizeof(*t1));
	double *y = calloc(a.nrows, sizeof(*y));
	int *node = calloc(threads, sizeof(*node)), *cpu = calloc(threads, sizeof(*cpu));
	unsigned *on = calloc(threads, sizeof(*on)), *sampled = calloc(threads, sizeof(*sampled));

	if (!bounds || !t0 || !t1 || !y || !node || !cpu || !on || !sampled)
		die("out of memory");
	csr_partition(&a, threads, bounds);

	struct spmv_run run = {
		.a = &a, .bounds = bounds, .iters = iters, .naive = naive, .y = y,
		.t0 = t0, .t1 = t1, .cpu = cpu, .node = node, .on = on, .sampled = sampled,
	};

	host_team_run(threads, spmv_thread, &run);
	if (!tsc_khz)
		tsc_khz = host_tsc_khz();

	uint64_t start = t0[0], end = t1[0];
	unsigned on_all = 0, sampled_all = 0;

	for (unsigned i = 0; i < threads; i++) {
		start = t0[i] < start ? t0[i] : start;
		end = t1[i] > end ? t1[i] : end;
		on_all += on[i];
		sampled_all += sampled[i];
		if (verbose)
			printf("placement: thread=%u cpu=%d node=%d rows=%u-%u pages_on_node=%u/%u\n",
			       i, cpu[i], node[i], bounds[i], bounds[i + 1], on[i], sampled[i]);
	}

	struct spmv_report r = {
		.matrix = label, .rows = a.nrows, .cols = a.ncols, .nnz = a.nnz,
		.checksum = checksum_f64(CHECKSUM_INIT, y, a.nrows),
		.iters = iters, .threads = threads, .placement = naive ? "naive" : "node",
		.cycles = end - start, .tsc_khz = tsc_khz,
	};

	spmv_report_line(line, sizeof(line), &r);
	/*
	 * The line's keys up to gflops are the probe's (bench/report.c); the
	 * NUMA ones follow: nodes, and of the pages sampled (values, columns,
	 * x of every thread) the share on the node meant for them.
	 */
	printf("tsc: khz=%lu\n%s numa_nodes=%d on_node=%u/%u\n", tsc_khz, line,
	       host_numa_nodes(), on_all, sampled_all);
	host_free_matrix(&a);
	free(bounds);
	free(t0);
	free(t1);
	free(y);
	free(node);
	free(cpu);
	free(on);
	free(sampled);
	return 0;
}
