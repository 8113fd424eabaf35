/*
 * The probe's ACPI reader: RSDP -> XSDT (or RSDT) -> MADT, SRAT, SLIT, into
 * one description of the machine, with every inconsistency between the
 * tables recorded as a message.  Freestanding and without floating point:
 * the probe's kernel runs it at boot, its user mode runs the checksum pass,
 * and the host unit tests run both on tables iasl built.
 */
#ifndef PROBE_ACPI_H
#define PROBE_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define PROBE_ACPI_MAX_CPUS 1024
#define PROBE_ACPI_MAX_DOMAINS 64
#define PROBE_ACPI_MAX_MEM 64
#define PROBE_ACPI_ERR_MAX 1024
#define PROBE_ACPI_NO_DOMAIN 0xffffffffu

struct acpi_cpu {
	uint32_t apic_id;
	uint32_t uid;
	uint32_t domain;   /* SRAT proximity domain, PROBE_ACPI_NO_DOMAIN if none */
	uint32_t x2apic;   /* 1 if from a MADT x2APIC entry */
};

struct acpi_mem {
	uint64_t base, len;
	uint32_t domain;
	uint32_t flags;    /* SRAT memory affinity flags (bit 1 hot-pluggable, bit 2 non-volatile) */
};

#define PROBE_ACPI_NO_S5 0xffffffffu

struct acpi_topo {
	uint64_t rsdp, madt, srat, slit; /* physical addresses, 0 if absent */
	uint64_t fadt, dsdt;
	/* Soft-off: FADT's PM1a control port (0: none) and \_S5's SLP_TYPa (or PROBE_ACPI_NO_S5). */
	uint32_t pm1a_cnt;
	uint32_t s5_typ;
	uint64_t lapic_addr;
	uint32_t madt_flags;
	uint32_t nr_cpus;      /* enabled processors, in MADT order */
	uint32_t nr_disabled;  /* listed but not enabled */
	uint32_t nr_ioapics;
	uint32_t ioapic_addr;  /* of the first IOAPIC */
	struct acpi_cpu cpus[PROBE_ACPI_MAX_CPUS];
	uint32_t nr_mem;       /* enabled SRAT memory ranges */
	struct acpi_mem mem[PROBE_ACPI_MAX_MEM];
	uint32_t nr_domains;   /* proximity domains that have CPUs or memory, ascending */
	uint32_t domains[PROBE_ACPI_MAX_DOMAINS];
	uint64_t slit_localities;
	/* SLIT distances between domains[i] and domains[j]; 0 if there is no SLIT. */
	uint8_t distance[PROBE_ACPI_MAX_DOMAINS][PROBE_ACPI_MAX_DOMAINS];
	uint32_t nr_errors;
	char errors[PROBE_ACPI_ERR_MAX]; /* one line per problem, "acpi: ...\n" */
};

/* How the reader reaches physical memory: NULL if [phys, phys + len) is not there. */
struct acpi_access {
	const void *(*map)(void *ctx, uint64_t phys, uint64_t len);
	void *ctx;
};

/*
 * Read the tables reachable from the RSDP at rsdp into t (cleared first).
 * Returns the number of problems found (0: consistent).  Problems include a
 * missing or malformed table, duplicate APIC IDs, an SRAT processor entry
 * for an APIC ID the MADT does not list or a MADT processor the SRAT omits,
 * overlapping memory ranges, and a SLIT that Linux would reject (diagonal
 * not 10, off-diagonal <= 10, too few localities).  The FADT and the
 * DSDT's \_S5 are read for soft-off; a machine without them is not a problem
 * for the topology.
 */
unsigned acpi_parse(const struct acpi_access *a, uint64_t rsdp, struct acpi_topo *t);

/*
 * Verify the checksums of the RSDP and of every table the XSDT lists, with
 * one message per bad table appended to err.  Returns the number of bad ones.
 */
unsigned acpi_verify_checksums(const struct acpi_access *a, uint64_t rsdp, char *err, size_t size);

/* Index of a domain in t->domains, or -1. */
int acpi_domain_index(const struct acpi_topo *t, uint32_t domain);

#endif
