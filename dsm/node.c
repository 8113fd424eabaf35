/*
 * What every node does for a page, whoever its home: fault on it and ask
 * the home (requester), send it on the home's behalf (owner), drop it when
 * told (holder).  The local state of a page changes only here and in
 * home.c, always under the page's lock, together with the mapping:
 *   INVALID   not mapped: any access faults (missing);
 *   SHARED    mapped write-protected: a write faults (write-protect);
 *   MODIFIED  mapped writable.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/log.h"
#include "dsm/internal.h"

static const unsigned char zero_page[DSM_PAGE_SIZE] __attribute__((aligned(4096)));

/* Who owes and who paid the invalidation acks of one pending write. */
struct dsm_ackset {
	uint64_t pg;
	uint64_t want;   /* from the reply: the nodes the home told to ack (0: not replied) */
	uint64_t got;    /* the nodes whose ack came */
	unsigned src;    /* the node the page came from, for DONE */
};

/* The entry of pg (acks_lock held); with create, a new one if none.  NULL: none, or no memory. */
static struct dsm_ackset *node_ackset(struct dsm *d, uint64_t pg, bool create)
{
	struct dsm_ackset *a;

	for (unsigned i = 0; i < d->nr_acksets; i++)
		if (d->acksets[i].pg == pg)
			return &d->acksets[i];
	if (!create)
		return NULL;
	if (d->nr_acksets == d->cap_acksets) {
		unsigned cap = d->cap_acksets ? 2 * d->cap_acksets : 16;

		a = realloc(d->acksets, cap * sizeof(*a));
		if (!a)
			return NULL;
		d->acksets = a;
		d->cap_acksets = cap;
	}
	a = &d->acksets[d->nr_acksets++];
	*a = (struct dsm_ackset){ .pg = pg };
	return a;
}

/* The write it belonged to is complete (acks_lock held). */
static void node_ackset_drop(struct dsm *d, struct dsm_ackset *a)
{
	*a = d->acksets[--d->nr_acksets];
}

void node_free(struct dsm *d)
{
	free(d->acksets);
	d->acksets = NULL;
	d->nr_acksets = d->cap_acksets = 0;
}

void node_fault(struct dsm *d, uint64_t pg, bool write, uint32_t ptid)
{
	struct dsm_page *lp = &d->pages[pg];
	unsigned home = dsm_home(d, pg);
	uint16_t tid = ptid;
	bool pinned = write && hold_pin_lower(d, pg, tid);
	uint32_t now = dsm_now_us(); /* the fault's start: one clock read for all uses */
	uint32_t token;
	char why[128];

	hold_on_fault(d, ptid, now);
	DSM_TRACE(d, DSM_TP_FAULT, home, write, pg);
	pg_lock(lp);
	if (pinned) {
		if (lp->state == PG_MODIFIED) {
			/* Stale fault: nothing to wait for. */
			pg_unlock(lp);
			hold_unpin_lower(d, pg);
			return;
		}
		lp->xflags |= PX_PINS_LOWER;
	}
	if (lp->flags & PF_PREFETCH) {
		/* On its way on the bulk channel; if it does not come, prefetch asks. */
		if (!(lp->flags & (PF_WANT_READ | PF_WANT_WRITE)))
			lp->t_us = now;
		lp->flags |= write ? PF_WANT_WRITE : PF_WANT_READ;
		pg_unlock(lp);
		STAT_ADD(d, st_joined, 1);
		return;
	}
	if (lp->flags & PF_PENDING) {
		/*
		 * Installing the page wakes every thread faulting on it; one
		 * that wanted to write and got a read copy faults again.
		 */
		pg_unlock(lp);
		STAT_ADD(d, st_joined, 1);
		return;
	}
	if (write ? lp->state == PG_MODIFIED : lp->state != PG_INVALID) {
		/* Resolved after the fault was queued: the install woke it. */
		pg_unlock(lp);
		return;
	}
	token = node_pend(d, lp, write);
	lp->t_us = now;
	/* A read may bring write access too (a never-touched page, excl_read). */
	lp->tid = tid;
	pg_unlock(lp);

	if (home == d->rank) {
		if (home_request(d, pg, d->rank, write, token, why))
			dsm_fail(d, d->rank, "internal error: %s", why);
		return;
	}
	node_request(d, pg, write, token);
	if (!write)
		prefetch_on_fault(d, pg, ptid);
}

/*
 * A request of ours on lp is pending from now (page lock held), with a fresh
 * token: the PAGE that answers it must carry it back, and only the nodes the
 * request passes through (its home, and the owner the home forwards it to)
 * see it, so a page from any other node is refused before it is mapped.
 */
