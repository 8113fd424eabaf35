/* Queued non-blocking sends of wire frames (common/outq.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/deadline.h"
#include "common/outq.h"

/* The unsent tail of one frame. */
struct outq_buf {
	struct outq_buf *next;
	size_t len, off;
	unsigned char data[];
};

struct outq_conn {
	int fd;
	struct seal *seal;
	pthread_mutex_t lock; /* the socket's writes, the queue, the seal's sending side */
	struct outq_buf *head, *tail;
	size_t bytes;
	atomic_bool down;
};

struct outq {
	unsigned n;
	size_t cap;
	struct outq_conn *conns;
	int wake_fd; /* eventfd: a queue became non-empty, or stop */
	/* the flusher's, allocated with the set: once running it cannot fail */
	struct pollfd *pfd; /* [0] wake_fd, then the busy connections' */
	unsigned *idx;      /* conns[] of pfd[1...] */
	pthread_t flusher;
	bool started;
	atomic_bool stop;
};

struct outq *outq_new(unsigned nr_conns, size_t cap, char *err)
{
	struct outq *q = calloc(1, sizeof(*q));

	if (!q || !(q->conns = calloc(nr_conns, sizeof(*q->conns))) ||
	    !(q->pfd = calloc(nr_conns + 1, sizeof(*q->pfd))) ||
	    !(q->idx = calloc(nr_conns, sizeof(*q->idx)))) {
		if (q) {
			free(q->conns);
			free(q->pfd);
		}
		free(q);
		snprintf(err, OUTQ_ERR_MAX, "out of memory");
		return NULL;
	}
	q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->wake_fd < 0) {
		snprintf(err, OUTQ_ERR_MAX, "eventfd: %s", strerror(errno));
		free(q->idx);
		free(q->pfd);
		free(q->conns);
		free(q);
		return NULL;
	}
	q->n = nr_conns;
	q->cap = cap;
	for (unsigned i = 0; i < nr_conns; i++) {
		q->conns[i].fd = -1;
		pthread_mutex_init(&q->conns[i].lock, NULL);
	}
	return q;
}

void outq_attach(struct outq *q, unsigned i, int fd, struct seal *seal)
{
	q->conns[i].fd = fd;
	q->conns[i].seal = seal;
}

/* Queue the part of a frame (iov[0, n)) the socket did not take (lock held). */
static int outq_enqueue(struct outq *q, struct outq_conn *c, const struct iovec *iov, int n,
			size_t sent)
{
	size_t total = 0, at = 0;
	struct outq_buf *b;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (c->bytes + total - sent > q->cap)
		return -ENOBUFS;
	b = malloc(sizeof(*b) + total - sent);
	if (!b)
		return -ENOMEM;
	b->next = NULL;
	b->len = total - sent;
	b->off = 0;
	for (int i = 0; i < n; i++) {
		size_t skip = sent > iov[i].iov_len ? iov[i].iov_len : sent;

		sent -= skip;
		if (iov[i].iov_len > skip)
			memcpy(b->data + at, (const char *)iov[i].iov_base + skip,
			       iov[i].iov_len - skip);
		at += iov[i].iov_len - skip;
	}
	if (c->tail)
		c->tail->next = b;
	else
		c->head = b;
	c->tail = b;
	c->bytes += b->len;
	return 0;
}

/* Write what the socket takes now from the queue (lock held); -errno on failure. */
static int outq_flush_locked(struct outq_conn *c)
{
	while (c->head) {
		struct outq_buf *b = c->head;
		ssize_t r = send(c->fd, b->data + b->off, b->len - b->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		b->off += r;
		c->bytes -= r;
		if (b->off < b->len)
			return 0;
		c->head = b->next;
		if (!c->head)
			c->tail = NULL;
		free(b);
	}
	return 0;
}

static void outq_drop_locked(struct outq_conn *c)
{
	while (c->head) {
		struct outq_buf *b = c->head;

		c->head = b->next;
		free(b);
	}
	c->tail = NULL;
	c->bytes = 0;
}

static void outq_wake(struct outq *q)
{
	uint64_t one = 1;

	if (write(q->wake_fd, &one, sizeof(one)) < 0) {
		/* only when the counter is saturated: the flusher is awake anyway */
	}
}

int outq_send(struct outq *q, unsigned i, const struct wire_hdr *h, const void *payload)
{
	struct outq_conn *c = &q->conns[i];
	uint8_t tag[SEAL_TAG_LEN];
	struct iovec iov[3] = {
		{ .iov_base = (void *)h, .iov_len = sizeof(*h) },
		{ .iov_base = (void *)payload, .iov_len = payload ? h->len : 0 },
		{ .iov_base = tag, .iov_len = sizeof(tag) },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = c->seal ? 3 : 2 };
	bool queued = false;
	ssize_t r = 0;
	int rc = 0;

	if (h->len && !payload)
		return -EINVAL;
	if (c->fd < 0)
		return -EBADF;
	if (atomic_load(&c->down))
		return -ECONNRESET;
	pthread_mutex_lock(&c->lock);
	if (c->seal && seal_tag(c->seal, h, payload, tag))
		rc = -EPROTO;
	else if (!c->head) {
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
		rc = outq_enqueue(q, c, iov, (int)msg.msg_iovlen, r);
		queued = !rc;
	}
	/*
	 * Part of the frame written, or its tag's number used, and the rest
	 * lost: what follows would not be a frame the peer can check.  Close
	 * the stream; the receive thread reports the end.
	 */
	if (rc == -ENOMEM || rc == -EPROTO || (rc == -ENOBUFS && r > 0))
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&c->lock);
	if (queued)
		outq_wake(q);
	return rc;
}

