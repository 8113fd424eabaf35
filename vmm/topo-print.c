/*
 * What `gvm topo` shows: the guest topology as stable text, and as an hwloc
 * XML file built with hwloc itself (a synthetic topology with the guest's
 * shape, its caches and NUMA memory, plus the SLIT as a distance matrix),
 * so that lstopo and hwloc-info read it like any other machine.
 */
#include "vmm/topo.h"

#include <errno.h>
#include <hwloc.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

#define SETERR(...) snprintf(err, TOPO_ERR_MAX, __VA_ARGS__)
#define ERR(...) (SETERR(__VA_ARGS__), -1)

/* "0-3,8-11": a sorted list of numbers as ranges. */
static void print_list(FILE *f, const unsigned *v, unsigned n)
{
	for (unsigned i = 0; i < n;) {
		unsigned j = i;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		fprintf(f, "%s%u", i ? "," : "", v[i]);
		if (j > i)
			fprintf(f, "-%u", v[j]);
		i = j + 1;
	}
}

static const char *cache_name(const struct topo_cache *c, char *buf, size_t len)
{
	snprintf(buf, len, "L%u%s", c->level, c->type == TOPO_CACHE_DATA ? "d" :
		 c->type == TOPO_CACHE_INST ? "i" : "");
	return buf;
}

/* A package-wide cache (one per node), as opposed to one per core. */
static bool cache_per_node(const struct vm_topology *t, const struct topo_cache *c)
{
	return c->shared_by > t->threads_per_core || c->level >= 3;
}

void topo_print(const struct vm_topology *t, FILE *f)
{
	unsigned ids[TOPO_MAX_CPUS];
	char s[32], name[8];

	fprintf(f, "machine: %u vCPU%s, %u NUMA node%s, %s RAM\n", t->nr_cpus,
		t->nr_cpus == 1 ? "" : "s", t->nr_nodes, t->nr_nodes == 1 ? "" : "s",
		format_size(t->ram_size, s, sizeof(s)));
	fprintf(f, "shape: %u package%s (one per node), %u core%s per package, "
		"%u thread%s per core\n", t->nr_nodes, t->nr_nodes > 1 ? "s" : "",
		t->cores_per_package, t->cores_per_package > 1 ? "s" : "",
		t->threads_per_core, t->threads_per_core > 1 ? "s" : "");
	if (t->x2apic)
		fprintf(f, "apic: x2APIC (APIC IDs above %u; MADT and SRAT x2APIC entries)\n",
			TOPO_MAX_XAPIC_ID);
	for (unsigned n = 0; n < t->nr_nodes; n++) {
		const struct topo_node *node = &t->nodes[n];
		struct topo_range r[TOPO_NODE_RANGES_MAX];
		unsigned nr = topo_node_ranges(t, n, r);

		fprintf(f, "node %u: cpus ", n);
		for (unsigned i = 0; i < node->nr_cpus; i++)
			ids[i] = node->first_cpu + i;
		print_list(f, ids, node->nr_cpus);
		fprintf(f, ", apic-ids ");
		for (unsigned i = 0; i < node->nr_cpus; i++)
			ids[i] = t->cpus[node->first_cpu + i].apic_id;
		print_list(f, ids, node->nr_cpus);
		fprintf(f, ", memory %s\n", format_size(node->ram_size, s, sizeof(s)));
		if (t->nr_instances > 1)
			fprintf(f, "node %u: instance %u\n", n, topo_instance_of_node(t, n));
		for (unsigned i = 0; i < nr; i++)
			fprintf(f, "node %u: range 0x%" PRIx64 "-0x%" PRIx64 " (%s)\n", n, r[i].gpa,
				r[i].gpa + r[i].size - 1, format_size(r[i].size, s, sizeof(s)));
	}
	fprintf(f, "distances:\n      ");
	for (unsigned j = 0; j < t->nr_nodes; j++)
		fprintf(f, " %4u", j);
	fprintf(f, "\n");
	for (unsigned i = 0; i < t->nr_nodes; i++) {
		fprintf(f, "  %4u", i);
		for (unsigned j = 0; j < t->nr_nodes; j++)
			fprintf(f, " %4u", t->distance[i][j]);
		fprintf(f, "\n");
	}
	for (unsigned i = 0; i < t->nr_caches; i++) {
		const struct topo_cache *c = &t->caches[i];

		fprintf(f, "cache %s: %s, %u-way, %u-byte lines, ",
			cache_name(c, name, sizeof(name)), format_size(c->size, s, sizeof(s)),
			c->ways, c->line_size);
		if (cache_per_node(t, c))
			fprintf(f, "one per node, shared by its %u vCPU%s\n", c->shared_by,
				c->shared_by > 1 ? "s" : "");
		else
			fprintf(f, "one per core\n");
	}
	for (unsigned i = 0; i < t->nr_cpus; i++) {
		const struct topo_cpu *c = &t->cpus[i];

		fprintf(f, "cpu %u: apic-id %u, node %u, package %u, core %u, thread %u\n", i,
			c->apic_id, c->node, c->package, c->core, c->thread);
	}
}

/*
 * The hwloc synthetic description of the guest: packages (one per node,
 * carrying the node's memory), the package-wide caches, cores, the per-core
 * caches, PUs.  Caches are listed from the outermost level in.
 */
static int synthetic_desc(const struct vm_topology *t, char *buf, size_t len)
{
	size_t n = 0;
	int w;

	w = snprintf(buf, len, "pack:%u [numa(memory=%" PRIu64 ")]", t->nr_nodes,
		     t->nodes[0].ram_size);
	n += (size_t)w;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && n < len)
			n += (size_t)snprintf(buf + n, len - n, " core:%u", t->cores_per_package);
		for (int i = (int)t->nr_caches - 1; i >= 0 && n < len; i--) {
			const struct topo_cache *c = &t->caches[i];
			bool per_core = !cache_per_node(t, c);

			if (per_core != (pass == 1))
				continue;
			n += (size_t)snprintf(buf + n, len - n, " l%u%c:1(size=%" PRIu64 ")",
					      c->level, c->type == TOPO_CACHE_DATA ? 'd' :
					      c->type == TOPO_CACHE_INST ? 'i' : 'u', c->size);
		}
	}
	if (n < len)
		n += (size_t)snprintf(buf + n, len - n, " pu:%u", t->threads_per_core);
	return n < len ? 0 : -1;
}

/* What the synthetic syntax cannot say: line sizes, associativity, APIC IDs, the SLIT. */
static int decorate(hwloc_topology_t topo, const struct vm_topology *t, char *err)
{
	unsigned npu = (unsigned)hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
	unsigned nnuma = (unsigned)hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	hwloc_obj_t objs[TOPO_MAX_NODES];
	hwloc_uint64_t *values;
	hwloc_distances_add_handle_t dh;

	if (npu != t->nr_cpus || nnuma != t->nr_nodes)
		return ERR("hwloc built %u PUs and %u NUMA nodes instead of %u and %u", npu, nnuma,
			   t->nr_cpus, t->nr_nodes);
	for (int depth = 0; depth < hwloc_topology_get_depth(topo); depth++) {
		hwloc_obj_t o = hwloc_get_obj_by_depth(topo, depth, 0);

		for (; o; o = o->next_cousin) {
			if (!hwloc_obj_type_is_cache(o->type) && !hwloc_obj_type_is_icache(o->type))
				continue;
			for (unsigned i = 0; i < t->nr_caches; i++) {
				const struct topo_cache *c = &t->caches[i];
				hwloc_obj_cache_type_t ct = c->type == TOPO_CACHE_DATA ?
					HWLOC_OBJ_CACHE_DATA : c->type == TOPO_CACHE_INST ?
					HWLOC_OBJ_CACHE_INSTRUCTION : HWLOC_OBJ_CACHE_UNIFIED;

				if (o->attr->cache.depth != c->level || o->attr->cache.type != ct)
					continue;
				o->attr->cache.linesize = c->line_size;
				o->attr->cache.associativity = (int)c->ways;
			}
		}
	}
	for (unsigned i = 0; i < npu; i++) {
		hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, i);
		char v[16];

		snprintf(v, sizeof(v), "%u", t->cpus[pu->os_index].apic_id);
		hwloc_obj_add_info(pu, "GuestAPICID", v);
	}
	hwloc_obj_add_info(hwloc_get_root_obj(topo), "GuestMachine", "giantvm");
	if (t->nr_nodes < 2)
		return 0;

	values = calloc((size_t)t->nr_nodes * t->nr_nodes, sizeof(*values));
	if (!values)
		return ERR("out of memory");
	for (unsigned i = 0; i < t->nr_nodes; i++) {
		objs[i] = hwloc_get_numanode_obj_by_os_index(topo, i);
		for (unsigned j = 0; j < t->nr_nodes; j++)
			values[i * t->nr_nodes + j] = t->distance[i][j];
	}
	/* The name Linux's hwloc backend gives the SLIT, so tools treat it the same. */
	dh = hwloc_distances_add_create(topo, "NUMALatency", HWLOC_DISTANCES_KIND_FROM_OS |
					HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0);
	if (!dh || hwloc_distances_add_values(topo, dh, t->nr_nodes, objs, values, 0) ||
	    hwloc_distances_add_commit(topo, dh, 0)) {
		free(values);
		return ERR("hwloc refused the distance matrix: %s", strerror(errno));
	}
	free(values);
	return 0;
}

int topo_write_xml(const struct vm_topology *t, const char *path, char *err)
{
	char desc[512];
	hwloc_topology_t topo;
	int ret = -1;

	if (!t->nr_cpus || !t->nr_nodes)
		return ERR("the topology is empty");
	if (synthetic_desc(t, desc, sizeof(desc)))
		return ERR("the topology is too complex to describe to hwloc");
	if (hwloc_topology_init(&topo))
		return ERR("hwloc_topology_init failed: %s", strerror(errno));
	hwloc_topology_set_icache_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_ALL);
	if (hwloc_topology_set_synthetic(topo, desc)) {
		SETERR("hwloc rejected the description \"%s\"", desc);
		goto out;
	}
	if (hwloc_topology_load(topo)) {
		SETERR("hwloc could not build \"%s\": %s", desc, strerror(errno));
		goto out;
	}
	if (decorate(topo, t, err))
		goto out;
	if (hwloc_topology_export_xml(topo, path, 0)) {
		SETERR("cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	hwloc_topology_destroy(topo);
	return ret;
}
