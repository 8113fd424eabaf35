/*
 * The I/O APIC: 24 input pins, each with a redirection entry that turns an
 * interrupt into an APIC message.  MMIO at 0xFEC00000 (IOREGSEL at 0x00,
 * IOWIN at 0x10).  Edge pins deliver on a rising edge (or when unmasked with
 * an edge pending); level pins deliver while asserted, then wait with remote
 * IRR set until a LAPIC broadcasts the EOI of their vector.
 */
#ifndef GVM_VMM_X86_IOAPIC_H
#define GVM_VMM_X86_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/iobus.h"
#include "vmm/x86/apic.h"

#define IOAPIC_DEFAULT_BASE 0xFEC00000ull
#define IOAPIC_MMIO_SIZE 0x100
#define IOAPIC_NR_PINS 24
#define IOAPIC_VERSION 0x11

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10

#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REG_ARB 0x02
#define IOAPIC_REG_REDIR 0x10 /* + 2 * pin (low), + 2 * pin + 1 (high) */

#define IOAPIC_RTE_MASKED (1ull << 16)
/*
 * Bits 14:8 of the destination APIC ID, where the IOAPIC has none: the
 * extended destination ID Linux uses under KVM (CPUID 0x40000001 EAX bit
 * 15, offered with x2APIC) to reach 15-bit APIC IDs without an IOMMU.
 */
#define IOAPIC_RTE_EXT_DEST (0x7Full << 49)
#define IOAPIC_RTE_LEVEL (1ull << 15)
#define IOAPIC_RTE_REMOTE_IRR (1ull << 14)
#define IOAPIC_RTE_LOW_ACTIVE (1ull << 13)
#define IOAPIC_RTE_PENDING (1ull << 12)
#define IOAPIC_RTE_LOGICAL (1ull << 11)

struct ioapic;

/* send delivers a message (normally apic_bus_send); called without the lock held. */
struct ioapic *ioapic_create(uint8_t id, void (*send)(void *opaque, const struct apic_msg *m),
			     void *opaque);
void ioapic_destroy(struct ioapic *io);

/* Indirect register access (for tests and the MMIO handler). */
uint32_t ioapic_read_reg(struct ioapic *io, unsigned reg);
void ioapic_write_reg(struct ioapic *io, unsigned reg, uint32_t val);

/* io_handler_fn for the MMIO window; dev is the ioapic. */
void ioapic_access(void *dev, struct io_access *a);

/* The level of an input pin (true: asserted, before polarity). */
void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level);

/* A LAPIC broadcast the EOI of a level-triggered vector. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

#endif
