/*
 * The instructions gvm completes for a KVM that cannot, the names it gives
 * the others, and the page walks that find them.
 */
#include <stdbool.h>
#include <string.h>

#include "tests/lib/check.h"
#include "vmm/ram.h"
#include "vmm/x86/emulate.h"

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11 };
#define ZF (1ull << 6)
#define AC (1ull << 18)

static unsigned run(const uint8_t *insn, size_t n, struct emulate_regs *r, int *bp)
{
	struct emulate_event ev;
	unsigned len = emulate_insn(insn, n, r, NULL, &ev);

	*bp = ev.vector == 3 && !ev.fault;
	return len;
}

static void test_simple(void)
{
	struct emulate_regs r = { .rflags = 0x2 };
	int bp;

	CHECK_EQ(run((const uint8_t[]){ 0xCC }, 1, &r, &bp), 1);
	CHECK_EQ(bp, 1);
	CHECK_EQ(run((const uint8_t[]){ 0x9B, 0x90 }, 2, &r, &bp), 1);
	CHECK_EQ(bp, 0);
	CHECK_EQ(run((const uint8_t[]){ 0x0F, 0x01, 0xCB }, 3, &r, &bp), 3); /* STAC */
	CHECK_EQ(r.rflags, 0x2 | AC);
	CHECK_EQ(run((const uint8_t[]){ 0x0F, 0x01, 0xCA }, 3, &r, &bp), 3); /* CLAC */
	CHECK_EQ(r.rflags, 0x2);
	/* other instructions are left alone */
	CHECK_EQ(run((const uint8_t[]){ 0x0F, 0x01, 0xD0 }, 3, &r, &bp), 0); /* XGETBV */
	CHECK_EQ(run((const uint8_t[]){ 0x0F, 0xAE, 0x27 }, 3, &r, &bp), 0); /* XSAVE */
	CHECK_EQ(run((const uint8_t[]){ 0x90 }, 1, &r, &bp), 0);
	CHECK_EQ(run((const uint8_t[]){ 0 }, 0, &r, &bp), 0);
}

static void test_popcnt(void)
{
	struct emulate_regs r;
	int bp;

	/* popcnt %rbx,%rax */
	memset(&r, 0, sizeof(r));
	r.gpr[RBX] = 0xF0F0F0F0F0F0F0F0ull;
	r.gpr[RAX] = ~0ull;
	r.rflags = 0x2 | ZF | 1;
	CHECK_EQ(run((const uint8_t[]){ 0xF3, 0x48, 0x0F, 0xB8, 0xC3 }, 5, &r, &bp), 5);
	CHECK_EQ(r.gpr[RAX], 32);
	CHECK_EQ(r.rflags, 0x2); /* ZF and CF cleared */
	/* popcnt %ebx,%r9d: 32 bits of the source, the destination's top half cleared */
	r.gpr[R9] = ~0ull;
	CHECK_EQ(run((const uint8_t[]){ 0xF3, 0x44, 0x0F, 0xB8, 0xCB }, 5, &r, &bp), 5);
	CHECK_EQ(r.gpr[R9], 16);
	/* popcnt %r10w,%dx: 16 bits, the rest of rdx kept */
	r.gpr[R10] = 0xFFFF0107;
	r.gpr[RDX] = 0x1234567800000000ull;
	CHECK_EQ(run((const uint8_t[]){ 0x66, 0xF3, 0x41, 0x0F, 0xB8, 0xD2 }, 6, &r, &bp), 6);
	CHECK_EQ(r.gpr[RDX], 0x1234567800000004ull);
	/* a zero source sets ZF */
	r.gpr[R11] = 0;
	CHECK_EQ(run((const uint8_t[]){ 0xF3, 0x4D, 0x0F, 0xB8, 0xC3 }, 5, &r, &bp), 5);
	CHECK_EQ(r.gpr[R8], 0);
	CHECK_EQ(r.rflags, 0x2 | ZF);
	/* a memory operand, or no F3 prefix (that is JMPE/other), is not handled */
	CHECK_EQ(run((const uint8_t[]){ 0xF3, 0x0F, 0xB8, 0x07 }, 4, &r, &bp), 0);
	CHECK_EQ(run((const uint8_t[]){ 0x0F, 0xB8, 0xC3 }, 3, &r, &bp), 0);
	/* truncated */
	CHECK_EQ(run((const uint8_t[]){ 0xF3, 0x0F, 0xB8 }, 3, &r, &bp), 0);
}

/* --- LDMXCSR / STMXCSR over a fake vCPU -------------------------------------- */

#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR4_OSFXSR (1ull << 9)
#define MEM_BASE 0x10000ull
#define MEM_SIZE 0x2000u
#define MXCSR_DEFAULT 0x1F80u

/* Two pages at MEM_BASE, the second read-only; anything else is not mapped. */
struct fake {
	uint8_t mem[MEM_SIZE];
	uint32_t mxcsr;
	uint64_t last_va;
	bool unreachable, fpu_fails;
};

static int fake_fault(struct emulate_event *ev, uint64_t va, uint32_t error)
{
	ev->vector = 14;
	ev->fault = true;
	ev->has_error_code = true;
	ev->error_code = error;
	ev->cr2 = va;
	return EMULATE_FAULT;
}

