#include "vmm/hw/pit.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

struct pit_channel {
	uint8_t mode;       /* 0-5 */
	uint8_t rw;         /* 1: LSB, 2: MSB, 3: LSB then MSB */
	uint32_t reload;    /* 1..65536 */
	bool loaded;        /* a count was written: counting */
	bool null_count;    /* written but not yet loaded into the counter */
	uint64_t start_ns;  /* when counting (re)started */
	bool gate;
	uint32_t frozen;    /* the count while the gate holds it */

	bool write_msb_next, read_msb_next;
	uint8_t write_lsb;
	bool count_latched, status_latched, latch_msb_next;
	uint16_t latch;
	uint8_t status;
};

struct pit {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pit_channel ch[3];
	bool speaker;
	bool refresh;
	struct irq_line irq0;

	uint64_t next_irq_ns; /* channel 0: next output edge, 0 = none */
	uint64_t generation;  /* bumped on every channel 0 reprogramming */
	bool stop;
	pthread_t thread;
	bool thread_started;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (unsigned __int128)ns * PIT_HZ / 1000000000;
}

static uint64_t ticks_to_ns(uint64_t ticks)
{
	return ((unsigned __int128)ticks * 1000000000 + PIT_HZ - 1) / PIT_HZ;
}

static bool periodic(const struct pit_channel *c)
{
	return c->mode == 2 || c->mode == 3;
}

static bool counting(const struct pit_channel *c)
{
	return c->loaded && c->gate;
}

static uint64_t elapsed_ticks(const struct pit_channel *c, uint64_t now)
{
	return now > c->start_ns ? ns_to_ticks(now - c->start_ns) : 0;
}

static uint32_t channel_count(const struct pit_channel *c, uint64_t now)
{
	uint64_t t;

	if (!c->loaded)
		return 0;
	if (!c->gate)
		return c->frozen;
	t = elapsed_ticks(c, now);
	switch (c->mode) {
	case 2:
		return c->reload - t % c->reload;
	case 3: /* counts down by two, twice per period */
		return c->reload - (2 * t) % c->reload;
	default: /* 0, 1, 4, 5: down to 0, then wraps around from 0xFFFF */
		if (t < c->reload)
			return c->reload - t;
		return (uint16_t)(0x10000 - (t - c->reload) % 0x10000);
	}
}

static bool channel_out(const struct pit_channel *c, uint64_t now)
{
	uint64_t t;

	if (!c->loaded)
		return c->mode != 0;
	t = c->gate ? elapsed_ticks(c, now) : 0;
	switch (c->mode) {
	case 0:
	case 1:
		return c->gate ? t >= c->reload : false;
	case 3:
		return (t % c->reload) < (c->reload + 1) / 2;
	default:
		return true; /* 2, 4, 5: low for one tick only */
	}
}

/* Channel 0's next interrupt (a rising edge of its output), 0 for none. */
static uint64_t next_irq_locked(const struct pit_channel *c, uint64_t now)
{
	uint64_t t;

	if (!counting(c))
		return 0;
	t = elapsed_ticks(c, now);
	if (periodic(c))
		return c->start_ns + ticks_to_ns((t / c->reload + 1) * c->reload);
	if (t >= c->reload)
		return 0; /* one-shot already fired */
	return c->start_ns + ticks_to_ns(c->reload);
}

static void reprogram_locked(struct pit *p, unsigned n)
{
	if (n != 0)
		return;
	p->next_irq_ns = next_irq_locked(&p->ch[0], now_ns());
	p->generation++;
	pthread_cond_signal(&p->cond);
}

static void load_count(struct pit *p, unsigned n, uint32_t v)
{
	struct pit_channel *c = &p->ch[n];

	c->reload = v ? v : 0x10000;
	c->loaded = true;
	c->null_count = false;
	c->start_ns = now_ns();
	c->frozen = c->reload;
	reprogram_locked(p, n);
}

static void write_counter(struct pit *p, unsigned n, uint8_t v)
{
	struct pit_channel *c = &p->ch[n];

	switch (c->rw) {
	case 1:
		load_count(p, n, v);
		break;
	case 2:
		load_count(p, n, (uint32_t)v << 8);
		break;
	default:
		if (!c->write_msb_next) {
			c->write_lsb = v;
			c->write_msb_next = true;
			c->null_count = true;
		} else {
			c->write_msb_next = false;
			load_count(p, n, c->write_lsb | (uint32_t)v << 8);
		}
		break;
	}
}

static uint8_t read_counter(struct pit *p, unsigned n)
{
	struct pit_channel *c = &p->ch[n];
	uint16_t v;

	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	if (c->count_latched) {
		v = c->latch;
		if (c->rw == 3 && !c->latch_msb_next) {
			c->latch_msb_next = true;
			return v & 0xFF;
		}
		c->count_latched = false;
		c->latch_msb_next = false;
		return c->rw == 1 ? (v & 0xFF) : v >> 8;
	}
	v = channel_count(c, now_ns());
	switch (c->rw) {
	case 1:
		return v & 0xFF;
	case 2:
		return v >> 8;
	default:
		c->read_msb_next = !c->read_msb_next;
		return c->read_msb_next ? v & 0xFF : v >> 8;
	}
}

static void latch_count(struct pit_channel *c, uint64_t now)
{
	if (c->count_latched)
		return;
	c->latch = channel_count(c, now);
	c->count_latched = true;
	c->latch_msb_next = false;
}

static void write_control(struct pit *p, uint8_t v)
{
	unsigned n = v >> 6;
	uint64_t now = now_ns();

	if (n == 3) { /* read-back */
		for (unsigned i = 0; i < 3; i++) {
			struct pit_channel *c = &p->ch[i];

			if (!(v & (2u << i)))
				continue;
			if (!(v & 0x20))
				latch_count(c, now);
			if (!(v & 0x10) && !c->status_latched) {
				c->status = (channel_out(c, now) ? 0x80 : 0) |
					    (c->null_count ? 0x40 : 0) | c->rw << 4 | c->mode << 1;
				c->status_latched = true;
			}
		}
		return;
	}
	struct pit_channel *c = &p->ch[n];

	if (!(v & 0x30)) {
		latch_count(c, now);
		return;
	}
	c->rw = (v >> 4) & 3;
	c->mode = (v >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4; /* 6 and 7 are aliases of 2 and 3 */
	c->loaded = false;
	c->null_count = true;
	c->write_msb_next = c->read_msb_next = false;
	c->count_latched = false;
	reprogram_locked(p, n);
}

static void set_gate2(struct pit *p, bool gate)
{
	struct pit_channel *c = &p->ch[2];
	uint64_t now = now_ns();

	if (gate == c->gate)
		return;
	if (!gate) {
		c->frozen = channel_count(c, now);
	} else if (c->loaded) {
		if (c->mode == 0 || c->mode == 4) {
			/* resume counting from where the gate stopped it */
			uint64_t done = c->reload - (c->frozen ? c->frozen : c->reload);

			c->start_ns = now - ticks_to_ns(done);
		} else {
			c->start_ns = now; /* a rising gate retriggers */
		}
	}
	c->gate = gate;
}

uint8_t pit_inb(struct pit *p, uint16_t port)
{
	uint8_t v = 0xFF;

	pthread_mutex_lock(&p->lock);
	if (port >= 0x40 && port <= 0x42) {
		v = read_counter(p, port - 0x40);
	} else if (port == 0x61) {
		p->refresh = !p->refresh;
		v = (p->ch[2].gate ? 1 : 0) | (p->speaker ? 2 : 0) | (p->refresh ? 0x10 : 0) |
		    (channel_out(&p->ch[2], now_ns()) ? 0x20 : 0);
	} else if (port == 0x43) {
		v = 0xFF; /* the control register is write-only */
	}
	pthread_mutex_unlock(&p->lock);
	return v;
}

void pit_outb(struct pit *p, uint16_t port, uint8_t v)
{
	pthread_mutex_lock(&p->lock);
	if (port >= 0x40 && port <= 0x42) {
		write_counter(p, port - 0x40, v);
	} else if (port == 0x43) {
		write_control(p, v);
	} else if (port == 0x61) {
		p->speaker = v & 2;
		set_gate2(p, v & 1);
	}
	pthread_mutex_unlock(&p->lock);
}

static void pit_access(void *dev, struct io_access *a)
{
	struct pit *p = dev;

	for (unsigned i = 0; i < a->len; i++) {
		if (a->write)
			pit_outb(p, a->addr + i, a->data[i]);
		else
			a->data[i] = pit_inb(p, a->addr + i);
	}
}

/* Raises IRQ 0 at each rising edge of channel 0's output. */
static void *pit_thread(void *arg)
{
	struct pit *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		uint64_t deadline = p->next_irq_ns, gen = p->generation;

		if (!deadline) {
			pthread_cond_wait(&p->cond, &p->lock);
			continue;
		}
		struct timespec ts = { .tv_sec = deadline / 1000000000,
				       .tv_nsec = deadline % 1000000000 };
		int r = pthread_cond_timedwait(&p->cond, &p->lock, &ts);

		if (p->stop || gen != p->generation)
			continue;
		if (r != ETIMEDOUT && now_ns() < deadline)
			continue;
		/* missed ticks coalesce into one interrupt, as a late guest would see */
		p->next_irq_ns = next_irq_locked(&p->ch[0], now_ns());
		pthread_mutex_unlock(&p->lock);
		irq_line_pulse(&p->irq0);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pit *pit_create(struct io_bus *pio, const struct irq_line *irq0)
{
	struct pit *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;

	if (!p) {
		pr_err("out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->irq0 = *irq0;
	for (int i = 0; i < 3; i++) {
		p->ch[i].rw = 3;
		p->ch[i].gate = i != 2; /* channels 0 and 1 are always enabled */
	}
	if (pio && (io_bus_register(pio, 0x40, 4, pit_access, p, IO_SHARED, "PIT") ||
		    io_bus_register(pio, 0x61, 1, pit_access, p, IO_SHARED, "port 0x61"))) {
		pit_destroy(p);
		return NULL;
	}
	if (pthread_create(&p->thread, NULL, pit_thread, p)) {
		pr_err("cannot start the PIT thread");
		pit_destroy(p);
		return NULL;
	}
	p->thread_started = true;
	return p;
}

void pit_destroy(struct pit *p)
{
	if (!p)
		return;
	if (p->thread_started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
