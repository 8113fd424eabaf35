/*
 * dsm/msg.c's msg_check: the checks every DSM message from another node
 * passes before its handler sees it.  The input is the region's shape
 * (node count, our rank, the sender, the channel, how many pages each node
 * homes), then a message header as wire_recv delivers it.  Checked beyond
 * the sanitizers, against docs/protocol.md ("Validation of incoming
 * messages"), recomputed here independently (the home by a linear scan,
 * not dsm_home's binary search): an accepted message has a known type on
 * the channel that carries it, flags 0, sequence 0 but on READ, WRITE, FWD
 * and PAGE (a request's token), the payload length of
 * its type, its page inside the region, homed here for a request and on
 * the sender for what only the home sends, every rank it names < N (and
 * not those it must not name), runs of 1 to 64 pages inside one home.  A
 * refusal says why.
 *
 * Input: nr_nodes - 1, rank, peer, channel (each modulo its range, the
 * peer never ourselves), then one page count (0 to 255) per node, then the
 * 40-byte header.
 */
#include <string.h>

#include "dsm/internal.h"
#include "tests/fuzz/lib/fuzz.h"

/* The home of pg by a plain scan of the map: the node whose range holds it. */
static unsigned scan_home(const uint64_t *hs, unsigned nr, uint64_t pg)
{
	for (unsigned i = 0; i < nr; i++)
		if (hs[i] <= pg && pg < hs[i + 1])
			return i;
	return nr; /* outside the region */
}

/* A set of ranks: all < nr, none of `not`. */
static bool ranks_fit(uint64_t set, unsigned nr, uint64_t not)
{
	for (unsigned i = 0; i < 64; i++)
		if ((set >> i & 1) && (i >= nr || (not >> i & 1)))
			return false;
	return true;
}

static void check_accepted(const struct dsm *d, unsigned peer, unsigned ch,
			   const struct wire_hdr *h)
{
	uint64_t pg = h->arg[0], a1 = h->arg[1], a2 = h->arg[2];
	unsigned nr = d->nr_nodes, home = scan_home(d->home_start, nr, pg);
	bool bulk = h->type == DSM_MSG_PREFETCH || h->type == DSM_MSG_BULK ||
		    h->type == DSM_MSG_BULK_DONE;
	bool control = h->type == DSM_MSG_BYE || h->type == DSM_MSG_ABORT;

	FUZZ_CHECK(h->type >= DSM_MSG_READ && h->type <= DSM_MSG_LAST);
	/* seq: a request's token, on the messages of a request's path only */
	FUZZ_CHECK(h->flags == 0 && (h->seq == 0 || h->type == DSM_MSG_READ ||
				     h->type == DSM_MSG_WRITE || h->type == DSM_MSG_FWD ||
				     h->type == DSM_MSG_PAGE));
	FUZZ_CHECK(control || ch == (bulk ? DSM_CH_BULK : DSM_CH_DEMAND));
	FUZZ_CHECK(control || (pg < d->npages && home < nr));
	if (home < nr)
		FUZZ_CHECK(dsm_home(d, pg) == home);
	FUZZ_CHECK(h->len == (h->type == DSM_MSG_PAGE ? DSM_PAGE_SIZE :
			      h->type == DSM_MSG_BULK ? a2 * DSM_PAGE_SIZE :
			      h->type == DSM_MSG_ABORT ? h->len : 0));

	switch (h->type) {
	case DSM_MSG_READ:
	case DSM_MSG_WRITE:
		FUZZ_CHECK(home == d->rank && !a1 && !a2);
		break;
	case DSM_MSG_DONE:
		FUZZ_CHECK(home == d->rank && a1 < nr && !a2);
		break;
	case DSM_MSG_FWD: {
		uint64_t to = a1 & 0xffff, kind = a1 >> 16;

		FUZZ_CHECK(home == peer && to < nr && to != d->rank && kind <= DSM_KIND_WRITE);
		FUZZ_CHECK(ranks_fit(a2, nr, 1ull << d->rank | 1ull << to | 1ull << peer));
		FUZZ_CHECK(kind == DSM_KIND_WRITE || !a2);
		break;
	}
	case DSM_MSG_INV:
		FUZZ_CHECK(home == peer && a1 < nr && a1 != d->rank && !a2);
		break;
	case DSM_MSG_INV_ACK:
		FUZZ_CHECK(!a1 && !a2);
		break;
	case DSM_MSG_ZERO:
	case DSM_MSG_GRANT:
		FUZZ_CHECK(home == peer);
		/* fall through */
	case DSM_MSG_PAGE:
		FUZZ_CHECK(!(a1 & ~(uint64_t)(DSM_REPLY_WRITE | DSM_REPLY_DONE)));
		FUZZ_CHECK(ranks_fit(a2, nr, 1ull << d->rank | 1ull << peer));
		break;
	case DSM_MSG_PREFETCH:
	case DSM_MSG_BULK:
	case DSM_MSG_BULK_DONE:
		FUZZ_CHECK(a1 >= 1 && a1 <= DSM_MAX_RUN && pg + a1 <= d->npages);
		FUZZ_CHECK(scan_home(d->home_start, nr, pg + a1 - 1) == home);
		FUZZ_CHECK(h->type == DSM_MSG_BULK ? home == peer && a2 <= a1 :
						    home == d->rank && !a2);
		break;
	case DSM_MSG_BYE:
		FUZZ_CHECK(!pg && !a1 && !a2);
		break;
	case DSM_MSG_ABORT:
		FUZZ_CHECK(pg < nr && !a1 && !a2 && h->len <= DSM_ABORT_MAX);
		break;
	}
}

