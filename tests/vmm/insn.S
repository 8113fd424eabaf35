/*
 * Kernel-mode instructions that some hosts' KVM cannot emulate, which gvm
 * completes itself (vmm/x86/emulate.c); where hardware runs them they run
 * natively and this guest prints the same.  It checks:
 *   - INT3 reaches the #BP handler with the return address after it;
 *   - FWAIT goes on;
 *   - CLAC and STAC clear and set RFLAGS.AC (if CPUID says SMAP);
 *   - POPCNT of 16, 32 and 64 bits, REX registers, ZF (if CPUID says POPCNT).
 * Each check prints "insn: NAME ok"; the exit status is the number of
 * failed checks.
 */
	.code64
	.section .text
	.globl _start
_start:
	lea	stack_top(%rip), %rsp
	lea	bp_handler(%rip), %rax
	lea	idt + 3 * 16(%rip), %rdi
	call	gate
	lea	unexpected(%rip), %rax
	lea	idt + 6 * 16(%rip), %rdi		/* #UD */
	call	gate
	lea	idt + 13 * 16(%rip), %rdi		/* #GP */
	call	gate
	lidt	idtr(%rip)
	xor	%r12d, %r12d				/* failures */

	/* INT3 */
	int3
after_int3:
	lea	after_int3(%rip), %rax
	cmp	%rax, bp_rip(%rip)
	jne	1f
	cmpl	$1, bp_count(%rip)
	jne	1f
	lea	msg_int3(%rip), %rsi
	call	ok
	jmp	2f
1:	inc	%r12d
2:
	/* FWAIT */
	fwait
	lea	msg_fwait(%rip), %rsi
	call	ok

	/* CLAC / STAC */
	mov	$7, %eax
	xor	%ecx, %ecx
	cpuid
	bt	$20, %ebx
	jnc	no_smap
	stac
	pushf
	pop	%rax
	bt	$18, %rax
	jnc	1f
	clac
	pushf
	pop	%rax
	bt	$18, %rax
	jc	1f
	lea	msg_clac(%rip), %rsi
	call	ok
	jmp	no_smap
1:	inc	%r12d
no_smap:

	/* POPCNT */
	mov	$1, %eax
	cpuid
	bt	$23, %ecx
	jnc	no_popcnt
	mov	$0xF0F0F0F0F0F0F0F0, %rbx
	mov	$-1, %rax
	popcnt	%rbx, %rax			/* 64-bit: 32 */
	cmp	$32, %rax
	jne	1f
	mov	$-1, %r9
	popcnt	%ebx, %r9d			/* 32-bit into r9: 16, upper half cleared */
	cmp	$16, %r9
	jne	1f
	mov	$0x1234567800000000, %rdx
	mov	$0x0107, %r10w
	popcnt	%r10w, %dx			/* 16-bit: 4, upper bits kept */
	mov	$0x1234567800000004, %rax
	cmp	%rax, %rdx
	jne	1f
	xor	%r11d, %r11d
	popcnt	%r11, %r8			/* zero: ZF set */
	jnz	1f
	test	%r8, %r8
	jnz	1f
	lea	msg_popcnt(%rip), %rsi
	call	ok
	jmp	no_popcnt
1:	inc	%r12d
no_popcnt:
	mov	%r12d, %eax
	mov	$0x501, %dx
	outl	%eax, %dx
	hlt

gate:	/* rax = handler, rdi = gate */
	mov	%ax, (%rdi)
	movw	$0x10, 2(%rdi)
	movw	$0x8E00, 4(%rdi)
	shr	$16, %rax
	mov	%ax, 6(%rdi)
	shr	$16, %rax
	mov	%eax, 8(%rdi)
	movl	$0, 12(%rdi)
	ret

ok:	/* rsi = name: "insn: NAME ok\n" */
	push	%rsi
	lea	msg_insn(%rip), %rsi
	call	puts
	pop	%rsi
	call	puts
	lea	msg_ok(%rip), %rsi
	call	puts
	ret

puts:
	mov	$0x3f8, %dx
1:	movb	(%rsi), %al
	testb	%al, %al
	jz	2f
	outb	%al, %dx
	inc	%rsi
	jmp	1b
2:	ret

bp_handler:
	push	%rax
	mov	8(%rsp), %rax				/* the return RIP */
	mov	%rax, bp_rip(%rip)
	incl	bp_count(%rip)
	pop	%rax
	iretq

unexpected:
	lea	msg_unexpected(%rip), %rsi
	call	puts
	mov	$99, %eax
	mov	$0x501, %dx
	outl	%eax, %dx
	hlt

	.section .rodata
msg_insn:	.asciz	"insn: "
msg_ok:		.asciz	" ok\n"
msg_int3:	.asciz	"int3"
msg_fwait:	.asciz	"fwait"
msg_clac:	.asciz	"clac-stac"
msg_popcnt:	.asciz	"popcnt"
msg_unexpected:	.asciz	"insn: unexpected #UD or #GP\n"

	.section .data
	.p2align 3
idtr:	.word	256 * 16 - 1
	.quad	idt
bp_rip:		.quad	0
bp_count:	.long	0

	.section .bss
	.p2align 12
idt:	.space	256 * 16
	.space	8192
stack_top:
