/*
 * bench/spmv: SpMV (CSR) on the host with the same kernel, generator, parser
 * and checksum as the probe guest, printing the same "spmv:" line, so a test
 * compares checksums and a benchmark compares speeds.
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
	double *y;
	uint64_t *t0, *t1;
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
	/* Allocated and first touched here, on this thread's CPU. */
	double *x = host_alloc(xs), *y = host_alloc(ys);

	b.row_ptr = host_alloc(rs);
	b.col = host_alloc(cs);
	b.val = host_alloc(vs);
	(void)id;
	csr_block_copy(run->a, r0, r1, &b);
	spmv_fill_x(x, run->a->ncols);
	spmv_csr(&b, x, y); /* warm-up */

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
		"  -t, --threads N    threads, pinned round robin to the allowed CPUs (default 1)\n"
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
		{ "tsc-khz", required_argument, NULL, 'k' },
		{ "no-thp", no_argument, NULL, 'T' },
		{ "check", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned iters = 20, threads = 1;
	int check = 0;
	uint64_t tsc_khz = 0;
	char err[PARSE_ERR_MAX], label[256], line[512];
	const char *name = "gen";
	int c;

	log_init("spmv");
	while ((c = getopt_long(argc, argv, "i:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (parse_uint(optarg, 1, 1000000, &iters, err))
				die("--iters: %s", err);
			break;
		case 't':
			if (parse_uint(optarg, 1, 1024, &threads, err))
				die("--threads: %s", err);
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

	if (!bounds || !t0 || !t1 || !y)
		die("out of memory");
	csr_partition(&a, threads, bounds);

	struct spmv_run run = { &a, bounds, iters, y, t0, t1 };

	host_team_run(threads, spmv_thread, &run);
	if (!tsc_khz)
		tsc_khz = host_tsc_khz();

	uint64_t start = t0[0], end = t1[0];

	for (unsigned i = 1; i < threads; i++) {
		start = t0[i] < start ? t0[i] : start;
		end = t1[i] > end ? t1[i] : end;
	}

	struct spmv_report r = {
		.matrix = label, .rows = a.nrows, .cols = a.ncols, .nnz = a.nnz,
		.checksum = checksum_f64(CHECKSUM_INIT, y, a.nrows),
		.iters = iters, .threads = threads, .placement = "host",
		.cycles = end - start, .tsc_khz = tsc_khz,
	};

	spmv_report_line(line, sizeof(line), &r);
	printf("tsc: khz=%lu\n%s\n", tsc_khz, line);
	host_free_matrix(&a);
	free(bounds);
	free(t0);
	free(t1);
	free(y);
	return 0;
}
