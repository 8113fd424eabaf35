/*
 * Targeted tests of libgvdsm races and corner cases, with real processes and
 * sockets.  They reach into dsm/internal.h (this is a white-box test of the
 * component) only to put a page into a state that would otherwise take
 * too long to reach, or to take a lock at the worst moment:
 * - a page held (split-lock pin, or hold_us) whose clock stamp is more than
 *   2^31 µs (35.8 minutes) old must be given away at once, not after up to
 *   another 35.8 minutes (the µs clock is 32 bits);
 * - an internal error raised under a page lock while the hold thread
 *   re-checks a held request for that page must still reach on_fatal;
 * - a node that stops because of another (ABORT) and closes its
 *   connections: a peer whose sends to it fail before it has read the
 *   ABORT must still name the culprit, not the messenger;
 * - an ioctl refused while the home prefetches a run of pages: every page
 *   lock of the run is released (a lock left taken hangs dsm_destroy);
 * - dsm_destroy while a thread waits for a page that will never come: the
 *   thread must never go on with a page the DSM did not give it (zeros);
 * - dsm_stop on one node while the others still work on its pages: it
 *   keeps serving them until every node has stopped;
 * - a prefetched run whose install is delayed while another node writes
 *   those pages: the writes wait for it, and the reader sees them after;
 * - the home writing its own page while a remote read of it waits on a
 *   delayed owner.
 */
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/ioctl.h>

#include "dsm/internal.h"
#include "tests/dsm/cluster.h"
#include "tests/lib/check.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- a held page with an old clock stamp ---- */

/* 4 pages: 0-1 homed on rank 0, 2-3 on rank 1; rank 0 owns all four, writable. */
#define OLD_PAGES 4

struct old_stamp {
	struct cluster c;
	unsigned hold_us;
	bool flags; /* pin flags: pages 0 and 2 were pinned, 1 and 3 pinned then released */
};

static int old_stamp_node(struct dsm *d, unsigned rank, void *arg)
{
	struct old_stamp *o = arg;
	volatile uint8_t *base = dsm_addr(d);
	int bad = 0;

	if (rank == 0) {
		for (unsigned pg = 0; pg < OLD_PAGES; pg++)
			base[pg * DSM_PAGE_SIZE] = 1 + pg;
		/* As if the pages had last changed hands 2^31 µs + 1 ms ago. */
		for (unsigned pg = 0; pg < OLD_PAGES; pg++) {
			struct dsm_page *lp = &d->pages[pg];

			pg_lock(lp);
			if (lp->state != PG_MODIFIED)
				bad = 1;
			if (o->flags)
				lp->xflags |= pg & 1 ? PX_AFTER_PIN : PX_PIN;
			lp->t_us = dsm_now_us() - 0x80000000u - 1000;
			pg_unlock(lp);
		}
		if (bad)
			fprintf(stderr, "rank 0: a page is not writable here\n");
	}
	cluster_barrier(&o->c);
	if (rank == 1)
		for (unsigned pg = 0; pg < OLD_PAGES; pg++) {
			double t0 = now_ms(), ms;
			unsigned v = base[pg * DSM_PAGE_SIZE];

			ms = now_ms() - t0;
			if (v != 1 + pg || ms > 2000) {
				fprintf(stderr, "rank 1: page %u (homed on rank %u): %u after %.0f ms\n",
					pg, dsm_home_of(d, pg * DSM_PAGE_SIZE), v, ms);
				bad = 1;
			}
		}
	cluster_barrier(&o->c);
	return bad;
}

static void run_old_stamp(unsigned hold_us, bool flags)
{
	struct old_stamp o = { .hold_us = hold_us, .flags = flags };

	cluster_init(&o.c, 2, OLD_PAGES * DSM_PAGE_SIZE);
	o.c.tmpl.hold_us = hold_us;
	/* Without the fix, the reads wait up to 35.8 minutes. */
	o.c.timeout_s = 20;
	if (cluster_run(&o.c, old_stamp_node, &o))
		cluster_report(&o.c);
	CHECK_EQ(o.c.status[0], 0);
	CHECK_EQ(o.c.status[1], 0);
}

