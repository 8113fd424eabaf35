/*
 * Per-frame integrity of one mesh connection (`--integrity`): every frame
 * after the handshake carries a 16-byte AES-128-GCM tag over its header and
 * payload (authenticated, not encrypted).  Each direction has its own key,
 * derived from secrets both ends carried in their munge credentials (which
 * munged encrypts), and its own frame counter as the nonce, never sent: a
 * frame forged, altered, replayed, dropped or reordered on the wire fails
 * the check of the frame it lands on.
 *
 * A seal is used by one sender at a time (the connection's send lock) and
 * one receiver (its receive thread): the two directions share nothing.
 */
#ifndef GVM_COMMON_SEAL_H
#define GVM_COMMON_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

#define SEAL_TAG_LEN 16
#define SEAL_SECRET_LEN 16
#define SEAL_ERR_MAX 160

struct seal;

/*
 * The seal of a connection whose two ends contributed `mine` and `theirs`;
 * `connector` says whether this end opened the connection (so that the two
 * ends agree on which key is whose).  vm_id, the channel and both ranks go
 * into the keys too.  Returns NULL with the reason in err.
 */
struct seal *seal_new(const uint8_t mine[SEAL_SECRET_LEN], const uint8_t theirs[SEAL_SECRET_LEN],
		      bool connector, uint64_t vm_id, unsigned channel, char *err);
void seal_free(struct seal *s);

/* The tag of the next frame sent: header h, h->len bytes of payload. */
int seal_tag(struct seal *s, const struct wire_hdr *h, const void *payload,
	     uint8_t tag[SEAL_TAG_LEN]);
/*
 * Whether the next frame received, h and its payload, carries `tag`.
 * Returns 0, or -1 (the connection is then unusable: its counter has moved).
 */
int seal_check(struct seal *s, const struct wire_hdr *h, const void *payload,
	       const uint8_t tag[SEAL_TAG_LEN]);

#endif
