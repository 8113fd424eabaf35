/*
 * Kernel-mode instructions that some hosts' KVM cannot emulate, which gvm
 * completes itself (vmm/x86/emulate.c); where hardware runs them they run
 * natively and this guest prints the same.  It checks:
 *   - INT3 reaches the #BP handler with the return address after it;
 *   - FWAIT goes on;
 *   - CLAC and STAC clear and set RFLAGS.AC (if CPUID says SMAP);
 *   - POPCNT of 16, 32 and 64 bits, REX registers, ZF (if CPUID says POPCNT);
 *   - LDMXCSR and STMXCSR (SSE is part of x86-64) in the forms a kernel
 *     uses: RIP-relative, on the stack, base + index * 4 + disp32 with REX
 *     registers, GS-relative, across a page boundary; the value checked
 *     with FXSAVE, which the emulator has;
 *   - their faults, each caught by a handler that resumes at %r15: #GP(0)
 *     for reserved MXCSR bits, #PF with CR2 and the error code for a
 *     missing page and a read-only one (an alias of this image at 4 GiB,
 *     readable through it), #UD without CR4.OSFXSR, #NM with CR0.TS.
 *   - LSL (Linux reads its CPU number so): limits of data segments (byte
 *     and 4 KiB granular), a TSS, a conforming code segment, in 16-, 32-
 *     and 64-bit forms and from memory, and ZF clear for a descriptor of
 *     too high a privilege, a gate, the null selector, one past the GDT.
 *   - VERR and VERW on the same GDT: ZF set for the kernel's data segment
 *     (from memory, as Linux's MDS mitigation does it) and readable code,
 *     clear for writing code or a read-only segment, a descriptor of too
 *     high a privilege, a TSS, the null selector.
 * Each check prints "insn: NAME ok"; the exit status is the number of
 * failed checks.  A fault nobody expected prints a line and exits with 99.
 */
	.code64
	.section .text
	.globl _start
_start:
	lea	stack_top(%rip), %rsp
	lea	bp_handler(%rip), %rax
	lea	idt + 3 * 16(%rip), %rdi
	call	gate
	lea	ud_handler(%rip), %rax
	lea	idt + 6 * 16(%rip), %rdi
	call	gate
	lea	nm_handler(%rip), %rax
	lea	idt + 7 * 16(%rip), %rdi
	call	gate
	lea	ss_handler(%rip), %rax
	lea	idt + 12 * 16(%rip), %rdi
	call	gate
	lea	gp_handler(%rip), %rax
	lea	idt + 13 * 16(%rip), %rdi
	call	gate
	lea	pf_handler(%rip), %rax
	lea	idt + 14 * 16(%rip), %rdi
	call	gate
	lidt	idtr(%rip)
	xor	%r12d, %r12d				/* failures */
	xor	%r15d, %r15d				/* no fault expected */

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

	/* LDMXCSR / STMXCSR: RIP-relative */
	movl	$0x5F80, mx_a(%rip)			/* rounding up */
	ldmxcsr	mx_a(%rip)
	call	mxcsr_now
	cmp	$0x5F80, %eax
	jne	mx_fail
	stmxcsr	mx_b(%rip)
	cmpl	$0x5F80, mx_b(%rip)
	jne	mx_fail
	/* on the stack, as kernel_fpu_begin does */
	sub	$16, %rsp
	movl	$0x3F80, 8(%rsp)
	ldmxcsr	8(%rsp)
	movl	$0, 4(%rsp)
	stmxcsr	4(%rsp)
	mov	4(%rsp), %ebx
	add	$16, %rsp
	call	mxcsr_now
	cmp	$0x3F80, %eax
	jne	mx_fail
	cmp	$0x3F80, %ebx
	jne	mx_fail
	/* base + index * 4 + disp32, REX registers */
	lea	mx_tab(%rip), %r8
	mov	$3, %r9
	movl	$0x7F80, mx_tab + 0x10C(%rip)
	ldmxcsr	0x100(%r8,%r9,4)
	stmxcsr	0x104(%r8,%r9,4)
	call	mxcsr_now
	cmp	$0x7F80, %eax
	jne	mx_fail
	cmpl	$0x7F80, mx_tab + 0x110(%rip)
	jne	mx_fail
	/* GS-relative, with a GS base */
	mov	$0xC0000101, %ecx			/* IA32_GS_BASE */
	lea	mx_tab(%rip), %rax
	mov	%rax, %rdx
	shr	$32, %rdx
	wrmsr
	movl	$0x1FBF, mx_tab + 0x20(%rip)		/* every exception flag set */
	ldmxcsr	%gs:0x20
	stmxcsr	%gs:0x24
	call	mxcsr_now
	cmp	$0x1FBF, %eax
	jne	mx_fail
	cmpl	$0x1FBF, mx_tab + 0x24(%rip)
	jne	mx_fail
	/* across a page boundary */
	movl	$0x4F80, split_page + 4094(%rip)
	ldmxcsr	split_page + 4094(%rip)
	call	mxcsr_now
	cmp	$0x4F80, %eax
	jne	mx_fail
	movl	$0x1F80, mx_a(%rip)
	ldmxcsr	mx_a(%rip)
	stmxcsr	split_page + 4094(%rip)
	cmpl	$0x1F80, split_page + 4094(%rip)
	jne	mx_fail
	lea	msg_mxcsr(%rip), %rsi
	call	ok
	jmp	mx_faults
mx_fail:
	inc	%r12d
	lea	msg_mx_fail(%rip), %rsi
	call	puts

mx_faults:
	movl	$0x1F80, mx_a(%rip)
	ldmxcsr	mx_a(%rip)
	/* a reserved bit: #GP(0), MXCSR unchanged */
	movl	$0x80001F80, mx_b(%rip)
	lea	1f(%rip), %r15
	ldmxcsr	mx_b(%rip)
	jmp	mxf_fail
1:	cmpl	$13, fault_vec(%rip)
	jne	mxf_fail
	cmpl	$0, fault_err(%rip)
	jne	mxf_fail
	call	mxcsr_now
	cmp	$0x1F80, %eax
	jne	mxf_fail
	/*
	 * An alias of this image's first 2 MiB at 4 GiB, read-only (PDPT entry
	 * 4 was empty), and nothing at 4 GiB + 2 MiB.
	 */
	mov	%cr3, %rax
	and	$~0xFFF, %rax
	mov	(%rax), %rbx				/* PML4[0] */
	and	$~0xFFF, %rbx
	lea	alias_pd(%rip), %rcx
	or	$3, %rcx
	mov	%rcx, 4 * 8(%rbx)
	movq	$0x200000 | 0x81, alias_pd(%rip)	/* present, 2 MiB, read-only */
	/* reading through the alias works */
	movl	$0x2F80, mx_a(%rip)
	lea	mx_a(%rip), %rax
	sub	$0x200000, %rax
	mov	$0x100000000, %rbp
	add	%rax, %rbp				/* mx_a through the alias */
	ldmxcsr	(%rbp)
	call	mxcsr_now
	cmp	$0x2F80, %eax
	jne	mxf_fail
	/* writing through it: #PF, present | write, CR2 the address */
	lea	1f(%rip), %r15
	stmxcsr	(%rbp)
	jmp	mxf_fail
1:	cmpl	$14, fault_vec(%rip)
	jne	mxf_fail
	cmpl	$3, fault_err(%rip)
	jne	mxf_fail
	cmp	%rbp, fault_cr2(%rip)
	jne	mxf_fail
	/* a missing page: #PF, error code 0 */
	mov	$0x100200000, %rbp
	lea	1f(%rip), %r15
	ldmxcsr	(%rbp)
	jmp	mxf_fail
1:	cmpl	$14, fault_vec(%rip)
	jne	mxf_fail
	cmpl	$0, fault_err(%rip)
	jne	mxf_fail
	cmp	%rbp, fault_cr2(%rip)
	jne	mxf_fail
	/*
	 * across into the missing page: #PF (CR2 the missing page, or the
	 * operand on a CPU that reports where the access began)
	 */
	lea	1f(%rip), %r15
	ldmxcsr	-2(%rbp)
	jmp	mxf_fail
1:	cmpl	$14, fault_vec(%rip)
	jne	mxf_fail
	cmp	%rbp, fault_cr2(%rip)
	je	2f
	lea	-2(%rbp), %rax
	cmp	%rax, fault_cr2(%rip)
	jne	mxf_fail
2:	call	mxcsr_now
	cmp	$0x2F80, %eax
	jne	mxf_fail
	/* no CR4.OSFXSR: #UD */
	mov	%cr4, %rbx
	mov	%rbx, %rax
	btr	$9, %rax
	mov	%rax, %cr4
	lea	1f(%rip), %r15
	ldmxcsr	mx_a(%rip)
	mov	%rbx, %cr4
	jmp	mxf_fail
1:	mov	%rbx, %cr4
	cmpl	$6, fault_vec(%rip)
	jne	mxf_fail
	/* CR0.TS: #NM */
	mov	%cr0, %rax
	bts	$3, %rax
	mov	%rax, %cr0
	lea	1f(%rip), %r15
	stmxcsr	mx_b(%rip)
	clts
	jmp	mxf_fail
1:	clts
	cmpl	$7, fault_vec(%rip)
	jne	mxf_fail
	cmpl	$6, fault_count(%rip)
	jne	mxf_fail
	xor	%r15d, %r15d
	lea	msg_mx_faults(%rip), %rsi
	call	ok
	jmp	lsl_tests
mxf_fail:
	xor	%r15d, %r15d
	inc	%r12d
	lea	msg_mxf_fail(%rip), %rsi
	call	puts

lsl_tests:
	lgdt	gdtr(%rip)				/* the boot GDT's entries, and ours */
	/* 32-bit: byte-granular and 4 KiB-granular data segments of DPL 3 */
	mov	$6 * 8 | 3, %eax
	mov	$-1, %rcx
	lsl	%eax, %ecx
	jnz	lsl_fail
	cmp	$0x12345, %rcx
	jne	lsl_fail
	mov	$7 * 8 | 3, %eax
	lsl	%eax, %ecx
	jnz	lsl_fail
	cmp	$0xABCFFF, %rcx
	jne	lsl_fail
	/* Linux's form, 64-bit in place */
	mov	$6 * 8 | 3, %eax
	lsl	%rax, %rax
	jnz	lsl_fail
	cmp	$0x12345, %rax
	jne	lsl_fail
	/* 16-bit: the low half only */
	mov	$0x1111111111111111, %rdx
	mov	$7 * 8, %eax
	lsl	%ax, %dx
	jnz	lsl_fail
	mov	$0x111111111111CFFF, %rax
	cmp	%rax, %rdx
	jne	lsl_fail
	/* the busy TSS, a conforming code segment of DPL 0 with RPL 3 */
	mov	$4 * 8, %eax
	lsl	%eax, %ecx
	jnz	lsl_fail
	cmp	$0x67, %ecx
	jne	lsl_fail
	mov	$11 * 8 | 3, %eax
	lsl	%eax, %ecx
	jnz	lsl_fail
	cmp	$0x2000, %ecx
	jne	lsl_fail
	/* from memory */
	movw	$6 * 8 | 3, lsl_sel(%rip)
	lsl	lsl_sel(%rip), %r9d
	jnz	lsl_fail
	cmp	$0x12345, %r9d
	jne	lsl_fail
	/* refused, destination untouched: DPL 0 under RPL 3, a gate, null, past the limit */
	mov	$0x77, %ecx
	mov	$8 * 8 | 3, %eax
	lsl	%eax, %ecx
	jz	lsl_fail
	mov	$9 * 8 | 3, %eax
	lsl	%eax, %ecx
	jz	lsl_fail
	xor	%eax, %eax
	lsl	%eax, %ecx
	jz	lsl_fail
	mov	$12 * 8, %eax
	lsl	%eax, %ecx
	jz	lsl_fail
	cmp	$0x77, %ecx
	jne	lsl_fail
	lea	msg_lsl(%rip), %rsi
	call	ok
	jmp	ver_tests
lsl_fail:
	inc	%r12d
	lea	msg_lsl_fail(%rip), %rsi
	call	puts

