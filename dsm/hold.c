/*
 * Keeping a writable page a little longer before giving it away.
 *
 * Split locks: a locked instruction straddling pages q-1 and q needs both
 * writable at once.  Faulting on q while holding q-1, a thread would find
 * q-1 gone by the time q arrives if another node wanted q-1 meanwhile, and
 * two nodes doing the same can swap the pair forever.  So a write fault on q
 * by the thread that got write access to q-1 pins q-1 until q is writable,
 * plus PIN_AFTER_US for the thread to retry.  Only the lower page is ever
 * pinned while its holder waits for the higher one, so pins cannot wait
 * for each other in a cycle.  A pin lasts at most PIN_MAX_US.
 *
 * Anti ping-pong (cfg.hold_us): a page that became writable here is kept
 * at least that long, so that its writer gets some work done before the
 * next transfer.
 *
 * Progress (cfg.hold_progress_us): a page that became writable here is
 * kept until the thread that faulted for it has run, at most that long.
 * Installing the page only makes that thread runnable; on a host whose
 * cores are busy it may wait milliseconds for one, and a reader elsewhere
 * can take the page back first, again and again: the writer never writes
 * (a Linux guest over two hosts under load made no progress in 600 s).
 * "Has run" is read from the thread's CPU-time clock, a baseline taken as
 * the page came; a fault of that thread since then (on any page) means it
 * ran too.  Any CPU time counts: a thread once scheduled retries its
 * access within microseconds, and a preemption that soon is rare.
 *
 * A request for a held page is not refused: it is set aside here and done
 * when the hold ends.  At the home, the page's directory entry stays busy
 * meanwhile, so later requests queue behind it as usual.
 *
 * The same thread calls the user's on_fatal, where no DSM lock is held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "dsm/internal.h"

#define PIN_AFTER_US 200
#define PIN_MAX_US 10000
#define PROGRESS_CPU_NS 1000

struct held {
	struct held *next;
	uint64_t pg;
	uint32_t until;
	bool home;          /* at the home: restart the queue; else: a FWD to redo */
	uint16_t to;
	uint8_t kind;
	uint64_t acks;
	uint32_t token;
};

static int32_t us_diff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

/* A thread's CPU time: the clock id the kernel gives a thread id (as pthread_getcpuclockid does). */
static bool hold_cpu_ns(uint32_t tid, uint64_t *ns)
{
	clockid_t clk = (clockid_t)(~tid << 3 | 6);
	struct timespec ts;

	if (clock_gettime(clk, &ts))
		return false; /* gone */
	*ns = ts.tv_sec * 1000000000ull + ts.tv_nsec;
	return true;
}

static struct dsm_writer *hold_writer(struct dsm *d, uint16_t tid)
{
	struct dsm_writer *w = &d->writers[tid % DSM_WRITERS];

	/* 0: no id (and a free slot), or one we do not track. */
	return tid && (uint16_t)atomic_load_explicit(&w->tid, memory_order_relaxed) == tid ? w : NULL;
}

void hold_on_fault(struct dsm *d, uint32_t tid, uint32_t now_us)
{
	struct dsm_writer *w = &d->writers[(uint16_t)tid % DSM_WRITERS];

	if (!d->cfg.hold_progress_us || !(uint16_t)tid)
		return;
	/* A thread sharing the slot takes it: the other's pages are then held by time only. */
	atomic_store_explicit(&w->tid, tid, memory_order_relaxed);
	atomic_store_explicit(&w->fault_us, now_us, memory_order_relaxed);
}

void hold_on_write_access(struct dsm *d, struct dsm_page *lp)
{
	struct dsm_writer *w = d->cfg.hold_progress_us ? hold_writer(d, lp->tid) : NULL;
	uint64_t ns;

	if (w && hold_cpu_ns(atomic_load_explicit(&w->tid, memory_order_relaxed), &ns))
		atomic_store_explicit(&w->cpu_ns, ns, memory_order_relaxed);
}

