/*
 * The fabric transport's receive path (dsm/fabric.c, included: fab_arrived
 * and what it calls), fed the completions a provider could hand it: any
 * flags, completion data, length, source address and bytes.  No provider
 * is behind it; the one call it makes out, a credit's fi_injectdata, goes
 * to an endpoint of this file's that takes it or says try again.
 *
 * Checked beyond the sanitizers, as dsm/fabric.c promises: a message is
 * dispatched only from a peer whose address came over the mesh (ranks 1
 * and 2 here; address 9 and FI_ADDR_NOTAVAIL are strangers), whole (its
 * header's length is what arrived) and naming its sender; each peer's
 * messages are dispatched in the order of their sequence numbers, none
 * twice and none skipped; nothing is dispatched from a peer after its
 * connection was taken down; a credit frees only a slot that was taken.
 *
 * Input: records of a control byte (bit 0: a write into a staging slot
 * rather than a message in a receive buffer; bit 1: no remote CQ data; bits
 * 2-3: the source address: peer 1's, peer 2's, a stranger's, none; bit 4:
 * the credit's fi_injectdata says try again; bit 5: the provider does not
 * report a write's length), 4 bytes of completion data,
 * a length byte (0-104), and that many bytes of the buffer.
 */
#include "dsm/fabric.c"

#include "tests/fuzz/lib/fuzz.h"

#define NODES 3
#define SLOT (sizeof(struct wire_hdr) + 64)
#define RMA_SLOTS 4

struct rig {
	struct fab f;
	struct fab_chan ch;
	struct fab_conn conns[NODES];
	unsigned char buf[SLOT];
	unsigned char rma[NODES * RMA_SLOTS * SLOT];
	struct fab_slot slot;
	struct fid_ep ep;
	struct fi_ops_msg msg;
	bool eagain;
	/* What dispatch must see next from each peer, and which arrival carries what seq. */
	unsigned next_seq[NODES];
	bool lost[NODES];
	unsigned seq_of[256]; /* by the id stamped in arg[2] */
};

static ssize_t rig_injectdata(struct fid_ep *ep, const void *buf, size_t len, uint64_t data,
			      fi_addr_t dest)
{
	const struct rig *r = (const void *)((const char *)ep - offsetof(struct rig, ep));

	(void)buf;
	FUZZ_CHECK(len == 0 && FAB_DATA_KIND(data) == FAB_KIND_CREDIT);
	FUZZ_CHECK(dest == 7 || dest == 8);
	return r->eagain ? -FI_EAGAIN : 0;
}

static int on_dispatch(void *arg, unsigned peer, unsigned channel, const struct wire_hdr *h,
		       const void *payload, char *why)
{
	struct rig *r = arg;
	unsigned id = (unsigned)h->arg[2];

	(void)payload;
	(void)why;
	FUZZ_CHECK(channel == 0 && (peer == 1 || peer == 2) && h->from == peer);
	FUZZ_CHECK(!r->lost[peer]);
	FUZZ_CHECK(id < 256 && r->seq_of[id] == r->next_seq[peer]);
	r->next_seq[peer] = (r->next_seq[peer] + 1) % FAB_SEQ_MOD;
	return 0;
}

static void on_lost(void *arg, unsigned peer, unsigned channel, bool malformed, const char *why)
{
	struct rig *r = arg;

	(void)channel;
	(void)malformed;
	FUZZ_CHECK(peer == 1 || peer == 2);
	FUZZ_CHECK(why && why[0]);
	r->lost[peer] = true;
}

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	r->f.nr_nodes = NODES;
	r->f.rank = 0;
	r->f.cfg.nr_channels = 1;
	r->f.cfg.dispatch = on_dispatch;
	r->f.cfg.lost = on_lost;
	r->f.cfg.arg = r;
	r->f.chans = &r->ch;
	r->f.conns = r->conns;
	r->msg.size = sizeof(r->msg);
	r->msg.injectdata = rig_injectdata;
	r->ep.msg = &r->msg;
	r->ch.fab = &r->f;
	r->ch.ep = &r->ep;
	r->ch.slot_size = SLOT;
	r->ch.rma_mem = r->rma;
	r->ch.rma_slots = RMA_SLOTS;
	pthread_mutex_init(&r->ch.lock, NULL);
	for (unsigned p = 0; p < NODES; p++) {
		r->conns[p].ch = &r->ch;
		r->conns[p].peer = p;
		r->conns[p].fd = -1;
		atomic_init(&r->conns[p].addr, p ? 6 + p : FI_ADDR_NOTAVAIL);
		atomic_init(&r->conns[p].close_at, UINT64_MAX);
		/* Our slots at the peer: all free but one, whose credit may come. */
		r->conns[p].rma.slots = RMA_SLOTS;
		r->conns[p].rma_free = (1u << RMA_SLOTS) - 1 - 2;
	}
	r->slot.ch = &r->ch;
	r->slot.recv = true;
	r->slot.buf = r->buf;
}

static void rig_free(struct rig *r)
{
	for (unsigned p = 0; p < NODES; p++) {
		for (unsigned k = 0; r->conns[p].held && k < FAB_WINDOW; k++)
			free(r->conns[p].held[k]);
		free(r->conns[p].held);
	}
	pthread_mutex_destroy(&r->ch.lock);
}

static const fi_addr_t sources[4] = { 7, 8, 9, FI_ADDR_NOTAVAIL };

static void seed_record(unsigned char **at, uint8_t ctl, uint32_t data, uint16_t from,
			uint32_t hlen)
{
	struct wire_hdr h = wire_hdr_make(0x1f3, from, hlen);

	*(*at)++ = ctl;
	memcpy(*at, &data, 4);
	*at += 4;
	*(*at)++ = (uint8_t)(sizeof(h) + hlen);
	memcpy(*at, &h, sizeof(h));
	memset(*at + sizeof(h), 0x5a, hlen);
	*at += sizeof(h) + hlen;
}

static void seeds(const char *dir)
{
	unsigned char in[4096], *at = in;

	/* Peer 1 in order, peer 2 early then in order. */
	for (unsigned s = 0; s < 3; s++)
		seed_record(&at, 0, FAB_DATA(FAB_KIND_MSG, 1, s, 0), 1, 8);
	seed_record(&at, 1 << 2, FAB_DATA(FAB_KIND_MSG, 2, 1, 0), 2, 0);
	seed_record(&at, 1 << 2, FAB_DATA(FAB_KIND_MSG, 2, 0, 0), 2, 16);
	fuzz_seed(dir, "messages", in, (size_t)(at - in));
	/* Writes into staging slots, credits owed and paid, a credit back for slot 1. */
	at = in;
	seed_record(&at, 1, FAB_DATA(FAB_KIND_RMA, 1, 0, 0), 1, 64);
	seed_record(&at, 1 | 1 << 4, FAB_DATA(FAB_KIND_RMA, 1, 1, 2), 1, 8);
	seed_record(&at, 0, FAB_DATA(FAB_KIND_MSG, 1, 2, 0), 1, 0);
	*at++ = 0;
	{
		uint32_t d = FAB_DATA(FAB_KIND_CREDIT, 1, 0, 1);

		memcpy(at, &d, 4);
		at += 4;
		*at++ = 0;
	}
	fuzz_seed(dir, "rma-credit", in, (size_t)(at - in));
	/* A message claiming another sender, and one from a stranger. */
	at = in;
	seed_record(&at, 0, FAB_DATA(FAB_KIND_MSG, 1, 0, 0), 2, 0);
	seed_record(&at, 2 << 2, FAB_DATA(FAB_KIND_MSG, 1, 0, 0), 1, 0);
	fuzz_seed(dir, "strangers", in, (size_t)(at - in));
}

FUZZ_INIT_SEEDS(seeds)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rig r;
	unsigned id = 0;

	rig_init(&r);
	while (size >= 6 && id < 256) {
		uint8_t ctl = data[0], len = data[5];
		uint32_t cq;
		struct fi_cq_data_entry e = { 0 };
		bool rma = ctl & 1;
		unsigned char *buf;
		unsigned rank;

		memcpy(&cq, data + 1, 4);
		data += 6;
		size -= 6;
		if (len > SLOT)
			len = SLOT;
		if (len > size)
			len = (uint8_t)size;
		rank = FAB_DATA_RANK(cq);
		/* A write lands in the staging slot its data names, if there is one. */
		buf = !rma ? r.buf :
		      rank < NODES && FAB_DATA_SLOT(cq) < RMA_SLOTS ?
			      fab_rma_slot(&r.ch, rank, FAB_DATA_SLOT(cq)) : NULL;
		if (buf) {
			memset(buf, 0, SLOT);
			memcpy(buf, data, len);
			/*
			 * Stamp the arrival (in arg[2], which the transport leaves to the
			 * DSM) so that dispatch can tell which one it got: a buffer is
			 * whole, whatever length the completion reports.
			 */
			uint64_t stamp = id;

			memcpy(buf + offsetof(struct wire_hdr, arg[2]), &stamp, 8);
			r.seq_of[id] = FAB_DATA_SEQ(cq);
		}
		data += len;
		size -= len;
		id++;
		r.eagain = ctl & 0x10;
		e.flags = (rma ? FI_REMOTE_WRITE : FI_RECV) | (ctl & 2 ? 0 : FI_REMOTE_CQ_DATA);
		e.len = rma && (ctl & 0x20) ? 0 : len;
		e.data = cq;
		fab_arrived(&r.ch, &e, sources[(ctl >> 2) & 3], rma ? NULL : &r.slot);
		for (unsigned p = 1; p < NODES; p++) {
			FUZZ_CHECK(!(r.conns[p].rma_free >> RMA_SLOTS));
			FUZZ_CHECK(!(r.conns[p].credit_owed >> RMA_SLOTS));
			if (atomic_load(&r.conns[p].down))
				FUZZ_CHECK(r.lost[p]);
		}
	}
	rig_free(&r);
	return 0;
}