static int fake_read(void *opaque, uint64_t va, void *buf, unsigned len, struct emulate_event *ev)
{
	struct fake *f = opaque;

	f->last_va = va;
	if (f->unreachable)
		return EMULATE_UNREACHABLE;
	if (va < MEM_BASE || va + len > MEM_BASE + MEM_SIZE)
		return fake_fault(ev, va, 0);
	memcpy(buf, f->mem + (va - MEM_BASE), len);
	return 0;
}

static int fake_write(void *opaque, uint64_t va, const void *buf, unsigned len,
		      struct emulate_event *ev)
{
	struct fake *f = opaque;

	f->last_va = va;
	if (va < MEM_BASE || va + len > MEM_BASE + MEM_SIZE)
		return fake_fault(ev, va, 2);
	if (va + len > MEM_BASE + 0x1000)
		return fake_fault(ev, va, 3);
	memcpy(f->mem + (va - MEM_BASE), buf, len);
	return 0;
}

static int fake_get(void *opaque, uint32_t *v)
{
	struct fake *f = opaque;

	*v = f->mxcsr;
	return f->fpu_fails ? -1 : 0;
}

static int fake_set(void *opaque, uint32_t v)
{
	struct fake *f = opaque;

	if (f->fpu_fails)
		return -1;
	f->mxcsr = v;
	return 0;
}

static struct fake fake;
static const struct emulate_env fake_env = {
	.opaque = &fake,
	.read = fake_read,
	.write = fake_write,
	.get_mxcsr = fake_get,
	.set_mxcsr = fake_set,
	.mxcsr_mask = 0xFFFF,
};

static void fake_reset(struct emulate_regs *r)
{
	memset(&fake, 0, sizeof(fake));
	fake.mxcsr = MXCSR_DEFAULT;
	memset(r, 0, sizeof(*r));
	r->rflags = 0x2;
	r->rip = 0xFFFFFFFF81000000ull;
	r->cr0 = 0x80050033;
	r->cr4 = 0x6A0 | CR4_OSFXSR;
}

static void put32(uint64_t va, uint32_t v)
{
	memcpy(fake.mem + (va - MEM_BASE), &v, 4);
}

static uint32_t get32(uint64_t va)
{
	uint32_t v;

	memcpy(&v, fake.mem + (va - MEM_BASE), 4);
	return v;
}

/* Run insn; its length must be want_len, and no exception may follow. */
static void mx_ok(const uint8_t *insn, size_t n, struct emulate_regs *r, unsigned want_len)
{
	struct emulate_event ev;

	CHECK_EQ(emulate_insn(insn, n, r, &fake_env, &ev), want_len);
	CHECK_EQ(ev.vector, -1);
}

/* Run insn: it must fault with vector (and error code, if has_error). */
static void mx_fault(const uint8_t *insn, size_t n, struct emulate_regs *r, int vector,
		     bool has_error, uint32_t error)
{
	struct emulate_event ev;
	struct emulate_regs before = *r;
	uint32_t mxcsr = fake.mxcsr;

	CHECK(emulate_insn(insn, n, r, &fake_env, &ev) > 0);
	CHECK_EQ(ev.vector, vector);
	CHECK(ev.fault);
	CHECK_EQ(ev.has_error_code, has_error);
	if (has_error)
		CHECK_EQ(ev.error_code, error);
	CHECK(!memcmp(&before, r, sizeof(before)));
	CHECK_EQ(fake.mxcsr, mxcsr);
}

