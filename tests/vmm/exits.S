/*
 * Exit-cost microbenchmark (not a test): three loops of N iterations, timed
 * with RDTSC in one run, and printed as TSC cycles per iteration:
 *   nop    dec/jnz only (what the loop itself costs),
 *   port   plus an OUT to port 0x80 (an exit handled by gvm's I/O bus),
 *   lapic  plus a read of the LAPIC TPR (an MMIO exit to gvm's LAPIC),
 * and the extra cost of each exit as a ratio to the bare loop iteration
 * ("port/nop x100").  Run: gvm run --kernel build/tests/vmm/exits.elf --vcpus 1
 */
#define N 20000
	.code64
	.section .text
	.globl _start
_start:
	mov	$0xFEE00000, %r15
	call	tsc
	mov	%rax, %r12
	mov	$N, %ecx
1:	dec	%ecx
	jnz	1b
	call	tsc
	mov	%rax, %r13
	mov	$N, %ecx
	mov	$0x80, %dx
2:	outb	%al, %dx
	dec	%ecx
	jnz	2b
	call	tsc
	mov	%rax, %r14
	mov	$N, %ecx
3:	mov	0x80(%r15), %eax
	dec	%ecx
	jnz	3b
	call	tsc
	mov	%rax, %rbx

	mov	$N, %ecx
	mov	%r13, %rax		/* nop cycles per iteration -> r8 */
	sub	%r12, %rax
	xor	%edx, %edx
	div	%rcx
	mov	%rax, %r8
	mov	%r14, %rax		/* port -> r9 */
	sub	%r13, %rax
	xor	%edx, %edx
	div	%rcx
	mov	%rax, %r9
	mov	%rbx, %rax		/* lapic -> r10 */
	sub	%r14, %rax
	xor	%edx, %edx
	div	%rcx
	mov	%rax, %r10

	lea	m_nop(%rip), %rsi
	mov	%r8, %rax
	call	line
	lea	m_port(%rip), %rsi
	mov	%r9, %rax
	call	line
	lea	m_lapic(%rip), %rsi
	mov	%r10, %rax
	call	line
	lea	m_rport(%rip), %rsi	/* (port - nop) * 100 / nop */
	mov	%r9, %rax
	call	ratio
	lea	m_rlapic(%rip), %rsi
	mov	%r10, %rax
	call	ratio
	xor	%eax, %eax
	mov	$0x501, %dx
	outl	%eax, %dx
	hlt

tsc:	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	ret

ratio:	/* rax = loop cycles: print (rax - r8) * 100 / r8 */
	sub	%r8, %rax
	jae	1f
	xor	%eax, %eax
1:	imul	$100, %rax
	xor	%edx, %edx
	mov	%r8, %rcx
	test	%rcx, %rcx
	jnz	2f
	inc	%rcx
2:	div	%rcx
	/* fall through */
line:	/* rsi = label, rax = number */
	push	%rax
	mov	$0x3f8, %dx
1:	movb	(%rsi), %al
	testb	%al, %al
	jz	2f
	outb	%al, %dx
	inc	%rsi
	jmp	1b
2:	pop	%rax
	lea	buf + 31(%rip), %rsi
	movb	$'\n', (%rsi)
	mov	$10, %rcx
3:	xor	%edx, %edx
	div	%rcx
	add	$'0', %dl
	dec	%rsi
	mov	%dl, (%rsi)
	test	%rax, %rax
	jnz	3b
	mov	$0x3f8, %dx
4:	movb	(%rsi), %al
	outb	%al, %dx
	inc	%rsi
	cmpb	$'\n', %al
	jne	4b
	ret

	.section .rodata
m_nop:		.asciz	"exits: nop-loop cycles/iteration "
m_port:		.asciz	"exits: port-exit-loop cycles/iteration "
m_lapic:	.asciz	"exits: lapic-exit-loop cycles/iteration "
m_rport:	.asciz	"exits: port exit cost / nop iteration x100 "
m_rlapic:	.asciz	"exits: lapic exit cost / nop iteration x100 "
	.section .bss
buf:	.space	32
