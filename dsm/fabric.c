/*
 * The fabric transport: the DSM's messages over libfabric reliable datagram
 * endpoints (FI_EP_RDM, FI_MSG), so that a cluster's own fabric carries them:
 * verbs on InfiniBand and RoCE, cxi on Slingshot, efa, or tcp where there is
 * nothing else.
 *
 * The mesh (common/mesh.h) stays the authority on who the peers are: each
 * node sends its endpoint's address for each channel over that channel's
 * munge-authenticated mesh connection, and only addresses that came that
 * way enter the address vector; a message from any other address is
 * dropped.  The mesh connections then carry the connections' lives: a close
 * is reported as the loss of that (peer, channel), as with TCP.  An orderly
 * close first writes how many messages were sent on the channel, and the
 * loss is reported only once that many have been dispatched: a peer's BYE,
 * sent on the fabric, is never overtaken by the close it precedes.
 *
 * One endpoint and completion queue per channel, and one progress thread
 * that reads it and dispatches in order: each (peer, channel) is dispatched
 * by one thread, in the order sent.  Providers need not complete in that
 * order (a large send that goes by rendezvous completes after the small ones
 * behind it), so each message carries its sequence number in its remote
 * completion data and the receiver holds back what comes early.  Senders
 * never wait: a message is copied into one of the channel's registered send
 * buffers, or queued on its connection while none is free (as the TCP
 * transport queues what the socket does not take), and the progress thread
 * sends the queue as sends complete.
 *
 * Pages go by RMA where the provider has it: each node registers, per peer
 * and channel, a few staging slots that peer may write (FI_REMOTE_WRITE), and
 * sends their address and key with its endpoint's; a message with pages is
 * an RMA write of header and pages into a free slot, its completion data
 * naming the slot, and the receiver hands the slot back (a zero-length
 * message, a credit) once it has dispatched it.  With no slot free, or no
 * RMA, pages go as an ordinary message.  Guest RAM itself is never
 * registered: the DSM copies a page out of the slot with UFFDIO_COPY.
 */
#include "config.h"

#include <stdio.h>

#include "common/mesh.h"
#include "dsm/dsm.h"
#include "dsm/transport.h"

#if !HAVE_LIBFABRIC
struct dsm_transport *dsm_fabric_create(const struct dsm_fabric_config *cfg, char *err)
{
	(void)cfg;
	snprintf(err, DSM_ERR_MAX, "fabric: this gvm was built without libfabric (install "
		 "libfabric-dev and run ./configure --with-libfabric)");
	return NULL;
}

const char *dsm_fabric_built(char *buf, size_t len)
{
	(void)buf;
	(void)len;
	return NULL;
}
#else
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#define FAB_VERSION FI_VERSION(1, 9)
#define FAB_ADDR_MAX 256
/* Buffers per channel: a demand channel's many small messages, a bulk channel's few runs. */
#define FAB_SLOTS_SMALL 256
#define FAB_SLOTS_LARGE 32
#define FAB_LARGE (64u << 10)
/* Staging slots a node offers each peer per channel, and the bytes it spends on them. */
#define FAB_RMA_SLOTS_MAX 64u
#define FAB_RMA_BUDGET (16u << 20)
/*
 * Remote completion data (32 bits, what every provider with it carries):
 * what came, who sent it, its sequence number on the connection, and the
 * staging slot it is in or that is handed back.
 */
enum { FAB_KIND_MSG = 1, FAB_KIND_RMA = 2, FAB_KIND_CREDIT = 3 };
#define FAB_DATA(kind, rank, seq, slot) \
	((uint64_t)(kind) << 30 | (uint64_t)(rank) << 20 | (uint64_t)((seq) & 0xfff) << 8 | (slot))
#define FAB_DATA_KIND(d) ((unsigned)((d) >> 30) & 3)
#define FAB_DATA_RANK(d) ((unsigned)((d) >> 20) & 0x3ff)
#define FAB_DATA_SEQ(d) ((unsigned)((d) >> 8) & 0xfff)
#define FAB_DATA_SLOT(d) ((unsigned)(d) & 0xff)
#define FAB_SEQ_MOD 4096u
/* How far ahead of the next expected message one may come (held until its turn). */
#define FAB_WINDOW 1024u
/* Unsent bytes one connection may hold before its peer counts as gone (as TCP's). */
#define FAB_QUEUE_MAX (64u << 20)
/* An orderly stop's wait for the queues to go out. */
#define FAB_DRAIN_MS 5000
/*
 * A close announced with messages that never come (the peer's provider
 * dropped them as it went): the loss is reported this long after the close.
 */
#define FAB_CLOSE_GRACE_MS 2000

enum { FAB_HELLO = 0x47564641, FAB_READY = 0x47565244, FAB_CLOSE = 0x47564359 };

/* What goes over a mesh connection, each way: an address, a ready mark, a close. */
struct fab_ctl {
	uint32_t magic;
	uint32_t len;   /* FAB_HELLO: the address bytes that follow, then a fab_rma */
	uint64_t count; /* FAB_CLOSE: the messages sent on the channel */
};

/* The staging slots the sender of a HELLO offers the receiver (slots 0: none). */
struct fab_rma {
	uint64_t base; /* the target address of slot 0, as the provider wants it */
	uint64_t key;
	uint32_t slots, slot_size;
};

/* A message that came ahead of its turn, kept until the ones before it are dispatched. */
struct fab_held {
	size_t len;
	unsigned char data[];
};

struct fab_slot {
	struct fi_context ctx; /* first: completions hand back its address */
	struct fab_chan *ch;
	struct fab_slot *next; /* free list */
	unsigned peer;         /* a send's destination */
	bool recv;
	unsigned char *buf;
};

/* A message waiting for a send buffer, or for the provider to take it. */
struct fab_out {
	struct fab_out *next;
	size_t len;
	unsigned char data[];
};

struct fab_conn {
	struct fab_chan *ch;
	unsigned peer;
	int fd;                 /* the mesh connection: lives and closes */
	_Atomic fi_addr_t addr; /* FI_ADDR_NOTAVAIL until its HELLO came */
	atomic_bool ready;      /* its READY came: it knows our address, we may send */
	atomic_bool down;       /* reported (or shut by us): nothing more in or out */
	uint64_t sent;          /* messages accepted for the peer (ch->lock) */
	unsigned outstanding;   /* of them, posted and not completed (ch->lock) */
	_Atomic uint64_t recvd; /* messages dispatched from the peer */
	_Atomic uint64_t close_at; /* its close said this many; UINT64_MAX: not closed */
	bool closed_ours;       /* our close went out (the stopping thread's) */
	uint64_t close_ms;      /* when the close came (the watcher's) */
	struct fab_out *q_head, *q_tail; /* ch->lock */
	size_t q_bytes;
	unsigned tx_seq;        /* the next message's sequence number (ch->lock) */
	/* The peer's staging slots for us (set before ready), and which are free (ch->lock). */
	struct fab_rma rma;
	uint64_t rma_free;
	/* The progress thread's: the next sequence number to dispatch, what came early, */
	unsigned rx_seq;
	struct fab_held **held;
	/* and the slots of ours it has dispatched but could not hand back yet. */
	uint64_t credit_owed;
	/* The watcher's: what the peer wrote on the mesh connection so far. */
	unsigned char ctl[sizeof(struct fab_ctl) + FAB_ADDR_MAX + sizeof(struct fab_rma)];
	size_t ctl_have;
	enum { FAB_WANT_HELLO, FAB_WANT_READY, FAB_WANT_CLOSE, FAB_CLOSED } stage;
};

struct fab_chan {
	struct fab *fab;
	unsigned index;
	struct fid_ep *ep;
	struct fid_cq *cq;
	struct fid_mr *mr;
	void *desc;
	size_t slot_size;
	unsigned nr_slots;
	unsigned char *mem; /* 2 * nr_slots buffers: receives, then sends */
	struct fab_slot *slots;
	pthread_mutex_t lock; /* free sends and the queues */
	struct fab_slot *free_sends;
	unsigned queued;      /* connections with a queue */
	/* The staging slots peers write into: rma_slots per peer, in rank order. */
	unsigned char *rma_mem;
	unsigned rma_slots;
	struct fid_mr *rma_mr;
	unsigned owing;       /* connections with a credit owed (the progress thread's) */
	atomic_uint_least64_t nr_rma, nr_early;
	pthread_t thread;
	bool started;
};

struct fab {
	struct dsm_transport t;
	struct dsm_fabric_config cfg;
	unsigned nr_nodes, rank;
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	bool rma;               /* the provider writes remote memory, with keys we can send */
	struct fab_chan *chans;
	struct fab_conn *conns; /* [peer * nr_channels + channel]; fd -1 for our own rank */
	atomic_bool stopping;
	atomic_bool closing;    /* an orderly stop's close: a peer's end is no news */
	int wake_fd;            /* eventfd: the watcher's stop */
	pthread_t watcher;
	bool watcher_started;
	char desc[192];
};

static struct fab *fab_of(struct dsm_transport *t)
{
	return (struct fab *)t;
}

static uint64_t fab_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

static struct fab_conn *fab_conn(struct fab *f, unsigned peer, unsigned channel)
{
	if (peer >= f->nr_nodes || peer == f->rank || channel >= f->cfg.nr_channels)
		return NULL;
	return &f->conns[peer * f->cfg.nr_channels + channel];
}

static void fab_conn_down(struct fab_conn *c, bool malformed, const char *why)
{
	struct fab *f = c->ch->fab;

	if (atomic_exchange(&c->down, true))
		return;
	if (!atomic_load(&f->stopping) && !atomic_load(&f->closing))
		f->cfg.lost(f->cfg.arg, c->peer, c->ch->index, malformed, why);
	shutdown(c->fd, SHUT_RDWR);
}

/* Its close was announced and every message before it dispatched: the peer is gone now. */
static void fab_conn_check_closed(struct fab_conn *c)
{
	if (atomic_load(&c->recvd) >= atomic_load(&c->close_at))
		fab_conn_down(c, false, "connection closed");
}

static void fab_err(char *err, const char *what, int rc)
{
	snprintf(err, DSM_ERR_MAX, "fabric: %s: %s", what, fi_strerror(rc < 0 ? -rc : rc));
}

/* ---- sends ---- */

/* A free staging slot of the peer's for a message of len bytes, or -1 (ch->lock held). */
static int fab_rma_take(struct fab_conn *c, size_t len)
{
	int k;

	if (!c->rma_free || len > c->rma.slot_size)
		return -1;
	k = __builtin_ctzll(c->rma_free);
	c->rma_free &= ~(1ull << k);
	return k;
}

/*
 * Hand one message (a, then b) in a send buffer to the provider (ch->lock
 * held), as the connection's next in sequence: with pages, an RMA write into
 * a staging slot of the peer's if one is free.  0, -FI_EAGAIN (no buffer, or
 * the provider cannot take it now) or another -errno.
 */
static int fab_post_send(struct fab_chan *ch, struct fab_conn *c, const void *a, size_t alen,
			 const void *b, size_t blen)
{
	struct fab_slot *s = ch->free_sends;
	fi_addr_t to = atomic_load(&c->addr);
	unsigned rank = ch->fab->rank;
	int k = -1;
	ssize_t rc;

	if (!s)
		return -FI_EAGAIN;
	memcpy(s->buf, a, alen);
	if (blen)
		memcpy(s->buf + alen, b, blen);
	/* Pages (a queued message comes whole, in a). */
	if (alen + blen > sizeof(struct wire_hdr))
		k = fab_rma_take(c, alen + blen);
	if (k >= 0) {
		rc = fi_writedata(ch->ep, s->buf, alen + blen, ch->desc,
				  FAB_DATA(FAB_KIND_RMA, rank, c->tx_seq, k), to,
				  c->rma.base + (uint64_t)k * c->rma.slot_size, c->rma.key, &s->ctx);
		if (rc)
			c->rma_free |= 1ull << k;
		else
			atomic_fetch_add(&ch->nr_rma, 1);
	} else {
		rc = fi_senddata(ch->ep, s->buf, alen + blen, ch->desc,
				 FAB_DATA(FAB_KIND_MSG, rank, c->tx_seq, 0), to, &s->ctx);
	}
	if (rc)
		return (int)rc;
	c->tx_seq = (c->tx_seq + 1) % FAB_SEQ_MOD;
	ch->free_sends = s->next;
	c->outstanding++;
	s->peer = c->peer;
	return 0;
}

/* A send's buffer back (ch->lock held). */
static void fab_send_done(struct fab_chan *ch, struct fab_slot *s)
{
	s->next = ch->free_sends;
	ch->free_sends = s;
	ch->fab->conns[s->peer * ch->fab->cfg.nr_channels + ch->index].outstanding--;
}

static int fab_enqueue(struct fab_chan *ch, struct fab_conn *c, const struct wire_hdr *h,
		       const void *payload)
{
	size_t len = sizeof(*h) + h->len;
	struct fab_out *o;

	if (c->q_bytes + len > FAB_QUEUE_MAX)
		return -ENOBUFS;
	o = malloc(sizeof(*o) + len);
	if (!o)
		return -ENOMEM;
	o->next = NULL;
	o->len = len;
	memcpy(o->data, h, sizeof(*h));
	if (h->len)
		memcpy(o->data + sizeof(*h), payload, h->len);
	if (!c->q_head)
		ch->queued++;
	if (c->q_tail)
		c->q_tail->next = o;
	else
		c->q_head = o;
	c->q_tail = o;
	c->q_bytes += len;
	return 0;
}

