/*
 * The boot loader: the zero page built from a bzImage header (a minimal fake
 * one made here, and a real one if the machine has one), ELF loading, the
 * e820 map, initrds and the command line.
 */
#include <elf.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/check.h"
#include "vmm/ram.h"
#include "vmm/x86/boot.h"

static char dir[] = "/tmp/gvm-test-boot.XXXXXX";

static uint16_t get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }

static const char *write_file(const char *name, const void *data, size_t len)
{
	static char path[8][256];
	static unsigned next;
	char *p = path[next++ % 8];
	FILE *f;

	snprintf(p, 256, "%s/%s", dir, name);
	f = fopen(p, "wb");
	if (!f || fwrite(data, 1, len, f) != len)
		perror(p);
	fclose(f);
	return p;
}

/* A bzImage that is all header: 4 setup sectors, then a recognisable body. */
#define FAKE_SETUP_SECTS 3
#define FAKE_BODY 5000
static uint8_t *fake_bzimage(size_t *len, uint16_t version, uint16_t xloadflags)
{
	size_t body_off = (FAKE_SETUP_SECTS + 1) * 512;
	uint8_t *b = calloc(1, body_off + FAKE_BODY);

	b[BP_SETUP_SECTS] = FAKE_SETUP_SECTS;
	put16(b + BP_BOOT_FLAG, 0xAA55);
	b[0x200] = 0xEB;
	b[0x201] = 0x6A; /* the header ends at 0x26C */
	memcpy(b + BP_HEADER, "HdrS", 4);
	put16(b + BP_VERSION, version);
	b[BP_LOADFLAGS] = 0x01;
	put32(b + BP_INITRD_ADDR_MAX, 0x7FFFFFFF);
	put32(b + BP_KERNEL_ALIGNMENT, 0x200000);
	b[BP_RELOCATABLE] = 1;
	put16(b + BP_XLOADFLAGS, xloadflags);
	put32(b + BP_CMDLINE_SIZE, 255);
	put32(b + BP_INIT_SIZE, 0x400000);
	b[0x26B] = 0x5A; /* last byte of the header: copied */
	b[0x26C] = 0xA5; /* first byte after it: not copied */
	for (unsigned i = 0; i < FAKE_BODY; i++)
		b[body_off + i] = (uint8_t)(i * 7 + 1);
	*len = body_off + FAKE_BODY;
	return b;
}

static void check_page_tables(struct guest_ram *ram)
{
	uint64_t *pml4 = guest_ram_ptr(ram, BOOT_PML4, 8);
	uint64_t *pdpt = guest_ram_ptr(ram, BOOT_PDPT, 32);
	uint64_t *pd = guest_ram_ptr(ram, BOOT_PD, 4 * 4096);
	uint64_t *gdt = guest_ram_ptr(ram, BOOT_GDT_ADDR, 48);

	CHECK_EQ(pml4[0] & ~0xFFFull, BOOT_PDPT);
	CHECK(pml4[0] & 1);
	for (unsigned g = 0; g < 4; g++)
		CHECK_EQ(pdpt[g] & ~0xFFFull, BOOT_PD + g * 4096);
	/* identity, 2 MiB pages, up to 4 GiB: the LAPIC page is mapped */
	CHECK_EQ(pd[0], 0x83);
	CHECK_EQ(pd[1], 0x200083);
	CHECK_EQ(pd[0xFEE00000 >> 21], (0xFEE00000ull & ~0x1FFFFFull) | 0x83);
	CHECK_EQ(pd[2047], 0xFFE00083ull);
	/* __BOOT_CS 64-bit code, __BOOT_DS data */
	CHECK_EQ(gdt[BOOT_CS / 8] >> 40 & 0xFF, 0x9B);
	CHECK(gdt[BOOT_CS / 8] >> 53 & 1); /* L */
	CHECK_EQ(gdt[BOOT_DS / 8] >> 40 & 0xFF, 0x93);
}

