/*
 * The home's directory: for each page homed here, its owner (the node that
 * supplies its data), its holders (every node with a valid copy, the owner
 * included) and whether the owner may write.  The home serialises the
 * transactions on a page: while one is in progress the entry is busy and
 * new requests wait in its queue, so a page never sees two transactions at
 * once and every race reduces to "which request the home took first".
 *
 * A transaction is decided under the page lock into a plan (the messages to
 * send, the home's own copy already dropped or write-protected), and the
 * plan is carried out after the lock is released.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "dsm/internal.h"

struct plan {
	uint64_t pg;
	unsigned to;            /* the requester */
	uint16_t reply;         /* DSM_MSG_PAGE, _ZERO, _GRANT, or 0: the owner replies */
	uint32_t rflags;        /* DSM_REPLY_* */
	uint64_t inv;           /* holders to invalidate, acking to the requester */
	int fwd;                /* the owner that sends the page, or -1 */
	enum dsm_kind fwd_kind;
	uint32_t token;         /* the requester's: its PAGE carries it back */
	bool complete_after;    /* the home ends the transaction once the reply is sent */
	unsigned char data[DSM_PAGE_SIZE] __attribute__((aligned(64)));
};

/*
 * Decide the transaction for a request of `from` (under the page lock).
 * Returns -1 with the reason in why when the state machine does not allow
 * the request.
 */
static int home_start(struct dsm *d, uint64_t pg, unsigned from, enum dsm_kind kind,
		      uint32_t token, struct plan *p, char *why)
{
	struct dsm_dir *e = dsm_dir(d, pg);
	struct dsm_page *lp = &d->pages[pg];
	unsigned self = d->rank;
	uint64_t rbit = 1ull << from, sbit = 1ull << self;

	p->pg = pg;
	p->to = from;
	p->token = token;
	p->reply = 0;
	p->rflags = 0;
	p->inv = 0;
	p->fwd = -1;
	p->complete_after = false;

	if (kind == DSM_KIND_READ && (e->holders & rbit)) {
		snprintf(why, 128, "read request for page %llu, of which rank %u holds a copy",
			 (unsigned long long)pg, from);
		return -1;
	}
	if (kind == DSM_KIND_WRITE && e->owner == from && e->excl) {
		snprintf(why, 128, "write request for page %llu, which rank %u can already write",
			 (unsigned long long)pg, from);
		return -1;
	}
	e->cur = from;

	if (!e->holders) {
		/* Never touched: zeros, and no other copy anywhere, so write access. */
		e->owner = from;
		e->holders = rbit;
		e->excl = 1;
		p->reply = DSM_MSG_ZERO;
		p->rflags = DSM_REPLY_WRITE;
		goto out;
	}
	/* Exclusive on read: the only copy moves instead of being shared. */
	if (kind == DSM_KIND_READ && d->cfg.excl_read && e->holders == (1ull << e->owner))
		kind = DSM_KIND_WRITE;

	if (kind == DSM_KIND_READ) {
		if (e->holders & sbit) {
			if (lp->state == PG_MODIFIED) {
				if (region_protect(d, pg, 1, true, false))
					goto broken;
				lp->state = PG_SHARED;
				lp->xflags &= ~(PX_PIN | PX_AFTER_PIN);
				STAT_ADD(d, st_downgrades, 1);
			}
			memcpy(p->data, dsm_page_addr(d, pg), DSM_PAGE_SIZE);
			p->reply = DSM_MSG_PAGE;
		} else {
			p->fwd = e->owner;
			p->fwd_kind = DSM_KIND_READ;
		}
		e->excl = 0;
		e->holders |= rbit;
	} else {
		uint64_t others;

		if (e->holders & rbit) {
			p->reply = DSM_MSG_GRANT;
		} else if (e->holders & sbit) {
			/* Stop our writers before copying: a write after the copy would be lost. */
			if (lp->state == PG_MODIFIED && region_protect(d, pg, 1, true, false))
				goto broken;
			memcpy(p->data, dsm_page_addr(d, pg), DSM_PAGE_SIZE);
			p->reply = DSM_MSG_PAGE;
		} else {
			p->fwd = e->owner;
			p->fwd_kind = DSM_KIND_WRITE;
		}
		p->rflags = DSM_REPLY_WRITE;
		others = e->holders & ~rbit;
		if (p->fwd >= 0)
			others &= ~(1ull << p->fwd);
		if (others & sbit) {
			/* Our copy goes before anyone can write the page. */
			if (region_drop(d, pg, 1))
				goto broken;
			lp->state = PG_INVALID;
			lp->xflags &= ~(PX_PIN | PX_AFTER_PIN);
			others &= ~sbit;
			STAT_ADD(d, st_inval, 1);
		}
		p->inv = others;
		e->owner = from;
		e->holders = rbit;
		e->excl = 1;
	}
out:
	e->src = p->fwd >= 0 ? (unsigned)p->fwd : self;
	if (from == self) {
		/* Our own fault: it ends when node_reply or node_ack installs the page. */
		e->busy = DIR_WAIT_DONE;
		p->rflags |= DSM_REPLY_DONE;
	} else if (p->fwd >= 0 || p->inv) {
		/* The page or the acks reach the requester from elsewhere: it says when. */
		e->busy = DIR_WAIT_DONE;
		p->rflags |= DSM_REPLY_DONE;
	} else {
		/*
		 * Only our reply is needed, and anything we send the requester
		 * about this page later follows it on the same ordered channel.
		 */
		e->busy = DIR_SENDING;
		p->complete_after = true;
	}
	return 0;
broken:
	snprintf(why, 128, "the DSM is stopping");
	return -1;
}