uint32_t node_pend(struct dsm *d, struct dsm_page *lp, bool write)
{
	lp->flags |= write ? PF_PEND_WRITE : PF_PEND_READ;
	lp->acks = 0;
	lp->nacks = 0;
	pthread_mutex_lock(&d->token_lock);
	if (!d->nr_tokens) {
		/* getrandom does not fail for this size once the pool is ready; arc4random blocks until then. */
		if (getrandom(d->tokens, sizeof(d->tokens), 0) != sizeof(d->tokens))
			arc4random_buf(d->tokens, sizeof(d->tokens));
		d->nr_tokens = sizeof(d->tokens) / sizeof(d->tokens[0]);
	}
	lp->token = d->tokens[--d->nr_tokens];
	pthread_mutex_unlock(&d->token_lock);
	return lp->token;
}

/* Ask the (remote) home; the request is already pending, with this token (node_pend). */
void node_request(struct dsm *d, uint64_t pg, bool write, uint32_t token)
{
	unsigned home = dsm_home(d, pg);

	atomic_fetch_add_explicit(&d->awaiting[home], 1, memory_order_relaxed);
	dsm_send_token(d, home, DSM_CH_DEMAND, write ? DSM_MSG_WRITE : DSM_MSG_READ, token, pg, 0,
		       0, NULL, 0);
}

/*
 * The pending fault on lp is resolved (page lock held), with write access
 * or not: account for it and say whether the home wants a DONE.
 */
static bool node_finish(struct dsm *d, struct dsm_page *lp, enum dsm_fault_kind kind,
			bool writable)
{
	bool done = lp->flags & PF_DONE;
	unsigned home = dsm_home(d, lp - d->pages);

	if (home != d->rank)
		atomic_fetch_sub_explicit(&d->awaiting[home], 1, memory_order_relaxed);
	dsm_account_fault(d, kind, lp->t_us);
	lp->flags &= ~(PF_PENDING | PF_REPLIED | PF_DONE | PF_GRANT);
	lp->xflags &= ~PX_AFTER_PIN;
	lp->t_us = dsm_now_us();
	if (writable)
		hold_on_write_access(d, lp);
	return done;
}

/* Write access came: a pin this fault put on the previous page ends (page lock held). */
static bool node_unpins(struct dsm_page *lp)
{
	bool pins = lp->xflags & PX_PINS_LOWER;

	lp->xflags &= ~PX_PINS_LOWER;
	return pins;
}

static void node_send_done(struct dsm *d, uint64_t pg, unsigned src)
{
	unsigned home = dsm_home(d, pg);
	char why[128];

	if (home != d->rank) {
		/*
		 * The install just woke the faulting thread, likely onto this
		 * core: let it run first, DONE only matters to the next
		 * transaction on this page.
		 */
		sched_yield();
		dsm_send(d, home, DSM_CH_DEMAND, DSM_MSG_DONE, pg, src, 0, NULL, 0);
		return;
	}
	if (home_done(d, pg, d->rank, src, why))
		dsm_fail(d, d->rank, "internal error: %s", why);
}

static enum dsm_fault_kind node_kind(struct dsm *d, unsigned from, uint16_t type, bool write,
				     uint64_t acks)
{
	if (type == DSM_MSG_ZERO)
		return DSM_FAULT_ZERO;
	if (type == DSM_MSG_GRANT)
		return from == d->rank && !acks ? DSM_FAULT_LOCAL : DSM_FAULT_UPGRADE;
	return write ? DSM_FAULT_WRITE : DSM_FAULT_READ;
}

/* Keep a page's data until its last ack (page lock held); false if no slot is free. */
static bool node_park(struct dsm *d, struct dsm_page *lp, const void *data)
{
	uint64_t free = atomic_load(&d->park_free);
	unsigned slot;

	do {
		if (!free)
			return false;
		slot = __builtin_ctzll(free);
	} while (!atomic_compare_exchange_weak(&d->park_free, &free, free & ~(1ull << slot)));
	memcpy(d->park + (size_t)slot * DSM_PAGE_SIZE, data, DSM_PAGE_SIZE);
	lp->parked = slot + 1;
	return true;
}

/* Map a parked page writable, waking its faulting threads (page lock held). */
static void node_unpark(struct dsm *d, struct dsm_page *lp)
{
	unsigned slot = lp->parked - 1;

	region_copy(d, lp - d->pages, 1, d->park + (size_t)slot * DSM_PAGE_SIZE, false, true);
	lp->parked = 0;
	atomic_fetch_or(&d->park_free, 1ull << slot);
}

