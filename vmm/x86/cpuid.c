/*
 * CPUID per vCPU: KVM's supported list, filtered by the feature set, with
 * the APIC ID, topology (leaves 1, 0xB, 0x1F, 0x80000008, 0x8000001E) and
 * cache (leaves 2, 4, 0x8000001D, 0x80000005/6) leaves written from the
 * vm_topology.  docs/topology.md explains every choice.
 */
#include "vmm/x86/cpuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define SETERR(...) snprintf(err, CPUID_ERR_MAX, __VA_ARGS__)
#define ERR(...) (SETERR(__VA_ARGS__), -1)

enum { EAX, EBX, ECX, EDX };

struct feature {
	const char *name;
	uint32_t fn, idx;
	uint8_t reg, bit;
};

/* Named features, spelled as in Linux's /proc/cpuinfo where Linux names them. */
#define F(n, f, i, r, b) { n, f, i, r, b }
static const struct feature features[] = {
	F("fpu", 1, 0, EDX, 0), F("vme", 1, 0, EDX, 1), F("de", 1, 0, EDX, 2),
	F("pse", 1, 0, EDX, 3), F("tsc", 1, 0, EDX, 4), F("msr", 1, 0, EDX, 5),
	F("pae", 1, 0, EDX, 6), F("mce", 1, 0, EDX, 7), F("cx8", 1, 0, EDX, 8),
	F("apic", 1, 0, EDX, 9), F("sep", 1, 0, EDX, 11), F("mtrr", 1, 0, EDX, 12),
	F("pge", 1, 0, EDX, 13), F("mca", 1, 0, EDX, 14), F("cmov", 1, 0, EDX, 15),
	F("pat", 1, 0, EDX, 16), F("pse36", 1, 0, EDX, 17), F("pn", 1, 0, EDX, 18),
	F("clflush", 1, 0, EDX, 19), F("dts", 1, 0, EDX, 21), F("acpi", 1, 0, EDX, 22),
	F("mmx", 1, 0, EDX, 23), F("fxsr", 1, 0, EDX, 24), F("sse", 1, 0, EDX, 25),
	F("sse2", 1, 0, EDX, 26), F("ss", 1, 0, EDX, 27), F("ht", 1, 0, EDX, 28),
	F("tm", 1, 0, EDX, 29), F("ia64", 1, 0, EDX, 30), F("pbe", 1, 0, EDX, 31),

	F("pni", 1, 0, ECX, 0), F("pclmulqdq", 1, 0, ECX, 1), F("dtes64", 1, 0, ECX, 2),
	F("monitor", 1, 0, ECX, 3), F("ds_cpl", 1, 0, ECX, 4), F("vmx", 1, 0, ECX, 5),
	F("smx", 1, 0, ECX, 6), F("est", 1, 0, ECX, 7), F("tm2", 1, 0, ECX, 8),
	F("ssse3", 1, 0, ECX, 9), F("cid", 1, 0, ECX, 10), F("sdbg", 1, 0, ECX, 11),
	F("fma", 1, 0, ECX, 12), F("cx16", 1, 0, ECX, 13), F("xtpr", 1, 0, ECX, 14),
	F("pdcm", 1, 0, ECX, 15), F("pcid", 1, 0, ECX, 17), F("dca", 1, 0, ECX, 18),
	F("sse4_1", 1, 0, ECX, 19), F("sse4_2", 1, 0, ECX, 20), F("x2apic", 1, 0, ECX, 21),
	F("movbe", 1, 0, ECX, 22), F("popcnt", 1, 0, ECX, 23),
	F("tsc_deadline_timer", 1, 0, ECX, 24), F("aes", 1, 0, ECX, 25),
	F("xsave", 1, 0, ECX, 26), F("osxsave", 1, 0, ECX, 27), F("avx", 1, 0, ECX, 28),
	F("f16c", 1, 0, ECX, 29), F("rdrand", 1, 0, ECX, 30), F("hypervisor", 1, 0, ECX, 31),

	F("fsgsbase", 7, 0, EBX, 0), F("tsc_adjust", 7, 0, EBX, 1), F("sgx", 7, 0, EBX, 2),
	F("bmi1", 7, 0, EBX, 3), F("hle", 7, 0, EBX, 4), F("avx2", 7, 0, EBX, 5),
	F("fdp_excptn_only", 7, 0, EBX, 6), F("smep", 7, 0, EBX, 7), F("bmi2", 7, 0, EBX, 8),
	F("erms", 7, 0, EBX, 9), F("invpcid", 7, 0, EBX, 10), F("rtm", 7, 0, EBX, 11),
	F("cqm", 7, 0, EBX, 12), F("zero_fcs_fds", 7, 0, EBX, 13), F("mpx", 7, 0, EBX, 14),
	F("rdt_a", 7, 0, EBX, 15), F("avx512f", 7, 0, EBX, 16), F("avx512dq", 7, 0, EBX, 17),
	F("rdseed", 7, 0, EBX, 18), F("adx", 7, 0, EBX, 19), F("smap", 7, 0, EBX, 20),
	F("avx512ifma", 7, 0, EBX, 21), F("clflushopt", 7, 0, EBX, 23),
	F("clwb", 7, 0, EBX, 24), F("intel_pt", 7, 0, EBX, 25), F("avx512pf", 7, 0, EBX, 26),
	F("avx512er", 7, 0, EBX, 27), F("avx512cd", 7, 0, EBX, 28),
	F("sha_ni", 7, 0, EBX, 29), F("avx512bw", 7, 0, EBX, 30),
	F("avx512vl", 7, 0, EBX, 31),

	F("avx512vbmi", 7, 0, ECX, 1), F("umip", 7, 0, ECX, 2), F("pku", 7, 0, ECX, 3),
	F("ospke", 7, 0, ECX, 4), F("waitpkg", 7, 0, ECX, 5),
	F("avx512_vbmi2", 7, 0, ECX, 6), F("shstk", 7, 0, ECX, 7), F("gfni", 7, 0, ECX, 8),
	F("vaes", 7, 0, ECX, 9), F("vpclmulqdq", 7, 0, ECX, 10),
	F("avx512_vnni", 7, 0, ECX, 11), F("avx512_bitalg", 7, 0, ECX, 12),
	F("tme", 7, 0, ECX, 13), F("avx512_vpopcntdq", 7, 0, ECX, 14),
	F("la57", 7, 0, ECX, 16), F("rdpid", 7, 0, ECX, 22),
	F("bus_lock_detect", 7, 0, ECX, 24), F("cldemote", 7, 0, ECX, 25),
	F("movdiri", 7, 0, ECX, 27), F("movdir64b", 7, 0, ECX, 28),
	F("enqcmd", 7, 0, ECX, 29), F("sgx_lc", 7, 0, ECX, 30),

	F("avx512_4vnniw", 7, 0, EDX, 2), F("avx512_4fmaps", 7, 0, EDX, 3),
	F("fsrm", 7, 0, EDX, 4), F("avx512_vp2intersect", 7, 0, EDX, 8),
	F("md_clear", 7, 0, EDX, 10), F("serialize", 7, 0, EDX, 14),
	F("hybrid_cpu", 7, 0, EDX, 15), F("tsxldtrk", 7, 0, EDX, 16),
	F("pconfig", 7, 0, EDX, 18), F("arch_lbr", 7, 0, EDX, 19), F("ibt", 7, 0, EDX, 20),
	F("amx_bf16", 7, 0, EDX, 22), F("avx512_fp16", 7, 0, EDX, 23),
	F("amx_tile", 7, 0, EDX, 24), F("amx_int8", 7, 0, EDX, 25),
	F("spec_ctrl", 7, 0, EDX, 26), F("intel_stibp", 7, 0, EDX, 27),
	F("flush_l1d", 7, 0, EDX, 28), F("arch_capabilities", 7, 0, EDX, 29),
	F("core_capabilities", 7, 0, EDX, 30), F("spec_ctrl_ssbd", 7, 0, EDX, 31),

	F("avx_vnni", 7, 1, EAX, 4), F("avx512_bf16", 7, 1, EAX, 5),
	F("fzrm", 7, 1, EAX, 10), F("fsrs", 7, 1, EAX, 11), F("fsrc", 7, 1, EAX, 12),

	F("xsaveopt", 0xd, 1, EAX, 0), F("xsavec", 0xd, 1, EAX, 1),
	F("xgetbv1", 0xd, 1, EAX, 2), F("xsaves", 0xd, 1, EAX, 3),

	F("lahf_lm", 0x80000001, 0, ECX, 0), F("cmp_legacy", 0x80000001, 0, ECX, 1),
	F("svm", 0x80000001, 0, ECX, 2), F("extapic", 0x80000001, 0, ECX, 3),
	F("cr8_legacy", 0x80000001, 0, ECX, 4), F("abm", 0x80000001, 0, ECX, 5),
	F("sse4a", 0x80000001, 0, ECX, 6), F("misalignsse", 0x80000001, 0, ECX, 7),
	F("3dnowprefetch", 0x80000001, 0, ECX, 8), F("osvw", 0x80000001, 0, ECX, 9),
	F("ibs", 0x80000001, 0, ECX, 10), F("xop", 0x80000001, 0, ECX, 11),
	F("skinit", 0x80000001, 0, ECX, 12), F("wdt", 0x80000001, 0, ECX, 13),
	F("lwp", 0x80000001, 0, ECX, 15), F("fma4", 0x80000001, 0, ECX, 16),
	F("tce", 0x80000001, 0, ECX, 17), F("nodeid_msr", 0x80000001, 0, ECX, 19),
	F("tbm", 0x80000001, 0, ECX, 21), F("topoext", 0x80000001, 0, ECX, 22),
	F("perfctr_core", 0x80000001, 0, ECX, 23), F("perfctr_nb", 0x80000001, 0, ECX, 24),
	F("bpext", 0x80000001, 0, ECX, 26), F("perfctr_llc", 0x80000001, 0, ECX, 28),
	F("mwaitx", 0x80000001, 0, ECX, 29),

	F("syscall", 0x80000001, 0, EDX, 11), F("mp", 0x80000001, 0, EDX, 19),
	F("nx", 0x80000001, 0, EDX, 20), F("mmxext", 0x80000001, 0, EDX, 22),
	F("fxsr_opt", 0x80000001, 0, EDX, 25), F("pdpe1gb", 0x80000001, 0, EDX, 26),
	F("rdtscp", 0x80000001, 0, EDX, 27), F("lm", 0x80000001, 0, EDX, 29),
	F("3dnowext", 0x80000001, 0, EDX, 30), F("3dnow", 0x80000001, 0, EDX, 31),

	/* KVM paravirtual features (leaf 0x40000001 EAX) */
	F("kvmclock", 0x40000001, 0, EAX, 0), F("kvm_nopiodelay", 0x40000001, 0, EAX, 1),
	F("kvmclock2", 0x40000001, 0, EAX, 3), F("kvm_async_pf", 0x40000001, 0, EAX, 4),
	F("kvm_steal_time", 0x40000001, 0, EAX, 5), F("kvm_pv_eoi", 0x40000001, 0, EAX, 6),
	F("kvm_pv_unhalt", 0x40000001, 0, EAX, 7),
	F("kvm_pv_tlb_flush", 0x40000001, 0, EAX, 9),
	F("kvm_async_pf_vmexit", 0x40000001, 0, EAX, 10),
	F("kvm_pv_send_ipi", 0x40000001, 0, EAX, 11),
	F("kvm_poll_control", 0x40000001, 0, EAX, 12),
	F("kvm_pv_sched_yield", 0x40000001, 0, EAX, 13),
	F("kvm_async_pf_int", 0x40000001, 0, EAX, 14),
	F("kvm_msi_ext_dest_id", 0x40000001, 0, EAX, 15),
	F("kvm_hc_map_gpa_range", 0x40000001, 0, EAX, 16),
	F("kvm_migration_control", 0x40000001, 0, EAX, 17),
	F("kvmclock_stable", 0x40000001, 0, EAX, 24),
};
#undef F
#define NR_FEATURES (sizeof(features) / sizeof(features[0]))
_Static_assert(NR_FEATURES <= 64 * CPUID_FEATURE_WORDS, "grow CPUID_FEATURE_WORDS");