/*
 * Start the transaction of a request, unless it would take write access
 * from a page we hold (hold.c): then the request goes back to the head of
 * the queue, the entry stays busy, and the hold thread restarts the queue
 * when the hold ends.  Returns 0 (started), 1 (held) or -1 (refused).
 */
static int home_try_start(struct dsm *d, uint64_t pg, unsigned from, enum dsm_kind kind,
			  uint32_t token, struct plan *p, char *why, uint32_t *until)
{
	struct dsm_dir *e = dsm_dir(d, pg);
	struct dsm_req *r;

	if (from == d->rank || !hold_check(d, &d->pages[pg], until))
		return home_start(d, pg, from, kind, token, p, why);
	r = malloc(sizeof(*r));
	if (!r) {
		snprintf(why, 128, "out of memory");
		return -ENOMEM;
	}
	*r = (struct dsm_req){ .next = e->queue, .from = from, .kind = kind, .token = token };
	e->queue = r;
	e->busy = DIR_HELD;
	return 1;
}

/* Send what the plan says.  Returns true when the transaction is over. */
static bool home_run(struct dsm *d, struct plan *p)
{
	char why[128];

	for (uint64_t m = p->inv; m; m &= m - 1)
		dsm_send(d, __builtin_ctzll(m), DSM_CH_DEMAND, DSM_MSG_INV, p->pg, p->to, 0, NULL, 0);
	if (p->fwd >= 0)
		dsm_send_token(d, p->fwd, DSM_CH_DEMAND, DSM_MSG_FWD, p->token, p->pg,
			       p->to | (uint64_t)p->fwd_kind << 16, p->inv, NULL, 0);
	if (p->reply && p->to == d->rank) {
		if (node_reply(d, p->pg, d->rank, p->reply, p->rflags, p->inv, p->token,
			       p->reply == DSM_MSG_PAGE ? p->data : NULL, why))
			dsm_fail(d, d->rank, "internal error: %s", why);
	} else if (p->reply) {
		dsm_send_token(d, p->to, DSM_CH_DEMAND, p->reply,
			       p->reply == DSM_MSG_PAGE ? p->token : 0, p->pg, p->rflags, p->inv,
			       p->reply == DSM_MSG_PAGE ? p->data : NULL,
			       p->reply == DSM_MSG_PAGE ? DSM_PAGE_SIZE : 0);
	}
	return p->complete_after;
}