/* Split-lock pins (hold_us 0, the default): a pin or its tail, long ago. */
static void test_old_pin(void)
{
	run_old_stamp(0, true);
}

/* The anti ping-pong hold: write access came long ago. */
static void test_old_hold(void)
{
	run_old_stamp(100, false);
}

/* ---- an internal error under a page lock while the hold thread re-checks ---- */

#define FATAL_TEXT "test: an internal error under a page lock"

static void fatal_expected(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "on_fatal: %s\n", msg);
	_exit(strstr(msg, FATAL_TEXT) ? 0 : 3);
}

static int fatal_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	volatile uint8_t *base = dsm_addr(d);
	struct dsm_stats st;

	if (rank == 0)
		base[0] = 1; /* writable here, held for hold_us from now */
	cluster_barrier(c);
	if (rank == 1) {
		(void)base[0]; /* held at rank 0, which fails meanwhile: on_fatal exits */
		fprintf(stderr, "rank 1: the read was served, the DSM did not fail\n");
		return 1;
	}
	/* Rank 0: wait until rank 1's request is set aside for the hold thread. */
	for (int i = 0; i < 2000; i++) {
		dsm_get_stats(d, &st);
		if (st.holds)
			break;
		usleep(1000);
	}
	if (!st.holds) {
		fprintf(stderr, "rank 0: the request was not held\n");
		return 1;
	}
	/*
	 * Hold the page's lock long enough for the hold thread to wake (every
	 * millisecond) and re-check the held request, then fail, as an ioctl
	 * refused under that lock would.
	 */
	pg_lock(&d->pages[0]);
	usleep(20000);
	dsm_fail(d, d->rank, FATAL_TEXT);
	pg_unlock(&d->pages[0]);
	sleep(10);
	fprintf(stderr, "rank 0: on_fatal was not called\n");
	return 1;
}

static void test_fatal_under_page_lock(void)
{
	struct cluster c;

	cluster_init(&c, 2, 2 * DSM_PAGE_SIZE);
	c.tmpl.hold_us = 5000000;
	c.tmpl.on_fatal = fatal_expected;
	c.timeout_s = 20;
	if (cluster_run(&c, fatal_node, &c))
		cluster_report(&c);
	CHECK_EQ(c.status[0], 0);
	CHECK_EQ(c.status[1], 0);
}

/* ---- a failed send does not hide the culprit that the peer names ---- */

/*
 * 3 nodes, 8 pages, 0-1 homed on rank 0, 2-5 on rank 1, 6-7 on rank 2.
 * Rank 2 is a bare mesh that sends nothing.  Rank 1 stops, naming rank 2
 * (as if rank 2 had sent it garbage), while rank 0's receive threads from
 * rank 1 are stuck on page locks; rank 0 then faults on pages homed on
 * rank 1, and its sends fail.  Rank 0 must name rank 2 once it reads
 * rank 1's ABORT, not report rank 1 as lost.
 */
#define CULPRIT_TEXT "test: rank 2 misbehaved"

static struct cluster *culprit_cluster;

static void culprit_fatal(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "on_fatal: %s\n", msg);
	atomic_fetch_add(&culprit_cluster->sh->ready, 1);
	_exit(strstr(msg, CULPRIT_TEXT) ? 0 : 3);
}

static void *culprit_reader(void *arg)
{
	(void)*(volatile uint8_t *)arg;
	return NULL;
}

static bool has_waiters(struct dsm *d, uint64_t pg)
{
	return atomic_load(&d->pages[pg].lock) == 2;
}

