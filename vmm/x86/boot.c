#include "vmm/x86/boot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"

#define ERR(...) (snprintf(err, BOOT_ERR_MAX, __VA_ARGS__), -1)
#define SETERR(...) ((void)snprintf(err, BOOT_ERR_MAX, __VA_ARGS__))

#define XLF_KERNEL_64 (1u << 0)
#define LOADED_HIGH (1u << 0)
#define CAN_USE_HEAP (1u << 7)
#define HDRS_MAGIC 0x53726448u /* "HdrS" */
#define LINUX_LOAD_PHYSICAL_ADDR 0x1000000ull /* where a relocating bzImage decompresses */

static uint16_t get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v); put32(p + 4, v >> 32); }

/* The whole file in a malloc'ed buffer. */
static uint8_t *read_file(const char *what, const char *path, size_t *len, char *err)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		SETERR("%s '%s': %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		SETERR("%s '%s' is not a regular file", what, path);
		close(fd);
		return NULL;
	}
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf) {
		SETERR("%s '%s': out of memory reading %lld bytes", what, path,
		       (long long)st.st_size);
		close(fd);
		return NULL;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			SETERR("%s '%s': read error: %s", what, path,
			       n ? strerror(errno) : "short file");
			free(buf);
			close(fd);
			return NULL;
		}
		done += n;
	}
	close(fd);
	*len = done;
	return buf;
}

/* --- recognising a kernel --------------------------------------------------- */

static bool is_elf(const uint8_t *b, size_t len)
{
	return len >= 4 && !memcmp(b, ELFMAG, SELFMAG);
}

static bool is_bzimage(const uint8_t *b, size_t len)
{
	return len >= 0x264 && get16(b + BP_BOOT_FLAG) == 0xAA55 &&
	       get32(b + BP_HEADER) == HDRS_MAGIC;
}

static int check_bzimage(const char *path, const uint8_t *b, size_t len, char *err)
{
	uint16_t version = get16(b + BP_VERSION);
	unsigned setup_sects = b[BP_SETUP_SECTS] ? b[BP_SETUP_SECTS] : 4;

	if (version < 0x020C)
		return ERR("kernel '%s' uses boot protocol %u.%02u; giantvm needs 2.12 or later "
			   "(a 64-bit entry point): use a newer kernel", path, version >> 8,
			   version & 0xFF);
	if (!(get16(b + BP_XLOADFLAGS) & XLF_KERNEL_64))
		return ERR("kernel '%s' has no 64-bit entry point (XLF_KERNEL_64 is clear): "
			   "is it a 32-bit kernel?", path);
	if ((size_t)(setup_sects + 1) * 512 >= len)
		return ERR("kernel '%s' is truncated: its setup code (%u sectors) fills the file",
			   path, setup_sects);
	return 0;
}

/* The ELF header in b[0, len); the program headers must lie in the file_size bytes. */
static int check_elf(const char *path, const uint8_t *b, size_t len, uint64_t file_size,
		     char *err)
{
	Elf64_Ehdr eh;

	if (len < sizeof(eh) || b[EI_CLASS] != ELFCLASS64 || b[EI_DATA] != ELFDATA2LSB)
		return ERR("kernel '%s' is an ELF file but not a 64-bit little-endian one", path);
	memcpy(&eh, b, sizeof(eh));
	if (eh.e_machine != EM_X86_64)
		return ERR("kernel '%s' is an ELF file for another machine (e_machine %u), "
			   "not x86-64", path, eh.e_machine);
	if (eh.e_type != ET_EXEC)
		return ERR("kernel '%s' is not an ELF executable (e_type %u): link it with a "
			   "fixed load address", path, eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || !eh.e_phnum ||
	    eh.e_phoff > file_size || eh.e_phnum * sizeof(Elf64_Phdr) > file_size - eh.e_phoff)
		return ERR("kernel '%s' has a damaged ELF program header table", path);
	return 0;
}

/* How many bytes of the header are enough to recognise and check a kernel. */
#define PROBE_BYTES 0x1000

