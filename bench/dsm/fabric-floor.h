/*
 * bench-dsm's floor through libfabric (--transport fabric): a round trip
 * through the provider the DSM's fabric transport uses.
 */
#ifndef GVM_BENCH_DSM_FABRIC_FLOOR_H
#define GVM_BENCH_DSM_FABRIC_FLOOR_H

#include <stddef.h>

struct fab_floor;

/* An endpoint of provider (NULL: the transport's choice), its address traded over fd (TCP). */
struct fab_floor *fab_floor_open(int fd, const char *provider);
/* One message to the peer, len at most 64 KiB; returns once it went out. */
void fab_floor_send(struct fab_floor *p, const void *buf, size_t len);
/* The next message from the peer, exactly len bytes. */
void fab_floor_recv(struct fab_floor *p, void *buf, size_t len);
void fab_floor_close(struct fab_floor *p);

#endif