/* Send what the queues hold while buffers are free (ch->lock held). */
static void fab_flush_locked(struct fab_chan *ch)
{
	struct fab *f = ch->fab;

	for (unsigned p = 0; p < f->nr_nodes && ch->queued && ch->free_sends; p++) {
		struct fab_conn *c = fab_conn(f, p, ch->index);

		while (c && c->q_head && ch->free_sends && atomic_load(&c->ready)) {
			struct fab_out *o = c->q_head;
			int rc = atomic_load(&c->down) ? 0 :
				 fab_post_send(ch, c, o->data, o->len, NULL, 0);

			if (rc == -FI_EAGAIN)
				return;
			c->q_head = o->next;
			if (!c->q_head) {
				c->q_tail = NULL;
				ch->queued--;
			}
			c->q_bytes -= o->len;
			free(o);
			if (rc) {
				pthread_mutex_unlock(&ch->lock);
				fab_conn_down(c, false, fi_strerror(-rc));
				pthread_mutex_lock(&ch->lock);
			}
		}
	}
}

static int fab_send(struct fab *f, unsigned peer, unsigned channel, const struct wire_hdr *h,
		    const void *payload)
{
	struct fab_conn *c = fab_conn(f, peer, channel);
	struct fab_chan *ch;
	int rc = -FI_EAGAIN;

	if (!c || (h->len && !payload))
		return -EINVAL;
	ch = c->ch;
	if (sizeof(*h) + h->len > ch->slot_size)
		return -EMSGSIZE;
	if (atomic_load(&c->down))
		return -ECONNRESET;
	pthread_mutex_lock(&ch->lock);
	/* Nothing queued ahead of it and the peer can tell it from a stranger's: straight out. */
	if (!c->q_head && atomic_load(&c->ready))
		rc = fab_post_send(ch, c, h, sizeof(*h), payload, h->len);
	if (rc == -FI_EAGAIN)
		rc = fab_enqueue(ch, c, h, payload);
	if (!rc)
		c->sent++;
	pthread_mutex_unlock(&ch->lock);
	if (rc == -ENOBUFS)
		fab_conn_down(c, false, "it has not read what was sent to it for too long "
			      "(64 MiB waiting)");
	else if (rc && rc != -ENOMEM)
		fab_conn_down(c, false, fi_strerror(-rc));
	return !rc || rc == -ENOBUFS || rc == -ENOMEM ? rc : -ECONNRESET;
}

static int fab_send_msg(struct dsm_transport *t, unsigned peer, unsigned channel,
			const struct wire_hdr *h)
{
	return h->len ? -EINVAL : fab_send(fab_of(t), peer, channel, h, NULL);
}

static int fab_send_pages(struct dsm_transport *t, unsigned peer, unsigned channel,
			  const struct wire_hdr *h, const void *pages)
{
	return fab_send(fab_of(t), peer, channel, h, pages);
}

/* ---- receives ---- */

/* The receive queue holds every buffer of the channel (fab_chan_open sized them so). */
static int fab_post_recv(struct fab_slot *s)
{
	return (int)fi_recv(s->ch->ep, s->buf, s->ch->slot_size, s->ch->desc, FI_ADDR_UNSPEC,
			    &s->ctx);
}

static struct fab_conn *fab_conn_of_addr(struct fab *f, unsigned channel, fi_addr_t a)
{
	for (unsigned p = 0; p < f->nr_nodes; p++) {
		struct fab_conn *c = fab_conn(f, p, channel);

		if (c && atomic_load(&c->addr) == a && a != FI_ADDR_NOTAVAIL)
			return c;
	}
	return NULL;
}

/*
 * A message in its turn: checked as the TCP transport checks a frame, then
 * dispatched.  False when that took the connection down.
 */
static bool fab_deliver(struct fab_conn *c, const unsigned char *buf, size_t len)
{
	struct fab *f = c->ch->fab;
	struct wire_hdr h;
	char why[128];

	if (atomic_load(&c->recvd) >= atomic_load(&c->close_at)) {
		fab_conn_down(c, true, "a message after its close");
		return false;
	}
	memcpy(&h, buf, len < sizeof(h) ? len : sizeof(h));
	if (len < sizeof(h) || h.magic != WIRE_MAGIC || h.version != WIRE_VERSION) {
		snprintf(why, sizeof(why), "malformed message (%zu bytes)", len);
	} else if (h.from != c->peer) {
		snprintf(why, sizeof(why), "message claims to come from rank %u", h.from);
	} else if (len != sizeof(h) + h.len) {
		snprintf(why, sizeof(why), "message of type 0x%x says %u bytes and carries %zu",
			 h.type, h.len, len - sizeof(h));
	} else if (f->cfg.dispatch(f->cfg.arg, c->peer, c->ch->index, &h, buf + sizeof(h), why)) {
		/* why says it */
	} else {
		atomic_fetch_add(&c->recvd, 1);
		fab_conn_check_closed(c);
		return true;
	}
	fab_conn_down(c, true, why);
	return false;
}

/*
 * Hand back the staging slots dispatched from (the progress thread's): what
 * the provider cannot take now stays owed.
 */
static void fab_credits_pay(struct fab_conn *c)
{
	struct fab_chan *ch = c->ch;
	bool owed = c->credit_owed;

	while (c->credit_owed && !atomic_load(&c->down)) {
		unsigned k = __builtin_ctzll(c->credit_owed);
		ssize_t rc = fi_injectdata(ch->ep, NULL, 0,
					   FAB_DATA(FAB_KIND_CREDIT, ch->fab->rank, 0, k),
					   atomic_load(&c->addr));

		if (rc == -FI_EAGAIN)
			break;
		c->credit_owed &= ~(1ull << k);
		if (rc)
			fab_conn_down(c, false, fi_strerror((int)-rc));
	}
	if (atomic_load(&c->down))
		c->credit_owed = 0;
	if (owed && !c->credit_owed)
		ch->owing--;
	else if (!owed && c->credit_owed)
		ch->owing++;
}

/* Where a staging slot of ours for peer's writes lies. */
static unsigned char *fab_rma_slot(struct fab_chan *ch, unsigned peer, unsigned k)
{
	return ch->rma_mem + ((size_t)peer * ch->rma_slots + k) * ch->slot_size;
}

/*
 * A message that came ahead of its turn: copied aside (its buffer goes back
 * at once, so that the one it waits for finds a buffer to land in).
 */
static bool fab_hold(struct fab_conn *c, unsigned seq, const unsigned char *buf, size_t len)
{
	struct fab_held *m;

	if (!c->held && !(c->held = calloc(FAB_WINDOW, sizeof(*c->held))))
		return false;
	if (c->held[seq % FAB_WINDOW] || !(m = malloc(sizeof(*m) + len)))
		return false;
	m->len = len;
	memcpy(m->data, buf, len);
	c->held[seq % FAB_WINDOW] = m;
	atomic_fetch_add(&c->ch->nr_early, 1);
	return true;
}

/* What came before its turn and whose turn it now is. */
static void fab_deliver_held(struct fab_conn *c)
{
	struct fab_held *m;

	while (c->held && (m = c->held[c->rx_seq % FAB_WINDOW])) {
		c->held[c->rx_seq % FAB_WINDOW] = NULL;
		c->rx_seq = (c->rx_seq + 1) % FAB_SEQ_MOD;
		if (!atomic_load(&c->down))
			fab_deliver(c, m->data, m->len);
		free(m);
	}
}

