/*
 * The 8259A interrupt controller pair (master at 0x20, slave at 0xA0,
 * cascaded on IRQ 2, edge/level control at 0x4D0).  Linux masks it once the
 * IOAPIC runs; until then, and for the ExtINT check of the timer, its output
 * reaches the BSP through LINT0 (vmm/x86/lapic.h: lapic_accepts_extint).
 */
#ifndef GVM_VMM_HW_PIC_H
#define GVM_VMM_HW_PIC_H

#include <stdbool.h>

#include "vmm/iobus.h"

struct pic;

/* notify(opaque) is called when the output goes high (without the lock). */
struct pic *pic_create(struct io_bus *pio, void (*notify)(void *opaque), void *opaque);
void pic_destroy(struct pic *p);

/* The level of ISA line irq (0-15). */
void pic_set_irq(struct pic *p, unsigned irq, bool level);

/* The INT output: an unmasked request of higher priority than any in service. */
bool pic_output(struct pic *p);

/* The interrupt acknowledge cycle: the vector to inject (spurious: IRQ 7's). */
int pic_ack(struct pic *p);

#endif
