/*
 * The I/O dispatch registry: port (PIO) and MMIO ranges mapped to device
 * handlers.  Ranges are registered while the VM is being built, before any
 * vCPU runs; lookups then take no lock, so a vCPU's exit path never
 * serialises with another's.  Each device protects its own state with its
 * own lock.
 *
 * In a cluster only rank 0 holds the devices.  A range registered as
 * IO_SHARED is such a device.  Another instance registers only its IO_LOCAL
 * ranges (the LAPIC: each vCPU's own registers, always handled where the
 * vCPU runs) and installs a forwarder (io_bus_set_forwarder) that receives
 * every other access instead, claimed here or not, sends it to rank 0 and
 * fills in the data read: which devices exist is known on rank 0 only.
 */
#ifndef GVM_VMM_IOBUS_H
#define GVM_VMM_IOBUS_H

#include <stdbool.h>
#include <stdint.h>

struct io_access {
	uint64_t addr;   /* port number or guest-physical address */
	uint64_t off;    /* addr - start of the range */
	unsigned len;    /* 1, 2, 4 or 8 */
	bool write;
	unsigned cpu;    /* index of the vCPU that made the access */
	uint8_t *data;   /* len bytes, little-endian: written value, or filled on read */
};

typedef void (*io_handler_fn)(void *dev, struct io_access *a);
/* Handles an access elsewhere; returns whether a device claimed it there. */
typedef bool (*io_forward_fn)(void *dev, struct io_access *a);

enum io_range_flags {
	IO_SHARED = 0,     /* one device per VM, lives on rank 0 */
	IO_LOCAL = 1u << 0, /* per vCPU or per instance: never forwarded */
	/*
	 * Byte ports that take a string OUT (REP OUTSB) in one call, len being
	 * the whole string, where the device is here (not forwarded).
	 */
	IO_STRING = 1u << 1,
};

struct io_range {
	uint64_t base, len;
	io_handler_fn fn;
	void *dev;
	unsigned flags;
	const char *name;
};

struct io_bus {
	const char *name;        /* "port", "mmio": for messages */
	struct io_range *ranges; /* sorted by base, never overlapping */
	unsigned nr, cap;
	io_forward_fn forward;   /* NULL: IO_SHARED ranges are handled here */
	void *forward_dev;
};

void io_bus_init(struct io_bus *bus, const char *name);
void io_bus_destroy(struct io_bus *bus);

/* Returns 0, or -1 with a message if the range overlaps another. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, io_handler_fn fn,
		    void *dev, unsigned flags, const char *name);

/* Route every access outside IO_LOCAL ranges to fn(dev, access) (a remote rank 0). */
void io_bus_set_forwarder(struct io_bus *bus, io_forward_fn fn, void *dev);

/* The range containing addr, or NULL. */
const struct io_range *io_bus_find(const struct io_bus *bus, uint64_t addr);

/*
 * Dispatch one access.  Returns false if no range claims it (here, or on the
 * instance it was forwarded to); a read then yields all ones, as from an
 * empty bus.
 */
bool io_bus_dispatch(const struct io_bus *bus, struct io_access *a);

/*
 * A string access of count elements of a->len bytes at a->data: one call for
 * an IO_STRING range handled here, else one dispatch per element.  Returns
 * the number of elements no range claimed.
 */
unsigned io_bus_dispatch_string(const struct io_bus *bus, struct io_access *a, unsigned count);

/* Little-endian helpers for handlers. */
static inline uint64_t io_data_get(const struct io_access *a)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < a->len; i++)
		v |= (uint64_t)a->data[i] << (8 * i);
	return v;
}

static inline void io_data_set(struct io_access *a, uint64_t v)
{
	for (unsigned i = 0; i < a->len; i++)
		a->data[i] = v >> (8 * i);
}

#endif