static int culprit_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	uint8_t *base = dsm_addr(d);
	pthread_t th;

	if (rank == 1) {
		cluster_barrier(c);
		/* Messages whose handling at rank 0 needs the locks it holds. */
		dsm_send(d, 0, DSM_CH_DEMAND, DSM_MSG_READ, 0, 0, 0, NULL, 0);
		dsm_send(d, 0, DSM_CH_BULK, DSM_MSG_PREFETCH, 1, 1, 0, NULL, 0);
		cluster_barrier(c);
		dsm_fail(d, 2, CULPRIT_TEXT);
		sleep(10); /* on_fatal exits */
		return 1;
	}
	/* Rank 0. */
	pg_lock(&d->pages[0]);
	pg_lock(&d->pages[1]);
	cluster_barrier(c);
	for (int i = 0; i < 5000 && !(has_waiters(d, 0) && has_waiters(d, 1)); i++)
		usleep(1000);
	if (!has_waiters(d, 0) || !has_waiters(d, 1)) {
		fprintf(stderr, "rank 0: the receive threads did not wait for the page locks\n");
		return 1;
	}
	cluster_barrier(c);
	/* Rank 1 has stopped; fault on its pages, a little apart: sends fail. */
	for (int i = 0; i < 5000 && !atomic_load(&c->sh->ready); i++)
		usleep(1000);
	usleep(50000);
	for (unsigned pg = 2; pg < 6; pg++) {
		pthread_create(&th, NULL, culprit_reader, base + pg * DSM_PAGE_SIZE);
		pthread_detach(th);
		usleep(50000);
	}
	pg_unlock(&d->pages[1]);
	pg_unlock(&d->pages[0]);
	sleep(10); /* on_fatal exits */
	fprintf(stderr, "rank 0: the DSM did not stop\n");
	return 1;
}

/* Rank 2: a bare mesh, silent; done when rank 0 closes. */
static int culprit_raw(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	char buf[256];

	(void)rank;
	(void)arg;
	cluster_barrier(c);
	cluster_barrier(c);
	for (;;) {
		ssize_t r = read(mesh_fd(m, 0, 0), buf, sizeof(buf));

		if (r == 0 || (r < 0 && errno != EINTR))
			return 0;
	}
}

static void test_culprit_named(void)
{
	struct cluster c;
	char name[64];

	cluster_init(&c, 3, 8 * DSM_PAGE_SIZE);
	c.home_start = (const uint64_t[]){ 0, 2, 6, 8 };
	c.tmpl.on_fatal = culprit_fatal;
	c.tmpl.prefetch_pages = 0;
	c.raw_mask = 1u << 2;
	c.raw = culprit_raw;
	c.timeout_s = 30;
	culprit_cluster = &c;
	cluster_run(&c, culprit_node, &c);
	CHECK_EQ(c.status[0], 0);
	CHECK_EQ(c.status[1], 0);
	CHECK_EQ(c.status[2], 0);
	snprintf(name, sizeof(name), "rank 1 (127.0.0.1:%u) lost", c.peers[1].port);
	CHECK(strstr(c.err[0], name) == NULL);
	if (c.status[0] || c.status[1] || c.status[2] || strstr(c.err[0], name))
		cluster_report(&c);
}

/* ---- a write-protect refused in the middle of a prefetch ---- */

static void fatal_noted(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "on_fatal: %s\n", msg);
	/* The peer of the failing node: its reader may wait forever, stop here. */
	if (strstr(msg, ") stopped: "))
		_exit(0);
}

static int wait_error(struct dsm *d, unsigned rank)
{
	for (int i = 0; i < 5000 && !dsm_error(d); i++)
		usleep(1000);
	if (!dsm_error(d)) {
		fprintf(stderr, "rank %u: the DSM did not stop\n", rank);
		return 1;
	}
	return 0;
}

