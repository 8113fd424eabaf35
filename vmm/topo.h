/*
 * The machine a guest sees: its vCPUs, NUMA nodes, memory layout, distances
 * and caches.  Built once from the user's options and the host's hwloc
 * topology, identical on every instance of a VM, and the single source for
 * everything that describes the machine to the guest (ACPI MADT/SRAT/SLIT,
 * CPUID, the e820 map) and to the user (`gvm topo`).
 *
 * Memory layout: guest RAM is one contiguous region of `ram_size` bytes (the
 * DSM region in a cluster).  RAM offset x is at guest-physical address x
 * below TOPO_HOLE_START and at x + TOPO_HOLE_SIZE above it, leaving
 * [3 GiB, 4 GiB) for the IOAPIC, the LAPIC and other MMIO.
 * Guest NUMA node i owns the RAM offsets [nodes[i].ram_offset,
 * nodes[i].ram_offset + nodes[i].ram_size); node 0 starts at offset 0, the
 * nodes are contiguous and in order, and each size is a multiple of
 * TOPO_NODE_ALIGN.
 */
#ifndef GVM_VMM_TOPO_H
#define GVM_VMM_TOPO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct host; /* vmm/host.h */

#define TOPO_MAX_CPUS 1024      /* KVM's own limit per VM, on the hosts of 2026 */
#define TOPO_MAX_XAPIC_CPUS 255 /* the default never goes beyond xAPIC */
#define TOPO_MAX_XAPIC_ID 254   /* 0xff is the xAPIC broadcast */
/*
 * x2APIC: the IOAPIC's extended destination ID (Linux's, without an IOMMU)
 * reaches 15-bit APIC IDs.
 */
#define TOPO_MAX_APIC_ID 0x7FFF
#define TOPO_MAX_NODES 64
#define TOPO_MAX_LOCAL_NODES 8 /* guest NUMA nodes one instance (one host) holds */
#define TOPO_MAX_CACHES 4
#define TOPO_NODE_ALIGN (2u << 20)
#define TOPO_HOLE_START 0xC0000000ull
#define TOPO_HOLE_SIZE 0x40000000ull
#define TOPO_LOCAL_DISTANCE 10

enum topo_cache_type { TOPO_CACHE_DATA = 1, TOPO_CACHE_INST = 2, TOPO_CACHE_UNIFIED = 3 };

struct topo_cache {
	unsigned level;            /* 1, 2, 3 */
	enum topo_cache_type type;
	uint64_t size;             /* bytes */
	unsigned line_size;        /* bytes */
	unsigned ways;
	unsigned shared_by;        /* vCPUs sharing one instance: 1 = per core */
};

struct topo_cpu {
	unsigned apic_id;
	unsigned node;       /* guest NUMA node */
	unsigned package;    /* guest socket = node */
	unsigned core;       /* core within its package */
	unsigned thread;     /* SMT thread within its core */
};

struct topo_node {
	uint64_t ram_offset;
	uint64_t ram_size;
	unsigned first_cpu;  /* the node's vCPUs are [first_cpu, first_cpu + nr_cpus) */
	unsigned nr_cpus;
};

struct vm_topology {
	unsigned nr_cpus;
	unsigned nr_nodes;
	/*
	 * The hosts the nodes are spread over: guest NUMA node n lives on
	 * instance n / nodes_per_instance (one machine: 1 instance).
	 */
	unsigned nr_instances;
	unsigned nodes_per_instance;
	unsigned threads_per_core;
	unsigned cores_per_package;
	uint64_t ram_size;
	/*
	 * An APIC ID above TOPO_MAX_XAPIC_ID: the guest needs x2APIC (the
	 * CPUID bit, x2APIC entries in the MADT and the SRAT).
	 */
	bool x2apic;
	struct topo_cpu cpus[TOPO_MAX_CPUS];
	struct topo_node nodes[TOPO_MAX_NODES];
	uint8_t distance[TOPO_MAX_NODES][TOPO_MAX_NODES]; /* SLIT: 10 local, > 10 remote */
	unsigned nr_caches;
	struct topo_cache caches[TOPO_MAX_CACHES];
};

/* What the user asked for; zero fields take defaults from the host. */
struct topo_params {
	unsigned nr_nodes;        /* guest NUMA nodes, a multiple of nr_instances (default 1 each) */
	unsigned nr_cpus;         /* total vCPUs, divisible by nr_nodes */
	uint64_t ram_size;        /* total bytes, divisible by nr_nodes, per-node share aligned */
	unsigned nr_instances;    /* hosts the nodes are spread over (0: 1, one machine) */
	/*
	 * SLIT distance between nodes on different instances; with one
	 * instance, between its nodes where host_distance says nothing.
	 * 0: the default, 20, or twice the largest host distance when an
	 * instance holds several nodes (the other host is further again).
	 */
	unsigned remote_distance;
	/*
	 * The host's own NUMA distances between the nodes one instance holds
	 * (indexed by node within its instance), as hwloc reports them for
	 * the host NUMA nodes those guest nodes are placed on.  0: unknown,
	 * 20 (Linux's default remote distance).
	 */
	uint8_t host_distance[TOPO_MAX_LOCAL_NODES][TOPO_MAX_LOCAL_NODES];