/*
 * Never offered, whatever the set: they need an in-kernel LAPIC (gvm's is in
 * user space so that it sees every IPI), would let a guest reach host state
 * we do not virtualise (nested virtualisation, the PMU's LVT interrupt), or
 * are the OS's own bits that KVM derives from CR4.
 */
static const struct {
	const char *name, *why;
	bool fixed; /* set by gvm itself: neither + nor - */
} forbidden[] = {
	{ "tsc_deadline_timer", "needs KVM's in-kernel LAPIC timer", false },
	{ "kvm_pv_eoi", "needs KVM's in-kernel LAPIC", false },
	{ "kvm_pv_unhalt", "needs KVM's in-kernel LAPIC", false },
	{ "kvm_pv_send_ipi", "sends IPIs inside KVM, invisible to the other instances", false },
	{ "kvm_pv_sched_yield", "looks vCPUs up in KVM's in-kernel APIC map", false },
	{ "kvm_pv_tlb_flush", "skips IPIs to preempted vCPUs that another instance runs", false },
	{ "kvm_async_pf", "delivers page-ready events through the in-kernel LAPIC", false },
	{ "kvm_async_pf_vmexit", "delivers page-ready events through the in-kernel LAPIC", false },
	{ "kvm_async_pf_int", "delivers page-ready events through the in-kernel LAPIC", false },
	{ "kvm_msi_ext_dest_id", "is set by gvm with x2APIC", true },
	{ "kvm_steal_time", "makes KVM write per-vCPU pages of the DSM's guest RAM", false },
	{ "kvm_poll_control", "is not implemented by gvm", false },
	{ "kvm_hc_map_gpa_range", "is not implemented by gvm", false },
	{ "kvm_migration_control", "is not implemented by gvm", false },
	{ "pdcm", "advertises the PMU, whose interrupt needs the in-kernel LAPIC", false },
	{ "vmx", "nested virtualisation is not offered", false },
	{ "svm", "nested virtualisation is not offered", false },
	{ "monitor", "MWAIT would idle a vCPU without the VMM seeing it", false },
	{ "mwaitx", "MWAIT would idle a vCPU without the VMM seeing it", false },
	{ "osxsave", "is set by KVM from the guest's CR4", true },
	{ "ospke", "is set by KVM from the guest's CR4", true },
	{ "ht", "is set from the topology", true },
	{ "cmp_legacy", "is set from the topology", true },
	{ "hypervisor", "is always set", true },
};

