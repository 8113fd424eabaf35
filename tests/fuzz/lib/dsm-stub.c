/*
 * What dsm/msg.c links against besides msg_check, for the dsm-msg fuzz
 * target: the handlers and the DSM's stop, which only msg_dispatch calls.
 * The target calls msg_check alone, so each aborts: reaching one means
 * msg_check acted on a message instead of only judging it.
 */
#include <stdlib.h>

#include "dsm/internal.h"

void dsm_fail(struct dsm *d, unsigned culprit, const char *fmt, ...)
{
	(void)d, (void)culprit, (void)fmt;
	abort();
}

const char *dsm_peer_name(const struct dsm *d, unsigned peer, char *buf, size_t len)
{
	(void)d, (void)peer, (void)buf, (void)len;
	abort();
}

int home_request(struct dsm *d, uint64_t pg, unsigned from, enum dsm_kind kind, uint32_t token,
		 char *why)
{
	(void)d, (void)pg, (void)from, (void)kind, (void)token, (void)why;
	abort();
}

int home_done(struct dsm *d, uint64_t pg, unsigned from, unsigned src, char *why)
{
	(void)d, (void)pg, (void)from, (void)src, (void)why;
	abort();
}

int node_reply(struct dsm *d, uint64_t pg, unsigned from, uint16_t type, uint32_t flags,
	       uint64_t acks, uint32_t token, const void *data, char *why)
{
	(void)d, (void)pg, (void)from, (void)type, (void)flags, (void)acks, (void)token, (void)data;
	(void)why;
	abort();
}

int node_ack(struct dsm *d, uint64_t pg, unsigned from, char *why)
{
	(void)d, (void)pg, (void)from, (void)why;
	abort();
}

int node_fwd(struct dsm *d, uint64_t pg, unsigned to, enum dsm_kind kind, uint64_t acks,
	     uint32_t token, char *why)
{
	(void)d, (void)pg, (void)to, (void)kind, (void)acks, (void)token, (void)why;
	abort();
}

int node_inv(struct dsm *d, uint64_t pg, unsigned ack_to, char *why)
{
	(void)d, (void)pg, (void)ack_to, (void)why;
	abort();
}

int prefetch_request(struct dsm *d, unsigned from, uint64_t first, unsigned count, char *why)
{
	(void)d, (void)from, (void)first, (void)count, (void)why;
	abort();
}

int prefetch_bulk(struct dsm *d, unsigned from, uint64_t first, unsigned count, unsigned n,
		  const void *data, char *why)
{
	(void)d, (void)from, (void)first, (void)count, (void)n, (void)data, (void)why;
	abort();
}

int prefetch_done(struct dsm *d, unsigned from, uint64_t first, unsigned n, char *why)
{
	(void)d, (void)from, (void)first, (void)n, (void)why;
	abort();
}

void dsm_trace_add(struct dsm_trace *t, enum dsm_trace_point point, unsigned rank, unsigned peer,
		   uint16_t type, uint64_t pg)
{
	(void)t, (void)point, (void)rank, (void)peer, (void)type, (void)pg;
	abort();
}
