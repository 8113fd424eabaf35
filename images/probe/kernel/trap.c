/* The IDT, interrupts, exceptions, and user requests (UD2 + rax). */
#include "images/probe/kernel/kernel.h"

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));

void idt_init(void)
{
	for (const uint64_t *e = isr_table; e[1]; e += 2) {
		uint64_t h = e[1];

		idt[e[0]] = (struct idt_gate){ (uint16_t)h, SEL_KCODE, 0, 0x8e, (uint16_t)(h >> 16),
					       (uint32_t)(h >> 32), 0 };
	}
}

void idt_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) p = { sizeof(idt) - 1, (uint64_t)idt };

	__asm__ volatile("lidt %0" : : "m"(p));
}

static long sys_start(uint64_t cpu, uint64_t rip, uint64_t rsp, uint64_t arg)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	struct cpu_local *t;

	if (cpu >= bi->acpi.nr_cpus || bi->cpu[cpu].state != CPU_UP)
		return -1;
	t = cpu_by_index[cpu];
	t->start_rip = rip;
	t->start_rsp = rsp;
	t->start_arg = arg;
	barrier();
	t->go = 1;
	lapic_send(t->apic_id, VEC_WAKE);
	return 0;
}

/*
 * Give up on a round trip after this many TSC cycles (about 10 s at 2 GHz):
 * on a loaded host with more vCPUs than cores a single round trip has taken
 * over a second, and only a lost interrupt should fail the run.
 */
#define PING_TIMEOUT 20000000000ull

static long sys_ping(uint64_t cpu, uint64_t rounds, struct probe_ping *out, uint64_t logical)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	struct cpu_local *me = this_cpu(), *t;
	struct probe_ping r = { 0, ~0ull, 0, 0, 0 };

	if (cpu >= bi->acpi.nr_cpus || cpu == me->index || bi->cpu[cpu].state < CPU_UP)
		return -1;
	t = cpu_by_index[cpu];
	if (logical && !t->logical_dest)
		return -1;
	t->ping_reply_apic = me->apic_id;
	/* A periodic timer wakes the halted sender if a reply never comes. */
	lapic_timer(VEC_TIMER, 20000000);
	for (; r.rounds < rounds; r.rounds++) {
		uint64_t before = me->pongs, t0 = rdtsc(), dt;

		if (logical)
			lapic_send_logical(t->logical_dest, VEC_PING);
		else
			lapic_send(t->apic_id, VEC_PING);
		while (me->pongs == before && rdtsc() - t0 < PING_TIMEOUT)
			sti_hlt_cli();
		if (me->pongs == before) {
			r.waited = rdtsc() - t0;
			break;
		}
		dt = rdtsc() - t0;
		r.min = dt < r.min ? dt : r.min;
		r.max = dt > r.max ? dt : r.max;
		r.sum += dt;
	}
	lapic_timer(VEC_TIMER, 0);
	*out = r;
	return r.rounds == rounds ? 0 : -1;
}

/* ACPI soft-off: SLP_TYP of \_S5 and SLP_EN, written to PM1a_CNT (ACPI 4.8.3.2.1). */
#define POWEROFF_WAIT 4000000000ull /* TSC cycles: 2 s at 2 GHz */

static long sys_poweroff(void)
{
	const struct acpi_topo *t = &probe_bootinfo.acpi;
	uint64_t t0 = rdtsc();

	if (!t->pm1a_cnt || t->pm1a_cnt > 0xffff || t->s5_typ > 7)
		return -1;
	outw((uint16_t)t->pm1a_cnt, (uint16_t)(t->s5_typ << 10 | 1u << 13));
	/* A machine may take its time to go (QEMU does, after the write returns). */
	while (rdtsc() - t0 < POWEROFF_WAIT)
		cpu_pause();
	return -2;
}

static void syscall(struct trap_frame *f)
{
	f->rip += 2;
	switch (f->rax) {
	case SYS_EXIT:
		exit_vm((uint32_t)f->rdi);
	case SYS_START:
		f->rax = (uint64_t)sys_start(f->rdi, f->rsi, f->rdx, f->rcx);
		break;
	case SYS_IPI_PING:
		f->rax = (uint64_t)sys_ping(f->rdi, f->rsi, (struct probe_ping *)f->rdx, f->rcx);
		break;
	case SYS_KVMCLOCK:
		f->rax = (uint64_t)(long)kvmclock_enable(f->rdi);
		break;
	case SYS_IRQ:
		f->rax = (uint64_t)sys_irq(f->rdi, f->rsi, (struct probe_ping *)f->rdx);
		break;
	case SYS_POWEROFF:
		f->rax = (uint64_t)sys_poweroff();
		break;
	case SYS_NAP:
		/* a waiting thread leaves its host CPU to the others, and still serves IPIs */
		lapic_timer(VEC_TIMER, (uint32_t)f->rdi);
		sti_hlt_cli();
		lapic_timer(VEC_TIMER, 0);
		f->rax = 0;
		break;
	case SYS_PARK:
		for (;;)
			sti_hlt_cli();
	default:
		f->rax = (uint64_t)-1;
	}
}

static const char *const exc_names[32] = {
	"divide error", "debug", "NMI", "breakpoint", "overflow", "bound range",
	"invalid opcode", "device not available", "double fault", "coprocessor overrun",
	"invalid TSS", "segment not present", "stack fault", "general protection",
	"page fault", "reserved", "x87 error", "alignment check", "machine check",
	"SIMD error", "virtualization", "control protection",
};

void trap(struct trap_frame *f)
{
	struct cpu_local *me;

	switch (f->vec) {
	case VEC_PING:
		me = this_cpu();
		lapic_send(me->ping_reply_apic, VEC_PONG);
		lapic_eoi();
		return;
	case VEC_PONG:
		this_cpu()->pongs++;
		lapic_eoi();
		return;
	case VEC_WAKE:
		this_cpu()->wakes++;
		lapic_eoi();
		return;
	case VEC_TIMER:
		this_cpu()->ticks++;
		lapic_eoi();
		return;
	case VEC_UART:
		uart_irq();
		return;
	case VEC_SPURIOUS:
		return;
	case 6:
		if ((f->cs & 3) == 3 && *(const uint16_t *)f->rip == 0x0b0f) {
			syscall(f);
			return;
		}
		break;
	}

	uint64_t cr2;
	const char *name = f->vec < 32 && exc_names[f->vec] ? exc_names[f->vec] : "interrupt";

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	fatal("CPU with APIC ID %u: %s (vector %lu, error 0x%lx) at rip 0x%lx in %s mode, "
	      "cr2 0x%lx, rsp 0x%lx", lapic_id(), name, f->vec, f->err, f->rip,
	      (f->cs & 3) ? "user" : "kernel", cr2, f->rsp);
}