/* Baseline x86-64 (x86-64-v1), plus kvmclock: what the conservative set starts from. */
static const char *const conservative[] = {
	"fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr",
	"pge", "mca", "cmov", "pat", "pse36", "clflush", "mmx", "fxsr", "sse", "sse2",
	"syscall", "nx", "lm",
	"kvmclock", "kvmclock2", "kvmclock_stable", "kvm_nopiodelay",
};

/* A feature is only offered with what it needs (Linux's cpuid-deps, in part). */
static const char *const deps[][2] = {
	{ "sse", "fxsr" }, { "sse2", "sse" }, { "pni", "sse2" }, { "ssse3", "pni" },
	{ "sse4_1", "ssse3" }, { "sse4_2", "sse4_1" }, { "aes", "sse2" },
	{ "pclmulqdq", "sse2" }, { "sha_ni", "sse2" }, { "gfni", "sse2" },
	{ "xsaveopt", "xsave" }, { "xsavec", "xsave" }, { "xgetbv1", "xsave" },
	{ "xsaves", "xsave" }, { "avx", "xsave" }, { "mpx", "xsave" }, { "pku", "xsave" },
	{ "fma", "avx" }, { "f16c", "avx" }, { "avx2", "avx" }, { "vaes", "avx" },
	{ "vpclmulqdq", "avx" }, { "avx_vnni", "avx2" }, { "avx512f", "avx2" },
	{ "avx512dq", "avx512f" }, { "avx512ifma", "avx512f" }, { "avx512pf", "avx512f" },
	{ "avx512er", "avx512f" }, { "avx512cd", "avx512f" }, { "avx512bw", "avx512f" },
	{ "avx512vl", "avx512f" }, { "avx512vbmi", "avx512f" }, { "avx512_vbmi2", "avx512f" },
	{ "avx512_vnni", "avx512f" }, { "avx512_bitalg", "avx512f" },
	{ "avx512_vpopcntdq", "avx512f" }, { "avx512_4vnniw", "avx512f" },
	{ "avx512_4fmaps", "avx512f" }, { "avx512_vp2intersect", "avx512f" },
	{ "avx512_fp16", "avx512bw" }, { "avx512_bf16", "avx512bw" },
	{ "amx_tile", "xsave" }, { "amx_bf16", "amx_tile" }, { "amx_int8", "amx_tile" },
	{ "kvmclock_stable", "kvmclock2" },
};