/*
 * 64 pages, 0-31 homed on rank 0, which writes them all and unregisters
 * pages 5, 13, 21 and 29 from the userfaultfd: protecting them fails.
 * Rank 1 reads pages 1-4, 9-12, 17-20, 25-28 in order: a stream, whose
 * read-ahead window (4 pages after two faults in a row) takes in one of
 * them, unless the thread that saw the first fault of a group was too slow
 * to notice the stream (then the next group tries again).
 */
static int prefetch_fail_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	volatile uint8_t *base = dsm_addr(d);
	int bad = 0;

	if (rank == 0) {
		for (unsigned pg = 0; pg < 32; pg++)
			base[pg * DSM_PAGE_SIZE] = pg;
		for (unsigned pg = 5; pg < 32; pg += 8) {
			struct uffdio_range r = { .start = (uintptr_t)base + pg * DSM_PAGE_SIZE,
						  .len = DSM_PAGE_SIZE };

			if (ioctl(d->uffd, UFFDIO_UNREGISTER, &r)) {
				perror("UFFDIO_UNREGISTER");
				return 1;
			}
		}
	}
	cluster_barrier(c);
	if (rank == 1) {
		/* on_fatal exits once rank 0 has stopped. */
		for (unsigned g = 0; g < 32; g += 8) {
			for (unsigned pg = g + 1; pg < g + 5; pg++)
				if (base[pg * DSM_PAGE_SIZE] != pg)
					bad = 1;
			usleep(100000);
		}
		fprintf(stderr, "rank 1: %s, the DSM did not stop\n",
			bad ? "wrong data" : "no read-ahead");
		return 1;
	}
	if (wait_error(d, rank))
		return 1;
	usleep(100000);
	for (unsigned pg = 0; pg < 32; pg++)
		if (atomic_load(&d->pages[pg].lock)) {
			fprintf(stderr, "rank 0: page %u is still locked\n", pg);
			bad = 1;
		}
	if (!strstr(dsm_error(d), "UFFDIO_WRITEPROTECT of page")) {
		fprintf(stderr, "rank 0: unexpected error: %s\n", dsm_error(d));
		bad = 1;
	}
	return bad ? 1 : CLUSTER_FAILED_OK;
}

static void test_prefetch_protect_fails(void)
{
	struct cluster c;

	cluster_init(&c, 2, 64 * DSM_PAGE_SIZE);
	c.tmpl.on_fatal = fatal_noted;
	c.timeout_s = 20;
	if (cluster_run(&c, prefetch_fail_node, &c))
		cluster_report(&c);
	CHECK_EQ(c.status[0], 0);
	CHECK_EQ(c.status[1], 0);
}

/* ---- destroy while a fault waits ---- */

static __thread sigjmp_buf destroy_jmp;
static __thread volatile int destroy_faulted;

static void destroy_segv(int sig)
{
	(void)sig;
	destroy_faulted = 1;
	siglongjmp(destroy_jmp, 1);
}

struct destroy_reader {
	volatile uint64_t *p;
	uint64_t v;
	int read, faulted;
};

static void *destroy_reader(void *arg)
{
	struct destroy_reader *r = arg;

	if (sigsetjmp(destroy_jmp, 1) == 0) {
		r->v = *r->p;
		r->read = 1;
	}
	r->faulted = destroy_faulted;
	return NULL;
}

/* Rank 1: waits for page 0, homed on rank 0, which never answers; then destroys. */
static int destroy_node(struct dsm *d, unsigned rank, void *arg)
{
	struct destroy_reader r = { .p = dsm_addr(d) };
	struct sigaction sa = { .sa_handler = destroy_segv };
	struct dsm_stats st;
	pthread_t th;

	(void)rank;
	(void)arg;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	pthread_create(&th, NULL, destroy_reader, &r);
	do {
		usleep(1000);
		dsm_get_stats(d, &st);
	} while (!st.msgs_sent);
	usleep(20000);
	dsm_destroy(d);
	pthread_join(th, NULL);
	if (r.read) {
		fprintf(stderr, "rank 1: read %llu from a page the DSM never gave\n",
			(unsigned long long)r.v);
		_exit(1);
	}
	_exit(r.faulted ? 0 : 2);
}

