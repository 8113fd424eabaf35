/*
 * bench-dsm: libgvdsm's yardsticks against this machine's floor, sampled
 * in pairs.
 *
 *   floor: a local userfaultfd fault resolved by a handler thread with
 *   UFFDIO_COPY, the handler first doing one TCP loopback round trip of a
 *   16-byte request and a 4 KiB reply with another process;
 *
 *   remote read fault, remote write fault, write faults with 1 and 3 other
 *   copies to invalidate (and, with --extras, the policies' variants):
 *   each sample is one floor fault and one DSM fault, back to back, taken
 *   by the same thread, the order alternating; the figure is the median of
 *   the per-pair ratios with its interquartile range, beside both absolute
 *   medians.  This machine's wake-ups change speed from one moment to the
 *   next (3 us or 60 us); a pair sees the same moment on both sides.
 *
 *   sequential read of 64 MiB homed on another node, paired in each round
 *   with a TCP stream of the same size between the same processes;
 *
 *   read faults on disjoint remote pages by 1, 2, 4 and 8 threads at once,
 *   pages per second: where faults of one node share a queue or a lock,
 *   this stops growing before the cores run out.
 *
 * Every DSM process is a real process with its own mesh (munge, TCP); the
 * floor's server is a thread of the DSM's rank 0, its client rank 1's
 * timing thread.  Run it through `make bench-dsm`, which also starts munged
 * when none runs.
 */
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "bench/dsm/fabric-floor.h"
#include "common/parse.h"
#include "common/wire.h"
#include "tests/dsm/cluster.h"

#define MAX_SAMPLES 8192
#define REQ_BYTES 16

struct results {
	unsigned n;
	double us[MAX_SAMPLES];       /* DSM */
	double floor_us[MAX_SAMPLES]; /* the floor fault paired with us[i] */
	double value, floor_value;    /* throughput runs: DSM and TCP stream, MB/s */
	struct dsm_stats stats;
};

struct opts {
	unsigned pages;      /* faults per latency yardstick */
	uint64_t seq_bytes;
	unsigned poll_us;    /* busy-poll budget of handlers and receive threads */
	unsigned handlers;
	unsigned prefetch;
	unsigned rounds;
	unsigned hold_progress_us;
	const char *transport; /* the DSM's, and the floor's round trip's (NULL: tcp) */
	bool integrity;        /* --integrity: the DSM's frames sealed (not the floor's) */
	bool extras, verbose, breakdown;
	int perf_fd;           /* --perf-control's FIFO, or -1 */
};

/* perf_control: profile only the DSM's sequential read (perf record --control). */
static void perf_control(const struct opts *o, const char *cmd)
{
	size_t len = strlen(cmd);

	if (o->perf_fd >= 0 && write(o->perf_fd, cmd, len) != (ssize_t)len)
		pr_warn("--perf-control: writing '%.*s': %s", (int)len - 1, cmd, strerror(errno));
}

static const char *fabric_provider(const struct opts *o)
{
	return o->transport[6] == ':' ? o->transport + 7 : NULL;
}

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

/* Busy-wait up to poll_us for fd to be readable (--poll); false if it did not become so. */
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

/* ---- the floor ---- */

/*
 * The floor's server, a thread of rank 0: each 16-byte request names how
 * many bytes to answer (a page, or the whole stream), until the client
 * closes.
 */
struct floor_server {
	int fd;
	unsigned poll_us;
	pthread_t th;
};

static void *floor_serve(void *arg)
{
	struct floor_server *s = arg;
	size_t chunk = 1 << 16;
	unsigned char *buf = calloc(1, chunk);

	if (!buf)
		die("floor server: out of memory");
	memset(buf, 0x5a, chunk);
	for (;;) {
		uint64_t req[REQ_BYTES / 8], left;

		if (s->poll_us)
			spin_ready(s->fd, s->poll_us, true);
		if (wire_read_full(s->fd, req, sizeof(req)))
			break; /* the client is done */
		for (left = req[0]; left;) {
			size_t n = left < chunk ? left : chunk;

			if (wire_write_full(s->fd, buf, n))
				die("floor server: send failed");
			left -= n;
		}
	}
	free(buf);
	return NULL;
}

/*
 * Rank 1's side: a userfaultfd region whose handler does the round trip.
 * Split: the handler only sends the request, and a second thread, asleep in
 * recv, reads the reply and resolves the fault, as the DSM's receive
 * threads do; the same work, one more thread hand-off.
 */
struct floor_client {
	int uffd, fd;
	unsigned poll_us;
	bool split;
	struct fab_floor *ff; /* the round trip through the fabric, or NULL: TCP (fd) */
	atomic_bool network, stop;
	_Atomic uint64_t split_addr; /* split: the page the reply is for */
	uint8_t *region;
	size_t size;
	pthread_t th, rx;
	unsigned char page[DSM_PAGE_SIZE] __attribute__((aligned(4096)));
	unsigned char rx_page[DSM_PAGE_SIZE] __attribute__((aligned(4096)));
};

/* Ask the server for bytes and read them into buf (len bytes, reused). */
static void floor_fetch(int fd, unsigned poll_us, uint64_t bytes, void *buf, size_t len)
{
	uint64_t req[REQ_BYTES / 8] = { bytes };

	if (wire_write_full(fd, req, sizeof(req)))
		die("floor: send failed");
	if (poll_us)
		spin_ready(fd, poll_us, true);
	while (bytes) {
		size_t n = bytes < len ? bytes : len;

		if (wire_read_full(fd, buf, n))
			die("floor: receive failed");
		bytes -= n;
	}
}

/* One request of 16 bytes and its page, over TCP or through the fabric. */
static void floor_round_trip(struct floor_client *f)
{
	uint64_t req[REQ_BYTES / 8] = { DSM_PAGE_SIZE };

	if (!f->ff) {
		floor_fetch(f->fd, f->poll_us, DSM_PAGE_SIZE, f->page, DSM_PAGE_SIZE);
		return;
	}
	fab_floor_send(f->ff, req, sizeof(req));
	fab_floor_recv(f->ff, f->page, DSM_PAGE_SIZE);
}

