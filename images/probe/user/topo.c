/*
 * The machine as the tables and the CPUs themselves describe it: printed in
 * the stable form docs/probe.md specifies, and cross-checked.
 */
#include "images/probe/user/probe.h"

static const void *user_map(void *ctx, uint64_t phys, uint64_t len)
{
	(void)ctx;
	if (!phys || phys + len < phys || phys + len > probe_bootinfo.mapped_top)
		return NULL;
	return (const void *)phys;
}

/* Print text made of lines, each with a prefix. */
static void print_lines(const char *prefix, const char *text)
{
	while (*text) {
		size_t n = 0;

		while (text[n] && text[n] != '\n')
			n++;
		uprintf("%s%.*s\n", prefix, (int)n, text);
		text += n + (text[n] == '\n');
	}
}

static void print_node(const struct acpi_topo *t, uint32_t d)
{
	const struct probe_bootinfo *bi = &probe_bootinfo;
	static char line[8192]; /* up to 1024 APIC IDs of 5 digits and a comma */
	int n = bfmt_snprintf(line, sizeof(line), "topology: node %u cpus ", t->domains[d]);
	int first = 1;

	for (uint32_t i = 0; i < t->nr_cpus; i++) {
		if (t->cpus[i].domain != t->domains[d])
			continue;
		n += bfmt_snprintf(line + n, sizeof(line) - (size_t)n, "%s%u", first ? "" : ",",
				   t->cpus[i].apic_id);
		first = 0;
	}
	if (first)
		n += bfmt_snprintf(line + n, sizeof(line) - (size_t)n, "none");
	n += bfmt_snprintf(line + n, sizeof(line) - (size_t)n, " mem ");
	first = 1;
	if (t->srat) {
		for (uint32_t m = 0; m < t->nr_mem; m++) {
			if (t->mem[m].domain != t->domains[d])
				continue;
			n += bfmt_snprintf(line + n, sizeof(line) - (size_t)n, "%s0x%lx-0x%lx",
					   first ? "" : ",", t->mem[m].base,
					   t->mem[m].base + t->mem[m].len - 1);
			first = 0;
		}
	} else {
		for (uint32_t i = 0; i < bi->nr_e820; i++) {
			if (bi->e820[i].type != 1)
				continue;
			n += bfmt_snprintf(line + n, sizeof(line) - (size_t)n, "%s0x%lx-0x%lx",
					   first ? "" : ",", bi->e820[i].base,
					   bi->e820[i].base + bi->e820[i].size - 1);
			first = 0;
		}
	}
	if (first)
		bfmt_snprintf(line + n, sizeof(line) - (size_t)n, "none");
	uprintf("%s\n", line);
}

/* Bytes of e820 RAM that no SRAT memory range covers. */
static uint64_t ram_outside_srat(const struct acpi_topo *t)
{
	const struct probe_bootinfo *bi = &probe_bootinfo;
	uint64_t missing = 0;

	for (uint32_t i = 0; i < bi->nr_e820; i++) {
		uint64_t b = bi->e820[i].base, e = b + bi->e820[i].size, covered = 0;

		if (bi->e820[i].type != 1)
			continue;
		for (uint32_t m = 0; m < t->nr_mem; m++) {
			uint64_t mb = t->mem[m].base, me = mb + t->mem[m].len;
			uint64_t lo = b > mb ? b : mb, hi = e < me ? e : me;

			if (hi > lo)
				covered += hi - lo;
		}
		missing += e - b - covered;
	}
	return missing;
}