/* The thread that faulted for lp (writable since lp->t_us) has not run since. */
static bool hold_writer_waits(struct dsm *d, struct dsm_page *lp)
{
	struct dsm_writer *w = hold_writer(d, lp->tid);
	uint64_t ns;

	if (!w || us_diff(atomic_load_explicit(&w->fault_us, memory_order_relaxed), lp->t_us) > 0)
		return false;
	if (!hold_cpu_ns(atomic_load_explicit(&w->tid, memory_order_relaxed), &ns))
		return false;
	return ns - atomic_load_explicit(&w->cpu_ns, memory_order_relaxed) < PROGRESS_CPU_NS;
}

bool hold_check(struct dsm *d, struct dsm_page *lp, uint32_t *until)
{
	uint32_t now, age, hold = d->cfg.hold_us;

	if (lp->state != PG_MODIFIED ||
	    (!hold && !d->cfg.hold_progress_us && !(lp->xflags & (PX_PIN | PX_AFTER_PIN))))
		return false;
	/*
	 * The stamp is always in the past, so the age is unsigned: a signed
	 * difference of the 32-bit µs clock turns negative after 35.8 minutes,
	 * and a page kept that long would be held for up to as long again.
	 * (After 71.6 minutes the age wraps to small: a spurious hold, at most
	 * one hold long.)
	 */
	now = dsm_now_us();
	age = now - lp->t_us;
	if (lp->xflags & PX_PIN) {
		if (age < PIN_MAX_US) {
			*until = lp->t_us + PIN_MAX_US;
			return true;
		}
		lp->xflags &= ~PX_PIN;
	}
	if ((lp->xflags & PX_AFTER_PIN) && hold < PIN_AFTER_US)
		hold = PIN_AFTER_US;
	if (age < hold) {
		*until = lp->t_us + hold;
		return true;
	}
	if (age < d->cfg.hold_progress_us && hold_writer_waits(d, lp)) {
		/* The hold thread looks again every millisecond. */
		*until = lp->t_us + d->cfg.hold_progress_us;
		return true;
	}
	return false;
}

static void hold_add(struct dsm *d, struct held *h)
{
	STAT_ADD(d, st_holds, 1);
	pthread_mutex_lock(&d->hold_lock);
	h->next = d->held;
	d->held = h;
	pthread_cond_signal(&d->hold_cond);
	pthread_mutex_unlock(&d->hold_lock);
}

int hold_fwd(struct dsm *d, uint64_t pg, unsigned to, enum dsm_kind kind, uint64_t acks,
	     uint32_t token, uint32_t until)
{
	struct held *h = malloc(sizeof(*h));

	if (!h)
		return -ENOMEM;
	*h = (struct held){ .pg = pg, .until = until, .to = to, .kind = kind, .acks = acks,
			    .token = token };
	hold_add(d, h);
	return 0;
}

int hold_home(struct dsm *d, uint64_t pg, uint32_t until)
{
	struct held *h = malloc(sizeof(*h));

	if (!h)
		return -ENOMEM;
	*h = (struct held){ .pg = pg, .until = until, .home = true };
	hold_add(d, h);
	return 0;
}

bool hold_pin_lower(struct dsm *d, uint64_t pg, uint16_t tid)
{
	struct dsm_page *lp;
	bool pinned;

	if (pg == 0)
		return false;
	lp = &d->pages[pg - 1];
	pg_lock(lp);
	pinned = lp->state == PG_MODIFIED && lp->tid == tid;
	if (pinned) {
		lp->xflags |= PX_PIN;
		lp->t_us = dsm_now_us();
	}
	pg_unlock(lp);
	return pinned;
}

void hold_unpin_lower(struct dsm *d, uint64_t pg)
{
	struct dsm_page *lp = &d->pages[pg - 1];

	pg_lock(lp);
	if (lp->xflags & PX_PIN) {
		lp->xflags = (lp->xflags & ~PX_PIN) | PX_AFTER_PIN;
		lp->t_us = dsm_now_us();
	}
	pg_unlock(lp);
	/* What waited for the pin now waits PIN_AFTER_US: recompute the deadlines. */
	pthread_mutex_lock(&d->hold_lock);
	pthread_cond_signal(&d->hold_cond);
	pthread_mutex_unlock(&d->hold_lock);
}

