/*
 * dsm-node: one instance of a DSM shared by N processes (this program, run
 * N times), each on its own host or all on one.  Every thread of every
 * instance increments counters spread over the region's pages with atomic
 * instructions; at the end every instance checks that every counter holds
 * exactly the number of increments made, and prints its statistics.
 *
 * The instances synchronise through the DSM itself (a barrier counter on a
 * page homed on rank 0), so a passing run is a coherent run.
 *
 * Exit status: 0 every counter exact; 1 a counter is wrong; 2 bad usage;
 * 3 the DSM stopped on an error (a peer lost, a protocol error); 4 set-up
 * failed (mesh, userfaultfd); 5 cannot listen on this rank's port.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mesh.h"
#include "common/parse.h"
#include "dsm/dsm.h"

struct opts {
	unsigned rank, nodes, threads, rounds, handlers, prefetch, hold_us, timeout_s;
	uint64_t size, vm_id;
	struct hostport *peers;
	int numa, uffd;
	bool excl_read, quiet;
};

struct worker {
	uint64_t *base;
	uint64_t npages;
	unsigned rounds, id, rank;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dsm-node --rank R --peers HOST:PORT,HOST:PORT,... [options]\n"
		"One instance of a DSM shared by every process of the peer list (entry R is\n"
		"this one: it listens there).  All instances increment shared counters, then\n"
		"check that none lost an increment.\n"
		"  --rank R          this instance's rank: its entry in --peers\n"
		"  --peers LIST      every instance's address, in rank order\n"
		"  --size SIZE       region size, a multiple of 4 KiB (default 1M)\n"
		"  --threads N       incrementing threads per instance (default 2)\n"
		"  --rounds N        each thread increments every counter N times (default 20)\n"
		"  --handlers N      fault handler threads (default 2)\n"
		"  --prefetch N      read-ahead window in pages, 0 = off (default 0)\n"
		"  --hold US         keep a page written here at least US microseconds (default 0)\n"
		"  --excl-read       grant write access on a read fault when nobody else reads\n"
		"  --numa NODE       bind the pages homed here to host NUMA node NODE\n"
		"  --uffd-fd FD      /dev/userfaultfd opened by a privileged helper (inherited)\n"
		"  --vm-id N         peers must agree on it (default 1)\n"
		"  --timeout S       give up connecting after S seconds (default 30)\n"
		"  --quiet           no statistics\n"
		"Exit status: 0 counters exact, 1 a counter wrong, 2 usage, 3 DSM error (peer\n"
		"lost, protocol error), 4 set-up failed, 5 cannot listen on this rank's port.\n"
		"Munge authenticates the peers (GVM_MUNGE_SOCKET selects munged's socket).\n");
}

static void on_fatal(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "dsm-node: fatal: %s\n", msg);
	fflush(stderr);
	_exit(3);
}

/* A barrier through the DSM: every arrival increments one counter. */
static void barrier(uint64_t *ctr, unsigned n, unsigned *gen)
{
	++*gen;
	__atomic_fetch_add(ctr, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(ctr, __ATOMIC_SEQ_CST) < (uint64_t)n * *gen)
		usleep(200);
}

/* Counter i of page p: one per 512 bytes, so a page holds 8 of them. */
#define PER_PAGE 8

