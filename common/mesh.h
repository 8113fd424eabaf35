/*
 * The mesh: authenticated TCP connections between every pair of node
 * instances, `nr_channels` per pair (a channel per kind of traffic, so
 * demand faults never queue behind bulk transfers or control messages).
 *
 * mesh_open() listens on this rank's address, connects to every lower rank
 * (retrying until the timeout) and accepts every higher one; each connection
 * is authenticated both ways with munge (common/auth.h) before it counts:
 * the acceptor sends a challenge, the connecting side a credential answering
 * it with a challenge of its own, and the acceptor a credential answering that.
 * When it returns, the fds are blocking, TCP_NODELAY, with keepalive and a
 * user timeout so that a vanished host is noticed within seconds.  The
 * listening socket is closed: nothing can connect afterwards.
 */
#ifndef GVM_COMMON_MESH_H
#define GVM_COMMON_MESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/parse.h"
#include "common/wire.h"

#define MESH_ERR_MAX 512
#define MESH_MAX_NODES 256
#define MESH_MAX_CHANNELS 8

/* The handshake's messages, in the order they are sent. */
enum {
	MESH_CHALLENGE = WIRE_TYPE_MESH_FIRST + 2, /* AUTH_NONCE_LEN random bytes */
	MESH_HELLO = WIRE_TYPE_MESH_FIRST,         /* a credential (common/auth.h) */
	MESH_HELLO_ACK,                            /* the acceptor's credential */
};

struct mesh_config {
	unsigned rank;
	unsigned nr_nodes;
	unsigned nr_channels;
	const struct hostport *peers; /* nr_nodes entries; peers[rank] is ours */
	int listen_fd;                /* a listening socket (mesh_open closes it), or -1 */
	uint64_t vm_id;               /* peers of another VM are refused */
	const char *munge_socket;     /* NULL: munge's default */
	unsigned timeout_ms;          /* 0: 30 s */
	/* A peer that acknowledges nothing for this long is gone (TCP); 0: 30 s. */
	unsigned peer_timeout_ms;
	/*
	 * --integrity: every connection gets a seal (mesh_seal), whose keys the
	 * handshake agrees; a peer that does not run with it too is refused.
	 */
	bool integrity;
	/* Optional: called from mesh_open's thread as connections come up. */
	void (*progress)(void *arg, unsigned done, unsigned total);
	void *progress_arg;
};

struct mesh;

int mesh_open(const struct mesh_config *cfg, struct mesh **out, char *err);
/* The connection to `peer` for `channel`; -1 for peer == own rank. */
int mesh_fd(const struct mesh *m, unsigned peer, unsigned channel);
/*
 * Its seal (common/seal.h), which every frame on it must go through
 * (wire_send_sealed, wire_recv_sealed); NULL without --integrity.
 */
struct seal *mesh_seal(const struct mesh *m, unsigned peer, unsigned channel);
unsigned mesh_rank(const struct mesh *m);
unsigned mesh_nr_nodes(const struct mesh *m);
const struct hostport *mesh_peer(const struct mesh *m, unsigned peer);
/* "rank P (host:port)", the way every message names a peer; returns buf. */
const char *mesh_peer_name(const struct mesh *m, unsigned peer, char *buf, size_t len);
/* shutdown() every connection: wakes up any thread blocked reading one. */
void mesh_shutdown(struct mesh *m);
void mesh_close(struct mesh *m);

/*
 * The handshake's checks, apart from the sockets and munge so that
 * tests/fuzz/mesh-hello.c runs them.  mesh_challenge_check: the header of
 * the acceptor's first message.  mesh_claim_check: the claim of a HELLO or
 * HELLO_ACK whose header names `sender`, as munged verified it (see
 * auth_claim_parse), for this end of the mesh (cfg); want_from < 0 accepts
 * any higher rank (an acceptor does not know who calls), want_ch < 0 any
 * channel; it must answer `challenge` (AUTH_NONCE_LEN bytes).  Each returns
 * 0, or -1 with the reason in err (MESH_ERR_MAX bytes).
 */
struct auth_claim;
int mesh_challenge_check(const struct wire_hdr *h, char *err);
int mesh_claim_check(const struct mesh_config *cfg, unsigned sender, int want_from, int want_ch,
		     const uint8_t *challenge, const struct auth_claim *claim, char *err);

/*
 * A listening TCP socket on addr (port 0: any free port; host "": every
 * address of this host).
 */
int mesh_listen(const struct hostport *addr, char *err);
/* The port a socket is bound to. */
int mesh_local_port(int fd);

#endif