static int destroy_raw(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	char buf[256];

	(void)c;
	(void)rank;
	(void)arg;
	for (;;) {
		ssize_t r = read(mesh_fd(m, 1, 0), buf, sizeof(buf));

		if (r == 0 || (r < 0 && errno != EINTR))
			return 0;
	}
}

static void test_destroy_while_waiting(void)
{
	for (int i = 0; i < 10; i++) {
		struct cluster c;

		cluster_init(&c, 2, 2 * DSM_PAGE_SIZE);
		c.tmpl.on_fatal = fatal_noted;
		c.raw_mask = 1u << 0;
		c.raw = destroy_raw;
		c.timeout_s = 20;
		if (cluster_run(&c, destroy_node, &c))
			cluster_report(&c);
		CHECK_EQ(c.status[0], 0);
		CHECK_EQ(c.status[1], 0);
		if (c.status[0] || c.status[1])
			break;
	}
}

/* ---- one node stops while the others still use its pages ---- */

#define EARLY_PAGES 24 /* 8 per node */
#define EARLY_ROUNDS 200

static int early_stop_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	uint64_t *base = dsm_addr(d);

	if (rank == 0) {
		/* Owns every page writable, then stops at once. */
		for (unsigned pg = 0; pg < EARLY_PAGES; pg++)
			base[pg * (DSM_PAGE_SIZE / 8)] = 1000;
		cluster_barrier(c);
		return 0;
	}
	cluster_barrier(c);
	/* Ranks 1 and 2: increments and reads on every page, rank 0's included. */
	for (unsigned r = 0; r < EARLY_ROUNDS; r++)
		for (unsigned pg = 0; pg < EARLY_PAGES; pg++) {
			uint64_t *p = &base[pg * (DSM_PAGE_SIZE / 8)];

			if ((r + pg + rank) % 3)
				__atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
			else if (__atomic_load_n(p, __ATOMIC_SEQ_CST) < 1000)
				return 1;
		}
	/* Both done (rank 0 takes no part): check the sums. */
	atomic_fetch_add(&c->sh->ready, 1);
	while (atomic_load(&c->sh->ready) < 2)
		usleep(200);
	for (unsigned pg = 0; pg < EARLY_PAGES; pg++) {
		uint64_t want = 1000;

		for (unsigned rk = 1; rk <= 2; rk++)
			for (unsigned r = 0; r < EARLY_ROUNDS; r++)
				want += (r + pg + rk) % 3 != 0;
		if (base[pg * (DSM_PAGE_SIZE / 8)] != want) {
			fprintf(stderr, "rank %u: page %u counts %llu, not %llu\n", rank, pg,
				(unsigned long long)base[pg * (DSM_PAGE_SIZE / 8)],
				(unsigned long long)want);
			return 1;
		}
	}
	return 0;
}

static void test_stop_while_others_work(void)
{
	struct cluster c;

	cluster_init(&c, 3, EARLY_PAGES * DSM_PAGE_SIZE);
	c.tmpl.prefetch_pages = 8;
	c.timeout_s = 60;
	if (cluster_run(&c, early_stop_node, &c))
		cluster_report(&c);
	for (unsigned i = 0; i < c.n; i++)
		CHECK_EQ(c.status[i], 0);
}

/* ---- a prefetched run installed late, while another node writes it ---- */