static void test_mxcsr_forms(void)
{
	struct emulate_regs r;

	/* ldmxcsr (%rax) */
	fake_reset(&r);
	r.gpr[RAX] = MEM_BASE + 0x10;
	put32(MEM_BASE + 0x10, 0x1F00);
	mx_ok((const uint8_t[]){ 0x0F, 0xAE, 0x10 }, 3, &r, 3);
	CHECK_EQ(fake.mxcsr, 0x1F00);
	/* ldmxcsr 8(%rsp): SIB with the stack pointer as base, disp8 (kernel_fpu_begin's form) */
	r.gpr[RSP] = MEM_BASE + 0x100;
	put32(MEM_BASE + 0x108, 0x1F81);
	mx_ok((const uint8_t[]){ 0x0F, 0xAE, 0x54, 0x24, 0x08 }, 5, &r, 5);
	CHECK_EQ(fake.mxcsr, 0x1F81);
	/* ldmxcsr -8(%rbp) */
	r.gpr[RBP] = MEM_BASE + 0x208;
	put32(MEM_BASE + 0x200, 0x1F82);
	mx_ok((const uint8_t[]){ 0x0F, 0xAE, 0x55, 0xF8 }, 4, &r, 4);
	CHECK_EQ(fake.mxcsr, 0x1F82);
	/* ldmxcsr 0x100(%r8,%rcx,4): REX.B, scale 4, disp32 */
	r.gpr[R8] = MEM_BASE;
	r.gpr[RCX] = 0x40;
	put32(MEM_BASE + 0x200, 0x1F83);
	mx_ok((const uint8_t[]){ 0x41, 0x0F, 0xAE, 0x94, 0x88, 0x00, 0x01, 0x00, 0x00 }, 9, &r, 9);
	CHECK_EQ(fake.mxcsr, 0x1F83);
	/* ldmxcsr (%rax,%r9): REX.X */
	r.gpr[RAX] = MEM_BASE + 0x300;
	r.gpr[R9] = 0x4;
	put32(MEM_BASE + 0x304, 0x1F84);
	mx_ok((const uint8_t[]){ 0x42, 0x0F, 0xAE, 0x14, 0x08 }, 5, &r, 5);
	CHECK_EQ(fake.mxcsr, 0x1F84);
	/* ldmxcsr %gs:0x10 (no base, no index): the GS base counts */
	r.gs_base = MEM_BASE + 0x400;
	put32(MEM_BASE + 0x410, 0x1F85);
	mx_ok((const uint8_t[]){ 0x65, 0x0F, 0xAE, 0x14, 0x25, 0x10, 0x00, 0x00, 0x00 }, 9, &r, 9);
	CHECK_EQ(fake.mxcsr, 0x1F85);
	/* ds: or no prefix with the same form: absolute 0x10, not mapped */
	mx_fault((const uint8_t[]){ 0x0F, 0xAE, 0x14, 0x25, 0x10, 0x00, 0x00, 0x00 }, 8, &r, 14,
		 true, 0);
	CHECK_EQ(fake.last_va, 0x10);
	/* fs: with an FS base */
	r.fs_base = MEM_BASE + 0x500;
	put32(MEM_BASE + 0x510, 0x1F86);
	mx_ok((const uint8_t[]){ 0x64, 0x0F, 0xAE, 0x14, 0x25, 0x10, 0x00, 0x00, 0x00 }, 9, &r, 9);
	CHECK_EQ(fake.mxcsr, 0x1F86);
	/* ldmxcsr (%eax): the 67 prefix drops the upper half of the address */
	r.gpr[RAX] = 0xFFFFFFFF00000000ull | (MEM_BASE + 0x600);
	put32(MEM_BASE + 0x600, 0x1F87);
	mx_ok((const uint8_t[]){ 0x67, 0x0F, 0xAE, 0x10 }, 4, &r, 4);
	CHECK_EQ(fake.mxcsr, 0x1F87);
	/* stmxcsr disp32(%rip): relative to the next instruction */
	r.rip = MEM_BASE + 0x700;
	fake.mxcsr = 0x9FC0;
	mx_ok((const uint8_t[]){ 0x0F, 0xAE, 0x1D, 0x20, 0x00, 0x00, 0x00 }, 7, &r, 7);
	CHECK_EQ(get32(MEM_BASE + 0x727), 0x9FC0);
	/* stmxcsr -4(%rsp), after a REX.W that changes nothing */
	r.gpr[RSP] = MEM_BASE + 0x804;
	fake.mxcsr = 0x1FBF;
	mx_ok((const uint8_t[]){ 0x48, 0x0F, 0xAE, 0x5C, 0x24, 0xFC }, 6, &r, 6);
	CHECK_EQ(get32(MEM_BASE + 0x800), 0x1FBF);
	/* registers and flags untouched */
	CHECK_EQ(r.rflags, 0x2);
	CHECK_EQ(r.gpr[RSP], MEM_BASE + 0x804);
}

static void test_mxcsr_faults(void)
{
	const uint8_t ld[] = { 0x0F, 0xAE, 0x10 }, st[] = { 0x0F, 0xAE, 0x18 };
	struct emulate_regs r;
	struct emulate_event ev;

	fake_reset(&r);
	r.gpr[RAX] = MEM_BASE;
	/* reserved MXCSR bits: #GP(0), MXCSR unchanged */
	put32(MEM_BASE, 0x10000 | MXCSR_DEFAULT);
	mx_fault(ld, 3, &r, 13, true, 0);
	put32(MEM_BASE, 0x80000000u);
	mx_fault(ld, 3, &r, 13, true, 0);
	put32(MEM_BASE, 0xFFFF);
	mx_ok(ld, 3, &r, 3);
	CHECK_EQ(fake.mxcsr, 0xFFFF);
	/* LOCK, CR0.EM, no CR4.OSFXSR: #UD; CR0.TS: #NM; before the operand is read */
	fake.last_va = 0;
	mx_fault((const uint8_t[]){ 0xF0, 0x0F, 0xAE, 0x10 }, 4, &r, 6, false, 0);
	r.cr0 |= CR0_EM;
	mx_fault(st, 3, &r, 6, false, 0);
	r.cr0 &= ~CR0_EM;
	r.cr4 &= ~CR4_OSFXSR;
	mx_fault(ld, 3, &r, 6, false, 0);
	r.cr4 |= CR4_OSFXSR;
	r.cr0 |= CR0_TS;
	mx_fault(st, 3, &r, 7, false, 0);
	r.cr0 &= ~CR0_TS;
	CHECK_EQ(fake.last_va, 0);
	/* a non-canonical address: #GP(0), or #SS(0) through the stack pointer */
	r.gpr[RAX] = 0x0000800000000000ull;
	mx_fault(ld, 3, &r, 13, true, 0);
	r.gpr[RSP] = 0xFFFF7FFFFFFFFFF0ull;
	mx_fault((const uint8_t[]){ 0x0F, 0xAE, 0x14, 0x24 }, 4, &r, 12, true, 0);
	/* the same through r12 (no SS default) is a #GP */
	r.gpr[12] = 0xFFFF7FFFFFFFFFF0ull;
	mx_fault((const uint8_t[]){ 0x41, 0x0F, 0xAE, 0x14, 0x24 }, 5, &r, 13, true, 0);
	/* page faults come back as the memory reports them */
	r.gpr[RAX] = MEM_BASE + 0x1000;
	mx_fault(st, 3, &r, 14, true, 3);
	r.gpr[RAX] = 0x5000;
	mx_fault(ld, 3, &r, 14, true, 0);
	/* memory gvm cannot reach, or an MXCSR KVM will not give: not completed */
	r.gpr[RAX] = MEM_BASE;
	fake.unreachable = true;
	CHECK_EQ(emulate_insn(ld, 3, &r, &fake_env, &ev), 0);
	fake.unreachable = false;
	fake.fpu_fails = true;
	CHECK_EQ(emulate_insn(st, 3, &r, &fake_env, &ev), 0);
	fake.fpu_fails = false;
	/* other encodings are other instructions */
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x66, 0x0F, 0xAE, 0x10 }, 4, &r, &fake_env, &ev),
		 0);
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0xF3, 0x0F, 0xAE, 0x10 }, 4, &r, &fake_env, &ev),
		 0);
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0xAE, 0xD0 }, 3, &r, &fake_env, &ev), 0);
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0xAE, 0x20 }, 3, &r, &fake_env, &ev), 0);
	CHECK_EQ(emulate_insn(ld, 3, &r, NULL, &ev), 0);
	/* truncated: the ModRM, the SIB, the displacement */
	CHECK_EQ(emulate_insn(ld, 2, &r, &fake_env, &ev), 0);
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0xAE, 0x14 }, 3, &r, &fake_env, &ev), 0);
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0xAE, 0x1D, 0, 0, 0 }, 6, &r, &fake_env,
			      &ev), 0);
}

