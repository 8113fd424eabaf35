/*
 * The fabric transport's receive side, fed completions as a provider would
 * hand them: libfabric promises no order of completions (comp_order
 * FI_ORDER_NONE here), so the transport orders each connection's messages by
 * the sequence number in their completion data.  Messages that come early
 * must be dispatched in their turn, and a repeated, far-ahead or unmarked
 * message, or one claiming another rank, must take the connection down as
 * malformed without being dispatched.
 *
 * The transport's own code (dsm/fabric.c, included) on a transport with no
 * endpoint: messages in receive buffers never touch the provider on this
 * path.  The whole transport over a real provider is test-dsm-transport.
 */
#include "dsm/fabric.c"

#include "tests/lib/check.h"

#if HAVE_LIBFABRIC
#define PEER_ADDR 7 /* the address vector index peer 1's HELLO got */

struct seen {
	uint64_t order[16];
	unsigned n, lost, malformed;
	char why[128];
};

static int on_dispatch(void *arg, unsigned peer, unsigned channel, const struct wire_hdr *h,
		       const void *payload, char *why)
{
	struct seen *s = arg;

	(void)peer;
	(void)channel;
	(void)payload;
	(void)why;
	if (s->n < 16)
		s->order[s->n] = h->arg[0];
	s->n++;
	return 0;
}

static void on_lost(void *arg, unsigned peer, unsigned channel, bool malformed, const char *why)
{
	struct seen *s = arg;

	(void)peer;
	(void)channel;
	s->lost++;
	s->malformed += malformed;
	snprintf(s->why, sizeof(s->why), "%s", why);
}

/* Rank 0 of 2, one channel, peer 1 known and ready: no provider behind it. */
struct rig {
	struct fab f;
	struct fab_chan ch;
	struct fab_conn conns[2];
	struct seen seen;
	unsigned char buf[sizeof(struct wire_hdr) + 8];
	struct fab_slot slot;
};

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	r->f.nr_nodes = 2;
	r->f.rank = 0;
	r->f.cfg.nr_channels = 1;
	r->f.cfg.dispatch = on_dispatch;
	r->f.cfg.lost = on_lost;
	r->f.cfg.arg = &r->seen;
	r->f.chans = &r->ch;
	r->f.conns = r->conns;
	r->ch.fab = &r->f;
	r->ch.slot_size = sizeof(r->buf);
	pthread_mutex_init(&r->ch.lock, NULL);
	for (unsigned p = 0; p < 2; p++) {
		r->conns[p].ch = &r->ch;
		r->conns[p].peer = p;
		r->conns[p].fd = -1;
		atomic_init(&r->conns[p].addr, p ? PEER_ADDR : FI_ADDR_NOTAVAIL);
		atomic_init(&r->conns[p].close_at, UINT64_MAX);
	}
	r->slot.ch = &r->ch;
	r->slot.recv = true;
	r->slot.buf = r->buf;
}

static void rig_free(struct rig *r)
{
	for (unsigned k = 0; r->conns[1].held && k < FAB_WINDOW; k++)
		free(r->conns[1].held[k]);
	free(r->conns[1].held);
	pthread_mutex_destroy(&r->ch.lock);
}

/* Message n from rank from, as completion data says: kind, rank and sequence number. */
static void rig_arrive(struct rig *r, uint16_t from, uint64_t n, uint64_t data, uint64_t flags)
{
	struct wire_hdr h = wire_hdr_make(0x1f3, from, 8);
	struct fi_cq_data_entry e = { .flags = flags, .len = sizeof(r->buf), .data = data };

	h.arg[0] = n;
	memcpy(r->buf, &h, sizeof(h));
	memset(r->buf + sizeof(h), (int)n, 8);
	fab_arrived(&r->ch, &e, PEER_ADDR, &r->slot);
}

static void arrive_seq(struct rig *r, unsigned seq)
{
	rig_arrive(r, 1, seq, FAB_DATA(FAB_KIND_MSG, 1, seq, 0), FI_RECV | FI_REMOTE_CQ_DATA);
}

static void test_in_order(void)
{
	struct rig r;

	rig_init(&r);
	for (unsigned i = 0; i < 5; i++)
		arrive_seq(&r, i);
	CHECK_EQ(r.seen.n, 5);
	for (unsigned i = 0; i < 5; i++)
		CHECK_EQ(r.seen.order[i], i);
	CHECK_EQ(r.seen.lost, 0);
	CHECK_EQ(atomic_load(&r.ch.nr_early), 0);
	rig_free(&r);
}

/* 2, 1, 4, 0, 3 arrive: dispatched 0, 1, 2, 3, 4, each as soon as its turn comes. */
static void test_early_held(void)
{
	static const unsigned arrival[] = { 2, 1, 4, 0, 3 };
	static const unsigned dispatched_after[] = { 0, 0, 0, 3, 5 };
	struct rig r;

	rig_init(&r);
	for (unsigned i = 0; i < 5; i++) {
		arrive_seq(&r, arrival[i]);
		CHECK_EQ(r.seen.n, dispatched_after[i]);
	}
	for (unsigned i = 0; i < 5; i++)
		CHECK_EQ(r.seen.order[i], i);
	CHECK_EQ(r.seen.lost, 0);
	CHECK_EQ(atomic_load(&r.ch.nr_early), 3);
	rig_free(&r);
}