static int feature_index(const char *name)
{
	for (unsigned i = 0; i < NR_FEATURES; i++)
		if (!strcmp(features[i].name, name))
			return (int)i;
	return -1;
}

static bool bit_get(const uint64_t *set, unsigned i)
{
	return set[i / 64] >> (i % 64) & 1;
}

static void bit_put(uint64_t *set, unsigned i, bool v)
{
	if (v)
		set[i / 64] |= 1ull << (i % 64);
	else
		set[i / 64] &= ~(1ull << (i % 64));
}

/*
 * Offered only when asked for with +name, whatever the set.  x2APIC: its
 * MSRs exit to gvm one by one (a filter), which a guest that never uses
 * them is better off without.
 */
static const char *const opt_in[] = { "x2apic" };

static bool is_opt_in(const char *name)
{
	for (size_t i = 0; i < sizeof(opt_in) / sizeof(opt_in[0]); i++)
		if (!strcmp(opt_in[i], name))
			return true;
	return false;
}

bool cpuid_features_x2apic(const struct cpuid_features *f)
{
	int i = feature_index("x2apic");

	return i >= 0 && bit_get(f->add, (unsigned)i);
}

static const char *forbidden_reason(const char *name, bool *fixed)
{
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		if (!strcmp(forbidden[i].name, name)) {
			if (fixed)
				*fixed = forbidden[i].fixed;
			return forbidden[i].why;
		}
	}
	return NULL;
}

static void list_names(char *err, const char *prefix)
{
	size_t n = strlen(err);

	n += (size_t)snprintf(err + n, CPUID_ERR_MAX - n, "%s", prefix);
	for (unsigned i = 0; i < NR_FEATURES && n < CPUID_ERR_MAX; i++) {
		bool fixed = false;

		if (forbidden_reason(features[i].name, &fixed) && fixed)
			continue;
		n += (size_t)snprintf(err + n, CPUID_ERR_MAX - n, " %s", features[i].name);
	}
}

int cpuid_features_parse(const char *spec, struct cpuid_features *f, char *err)
{
	char buf[1024], *tok, *save = NULL;
	bool first = true;

	memset(f, 0, sizeof(*f));
	f->base = CPUID_BASE_AUTO;
	if (!spec || !*spec)
		return 0;
	if (strlen(spec) >= sizeof(buf))
		return ERR("--cpu-features value is too long");
	strcpy(buf, spec);
	for (char *p = buf;; p = NULL, first = false) {
		int i;

		tok = strtok_r(p, ",", &save);
		if (!tok)
			break;
		if (first && tok[0] != '+' && tok[0] != '-') {
			if (!strcmp(tok, "host"))
				f->base = CPUID_BASE_HOST;
			else if (!strcmp(tok, "conservative"))
				f->base = CPUID_BASE_CONSERVATIVE;
			else if (!strcmp(tok, "auto"))
				f->base = CPUID_BASE_AUTO;
			else
				return ERR("unknown CPU feature set '%s' in --cpu-features '%s': "
					   "the sets are auto, host and conservative, followed by "
					   "+feature or -feature modifiers", tok, spec);
			continue;
		}
		if (tok[0] != '+' && tok[0] != '-')
			return ERR("'%s' in --cpu-features '%s' needs a + or - (e.g. +%s): "
				   "only the first item names a set", tok, spec, tok);
		i = feature_index(tok + 1);
		if (i < 0) {
			SETERR("unknown CPU feature '%s' in --cpu-features '%s'; valid names:",
			       tok + 1, spec);
			list_names(err, "");
			return -1;
		}
		bool fixed = false;
		const char *why = forbidden_reason(tok + 1, &fixed);

		if (why && (tok[0] == '+' || fixed))
			return ERR("CPU feature '%s' cannot be %s: it %s", tok + 1,
				   tok[0] == '+' ? "enabled" : "disabled", why);
		bit_put(f->add, (unsigned)i, tok[0] == '+');
		bit_put(f->remove, (unsigned)i, tok[0] == '-');
	}
	if (strstr(spec, ",,") || spec[strlen(spec) - 1] == ',' || spec[0] == ',')
		return ERR("empty item in --cpu-features '%s'", spec);
	return 0;
}

