/*
 * The probe kernel's entry points, AP trampoline, interrupt stubs and static
 * page tables.  Everything the emulated kernel mode would otherwise compute
 * at boot (page tables, GDT) is assembled here, so boot costs no loops.
 */
#include "images/probe/layout.h"

/*
 * 2 MiB page flags: present, writable, user, large, and accessed + dirty
 * already set, so that the CPU never writes to these tables (under the DSM a
 * write to node 0's tables from another node would move the page).  The hole
 * adds PWT|PCD and drops user; [0, 2 MiB) is user-readable only.
 */
#define PG_RAM 0xe7
#define PG_LOW 0xe5
#define PG_MMIO 0xfb
#define PG_TABLE 0x27 /* present, writable, user, accessed */

/* 32-bit: PAE paging with our tables, EFER.LME, paging on.  Clobbers eax, ecx, edx. */
.macro LONG_MODE_ON32
	mov %cr4, %eax
	or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov $(CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG), %eax
	mov %eax, %cr0
.endm

	.section .text.boot, "ax"
	.code64
	.globl _start
/* Linux 64-bit boot protocol: long mode, identity map, rsi = zero page. */
_start:
	cli
	cld
	mov $PROBE_BOOT_LINUX, %edi
	jmp boot64

	.code32
/* PVH entry (Xen ELF note): 32-bit protected mode, no paging, ebx = hvm_start_info. */
pvh_start32:
	cli
	cld
	lgdt boot_gdt_ptr
	ljmp $SEL_BOOT_CODE32, $1f
1:	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %ebx, %esi
	LONG_MODE_ON32
	ljmp $SEL_KCODE, $2f
	.code64
2:	mov $PROBE_BOOT_PVH, %edi
	mov %esi, %esi
	jmp boot64

/* Own GDT, stack and page tables, then kmain(protocol, info). */
boot64:
	lgdt boot_gdt_ptr
	mov $boot_stack_top, %esp
	pushq $SEL_KCODE
	pushq $1f
	lretq
1:	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $pml4, %eax
	mov %rax, %cr3
	mov %cr4, %rax
	or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
	mov %rax, %cr4
	/* WP clear: the kernel writes its own data in the user-read-only low 2 MiB. */
	mov $(CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG), %eax
	mov %rax, %cr0
	call kmain
	jmp halt_forever

	.globl halt_forever
halt_forever:
	cli
	hlt
	jmp halt_forever

	.code32
/* APs arrive here from the trampoline, in 32-bit protected mode, with no stack. */
ap_start32:
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	/* The initial APIC ID from CPUID (leaf 0xB has all 32 bits); the MMIO ID holds 8. */
	xor %eax, %eax
	cpuid
	cmp $0xb, %eax
	jb 1f
	mov $0xb, %eax
	xor %ecx, %ecx
	cpuid
	test %ebx, %ebx
	jz 1f
	mov %edx, %ebx
	jmp 2f
1:	mov $1, %eax
	cpuid
	shr $24, %ebx
2:	LONG_MODE_ON32
	ljmp $SEL_KCODE, $ap_start64

	.code64
/* Its own stack, found by APIC ID (the BSP filled ap_stack_by_apic), then ap_main(apic). */
ap_start64:
	mov %ebx, %ebx
	cmp $PROBE_APIC_ID_LIMIT, %rbx
	jae 1f
	mov ap_stack_by_apic(,%rbx,8), %rsp
	test %rsp, %rsp
	jz 1f
	mov %ebx, %edi
	call ap_main
	jmp halt_forever
1:	lock incl stray_aps
	jmp halt_forever

/* call_on_stack(top, fn, arg): switch to a new stack for good and call fn(arg). */
	.globl call_on_stack
call_on_stack:
	mov %rdi, %rsp
	mov %rdx, %rdi
	call *%rsi
	jmp halt_forever

/* enter_user(rip, rsp, a0, a1, a2): iretq to CPL 3 with rdi, rsi, rdx = a0, a1, a2. */
	.globl enter_user
enter_user:
	pushq $SEL_UDATA
	pushq %rsi
	pushq $USER_RFLAGS
	pushq $SEL_UCODE
	pushq %rdi
	mov %rdx, %rdi
	mov %rcx, %rsi
	mov %r8, %rdx
	mov $SEL_UDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	xor %eax, %eax
	xor %ebx, %ebx
	xor %ecx, %ecx
	xor %ebp, %ebp
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
	iretq