int boot_probe(const char *path, enum boot_kind *kind, char *err)
{
	uint8_t b[PROBE_BYTES];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return ERR("kernel '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return ERR("kernel '%s' is not a regular file", path);
	}
	n = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (n < 0)
		return ERR("kernel '%s': %s", path, strerror(errno));
	if (is_elf(b, n)) {
		*kind = BOOT_ELF;
		return check_elf(path, b, n, st.st_size, err);
	}
	if (is_bzimage(b, n)) {
		*kind = BOOT_BZIMAGE;
		return check_bzimage(path, b, st.st_size, err);
	}
	return ERR("'%s' is not a kernel giantvm can boot: expected a Linux bzImage, a vmlinux "
		   "or an ELF64 x86-64 executable", path);
}

/* --- e820 and the zero page ------------------------------------------------ */

unsigned boot_e820(uint64_t ram_size, struct e820_entry *tab, unsigned max)
{
	uint64_t low_end = ram_size < TOPO_HOLE_START ? ram_size : TOPO_HOLE_START;
	unsigned n = 0;

#define ADD(a, s, t) \
	do { \
		if (n < max) \
			tab[n] = (struct e820_entry){ .addr = (a), .size = (s), .type = (t) }; \
		n++; \
	} while (0)

	ADD(0, BOOT_EBDA_START, E820_RAM);
	ADD(BOOT_EBDA_START, BOOT_HIGH_START - BOOT_EBDA_START, E820_RESERVED);
	if (low_end > BOOT_HIGH_START)
		ADD(BOOT_HIGH_START, low_end - BOOT_HIGH_START, E820_RAM);
	if (ram_size > TOPO_HOLE_START)
		ADD(TOPO_HOLE_START + TOPO_HOLE_SIZE, ram_size - TOPO_HOLE_START, E820_RAM);
#undef ADD
	return n;
}

static void write_e820(uint8_t *zp, uint64_t ram_size)
{
	struct e820_entry tab[BP_E820_MAX];
	unsigned n = boot_e820(ram_size, tab, BP_E820_MAX);

	zp[BP_E820_ENTRIES] = n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = zp + BP_E820_TABLE + 20 * i;

		put64(p, tab[i].addr);
		put64(p + 8, tab[i].size);
		put32(p + 16, tab[i].type);
	}
}

/* --- loading --------------------------------------------------------------- */

static int load_bzimage(struct guest_ram *ram, const char *path, const uint8_t *b, size_t len,
			uint8_t *zp, struct boot_entry *e, char *err)
{
	unsigned setup_sects = b[BP_SETUP_SECTS] ? b[BP_SETUP_SECTS] : 4;
	size_t pm_off = (size_t)(setup_sects + 1) * 512, pm_len = len - pm_off;
	size_t hdr_end = 0x202 + b[0x201];
	uint32_t init_size = get32(b + BP_INIT_SIZE);
	uint64_t need;
	uint8_t *dst;

	if (check_bzimage(path, b, len, err))
		return -1;
	if (hdr_end > pm_off || hdr_end > 0x1000)
		return ERR("kernel '%s' has a damaged setup header (it ends at 0x%zx)", path,
			   hdr_end);
	/* The header as the kernel wrote it, then the fields a loader fills in. */
	memcpy(zp + BP_HDR, b + BP_HDR, hdr_end - BP_HDR);

	/*
	 * A relocatable kernel decompresses at 16 MiB or above, into init_size
	 * bytes; make sure that, not just the compressed image, fits.
	 */
	need = BOOT_KERNEL_ADDR + pm_len;
	if (init_size) {
		uint64_t at = LINUX_LOAD_PHYSICAL_ADDR > BOOT_KERNEL_ADDR ?
				      LINUX_LOAD_PHYSICAL_ADDR : BOOT_KERNEL_ADDR;

		if (at + init_size > need)
			need = at + init_size;
	}
	dst = guest_ram_ptr(ram, BOOT_KERNEL_ADDR, pm_len);
	if (!dst || need > (ram->size < TOPO_HOLE_START ? ram->size : TOPO_HOLE_START)) {
		char buf[32];

		return ERR("kernel '%s' needs %s of RAM below 3 GiB to decompress and run; "
			   "give the guest more memory (--mem)", path,
			   format_size(need, buf, sizeof(buf)));
	}
	memcpy(dst, b + pm_off, pm_len);
	e->kind = BOOT_BZIMAGE;
	e->rip = BOOT_KERNEL_ADDR + 0x200;
	e->kernel_start = BOOT_KERNEL_ADDR;
	e->kernel_end = need;
	return 0;
}

