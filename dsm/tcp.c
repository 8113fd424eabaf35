/*
 * The TCP transport: the DSM's channels of an already formed mesh
 * (common/mesh.h: authenticated, TCP_NODELAY, keepalive).  One receive
 * thread per (peer, channel) reads whole frames into its own buffer and
 * dispatches them in order; a mutex per connection keeps frames of
 * concurrent senders whole.
 *
 * No sender ever blocks on a full socket.  Receive threads send replies,
 * and two nodes that each block writing to the other, neither reading, would
 * wait for ever once more is in flight than the socket buffers hold (64-page
 * prefetch runs both ways).  A send writes what the socket takes at once and
 * queues the rest on its connection; later frames queue behind it, in order,
 * and one flusher thread per transport writes the queues as the sockets
 * drain.  A peer that leaves more than TCP_QUEUE_MAX unread is dropped.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/mesh.h"
#include "common/seal.h"
#include "dsm/transport.h"

/* Room for one largest frame plus what usually follows it in the same read. */
#define TCP_RXBUF (sizeof(struct wire_hdr) + DSM_TRANSPORT_MAX_PAYLOAD + SEAL_TAG_LEN + 65536)
/* Unsent bytes one connection may hold before its peer counts as gone. */
#define TCP_QUEUE_MAX (64u << 20)
/* An orderly stop waits this long for the queues to reach their sockets. */
#define TCP_DRAIN_MS 5000

/* The unsent tail of one frame. */
struct tcp_out {
	struct tcp_out *next;
	size_t len, off;
	unsigned char data[];
};

struct tcp_conn {
	struct tcp *tcp;
	unsigned peer, channel;
	int fd;
	struct seal *seal;         /* the mesh's, with --integrity; NULL without */
	pthread_mutex_t send_lock; /* the socket's writes, the queue, the seal's sending side */
	struct tcp_out *q_head, *q_tail;
	size_t q_bytes;
	pthread_t thread;
	bool started;
	atomic_bool down; /* shut down: the peer has been told by EOF */
	unsigned char *buf;
};

struct tcp {
	struct dsm_transport t;
	struct dsm_tcp_config cfg;
	unsigned nr_nodes, rank;
	struct tcp_conn *conns; /* [peer * nr_channels + channel]; fd -1 for our own rank */
	atomic_bool stopping;
	bool sealed;             /* the mesh's connections have seals (--integrity) */
	int wake_fd;             /* eventfd: a queue became non-empty, or stop */
	pthread_t flusher;
	bool flusher_started;
	atomic_bool flusher_stop;
};

static struct tcp *tcp_of(struct dsm_transport *t)
{
	return (struct tcp *)t;
}

static struct tcp_conn *tcp_conn(struct tcp *tcp, unsigned peer, unsigned channel)
{
	if (peer >= tcp->nr_nodes || peer == tcp->rank || channel >= tcp->cfg.nr_channels)
		return NULL;
	return &tcp->conns[peer * tcp->cfg.nr_channels + channel];
}

static uint64_t tcp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void tcp_conn_down(struct tcp_conn *c, bool malformed, const char *why)
{
	struct tcp *tcp = c->tcp;

	if (atomic_exchange(&c->down, true))
		return;
	/* Report before closing: the peer's reaction to the close must not be reported first. */
	if (!atomic_load(&tcp->stopping))
		tcp->cfg.lost(tcp->cfg.arg, c->peer, c->channel, malformed, why);
	shutdown(c->fd, SHUT_RDWR);
}

static bool tcp_expecting(struct tcp_conn *c)
{
	struct tcp *tcp = c->tcp;

	return tcp->cfg.poll_us &&
	       (!tcp->cfg.expecting || tcp->cfg.expecting(tcp->cfg.arg, c->peer, c->channel));
}

/*
 * Spin with non-blocking peeks for up to poll_us, waiting for data, while a
 * reply is expected; yield the core to anyone runnable meanwhile.  Returns
 * true when data (or an error) is there.
 */