/* The floor's handler: one event, one round trip (unless measuring parts), one UFFDIO_COPY. */
static void *floor_handler(void *arg)
{
	struct floor_client *f = arg;
	struct pollfd p = { .fd = f->uffd, .events = POLLIN };

	while (!atomic_load(&f->stop)) {
		struct uffd_msg m;
		struct uffdio_copy c;

		if (read(f->uffd, &m, sizeof(m)) != sizeof(m)) {
			if (!f->poll_us || !spin_ready(f->uffd, f->poll_us, false))
				poll(&p, 1, 100);
			continue;
		}
		if (atomic_load(&f->network) && f->split) {
			uint64_t req[REQ_BYTES / 8] = { DSM_PAGE_SIZE };

			atomic_store(&f->split_addr, m.arg.pagefault.address & ~(uint64_t)4095);
			if (wire_write_full(f->fd, req, sizeof(req)))
				die("floor: send failed");
			continue;
		}
		if (atomic_load(&f->network))
			floor_round_trip(f);
		c = (struct uffdio_copy){ .dst = m.arg.pagefault.address & ~(uint64_t)4095,
					  .src = (uintptr_t)f->page, .len = DSM_PAGE_SIZE };
		if (ioctl(f->uffd, UFFDIO_COPY, &c))
			die_perror("floor: UFFDIO_COPY");
	}
	return NULL;
}

/* Split: the second thread, reading the replies until floor_close shuts the socket's reading. */
static void *floor_receiver(void *arg)
{
	struct floor_client *f = arg;

	while (!wire_read_full(f->fd, f->rx_page, DSM_PAGE_SIZE)) {
		struct uffdio_copy c = { .dst = atomic_load(&f->split_addr),
					 .src = (uintptr_t)f->rx_page, .len = DSM_PAGE_SIZE };

		if (ioctl(f->uffd, UFFDIO_COPY, &c))
			die_perror("floor: UFFDIO_COPY");
	}
	return NULL;
}

static void floor_open(struct floor_client *f, int fd, unsigned poll_us, unsigned pages,
		       bool split)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;

	f->fd = fd;
	f->poll_us = poll_us;
	f->split = split;
	f->size = (size_t)pages * DSM_PAGE_SIZE;
	f->region = mmap(NULL, f->size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	reg = (struct uffdio_register){ .range = { (uintptr_t)f->region, f->size },
					.mode = UFFDIO_REGISTER_MODE_MISSING };
	f->uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (f->region == MAP_FAILED || f->uffd < 0 || ioctl(f->uffd, UFFDIO_API, &api) ||
	    ioctl(f->uffd, UFFDIO_REGISTER, &reg))
		die_perror("floor: userfaultfd set-up");
	madvise(f->region, f->size, MADV_NOHUGEPAGE);
	atomic_store(&f->network, true);
	atomic_store(&f->stop, false);
	if (pthread_create(&f->th, NULL, floor_handler, f))
		die("floor: cannot start its handler");
	if (split && pthread_create(&f->rx, NULL, floor_receiver, f))
		die("floor: cannot start its receiver");
}

/* One floor fault: the first touch of page pg of the region, in µs. */
static double floor_touch(struct floor_client *f, uint64_t pg)
{
	double t0 = now_us();

	(void)*(volatile uint8_t *)(f->region + pg * DSM_PAGE_SIZE);
	return now_us() - t0;
}

static void floor_close(struct floor_client *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->th, NULL);
	if (f->split) {
		shutdown(f->fd, SHUT_RD);
		pthread_join(f->rx, NULL);
	}
	close(f->uffd);
	munmap(f->region, f->size);
}

/* ---- DSM yardsticks ---- */

enum { W_READ, W_READ_SHARED, W_WRITE, W_WRITE_1, W_WRITE_3, W_UPGRADE_3, W_RMW, W_READBACK,
	W_SEQ, W_FALSE_SHARING, W_PARALLEL, W_KINDS };

struct dsm_ctx {
	struct opts *o;
	struct cluster *c;
	int what;
	unsigned pages;
	int floor_fd[2];     /* a connected TCP pair: rank 0's end, rank 1's */
	struct results *res; /* written by rank 1; res[1].value by rank 0 */
	struct results *parts; /* NULL, or [2]: userfaultfd fault alone, round trip alone */
	struct dsm_trace *trace; /* NULL, or the breakdown's, shared by every rank */
	unsigned threads;        /* W_PARALLEL: rank 1's reading threads */
	bool split_floor;        /* the floor's reply read by a second thread */
	struct fab_floor *ff;    /* ranks 0 and 1, --transport fabric: the floor's fabric end */
	pthread_t ff_server;     /* rank 0: answers its requests */
};

