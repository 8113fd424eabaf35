/*
 * A device interrupt to a chosen CPU, through the I/O APIC: the UART's
 * "transmitter empty" interrupt (IRQ 4, level-triggered), routed to the
 * CPU's APIC ID.  Each round enables the interrupt, the target's handler
 * acknowledges it at the UART (reading IIR lowers the line) and sends the
 * EOI, and the next round can only fire once that EOI has reached the I/O
 * APIC (it clears the pin's remote IRR).  On gvm across instances this
 * exercises the routing of a device interrupt from rank 0 to the instance
 * of the CPU, forwarded port accesses, and EOIs going back to rank 0.
 * APIC IDs above 255 go in the extended destination ID (RTE bits 55:49,
 * ID bits 14:8), which KVM-style hypervisors offer in CPUID 0x40000001
 * EAX bit 15, as Linux uses it without an IOMMU.
 */
#include "common/guest_abi.h"
#include "images/probe/kernel/kernel.h"

#define IOAPIC_BASE 0xfec00000ull
#define IOAPIC_RTE_MASKED (1u << 16)
#define IOAPIC_RTE_LEVEL (1u << 15)
#define KVM_FEATURE_MSI_EXT_DEST_ID (1u << 15)

#define UART_IER 1
#define UART_IIR 2
#define UART_MCR 4
#define UART_IER_THRI 0x02
#define UART_MCR_OUT2 0x08

/* Give up on a round after this many TSC cycles (about 10 s at 2 GHz), as for IPIs. */
#define IRQ_TIMEOUT 20000000000ull

static void ioapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)IOAPIC_BASE = reg;
	*(volatile uint32_t *)(IOAPIC_BASE + 0x10) = v;
}

/* The RTE's high half for an APIC ID; -1 with a message if it has no form. */
static int rte_dest(uint32_t apic, uint32_t *high)
{
	uint32_t r[4];

	if (apic < 256) {
		*high = apic << 24;
		return 0;
	}
	cpuid(0x40000000, 0, r);
	if (r[0] >= 0x40000001)
		cpuid(0x40000001, 0, r);
	else
		r[0] = 0;
	if (!(r[0] & KVM_FEATURE_MSI_EXT_DEST_ID) || apic > 0x7fff) {
		kprintf("error: irq: APIC ID %u needs the extended destination ID, which %s\n", apic,
		     apic > 0x7fff ? "holds 15 bits" : "CPUID 0x40000001 does not offer");
		return -1;
	}
	*high = (apic & 0xff) << 24 | (apic >> 8) << 17;
	return 0;
}

static void rte_set(unsigned pin, uint32_t low, uint32_t high)
{
	ioapic_write(0x10 + 2 * pin + 1, high);
	ioapic_write(0x10 + 2 * pin, low);
}

void uart_irq(void)
{
	inb(GVM_UART_PORT + UART_IIR); /* reporting "transmitter empty" acknowledges it */
	this_cpu()->uart_irqs++;
	lapic_eoi();
}

long sys_irq(uint64_t cpu, uint64_t rounds, struct probe_ping *out)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	struct probe_ping r = { 0, ~0ull, 0, 0, 0 };
	struct cpu_local *t;
	uint32_t high;

	if (cpu >= bi->acpi.nr_cpus || bi->cpu[cpu].state < CPU_UP)
		return -1;
	t = cpu_by_index[cpu];
	if (rte_dest(t->apic_id, &high))
		return -1;
	outb(GVM_UART_PORT + UART_MCR, UART_MCR_OUT2);
	rte_set(GVM_UART_IRQ, VEC_UART | IOAPIC_RTE_LEVEL, high);
	/* the halting sender wakes on its timer if the interrupt never comes */
	lapic_timer(VEC_TIMER, 20000000);
	for (; r.rounds < rounds; r.rounds++) {
		uint64_t before = t->uart_irqs, t0 = rdtsc(), dt;

		outb(GVM_UART_PORT + UART_IER, UART_IER_THRI);
		while (t->uart_irqs == before && rdtsc() - t0 < IRQ_TIMEOUT) {
			if (t == this_cpu())
				sti_hlt_cli();
			else
				cpu_pause();
		}
		outb(GVM_UART_PORT + UART_IER, 0);
		if (t->uart_irqs == before) {
			r.waited = rdtsc() - t0;
			break;
		}
		dt = rdtsc() - t0;
		r.min = dt < r.min ? dt : r.min;
		r.max = dt > r.max ? dt : r.max;
		r.sum += dt;
	}
	lapic_timer(VEC_TIMER, 0);
	rte_set(GVM_UART_IRQ, IOAPIC_RTE_MASKED, 0);
	outb(GVM_UART_PORT + UART_MCR, 0);
	*out = r;
	return r.rounds == rounds ? 0 : -1;
}