static bool tcp_spin(struct tcp_conn *c)
{
	struct tcp *tcp = c->tcp;
	uint64_t end = tcp_now_ns() + tcp->cfg.poll_us * 1000ull;
	char b;

	do {
		ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (r >= 0 || (errno != EAGAIN && errno != EINTR))
			return true;
		sched_yield();
	} while (tcp_now_ns() < end && tcp_expecting(c) && !atomic_load(&tcp->stopping));
	return false;
}

/*
 * Dispatch every whole frame in buf[0, *have); keep a partial one at the
 * front.  Returns -1 (reason in why) on a malformed frame or a refused one.
 */
static int tcp_dispatch_frames(struct tcp_conn *c, size_t *have, char *why)
{
	struct tcp *tcp = c->tcp;
	size_t off = 0;

	while (*have - off >= sizeof(struct wire_hdr)) {
		struct wire_hdr h;

		memcpy(&h, c->buf + off, sizeof(h));
		if (h.magic != WIRE_MAGIC || h.version != WIRE_VERSION) {
			snprintf(why, 128, "malformed frame (magic 0x%04x version %u)", h.magic,
				 h.version);
			return -1;
		}
		if (h.from != c->peer) {
			snprintf(why, 128, "frame claims to come from rank %u", h.from);
			return -1;
		}
		if (h.len > DSM_TRANSPORT_MAX_PAYLOAD) {
			snprintf(why, 128, "frame of type 0x%x carries %u bytes, more than %u allowed",
				 h.type, h.len, DSM_TRANSPORT_MAX_PAYLOAD);
			return -1;
		}
		if (*have - off < sizeof(h) + h.len + (c->seal ? SEAL_TAG_LEN : 0))
			break;
		if (c->seal && seal_check(c->seal, &h, c->buf + off + sizeof(h),
					  c->buf + off + sizeof(h) + h.len)) {
			snprintf(why, 128, "frame of type 0x%x fails its integrity check (altered or "
				 "injected on the network?)", h.type);
			return -1;
		}
		if (tcp->cfg.dispatch(tcp->cfg.arg, c->peer, c->channel, &h,
				      c->buf + off + sizeof(h), why))
			return -1;
		off += sizeof(h) + h.len + (c->seal ? SEAL_TAG_LEN : 0);
	}
	if (off) {
		memmove(c->buf, c->buf + off, *have - off);
		*have -= off;
	}
	return 0;
}

static void *tcp_rx_thread(void *arg)
{
	struct tcp_conn *c = arg;
	struct tcp *tcp = c->tcp;
	size_t have = 0;
	char why[128];

	for (;;) {
		/* Without spinning, sleep in recv itself: one system call per wake-up. */
		bool spin = tcp_expecting(c);
		ssize_t r = recv(c->fd, c->buf + have, TCP_RXBUF - have, spin ? MSG_DONTWAIT : 0);

		if (r < 0 && errno == EAGAIN) {
			if (atomic_load(&tcp->stopping))
				break;
			/* Nothing yet: spin while worth it, then sleep in a blocking recv. */
			if (!tcp_spin(c))
				r = recv(c->fd, c->buf + have, TCP_RXBUF - have, 0);
			else
				continue;
		}
		if (r > 0) {
			have += r;
			if (tcp_dispatch_frames(c, &have, why)) {
				tcp_conn_down(c, true, why);
				break;
			}
			continue;
		}
		if (r == 0) {
			tcp_conn_down(c, false, "connection closed");
			break;
		}
		if (errno == EINTR || errno == EAGAIN)
			continue;
		tcp_conn_down(c, false, strerror(errno));
		break;
	}
	return NULL;
}

/* Queue the part of a frame (iov[0, n)) the socket did not take (send_lock held). */
static int tcp_enqueue(struct tcp_conn *c, const struct iovec *iov, int n, size_t sent)
{
	size_t total = 0, at = 0;
	struct tcp_out *o;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (c->q_bytes + total - sent > TCP_QUEUE_MAX)
		return -ENOBUFS;
	o = malloc(sizeof(*o) + total - sent);
	if (!o)
		return -ENOMEM;
	o->next = NULL;
	o->len = total - sent;
	o->off = 0;
	for (int i = 0; i < n; i++) {
		size_t skip = sent > iov[i].iov_len ? iov[i].iov_len : sent;

		sent -= skip;
		if (iov[i].iov_len > skip)
			memcpy(o->data + at, (const char *)iov[i].iov_base + skip,
			       iov[i].iov_len - skip);
		at += iov[i].iov_len - skip;
	}
	if (c->q_tail)
		c->q_tail->next = o;
	else
		c->q_head = o;
	c->q_tail = o;
	c->q_bytes += o->len;
	return 0;
}