	/*
	 * Where the defaults and limits come from.  NULL: topo_build opens
	 * this machine's topology itself for the duration of the call.
	 */
	const struct host *host;
	/*
	 * How many guest NUMA nodes' RAM this host holds: the RAM that must
	 * fit in the host is host_nodes * (ram_size / nr_nodes).  0 means all
	 * of them (one machine: `gvm run`); a cluster instance passes its
	 * share, nr_nodes / nr_instances.
	 */
	unsigned host_nodes;
	/*
	 * Host RAM available to the guest.  0: the host's physical RAM;
	 * UINT64_MAX: no check (describing a machine for another host).
	 */
	uint64_t host_ram_limit;
	/*
	 * Caches to present instead of the host's (every instance of a
	 * cluster must present the same ones).  nr_caches 0: the host's.
	 */
	unsigned nr_caches;
	struct topo_cache caches[TOPO_MAX_CACHES];
};

#define TOPO_ERR_MAX 256

/*
 * Build the topology.  Caches are the host's (hwloc), scaled to what a guest
 * core sees.  Returns 0, or -1 with the reason in err (bad counts, sizes
 * that do not divide or fit).
 */
int topo_build(const struct topo_params *p, struct vm_topology *t, char *err);

/*
 * APIC ID layout: bit-packed (thread, core, package) fields, each as wide as
 * its count needs, so apic_id = package << (core_bits + thread_bits) |
 * core << thread_bits | thread.  These widths are what CPUID leaves 0xB/0x1F,
 * 4 and 0x80000008 report.
 */
static inline unsigned topo_bits(unsigned count)
{
	unsigned b = 0;

	while ((1u << b) < count)
		b++;
	return b;
}

static inline unsigned topo_thread_bits(const struct vm_topology *t)
{
	return topo_bits(t->threads_per_core);
}

static inline unsigned topo_core_bits(const struct vm_topology *t)
{
	return topo_bits(t->cores_per_package);
}

/* A node's RAM in guest-physical address ranges: split at the MMIO hole. */
struct topo_range {
	uint64_t gpa;
	uint64_t size;
};

#define TOPO_NODE_RANGES_MAX 2

/* Fills r[] with the node's ranges, in address order; returns how many (1 or 2). */
unsigned topo_node_ranges(const struct vm_topology *t, unsigned node,
			  struct topo_range r[TOPO_NODE_RANGES_MAX]);

/* The instance (rank) that holds guest NUMA node n, and one that holds vCPU i. */
static inline unsigned topo_instance_of_node(const struct vm_topology *t, unsigned n)
{
	return n / t->nodes_per_instance;
}

static inline unsigned topo_instance_of_cpu(const struct vm_topology *t, unsigned i)
{
	return topo_instance_of_node(t, t->cpus[i].node);
}

/* The first guest NUMA node of instance r: its vCPUs and RAM start there. */
static inline const struct topo_node *topo_instance_node(const struct vm_topology *t, unsigned r)
{
	return &t->nodes[r * t->nodes_per_instance];
}

/* The guest NUMA node a RAM offset belongs to. */
unsigned topo_node_of_ram(const struct vm_topology *t, uint64_t off);

/*
 * What `gvm topo` shows (vmm/topo-print.c).  topo_print writes a stable,
 * line-oriented description (see docs/topology.md).  topo_write_xml writes
 * an hwloc XML file that `lstopo --input FILE` loads; returns 0, or -1 with
 * the reason in err.
 */
void topo_print(const struct vm_topology *t, FILE *f);
int topo_write_xml(const struct vm_topology *t, const char *path, char *err);

/* Guest-physical address of a RAM offset, and the inverse (-1: not RAM). */
static inline uint64_t topo_ram_to_gpa(uint64_t off)
{
	return off < TOPO_HOLE_START ? off : off + TOPO_HOLE_SIZE;
}

static inline int64_t topo_gpa_to_ram(const struct vm_topology *t, uint64_t gpa)
{
	uint64_t off = gpa;

	if (gpa >= TOPO_HOLE_START && gpa < TOPO_HOLE_START + TOPO_HOLE_SIZE)
		return -1;
	if (gpa >= TOPO_HOLE_START + TOPO_HOLE_SIZE)
		off = gpa - TOPO_HOLE_SIZE;
	return off < t->ram_size ? (int64_t)off : -1;
}

#endif