/* --- LSL ---------------------------------------------------------------------- */

#define GDT (MEM_BASE + 0x800)
#define LDT (MEM_BASE + 0x900)

static void put64(uint64_t va, uint64_t v)
{
	memcpy(fake.mem + (va - MEM_BASE), &v, 8);
}

/* A descriptor: limit (20 bits), type, S, DPL, G. */
static uint64_t desc(uint32_t limit, unsigned type, bool s, unsigned dpl, bool g)
{
	return (limit & 0xFFFF) | (uint64_t)(limit & 0xF0000) << 32 | (uint64_t)type << 40 |
	       (uint64_t)s << 44 | (uint64_t)dpl << 45 | 1ull << 47 | (uint64_t)g << 55;
}

/* lsl %eax, %ecx with selector sel: ZF and ecx afterwards */
static void lsl_is(struct emulate_regs *r, uint16_t sel, bool want_zf, uint64_t want_rcx)
{
	struct emulate_event ev;

	r->gpr[RAX] = 0xABCD0000 | sel;
	r->gpr[RCX] = 0x5555555555555555ull;
	r->rflags = 0x2 | (want_zf ? 0 : ZF);
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0x03, 0xC8 }, 3, r, &fake_env, &ev), 3);
	CHECK_EQ(ev.vector, -1);
	CHECK_EQ(r->rflags, 0x2 | (want_zf ? ZF : 0));
	CHECK_EQ(r->gpr[RCX], want_zf ? want_rcx : 0x5555555555555555ull);
}

