/*
 * The CPUID a vCPU sees: KVM_GET_SUPPORTED_CPUID, filtered by a named feature
 * set (--cpu-features), with the APIC ID, topology and cache leaves written
 * from the struct vm_topology that also builds the MADT and SRAT.
 *
 * Feature sets (docs/topology.md):
 *   host          everything KVM supports, minus what needs an in-kernel
 *                 LAPIC (x2APIC, TSC-deadline, PV EOI/IPI/unhalt...) and the
 *                 PMU; the host's vendor.
 *   conservative  baseline x86-64 (x86-64-v1) with the Intel vendor string:
 *                 no XSAVE, AVX, SSE3+, POPCNT, SMEP/SMAP..., for hosts whose
 *                 KVM emulates guest kernel code.
 *   auto          conservative if host_kernel_emulated(), else host.
 * followed by ,+name / ,-name modifiers (Linux /proc/cpuinfo flag names),
 * e.g. "conservative,+sse4_2" or "host,-avx512f".  kvmclock is kept in both.
 */
#ifndef GVM_VMM_X86_CPUID_H
#define GVM_VMM_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/topo.h"

/* Big enough for an error that lists every valid feature name. */
#define CPUID_ERR_MAX 4096

enum cpuid_base {
	CPUID_BASE_AUTO,
	CPUID_BASE_HOST,
	CPUID_BASE_CONSERVATIVE,
};

#define CPUID_FEATURE_WORDS 8 /* bitmaps over the named-feature table */

struct cpuid_features {
	enum cpuid_base base;
	uint64_t add[CPUID_FEATURE_WORDS];
	uint64_t remove[CPUID_FEATURE_WORDS];
};

/*
 * Parse --cpu-features.  NULL or "" is "auto".  Unknown set or feature names
 * are errors whose message lists the valid names.  0, or -1 with err.
 */
int cpuid_features_parse(const char *spec, struct cpuid_features *f, char *err);

/*
 * A resolved set received from another instance: base host or conservative,
 * no feature number beyond the table.  0, or -1 with err.
 */
int cpuid_features_check(const struct cpuid_features *f, char *err);

/*
 * Was x2APIC asked for (+x2apic)?  It is never part of a set by itself: gvm
 * then hands the x2APIC MSRs to its LAPICs (vmm/x86/cpu.h).
 */
bool cpuid_features_x2apic(const struct cpuid_features *f);

/*
 * Turn "auto" into host or conservative; add x2APIC where the topology
 * needs it (an APIC ID above 254), unless -x2apic said otherwise.
 */
void cpuid_features_resolve(struct cpuid_features *f, bool kernel_emulated, bool need_x2apic);

/* The canonical spelling, e.g. "conservative,+sse4_2", for logs. */
const char *cpuid_features_format(const struct cpuid_features *f, char *buf, size_t len);

/* KVM_GET_SUPPORTED_CPUID on an open /dev/kvm; malloc'ed, free() it.  NULL with err. */
struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd, char *err);

/*
 * The CPUID of vCPU cpu (index into t->cpus), for KVM_SET_CPUID2; malloc'ed,
 * free() it.  f must be resolved (not auto).  NULL with err when a feature
 * asked for with +name is not supported here, or a dependency is missing
 * (e.g. +avx without xsave).
 */
struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *supported, const struct vm_topology *t,
			       const struct cpuid_features *f, unsigned cpu, char *err);

/* The entry for (function, index) or NULL; index is ignored for leaves without subleaves. */
const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *c, uint32_t function,
					  uint32_t index);

#endif
