/*
 * vmm/x86/cpuid.c from the real KVM_GET_SUPPORTED_CPUID of this host: the
 * topology leaves agree with the APIC IDs the MADT/SRAT get, the cache
 * leaves with the topology's caches, the feature sets filter what they
 * should, KVM accepts every table (KVM_SET_CPUID2), and a guest executing
 * CPUID sees its own APIC ID.  Each vendor's paths are exercised on any
 * host by presenting the same real table with that vendor (and, for AMD,
 * the topology extensions), so the checks do not depend on this host's CPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/lib/check.h"
#include "vmm/host.h"
#include "vmm/topo.h"
#include "vmm/x86/cpuid.h"

#define GiB (1ull << 30)

static int kvm = -1;
static struct kvm_cpuid2 *sup;    /* this host's, as KVM reports it */
static struct kvm_cpuid2 *intel;  /* the same, presented as an Intel CPU */
static struct host *host;

static void topo(unsigned nodes, unsigned cpus, struct vm_topology *t)
{
	struct topo_params p = { .nr_nodes = nodes, .nr_cpus = cpus, .ram_size = nodes * GiB,
				 .host = host, .host_ram_limit = UINT64_MAX };
	char err[TOPO_ERR_MAX];

	if (topo_build(&p, t, err)) {
		fprintf(stderr, "topo_build: %s\n", err);
		exit(1);
	}
}

static struct kvm_cpuid2 *build(const struct kvm_cpuid2 *s, const struct vm_topology *t,
				const char *spec, unsigned cpu)
{
	struct cpuid_features f;
	char err[CPUID_ERR_MAX];
	struct kvm_cpuid2 *c;

	if (cpuid_features_parse(spec, &f, err)) {
		fprintf(stderr, "%s: %s\n", spec, err);
		return NULL;
	}
	c = cpuid_build(s, t, &f, cpu, err);
	if (!c)
		fprintf(stderr, "cpuid_build(%s, cpu %u): %s\n", spec, cpu, err);
	return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t i)
{
	static const struct kvm_cpuid_entry2 zero;
	const struct kvm_cpuid_entry2 *e = cpuid_find(c, fn, i);

	return e ? e : &zero;
}

static bool has(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t i, int reg, int bit)
{
	const struct kvm_cpuid_entry2 *e = leaf(c, fn, i);
	uint32_t r = reg == 0 ? e->eax : reg == 1 ? e->ebx : reg == 2 ? e->ecx : e->edx;

	return r >> bit & 1;
}

enum { A, B, C, D };

/*
 * This host's table with another vendor; for AMD also with the topology
 * extensions (max extended leaf 0x8000001f, TOPOEXT, leaves 0x8000001d/e).
 */
static struct kvm_cpuid2 *with_vendor(const char *vendor)
{
	size_t sz = sizeof(*sup) + (sup->nent + 2) * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = calloc(1, sz);
	struct kvm_cpuid_entry2 *e;

	if (!c)
		return NULL;
	memcpy(c, sup, sizeof(*sup) + sup->nent * sizeof(sup->entries[0]));
	e = (struct kvm_cpuid_entry2 *)cpuid_find(c, 0, 0);
	memcpy(&e->ebx, vendor, 4);
	memcpy(&e->edx, vendor + 4, 4);
	memcpy(&e->ecx, vendor + 8, 4);
	if (strcmp(vendor, "AuthenticAMD"))
		return c;
	e = (struct kvm_cpuid_entry2 *)cpuid_find(c, 0x80000000, 0);
	e->eax = 0x8000001f;
	e = (struct kvm_cpuid_entry2 *)cpuid_find(c, 0x80000001, 0);
	e->ecx |= 1u << 22;
	if (!cpuid_find(c, 0x8000001e, 0))
		c->entries[c->nent++] = (struct kvm_cpuid_entry2){ .function = 0x8000001e };
	if (!cpuid_find(c, 0x8000001d, 0))
		c->entries[c->nent++] = (struct kvm_cpuid_entry2){
			.function = 0x8000001d, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX };
	return c;
}

/* KVM takes the table for a real vCPU (it validates XSAVE sizes, MAXPHYADDR...). */
static int kvm_accepts(const struct kvm_cpuid2 *c)
{
	int vm = ioctl(kvm, KVM_CREATE_VM, 0), vcpu, r;

	if (vm < 0)
		return -1;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	r = vcpu < 0 ? -1 : ioctl(vcpu, KVM_SET_CPUID2, c);
	if (r)
		fprintf(stderr, "KVM_SET_CPUID2: %s\n", strerror(errno));
	if (vcpu >= 0)
		close(vcpu);
	close(vm);
	return r;
}

