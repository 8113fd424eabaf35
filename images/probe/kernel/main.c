/*
 * The boot CPU: what the boot loader handed over (Linux zero page or PVH
 * start info), the ACPI tables, the memory plan, the other CPUs, then user
 * mode.  Everything it learns goes into probe_bootinfo for user mode.
 */
#include "images/probe/kernel/kernel.h"

struct cpu_local *cpu_by_index[PROBE_ACPI_MAX_CPUS];
uint64_t ap_stack_by_apic[PROBE_APIC_ID_LIMIT];

static uint32_t rd32(const uint8_t *p)
{
	return *(const uint32_t *)p;
}

static uint64_t rd64(const uint8_t *p)
{
	return *(const uint64_t *)p;
}

static void copy_cmdline(uint64_t phys)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	const char *s = (const char *)phys;
	size_t n = 0;

	if (!phys)
		return;
	while (n < PROBE_CMDLINE_MAX - 1 && s[n])
		n++;
	if (s[n])
		kerr("the command line is longer than %u bytes", PROBE_CMDLINE_MAX - 1);
	__builtin_memcpy(bi->cmdline, s, n);
	bi->cmdline[n] = '\0';
}

static void add_e820(uint64_t base, uint64_t size, uint32_t type)
{
	struct probe_bootinfo *bi = &probe_bootinfo;

	if (bi->nr_e820 == PROBE_E820_MAX) {
		kerr("more than %u memory map entries; the rest ignored", PROBE_E820_MAX);
		return;
	}
	bi->e820[bi->nr_e820++] = (struct probe_e820){ base, size, type, 0 };
}

/* Linux boot protocol: struct boot_params ("zero page") field offsets. */
static uint64_t boot_linux(const uint8_t *zp)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	unsigned n = zp[0x1e8];

	if (n > 128)
		n = 128;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = zp + 0x2d0 + 20 * i;

		add_e820(rd64(e), rd64(e + 8), rd32(e + 16));
	}
	copy_cmdline(rd32(zp + 0x228) | (uint64_t)rd32(zp + 0x0c8) << 32);
	bi->initrd_base = rd32(zp + 0x218) | (uint64_t)rd32(zp + 0x0c0) << 32;
	bi->initrd_size = rd32(zp + 0x21c) | (uint64_t)rd32(zp + 0x0c4) << 32;
	return rd64(zp + 0x070);
}

/* PVH: struct hvm_start_info (version 1, with a memory map). */
static uint64_t boot_pvh(const uint8_t *si)
{
	struct probe_bootinfo *bi = &probe_bootinfo;

	if (rd32(si) != 0x336ec578)
		fatal("PVH entry without the hvm_start_info magic");
	if (rd32(si + 4) < 1 || !rd64(si + 40))
		fatal("PVH start info without a memory map (version %u)", rd32(si + 4));
	for (uint32_t i = 0; i < rd32(si + 48); i++) {
		const uint8_t *e = (const uint8_t *)rd64(si + 40) + 24 * i;

		add_e820(rd64(e), rd64(e + 8), rd32(e + 16));
	}
	copy_cmdline(rd64(si + 24));
	if (rd32(si + 12)) {
		const uint8_t *m = (const uint8_t *)rd64(si + 16);

		bi->initrd_base = rd64(m);
		bi->initrd_size = rd64(m + 8);
	}
	return rd64(si + 32);
}

/* Where an older loader leaves it: the BIOS area, on 16-byte boundaries. */
static uint64_t rsdp_scan(void)
{
	for (uint64_t p = 0xe0000; p < 0x100000; p += 16)
		if (rd64((const uint8_t *)p) == 0x2052545020445352ull) /* "RSD PTR " */
			return p;
	return 0;
}

/*
 * The 8259 PICs: moved off the exception vectors (a BIOS leaves IRQ 0 on
 * vector 8) and masked; the probe uses only LAPIC interrupts.
 */
static void pic_disable(void)
{
	static const uint8_t init[][2] = {
		{ 0x20, 0x11 }, { 0xa0, 0x11 }, /* ICW1: init, ICW4 follows */
		{ 0x21, 0x20 }, { 0xa1, 0x28 }, /* ICW2: vectors 0x20, 0x28 */
		{ 0x21, 0x04 }, { 0xa1, 0x02 }, /* ICW3: cascade on IRQ 2 */
		{ 0x21, 0x01 }, { 0xa1, 0x01 }, /* ICW4: 8086 mode */
		{ 0x21, 0xff }, { 0xa1, 0xff }, /* mask everything */
	};

	for (unsigned i = 0; i < sizeof(init) / sizeof(init[0]); i++)
		outb(init[i][0], init[i][1]);
}

