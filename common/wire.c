#include "common/wire.h"

#include "common/seal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int wire_read_full(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= r;
	}
	return 0;
}

int wire_write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= r;
	}
	return 0;
}

int wire_send_sealed(int fd, struct seal *seal, const struct wire_hdr *h, const void *payload)
{
	uint8_t tag[SEAL_TAG_LEN];
	struct iovec iov[3] = {
		{ .iov_base = (void *)h, .iov_len = sizeof(*h) },
		{ .iov_base = (void *)payload, .iov_len = payload ? h->len : 0 },
		{ .iov_base = tag, .iov_len = sizeof(tag) },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 3 };

	if (h->len && !payload)
		return -EINVAL;
	if (seal && seal_tag(seal, h, payload, tag))
		return -EPROTO;
	if (!seal)
		msg.msg_iovlen = 2;
	/* One sendmsg for the whole frame: one segment for a small message. */
	while (msg.msg_iovlen) {
		ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (msg.msg_iovlen && (size_t)r >= msg.msg_iov->iov_len) {
			r -= msg.msg_iov->iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen) {
			msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + r;
			msg.msg_iov->iov_len -= r;
		}
	}
	return 0;
}

int wire_recv_sealed(int fd, struct seal *seal, int from, struct wire_hdr *h, void *buf,
		     size_t cap, char *why)
{
	uint8_t tag[SEAL_TAG_LEN];
	int rc = wire_read_full(fd, h, sizeof(*h));

	if (rc) {
		/* EAGAIN here is a receive timeout (SO_RCVTIMEO) that ran out. */
		snprintf(why, 128, "%s", rc == -ECONNRESET ? "connection closed by peer" :
					 rc == -EAGAIN ? "no answer within the time allowed" :
					 strerror(-rc));
		return -1;
	}
	if (h->magic != WIRE_MAGIC || h->version != WIRE_VERSION) {
		snprintf(why, 128, "malformed frame (magic 0x%04x version %u)", h->magic, h->version);
		return -1;
	}
	if (h->len > cap || h->len > WIRE_MAX_PAYLOAD) {
		snprintf(why, 128, "frame of type 0x%x carries %u bytes, more than %zu allowed",
			 h->type, h->len, cap);
		return -1;
	}
	if (from >= 0 && h->from != from) {
		snprintf(why, 128, "frame claims to come from rank %u on rank %d's connection",
			 h->from, from);
		return -1;
	}
	if (h->len && (rc = wire_read_full(fd, buf, h->len))) {
		snprintf(why, 128, "payload: %s",
			 rc == -ECONNRESET ? "connection closed by peer" : strerror(-rc));
		return -1;
	}
	if (seal) {
		if ((rc = wire_read_full(fd, tag, sizeof(tag)))) {
			snprintf(why, 128, "tag: %s",
				 rc == -ECONNRESET ? "connection closed by peer" : strerror(-rc));
			return -1;
		}
		if (seal_check(seal, h, buf, tag)) {
			snprintf(why, 128, "frame of type 0x%x fails its integrity check (altered "
				 "or injected on the network?)", h->type);
			return -1;
		}
	}
	return 0;
}
