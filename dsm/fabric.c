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
 * by one thread, in the order sent (FI_ORDER_SAS).  Senders never wait: a
 * message is copied into one of the channel's registered send buffers, or
 * queued on its connection while none is free (as the TCP transport queues
 * what the socket does not take), and the progress thread sends the queue
 * as sends complete.
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

#define FAB_VERSION FI_VERSION(1, 9)
#define FAB_ADDR_MAX 256
/* Buffers per channel: a demand channel's many small messages, a bulk channel's few runs. */
#define FAB_SLOTS_SMALL 256
#define FAB_SLOTS_LARGE 32
#define FAB_LARGE (64u << 10)
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
	uint32_t len;   /* FAB_HELLO: the address bytes that follow */
	uint64_t count; /* FAB_CLOSE: the messages sent on the channel */
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
	uint64_t close_ms;      /* when the close came (the watcher's) */
	struct fab_out *q_head, *q_tail; /* ch->lock */
	size_t q_bytes;
	/* The watcher's: what the peer wrote on the mesh connection so far. */
	unsigned char ctl[sizeof(struct fab_ctl) + FAB_ADDR_MAX];
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
	struct fab_chan *chans;
	struct fab_conn *conns; /* [peer * nr_channels + channel]; fd -1 for our own rank */
	atomic_bool stopping;
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
	if (!atomic_load(&f->stopping))
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

/*
 * Hand one message (a, then b) in a send buffer to the provider (ch->lock
 * held); 0, -FI_EAGAIN (no buffer, or the provider cannot take it now) or
 * another -errno.
 */
