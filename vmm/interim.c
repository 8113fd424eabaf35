/*
 * Interim stand-ins for the platform part of issue #3 (vmm/topo.c,
 * vmm/host.c, vmm/x86/acpi.c, vmm/x86/cpuid.c), removed when it lands.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/interim.h"
#include "vmm/topo.h"

#define ERR(...) (snprintf(err, TOPO_ERR_MAX, __VA_ARGS__), -1)

int topo_build(const struct topo_params *p, struct vm_topology *t, char *err)
{
	uint64_t share;

	memset(t, 0, sizeof(*t));
	if (!p->nr_nodes || p->nr_nodes > TOPO_MAX_NODES)
		return ERR("bad NUMA node count %u", p->nr_nodes);
	if (!p->nr_cpus || p->nr_cpus > TOPO_MAX_CPUS || p->nr_cpus % p->nr_nodes)
		return ERR("%u vCPUs do not divide into %u NUMA nodes", p->nr_cpus, p->nr_nodes);
	if (p->ram_size % p->nr_nodes || (p->ram_size / p->nr_nodes) % TOPO_NODE_ALIGN)
		return ERR("memory does not divide into %u nodes of a multiple of 2 MiB",
			   p->nr_nodes);
	share = p->ram_size / p->nr_nodes;
	t->nr_cpus = p->nr_cpus;
	t->nr_nodes = p->nr_nodes;
	t->threads_per_core = 1;
	t->cores_per_package = p->nr_cpus / p->nr_nodes;
	t->ram_size = p->ram_size;
	for (unsigned n = 0; n < p->nr_nodes; n++) {
		t->nodes[n].ram_offset = n * share;
		t->nodes[n].ram_size = share;
		t->nodes[n].first_cpu = n * t->cores_per_package;
		t->nodes[n].nr_cpus = t->cores_per_package;
		for (unsigned m = 0; m < p->nr_nodes; m++)
			t->distance[n][m] = n == m ? TOPO_LOCAL_DISTANCE :
				(p->remote_distance ? p->remote_distance : 20);
	}
	for (unsigned c = 0; c < p->nr_cpus; c++) {
		t->cpus[c].apic_id = c;
		t->cpus[c].node = c / t->cores_per_package;
		t->cpus[c].package = t->cpus[c].node;
		t->cpus[c].core = c % t->cores_per_package;
	}
	return 0;
}

void interim_topo_print(FILE *f, const struct vm_topology *t)
{
	fprintf(f, "vCPUs %u, NUMA nodes %u, RAM %llu MiB\n", t->nr_cpus, t->nr_nodes,
		(unsigned long long)(t->ram_size >> 20));
	for (unsigned n = 0; n < t->nr_nodes; n++)
		fprintf(f, "node %u: cpus %u-%u, %llu MiB\n", n, t->nodes[n].first_cpu,
			t->nodes[n].first_cpu + t->nodes[n].nr_cpus - 1,
			(unsigned long long)(t->nodes[n].ram_size >> 20));
}