static int load_elf(struct guest_ram *ram, const char *path, const uint8_t *b, size_t len,
		    uint8_t *zp, struct boot_entry *e, char *err)
{
	Elf64_Ehdr ehdr;
	const Elf64_Ehdr *eh = &ehdr;
	uint64_t lo = UINT64_MAX, hi = 0;
	bool entry_ok = false;

	if (check_elf(path, b, len, len, err))
		return -1;
	/* Copies: the file places its headers at any offset, aligned or not. */
	memcpy(&ehdr, b, sizeof(ehdr));
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr phdr;
		const Elf64_Phdr *ph = &phdr;
		uint8_t *dst;

		memcpy(&phdr, b + eh->e_phoff + i * sizeof(phdr), sizeof(phdr));
		if (ph->p_type != PT_LOAD || !ph->p_memsz)
			continue;
		if (ph->p_filesz > ph->p_memsz || ph->p_offset > len ||
		    ph->p_filesz > len - ph->p_offset)
			return ERR("kernel '%s': program header %u points outside the file", path,
				   i);
		if (ph->p_paddr < BOOT_KERNEL_ADDR)
			return ERR("kernel '%s': segment %u is at 0x%llx, below 1 MiB, where the "
				   "loader keeps the boot structures: link it at 1 MiB or above",
				   path, i, (unsigned long long)ph->p_paddr);
		dst = guest_ram_ptr(ram, ph->p_paddr, ph->p_memsz);
		if (!dst || ph->p_paddr + ph->p_memsz > TOPO_HOLE_START)
			return ERR("kernel '%s': segment %u [0x%llx, 0x%llx) is not in the guest's "
				   "RAM below 3 GiB: give the guest more memory (--mem)", path, i,
				   (unsigned long long)ph->p_paddr,
				   (unsigned long long)(ph->p_paddr + ph->p_memsz));
		memcpy(dst, b + ph->p_offset, ph->p_filesz);
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
		if (ph->p_paddr < lo)
			lo = ph->p_paddr;
		if (ph->p_paddr + ph->p_memsz > hi)
			hi = ph->p_paddr + ph->p_memsz;
		if (eh->e_entry >= ph->p_paddr && eh->e_entry < ph->p_paddr + ph->p_memsz)
			entry_ok = true;
	}
	if (hi == 0)
		return ERR("kernel '%s' has no loadable segment", path);
	if (!entry_ok)
		return ERR("kernel '%s': its entry point 0x%llx is in none of its loaded segments "
			   "(it must be a physical address)", path,
			   (unsigned long long)eh->e_entry);

	/* A setup header like a bzImage's, so the guest reads the fields it expects. */
	put16(zp + BP_BOOT_FLAG, 0xAA55);
	put32(zp + BP_HEADER, HDRS_MAGIC);
	put16(zp + BP_VERSION, 0x020F);
	put32(zp + BP_KERNEL_ALIGNMENT, 0x200000);
	put16(zp + BP_XLOADFLAGS, XLF_KERNEL_64);
	put32(zp + BP_INITRD_ADDR_MAX, 0x7FFFFFFF);
	put32(zp + BP_CMDLINE_SIZE, BOOT_CMDLINE_MAX - 1);
	e->kind = BOOT_ELF;
	e->rip = eh->e_entry;
	e->kernel_start = lo;
	e->kernel_end = hi;
	return 0;
}

static int load_initrds(struct guest_ram *ram, const struct boot_config *c, uint8_t *zp,
			struct boot_entry *e, char *err)
{
	uint64_t total = 0, top, start, max;
	struct stat st;
	char buf[32], buf2[32];

