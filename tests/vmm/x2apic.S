/*
 * x2APIC test guest (gvm run --cpu-features ...,+x2apic, or more than 255
 * vCPUs).  The kernel command line is how many APs to expect (decimal).
 * The BSP, in 64-bit mode:
 *   - finds x2APIC in CPUID leaf 1 (else prints "x2apic: not offered" and
 *     exits with 3);
 *   - switches its LAPIC to x2APIC mode (IA32_APIC_BASE.EXTD), reads its ID
 *     and LDR from the MSRs, and runs the LAPIC timer (1 kHz) through them;
 *   - counts the #GPs of three accesses the SDM refuses (IA32_APIC_BASE back
 *     to xAPIC mode, a read of the DFR, which x2APIC mode lacks, a non-zero
 *     EOI write), each skipped by the #GP handler;
 *   - sends itself a SELF IPI (vector 0x40) and a logical IPI (cluster 0,
 *     member bit 0: vector 0x45) through the 64-bit ICR;
 *   - starts every AP with INIT, SIPI, SIPI (all but self); each AP turns
 *     x2APIC on, records its x2APIC ID and sends the BSP, by x2APIC ID 0,
 *     vector 0x50 + its ID modulo 16; the BSP checks that the vectors that
 *     arrived are those of the IDs recorded, and prints the largest ID;
 *   - prints what it counted and exits with 0 if all went as expected, 1
 *     if not, 2 on a timeout (20 s, 30 s for the APs: hosts may be busy),
 *     99 on an unexpected exception or vector.
 */
#define TRAMP 0x30000
#define UART 0x3f8
#define MSR_APIC_BASE 0x1B
#define X2(off) (0x800 + (off) / 16)

	.code64
	.section .text
	.globl _start
_start:
	lea	stack_top(%rip), %rsp
	xor	%eax, %eax			/* the command line: a decimal number */
	mov	$0x20000, %esi
1:	movzbl	(%rsi), %ecx
	sub	$'0', %ecx
	cmp	$9, %ecx
	ja	2f
	imul	$10, %eax, %eax
	add	%ecx, %eax
	inc	%rsi
	jmp	1b
2:	mov	%eax, expected(%rip)

	call	idt_init
	mov	$13, %ecx
	lea	gp_handler(%rip), %rsi
	call	set_vector
	mov	$0x40, %ecx
	lea	self_handler(%rip), %rsi
	call	set_vector
	mov	$0x41, %ecx
	lea	timer_handler(%rip), %rsi
	call	set_vector
	mov	$0x45, %ecx
	lea	logical_handler(%rip), %rsi
	call	set_vector
	mov	$0xFF, %ecx
	lea	spurious_handler(%rip), %rsi
	call	set_vector
	lidt	idtr(%rip)

	mov	$1, %eax
	cpuid
	bt	$21, %ecx
	jc	1f
	lea	msg_absent(%rip), %rsi
	call	puts
	mov	$3, %eax
	jmp	exit
1:
	/* x2APIC mode; the ID and the LDR (cluster 0, member bit 0) */
	mov	$MSR_APIC_BASE, %ecx
	rdmsr
	or	$0x400, %eax
	wrmsr
	mov	$X2(0x20), %ecx
	rdmsr
	lea	msg_id(%rip), %rsi
	call	put_num_line
	mov	$X2(0xD0), %ecx
	rdmsr
	lea	msg_ldr(%rip), %rsi
	call	put_num_line
	/* enabled; the timer: divide by 1, periodic, 1 ms (1 GHz) */
	mov	$X2(0xF0), %ecx
	mov	$0x1FF, %eax
	xor	%edx, %edx
	wrmsr
	mov	$X2(0x3E0), %ecx
	mov	$0xB, %eax
	wrmsr
	mov	$X2(0x320), %ecx
	mov	$0x20041, %eax
	wrmsr
	mov	$X2(0x380), %ecx
	mov	$1000000, %eax
	wrmsr
	sti

	/* three accesses the SDM makes #GP */
	mov	$MSR_APIC_BASE, %ecx
	rdmsr
	and	$~0x400, %eax
	wrmsr
	mov	$X2(0xE0), %ecx
	rdmsr
	mov	$X2(0xB0), %ecx
	mov	$1, %eax
	xor	%edx, %edx
	wrmsr
	mov	gp_count(%rip), %eax
	lea	msg_gp(%rip), %rsi
	call	put_num_line
	mov	$MSR_APIC_BASE, %ecx		/* still in x2APIC mode? */
	rdmsr
	bt	$10, %eax
	jnc	fail

	/* SELF IPI, and a logical IPI to cluster 0, member 0: this CPU */
	mov	$X2(0x3F0), %ecx
	mov	$0x40, %eax
	xor	%edx, %edx
	wrmsr
	mov	$X2(0x300), %ecx
	mov	$0x4845, %eax
	mov	$1, %edx
	wrmsr
	movl	ticks(%rip), %ebx
wait_self:
	cli
	cmpl	$1, self_count(%rip)
	jb	1f
	cmpl	$1, logical_count(%rip)
	jae	self_done
1:	mov	ticks(%rip), %eax
	sub	%ebx, %eax
	cmp	$20000, %eax
	jae	timeout
	sti
	hlt
	jmp	wait_self
self_done:
	sti
	lea	msg_self(%rip), %rsi
	call	puts

	/* the APs: INIT, SIPI, SIPI to all but self, through the 64-bit ICR */
	lea	ap_start(%rip), %rsi
	mov	$TRAMP, %rdi
	mov	$(ap_end - ap_start), %rcx
	rep movsb
	mov	$X2(0x300), %ecx
	xor	%edx, %edx
	mov	$0x000C4500, %eax
	wrmsr
	mov	$0x000C4600 + (TRAMP >> 12), %eax
	wrmsr
	wrmsr
wait_aps:
	cli
	mov	expected(%rip), %eax
	cmp	%eax, ap_count(%rip)
	je	aps_done
	cmpl	$30000, ticks(%rip)
	jae	timeout
	sti
	hlt
	jmp	wait_aps
aps_done:
	sti
	lea	msg_aps(%rip), %rsi
	mov	ap_count(%rip), %eax
	call	put_num_line
	/* the vectors the recorded IDs should have sent, and the largest ID */
	xor	%ebx, %ebx			/* mask */
	xor	%edi, %edi			/* largest ID */
	xor	%ecx, %ecx
3:	cmp	ap_count(%rip), %ecx
	jae	4f
	lea	ap_ids(%rip), %rax
	mov	(%rax,%rcx,4), %edx
	cmp	%edi, %edx
	cmova	%edx, %edi
	and	$15, %edx
	bts	%edx, %ebx
	inc	%ecx
	jmp	3b
4:	lea	msg_max(%rip), %rsi
	mov	%edi, %eax
	call	put_num_line
	movl	ticks(%rip), %r12d
wait_ipis:
	cli
	cmp	ipi_mask(%rip), %ebx
	je	ipis_done
	mov	ticks(%rip), %eax
	sub	%r12d, %eax
	cmp	$20000, %eax
	jae	timeout
	sti
	hlt
	jmp	wait_ipis
ipis_done:
	sti
	lea	msg_ipis(%rip), %rsi
	call	puts

	cmpl	$3, gp_count(%rip)
	jne	fail
	lea	msg_ok(%rip), %rsi
	call	puts
	xor	%eax, %eax
	jmp	exit
fail:	mov	$1, %eax
	jmp	exit
timeout:
	lea	msg_timeout(%rip), %rsi
	call	puts
	mov	$2, %eax
exit:	mov	$0x501, %dx
	outl	%eax, %dx
	cli
	hlt

#include "guest.inc"

/* EOI through the x2APIC MSR (rax, rcx, rdx saved by the caller) */
#define EOI \
	mov	$X2(0xB0), %ecx; \
	xor	%eax, %eax; \
	xor	%edx, %edx; \
	wrmsr