static void check_e820_in(const uint8_t *zp, uint64_t ram_size)
{
	struct e820_entry want[8];
	unsigned n = boot_e820(ram_size, want, 8);

	CHECK_EQ(zp[BP_E820_ENTRIES], n);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = zp + BP_E820_TABLE + 20 * i;

		CHECK_EQ(get64(e), want[i].addr);
		CHECK_EQ(get64(e + 8), want[i].size);
		CHECK_EQ(get32(e + 16), want[i].type);
	}
}

static void test_e820(void)
{
	struct e820_entry t[8];
	unsigned n;

	n = boot_e820(64 << 20, t, 8);
	CHECK_EQ(n, 3);
	CHECK_EQ(t[0].addr, 0);
	CHECK_EQ(t[0].size, 0x9FC00);
	CHECK_EQ(t[0].type, E820_RAM);
	CHECK_EQ(t[1].addr, 0x9FC00);
	CHECK_EQ(t[1].size, 0x100000 - 0x9FC00);
	CHECK_EQ(t[1].type, E820_RESERVED);
	CHECK_EQ(t[2].addr, 0x100000);
	CHECK_EQ(t[2].size, (64 << 20) - 0x100000);
	CHECK_EQ(t[2].type, E820_RAM);

	/* exactly 3 GiB: nothing above the hole */
	n = boot_e820(3ull << 30, t, 8);
	CHECK_EQ(n, 3);
	CHECK_EQ(t[2].addr + t[2].size, 3ull << 30);

	/* 6 GiB: 3 GiB below the hole, 3 GiB from 4 GiB up */
	n = boot_e820(6ull << 30, t, 8);
	CHECK_EQ(n, 4);
	CHECK_EQ(t[2].addr + t[2].size, 3ull << 30);
	CHECK_EQ(t[3].addr, 4ull << 30);
	CHECK_EQ(t[3].size, 3ull << 30);
	CHECK_EQ(t[3].type, E820_RAM);
	/* a short table still reports how many entries there are */
	CHECK_EQ(boot_e820(6ull << 30, t, 2), 4);
}

static void test_bzimage(void)
{
	struct guest_ram *ram = guest_ram_anon(64 << 20);
	char err[BOOT_ERR_MAX] = "";
	struct boot_entry e;
	enum boot_kind kind;
	size_t len;
	uint8_t *b = fake_bzimage(&len, 0x020F, 1);
	const char *k = write_file("bzImage", b, len);
	const char *i1 = write_file("initrd1", "ABCDE", 5);
	const char *i2 = write_file("initrd2", "12345678", 8);
	const char *initrds[] = { i1, i2 };
	struct boot_config c = {
		.kernel = k, .initrds = initrds, .nr_initrds = 2,
		.cmdline = "console=ttyS0 quiet", .rsdp_gpa = 0xE0000,
	};
	uint8_t *zp;

	CHECK_EQ(boot_probe(k, &kind, err), 0);
	CHECK_EQ(kind, BOOT_BZIMAGE);
	memset(ram->base, 0xAA, 2 << 20);
	CHECK_EQ(boot_load(ram, &c, &e, err), 0);
	if (err[0])
		printf("%s\n", err);
	zp = guest_ram_ptr(ram, BOOT_ZERO_PAGE, 4096);
	/* the image's header, as written */
	CHECK_EQ(memcmp(zp + BP_HDR, b + BP_HDR, BP_VID_MODE - BP_HDR), 0);
	CHECK_EQ(memcmp(zp + BP_VID_MODE + 2, b + BP_VID_MODE + 2, 0x210 - BP_VID_MODE - 2), 0);
	CHECK_EQ(get16(zp + BP_VERSION), 0x020F);
	CHECK_EQ(get32(zp + BP_HEADER), 0x53726448);
	CHECK_EQ(zp[0x26B], 0x5A);
	CHECK_EQ(zp[0x26C], 0);
	CHECK_EQ(get32(zp + BP_INIT_SIZE), 0x400000);
	/* the loader's fields */
	CHECK_EQ(zp[BP_TYPE_OF_LOADER], 0xFF);
	CHECK_EQ(zp[BP_LOADFLAGS] & 0x81, 0x81);
	CHECK_EQ(get16(zp + BP_VID_MODE), 0xFFFF);
	CHECK_EQ(get32(zp + BP_CMD_LINE_PTR), BOOT_CMDLINE);
	CHECK_EQ(get32(zp + BP_EXT_CMD_LINE_PTR), 0);
	CHECK_STR((char *)guest_ram_ptr(ram, BOOT_CMDLINE, 64), "console=ttyS0 quiet");
	CHECK_EQ(get64(zp + BP_ACPI_RSDP_ADDR), 0xE0000);
	check_e820_in(zp, 64 << 20);
	/* initrds: concatenated, each padded to 4 bytes, page-aligned at the top */
	uint32_t rd = get32(zp + BP_RAMDISK_IMAGE), rdlen = get32(zp + BP_RAMDISK_SIZE);

	CHECK_EQ(rdlen, 16);
	CHECK_EQ(rd % 4096, 0);
	CHECK(rd + rdlen <= (64u << 20) && rd + 4096 >= (64u << 20) - rdlen);
	CHECK_EQ(memcmp(guest_ram_ptr(ram, rd, 16), "ABCDE\0\0\0" "12345678", 16), 0);
	CHECK_EQ(get32(zp + BP_EXT_RAMDISK_IMAGE), 0);
	CHECK_EQ(e.initrd_start, rd);
	CHECK_EQ(e.initrd_size, 16);
	/* the protected-mode code at 1 MiB, entered at +0x200 */
	CHECK_EQ(memcmp(guest_ram_ptr(ram, BOOT_KERNEL_ADDR, FAKE_BODY),
			b + (FAKE_SETUP_SECTS + 1) * 512, FAKE_BODY), 0);
	CHECK_EQ(e.kind, BOOT_BZIMAGE);
	CHECK_EQ(e.rip, BOOT_KERNEL_ADDR + 0x200);
	CHECK_EQ(e.rsi, BOOT_ZERO_PAGE);
	CHECK_EQ(e.cr3, BOOT_PML4);
	/* init_size from 16 MiB must fit: the kernel's extent says so */
	CHECK_EQ(e.kernel_end, 0x1000000 + 0x400000);
	check_page_tables(ram);

	/* a command line longer than the kernel takes */
	char longcmd[300];

	memset(longcmd, 'x', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = 0;
	c.cmdline = longcmd;
	CHECK_EQ(boot_load(ram, &c, &e, err), -1);
	CHECK(strstr(err, "299 bytes long") && strstr(err, "at most 255"));
	c.cmdline = NULL;

	/* RAM too small for init_size above 16 MiB */
	guest_ram_release(ram);
	ram = guest_ram_anon(16 << 20);
	CHECK_EQ(boot_load(ram, &c, &e, err), -1);
	CHECK(strstr(err, "give the guest more memory"));
	guest_ram_release(ram);
	free(b);

	/* too old a boot protocol, and no 64-bit entry point */
	b = fake_bzimage(&len, 0x020B, 1);
	k = write_file("old", b, len);
	CHECK_EQ(boot_probe(k, &kind, err), -1);
	CHECK(strstr(err, "boot protocol 2.11") && strstr(err, "2.12 or later"));
	free(b);
	b = fake_bzimage(&len, 0x020F, 0);
	k = write_file("bz32", b, len);
	CHECK_EQ(boot_probe(k, &kind, err), -1);
	CHECK(strstr(err, "no 64-bit entry point"));
	free(b);
}

/* An ELF64 executable with a text segment and a data+bss segment. */
static uint8_t *fake_elf(size_t *len, uint64_t text_at, uint64_t data_at, uint64_t entry,
			 uint16_t machine)
{
	size_t size = 0x3000;
	uint8_t *b = calloc(1, size);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + sizeof(*eh));

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = machine;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 3;
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 0x1000, .p_vaddr = text_at,
			      .p_paddr = text_at, .p_filesz = 0x1000, .p_memsz = 0x1000 };
	ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 0x100, .p_filesz = 8 };
	ph[2] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 0x2000, .p_vaddr = data_at,
			      .p_paddr = data_at, .p_filesz = 0x800, .p_memsz = 0x3000 };
	memset(b + 0x1000, 0xC3, 0x1000);
	memset(b + 0x2000, 0x11, 0x1000);
	*len = size;
	return b;
}

static void test_elf(void)
{
	struct guest_ram *ram = guest_ram_anon(64 << 20);
	char err[BOOT_ERR_MAX] = "";
	struct boot_entry e;
	enum boot_kind kind;
	size_t len;
	uint8_t *b = fake_elf(&len, 0x200000, 0x400000, 0x200010, EM_X86_64);
	const char *k = write_file("guest.elf", b, len);
	struct boot_config c = { .kernel = k, .cmdline = "probe=1" };
	uint8_t *zp, *p;

	CHECK_EQ(boot_probe(k, &kind, err), 0);
	CHECK_EQ(kind, BOOT_ELF);
	memset(ram->base, 0xAA, 8 << 20);
	CHECK_EQ(boot_load(ram, &c, &e, err), 0);
	CHECK_EQ(e.kind, BOOT_ELF);
	CHECK_EQ(e.rip, 0x200010);
	CHECK_EQ(e.rsi, BOOT_ZERO_PAGE);
	CHECK_EQ(e.kernel_start, 0x200000);
	CHECK_EQ(e.kernel_end, 0x403000);
	p = guest_ram_ptr(ram, 0x200000, 0x1000);
	CHECK(p[0] == 0xC3 && p[0xFFF] == 0xC3);
	p = guest_ram_ptr(ram, 0x400000, 0x3000);
	CHECK(p[0] == 0x11 && p[0x7FF] == 0x11);
	CHECK(p[0x800] == 0 && p[0x2FFF] == 0); /* bss zeroed */
	CHECK_EQ(*(uint8_t *)guest_ram_ptr(ram, 0x403000, 1), 0xAA); /* nothing beyond */
	/* a synthesized setup header the guest can check */
	zp = guest_ram_ptr(ram, BOOT_ZERO_PAGE, 4096);
	CHECK_EQ(get32(zp + BP_HEADER), 0x53726448);
	CHECK_EQ(get16(zp + BP_VERSION), 0x020F);
	CHECK_EQ(get16(zp + BP_BOOT_FLAG), 0xAA55);
	CHECK_EQ(zp[BP_TYPE_OF_LOADER], 0xFF);
	CHECK_EQ(get32(zp + BP_CMD_LINE_PTR), BOOT_CMDLINE);
	CHECK_STR((char *)guest_ram_ptr(ram, BOOT_CMDLINE, 16), "probe=1");
	CHECK_EQ(get64(zp + BP_ACPI_RSDP_ADDR), 0);
	CHECK_EQ(get32(zp + BP_RAMDISK_SIZE), 0);
	check_e820_in(zp, 64 << 20);
	check_page_tables(ram);
	free(b);

	/* segments below 1 MiB, beyond RAM, an entry outside them, other machines */
	b = fake_elf(&len, 0x80000, 0x400000, 0x80000, EM_X86_64);
	c.kernel = write_file("low.elf", b, len);
	CHECK_EQ(boot_load(ram, &c, &e, err), -1);
	CHECK(strstr(err, "below 1 MiB"));
	free(b);
	b = fake_elf(&len, 0x200000, 0x8000000, 0x200000, EM_X86_64);
	c.kernel = write_file("high.elf", b, len);
	CHECK_EQ(boot_load(ram, &c, &e, err), -1);
	CHECK(strstr(err, "not in the guest's RAM"));
	free(b);
	b = fake_elf(&len, 0x200000, 0x400000, 0x300000, EM_X86_64);
	c.kernel = write_file("entry.elf", b, len);
	CHECK_EQ(boot_load(ram, &c, &e, err), -1);
	CHECK(strstr(err, "entry point 0x300000"));
	free(b);
	b = fake_elf(&len, 0x200000, 0x400000, 0x200000, EM_AARCH64);
	c.kernel = write_file("arm.elf", b, len);
	CHECK_EQ(boot_probe(c.kernel, &kind, err), -1);
	CHECK(strstr(err, "another machine"));
	free(b);
	b = fake_elf(&len, 0x200000, 0x400000, 0x200000, EM_X86_64);
	((Elf64_Ehdr *)b)->e_type = ET_DYN;
	c.kernel = write_file("pie.elf", b, len);
	CHECK_EQ(boot_probe(c.kernel, &kind, err), -1);
	CHECK(strstr(err, "not an ELF executable"));
	((Elf64_Ehdr *)b)->e_type = ET_EXEC;
	((Elf64_Ehdr *)b)->e_phnum = 300; /* table beyond the end of the file */
	c.kernel = write_file("phdr.elf", b, len);
	CHECK_EQ(boot_probe(c.kernel, &kind, err), -1);
	CHECK(strstr(err, "damaged ELF program header table"));
	free(b);

	/* an initrd too large for the RAM left */
	b = fake_elf(&len, 0x200000, 0x400000, 0x200000, EM_X86_64);
	c.kernel = write_file("ok.elf", b, len);
	free(b);
	size_t big = 63 << 20;
	uint8_t *blob = calloc(1, big);
	const char *rd = write_file("big.cpio", blob, big);

	free(blob);
	c.initrds = &rd;
	c.nr_initrds = 1;
	CHECK_EQ(boot_load(ram, &c, &e, err), -1);
	CHECK(strstr(err, "do not fit"));
	/* and a missing one */
	const char *missing = "/nonexistent/initrd";

	c.initrds = &missing;
	CHECK_EQ(boot_load(ram, &c, &e, err), -1);
	CHECK(strstr(err, "/nonexistent/initrd"));
	guest_ram_release(ram);

	/* not a kernel at all */
	k = write_file("text", "hello, world\n", 13);
	CHECK_EQ(boot_probe(k, &kind, err), -1);
	CHECK(strstr(err, "is not a kernel giantvm can boot"));
	CHECK_EQ(boot_probe("/nonexistent/kernel", &kind, err), -1);
	CHECK(strstr(err, "No such file"));
}