static uint64_t *counter(uint64_t *base, uint64_t i)
{
	return base + (1 + i / PER_PAGE) * (4096 / 8) + (i % PER_PAGE) * (512 / 8);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t n = (w->npages - 1) * PER_PAGE;
	unsigned seed = w->rank * 7919 + w->id;

	for (unsigned r = 0; r < w->rounds; r++) {
		uint64_t start = rand_r(&seed) % n;

		for (uint64_t j = 0; j < n; j++)
			__atomic_fetch_add(counter(w->base, (start + j) % n), 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static struct hostport *peers_to_free;

/* Bad usage: say what and exit 2 (die() would exit 1). */
static void bad_arg(const char *opt, const char *err)
{
	fprintf(stderr, "dsm-node: %s: %s\n", opt, err);
	free(peers_to_free);
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "rank", 1, NULL, 'r' }, { "peers", 1, NULL, 'p' }, { "size", 1, NULL, 's' },
		{ "threads", 1, NULL, 't' }, { "rounds", 1, NULL, 'R' },
		{ "handlers", 1, NULL, 'H' }, { "prefetch", 1, NULL, 'f' },
		{ "hold", 1, NULL, 'o' }, { "excl-read", 0, NULL, 'x' }, { "numa", 1, NULL, 'n' },
		{ "uffd-fd", 1, NULL, 'u' }, { "vm-id", 1, NULL, 'v' },
		{ "timeout", 1, NULL, 'T' }, { "quiet", 0, NULL, 'q' }, { "help", 0, NULL, 'h' },
		{ 0 },
	};
	char err[PARSE_ERR_MAX];
	bool have_rank = false;
	unsigned u;
	int ch, n;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (parse_uint(optarg, 0, DSM_MAX_NODES - 1, &o->rank, err))
				bad_arg("--rank", err);
			have_rank = true;
			break;
		case 'p':
			free(o->peers);
			n = parse_hostport_list(optarg, &o->peers, err);
			if (n < 0)
				bad_arg("--peers", err);
			peers_to_free = o->peers;
			o->nodes = n;
			break;
		case 's':
			if (parse_size(optarg, &o->size, err))
				bad_arg("--size", err);
			break;
		case 't':
			if (parse_uint(optarg, 1, 64, &o->threads, err))
				bad_arg("--threads", err);
			break;
		case 'R':
			if (parse_uint(optarg, 1, 1000000, &o->rounds, err))
				bad_arg("--rounds", err);
			break;
		case 'H':
			if (parse_uint(optarg, 1, 64, &o->handlers, err))
				bad_arg("--handlers", err);
			break;
		case 'f':
			if (parse_uint(optarg, 0, 64, &o->prefetch, err))
				bad_arg("--prefetch", err);
			break;
		case 'o':
			if (parse_uint(optarg, 0, 1000000, &o->hold_us, err))
				bad_arg("--hold", err);
			break;
		case 'x':
			o->excl_read = true;
			break;
		case 'n':
			if (parse_uint(optarg, 0, 1023, &u, err))
				bad_arg("--numa", err);
			o->numa = u;
			break;
		case 'u':
			if (parse_uint(optarg, 0, 1 << 20, &u, err))
				bad_arg("--uffd-fd", err);
			o->uffd = u;
			break;
		case 'v':
			if (parse_u64(optarg, 0, UINT64_MAX, &o->vm_id, err))
				bad_arg("--vm-id", err);
			break;
		case 'T':
			if (parse_uint(optarg, 1, 3600, &o->timeout_s, err))
				bad_arg("--timeout", err);
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			bad_arg("usage", "unknown option or missing value");
		}
	}
	if (optind != argc || !have_rank || !o->peers)
		bad_arg("usage", "--rank and --peers are required (see --help)");
	if (o->rank >= o->nodes) {
		snprintf(err, sizeof(err), "there are %u peers, so the rank must be below %u",
			 o->nodes, o->nodes);
		bad_arg("--rank", err);
	}
	if (o->nodes > DSM_MAX_NODES) {
		snprintf(err, sizeof(err), "%u peers, at most %u", o->nodes, DSM_MAX_NODES);
		bad_arg("--peers", err);
	}
	if (o->size == 0 || o->size % DSM_PAGE_SIZE) {
		snprintf(err, sizeof(err), "%llu: the region must be a non-zero multiple of 4096 "
			 "bytes", (unsigned long long)o->size);
		bad_arg("--size", err);
	}
	if (o->size < 2 * DSM_PAGE_SIZE) {
		snprintf(err, sizeof(err), "%llu: at least 2 pages (a barrier and counters)",
			 (unsigned long long)o->size);
		bad_arg("--size", err);
	}
}

