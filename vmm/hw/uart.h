/*
 * An 8250/16550A UART: registers at base..base+7, a line to the interrupt
 * controllers.  Transmitted bytes go to out_fd; received bytes come from
 * in_fd if it is not -1 (read by a thread of the UART).
 */
#ifndef GVM_VMM_HW_UART_H
#define GVM_VMM_HW_UART_H

#include <stdint.h>

#include "vmm/iobus.h"
#include "vmm/irq.h"

struct uart;

struct uart *uart_create(struct io_bus *pio, uint16_t base, const struct irq_line *irq,
			 int out_fd, int in_fd);
void uart_destroy(struct uart *u);

/* When the last byte went out (CLOCK_MONOTONIC ns), 0 if none yet.  Any thread. */
uint64_t uart_last_output(struct uart *u);

/* For tests: a register access as the guest would make it. */
uint8_t uart_inb(struct uart *u, unsigned reg);
void uart_outb(struct uart *u, unsigned reg, uint8_t val);

#endif
