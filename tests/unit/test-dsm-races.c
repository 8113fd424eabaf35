/*
 * Targeted tests of libgvdsm races and corner cases, with real processes and
 * sockets.  They reach into dsm/internal.h (this is a white-box test of the
 * component) to put a page into a state that would otherwise take too long
 * to reach, to take a lock at the worst moment, and to see that the racy
 * state was reached: each test waits, with a deadline, for a state it can
 * observe (a statistic, a page's lock word or flags, the home's directory
 * entry, a socket's TCP state, a rank's step in the shared word) instead
 * of sleeping and assuming; a deadline is a failure that says what did not
 * happen.  Each names the change to dsm/ (a line or two) that makes it fail:
 * - a page held (split-lock pin, or hold_us) whose clock stamp is more than
 *   2^31 µs (35.8 minutes) old must be given away at once, not after up to
 *   another 35.8 minutes (the µs clock is 32 bits); fails when hold_check
 *   takes the age as signed (holds counted);
 * - an internal error raised under a page lock while the hold thread
 *   re-checks a held request for that page must still reach on_fatal;
 *   fails when the hold thread re-checks under hold_lock (the watchdog
 *   ends the deadlock);
 * - a node that stops because of another (ABORT) and closes its
 *   connections: a peer whose sends to it fail before it has read the
 *   ABORT must still name the culprit, not the messenger; fails when
 *   dsm_send reports a failed send;
 * - an ioctl refused while the home prefetches a run of pages: every page
 *   lock of the run is released (a lock left taken hangs dsm_destroy);
 *   fails when prefetch_request unlocks only the pages it sends;
 * - dsm_destroy while a thread waits for a page that will never come: the
 *   thread must never go on with a page the DSM did not give it (zeros);
 *   fails when region_destroy closes the userfaultfd before unmapping (in
 *   about half the tries, when the woken thread retries before the unmap:
 *   10 tries);
 * - dsm_stop on one node while the others still work on its pages: it
 *   keeps serving them until every node has stopped; fails when dsm_stop
 *   does not wait for the peers' BYEs;
 * - a prefetched run whose install is delayed while another node writes
 *   those pages: the writes wait for it, and the reader sees them after;
 *   fails when prefetch_request leaves the pages it sends idle (not
 *   bulk-busy);
 * - the home writing its own page while a remote read of it waits on a
 *   delayed owner; fails when home_request starts the home's own request
 *   on a busy page instead of queueing it;
 * - a writer that has not run since its page came (stopped by ptrace, as a
 *   thread on a busy host waits for a core) keeps the page until it has
 *   written: another node's read waits and sees the write; fails when
 *   hold_check ignores hold_progress_us (the read is served at once).
 */
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>

#include "dsm/internal.h"
#include "tests/dsm/cluster.h"
#include "tests/lib/check.h"

#define WORDS (DSM_PAGE_SIZE / 8) /* uint64_t per page */

static struct dsm_stats stats(struct dsm *d)
{
	struct dsm_stats st;

	dsm_get_stats(d, &st);
	return st;
}

/* Another thread (a receive thread, the hold thread) waits for this page's lock. */
static bool has_waiters(struct dsm *d, uint64_t pg)
{
	return atomic_load(&d->pages[pg].lock) == 2;
}

static uint8_t page_state(struct dsm *d, uint64_t pg)
{
	uint8_t state;

	pg_lock(&d->pages[pg]);
	state = d->pages[pg].state;
	pg_unlock(&d->pages[pg]);
	return state;
}

/* At the home: pg's transaction in progress is `busy` (DIR_*), for rank cur. */
static bool dir_busy(struct dsm *d, uint64_t pg, uint8_t busy, unsigned cur)
{
	bool is;

	pg_lock(&d->pages[pg]);
	is = dsm_dir(d, pg)->busy == busy && dsm_dir(d, pg)->cur == cur;
	pg_unlock(&d->pages[pg]);
	return is;
}

/*
 * At the home: rank from's request for pg waits first in the queue behind
 * the transaction `busy` of rank cur (1), is not there yet (0), or has
 * started (-1).
 */
static int queued_behind(struct dsm *d, uint64_t pg, unsigned from, uint8_t busy, unsigned cur)
{
	struct dsm_dir *e = dsm_dir(d, pg);
	int queued;

	pg_lock(&d->pages[pg]);
	if (e->busy && e->cur == from)
		queued = -1;
	else
		queued = e->busy == busy && e->cur == cur && e->queue && e->queue->from == from;
	pg_unlock(&d->pages[pg]);
	return queued;
}