/* A real bzImage, if this machine has one (GVM_TEST_BZIMAGE, the Linux image, /boot). */
static void test_real_bzimage(void)
{
	const char *path = getenv("GVM_TEST_BZIMAGE");
	char err[BOOT_ERR_MAX];
	struct boot_entry e;
	enum boot_kind kind;
	glob_t g = { 0 };

	if (!path || access(path, R_OK)) {
		path = NULL;
		if (!glob("build/images/linux/bzImage", 0, NULL, &g) ||
		    !glob("/boot/vmlinuz-*", GLOB_APPEND, NULL, &g)) {
			for (size_t i = 0; i < g.gl_pathc && !path; i++)
				if (!access(g.gl_pathv[i], R_OK))
					path = g.gl_pathv[i];
		}
	}
	if (!path) {
		printf("(no real bzImage here: set GVM_TEST_BZIMAGE to test one)\n");
		globfree(&g);
		return;
	}
	printf("(real bzImage: %s)\n", path);
	CHECK_EQ(boot_probe(path, &kind, err), 0);
	CHECK_EQ(kind, BOOT_BZIMAGE);

	struct guest_ram *ram = guest_ram_anon(512 << 20);
	struct boot_config c = { .kernel = path, .cmdline = "console=ttyS0" };
	uint8_t *zp;

	CHECK_EQ(boot_load(ram, &c, &e, err), 0);
	zp = guest_ram_ptr(ram, BOOT_ZERO_PAGE, 4096);
	CHECK_EQ(get32(zp + BP_HEADER), 0x53726448);
	CHECK(get16(zp + BP_VERSION) >= 0x020C);
	CHECK(get16(zp + BP_XLOADFLAGS) & 1);
	CHECK_EQ(zp[BP_TYPE_OF_LOADER], 0xFF);
	CHECK_EQ(e.rip, BOOT_KERNEL_ADDR + 0x200);
	CHECK(e.kernel_end >= 0x1000000 + get32(zp + BP_INIT_SIZE));
	guest_ram_release(ram);
	globfree(&g);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_e820);
	RUN(test_bzimage);
	RUN(test_elf);
	RUN(test_real_bzimage);
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
	return check_summary();
}