/* Write what the socket takes now from the queue (send_lock held); -errno on failure. */
static int tcp_flush_locked(struct tcp_conn *c)
{
	while (c->q_head) {
		struct tcp_out *o = c->q_head;
		ssize_t r = send(c->fd, o->data + o->off, o->len - o->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		o->off += r;
		c->q_bytes -= r;
		if (o->off < o->len)
			return 0;
		c->q_head = o->next;
		if (!c->q_head)
			c->q_tail = NULL;
		free(o);
	}
	return 0;
}

static void tcp_queue_free(struct tcp_conn *c)
{
	while (c->q_head) {
		struct tcp_out *o = c->q_head;

		c->q_head = o->next;
		free(o);
	}
	c->q_tail = NULL;
	c->q_bytes = 0;
}

static void tcp_wake_flusher(struct tcp *tcp)
{
	uint64_t one = 1;

	if (write(tcp->wake_fd, &one, sizeof(one)) < 0) {
		/* only when the counter is saturated: the flusher is awake anyway */
	}
}

static int tcp_send(struct tcp *tcp, unsigned peer, unsigned channel, const struct wire_hdr *h,
		    const void *payload)
{
	struct tcp_conn *c = tcp_conn(tcp, peer, channel);
	uint8_t tag[SEAL_TAG_LEN];
	struct iovec iov[3] = {
		{ .iov_base = (void *)h, .iov_len = sizeof(*h) },
		{ .iov_base = (void *)payload, .iov_len = payload ? h->len : 0 },
		{ .iov_base = tag, .iov_len = sizeof(tag) },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	bool queued = false;
	ssize_t r = 0;
	int rc = 0;

	if (!c)
		return -EINVAL;
	if (h->len && !payload)
		return -EINVAL;
	if (atomic_load(&c->down))
		return -ECONNRESET;
	if (c->seal)
		msg.msg_iovlen = 3;
	pthread_mutex_lock(&c->send_lock);
	/* Tagged under the lock: frames must reach the wire in the order of their numbers. */
	if (c->seal && seal_tag(c->seal, h, payload, tag))
		rc = -EPROTO;
	else if (!c->q_head) {
		/* Nothing queued ahead of it: straight to the socket, as much as it takes. */
		do
			r = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (r < 0 && errno == EINTR);
		if (r < 0 && errno != EAGAIN)
			rc = -errno;
		else if (r < 0)
			r = 0;
	}
	if (!rc && (size_t)r < sizeof(*h) + h->len + (c->seal ? SEAL_TAG_LEN : 0)) {
		rc = tcp_enqueue(c, iov, (int)msg.msg_iovlen, r);
		queued = !rc;
	}
	pthread_mutex_unlock(&c->send_lock);
	if (queued)
		tcp_wake_flusher(tcp);
	if (rc == -ENOBUFS)
		tcp_conn_down(c, false, "it has not read what was sent to it for too long "
			      "(64 MiB waiting)");
	return rc;
}

/*
 * Write the queues as their sockets drain.  A failed write is not reported
 * here: the receive thread of that connection sees the failure too.
 */
static void *tcp_flusher(void *arg)
{
	struct tcp *tcp = arg;
	unsigned n = tcp->nr_nodes * tcp->cfg.nr_channels;
	struct pollfd *pfd = calloc(n + 1, sizeof(*pfd));
	unsigned *idx = calloc(n, sizeof(*idx));

	if (!pfd || !idx) {
		/* Without its memory the flusher cannot run: fail every connection. */
		for (unsigned i = 0; i < n; i++)
			if (tcp->conns[i].fd >= 0)
				tcp_conn_down(&tcp->conns[i], false, "out of memory");
		free(pfd);
		free(idx);
		return NULL;
	}
	while (!atomic_load(&tcp->flusher_stop)) {
		unsigned np = 1;
		uint64_t v;

		pfd[0] = (struct pollfd){ .fd = tcp->wake_fd, .events = POLLIN };
		for (unsigned i = 0; i < n; i++) {
			struct tcp_conn *c = &tcp->conns[i];
			bool busy;

			if (c->fd < 0)
				continue;
			pthread_mutex_lock(&c->send_lock);
			busy = c->q_head && !atomic_load(&c->down);
			pthread_mutex_unlock(&c->send_lock);
			if (busy) {
				idx[np - 1] = i;
				pfd[np++] = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
			}
		}
		if (poll(pfd, np, -1) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN && read(tcp->wake_fd, &v, sizeof(v)) < 0) {
			/* nothing to do: the next poll says if it is still readable */
		}
		for (unsigned k = 1; k < np; k++) {
			struct tcp_conn *c = &tcp->conns[idx[k - 1]];

			if (!pfd[k].revents)
				continue;
			pthread_mutex_lock(&c->send_lock);
			if (tcp_flush_locked(c))
				tcp_queue_free(c);
			pthread_mutex_unlock(&c->send_lock);
		}
	}
	free(pfd);
	free(idx);
	return NULL;
}

static int tcp_start(struct dsm_transport *t, char *err)
{
	struct tcp *tcp = tcp_of(t);
	int frc = pthread_create(&tcp->flusher, NULL, tcp_flusher, tcp);

	if (frc) {
		snprintf(err, 256, "cannot start the send thread: %s", strerror(frc));
		return -1;
	}
	tcp->flusher_started = true;

	for (unsigned i = 0; i < tcp->nr_nodes * tcp->cfg.nr_channels; i++) {
		struct tcp_conn *c = &tcp->conns[i];
		int rc;

		if (c->fd < 0)
			continue;
		rc = pthread_create(&c->thread, NULL, tcp_rx_thread, c);
		if (rc) {
			snprintf(err, 256, "cannot start a receive thread: %s", strerror(rc));
			return -1;
		}
		c->started = true;
	}
	return 0;
}

static int tcp_send_msg(struct dsm_transport *t, unsigned peer, unsigned channel,
			const struct wire_hdr *h)
{
	if (h->len)
		return -EINVAL;
	return tcp_send(tcp_of(t), peer, channel, h, NULL);
}

static int tcp_send_pages(struct dsm_transport *t, unsigned peer, unsigned channel,
			  const struct wire_hdr *h, const void *pages)
{
	if (h->len > DSM_TRANSPORT_MAX_PAYLOAD)
		return -EMSGSIZE;
	return tcp_send(tcp_of(t), peer, channel, h, pages);
}

static void tcp_shutdown(struct dsm_transport *t)
{
	struct tcp *tcp = tcp_of(t);

	atomic_store(&tcp->stopping, true);
	for (unsigned i = 0; i < tcp->nr_nodes * tcp->cfg.nr_channels; i++) {
		struct tcp_conn *c = &tcp->conns[i];

		if (c->fd < 0)
			continue;
		/* What the socket takes now still goes (an ABORT just sent, say); no waiting. */
		pthread_mutex_lock(&c->send_lock);
		tcp_flush_locked(c);
		pthread_mutex_unlock(&c->send_lock);
		atomic_store(&c->down, true);
		shutdown(c->fd, SHUT_RDWR);
	}
	atomic_store(&tcp->flusher_stop, true);
	tcp_wake_flusher(tcp);
}

/* Wait, a bounded time, for the flusher to write every queue (an orderly stop: BYEs). */
static void tcp_drain(struct tcp *tcp)
{
	uint64_t end = tcp_now_ns() + TCP_DRAIN_MS * 1000000ull;

	for (;;) {
		bool empty = true;

		for (unsigned i = 0; i < tcp->nr_nodes * tcp->cfg.nr_channels && empty; i++) {
			struct tcp_conn *c = &tcp->conns[i];

			pthread_mutex_lock(&c->send_lock);
			empty = !c->q_head || atomic_load(&c->down);
			pthread_mutex_unlock(&c->send_lock);
		}
		if (empty || tcp_now_ns() >= end || !tcp->flusher_started)
			return;
		usleep(1000);
	}
}

static void tcp_stop(struct dsm_transport *t)
{
	struct tcp *tcp = tcp_of(t);

	if (!atomic_load(&tcp->stopping))
		tcp_drain(tcp);
	tcp_shutdown(t);
	for (unsigned i = 0; i < tcp->nr_nodes * tcp->cfg.nr_channels; i++)
		if (tcp->conns[i].started) {
			pthread_join(tcp->conns[i].thread, NULL);
			tcp->conns[i].started = false;
		}
	if (tcp->flusher_started) {
		pthread_join(tcp->flusher, NULL);
		tcp->flusher_started = false;
	}
}

static void tcp_destroy(struct dsm_transport *t)
{
	struct tcp *tcp = tcp_of(t);

	if (!tcp)
		return;
	tcp_stop(t);
	for (unsigned i = 0; i < tcp->nr_nodes * tcp->cfg.nr_channels; i++) {
		tcp_queue_free(&tcp->conns[i]);
		pthread_mutex_destroy(&tcp->conns[i].send_lock);
		free(tcp->conns[i].buf);
	}
	if (tcp->wake_fd >= 0)
		close(tcp->wake_fd);
	free(tcp->conns);
	free(tcp);
}

static const char *tcp_describe(struct dsm_transport *t)
{
	return tcp_of(t)->sealed ? "tcp, every message checked (--integrity)" : "tcp";
}

/* TCP has neither staging slots nor messages out of turn. */
static void tcp_counts(struct dsm_transport *t, struct dsm_transport_counts *c)
{
	(void)t;
	*c = (struct dsm_transport_counts){ 0 };
}

static const struct dsm_transport_ops tcp_ops = {
	.name = "tcp",
	.start = tcp_start,
	.send_msg = tcp_send_msg,
	.send_pages = tcp_send_pages,
	.shutdown = tcp_shutdown,
	.stop = tcp_stop,
	.destroy = tcp_destroy,
	.describe = tcp_describe,
	.counts = tcp_counts,
};

struct dsm_transport *dsm_tcp_create(const struct dsm_tcp_config *cfg, char *err)
{
	unsigned n = mesh_nr_nodes(cfg->mesh);
	struct tcp *tcp = calloc(1, sizeof(*tcp));

	if (!tcp || !(tcp->conns = calloc(n * cfg->nr_channels, sizeof(*tcp->conns)))) {
		free(tcp);
		snprintf(err, 256, "out of memory");
		return NULL;
	}
	tcp->t.ops = &tcp_ops;
	tcp->cfg = *cfg;
	tcp->nr_nodes = n;
	tcp->rank = mesh_rank(cfg->mesh);
	tcp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (tcp->wake_fd < 0) {
		snprintf(err, 256, "eventfd: %s", strerror(errno));
		free(tcp->conns);
		free(tcp);
		return NULL;
	}
	/* All set up to "no connection" first: an error below destroys every one of them. */
	for (unsigned i = 0; i < n * cfg->nr_channels; i++) {
		tcp->conns[i].fd = -1;
		pthread_mutex_init(&tcp->conns[i].send_lock, NULL);
	}
	for (unsigned p = 0; p < n; p++)
		for (unsigned ch = 0; ch < cfg->nr_channels; ch++) {
			struct tcp_conn *c = &tcp->conns[p * cfg->nr_channels + ch];

			c->tcp = tcp;
			c->peer = p;
			c->channel = ch;
			c->fd = p == tcp->rank ? -1 : mesh_fd(cfg->mesh, p, cfg->first_channel + ch);
			c->seal = mesh_seal(cfg->mesh, p, cfg->first_channel + ch);
			tcp->sealed |= c->seal != NULL;
			if (p == tcp->rank)
				continue;
			if (c->fd < 0) {
				snprintf(err, 256, "the mesh has no channel %u to rank %u",
					 cfg->first_channel + ch, p);
				tcp_destroy(&tcp->t);
				return NULL;
			}
			if (!(c->buf = malloc(TCP_RXBUF))) {
				snprintf(err, 256, "out of memory");
				tcp_destroy(&tcp->t);
				return NULL;
			}
		}
	return &tcp->t;
}
