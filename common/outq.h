/*
 * Sends that never block, for the frames (common/wire.h) of a set of mesh
 * connections.  A frame goes to its socket at once as far as the socket
 * takes it; the rest waits in the connection's queue, later frames behind
 * it in order, and one flusher thread per set writes the queues as the
 * sockets drain.
 *
 * Why: receive threads answer inline (the DSM's pages, the cluster's acks
 * and clock replies), and two processes each blocked writing to the other,
 * neither reading, would wait for ever once more is in flight than the
 * socket buffers hold; and a thread that sends to every peer in turn (the
 * heartbeats) must not fall silent to all because one stopped reading.
 * A connection whose queue would grow past the set's cap refuses the frame
 * (-ENOBUFS): its peer has not read for too long, and its owner drops it.
 *
 * With a seal (--integrity), frames are tagged under the connection's lock,
 * so that they reach the wire in the order of their numbers.
 */
#ifndef GVM_COMMON_OUTQ_H
#define GVM_COMMON_OUTQ_H

#include <stdbool.h>
#include <stddef.h>

#include "common/seal.h"
#include "common/wire.h"

#define OUTQ_ERR_MAX 256

struct outq;

/* nr_conns connections, none attached yet; NULL with the reason in err. */
struct outq *outq_new(unsigned nr_conns, size_t cap, char *err);
/* Connection i writes to fd (owned by the caller), sealing with seal if not NULL. */
void outq_attach(struct outq *q, unsigned i, int fd, struct seal *seal);
/* The flusher thread: 0, or -1 with the reason in err. */
int outq_start(struct outq *q, char *err);

/*
 * Send header h and h->len bytes of payload on connection i.  0 (sent or
 * queued); -ECONNRESET once the connection is down; -ENOBUFS past the cap;
 * -EPROTO if the seal failed; -errno of the socket.  -ENOMEM or -EPROTO
 * (part of the frame written, or its tag number used) also shut the socket
 * down: nothing after it could be checked.
 */
int outq_send(struct outq *q, unsigned i, const struct wire_hdr *h, const void *payload);

/* Mark connection i down (its queue is dropped); returns whether it already was. */
bool outq_set_down(struct outq *q, unsigned i);
bool outq_is_down(struct outq *q, unsigned i);

/* Write what every socket takes now, without waiting (an ABORT just queued, say). */
void outq_flush_now(struct outq *q);
/* Wait up to ms for every queue to be written, or its connection down (an orderly stop). */
void outq_drain(struct outq *q, unsigned ms);
/* Stop and join the flusher; sends after this are queued and never written. */
void outq_stop(struct outq *q);
void outq_free(struct outq *q);

#endif