/* load_cs(sel): reload CS after lgdt. */
	.globl load_cs
load_cs:
	pop %rax
	push %rdi
	push %rax
	lretq

/*
 * Interrupt and exception stubs: push a dummy error code where the CPU
 * does not, then the vector, then the registers (struct trap_frame).
 */
.macro STUB vec, err
	.balign 16
isr_\vec:
	.if \err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm

	.balign 16
isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	call trap
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp
	iretq

	STUB 0, 0
	STUB 1, 0
	STUB 2, 0
	STUB 3, 0
	STUB 4, 0
	STUB 5, 0
	STUB 6, 0
	STUB 7, 0
	STUB 8, 1
	STUB 9, 0
	STUB 10, 1
	STUB 11, 1
	STUB 12, 1
	STUB 13, 1
	STUB 14, 1
	STUB 15, 0
	STUB 16, 0
	STUB 17, 1
	STUB 18, 0
	STUB 19, 0
	STUB 20, 0
	STUB 21, 1
	STUB 22, 0
	STUB 23, 0
	STUB 24, 0
	STUB 25, 0
	STUB 26, 0
	STUB 27, 0
	STUB 28, 0
	STUB 29, 1
	STUB 30, 1
	STUB 31, 0
	STUB 0xf0, 0
	STUB 0xf1, 0
	STUB 0xf2, 0
	STUB 0xf3, 0
	STUB 0xf4, 0
	STUB 0xff, 0

	.section .rodata
	.balign 8
/* (vector, stub) pairs for idt_init, ended by a zero stub. */
	.globl isr_table
isr_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad \v, isr_\v
	.endr
	.irp v, 0xf0,0xf1,0xf2,0xf3,0xf4,0xff
	.quad \v, isr_\v
	.endr
	.quad 0, 0

/*
 * The AP trampoline, copied below 1 MiB at boot: real mode at CS:0, count
 * the entry, load the boot GDT, jump to protected mode in the kernel image.
 */
	.code16
	.globl tramp_start, tramp_end, tramp_count_off
tramp_start:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	lock incl (tramp_count - tramp_start)
	lgdtl (tramp_gdt_ptr - tramp_start)
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $SEL_BOOT_CODE32, $ap_start32
	.balign 8
tramp_gdt_ptr:
	.word boot_gdt_end - boot_gdt - 1
	.long boot_gdt
tramp_count:
	.long 0
tramp_end:
	.set tramp_count_off, tramp_count - tramp_start
	.code64

/* PVH entry point note, read by QEMU (and Xen) to boot the ELF in 32-bit mode. */
	.section .note.pvh, "a"
	.balign 4
	.long 4         /* name size */
	.long 4         /* desc size */
	.long 18        /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_start32

	.data
	.balign 16
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff /* SEL_KCODE: 64-bit code */
	.quad 0x00cf92000000ffff /* SEL_KDATA */
	.quad 0x00cf9a000000ffff /* SEL_BOOT_CODE32 */
boot_gdt_end:
	.balign 8
	.word 0, 0, 0
boot_gdt_ptr:
	.word boot_gdt_end - boot_gdt - 1
	.quad boot_gdt

/* Page tables: [0, 4 GiB) fixed here; PDs for RAM above 4 GiB filled at boot. */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4, pd_low, pd_high
pml4:
	.quad pdpt + PG_TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd_low + PG_TABLE, pd_low + 0x1000 + PG_TABLE
	.quad pd_low + 0x2000 + PG_TABLE, pd_low + 0x3000 + PG_TABLE
	.set i, 0
	.rept PROBE_MAX_PHYS_GB - 4
	.quad pd_high + i * 0x1000 + PG_TABLE
	.set i, i + 1
	.endr
	.fill 512 - PROBE_MAX_PHYS_GB, 8, 0
pd_low:
	.quad PG_LOW
	.set i, 1
	.rept 1535
	.quad (i << 21) | PG_RAM
	.set i, i + 1
	.endr
	.rept 512
	.quad (i << 21) | PG_MMIO
	.set i, i + 1
	.endr

	.section .bss.pagetables, "aw", @nobits
	.balign 4096
pd_high:
	.fill (PROBE_MAX_PHYS_GB - 4) * 512, 8, 0

	.bss
	.balign 16
boot_stack:
	.fill 16384, 1, 0
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