static void test_lsl(void)
{
	struct emulate_regs r;
	struct emulate_event ev;

	fake_reset(&r);
	r.gdt_base = GDT;
	r.gdt_limit = 16 * 8 - 1;
	r.ldt_base = LDT;
	r.ldt_limit = 2 * 8 - 1;
	r.ldt_usable = true;
	put64(GDT + 2 * 8, desc(0xFFFFF, 0xB, true, 0, true));   /* kernel code */
	put64(GDT + 3 * 8, desc(0x12345, 0x3, true, 3, false));  /* user data, byte limit */
	put64(GDT + 4 * 8, desc(0x00ABC, 0x3, true, 3, true));   /* 4 KiB granular */
	put64(GDT + 5 * 8, desc(0x67, 0xB, false, 0, false));    /* busy 64-bit TSS */
	put64(GDT + 7 * 8, desc(0x1000, 0xC, false, 3, false));  /* a call gate */
	put64(GDT + 8 * 8, desc(0x2000, 0x1F, true, 0, false));  /* conforming code, DPL 0 */
	put64(GDT + 15 * 8, desc(0x1001, 0x5, true, 3, false));  /* Linux's CPU/node entry */
	put64(LDT + 1 * 8, desc(0x777, 0x3, true, 3, false));
	lsl_is(&r, 3 * 8 | 3, true, 0x12345);
	lsl_is(&r, 4 * 8, true, 0xABCFFF);
	lsl_is(&r, 2 * 8, true, 0xFFFFFFFF);
	lsl_is(&r, 5 * 8, true, 0x67);
	lsl_is(&r, 15 * 8 | 3, true, 0x1001);
	lsl_is(&r, 1 * 8 | 4 | 3, true, 0x777);          /* in the LDT */
	lsl_is(&r, 8 * 8 | 3, true, 0x2000);             /* conforming: no privilege check */
	/* refused: DPL below RPL or CPL, a gate, null, beyond the table, no LDT */
	lsl_is(&r, 2 * 8 | 3, false, 0);
	r.cpl = 3;
	lsl_is(&r, 5 * 8, false, 0);
	r.cpl = 0;
	lsl_is(&r, 7 * 8 | 3, false, 0);
	lsl_is(&r, 0, false, 0);
	lsl_is(&r, 3, false, 0);
	lsl_is(&r, 16 * 8, false, 0);
	lsl_is(&r, 2 * 8 | 4, false, 0);
	r.ldt_usable = false;
	lsl_is(&r, 1 * 8 | 4 | 3, false, 0);
	/* Linux's form: lsl %rax, %rax (REX.W) */
	r.gpr[RAX] = 15 * 8 | 3;
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x48, 0x0F, 0x03, 0xC0 }, 4, &r, &fake_env,
			      &ev), 4);
	CHECK_EQ(r.gpr[RAX], 0x1001);
	/* 16-bit: only the low half of the destination */
	r.gpr[RAX] = 4 * 8;
	r.gpr[RDX] = 0x1111111111111111ull;
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x66, 0x0F, 0x03, 0xD0 }, 4, &r, &fake_env,
			      &ev), 4);
	CHECK_EQ(r.gpr[RDX], 0x111111111111CFFFull);
	/* a selector in memory: lsl (%rbx), %r9d */
	r.gpr[RBX] = MEM_BASE + 0x40;
	put32(MEM_BASE + 0x40, 3 * 8 | 3);
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x44, 0x0F, 0x03, 0x0B }, 4, &r, &fake_env,
			      &ev), 4);
	CHECK_EQ(r.gpr[R9], 0x12345);
	/* a descriptor table gvm cannot read: a #PF, as the CPU would */
	r.gdt_base = 0x100000;
	r.gpr[RAX] = 3 * 8;
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0x03, 0xC8 }, 3, &r, &fake_env, &ev), 3);
	CHECK_EQ(ev.vector, 14);
	/* LOCK: #UD; no env: not completed */
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0xF0, 0x0F, 0x03, 0xC8 }, 4, &r, &fake_env,
			      &ev), 4);
	CHECK_EQ(ev.vector, 6);
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0x03, 0xC8 }, 3, &r, NULL, &ev), 0);
}

/* verr/verw %ax (0F 00 E0/E8) with selector sel: ZF afterwards, whatever it was before */
static bool ver(struct emulate_regs *r, bool write, uint16_t sel)
{
	struct emulate_event ev;
	bool zf[2];

	for (int before = 0; before < 2; before++) {
		r->gpr[RAX] = sel;
		r->rflags = 0x2 | (before ? ZF : 0);
		CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0x00, write ? 0xE8 : 0xE0 }, 3, r,
				      &fake_env, &ev), 3);
		CHECK_EQ(ev.vector, -1);
		CHECK_EQ(r->gpr[RAX], sel);
		CHECK_EQ(r->rflags & ~ZF, 0x2);
		zf[before] = r->rflags & ZF;
	}
	CHECK_EQ(zf[0], zf[1]);
	return zf[0];
}

static void test_verr_verw(void)
{
	struct emulate_regs r;
	struct emulate_event ev;

	fake_reset(&r);
	r.gdt_base = GDT;
	r.gdt_limit = 16 * 8 - 1;
	put64(GDT + 2 * 8, desc(0xFFFFF, 0xB, true, 0, true));   /* code, readable */
	put64(GDT + 3 * 8, desc(0xFFFFF, 0x3, true, 0, true));   /* data, writable */
	put64(GDT + 4 * 8, desc(0xFFFFF, 0x1, true, 3, true));   /* data, read-only */
	put64(GDT + 5 * 8, desc(0x67, 0xB, false, 0, false));    /* busy 64-bit TSS */
	put64(GDT + 6 * 8, desc(0xFFFFF, 0x9, true, 0, true));   /* code, execute-only */
	put64(GDT + 8 * 8, desc(0x2000, 0x1E, true, 0, false));  /* conforming code, readable */
	put64(GDT + 9 * 8, desc(0xFFFFF, 0x3, true, 3, true));   /* data, writable, DPL 3 */
	CHECK(ver(&r, true, 3 * 8));
	CHECK(ver(&r, false, 3 * 8));
	CHECK(!ver(&r, true, 3 * 8 | 3));        /* DPL 0 under RPL 3 */
	CHECK(ver(&r, true, 9 * 8 | 3));
	CHECK(!ver(&r, true, 4 * 8 | 3));        /* read-only */
	CHECK(ver(&r, false, 4 * 8 | 3));
	CHECK(!ver(&r, true, 2 * 8));            /* code is never writable */
	CHECK(ver(&r, false, 2 * 8));
	CHECK(!ver(&r, false, 6 * 8));           /* execute-only */
	CHECK(ver(&r, false, 8 * 8 | 3));        /* conforming: no privilege check */
	CHECK(!ver(&r, false, 5 * 8));           /* system descriptors never */
	CHECK(!ver(&r, false, 0));
	CHECK(!ver(&r, true, 16 * 8));
	r.cpl = 3;
	CHECK(!ver(&r, true, 3 * 8));
	r.cpl = 0;
	/* Linux's form: verw disp32(%rip), the kernel data selector in memory */
	r.rip = MEM_BASE + 0x100;
	put32(MEM_BASE + 0x100 + 7 + 0x20, 3 * 8);
	r.rflags = 0x2;
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0x00, 0x2D, 0x20, 0x00, 0x00, 0x00 }, 7, &r,
			      &fake_env, &ev), 7);
	CHECK_EQ(r.rflags, 0x2 | ZF);
	/* other 0F 00 forms (SLDT, LTR...) are not completed */
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0x00, 0xD8 }, 3, &r, &fake_env, &ev), 0);
	CHECK_EQ(emulate_insn((const uint8_t[]){ 0x0F, 0x00, 0xC0 }, 3, &r, &fake_env, &ev), 0);
}

