/*
 * vmm/x86/acpi.c: the tables as a guest finds them, RSDP -> XSDT -> each
 * table, with every checksum; the MADT/SRAT/SLIT contents walked subtable by
 * subtable; capacity and address errors; acpi_dump's files.  tests/acpi/
 * has the other reader, iasl.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/lib/check.h"
#include "vmm/host.h"
#include "vmm/topo.h"
#include "vmm/x86/acpi.h"

#define GiB (1ull << 30)

static struct host *host;
static uint8_t image[ACPI_MAX_SIZE];

static uint32_t rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static void topo(unsigned nodes, unsigned cpus, uint64_t ram, struct vm_topology *t)
{
	struct topo_params p = { .nr_nodes = nodes, .nr_cpus = cpus, .ram_size = ram,
				 .host = host, .host_ram_limit = UINT64_MAX };
	char err[TOPO_ERR_MAX];

	if (topo_build(&p, t, err)) {
		fprintf(stderr, "topo_build: %s\n", err);
		exit(1);
	}
}

/* A guest-physical address inside the image, or NULL. */
static const uint8_t *at(uint64_t base, long len, uint64_t gpa, size_t need)
{
	if (gpa < base || gpa - base + need > (uint64_t)len)
		return NULL;
	return image + (gpa - base);
}

/* Find a table through the XSDT (or FADT for FACS/DSDT) and check its checksum. */
static const uint8_t *find(uint64_t base, long len, const char *sig)
{
	const uint8_t *rsdp = image, *xsdt, *t;
	uint32_t n;

	xsdt = at(base, len, rd64(rsdp + 24), 36);
	if (!xsdt)
		return NULL;
	if (!strcmp(sig, "XSDT"))
		return xsdt;
	n = (rd32(xsdt + 4) - 36) / 8;
	for (uint32_t i = 0; i < n; i++) {
		t = at(base, len, rd64(xsdt + 36 + 8 * i), 36);
		if (!t || !at(base, len, rd64(xsdt + 36 + 8 * i), rd32(t + 4)))
			return NULL;
		if (!memcmp(t, sig, 4)) {
			CHECK_EQ(sum(t, rd32(t + 4)), 0);
			return t;
		}
		if (!memcmp(t, "FACP", 4) && (!strcmp(sig, "DSDT") || !strcmp(sig, "FACS"))) {
			const uint8_t *x = at(base, len, rd64(t + (sig[0] == 'D' ? 140 : 132)), 36);

			if (x && !memcmp(x, sig, 4)) {
				if (sig[0] == 'D')
					CHECK_EQ(sum(x, rd32(x + 4)), 0);
				return x;
			}
		}
	}
	return NULL;
}

static void test_rsdp_chain(void)
{
	static struct vm_topology t;
	char err[ACPI_ERR_MAX];
	uint64_t rsdp = 0, base = ACPI_BASE_GPA;
	long len;

	topo(2, 4, 2 * GiB, &t);
	memset(image, 0xa5, sizeof(image));
	len = acpi_build(&t, image, base, sizeof(image), &rsdp, err);
	CHECK(len > 0 && len < (long)sizeof(image));
	CHECK_EQ(rsdp, base);
	CHECK(!memcmp(image, "RSD PTR ", 8));
	CHECK_EQ(sum(image, 20), 0);
	CHECK_EQ(sum(image, 36), 0);
	CHECK_EQ(image[15], 2);           /* revision */
	CHECK_EQ(rd32(image + 16), 0);    /* no RSDT */
	CHECK_EQ(rd32(image + 20), 36);
	CHECK_EQ(rd64(image + 24) % 8, 0);
	for (const char *const *s = (const char *const[]){ "APIC", "SRAT", "SLIT", "FACP", "DSDT",
							  "FACS", NULL }; *s; s++) {
		const uint8_t *p = find(base, len, *s);

		CHECK(p != NULL);
		if (!p)
			fprintf(stderr, "table %s not reachable from the RSDP\n", *s);
		else
			CHECK_EQ((p - image) % 8, 0);
	}
	/* A second build at another base moves every pointer with it. */
	uint64_t base2 = 0x9f000;
	len = acpi_build(&t, image, base2, sizeof(image), &rsdp, err);
	CHECK(find(base2, len, "SRAT") && find(base2, len, "DSDT"));
}