/* One seed: 4 nodes of 16 pages, we are rank 1. */
static void seed(const char *dir, const char *name, unsigned peer, unsigned ch, uint16_t type,
		 uint64_t a0, uint64_t a1, uint64_t a2, uint32_t len)
{
	uint8_t in[8 + sizeof(struct wire_hdr)] = { 3, 1, peer, ch, 16, 16, 16, 16 };
	struct wire_hdr h = wire_hdr_make(type, peer, len);

	h.arg[0] = a0;
	h.arg[1] = a1;
	h.arg[2] = a2;
	memcpy(in + 8, &h, sizeof(h));
	fuzz_seed(dir, name, in, sizeof(in));
}

/* Rank 1 homes pages 16 to 31. */
static void seeds(const char *dir)
{
	seed(dir, "read", 0, DSM_CH_DEMAND, DSM_MSG_READ, 17, 0, 0, 0);
	seed(dir, "write", 2, DSM_CH_DEMAND, DSM_MSG_WRITE, 31, 0, 0, 0);
	seed(dir, "fwd", 2, DSM_CH_DEMAND, DSM_MSG_FWD, 40, 3 | DSM_KIND_WRITE << 16, 1, 0);
	seed(dir, "inv", 0, DSM_CH_DEMAND, DSM_MSG_INV, 2, 3, 0, 0);
	seed(dir, "inv-ack", 3, DSM_CH_DEMAND, DSM_MSG_INV_ACK, 5, 0, 0, 0);
	seed(dir, "page", 3, DSM_CH_DEMAND, DSM_MSG_PAGE, 5, DSM_REPLY_WRITE | DSM_REPLY_DONE, 4,
	     DSM_PAGE_SIZE);
	seed(dir, "zero", 3, DSM_CH_DEMAND, DSM_MSG_ZERO, 50, DSM_REPLY_WRITE, 0, 0);
	seed(dir, "grant", 0, DSM_CH_DEMAND, DSM_MSG_GRANT, 1, DSM_REPLY_WRITE, 12, 0);
	seed(dir, "done", 2, DSM_CH_DEMAND, DSM_MSG_DONE, 20, 3, 0, 0);
	seed(dir, "prefetch", 0, DSM_CH_BULK, DSM_MSG_PREFETCH, 16, 16, 0, 0);
	seed(dir, "bulk", 2, DSM_CH_BULK, DSM_MSG_BULK, 33, 8, 2, 2 * DSM_PAGE_SIZE);
	seed(dir, "bulk-done", 3, DSM_CH_BULK, DSM_MSG_BULK_DONE, 20, 4, 0, 0);
	seed(dir, "bye", 0, DSM_CH_BULK, DSM_MSG_BYE, 0, 0, 0, 0);
	seed(dir, "abort", 2, DSM_CH_DEMAND, DSM_MSG_ABORT, 3, 0, 0, 12);
	seed(dir, "bad-home", 0, DSM_CH_DEMAND, DSM_MSG_READ, 40, 0, 0, 0);
}

FUZZ_INIT_SEEDS(seeds)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t home_start[DSM_MAX_NODES + 1] = { 0 };
	struct dsm d = { 0 };
	struct wire_hdr h;
	unsigned peer, ch;
	char why[128] = "";

	if (size < 4)
		return 0;
	d.nr_nodes = 1 + data[0] % DSM_MAX_NODES;
	d.rank = data[1] % d.nr_nodes;
	peer = data[2] % d.nr_nodes;
	ch = data[3] % DSM_NR_CHANNELS;
	if (peer == d.rank || size < 4 + d.nr_nodes + sizeof(h))
		return 0;
	for (unsigned i = 0; i < d.nr_nodes; i++)
		home_start[i + 1] = home_start[i] + data[4 + i];
	d.home_start = home_start;
	d.npages = home_start[d.nr_nodes];
	d.home_first = home_start[d.rank];
	d.home_end = home_start[d.rank + 1];
	memcpy(&h, data + 4 + d.nr_nodes, sizeof(h));

	if (msg_check(&d, peer, ch, &h, why) == 0)
		check_accepted(&d, peer, ch, &h);
	else
		FUZZ_CHECK(why[0] && memchr(why, '\0', sizeof(why)));
	return 0;
}
