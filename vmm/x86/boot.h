/*
 * Loading a guest kernel and entering it through the Linux 64-bit boot
 * protocol (Documentation/arch/x86/boot.rst): long mode, paging on with an
 * identity map of the low 4 GiB, interrupts off, rsi = the zero page
 * (struct boot_params) carrying the e820 map, the command line, the initrd
 * and acpi_rsdp_addr.
 *
 * Kernels accepted:
 *   - a Linux bzImage (boot protocol >= 2.12 with XLF_KERNEL_64): the
 *     protected-mode part is loaded at 1 MiB and entered at its 64-bit entry
 *     (+0x200); the zero page starts from the image's setup header;
 *   - an ELF64 x86-64 executable (a Linux vmlinux, or a freestanding guest
 *     such as the probe): PT_LOAD segments are loaded at their physical
 *     addresses (p_paddr, which must be >= 1 MiB) and entered at e_entry;
 *     the zero page carries a synthesized setup header (version 2.15).
 *
 * Guest-physical layout the loader uses (all in RAM, below 1 MiB):
 *   0x00500  GDT: 0x10 = 64-bit code (__BOOT_CS), 0x18 = data (__BOOT_DS),
 *            0x20 = TSS
 *   0x07000  the zero page
 *   0x08000  the initial stack (rsp = 0x8FF0 at entry, growing down)
 *   0x09000  page tables: PML4, PDPT, 4 PDs of 2 MiB pages (to 0xEFFF)
 *   0x20000  the command line (up to BOOT_CMDLINE_MAX bytes with its NUL)
 * [0x30000, 0x9FC00) is RAM the loader leaves free (an AP trampoline fits
 * there); [0x9FC00, 0x100000) is reserved in the e820 map (the ACPI tables
 * live at 0xE0000).  Initrds, concatenated (each padded to 4 bytes), go at
 * the top of the RAM below 4 GiB.  The guest must not reuse the areas above
 * before it has read what it needs from them.
 */
#ifndef GVM_VMM_X86_BOOT_H
#define GVM_VMM_X86_BOOT_H

#include <stdint.h>

#include "vmm/ram.h"

#define BOOT_GDT_ADDR 0x500ull
#define BOOT_ZERO_PAGE 0x7000ull
#define BOOT_STACK_TOP 0x8FF0ull
#define BOOT_PML4 0x9000ull
#define BOOT_PDPT 0xA000ull
#define BOOT_PD 0xB000ull /* 4 pages */
#define BOOT_CMDLINE 0x20000ull
#define BOOT_CMDLINE_MAX 0x10000u
#define BOOT_KERNEL_ADDR 0x100000ull  /* bzImage protected-mode code; lowest ELF address */
#define BOOT_EBDA_START 0x9FC00ull    /* reserved from here to 1 MiB */
#define BOOT_HIGH_START 0x100000ull

#define BOOT_CS 0x10
#define BOOT_DS 0x18
#define BOOT_TSS 0x20

/* struct boot_params offsets (Documentation/arch/x86/zero-page.rst) */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0C0
#define BP_EXT_RAMDISK_SIZE 0x0C4
#define BP_EXT_CMD_LINE_PTR 0x0C8
#define BP_E820_ENTRIES 0x1E8
#define BP_HDR 0x1F1
#define BP_SETUP_SECTS 0x1F1
#define BP_VID_MODE 0x1FA
#define BP_BOOT_FLAG 0x1FE
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21C
#define BP_HEAP_END_PTR 0x224
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22C
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_RELOCATABLE 0x234
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_PREF_ADDRESS 0x258
#define BP_INIT_SIZE 0x260
#define BP_E820_TABLE 0x2D0
#define BP_E820_MAX 128

#define E820_RAM 1
#define E820_RESERVED 2

#define BOOT_ERR_MAX 512

enum boot_kind { BOOT_BZIMAGE, BOOT_ELF };

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

struct boot_config {
	const char *kernel;
	const char *const *initrds;
	unsigned nr_initrds;
	const char *cmdline;   /* NULL: empty */
	uint64_t rsdp_gpa;     /* 0: none */
};

/* Where and how the BSP starts. */
struct boot_entry {
	enum boot_kind kind;
	uint64_t rip, rsi, rsp, cr3;
	uint64_t kernel_start, kernel_end; /* guest-physical extent of the kernel */
	uint64_t initrd_start, initrd_size;
};

/*
 * Is path a kernel this loader boots?  Reads only the headers.  Returns 0
 * and the kind, or -1 with the reason in err (missing, unreadable, not a
 * kernel, a kernel without a 64-bit entry...).
 */
int boot_probe(const char *path, enum boot_kind *kind, char *err);

/*
 * Load kernel, initrds and command line into ram and build the zero page,
 * GDT and page tables.  Returns 0, or -1 with the reason in err.
 */
int boot_load(struct guest_ram *ram, const struct boot_config *c, struct boot_entry *e,
	      char *err);

/* The e820 map of a guest with ram_size bytes of RAM; returns the count. */
unsigned boot_e820(uint64_t ram_size, struct e820_entry *tab, unsigned max);

/* Put the BSP in the 64-bit entry state. */
int boot_set_bsp_state(int vcpu_fd, const struct boot_entry *e);

#endif