#define HANDLER(name, counter) \
name:	push	%rax; push %rcx; push %rdx; \
	lock incl counter(%rip); \
	EOI; \
	pop	%rdx; pop %rcx; pop %rax; \
	iretq

/* vector 0x50 + n: bit n of ipi_mask, for n = 0..15 (all of one size) */
ipi_handlers:
	.irp	n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
ipi_handler_\n:
	push	%rax
	push	%rcx
	push	%rdx
	lock btsl $\n, ipi_mask(%rip)
	EOI
	pop	%rdx
	pop	%rcx
	pop	%rax
	iretq
	.endr
HANDLER(timer_handler, ticks)
HANDLER(self_handler, self_count)
HANDLER(logical_handler, logical_count)

/* #GP: counted, and the 2-byte RDMSR or WRMSR that raised it skipped */
gp_handler:
	lock incl gp_count(%rip)
	add	$8, %rsp			/* the error code */
	addq	$2, (%rsp)
	iretq

spurious_handler:
	iretq

unexpected:
	lea	msg_unexpected(%rip), %rsi
	call	puts
	mov	$99, %eax
	jmp	exit

/* --- the AP trampoline, copied to TRAMP and started in real mode --------- */
	.code16
ap_start:
	cli
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	ap_gdtr - ap_start
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x08, $(TRAMP + ap32 - ap_start)
	.code32
ap32:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$MSR_APIC_BASE, %ecx		/* x2APIC mode, enabled */
	rdmsr
	or	$0xC00, %eax
	wrmsr
	mov	$X2(0xF0), %ecx
	mov	$0x1FF, %eax
	xor	%edx, %edx
	wrmsr
	mov	$X2(0x20), %ecx			/* the x2APIC ID, recorded */
	rdmsr
	mov	%eax, %ebx
	mov	$1, %eax
	lock xadd %eax, ap_slot
	mov	%ebx, ap_ids(,%eax,4)
	lock incl ap_count			/* after the ID: the BSP reads it then */
	mov	%ebx, %eax			/* vector 0x50 + ID % 16 */
	and	$15, %eax
	add	$0x4050, %eax			/* fixed, physical */
	xor	%edx, %edx			/* to x2APIC ID 0 */
	mov	$X2(0x300), %ecx
	wrmsr
1:	cli
	hlt
	jmp	1b
	.p2align 3
ap_gdt:
	.quad	0
	.quad	0x00CF9A000000FFFF		/* 32-bit code */
	.quad	0x00CF92000000FFFF		/* data */
ap_gdtr:
	.word	3 * 8 - 1
	.long	TRAMP + ap_gdt - ap_start
ap_end:

	.section .rodata
msg_absent:	.asciz	"x2apic: not offered\n"
msg_id:		.asciz	"x2apic: bsp id "
msg_ldr:	.asciz	"x2apic: bsp ldr "
msg_gp:		.asciz	"x2apic: gp "
msg_self:	.asciz	"x2apic: self ipis ok\n"
msg_aps:	.asciz	"x2apic: aps "
msg_ipis:	.asciz	"x2apic: ipis ok\n"
msg_max:	.asciz	"x2apic: max ap id "
msg_ok:		.asciz	"x2apic: all ok\n"
msg_timeout:	.asciz	"x2apic: timeout\n"
msg_unexpected:	.asciz	"x2apic: unexpected interrupt or exception\n"
msg_nl:		.asciz	"\n"

	.section .data
	.p2align 4
idtr:	.word	256 * 16 - 1
	.quad	idt
	.p2align 2
expected:	.long	0
ap_count:	.long	0
ap_slot:	.long	0
ipi_count:	.long	0
ipi_mask:	.long	0
ticks:		.long	0
gp_count:	.long	0
self_count:	.long	0
logical_count:	.long	0

	.section .bss
	.p2align 12
idt:	.space	256 * 16
ap_ids:	.space	1024 * 4
	.space	16384
stack_top:
