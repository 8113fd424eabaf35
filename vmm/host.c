/*
 * The host through hwloc: PU choice and pinning, host NUMA node of a PU, the
 * caches a guest core is given, and the emulated-kernel heuristic.
 */
#include "vmm/host.h"

#include <cpuid.h>
#include <errno.h>
#include <sched.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct host {
	hwloc_topology_t topo;
	bool synthetic;
	bool emulated;
	char why[192];
	uint64_t ram;
	unsigned phys_bits;
};

#define SETERR(...) snprintf(err, HOST_ERR_MAX, __VA_ARGS__)
#define ERR(...) (SETERR(__VA_ARGS__), -1)

/* Does the first "flags" line of /proc/cpuinfo list this word? -1: unreadable. */
static int cpuinfo_has_flag(FILE *f, const char *const *names, unsigned n, const char **found)
{
	char *line = NULL;
	size_t cap = 0;
	int ret = -1;

	while (getline(&line, &cap, f) > 0) {
		char *p, *save = NULL;

		if (strncmp(line, "flags", 5))
			continue;
		p = strchr(line, ':');
		if (!p)
			continue;
		ret = 0;
		for (char *w = strtok_r(p + 1, " \t\n", &save); w;
		     w = strtok_r(NULL, " \t\n", &save)) {
			for (unsigned i = 0; i < n; i++) {
				if (!strcmp(w, names[i])) {
					*found = names[i];
					ret = 1;
				}
			}
		}
		break;
	}
	free(line);
	return ret;
}

static void host_detect_emulation(struct host *h)
{
	static const char *const hw_virt[] = { "vmx", "svm" };
	const char *found = NULL;
	FILE *f = fopen("/proc/cpuinfo", "r");
	int r = f ? cpuinfo_has_flag(f, hw_virt, 2, &found) : -1;

	if (f)
		fclose(f);
	if (r < 0) {
		/* No procfs: the CPUID bits are what the kernel's flags derive from. */
		unsigned a, b, c, d, c2 = 0;

		__cpuid(1, a, b, c, d);
		if (__get_cpuid(0x80000001, &a, &b, &c2, &d) == 0)
			c2 = 0;
		r = (c & (1u << 5)) || (c2 & (1u << 2));
		found = (c & (1u << 5)) ? "vmx" : "svm";
		h->emulated = !r;
		snprintf(h->why, sizeof(h->why), r ? "CPUID has %s: hardware virtualisation" :
			 "/proc/cpuinfo unreadable and CPUID has neither vmx nor svm: "
			 "KVM emulates guest kernel code", found);
		return;
	}
	h->emulated = !r;
	if (r)
		snprintf(h->why, sizeof(h->why), "/proc/cpuinfo has the %s flag: "
			 "KVM runs guests in hardware", found);
	else
		snprintf(h->why, sizeof(h->why), "/proc/cpuinfo has neither vmx nor svm: "
			 "KVM emulates guest kernel code");
}

/*
 * hwloc leaves out the PUs a cgroup cpuset forbids, but not those outside
 * the process's affinity (taskset, numactl, a batch system's task binding):
 * drop those too, or vCPUs get pinned onto CPUs this process was kept off.
 */
static int restrict_to_binding(hwloc_topology_t topo, char *err)
{
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	int ret = 0;

	if (!set) {
		SETERR("out of memory");
		return -1;
	}
	/* An unknown binding (an odd platform) keeps every PU hwloc allows. */
	if (!hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_THREAD) &&
	    !hwloc_bitmap_isincluded(hwloc_topology_get_topology_cpuset(topo), set) &&
	    hwloc_topology_restrict(topo, set, 0)) {
		SETERR("cannot limit the host topology to this process's CPUs: %s",
		       strerror(errno));
		ret = -1;
	}
	hwloc_bitmap_free(set);
	return ret;
}

static struct host *host_new(const char *synthetic, char *err)
{
	struct host *h = calloc(1, sizeof(*h));
	unsigned a, b, c, d;

