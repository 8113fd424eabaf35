/*
 * Device interrupts: the UART's level-triggered interrupt routed by the
 * I/O APIC to each CPU in turn (SYS_IRQ); each round needs the previous
 * round's EOI to have reached the I/O APIC.
 */
#include "images/probe/user/probe.h"

void run_irq(void)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	const struct acpi_topo *t = &bi->acpi;

	for (uint32_t i = 0; i < t->nr_cpus; i++) {
		struct probe_ping p = { 0, 0, 0, 0, 0 };
		long r;

		if (bi->cpu[i].state < CPU_UP)
			continue;
		r = sys_call(SYS_IRQ, i, (long)opts.ipi_rounds, (long)&p, 0);
		if (r || !p.rounds) {
			ufail("irq: the UART interrupt did not reach cpu %u (APIC ID %u) "
			      "within %lu cycles, after %lu of %lu rounds", i, t->cpus[i].apic_id,
			      p.waited, p.rounds, opts.ipi_rounds);
			continue;
		}
		uprintf("irq: to=%u node=%u rounds=%lu min_us=%lu avg_us=%lu max_us=%lu\n", i,
			t->cpus[i].domain, p.rounds, cycles_to_us(p.min),
			cycles_to_us(p.sum / p.rounds), cycles_to_us(p.max));
	}
}