/*
 * 3 nodes, 48 pages, 0-15 homed on rank 0, which writes them and holds the
 * lock of its page 5 meanwhile: a read-ahead run that takes in page 5
 * cannot be sent yet.  Rank 1 reads two pages in a row (0-1, or 2-3 if the
 * handlers noticed the stream too late), so it asks for the next four on
 * the bulk channel; once it has marked them expected, it takes the first
 * one's lock and lets rank 0 go on: the run comes and cannot be installed.
 * Rank 2 then writes the four pages: the home must keep them until rank 1
 * has installed the run (an invalidation overtaking the data would leave
 * rank 1 a stale copy, or a protocol error).  Rank 1 lets go after 200 ms
 * and must then read rank 2's values.
 *
 * sh->ready: 1 rank 1 holds its lock; 100 + first: the run is here, rank 2
 * may write; 1000: rank 2 has written.
 */
static int bulk_late_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	volatile uint64_t *base = dsm_addr(d);
	const unsigned words = DSM_PAGE_SIZE / 8;
	unsigned first = 0;

	if (rank == 0) {
		for (unsigned pg = 0; pg < 16; pg++)
			base[pg * words] = 100 + pg;
		pg_lock(&d->pages[5]);
	}
	cluster_barrier(c);
	if (rank == 0) {
		for (int i = 0; i < 10000 && !atomic_load(&c->sh->ready); i++)
			usleep(1000);
		pg_unlock(&d->pages[5]);
	}
	if (rank == 1) {
		for (unsigned g = 0; g <= 2 && !first; g += 2) {
			struct dsm_page *lp = &d->pages[g + 2];

			if (base[g * words] != 100 + g || base[(g + 1) * words] != 101 + g) {
				fprintf(stderr, "rank 1: pages %u-%u: %llu %llu\n", g, g + 1,
					(unsigned long long)base[g * words],
					(unsigned long long)base[(g + 1) * words]);
				return 1;
			}
			for (int i = 0; i < 1000 && !(lp->flags & PF_PREFETCH); i++)
				usleep(1000);
			pg_lock(lp);
			if (lp->flags & PF_PREFETCH)
				first = g + 2;
			else
				pg_unlock(lp);
		}
		atomic_store(&c->sh->ready, 1);
		if (!first) {
			fprintf(stderr, "rank 1: no read-ahead\n");
			return 1;
		}
		/* The run has come: its receive thread waits for our lock. */
		for (int i = 0; i < 5000 && atomic_load(&d->pages[first].lock) != 2; i++)
			usleep(1000);
		if (atomic_load(&d->pages[first].lock) != 2) {
			fprintf(stderr, "rank 1: the read-ahead did not come\n");
			return 1;
		}
		atomic_store(&c->sh->ready, 100 + first);
		usleep(200000);
		if (atomic_load(&c->sh->ready) == 1000) {
			fprintf(stderr, "rank 1: rank 2 wrote pages whose read-ahead is not here yet\n");
			return 1;
		}
		pg_unlock(&d->pages[first]);
		while (atomic_load(&c->sh->ready) != 1000)
			usleep(200);
		for (unsigned pg = first; pg < first + 4; pg++)
			if (base[pg * words] != 200 + pg) {
				fprintf(stderr, "rank 1: page %u is %llu, not %u\n", pg,
					(unsigned long long)base[pg * words], 200 + pg);
				return 1;
			}
	}
	if (rank == 2) {
		while (atomic_load(&c->sh->ready) < 100)
			usleep(200);
		first = atomic_load(&c->sh->ready) - 100;
		for (unsigned pg = first; pg < first + 4; pg++)
			base[pg * words] = 200 + pg;
		atomic_store(&c->sh->ready, 1000);
	}
	cluster_barrier(c);
	return 0;
}

static void test_bulk_installed_late(void)
{
	struct cluster c;

	cluster_init(&c, 3, 48 * DSM_PAGE_SIZE);
	c.timeout_s = 30;
	if (cluster_run(&c, bulk_late_node, &c))
		cluster_report(&c);
	for (unsigned i = 0; i < c.n; i++)
		CHECK_EQ(c.status[i], 0);
}

/* ---- the home writes its page while a remote read waits on the owner ---- */