	for (unsigned i = 0; i < c->nr_initrds; i++) {
		if (stat(c->initrds[i], &st))
			return ERR("initrd '%s': %s", c->initrds[i], strerror(errno));
		if (!S_ISREG(st.st_mode))
			return ERR("initrd '%s' is not a regular file", c->initrds[i]);
		total += ((uint64_t)st.st_size + 3) & ~3ull;
	}
	if (!total)
		return 0;
	top = ram->size < TOPO_HOLE_START ? ram->size : TOPO_HOLE_START;
	max = get32(zp + BP_INITRD_ADDR_MAX);
	if (max && max + 1 < top)
		top = max + 1;
	start = total > top ? 0 : (top - total) & ~0xFFFull;
	if (total > top || start < e->kernel_end)
		return ERR("the initrds (%s) do not fit in the guest's RAM below %s next to the "
			   "kernel: give the guest more memory (--mem)",
			   format_size(total, buf, sizeof(buf)),
			   format_size(top, buf2, sizeof(buf2)));

	uint64_t at = start;

	for (unsigned i = 0; i < c->nr_initrds; i++) {
		size_t len;
		uint8_t *data = read_file("initrd", c->initrds[i], &len, err);
		uint8_t *dst;

		if (!data)
			return -1;
		dst = guest_ram_ptr(ram, at, (len + 3) & ~(size_t)3);
		if (!dst || at + len > start + total) {
			free(data);
			return ERR("initrd '%s' changed size while being loaded", c->initrds[i]);
		}
		memcpy(dst, data, len);
		memset(dst + len, 0, ((len + 3) & ~(size_t)3) - len);
		free(data);
		at += (len + 3) & ~(size_t)3;
	}
	total = at - start;
	put32(zp + BP_RAMDISK_IMAGE, (uint32_t)start);
	put32(zp + BP_RAMDISK_SIZE, (uint32_t)total);
	put32(zp + BP_EXT_RAMDISK_IMAGE, start >> 32);
	put32(zp + BP_EXT_RAMDISK_SIZE, total >> 32);
	e->initrd_start = start;
	e->initrd_size = total;
	return 0;
}

static void build_page_tables(struct guest_ram *ram)
{
	uint64_t *pml4 = guest_ram_ptr(ram, BOOT_PML4, 4096);
	uint64_t *pdpt = guest_ram_ptr(ram, BOOT_PDPT, 4096);
	uint64_t *pd = guest_ram_ptr(ram, BOOT_PD, 4 * 4096);

	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = BOOT_PDPT | 0x3; /* present, writable */
	for (unsigned g = 0; g < 4; g++) {
		pdpt[g] = (BOOT_PD + g * 4096) | 0x3;
		for (unsigned i = 0; i < 512; i++)
			pd[g * 512 + i] = (uint64_t)g << 30 | (uint64_t)i << 21 | 0x83; /* 2M */
	}
}

static void build_gdt(struct guest_ram *ram)
{
	uint64_t *gdt = guest_ram_ptr(ram, BOOT_GDT_ADDR, 6 * 8);

	gdt[0] = 0;
	gdt[1] = 0;
	gdt[BOOT_CS / 8] = 0x00AF9B000000FFFFull; /* 64-bit code, present, DPL 0 */
	gdt[BOOT_DS / 8] = 0x00CF93000000FFFFull; /* flat data */
	gdt[BOOT_TSS / 8] = 0x00008B0000000067ull; /* busy 64-bit TSS at 0 */
	gdt[BOOT_TSS / 8 + 1] = 0;
}

