/*
 * What the probe's kernel hands its user mode: the boot information block
 * (in the user image, so user mode reads it directly) and the structures of
 * the requests (see layout.h for their numbers).
 */
#ifndef PROBE_ABI_H
#define PROBE_ABI_H

#include <stdint.h>

#include "images/probe/acpi.h"
#include "images/probe/layout.h"

#define PROBE_MAX_CPUS PROBE_ACPI_MAX_CPUS
#define PROBE_E820_MAX 64
#define PROBE_CMDLINE_MAX 2048
#define PROBE_KERR_MAX 1024
#define PROBE_BOOTINFO_MAGIC 0x70726f6265ull /* "probe" */

enum probe_cpu_state {
	CPU_OFF = 0,     /* not started (yet) */
	CPU_SIPI_SENT,   /* INIT and SIPIs sent, no sign of life */
	CPU_UP,          /* in long mode, idle in its kernel */
	CPU_RUNNING,     /* running a user thread */
};

/* Written by each CPU about itself when it starts; one cache line each. */
struct probe_cpu_report {
	uint32_t state;
	uint32_t entries;      /* times it ran the AP entry: must be 1 */
	uint32_t lapic_id;     /* its LAPIC ID register */
	uint32_t cpuid_apic;   /* CPUID.1:EBX[31:24] */
	uint32_t cpuid_x2apic; /* CPUID.0xB:EDX, or PROBE_NONE without leaf 0xB */
	uint32_t logical_dest; /* the logical destination that reaches it alone, 0: none */
	uint64_t up_tsc;       /* TSC when it reached its idle loop */
	uint64_t pad2[5];
} __attribute__((aligned(64)));

#define PROBE_NONE 0xffffffffu

struct probe_e820 {
	uint64_t base, size;
	uint32_t type; /* 1 RAM, 2 reserved, 3 ACPI, 4 NVS, 5 unusable */
	uint32_t pad;
};

struct probe_range {
	uint64_t base, size;
};

struct probe_bootinfo {
	uint64_t magic;
	uint32_t boot_protocol;      /* PROBE_BOOT_* */
	uint32_t bsp;                /* index of the boot CPU in acpi.cpus */
	uint32_t trampoline;         /* physical address of the AP trampoline */
	uint32_t trampoline_entries; /* real-mode entries the trampoline counted */
	uint32_t stray_aps;          /* APs that started but are not in the MADT */
	uint32_t nr_e820;
	uint64_t tsc_entry;          /* kernel entry */
	uint64_t tsc_smp_start;      /* first INIT sent */
	uint64_t tsc_smp_done;       /* every AP up (or given up on) */
	uint64_t tsc_user;           /* entering user mode */
	uint64_t initrd_base, initrd_size;
	uint64_t mapped_top;         /* RAM is mapped below this */
	/* kvmclock's TSC scale, if KVM offers it: ns = (tsc << shift (>> -shift)) * mul >> 32. */
	uint32_t kvmclock_mul;
	int32_t kvmclock_shift;
	struct probe_e820 e820[PROBE_E820_MAX];
	char cmdline[PROBE_CMDLINE_MAX];
	/* Per domain (index as in acpi.domains): the user heap, the kernel chunk. */
	struct probe_range heap[PROBE_ACPI_MAX_DOMAINS];
	struct probe_range kchunk[PROBE_ACPI_MAX_DOMAINS];
	char kernel_errors[PROBE_KERR_MAX]; /* "error: ...\n" lines */
	uint32_t nr_kernel_errors;
	uint32_t x2apic;             /* the LAPICs are in x2APIC mode */
	struct acpi_topo acpi;
	struct probe_cpu_report cpu[PROBE_MAX_CPUS]; /* index as in acpi.cpus */
};

/* SYS_IPI_PING's result. */
struct probe_ping {
	uint64_t rounds;     /* completed */
	uint64_t min, max, sum; /* TSC cycles per round trip */
	uint64_t waited;     /* cycles waited in vain when a reply did not come */
};

#endif
