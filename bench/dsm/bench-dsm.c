/*
 * bench-dsm: libgvdsm's yardsticks, measured in one run on this machine and
 * each reported as a ratio to a floor measured in the same run:
 *
 *   floor: a local userfaultfd fault resolved by a handler thread with
 *   UFFDIO_COPY, the handler first doing one TCP loopback round trip of a
 *   16-byte request and a 4 KiB reply with another process;
 *
 *   remote read fault, remote write fault, write faults with 1 and 3 other
 *   copies to invalidate, sequential read of 64 MiB homed on another node.
 *
 * Every DSM process is a real process with its own mesh (munge, TCP).  Run
 * it through `make bench-dsm`, which also starts munged when none runs.
 */
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "common/parse.h"
#include "common/wire.h"
#include "tests/dsm/cluster.h"

#define MAX_SAMPLES 8192
#define REQ_BYTES 16

struct results {
	unsigned n;
	double us[MAX_SAMPLES];
	double value; /* for throughput runs */
	struct dsm_stats stats;
};

struct opts {
	unsigned pages;      /* faults per latency yardstick */
	uint64_t seq_bytes;
	unsigned poll_us;    /* busy-poll budget of handlers and receive threads */
	unsigned handlers;
	unsigned prefetch;
	unsigned rounds;
	bool extras, verbose;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(struct results *r)
{
	if (!r->n)
		return NAN;
	qsort(r->us, r->n, sizeof(r->us[0]), cmp_double);
	return r->us[r->n / 2];
}

static double pct(struct results *r, double p)
{
	if (!r->n)
		return NAN;
	qsort(r->us, r->n, sizeof(r->us[0]), cmp_double);
	return r->us[(unsigned)(p * (r->n - 1))];
}

static void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die_perror("mmap");
	memset(p, 0, size);
	return p;
}

