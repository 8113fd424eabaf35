/*
 * Wire framing shared by every inter-node channel: a fixed 40-byte header,
 * then `len` bytes of payload (none for most messages, a page for page
 * transfers).  Little-endian; the project targets x86-64 hosts only.
 *
 * The header is only framing: each component validates the fields of the
 * types it owns before using them.
 */
#ifndef GVM_COMMON_WIRE_H
#define GVM_COMMON_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC 0x4756u /* "GV" */
#define WIRE_VERSION 1
/* Largest payload any message may carry; a bigger len is a protocol error. */
#define WIRE_MAX_PAYLOAD (1u << 20)

/* Message type ranges, one per component, so types never collide. */
enum {
	WIRE_TYPE_MESH_FIRST = 0x0001, /* common/mesh.c: connection set-up */
	WIRE_TYPE_DSM_FIRST = 0x0100,  /* dsm/ */
	WIRE_TYPE_VMM_FIRST = 0x0200,  /* vmm/ cluster links */
	WIRE_TYPE_LAST = 0x02ff,
};

struct wire_hdr {
	uint16_t magic;
	uint8_t version;
	uint8_t flags;
	uint16_t type;
	uint16_t from; /* sender's rank */
	uint32_t len;  /* payload bytes that follow */
	uint32_t seq;  /* matches a reply to its request */
	uint64_t arg[3];
};
_Static_assert(sizeof(struct wire_hdr) == 40, "wire header must stay 40 bytes");

static inline struct wire_hdr wire_hdr_make(uint16_t type, uint16_t from, uint32_t len)
{
	return (struct wire_hdr){ .magic = WIRE_MAGIC, .version = WIRE_VERSION,
				  .type = type, .from = from, .len = len };
}

struct seal;

/*
 * Send a header and its payload (h->len bytes at payload) as one message,
 * followed by its tag when the connection has a seal (common/seal.h; NULL:
 * none).  Callers serialise senders on one fd.  Returns 0, or -errno.
 */
int wire_send_sealed(int fd, struct seal *seal, const struct wire_hdr *h, const void *payload);

/*
 * Receive one message.  The payload (h->len bytes) is read into buf, which
 * holds at most cap bytes.  Returns 0; -1 with a reason in why (up to 128
 * bytes) for a closed connection, an I/O error or a malformed frame (bad
 * magic or version, len > cap); a frame from a rank other than `from`
 * (when from >= 0) is malformed too, and so is one whose tag the seal (if
 * any) does not accept.
 */
int wire_recv_sealed(int fd, struct seal *seal, int from, struct wire_hdr *h, void *buf,
		     size_t cap, char *why);

/* The same on a connection without a seal: the handshake, and tests. */
static inline int wire_send(int fd, const struct wire_hdr *h, const void *payload)
{
	return wire_send_sealed(fd, NULL, h, payload);
}

static inline int wire_recv(int fd, int from, struct wire_hdr *h, void *buf, size_t cap,
			    char *why)
{
	return wire_recv_sealed(fd, NULL, from, h, buf, cap, why);
}

/* Read or write exactly n bytes; 0, or -errno (-ECONNRESET on EOF). */
int wire_read_full(int fd, void *buf, size_t n);
int wire_write_full(int fd, const void *buf, size_t n);

#endif
