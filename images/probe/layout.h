/*
 * The probe's fixed layout and numbers, shared by its kernel (C and
 * assembly) and its user mode.  No C types here: assembly includes it.
 *
 * Physical memory (identity mapped, 2 MiB pages):
 *   [0, 2 MiB)       boot data, ACPI, the AP trampoline, the kernel at 1 MiB;
 *                    user-readable, not user-writable
 *   [2 MiB, ...)     the user image (code, data, the boot information page)
 *   per NUMA node    a kernel chunk (per-CPU areas: GDT, TSS, kernel stack;
 *                    supervisor only), then the node's user heap
 *   [3 GiB, 4 GiB)   MMIO (LAPIC, IOAPIC), uncached, supervisor only
 */
#ifndef PROBE_LAYOUT_H
#define PROBE_LAYOUT_H

#define PROBE_KERNEL_BASE 0x100000
#define PROBE_USER_BASE 0x200000
#define PROBE_PAGE 0x200000
#define PROBE_MAX_PHYS_GB 64 /* RAM above this is left unmapped */

/* APIC IDs the AP entry can look up (x2APIC IDs go higher; the probe refuses them). */
#define PROBE_APIC_ID_LIMIT 4096

/* Per-CPU area: struct cpu_local at its base, the kernel stack up to its top. */
#define PROBE_PERCPU_SIZE 0x4000

/* Selectors: the boot GDT (entry, trampoline) and each CPU's own GDT. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_BOOT_CODE32 0x18 /* boot GDT only */
#define SEL_UCODE 0x1b       /* per-CPU GDT: index 3, RPL 3 */
#define SEL_UDATA 0x23       /* index 4, RPL 3 */
#define SEL_TSS 0x28         /* index 5-6 */

/* User-mode RFLAGS: IF and the reserved bit 1 (the UART is granted by the TSS I/O bitmap). */
#define USER_RFLAGS 0x202

/* Requests: UD2 with the number in rax, arguments in rdi, rsi, rdx, rcx, r8. */
#define SYS_EXIT 0     /* (status): write status to the exit device */
#define SYS_START 1    /* (cpu, rip, rsp, arg): start a thread on an idle CPU */
#define SYS_IPI_PING 2 /* (cpu, rounds, struct probe_ping *, logical): IPI round trips */
#define SYS_PARK 3     /* (): halt this CPU for good, interrupts still served */
#define SYS_KVMCLOCK 4 /* (phys addr or 0): this CPU's kvmclock area on, or off */
#define SYS_IRQ 5      /* (cpu, rounds, struct probe_ping *): UART interrupts to a CPU */
#define SYS_POWEROFF 6 /* (): ACPI soft-off (S5) as the FADT and DSDT say; returns if it fails */
#define SYS_NAP 7      /* (ticks): halt until an interrupt, or at most ticks of the LAPIC timer */

/* Interrupt vectors. */
#define VEC_PING 0xf0
#define VEC_PONG 0xf1
#define VEC_WAKE 0xf2
#define VEC_TIMER 0xf3
#define VEC_UART 0xf4
#define VEC_SPURIOUS 0xff

/* Boot protocols the kernel was entered by. */
#define PROBE_BOOT_LINUX 1 /* 64-bit Linux entry, rsi = zero page */
#define PROBE_BOOT_PVH 2   /* PVH 32-bit entry, ebx = hvm_start_info */

#define CR0_PE 0x1
#define CR0_MP 0x2
#define CR0_ET 0x10
#define CR0_NE 0x20
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define CR4_OSFXSR 0x200
#define CR4_OSXMMEXCPT 0x400
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100

#endif