	if (!h) {
		SETERR("out of memory");
		return NULL;
	}
	if (hwloc_topology_init(&h->topo)) {
		SETERR("hwloc_topology_init failed: %s", strerror(errno));
		free(h);
		return NULL;
	}
	/* hwloc drops instruction caches unless asked; a guest core has an L1i too. */
	hwloc_topology_set_icache_types_filter(h->topo, HWLOC_TYPE_FILTER_KEEP_ALL);
	if (synthetic && hwloc_topology_set_synthetic(h->topo, synthetic)) {
		SETERR("'%s' is not a valid hwloc synthetic topology "
		       "(example: \"pack:2 core:4 pu:2\")", synthetic);
		goto fail;
	}
	if (hwloc_topology_load(h->topo)) {
		SETERR("cannot load the host topology with hwloc: %s", strerror(errno));
		goto fail;
	}
	if (!synthetic && restrict_to_binding(h->topo, err))
		goto fail;
	if (!hwloc_get_nbobjs_by_type(h->topo, HWLOC_OBJ_PU)) {
		SETERR("hwloc found no processing unit this process may use");
		goto fail;
	}
	h->synthetic = synthetic != NULL;
	if (synthetic) {
		h->ram = hwloc_get_root_obj(h->topo)->total_memory;
		snprintf(h->why, sizeof(h->why),
			 "a synthetic host: assumed to run guests in hardware");
	} else {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

		h->ram = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz :
			hwloc_get_root_obj(h->topo)->total_memory;
		host_detect_emulation(h);
	}
	h->phys_bits = 36; /* the architectural minimum, if CPUID has no answer */
	if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000008) {
		__cpuid(0x80000008, a, b, c, d);
		if ((a & 0xff) >= 32)
			h->phys_bits = a & 0xff;
	}
	return h;
fail:
	hwloc_topology_destroy(h->topo);
	free(h);
	return NULL;
}

struct host *host_open(char *err)
{
	return host_new(NULL, err);
}

struct host *host_open_synthetic(const char *desc, char *err)
{
	return host_new(desc, err);
}

void host_close(struct host *h)
{
	if (!h)
		return;
	hwloc_topology_destroy(h->topo);
	free(h);
}

unsigned host_nr_pus(const struct host *h)
{
	return (unsigned)hwloc_get_nbobjs_by_type(h->topo, HWLOC_OBJ_PU);
}

unsigned host_nr_cores(const struct host *h)
{
	int n = hwloc_get_nbobjs_by_type(h->topo, HWLOC_OBJ_CORE);

	/* Some platforms report PUs without cores: then every PU is a core. */
	return n > 0 ? (unsigned)n : host_nr_pus(h);
}

uint64_t host_ram_size(const struct host *h)
{
	return h->ram;
}

unsigned host_phys_bits(const struct host *h)
{
	return h->phys_bits;
}

/* The g-th NUMA node (round again past the last) with PUs this process may use, or NULL. */
static hwloc_obj_t host_cpu_node(const struct host *h, unsigned g)
{
	unsigned n = host_nr_cpu_nodes(h), seen = 0;
	hwloc_obj_t node = NULL;

	while ((node = hwloc_get_next_obj_by_type(h->topo, HWLOC_OBJ_NUMANODE, node)))
		if (node->cpuset && !hwloc_bitmap_iszero(node->cpuset) && seen++ == g % n)
			return node;
	return NULL;
}

unsigned host_nr_cpu_nodes(const struct host *h)
{
	unsigned n = 0;
	hwloc_obj_t node = NULL;

	while ((node = hwloc_get_next_obj_by_type(h->topo, HWLOC_OBJ_NUMANODE, node)))
		n += node->cpuset && !hwloc_bitmap_iszero(node->cpuset);
	return n ? n : 1;
}

/*
 * nr PUs within set, from the first-th on: each core's first PU in order,
 * then each core's second...
 */
static int host_choose_in(const struct host *h, hwloc_const_cpuset_t set, unsigned first,
			  unsigned nr, unsigned *pus, char *err)
{
	unsigned ncores = (unsigned)hwloc_get_nbobjs_inside_cpuset_by_type(h->topo, set,
									   HWLOC_OBJ_CORE);
	unsigned npus = (unsigned)hwloc_get_nbobjs_inside_cpuset_by_type(h->topo, set,
									 HWLOC_OBJ_PU);

	if (!npus)
		return ERR("hwloc found no usable PU where the vCPUs should run");
	for (unsigned i = first; i < first + nr; i++) {
		hwloc_obj_t pu;

		if (ncores) {
			hwloc_obj_t core = hwloc_get_obj_inside_cpuset_by_type(h->topo, set,
									       HWLOC_OBJ_CORE,
									       i % ncores);
			unsigned in_core = (unsigned)hwloc_get_nbobjs_inside_cpuset_by_type(
				h->topo, core->cpuset, HWLOC_OBJ_PU);

			if (!in_core)
				return ERR("hwloc reports core L#%u without a PU", i % ncores);
			pu = hwloc_get_obj_inside_cpuset_by_type(h->topo, core->cpuset,
								 HWLOC_OBJ_PU,
								 (i / ncores) % in_core);
		} else {
			pu = hwloc_get_obj_inside_cpuset_by_type(h->topo, set, HWLOC_OBJ_PU,
								 i % npus);
		}
		if (!pu)
			return ERR("hwloc lost PU %u while choosing PUs", i);
		pus[i - first] = pu->os_index;
	}
	return 0;
}

int host_choose_pus(const struct host *h, unsigned nr, unsigned groups, unsigned *pus, char *err)
{
	unsigned per, nodes = host_nr_cpu_nodes(h);

	if (groups <= 1)
		return host_choose_in(h, hwloc_topology_get_topology_cpuset(h->topo), 0, nr, pus,
				      err);
	if (nr % groups)
		return ERR("%u vCPUs do not divide among %u NUMA nodes", nr, groups);
	per = nr / groups;
	for (unsigned g = 0; g < groups; g++) {
		hwloc_obj_t node = host_cpu_node(h, g);

		/* groups that come round to a node again take its next cores, not the same */
		if (host_choose_in(h, node ? node->cpuset :
				   hwloc_topology_get_topology_cpuset(h->topo),
				   (g / nodes) * per, per, pus + g * per, err))
			return -1;
	}
	return 0;
}

void host_group_distances(const struct host *h, unsigned groups,
			  uint8_t d[TOPO_MAX_LOCAL_NODES][TOPO_MAX_LOCAL_NODES])
{
	struct hwloc_distances_s *dist = NULL;
	unsigned nr = 1;

	memset(d, 0, sizeof(uint8_t[TOPO_MAX_LOCAL_NODES][TOPO_MAX_LOCAL_NODES]));
	if (groups > TOPO_MAX_LOCAL_NODES)
		groups = TOPO_MAX_LOCAL_NODES;
	if (hwloc_distances_get_by_type(h->topo, HWLOC_OBJ_NUMANODE, &nr, &dist,
					HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0) || !nr)
		return;
	for (unsigned a = 0; a < groups; a++)
		for (unsigned b = 0; b < groups; b++) {
			hwloc_obj_t na = host_cpu_node(h, a), nb = host_cpu_node(h, b);
			int ia = na ? hwloc_distances_obj_index(dist, na) : -1;
			int ib = nb ? hwloc_distances_obj_index(dist, nb) : -1;
			hwloc_uint64_t self, v;

			if (a == b || na == nb || ia < 0 || ib < 0)
				continue;
			self = dist->values[(unsigned)ia * dist->nbobjs + (unsigned)ia];
			v = dist->values[(unsigned)ia * dist->nbobjs + (unsigned)ib];
			if (!self || v <= self)
				continue;
			/* ACPI's scale: 10 to itself; whatever hwloc's unit was */
			v = (v * 10 + self / 2) / self;
			d[a][b] = (uint8_t)(v > 254 ? 254 : v);
		}
	hwloc_distances_release(h->topo, dist);
}

int host_check_cpus(const unsigned *cpus, unsigned n, char *err)
{
	cpu_set_t allowed;

	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return ERR("cannot read the CPUs this process may use: %s", strerror(errno));
	for (unsigned i = 0; i < n; i++) {
		char list[256];
		size_t used = 0;

		if (cpus[i] < CPU_SETSIZE && CPU_ISSET(cpus[i], &allowed))
			continue;
		/* the usable CPUs as ranges, e.g. 0-3,8 */
		list[0] = '\0';
		for (unsigned c = 0; c < CPU_SETSIZE && used < sizeof(list) - 16; c++) {
			unsigned e = c;

			if (!CPU_ISSET(c, &allowed))
				continue;
			while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &allowed))
				e++;
			used += snprintf(list + used, sizeof(list) - used, e > c ? "%s%u-%u" : "%s%u",
					 used ? "," : "", c, e);
			c = e;
		}
		return ERR("host CPU %u does not exist or this process may not use it; it may "
			   "use %s (or leave --host-cpus out)", cpus[i], list);
	}
	return 0;
}

static hwloc_obj_t host_pu(const struct host *h, unsigned pu)
{
	return hwloc_get_pu_obj_by_os_index(h->topo, pu);
}

int host_pin_thread(const struct host *h, pthread_t thread, unsigned pu, char *err)
{
	hwloc_obj_t obj = host_pu(h, pu);

	if (!obj)
		return ERR("host PU %u does not exist or is not available to this process", pu);
	if (h->synthetic)
		return ERR("cannot pin to PU %u of a synthetic host", pu);
	if (hwloc_set_thread_cpubind(h->topo, thread, obj->cpuset, HWLOC_CPUBIND_THREAD))
		return ERR("cannot pin a thread to host PU %u: %s", pu, strerror(errno));
	return 0;
}

int host_pu_node(const struct host *h, unsigned pu)
{
	hwloc_obj_t obj = host_pu(h, pu);

	if (!obj || !obj->nodeset)
		return -1;
	return hwloc_bitmap_first(obj->nodeset);
}

unsigned host_caches(const struct host *h, struct topo_cache *out, unsigned max)
{
	hwloc_obj_t pu = hwloc_get_obj_by_type(h->topo, HWLOC_OBJ_PU, 0);
	struct topo_cache found[16];
	unsigned n = 0;

	for (hwloc_obj_t o = pu ? pu->parent : NULL; o && n < 16; o = o->parent) {
		struct topo_cache *c = &found[n];

		if ((!hwloc_obj_type_is_cache(o->type) && !hwloc_obj_type_is_icache(o->type)) ||
		    !o->attr->cache.size)
			continue;
		memset(c, 0, sizeof(*c));
		c->level = o->attr->cache.depth;
		c->type = o->attr->cache.type == HWLOC_OBJ_CACHE_DATA ? TOPO_CACHE_DATA :
			  o->attr->cache.type == HWLOC_OBJ_CACHE_INSTRUCTION ? TOPO_CACHE_INST :
			  TOPO_CACHE_UNIFIED;
		c->size = o->attr->cache.size;
		c->line_size = o->attr->cache.linesize;
		/* hwloc: 0 unknown, -1 fully associative; topo_build picks a geometry. */
		c->ways = o->attr->cache.associativity > 0 ?
			  (unsigned)o->attr->cache.associativity : 0;
		n++;
	}
	/* Ancestors come innermost first; order by level, data before instruction. */
	for (unsigned i = 1; i < n; i++) {
		for (unsigned j = i; j > 0; j--) {
			struct topo_cache *a = &found[j - 1], *b = &found[j];

			if (a->level < b->level || (a->level == b->level && a->type <= b->type))
				break;
			struct topo_cache tmp = *a;
			*a = *b;
			*b = tmp;
		}
	}
	if (n > max)
		n = max;
	memcpy(out, found, n * sizeof(*out));
	return n;
}

bool host_kernel_emulated(const struct host *h, const char **why)
{
	if (why)
		*why = h->why;
	return h->emulated;
}
