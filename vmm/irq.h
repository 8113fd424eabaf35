/*
 * An interrupt line from a device to the interrupt controllers: the device
 * only sets its level, without knowing where it is wired (the PIC and the
 * IOAPIC, on rank 0).
 */
#ifndef GVM_VMM_IRQ_H
#define GVM_VMM_IRQ_H

#include <stdbool.h>

struct irq_line {
	void (*set)(void *opaque, unsigned irq, bool level);
	void *opaque;
	unsigned irq;
};

static inline void irq_line_set(const struct irq_line *l, bool level)
{
	if (l->set)
		l->set(l->opaque, l->irq, level);
}

/* An edge: the line goes high, then low. */
static inline void irq_line_pulse(const struct irq_line *l)
{
	irq_line_set(l, true);
	irq_line_set(l, false);
}

#endif