void cpuid_features_resolve(struct cpuid_features *f, bool kernel_emulated, bool need_x2apic)
{
	int x = feature_index("x2apic");

	if (f->base == CPUID_BASE_AUTO)
		f->base = kernel_emulated ? CPUID_BASE_CONSERVATIVE : CPUID_BASE_HOST;
	if (need_x2apic && x >= 0 && !bit_get(f->remove, (unsigned)x))
		bit_put(f->add, (unsigned)x, true);
}

const char *cpuid_features_format(const struct cpuid_features *f, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "%s", f->base == CPUID_BASE_HOST ? "host" :
				    f->base == CPUID_BASE_CONSERVATIVE ? "conservative" : "auto");

	for (unsigned i = 0; i < NR_FEATURES && n < len; i++) {
		if (bit_get(f->add, i))
			n += (size_t)snprintf(buf + n, len - n, ",+%s", features[i].name);
		else if (bit_get(f->remove, i))
			n += (size_t)snprintf(buf + n, len - n, ",-%s", features[i].name);
	}
	return buf;
}

int cpuid_features_check(const struct cpuid_features *f, char *err)
{
	if (f->base != CPUID_BASE_HOST && f->base != CPUID_BASE_CONSERVATIVE)
		return ERR("feature set %d is neither host nor conservative", f->base);
	for (unsigned w = 0; w < CPUID_FEATURE_WORDS; w++)
		for (unsigned b = 0; b < 64; b++) {
			unsigned i = w * 64 + b;

			if (i < NR_FEATURES)
				continue;
			if ((f->add[w] | f->remove[w]) & (1ull << b))
				return ERR("feature number %u does not exist", i);
		}
	return 0;
}

struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd, char *err)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c) {
			SETERR("out of memory");
			return NULL;
		}
		c->nent = n;
		if (!ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c))
			return c;
		free(c);
		if (errno != E2BIG) {
			SETERR("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
			return NULL;
		}
	}
	SETERR("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
	return NULL;
}

const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *c, uint32_t function,
					  uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == function &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

static uint32_t *reg(struct kvm_cpuid_entry2 *e, unsigned r)
{
	return r == EAX ? &e->eax : r == EBX ? &e->ebx : r == ECX ? &e->ecx : &e->edx;
}

/* The table being built: a copy of KVM's list with room for generated subleaves. */
struct builder {
	struct kvm_cpuid2 *c;
	unsigned cap;
};

static struct kvm_cpuid_entry2 *entry(struct builder *b, uint32_t fn, uint32_t idx)
{
	return (struct kvm_cpuid_entry2 *)cpuid_find(b->c, fn, idx);
}

static void drop_leaf(struct builder *b, uint32_t fn)
{
	uint32_t j = 0;

	for (uint32_t i = 0; i < b->c->nent; i++)
		if (b->c->entries[i].function != fn)
			b->c->entries[j++] = b->c->entries[i];
	b->c->nent = j;
}

static struct kvm_cpuid_entry2 *add(struct builder *b, uint32_t fn, uint32_t idx, bool indexed)
{
	struct kvm_cpuid_entry2 *e;

	if (b->c->nent >= b->cap)
		return NULL;
	e = &b->c->entries[b->c->nent++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	return e;
}

static bool supported(const struct kvm_cpuid2 *s, unsigned i)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(s, features[i].fn, features[i].idx);

	return e && (*reg((struct kvm_cpuid_entry2 *)e, features[i].reg) >> features[i].bit & 1);
}

/*
 * Decide the feature bits: the set's base, +/- modifiers, minus what is
 * forbidden, minus whatever lacks what it depends on.  Errors for asked-for
 * features that KVM lacks or whose dependencies are missing.
 */