/* Redo a held request (it may be held again). */
static void hold_redo(struct dsm *d, struct held *h)
{
	char why[128];

	if (h->home) {
		home_complete(d, h->pg);
	} else if (node_fwd(d, h->pg, h->to, h->kind, h->acks, h->token, why)) {
		dsm_fail(d, d->rank, "internal error: %s", why);
	}
	free(h);
}

bool hold_notify_fatal(struct dsm *d)
{
	bool queued;

	pthread_mutex_lock(&d->hold_lock);
	queued = d->hold_started && !d->hold_stop;
	d->fatal_pending = queued;
	pthread_cond_signal(&d->hold_cond);
	pthread_mutex_unlock(&d->hold_lock);
	return queued;
}

static void *hold_thread(void *arg)
{
	struct dsm *d = arg;

	pthread_mutex_lock(&d->hold_lock);
	while (!d->hold_stop) {
		struct held *due = NULL, **pp = &d->held, *first;
		uint32_t now = dsm_now_us();
		int32_t wait = 1000;

		if (d->fatal_pending) {
			d->fatal_pending = false;
			pthread_mutex_unlock(&d->hold_lock);
			if (d->cfg.on_fatal)
				d->cfg.on_fatal(d->cfg.arg, dsm_error(d));
			pthread_mutex_lock(&d->hold_lock);
			continue;
		}

		while (*pp) {
			struct held *h = *pp;
			int32_t left = us_diff(h->until, now);

			if (left <= 0) {
				*pp = h->next;
				h->next = due;
				due = h;
			} else {
				if (left < wait)
					wait = left;
				pp = &h->next;
			}
		}
		if (due) {
			/* Outside the lock: redoing may hold them again. */
			pthread_mutex_unlock(&d->hold_lock);
			while (due) {
				struct held *h = due;
				due = h->next;
				hold_redo(d, h);
			}
			pthread_mutex_lock(&d->hold_lock);
			continue;
		}
		if (d->held) {
			struct timespec ts;

			/*
			 * A pin may end before its deadline: wake at least every
			 * millisecond while anything waits (unpin also signals).
			 */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += (long)wait * 1000;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&d->hold_cond, &d->hold_lock, &ts);
			/*
			 * Re-check every item's page: a pin may have ended.  Not
			 * under hold_lock: dsm_fail takes it with a page lock held.
			 * The items are safe to walk: others only push new ones at
			 * the head, and only this thread unlinks or changes them.
			 */
			first = d->held;
			pthread_mutex_unlock(&d->hold_lock);
			for (struct held *h = first; h; h = h->next) {
				struct dsm_page *lp = &d->pages[h->pg];
				uint32_t until = 0;
				bool still;

				pg_lock(lp);
				still = hold_check(d, lp, &until);
				pg_unlock(lp);
				h->until = still ? until : dsm_now_us();
			}
			pthread_mutex_lock(&d->hold_lock);
		} else {
			pthread_cond_wait(&d->hold_cond, &d->hold_lock);
		}
	}
	pthread_mutex_unlock(&d->hold_lock);
	return NULL;
}

int hold_start(struct dsm *d, char *err)
{
	int rc = pthread_create(&d->hold_thread, NULL, hold_thread, d);

	if (rc) {
		snprintf(err, DSM_ERR_MAX, "cannot start the hold thread: %s", strerror(rc));
		return -1;
	}
	d->hold_started = true;
	return 0;
}

void hold_stop(struct dsm *d)
{
	if (d->hold_started) {
		pthread_mutex_lock(&d->hold_lock);
		d->hold_stop = true;
		pthread_cond_signal(&d->hold_cond);
		pthread_mutex_unlock(&d->hold_lock);
		pthread_join(d->hold_thread, NULL);
		d->hold_started = false;
		/* An error that came as the thread stopped is still reported. */
		if (d->fatal_pending && d->cfg.on_fatal) {
			d->fatal_pending = false;
			d->cfg.on_fatal(d->cfg.arg, dsm_error(d));
		}
	}
	while (d->held) {
		struct held *h = d->held;
		d->held = h->next;
		free(h);
	}
}
