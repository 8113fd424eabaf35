/*
 * Prefetch for sequential reads, on the bulk channel so that demand faults
 * never queue behind it.
 *
 * A faulting thread (userfaultfd tells which) whose read faults follow each
 * other page by page is a stream.  With its demand request for page p, the
 * requester asks the home for the window after p, marking those pages
 * "expected" so that its own faults on them wait instead of asking again.
 * The home sends, in one message, the longest prefix of that window it can
 * give away at once: pages it holds, that no transaction is using and that
 * the requester does not hold; it keeps each one busy until the requester
 * says it has installed them (BULK_DONE), because a later invalidation
 * travels on the demand channel and must not overtake the data.  The
 * requester installs the run with one UFFDIO_COPY and asks on demand for
 * any page in the window that did not come and that a thread is waiting for.
 * The window doubles while the stream goes on, up to cfg.prefetch_pages.
 * When a thread already waits for a window as it arrives, what follows is
 * asked for at once, up to two windows ahead (prefetch_ahead).
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "dsm/internal.h"

#define PREFETCH_FIRST_WINDOW 4
/*
 * Windows in flight ahead of a reader that waits: with one, the reader
 * waits a round trip per window; two bought 1.5x on loopback, three or
 * four little more (bench-dsm, docs/performance.md).
 */
#define PREFETCH_DEPTH 2ull

/*
 * Ask for up to `count` pages from `first` on, those neither here nor
 * coming; the stream's window is `window` from now on.
 */
static void prefetch_issue(struct dsm *d, struct dsm_stream *s, uint64_t first, unsigned window,
			   unsigned count)
{
	unsigned home = dsm_home(d, first), n = 0;
	uint64_t end = first + (count < window ? count : window);

	if (end > d->home_start[home + 1])
		end = d->home_start[home + 1];
	for (uint64_t q = first; q < end; q++, n++) {
		struct dsm_page *lp = &d->pages[q];
		bool idle;

		pg_lock(lp);
		idle = lp->state == PG_INVALID && !(lp->flags & (PF_PENDING | PF_PREFETCH));
		if (idle)
			lp->flags |= PF_PREFETCH;
		pg_unlock(lp);
		if (!idle)
			break;
	}
	atomic_store_explicit(&s->window, window, memory_order_relaxed);
	atomic_store_explicit(&s->next, first + n, memory_order_relaxed);
	if (n)
		dsm_send(d, home, DSM_CH_BULK, DSM_MSG_PREFETCH, first, n, 0, NULL, 0);
}

/* The stream goes on: twice the last window, within [PREFETCH_FIRST_WINDOW, prefetch_pages]. */
static unsigned prefetch_grow(struct dsm *d, struct dsm_stream *s)
{
	unsigned window = atomic_load_explicit(&s->window, memory_order_relaxed) * 2;

	if (window < PREFETCH_FIRST_WINDOW)
		window = PREFETCH_FIRST_WINDOW;
	return window < d->cfg.prefetch_pages ? window : d->cfg.prefetch_pages;
}

void prefetch_on_fault(struct dsm *d, uint64_t pg, uint32_t ptid)
{
	struct dsm_stream *s = &d->streams[ptid % DSM_STREAMS];

	if (!d->cfg.prefetch_pages || dsm_home(d, pg) == d->rank || pg + 1 >= d->npages)
		return;
	if (atomic_load_explicit(&s->next, memory_order_relaxed) != pg) {
		/* Not (yet) a stream: remember where it would go on. */
		atomic_store_explicit(&s->next, pg + 1, memory_order_relaxed);
		atomic_store_explicit(&s->window, PREFETCH_FIRST_WINDOW / 2, memory_order_relaxed);
		return;
	}
	if (dsm_home(d, pg + 1) == dsm_home(d, pg))
		prefetch_issue(d, s, pg + 1, prefetch_grow(d, s), d->cfg.prefetch_pages);
}

/*
 * A full window came and a thread was already waiting for it: the reader
 * is faster than the network, so ask now for what follows, up to
 * PREFETCH_DEPTH largest windows beyond the one that came (one is sent
 * while the other is installed and read), rather than at its next fault.
 * `next` is where the window that came ends; the stream's own `next` is
 * where its last request ends.  A reader that did not wait faults at the
 * end of what it was sent and restarts the stream there: nothing more is
 * fetched ahead of a reader that does not need it.
 */
static void prefetch_ahead(struct dsm *d, uint64_t next)
{
	for (unsigned i = 0; i < DSM_STREAMS; i++) {
		struct dsm_stream *s = &d->streams[i];
		uint64_t from = atomic_load_explicit(&s->next, memory_order_relaxed);

		if (from < next || from > next + PREFETCH_DEPTH * d->cfg.prefetch_pages)
			continue;
		for (;;) {
			uint64_t ahead;

			from = atomic_load_explicit(&s->next, memory_order_relaxed);
			ahead = from - next; /* huge if a fault moved the stream back meanwhile */
			if (ahead >= PREFETCH_DEPTH * d->cfg.prefetch_pages)
				return;
			if (from >= d->npages || dsm_home(d, from) != dsm_home(d, next - 1))
				return;
			prefetch_issue(d, s, from, prefetch_grow(d, s),
				       PREFETCH_DEPTH * d->cfg.prefetch_pages - ahead);
			if (atomic_load_explicit(&s->next, memory_order_relaxed) == from)
				return; /* nothing asked: a page of it is here or coming */
		}
		return;
	}
}