static int choose_features(const struct kvm_cpuid2 *s, const struct cpuid_features *f,
			   uint64_t *on, char *err)
{
	bool changed = true;

	memset(on, 0, sizeof(uint64_t) * CPUID_FEATURE_WORDS);
	for (unsigned i = 0; i < NR_FEATURES; i++) {
		bool v = false;

		if (f->base == CPUID_BASE_HOST && !is_opt_in(features[i].name))
			v = supported(s, i);
		if (bit_get(f->add, i)) {
			if (!supported(s, i))
				return ERR("CPU feature '%s' is not supported by KVM on this host "
					   "(KVM can offer a guest less than /proc/cpuinfo "
					   "lists; leave it out)", features[i].name);
			v = true;
		}
		if (bit_get(f->remove, i) || forbidden_reason(features[i].name, NULL))
			v = false;
		bit_put(on, i, v);
	}
	if (f->base == CPUID_BASE_CONSERVATIVE) {
		for (size_t i = 0; i < sizeof(conservative) / sizeof(conservative[0]); i++) {
			int x = feature_index(conservative[i]);

			if (x >= 0 && supported(s, (unsigned)x) && !bit_get(f->remove, (unsigned)x))
				bit_put(on, (unsigned)x, true);
		}
	}
	while (changed) {
		changed = false;
		for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
			int a = feature_index(deps[i][0]), b = feature_index(deps[i][1]);

			if (a < 0 || b < 0 || !bit_get(on, (unsigned)a) || bit_get(on, (unsigned)b))
				continue;
			if (bit_get(f->add, (unsigned)a))
				return ERR("CPU feature '%s' needs '%s', which this feature set "
					   "does not have: add +%s too", deps[i][0], deps[i][1],
					   deps[i][1]);
			bit_put(on, (unsigned)a, false);
			changed = true;
		}
	}
	return 0;
}

static bool is_on(const uint64_t *on, const char *name)
{
	int i = feature_index(name);

	return i >= 0 && bit_get(on, (unsigned)i);
}

static void set_vendor(struct kvm_cpuid_entry2 *e, const char *v)
{
	memcpy(&e->ebx, v, 4);
	memcpy(&e->edx, v + 4, 4);
	memcpy(&e->ecx, v + 8, 4);
}

/* CPUID's cache descriptor fields (leaf 4 and 0x8000001D share them). */
static void cache_leaf(struct kvm_cpuid_entry2 *e, const struct topo_cache *c, uint32_t sharing)
{
	uint64_t sets = c->size / ((uint64_t)c->ways * c->line_size);

	e->eax = (uint32_t)c->type | c->level << 5 | 1u << 8 | (sharing - 1) << 14;
	e->ebx = (c->line_size - 1) | 0u << 12 | (c->ways - 1) << 22;
	e->ecx = (uint32_t)(sets - 1);
	e->edx = 0;
}