/* KVM's pvclock_vcpu_time_info, filled by KVM when the MSR below is written. */
struct pvclock {
	volatile uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
} __attribute__((aligned(64)));

static struct pvclock pvclock;

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static int have_kvmclock(void)
{
	uint32_t r[4];

	cpuid(0x40000000, 0, r);
	if (r[0] < 0x40000001 || r[1] != 0x4b4d564b) /* "KVMK" of "KVMKVMKVM" */
		return 0;
	cpuid(0x40000001, 0, r);
	return !!(r[0] & (1u << 3)); /* KVM_FEATURE_CLOCKSOURCE2 */
}

/* SYS_KVMCLOCK: this CPU's kvmclock area at phys (user memory, 64-byte aligned), or off. */
int kvmclock_enable(uint64_t phys)
{
	if (!have_kvmclock() || (phys & 63) || phys >= probe_bootinfo.mapped_top)
		return -1;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, phys ? phys | 1 : 0);
	return 0;
}

/*
 * The TSC rate, for user mode to turn cycles into seconds: kvmclock's scale,
 * read once and switched off again (KVM would keep writing the page).
 */
static void kvmclock_read(void)
{
	struct probe_bootinfo *bi = &probe_bootinfo;

	if (!have_kvmclock())
		return;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)&pvclock | 1);
	for (int i = 0; i < 1000 && (!pvclock.version || (pvclock.version & 1)); i++)
		cpu_pause();
	barrier();
	bi->kvmclock_mul = pvclock.tsc_to_system_mul;
	bi->kvmclock_shift = pvclock.tsc_shift;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
}

static const void *phys_map(void *ctx, uint64_t phys, uint64_t len)
{
	(void)ctx;
	if (!phys || phys + len < phys || phys + len > probe_bootinfo.mapped_top)
		return NULL;
	return (const void *)phys;
}

static void kmain_bsp(uint64_t bsp);

/* A whole word of the command line (user mode checks the words' syntax). */
static int cmdline_has(const char *word)
{
	const char *s = probe_bootinfo.cmdline;

	while (*s) {
		size_t n = 0;

		while (s[n] && s[n] != ' ')
			n++;
		if (n == __builtin_strlen(word) && !__builtin_memcmp(s, word, n))
			return 1;
		s += n;
		while (*s == ' ')
			s++;
	}
	return 0;
}

void kmain(uint32_t proto, uint64_t info);
void kmain(uint32_t proto, uint64_t info)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	struct acpi_access access = { phys_map, NULL };
	uint64_t rsdp;
	uint32_t apic = cpu_apic_id();
	int bsp = -1;

	bi->tsc_entry = rdtsc();
	bi->magic = PROBE_BOOTINFO_MAGIC;
	bi->boot_protocol = proto;
	bi->mapped_top = 4ull << 30;
	rsdp = proto == PROBE_BOOT_PVH ? boot_pvh((const uint8_t *)info) :
		boot_linux((const uint8_t *)info);
	if (!bi->nr_e820)
		fatal("the boot loader gave no memory map (e820)");
	if (!rsdp)
		rsdp = rsdp_scan();
	if (!rsdp)
		fatal("no ACPI RSDP: acpi_rsdp_addr is 0 and none in 0xe0000-0xfffff");
	pic_disable();
	kvmclock_read();
	idt_init();
	if (acpi_parse(&access, rsdp, &bi->acpi))
		kerr("the ACPI tables are inconsistent (see the acpi: lines)");
	if (!bi->acpi.nr_cpus)
		fatal("no usable processor in the MADT");
	for (uint32_t i = 0; i < bi->acpi.nr_cpus; i++)
		if (bi->acpi.cpus[i].apic_id == apic)
			bsp = (int)i;
	if (bsp < 0)
		fatal("the boot CPU's APIC ID %u is not in the MADT", apic);
	bi->bsp = (uint32_t)bsp;
	lapic_mode(&bi->acpi, cmdline_has("probe.apic=x2apic"));
	bi->x2apic = (uint32_t)lapic_x2apic();
	mem_plan();
	call_on_stack((uint64_t)cpu_by_index[bsp] + PROBE_PERCPU_SIZE, kmain_bsp, (uint64_t)bsp);
}

static void kmain_bsp(uint64_t bsp)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	struct cpu_local *cl = this_cpu();

	cpu_init(cl);
	bi->cpu[bsp].entries = 1;
	bi->cpu[bsp].state = CPU_RUNNING;
	smp_boot();
	bi->tsc_user = rdtsc();
	enter_user((uint64_t)_ustart, (uint64_t)user_bsp_stack_top, (uint64_t)bi, bsp, 0);
}