/*
 * 3 nodes, 3 pages, one per node.  Page 0 (homed on rank 0) is written by
 * rank 2, which then holds its lock: rank 1's read is forwarded to rank 2
 * and waits there.  Meanwhile rank 0, the home, writes the page (its
 * request queues behind rank 1's).  Rank 2 lets go: rank 1 gets rank 2's
 * value, then rank 0's write goes through (rank 2's and rank 1's copies
 * invalidated) and every node reads it.
 */
static void *home_writer(void *arg)
{
	*(volatile uint64_t *)arg = 7;
	return NULL;
}

static int home_fault_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	volatile uint64_t *x = dsm_addr(d);
	pthread_t th;

	if (rank == 2)
		x[0] = 5;
	cluster_barrier(c);
	if (rank == 2)
		pg_lock(&d->pages[0]);
	cluster_barrier(c);
	if (rank == 1) {
		/*
		 * Rank 2's value, normally; rank 0's if the copy was taken
		 * away again before this thread ran (it then read again,
		 * after rank 0's write): both are sequentially consistent.
		 */
		uint64_t v = x[0];

		if (v != 5 && v != 7) {
			fprintf(stderr, "rank 1: read %llu\n", (unsigned long long)v);
			return 1;
		}
	}
	if (rank == 0) {
		/* Once rank 1's request is in (the home forwarded it), write. */
		bool busy;

		do {
			usleep(1000);
			pg_lock(&d->pages[0]);
			busy = dsm_dir(d, 0)->busy == DIR_WAIT_DONE && dsm_dir(d, 0)->cur == 1;
			pg_unlock(&d->pages[0]);
		} while (!busy);
		pthread_create(&th, NULL, home_writer, (void *)x);
		usleep(50000);
		atomic_store(&c->sh->ready, 1);
		pthread_join(th, NULL);
	}
	if (rank == 2) {
		while (!atomic_load(&c->sh->ready))
			usleep(200);
		pg_unlock(&d->pages[0]);
	}
	cluster_barrier(c);
	if (x[0] != 7) {
		fprintf(stderr, "rank %u: read %llu after the home's write\n", rank,
			(unsigned long long)x[0]);
		return 1;
	}
	cluster_barrier(c);
	return 0;
}

static void test_home_writes_during_forward(void)
{
	struct cluster c;

	cluster_init(&c, 3, 3 * DSM_PAGE_SIZE);
	c.timeout_s = 30;
	if (cluster_run(&c, home_fault_node, &c))
		cluster_report(&c);
	for (unsigned i = 0; i < c.n; i++)
		CHECK_EQ(c.status[i], 0);
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{ "test_old_pin", test_old_pin },
	{ "test_old_hold", test_old_hold },
	{ "test_fatal_under_page_lock", test_fatal_under_page_lock },
	{ "test_culprit_named", test_culprit_named },
	{ "test_prefetch_protect_fails", test_prefetch_protect_fails },
	{ "test_destroy_while_waiting", test_destroy_while_waiting },
	{ "test_stop_while_others_work", test_stop_while_others_work },
	{ "test_bulk_installed_late", test_bulk_installed_late },
	{ "test_home_writes_during_forward", test_home_writes_during_forward },
};

int main(void)
{
	/* GVM_DSM_RACE=NAME[:N]: only the test NAME (e.g. test_old_pin), N times. */
	const char *only = getenv("GVM_DSM_RACE");

	log_init("test-dsm-races");
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		size_t len = strlen(tests[i].name);
		int times = 1;

		if (only && (strncmp(only, tests[i].name, len) || (only[len] && only[len] != ':')))
			continue;
		if (only && only[len] == ':')
			times = atoi(only + len + 1);
		while (times-- > 0) {
			unsigned before = check_state.failures;

			check_state.current = tests[i].name;
			tests[i].fn();
			printf("%s %s\n", check_state.failures == before ? "ok  " : "FAIL",
			       tests[i].name);
		}
	}
	return check_summary();
}