int node_reply(struct dsm *d, uint64_t pg, unsigned from, uint16_t type, uint32_t flags,
	       uint64_t acks, uint32_t token, const void *data, char *why)
{
	struct dsm_page *lp = &d->pages[pg];
	bool write = flags & DSM_REPLY_WRITE, complete, done = false, wanted_write, unpin = false;
	unsigned nacks = __builtin_popcountll(acks);
	struct dsm_ackset *a = NULL;
	const char *bad = NULL;

	pg_lock(lp);
	if (lp->acks) {
		pthread_mutex_lock(&d->acks_lock);
		a = node_ackset(d, pg, false);
	}
	if (!(lp->flags & PF_PENDING))
		bad = "no request of ours is in progress";
	else if (lp->flags & PF_REPLIED)
		bad = "it was already answered";
	else if (type == DSM_MSG_GRANT && (lp->state != PG_SHARED || !write))
		bad = "a grant needs a read copy here and must give write access";
	else if (type != DSM_MSG_GRANT && lp->state != PG_INVALID)
		bad = "a copy is already mapped here";
	else if ((type == DSM_MSG_ZERO || !write) && acks)
		bad = "only a write grant waits for invalidations";
	else if (type == DSM_MSG_ZERO && !write)
		bad = "a never-touched page is always given with write access";
	else if (from != dsm_home(d, pg) && !(flags & DSM_REPLY_DONE))
		bad = "a page from another node than its home must be reported DONE";
	else if (a && (a->got & ~acks))
		bad = "an invalidation ack came from a node it does not name";
	else if (lp->acks && !a)
		bad = "acks came but were not recorded";
	else if (type == DSM_MSG_PAGE && token != lp->token)
		bad = "it does not carry our request's token (not a node the home asked to send it)";
	if (bad) {
		if (lp->acks)
			pthread_mutex_unlock(&d->acks_lock);
		pg_unlock(lp);
		snprintf(why, 128, "reply 0x%x for page %llu from rank %u: %s", type,
			 (unsigned long long)pg, from, bad);
		return -1;
	}
	complete = lp->acks == nacks;
	if (!complete && !a) {
		pthread_mutex_lock(&d->acks_lock);
		a = node_ackset(d, pg, true);
		if (!a) {
			pthread_mutex_unlock(&d->acks_lock);
			pg_unlock(lp);
			snprintf(why, 128, "out of memory");
			return -ENOMEM;
		}
	}
	if (a) {
		/* Acks still to come are checked against this; the last one sends DONE. */
		a->want = acks;
		a->src = from;
		if (complete)
			node_ackset_drop(d, a);
		pthread_mutex_unlock(&d->acks_lock);
	}
	wanted_write = lp->flags & PF_PEND_WRITE;
	lp->flags |= PF_REPLIED | (flags & DSM_REPLY_DONE ? PF_DONE : 0) |
		     (type == DSM_MSG_GRANT ? PF_GRANT : 0);
	lp->nacks = nacks;
	/* Accounted before the install wakes the faulting thread, which may read the stats. */
	if (complete) {
		done = node_finish(d, lp, node_kind(d, from, type, write, acks), write);
		unpin = write && node_unpins(lp);
	}

	switch (type) {
	case DSM_MSG_PAGE:
		STAT_ADD(d, st_pages_recv, from != d->rank);
		/* Before the last ack: keep the data aside, map it with the last ack. */
		if (write && !complete && node_park(d, lp, data))
			break;
		/*
		 * No room aside: map it read-only (other copies may still be
		 * read, so reading it is fine) and let the faulting thread sleep
		 * on until the last ack makes it writable.
		 */
		region_copy(d, pg, 1, data, !(write && complete), !write || complete);
		lp->state = write && complete ? PG_MODIFIED : PG_SHARED;
		break;
	case DSM_MSG_ZERO:
		/* The zero page for a read; a write fault needs its own page now. */
		if (wanted_write)
			region_copy(d, pg, 1, zero_page, false, true);
		else
			region_zeropage(d, pg);
		lp->state = PG_MODIFIED;
		break;
	case DSM_MSG_GRANT:
		if (complete) {
			region_protect(d, pg, 1, false, true);
			lp->state = PG_MODIFIED;
		}
		break;
	}
	if (complete)
		DSM_TRACE(d, DSM_TP_MAPPED, from, type, pg);
	pg_unlock(lp);
	if (unpin)
		hold_unpin_lower(d, pg);
	if (done)
		node_send_done(d, pg, from);
	return 0;
}

