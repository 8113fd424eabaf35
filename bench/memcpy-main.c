/*
 * bench/memcpy: the seed microbenchmark on the host, with the probe guest's
 * copy kernels: every thread copies one shared source to its own
 * destination, and the "memcpy:" line matches the probe's.  Placement as the
 * probe's (and the seed's numa_alloc_onnode): the source on one node (0),
 * each destination on the node of its thread's CPU, each thread pinned to
 * its CPU; in the Linux guest (job-templates/memcpy.sh) a thread per vCPU,
 * so every thread but node 0's reads its source across gvm instances.
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
	int *cpu, *node;         /* thread i's CPU and its destination's node */
	unsigned *on, *sampled;  /* of its destination's pages sampled, on that node */
};

static void memcpy_thread(struct host_team *team, unsigned id, void *arg)
{
	struct memcpy_run *run = arg;
	int node = host_cpu_node(team->cpus[id]);
	void *dst = host_alloc_on(run->size, node);

	copy_run(run->method, dst, run->src, run->size); /* warm-up, first touch */
	run->cpu[id] = team->cpus[id];
	run->node[id] = node;
	run->on[id] = host_pages_on_node(dst, run->size, node, &run->sampled[id]);

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
		"  -t, --threads N    threads, pinned round robin to the allowed CPUs; 'all': one\n"
		"                     per allowed CPU (default 1)\n"
		"  -n, --src-node N   the NUMA node of the source (default 0); each thread's\n"
		"                     destination is on its own CPU's node\n"
		"  -v, --verbose      a 'placement:' line per thread: its CPU, its destination's\n"
		"                     node, and how many of its pages sampled are on that node\n"
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
		{ "src-node", required_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "method", required_argument, NULL, 'm' },
		{ "tsc-khz", required_argument, NULL, 'k' },
		{ "no-thp", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct memcpy_run run = { .method = COPY_REP, .size = 16 << 20, .reps = 20 };
	unsigned threads = 1, src_node = 0, src_on, src_sampled;
	int verbose = 0;
	uint64_t tsc_khz = 0;
	char err[PARSE_ERR_MAX], line[512];
	int c;

	log_init("memcpy");
	while ((c = getopt_long(argc, argv, "s:r:t:n:vm:h", opts, NULL)) != -1) {
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
			if (!strcmp(optarg, "all"))
				threads = host_cpu_count();
			else if (parse_uint(optarg, 1, 1024, &threads, err))
				die("--threads: %s", err);
			break;
		case 'n':
			if (parse_uint(optarg, 0, 1023, &src_node, err))
				die("--src-node: %s", err);
			break;
		case 'v':
			verbose = 1;
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

	if ((int)src_node >= host_numa_nodes())
		die("--src-node %u: this machine has %d NUMA node%s", src_node, host_numa_nodes(),
		    host_numa_nodes() == 1 ? "" : "s");

	void *src = host_alloc_on(run.size, (int)src_node);

	run.t0 = calloc(threads, sizeof(*run.t0));
	run.t1 = calloc(threads, sizeof(*run.t1));
	run.ok = calloc(threads, sizeof(*run.ok));
	run.cpu = calloc(threads, sizeof(*run.cpu));
	run.node = calloc(threads, sizeof(*run.node));
	run.on = calloc(threads, sizeof(*run.on));
	run.sampled = calloc(threads, sizeof(*run.sampled));
	if (!run.t0 || !run.t1 || !run.ok || !run.cpu || !run.node || !run.on || !run.sampled)
		die("out of memory");
	copy_fill(src, run.size, 1);
	src_on = host_pages_on_node(src, run.size, (int)src_node, &src_sampled);
	run.src = src;
	run.src_sum = checksum_words(CHECKSUM_INIT, src, run.size);
	host_team_run(threads, memcpy_thread, &run);
	if (!tsc_khz)
		tsc_khz = host_tsc_khz();

	uint64_t start = run.t0[0], end = run.t1[0];
	unsigned on_all = src_on, sampled_all = src_sampled;
	int ok = 1;

	if (verbose)
		printf("placement: source node=%u pages_on_node=%u/%u\n", src_node, src_on,
		       src_sampled);
	for (unsigned i = 0; i < threads; i++) {
		start = run.t0[i] < start ? run.t0[i] : start;
		end = run.t1[i] > end ? run.t1[i] : end;
		ok &= run.ok[i];
		on_all += run.on[i];
		sampled_all += run.sampled[i];
		if (verbose)
			printf("placement: thread=%u cpu=%d node=%d pages_on_node=%u/%u verify=%s\n",
			       i, run.cpu[i], run.node[i], run.on[i], run.sampled[i],
			       run.ok[i] ? "ok" : "FAIL");
	}

	struct memcpy_report r = {
		.threads = threads, .size = run.size, .reps = run.reps,
		.method = copy_method_name(run.method), .placement = "node",
		.cycles = end - start, .tsc_khz = tsc_khz, .verified = ok,
	};

	memcpy_report_line(line, sizeof(line), &r);
	/* the probe's keys, then the NUMA ones (as bench/spmv's) */
	printf("tsc: khz=%lu\n%s numa_nodes=%d src_node=%u on_node=%u/%u\n", tsc_khz, line,
	       host_numa_nodes(), src_node, on_all, sampled_all);
	host_free(src, run.size);
	free(run.t0);
	free(run.t1);
	free(run.ok);
	free(run.cpu);
	free(run.node);
	free(run.on);
	free(run.sampled);
	return ok ? 0 : 1;
}
