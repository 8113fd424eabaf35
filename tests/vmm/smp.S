/*
 * SMP and interrupt test guest.  The kernel command line is one digit: how
 * many APs to expect.  The BSP, in 64-bit mode:
 *   - enables its LAPIC (flat logical ID 1) and a periodic LAPIC timer at 1 kHz;
 *   - starts every AP with INIT, SIPI, SIPI (shorthand: all but self) at a
 *     real-mode trampoline it copied to 0x30000; each AP switches to 32-bit
 *     protected mode, counts itself and sends the BSP a fixed IPI in logical
 *     destination mode, with vector 0x50 + its APIC ID (one vector each:
 *     IPIs of one vector arriving together coalesce, as on real APICs);
 *   - waits (HLT) until every AP and its IPI arrived;
 *   - runs the PIT at 1 kHz through IOAPIC pin 2, then the UART's THRE
 *     interrupt through IOAPIC pin 4, then an NMI to itself;
 *   - prints what it counted and exits with 0 if all went as expected, 1 if
 *     not, 2 on a timeout (30 s for the APs, 20 s for each interrupt: long,
 *     for hosts busy with other work), 99 on an unexpected exception or
 *     vector.
 * A second character on the command line makes the last AP to come up end
 * the VM instead of sending its IPI: 'x' writes status 42 to the exit
 * device, 't' triple-faults (for the instance that runs it, with gvm run
 * --nodes, to stop every other).
 */
#define LAPIC 0xFEE00000
#define IOAPIC 0xFEC00000
#define TRAMP 0x30000
#define UART 0x3f8

	.code64
	.section .text
	.globl _start
_start:
	lea	stack_top(%rip), %rsp
	mov	$LAPIC, %r15			/* r15, r14: the APIC bases, all along */
	mov	$IOAPIC, %r14
	movzbl	(0x20000), %eax			/* the command line's first byte */
	sub	$'0', %eax
	mov	%eax, expected(%rip)
	movzbl	(0x20001), %eax			/* the second byte: what the last AP does */
	mov	%eax, last_ap_action(%rip)

	/* IDT: every vector to "unexpected", 0x50-0x5F to ipi_handlers, then the rest used here */
	call	idt_init
	mov	$2, %ecx
	lea	nmi_handler(%rip), %rsi
	call	set_vector
	mov	$0x41, %ecx
	lea	timer_handler(%rip), %rsi
	call	set_vector
	mov	$0x42, %ecx
	lea	pit_handler(%rip), %rsi
	call	set_vector
	mov	$0x44, %ecx
	lea	uart_handler(%rip), %rsi
	call	set_vector
	mov	$0xFF, %ecx
	lea	spurious_handler(%rip), %rsi
	call	set_vector
	lidt	idtr(%rip)

	lea	msg_up(%rip), %rsi
	call	puts

	/* LAPIC: enabled, flat logical ID 1, timer periodic 1 ms (1 GHz / 1) */
	movl	$0x1FF, 0xF0(%r15)
	movl	$0xFFFFFFFF, 0xE0(%r15)
	movl	$0x01000000, 0xD0(%r15)
	movl	$0xB, 0x3E0(%r15)
	movl	$0x20041, 0x320(%r15)
	movl	$1000000, 0x380(%r15)

	/* the AP trampoline */
	lea	ap_start(%rip), %rsi
	mov	$TRAMP, %rdi
	mov	$(ap_end - ap_start), %rcx
	rep movsb

	/* INIT, SIPI, SIPI to all but self */
	movl	$0, 0x310(%r15)
	movl	$0x000C4500, 0x300(%r15)
	movl	$0x000C4600 + (TRAMP >> 12), 0x300(%r15)
	movl	$0x000C4600 + (TRAMP >> 12), 0x300(%r15)

	/*
	 * wait for every AP and its IPI (at most 30 s: the host may be busy
	 * with other work, and the test's own time limit catches a hang)
	 */
wait_aps:
	cli
	call	count_ipis
	mov	expected(%rip), %eax
	cmp	%eax, ap_count(%rip)
	jne	2f
	cmp	%eax, ipi_count(%rip)
	je	aps_done
2:	cmpl	$30000, ticks(%rip)
	jae	timeout
	sti
	hlt
	jmp	wait_aps
aps_done:
	sti
	lea	msg_aps(%rip), %rsi
	mov	ap_count(%rip), %eax
	call	put_num_line
	lea	msg_ipis(%rip), %rsi
	mov	ipi_count(%rip), %eax
	call	put_num_line

	/* PIT channel 0, mode 2, 1193 counts (1 kHz), through IOAPIC pin 2 */
	movl	$0x14, (%r14)			/* pin 2, low: vector 0x42, fixed, edge */
	movl	$0x42, 0x10(%r14)
	movl	$0x15, (%r14)
	movl	$0, 0x10(%r14)		/* destination APIC ID 0 */
	mov	$0x34, %al
	out	%al, $0x43
	mov	$(1193 & 0xFF), %al
	out	%al, $0x40
	mov	$(1193 >> 8), %al
	out	%al, $0x40
	movl	ticks(%rip), %ebx