/* --- names ------------------------------------------------------------------ */

static void name_is(const uint8_t *insn, size_t n, bool lm, const char *want, unsigned want_len)
{
	const char *hint;
	unsigned len;
	const char *name = emulate_insn_name(insn, n, lm, &len, &hint);

	if (want)
		CHECK_STR(name, want);
	else
		CHECK(!name);
	CHECK_EQ(len, want_len);
}

static void test_names(void)
{
	const char *hint;
	unsigned len;

	name_is((const uint8_t[]){ 0x0F, 0xAE, 0x27, 0x90 }, 4, true, "XSAVE", 3);
	CHECK_STR(emulate_insn_name((const uint8_t[]){ 0x0F, 0xAE, 0x27 }, 3, true, &len, &hint),
		  "XSAVE");
	CHECK(hint && strstr(hint, "noxsave"));
	name_is((const uint8_t[]){ 0x48, 0x0F, 0xC7, 0x2F }, 4, true, "XSAVES", 4);
	name_is((const uint8_t[]){ 0x0F, 0x01, 0xD0 }, 3, true, "XGETBV", 3);
	name_is((const uint8_t[]){ 0x0F, 0x01, 0xCB }, 3, true, "STAC", 3);
	name_is((const uint8_t[]){ 0xF3, 0x48, 0x0F, 0xAE, 0xC8 }, 5, true, "RDGSBASE", 5);
	CHECK_STR(emulate_insn_name((const uint8_t[]){ 0xF3, 0x0F, 0xAE, 0xD8 }, 4, true, &len,
				    &hint), "WRGSBASE");
	CHECK(hint && strstr(hint, "nofsgsbase"));
	name_is((const uint8_t[]){ 0x0F, 0xAE, 0xF0 }, 3, true, "MFENCE", 3);
	/* ldmxcsr 0x100(%r8,%rcx,4): SIB and disp32 counted */
	name_is((const uint8_t[]){ 0x41, 0x0F, 0xAE, 0x94, 0x88, 0x00, 0x01, 0x00, 0x00, 0x90 },
		10, true, "LDMXCSR", 9);
	/* crc32l 0x1000(%rip), %eax */
	name_is((const uint8_t[]){ 0xF2, 0x0F, 0x38, 0xF1, 0x05, 0x00, 0x10, 0x00, 0x00 }, 9, true,
		"CRC32", 9);
	name_is((const uint8_t[]){ 0x0F, 0x38, 0xF0, 0x07 }, 4, true, "MOVBE", 4);
	name_is((const uint8_t[]){ 0xF3, 0x0F, 0xB8, 0x07 }, 4, true, "POPCNT", 4);
	name_is((const uint8_t[]){ 0xCD, 0x80 }, 2, true, "INT n", 2);
	name_is((const uint8_t[]){ 0x0F, 0xFF, 0xC0 }, 3, true, "UD0", 3);
	name_is((const uint8_t[]){ 0x66, 0x0F, 0x02, 0xD8 }, 4, true, "LAR", 4);
	name_is((const uint8_t[]){ 0x0F, 0x00, 0x2D, 1, 2, 3, 4 }, 7, true, "VERW", 7);
	/* groups: pxor, pshufd (an immediate), vpxor, an EVEX move, fldz */
	name_is((const uint8_t[]){ 0x66, 0x0F, 0xEF, 0xC0 }, 4, true, "an SSE instruction", 4);
	name_is((const uint8_t[]){ 0x66, 0x0F, 0x70, 0xC1, 0x1B }, 5, true, "an SSE instruction",
		5);
	name_is((const uint8_t[]){ 0x0F, 0x58, 0xC1 }, 3, true, "an SSE or MMX instruction", 3);
	name_is((const uint8_t[]){ 0xC5, 0xF9, 0xEF, 0xC0, 0x90 }, 5, true,
		"a VEX-encoded (AVX) instruction", 4);
	name_is((const uint8_t[]){ 0xC4, 0xE3, 0x79, 0x0F, 0xC1, 0x08 }, 6, true,
		"a VEX-encoded (AVX) instruction", 6);
	name_is((const uint8_t[]){ 0x62, 0xF1, 0x7C, 0x48, 0x10, 0x41, 0x01 }, 7, true,
		"an EVEX-encoded (AVX-512) instruction", 7);
	name_is((const uint8_t[]){ 0xD9, 0xEE }, 2, true, "an x87 FPU instruction", 2);
	/* 32-bit mode: 40 is INC, not REX; C4 with a memory ModRM is LES */
	name_is((const uint8_t[]){ 0x40, 0x0F, 0xA2 }, 3, false, NULL, 0);
	name_is((const uint8_t[]){ 0x40, 0x0F, 0xA2 }, 3, true, "CPUID", 3);
	name_is((const uint8_t[]){ 0xC4, 0x06 }, 2, false, NULL, 0);
	/* a 32-bit absolute disp32 is not RIP-relative, and 67 means 16-bit addressing */
	name_is((const uint8_t[]){ 0x0F, 0xAE, 0x15, 1, 2, 3, 4 }, 7, false, "LDMXCSR", 7);
	name_is((const uint8_t[]){ 0x67, 0x0F, 0xAE, 0x16, 1, 2 }, 6, false, "LDMXCSR", 6);
	/* unknown, truncated, nothing */
	name_is((const uint8_t[]){ 0x90 }, 1, true, NULL, 0);
	name_is((const uint8_t[]){ 0x48, 0x89, 0xC8 }, 3, true, NULL, 0);
	name_is((const uint8_t[]){ 0x0F, 0xAE }, 2, true, NULL, 0);
	name_is((const uint8_t[]){ 0xF2, 0x0F, 0x38, 0xF1, 0x05, 0x00 }, 6, true, "CRC32", 0);
	name_is((const uint8_t[]){ 0x66, 0x66, 0x66 }, 3, true, NULL, 0);
	name_is((const uint8_t[]){ 0 }, 0, true, NULL, 0);
}

