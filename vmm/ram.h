/*
 * Guest RAM: one host mapping of the guest's RAM offsets [0, size), laid out
 * in guest-physical space as vmm/topo.h says (the 3-4 GiB hole skipped).
 *
 * The VM does not care where the mapping comes from: guest_ram_anon() gives
 * private anonymous memory for a single instance, and libgvdsm provides a
 * struct guest_ram over its coherent region in a cluster.  Whoever creates it
 * sets release; the VM calls it once when it is destroyed.
 */
#ifndef GVM_VMM_RAM_H
#define GVM_VMM_RAM_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/topo.h"

struct guest_ram {
	uint8_t *base;   /* host address of RAM offset 0 */
	uint64_t size;   /* bytes, a multiple of the host page size */
	void (*release)(struct guest_ram *ram);
	void *priv;      /* the allocator's */
};

/*
 * Anonymous private memory, MAP_NORESERVE so untouched RAM costs nothing.
 * Returns NULL with a message if the mapping fails.
 */
struct guest_ram *guest_ram_anon(uint64_t size);

void guest_ram_release(struct guest_ram *ram);

/*
 * Prefer host NUMA node host_node for RAM offsets [off, off + len) (pages
 * not yet touched).  Returns 0, or -1 with a warning if the kernel refuses.
 */
int guest_ram_prefer_node(struct guest_ram *ram, uint64_t off, uint64_t len, int host_node);

/*
 * Host pointer for [gpa, gpa + len) if it lies entirely in RAM (not across
 * the hole, not past the end), else NULL.
 */
static inline void *guest_ram_ptr(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
	uint64_t off;

	if (gpa + len < gpa)
		return NULL;
	if (gpa < TOPO_HOLE_START) {
		if (gpa + len > TOPO_HOLE_START)
			return NULL;
		off = gpa;
	} else if (gpa >= TOPO_HOLE_START + TOPO_HOLE_SIZE) {
		off = gpa - TOPO_HOLE_SIZE;
	} else {
		return NULL;
	}
	if (off > ram->size || len > ram->size - off)
		return NULL;
	return ram->base + off;
}

/* The guest-physical end of RAM: 4 GiB + the part above the hole, or the RAM size. */
static inline uint64_t guest_ram_gpa_end(const struct guest_ram *ram)
{
	return topo_ram_to_gpa(ram->size - 1) + 1;
}

#endif
