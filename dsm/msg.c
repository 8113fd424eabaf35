/*
 * Incoming messages: every field is checked before use (type, channel,
 * length, page number, node ids, that the sender is the page's home where
 * only the home may send it), then the message goes to its role: home.c
 * for requests, node.c for replies and orders, prefetch.c for bulk.  The
 * handlers check the rest against the state machine.  A message that fails
 * any check makes the transport close its connection and the DSM stop.
 * msg_check reads only the region's shape, so tests/fuzz/dsm-msg.c runs it
 * as it is, without a DSM.
 */
#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "dsm/internal.h"

static const char *const msg_names[] = {
	[DSM_MSG_READ - DSM_MSG_READ] = "READ",
	[DSM_MSG_WRITE - DSM_MSG_READ] = "WRITE",
	[DSM_MSG_FWD - DSM_MSG_READ] = "FWD",
	[DSM_MSG_INV - DSM_MSG_READ] = "INV",
	[DSM_MSG_INV_ACK - DSM_MSG_READ] = "INV_ACK",
	[DSM_MSG_PAGE - DSM_MSG_READ] = "PAGE",
	[DSM_MSG_ZERO - DSM_MSG_READ] = "ZERO",
	[DSM_MSG_GRANT - DSM_MSG_READ] = "GRANT",
	[DSM_MSG_DONE - DSM_MSG_READ] = "DONE",
	[DSM_MSG_PREFETCH - DSM_MSG_READ] = "PREFETCH",
	[DSM_MSG_BULK - DSM_MSG_READ] = "BULK",
	[DSM_MSG_BULK_DONE - DSM_MSG_READ] = "BULK_DONE",
	[DSM_MSG_BYE - DSM_MSG_READ] = "BYE",
	[DSM_MSG_ABORT - DSM_MSG_READ] = "ABORT",
};

