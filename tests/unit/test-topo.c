/* vmm/topo.c: validation, APIC ID layout, memory ranges, distances, caches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/check.h"
#include "vmm/host.h"
#include "vmm/topo.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

static struct host *synthetic;

static struct topo_params params(unsigned nodes, unsigned cpus, uint64_t ram)
{
	struct topo_params p = {
		.nr_nodes = nodes, .nr_cpus = cpus, .ram_size = ram,
		.host = synthetic, .host_ram_limit = UINT64_MAX,
	};
	return p;
}

static int build(unsigned nodes, unsigned cpus, uint64_t ram, struct vm_topology *t, char *err)
{
	struct topo_params p = params(nodes, cpus, ram);

	return topo_build(&p, t, err);
}

static void test_one_cpu(void)
{
	static struct vm_topology t;
	char err[TOPO_ERR_MAX];

	CHECK(build(1, 1, 64 * MiB, &t, err) == 0);
	CHECK_EQ(t.nr_cpus, 1);
	CHECK_EQ(t.nr_nodes, 1);
	CHECK_EQ(t.cpus[0].apic_id, 0);
	CHECK_EQ(t.cores_per_package, 1);
	CHECK_EQ(t.threads_per_core, 1);
	CHECK_EQ(topo_core_bits(&t), 0);
	CHECK_EQ(t.nodes[0].ram_offset, 0);
	CHECK_EQ(t.nodes[0].ram_size, 64 * MiB);
	CHECK_EQ(t.distance[0][0], 10);
}

/* APIC IDs are package << (core bits) | core: a node's IDs share one package field. */
static void test_apic_ids(void)
{
	static struct vm_topology t;
	char err[TOPO_ERR_MAX];
	static const unsigned two_by_two[] = { 0, 1, 2, 3 };
	static const unsigned two_by_three[] = { 0, 1, 2, 4, 5, 6 };
	static const unsigned four_by_one[] = { 0, 1, 2, 3 };
	static const unsigned three_by_five[] = { 0, 1, 2, 3, 4, 8, 9, 10, 11, 12,
						  16, 17, 18, 19, 20 };

	CHECK(build(2, 4, 2 * GiB, &t, err) == 0);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(t.cpus[i].apic_id, two_by_two[i]);
		CHECK_EQ(t.cpus[i].node, i / 2);
		CHECK_EQ(t.cpus[i].package, i / 2);
		CHECK_EQ(t.cpus[i].core, i % 2);
	}
	CHECK_EQ(t.nodes[1].first_cpu, 2);
	CHECK_EQ(t.nodes[1].nr_cpus, 2);

	CHECK(build(2, 6, 2 * GiB, &t, err) == 0);
	CHECK_EQ(topo_core_bits(&t), 2);
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ(t.cpus[i].apic_id, two_by_three[i]);

	CHECK(build(4, 4, 4 * GiB, &t, err) == 0);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(t.cpus[i].apic_id, four_by_one[i]);
		CHECK_EQ(t.cpus[i].node, i);
	}

	CHECK(build(3, 15, 3 * GiB, &t, err) == 0);
	for (unsigned i = 0; i < 15; i++)
		CHECK_EQ(t.cpus[i].apic_id, three_by_five[i]);
}

static void test_many_cpus(void)
{
	static struct vm_topology t;
	char err[TOPO_ERR_MAX];
	uint8_t seen[256] = { 0 };

	CHECK(build(1, 255, 1 * GiB, &t, err) == 0);
	for (unsigned i = 0; i < 255; i++)
		CHECK_EQ(t.cpus[i].apic_id, i);

	/* 2 x 127: 7 core bits, so node 1 starts at APIC ID 128. */
	CHECK(build(2, 254, 2 * GiB, &t, err) == 0);
	CHECK_EQ(t.cpus[126].apic_id, 126);
	CHECK_EQ(t.cpus[127].apic_id, 128);
	CHECK_EQ(t.cpus[253].apic_id, 254);
	for (unsigned i = 0; i < 254; i++) {
		CHECK(!seen[t.cpus[i].apic_id]);
		seen[t.cpus[i].apic_id] = 1;
	}

	CHECK(!t.x2apic);

	/* 3 x 85 needs package 2 at 2 << 7 = 256 and beyond: x2APIC, and x2APIC entries */
	CHECK(build(3, 255, 3 * GiB, &t, err) == 0);
	CHECK(t.x2apic && t.cpus[170].apic_id == 256 && t.cpus[254].apic_id == 340);
	CHECK(build(1, 256, 1 * GiB, &t, err) == 0 && t.x2apic && t.cpus[255].apic_id == 255);
	CHECK(build(4, 1024, 4 * GiB, &t, err) == 0 && t.x2apic);
	CHECK_EQ(t.cpus[1023].apic_id, 3u << 8 | 255);
	for (unsigned i = 0; i < 1024; i++)
		CHECK_EQ(t.cpus[i].node, i / 256);
	/*
	 * The limit: KVM's vCPUs per VM.  (APIC IDs stay below 2048 within it,
	 * far from the 15 bits the IOAPIC's extended destination reaches.)
	 */
	CHECK(build(1, 1025, 1 * GiB, &t, err) == -1);
	CHECK(strstr(err, "1025 vCPUs") && strstr(err, "1024"));
}

static void test_bad_counts(void)
{
	static struct vm_topology t;
	char err[TOPO_ERR_MAX];

	CHECK(build(2, 3, 2 * GiB, &t, err) == -1);
	CHECK(strstr(err, "3 vCPUs") && strstr(err, "2 NUMA nodes"));
	CHECK(build(4, 2, 4 * GiB, &t, err) == -1);
	CHECK(strstr(err, "2 vCPUs"));
	CHECK(build(2, 2, 2 * GiB + 2 * MiB, &t, err) == -1);
	CHECK(strstr(err, "2 NUMA nodes") && strstr(err, "4 MiB"));
	CHECK(build(1, 1, 3 * MiB, &t, err) == -1);
	CHECK(strstr(err, "3 MiB"));
	CHECK(build(65, 65, 65 * 2 * MiB, &t, err) == -1);
	CHECK(strstr(err, "65 NUMA nodes"));
	CHECK_EQ(t.nr_cpus, 0); /* a failed build leaves nothing half-made */
}

static void test_memory_ranges(void)
{
	static struct vm_topology t;
	struct topo_range r[TOPO_NODE_RANGES_MAX];
	char err[TOPO_ERR_MAX];

	/* 2 x 2 GiB: node 1 is [2, 3) GiB and [4, 5) GiB, around the MMIO hole. */
	CHECK(build(2, 2, 4 * GiB, &t, err) == 0);
	CHECK_EQ(topo_node_ranges(&t, 0, r), 1);
	CHECK_EQ(r[0].gpa, 0);
	CHECK_EQ(r[0].size, 2 * GiB);
	CHECK_EQ(topo_node_ranges(&t, 1, r), 2);
	CHECK_EQ(r[0].gpa, 2 * GiB);
	CHECK_EQ(r[0].size, 1 * GiB);
	CHECK_EQ(r[1].gpa, 4 * GiB);
	CHECK_EQ(r[1].size, 1 * GiB);
	CHECK_EQ(topo_node_of_ram(&t, 0), 0);
	CHECK_EQ(topo_node_of_ram(&t, 2 * GiB - 1), 0);
	CHECK_EQ(topo_node_of_ram(&t, 2 * GiB), 1);
	CHECK_EQ(topo_gpa_to_ram(&t, 4 * GiB), (int64_t)(3 * GiB));
	CHECK_EQ(topo_gpa_to_ram(&t, 3 * GiB + 5), (uint64_t)-1);

	/* 2 x 3 GiB: node 0 ends exactly at the hole, node 1 lies above 4 GiB. */
	CHECK(build(2, 2, 6 * GiB, &t, err) == 0);
	CHECK_EQ(topo_node_ranges(&t, 0, r), 1);
	CHECK_EQ(r[0].size, 3 * GiB);
	CHECK_EQ(topo_node_ranges(&t, 1, r), 1);
	CHECK_EQ(r[0].gpa, 4 * GiB);
	CHECK_EQ(r[0].size, 3 * GiB);
}

static void test_host_limits(void)
{
	static struct vm_topology t;
	struct topo_params p = params(2, 2, 4 * GiB);
	char err[TOPO_ERR_MAX];

	p.host_ram_limit = 3 * GiB;
	CHECK(topo_build(&p, &t, err) == -1);
	CHECK(strstr(err, "4 GiB") && strstr(err, "3 GiB") && strstr(err, "2 NUMA nodes"));
	/* A cluster instance holds only its own node. */
	p.host_nodes = 1;
	CHECK(topo_build(&p, &t, err) == 0);

	/* RAM ending beyond the host's physical address width. */
	p = params(1, 1, 1ull << host_phys_bits(synthetic));
	CHECK(topo_build(&p, &t, err) == -1);
	CHECK(strstr(err, "physical address space"));
}

static void test_distances(void)
{
	static struct vm_topology t;
	struct topo_params p = params(3, 3, 3 * GiB);
	char err[TOPO_ERR_MAX];

	CHECK(topo_build(&p, &t, err) == 0);
	for (unsigned i = 0; i < 3; i++)
		for (unsigned j = 0; j < 3; j++)
			CHECK_EQ(t.distance[i][j], i == j ? 10 : 20);
	p.remote_distance = 31;
	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.distance[2][0], 31);
	CHECK_EQ(t.distance[1][1], 10);
	p.remote_distance = 10;
	CHECK(topo_build(&p, &t, err) == -1 && strstr(err, "11 to 254"));
	p.remote_distance = 255;
	CHECK(topo_build(&p, &t, err) == -1);
}

/*
 * Several NUMA nodes per instance (--numa host): nodes n..n+k-1 on one
 * instance, the host's distances between them, twice the largest between
 * instances unless given, and the checks that keep the levels in order.
 */
static void test_nodes_per_instance(void)
{
	static struct vm_topology t;
	struct topo_params p = params(4, 8, 1 * GiB);
	char err[TOPO_ERR_MAX];

	p.nr_instances = 2;
	p.host_distance[0][1] = p.host_distance[1][0] = 21;
	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.nr_instances, 2);
	CHECK_EQ(t.nodes_per_instance, 2);
	CHECK_EQ(topo_instance_of_node(&t, 1), 0);
	CHECK_EQ(topo_instance_of_node(&t, 2), 1);
	CHECK_EQ(topo_instance_of_cpu(&t, 3), 0);
	CHECK_EQ(topo_instance_of_cpu(&t, 4), 1);
	CHECK_EQ(topo_instance_node(&t, 1)->first_cpu, 4);
	CHECK_EQ(topo_instance_node(&t, 1)->ram_offset, 512 * MiB);
	CHECK_EQ(t.distance[0][1], 21);
	CHECK_EQ(t.distance[2][3], 21);
	CHECK_EQ(t.distance[3][2], 21);
	CHECK_EQ(t.distance[0][2], 42);
	CHECK_EQ(t.distance[1][3], 42);
	CHECK_EQ(t.distance[3][3], 10);
	/* no host distances known: 20 inside, 40 across */
	memset(p.host_distance, 0, sizeof(p.host_distance));
	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.distance[0][1], 20);
	CHECK_EQ(t.distance[1][2], 40);
	/* a given remote distance, more than the host's */
	p.remote_distance = 30;
	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.distance[0][3], 30);
	CHECK_EQ(t.distance[0][1], 20);
	/* ... but not one that puts the other host nearer than this host's other node */
	p.remote_distance = 20;
	CHECK(topo_build(&p, &t, err) == -1 && strstr(err, "not more than"));
	p.remote_distance = 0;
	p.host_distance[0][1] = 5;
	CHECK(topo_build(&p, &t, err) == -1 && strstr(err, "out of range"));
	p.host_distance[0][1] = 0;
	/* nodes must divide among the instances, and 8 at most per instance */
	p.nr_instances = 3;
	CHECK(topo_build(&p, &t, err) == -1 && strstr(err, "multiple of 3"));
	p = params(18, 18, 18 * 2 * MiB);
	p.nr_instances = 2;
	CHECK(topo_build(&p, &t, err) == -1 && strstr(err, "at most 8"));
	/* one node per instance: 20 between them, as before */
	p = params(2, 2, 512 * MiB);
	p.nr_instances = 2;
	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.nodes_per_instance, 1);
	CHECK_EQ(t.distance[0][1], 20);
}

static void test_defaults(void)
{
	static struct vm_topology t;
	struct topo_params p = params(2, 0, 0);
	char err[TOPO_ERR_MAX];

	/* The synthetic host has 8 cores and 16 GiB: 4 cores per node, 4 GiB each. */
	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.nr_cpus, 8);
	CHECK_EQ(t.ram_size, 8 * GiB);
	p.host_nodes = 1;
	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.nr_cpus, 16);
	CHECK_EQ(t.ram_size, 16 * GiB);
}

static void test_caches(void)
{
	static struct vm_topology t;
	struct topo_params p = params(2, 8, 2 * GiB);
	char err[TOPO_ERR_MAX];

	/* From the synthetic host: L1d 32K, L1i 32K, L2 1M, L3 24M (sizes only). */
	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.nr_caches, 4);
	CHECK_EQ(t.caches[0].level, 1);
	CHECK_EQ(t.caches[0].type, TOPO_CACHE_DATA);
	CHECK_EQ(t.caches[0].size, 32 << 10);
	CHECK_EQ(t.caches[1].type, TOPO_CACHE_INST);
	CHECK_EQ(t.caches[2].level, 2);
	CHECK_EQ(t.caches[2].size, 1 << 20);
	CHECK_EQ(t.caches[2].shared_by, 1);
	CHECK_EQ(t.caches[3].level, 3);
	CHECK_EQ(t.caches[3].type, TOPO_CACHE_UNIFIED);
	CHECK_EQ(t.caches[3].size, 24 << 20);
	CHECK_EQ(t.caches[3].shared_by, 4); /* the node's 4 vCPUs */
	for (unsigned i = 0; i < t.nr_caches; i++) {
		CHECK_EQ(t.caches[i].line_size, 64);
		CHECK_EQ(t.caches[i].ways, 16);
		CHECK_EQ(t.caches[i].size % (t.caches[i].ways * t.caches[i].line_size), 0);
	}

	/* Given caches win, and odd geometries are made expressible. */
	p.nr_caches = 2;
	p.caches[0] = (struct topo_cache){ .level = 1, .type = TOPO_CACHE_DATA,
					   .size = 48 << 10, .line_size = 64, .ways = 12 };
	p.caches[1] = (struct topo_cache){ .level = 3, .type = TOPO_CACHE_UNIFIED,
					   .size = 1000000, .line_size = 0, .ways = 0 };
	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.nr_caches, 2);
	CHECK_EQ(t.caches[0].size, 48 << 10);
	CHECK_EQ(t.caches[0].ways, 12);
	CHECK_EQ(t.caches[1].line_size, 64);
	CHECK_EQ(t.caches[1].size, 1000000 / 1024 * 1024);
	p.caches[1].type = 7;
	CHECK(topo_build(&p, &t, err) == -1 && strstr(err, "unknown type"));
}

/* Without a host, topo_build reads this machine's topology itself. */
static void test_real_host(void)
{
	static struct vm_topology t;
	struct topo_params p = { .nr_nodes = 2, .nr_cpus = 2, .ram_size = 64 * MiB };
	char err[TOPO_ERR_MAX];

	CHECK(topo_build(&p, &t, err) == 0);
	CHECK_EQ(t.nr_nodes, 2);
	CHECK(t.nr_caches >= 1);
	p.ram_size = 1ull << 45;
	CHECK(topo_build(&p, &t, err) == -1);
	CHECK(strstr(err, "more than") || strstr(err, "physical address"));
}

/* topo_print is a stable interface: scripts and users parse it. */
static void test_print(void)
{
	static struct vm_topology t;
	struct topo_params p = params(2, 6, 6 * GiB);
	char err[TOPO_ERR_MAX], *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	static const char want[] =
		"machine: 6 vCPUs, 2 NUMA nodes, 6 GiB RAM\n"
		"shape: 2 packages (one per node), 3 cores per package, 1 thread per core\n"
		"node 0: cpus 0-2, apic-ids 0-2, memory 3 GiB\n"
		"node 0: range 0x0-0xbfffffff (3 GiB)\n"
		"node 1: cpus 3-5, apic-ids 4-6, memory 3 GiB\n"
		"node 1: range 0x100000000-0x1bfffffff (3 GiB)\n"
		"distances:\n"
		"          0    1\n"
		"     0   10   20\n"
		"     1   20   10\n"
		"cache L1d: 32 KiB, 16-way, 64-byte lines, one per core\n"
		"cache L1i: 32 KiB, 16-way, 64-byte lines, one per core\n"
		"cache L2: 1 MiB, 16-way, 64-byte lines, one per core\n"
		"cache L3: 24 MiB, 16-way, 64-byte lines, one per node, shared by its 3 vCPUs\n"
		"cpu 0: apic-id 0, node 0, package 0, core 0, thread 0\n"
		"cpu 1: apic-id 1, node 0, package 0, core 1, thread 0\n"
		"cpu 2: apic-id 2, node 0, package 0, core 2, thread 0\n"
		"cpu 3: apic-id 4, node 1, package 1, core 0, thread 0\n"
		"cpu 4: apic-id 5, node 1, package 1, core 1, thread 0\n"
		"cpu 5: apic-id 6, node 1, package 1, core 2, thread 0\n";

	CHECK(topo_build(&p, &t, err) == 0);
	topo_print(&t, f);
	fclose(f);
	CHECK_STR(out, want);
	free(out);
}

int main(void)
{
	char err[HOST_ERR_MAX];

	synthetic = host_open_synthetic("pack:1 [numa(memory=17179869184)] l3u:1(size=25165824) "
					"core:8 l2u:1(size=1048576) l1d:1(size=32768) "
					"l1i:1(size=32768) pu:2", err);
	if (!synthetic) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	RUN(test_one_cpu);
	RUN(test_apic_ids);
	RUN(test_many_cpus);
	RUN(test_bad_counts);
	RUN(test_memory_ranges);
	RUN(test_host_limits);
	RUN(test_distances);
	RUN(test_nodes_per_instance);
	RUN(test_defaults);
	RUN(test_caches);
	RUN(test_real_host);
	RUN(test_print);
	host_close(synthetic);
	return check_summary();
}