static int fab_post_send(struct fab_chan *ch, struct fab_conn *c, const void *a, size_t alen,
			 const void *b, size_t blen)
{
	struct fab_slot *s = ch->free_sends;
	ssize_t rc;

	if (!s)
		return -FI_EAGAIN;
	memcpy(s->buf, a, alen);
	if (blen)
		memcpy(s->buf + alen, b, blen);
	rc = fi_send(ch->ep, s->buf, alen + blen, ch->desc, atomic_load(&c->addr), &s->ctx);
	if (rc)
		return (int)rc;
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

/* One message that came: checked as the TCP transport checks a frame, then dispatched. */
static void fab_received(struct fab_chan *ch, struct fab_slot *s, size_t len, fi_addr_t src)
{
	struct fab *f = ch->fab;
	struct fab_conn *c = fab_conn_of_addr(f, ch->index, src);
	struct wire_hdr h;
	char why[128];

	/* Not an address a peer gave over the mesh: nobody we know sent it. */
	if (!c || atomic_load(&c->down))
		return;
	if (atomic_load(&c->recvd) >= atomic_load(&c->close_at)) {
		fab_conn_down(c, true, "a message after its close");
		return;
	}
	memcpy(&h, s->buf, len < sizeof(h) ? len : sizeof(h));
	if (len < sizeof(h) || h.magic != WIRE_MAGIC || h.version != WIRE_VERSION) {
		snprintf(why, sizeof(why), "malformed message (%zu bytes)", len);
	} else if (h.from != c->peer) {
		snprintf(why, sizeof(why), "message claims to come from rank %u", h.from);
	} else if (len != sizeof(h) + h.len) {
		snprintf(why, sizeof(why), "message of type 0x%x says %u bytes and carries %zu",
			 h.type, h.len, len - sizeof(h));
	} else if (f->cfg.dispatch(f->cfg.arg, c->peer, ch->index, &h, s->buf + sizeof(h), why)) {
		/* why says it */
	} else {
		atomic_fetch_add(&c->recvd, 1);
		fab_conn_check_closed(c);
		return;
	}
	fab_conn_down(c, true, why);
}

static void fab_completion_error(struct fab_chan *ch)
{
	struct fi_cq_err_entry e = { 0 };
	struct fab_slot *s;

	if (fi_cq_readerr(ch->cq, &e, 0) != 1)
		return;
	s = e.op_context;
	if (!s || atomic_load(&ch->fab->stopping))
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

			if (s->recv) {
				fab_received(ch, s, ent[i].len, src[i]);
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

/* Our address for this channel to every peer; theirs come to the watcher. */
static int fab_hello(struct fab *f, unsigned ch, char *err)
{
	unsigned char addr[FAB_ADDR_MAX];
	size_t len = sizeof(addr);
	struct fab_ctl hello = { .magic = FAB_HELLO };
	int rc = fi_getname(&f->chans[ch].ep->fid, addr, &len);

	if (rc) {
		fab_err(err, "the endpoint's address", rc);
		return -1;
	}
	hello.len = (uint32_t)len;
	for (unsigned p = 0; p < f->nr_nodes; p++) {
		struct fab_conn *c = fab_conn(f, p, ch);

		/* A few hundred bytes on a fresh connection: the socket takes them at once. */
		if (c && (fab_write_all(c->fd, &hello, sizeof(hello)) ||
			  fab_write_all(c->fd, addr, len))) {
			snprintf(err, DSM_ERR_MAX, "fabric: cannot send rank %u our address: %s", p,
				 strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* A peer's address is in the address vector now: tell it, and send what waited for it. */
static void fab_peer_known(struct fab_conn *c, const void *addr)
{
	struct fab_ctl r = { .magic = FAB_READY };
	fi_addr_t a = FI_ADDR_NOTAVAIL;
	int rc = fi_av_insert(c->ch->fab->av, addr, 1, &a, 0, NULL);

	if (rc != 1) {
		fab_conn_down(c, true, "its endpoint address is not one this provider reaches");
		return;
	}
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
 * nothing else.
 */
static void fab_watch_read(struct fab_conn *c)
{
	size_t want = sizeof(struct fab_ctl);
	struct fab_ctl m;
	ssize_t r;

	if (c->stage == FAB_WANT_HELLO && c->ctl_have >= sizeof(m)) {
		memcpy(&m, c->ctl, sizeof(m));
		want += m.len;
	}
	r = recv(c->fd, c->ctl + c->ctl_have, want - c->ctl_have, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		/* No close announced: it stopped without one (died), or the network failed. */
		if (c->stage != FAB_CLOSED)
			fab_conn_down(c, false, r ? strerror(errno) : "connection closed");
		return;
	}
	if (c->stage == FAB_CLOSED) {
		fab_conn_down(c, true, "bytes after its close on its mesh connection");
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
		if (c->ctl_have < sizeof(m) + m.len)
			return;
		c->stage = FAB_WANT_READY;
		c->ctl_have = 0;
		fab_peer_known(c, c->ctl + sizeof(m));
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

	if (!atomic_load(&f->stopping))
		fab_drain(f);
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
		if (c->cq)
			fi_close(&c->cq->fid);
		free(c->slots);
		free(c->mem);
		pthread_mutex_destroy(&c->lock);
	}
	for (unsigned i = 0; f->conns && i < f->nr_nodes * f->cfg.nr_channels; i++) {
		struct fab_conn *c = &f->conns[i];

		while (c->q_head) {
			struct fab_out *o = c->q_head;

			c->q_head = o->next;
			free(o);
		}
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

static const struct dsm_transport_ops fab_ops = {
	.name = "fabric",
	.start = fab_start,
	.send_msg = fab_send_msg,
	.send_pages = fab_send_pages,
	.shutdown = fab_shutdown,
	.stop = fab_stop,
	.destroy = fab_destroy,
	.describe = fab_describe,
};

struct fi_info *dsm_fabric_choose(const char *provider, char *err)
{
	struct fi_info *hints = fi_allocinfo(), *all = NULL, *i, *chosen;
	int rc;

	if (!hints) {
		snprintf(err, DSM_ERR_MAX, "fabric: out of memory");
		return NULL;
	}
	hints->ep_attr->type = FI_EP_RDM;
	hints->caps = FI_MSG | FI_SOURCE;
	hints->mode = FI_CONTEXT;
	hints->tx_attr->msg_order = FI_ORDER_SAS;
	hints->rx_attr->msg_order = FI_ORDER_SAS;
	hints->domain_attr->threading = FI_THREAD_SAFE;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
				      FI_MR_PROV_KEY | FI_MR_ENDPOINT;
	if (provider && !(hints->fabric_attr->prov_name = strdup(provider))) {
		fi_freeinfo(hints);
		snprintf(err, DSM_ERR_MAX, "fabric: out of memory");
		return NULL;
	}
	rc = fi_getinfo(FAB_VERSION, NULL, NULL, 0, hints, &all);
	fi_freeinfo(hints);
	for (i = rc ? NULL : all; i; i = i->next) {
		const char *p = i->fabric_attr->prov_name;

		if (provider || (strcmp(p, "shm") && strncmp(p, "shm;", 4) && strcmp(p, "sm2") &&
				 !strstr(p, "ofi_rxd")))
			break;
	}
	if (!i) {
		if (provider)
			snprintf(err, DSM_ERR_MAX, "fabric: provider '%s' is not available here "
				 "with reliable datagrams and ordered messages (fi_info -l lists "
				 "the providers: %s)", provider,
				 rc ? fi_strerror(-rc) : "none of its interfaces qualifies");
		else
			snprintf(err, DSM_ERR_MAX, "fabric: no libfabric provider reaches other "
				 "hosts here with reliable datagrams and ordered messages (%s)",
				 rc ? fi_strerror(-rc) : "only shared-memory ones");
		fi_freeinfo(all);
		return NULL;
	}
	chosen = fi_dupinfo(i);
	fi_freeinfo(all);
	if (!chosen)
		snprintf(err, DSM_ERR_MAX, "fabric: out of memory");
	return chosen;
}

static int fab_choose(struct fab *f, char *err)
{
	f->info = dsm_fabric_choose(f->cfg.provider, err);
	if (!f->info)
		return -1;
	snprintf(f->desc, sizeof(f->desc), "fabric: provider %s, domain %s, fabric %s",
		 f->info->fabric_attr->prov_name, f->info->domain_attr->name,
		 f->info->fabric_attr->name);
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
	if ((rc = fi_endpoint(f->domain, f->info, &ch->ep, NULL))) {
		fab_err(err, "an endpoint", rc);
		return -1;
	}
	if ((rc = fi_cq_open(f->domain, &cq_attr, &ch->cq, NULL))) {
		fab_err(err, "a completion queue", rc);
		return -1;
	}
	if ((rc = fi_ep_bind(ch->ep, &ch->cq->fid, FI_TRANSMIT | FI_RECV)) ||
	    (rc = fi_ep_bind(ch->ep, &f->av->fid, 0))) {
		fab_err(err, "binding the endpoint", rc);
		return -1;
	}
	/* Buffers the provider may need registered: ours are all in one piece. */
	if (f->info->domain_attr->mr_mode & FI_MR_LOCAL) {
		rc = fi_mr_reg(f->domain, ch->mem, total, FI_SEND | FI_RECV, 0, index, 0, &ch->mr,
			       NULL);
		if (!rc && (f->info->domain_attr->mr_mode & FI_MR_ENDPOINT) &&
		    !(rc = fi_mr_bind(ch->mr, &ch->ep->fid, 0)))
			rc = fi_mr_enable(ch->mr);
		if (rc) {
			fab_err(err, "registering the buffers", rc);
			return -1;
		}
		ch->desc = fi_mr_desc(ch->mr);
	}
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