static void msg_bye(struct dsm *d, unsigned peer, unsigned channel)
{
	pthread_mutex_lock(&d->lock);
	if (!d->bye[peer * DSM_NR_CHANNELS + channel]) {
		d->bye[peer * DSM_NR_CHANNELS + channel] = 1;
		d->bye_count++;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
}

static void msg_abort(struct dsm *d, unsigned peer, uint64_t culprit, const char *text,
		      uint32_t len)
{
	char msg[DSM_ABORT_MAX + 1], name[96];
	uint32_t i;

	/* Text from another node: printable ASCII only. */
	for (i = 0; i < len && i < DSM_ABORT_MAX && text[i]; i++)
		msg[i] = isprint((unsigned char)text[i]) ? text[i] : '?';
	msg[i] = '\0';
	if (culprit == peer)
		dsm_fail(d, peer, "%s stopped: %s", dsm_peer_name(d, peer, name, sizeof(name)), msg);
	else if (culprit == d->rank)
		dsm_fail(d, d->rank, "the others lost this node: %s (reported by rank %u)", msg, peer);
	else
		dsm_fail(d, culprit, "%s (reported by rank %u)", msg, peer);
}

const char *dsm_msg_name(uint16_t type)
{
	return type >= DSM_MSG_READ && type <= DSM_MSG_LAST ? msg_names[type - DSM_MSG_READ] : "?";
}

/* Every rank of the region, as a set. */
static uint64_t msg_ranks(const struct dsm *d)
{
	return d->nr_nodes >= 64 ? ~0ull : (1ull << d->nr_nodes) - 1;
}

int msg_check(const struct dsm *d, unsigned peer, unsigned channel, const struct wire_hdr *h,
	      char *why)
{
	uint64_t pg = h->arg[0], a1 = h->arg[1], a2 = h->arg[2];
	unsigned want_ch = DSM_CH_DEMAND;
	uint32_t want_len = 0;
	bool need_page = true, from_home = false, to_home = false;
	const char *name;

	if (h->type < DSM_MSG_READ || h->type > DSM_MSG_LAST) {
		snprintf(why, 128, "unknown message type 0x%x", h->type);
		return -1;
	}
	name = msg_names[h->type - DSM_MSG_READ];
	/* seq carries a request's token from the requester to its home, the owner and back. */
	if (h->flags || (h->seq && h->type != DSM_MSG_READ && h->type != DSM_MSG_WRITE &&
			 h->type != DSM_MSG_FWD && h->type != DSM_MSG_PAGE)) {
		snprintf(why, 128, "%s with flags 0x%x and seq %u (both must be 0)", name, h->flags,
			 h->seq);
		return -1;
	}

	switch (h->type) {
	case DSM_MSG_READ:
	case DSM_MSG_WRITE:
		to_home = true;
		if (a1 || a2)
			goto bad_args;
		break;
	case DSM_MSG_DONE:
		to_home = true;
		if (a1 >= d->nr_nodes || a2)
			goto bad_args;
		break;
	case DSM_MSG_FWD:
		/* to, kind, and the acks the requester waits for (none of them the owner's or its own) */
		from_home = true;
		if ((a1 & 0xffff) >= d->nr_nodes || (a1 & 0xffff) == d->rank ||
		    (a1 >> 16) > DSM_KIND_WRITE || (a2 & ~msg_ranks(d)) ||
		    (a2 & (1ull << d->rank | 1ull << (a1 & 0xffff) | 1ull << peer)) ||
		    ((a1 >> 16) == DSM_KIND_READ && a2))
			goto bad_args;
		break;
	case DSM_MSG_INV:
		from_home = true;
		if (a1 >= d->nr_nodes || a1 == d->rank || a2)
			goto bad_args;
		break;
	case DSM_MSG_INV_ACK:
		if (a1 || a2)
			goto bad_args;
		break;
	case DSM_MSG_PAGE:
		want_len = DSM_PAGE_SIZE;
		/* fall through */
	case DSM_MSG_ZERO:
	case DSM_MSG_GRANT:
		if (h->type != DSM_MSG_PAGE)
			from_home = true;
		if (a1 & ~(uint64_t)(DSM_REPLY_WRITE | DSM_REPLY_DONE) || (a2 & ~msg_ranks(d)) ||
		    (a2 & (1ull << d->rank | 1ull << peer)))
			goto bad_args;
		break;
	case DSM_MSG_PREFETCH:
	case DSM_MSG_BULK_DONE:
		to_home = true;
		/* fall through */
	case DSM_MSG_BULK:
		want_ch = DSM_CH_BULK;
		from_home = h->type == DSM_MSG_BULK;
		if (a1 == 0 || a1 > DSM_MAX_RUN || pg >= d->npages || a1 > d->npages - pg ||
		    dsm_home(d, pg + a1 - 1) != dsm_home(d, pg))
			goto bad_args;
		if (h->type == DSM_MSG_BULK) {
			if (a2 > a1)
				goto bad_args;
			want_len = a2 * DSM_PAGE_SIZE;
		} else if (a2) {
			goto bad_args;
		}
		break;
	case DSM_MSG_BYE:
		need_page = false;
		want_ch = channel;
		if (pg || a1 || a2)
			goto bad_args;
		break;
	case DSM_MSG_ABORT:
		need_page = false;
		want_ch = channel;
		if (pg >= d->nr_nodes || a1 || a2 || h->len > DSM_ABORT_MAX)
			goto bad_args;
		want_len = h->len;
		break;
	}
	if (channel != want_ch) {
		snprintf(why, 128, "%s on channel %u, which does not carry it", name, channel);
		return -1;
	}
	if (h->len != want_len) {
		snprintf(why, 128, "%s carries %u bytes, not %u", name, h->len, want_len);
		return -1;
	}
	if (need_page && pg >= d->npages) {
		snprintf(why, 128, "%s for page %llu, beyond the region's %llu pages", name,
			 (unsigned long long)pg, (unsigned long long)d->npages);
		return -1;
	}
	if (to_home && !dsm_is_home(d, pg)) {
		snprintf(why, 128, "%s for page %llu, whose home is rank %u", name,
			 (unsigned long long)pg, dsm_home(d, pg));
		return -1;
	}
	if (from_home && dsm_home(d, pg) != peer) {
		snprintf(why, 128, "%s for page %llu, whose home is rank %u", name,
			 (unsigned long long)pg, dsm_home(d, pg));
		return -1;
	}
	return 0;
bad_args:
	snprintf(why, 128, "%s with invalid arguments (0x%llx, 0x%llx, 0x%llx)", name,
		 (unsigned long long)pg, (unsigned long long)a1, (unsigned long long)a2);
	return -1;
}

/* A message msg_check accepted goes to its role, which checks it against the page's state. */
static int msg_handle(struct dsm *d, unsigned peer, unsigned channel, const struct wire_hdr *h,
		      const void *payload, char *why)
{
	uint64_t pg = h->arg[0], a1 = h->arg[1], a2 = h->arg[2];

	switch (h->type) {
	case DSM_MSG_READ:
		return home_request(d, pg, peer, DSM_KIND_READ, h->seq, why);
	case DSM_MSG_WRITE:
		return home_request(d, pg, peer, DSM_KIND_WRITE, h->seq, why);
	case DSM_MSG_DONE:
		return home_done(d, pg, peer, a1, why);
	case DSM_MSG_FWD:
		return node_fwd(d, pg, a1 & 0xffff, a1 >> 16, a2, h->seq, why);
	case DSM_MSG_INV:
		return node_inv(d, pg, a1, why);
	case DSM_MSG_INV_ACK:
		return node_ack(d, pg, peer, why);
	case DSM_MSG_PAGE:
	case DSM_MSG_ZERO:
	case DSM_MSG_GRANT:
		return node_reply(d, pg, peer, h->type, a1, a2, h->seq, payload, why);
	case DSM_MSG_PREFETCH:
		return prefetch_request(d, peer, pg, a1, why);
	case DSM_MSG_BULK:
		return prefetch_bulk(d, peer, pg, a1, a2, payload, why);
	case DSM_MSG_BULK_DONE:
		return prefetch_done(d, peer, pg, a1, why);
	case DSM_MSG_BYE:
		msg_bye(d, peer, channel);
		return 0;
	case DSM_MSG_ABORT:
		msg_abort(d, peer, pg, payload, h->len);
		return 0;
	}
	return 0;
}

int msg_dispatch(void *arg, unsigned peer, unsigned channel, const struct wire_hdr *h,
		 const void *payload, char *why)
{
	struct dsm *d = arg;
	char name[96];
	int rc;

	STAT_ADD(d, st_msgs_recv, 1);
	STAT_ADD(d, st_bytes_recv, sizeof(*h) + h->len);
	DSM_TRACE(d, DSM_TP_RECV, peer, h->type, h->arg[0]);
	rc = msg_check(d, peer, channel, h, why);
	if (rc == 0)
		rc = msg_handle(d, peer, channel, h, payload, why);
	if (rc == 0)
		return 0;
	dsm_peer_name(d, peer, name, sizeof(name));
	if (rc == -ENOMEM) /* this node's failure, not the sender's */
		dsm_fail(d, d->rank, "out of memory for a message from %s", name);
	else
		dsm_fail(d, peer, "protocol error from %s: %s", name, why);
	return -1;
}

bool msg_expecting(void *arg, unsigned peer, unsigned channel)
{
	struct dsm *d = arg;

	return channel == DSM_CH_DEMAND &&
	       atomic_load_explicit(&d->awaiting[peer], memory_order_relaxed);
}

void msg_lost(void *arg, unsigned peer, unsigned channel, bool malformed, const char *why)
{
	struct dsm *d = arg;
	char name[96];
	bool said_bye;

	pthread_mutex_lock(&d->lock);
	said_bye = d->bye[peer * DSM_NR_CHANNELS + channel] && d->bye_sent;
	pthread_mutex_unlock(&d->lock);
	/*
	 * After its BYE, a peer closes once every node has said BYE, ours
	 * included: not a loss then.  Before we said ours, it died while we
	 * may still need its pages.
	 */
	if (said_bye && !malformed)
		return;
	dsm_fail(d, peer, malformed ? "protocol error from %s: %s" : "%s lost: %s",
		 dsm_peer_name(d, peer, name, sizeof(name)), why);
}