static void test_translate(void)
{
	struct guest_ram *ram = guest_ram_anon(16 << 20);
	uint64_t *pml4 = guest_ram_ptr(ram, 0x1000, 4096);
	uint64_t *pdpt = guest_ram_ptr(ram, 0x2000, 4096);
	uint64_t *pd = guest_ram_ptr(ram, 0x3000, 4096);
	uint64_t *pt = guest_ram_ptr(ram, 0x4000, 4096);
	const uint64_t va_4k = 0xFFFFFFFF81000123ull, va_2m = 0xFFFFFFFF81234567ull;
	uint64_t pa;

	/* 0xFFFFFFFF81000000: PML4 511, PDPT 510, PD 8 */
	pml4[511] = 0x2000 | 3;
	pdpt[510] = 0x3000 | 3;
	pd[8] = 0x4000 | 3;            /* a page table */
	pt[0] = 0x00A05000 | 3;        /* 4 KiB page */
	pd[9] = 0x00600000 | 0x83;     /* 2 MiB page */
	pdpt[0] = 0x40000000 | 0x83;   /* 1 GiB page */
	pml4[0] = 0x2000 | 3;
	CHECK_EQ(emulate_translate(ram, 0x1000, va_4k, &pa), 0);
	CHECK_EQ(pa, 0xA05123);
	CHECK_EQ(emulate_translate(ram, 0x1000, va_2m, &pa), 0);
	CHECK_EQ(pa, 0x634567);
	CHECK_EQ(emulate_translate(ram, 0x1000, 0x12345678, &pa), 0);
	CHECK_EQ(pa, 0x40000000 + 0x12345678);
	/* not present, and a table outside RAM */
	CHECK_EQ(emulate_translate(ram, 0x1000, 0xFFFFFFFF81001000ull, &pa), -1);
	CHECK_EQ(emulate_translate(ram, 0x1000, 0x0000008000000000ull, &pa), -1);
	CHECK_EQ(emulate_translate(ram, 0x7F000000, va_4k, &pa), -1);
	guest_ram_release(ram);
}

