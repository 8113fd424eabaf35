/*
 * Interrupt messages between APICs, and the bus that routes them.
 *
 * A message (an ICR write, an IOAPIC redirection, a timer) names its
 * destination the way the guest did: physical APIC ID, logical mask, or a
 * shorthand.  apic_bus_send resolves it against the destination state of
 * every vCPU (APIC ID, LDR, DFR: kept here, readable from any thread) and
 * hands the message to each target's apic_port.  A port is how a vCPU is
 * reached: the local one sets bits in its LAPIC and kicks its thread; in a
 * cluster, the port of a vCPU run by another instance sends the message over
 * the network, and that instance delivers it to its own port.
 */
#ifndef GVM_VMM_X86_APIC_H
#define GVM_VMM_X86_APIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/topo.h"

#define APIC_DEFAULT_BASE 0xFEE00000ull
#define APIC_MMIO_SIZE 0x1000
#define APIC_BROADCAST_ID 0xFF
#define APIC_X2_BROADCAST_ID 0xFFFFFFFFu

enum apic_delivery_mode {
	APIC_DM_FIXED = 0,
	APIC_DM_LOWEST = 1,
	APIC_DM_SMI = 2,
	APIC_DM_NMI = 4,
	APIC_DM_INIT = 5,
	APIC_DM_SIPI = 6,
	APIC_DM_EXTINT = 7,
};

enum apic_shorthand {
	APIC_SH_NONE = 0,
	APIC_SH_SELF = 1,
	APIC_SH_ALL = 2,    /* all including self */
	APIC_SH_OTHERS = 3, /* all excluding self */
};

/* src_cpu of messages that no vCPU sent (IOAPIC, devices). */
#define APIC_SRC_NONE (~0u)

struct apic_msg {
	uint8_t vector;
	uint8_t mode;      /* enum apic_delivery_mode */
	uint8_t shorthand; /* enum apic_shorthand */
	bool logical;      /* destination mode */
	bool level;        /* trigger mode: level (true) or edge */
	bool assert;       /* false only for an INIT level de-assert */
	/*
	 * The destination's format: x2APIC (a LAPIC in x2APIC mode sent it:
	 * 32-bit APIC ID, or cluster << 16 | mask) or xAPIC (8 bits: APIC ID,
	 * or a mask read by each target's DFR).
	 */
	bool x2apic;
	uint32_t dest;     /* APIC ID (physical) or mask (logical) */
	unsigned src_cpu;  /* sending vCPU index, or APIC_SRC_NONE */
};

struct apic_port {
	void (*deliver)(struct apic_port *port, const struct apic_msg *m);
};

/*
 * Destination state of one vCPU, as its LAPIC last reported it.  In x2APIC
 * mode the ID is 32 bits and the LDR cluster << 16 | 1 << (ID % 16), and
 * there is no DFR.
 */
struct apic_dest_state {
	uint32_t id;  /* APIC ID: bits 7:0 in xAPIC mode */
	uint32_t ldr; /* LDR register value (xAPIC: bits 31:24) */
	uint32_t dfr; /* DFR register value (model in bits 31:28); 0 in x2APIC mode */
	bool x2apic;
};

/* x2APIC mode's logical ID: cluster of 16 in bits 31:16, a bit per APIC below. */
static inline uint32_t apic_x2apic_ldr(uint32_t id)
{
	return (id >> 4) << 16 | 1u << (id & 0xF);
}

struct apic_dest {
	_Atomic uint32_t id, ldr, dfr;
	_Atomic bool x2apic;
	/*
	 * The initial (x2APIC) ID, fixed at attach: what an x2APIC-format
	 * physical message matches on a target still in xAPIC mode, whose ID
	 * register holds 8 bits (how a BSP in x2APIC mode starts APs above 255).
	 */
	uint32_t initial_id;
};

struct apic_bus {
	unsigned nr_cpus;
	struct apic_dest dest[TOPO_MAX_CPUS];
	struct apic_port *port[TOPO_MAX_CPUS];
	_Atomic unsigned lowest_next; /* round robin for lowest-priority delivery */
};

void apic_bus_init(struct apic_bus *bus, unsigned nr_cpus);

/* Attach vCPU cpu's port and its initial APIC ID (xAPIC mode, LDR 0, flat DFR). */
void apic_bus_attach(struct apic_bus *bus, unsigned cpu, uint32_t apic_id, struct apic_port *port);

/* Record a change of cpu's destination state (APIC ID, LDR, DFR, mode). */
void apic_bus_set_dest(struct apic_bus *bus, unsigned cpu, const struct apic_dest_state *d);

/* Does cpu match m's destination (shorthands aside)? */
bool apic_bus_match(const struct apic_bus *bus, unsigned cpu, const struct apic_msg *m);

/*
 * Resolve m's destination into the set of vCPUs it reaches (a bitmap of
 * TOPO_MAX_CPUS bits); lowest priority picks one of them.  Returns how many.
 */
unsigned apic_bus_resolve(struct apic_bus *bus, const struct apic_msg *m, uint64_t *set);

/* Resolve and deliver.  Returns the number of vCPUs reached. */
unsigned apic_bus_send(struct apic_bus *bus, const struct apic_msg *m);

#endif
