#include "vmm/x86/emulate.h"

#include <linux/kvm.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>

#define RFLAGS_CF (1ull << 0)
#define RFLAGS_PF (1ull << 2)
#define RFLAGS_AF (1ull << 4)
#define RFLAGS_ZF (1ull << 6)
#define RFLAGS_SF (1ull << 7)
#define RFLAGS_OF (1ull << 11)
#define RFLAGS_AC (1ull << 18)

#define BP_VECTOR 3

unsigned emulate_insn(const uint8_t *insn, size_t n, struct emulate_regs *r, int *bp)
{
	unsigned i = 0, size = 4;
	uint8_t rex = 0;
	bool rep = false;

	*bp = 0;
	if (n >= 1 && insn[0] == 0xCC) {
		*bp = 1;
		return 1;
	}
	if (n >= 1 && insn[0] == 0x9B)
		return 1;
	if (n >= 3 && insn[0] == 0x0F && insn[1] == 0x01 && (insn[2] == 0xCA || insn[2] == 0xCB)) {
		if (insn[2] == 0xCA)
			r->rflags &= ~RFLAGS_AC;
		else
			r->rflags |= RFLAGS_AC;
		return 3;
	}
	/* POPCNT: prefixes (F3 mandatory, 66 optional), REX, 0F B8, ModRM with mod 3 */
	for (; i < n && i < 4; i++) {
		if (insn[i] == 0xF3)
			rep = true;
		else if (insn[i] == 0x66)
			size = 2;
		else
			break;
	}
	if (i < n && (insn[i] & 0xF0) == 0x40)
		rex = insn[i++];
	if (!rep || i + 3 > n || insn[i] != 0x0F || insn[i + 1] != 0xB8 || (insn[i + 2] >> 6) != 3)
		return 0;
	if (rex & 8)
		size = 8;
	unsigned reg = ((insn[i + 2] >> 3) & 7) | (rex & 4 ? 8 : 0);
	unsigned rm = (insn[i + 2] & 7) | (rex & 1 ? 8 : 0);
	uint64_t src = r->gpr[rm], count;

	if (size < 8)
		src &= (1ull << (8 * size)) - 1;
	count = __builtin_popcountll(src);
	if (size == 8)
		r->gpr[reg] = count;
	else if (size == 4)
		r->gpr[reg] = count; /* a 32-bit write clears the upper half */
	else
		r->gpr[reg] = (r->gpr[reg] & ~0xFFFFull) | count;
	r->rflags &= ~(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
	if (!src)
		r->rflags |= RFLAGS_ZF;
	return i + 3;
}

int emulate_translate(const struct guest_ram *ram, uint64_t cr3, uint64_t va, uint64_t *pa)
{
	uint64_t table = cr3 & 0x000FFFFFFFFFF000ull;

	for (int level = 3; level >= 0; level--) {
		uint64_t index = (va >> (12 + 9 * level)) & 511, entry;
		const uint64_t *e = guest_ram_ptr(ram, table + 8 * index, 8);

		if (!e)
			return -1;
		entry = *e;
		if (!(entry & 1))
			return -1;
		/* 1 GiB and 2 MiB pages */
		if ((level == 2 || level == 1) && (entry & 0x80)) {
			uint64_t mask = (1ull << (12 + 9 * level)) - 1;

			*pa = (entry & 0x000FFFFFFFFFF000ull & ~mask) | (va & mask);
			return 0;
		}
		table = entry & 0x000FFFFFFFFFF000ull;
	}
	*pa = table | (va & 0xFFF);
	return 0;
}

/* KVM's register order differs from the instruction encoding's. */
static void regs_in(const struct kvm_regs *k, struct emulate_regs *r)
{
	const uint64_t g[16] = { k->rax, k->rcx, k->rdx, k->rbx, k->rsp, k->rbp, k->rsi, k->rdi,
				 k->r8,  k->r9,  k->r10, k->r11, k->r12, k->r13, k->r14, k->r15 };

	memcpy(r->gpr, g, sizeof(g));
	r->rflags = k->rflags;
}

static void regs_out(const struct emulate_regs *r, struct kvm_regs *k)
{
	__u64 *g[16] = { &k->rax, &k->rcx, &k->rdx, &k->rbx, &k->rsp, &k->rbp, &k->rsi, &k->rdi,
			 &k->r8,  &k->r9,  &k->r10, &k->r11, &k->r12, &k->r13, &k->r14, &k->r15 };

	for (int i = 0; i < 16; i++)
		*g[i] = r->gpr[i];
	k->rflags = r->rflags;
}

int emulate_fixup(const struct guest_ram *ram, int fd)
{
	uint8_t insn[EMULATE_INSN_MAX];
	struct kvm_regs k;
	struct kvm_sregs s;
	struct emulate_regs r;
	size_t n = 0;
	unsigned len;
	int bp;

	if (ioctl(fd, KVM_GET_REGS, &k) || ioctl(fd, KVM_GET_SREGS, &s))
		return -1;
	/* long mode, 4-level paging, kernel code: where the emulator runs */
	if (!(s.efer & (1u << 10)) || !(s.cr0 & (1u << 31)) || (s.cr4 & (1u << 12)) ||
	    (s.cs.selector & 3))
		return -1;
	while (n < sizeof(insn)) {
		uint64_t pa;
		const uint8_t *p;

		if (emulate_translate(ram, s.cr3, k.rip + n, &pa))
			break;
		p = guest_ram_ptr(ram, pa, 1);
		if (!p)
			break;
		insn[n++] = *p;
	}
	regs_in(&k, &r);
	len = emulate_insn(insn, n, &r, &bp);
	if (!len)
		return -1;
	regs_out(&r, &k);
	k.rip += len;
	if (ioctl(fd, KVM_SET_REGS, &k))
		return -1;
	if (bp) {
		struct kvm_vcpu_events ev;

		if (ioctl(fd, KVM_GET_VCPU_EVENTS, &ev))
			return -1;
		ev.exception.injected = 1;
		ev.exception.nr = BP_VECTOR;
		ev.exception.has_error_code = 0;
		ev.exception.pending = 0;
		ev.flags = 0;
		if (ioctl(fd, KVM_SET_VCPU_EVENTS, &ev))
			return -1;
	}
	return 0;
}