/* The topology leaves of every vCPU, for several shapes and both sets. */
static void test_topology_leaves(void)
{
	static const unsigned shapes[][2] = { { 1, 1 }, { 1, 2 }, { 2, 4 }, { 3, 15 }, { 4, 4 },
					      { 1, 255 }, { 2, 254 } };
	static const char *const sets[] = { "host", "conservative" };
	static struct vm_topology t;

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		topo(shapes[s][0], shapes[s][1], &t);
		unsigned per = t.cores_per_package, shift = topo_core_bits(&t);

		for (size_t k = 0; k < 2; k++) {
			for (unsigned cpu = 0; cpu < t.nr_cpus; cpu++) {
				struct kvm_cpuid2 *c = build(intel, &t, sets[k], cpu);
				unsigned apic = t.cpus[cpu].apic_id;

				CHECK(c != NULL);
				if (!c)
					return;
				/* leaf 1 */
				CHECK_EQ(leaf(c, 1, 0)->ebx >> 24, apic);
				CHECK(((leaf(c, 1, 0)->ebx >> 16) & 0xff) >=
				      (per < 255 ? per : 255));
				CHECK_EQ(has(c, 1, 0, D, 28), per > 1);
				CHECK(has(c, 1, 0, C, 31));
				CHECK(!has(c, 1, 0, C, 21));     /* x2apic */
				CHECK(!has(c, 1, 0, C, 24));     /* tsc deadline */
				/* leaf 0xB: SMT level, core level, end */
				CHECK_EQ(leaf(c, 0xb, 0)->eax, 0);
				CHECK_EQ(leaf(c, 0xb, 0)->ebx, 1);
				CHECK_EQ(leaf(c, 0xb, 0)->ecx, 0x100);
				CHECK_EQ(leaf(c, 0xb, 0)->edx, apic);
				CHECK_EQ(leaf(c, 0xb, 1)->eax, shift);
				CHECK_EQ(leaf(c, 0xb, 1)->ebx, per);
				CHECK_EQ(leaf(c, 0xb, 1)->ecx, 0x201);
				CHECK_EQ(leaf(c, 0xb, 1)->edx, apic);
				CHECK_EQ(leaf(c, 0xb, 2)->ecx, 2);
				CHECK_EQ(leaf(c, 0xb, 2)->ebx, 0);
				/* The package a guest derives is the vCPU's node. */
				CHECK_EQ(apic >> leaf(c, 0xb, 1)->eax, t.cpus[cpu].node);
				if (cpuid_find(intel, 0x1f, 0)) {
					CHECK_EQ(leaf(c, 0x1f, 1)->eax, shift);
					CHECK_EQ(leaf(c, 0x1f, 1)->edx, apic);
				}
				/* Leaf 4's core field (Intel) matches the same width. */
				CHECK_EQ((leaf(c, 4, 0)->eax >> 26) + 1,
					 shift > 6 ? 64 : 1u << shift);
				if (cpu == 0 || cpu == t.nr_cpus - 1)
					CHECK(kvm_accepts(c) == 0);
				free(c);
			}
		}
	}
}