int boot_load(struct guest_ram *ram, const struct boot_config *c, struct boot_entry *e,
	      char *err)
{
	const char *cmdline = c->cmdline ? c->cmdline : "";
	size_t len, cmdlen = strlen(cmdline), cmdmax;
	uint8_t *kernel, *zp, *cmd;
	int r;

	memset(e, 0, sizeof(*e));
	if (ram->size < 2 * BOOT_HIGH_START)
		return ERR("the guest needs at least 2 MiB of RAM to boot");
	zp = guest_ram_ptr(ram, BOOT_ZERO_PAGE, 4096);
	memset(zp, 0, 4096);
	kernel = read_file("kernel", c->kernel, &len, err);
	if (!kernel)
		return -1;
	if (is_elf(kernel, len))
		r = load_elf(ram, c->kernel, kernel, len, zp, e, err);
	else if (is_bzimage(kernel, len))
		r = load_bzimage(ram, c->kernel, kernel, len, zp, e, err);
	else
		r = ERR("'%s' is not a kernel giantvm can boot: expected a Linux bzImage, a "
			"vmlinux or an ELF64 x86-64 executable", c->kernel);
	free(kernel);
	if (r)
		return -1;

	cmdmax = get32(zp + BP_CMDLINE_SIZE);
	if (!cmdmax || cmdmax >= BOOT_CMDLINE_MAX)
		cmdmax = BOOT_CMDLINE_MAX - 1;
	if (cmdlen > cmdmax)
		return ERR("the kernel command line is %zu bytes long; this kernel takes at "
			   "most %zu", cmdlen, cmdmax);
	cmd = guest_ram_ptr(ram, BOOT_CMDLINE, BOOT_CMDLINE_MAX);
	memset(cmd, 0, BOOT_CMDLINE_MAX);
	memcpy(cmd, cmdline, cmdlen);

	zp[BP_TYPE_OF_LOADER] = 0xFF;
	zp[BP_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	put16(zp + BP_VID_MODE, 0xFFFF);
	put16(zp + BP_HEAP_END_PTR, 0xFE00);
	put32(zp + BP_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE);
	put32(zp + BP_EXT_CMD_LINE_PTR, 0);
	put64(zp + BP_ACPI_RSDP_ADDR, c->rsdp_gpa);
	write_e820(zp, ram->size);
	if (load_initrds(ram, c, zp, e, err))
		return -1;
	build_gdt(ram);
	build_page_tables(ram);
	e->rsi = BOOT_ZERO_PAGE;
	e->rsp = BOOT_STACK_TOP;
	e->cr3 = BOOT_PML4;
	return 0;
}

/* --- the BSP's registers --------------------------------------------------- */

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	*s = (struct kvm_segment){
		.base = 0,
		.limit = 0xFFFFFFFF,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = code ? 0 : 1,
		.s = 1,
		.l = code ? 1 : 0,
		.g = 1,
	};
}

int boot_set_bsp_state(int fd, const struct boot_entry *e)
{
	struct kvm_sregs s;
	struct kvm_regs r = {
		.rip = e->rip,
		.rsi = e->rsi,
		.rsp = e->rsp,
		.rflags = 2, /* interrupts off */
	};

	if (ioctl(fd, KVM_GET_SREGS, &s)) {
		pr_err("KVM_GET_SREGS: %s", strerror(errno));
		return -1;
	}
	flat_segment(&s.cs, BOOT_CS, 0xB, true);
	flat_segment(&s.ds, BOOT_DS, 0x3, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.tr = (struct kvm_segment){
		.selector = BOOT_TSS, .limit = 0x67, .type = 0xB, .present = 1,
	};
	s.ldt = (struct kvm_segment){ .type = 0x2, .present = 1, .limit = 0xFFFF, .unusable = 0 };
	s.gdt.base = BOOT_GDT_ADDR;
	s.gdt.limit = 6 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = 0x80010033; /* PG, WP, NE, ET, MP, PE */
	s.cr3 = e->cr3;
	s.cr4 = 0x620;      /* PAE, OSFXSR, OSXMMEXCPT */
	s.efer = 0x500;     /* LME, LMA */
	if (ioctl(fd, KVM_SET_SREGS, &s)) {
		pr_err("cannot put the BSP in long mode (KVM_SET_SREGS): %s", strerror(errno));
		return -1;
	}
	if (ioctl(fd, KVM_SET_REGS, &r)) {
		pr_err("KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}