/* The floor's TCP connection over loopback, made before the ranks fork. */
static void floor_connect(struct cluster *c, void *arg)
{
	struct dsm_ctx *x = arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	(void)c;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		die_perror("floor: listen");
	x->floor_fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (x->floor_fd[1] < 0 || connect(x->floor_fd[1], (struct sockaddr *)&a, sizeof(a)))
		die_perror("floor: connect");
	x->floor_fd[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (x->floor_fd[0] < 0)
		die_perror("floor: accept");
	close(l);
	for (int i = 0; i < 2; i++)
		setsockopt(x->floor_fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Rank 0's fabric end: a page for each request, until one asks for none. */
static void *floor_fab_serve(void *arg)
{
	struct dsm_ctx *x = arg;
	static unsigned char page[DSM_PAGE_SIZE];

	memset(page, 0x5a, sizeof(page));
	for (;;) {
		uint64_t req[REQ_BYTES / 8];

		fab_floor_recv(x->ff, req, sizeof(req));
		if (!req[0])
			break;
		fab_floor_send(x->ff, page, DSM_PAGE_SIZE);
	}
	return NULL;
}

/* Rank 0 serves the floor during fn's timed part; rank 1 keeps its end. */
static void floor_begin(struct dsm_ctx *x, unsigned rank, struct floor_server *s)
{
	close(x->floor_fd[rank == 0]);
	/* Through the fabric: the endpoints' addresses over the TCP pair, before it serves. */
	if (x->o->transport && !strncmp(x->o->transport, "fabric", 6) && rank < 2) {
		x->ff = fab_floor_open(x->floor_fd[rank], fabric_provider(x->o));
		if (rank == 0 && pthread_create(&x->ff_server, NULL, floor_fab_serve, x))
			die("floor: cannot start its fabric server");
	}
	if (rank == 0) {
		*s = (struct floor_server){ .fd = x->floor_fd[0], .poll_us = x->o->poll_us };
		if (pthread_create(&s->th, NULL, floor_serve, s))
			die("floor: cannot start its server");
	} else if (rank > 1) {
		close(x->floor_fd[1]);
	}
}

/*
 * Rank 1 ends the connection (the server then ends; a shutdown, as the
 * parent keeps a copy of each end until every rank is done); rank 0 waits
 * for that.
 */
static void floor_end(struct dsm_ctx *x, unsigned rank, struct floor_server *s)
{
	if (x->ff && rank == 1) {
		uint64_t stop[REQ_BYTES / 8] = { 0 };

		fab_floor_send(x->ff, stop, sizeof(stop));
	}
	if (x->ff && rank == 0)
		pthread_join(x->ff_server, NULL);
	fab_floor_close(x->ff);
	x->ff = NULL;
	if (rank == 1) {
		shutdown(x->floor_fd[1], SHUT_RDWR);
		close(x->floor_fd[1]);
	}
	if (rank == 0) {
		pthread_join(s->th, NULL);
		close(s->fd);
	}
}

/* The floor's parts, unpaired, for its description: a fault alone, a round trip alone. */
static void floor_parts(struct dsm_ctx *x, struct floor_client *f, unsigned pages)
{
	struct results *fault = &x->parts[0], *rtt = &x->parts[1];

	atomic_store(&f->network, false);
	fault->n = rtt->n = 0;
	for (unsigned i = 0; i < pages && fault->n < MAX_SAMPLES; i++)
		fault->us[fault->n++] = floor_touch(f, pages + i);
	atomic_store(&f->network, true);
	for (unsigned i = 0; i < pages && rtt->n < MAX_SAMPLES; i++) {
		double t0 = now_us();

		floor_round_trip(f);
		rtt->us[rtt->n++] = now_us() - t0;
	}
}

/*
 * Pages [0, pages) are homed on rank 0, which writes them first (owner,
 * writable); `sharers` other ranks (2, 3...) then read them; rank 1 times
 * one access per page, in a random order (nothing for prefetch to see),
 * each paired with a floor fault.
 */
static int dsm_lat_node(struct dsm *d, unsigned rank, void *arg)
{
	struct dsm_ctx *x = arg;
	uint8_t *base = dsm_addr(d);
	unsigned sharers = x->what == W_WRITE_1 || x->what == W_READ_SHARED ? 1 :
			   x->what == W_WRITE_3 || x->what == W_UPGRADE_3 ? 3 : 0;
	uint64_t *order = malloc(x->pages * sizeof(*order));
	struct floor_server server;
	struct floor_client *f = NULL;

	floor_begin(x, rank, &server);
	if (rank == 0)
		for (unsigned i = 0; i < x->pages; i++)
			base[(uint64_t)i * DSM_PAGE_SIZE] = (uint8_t)i;
	if (rank == 1) {
		/* Twice the pages: the second half for the parts. */
		f = aligned_alloc(4096, sizeof(*f));
		if (!f)
			die("out of memory");
		f->ff = x->ff;
		floor_open(f, x->floor_fd[1], x->o->poll_us, 2 * x->pages, x->split_floor);
	}
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
			double t0, t;

			/* The floor first in even pairs, second in odd ones. */
			if (!(i & 1))
				r->floor_us[r->n] = floor_touch(f, order[i]);
			if (x->trace)
				dsm_trace_add(x->trace, DSM_TP_USER, rank, 0, 0, order[i]);
			t0 = now_us();
			if (x->what == W_READ || x->what == W_READ_SHARED || x->what == W_READBACK)
				(void)*p;
			else if (x->what == W_RMW)
				*p = *p + 1;
			else
				*p = 1;
			t = now_us() - t0;
			if (x->trace)
				dsm_trace_add(x->trace, DSM_TP_USER, rank, 0, 1, order[i]);
			if (i & 1)
				r->floor_us[r->n] = floor_touch(f, order[i]);
			r->us[r->n++] = t;
		}
		dsm_get_stats(d, &r->stats);
		if (x->parts && !x->split_floor)
			floor_parts(x, f, x->pages);
		floor_close(f);
		free(f);
	}
	floor_end(x, rank, &server);
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
	struct floor_server server;
	uint64_t n = 0;
	double end;

	floor_begin(x, rank, &server);
	floor_end(x, rank, &server);
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

/*
 * Throughput: rank 1's `threads` threads read disjoint pages homed on rank
 * 0 at once, each its own share in a random order; pages per second.
 */
struct par_arg {
	struct dsm_ctx *x;
	uint8_t *base;
	unsigned first, n;
};

static void *par_reader(void *arg)
{
	struct par_arg *a = arg;
	uint64_t *order = malloc(a->n * sizeof(*order));

	if (!order)
		die("out of memory");
	shuffle(order, a->n, a->first, a->first + 1);
	for (unsigned i = 0; i < a->n; i++)
		(void)*(volatile uint8_t *)(a->base + order[i] * DSM_PAGE_SIZE);
	free(order);
	return NULL;
}

static int dsm_par_node(struct dsm *d, unsigned rank, void *arg)
{
	struct dsm_ctx *x = arg;
	uint8_t *base = dsm_addr(d);
	struct floor_server server;

	floor_begin(x, rank, &server);
	floor_end(x, rank, &server);
	if (rank == 0)
		for (unsigned i = 0; i < x->pages; i++)
			base[(uint64_t)i * DSM_PAGE_SIZE] = (uint8_t)i;
	cluster_barrier(x->c);
	if (rank == 1) {
		unsigned t = x->threads, share = x->pages / t;
		pthread_t th[64];
		struct par_arg a[64];
		double t0 = now_us();

		for (unsigned i = 0; i < t; i++) {
			a[i] = (struct par_arg){ .x = x, .base = base, .first = i * share, .n = share };
			if (pthread_create(&th[i], NULL, par_reader, &a[i]))
				die("cannot start a reader thread");
		}
		for (unsigned i = 0; i < t; i++)
			pthread_join(th[i], NULL);
		x->res->value = share * t / ((now_us() - t0) / 1e6);
		dsm_get_stats(d, &x->res->stats);
	}
	cluster_barrier(x->c);
	return 0;
}

/* A TCP stream of bytes from rank 0 to rank 1 over the floor's connection, MB/s. */
static double tcp_stream(struct dsm_ctx *x, uint64_t bytes)
{
	size_t len = 1 << 16;
	void *buf = malloc(len);
	double t0 = now_us(), mbps;

	if (!buf)
		die("out of memory");
	floor_fetch(x->floor_fd[1], x->o->poll_us, bytes, buf, len);
	mbps = bytes / (now_us() - t0);
	free(buf);
	return mbps;
}

/*
 * Rank 0 writes seq_bytes it homes; rank 1 reads them in order, and
 * streams as many bytes over TCP between the same processes just before
 * or just after (by round).
 */
static int dsm_seq_node(struct dsm *d, unsigned rank, void *arg)
{
	struct dsm_ctx *x = arg;
	uint64_t *base = dsm_addr(d), n = x->o->seq_bytes / 8, sum = 0;
	struct floor_server server;

	floor_begin(x, rank, &server);
	if (rank == 0)
		for (uint64_t i = 0; i < n; i += DSM_PAGE_SIZE / 8)
			base[i] = i;
	cluster_barrier(x->c);
	if (rank == 1) {
		double t0;

		if (!x->res->floor_value)
			x->res->floor_value = tcp_stream(x, x->o->seq_bytes);
		perf_control(x->o, "enable\n");
		t0 = now_us();
		for (uint64_t i = 0; i < n; i++)
			sum += ((volatile uint64_t *)base)[i];
		perf_control(x->o, "disable\n");
		x->res->value = x->o->seq_bytes / (now_us() - t0); /* bytes/us = MB/s */
		if (x->res->floor_value < 0)
			x->res->floor_value = tcp_stream(x, x->o->seq_bytes);
		dsm_get_stats(d, &x->res->stats);
		if (sum != (n / 512) * (n / 512 - 1) / 2 * 512) {
			fprintf(stderr, "sequential read: wrong data (sum %llu)\n",
				(unsigned long long)sum);
			return 1;
		}
	}
	floor_end(x, rank, &server);
	cluster_barrier(x->c);
	return 0;
}

/* seq_first_tcp: for W_SEQ, stream over TCP before the DSM read (else after). */
static void run_dsm(struct opts *o, int what, unsigned nodes, bool excl, unsigned prefetch,
		    unsigned hold_us, bool seq_first_tcp, struct results *res, struct results *parts,
		    struct dsm_trace *trace, unsigned threads, bool split_floor)
{
	struct dsm_ctx x = { .o = o, .what = what, .res = res, .parts = parts, .trace = trace,
			     .threads = threads, .split_floor = split_floor };
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
	c.tmpl.trace = trace;
	c.tmpl.hold_progress_us = o->hold_progress_us;
	c.tmpl.transport = o->transport;
	c.integrity = o->integrity;
	c.timeout_s = 300;
	c.before_fork = floor_connect;
	c.arg = &x;
	res->floor_value = seq_first_tcp ? 0 : -1;
	x.c = &c;
	if (cluster_run(&c, what == W_SEQ ? dsm_seq_node :
			    what == W_FALSE_SHARING ? dsm_fs_node :
			    what == W_PARALLEL ? dsm_par_node : dsm_lat_node, &x)) {
		cluster_report(&c);
		die("a DSM measurement failed");
	}
	close(x.floor_fd[0]);
	close(x.floor_fd[1]);
	free(homes);
}

struct yardstick {
	const char *name;
	int what;          /* W_* */
	unsigned nodes;
	bool excl, mbps, extra;
	bool split_floor;  /* against a floor whose reply a second thread reads */
	unsigned prefetch; /* non-zero: --prefetch's window */
	unsigned hold_us;
	unsigned threads;  /* W_PARALLEL */
	const char *unit;  /* NULL: us (or MB/s when mbps) */
};

#define Y(...) { __VA_ARGS__ }
static const struct yardstick yardsticks[] = {
	Y(.name = "remote read fault", .what = W_READ, .nodes = 2),
	Y(.name = "remote read fault, the floor's reply read by a second thread", .what = W_READ,
	  .nodes = 2, .split_floor = true),
	Y(.name = "remote read fault, 4 nodes", .what = W_READ, .nodes = 4),
	Y(.name = "remote read fault, 8 nodes", .what = W_READ, .nodes = 8),
	Y(.name = "remote write fault", .what = W_WRITE, .nodes = 2),
	Y(.name = "write fault, 1 sharer to invalidate", .what = W_WRITE_1, .nodes = 3),
	Y(.name = "write fault, 3 sharers to invalidate", .what = W_WRITE_3, .nodes = 5),
	Y(.name = "sequential read of pages homed on another node", .what = W_SEQ, .nodes = 2,
	  .mbps = true, .prefetch = 1),
	Y(.name = "read faults on disjoint remote pages, 1 thread", .what = W_PARALLEL, .nodes = 2,
	  .threads = 1, .unit = "pages/s"),
	Y(.name = "read faults on disjoint remote pages, 2 threads", .what = W_PARALLEL, .nodes = 2,
	  .threads = 2, .unit = "pages/s"),
	Y(.name = "read faults on disjoint remote pages, 4 threads", .what = W_PARALLEL, .nodes = 2,
	  .threads = 4, .unit = "pages/s"),
	Y(.name = "read faults on disjoint remote pages, 8 threads", .what = W_PARALLEL, .nodes = 2,
	  .threads = 8, .unit = "pages/s"),
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

/*
 * Not measured in this run: an extra without --extras; the floor read by a
 * second thread over the fabric (its ends are one thread's each).
 */
static bool yardstick_skipped(const struct yardstick *y, const struct opts *o)
{
	return (y->extra && !o->extras) || (y->split_floor && o->transport);
}

/* Samples of one yardstick, pooled over the rounds. */
struct pool {
	unsigned n;
	double *dsm, *floor, *ratio;
	double readback[20];  /* per round: the home reads its pages back (us per page) */
	uint64_t moves;       /* false sharing, last round: transfers of the page */
};

static void pool_alloc(struct pool *p, size_t n)
{
	p->dsm = calloc(n, sizeof(double));
	p->floor = calloc(n, sizeof(double));
	p->ratio = calloc(n, sizeof(double));
	if (!p->dsm || !p->floor || !p->ratio)
		die("out of memory");
}

static void pool_free(struct pool *p)
{
	free(p->dsm);
	free(p->floor);
	free(p->ratio);
}

static void pool_add(struct pool *p, double dsm, double floor)
{
	p->dsm[p->n] = dsm;
	p->floor[p->n] = floor;
	p->ratio[p->n] = floor > 0 ? dsm / floor : NAN;
	p->n++;
}

/* The q-quantile of v[0..n) (sorts v). */
static double quantile(double *v, unsigned n, double q)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(v[0]), cmp_double);
	return v[(unsigned)(q * (n - 1) + 0.5)];
}

/* Spread that makes a ratio untrustworthy: its IQR wider than half its median. */
#define NOISY_IQR 0.5

static bool report_ratio(const char *what, double *ratio, unsigned n)
{
	double med = quantile(ratio, n, 0.5), lo = quantile(ratio, n, 0.25),
	       hi = quantile(ratio, n, 0.75);
	bool noisy = hi - lo > NOISY_IQR * med;

	printf("ratio %.2f %s (IQR %.2f-%.2f, %u pairs)%s\n", med, what, lo, hi, n,
	       noisy ? "  NOISY: do not trust" : "");
	return noisy;
}

/*
 * ---- installing a received window: what the requester's last step costs ----
 * The DSM installs each received page with UFFDIO_COPY into private guest
 * memory: a page allocated, charged, copied and mapped each time (the
 * sequential read's profile, docs/performance.md).  Against it, the
 * alternative that needs no allocation: guest memory shared, the page
 * already written through a second mapping (where a receive could put
 * it), and only mapped with UFFDIO_CONTINUE.
 */
#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM (1 << 10)
#endif
#define INSTALL_BYTES (16ul << 20) /* per sample */
#define INSTALL_PAIRS 4            /* per round */

/* offered: if not NULL, what the kernel could have given (UFFDIO_API answers it). */
static int install_uffd(uint64_t features, uint64_t *offered)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0)
		die("userfaultfd: %s (bench-dsm needs root)", strerror(errno));
	if (ioctl(fd, UFFDIO_API, &api))
		die("UFFDIO_API: %s", strerror(errno));
	if (offered)
		*offered = api.features;
	return fd;
}

