/*
 * The TCP transport: the DSM's channels of an already formed mesh
 * (common/mesh.h: authenticated, TCP_NODELAY, keepalive).  One receive
 * thread per (peer, channel) reads whole frames into its own buffer and
 * dispatches them in order.
 *
 * No sender ever blocks on a full socket (common/outq.h: receive threads
 * send replies, and 64-page prefetch runs both ways).  A peer that leaves
 * more than TCP_QUEUE_MAX unread is dropped.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/mesh.h"
#include "common/outq.h"
#include "common/seal.h"
#include "dsm/transport.h"

/* Room for one largest frame plus what usually follows it in the same read. */
#define TCP_RXBUF (sizeof(struct wire_hdr) + DSM_TRANSPORT_MAX_PAYLOAD + SEAL_TAG_LEN + 65536)
/* Unsent bytes one connection may hold before its peer counts as gone. */
#define TCP_QUEUE_MAX (64u << 20)
/* An orderly stop waits this long for the queues to reach their sockets. */
#define TCP_DRAIN_MS 5000

struct tcp_conn {
	struct tcp *tcp;
	unsigned peer, channel;
	unsigned idx; /* in conns[] and the send queues */
	int fd;
	struct seal *seal; /* the mesh's, with --integrity; NULL without */
	pthread_t thread;
	bool started;
	unsigned char *buf;
};

struct tcp {
	struct dsm_transport t;
	struct dsm_tcp_config cfg;
	unsigned nr_nodes, rank;
	struct tcp_conn *conns; /* [peer * nr_channels + channel]; fd -1 for our own rank */
	struct outq *out;       /* sends; a connection there down: the peer was told by EOF */
	atomic_bool stopping;
	bool sealed;             /* the mesh's connections have seals (--integrity) */
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

	if (outq_set_down(tcp->out, c->idx))
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

static int tcp_send(struct tcp *tcp, unsigned peer, unsigned channel, const struct wire_hdr *h,
		    const void *payload)
{
	struct tcp_conn *c = tcp_conn(tcp, peer, channel);
	int rc;

	if (!c)
		return -EINVAL;
	rc = outq_send(tcp->out, c->idx, h, payload);
	if (rc == -ENOBUFS)
		tcp_conn_down(c, false, "it has not read what was sent to it for too long "
			      "(64 MiB waiting)");
	return rc;
}

static int tcp_start(struct dsm_transport *t, char *err)
{
	struct tcp *tcp = tcp_of(t);

	if (outq_start(tcp->out, err))
		return -1;

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
	/* What the sockets take now still goes (an ABORT just sent, say); no waiting. */
	outq_flush_now(tcp->out);
	for (unsigned i = 0; i < tcp->nr_nodes * tcp->cfg.nr_channels; i++) {
		struct tcp_conn *c = &tcp->conns[i];

		if (c->fd < 0)
			continue;
		outq_set_down(tcp->out, i);
		shutdown(c->fd, SHUT_RDWR);
	}
}

static void tcp_stop(struct dsm_transport *t)
{
	struct tcp *tcp = tcp_of(t);

	/* An orderly stop (BYEs queued) waits, a bounded time, for the queues. */
	if (!atomic_load(&tcp->stopping))
		outq_drain(tcp->out, TCP_DRAIN_MS);
	tcp_shutdown(t);
	for (unsigned i = 0; i < tcp->nr_nodes * tcp->cfg.nr_channels; i++)
		if (tcp->conns[i].started) {
			pthread_join(tcp->conns[i].thread, NULL);
			tcp->conns[i].started = false;
		}
	outq_stop(tcp->out);
}

static void tcp_destroy(struct dsm_transport *t)
{
	struct tcp *tcp = tcp_of(t);

	if (!tcp)
		return;
	tcp_stop(t);
	for (unsigned i = 0; i < tcp->nr_nodes * tcp->cfg.nr_channels; i++)
		free(tcp->conns[i].buf);
	outq_free(tcp->out);
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
	tcp->out = outq_new(n * cfg->nr_channels, TCP_QUEUE_MAX, err);
	if (!tcp->out) {
		free(tcp->conns);
		free(tcp);
		return NULL;
	}
	/* All set up to "no connection" first: an error below destroys every one of them. */
	for (unsigned i = 0; i < n * cfg->nr_channels; i++)
		tcp->conns[i].fd = -1;
	for (unsigned p = 0; p < n; p++)
		for (unsigned ch = 0; ch < cfg->nr_channels; ch++) {
			struct tcp_conn *c = &tcp->conns[p * cfg->nr_channels + ch];

			c->tcp = tcp;
			c->idx = p * cfg->nr_channels + ch;
			c->peer = p;
			c->channel = ch;
			c->fd = p == tcp->rank ? -1 : mesh_fd(cfg->mesh, p, cfg->first_channel + ch);
			c->seal = mesh_seal(cfg->mesh, p, cfg->first_channel + ch);
			tcp->sealed |= c->seal != NULL;
			if (p == tcp->rank)
				continue;
			outq_attach(tcp->out, c->idx, c->fd, c->seal);
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