bool outq_set_down(struct outq *q, unsigned i)
{
	struct outq_conn *c = &q->conns[i];
	bool was;

	pthread_mutex_lock(&c->lock);
	was = atomic_exchange(&c->down, true);
	outq_drop_locked(c);
	pthread_mutex_unlock(&c->lock);
	return was;
}

bool outq_is_down(struct outq *q, unsigned i)
{
	return atomic_load(&q->conns[i].down);
}

/*
 * Write the queues as their sockets drain.  A failed write is not reported
 * here: the receive thread of that connection sees the failure too.
 */
static void *outq_flusher(void *arg)
{
	struct outq *q = arg;
	struct pollfd *pfd = q->pfd;
	unsigned *idx = q->idx;

	pthread_setname_np(pthread_self(), "outq");
	while (!atomic_load(&q->stop)) {
		unsigned np = 1;
		uint64_t v;

		pfd[0] = (struct pollfd){ .fd = q->wake_fd, .events = POLLIN };
		for (unsigned i = 0; i < q->n; i++) {
			struct outq_conn *c = &q->conns[i];
			bool busy;

			if (c->fd < 0)
				continue;
			pthread_mutex_lock(&c->lock);
			busy = c->head && !atomic_load(&c->down);
			pthread_mutex_unlock(&c->lock);
			if (busy) {
				idx[np - 1] = i;
				pfd[np++] = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
			}
		}
		if (poll(pfd, np, -1) < 0) {
			/* EINTR, or ENOMEM for the moment: the queues must drain all the same */
			if (errno != EINTR)
				usleep(1000);
			continue;
		}
		if (pfd[0].revents & POLLIN && read(q->wake_fd, &v, sizeof(v)) < 0) {
			/* nothing to do: the next poll says if it is still readable */
		}
		for (unsigned k = 1; k < np; k++) {
			struct outq_conn *c = &q->conns[idx[k - 1]];

			if (!pfd[k].revents)
				continue;
			pthread_mutex_lock(&c->lock);
			if (outq_flush_locked(c))
				outq_drop_locked(c);
			pthread_mutex_unlock(&c->lock);
		}
	}
	return NULL;
}

int outq_start(struct outq *q, char *err)
{
	int rc = pthread_create(&q->flusher, NULL, outq_flusher, q);

	if (rc) {
		snprintf(err, OUTQ_ERR_MAX, "cannot start the send thread: %s", strerror(rc));
		return -1;
	}
	q->started = true;
	return 0;
}

void outq_flush_now(struct outq *q)
{
	for (unsigned i = 0; i < q->n; i++) {
		struct outq_conn *c = &q->conns[i];

		if (c->fd < 0)
			continue;
		pthread_mutex_lock(&c->lock);
		if (!atomic_load(&c->down))
			outq_flush_locked(c);
		pthread_mutex_unlock(&c->lock);
	}
}

void outq_drain(struct outq *q, unsigned ms)
{
	uint64_t end = deadline_now_ms() + ms;

	while (q->started && !atomic_load(&q->stop)) {
		bool empty = true;

		for (unsigned i = 0; i < q->n && empty; i++) {
			struct outq_conn *c = &q->conns[i];

			pthread_mutex_lock(&c->lock);
			empty = !c->head || atomic_load(&c->down);
			pthread_mutex_unlock(&c->lock);
		}
		if (empty || deadline_now_ms() >= end)
			return;
		usleep(1000);
	}
}

void outq_stop(struct outq *q)
{
	atomic_store(&q->stop, true);
	outq_wake(q);
	if (q->started) {
		pthread_join(q->flusher, NULL);
		q->started = false;
	}
}

void outq_free(struct outq *q)
{
	if (!q)
		return;
	outq_stop(q);
	for (unsigned i = 0; i < q->n; i++) {
		outq_drop_locked(&q->conns[i]);
		pthread_mutex_destroy(&q->conns[i].lock);
	}
	close(q->wake_fd);
	free(q->idx);
	free(q->pfd);
	free(q->conns);
	free(q);
}
