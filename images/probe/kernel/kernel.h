/*
 * The probe kernel's internals.  It runs emulated (about 1 us per
 * instruction here), so it only does what user mode cannot: descriptor
 * tables, paging, the LAPIC, starting CPUs, and a few requests.
 */
#ifndef PROBE_KERNEL_H
#define PROBE_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "images/probe/abi.h"

struct tss {
	uint32_t reserved0;
	uint64_t rsp0, rsp1, rsp2;
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

/*
 * At the base of each CPU's PROBE_PERCPU_SIZE-aligned area, in its own
 * node's memory; the CPU's kernel stack grows down from the area's top, so
 * the stack pointer finds it.  Other CPUs write only ping_reply_apic and
 * the start fields.
 */
/* I/O permission bitmap: ports 0 .. 0x3ff, then the required all-ones byte. */
#define IOBITMAP_BYTES (0x400 / 8 + 1)

struct cpu_local {
	uint64_t gdt[8];
	struct tss tss;
	uint8_t iobitmap[IOBITMAP_BYTES]; /* right after the TSS, inside its limit */
	uint32_t index, apic_id;
	uint32_t logical_dest; /* lapic_init()'s, 0: no logical destination of its own */
	volatile uint32_t ping_reply_apic;
	volatile uint32_t go;
	volatile uint64_t pongs, wakes, ticks, uart_irqs;
	uint64_t start_rip, start_rsp, start_arg;
};

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vec, err;
	uint64_t rip, cs, rflags, rsp, ss;
};

extern struct probe_bootinfo probe_bootinfo;     /* in the user image */
extern char user_bsp_stack_top[], _ustart[], __user_end[];
extern uint64_t ap_stack_by_apic[PROBE_APIC_ID_LIMIT];
extern struct cpu_local *cpu_by_index[PROBE_ACPI_MAX_CPUS];
extern volatile uint32_t stray_aps, aps_up;
extern uint64_t pd_low[2048], pd_high[(PROBE_MAX_PHYS_GB - 4) * 512];
extern char pml4[];
extern const uint64_t isr_table[];
extern char tramp_start[], tramp_end[], tramp_count_off[];

/* entry.S */
void enter_user(uint64_t rip, uint64_t rsp, uint64_t a0, uint64_t a1, uint64_t a2)
	__attribute__((noreturn));
void call_on_stack(uint64_t top, void (*fn)(uint64_t), uint64_t arg) __attribute__((noreturn));
void load_cs(uint64_t sel);
void halt_forever(void) __attribute__((noreturn));

/* console.c */
void kputs(const char *s);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kerr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void exit_vm(uint32_t status) __attribute__((noreturn));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* main.c */
int kvmclock_enable(uint64_t phys);

/* mem.c */
void mem_plan(void);

/* smp.c */
void lapic_mode(const struct acpi_topo *t, int want_x2apic);
int lapic_x2apic(void);
uint32_t cpu_apic_id(void);
uint32_t lapic_init(uint32_t index);
void lapic_eoi(void);
void lapic_send(uint32_t apic, uint32_t icr_low);
void lapic_send_logical(uint32_t dest, uint32_t icr_low);
uint32_t lapic_id(void);
void lapic_timer(uint32_t vector, uint32_t count);
void cpu_init(struct cpu_local *cl);
void smp_boot(void);
void ap_main(uint32_t apic);

/* irq.c */
long sys_irq(uint64_t cpu, uint64_t rounds, struct probe_ping *out);
void uart_irq(void);

/* trap.c */
void idt_init(void);
void idt_load(void);
void trap(struct trap_frame *f);

static inline struct cpu_local *this_cpu(void)
{
	uint64_t sp;

	__asm__("mov %%rsp, %0" : "=r"(sp));
	return (struct cpu_local *)(sp & ~(uint64_t)(PROBE_PERCPU_SIZE - 1));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

static inline void barrier(void)
{
	__asm__ volatile("" : : : "memory");
}

static inline void cpu_pause(void)
{
	__asm__ volatile("pause" : : : "memory");
}

/* Wait for an interrupt with interrupts enabled only while halted. */
static inline void sti_hlt_cli(void)
{
	__asm__ volatile("sti; hlt; cli" : : : "memory");
}

static inline uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static inline uint64_t align_down(uint64_t x, uint64_t a)
{
	return x & ~(a - 1);
}

#endif