/* The sequence number wraps at 4096: 4095 then 0 is in order. */
static void test_wrap(void)
{
	struct rig r;

	rig_init(&r);
	r.conns[1].rx_seq = FAB_SEQ_MOD - 2;
	arrive_seq(&r, 0);
	arrive_seq(&r, FAB_SEQ_MOD - 1);
	CHECK_EQ(r.seen.n, 0);
	arrive_seq(&r, FAB_SEQ_MOD - 2);
	CHECK_EQ(r.seen.n, 3);
	CHECK_EQ(r.seen.order[0], FAB_SEQ_MOD - 2);
	CHECK_EQ(r.seen.order[2], 0);
	CHECK_EQ(r.seen.lost, 0);
	rig_free(&r);
}

static void check_refused(struct rig *r, unsigned dispatched, const char *why)
{
	CHECK_EQ(r->seen.n, dispatched);
	CHECK_EQ(r->seen.lost, 1);
	CHECK_EQ(r->seen.malformed, 1);
	if (!strstr(r->seen.why, why)) {
		fprintf(stderr, "refused with '%s', not '%s'\n", r->seen.why, why);
		CHECK(0);
	}
	CHECK(atomic_load(&r->conns[1].down));
}

static void test_repeated(void)
{
	struct rig r;

	rig_init(&r);
	arrive_seq(&r, 1);
	arrive_seq(&r, 1);
	check_refused(&r, 0, "message 1 twice");
	rig_free(&r);
}

static void test_too_far_ahead(void)
{
	struct rig r;

	rig_init(&r);
	arrive_seq(&r, 0);
	arrive_seq(&r, 1 + FAB_WINDOW);
	check_refused(&r, 1, "when 1 was next");
	/* Nothing more from a connection that is down. */
	arrive_seq(&r, 1);
	CHECK_EQ(r.seen.n, 1);
	rig_free(&r);
}

static void test_unmarked(void)
{
	struct rig r;

	rig_init(&r);
	rig_arrive(&r, 1, 0, 0, FI_RECV);
	check_refused(&r, 0, "without a valid sequence mark");
	rig_free(&r);
}

/* Its address is rank 1's; its completion data says rank 0. */
static void test_other_rank(void)
{
	struct rig r;

	rig_init(&r);
	rig_arrive(&r, 1, 0, FAB_DATA(FAB_KIND_MSG, 0, 0, 0), FI_RECV | FI_REMOTE_CQ_DATA);
	check_refused(&r, 0, "without a valid sequence mark");
	rig_free(&r);
}

/*
 * Its CLOSE said 2 messages: a third is refused, not dispatched.  (The
 * watcher reads the CLOSE and takes the connection down if all came; the
 * third can arrive between the two, as here.)
 */
static void test_after_close(void)
{
	struct rig r;

	rig_init(&r);
	arrive_seq(&r, 0);
	arrive_seq(&r, 1);
	atomic_store(&r.conns[1].close_at, 2);
	arrive_seq(&r, 2);
	check_refused(&r, 2, "a message after its close");
	rig_free(&r);
}

/* A credit for a staging slot we never wrote into. */
static void test_credit_not_held(void)
{
	struct rig r;

	rig_init(&r);
	r.conns[1].rma.slots = 4;
	r.conns[1].rma_free = 0xf;
	rig_arrive(&r, 1, 0, FAB_DATA(FAB_KIND_CREDIT, 1, 0, 2), FI_RECV | FI_REMOTE_CQ_DATA);
	check_refused(&r, 0, "a credit for staging slot 2");
	rig_free(&r);
}

/* A message from an address nobody gave over the mesh is dropped, not a loss. */
static void test_stranger(void)
{
	struct rig r;
	struct fi_cq_data_entry e = { .flags = FI_RECV | FI_REMOTE_CQ_DATA, .len = sizeof(r.buf),
				      .data = FAB_DATA(FAB_KIND_MSG, 1, 0, 0) };

	rig_init(&r);
	memcpy(r.buf, &(struct wire_hdr){ 0 }, sizeof(struct wire_hdr));
	fab_arrived(&r.ch, &e, PEER_ADDR + 1, &r.slot);
	CHECK_EQ(r.seen.n, 0);
	CHECK_EQ(r.seen.lost, 0);
	arrive_seq(&r, 0);
	CHECK_EQ(r.seen.n, 1);
	rig_free(&r);
}

int main(void)
{
	RUN(test_in_order);
	RUN(test_early_held);
	RUN(test_wrap);
	RUN(test_repeated);
	RUN(test_too_far_ahead);
	RUN(test_unmarked);
	RUN(test_other_rank);
	RUN(test_after_close);
	RUN(test_credit_not_held);
	RUN(test_stranger);
	return check_summary();
}
#else
int main(void)
{
	printf("SKIP: this build has no libfabric (./configure --with-libfabric)\n");
	return 77;
}
#endif
