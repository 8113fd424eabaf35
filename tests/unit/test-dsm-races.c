/*
 * Targeted tests of libgvdsm races and corner cases, with real processes and
 * sockets.  They reach into dsm/internal.h (this is a white-box test of the
 * component) only to put a page into a state that would otherwise take
 * too long to reach, or to take a lock at the worst moment:
 * - a page held (split-lock pin, or hold_us) whose clock stamp is more than
 *   2^31 µs (35.8 minutes) old must be given away at once, not after up to
 *   another 35.8 minutes (the µs clock is 32 bits);
 * - an internal error raised under a page lock while the hold thread
 *   re-checks a held request for that page must still reach on_fatal.
 */
#include <pthread.h>

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

int main(void)
{
	log_init("test-dsm-races");
	RUN(test_old_pin);
	RUN(test_old_hold);
	RUN(test_fatal_under_page_lock);
	return check_summary();
}
