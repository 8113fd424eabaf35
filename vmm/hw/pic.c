#include "vmm/hw/pic.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* One 8259A. */
struct pic_chip {
	uint8_t irr, isr, imr;
	uint8_t last_level;  /* line levels, for edge detection */
	uint8_t elcr;        /* 1 = level-triggered */
	uint8_t vector_base;
	uint8_t priority_add; /* rotation: the IRQ with the highest priority */
	uint8_t init_state;   /* 0: operational, 1..3: expecting ICW2..ICW4 */
	bool icw4_needed, auto_eoi, rotate_on_aeoi, special_mask, read_isr, poll;
	uint8_t elcr_mask;
};

struct pic {
	pthread_mutex_t lock;
	struct pic_chip chip[2]; /* master, slave */
	atomic_bool output;
	void (*notify)(void *opaque);
	void *opaque;
};

/* Highest-priority bit set in mask, as an IRQ number, or 8 if none. */
static int chip_priority(const struct pic_chip *c, uint8_t mask)
{
	if (!mask)
		return 8;
	for (int p = 0; p < 8; p++)
		if (mask & (1u << ((p + c->priority_add) & 7)))
			return p;
	return 8;
}

/* The IRQ this chip asks the CPU (or master) for, or -1. */
static int chip_request(const struct pic_chip *c)
{
	uint8_t pending = c->irr & ~c->imr;
	uint8_t in_service = c->isr;
	int p, cur;

	p = chip_priority(c, pending);
	if (p == 8)
		return -1;
	/* special mask mode: masked in-service IRQs do not hold lower ones back */
	if (c->special_mask)
		in_service &= ~c->imr;
	cur = chip_priority(c, in_service);
	if (p < cur)
		return (p + c->priority_add) & 7;
	return -1;
}

static void set_line(struct pic_chip *c, unsigned irq, bool level)
{
	uint8_t bit = 1u << irq;

	if (c->elcr & bit) {
		if (level)
			c->irr |= bit;
		else
			c->irr &= ~bit;
	} else if (level && !(c->last_level & bit)) {
		c->irr |= bit;
	}
	if (level)
		c->last_level |= bit;
	else
		c->last_level &= ~bit;
}

/* Recompute the cascade and the output; returns true when it went high. */
static bool update_locked(struct pic *p)
{
	bool before = atomic_load(&p->output), out;

	/* the cascade line follows the slave's request, whatever its trigger mode */
	if (chip_request(&p->chip[1]) >= 0)
		p->chip[0].irr |= 1u << 2;
	else
		p->chip[0].irr &= ~(1u << 2);
	out = chip_request(&p->chip[0]) >= 0;
	atomic_store(&p->output, out);
	return out && !before;
}

void pic_set_irq(struct pic *p, unsigned irq, bool level)
{
	bool raise;

	if (irq >= 16)
		return;
	pthread_mutex_lock(&p->lock);
	set_line(&p->chip[irq / 8], irq % 8, level);
	raise = update_locked(p);
	pthread_mutex_unlock(&p->lock);
	if (raise && p->notify)
		p->notify(p->opaque);
}

bool pic_output(struct pic *p)
{
	return atomic_load_explicit(&p->output, memory_order_relaxed);
}

/* Acknowledge irq on chip c: into service unless auto-EOI, out of IRR if edge. */
static void chip_ack(struct pic_chip *c, int irq)
{
	uint8_t bit = 1u << irq;

	if (c->auto_eoi) {
		if (c->rotate_on_aeoi)
			c->priority_add = (irq + 1) & 7;
	} else {
		c->isr |= bit;
	}
	if (!(c->elcr & bit))
		c->irr &= ~bit;
}

int pic_ack(struct pic *p)
{
	struct pic_chip *m = &p->chip[0], *s = &p->chip[1];
	int irq, vector;

	pthread_mutex_lock(&p->lock);
	irq = chip_request(m);
	if (irq < 0) {
		vector = m->vector_base + 7; /* spurious */
	} else if (irq == 2) {
		int sirq = chip_request(s);

		chip_ack(m, 2);
		if (sirq < 0) {
			vector = s->vector_base + 7;
		} else {
			chip_ack(s, sirq);
			vector = s->vector_base + sirq;
		}
	} else {
		chip_ack(m, irq);
		vector = m->vector_base + irq;
	}
	update_locked(p);
	pthread_mutex_unlock(&p->lock);
	return vector;
}

