/*
 * IPI round trips from the boot CPU to every other CPU, while they idle in
 * their kernels: by APIC ID (physical destination), then by logical
 * destination (xAPIC: the first 8 CPUs, by LDR bit in the flat model;
 * x2APIC: every CPU, by the cluster and bit of its LDR), which only works
 * if the VMM knows every CPU's LDR wherever that CPU runs.
 */
#include "images/probe/user/probe.h"

static void ping(uint32_t i, int logical)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	const struct acpi_topo *t = &bi->acpi;
	struct probe_ping p = { 0, 0, 0, 0, 0 };
	long r = sys_call(SYS_IPI_PING, i, (long)opts.ipi_rounds, (long)&p, logical);

	if (r || !p.rounds) {
		ufail("ipi: no reply from cpu %u (APIC ID %u, %s destination) within %lu cycles, "
		      "after %lu of %lu round trips", i, t->cpus[i].apic_id,
		      logical ? "logical" : "physical", p.waited, p.rounds, opts.ipi_rounds);
		return;
	}
	uprintf("ipi: from=%u to=%u node=%u rounds=%lu min_cycles=%lu avg_cycles=%lu "
		"max_cycles=%lu min_us=%lu avg_us=%lu dest=%s\n", bi->bsp, i, t->cpus[i].domain,
		p.rounds, p.min, p.sum / p.rounds, p.max, cycles_to_us(p.min),
		cycles_to_us(p.sum / p.rounds), logical ? "logical" : "physical");
}

void run_ipi(void)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	const struct acpi_topo *t = &bi->acpi;

	for (uint32_t i = 0; i < t->nr_cpus; i++) {
		if (i == bi->bsp || bi->cpu[i].state < CPU_UP)
			continue;
		ping(i, 0);
		if (bi->cpu[i].logical_dest)
			ping(i, 1);
	}
}
