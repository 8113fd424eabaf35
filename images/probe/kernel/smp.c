/*
 * The local APIC and starting the other CPUs: INIT, SIPI, SIPI to each, all
 * in parallel, through a real-mode trampoline below 1 MiB.  xAPIC (MMIO)
 * unless the MADT lists an x2APIC processor (or probe.apic=x2apic asks):
 * then every CPU turns x2APIC on (the MSRs, one 64-bit ICR, IDs above 254),
 * as Linux does.
 */
#include "common/guest_abi.h"
#include "images/probe/kernel/kernel.h"

#define LAPIC_BASE 0xfee00000ull
#define LAPIC_ID 0x20
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_LDR 0xd0
#define LAPIC_DFR 0xe0
#define LAPIC_SVR 0xf0
#define LAPIC_ESR 0x280
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3e0

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_ENABLE (1ull << 11)
#define APIC_BASE_X2APIC (1ull << 10)
#define MSR_X2APIC_FIRST 0x800 /* + register offset / 16 */

#define ICR_BUSY (1u << 12)
#define ICR_LOGICAL (1u << 11)
#define ICR_ASSERT (1u << 14)
#define ICR_LEVEL (1u << 15)
#define ICR_INIT (5u << 8)
#define ICR_SIPI (6u << 8)

/* Delays in TSC cycles: the VMM needs none, real hardware wants 10 ms and 200 us. */
#define INIT_DELAY 10000000ull
#define SIPI_DELAY 400000ull
/* Long: an AP of a busy host, or of another instance, may take seconds to start. */
#define AP_TIMEOUT 60000000000ull

volatile uint32_t stray_aps, aps_up;
static int x2apic; /* set by lapic_mode() before any CPU initialises its LAPIC */

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			 : "memory");
}