static bool install_continue_offered(void)
{
	uint64_t offered;

	close(install_uffd(0, &offered));
	return offered & UFFD_FEATURE_MINOR_SHMEM;
}

static void install_register(int fd, void *addr, uint64_t mode)
{
	struct uffdio_register reg = { .range = { (uintptr_t)addr, INSTALL_BYTES }, .mode = mode };

	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER: %s", strerror(errno));
}

/* µs per page: UFFDIO_COPY of window-page runs into fresh private memory. */
static double install_copy(const void *src, unsigned window)
{
	int fd = install_uffd(0, NULL);
	size_t run = (size_t)window * DSM_PAGE_SIZE;
	char *mem = mmap(NULL, INSTALL_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double t0;

	if (mem == MAP_FAILED)
		die("mmap of %lu MiB: %s", INSTALL_BYTES >> 20, strerror(errno));
	install_register(fd, mem, UFFDIO_REGISTER_MODE_MISSING);
	t0 = now_us();
	for (size_t off = 0; off + run <= INSTALL_BYTES; off += run) {
		struct uffdio_copy c = { .dst = (uintptr_t)mem + off, .src = (uintptr_t)src,
					 .len = run };

		if (ioctl(fd, UFFDIO_COPY, &c))
			die("UFFDIO_COPY: %s", strerror(errno));
	}
	t0 = now_us() - t0;
	munmap(mem, INSTALL_BYTES);
	close(fd);
	return t0 / (INSTALL_BYTES / run * window);
}

/* µs per page: UFFDIO_CONTINUE of window-page runs of shared memory already written. */
static double install_continue(const void *src, unsigned window)
{
	int fd = install_uffd(UFFD_FEATURE_MINOR_SHMEM, NULL);
	size_t run = (size_t)window * DSM_PAGE_SIZE;
	int mfd = memfd_create("bench-dsm-install", MFD_CLOEXEC);
	char *mem, *alias;
	double t0;

	if (mfd < 0 || ftruncate(mfd, INSTALL_BYTES))
		die("memfd of %lu MiB: %s", INSTALL_BYTES >> 20, strerror(errno));
	mem = mmap(NULL, INSTALL_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	alias = mmap(NULL, INSTALL_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mem == MAP_FAILED || alias == MAP_FAILED)
		die("mmap of a memfd: %s", strerror(errno));
	install_register(fd, mem, UFFDIO_REGISTER_MODE_MINOR);
	for (size_t off = 0; off + run <= INSTALL_BYTES; off += run)
		memcpy(alias + off, src, run);
	t0 = now_us();
	for (size_t off = 0; off + run <= INSTALL_BYTES; off += run) {
		struct uffdio_continue c = { .range = { (uintptr_t)mem + off, run } };

		if (ioctl(fd, UFFDIO_CONTINUE, &c))
			die("UFFDIO_CONTINUE: %s", strerror(errno));
	}
	t0 = now_us() - t0;
	munmap(alias, INSTALL_BYTES);
	munmap(mem, INSTALL_BYTES);
	close(mfd);
	close(fd);
	return t0 / (INSTALL_BYTES / run * window);
}

/* One round's pairs, the order alternating. */
static void install_round(struct pool *p, unsigned window, unsigned round)
{
	size_t run = (size_t)window * DSM_PAGE_SIZE;
	void *src;

	src = mmap(NULL, run, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(src, 0x5a, run);
	for (unsigned i = 0; i < INSTALL_PAIRS; i++) {
		double copy, cont;

		if ((round + i) & 1) {
			cont = install_continue(src, window);
			copy = install_copy(src, window);
		} else {
			copy = install_copy(src, window);
			cont = install_continue(src, window);
		}
		pool_add(p, cont, copy);
	}
	munmap(src, run);
}

static void machine_state(const char *when)
{
	double load[3] = { NAN, NAN, NAN };
	char model[128] = "?", line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "model name : %127[^\n]", model) == 1)
			break;
	if (f)
		fclose(f);
	getloadavg(load, 3);
	printf("machine %s: %ld CPUs (%s), load average %.2f %.2f %.2f\n", when,
	       sysconf(_SC_NPROCESSORS_ONLN), model, load[0], load[1], load[2]);
}

/* ---- the latency breakdown (--breakdown) ---- */

/* An event of the path: what happened where; its offsets from the access, one per sample. */
struct bd_key {
	uint8_t point, rank, peer;
	uint16_t type;
	unsigned n;
	double *us;
};

static int bd_cmp_ev(const void *a, const void *b)
{
	const struct dsm_trace_event *x = a, *y = b;

	if (x->pg != y->pg)
		return x->pg < y->pg ? -1 : 1;
	return x->ns < y->ns ? -1 : x->ns > y->ns;
}

static void bd_label(const struct bd_key *k, char *buf, size_t len)
{
	switch (k->point) {
	case DSM_TP_FAULT:
		snprintf(buf, len, "rank %u: a handler reads the %s fault", k->rank,
			 k->type ? "write" : "read");
		break;
	case DSM_TP_SEND:
		snprintf(buf, len, "rank %u: sends %s to rank %u", k->rank, dsm_msg_name(k->type),
			 k->peer);
		break;
	case DSM_TP_SENT:
		snprintf(buf, len, "rank %u: ... its send of %s returns", k->rank,
			 dsm_msg_name(k->type));
		break;
	case DSM_TP_RECV:
		snprintf(buf, len, "rank %u: has received %s from rank %u", k->rank,
			 dsm_msg_name(k->type), k->peer);
		break;
	case DSM_TP_MAPPED:
		snprintf(buf, len, "rank %u: the page is mapped (after %s)", k->rank,
			 dsm_msg_name(k->type));
		break;
	default:
		snprintf(buf, len, "rank %u: the access %s", k->rank, k->type ? "returns" : "starts");
	}
}

static int bd_cmp_key(const void *a, const void *b)
{
	const struct bd_key *x = a, *y = b;
	double mx = quantile(x->us, x->n, 0.5), my = quantile(y->us, y->n, 0.5);

	return mx < my ? -1 : mx > my;
}

/*
 * For each access of rank 1 (between its USER events), the first time each
 * kind of event happened on that page, from the access's start; printed in
 * the order of their medians.
 */
static void breakdown_print(const char *name, struct dsm_trace *t, unsigned pages)
{
	unsigned n = atomic_load(&t->n) < t->cap ? atomic_load(&t->n) : t->cap, nkeys = 0, samples = 0;
	struct bd_key keys[64];
	struct dsm_trace_event *ev = t->ev;

	qsort(ev, n, sizeof(*ev), bd_cmp_ev);
	for (unsigned i = 0; i < n;) {
		unsigned j = i, b = n, e = n;
		uint64_t seen = 0;

		while (j < n && ev[j].pg == ev[i].pg)
			j++;
		for (unsigned k = i; k < j; k++) {
			if (ev[k].point == DSM_TP_USER && ev[k].rank == 1 && !ev[k].type && b == n)
				b = k;
			if (ev[k].point == DSM_TP_USER && ev[k].rank == 1 && ev[k].type && b < n)
				e = k;
		}
		if (b < n && e < n) {
			samples++;
			for (unsigned k = b; k <= e; k++) {
				unsigned m;

				for (m = 0; m < nkeys; m++)
					if (keys[m].point == ev[k].point && keys[m].rank == ev[k].rank &&
					    keys[m].peer == ev[k].peer && keys[m].type == ev[k].type)
						break;
				if (m == nkeys) {
					if (nkeys == 64)
						continue;
					keys[nkeys++] = (struct bd_key){
						.point = ev[k].point, .rank = ev[k].rank,
						.peer = ev[k].peer, .type = ev[k].type,
						.us = calloc(pages, sizeof(double)) };
					if (!keys[m].us)
						die("out of memory");
				}
				if (m < 64 && !(seen & 1ull << m) && keys[m].n < pages) {
					seen |= 1ull << m;
					keys[m].us[keys[m].n++] = (ev[k].ns - ev[b].ns) / 1e3;
				}
			}
		}
		i = j;
	}
	qsort(keys, nkeys, sizeof(keys[0]), bd_cmp_key);
	printf("breakdown of a %s: median time from the access's start, %u accesses "
	       "(events seen in fewer than half of them left out)\n", name, samples);
	for (unsigned m = 0; m < nkeys; m++) {
		char label[128];

		if (keys[m].n * 2 >= samples) {
			bd_label(&keys[m], label, sizeof(label));
			printf("  %7.1f us  %s\n", quantile(keys[m].us, keys[m].n, 0.5), label);
		}
		free(keys[m].us);
	}
	if (atomic_load(&t->n) > t->cap)
		printf("  (the trace filled up: %u events of %u kept)\n", t->cap, atomic_load(&t->n));
}

static void breakdown(struct opts *o, struct results *r)
{
	static const struct { const char *name; int what; unsigned nodes; } runs[] = {
		{ "remote read fault", W_READ, 2 },
		{ "write fault with 1 sharer to invalidate", W_WRITE_1, 3 },
	};

	for (unsigned i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		uint32_t cap = o->pages * 40;
		size_t size = sizeof(struct dsm_trace) + (size_t)cap * sizeof(struct dsm_trace_event);
		struct dsm_trace *t = shared_alloc(size);

		t->cap = cap;
		run_dsm(o, runs[i].what, runs[i].nodes, false, 0, 0, false, r, NULL, t, 0, false);
		breakdown_print(runs[i].name, t, o->pages);
		munmap(t, size);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-dsm [--pages N] [--seq SIZE] [--poll US] [--handlers N] [--prefetch N]\n"
		"                 [--rounds N] [--extras] [--verbose] [--breakdown]\n"
		"                 [--progress-hold US] [--transport tcp|fabric[:PROVIDER]]\n"
		"                 [--integrity] [--perf-control FIFO]\n"
		"  --pages N     pairs per latency yardstick and round (default 2000, at most %u)\n"
		"  --seq SIZE    bytes read sequentially (default 64M)\n"
		"  --poll US     busy-poll budget of fault handlers and receive threads (default 0)\n"
		"  --handlers N  fault handler threads per node (default 2)\n"
		"  --prefetch N  read-ahead window for the sequential read, pages (default 64)\n"
		"  --rounds N    measure everything N times, interleaved, and pool the pairs\n"
		"                (default 3, at most 20)\n"
		"  --extras      also measure policies: exclusive-on-read, prefetch off, holds\n"
		"  --verbose     print every round's numbers on stderr\n"
		"  --progress-hold US  the DSM's hold_progress_us (default 20000; 0: off)\n"
		"  --transport T what carries the DSM's messages (dsm_config.transport); with\n"
		"                fabric, the floor's round trip goes through the same provider\n"
		"                (its sequential read is still paired with a TCP stream)\n"
		"  --integrity   seal every DSM frame (gvm's --integrity); the floor's are not\n"
		"  --breakdown   also trace one remote read and one write with a sharer\n"
		"                along their path (fault, sends, receipts, mapping) and print\n"
		"                the median time of each step from the access's start\n"
		"  --perf-control FIFO  write 'enable' and 'disable' to FIFO around each\n"
		"                sequential read by the DSM, for a profile of only that:\n"
		"                mkfifo F; perf record -a -D -1 --control fifo:F -- bench-dsm\n"
		"                --perf-control F ...\n"
		"Each latency sample is a pair: a floor fault (a userfaultfd fault whose handler\n"
		"does a TCP round trip of 16 B / 4 KiB) and a DSM fault, back to back, by the\n"
		"same thread.  Prints, per yardstick, both medians and the median of the\n"
		"per-pair ratios with its interquartile range, NOISY when that range is wider\n"
		"than half the median.  The sequential read is paired with a TCP stream.\n"
		"Last, installing a received window: UFFDIO_COPY into private memory (what the\n"
		"DSM does) against UFFDIO_CONTINUE of shared memory already written, in pairs.\n"
		"Needs munged (make bench-dsm starts one) and userfaultfd (root).\n", MAX_SAMPLES);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pages", 1, NULL, 'p' }, { "seq", 1, NULL, 's' }, { "poll", 1, NULL, 'P' },
		{ "handlers", 1, NULL, 'h' }, { "prefetch", 1, NULL, 'f' },
		{ "extras", 0, NULL, 'x' }, { "rounds", 1, NULL, 'r' }, { "verbose", 0, NULL, 'v' },
		{ "breakdown", 0, NULL, 'b' }, { "progress-hold", 1, NULL, 'g' },
		{ "transport", 1, NULL, 't' }, { "integrity", 0, NULL, 'I' },
		{ "perf-control", 1, NULL, 'C' },
		{ "help", 0, NULL, 'H' }, { 0 },
	};
	struct opts o = { .pages = 2000, .seq_bytes = 64ull << 20, .handlers = 2, .prefetch = 64,
			  .rounds = 3, .hold_progress_us = 20000, .perf_fd = -1 };
	struct pool pools[NR_YARDSTICKS] = { 0 }, install = { 0 };
	bool install_ok = install_continue_offered();
	unsigned window;
	struct results *r, *parts;
	char err[PARSE_ERR_MAX];
	unsigned noisy = 0;
	double par1 = NAN, read2 = NAN;
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
		case 'b':
			o.breakdown = true;
			break;
		case 'g':
			if (parse_uint(optarg, 0, 10000000, &o.hold_progress_us, err))
				die("--progress-hold: %s", err);
			break;
		case 't':
			if (parse_transport(optarg, err))
				die("--transport: %s", err);
			o.transport = strcmp(optarg, "tcp") ? optarg : NULL;
			break;
		case 'I':
			o.integrity = true;
			break;
		case 'C':
			/* Non-blocking: a FIFO that perf has not opened is an error, not a hang. */
			if (o.perf_fd >= 0)
				close(o.perf_fd);
			o.perf_fd = open(optarg, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
			if (o.perf_fd < 0)
				die("--perf-control: %s: %s (a FIFO that perf record --control "
				    "fifo:%s reads)", optarg, strerror(errno), optarg);
			/* A perf that went away is a warning, not the end of the run. */
			signal(SIGPIPE, SIG_IGN);
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
	if (o.integrity && o.transport)
		die("--integrity seals the TCP transport's frames: not with --transport %s",
		    o.transport);
	r = shared_alloc(2 * sizeof(*r));
	parts = shared_alloc(2 * sizeof(*parts));
	for (unsigned i = 0; i < NR_YARDSTICKS; i++)
		pool_alloc(&pools[i], (size_t)o.rounds *
				      (yardsticks[i].mbps || yardsticks[i].unit ? 1 : o.pages));
	pool_alloc(&install, (size_t)o.rounds * INSTALL_PAIRS);
	window = o.prefetch ? o.prefetch : 64;
	printf("bench-dsm: %u pairs per latency yardstick and round, %u rounds pooled, busy-poll "
	       "%u us, %u handler threads, progress hold %u us, sequential reads of %llu MiB, "
	       "transport %s%s\n", o.pages, o.rounds, o.poll_us, o.handlers, o.hold_progress_us,
	       (unsigned long long)(o.seq_bytes >> 20), o.transport ? o.transport : "tcp",
	       o.integrity ? ", every frame sealed (--integrity)" : "");
	machine_state("before");
	for (unsigned round = 0; round < o.rounds; round++) {
		for (unsigned i = 0; i < NR_YARDSTICKS; i++) {
			const struct yardstick *y = &yardsticks[i];
			struct pool *p = &pools[i];

			if (yardstick_skipped(y, &o))
				continue;
			run_dsm(&o, y->what, y->nodes, y->excl, y->prefetch ? o.prefetch : 0,
				y->hold_us, round & 1, r, i == 0 ? parts : NULL, NULL,
				y->threads, y->split_floor);
			if (y->mbps) {
				pool_add(p, r->value, r->floor_value);
			} else if (y->unit) {
				pool_add(p, r->value, NAN);
				p->moves = r->stats.pages_received;
			} else {
				for (unsigned k = 0; k < r->n; k++)
					pool_add(p, r->us[k], r->floor_us[k]);
				if (y->what == W_RMW || y->what == W_READBACK)
					p->readback[round] = r[1].value;
			}
			if (y->mbps || y->unit)
				r->n = 1;
			if (o.verbose)
				fprintf(stderr, "round %u: %s: %u samples (rank 1: %llu read faults, "
					"%llu joined, %llu pages prefetched, %llu messages)\n", round,
					y->name, r->n, (unsigned long long)r->stats.faults[DSM_FAULT_READ],
					(unsigned long long)r->stats.faults_joined,
					(unsigned long long)r->stats.prefetched,
					(unsigned long long)r->stats.msgs_sent);
		}
		if (install_ok)
			install_round(&install, window, round);
	}
	printf("floor: a userfaultfd fault whose handler does a %s round trip of 16 B / 4 KiB; "
	       "its parts (last round, medians): fault %.1f us, round trip %.1f us\n",
	       o.transport ? "fabric" : "TCP",
	       quantile(parts[0].us, parts[0].n, 0.5), quantile(parts[1].us, parts[1].n, 0.5));
	for (unsigned i = 0; i < NR_YARDSTICKS; i++) {
		const struct yardstick *y = &yardsticks[i];
		struct pool *p = &pools[i];

		if (yardstick_skipped(y, &o))
			continue;
		printf("%s: ", y->name);
		if (y->mbps) {
			printf("%.0f MB/s, TCP stream %.0f MB/s; ", quantile(p->dsm, p->n, 0.5),
			       quantile(p->floor, p->n, 0.5));
			noisy += report_ratio("to the TCP stream", p->ratio, p->n);
		} else if (y->what == W_PARALLEL) {
			double v = quantile(p->dsm, p->n, 0.5);

			if (y->threads == 1)
				par1 = v;
			printf("%.0f %s (median of %u rounds; %.2f x 1 thread's)\n", v, y->unit, p->n,
			       v / par1);
		} else if (y->unit) {
			printf("%.1f %s (median of %u rounds; last round: the page came to rank 1 "
			       "%llu times in %u ms)\n", quantile(p->dsm, p->n, 0.5), y->unit, p->n,
			       (unsigned long long)p->moves, FS_MS);
		} else {
			printf("%.1f us, floor %.1f us; ", quantile(p->dsm, p->n, 0.5),
			       quantile(p->floor, p->n, 0.5));
			noisy += report_ratio("to the floor", p->ratio, p->n);
			/* Each normalised by its own paired floor: the nodes' cost, not the moment's. */
			if (y->what == W_READ && y->nodes == 2 && !y->split_floor)
				read2 = quantile(p->ratio, p->n, 0.5);
			else if (y->what == W_READ && y->nodes > 2)
				printf("    against 2 nodes: %.2f x (the medians of the ratios to the "
				       "floor)\n", quantile(p->ratio, p->n, 0.5) / read2);
			if (y->what == W_RMW || y->what == W_READBACK)
				printf("    then the home reads the page back: %.1f us (median of "
				       "%u rounds)\n", quantile(p->readback, o.rounds, 0.5), o.rounds);
		}
		fflush(stdout);
	}
	printf("installing a received window of %u pages: ", window);
	if (install_ok) {
		printf("UFFDIO_CONTINUE of shared memory already written %.2f us/page, "
		       "UFFDIO_COPY into private memory (the DSM's) %.2f us/page; ",
		       quantile(install.dsm, install.n, 0.5), quantile(install.floor, install.n, 0.5));
		noisy += report_ratio("to UFFDIO_COPY", install.ratio, install.n);
	} else {
		printf("this kernel does not offer UFFDIO_CONTINUE of shared memory "
		       "(UFFD_FEATURE_MINOR_SHMEM, Linux 5.14)\n");
	}
	if (o.breakdown)
		breakdown(&o, r);
	machine_state("after");
	if (noisy)
		printf("%u yardstick%s too noisy to trust: run again on a quieter machine\n", noisy,
		       noisy == 1 ? "" : "s");
	for (unsigned i = 0; i < NR_YARDSTICKS; i++)
		pool_free(&pools[i]);
	pool_free(&install);
	munmap(r, 2 * sizeof(*r));
	munmap(parts, 2 * sizeof(*parts));
	return 0;
}