/* End the transaction on pg and start the queued ones, in order. */
void home_complete(struct dsm *d, uint64_t pg)
{
	struct dsm_dir *e = dsm_dir(d, pg);
	struct dsm_page *lp = &d->pages[pg];
	struct plan *p = NULL;

	for (;;) {
		struct dsm_req *r;
		uint32_t until;
		char why[128];
		int rc;

		pg_lock(lp);
		e->busy = DIR_IDLE;
		r = e->queue;
		if (!r) {
			pg_unlock(lp);
			break;
		}
		e->queue = r->next;
		if (!p && !(p = malloc(sizeof(*p)))) {
			pg_unlock(lp);
			free(r);
			dsm_fail(d, d->rank, "out of memory");
			break;
		}
		rc = home_try_start(d, pg, r->from, r->kind, r->token, p, why, &until);
		pg_unlock(lp);
		if (rc == -ENOMEM) {
			dsm_fail(d, d->rank, "out of memory");
			free(r);
			break;
		}
		if (rc < 0) {
			dsm_fail(d, r->from, "protocol error from %s: %s",
				 dsm_peer_name(d, r->from, (char[96]){ 0 }, 96), why);
			free(r);
			break;
		}
		free(r);
		if (rc == 1) {
			if (hold_home(d, pg, until))
				dsm_fail(d, d->rank, "out of memory");
			break;
		}
		if (!home_run(d, p))
			break;
	}
	free(p);
}

int home_request(struct dsm *d, uint64_t pg, unsigned from, enum dsm_kind kind, uint32_t token,
		 char *why)
{
	struct dsm_dir *e = dsm_dir(d, pg);
	struct dsm_page *lp = &d->pages[pg];
	struct plan plan, *p = &plan;
	uint32_t until;
	int rc;

	pg_lock(lp);
	if (e->busy) {
		struct dsm_req *r;

		/*
		 * A node has at most one request per page in flight, but the
		 * next one may overtake the DONE of the current one: it waits
		 * in the queue like any other.
		 */
		struct dsm_req **tail = &e->queue;

		for (r = e->queue; r; tail = &r->next, r = r->next)
			if (r->from == from)
				goto dup;
		r = malloc(sizeof(*r));
		if (!r) {
			pg_unlock(lp);
			snprintf(why, 128, "out of memory");
			return -ENOMEM;
		}
		*r = (struct dsm_req){ .from = from, .kind = kind, .token = token };
		*tail = r;
		pg_unlock(lp);
		return 0;
	}
	rc = home_try_start(d, pg, from, kind, token, p, why, &until);
	pg_unlock(lp);
	if (rc == 1) {
		rc = hold_home(d, pg, until);
		if (rc)
			snprintf(why, 128, "out of memory");
	} else if (rc == 0 && home_run(d, p)) {
		home_complete(d, pg);
	}
	return rc;
dup:
	pg_unlock(lp);
	snprintf(why, 128, "second request for page %llu while the first is in progress",
		 (unsigned long long)pg);
	return -1;
}

int home_done(struct dsm *d, uint64_t pg, unsigned from, unsigned src, char *why)
{
	struct dsm_dir *e = dsm_dir(d, pg);
	struct dsm_page *lp = &d->pages[pg];
	unsigned want_src;
	bool ok;

	pg_lock(lp);
	ok = e->busy == DIR_WAIT_DONE && e->cur == from;
	want_src = e->src;
	pg_unlock(lp);
	if (!ok) {
		snprintf(why, 128, "DONE for page %llu, which has no transaction of rank %u in progress",
			 (unsigned long long)pg, from);
		return -1;
	}
	if (src != want_src) {
		snprintf(why, 128, "page %llu came to rank %u from rank %u, not from rank %u",
			 (unsigned long long)pg, from, src, want_src);
		return -1;
	}
	home_complete(d, pg);
	return 0;
}

void home_free(struct dsm *d)
{
	for (uint64_t i = 0; d->dir && i < d->home_end - d->home_first; i++)
		while (d->dir[i].queue) {
			struct dsm_req *r = d->dir[i].queue;
			d->dir[i].queue = r->next;
			free(r);
		}
}