static uint32_t lapic_read(uint32_t reg)
{
	if (x2apic)
		return (uint32_t)rdmsr(MSR_X2APIC_FIRST + reg / 16);
	return *(volatile uint32_t *)(LAPIC_BASE + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	if (x2apic)
		wrmsr(MSR_X2APIC_FIRST + reg / 16, v);
	else
		*(volatile uint32_t *)(LAPIC_BASE + reg) = v;
}

void lapic_mode(const struct acpi_topo *t, int want_x2apic)
{
	uint32_t r[4];

	for (uint32_t i = 0; i < t->nr_cpus; i++)
		if (t->cpus[i].x2apic || t->cpus[i].apic_id > 254)
			x2apic = 1;
	if (want_x2apic && !x2apic) {
		cpuid(1, 0, r);
		if (r[2] & (1u << 21))
			x2apic = 1;
		else
			kerr("probe.apic=x2apic, but CPUID leaf 1 offers no x2APIC");
	}
}

int lapic_x2apic(void)
{
	return x2apic;
}

uint32_t lapic_id(void)
{
	return x2apic ? lapic_read(LAPIC_ID) : lapic_read(LAPIC_ID) >> 24;
}

/* The initial APIC ID, whatever the LAPIC's mode: CPUID leaf 0xB (all 32 bits), else leaf 1. */
uint32_t cpu_apic_id(void)
{
	uint32_t r[4];

	cpuid(0, 0, r);
	if (r[0] >= 0xb) {
		cpuid(0xb, 0, r);
		if (r[1])
			return r[3];
	}
	cpuid(1, 0, r);
	return r[1] >> 24;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

/*
 * Returns the logical destination that reaches this CPU alone, 0 if none:
 * the logical IPIs of SYS_IPI_PING (the VMM must know every CPU's LDR,
 * wherever it runs).  xAPIC: flat model, one LDR bit for each of the first
 * 8 CPUs.  x2APIC: the LDR the LAPIC derives from its ID (cluster model).
 */
uint32_t lapic_init(uint32_t index)
{
	uint32_t logical;

	if (x2apic) {
		wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
		logical = lapic_read(LAPIC_LDR);
	} else {
		logical = index < 8 ? 1u << index : 0;
		lapic_write(LAPIC_DFR, 0xffffffffu);
		lapic_write(LAPIC_LDR, logical << 24);
	}
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_TIMER, 1u << 16);
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
	lapic_write(LAPIC_ESR, 0);
	return logical;
}

/* Physical destination; fixed vectors are sent as "vector | assert". */
void lapic_send(uint32_t apic, uint32_t icr_low)
{
	if (!(icr_low & 0x700))
		icr_low |= ICR_ASSERT;
	if (x2apic) {
		/* One write sends it; x2APIC has no delivery-status bit to wait on. */
		wrmsr(MSR_X2APIC_FIRST + LAPIC_ICR_LO / 16, (uint64_t)apic << 32 | icr_low);
		return;
	}
	for (int i = 0; i < 1000 && (lapic_read(LAPIC_ICR_LO) & ICR_BUSY); i++)
		cpu_pause();
	lapic_write(LAPIC_ICR_HI, apic << 24);
	lapic_write(LAPIC_ICR_LO, icr_low);
}

/* Logical destination, as lapic_init() returned it for the target. */
void lapic_send_logical(uint32_t dest, uint32_t icr_low)
{
	lapic_send(dest, icr_low | ICR_LOGICAL);
}

/* Periodic timer on vector, divide by 1; count 0 stops and masks it. */
void lapic_timer(uint32_t vector, uint32_t count)
{
	if (!count) {
		lapic_write(LAPIC_TIMER_INIT, 0);
		lapic_write(LAPIC_LVT_TIMER, 1u << 16);
		return;
	}
	lapic_write(LAPIC_TIMER_DIV, 0xb);
	lapic_write(LAPIC_LVT_TIMER, vector | 1u << 17);
	lapic_write(LAPIC_TIMER_INIT, count);
}

/* This CPU's GDT and TSS (in its own area), the shared IDT, its LAPIC, its report. */
void cpu_init(struct cpu_local *cl)
{
	struct probe_cpu_report *rep = &probe_bootinfo.cpu[cl->index];
	uint64_t tss = (uint64_t)&cl->tss, lim = sizeof(cl->tss) + sizeof(cl->iobitmap) - 1;
	uint32_t r[4];
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gp = { 7 * 8 - 1, (uint64_t)cl->gdt };

	cl->gdt[0] = 0;
	cl->gdt[1] = 0x00af9a000000ffffull; /* kernel code, 64-bit */
	cl->gdt[2] = 0x00cf92000000ffffull; /* kernel data */
	cl->gdt[3] = 0x00affa000000ffffull; /* user code, 64-bit, DPL 3 */
	cl->gdt[4] = 0x00cff2000000ffffull; /* user data, DPL 3 */
	cl->gdt[5] = (lim & 0xffff) | (tss & 0xffffff) << 16 | 0x89ull << 40 |
		     ((lim >> 16) & 0xf) << 48 | ((tss >> 24) & 0xff) << 56;
	cl->gdt[6] = tss >> 32;
	cl->tss.rsp0 = (uint64_t)cl + PROBE_PERCPU_SIZE;
	/*
	 * User mode writes the UART itself.  Through the I/O bitmap, not IOPL 3:
	 * here the emulated IRETQ drops IOPL on the way to user mode.
	 */
	cl->tss.iomap_base = sizeof(cl->tss);
	__builtin_memset(cl->iobitmap, 0xff, sizeof(cl->iobitmap));
	cl->iobitmap[GVM_UART_PORT / 8] = 0;
	__asm__ volatile("lgdt %0" : : "m"(gp));
	load_cs(SEL_KCODE);
	__asm__ volatile("mov %0, %%ds; mov %0, %%es; mov %0, %%ss" : : "r"(SEL_KDATA));
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS));
	idt_load();
	cl->logical_dest = lapic_init(cl->index);

	rep->lapic_id = lapic_id();
	rep->logical_dest = cl->logical_dest;
	cpuid(1, 0, r);
	rep->cpuid_apic = r[1] >> 24;
	rep->cpuid_x2apic = PROBE_NONE;
	cpuid(0, 0, r);
	if (r[0] >= 0xb) {
		cpuid(0xb, 0, r);
		if (r[1])
			rep->cpuid_x2apic = r[3];
	}
}

