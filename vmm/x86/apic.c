#include "vmm/x86/apic.h"

#include <string.h>

#define SET_WORDS ((TOPO_MAX_CPUS + 63) / 64)

void apic_bus_init(struct apic_bus *bus, unsigned nr_cpus)
{
	memset(bus, 0, sizeof(*bus));
	bus->nr_cpus = nr_cpus;
}

void apic_bus_attach(struct apic_bus *bus, unsigned cpu, uint32_t apic_id, struct apic_port *port)
{
	bus->port[cpu] = port;
	bus->dest[cpu].initial_id = apic_id;
	/* power-on: xAPIC mode, whose ID register holds the initial ID's low 8 bits */
	apic_bus_set_dest(bus, cpu, &(struct apic_dest_state){ .id = apic_id & 0xFF,
								.dfr = 0xFFFFFFFFu });
}

void apic_bus_set_dest(struct apic_bus *bus, unsigned cpu, const struct apic_dest_state *d)
{
	atomic_store_explicit(&bus->dest[cpu].id, d->id, memory_order_relaxed);
	atomic_store_explicit(&bus->dest[cpu].ldr, d->ldr, memory_order_relaxed);
	atomic_store_explicit(&bus->dest[cpu].dfr, d->dfr, memory_order_relaxed);
	atomic_store_explicit(&bus->dest[cpu].x2apic, d->x2apic, memory_order_release);
}

/*
 * A target in x2APIC mode: physical destinations are its 32-bit ID (an
 * xAPIC-format 0xFF from the IOAPIC or an MSI is a broadcast there too, as
 * on hardware); logical ones only in x2APIC format, a cluster and a mask.
 */
static bool match_x2apic(const struct apic_dest *d, const struct apic_msg *m)
{
	uint32_t ldr;

	if (m->x2apic && m->dest == APIC_X2_BROADCAST_ID)
		return true;
	if (!m->logical)
		return (!m->x2apic && m->dest == APIC_BROADCAST_ID) ||
		       m->dest == atomic_load_explicit(&d->id, memory_order_relaxed);
	if (!m->x2apic)
		return false;
	ldr = atomic_load_explicit(&d->ldr, memory_order_relaxed);
	return (m->dest >> 16) == (ldr >> 16) && (m->dest & ldr & 0xFFFF);
}

bool apic_bus_match(const struct apic_bus *bus, unsigned cpu, const struct apic_msg *m)
{
	const struct apic_dest *d = &bus->dest[cpu];

	if (atomic_load_explicit(&d->x2apic, memory_order_acquire))
		return match_x2apic(d, m);
	/* an xAPIC target: x2APIC-format messages reach it only physically, by its initial ID */
	if (m->x2apic)
		return !m->logical && (m->dest == APIC_X2_BROADCAST_ID || m->dest == d->initial_id);
	if (!m->logical)
		return m->dest == APIC_BROADCAST_ID ||
		       m->dest == atomic_load_explicit(&d->id, memory_order_relaxed);

	uint32_t dfr = atomic_load_explicit(&d->dfr, memory_order_relaxed);
	uint8_t ldr = atomic_load_explicit(&d->ldr, memory_order_relaxed) >> 24;
	uint8_t dest = (uint8_t)m->dest;

	if ((dfr >> 28) == 0xF) /* flat: a bit per APIC */
		return dest & ldr;
	/* cluster: high nibble selects the cluster (15 = all), low nibble the APICs */
	if ((dest >> 4) != 0xF && (dest >> 4) != (ldr >> 4))
		return false;
	return dest & ldr & 0xF;
}

unsigned apic_bus_resolve(struct apic_bus *bus, const struct apic_msg *m, uint64_t *set)
{
	unsigned n = 0, first = 0;

	memset(set, 0, SET_WORDS * sizeof(uint64_t));
	for (unsigned cpu = 0; cpu < bus->nr_cpus; cpu++) {
		bool hit;

		switch (m->shorthand) {
		case APIC_SH_SELF:
			hit = cpu == m->src_cpu;
			break;
		case APIC_SH_ALL:
			hit = true;
			break;
		case APIC_SH_OTHERS:
			hit = cpu != m->src_cpu;
			break;
		default:
			hit = apic_bus_match(bus, cpu, m);
			break;
		}
		if (!hit)
			continue;
		if (!n)
			first = cpu;
		set[cpu / 64] |= 1ull << (cpu % 64);
		n++;
	}
	if (m->mode == APIC_DM_LOWEST && n > 1) {
		/*
		 * The arbitration by priority that real APICs do would need every
		 * target's TPR, which may live on another instance: rotate instead,
		 * which the architecture allows as a valid "lowest priority" choice
		 * among equals and which spreads device interrupts.
		 */
		unsigned k = atomic_fetch_add_explicit(&bus->lowest_next, 1,
						       memory_order_relaxed) % n;
		unsigned pick = first;

		for (unsigned cpu = first; cpu < bus->nr_cpus; cpu++) {
			if (!(set[cpu / 64] & (1ull << (cpu % 64))))
				continue;
			if (!k--) {
				pick = cpu;
				break;
			}
		}
		memset(set, 0, SET_WORDS * sizeof(uint64_t));
		set[pick / 64] |= 1ull << (pick % 64);
		n = 1;
	}
	return n;
}

unsigned apic_bus_send(struct apic_bus *bus, const struct apic_msg *m)
{
	uint64_t set[SET_WORDS];
	unsigned n = apic_bus_resolve(bus, m, set);

	for (unsigned w = 0; w < SET_WORDS; w++) {
		uint64_t bits = set[w];

		while (bits) {
			unsigned cpu = w * 64 + __builtin_ctzll(bits);

			bits &= bits - 1;
			if (bus->port[cpu])
				bus->port[cpu]->deliver(bus->port[cpu], m);
		}
	}
	return n;
}
