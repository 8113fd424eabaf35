/*
 * bench/memcpy: the seed microbenchmark on the host, with the probe guest's
 * copy kernels: every thread copies one shared source to its own
 * destination, and the "memcpy:" line matches the probe's.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/checksum.h"
#include "bench/copy.h"
#include "bench/host.h"
#include "bench/report.h"
#include "bench/tsc.h"
#include "common/log.h"
#include "common/parse.h"

struct memcpy_run {
	enum copy_method method;
	uint64_t size;
	unsigned reps;
	const void *src;
	uint64_t src_sum;
	uint64_t *t0, *t1;
	int *ok;
};

static void memcpy_thread(struct host_team *team, unsigned id, void *arg)
{
	struct memcpy_run *run = arg;
	void *dst = host_alloc(run->size);

	(void)id;
	copy_run(run->method, dst, run->src, run->size); /* warm-up, first touch */

	host_team_wait(team);
	run->t0[id] = tsc_read();
	for (unsigned i = 0; i < run->reps; i++)
		copy_run(run->method, dst, run->src, run->size);
	run->t1[id] = tsc_read();

	run->ok[id] = checksum_words(CHECKSUM_INIT, dst, run->size) == run->src_sum;
	host_free(dst, run->size);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: memcpy [OPTION]...\n"
		"Every thread copies one shared source buffer to its own destination; prints\n"
		"the probe guest's 'memcpy:' line.\n"
		"  -s, --size SIZE    bytes per copy, a multiple of 64 (default 16M)\n"
		"  -r, --reps N       timed copies per thread (default 20)\n"
		"  -t, --threads N    threads, pinned round robin to the allowed CPUs (default 1)\n"
		"  -m, --method M     rep (rep movsb) or sse2 (default rep)\n"
		"      --tsc-khz N    TSC rate for GB/s (default: measured)\n"
		"      --no-thp       no transparent huge pages for the buffers (default: madvise\n"
		"                     them, as gvm does for guest RAM)\n"
		"  -h, --help         this help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "reps", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "method", required_argument, NULL, 'm' },
		{ "tsc-khz", required_argument, NULL, 'k' },
		{ "no-thp", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct memcpy_run run = { .method = COPY_REP, .size = 16 << 20, .reps = 20 };
	unsigned threads = 1;
	uint64_t tsc_khz = 0;
	char err[PARSE_ERR_MAX], line[512];
	int c;

	log_init("memcpy");
	while ((c = getopt_long(argc, argv, "s:r:t:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &run.size, err))
				die("--size: %s", err);
			if (!run.size || run.size % 64 || run.size > (64ull << 30))
				die("--size: %s is not a multiple of 64 in [64, 64G]", optarg);
			break;
		case 'r':
			if (parse_uint(optarg, 1, 1000000, &run.reps, err))
				die("--reps: %s", err);
			break;
		case 't':
			if (parse_uint(optarg, 1, 1024, &threads, err))
				die("--threads: %s", err);
			break;
		case 'm':
			if (copy_method_parse(optarg, &run.method))
				die("--method: '%s' is neither rep nor sse2", optarg);
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

	void *src = host_alloc(run.size);

	run.t0 = calloc(threads, sizeof(*run.t0));
	run.t1 = calloc(threads, sizeof(*run.t1));
	run.ok = calloc(threads, sizeof(*run.ok));
	if (!run.t0 || !run.t1 || !run.ok)
		die("out of memory");
	copy_fill(src, run.size, 1);
	run.src = src;
	run.src_sum = checksum_words(CHECKSUM_INIT, src, run.size);
	host_team_run(threads, memcpy_thread, &run);
	if (!tsc_khz)
		tsc_khz = host_tsc_khz();

	uint64_t start = run.t0[0], end = run.t1[0];
	int ok = 1;

	for (unsigned i = 0; i < threads; i++) {
		start = run.t0[i] < start ? run.t0[i] : start;
		end = run.t1[i] > end ? run.t1[i] : end;
		ok &= run.ok[i];
	}

	struct memcpy_report r = {
		.threads = threads, .size = run.size, .reps = run.reps,
		.method = copy_method_name(run.method), .placement = "host",
		.cycles = end - start, .tsc_khz = tsc_khz, .verified = ok,
	};

	memcpy_report_line(line, sizeof(line), &r);
	printf("tsc: khz=%lu\n%s\n", tsc_khz, line);
	host_free(src, run.size);
	free(run.t0);
	free(run.t1);
	free(run.ok);
	return ok ? 0 : 1;
}
