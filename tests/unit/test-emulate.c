/* The instructions gvm completes for a KVM that cannot, and the page walk that finds them. */
#include <string.h>

#include "tests/lib/check.h"
#include "vmm/ram.h"
#include "vmm/x86/emulate.h"

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11 };
#define ZF (1ull << 6)
#define AC (1ull << 18)

static unsigned run(const uint8_t *insn, size_t n, struct emulate_regs *r, int *bp)
{
	return emulate_insn(insn, n, r, bp);
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

int main(void)
{
	RUN(test_simple);
	RUN(test_popcnt);
	RUN(test_translate);
	return check_summary();
}