/* At the home: send what can be given of [first, first + count) to `from`. */
int prefetch_request(struct dsm *d, unsigned from, uint64_t first, unsigned count, char *why)
{
	uint64_t rbit = 1ull << from, sbit = 1ull << d->rank;
	unsigned n = 0, locked;
	bool any_modified = false;

	(void)why;
	/* Lock the eligible prefix, in ascending order (the only multi-page locking). */
	for (; n < count; n++) {
		uint64_t q = first + n;
		struct dsm_dir *e = dsm_dir(d, q);

		uint32_t until;

		pg_lock(&d->pages[q]);
		if (e->busy || e->queue || (e->holders & rbit) || !(e->holders & sbit) ||
		    hold_check(d, &d->pages[q], &until)) {
			pg_unlock(&d->pages[q]);
			break;
		}
		any_modified |= d->pages[q].state == PG_MODIFIED;
	}
	/* One write-protect for the run: our writers must not change what we send. */
	locked = n;
	if (n && any_modified && region_protect(d, first, n, true, false))
		n = 0; /* the DSM is stopping: send nothing, but unlock them all */
	for (unsigned i = 0; i < n; i++) {
		uint64_t q = first + i;
		struct dsm_dir *e = dsm_dir(d, q);

		if (d->pages[q].state == PG_MODIFIED) {
			d->pages[q].state = PG_SHARED;
			STAT_ADD(d, st_downgrades, 1);
		}
		e->excl = 0;
		e->holders |= rbit;
		e->busy = DIR_BULK;
		e->cur = from;
	}
	for (unsigned i = locked; i-- > 0;)
		pg_unlock(&d->pages[first + i]);
	/*
	 * Sent from our own copy, without copying it first: until BULK_DONE the
	 * run is busy (no transaction can invalidate or grant it) and
	 * write-protected, and a transport is done with the data when its send
	 * returns.
	 */
	dsm_send(d, from, DSM_CH_BULK, DSM_MSG_BULK, first, count, n,
		 n ? dsm_page_addr(d, first) : NULL, n * DSM_PAGE_SIZE);
	return 0;
}

/* At the requester: the home's answer to our PREFETCH. */
int prefetch_bulk(struct dsm *d, unsigned from, uint64_t first, unsigned count, unsigned n,
		  const void *data, char *why)
{
	uint64_t ask[DSM_MAX_RUN];
	uint32_t token[DSM_MAX_RUN];
	unsigned nask = 0;
	bool waited = false;

	/* Nothing changes an expected page but this message: check them all first. */
	for (unsigned i = 0; i < count; i++) {
		struct dsm_page *lp = &d->pages[first + i];
		bool ok;

		pg_lock(lp);
		ok = (lp->flags & PF_PREFETCH) && lp->state == PG_INVALID;
		pg_unlock(lp);
		if (!ok) {
			snprintf(why, 128, "bulk page %llu was not asked for",
				 (unsigned long long)(first + i));
			return -1;
		}
	}
	if (n) {
		/* One copy for the run, read-only; it wakes whoever waits on any of it. */
		for (unsigned i = 0; i < n; i++)
			pg_lock(&d->pages[first + i]);
		for (unsigned i = 0; i < n; i++) {
			struct dsm_page *lp = &d->pages[first + i];

			if (lp->flags & (PF_WANT_READ | PF_WANT_WRITE)) {
				dsm_account_fault(d, DSM_FAULT_READ, lp->t_us);
				waited = true;
			}
			lp->flags &= ~(PF_PREFETCH | PF_WANT_READ | PF_WANT_WRITE);
		}
		region_copy(d, first, n, data, true, true);
		for (unsigned i = n; i-- > 0;) {
			d->pages[first + i].state = PG_SHARED;
			pg_unlock(&d->pages[first + i]);
		}
		STAT_ADD(d, st_prefetched, n);
		STAT_ADD(d, st_pages_recv, n);
		dsm_send(d, from, DSM_CH_BULK, DSM_MSG_BULK_DONE, first, n, 0, NULL, 0);
	}
	/* Not sent: a thread waiting for one of them asks for it now. */
	for (unsigned i = n; i < count; i++) {
		struct dsm_page *lp = &d->pages[first + i];

		pg_lock(lp);
		lp->flags &= ~PF_PREFETCH;
		if (lp->flags & (PF_WANT_READ | PF_WANT_WRITE)) {
			bool write = lp->flags & PF_WANT_WRITE;

			token[nask] = node_pend(d, lp, write);
			ask[nask++] = (first + i) << 1 | write;
		}
		lp->flags &= ~(PF_WANT_READ | PF_WANT_WRITE);
		pg_unlock(lp);
	}
	for (unsigned i = 0; i < nask; i++)
		node_request(d, ask[i] >> 1, ask[i] & 1, token[i]);
	if (waited && n == count)
		prefetch_ahead(d, first + count);
	return 0;
}

/* At the home: the requester installed [first, first + n). */
int prefetch_done(struct dsm *d, unsigned from, uint64_t first, unsigned n, char *why)
{
	for (unsigned i = 0; i < n; i++) {
		struct dsm_dir *e = dsm_dir(d, first + i);
		bool ok;

		pg_lock(&d->pages[first + i]);
		ok = e->busy == DIR_BULK && e->cur == from;
		pg_unlock(&d->pages[first + i]);
		if (!ok) {
			snprintf(why, 128, "BULK_DONE for page %llu, which was not sent to rank %u",
				 (unsigned long long)(first + i), from);
			return -1;
		}
		home_complete(d, first + i);
	}
	return 0;
}