/* A random order of n pages from first, so that nothing looks sequential. */
static void shuffle(uint64_t *v, unsigned n, uint64_t first, unsigned seed)
{
	for (unsigned i = 0; i < n; i++)
		v[i] = first + i;
	for (unsigned i = n - 1; i > 0; i--) {
		unsigned j = rand_r(&seed) % (i + 1);
		uint64_t t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

/* ---- the floor ---- */

struct floor_client {
	int uffd, fd;
	unsigned poll_us;
	bool network;
	atomic_bool stop;
	unsigned char page[DSM_PAGE_SIZE] __attribute__((aligned(4096)));
};

static bool spin_ready(int fd, unsigned poll_us, bool is_socket)
{
	double end = now_us() + poll_us;
	char b;

	while (now_us() < end) {
		if (is_socket) {
			if (recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
				return true;
		} else {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (poll(&p, 1, 0) > 0)
				return true;
		}
		for (int i = 0; i < 64; i++)
			__builtin_ia32_pause();
	}
	return false;
}

/* The floor's handler: one event, one round trip (optional), one UFFDIO_COPY. */
static void *floor_handler(void *arg)
{
	struct floor_client *f = arg;
	struct pollfd p = { .fd = f->uffd, .events = POLLIN };
	char req[REQ_BYTES] = "give me a page";

	while (!atomic_load(&f->stop)) {
		struct uffd_msg m;
		struct uffdio_copy c;

		if (read(f->uffd, &m, sizeof(m)) != sizeof(m)) {
			if (!f->poll_us || !spin_ready(f->uffd, f->poll_us, false))
				poll(&p, 1, 100);
			continue;
		}
		if (f->network) {
			if (wire_write_full(f->fd, req, sizeof(req)))
				die("floor: send failed");
			if (f->poll_us)
				spin_ready(f->fd, f->poll_us, true);
			if (wire_read_full(f->fd, f->page, DSM_PAGE_SIZE))
				die("floor: receive failed");
		}
		c = (struct uffdio_copy){ .dst = m.arg.pagefault.address & ~(uint64_t)4095,
					  .src = (uintptr_t)f->page, .len = DSM_PAGE_SIZE };
		if (ioctl(f->uffd, UFFDIO_COPY, &c))
			die_perror("floor: UFFDIO_COPY");
	}
	return NULL;
}

/* Time n first touches of a uffd-registered region served by floor_handler. */
static void floor_faults(struct floor_client *f, unsigned n, struct results *r)
{
	size_t size = (size_t)n * DSM_PAGE_SIZE;
	uint8_t *region = mmap(NULL, size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (uintptr_t)region, size },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	uint64_t *order = malloc(n * sizeof(*order));
	pthread_t th;

	f->uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (region == MAP_FAILED || !order || f->uffd < 0 || ioctl(f->uffd, UFFDIO_API, &api) ||
	    ioctl(f->uffd, UFFDIO_REGISTER, &reg))
		die_perror("floor: userfaultfd set-up");
	madvise(region, size, MADV_NOHUGEPAGE);
	atomic_store(&f->stop, false);
	pthread_create(&th, NULL, floor_handler, f);
	shuffle(order, n, 0, 7);
	r->n = 0;
	for (unsigned i = 0; i < n && r->n < MAX_SAMPLES; i++) {
		double t0 = now_us();
		(void)*(volatile uint8_t *)(region + order[i] * DSM_PAGE_SIZE);
		r->us[r->n++] = now_us() - t0;
	}
	atomic_store(&f->stop, true);
	pthread_join(th, NULL);
	close(f->uffd);
	munmap(region, size);
	free(order);
}

struct floor_ctx {
	struct opts *o;
	struct results *fault_only, *rtt_only, *floor;
};

static int floor_raw(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	struct floor_ctx *x = c->arg;
	unsigned poll_us = x->o->poll_us;
	int fd = mesh_fd(m, !rank, 0);
	static struct floor_client f;

	(void)arg;
	if (rank == 0) {
		/* The server: 16 bytes in, 4 KiB out, until the client closes. */
		static unsigned char page[DSM_PAGE_SIZE];
		char req[REQ_BYTES];

		memset(page, 0x5a, sizeof(page));
		for (;;) {
			if (poll_us)
				spin_ready(fd, poll_us, true);
			if (wire_read_full(fd, req, sizeof(req)))
				return 0;
			if (wire_write_full(fd, page, sizeof(page)))
				return 1;
		}
	}
	f.fd = fd;
	f.poll_us = poll_us;
	/* The parts: a uffd fault alone, a round trip alone, then both (the floor). */
	f.network = false;
	floor_faults(&f, x->o->pages, x->fault_only);
	x->rtt_only->n = 0;
	for (unsigned i = 0; i < x->o->pages && i < MAX_SAMPLES; i++) {
		char req[REQ_BYTES] = "ping";
		double t0 = now_us();

		if (wire_write_full(fd, req, sizeof(req)))
			return 1;
		if (poll_us)
			spin_ready(fd, poll_us, true);
		if (wire_read_full(fd, f.page, DSM_PAGE_SIZE))
			return 1;
		x->rtt_only->us[x->rtt_only->n++] = now_us() - t0;
	}
	f.network = true;
	floor_faults(&f, x->o->pages, x->floor);
	return 0;
}

static int no_dsm(struct dsm *d, unsigned rank, void *arg)
{
	(void)d;
	(void)rank;
	(void)arg;
	return 0;
}

static double measure_floor(struct opts *o, bool verbose)
{
	struct results *r = shared_alloc(3 * sizeof(*r));
	struct floor_ctx x = { o, &r[0], &r[1], &r[2] };
	struct cluster c;
	double floor;

	cluster_init(&c, 2, DSM_PAGE_SIZE);
	c.raw_mask = 3;
	c.raw = floor_raw;
	c.arg = &x;
	if (cluster_run(&c, no_dsm, NULL)) {
		cluster_report(&c);
		die("the floor measurement failed");
	}
	floor = median(x.floor);
	if (verbose) {
		printf("  (last round) floor parts: userfaultfd fault %.1f us, TCP round trip 16 B/4 KiB %.1f us "
		       "(medians); floor p10 %.1f p90 %.1f us\n", median(x.fault_only),
		       median(x.rtt_only), pct(x.floor, 0.1), pct(x.floor, 0.9));
	}
	munmap(r, 3 * sizeof(*r));
	return floor;
}

/* ---- DSM yardsticks ---- */

enum { W_READ, W_READ_SHARED, W_WRITE, W_WRITE_1, W_WRITE_3, W_UPGRADE_3, W_RMW, W_READBACK,
	W_SEQ, W_FALSE_SHARING, W_KINDS };

struct dsm_ctx {
	struct opts *o;
	struct cluster *c;
	int what;
	unsigned pages;
	struct results *res; /* written by rank 1 */
};

/*
 * Pages [0, pages) are homed on rank 0, which writes them first (owner,
 * writable); `sharers` other ranks (2, 3...) then read them; rank 1 times
 * one access per page, in a random order (nothing for prefetch to see).
 */
static int dsm_lat_node(struct dsm *d, unsigned rank, void *arg)
{
	struct dsm_ctx *x = arg;
	uint8_t *base = dsm_addr(d);
	unsigned sharers = x->what == W_WRITE_1 || x->what == W_READ_SHARED ? 1 :
			   x->what == W_WRITE_3 || x->what == W_UPGRADE_3 ? 3 : 0;
	uint64_t *order = malloc(x->pages * sizeof(*order));

	if (rank == 0)
		for (unsigned i = 0; i < x->pages; i++)
			base[(uint64_t)i * DSM_PAGE_SIZE] = (uint8_t)i;
	cluster_barrier(x->c);
	if (rank >= 2 && rank < 2 + sharers)
		for (unsigned i = 0; i < x->pages; i++)
			(void)*(volatile uint8_t *)(base + (uint64_t)i * DSM_PAGE_SIZE);
	if (rank == 1 && x->what == W_UPGRADE_3)
		for (unsigned i = 0; i < x->pages; i++)
			(void)*(volatile uint8_t *)(base + (uint64_t)i * DSM_PAGE_SIZE);
	cluster_barrier(x->c);
	if (rank == 1) {
		struct results *r = x->res;

		shuffle(order, x->pages, 0, 99);
		r->n = 0;
		for (unsigned i = 0; i < x->pages && r->n < MAX_SAMPLES; i++) {
			volatile uint8_t *p = base + order[i] * DSM_PAGE_SIZE;
			double t0 = now_us();

			if (x->what == W_READ || x->what == W_READ_SHARED || x->what == W_READBACK)
				(void)*p;
			else if (x->what == W_RMW)
				*p = *p + 1;
			else
				*p = 1;
			r->us[r->n++] = now_us() - t0;
		}
		dsm_get_stats(d, &r->stats);
	}
	cluster_barrier(x->c);
	if (rank == 0 && (x->what == W_RMW || x->what == W_READBACK)) {
		/* The price of exclusive-on-read: the home reads its pages back. */
		double t0 = now_us();
		for (unsigned i = 0; i < x->pages; i++)
			(void)*(volatile uint8_t *)(base + (uint64_t)i * DSM_PAGE_SIZE);
		x->res[1].value = (now_us() - t0) / x->pages;
	}
	cluster_barrier(x->c);
	free(order);
	return 0;
}

/*
 * Ranks 0 and 1 each increment their own counter, both on one page homed on
 * rank 0 (false sharing), for FS_MS; rank 1 reports the time per increment
 * of the two together.  The anti ping-pong hold lets a node do more
 * increments per transfer of the page.
 */
#define FS_MS 300

static int dsm_fs_node(struct dsm *d, unsigned rank, void *arg)
{
	struct dsm_ctx *x = arg;
	volatile uint64_t *ctr = (uint64_t *)dsm_addr(d);
	uint64_t n = 0;
	double end;

	cluster_barrier(x->c);
	end = now_us() + FS_MS * 1000.0;
	while (now_us() < end) {
		for (unsigned i = 0; i < 16; i++)
			ctr[rank * 64] = ctr[rank * 64] + 1;
		n += 16;
	}
	cluster_barrier(x->c);
	if (rank == 1) {
		uint64_t total = ctr[0] + ctr[64];

		x->res->value = FS_MS * 1e6 / total;
		dsm_get_stats(d, &x->res->stats);
		if (ctr[64] != n)
			return 1;
	}
	cluster_barrier(x->c);
	return 0;
}

/* Rank 0 writes seq_bytes it homes; rank 1 reads them in order. */
static int dsm_seq_node(struct dsm *d, unsigned rank, void *arg)
{
	struct dsm_ctx *x = arg;
	uint64_t *base = dsm_addr(d), n = x->o->seq_bytes / 8, sum = 0;

	if (rank == 0)
		for (uint64_t i = 0; i < n; i += DSM_PAGE_SIZE / 8)
			base[i] = i;
	cluster_barrier(x->c);
	if (rank == 1) {
		double t0 = now_us();

		for (uint64_t i = 0; i < n; i++)
			sum += ((volatile uint64_t *)base)[i];
		x->res->value = x->o->seq_bytes / (now_us() - t0); /* bytes/us = MB/s */
		dsm_get_stats(d, &x->res->stats);
		if (sum != (n / 512) * (n / 512 - 1) / 2 * 512) {
			fprintf(stderr, "sequential read: wrong data (sum %llu)\n",
				(unsigned long long)sum);
			return 1;
		}
	}
	cluster_barrier(x->c);
	return 0;
}

static void run_dsm(struct opts *o, int what, unsigned nodes, bool excl, unsigned prefetch,
		    unsigned hold_us, struct results *res)
{
	struct dsm_ctx x = { .o = o, .what = what, .res = res };
	uint64_t size;
	struct cluster c;
	uint64_t *homes = calloc(nodes + 1, sizeof(*homes));

	x.pages = o->pages;
	size = what == W_SEQ ? o->seq_bytes :
	       what == W_FALSE_SHARING ? DSM_PAGE_SIZE : (uint64_t)x.pages * DSM_PAGE_SIZE;
	/* Everything measured is homed on rank 0; each other rank homes one page. */
	homes[0] = 0;
	for (unsigned i = 1; i <= nodes; i++)
		homes[i] = size / DSM_PAGE_SIZE + i - 1;
	size += (uint64_t)(nodes - 1) * DSM_PAGE_SIZE;
	cluster_init(&c, nodes, size);
	c.home_start = homes;
	c.tmpl.nr_handlers = o->handlers;
	c.tmpl.handler_poll_us = o->poll_us;
	c.tmpl.recv_poll_us = o->poll_us;
	c.tmpl.excl_read = excl;
	c.tmpl.prefetch_pages = prefetch;
	c.tmpl.hold_us = hold_us;
	c.timeout_s = 300;
	x.c = &c;
	if (cluster_run(&c, what == W_SEQ ? dsm_seq_node :
			    what == W_FALSE_SHARING ? dsm_fs_node : dsm_lat_node, &x)) {
		cluster_report(&c);
		die("a DSM measurement failed");
	}
	free(homes);
}

struct yardstick {
	const char *name;
	int what;          /* W_*, or -1 for the floor */
	unsigned nodes;
	bool excl, mbps, extra;
	unsigned prefetch; /* non-zero: --prefetch's window */
	unsigned hold_us;
	const char *unit;  /* NULL: us (or MB/s when mbps) */
};

/* The floor first: everything is a ratio to it. */
#define Y(...) { __VA_ARGS__ }
static const struct yardstick yardsticks[] = {
	Y(.name = "floor", .what = -1, .nodes = 2),
	Y(.name = "remote read fault", .what = W_READ, .nodes = 2),
	Y(.name = "remote write fault", .what = W_WRITE, .nodes = 2),
	Y(.name = "write fault, 1 sharer to invalidate", .what = W_WRITE_1, .nodes = 3),
	Y(.name = "write fault, 3 sharers to invalidate", .what = W_WRITE_3, .nodes = 5),
	Y(.name = "sequential read of 64 MiB homed on another node", .what = W_SEQ, .nodes = 2,
	  .mbps = true, .prefetch = 1),
	Y(.name = "  sequential read, prefetch off", .what = W_SEQ, .nodes = 2, .mbps = true,
	  .extra = true),
	Y(.name = "  upgrade (the writer holds a copy), 3 sharers to invalidate",
	  .what = W_UPGRADE_3, .nodes = 5, .extra = true),
	Y(.name = "  remote read fault, the home's copy already read-only",
	  .what = W_READ_SHARED, .nodes = 3, .extra = true),
	Y(.name = "  read-modify-write of a remote page, exclusive-on-read off", .what = W_RMW,
	  .nodes = 2, .extra = true),
	Y(.name = "  read-modify-write of a remote page, exclusive-on-read on", .what = W_RMW,
	  .nodes = 2, .excl = true, .extra = true),
	Y(.name = "  remote read, exclusive-on-read off", .what = W_READBACK, .nodes = 2,
	  .extra = true),
	Y(.name = "  remote read, exclusive-on-read on", .what = W_READBACK, .nodes = 2,
	  .excl = true, .extra = true),
	Y(.name = "  false sharing, two writers on one page, no hold", .what = W_FALSE_SHARING,
	  .nodes = 2, .extra = true, .unit = "ns/increment"),
	Y(.name = "  false sharing, two writers on one page, hold 100 us",
	  .what = W_FALSE_SHARING, .nodes = 2, .extra = true, .hold_us = 100,
	  .unit = "ns/increment"),
};
#define NR_YARDSTICKS (sizeof(yardsticks) / sizeof(yardsticks[0]))

static void line(const char *name, double v, const char *unit, double ratio)
{
	printf("%s: %.1f %s (ratio %.2f to floor)\n", name, v, unit, ratio);
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-dsm [--pages N] [--seq SIZE] [--poll US] [--handlers N] [--prefetch N]\n"
		"                 [--rounds N] [--extras] [--verbose]\n"
		"  --pages N     faults timed per latency yardstick (default 2000, at most %u)\n"
		"  --seq SIZE    bytes read sequentially (default 64M)\n"
		"  --poll US     busy-poll budget of fault handlers and receive threads (default 0)\n"
		"  --handlers N  fault handler threads per node (default 2)\n"
		"  --prefetch N  read-ahead window for the sequential read, pages (default 64)\n"
		"  --rounds N    measure everything N times, interleaved; report the best median\n"
		"                of each (default 3): the machine is shared and noisy\n"
		"  --extras      also measure policies: exclusive-on-read, prefetch off\n"
		"  --verbose     print every round's numbers on stderr\n"
		"Prints one line per yardstick: name: value unit (ratio R to floor).\n"
		"Needs munged (make bench-dsm starts one) and userfaultfd (root).\n", MAX_SAMPLES);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pages", 1, NULL, 'p' }, { "seq", 1, NULL, 's' }, { "poll", 1, NULL, 'P' },
		{ "handlers", 1, NULL, 'h' }, { "prefetch", 1, NULL, 'f' },
		{ "extras", 0, NULL, 'x' }, { "rounds", 1, NULL, 'r' }, { "verbose", 0, NULL, 'v' },
		{ "help", 0, NULL, 'H' }, { 0 },
	};
	struct opts o = { .pages = 2000, .seq_bytes = 64ull << 20, .handlers = 2, .prefetch = 64,
			  .rounds = 3 };
	double best[NR_YARDSTICKS], best_readback[NR_YARDSTICKS] = { 0 }, floor;
	uint64_t moves[NR_YARDSTICKS] = { 0 };
	struct results *r;
	char err[PARSE_ERR_MAX];
	int ch;

	log_init(argv[0]);
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (parse_uint(optarg, 10, MAX_SAMPLES, &o.pages, err))
				die("--pages: %s", err);
			break;
		case 's':
			if (parse_size(optarg, &o.seq_bytes, err) || o.seq_bytes % DSM_PAGE_SIZE ||
			    !o.seq_bytes)
				die("--seq: '%s' must be a non-zero multiple of 4 KiB", optarg);
			break;
		case 'P':
			if (parse_uint(optarg, 0, 1000000, &o.poll_us, err))
				die("--poll: %s", err);
			break;
		case 'h':
			if (parse_uint(optarg, 1, 64, &o.handlers, err))
				die("--handlers: %s", err);
			break;
		case 'f':
			if (parse_uint(optarg, 0, 64, &o.prefetch, err))
				die("--prefetch: %s", err);
			break;
		case 'x':
			o.extras = true;
			break;
		case 'r':
			if (parse_uint(optarg, 1, 20, &o.rounds, err))
				die("--rounds: %s", err);
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'H':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	r = shared_alloc(2 * sizeof(*r));
	printf("bench-dsm: %u faults per yardstick, busy-poll %u us, %u handler threads; "
	       "best of %u rounds' medians\n", o.pages, o.poll_us, o.handlers, o.rounds);
	for (unsigned round = 0; round < o.rounds; round++) {
		/* Interleaved, so that a noisy moment hits the floor as much as the rest. */
		for (unsigned i = 0; i < NR_YARDSTICKS; i++) {
			const struct yardstick *y = &yardsticks[i];
			double v;

			if (y->extra && !o.extras)
				continue;
			if (y->what < 0) {
				v = measure_floor(&o, round == o.rounds - 1);
			} else {
				run_dsm(&o, y->what, y->nodes, y->excl, y->prefetch ? o.prefetch : 0,
					y->hold_us, r);
				v = y->what == W_SEQ || y->what == W_FALSE_SHARING ? r->value : median(r);
				moves[i] = r->stats.pages_received;
				if (y->what == W_RMW || y->what == W_READBACK)
					best_readback[i] = round ? fmin(best_readback[i], r[1].value)
								 : r[1].value;
			}
			if (!round)
				best[i] = v;
			else
				best[i] = y->mbps ? fmax(best[i], v) : fmin(best[i], v);
			if (o.verbose)
				fprintf(stderr, "round %u: %s: %.1f (rank 1: %llu read faults, "
					"%llu joined, %llu pages prefetched, %llu messages)\n", round,
					y->name, v, (unsigned long long)r->stats.faults[DSM_FAULT_READ],
					(unsigned long long)r->stats.faults_joined,
					(unsigned long long)r->stats.prefetched,
					(unsigned long long)r->stats.msgs_sent);
		}
	}
	floor = best[0];
	for (unsigned i = 0; i < NR_YARDSTICKS; i++) {
		const struct yardstick *y = &yardsticks[i];

		if (y->extra && !o.extras)
			continue;
		if (y->mbps)
			line(y->name, best[i], "MB/s", best[i] / (DSM_PAGE_SIZE / floor));
		else if (y->unit)
			line(y->name, best[i], y->unit, best[i] / 1000 / floor);
		else
			line(y->name, best[i], "us", best[i] / floor);
		if (y->what == W_RMW || y->what == W_READBACK)
			line("    then the home reads the page back", best_readback[i], "us",
			     best_readback[i] / floor);
		if (y->what == W_FALSE_SHARING)
			printf("    (last round: the page came to rank 1 %llu times in %u ms)\n",
			       (unsigned long long)moves[i], FS_MS);
	}
	munmap(r, 2 * sizeof(*r));
	return 0;
}
