/*
 * The 8254 programmable interval timer at 0x40-0x43, and port 0x61 (the
 * channel 2 gate and output, the speaker bit).  Channel 0 drives IRQ 0;
 * channel 2 is the one Linux polls through port 0x61 to calibrate its
 * clocks.  Counters run at 1.193182 MHz of host monotonic time.
 */
#ifndef GVM_VMM_HW_PIT_H
#define GVM_VMM_HW_PIT_H

#include <stdint.h>

#include "vmm/iobus.h"
#include "vmm/irq.h"

#define PIT_HZ 1193182ull

struct pit;

/* Registers the ports and starts the channel 0 timer thread; NULL on failure. */
struct pit *pit_create(struct io_bus *pio, const struct irq_line *irq0);
void pit_destroy(struct pit *p);

/* For tests: a port access as the guest would make it. */
uint8_t pit_inb(struct pit *p, uint16_t port);
void pit_outb(struct pit *p, uint16_t port, uint8_t val);

#endif