static void test_walk(void)
{
	struct guest_ram *ram = guest_ram_anon(16 << 20);
	uint64_t *pml4 = guest_ram_ptr(ram, 0x1000, 4096);
	uint64_t *pdpt = guest_ram_ptr(ram, 0x2000, 4096);
	uint64_t *pd = guest_ram_ptr(ram, 0x3000, 4096);
	uint64_t *pt = guest_ram_ptr(ram, 0x4000, 4096);
	struct emulate_paging lm = { .cr0 = 0x80010001, .cr3 = 0x1000, .cr4 = 0x20, .efer = 0x500 };
	const uint64_t va = 0xFFFFFFFF81000123ull, ro = 0xFFFFFFFF81001000ull;
	uint64_t pa;
	uint32_t pf;

	pml4[511] = 0x2000 | 3;
	pdpt[510] = 0x3000 | 3;
	pd[8] = 0x4000 | 3;
	pt[0] = 0x00A05000 | 3;
	pt[1] = 0x00A06000 | 1; /* read-only */
	/* a read sets Accessed along the way, not Dirty */
	CHECK_EQ(emulate_walk(ram, &lm, va, EMULATE_WALK_SET_AD, &pa, &pf), 0);
	CHECK_EQ(pa, 0xA05123);
	CHECK_EQ(pml4[511] & 0x60, 0x20);
	CHECK_EQ(pd[8] & 0x60, 0x20);
	CHECK_EQ(pt[0] & 0x60, 0x20);
	/* a write sets Dirty in the leaf */
	CHECK_EQ(emulate_walk(ram, &lm, va, EMULATE_WALK_SET_AD | EMULATE_WALK_WRITE, &pa, &pf), 0);
	CHECK_EQ(pt[0] & 0x60, 0x60);
	CHECK_EQ(pd[8] & 0x40, 0);
	/* without SET_AD nothing changes */
	CHECK_EQ(emulate_walk(ram, &lm, ro, 0, &pa, &pf), 0);
	CHECK_EQ(pt[1], 0x00A06000 | 1);
	/* a write to a read-only page faults with CR0.WP (present | write), not without */
	CHECK_EQ(emulate_walk(ram, &lm, ro, EMULATE_WALK_WRITE, &pa, &pf), EMULATE_FAULT);
	CHECK_EQ(pf, EMULATE_PF_PRESENT | EMULATE_PF_WRITE);
	lm.cr0 &= ~0x10000ull;
	CHECK_EQ(emulate_walk(ram, &lm, ro, EMULATE_WALK_WRITE, &pa, &pf), 0);
	CHECK_EQ(pa, 0xA06000);
	lm.cr0 |= 0x10000;
	/* read-only higher up counts too */
	pd[8] &= ~2ull;
	CHECK_EQ(emulate_walk(ram, &lm, va, EMULATE_WALK_WRITE, &pa, &pf), EMULATE_FAULT);
	pd[8] |= 2;
	/* not present: the error code says read or write */
	CHECK_EQ(emulate_walk(ram, &lm, ro + 0x1000, 0, &pa, &pf), EMULATE_FAULT);
	CHECK_EQ(pf, 0);
	CHECK_EQ(emulate_walk(ram, &lm, ro + 0x1000, EMULATE_WALK_WRITE, &pa, &pf), EMULATE_FAULT);
	CHECK_EQ(pf, EMULATE_PF_WRITE);
	/* 5-level paging is not walked; a table outside RAM is unreachable */
	lm.cr4 |= 1u << 12;
	CHECK_EQ(emulate_walk(ram, &lm, va, 0, &pa, &pf), EMULATE_UNREACHABLE);
	lm.cr4 &= ~(1ull << 12);
	lm.cr3 = 0x7F000000;
	CHECK_EQ(emulate_walk(ram, &lm, va, 0, &pa, &pf), EMULATE_UNREACHABLE);

	/* paging off: linear is physical, within 4 GiB */
	struct emulate_paging off = { .cr0 = 0x11 };
	CHECK_EQ(emulate_walk(ram, &off, 0x123456789ull, 0, &pa, &pf), 0);
	CHECK_EQ(pa, 0x23456789);

	/* PAE: 4 PDPTEs at a 32-byte aligned CR3, 2 MiB pages and page tables */
	uint64_t *pae_pdpt = guest_ram_ptr(ram, 0x5020, 32);
	uint64_t *pae_pd = guest_ram_ptr(ram, 0x6000, 4096);
	uint64_t *pae_pt = guest_ram_ptr(ram, 0x7000, 4096);
	struct emulate_paging pae = { .cr0 = 0x80010001, .cr3 = 0x5020, .cr4 = 0x20 };

	pae_pdpt[0] = 0x6000 | 1;
	pae_pd[1] = 0x00400000 | 0x83;
	pae_pd[2] = 0x7000 | 3;
	pae_pt[3] = 0x00A07000 | 3;
	CHECK_EQ(emulate_walk(ram, &pae, 0x00212345, 0, &pa, &pf), 0);
	CHECK_EQ(pa, 0x412345);
	CHECK_EQ(emulate_walk(ram, &pae, 0x00403123, 0, &pa, &pf), 0);
	CHECK_EQ(pa, 0xA07123);
	CHECK_EQ(emulate_walk(ram, &pae, 0x40000000, 0, &pa, &pf), EMULATE_FAULT);

	/* 32-bit: 4 MiB pages only with CR4.PSE */
	uint32_t *pd32 = guest_ram_ptr(ram, 0x8000, 4096);
	uint32_t *pt32 = guest_ram_ptr(ram, 0x9000, 4096);
	struct emulate_paging p32 = { .cr0 = 0x80010001, .cr3 = 0x8000, .cr4 = 0x10 };

	pd32[1] = 0x00800000 | 0x83;
	pd32[2] = 0x9000 | 3;
	pt32[5] = 0x00A09000 | 3;
	CHECK_EQ(emulate_walk(ram, &p32, 0x00412345, 0, &pa, &pf), 0);
	CHECK_EQ(pa, 0x812345);
	CHECK_EQ(emulate_walk(ram, &p32, 0x00805ABC, 0, &pa, &pf), 0);
	CHECK_EQ(pa, 0xA09ABC);
	p32.cr4 = 0;
	CHECK_EQ(emulate_walk(ram, &p32, 0x00412345, 0, &pa, &pf), EMULATE_FAULT);
	guest_ram_release(ram);
}

int main(void)
{
	RUN(test_simple);
	RUN(test_popcnt);
	RUN(test_mxcsr_forms);
	RUN(test_mxcsr_faults);
	RUN(test_lsl);
	RUN(test_verr_verw);
	RUN(test_names);
	RUN(test_translate);
	RUN(test_walk);
	return check_summary();
}
