/*
 * topo_build: the one description of the guest machine that ACPI, CPUID,
 * e820 and `gvm topo` are all generated from (see vmm/topo.h and
 * docs/topology.md for the layout and why).
 */
#include "vmm/topo.h"

#include <inttypes.h>
#include <string.h>

#include "common/parse.h"
#include "vmm/host.h"

#define SETERR(...) snprintf(err, TOPO_ERR_MAX, __VA_ARGS__)
#define ERR(...) (SETERR(__VA_ARGS__), -1)

#define TOPO_DEFAULT_REMOTE_DISTANCE 20
#define TOPO_MAX_DISTANCE 254 /* 255 means "unreachable" in a SLIT */

/*
 * Give a cache a geometry CPUID can express exactly (leaf 4 and 0x8000001D
 * describe size as ways * partitions * line * sets): unknown line sizes
 * become 64 bytes, unknown associativity 16 ways (or fewer for a tiny
 * cache), and the size is rounded down to a whole number of sets.
 */
static void topo_cache_normalise(struct topo_cache *c)
{
	uint64_t sets;

	if (!c->line_size || c->line_size > 4096 || (c->line_size & (c->line_size - 1)))
		c->line_size = 64;
	if (!c->ways || c->ways > 1024)
		c->ways = 16;
	if (c->size < (uint64_t)c->line_size)
		c->size = c->line_size;
	while (c->ways > 1 && c->size < (uint64_t)c->ways * c->line_size)
		c->ways /= 2;
	sets = c->size / ((uint64_t)c->ways * c->line_size);
	if (sets > (1ull << 32))
		sets = 1ull << 32;
	c->size = sets * c->ways * c->line_size;
}

static int topo_check_caches(const struct topo_cache *c, unsigned n, char *err)
{
	for (unsigned i = 0; i < n; i++) {
		if (c[i].level < 1 || c[i].level > 7)
			return ERR("cache %u has level %u: levels are 1 to 7", i, c[i].level);
		if (c[i].type != TOPO_CACHE_DATA && c[i].type != TOPO_CACHE_INST &&
		    c[i].type != TOPO_CACHE_UNIFIED)
			return ERR("cache %u (L%u) has an unknown type %d", i, c[i].level,
				   c[i].type);
		if (!c[i].size)
			return ERR("cache %u (L%u) has size 0", i, c[i].level);
	}
	return 0;
}

/* Between instances: as given, else 20 for one node each, else twice the host's farthest. */
static unsigned topo_remote_distance(const struct topo_params *p, unsigned k, unsigned host_max)
{
	unsigned d;

	if (p->remote_distance)
		return p->remote_distance;
	if (k == 1)
		return TOPO_DEFAULT_REMOTE_DISTANCE;
	d = 2 * (host_max ? host_max : TOPO_DEFAULT_REMOTE_DISTANCE);
	return d > TOPO_MAX_DISTANCE ? TOPO_MAX_DISTANCE : d;
}

int topo_build(const struct topo_params *p, struct vm_topology *t, char *err)
{
	const struct host *host = p->host;
	struct host *own = NULL;
	char herr[HOST_ERR_MAX], s1[32], s2[32], s3[32];
	unsigned nodes = p->nr_nodes ? p->nr_nodes : 1;
	unsigned instances = p->nr_instances ? p->nr_instances : 1;
	unsigned host_nodes, per_node, bits, max_apic, k, host_max = 0;
	uint64_t ram, per_node_ram, held, limit, top_gpa;
	int ret = -1;

	memset(t, 0, sizeof(*t));
	if (nodes > TOPO_MAX_NODES)
		return ERR("%u NUMA nodes asked for; at most %u are supported", nodes,
			   TOPO_MAX_NODES);
	if (nodes % instances)
		return ERR("%u NUMA nodes do not divide among %u instances: use a multiple of %u",
			   nodes, instances, instances);
	k = nodes / instances;
	if (instances > 1 && k > TOPO_MAX_LOCAL_NODES)
		return ERR("%u NUMA nodes per instance asked for; at most %u are supported", k,
			   TOPO_MAX_LOCAL_NODES);
	host_nodes = p->host_nodes ? p->host_nodes : nodes;
	if (host_nodes > nodes)
		return ERR("this host is said to hold %u of %u NUMA nodes", host_nodes, nodes);
	if (!host) {
		own = host_open(herr);
		if (!own)
			return ERR("cannot read the host topology: %s", herr);
		host = own;
	}

	/* Defaults: this host's cores and half its RAM, shared by the nodes it holds. */
	if (p->nr_cpus) {
		t->nr_cpus = p->nr_cpus;
	} else {
		per_node = host_nr_cores(host) / host_nodes;
		t->nr_cpus = (per_node ? per_node : 1) * nodes;
		if (t->nr_cpus > TOPO_MAX_XAPIC_CPUS)
			t->nr_cpus = TOPO_MAX_XAPIC_CPUS / nodes * nodes;
	}
	if (p->ram_size) {
		ram = p->ram_size;
	} else {
		per_node_ram = host_ram_size(host) / 2 / host_nodes / TOPO_NODE_ALIGN *
			       TOPO_NODE_ALIGN;
		ram = (per_node_ram ? per_node_ram : TOPO_NODE_ALIGN) * nodes;
	}

	if (t->nr_cpus > TOPO_MAX_CPUS) {
		SETERR("%u vCPUs asked for; at most %u are supported", t->nr_cpus,
		    TOPO_MAX_CPUS);
		goto out;
	}
	if (t->nr_cpus % nodes) {
		SETERR("%u vCPUs do not divide evenly among %u NUMA nodes: use a multiple of %u",
		    t->nr_cpus, nodes, nodes);
		goto out;
	}
	if (ram % nodes || (ram / nodes) % TOPO_NODE_ALIGN || !ram) {
		SETERR("%s of RAM (%" PRIu64 " bytes) does not divide among %u NUMA node%s in "
		    "multiples of %s: use a multiple of %s",
		    format_size(ram, s1, sizeof(s1)), ram, nodes, nodes == 1 ? "" : "s",
		    format_size(TOPO_NODE_ALIGN, s2, sizeof(s2)),
		    format_size((uint64_t)TOPO_NODE_ALIGN * nodes, s3, sizeof(s3)));
		goto out;
	}
	per_node = t->nr_cpus / nodes;
	per_node_ram = ram / nodes;

	t->nr_nodes = nodes;
	t->nr_instances = instances;
	t->nodes_per_instance = k;
	t->ram_size = ram;
	t->threads_per_core = 1;
	t->cores_per_package = per_node;
	bits = topo_core_bits(t) + topo_thread_bits(t);
	max_apic = ((nodes - 1) << bits) | ((per_node - 1) << topo_thread_bits(t));
	if (max_apic > TOPO_MAX_APIC_ID) {
		SETERR("%u NUMA nodes of %u vCPUs need APIC IDs up to %u (%u bits per package); "
		    "x2APIC without an IOMMU reaches %u: use fewer vCPUs per node or fewer nodes",
		    nodes, per_node, max_apic, bits, TOPO_MAX_APIC_ID);
		goto out;
	}
	t->x2apic = max_apic > TOPO_MAX_XAPIC_ID;

	top_gpa = topo_ram_to_gpa(ram - 1) + 1;
	if (host_phys_bits(host) < 64 && top_gpa > (1ull << host_phys_bits(host))) {
		SETERR("%s of RAM ends at guest-physical 0x%" PRIx64 ", beyond the %u-bit "
		    "physical address space of this host", format_size(ram, s1, sizeof(s1)),
		    top_gpa, host_phys_bits(host));
		goto out;
	}
	held = per_node_ram * host_nodes;
	limit = p->host_ram_limit ? p->host_ram_limit : host_ram_size(host);
	if (limit && held > limit) {
		SETERR("the guest RAM this host must hold, %s (%u NUMA node%s of %s), is more than "
		    "the %s it has: use less memory or more nodes",
		    format_size(held, s1, sizeof(s1)), host_nodes, host_nodes > 1 ? "s" : "",
		    format_size(per_node_ram, s2, sizeof(s2)),
		    format_size(limit, s3, sizeof(s3)));
		goto out;
	}

	for (unsigned n = 0; n < nodes; n++) {
		t->nodes[n].ram_offset = per_node_ram * n;
		t->nodes[n].ram_size = per_node_ram;
		t->nodes[n].first_cpu = per_node * n;
		t->nodes[n].nr_cpus = per_node;
	}
	for (unsigned i = 0; i < t->nr_cpus; i++) {
		struct topo_cpu *c = &t->cpus[i];

		c->node = i / per_node;
		c->package = c->node;
		c->core = i % per_node;
		c->thread = 0;
		c->apic_id = (c->package << bits) | (c->core << topo_thread_bits(t)) | c->thread;
	}

	if (p->remote_distance &&
	    (p->remote_distance <= TOPO_LOCAL_DISTANCE || p->remote_distance > TOPO_MAX_DISTANCE)) {
		SETERR("remote NUMA distance %u is out of range: it must be %u to %u",
		    p->remote_distance, TOPO_LOCAL_DISTANCE + 1, TOPO_MAX_DISTANCE);
		goto out;
	}
	for (unsigned i = 0; i < k && i < TOPO_MAX_LOCAL_NODES; i++)
		for (unsigned j = 0; j < k && j < TOPO_MAX_LOCAL_NODES; j++) {
			unsigned d = p->host_distance[i][j];

			if (i == j || !d)
				continue;
			if (d <= TOPO_LOCAL_DISTANCE || d > TOPO_MAX_DISTANCE) {
				SETERR("host NUMA distance %u (nodes %u and %u of an instance) is out "
				    "of range: it must be %u to %u", d, i, j,
				    TOPO_LOCAL_DISTANCE + 1, TOPO_MAX_DISTANCE);
				goto out;
			}
			if (d > host_max)
				host_max = d;
		}
	for (unsigned i = 0; i < nodes; i++)
		for (unsigned j = 0; j < nodes; j++) {
			unsigned a = i % k, b = j % k;
			unsigned d = a < TOPO_MAX_LOCAL_NODES && b < TOPO_MAX_LOCAL_NODES ?
				     p->host_distance[a][b] : 0;

			if (i == j)
				d = TOPO_LOCAL_DISTANCE;
			else if (i / k != j / k)
				d = topo_remote_distance(p, k, host_max);
			else if (!d)
				d = instances == 1 && p->remote_distance ? p->remote_distance :
				    TOPO_DEFAULT_REMOTE_DISTANCE;
			t->distance[i][j] = (uint8_t)d;
		}
	/* The other host must look further than any node of this one, or Linux orders them wrong. */
	if (instances > 1 && k > 1) {
		unsigned far = topo_remote_distance(p, k, host_max);
		unsigned near = host_max ? host_max : TOPO_DEFAULT_REMOTE_DISTANCE;

		if (far <= near) {
			SETERR("remote NUMA distance %u is not more than the distance %u between "
			    "the NUMA nodes of one host: use more than %u", far, near, near);
			goto out;
		}
	}

	if (p->nr_caches) {
		if (p->nr_caches > TOPO_MAX_CACHES) {
			SETERR("%u caches given; at most %u", p->nr_caches, TOPO_MAX_CACHES);
			goto out;
		}
		memcpy(t->caches, p->caches, p->nr_caches * sizeof(t->caches[0]));
		t->nr_caches = p->nr_caches;
	} else {
		t->nr_caches = host_caches(host, t->caches, TOPO_MAX_CACHES);
	}
	if (topo_check_caches(t->caches, t->nr_caches, err))
		goto out;
	/*
	 * A guest core owns its L1 and L2; the last levels are shared by its
	 * package, which is its NUMA node, just as the vCPUs of one node share
	 * the last-level cache of the host that runs them.
	 */
	for (unsigned i = 0; i < t->nr_caches; i++) {
		topo_cache_normalise(&t->caches[i]);
		t->caches[i].shared_by = t->caches[i].level <= 2 ? t->threads_per_core :
					 t->threads_per_core * t->cores_per_package;
	}
	ret = 0;
out:
	host_close(own);
	if (ret)
		memset(t, 0, sizeof(*t));
	return ret;
}

unsigned topo_node_ranges(const struct vm_topology *t, unsigned node,
			  struct topo_range r[TOPO_NODE_RANGES_MAX])
{
	uint64_t start = t->nodes[node].ram_offset, end = start + t->nodes[node].ram_size;

	if (start < TOPO_HOLE_START && end > TOPO_HOLE_START) {
		r[0].gpa = start;
		r[0].size = TOPO_HOLE_START - start;
		r[1].gpa = TOPO_HOLE_START + TOPO_HOLE_SIZE;
		r[1].size = end - TOPO_HOLE_START;
		return 2;
	}
	r[0].gpa = topo_ram_to_gpa(start);
	r[0].size = end - start;
	return 1;
}

unsigned topo_node_of_ram(const struct vm_topology *t, uint64_t off)
{
	for (unsigned n = 0; n + 1 < t->nr_nodes; n++)
		if (off < t->nodes[n].ram_offset + t->nodes[n].ram_size)
			return n;
	return t->nr_nodes ? t->nr_nodes - 1 : 0;
}