/* on_fatal ends this process: wait for it, at most ms, then say what did not happen. */
static __attribute__((__noreturn__)) void wait_exit(struct cluster *c, unsigned rank, unsigned ms,
							 const char *what)
{
	CLUSTER_WAIT(c, false, ms);
	cluster_fail(c, rank, "%s within %u ms", what, ms);
}

/*
 * The deadline of a step that may block for ever (the deadlock a test looks
 * for): after s seconds, msg on stderr and exit 1.
 */
static const char *volatile watchdog_msg;

static void watchdog_fire(int sig)
{
	(void)sig;
	if (write(2, watchdog_msg, strlen(watchdog_msg)) < 0) {
		/* nothing more to say */
	}
	_exit(1);
}

static void watchdog(unsigned s, const char *msg)
{
	watchdog_msg = msg;
	signal(SIGALRM, watchdog_fire);
	alarm(s);
}

/* Some thread's stream detector (prefetch.c) expects its next fault on pg. */
static bool stream_next(struct dsm *d, uint64_t pg)
{
	for (unsigned i = 0; i < DSM_STREAMS; i++)
		if (atomic_load(&d->streams[i].next) == pg)
			return true;
	return false;
}

/*
 * Read pages first and first + 1 from this thread, a stream, so that the
 * fault on first + 1 asks for the first read-ahead window, 4 pages:
 * [first + 2, first + 6).
 * A handler that sees the second fault before the first sees no stream:
 * the second read waits until the first fault was seen.  Returns once the
 * window has been asked for.
 */
static void read_stream(struct cluster *c, struct dsm *d, unsigned rank, uint64_t first)
{
	volatile uint8_t *base = dsm_addr(d);

	(void)base[first * DSM_PAGE_SIZE];
	if (!CLUSTER_WAIT(c, stream_next(d, first + 1), 10000))
		cluster_fail(c, rank, "no handler saw the fault on page %llu",
			     (unsigned long long)first);
	(void)base[(first + 1) * DSM_PAGE_SIZE];
	if (!CLUSTER_WAIT(c, stream_next(d, first + 6), 10000))
		cluster_fail(c, rank, "no read-ahead of pages %llu-%llu",
			     (unsigned long long)first + 2, (unsigned long long)first + 5);
}

/* ---- a held page with an old clock stamp ---- */

/* 4 pages: 0-1 homed on rank 0, 2-3 on rank 1; rank 0 owns all four, writable. */
#define OLD_PAGES 4

struct old_stamp {
	struct cluster c;
	bool flags; /* pin flags: pages 0 and 2 were pinned, 1 and 3 pinned then released */
};

/*
 * A page pinned for a split lock, or a pending write that pinned the page
 * before it: the write's reply has yet to release that pin, stamping the
 * page anew.
 */
static int pinned_page(struct dsm *d, unsigned npages)
{
	for (unsigned pg = 0; pg < npages; pg++) {
		uint8_t x;

		pg_lock(&d->pages[pg]);
		x = d->pages[pg].xflags;
		pg_unlock(&d->pages[pg]);
		if (x & (PX_PIN | PX_PINS_LOWER))
			return pg;
	}
	return -1;
}

static int old_stamp_node(struct dsm *d, unsigned rank, void *arg)
{
	struct old_stamp *o = arg;
	struct cluster *c = &o->c;
	volatile uint8_t *base = dsm_addr(d);

	if (rank == 0) {
		for (unsigned pg = 0; pg < OLD_PAGES; pg++)
			base[pg * DSM_PAGE_SIZE] = 1 + pg;
		/*
		 * Each write pinned the page before it; the pin is released
		 * (stamped now) after the write was woken: wait for the last.
		 */
		if (!CLUSTER_WAIT(c, pinned_page(d, OLD_PAGES) < 0, 10000))
			cluster_fail(c, rank, "page %d stays pinned", pinned_page(d, OLD_PAGES));
		/* As if the pages had last changed hands 2^31 µs + 1 ms ago. */
		for (unsigned pg = 0; pg < OLD_PAGES; pg++) {
			struct dsm_page *lp = &d->pages[pg];
			bool writable;

			pg_lock(lp);
			writable = lp->state == PG_MODIFIED;
			if (o->flags)
				lp->xflags |= pg & 1 ? PX_AFTER_PIN : PX_PIN;
			lp->t_us = dsm_now_us() - 0x80000000u - 1000;
			pg_unlock(lp);
			if (!writable)
				cluster_fail(c, rank, "page %u is not writable here", pg);
		}
	}
	cluster_barrier(c);
	if (rank == 1) {
		for (unsigned pg = 0; pg < OLD_PAGES; pg++) {
			unsigned v = base[pg * DSM_PAGE_SIZE];

			if (v != 1 + pg)
				cluster_fail(c, rank, "page %u (homed on rank %u): %u", pg,
					     dsm_home_of(d, pg * DSM_PAGE_SIZE), v);
		}
		atomic_store(&c->sh->ready, 1);
	} else {
		/*
		 * Every read is decided here, by hold_check on the old stamp
		 * (at the home for pages 0-1, on the FWD for 2-3): a request
		 * it holds is counted, and would wait up to 35.8 minutes.
		 */
		if (!CLUSTER_WAIT(c, stats(d).holds || atomic_load(&c->sh->ready), 10000))
			cluster_fail(c, rank, "rank 1's reads were not served within 10 s");
		if (stats(d).holds)
			cluster_fail(c, rank, "a request for a page stamped 35.8 minutes ago was held");
		/* And the copies went from here: each page was decided on its old stamp. */
		for (unsigned pg = 0; pg < OLD_PAGES; pg++)
			if (page_state(d, pg) != PG_SHARED)
				cluster_fail(c, rank, "page %u was not given from here (state %u)", pg,
					     page_state(d, pg));
	}
	cluster_barrier(c);
	return 0;
}

static void run_old_stamp(unsigned hold_us, bool flags)
{
	struct old_stamp o = { .flags = flags };

	cluster_init(&o.c, 2, OLD_PAGES * DSM_PAGE_SIZE);
	o.c.tmpl.hold_us = hold_us;
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
	struct dsm_page *lp = &d->pages[0];

	if (rank == 0)
		base[0] = 1; /* writable here, held for hold_us from now */
	cluster_barrier(c);
	if (rank == 1) {
		(void)base[0]; /* held at rank 0, which fails meanwhile: on_fatal exits */
		cluster_fail(c, rank, "the read was served, the DSM did not fail");
	}
	/* Rank 0: rank 1's request is set aside for the hold thread. */
	if (!CLUSTER_WAIT(c, stats(d).holds, 10000))
		cluster_fail(c, rank, "rank 1's request was not held");
	/*
	 * Take the page's lock and let the hold thread, which re-checks the
	 * held request every millisecond, wait for it.  Still within the hold
	 * then, it waits in the re-check, not in redoing the request (which
	 * takes the lock too, once the hold has ended).
	 */
	pg_lock(lp);
	if (!CLUSTER_WAIT(c, has_waiters(d, 0), 10000))
		cluster_fail(c, rank, "the hold thread did not re-check the held request");
	if (dsm_now_us() - lp->t_us >= d->cfg.hold_us)
		cluster_fail(c, rank, "the hold ended before the hold thread re-checked it");
	/* Fail as an ioctl refused under that lock would. */
	watchdog(10, "rank 0: dsm_fail under a page lock the hold thread waits for did not "
		     "return within 10 s\n");
	dsm_fail(d, d->rank, FATAL_TEXT);
	pg_unlock(lp);
	watchdog(10, "rank 0: on_fatal was not called within 10 s\n");
	for (;;)
		pause();
}

static void test_fatal_under_page_lock(void)
{
	struct cluster c;

	cluster_init(&c, 2, 2 * DSM_PAGE_SIZE);
	c.tmpl.hold_us = 10000000; /* the most: the test never waits for it */
	c.tmpl.on_fatal = fatal_expected;
	c.timeout_s = 30;
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
 * rank 1 are stuck on page locks; rank 0 then asks rank 1 for its pages
 * until a send fails.  Rank 0 must name rank 2 once it reads rank 1's
 * ABORT, not report rank 1 as lost.
 */
#define CULPRIT_TEXT "test: rank 2 misbehaved"

static void culprit_fatal(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "on_fatal: %s\n", msg);
	_exit(strstr(msg, CULPRIT_TEXT) ? 0 : 3);
}