/* Leaf 4 describes exactly the topology's caches, shared as it says. */
static void test_cache_leaves(void)
{
	static struct vm_topology t;
	struct kvm_cpuid2 *c;
	unsigned n;

	topo(2, 6, &t); /* 3 cores per package: 2 core bits */
	c = build(intel, &t, "host", 4);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK(t.nr_caches >= 2);
	for (n = 0; n < 16; n++) {
		const struct kvm_cpuid_entry2 *e = leaf(c, 4, n);

		if ((e->eax & 0x1f) == 0)
			break;
		CHECK(n < t.nr_caches);
		if (n >= t.nr_caches)
			break;
		const struct topo_cache *tc = &t.caches[n];
		uint64_t size = (uint64_t)((e->ebx >> 22) + 1) * (((e->ebx >> 12) & 0x3ff) + 1) *
				((e->ebx & 0xfff) + 1) * ((uint64_t)e->ecx + 1);
		unsigned sharing = ((e->eax >> 14) & 0xfff) + 1;

		CHECK_EQ(e->eax & 0x1f, tc->type);
		CHECK_EQ((e->eax >> 5) & 7, tc->level);
		CHECK_EQ(size, tc->size);
		CHECK_EQ((e->ebx & 0xfff) + 1, tc->line_size);
		CHECK_EQ((e->ebx >> 22) + 1, tc->ways);
		/* Linux: cache id = APIC ID >> log2(sharing) */
		CHECK_EQ(sharing, tc->level <= 2 ? 1 : 4);
	}
	CHECK_EQ(n, t.nr_caches);
	CHECK_EQ(leaf(c, 2, 0)->eax & 0xff, 1);
	CHECK_EQ((leaf(c, 2, 0)->eax >> 8) & 0xff, 0xff); /* "use leaf 4" */
	/* 0x80000006 ECX: the L2 in KiB, for guests that look there. */
	for (unsigned i = 0; i < t.nr_caches; i++)
		if (t.caches[i].level == 2 && cpuid_find(intel, 0x80000006, 0))
			CHECK_EQ(leaf(c, 0x80000006, 0)->ecx >> 16, t.caches[i].size >> 10);
	free(c);
}

static void test_feature_sets(void)
{
	static struct vm_topology t;
	struct kvm_cpuid2 *h, *k;
	char vendor[13] = "";

	topo(1, 1, &t);
	h = build(sup, &t, "host", 0);
	k = build(sup, &t, "conservative", 0);
	CHECK(h && k);
	if (!h || !k)
		goto out;
	memcpy(vendor, &leaf(k, 0, 0)->ebx, 4);
	memcpy(vendor + 4, &leaf(k, 0, 0)->edx, 4);
	memcpy(vendor + 8, &leaf(k, 0, 0)->ecx, 4);
	CHECK_STR(vendor, "GenuineIntel");
	if (!memcmp(&leaf(sup, 0, 0)->ebx, "Genu", 4)) /* an Intel host's own family and model */
		CHECK_EQ(leaf(k, 1, 0)->eax, leaf(sup, 1, 0)->eax);

	/* Conservative: x86-64-v1 only. */
	CHECK(!has(k, 1, 0, C, 0));   /* sse3 */
	CHECK(!has(k, 1, 0, C, 19));  /* sse4_1 */
	CHECK(!has(k, 1, 0, C, 20));  /* sse4_2 */
	CHECK(!has(k, 1, 0, C, 23));  /* popcnt */
	CHECK(!has(k, 1, 0, C, 26));  /* xsave */
	CHECK(!has(k, 1, 0, C, 28));  /* avx */
	CHECK_EQ(leaf(k, 7, 0)->ebx, 0); /* smep, smap, avx2... */
	CHECK_EQ(leaf(k, 7, 0)->ecx, 0);
	CHECK_EQ(leaf(k, 0xd, 0)->eax, 0);
	CHECK_EQ(leaf(k, 0xd, 1)->eax, 0);
	CHECK(has(k, 1, 0, D, 25) && has(k, 1, 0, D, 26)); /* sse, sse2 */
	CHECK(has(k, 0x80000001, 0, D, 29));                /* lm */
	CHECK_EQ(leaf(k, 0xa, 0)->eax, 0);

	/* Host: what KVM offers, minus the in-kernel-LAPIC features. */
	CHECK_EQ(leaf(h, 1, 0)->edx & ~(1u << 28), leaf(sup, 1, 0)->edx & ~(1u << 28));
	CHECK_EQ(leaf(h, 1, 0)->ecx, (leaf(sup, 1, 0)->ecx | 1u << 31) &
		 ~(1u << 21 | 1u << 24 | 1u << 15 | 1u << 5 | 1u << 3 | 1u << 27));
	CHECK_EQ(leaf(h, 7, 0)->ebx, leaf(sup, 7, 0)->ebx);
	/* KVM PV: kvmclock kept, PV EOI/IPI/unhalt/async PF gone, in both sets. */
	for (int i = 0; i < 2; i++) {
		const struct kvm_cpuid2 *c = i ? k : h;
		uint32_t pv = leaf(c, 0x40000001, 0)->eax, want = leaf(sup, 0x40000001, 0)->eax;

		CHECK_EQ(pv & (1u << 3), want & (1u << 3));
		CHECK_EQ(pv & (1u << 24), want & (1u << 24));
		CHECK_EQ(pv & (1u << 6 | 1u << 7 | 1u << 11 | 1u << 4 | 1u << 14 | 1u << 5), 0);
	}
out:
	free(h);
	free(k);
}

static void test_modifiers(void)
{
	static struct vm_topology t;
	struct cpuid_features f;
	char err[CPUID_ERR_MAX], buf[256];
	struct kvm_cpuid2 *c;
	bool kvm_sse42 = has(sup, 1, 0, C, 20), kvm_sse41 = has(sup, 1, 0, C, 19);

	topo(1, 1, &t);
	CHECK(cpuid_features_parse("host,-lm,+cx16", &f, err) == 0);
	CHECK_EQ(f.base, CPUID_BASE_HOST);
	CHECK_STR(cpuid_features_format(&f, buf, sizeof(buf)), "host,+cx16,-lm");
	c = build(sup, &t, "host,-lm", 0);
	CHECK(c && !has(c, 0x80000001, 0, D, 29));
	free(c);
	c = build(sup, &t, "conservative,+cx16", 0);
	CHECK(c && has(c, 1, 0, C, 13) == has(sup, 1, 0, C, 13));
	free(c);

	/* A feature KVM lacks cannot be asked for; a missing dependency is named. */
	CHECK(cpuid_features_parse("conservative,+sse4_2", &f, err) == 0);
	c = cpuid_build(sup, &t, &f, 0, err);
	if (!kvm_sse42) {
		CHECK(!c && strstr(err, "sse4_2") && strstr(err, "not supported"));
	} else if (!kvm_sse41) {
		CHECK(!c);
	} else {
		CHECK(!c && strstr(err, "needs"));
		c = build(sup, &t, "conservative,+pni,+ssse3,+sse4_1,+sse4_2", 0);
		CHECK(c && has(c, 1, 0, C, 20));
	}
	free(c);

	/* Without xsave, AVX and the rest go with it (silently when the set removed it). */
	c = build(sup, &t, "host,-xsave", 0);
	CHECK(c && !has(c, 1, 0, C, 28) && !has(c, 7, 0, B, 5) && !has(c, 7, 0, B, 16));
	CHECK(c && leaf(c, 0xd, 0)->eax == 0);
	free(c);

	/* Parse errors. */
	CHECK(cpuid_features_parse("host,+bogus", &f, err) == -1);
	CHECK(strstr(err, "'bogus'") && strstr(err, "sse4_2") && strstr(err, "avx512f"));
	CHECK(cpuid_features_parse("fast", &f, err) == -1);
	CHECK(strstr(err, "'fast'") && strstr(err, "conservative"));
	CHECK(cpuid_features_parse("host,avx", &f, err) == -1 && strstr(err, "+avx"));
	CHECK(cpuid_features_parse("host,+tsc_deadline_timer", &f, err) == -1 &&
	      strstr(err, "LAPIC"));
	/* x2APIC: never in a set by itself (the host set above has none), only asked for */
	CHECK(cpuid_features_parse("host,-x2apic", &f, err) == 0 && !cpuid_features_x2apic(&f));
	CHECK(cpuid_features_parse("host,+x2apic", &f, err) == 0 && cpuid_features_x2apic(&f));
	c = build(sup, &t, "conservative,+x2apic", 0);
	CHECK(c && has(c, 1, 0, C, 21));
	free(c);
	CHECK(cpuid_features_parse("host,-ht", &f, err) == -1 && strstr(err, "topology"));
	CHECK(cpuid_features_parse("host,,+lm", &f, err) == -1);
	CHECK(cpuid_features_parse("+avx", &f, err) == 0 && f.base == CPUID_BASE_AUTO);
	CHECK(cpuid_features_parse(NULL, &f, err) == 0 && f.base == CPUID_BASE_AUTO);
	cpuid_features_resolve(&f, true, false);
	CHECK_EQ(f.base, CPUID_BASE_CONSERVATIVE);
	f.base = CPUID_BASE_AUTO;
	cpuid_features_resolve(&f, false, false);
	CHECK_EQ(f.base, CPUID_BASE_HOST);
	f.base = CPUID_BASE_AUTO;
	CHECK(cpuid_build(sup, &t, &f, 0, err) == NULL && strstr(err, "resolved"));
	CHECK(cpuid_features_parse("host", &f, err) == 0);
	CHECK(cpuid_build(sup, &t, &f, 1, err) == NULL && strstr(err, "vCPU 1"));
}

