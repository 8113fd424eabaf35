/*
 * The DSM's transport: carries framed messages (common/wire.h header plus an
 * optional payload of whole pages) between the node instances, one ordered
 * connection per (peer, channel).  The protocol relies on exactly two
 * properties: messages on one (peer, channel) arrive in the order sent, and
 * each (peer, channel) is dispatched by one thread at a time.
 *
 * Two implementations: TCP over the mesh's own connections (tcp.c), and
 * libfabric's reliable datagrams (fabric.c: verbs on InfiniBand and RoCE, or
 * any other provider), whose addresses travel over the mesh.
 */
#ifndef GVM_DSM_TRANSPORT_H
#define GVM_DSM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/wire.h"

/* Largest payload of one message: a prefetch run. */
#define DSM_MAX_RUN 64u
#define DSM_TRANSPORT_MAX_PAYLOAD (DSM_MAX_RUN * 4096u)

struct dsm_transport;

/*
 * Called from the transport's receive context, in order per (peer, channel).
 * payload (h->len bytes) is valid until the call returns.  Returns 0, or -1
 * with the reason in why (128 bytes): the transport then closes that
 * connection and reports it through lost().
 */
typedef int (*dsm_dispatch_fn)(void *arg, unsigned peer, unsigned channel,
			       const struct wire_hdr *h, const void *payload, char *why);
/*
 * A connection failed or was closed (once per connection); why says how.
 * malformed: the transport closed it because of what the peer sent (a bad
 * frame, or a message dispatch refused).
 */
typedef void (*dsm_lost_fn)(void *arg, unsigned peer, unsigned channel, bool malformed,
			    const char *why);

/* What a transport did beyond carrying messages, for tests and benchmarks. */
struct dsm_transport_counts {
	unsigned long long rma_writes; /* messages written into a peer's staging slot */
	unsigned long long early;      /* messages that came ahead of their turn, held */
};

struct dsm_transport_ops {
	const char *name;
	/* Start receiving: dispatch and lost may be called from now on. */
	int (*start)(struct dsm_transport *t, char *err);
	/* A header-only message.  Thread-safe; returns 0 or -errno. */
	int (*send_msg)(struct dsm_transport *t, unsigned peer, unsigned channel,
			const struct wire_hdr *h);
	/* A header and h->len bytes of page data (whole pages). */
	int (*send_pages)(struct dsm_transport *t, unsigned peer, unsigned channel,
			  const struct wire_hdr *h, const void *pages);
	/*
	 * Shut every connection down (the peers see it closed) and wake the
	 * receive threads; no lost() call follows.  Any thread may call it,
	 * a receive thread included.
	 */
	void (*shutdown)(struct dsm_transport *t);
	/* shutdown, then wait for the receive threads to end; never from one of them. */
	void (*stop)(struct dsm_transport *t);
	void (*destroy)(struct dsm_transport *t);
	/* What carries the messages, for the user: "tcp", or the provider and domain. */
	const char *(*describe)(struct dsm_transport *t);
	void (*counts)(struct dsm_transport *t, struct dsm_transport_counts *c);
};

struct dsm_transport {
	const struct dsm_transport_ops *ops;
};

struct mesh;

struct dsm_tcp_config {
	struct mesh *mesh;
	unsigned first_channel, nr_channels;
	/*
	 * Busy-poll a connection up to poll_us before sleeping, but only
	 * while expecting() says a reply is awaited on it (NULL: always):
	 * a spinning thread saves its own wake-up but takes a core, which on
	 * a machine with few cores delays everyone else's.
	 */
	unsigned poll_us;
	bool (*expecting)(void *arg, unsigned peer, unsigned channel);
	dsm_dispatch_fn dispatch;
	dsm_lost_fn lost;
	void *arg;
};

struct dsm_transport *dsm_tcp_create(const struct dsm_tcp_config *cfg, char *err);

struct dsm_fabric_config {
	/*
	 * The mesh's channels [first_channel, + nr_channels) carry each
	 * channel's endpoint address, then its life: a close of one is the
	 * loss of that (peer, channel).
	 */
	struct mesh *mesh;
	unsigned first_channel, nr_channels;
	/* The libfabric provider ("verbs;ofi_rxm", "tcp"...), or NULL: the first that reaches other hosts. */
	const char *provider;
	/* Per channel, the largest payload sent on it (sizes its buffers); NULL: all the largest. */
	const uint32_t *max_payload;
	dsm_dispatch_fn dispatch;
	dsm_lost_fn lost;
	void *arg;
};

/*
 * Opens the provider's endpoints and trades addresses with every peer over
 * the mesh (every node must create its fabric transport at the same time).
 * NULL with err set when this build has no libfabric (HAVE_LIBFABRIC 0).
 */
struct dsm_transport *dsm_fabric_create(const struct dsm_fabric_config *cfg, char *err);

/*
 * Whether this build has the fabric transport: "libfabric MAJOR.MINOR" (the
 * library found at run time) in buf, or NULL when it was built without.
 */
const char *dsm_fabric_built(char *buf, size_t len);

/*
 * With libfabric: what the fabric transport would open for provider (NULL:
 * the first that reaches other hosts), for a yardstick that must go through
 * the same (bench-dsm's floor); free it with fi_freeinfo.  NULL and err.
 */
struct fi_info;
struct fi_info *dsm_fabric_choose(const char *provider, char *err);

/*
 * The DSM's transport as dsm_create opens it, on the mesh's DSM_NR_CHANNELS
 * channels from first_channel: for anything that must speak to DSM nodes
 * over what they use (a test's forging peer too).  spec as dsm_config's
 * transport, already checked: NULL or "tcp", "fabric", "fabric:PROVIDER".
 */
struct dsm_transport_config {
	const char *spec;
	struct mesh *mesh;
	unsigned first_channel;
	unsigned poll_us; /* TCP only: as dsm_tcp_config's, with expecting */
	bool (*expecting)(void *arg, unsigned peer, unsigned channel);
	dsm_dispatch_fn dispatch;
	dsm_lost_fn lost;
	void *arg;
};

struct dsm_transport *dsm_transport_open(const struct dsm_transport_config *cfg, char *err);

#endif