int main(int argc, char **argv)
{
	struct opts o = { .size = 1 << 20, .threads = 2, .rounds = 20, .handlers = 2,
			  .timeout_s = 30, .vm_id = 1, .numa = -1, .uffd = -1 };
	char err[DSM_ERR_MAX > MESH_ERR_MAX ? DSM_ERR_MAX : MESH_ERR_MAX];
	struct mesh_config mc;
	struct dsm_config cfg;
	struct dsm_stats st;
	struct worker *w;
	pthread_t *th;
	struct mesh *m;
	struct dsm *d;
	uint64_t *base, want, bad = 0;
	unsigned gen = 0;
	int lfd, rc = 0;

	log_init(argv[0]);
	parse(argc, argv, &o);

	lfd = mesh_listen(&o.peers[o.rank], err);
	if (lfd < 0) {
		fprintf(stderr, "dsm-node: rank %u: %s\n", o.rank, err);
		free(o.peers);
		return 5;
	}
	mc = (struct mesh_config){
		.rank = o.rank, .nr_nodes = o.nodes, .nr_channels = DSM_NR_CHANNELS,
		.peers = o.peers, .listen_fd = lfd, .vm_id = o.vm_id,
		.munge_socket = getenv("GVM_MUNGE_SOCKET"), .timeout_ms = o.timeout_s * 1000,
	};
	if (mesh_open(&mc, &m, err)) {
		fprintf(stderr, "dsm-node: rank %u: %s\n", o.rank, err);
		free(o.peers);
		return 4;
	}
	dsm_config_init(&cfg);
	cfg.mesh = m;
	cfg.size = o.size;
	cfg.uffd = o.uffd;
	cfg.numa_node = o.numa;
	cfg.nr_handlers = o.handlers;
	cfg.prefetch_pages = o.prefetch;
	cfg.hold_us = o.hold_us;
	cfg.excl_read = o.excl_read;
	cfg.on_fatal = on_fatal;
	if (dsm_create(&cfg, &d, err) || dsm_start(d, err)) {
		fprintf(stderr, "dsm-node: rank %u: %s\n", o.rank, err);
		dsm_destroy(d);
		mesh_close(m);
		free(o.peers);
		return 4;
	}
	base = dsm_addr(d);
	th = calloc(o.threads, sizeof(*th));
	w = calloc(o.threads, sizeof(*w));
	if (!th || !w)
		die("out of memory");
	barrier(base, o.nodes, &gen);
	for (unsigned i = 0; i < o.threads; i++) {
		w[i] = (struct worker){ base, o.size / DSM_PAGE_SIZE, o.rounds, i, o.rank };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (unsigned i = 0; i < o.threads; i++)
		pthread_join(th[i], NULL);
	barrier(base, o.nodes, &gen);
	/* Every instance ran the same threads and rounds (the caller's promise). */
	want = (uint64_t)o.nodes * o.threads * o.rounds;
	for (uint64_t i = 0; i < (o.size / DSM_PAGE_SIZE - 1) * PER_PAGE; i++)
		if (*counter(base, i) != want && bad++ < 5)
			fprintf(stderr, "dsm-node: rank %u: counter %llu is %llu, expected %llu\n",
				o.rank, (unsigned long long)i, (unsigned long long)*counter(base, i),
				(unsigned long long)want);
	barrier(base, o.nodes, &gen);
	dsm_get_stats(d, &st);
	if (!o.quiet)
		printf("rank %u: %s: faults read %llu write %llu upgrade %llu zero %llu local %llu, "
		       "invalidations %llu, messages %llu sent %llu received, %llu pages sent\n",
		       o.rank, bad ? "COUNTERS WRONG" : "counters exact",
		       (unsigned long long)st.faults[DSM_FAULT_READ],
		       (unsigned long long)st.faults[DSM_FAULT_WRITE],
		       (unsigned long long)st.faults[DSM_FAULT_UPGRADE],
		       (unsigned long long)st.faults[DSM_FAULT_ZERO],
		       (unsigned long long)st.faults[DSM_FAULT_LOCAL],
		       (unsigned long long)st.invalidations, (unsigned long long)st.msgs_sent,
		       (unsigned long long)st.msgs_received, (unsigned long long)st.pages_sent);
	if (dsm_stop(d)) {
		fprintf(stderr, "dsm-node: rank %u: %s\n", o.rank, dsm_error(d));
		rc = 3;
	}
	dsm_destroy(d);
	mesh_close(m);
	free(th);
	free(w);
	free(o.peers);
	return bad ? 1 : rc;
}