/* More than 255 vCPUs: x2APIC, which resolving adds unless -x2apic removed it. */
static void test_x2apic_topology(void)
{
	static struct vm_topology t;
	struct cpuid_features f;
	char err[CPUID_ERR_MAX];
	struct kvm_cpuid2 *c;

	topo(2, 300, &t);
	CHECK(t.x2apic && t.cpus[299].apic_id == (1u << 8 | 149));
	CHECK(cpuid_features_parse("conservative", &f, err) == 0);
	cpuid_features_resolve(&f, true, t.x2apic);
	CHECK(cpuid_features_x2apic(&f));
	c = cpuid_build(sup, &t, &f, 299, err);
	CHECK(c && has(c, 1, 0, C, 21));
	CHECK(c && leaf(c, 0xb, 0)->edx == t.cpus[299].apic_id); /* the whole x2APIC ID */
	/* the IOAPIC's extended destination ID, where KVM's leaves are */
	if (cpuid_find(sup, 0x40000001, 0))
		CHECK(c && has(c, 0x40000001, 0, A, 15));
	free(c);
	CHECK(cpuid_features_parse("conservative,-x2apic", &f, err) == 0);
	cpuid_features_resolve(&f, true, t.x2apic);
	CHECK(!cpuid_features_x2apic(&f));
	c = cpuid_build(sup, &t, &f, 0, err);
	CHECK(!c && strstr(err, "x2APIC"));
	free(c);
	/* 255 vCPUs or fewer: no x2APIC unless asked, no extended destination */
	topo(1, 255, &t);
	CHECK(!t.x2apic);
	CHECK(cpuid_features_parse("conservative", &f, err) == 0);
	cpuid_features_resolve(&f, true, t.x2apic);
	c = cpuid_build(sup, &t, &f, 0, err);
	CHECK(c && !has(c, 1, 0, C, 21) && !has(c, 0x40000001, 0, A, 15));
	free(c);
}

/* The same real table, presented as an AMD host with the topology extensions. */
static void test_amd(void)
{
	static struct vm_topology t;
	struct kvm_cpuid2 *amd = with_vendor("AuthenticAMD");
	struct kvm_cpuid2 *c;

	CHECK(amd != NULL);
	if (!amd)
		return;
	topo(2, 6, &t);
	for (unsigned cpu = 0; cpu < t.nr_cpus; cpu++) {
		c = build(amd, &t, "host", cpu);
		CHECK(c != NULL);
		if (!c)
			break;
		CHECK_EQ(leaf(c, 0x8000001e, 0)->eax, t.cpus[cpu].apic_id);
		CHECK_EQ(leaf(c, 0x8000001e, 0)->ebx & 0xff, t.cpus[cpu].core);
		CHECK_EQ(leaf(c, 0x8000001e, 0)->ecx & 0xff, t.cpus[cpu].node);
		CHECK_EQ(leaf(c, 0x80000008, 0)->ecx & 0xff, 2);          /* 3 threads - 1 */
		CHECK_EQ((leaf(c, 0x80000008, 0)->ecx >> 12) & 0xf, 2);   /* ApicIdCoreIdSize */
		CHECK(has(c, 0x80000001, 0, C, 1));                        /* CmpLegacy */
		CHECK_EQ(leaf(c, 4, 0)->eax, 0);                           /* no Intel leaf 4 */
		for (unsigned n = 0; n < t.nr_caches; n++) {
			const struct kvm_cpuid_entry2 *d = leaf(c, 0x8000001d, n);
			unsigned sharing = ((d->eax >> 14) & 0xfff) + 1;

			CHECK_EQ((d->eax >> 5) & 7, t.caches[n].level);
			CHECK_EQ((uint64_t)((d->ebx >> 22) + 1) * ((d->ebx & 0xfff) + 1) *
				 ((uint64_t)d->ecx + 1), t.caches[n].size);
			CHECK_EQ(sharing, t.caches[n].level <= 2 ? 1 : 3);
		}
		CHECK_EQ(leaf(c, 0x8000001d, t.nr_caches)->eax & 0x1f, 0);
		free(c);
	}
	/*
	 * conservative on AMD: an Intel CPU of family 6 (model 0x0F, the host's
	 * stepping), where Linux uses REP MOVS/STOS; no topoext leaves.
	 */
	((struct kvm_cpuid_entry2 *)cpuid_find(amd, 1, 0))->eax = 0x00A00F12; /* family 0x19 */
	c = build(amd, &t, "conservative", 0);
	CHECK(c && !memcmp(&leaf(c, 0, 0)->ebx, "Genu", 4));
	CHECK(c && leaf(c, 1, 0)->eax == 0x6F2);
	CHECK(c && !cpuid_find(c, 0x8000001e, 0) && leaf(c, 4, 0)->eax != 0);
	free(c);
	/* host on AMD: the host's family and model */
	c = build(amd, &t, "host", 0);
	CHECK(c && leaf(c, 1, 0)->eax == 0x00A00F12);
	free(c);
	free(amd);
}

/* A guest executing CPUID sees its vCPU's APIC ID (leaves 1 and 0xB). */
static void test_guest_sees_it(void)
{
	static struct vm_topology t;
	/* mov eax,1; cpuid; mov esi,ebx; mov eax,0xb; mov ecx,1; cpuid; hlt */
	static const uint8_t code[] = { 0xb8, 1, 0, 0, 0, 0x0f, 0xa2, 0x89, 0xde, 0xb8, 0x0b, 0,
					0, 0, 0xb9, 1, 0, 0, 0, 0x0f, 0xa2, 0xf4 };
	size_t mem_size = 1 << 20, run_size = (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	topo(2, 4, &t);
	memcpy(mem + 0x1000, code, sizeof(code));
	for (unsigned cpu = 0; cpu < t.nr_cpus; cpu++) {
		int vm = ioctl(kvm, KVM_CREATE_VM, 0), vcpu;
		struct kvm_userspace_memory_region r = { .memory_size = mem_size,
							 .userspace_addr = (uintptr_t)mem };
		struct kvm_segment seg = { .limit = 0xffffffff, .present = 1, .s = 1, .db = 1,
					   .g = 1, .type = 11, .selector = 8 };
		struct kvm_regs regs = { .rip = 0x1000, .rflags = 2 };
		struct kvm_sregs sregs;
		struct kvm_cpuid2 *c = build(sup, &t, "conservative", cpu);
		struct kvm_run *run;

		CHECK(vm >= 0 && c && !ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
		ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);
		vcpu = ioctl(vm, KVM_CREATE_VCPU, cpu);
		CHECK(vcpu >= 0 && !ioctl(vcpu, KVM_SET_CPUID2, c));
		run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
		ioctl(vcpu, KVM_GET_SREGS, &sregs);
		sregs.cs = seg;
		seg.type = 3;
		seg.selector = 16;
		sregs.ds = sregs.es = sregs.ss = sregs.fs = sregs.gs = seg;
		sregs.cr0 |= 1;
		CHECK(!ioctl(vcpu, KVM_SET_SREGS, &sregs) && !ioctl(vcpu, KVM_SET_REGS, &regs));
		CHECK(!ioctl(vcpu, KVM_RUN, 0) && run->exit_reason == KVM_EXIT_HLT);
		CHECK(!ioctl(vcpu, KVM_GET_REGS, &regs));
		CHECK_EQ(regs.rsi >> 24 & 0xff, t.cpus[cpu].apic_id);
		CHECK_EQ(regs.rdx & 0xffffffff, t.cpus[cpu].apic_id);
		CHECK_EQ(regs.rax & 0x1f, 1); /* core bits of 2 cores per package */
		munmap(run, run_size);
		free(c);
		close(vcpu);
		close(vm);
	}
	munmap(mem, mem_size);
}

int main(void)
{
	char err[CPUID_ERR_MAX];

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("SKIP: cannot open /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	sup = cpuid_get_supported(kvm, err);
	host = host_open_synthetic("pack:1 l3u:1(size=33554432) core:8 l2u:1(size=1048576) "
				   "l1d:1(size=49152) l1i:1(size=32768) pu:1", err);
	if (!sup || !host) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	intel = with_vendor("GenuineIntel");
	if (!intel) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	RUN(test_topology_leaves);
	RUN(test_cache_leaves);
	RUN(test_feature_sets);
	RUN(test_modifiers);
	RUN(test_x2apic_topology);
	RUN(test_amd);
	RUN(test_guest_sees_it);
	free(intel);
	free(sup);
	host_close(host);
	close(kvm);
	return check_summary();
}