/* AMD's 4-bit associativity code (0x80000006) for a number of ways. */
static uint32_t amd_assoc(unsigned ways)
{
	static const struct { unsigned ways, code; } t[] = {
		{ 128, 0xe }, { 96, 0xd }, { 64, 0xc }, { 48, 0xb }, { 32, 0xa }, { 16, 0x8 },
		{ 8, 0x6 }, { 6, 0x5 }, { 4, 0x4 }, { 3, 0x3 }, { 2, 0x2 }, { 1, 0x1 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (ways >= t[i].ways)
			return t[i].code;
	return 0;
}

/* 0x80000005's L1 format: KiB, ways (0xff: fully associative), lines per tag, line size. */
static uint32_t amd_l1(const struct topo_cache *c)
{
	return (uint32_t)(c->size >> 10) << 24 | (c->ways > 254 ? 255u : c->ways) << 16 |
	       1u << 8 | c->line_size;
}

static const struct topo_cache *find_cache(const struct vm_topology *t, unsigned level,
					   enum topo_cache_type type)
{
	for (unsigned i = 0; i < t->nr_caches; i++)
		if (t->caches[i].level == level && t->caches[i].type == type)
			return &t->caches[i];
	return NULL;
}

static uint32_t pow2_ceil(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *s, const struct vm_topology *t,
			       const struct cpuid_features *f, unsigned cpu, char *err)
{
	struct builder b;
	struct kvm_cpuid_entry2 *e, *e0;
	uint64_t on[CPUID_FEATURE_WORDS];
	const struct topo_cpu *vc;
	uint32_t apic, thread_bits, core_bits, per_pkg, max_basic, max_ext;
	bool amd;
	char vendor[13] = "";

	if (f->base == CPUID_BASE_AUTO) {
		SETERR("internal error: CPU feature set not resolved");
		return NULL;
	}
	if (cpu >= t->nr_cpus) {
		SETERR("vCPU %u does not exist (%u vCPUs)", cpu, t->nr_cpus);
		return NULL;
	}
	if (choose_features(s, f, on, err))
		return NULL;
	vc = &t->cpus[cpu];
	apic = vc->apic_id;
	thread_bits = topo_thread_bits(t);
	core_bits = topo_core_bits(t);
	per_pkg = t->cores_per_package * t->threads_per_core;

	b.cap = s->nent + 64;
	b.c = calloc(1, sizeof(*b.c) + b.cap * sizeof(b.c->entries[0]));
	if (!b.c) {
		SETERR("out of memory");
		return NULL;
	}
	b.c->nent = s->nent < b.cap ? s->nent : b.cap;
	memcpy(b.c->entries, s->entries, b.c->nent * sizeof(s->entries[0]));

	e0 = entry(&b, 0, 0);
	if (!e0 || !entry(&b, 1, 0)) {
		SETERR("KVM_GET_SUPPORTED_CPUID has no leaf 0 or 1");
		goto fail;
	}
	memcpy(vendor, &e0->ebx, 4);
	memcpy(vendor + 4, &e0->edx, 4);
	memcpy(vendor + 8, &e0->ecx, 4);
	/*
	 * The conservative set presents an Intel CPU: Linux then skips AMD
	 * code paths (the FXSAVE-leak workaround among them) that the
	 * emulators it exists for cannot run.  Its family is Intel's family 6
	 * (model 0x0F, the first 64-bit Core): Linux trusts REP MOVS/STOS
	 * (REP_GOOD) only there, and where kernel code is emulated its copy
	 * and clear loops cost several times more per byte without them.
	 */
	if (f->base == CPUID_BASE_CONSERVATIVE && strcmp(vendor, "GenuineIntel")) {
		set_vendor(e0, "GenuineIntel");
		strcpy(vendor, "GenuineIntel");
		e = entry(&b, 1, 0);
		e->eax = (e->eax & 0xF) | 6u << 8 | 0xFu << 4;
	}
	amd = !strcmp(vendor, "AuthenticAMD") || !strcmp(vendor, "HygonGenuine");
	max_basic = e0->eax;
	e = entry(&b, 0x80000000, 0);
	max_ext = e ? e->eax : 0;

	/* The feature registers: every named bit as chosen; unnamed bits only for host. */
	for (unsigned i = 0; i < NR_FEATURES; i++) {
		e = entry(&b, features[i].fn, features[i].idx);
		if (e)
			*reg(e, features[i].reg) &= ~(1u << features[i].bit);
	}
	if (f->base == CPUID_BASE_CONSERVATIVE) {
		static const struct { uint32_t fn, idx; uint8_t r; } regs[] = {
			{ 1, 0, ECX }, { 1, 0, EDX }, { 7, 0, EBX }, { 7, 0, ECX }, { 7, 0, EDX },
			{ 7, 1, EAX }, { 0xd, 1, EAX }, { 0x80000001, 0, ECX },
			{ 0x80000001, 0, EDX }, { 0x40000001, 0, EAX },
		};

		for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
			e = entry(&b, regs[i].fn, regs[i].idx);
			if (e)
				*reg(e, regs[i].r) = 0;
		}
	}
	for (unsigned i = 0; i < NR_FEATURES; i++) {
		e = entry(&b, features[i].fn, features[i].idx);
		if (e && bit_get(on, i))
			*reg(e, features[i].reg) |= 1u << features[i].bit;
	}

	if (t->x2apic && !is_on(on, "x2apic")) {
		SETERR("APIC IDs above %u need x2APIC, which the CPU features remove (-x2apic)",
		       TOPO_MAX_XAPIC_ID);
		goto fail;
	}
	/*
	 * With x2APIC, the IOAPIC's destinations reach 15-bit APIC IDs the
	 * way Linux knows from KVM (the extended destination ID).
	 */
	if (is_on(on, "x2apic") && (e = entry(&b, 0x40000001, 0)) != NULL)
		e->eax |= 1u << 15;

	/* Leaf 1: APIC ID, logical processors per package, HTT, hypervisor. */
	e = entry(&b, 1, 0);
	e->ebx = (e->ebx & 0xffff) | (pow2_ceil(per_pkg) > 255 ? 255 : pow2_ceil(per_pkg)) << 16 |
		 apic << 24;
	e->edx = (e->edx & ~(1u << 28)) | (per_pkg > 1 ? 1u << 28 : 0);
	e->ecx |= 1u << 31;

	/* Leaf 2: "no descriptors, use leaf 4" (Intel); AMD has no leaf 2. */
	if ((e = entry(&b, 2, 0))) {
		memset(&e->eax, 0, 16);
		if (!amd)
			e->eax = 0x00ff01;
	}

	/* Leaf 4 (Intel): one subleaf per cache, then the null subleaf. */
	drop_leaf(&b, 4);
	if (!amd && max_basic >= 4) {
		unsigned n = 0;

		for (unsigned i = 0; i < t->nr_caches; i++) {
			const struct topo_cache *c = &t->caches[i];
			uint32_t sharing = c->shared_by <= t->threads_per_core ?
					   1u << thread_bits : 1u << (thread_bits + core_bits);

			if (!(e = add(&b, 4, n++, true)))
				goto full;
			cache_leaf(e, c, sharing);
			/* 6 bits: a package of more than 64 cores saturates, as on real parts. */
			e->eax |= ((1u << core_bits) - 1 > 63 ? 63 : (1u << core_bits) - 1) << 26;
		}
		if (!add(&b, 4, n, true))
			goto full;
	}

	/* Leaf 0xA: no architectural PMU (its interrupt would need the in-kernel LAPIC). */
	if ((e = entry(&b, 0xa, 0)))
		memset(&e->eax, 0, 16);

	/* Leaf 0xB, and 0x1F when KVM offers it: SMT and core levels, x2APIC ID in EDX. */
	for (unsigned l = 0; l < 2; l++) {
		uint32_t leaf = l ? 0x1f : 0xb;
		bool offered = entry(&b, leaf, 0) != NULL;

		drop_leaf(&b, leaf);
		if (max_basic < leaf || (leaf == 0x1f && !offered))
			continue;
		for (uint32_t sub = 0; sub < 3; sub++) {
			if (!(e = add(&b, leaf, sub, true)))
				goto full;
			e->edx = apic;
			e->ecx = sub;
			if (sub == 0) {
				e->eax = thread_bits;
				e->ebx = t->threads_per_core;
				e->ecx |= 1u << 8;
			} else if (sub == 1) {
				e->eax = thread_bits + core_bits;
				e->ebx = per_pkg;
				e->ecx |= 2u << 8;
			}
		}
	}

	/* Leaf 0xD: nothing without XSAVE; otherwise only the state of offered features. */
	if (!is_on(on, "xsave")) {
		for (uint32_t i = 0; i < b.c->nent; i++)
			if (b.c->entries[i].function == 0xd)
				memset(&b.c->entries[i].eax, 0, 16);
	} else if ((e = entry(&b, 0xd, 0))) {
		uint64_t drop = 0;

		if (!is_on(on, "avx"))
			drop |= 1u << 2;
		if (!is_on(on, "mpx"))
			drop |= 3u << 3;
		if (!is_on(on, "avx512f"))
			drop |= 7u << 5;
		if (!is_on(on, "pku"))
			drop |= 1u << 9;
		if (!is_on(on, "amx_tile"))
			drop |= 3ull << 17;
		e->eax &= ~(uint32_t)drop;
		e->edx &= ~(uint32_t)(drop >> 32);
		for (uint32_t i = 0; i < b.c->nent; i++) {
			struct kvm_cpuid_entry2 *x = &b.c->entries[i];

			if (x->function == 0xd && x->index >= 2 && x->index < 64 &&
			    (drop >> x->index & 1))
				memset(&x->eax, 0, 16);
		}
	}

	/* Brand string: KVM may offer none; a blank one shows as "unknown" in the guest. */
	e = entry(&b, 0x80000002, 0);
	if (e && !e->eax && !e->ebx && !e->ecx && !e->edx && max_ext >= 0x80000004) {
		static const char brand[48] = "giantvm virtual CPU";

		for (uint32_t l = 0; l < 3; l++)
			if ((e = entry(&b, 0x80000002 + l, 0)))
				memcpy(&e->eax, brand + 16 * l, 16);
	}

	/* 0x80000001: CmpLegacy for multi-core AMD packages; topoext only with its leaves. */
	if ((e = entry(&b, 0x80000001, 0))) {
		if (amd && per_pkg > 1)
			e->ecx |= 1u << 1;
		if (!amd || max_ext < 0x8000001e)
			e->ecx &= ~(1u << 22);
	}
	bool topoext = amd && (e = entry(&b, 0x80000001, 0)) && (e->ecx >> 22 & 1);

	/* 0x80000005/6: L1, L2, L3 in the legacy formats (AMD; Intel only has L2 there). */
	if ((e = entry(&b, 0x80000005, 0))) {
		const struct topo_cache *d = find_cache(t, 1, TOPO_CACHE_DATA);
		const struct topo_cache *i = find_cache(t, 1, TOPO_CACHE_INST);

		e->ecx = e->edx = 0;
		if (amd && d)
			e->ecx = amd_l1(d);
		if (amd && i)
			e->edx = amd_l1(i);
	}
	if ((e = entry(&b, 0x80000006, 0))) {
		const struct topo_cache *l2 = find_cache(t, 2, TOPO_CACHE_UNIFIED);
		const struct topo_cache *l3 = find_cache(t, 3, TOPO_CACHE_UNIFIED);

		e->ecx = e->edx = 0;
		if (l2)
			e->ecx = (uint32_t)(l2->size >> 10) << 16 | amd_assoc(l2->ways) << 12 |
				 (amd ? 1u << 8 : 0) | l2->line_size;
		if (amd && l3)
			e->edx = (uint32_t)(l3->size >> 19) << 18 | amd_assoc(l3->ways) << 12 |
				 1u << 8 | l3->line_size;
	}

	/* 0x80000008 ECX (AMD): threads per package - 1, APIC ID bits below the package. */
	if ((e = entry(&b, 0x80000008, 0)))
		e->ecx = amd ? (per_pkg - 1) | (thread_bits + core_bits) << 12 : 0;

	/* 0x8000001D/E (AMD topology extensions): caches and core/node IDs. */
	drop_leaf(&b, 0x8000001d);
	drop_leaf(&b, 0x8000001e);
	if (topoext) {
		unsigned n = 0;

		for (unsigned i = 0; i < t->nr_caches; i++) {
			const struct topo_cache *c = &t->caches[i];

			if (!(e = add(&b, 0x8000001d, n++, true)))
				goto full;
			cache_leaf(e, c, c->shared_by <= t->threads_per_core ? t->threads_per_core :
				   per_pkg);
		}
		if (!add(&b, 0x8000001d, n, true) || !(e = add(&b, 0x8000001e, 0, false)))
			goto full;
		e->eax = apic;
		e->ebx = vc->core | (t->threads_per_core - 1) << 8;
		e->ecx = vc->package; /* one node per processor */
	}
	return b.c;
full:
	SETERR("internal error: CPUID table full");
fail:
	free(b.c);
	return NULL;
}
