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
 *   LDMXCSR m32 (0F AE /2)     every 64-bit addressing form, FS/GS bases;
 *   STMXCSR m32 (0F AE /3)     the faults the CPU raises (#UD, #NM, #GP,
 *                              #SS, #PF) raised in the guest instead
 *   LSL r, r/m16 (0F 03 /r)    a descriptor's limit from the GDT or LDT, ZF
 *                              clear where the CPU refuses it (Linux reads
 *                              its CPU number so, e.g. entering an NMI)
 *   VERR, VERW r/m16 (0F 00 /4, /5)  ZF: may the segment be read, written
 *                              (Linux runs VERW on its way back to user
 *                              mode to clear CPU buffers against MDS)
 *
 * Only in 64-bit kernel mode, where the emulator runs.  Where hardware runs
 * guest kernel code, these exits never happen.
 *
 * For the others, emulate_describe names the instruction at the vCPU's RIP
 * (its bytes read through the guest's segments and page tables) so that the
 * error says what the guest tried.
 */
#ifndef GVM_VMM_X86_EMULATE_H
#define GVM_VMM_X86_EMULATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/ram.h"

#define EMULATE_INSN_MAX 15

/* The vCPU state the instructions above read and write. */
struct emulate_regs {
	uint64_t gpr[16]; /* rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8-r15 */
	uint64_t rflags;
	uint64_t rip;     /* of the instruction */
	uint64_t fs_base, gs_base;
	uint64_t cr0, cr4;
	unsigned cpl;
	uint64_t gdt_base, ldt_base; /* linear */
	uint32_t gdt_limit, ldt_limit;
	bool ldt_usable;
};

/* Page-fault error code bits. */
#define EMULATE_PF_PRESENT 0x1u
#define EMULATE_PF_WRITE 0x2u
#define EMULATE_PF_USER 0x4u
#define EMULATE_PF_FETCH 0x10u

/* An exception the instruction raises. */
struct emulate_event {
	int vector;          /* -1: none */
	bool fault;          /* RIP stays at the instruction; else (#BP) it moves past */
	bool has_error_code;
	uint32_t error_code;
	uint64_t cr2;        /* #PF: the address */
};

/* How the instructions reach guest memory and the vCPU's MXCSR. */
struct emulate_env {
	void *opaque;
	/*
	 * len bytes at guest-virtual va: 0; EMULATE_FAULT with the #PF in *ev;
	 * or EMULATE_UNREACHABLE (not RAM: the instruction is then not
	 * completed).
	 */
	int (*read)(void *opaque, uint64_t va, void *buf, unsigned len, struct emulate_event *ev);
	int (*write)(void *opaque, uint64_t va, const void *buf, unsigned len,
		     struct emulate_event *ev);
	/* 0, or -1 when KVM would not tell or take it */
	int (*get_mxcsr)(void *opaque, uint32_t *mxcsr);
	int (*set_mxcsr)(void *opaque, uint32_t mxcsr);
	uint32_t mxcsr_mask; /* the MXCSR bits this CPU implements (FXSAVE's MXCSR_MASK) */
};

#define EMULATE_FAULT (-1)
#define EMULATE_UNREACHABLE (-2)

/*
 * Decode and perform insn (n bytes read at r->rip) on r, through env (NULL:
 * register-only instructions).  Returns the instruction's length, with
 * *ev saying which exception, if any, to deliver; 0 if it is not one of the
 * instructions above or cannot be completed (its operand not in RAM, an
 * ioctl failing).  On a fault r is unchanged.
 */
unsigned emulate_insn(const uint8_t *insn, size_t n, struct emulate_regs *r,
		      const struct emulate_env *env, struct emulate_event *ev);

/*
 * The name of the instruction insn starts with, if gvm knows it (long_mode:
 * decoded as in 64-bit mode, else as in 32-bit mode), else NULL.  *len: its
 * length, 0 if unknown; *hint: NULL, or what a guest does to avoid it.
 */
const char *emulate_insn_name(const uint8_t *insn, size_t n, bool long_mode, unsigned *len,
			      const char **hint);

/* The paging state a walk needs. */
struct emulate_paging {
	uint64_t cr0, cr3, cr4, efer;
};

#define EMULATE_WALK_WRITE 1u  /* check write permission, set Dirty */
#define EMULATE_WALK_SET_AD 2u /* set Accessed (and Dirty) as the CPU would */

/*
 * Guest-virtual (linear) to guest-physical through the page tables paging
 * describes: none, 32-bit, PAE or 4-level (not 5-level), for a supervisor
 * access.  Returns 0; EMULATE_FAULT with *pf the #PF error code; or
 * EMULATE_UNREACHABLE if a table is not in RAM or paging is 5-level.
 */
int emulate_walk(const struct guest_ram *ram, const struct emulate_paging *p, uint64_t va,
		 unsigned flags, uint64_t *pa, uint32_t *pf);

/* 4-level paging only, read, no A/D update: 0, or -1 if unmapped. */
int emulate_translate(const struct guest_ram *ram, uint64_t cr3, uint64_t va, uint64_t *pa);

/* Try to complete the instruction that vCPU fd failed on; 0 if done. */
int emulate_fixup(const struct guest_ram *ram, int vcpu_fd);

/*
 * For an error message: the instruction at the vCPU's RIP, e.g.
 * "XSAVE (0f ae 27) at rip 0xffffffff81034a5b in 64-bit kernel mode; a Linux
 * guest avoids it with noxsave".  Never fails: says what it could not read.
 */
void emulate_describe(const struct guest_ram *ram, int vcpu_fd, char *buf, size_t size);

#endif
