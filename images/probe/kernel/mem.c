/*
 * The memory plan: for each NUMA node, the RAM the SRAT gives it and the
 * e820 map calls usable, minus the boot images and the initrd; from it a
 * kernel chunk for the node's per-CPU areas (supervisor only) and the
 * largest remaining range as the node's user heap.
 */
#include "images/probe/kernel/kernel.h"

#define MAX_SEGS 64

struct seg {
	uint64_t b, e;
};

struct seglist {
	unsigned n;
	struct seg s[MAX_SEGS];
};

static void seg_add(struct seglist *l, uint64_t b, uint64_t e)
{
	if (b >= e)
		return;
	if (l->n == MAX_SEGS) {
		kerr("memory plan: more than %u ranges in one node", MAX_SEGS);
		return;
	}
	l->s[l->n++] = (struct seg){ b, e };
}

static void seg_subtract(struct seglist *l, uint64_t xb, uint64_t xe)
{
	unsigned n = l->n;

	for (unsigned i = 0; i < n; i++) {
		struct seg s = l->s[i];

		if (xe <= s.b || xb >= s.e)
			continue;
		l->s[i] = (struct seg){ s.b, s.b };
		if (s.b < xb)
			l->s[i].e = xb;
		if (xe < s.e) {
			if (l->s[i].b == l->s[i].e)
				l->s[i] = (struct seg){ xe, s.e };
			else
				seg_add(l, xe, s.e);
		}
	}
}

static uint64_t *pd_entry(uint64_t addr)
{
	uint64_t i = addr >> 21;

	return i < 2048 ? &pd_low[i] : &pd_high[i - 2048];
}

/* Map RAM above 4 GiB (the tables cover [0, 4 GiB) statically). */
static void map_high(void)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	uint64_t top = 4ull << 30, limit = (uint64_t)PROBE_MAX_PHYS_GB << 30;

	for (uint32_t i = 0; i < bi->nr_e820; i++)
		if (bi->e820[i].type == 1 && bi->e820[i].base + bi->e820[i].size > top)
			top = bi->e820[i].base + bi->e820[i].size;
	if (top > limit) {
		kerr("RAM above %u GiB is not mapped", PROBE_MAX_PHYS_GB);
		top = limit;
	}
	top = align_up(top, PROBE_PAGE);
	for (uint64_t a = 4ull << 30; a < top; a += PROBE_PAGE)
		*pd_entry(a) = a | 0xe7; /* as PG_RAM in entry.S */
	bi->mapped_top = top;
}

void mem_plan(void)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	struct acpi_topo *t = &bi->acpi;
	uint64_t images_end = align_up((uint64_t)__user_end, PROBE_PAGE);
	unsigned per_node[PROBE_ACPI_MAX_DOMAINS] = { 0 };

	map_high();
	for (uint32_t d = 0; d < t->nr_domains; d++) {
		struct seglist l = { 0 };
		unsigned ncpus = 0;

		for (uint32_t i = 0; i < t->nr_cpus; i++)
			ncpus += t->cpus[i].domain == t->domains[d];
		for (uint32_t i = 0; i < bi->nr_e820; i++) {
			const struct probe_e820 *r = &bi->e820[i];
			uint64_t rb = r->base, re = r->base + r->size;

			if (r->type != 1)
				continue;
			if (re > bi->mapped_top)
				re = bi->mapped_top;
			if (!t->srat) {
				seg_add(&l, rb, re);
				continue;
			}
			for (uint32_t m = 0; m < t->nr_mem; m++) {
				const struct acpi_mem *a = &t->mem[m];

				if (a->domain == t->domains[d])
					seg_add(&l, rb > a->base ? rb : a->base,
						re < a->base + a->len ? re : a->base + a->len);
			}
		}
		seg_subtract(&l, 0, images_end);
		if (bi->initrd_size)
			seg_subtract(&l, align_down(bi->initrd_base, PROBE_PAGE),
				     align_up(bi->initrd_base + bi->initrd_size, PROBE_PAGE));

		/* The kernel chunk: whole 2 MiB pages, so paging can hide it from user mode. */
		uint64_t need = align_up((uint64_t)ncpus * PROBE_PERCPU_SIZE, PROBE_PAGE);

		if (need) {
			uint64_t k = 0;

			for (unsigned i = 0; i < l.n && !k; i++) {
				uint64_t b = align_up(l.s[i].b, PROBE_PAGE);

				if (b + need <= l.s[i].e)
					k = b;
			}
			if (!k)
				fatal("node %u: no 2 MiB-aligned room for its per-CPU areas",
				      t->domains[d]);
			seg_subtract(&l, k, k + need);
			bi->kchunk[d] = (struct probe_range){ k, need };
			for (uint64_t a = k; a < k + need; a += PROBE_PAGE)
				*pd_entry(a) &= ~4ull;
		}

		struct seg best = { 0, 0 };

		for (unsigned i = 0; i < l.n; i++) {
			uint64_t b = align_up(l.s[i].b, 4096), e = align_down(l.s[i].e, 4096);

			if (e > b && e - b > best.e - best.b)
				best = (struct seg){ b, e };
		}
		bi->heap[d] = (struct probe_range){ best.b, best.e - best.b };
		if (best.e == best.b)
			kerr("node %u: no memory left for its user heap", t->domains[d]);
	}
	/* Flush the TLB: the kernel chunks just lost their user bit. */
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax", "memory");

	for (uint32_t i = 0; i < t->nr_cpus; i++) {
		int d = acpi_domain_index(t, t->cpus[i].domain);
		struct cpu_local *cl;

		if (d < 0)
			fatal("CPU %u has no node", i);
		cl = (struct cpu_local *)(bi->kchunk[d].base +
					  (uint64_t)per_node[d]++ * PROBE_PERCPU_SIZE);
		__builtin_memset(cl, 0, sizeof(*cl));
		cl->index = i;
		cl->apic_id = t->cpus[i].apic_id;
		cpu_by_index[i] = cl;
		if (cl->apic_id >= PROBE_APIC_ID_LIMIT)
			fatal("CPU %u: APIC ID %u is above the probe's limit of %u", i, cl->apic_id,
			      PROBE_APIC_ID_LIMIT - 1);
		ap_stack_by_apic[cl->apic_id] = (uint64_t)cl + PROBE_PERCPU_SIZE;
	}
}