ver_tests:
	/* each case starts with ZF the other way: test %rsp clears it, cmp sets it */
	/* Linux's form: verw of the kernel data selector in memory */
	movw	$0x18, lsl_sel(%rip)
	test	%rsp, %rsp
	verw	lsl_sel(%rip)
	jnz	ver_fail
	mov	$6 * 8 | 3, %eax			/* data, DPL 3 */
	test	%rsp, %rsp
	verw	%ax
	jnz	ver_fail
	mov	$0x10, %eax				/* code: readable, never writable */
	test	%rsp, %rsp
	verr	%ax
	jnz	ver_fail
	cmp	%eax, %eax
	verw	%ax
	jz	ver_fail
	mov	$8 * 8 | 3, %eax			/* data of DPL 0 under RPL 3 */
	cmp	%eax, %eax
	verw	%ax
	jz	ver_fail
	cmp	%eax, %eax
	verr	%ax
	jz	ver_fail
	mov	$11 * 8 | 3, %eax			/* conforming code: no privilege check */
	test	%rsp, %rsp
	verr	%ax
	jnz	ver_fail
	mov	$4 * 8, %eax				/* the TSS */
	cmp	%eax, %eax
	verr	%ax
	jz	ver_fail
	xor	%eax, %eax				/* null (xor sets ZF) */
	verw	%ax
	jz	ver_fail
	lea	msg_ver(%rip), %rsi
	call	ok
	jmp	done
ver_fail:
	inc	%r12d
	lea	msg_ver_fail(%rip), %rsi
	call	puts
done:
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

/* MXCSR as FXSAVE stores it, in eax */
mxcsr_now:
	fxsave	fx_area(%rip)
	mov	fx_area + 24(%rip), %eax
	ret

/* Expected faults: note vector, error code and CR2, resume at %r15. */
ud_handler:
	pushq	$0
	pushq	$6
	jmp	fault
nm_handler:
	pushq	$0
	pushq	$7
	jmp	fault
ss_handler:
	pushq	$12
	jmp	fault
gp_handler:
	pushq	$13
	jmp	fault
pf_handler:
	pushq	$14
fault:
	test	%r15, %r15
	jz	unexpected
	popq	fault_vec(%rip)
	popq	fault_err(%rip)
	push	%rax
	mov	%cr2, %rax
	mov	%rax, fault_cr2(%rip)
	mov	%r15, 8(%rsp)				/* the return RIP */
	pop	%rax
	incl	fault_count(%rip)
	iretq

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
msg_mxcsr:	.asciz	"mxcsr"
msg_mx_faults:	.asciz	"mxcsr-faults"
msg_mx_fail:	.asciz	"insn: LDMXCSR/STMXCSR gave a wrong value\n"
msg_mxf_fail:	.asciz	"insn: LDMXCSR/STMXCSR faulted wrongly\n"
msg_lsl:	.asciz	"lsl"
msg_lsl_fail:	.asciz	"insn: LSL gave a wrong result\n"
msg_ver:	.asciz	"verr-verw"
msg_ver_fail:	.asciz	"insn: VERR/VERW gave a wrong result\n"
msg_unexpected:	.asciz	"insn: unexpected fault\n"

	.section .data
	.p2align 3
idtr:	.word	256 * 16 - 1
	.quad	idt
bp_rip:		.quad	0
bp_count:	.long	0
fault_vec:	.quad	0
fault_err:	.quad	0
fault_cr2:	.quad	0
fault_count:	.long	0
mx_a:		.long	0
mx_b:		.long	0
lsl_sel:	.word	0
	.p2align 3
gdt:	.quad	0, 0
	.quad	0x00AF9B000000FFFF			/* 0x10: the boot code segment */
	.quad	0x00CF93000000FFFF			/* 0x18: the boot data segment */
	.quad	0x00008B0000000067, 0			/* 0x20: the busy 64-bit TSS */
	.quad	0x0041F30000002345			/* 6: data, DPL 3, limit 0x12345 */
	.quad	0x00C0F30000000ABC			/* 7: data, DPL 3, 4 KiB pages, 0xABC */
	.quad	0x0040930000001000			/* 8: data, DPL 0 */
	.quad	0x0000EC0000001000, 0			/* 9: a call gate, DPL 3 */
	.quad	0x00409E0000002000			/* 11: conforming code, DPL 0 */
gdt_end:
gdtr:	.word	gdt_end - gdt - 1
	.quad	gdt

	.section .bss
	.p2align 12
idt:	.space	256 * 16
alias_pd:	.space	4096
split_page:	.space	8192
mx_tab:		.space	512
	.p2align 4
fx_area:	.space	512
	.space	8192
stack_top:
