#include "vmm/x86/ioapic.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"

struct ioapic {
	pthread_mutex_t lock;
	void (*send)(void *opaque, const struct apic_msg *m);
	void *opaque;
	uint8_t id;
	uint32_t regsel;
	uint64_t rte[IOAPIC_NR_PINS];
	bool line[IOAPIC_NR_PINS];     /* input level as the device drives it */
	bool edge_pending[IOAPIC_NR_PINS];
};

/* Writable bits of a redirection entry. */
#define RTE_WRITABLE (0xFF000000000000FFull | IOAPIC_RTE_EXT_DEST | 0x7ull << 8 | \
		      IOAPIC_RTE_LOGICAL | \
		      IOAPIC_RTE_LOW_ACTIVE | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED)

struct ioapic *ioapic_create(uint8_t id, void (*send)(void *opaque, const struct apic_msg *m),
			     void *opaque)
{
	struct ioapic *io = calloc(1, sizeof(*io));

	if (!io)
		die("out of memory creating the IOAPIC");
	pthread_mutex_init(&io->lock, NULL);
	io->send = send;
	io->opaque = opaque;
	io->id = id;
	for (unsigned i = 0; i < IOAPIC_NR_PINS; i++)
		io->rte[i] = IOAPIC_RTE_MASKED;
	return io;
}

void ioapic_destroy(struct ioapic *io)
{
	if (!io)
		return;
	pthread_mutex_destroy(&io->lock);
	free(io);
}

static struct apic_msg rte_msg(uint64_t rte)
{
	return (struct apic_msg){
		.vector = rte & 0xFF,
		.mode = (rte >> 8) & 7,
		.logical = rte & IOAPIC_RTE_LOGICAL,
		.level = rte & IOAPIC_RTE_LEVEL,
		.assert = true,
		.dest = (uint32_t)(rte >> 56) | (uint32_t)((rte & IOAPIC_RTE_EXT_DEST) >> 49) << 8,
		.src_cpu = APIC_SRC_NONE,
	};
}

/* Whether pin is asserted: its input level seen through the polarity the guest chose now. */
static bool asserted_locked(const struct ioapic *io, unsigned pin)
{
	return io->line[pin] != !!(io->rte[pin] & IOAPIC_RTE_LOW_ACTIVE);
}

/*
 * Decide whether pin fires now; if so fill m and update the pin's state.
 * Level pins fire while asserted and not waiting for an EOI; edge pins fire
 * for an edge that arrived (possibly while masked).
 */
static bool service_locked(struct ioapic *io, unsigned pin, struct apic_msg *m)
{
	uint64_t rte = io->rte[pin];

	if (rte & IOAPIC_RTE_MASKED)
		return false;
	if (rte & IOAPIC_RTE_LEVEL) {
		if (!asserted_locked(io, pin) || (rte & IOAPIC_RTE_REMOTE_IRR))
			return false;
		io->rte[pin] |= IOAPIC_RTE_REMOTE_IRR;
	} else {
		if (!io->edge_pending[pin])
			return false;
		io->edge_pending[pin] = false;
	}
	*m = rte_msg(rte);
	return true;
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level)
{
	struct apic_msg m;
	bool fire, was;

	if (pin >= IOAPIC_NR_PINS)
		return;
	pthread_mutex_lock(&io->lock);
	was = asserted_locked(io, pin);
	io->line[pin] = level;
	if (!was && asserted_locked(io, pin) && !(io->rte[pin] & IOAPIC_RTE_LEVEL))
		io->edge_pending[pin] = true;
	fire = service_locked(io, pin, &m);
	pthread_mutex_unlock(&io->lock);
	if (fire)
		io->send(io->opaque, &m);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	struct apic_msg m[IOAPIC_NR_PINS];
	unsigned n = 0;

	pthread_mutex_lock(&io->lock);
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		if ((io->rte[pin] & 0xFF) != vector || !(io->rte[pin] & IOAPIC_RTE_REMOTE_IRR))
			continue;
		io->rte[pin] &= ~IOAPIC_RTE_REMOTE_IRR;
		if (service_locked(io, pin, &m[n]))
			n++;
	}
	pthread_mutex_unlock(&io->lock);
	for (unsigned i = 0; i < n; i++)
		io->send(io->opaque, &m[i]);
}

uint32_t ioapic_read_reg(struct ioapic *io, unsigned reg)
{
	uint32_t v = 0;

	pthread_mutex_lock(&io->lock);
	if (reg == IOAPIC_REG_ID) {
		v = (uint32_t)io->id << 24;
	} else if (reg == IOAPIC_REG_VER) {
		v = IOAPIC_VERSION | (IOAPIC_NR_PINS - 1) << 16;
	} else if (reg == IOAPIC_REG_ARB) {
		v = (uint32_t)io->id << 24;
	} else if (reg >= IOAPIC_REG_REDIR && reg < IOAPIC_REG_REDIR + 2 * IOAPIC_NR_PINS) {
		unsigned pin = (reg - IOAPIC_REG_REDIR) / 2;
		uint64_t rte = io->rte[pin];

		/* delivery status: an edge waits while the pin is masked */
		if (io->edge_pending[pin])
			rte |= IOAPIC_RTE_PENDING;
		v = reg & 1 ? rte >> 32 : (uint32_t)rte;
	}
	pthread_mutex_unlock(&io->lock);
	return v;
}

void ioapic_write_reg(struct ioapic *io, unsigned reg, uint32_t val)
{
	struct apic_msg m;
	bool fire = false;

	pthread_mutex_lock(&io->lock);
	if (reg == IOAPIC_REG_ID) {
		io->id = (val >> 24) & 0xF;
	} else if (reg >= IOAPIC_REG_REDIR && reg < IOAPIC_REG_REDIR + 2 * IOAPIC_NR_PINS) {
		unsigned pin = (reg - IOAPIC_REG_REDIR) / 2;
		uint64_t rte = io->rte[pin], ro = rte & ~RTE_WRITABLE;

		if (reg & 1)
			rte = (rte & 0xFFFFFFFFull) | (uint64_t)val << 32;
		else
			rte = (rte & ~0xFFFFFFFFull) | val;
		rte = (rte & RTE_WRITABLE) | (ro & IOAPIC_RTE_REMOTE_IRR);
		/* an edge pin has no remote IRR; switching to edge clears it */
		if (!(rte & IOAPIC_RTE_LEVEL))
			rte &= ~IOAPIC_RTE_REMOTE_IRR;
		io->rte[pin] = rte;
		fire = service_locked(io, pin, &m);
	}
	pthread_mutex_unlock(&io->lock);
	if (fire)
		io->send(io->opaque, &m);
}

void ioapic_access(void *dev, struct io_access *a)
{
	struct ioapic *io = dev;

	/* Only 32-bit accesses are defined; others are ignored / read as 0. */
	if (a->len != 4) {
		if (!a->write)
			io_data_set(a, 0);
		return;
	}
	switch (a->off) {
	case IOAPIC_REGSEL:
		if (a->write) {
			pthread_mutex_lock(&io->lock);
			io->regsel = io_data_get(a) & 0xFF;
			pthread_mutex_unlock(&io->lock);
		} else {
			pthread_mutex_lock(&io->lock);
			io_data_set(a, io->regsel);
			pthread_mutex_unlock(&io->lock);
		}
		break;
	case IOAPIC_WIN: {
		unsigned reg;

		pthread_mutex_lock(&io->lock);
		reg = io->regsel;
		pthread_mutex_unlock(&io->lock);
		if (a->write)
			ioapic_write_reg(io, reg, io_data_get(a));
		else
			io_data_set(a, ioapic_read_reg(io, reg));
		break;
	}
	default:
		if (!a->write)
			io_data_set(a, 0);
		break;
	}
}