static void test_madt(void)
{
	static struct vm_topology t;
	char err[ACPI_ERR_MAX];
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
	const uint8_t *m, *p, *end;
	long len;

	topo(3, 6, 3 * GiB, &t);
	len = acpi_build(&t, image, ACPI_BASE_GPA, sizeof(image), NULL, err);
	m = find(ACPI_BASE_GPA, len, "APIC");
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK_EQ(rd32(m + 36), ACPI_LAPIC_GPA);
	end = m + rd32(m + 4);
	for (p = m + 44; p < end && p[1]; p += p[1]) {
		switch (p[0]) {
		case 0:
			CHECK_EQ(p[2], lapics);                    /* UID */
			CHECK_EQ(p[3], t.cpus[lapics].apic_id);    /* 0 1 | 2 3 | 4 5 */
			CHECK_EQ(p[3], (lapics / 2) << 1 | (lapics % 2));
			CHECK_EQ(rd32(p + 4), 1);
			lapics++;
			break;
		case 1:
			CHECK_EQ(rd32(p + 4), ACPI_IOAPIC_GPA);
			CHECK_EQ(rd32(p + 8), 0);
			ioapics++;
			break;
		case 2:
			if (p[3] == 0)
				CHECK_EQ(rd32(p + 4), 2);
			isos++;
			break;
		case 4:
			CHECK_EQ(p[2], 0xff);
			CHECK_EQ(p[5], 1);
			nmis++;
			break;
		default:
			CHECK(!"unexpected MADT entry");
		}
	}
	CHECK(p == end);
	CHECK_EQ(lapics, 6);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(isos, 2);
	CHECK_EQ(nmis, 1);
}

static void test_srat_slit(void)
{
	static struct vm_topology t;
	char err[ACPI_ERR_MAX];
	struct { uint64_t base, len; uint32_t pd; } mem[8];
	unsigned cpus = 0, nmem = 0;
	const uint8_t *s, *p, *end;
	long len;

	/* 3 x 2 GiB: node 1 straddles the hole. */
	topo(3, 3, 6 * GiB, &t);
	len = acpi_build(&t, image, ACPI_BASE_GPA, sizeof(image), NULL, err);
	s = find(ACPI_BASE_GPA, len, "SRAT");
	CHECK(s != NULL);
	if (!s)
		return;
	end = s + rd32(s + 4);
	for (p = s + 48; p < end && p[1]; p += p[1]) {
		if (p[0] == 0) {
			CHECK_EQ(p[1], 16);
			CHECK_EQ(p[3], t.cpus[cpus].apic_id);
			CHECK_EQ(p[2] | p[9] << 8 | p[10] << 16 | p[11] << 24, cpus);
			CHECK_EQ(rd32(p + 4) & 1, 1);
			cpus++;
		} else if (p[0] == 1 && nmem < 8) {
			CHECK_EQ(p[1], 40);
			CHECK_EQ(rd32(p + 28) & 1, 1);
			mem[nmem].pd = rd32(p + 2);
			mem[nmem].base = rd64(p + 8);
			mem[nmem].len = rd64(p + 16);
			nmem++;
		} else {
			CHECK(!"unexpected SRAT entry");
		}
	}
	CHECK(p == end);
	CHECK_EQ(cpus, 3);
	CHECK_EQ(nmem, 4);
	CHECK(mem[0].pd == 0 && mem[0].base == 0 && mem[0].len == 2 * GiB);
	CHECK(mem[1].pd == 1 && mem[1].base == 2 * GiB && mem[1].len == 1 * GiB);
	CHECK(mem[2].pd == 1 && mem[2].base == 4 * GiB && mem[2].len == 1 * GiB);
	CHECK(mem[3].pd == 2 && mem[3].base == 5 * GiB && mem[3].len == 2 * GiB);

	s = find(ACPI_BASE_GPA, len, "SLIT");
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_EQ(rd64(s + 36), 3);
	CHECK_EQ(rd32(s + 4), 44 + 9);
	for (unsigned i = 0; i < 3; i++)
		for (unsigned j = 0; j < 3; j++)
			CHECK_EQ(s[44 + 3 * i + j], i == j ? 10 : 20);
}