wait_pit:
	cli
	cmpl	$5, pit_count(%rip)
	jae	pit_done
	mov	ticks(%rip), %eax
	sub	%ebx, %eax
	cmp	$20000, %eax
	jae	timeout
	sti
	hlt
	jmp	wait_pit
pit_done:
	movl	$0x14, (%r14)			/* mask pin 2 again */
	movl	$0x10042, 0x10(%r14)
	sti
	lea	msg_pit(%rip), %rsi
	call	puts

	/* UART: THRE interrupt through IOAPIC pin 4 */
	movl	$0x18, (%r14)
	movl	$0x44, 0x10(%r14)
	movl	$0x19, (%r14)
	movl	$0, 0x10(%r14)
	mov	$UART + 4, %dx
	mov	$0x08, %al			/* MCR: OUT2 gates the interrupt */
	out	%al, %dx
	mov	$UART + 1, %dx
	mov	$0x02, %al			/* IER: THRE */
	out	%al, %dx
	movl	ticks(%rip), %ebx
wait_uart:
	cli
	cmpl	$1, uart_count(%rip)
	jae	uart_done
	mov	ticks(%rip), %eax
	sub	%ebx, %eax
	cmp	$20000, %eax
	jae	timeout
	sti
	hlt
	jmp	wait_uart
uart_done:
	sti
	lea	msg_uart(%rip), %rsi
	call	puts

	/* NMI to self */
	movl	$0x00044400, 0x300(%r15)
	movl	ticks(%rip), %ebx
wait_nmi:
	cmpl	$1, nmi_count(%rip)
	jae	nmi_done
	mov	ticks(%rip), %eax
	sub	%ebx, %eax
	cmp	$20000, %eax
	jae	timeout
	pause
	jmp	wait_nmi
nmi_done:
	lea	msg_nmi(%rip), %rsi
	call	puts

	mov	$0, %eax
	mov	expected(%rip), %ecx
	cmp	%ecx, ap_count(%rip)
	jne	fail
	cmp	%ecx, ipi_count(%rip)
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

#define HANDLER(name, counter) \
name:	lock incl counter(%rip); \
	movl	$0, 0xB0(%r15); \
	iretq

/* vector 0x50 + n: bit n of ipi_mask, for n = 0..15 */
ipi_handlers:
	.irp	n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
ipi_handler_\n:
	lock btsl $\n, ipi_mask(%rip)
	movl	$0, 0xB0(%r15)
	iretq
	.endr
HANDLER(timer_handler, ticks)
HANDLER(pit_handler, pit_count)

uart_handler:
	push	%rax
	push	%rdx
	mov	$UART + 2, %dx			/* reading IIR acknowledges THRE */
	inb	%dx, %al
	mov	$UART + 1, %dx
	xor	%al, %al			/* no more UART interrupts */
	outb	%al, %dx
	lock incl uart_count(%rip)
	movl	$0, 0xB0(%r15)
	pop	%rdx
	pop	%rax
	iretq

nmi_handler:
	lock incl nmi_count(%rip)
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
	movl	$0x1FF, LAPIC + 0xF0		/* enable the LAPIC */
	mov	$1, %eax
	lock xadd %eax, ap_count
	inc	%eax
	cmp	expected, %eax
	jne	2f
	cmpl	$'x', last_ap_action
	je	ap_exit
	cmpl	$'t', last_ap_action
	je	ap_triple
2:	mov	LAPIC + 0x20, %eax		/* vector 0x50 + APIC ID */
	shr	$24, %eax
	add	$0x4850, %eax			/* fixed, logical */
	movl	$0x01000000, LAPIC + 0x310	/* logical destination: the BSP (ID 1) */
	movl	%eax, LAPIC + 0x300
1:	cli
	hlt
	jmp	1b
ap_exit:
	mov	$0x501, %dx
	mov	$42, %eax
	out	%eax, %dx
	jmp	1b
ap_triple:
	lidt	null_idtr
	ud2
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
msg_up:		.asciz	"smp: bsp up\n"
msg_aps:	.asciz	"smp: aps "
msg_ipis:	.asciz	"smp: ipis "
msg_pit:	.asciz	"smp: pit ok\n"
msg_uart:	.asciz	"smp: uart irq ok\n"
msg_nmi:	.asciz	"smp: nmi ok\n"
msg_ok:		.asciz	"smp: all ok\n"
msg_timeout:	.asciz	"smp: timeout\n"
msg_unexpected:	.asciz	"smp: unexpected interrupt or exception\n"
msg_nl:		.asciz	"\n"

	.section .data
	.p2align 4
idtr:	.word	256 * 16 - 1
	.quad	idt
	.p2align 2
expected:	.long	0
ap_count:	.long	0
last_ap_action:	.long	0
null_idtr:	.word	0
	.long	0
ipi_count:	.long	0
ipi_mask:	.long	0
ticks:		.long	0
pit_count:	.long	0
uart_count:	.long	0
nmi_count:	.long	0

	.section .bss
	.p2align 12
idt:	.space	256 * 16
	.space	16384
stack_top:
