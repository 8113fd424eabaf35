/*
 * images/probe/acpi.c, the probe's ACPI reader, on the tables gvm builds
 * (vmm/x86/acpi.c) for several shapes, against the topology they were built
 * from; then on copies of those tables with one thing wrong each, which the
 * reader must report.  (tests/probe/qemu.t runs it on QEMU's tables.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images/probe/acpi.h"
#include "tests/lib/check.h"
#include "vmm/host.h"
#include "vmm/topo.h"
#include "vmm/x86/acpi.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

static struct host *host;

struct image {
	uint8_t buf[ACPI_MAX_SIZE];
	long len;
	uint64_t rsdp;
};

static struct image img;
static struct acpi_topo at;

static const void *img_map(void *ctx, uint64_t phys, uint64_t len)
{
	struct image *im = ctx;

	if (phys < ACPI_BASE_GPA || phys - ACPI_BASE_GPA + len > (uint64_t)im->len)
		return NULL;
	return im->buf + (phys - ACPI_BASE_GPA);
}

static const struct acpi_access img_access = { img_map, &img };

static void build(unsigned nodes, unsigned cpus, uint64_t ram, struct vm_topology *t)
{
	struct topo_params p = { .nr_nodes = nodes, .nr_cpus = cpus, .ram_size = ram,
				 .host = host, .host_ram_limit = UINT64_MAX };
	char err[TOPO_ERR_MAX > 256 ? TOPO_ERR_MAX : 256];

	if (topo_build(&p, t, err)) {
		fprintf(stderr, "topo_build: %s\n", err);
		exit(1);
	}
	img.len = acpi_build(t, img.buf, ACPI_BASE_GPA, sizeof(img.buf), &img.rsdp, err);
	if (img.len < 0) {
		fprintf(stderr, "acpi_build: %s\n", err);
		exit(1);
	}
}

static uint8_t *tab(uint64_t gpa)
{
	return img.buf + (gpa - ACPI_BASE_GPA);
}

static void fix_checksum(uint64_t gpa)
{
	uint8_t *p = tab(gpa), s = 0;
	uint32_t len = p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24;

	p[9] = 0;
	for (uint32_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	p[9] = (uint8_t)-s;
}

static void check_shape(unsigned nodes, unsigned cpus, uint64_t ram)
{
	struct vm_topology *t = calloc(1, sizeof(*t));
	char sums[512];

	build(nodes, cpus, ram, t);
	CHECK_EQ(acpi_parse(&img_access, img.rsdp, &at), 0);
	if (at.nr_errors)
		fprintf(stderr, "%s", at.errors);
	CHECK_EQ(acpi_verify_checksums(&img_access, img.rsdp, sums, sizeof(sums)), 0);
	CHECK(at.madt && at.srat && at.slit);
	CHECK_EQ(at.lapic_addr, 0xfee00000);
	CHECK_EQ(at.nr_ioapics, 1);
	/* soft-off: where gvm listens, with the SLP_TYP it stops at */
	CHECK_EQ(at.pm1a_cnt, ACPI_PM1A_CNT_PORT);
	CHECK_EQ(at.s5_typ, ACPI_SLP_TYP_S5);
	CHECK_EQ(at.nr_cpus, cpus);
	for (unsigned i = 0; i < cpus && i < at.nr_cpus; i++) {
		CHECK_EQ(at.cpus[i].apic_id, t->cpus[i].apic_id);
		CHECK_EQ(at.cpus[i].domain, t->cpus[i].node);
		/* x2APIC entries (MADT type 9, SRAT type 2) for the IDs xAPIC cannot hold */
		CHECK_EQ(at.cpus[i].x2apic, t->cpus[i].apic_id > 254);
	}
	CHECK_EQ(at.nr_domains, nodes);
	for (unsigned n = 0; n < nodes && n < at.nr_domains; n++) {
		struct topo_range r[TOPO_NODE_RANGES_MAX];
		unsigned nr = topo_node_ranges(t, n, r), k = 0;

		CHECK_EQ(at.domains[n], n);
		for (unsigned m = 0; m < at.nr_mem; m++) {
			if (at.mem[m].domain != n)
				continue;
			CHECK(k < nr && at.mem[m].base == r[k].gpa && at.mem[m].len == r[k].size);
			k++;
		}
		CHECK_EQ(k, nr);
		for (unsigned j = 0; j < nodes; j++)
			CHECK_EQ(at.distance[n][j], t->distance[n][j]);
	}
	free(t);
}

static void test_shapes(void)
{
	check_shape(1, 1, 256 * MiB);
	check_shape(1, 2, 512 * MiB);
	check_shape(2, 2, 512 * MiB);
	check_shape(2, 4, 512 * MiB);
	check_shape(2, 6, 8 * GiB); /* node 0 crosses the hole below 4 GiB */
	check_shape(3, 9, 3 * GiB);
	check_shape(4, 8, 1 * GiB);
	check_shape(2, 254, 2 * GiB);
	check_shape(1, 255, 1 * GiB);
	check_shape(2, 300, 2 * GiB); /* x2APIC: IDs 256-405 on node 1 */
	check_shape(4, 1024, 4 * GiB);
}

/* Each case: a fresh (2 nodes, 4 vCPUs) set, one change, the message expected. */
static void expect_problem(const char *what, const char *needle)
{
	unsigned n = acpi_parse(&img_access, img.rsdp, &at);

	if (!n || !strstr(at.errors, needle)) {
		check_state.failures++;
		fprintf(stderr, "%s: %s: expected a problem mentioning '%s', got %u: %s\n",
			check_state.current, what, needle, n, at.errors);
	}
	check_state.checks++;
}

static void test_wrong_tables(void)
{
	struct vm_topology *t = calloc(1, sizeof(*t));
	char sums[512];
	uint8_t *p;

	/* An SRAT processor entry with an APIC ID the MADT does not have. */
	build(2, 4, 512 * MiB, t);
	acpi_parse(&img_access, img.rsdp, &at);
	p = tab(at.srat) + 48;
	CHECK(p[0] == 0);
	p[3] = 9;
	fix_checksum(at.srat);
	expect_problem("SRAT APIC ID", "APIC ID 9 (domain 0) is not an enabled MADT processor");
	expect_problem("SRAT APIC ID", "no proximity domain for APIC ID 0");

	/* Two MADT processors with one APIC ID. */
	build(2, 4, 512 * MiB, t);
	acpi_parse(&img_access, img.rsdp, &at);
	for (p = tab(at.madt) + 44; p[0] != 0; p += p[1])
		;
	p[p[1] + 3] = p[3];
	fix_checksum(at.madt);
	expect_problem("MADT duplicate", "APIC ID 0 listed twice");

	/* A processor put in the wrong node: consistent, so only the topology shows it. */
	build(2, 4, 512 * MiB, t);
	acpi_parse(&img_access, img.rsdp, &at);
	p = tab(at.srat) + 48;
	p[2] = 1;
	fix_checksum(at.srat);
	CHECK_EQ(acpi_parse(&img_access, img.rsdp, &at), 0);
	CHECK_EQ(at.cpus[0].domain, 1);

	/* SLIT: a diagonal that is not 10, an asymmetric pair, too few localities. */
	build(2, 4, 512 * MiB, t);
	acpi_parse(&img_access, img.rsdp, &at);
	tab(at.slit)[44] = 11;
	fix_checksum(at.slit);
	expect_problem("SLIT diagonal", "distance(0, 0) = 11, must be 10");
	build(2, 4, 512 * MiB, t);
	tab(at.slit)[45] = 30;
	fix_checksum(at.slit);
	expect_problem("SLIT asymmetric", "distance(0, 1) = 30 but distance(1, 0) = 20");
	build(2, 4, 512 * MiB, t);
	tab(at.slit)[45] = 10;
	tab(at.slit)[46] = 10;
	fix_checksum(at.slit);
	expect_problem("SLIT remote 10", "must be > 10");
	build(2, 4, 512 * MiB, t);
	tab(at.slit)[36] = 1;
	fix_checksum(at.slit);
	expect_problem("SLIT size", "1 localities, but the SRAT has domain 1");

	/* SRAT memory ranges that overlap. */
	build(2, 4, 512 * MiB, t);
	acpi_parse(&img_access, img.rsdp, &at);
	for (p = tab(at.srat) + 48; !(p[0] == 1 && p[2] == 1); p += p[1])
		;
	memset(p + 8, 0, 4);
	fix_checksum(at.srat);
	expect_problem("SRAT overlap", "overlaps");

	/* A bad checksum: the reader still reads, the checksum pass says which table. */
	build(2, 4, 512 * MiB, t);
	acpi_parse(&img_access, img.rsdp, &at);
	tab(at.madt)[40] ^= 1;
	CHECK_EQ(acpi_verify_checksums(&img_access, img.rsdp, sums, sizeof(sums)), 1);
	CHECK(strstr(sums, "APIC at 0x") && strstr(sums, "bad checksum"));
	img.buf[8] ^= 1;
	CHECK_EQ(acpi_verify_checksums(&img_access, img.rsdp, sums, sizeof(sums)), 2);
	CHECK(strstr(sums, "RSDP at 0xe0000: bad checksum"));

	/* No RSDP; no processors; a MADT entry whose length runs past the table. */
	build(2, 4, 512 * MiB, t);
	img.buf[0] = 'X';
	expect_problem("RSDP", "no RSDP at 0xe0000");
	build(2, 4, 512 * MiB, t);
	acpi_parse(&img_access, img.rsdp, &at);
	for (p = tab(at.madt) + 44; p < tab(at.madt) + (tab(at.madt)[4] | tab(at.madt)[5] << 8);
	     p += p[1])
		if (p[0] == 0)
			p[4] = 0;
	fix_checksum(at.madt);
	expect_problem("no CPUs", "MADT: no enabled processor");
	CHECK_EQ(at.nr_disabled, 4);
	build(2, 4, 512 * MiB, t);
	acpi_parse(&img_access, img.rsdp, &at);
	tab(at.madt)[45] = 200;
	fix_checksum(at.madt);
	expect_problem("MADT entry length", "MADT: malformed entry at offset 44");
	/* The XSDT pointing outside memory. */
	build(2, 4, 512 * MiB, t);
	acpi_parse(&img_access, img.rsdp, &at);
	{
		uint8_t *x = tab(img.buf[24] | img.buf[25] << 8 | img.buf[26] << 16);

		x[36 + 8 * 1 + 3] = 0x40;
		fix_checksum(x - img.buf + ACPI_BASE_GPA);
	}
	expect_problem("XSDT", "outside memory");
	free(t);
}

int main(void)
{
	char err[256];

	host = host_open_synthetic("pack:1 core:4 l2u:1(size=1048576) l1d:1(size=32768) pu:1", err);
	if (!host) {
		fprintf(stderr, "host_open_synthetic: %s\n", err);
		return 1;
	}
	RUN(test_shapes);
	RUN(test_wrong_tables);
	host_close(host);
	return check_summary();
}