void topo_report(void)
{
	const struct probe_bootinfo *bi = &probe_bootinfo;
	const struct acpi_topo *t = &bi->acpi;
	struct acpi_access access = { user_map, NULL };
	char sums[1024];
	unsigned bad_cpus = 0, aps = 0, aps_up = 0;

	uprintf("acpi: rsdp=0x%lx madt=0x%lx srat=0x%lx slit=0x%lx lapic=0x%lx ioapics=%u "
		"disabled_cpus=%u\n", t->rsdp, t->madt, t->srat, t->slit, t->lapic_addr,
		t->nr_ioapics, t->nr_disabled);
	uprintf("topology: nodes=%u cpus=%u\n", t->nr_domains, t->nr_cpus);
	uprintf("apic: mode=%s\n", bi->x2apic ? "x2apic" : "xapic");
	for (uint32_t d = 0; d < t->nr_domains; d++)
		print_node(t, d);
	for (uint32_t i = 0; i < t->nr_domains; i++) {
		char line[1024];
		int n = bfmt_snprintf(line, sizeof(line), "distance: node %u", t->domains[i]);

		for (uint32_t j = 0; j < t->nr_domains; j++)
			n += bfmt_snprintf(line + n, sizeof(line) - (size_t)n, " %u",
					   t->slit ? t->distance[i][j] : (i == j ? 10u : 0u));
		uprintf("%s\n", line);
	}

	/* Each CPU as it reported itself, against the MADT. */
	for (uint32_t i = 0; i < t->nr_cpus; i++) {
		const struct probe_cpu_report *r = &bi->cpu[i];
		uint32_t apic = t->cpus[i].apic_id;
		int up = r->state >= CPU_UP;

		if (i != bi->bsp) {
			aps++;
			aps_up += up;
			uprintf("ap: cpu %u apic %u %s", i, apic, up ? "up" : "down");
			if (up && tsc_khz)
				uprintf(" us=%lu\n", (r->up_tsc - bi->tsc_smp_start) * 1000 / tsc_khz);
			else
				uprintf("\n");
		}
		if (!up)
			continue;
		uprintf("cpu: index=%u apic=%u node=%u lapic_id=%u cpuid_apic=%u cpuid_x2apic=%d "
			"starts=%u\n", i, apic, t->cpus[i].domain, r->lapic_id, r->cpuid_apic,
			r->cpuid_x2apic == PROBE_NONE ? -1 : (int)r->cpuid_x2apic, r->entries);
		if (r->lapic_id != apic || r->cpuid_apic != (apic & 0xff) ||
		    (r->cpuid_x2apic != PROBE_NONE && r->cpuid_x2apic != apic)) {
			ufail("cpu %u: MADT says APIC ID %u, but its LAPIC says %u, CPUID leaf 1 %u, "
			      "leaf 0xb %d", i, apic, r->lapic_id, r->cpuid_apic,
			      r->cpuid_x2apic == PROBE_NONE ? -1 : (int)r->cpuid_x2apic);
			bad_cpus++;
		}
		if (r->entries != 1) {
			ufail("cpu %u started %u times (a SIPI restarted a running CPU)", i,
			      r->entries);
			bad_cpus++;
		}
	}
	for (uint32_t i = 0; i < t->nr_cpus; i++)
		if (bi->cpu[i].state < CPU_UP)
			ufail("cpu %u (APIC ID %u) did not come up", i, t->cpus[i].apic_id);
	if (aps && bi->trampoline_entries != aps_up)
		ufail("the trampoline ran %u times for %u APs up", bi->trampoline_entries, aps_up);
	if (bi->stray_aps)
		ufail("%u CPUs not in the MADT started", bi->stray_aps);

	/* The kernel's findings, then the checks only user mode does (at native speed). */
	if (t->nr_errors) {
		print_lines("error: ", t->errors);
		ufail("%u inconsistencies in the ACPI tables", t->nr_errors);
	}
	if (bi->nr_kernel_errors) {
		print_lines("", bi->kernel_errors);
		ufail("%u problems found by the kernel", bi->nr_kernel_errors);
	}
	if (acpi_verify_checksums(&access, t->rsdp, sums, sizeof(sums))) {
		print_lines("error: ", sums);
		ufail("bad ACPI checksums");
	} else {
		uprintf("check: acpi-checksums ok\n");
	}
	if (t->srat) {
		uint64_t missing = ram_outside_srat(t);

		if (missing > (1u << 20))
			ufail("%lu bytes of e820 RAM are in no SRAT memory range (Linux allows 1 MiB)",
			      missing);
		else
			uprintf("check: srat-covers-e820 ok\n");
	}
	if (!t->nr_errors)
		uprintf("check: madt-srat-slit ok\n");
	if (!bad_cpus)
		uprintf("check: cpu-apic-ids ok\n");
	uprintf("smp: cpus=%u up=%u\n", t->nr_cpus, aps_up + 1);
}