static void chip_reset(struct pic_chip *c)
{
	uint8_t elcr = c->elcr, elcr_mask = c->elcr_mask;

	memset(c, 0, sizeof(*c));
	c->elcr = elcr;
	c->elcr_mask = elcr_mask;
}

static void chip_eoi(struct pic_chip *c, int irq)
{
	c->isr &= ~(1u << irq);
}

static void chip_write(struct pic_chip *c, unsigned port, uint8_t v)
{
	if (port == 0) {
		if (v & 0x10) { /* ICW1 */
			chip_reset(c);
			c->init_state = 1;
			c->icw4_needed = v & 1;
			return;
		}
		if (v & 0x08) { /* OCW3 */
			if (v & 0x04)
				c->poll = true;
			if (v & 0x02)
				c->read_isr = v & 0x01;
			if (v & 0x40)
				c->special_mask = (v >> 5) & 1;
			return;
		}
		/* OCW2 */
		switch (v >> 5) {
		case 0: /* rotate in auto-EOI mode: clear */
		case 4: /* ... set */
			c->rotate_on_aeoi = v >> 7;
			break;
		case 1: /* non-specific EOI */
		case 5: { /* ... and rotate */
			int p = chip_priority(c, c->isr);

			if (p < 8) {
				int irq = (p + c->priority_add) & 7;

				chip_eoi(c, irq);
				if (v >> 5 == 5)
					c->priority_add = (irq + 1) & 7;
			}
			break;
		}
		case 3: /* specific EOI */
			chip_eoi(c, v & 7);
			break;
		case 6: /* set priority */
			c->priority_add = (v + 1) & 7;
			break;
		case 7: /* specific EOI and rotate */
			chip_eoi(c, v & 7);
			c->priority_add = (v + 1) & 7;
			break;
		default:
			break;
		}
		return;
	}
	switch (c->init_state) {
	case 0: /* OCW1 */
		c->imr = v;
		break;
	case 1: /* ICW2 */
		c->vector_base = v & 0xF8;
		c->init_state = 2;
		break;
	case 2: /* ICW3: cascade wiring is fixed */
		c->init_state = c->icw4_needed ? 3 : 0;
		break;
	case 3: /* ICW4 */
		c->auto_eoi = v & 2;
		c->init_state = 0;
		break;
	}
}

static uint8_t chip_read(struct pic_chip *c, unsigned port)
{
	if (c->poll) {
		int p = chip_priority(c, c->irr & ~c->imr);

		c->poll = false;
		if (p == 8)
			return 0;
		int irq = (p + c->priority_add) & 7;

		chip_ack(c, irq);
		return 0x80 | irq;
	}
	if (port == 0)
		return c->read_isr ? c->isr : c->irr;
	return c->imr;
}

static void pic_access(void *dev, struct io_access *a)
{
	struct pic *p = dev;
	bool raise;

	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < a->len; i++) {
		uint64_t port = a->addr + i;
		struct pic_chip *c;

		if (port == 0x4D0 || port == 0x4D1) {
			c = &p->chip[port - 0x4D0];
			if (a->write)
				c->elcr = a->data[i] & c->elcr_mask;
			else
				a->data[i] = c->elcr;
			continue;
		}
		c = &p->chip[port >= 0xA0];
		if (a->write)
			chip_write(c, port & 1, a->data[i]);
		else
			a->data[i] = chip_read(c, port & 1);
	}
	raise = update_locked(p);
	pthread_mutex_unlock(&p->lock);
	if (raise && p->notify)
		p->notify(p->opaque);
}

struct pic *pic_create(struct io_bus *pio, void (*notify)(void *opaque), void *opaque)
{
	struct pic *p = calloc(1, sizeof(*p));

	if (!p) {
		pr_err("out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->notify = notify;
	p->opaque = opaque;
	/* IRQs 0, 1, 2, 8 and 13 are edge-only on a PC */
	p->chip[0].elcr_mask = 0xF8;
	p->chip[1].elcr_mask = 0xDE;
	if (pio && (io_bus_register(pio, 0x20, 2, pic_access, p, IO_SHARED, "PIC master") ||
		    io_bus_register(pio, 0xA0, 2, pic_access, p, IO_SHARED, "PIC slave") ||
		    io_bus_register(pio, 0x4D0, 2, pic_access, p, IO_SHARED, "PIC ELCR"))) {
		pic_destroy(p);
		return NULL;
	}
	return p;
}

void pic_destroy(struct pic *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}