static void test_fadt(void)
{
	static struct vm_topology t;
	char err[ACPI_ERR_MAX];
	const uint8_t *f;
	long len;

	topo(1, 1, 1 * GiB, &t);
	len = acpi_build(&t, image, ACPI_BASE_GPA, sizeof(image), NULL, err);
	f = find(ACPI_BASE_GPA, len, "FACP");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK_EQ(rd32(f + 4), 276);
	CHECK_EQ(f[8], 6);
	CHECK_EQ(rd32(f + 112) & (1u << 20), 0);             /* not hardware-reduced */
	CHECK_EQ(f[46] | f[47] << 8, ACPI_SCI_IRQ);
	CHECK_EQ(rd32(f + 48), 0);                           /* no SMI_CMD */
	CHECK_EQ(rd32(f + 56), ACPI_PM1A_EVT_PORT);
	CHECK_EQ(rd32(f + 64), ACPI_PM1A_CNT_PORT);
	CHECK_EQ(rd64(f + 148 + 4), ACPI_PM1A_EVT_PORT);     /* X_PM1a_EVT_BLK address */
	CHECK(find(ACPI_BASE_GPA, len, "FACS") != NULL);
	CHECK(find(ACPI_BASE_GPA, len, "DSDT") != NULL);
	CHECK_EQ((find(ACPI_BASE_GPA, len, "FACS") - image) % 64, 0);
}

static void test_limits(void)
{
	static struct vm_topology t;
	char err[ACPI_ERR_MAX];
	long len;

	topo(1, 255, 1 * GiB, &t);
	len = acpi_build(&t, image, ACPI_BASE_GPA, sizeof(image), NULL, err);
	CHECK(len > 0 && len < 16384);
	CHECK(find(ACPI_BASE_GPA, len, "SRAT") != NULL);
	CHECK_EQ(acpi_build(&t, image, ACPI_BASE_GPA, 1024, NULL, err), -1);
	CHECK(strstr(err, "255 vCPUs") && strstr(err, "1024 bytes"));
	CHECK_EQ(acpi_build(&t, image, 0xfffff000, 0x2000, NULL, err), -1);
	CHECK(strstr(err, "4 GiB"));
	CHECK_EQ(acpi_build(&t, image, ACPI_BASE_GPA + 4, sizeof(image), NULL, err), -1);

	/* The largest topology fits the window the VMM reserves. */
	topo(64, 192, 64 * 2 * GiB / 16, &t);
	len = acpi_build(&t, image, ACPI_BASE_GPA, sizeof(image), NULL, err);
	CHECK(len > 0 && len <= ACPI_MAX_SIZE);
	CHECK(find(ACPI_BASE_GPA, len, "SLIT") != NULL);
}

static void test_dump(void)
{
	static struct vm_topology t;
	char dir[] = "/tmp/gvm-acpi-XXXXXX", path[64], err[ACPI_ERR_MAX];
	static const char *const names[] = { "RSDP", "XSDT", "FACP", "FACS", "DSDT", "APIC",
					     "SRAT", "SLIT" };
	struct stat st;
	long len;

	topo(2, 2, 2 * GiB, &t);
	len = acpi_build(&t, image, ACPI_BASE_GPA, sizeof(image), NULL, err);
	CHECK(mkdtemp(dir) != NULL);
	CHECK(acpi_dump(&t, dir, err) == 0);
	for (unsigned i = 0; i < 8; i++) {
		snprintf(path, sizeof(path), "%s/%s.dat", dir, names[i]);
		CHECK(stat(path, &st) == 0);
		if (i > 0 && i != 3) {
			/* The file is the table as the guest sees it. */
			const uint8_t *tab = find(ACPI_BASE_GPA, len, names[i]);
			uint8_t file[8192];
			FILE *f = fopen(path, "rb");
			size_t n = f ? fread(file, 1, sizeof(file), f) : 0;

			if (f)
				fclose(f);
			CHECK(tab && n == rd32(tab + 4) && !memcmp(file, tab, n));
		}
		unlink(path);
	}
	rmdir(dir);
	CHECK(acpi_dump(&t, "/nonexistent/dir", err) == -1);
	CHECK(strstr(err, "/nonexistent/dir/RSDP.dat") != NULL);
}

int main(void)
{
	char err[HOST_ERR_MAX];

	host = host_open_synthetic("pack:1 core:4 l2u:1(size=1048576) l1d:1(size=32768) pu:1", err);
	if (!host) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	RUN(test_rsdp_chain);
	RUN(test_madt);
	RUN(test_srat_slit);
	RUN(test_fadt);
	RUN(test_limits);
	RUN(test_dump);
	host_close(host);
	return check_summary();
}