/* The TCP state of our demand connection to peer (TCP_ESTABLISHED...), or -1. */
static int demand_tcp_state(struct dsm *d, unsigned peer)
{
	int fd = mesh_fd(d->mesh, peer, d->cfg.first_channel + DSM_CH_DEMAND);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -1;
	return ti.tcpi_state;
}

static int culprit_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	bool failed = false;

	if (rank == 1) {
		cluster_barrier(c);
		/* Messages whose handling at rank 0 needs the locks it holds. */
		dsm_send(d, 0, DSM_CH_DEMAND, DSM_MSG_READ, 0, 0, 0, NULL, 0);
		dsm_send(d, 0, DSM_CH_BULK, DSM_MSG_PREFETCH, 1, 1, 0, NULL, 0);
		cluster_barrier(c);
		dsm_fail(d, 2, CULPRIT_TEXT);
		wait_exit(c, rank, 10000, "on_fatal was not called");
	}
	/* Rank 0. */
	pg_lock(&d->pages[0]);
	pg_lock(&d->pages[1]);
	cluster_barrier(c);
	if (!CLUSTER_WAIT(c, has_waiters(d, 0) && has_waiters(d, 1), 10000))
		cluster_fail(c, rank, "the receive threads did not wait for the page locks");
	cluster_barrier(c);
	/* Rank 1 stops: its ABORT waits, unread, behind what our receive threads hold. */
	if (!CLUSTER_WAIT(c, demand_tcp_state(d, 1) != TCP_ESTABLISHED, 10000))
		cluster_fail(c, rank, "rank 1 did not close its connections");
	/*
	 * Ask rank 1 for its pages, as a fault handler does: a send to its
	 * closed socket makes it answer with a reset, and the next one fails.
	 */
	for (uint64_t pg = 2; pg < 6 && !failed; pg++) {
		uint64_t sent = stats(d).msgs_sent;

		node_fault(d, pg, false, gettid());
		failed = stats(d).msgs_sent == sent;
		if (!failed && !CLUSTER_WAIT(c, demand_tcp_state(d, 1) == TCP_CLOSE, 10000))
			cluster_fail(c, rank, "rank 1 did not reset the connection");
	}
	if (!failed)
		cluster_fail(c, rank, "no send to rank 1 failed");
	if (dsm_error(d) || !has_waiters(d, 0) || !has_waiters(d, 1))
		cluster_fail(c, rank, "the DSM stopped before rank 1's ABORT was read: %s",
			     dsm_error(d) ? dsm_error(d) : "(no error)");
	pg_unlock(&d->pages[1]);
	pg_unlock(&d->pages[0]);
	wait_exit(c, rank, 10000, "the DSM did not stop");
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

	if (cluster_skip_if_fabric(__func__, "it watches the TCP transport's sockets"))
		return;
	cluster_init(&c, 3, 8 * DSM_PAGE_SIZE);
	c.home_start = (const uint64_t[]){ 0, 2, 6, 8 };
	c.tmpl.on_fatal = culprit_fatal;
	c.tmpl.prefetch_pages = 0;
	c.raw_mask = 1u << 2;
	c.raw = culprit_raw;
	c.timeout_s = 30;
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

/* A page lock still taken, or -1. */
static int locked_page(struct dsm *d, unsigned npages)
{
	for (unsigned pg = 0; pg < npages; pg++)
		if (atomic_load(&d->pages[pg].lock))
			return pg;
	return -1;
}

/*
 * 64 pages, 0-31 homed on rank 0, which writes them all and unregisters
 * page 5 from the userfaultfd: protecting it fails.  Rank 1 reads pages 1
 * and 2, a stream: it asks for the read-ahead window 3-6, whose one
 * write-protect at rank 0 fails.
 */
static int prefetch_fail_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	volatile uint8_t *base = dsm_addr(d);
	struct uffdio_range r = { .start = (uintptr_t)base + 5 * DSM_PAGE_SIZE,
				  .len = DSM_PAGE_SIZE };
	const char *e;

	if (rank == 0) {
		for (unsigned pg = 0; pg < 32; pg++)
			base[pg * DSM_PAGE_SIZE] = pg;
		if (ioctl(d->uffd, UFFDIO_UNREGISTER, &r))
			cluster_fail(c, rank, "UFFDIO_UNREGISTER: %s", strerror(errno));
	}
	cluster_barrier(c);
	if (rank == 1) {
		read_stream(c, d, rank, 1);
		if (base[DSM_PAGE_SIZE] != 1 || base[2 * DSM_PAGE_SIZE] != 2)
			cluster_fail(c, rank, "wrong data");
		/* on_fatal exits once rank 0 has stopped. */
		wait_exit(c, rank, 10000, "the DSM did not stop");
	}
	if (!CLUSTER_WAIT(c, (e = dsm_error(d)), 10000))
		cluster_fail(c, rank, "the DSM did not stop");
	/* The write-protect of the run failed, not another. */
	if (!strstr(e, "UFFDIO_WRITEPROTECT of page 3 failed"))
		cluster_fail(c, rank, "unexpected error: %s", e);
	/* prefetch_request unlocks the run as it returns. */
	if (!CLUSTER_WAIT(c, locked_page(d, 32) < 0, 5000))
		cluster_fail(c, rank, "page %d is still locked", locked_page(d, 32));
	return CLUSTER_FAILED_OK;
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
	atomic_bool done;
};

static void *destroy_reader(void *arg)
{
	struct destroy_reader *r = arg;

	if (sigsetjmp(destroy_jmp, 1) == 0) {
		r->v = *r->p;
		r->read = 1;
	}
	r->faulted = destroy_faulted;
	atomic_store(&r->done, true);
	return NULL;
}

/* Rank 1: waits for page 0, homed on rank 0, which never answers; then destroys. */
static int destroy_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	struct destroy_reader r = { .p = dsm_addr(d) };
	struct sigaction sa = { .sa_handler = destroy_segv };
	cpu_set_t one;
	pthread_t th;

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	/* The reader shares this thread's one CPU (see below). */
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		cluster_fail(c, rank, "sched_setaffinity: %s", strerror(errno));
	pthread_create(&th, NULL, destroy_reader, &r);
	/*
	 * A handler read the reader's fault from the userfaultfd (it sent the
	 * READ, our only message): the reader waits in the kernel until the
	 * page comes, or the DSM goes.
	 */
	if (!CLUSTER_WAIT(c, stats(d).msgs_sent > 0, 10000))
		cluster_fail(c, rank, "the reader did not fault");
	if (atomic_load(&r.done))
		cluster_fail(c, rank, "the reader went on before the DSM went");
	/*
	 * Once dsm_destroy wakes the reader, the reader runs before this
	 * thread goes on (on one CPU, a waking thread preempts a SCHED_IDLE
	 * one): its retry comes as early as it can, before the rest of
	 * dsm_destroy, and must find no page there.
	 */
	if (sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){ 0 }))
		cluster_fail(c, rank, "SCHED_IDLE: %s", strerror(errno));
	dsm_destroy(d);
	if (!CLUSTER_WAIT(c, atomic_load(&r.done), 10000))
		cluster_fail(c, rank, "the reader was not woken by dsm_destroy");
	pthread_join(th, NULL);
	if (r.read)
		cluster_fail(c, rank, "read %llu from a page the DSM never gave",
			     (unsigned long long)r.v);
	_exit(r.faulted ? 0 : 2);
}

/* Rank 0: a peer that never answers; done when rank 1 closes. */
static int destroy_raw(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	struct cluster_link l;

	(void)rank;
	(void)arg;
	if (cluster_link_open(&l, c, m))
		return 1;
	cluster_link_drain(&l, 1, 0);
	cluster_link_close(&l);
	return 0;
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
			base[pg * WORDS] = 1000;
		cluster_barrier(c);
		return 0;
	}
	cluster_barrier(c);
	/* Ranks 1 and 2: every access from here on is served by a stopping rank 0. */
	if (!CLUSTER_WAIT(c, cluster_bye_from(d, 0), 10000))
		cluster_fail(c, rank, "rank 0 did not stop");
	/* Increments and reads on every page, rank 0's included. */
	for (unsigned r = 0; r < EARLY_ROUNDS; r++)
		for (unsigned pg = 0; pg < EARLY_PAGES; pg++) {
			uint64_t *p = &base[pg * WORDS];

			if ((r + pg + rank) % 3)
				__atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
			else if (__atomic_load_n(p, __ATOMIC_SEQ_CST) < 1000)
				return 1;
		}
	/* Both done (rank 0 takes no part): check the sums. */
	atomic_fetch_add(&c->sh->ready, 1);
	if (!CLUSTER_WAIT(c, atomic_load(&c->sh->ready) == 2, 40000))
		cluster_fail(c, rank, "the other rank did not finish");
	for (unsigned pg = 0; pg < EARLY_PAGES; pg++) {
		uint64_t want = 1000;

		for (unsigned rk = 1; rk <= 2; rk++)
			for (unsigned r = 0; r < EARLY_ROUNDS; r++)
				want += (r + pg + rk) % 3 != 0;
		if (base[pg * WORDS] != want)
			cluster_fail(c, rank, "page %u counts %llu, not %llu", pg,
				     (unsigned long long)base[pg * WORDS], (unsigned long long)want);
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
 * cannot be sent yet.  Rank 1 reads pages 0 and 1, a stream, so it asks
 * for pages 2-5 on the bulk channel; it takes page 2's lock and lets rank 0
 * go on: the run comes and cannot be installed.  Rank 2 then writes the
 * four pages: the home must keep them until rank 1 has installed the run
 * (an invalidation overtaking the data would leave rank 1 a stale copy, or
 * a protocol error), so rank 2's write of page 2 waits in the queue.  Rank
 * 1 lets go and must then read rank 2's values.
 *
 * sh->ready: the step reached, LATE_*.
 */
enum { LATE_ASKED = 1, LATE_HERE, LATE_QUEUED, LATE_WRITTEN };

#define LATE_FIRST 2 /* the run: pages 2-5 */

static bool late_step(struct cluster *c, unsigned step)
{
	return atomic_load(&c->sh->ready) >= step;
}

static int bulk_late_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	volatile uint64_t *base = dsm_addr(d);
	struct dsm_page *lp = &d->pages[LATE_FIRST];
	int queued;

	if (rank == 0) {
		for (unsigned pg = 0; pg < 16; pg++)
			base[pg * WORDS] = 100 + pg;
		pg_lock(&d->pages[5]);
	}
	cluster_barrier(c);
	if (rank == 0) {
		if (!CLUSTER_WAIT(c, late_step(c, LATE_ASKED), 10000))
			cluster_fail(c, rank, "rank 1 did not ask for the read-ahead");
		/* The run's pages before 5 are taken: prefetch_request waits for 5. */
		if (!CLUSTER_WAIT(c, has_waiters(d, 5), 10000))
			cluster_fail(c, rank, "the read-ahead request did not wait for page 5");
		pg_unlock(&d->pages[5]);
		if (!CLUSTER_WAIT(c, late_step(c, LATE_HERE), 10000))
			cluster_fail(c, rank, "the read-ahead did not reach rank 1");
		if (!CLUSTER_WAIT(c, (queued = queued_behind(d, LATE_FIRST, 2, DIR_BULK, 1)), 10000))
			cluster_fail(c, rank, "rank 2's write of page %u did not come", LATE_FIRST);
		if (queued < 0)
			cluster_fail(c, rank, "rank 2's write of page %u started before rank 1 "
				     "installed it", LATE_FIRST);
		atomic_store(&c->sh->ready, LATE_QUEUED);
	}
	if (rank == 1) {
		read_stream(c, d, rank, 0);
		if (base[0] != 100 || base[WORDS] != 101)
			cluster_fail(c, rank, "pages 0-1: %llu %llu", (unsigned long long)base[0],
				     (unsigned long long)base[WORDS]);
		pg_lock(lp);
		if (!(lp->flags & PF_PREFETCH) || lp->state != PG_INVALID)
			cluster_fail(c, rank, "page %u is not expected on the bulk channel",
				     LATE_FIRST);
		atomic_store(&c->sh->ready, LATE_ASKED);
		/* The run has come: its receive thread waits for our lock. */
		if (!CLUSTER_WAIT(c, has_waiters(d, LATE_FIRST), 10000))
			cluster_fail(c, rank, "the read-ahead did not come");
		atomic_store(&c->sh->ready, LATE_HERE);
		if (!CLUSTER_WAIT(c, late_step(c, LATE_QUEUED), 20000))
			cluster_fail(c, rank, "rank 0 did not see rank 2's write");
		pg_unlock(lp);
		if (!CLUSTER_WAIT(c, late_step(c, LATE_WRITTEN), 10000))
			cluster_fail(c, rank, "rank 2 did not write");
		for (unsigned pg = LATE_FIRST; pg < LATE_FIRST + 4; pg++)
			if (base[pg * WORDS] != 200 + pg)
				cluster_fail(c, rank, "page %u is %llu, not %u", pg,
					     (unsigned long long)base[pg * WORDS], 200 + pg);
	}
	if (rank == 2) {
		if (!CLUSTER_WAIT(c, late_step(c, LATE_HERE), 20000))
			cluster_fail(c, rank, "the read-ahead did not reach rank 1");
		for (unsigned pg = LATE_FIRST; pg < LATE_FIRST + 4; pg++)
			base[pg * WORDS] = 200 + pg;
		atomic_store(&c->sh->ready, LATE_WRITTEN);
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
	int queued;

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

		if (v != 5 && v != 7)
			cluster_fail(c, rank, "read %llu", (unsigned long long)v);
	}
	if (rank == 0) {
		/* Rank 1's request is in (the home forwarded it to rank 2): write. */
		if (!CLUSTER_WAIT(c, dir_busy(d, 0, DIR_WAIT_DONE, 1), 10000))
			cluster_fail(c, rank, "rank 1's read did not come");
		pthread_create(&th, NULL, home_writer, (void *)x);
		if (!CLUSTER_WAIT(c, (queued = queued_behind(d, 0, 0, DIR_WAIT_DONE, 1)), 10000))
			cluster_fail(c, rank, "the home's write did not come");
		if (queued < 0)
			cluster_fail(c, rank, "the home's write started while rank 1's read was "
				     "in progress");
		atomic_store(&c->sh->ready, 1);
		pthread_join(th, NULL);
	}
	if (rank == 2) {
		/* The FWD of rank 1's read waits for our lock. */
		if (!CLUSTER_WAIT(c, atomic_load(&c->sh->ready) && has_waiters(d, 0), 10000))
			cluster_fail(c, rank, "rank 1's read or rank 0's write did not come");
		pg_unlock(&d->pages[0]);
	}
	cluster_barrier(c);
	if (x[0] != 7)
		cluster_fail(c, rank, "read %llu after the home's write", (unsigned long long)x[0]);
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

/* ---- a writer not yet run keeps its page (hold_progress_us) ---- */

/*
 * 2 nodes, 2 pages; page 1 is homed on rank 1, which takes its lock.  A
 * thread of rank 0 writes page 1 and waits for it; a child of rank 0 stops
 * that thread with ptrace (PTRACE_INTERRUPT takes it out of the fault: it
 * will not run again until let go).  Rank 1 lets the lock go: the page
 * comes to rank 0, writable, and nobody runs to write it.  Rank 1 then
 * reads it: the FWD must wait at rank 0 (a hold) until the writer, let go,
 * has written; rank 1 reads the write, and rank 0's writer never faults
 * again.  The hold's limit is 10 s here so that a slow host cannot end it.
 *
 * sh->ready: the step reached, PROG_*.
 */
enum { PROG_STOPPED = 1, PROG_WRITABLE, PROG_HELD, PROG_GO, PROG_NO_PTRACE };

struct prog {
	struct cluster c;
	_Atomic pid_t writer_tid;
};

struct prog_writer_arg {
	struct prog *p;
	volatile uint64_t *x;
};

static void *prog_write(void *arg)
{
	struct prog_writer_arg *a = arg;

	atomic_store(&a->p->writer_tid, gettid());
	*a->x = 7;
	return NULL;
}

/* The child of rank 0 that stops the writer until step PROG_GO. */
static void prog_tracer(struct prog *p, pid_t tid)
{
	struct cluster *c = &p->c;
	int st;

	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) || ptrace(PTRACE_INTERRUPT, tid, NULL, NULL)) {
		atomic_store(&c->sh->ready, PROG_NO_PTRACE);
		_exit(0);
	}
	if (waitpid(tid, &st, __WALL) != tid) {
		atomic_store(&c->sh->abort, 1);
		_exit(1);
	}
	atomic_store(&c->sh->ready, PROG_STOPPED);
	/* Until rank 0 says go, or the harness gives up (its parent then ends). */
	while (atomic_load(&c->sh->ready) != PROG_GO && !atomic_load(&c->sh->abort) &&
	       getppid() != 1)
		usleep(1000);
	ptrace(PTRACE_DETACH, tid, NULL, NULL);
	_exit(0);
}

static int prog_node(struct dsm *d, unsigned rank, void *arg)
{
	struct prog *p = arg;
	struct cluster *c = &p->c;
	volatile uint64_t *x = (volatile uint64_t *)((char *)dsm_addr(d) + DSM_PAGE_SIZE);
	struct dsm_page *lp = &d->pages[1];
	struct prog_writer_arg wa = { .p = p, .x = x };
	pthread_t th;
	pid_t tracer;
	int st;

	if (rank == 1)
		pg_lock(lp);
	cluster_barrier(c);
	if (rank == 0) {
		prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY);
		pthread_create(&th, NULL, prog_write, &wa);
		/* Its request is out, and stuck behind rank 1's lock. */
		if (!CLUSTER_WAIT(c, atomic_load(&p->writer_tid) &&
				     (pg_lock(lp), st = lp->flags & PF_PEND_WRITE, pg_unlock(lp), st),
				  10000))
			cluster_fail(c, rank, "the writer's fault did not come");
		tracer = fork();
		if (tracer == 0)
			prog_tracer(p, atomic_load(&p->writer_tid));
		if (!CLUSTER_WAIT(c, atomic_load(&c->sh->ready), 10000))
			cluster_fail(c, rank, "the tracer did not stop the writer");
		if (atomic_load(&c->sh->ready) == PROG_NO_PTRACE) {
			/* Finish without the check, saying so. */
			printf("skip test_writer_not_run: ptrace of a thread not permitted here\n");
			fflush(stdout);
			pthread_join(th, NULL);
			waitpid(tracer, &st, 0);
			cluster_barrier(c);
			return 0;
		}
		if (!CLUSTER_WAIT(c, page_state(d, 1) == PG_MODIFIED, 10000))
			cluster_fail(c, rank, "page 1 did not come");
		atomic_store(&c->sh->ready, PROG_WRITABLE);
		/* Rank 1's read, forwarded here, must be held while the writer is stopped. */
		if (!CLUSTER_WAIT(c, stats(d).holds, 10000))
			cluster_fail(c, rank, "rank 1's read was not held for the stopped writer");
		if (page_state(d, 1) != PG_MODIFIED)
			cluster_fail(c, rank, "page 1 went before its writer ran");
		atomic_store(&c->sh->ready, PROG_GO);
		pthread_join(th, NULL);
		/* Written: the read goes through now, not when the 10 s run out. */
		if (!CLUSTER_WAIT(c, page_state(d, 1) == PG_SHARED, 5000))
			cluster_fail(c, rank, "page 1 stayed held after its writer ran");
		if (waitpid(tracer, &st, 0) != tracer || !WIFEXITED(st) || WEXITSTATUS(st))
			cluster_fail(c, rank, "the tracer failed");
		if (stats(d).faults[DSM_FAULT_UPGRADE] || stats(d).faults[DSM_FAULT_WRITE])
			cluster_fail(c, rank, "the writer faulted again: its page was taken first");
	}
	if (rank == 1) {
		if (!CLUSTER_WAIT(c, atomic_load(&c->sh->ready) == PROG_STOPPED ||
				     atomic_load(&c->sh->ready) == PROG_NO_PTRACE, 20000))
			cluster_fail(c, rank, "rank 0's writer was not stopped");
		pg_unlock(lp);
		if (atomic_load(&c->sh->ready) != PROG_NO_PTRACE) {
			if (!CLUSTER_WAIT(c, atomic_load(&c->sh->ready) == PROG_WRITABLE, 20000))
				cluster_fail(c, rank, "page 1 did not reach rank 0");
			if (x[0] != 7)
				cluster_fail(c, rank, "read %llu, before the writer wrote",
					     (unsigned long long)x[0]);
		}
	}
	cluster_barrier(c);
	return 0;
}

static void test_writer_not_run(void)
{
	struct prog p = { 0 };

	cluster_init(&p.c, 2, 2 * DSM_PAGE_SIZE);
	p.c.tmpl.hold_progress_us = 10000000;
	p.c.timeout_s = 60;
	if (cluster_run(&p.c, prog_node, &p))
		cluster_report(&p.c);
	for (unsigned i = 0; i < p.c.n; i++)
		CHECK_EQ(p.c.status[i], 0);
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
	{ "test_writer_not_run", test_writer_not_run },
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