int node_ack(struct dsm *d, uint64_t pg, unsigned from, char *why)
{
	struct dsm_page *lp = &d->pages[pg];
	bool done = false, unpin = false, last;
	struct dsm_ackset *a;
	const char *bad = NULL;
	unsigned src = 0;

	pg_lock(lp);
	if (!(lp->flags & PF_PEND_WRITE) || ((lp->flags & PF_REPLIED) && lp->acks >= lp->nacks)) {
		pg_unlock(lp);
		snprintf(why, 128, "unexpected invalidation ack for page %llu from rank %u",
			 (unsigned long long)pg, from);
		return -1;
	}
	pthread_mutex_lock(&d->acks_lock);
	a = node_ackset(d, pg, true);
	if (!a) {
		pthread_mutex_unlock(&d->acks_lock);
		pg_unlock(lp);
		snprintf(why, 128, "out of memory");
		return -ENOMEM;
	}
	if (from == d->rank || (a->got & 1ull << from))
		bad = "a second one from that node";
	else if ((lp->flags & PF_REPLIED) && !(a->want & 1ull << from))
		bad = "the home did not ask that node to drop the page";
	if (bad) {
		pthread_mutex_unlock(&d->acks_lock);
		pg_unlock(lp);
		snprintf(why, 128, "invalidation ack for page %llu from rank %u: %s",
			 (unsigned long long)pg, from, bad);
		return -1;
	}
	a->got |= 1ull << from;
	lp->acks++;
	last = (lp->flags & PF_REPLIED) && lp->acks == lp->nacks;
	if (last) {
		src = a->src;
		node_ackset_drop(d, a);
	}
	pthread_mutex_unlock(&d->acks_lock);
	if (last) {
		/* The last copy elsewhere is gone: ours becomes writable. */
		done = node_finish(d, lp, lp->flags & PF_GRANT ? DSM_FAULT_UPGRADE : DSM_FAULT_WRITE,
				   true);
		unpin = node_unpins(lp);
		if (lp->parked)
			node_unpark(d, lp);
		else
			region_protect(d, pg, 1, false, true);
		lp->state = PG_MODIFIED;
		DSM_TRACE(d, DSM_TP_MAPPED, from, DSM_MSG_INV_ACK, pg);
	}
	pg_unlock(lp);
	if (unpin)
		hold_unpin_lower(d, pg);
	if (done)
		node_send_done(d, pg, src);
	return 0;
}

int node_fwd(struct dsm *d, uint64_t pg, unsigned to, enum dsm_kind kind, uint64_t acks,
	     uint32_t token, char *why)
{
	struct dsm_page *lp = &d->pages[pg];
	unsigned char buf[DSM_PAGE_SIZE] __attribute__((aligned(64)));
	uint32_t flags = DSM_REPLY_DONE;

	uint32_t until;

	pg_lock(lp);
	if (lp->state == PG_INVALID) {
		pg_unlock(lp);
		snprintf(why, 128, "asked to send page %llu, which is not here",
			 (unsigned long long)pg);
		return -1;
	}
	if (hold_check(d, lp, &until)) {
		pg_unlock(lp);
		if (hold_fwd(d, pg, to, kind, acks, token, until)) {
			snprintf(why, 128, "out of memory");
			return -ENOMEM;
		}
		return 0;
	}
	lp->xflags &= ~(PX_PIN | PX_AFTER_PIN);
	if (kind == DSM_KIND_READ) {
		if (lp->state == PG_MODIFIED) {
			/* Downgrade: keep reading, writes fault from now on. */
			if (region_protect(d, pg, 1, true, false))
				goto broken;
			lp->state = PG_SHARED;
			STAT_ADD(d, st_downgrades, 1);
		}
		memcpy(buf, dsm_page_addr(d, pg), DSM_PAGE_SIZE);
	} else {
		/*
		 * Write-protect, copy, drop: a write here after the copy would be
		 * lost, and a read after the new owner's first write would be stale.
		 */
		if (lp->state == PG_MODIFIED && region_protect(d, pg, 1, true, false))
			goto broken;
		memcpy(buf, dsm_page_addr(d, pg), DSM_PAGE_SIZE);
		if (region_drop(d, pg, 1))
			goto broken;
		lp->state = PG_INVALID;
		flags |= DSM_REPLY_WRITE;
		STAT_ADD(d, st_inval, 1);
	}
	pg_unlock(lp);
	dsm_send_token(d, to, DSM_CH_DEMAND, DSM_MSG_PAGE, token, pg, flags, acks, buf,
		       DSM_PAGE_SIZE);
	return 0;
broken:
	pg_unlock(lp);
	snprintf(why, 128, "the DSM is stopping");
	return -1;
}

int node_inv(struct dsm *d, uint64_t pg, unsigned ack_to, char *why)
{
	struct dsm_page *lp = &d->pages[pg];

	pg_lock(lp);
	if (lp->state != PG_SHARED) {
		pg_unlock(lp);
		snprintf(why, 128, "asked to drop page %llu, of which no read copy is here",
			 (unsigned long long)pg);
		return -1;
	}
	if (region_drop(d, pg, 1)) {
		pg_unlock(lp);
		snprintf(why, 128, "the DSM is stopping");
		return -1;
	}
	lp->state = PG_INVALID;
	STAT_ADD(d, st_inval, 1);
	pg_unlock(lp);
	dsm_send(d, ack_to, DSM_CH_DEMAND, DSM_MSG_INV_ACK, pg, 0, 0, NULL, 0);
	return 0;
}