void ap_main(uint32_t apic)
{
	struct cpu_local *cl = this_cpu();
	struct probe_cpu_report *rep = &probe_bootinfo.cpu[cl->index];

	(void)apic;
	__atomic_fetch_add(&rep->entries, 1, __ATOMIC_RELAXED);
	cpu_init(cl);
	rep->up_tsc = rdtsc();
	barrier();
	rep->state = CPU_UP;
	__atomic_fetch_add(&aps_up, 1, __ATOMIC_RELEASE);
	while (!cl->go)
		sti_hlt_cli();
	barrier();
	rep->state = CPU_RUNNING;
	enter_user(cl->start_rip, cl->start_rsp, cl->start_arg, cl->index,
		   (uint64_t)&probe_bootinfo);
}

/* A 4 KiB page below 1 MiB (and below the EBDA) that the map calls RAM and nothing uses. */
static uint64_t trampoline_page(void)
{
	struct probe_bootinfo *bi = &probe_bootinfo;

	for (uint64_t p = 0x8000; p < 0x9f000; p += 0x1000) {
		int ram = 0;

		for (uint32_t i = 0; i < bi->nr_e820; i++)
			if (bi->e820[i].type == 1 && bi->e820[i].base <= p &&
			    p + 0x1000 <= bi->e820[i].base + bi->e820[i].size)
				ram = 1;
		if (ram && !(bi->initrd_size && p < bi->initrd_base + bi->initrd_size &&
			     bi->initrd_base < p + 0x1000))
			return p;
	}
	return 0;
}

static void delay(uint64_t cycles)
{
	uint64_t t0 = rdtsc();

	while (rdtsc() - t0 < cycles)
		cpu_pause();
}

void smp_boot(void)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	uint32_t n = bi->acpi.nr_cpus, aps = n - 1;
	uint64_t tramp = trampoline_page(), t0;

	if (!aps)
		return;
	if (!tramp) {
		kerr("no free RAM page below 0x9f000 for the AP trampoline");
		return;
	}
	bi->trampoline = (uint32_t)tramp;
	__builtin_memcpy((void *)tramp, tramp_start, (size_t)(tramp_end - tramp_start));

	bi->tsc_smp_start = rdtsc();
	for (uint32_t i = 0; i < n; i++) {
		if (i == bi->bsp)
			continue;
		bi->cpu[i].state = CPU_SIPI_SENT;
		lapic_send(bi->acpi.cpus[i].apic_id, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
		lapic_send(bi->acpi.cpus[i].apic_id, ICR_INIT | ICR_LEVEL);
	}
	delay(INIT_DELAY);
	for (int round = 0; round < 2; round++) {
		for (uint32_t i = 0; i < n; i++)
			if (i != bi->bsp)
				lapic_send(bi->acpi.cpus[i].apic_id,
					   ICR_SIPI | ICR_ASSERT | (uint32_t)(tramp >> 12));
		if (!round)
			delay(SIPI_DELAY);
	}
	t0 = rdtsc();
	while (__atomic_load_n(&aps_up, __ATOMIC_ACQUIRE) < aps && rdtsc() - t0 < AP_TIMEOUT)
		cpu_pause();
	bi->tsc_smp_done = rdtsc();
	bi->trampoline_entries = *(volatile uint32_t *)(tramp + (uint64_t)tramp_count_off);
	bi->stray_aps = stray_aps;
	if (aps_up < aps)
		kerr("%u of %u APs did not come up", aps - aps_up, aps);
}