/*
 * One completion that brought something: a message in a receive buffer
 * (slot), or written into a staging slot, or a credit.  The completion data
 * says which, who sent it and its turn.  A message's sender address must be
 * one a peer gave over the mesh; a write's is not used, as providers do not
 * report it faithfully (tcp;ofi_rxm gives the address of the writer's first
 * endpoint on another channel's write).
 */
static void fab_arrived(struct fab_chan *ch, const struct fi_cq_data_entry *e, fi_addr_t src,
			struct fab_slot *slot)
{
	struct fab *f = ch->fab;
	uint64_t data = e->data;
	unsigned kind = FAB_DATA_KIND(data), k = FAB_DATA_SLOT(data), seq = FAB_DATA_SEQ(data);
	const unsigned char *buf;
	struct fab_conn *c;
	size_t len = e->len;
	char why[128];

	if (slot)
		c = fab_conn_of_addr(f, ch->index, src);
	else if ((c = fab_conn(f, FAB_DATA_RANK(data), ch->index)) &&
		 atomic_load(&c->addr) == FI_ADDR_NOTAVAIL)
		c = NULL;
	/* Nobody we know sent it. */
	if (!c || atomic_load(&c->down))
		return;
	if (!(e->flags & FI_REMOTE_CQ_DATA) || FAB_DATA_RANK(data) != c->peer ||
	    !kind || (kind == FAB_KIND_RMA) != !slot) {
		snprintf(why, sizeof(why), "a message without a valid sequence mark (0x%llx)",
			 (unsigned long long)data);
		goto bad;
	}
	if (kind == FAB_KIND_CREDIT) {
		pthread_mutex_lock(&ch->lock);
		if (len || k >= c->rma.slots || (c->rma_free & (1ull << k))) {
			pthread_mutex_unlock(&ch->lock);
			snprintf(why, sizeof(why), "a credit for staging slot %u, not one it holds", k);
			goto bad;
		}
		c->rma_free |= 1ull << k;
		pthread_mutex_unlock(&ch->lock);
		return;
	}
	if (kind == FAB_KIND_RMA) {
		if (k >= ch->rma_slots || (c->credit_owed & (1ull << k))) {
			snprintf(why, sizeof(why), "a write into staging slot %u, not one it holds", k);
			goto bad;
		}
		buf = fab_rma_slot(ch, c->peer, k);
		/* A provider that does not report a write's length: the header says it. */
		if (!len && ch->slot_size >= sizeof(struct wire_hdr))
			len = sizeof(struct wire_hdr) + ((const struct wire_hdr *)buf)->len;
		if (len > ch->slot_size)
			len = ch->slot_size + 1; /* refused as malformed by its length */
	} else {
		buf = slot->buf;
	}
	if (seq == c->rx_seq) {
		c->rx_seq = (c->rx_seq + 1) % FAB_SEQ_MOD;
		if (fab_deliver(c, buf, len))
			fab_deliver_held(c);
	} else if ((seq + FAB_SEQ_MOD - c->rx_seq) % FAB_SEQ_MOD >= FAB_WINDOW) {
		snprintf(why, sizeof(why), "message %u when %u was next", seq, c->rx_seq);
		goto bad;
	} else if (!fab_hold(c, seq, buf, len)) {
		snprintf(why, sizeof(why), "message %u twice, or no memory to keep it until %u came",
			 seq, c->rx_seq);
		goto bad;
	}
	if (kind == FAB_KIND_RMA && !atomic_load(&c->down)) {
		c->credit_owed |= 1ull << k;
		fab_credits_pay(c);
	}
	return;
bad:
	fab_conn_down(c, true, why);
}

static void fab_completion_error(struct fab_chan *ch)
{
	struct fi_cq_err_entry e = { 0 };
	struct fab_slot *s;

	if (fi_cq_readerr(ch->cq, &e, 0) != 1)
		return;
	s = e.op_context;
	/* A write into our staging slots that failed: its writer hears of it. */
	if (!s || (e.flags & FI_REMOTE_WRITE) || atomic_load(&ch->fab->stopping))
		return;
	if (s->recv) {
		/*
		 * A message larger than the channel allows (truncated): its sender cannot
		 * be told apart here, and the buffer goes back.
		 */
		fab_post_recv(s);
		return;
	}
	pthread_mutex_lock(&ch->lock);
	fab_send_done(ch, s);
	pthread_mutex_unlock(&ch->lock);
	fab_conn_down(fab_conn(ch->fab, s->peer, ch->index), false,
		      fi_strerror(e.err ? e.err : FI_EIO));
}

static void *fab_progress(void *arg)
{
	struct fab_chan *ch = arg;
	struct fab *f = ch->fab;

	while (!atomic_load(&f->stopping)) {
		struct fi_cq_data_entry ent[16];
		fi_addr_t src[16];
		ssize_t n = fi_cq_sreadfrom(ch->cq, ent, 16, src, NULL, 100);

		if (n == -FI_EAVAIL) {
			fab_completion_error(ch);
			continue;
		}
		for (ssize_t i = 0; i < n; i++) {
			struct fab_slot *s = ent[i].op_context;

			if (ent[i].flags & FI_REMOTE_WRITE) {
				fab_arrived(ch, &ent[i], src[i], NULL);
			} else if (s->recv) {
				fab_arrived(ch, &ent[i], src[i], s);
				if (fab_post_recv(s) && !atomic_load(&f->stopping)) {
					/* The channel cannot receive any more: every peer lost it. */
					for (unsigned p = 0; p < f->nr_nodes; p++)
						if (fab_conn(f, p, ch->index))
							fab_conn_down(fab_conn(f, p, ch->index), false,
								      "cannot post a receive buffer");
				}
			} else {
				pthread_mutex_lock(&ch->lock);
				fab_send_done(ch, s);
				pthread_mutex_unlock(&ch->lock);
			}
		}
		for (unsigned p = 0; ch->owing && p < f->nr_nodes; p++)
			if (fab_conn(f, p, ch->index) && fab_conn(f, p, ch->index)->credit_owed)
				fab_credits_pay(fab_conn(f, p, ch->index));
		pthread_mutex_lock(&ch->lock);
		if (ch->queued)
			fab_flush_locked(ch);
		pthread_mutex_unlock(&ch->lock);
	}
	return NULL;
}

/* ---- the mesh connections: addresses, then lives ---- */

static int fab_write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = send(fd, (const char *)buf + done, n - done, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -errno;
		done += r;
	}
	return 0;
}

/*
 * Our address for this channel to every peer, and the staging slots it may
 * write; theirs come to the watcher.
 */
static int fab_hello(struct fab *f, unsigned ch, char *err)
{
	struct fab_chan *c = &f->chans[ch];
	unsigned char addr[FAB_ADDR_MAX];
	size_t len = sizeof(addr);
	struct fab_ctl hello = { .magic = FAB_HELLO };
	int rc = fi_getname(&c->ep->fid, addr, &len);

	if (rc) {
		fab_err(err, "the endpoint's address", rc);
		return -1;
	}
	hello.len = (uint32_t)len;
	for (unsigned p = 0; p < f->nr_nodes; p++) {
		struct fab_conn *pc = fab_conn(f, p, ch);
		struct fab_rma rma = { 0 };

		if (!pc)
			continue;
		if (c->rma_slots) {
			rma.base = (uintptr_t)fab_rma_slot(c, p, 0);
			if (!(f->info->domain_attr->mr_mode & FI_MR_VIRT_ADDR))
				rma.base -= (uintptr_t)c->rma_mem;
			rma.key = fi_mr_key(c->rma_mr);
			rma.slots = c->rma_slots;
			rma.slot_size = (uint32_t)c->slot_size;
		}
		/* A few hundred bytes on a fresh connection: the socket takes them at once. */
		if (fab_write_all(pc->fd, &hello, sizeof(hello)) ||
		    fab_write_all(pc->fd, addr, len) || fab_write_all(pc->fd, &rma, sizeof(rma))) {
			snprintf(err, DSM_ERR_MAX, "fabric: cannot send rank %u our address: %s", p,
				 strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * A peer's address is in the address vector now, and its staging slots are
 * known: tell it, and send what waited for it.
 */
static void fab_peer_known(struct fab_conn *c, const void *addr, const struct fab_rma *rma)
{
	struct fab_ctl r = { .magic = FAB_READY };
	fi_addr_t a = FI_ADDR_NOTAVAIL;
	int rc;

	if (rma->slots > FAB_RMA_SLOTS_MAX ||
	    (rma->slots && rma->slot_size < sizeof(struct wire_hdr))) {
		fab_conn_down(c, true, "it offers staging slots gvm never does");
		return;
	}
	rc = fi_av_insert(c->ch->fab->av, addr, 1, &a, 0, NULL);
	if (rc != 1) {
		fab_conn_down(c, true, "its endpoint address is not one this provider reaches");
		return;
	}
	pthread_mutex_lock(&c->ch->lock);
	/* Slots we cannot write (our provider has no RMA): its pages come as messages. */
	c->rma = *rma;
	if (!c->ch->fab->rma)
		c->rma.slots = 0;
	c->rma_free = c->rma.slots ? ~0ull >> (64 - c->rma.slots) : 0;
	pthread_mutex_unlock(&c->ch->lock);
	atomic_store(&c->addr, a);
	if (fab_write_all(c->fd, &r, sizeof(r)))
		fab_conn_down(c, false, strerror(errno));
}

static void fab_peer_ready(struct fab_conn *c)
{
	struct fab_chan *ch = c->ch;

	atomic_store(&c->ready, true);
	pthread_mutex_lock(&ch->lock);
	fab_flush_locked(ch);
	pthread_mutex_unlock(&ch->lock);
}

/*
 * What a peer writes on a mesh connection: its HELLO (its address), its
 * READY (it has ours), at the end its CLOSE (how many messages it sent);
 * nothing else.  Once it has closed, the watcher no longer reads it.
 */
static void fab_watch_read(struct fab_conn *c)
{
	size_t want = sizeof(struct fab_ctl);
	struct fab_ctl m;
	ssize_t r;

	if (c->stage == FAB_WANT_HELLO && c->ctl_have >= sizeof(m)) {
		memcpy(&m, c->ctl, sizeof(m));
		if (m.len <= FAB_ADDR_MAX)
			want += m.len + sizeof(struct fab_rma);
	}
	r = recv(c->fd, c->ctl + c->ctl_have, want - c->ctl_have, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		/* No close announced: it stopped without one (died), or the network failed. */
		fab_conn_down(c, false, r ? strerror(errno) : "connection closed");
		return;
	}
	c->ctl_have += r;
	if (c->ctl_have < sizeof(m))
		return;
	memcpy(&m, c->ctl, sizeof(m));
	switch (c->stage) {
	case FAB_WANT_HELLO:
		if (m.magic != FAB_HELLO || !m.len || m.len > FAB_ADDR_MAX || m.count) {
			fab_conn_down(c, true, "it sent no endpoint address (does it use the fabric "
				      "transport too?)");
			return;
		}
		if (c->ctl_have < sizeof(m) + m.len + sizeof(struct fab_rma))
			return;
		c->stage = FAB_WANT_READY;
		c->ctl_have = 0;
		{
			struct fab_rma rma;

			memcpy(&rma, c->ctl + sizeof(m) + m.len, sizeof(rma));
			fab_peer_known(c, c->ctl + sizeof(m), &rma);
		}
		return;
	case FAB_WANT_READY:
		if (m.magic != FAB_READY || m.len || m.count) {
			fab_conn_down(c, true, "an unexpected message on its mesh connection");
			return;
		}
		c->stage = FAB_WANT_CLOSE;
		c->ctl_have = 0;
		fab_peer_ready(c);
		return;
	default:
		if (m.magic != FAB_CLOSE || m.len) {
			fab_conn_down(c, true, "an unexpected message on its mesh connection");
			return;
		}
		c->stage = FAB_CLOSED;
		c->close_ms = fab_now_ms();
		atomic_store(&c->close_at, m.count);
		fab_conn_check_closed(c);
	}
}

static void *fab_watcher(void *arg)
{
	struct fab *f = arg;
	unsigned n = f->nr_nodes * f->cfg.nr_channels;
	struct pollfd *pfd = calloc(n + 1, sizeof(*pfd));
	struct fab_conn **who = calloc(n + 1, sizeof(*who));

	if (!pfd || !who) {
		/* Without a watcher a peer's death goes unseen: report each as lost. */
		for (unsigned i = 0; i < n; i++)
			if (f->conns[i].fd >= 0)
				fab_conn_down(&f->conns[i], false, "out of memory to watch it");
		free(pfd);
		free(who);
		return NULL;
	}
	while (!atomic_load(&f->stopping)) {
		unsigned np = 1;

		pfd[0] = (struct pollfd){ .fd = f->wake_fd, .events = POLLIN };
		for (unsigned i = 0; i < n; i++) {
			struct fab_conn *c = &f->conns[i];

			if (c->fd < 0 || atomic_load(&c->down))
				continue;
			if (c->stage != FAB_CLOSED) {
				who[np] = c;
				pfd[np++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
				continue;
			}
			/* Closed: waiting for what it sent before (the progress thread sees it come). */
			fab_conn_check_closed(c);
			if (fab_now_ms() - c->close_ms > FAB_CLOSE_GRACE_MS)
				fab_conn_down(c, false, "connection closed, with messages it sent "
					      "still missing");
		}
		if (poll(pfd, np, 100) < 0 && errno != EINTR)
			break;
		for (unsigned i = 1; i < np; i++)
			if (pfd[i].revents)
				fab_watch_read(who[i]);
	}
	free(pfd);
	free(who);
	return NULL;
}

/* ---- set-up and the operations ---- */

static int fab_start(struct dsm_transport *t, char *err)
{
	struct fab *f = fab_of(t);
	int rc;

	for (unsigned ch = 0; ch < f->cfg.nr_channels; ch++) {
		rc = pthread_create(&f->chans[ch].thread, NULL, fab_progress, &f->chans[ch]);
		if (rc) {
			snprintf(err, DSM_ERR_MAX, "fabric: cannot start a progress thread: %s",
				 strerror(rc));
			return -1;
		}
		f->chans[ch].started = true;
	}
	rc = pthread_create(&f->watcher, NULL, fab_watcher, f);
	if (rc) {
		snprintf(err, DSM_ERR_MAX, "fabric: cannot start its watcher: %s", strerror(rc));
		return -1;
	}
	f->watcher_started = true;
	return 0;
}

/* An orderly stop: let what live connections hold go out, for a while, before the close. */
static void fab_drain(struct fab *f)
{
	uint64_t end = fab_now_ms() + FAB_DRAIN_MS;

	for (;;) {
		bool busy = false;

		for (unsigned i = 0; i < f->nr_nodes * f->cfg.nr_channels && !busy; i++) {
			struct fab_conn *c = &f->conns[i];

			if (c->fd < 0)
				continue;
			pthread_mutex_lock(&c->ch->lock);
			busy = (c->q_head || c->outstanding) && !atomic_load(&c->down);
			pthread_mutex_unlock(&c->ch->lock);
		}
		if (!busy || !f->chans[0].started || fab_now_ms() >= end)
			return;
		usleep(1000);
	}
}

/*
 * An orderly stop's close: each live connection is told how many messages
 * it was sent, and stays open (its endpoint progressing, the watcher
 * reading) until the peer, having dispatched them all, shuts its end, or
 * for a while.  A completion, even a delivery completion, does not say the
 * peer's provider has read a message: closing our endpoint at once lost
 * the last of 600 (tcp;ofi_rxm, test-dsm-transport, 1 run in 10 on a
 * loaded host).
 */
static void fab_close(struct fab *f)
{
	uint64_t end = fab_now_ms() + FAB_DRAIN_MS;

	atomic_store(&f->closing, true);
	for (unsigned i = 0; i < f->nr_nodes * f->cfg.nr_channels; i++) {
		struct fab_conn *c = &f->conns[i];
		struct fab_ctl m = { .magic = FAB_CLOSE };

		if (c->fd < 0 || atomic_load(&c->down))
			continue;
		pthread_mutex_lock(&c->ch->lock);
		m.count = c->sent;
		pthread_mutex_unlock(&c->ch->lock);
		(void)fab_write_all(c->fd, &m, sizeof(m));
		shutdown(c->fd, SHUT_WR);
		c->closed_ours = true;
	}
	for (;;) {
		bool open = false;

		for (unsigned i = 0; i < f->nr_nodes * f->cfg.nr_channels && !open; i++)
			open = f->conns[i].fd >= 0 && !atomic_load(&f->conns[i].down);
		if (!open || !f->watcher_started || fab_now_ms() >= end)
			return;
		usleep(1000);
	}
}

static void fab_shutdown(struct dsm_transport *t)
{
	struct fab *f = fab_of(t);
	uint64_t one = 1;

	if (atomic_exchange(&f->stopping, true))
		return;
	for (unsigned i = 0; i < f->nr_nodes * f->cfg.nr_channels; i++) {
		struct fab_conn *c = &f->conns[i];

		if (c->fd >= 0 && !atomic_exchange(&c->down, true)) {
			struct fab_ctl m = { .magic = FAB_CLOSE };

			pthread_mutex_lock(&c->ch->lock);
			m.count = c->sent;
			pthread_mutex_unlock(&c->ch->lock);
			if (!c->closed_ours)
				(void)fab_write_all(c->fd, &m, sizeof(m));
			shutdown(c->fd, SHUT_RDWR);
		}
	}
	for (unsigned ch = 0; ch < f->cfg.nr_channels; ch++)
		if (f->chans[ch].cq)
			fi_cq_signal(f->chans[ch].cq);
	if (write(f->wake_fd, &one, sizeof(one)) < 0) {
		/* saturated: the watcher is awake anyway */
	}
}

static void fab_stop(struct dsm_transport *t)
{
	struct fab *f = fab_of(t);

	if (!atomic_load(&f->stopping)) {
		fab_drain(f);
		fab_close(f);
	}
	fab_shutdown(t);
	for (unsigned ch = 0; f->chans && ch < f->cfg.nr_channels; ch++)
		if (f->chans[ch].started) {
			pthread_join(f->chans[ch].thread, NULL);
			f->chans[ch].started = false;
		}
	if (f->watcher_started) {
		pthread_join(f->watcher, NULL);
		f->watcher_started = false;
	}
}

static void fab_destroy(struct dsm_transport *t)
{
	struct fab *f = fab_of(t);

	fab_stop(t);
	for (unsigned ch = 0; f->chans && ch < f->cfg.nr_channels; ch++) {
		struct fab_chan *c = &f->chans[ch];

		/* The endpoint before the buffers it may still hold, the queue it reports to last. */
		if (c->ep)
			fi_close(&c->ep->fid);
		if (c->mr)
			fi_close(&c->mr->fid);
		if (c->rma_mr)
			fi_close(&c->rma_mr->fid);
		if (c->cq)
			fi_close(&c->cq->fid);
		free(c->slots);
		free(c->mem);
		free(c->rma_mem);
		pthread_mutex_destroy(&c->lock);
	}
	for (unsigned i = 0; f->conns && i < f->nr_nodes * f->cfg.nr_channels; i++) {
		struct fab_conn *c = &f->conns[i];

		while (c->q_head) {
			struct fab_out *o = c->q_head;

			c->q_head = o->next;
			free(o);
		}
		for (unsigned k = 0; c->held && k < FAB_WINDOW; k++)
			free(c->held[k]);
		free(c->held);
	}
	if (f->av)
		fi_close(&f->av->fid);
	if (f->domain)
		fi_close(&f->domain->fid);
	if (f->fabric)
		fi_close(&f->fabric->fid);
	if (f->info)
		fi_freeinfo(f->info);
	if (f->wake_fd >= 0)
		close(f->wake_fd);
	free(f->chans);
	free(f->conns);
	free(f);
}

static const char *fab_describe(struct dsm_transport *t)
{
	return fab_of(t)->desc;
}

static void fab_counts(struct dsm_transport *t, struct dsm_transport_counts *c)
{
	struct fab *f = fab_of(t);

	*c = (struct dsm_transport_counts){ 0 };
	for (unsigned ch = 0; ch < f->cfg.nr_channels; ch++) {
		c->rma_writes += atomic_load(&f->chans[ch].nr_rma);
		c->early += atomic_load(&f->chans[ch].nr_early);
	}
}

static const struct dsm_transport_ops fab_ops = {
	.name = "fabric",
	.start = fab_start,
	.send_msg = fab_send_msg,
	.send_pages = fab_send_pages,
	.shutdown = fab_shutdown,
	.stop = fab_stop,
	.destroy = fab_destroy,
	.describe = fab_describe,
	.counts = fab_counts,
};

/*
 * The provider's RDM endpoints with ordered messages and 32 bits of remote
 * completion data, with RMA writes if rma, sends complete only once
 * delivered if delivered (NULL: none qualifies; rc says why fi_getinfo
 * refused).
 */
static struct fi_info *fab_getinfo(const char *provider, bool rma, bool delivered, int *rc)
{
	struct fi_info *hints = fi_allocinfo(), *all = NULL, *i, *chosen = NULL;

	*rc = -FI_ENOMEM;
	if (!hints || (provider && !(hints->fabric_attr->prov_name = strdup(provider)))) {
		fi_freeinfo(hints);
		return NULL;
	}
	hints->ep_attr->type = FI_EP_RDM;
	hints->caps = FI_MSG | FI_SOURCE | (rma ? FI_RMA | FI_WRITE | FI_REMOTE_WRITE : 0);
	hints->mode = FI_CONTEXT;
	hints->tx_attr->msg_order = FI_ORDER_SAS;
	hints->tx_attr->op_flags = delivered ? FI_DELIVERY_COMPLETE : 0;
	hints->rx_attr->msg_order = FI_ORDER_SAS;
	hints->domain_attr->threading = FI_THREAD_SAFE;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
				      FI_MR_PROV_KEY | FI_MR_ENDPOINT;
	*rc = fi_getinfo(FAB_VERSION, NULL, NULL, 0, hints, &all);
	fi_freeinfo(hints);
	for (i = *rc ? NULL : all; i; i = i->next) {
		const char *p = i->fabric_attr->prov_name;

		if (i->domain_attr->cq_data_size < 4 ||
		    (rma && i->domain_attr->mr_key_size > sizeof(uint64_t)))
			continue;
		if (provider || (strcmp(p, "shm") && strncmp(p, "shm;", 4) && strcmp(p, "sm2") &&
				 !strstr(p, "ofi_rxd")))
			break;
	}
	if (i && !(chosen = fi_dupinfo(i)))
		*rc = -FI_ENOMEM;
	fi_freeinfo(all);
	return chosen;
}

const char *dsm_fabric_built(char *buf, size_t len)
{
	uint32_t v = fi_version();

	snprintf(buf, len, "libfabric %u.%u", FI_MAJOR(v), FI_MINOR(v));
	return buf;
}

struct fi_info *dsm_fabric_choose(const char *provider, char *err)
{
	struct fi_info *chosen;
	int rc;

	/*
	 * RMA for pages where the provider has it, messages where it does not;
	 * and delivery completion, so that an orderly stop, which waits for its
	 * sends to complete, closes the endpoint only once they are the peer's.
	 * On tcp;ofi_rxm without it, a send completes as it leaves and the
	 * close dropped what was in flight (test-dsm-transport's close test, 1
	 * run in 2); and with RMA writes but without it, the probe's APs on
	 * rank 1 hung in their trampoline (cluster/fabric and net/fabric-2,
	 * each in its one run so), and not in 8 runs with it: the cause is not
	 * pinned down, so RMA only with it, and messages without it as before.
	 */
	static const struct { bool rma, delivered; } tries[] = {
		{ true, true }, { false, true }, { false, false },
	};

	for (unsigned i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		chosen = fab_getinfo(provider, tries[i].rma, tries[i].delivered, &rc);
		if (chosen)
			return chosen;
		if (rc == -FI_ENOMEM)
			break;
	}
	if (rc == -FI_ENOMEM)
		snprintf(err, DSM_ERR_MAX, "fabric: out of memory");
	else if (provider)
		snprintf(err, DSM_ERR_MAX, "fabric: provider '%s' is not available here "
			 "with reliable datagrams and ordered messages (fi_info -l lists "
			 "the providers: %s)", provider,
			 rc ? fi_strerror(-rc) : "none of its interfaces qualifies");
	else
		snprintf(err, DSM_ERR_MAX, "fabric: no libfabric provider reaches other "
			 "hosts here with reliable datagrams and ordered messages (%s)",
			 rc ? fi_strerror(-rc) : "only shared-memory ones");
	return NULL;
}

static int fab_choose(struct fab *f, char *err)
{
	f->info = dsm_fabric_choose(f->cfg.provider, err);
	if (!f->info)
		return -1;
	f->rma = f->info->caps & FI_RMA;
	snprintf(f->desc, sizeof(f->desc), "fabric: provider %s, domain %s, fabric %s, pages by %s",
		 f->info->fabric_attr->prov_name, f->info->domain_attr->name,
		 f->info->fabric_attr->name, f->rma ? "RMA write" : "message");
	return 0;
}

/* Register memory of the channel's, bound to its endpoint where the provider wants that. */
static int fab_mr_reg(struct fab *f, struct fab_chan *ch, void *buf, size_t len, uint64_t access,
		      uint64_t key, struct fid_mr **mr)
{
	int rc = fi_mr_reg(f->domain, buf, len, access, 0, key, 0, mr, NULL);

	if (!rc && (f->info->domain_attr->mr_mode & FI_MR_ENDPOINT) &&
	    !(rc = fi_mr_bind(*mr, &ch->ep->fid, 0)))
		rc = fi_mr_enable(*mr);
	return rc;
}

/*
 * The staging slots peers write pages into: as many per peer as the budget
 * allows, up to FAB_RMA_SLOTS_MAX; none (pages go as messages) when it
 * allows not even one.
 */
static int fab_chan_open_rma(struct fab *f, struct fab_chan *ch, char *err)
{
	size_t per_peer = f->nr_nodes > 1 ? FAB_RMA_BUDGET / ((f->nr_nodes - 1) * ch->slot_size) : 0;
	size_t total;
	int rc;

	ch->rma_slots = per_peer < FAB_RMA_SLOTS_MAX ? (unsigned)per_peer : FAB_RMA_SLOTS_MAX;
	if (!ch->rma_slots)
		return 0;
	total = (size_t)f->nr_nodes * ch->rma_slots * ch->slot_size;
	ch->rma_mem = aligned_alloc(4096, (total + 4095) & ~(size_t)4095);
	if (!ch->rma_mem) {
		snprintf(err, DSM_ERR_MAX, "fabric: out of memory for %zu bytes of staging slots",
			 total);
		return -1;
	}
	/* A requested key distinct from the send and receive buffers' (which are index). */
	rc = fab_mr_reg(f, ch, ch->rma_mem, total, FI_REMOTE_WRITE, f->cfg.nr_channels + ch->index,
			&ch->rma_mr);
	if (rc) {
		fab_err(err, "registering the staging slots", rc);
		return -1;
	}
	return 0;
}

static int fab_chan_open(struct fab *f, unsigned index, char *err)
{
	struct fab_chan *ch = &f->chans[index];
	uint32_t max = f->cfg.max_payload ? f->cfg.max_payload[index] : DSM_TRANSPORT_MAX_PAYLOAD;
	struct fi_cq_attr cq_attr = { .format = FI_CQ_FORMAT_DATA, .wait_obj = FI_WAIT_UNSPEC };
	size_t total;
	int rc;

	ch->fab = f;
	ch->index = index;
	pthread_mutex_init(&ch->lock, NULL);
	ch->slot_size = sizeof(struct wire_hdr) + (max ? max : DSM_TRANSPORT_MAX_PAYLOAD);
	if (ch->slot_size > f->info->ep_attr->max_msg_size) {
		snprintf(err, DSM_ERR_MAX, "fabric: provider %s carries messages of at most %zu "
			 "bytes, not %zu", f->info->fabric_attr->prov_name,
			 f->info->ep_attr->max_msg_size, ch->slot_size);
		return -1;
	}
	ch->nr_slots = ch->slot_size > FAB_LARGE ? FAB_SLOTS_LARGE : FAB_SLOTS_SMALL;
	if (f->info->rx_attr->size && ch->nr_slots > f->info->rx_attr->size)
		ch->nr_slots = f->info->rx_attr->size;
	if (f->info->tx_attr->size && ch->nr_slots > f->info->tx_attr->size)
		ch->nr_slots = f->info->tx_attr->size;
	cq_attr.size = 4 * ch->nr_slots;
	total = 2 * ch->nr_slots * ch->slot_size;
	ch->mem = aligned_alloc(4096, (total + 4095) & ~(size_t)4095);
	ch->slots = calloc(2 * ch->nr_slots, sizeof(*ch->slots));
	if (!ch->mem || !ch->slots) {
		snprintf(err, DSM_ERR_MAX, "fabric: out of memory for %zu bytes of buffers", total);
		return -1;
	}
	/*
	 * The queue first, and the address vector bound first: tcp;ofi_rxm
	 * (1.17) crashes closing an endpoint without one (test-inject's fabric
	 * set-up).
	 */
	if ((rc = fi_cq_open(f->domain, &cq_attr, &ch->cq, NULL))) {
		fab_err(err, "a completion queue", rc);
		return -1;
	}
	if ((rc = fi_endpoint(f->domain, f->info, &ch->ep, NULL))) {
		fab_err(err, "an endpoint", rc);
		return -1;
	}
	/* Failing that, the endpoint cannot be closed: it is left open, its memory lost. */
	if ((rc = fi_ep_bind(ch->ep, &f->av->fid, 0))) {
		ch->ep = NULL;
		fab_err(err, "binding the endpoint", rc);
		return -1;
	}
	if ((rc = fi_ep_bind(ch->ep, &ch->cq->fid, FI_TRANSMIT | FI_RECV))) {
		fab_err(err, "binding the endpoint", rc);
		return -1;
	}
	/* Buffers the provider may need registered: ours are all in one piece. */
	if (f->info->domain_attr->mr_mode & FI_MR_LOCAL) {
		rc = fab_mr_reg(f, ch, ch->mem, total,
				FI_SEND | FI_RECV | (f->rma ? FI_WRITE : 0), index, &ch->mr);
		if (rc) {
			fab_err(err, "registering the buffers", rc);
			return -1;
		}
		ch->desc = fi_mr_desc(ch->mr);
	}
	if (f->rma && fab_chan_open_rma(f, ch, err))
		return -1;
	if ((rc = fi_enable(ch->ep))) {
		fab_err(err, "enabling the endpoint", rc);
		return -1;
	}
	for (unsigned i = 0; i < 2 * ch->nr_slots; i++) {
		struct fab_slot *s = &ch->slots[i];

		s->ch = ch;
		s->buf = ch->mem + (size_t)i * ch->slot_size;
		s->recv = i < ch->nr_slots;
		if (s->recv) {
			if ((rc = fab_post_recv(s))) {
				fab_err(err, "posting receive buffers", rc);
				return -1;
			}
		} else {
			s->next = ch->free_sends;
			ch->free_sends = s;
		}
	}
	return 0;
}

struct dsm_transport *dsm_fabric_create(const struct dsm_fabric_config *cfg, char *err)
{
	struct fab *f = calloc(1, sizeof(*f));
	unsigned n = mesh_nr_nodes(cfg->mesh), nch = cfg->nr_channels;
	struct fi_av_attr av_attr = { .type = FI_AV_UNSPEC, .count = n * nch };
	int rc;

	/* Its messages would go unchecked: a sealed mesh asked for what it cannot give. */
	for (unsigned p = 0; p < n; p++)
		if (p != mesh_rank(cfg->mesh) && mesh_seal(cfg->mesh, p, cfg->first_channel)) {
			snprintf(err, DSM_ERR_MAX, "fabric: the mesh checks every message "
				 "(--integrity), which the fabric transport does not: use tcp");
			free(f);
			return NULL;
		}
	if (!f) {
		snprintf(err, DSM_ERR_MAX, "fabric: out of memory");
		return NULL;
	}
	f->t.ops = &fab_ops;
	f->cfg = *cfg;
	f->nr_nodes = n;
	f->rank = mesh_rank(cfg->mesh);
	f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->chans = calloc(nch, sizeof(*f->chans));
	f->conns = calloc((size_t)n * nch, sizeof(*f->conns));
	if (f->wake_fd < 0 || !f->chans || !f->conns) {
		snprintf(err, DSM_ERR_MAX, "fabric: %s",
			 f->wake_fd < 0 ? strerror(errno) : "out of memory");
		goto fail;
	}
	for (unsigned p = 0; p < n; p++)
		for (unsigned ch = 0; ch < nch; ch++) {
			struct fab_conn *c = &f->conns[p * nch + ch];

			c->ch = &f->chans[ch];
			c->peer = p;
			c->fd = p == f->rank ? -1 : mesh_fd(cfg->mesh, p, cfg->first_channel + ch);
			atomic_init(&c->addr, FI_ADDR_NOTAVAIL);
			atomic_init(&c->close_at, UINT64_MAX);
		}
	if (fab_choose(f, err))
		goto fail;
	if ((rc = fi_fabric(f->info->fabric_attr, &f->fabric, NULL))) {
		fab_err(err, "opening the fabric", rc);
		goto fail;
	}
	if ((rc = fi_domain(f->fabric, f->info, &f->domain, NULL))) {
		fab_err(err, "opening the domain", rc);
		goto fail;
	}
	if ((rc = fi_av_open(f->domain, &av_attr, &f->av, NULL))) {
		fab_err(err, "an address vector", rc);
		goto fail;
	}
	for (unsigned ch = 0; ch < nch; ch++)
		if (fab_chan_open(f, ch, err) || fab_hello(f, ch, err))
			goto fail;
	return &f->t;
fail:
	/* Nothing was announced: the peers see the mesh close, not a close of ours. */
	atomic_store(&f->stopping, true);
	fab_destroy(&f->t);
	return NULL;
}
#endif
