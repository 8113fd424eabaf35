/*
 * Instructions that some hosts' KVM cannot emulate.  Where KVM runs guest
 * kernel code in its instruction emulator instead of in hardware (this
 * project's CI machines), a guest kernel instruction the emulator lacks
 * ends KVM_RUN with an emulation failure.  A few of them are simple and
 * frequent in Linux, and are completed here instead of failing the VM:
 *
 *   INT3        (CC)           #BP delivered to the guest, as the CPU would
 *   FWAIT       (9B)           no x87 exception is ever pending: a no-op
 *   CLAC, STAC  (0F 01 CA/CB)  clear or set RFLAGS.AC
 *   POPCNT r, r (F3 0F B8 /r)  register operands only
 *
 * Where hardware runs guest kernel code, these exits never happen.
 */
#ifndef GVM_VMM_X86_EMULATE_H
#define GVM_VMM_X86_EMULATE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/ram.h"

#define EMULATE_INSN_MAX 15

/*
 * Decode and perform insn (n bytes read at the failing RIP) on regs/rflags:
 * returns the instruction's length and sets *bp when a #BP must be
 * delivered after it; 0 if it is not one of the instructions above.
 */
struct emulate_regs {
	uint64_t gpr[16]; /* rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8-r15 */
	uint64_t rflags;
};

unsigned emulate_insn(const uint8_t *insn, size_t n, struct emulate_regs *r, int *bp);

/*
 * Guest-virtual to guest-physical through 4-level page tables at cr3 (long
 * mode, CR4.LA57 clear).  Returns 0, or -1 if unmapped.
 */
int emulate_translate(const struct guest_ram *ram, uint64_t cr3, uint64_t va, uint64_t *pa);

/* Try to complete the instruction that vCPU fd failed on; 0 if done. */
int emulate_fixup(const struct guest_ram *ram, int vcpu_fd);

#endif
