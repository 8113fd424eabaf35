/*
 * The smallest test guest: entered in 64-bit mode by the boot protocol, it
 * checks that rsi points at a zero page ("HdrS" at 0x202), prints a line on
 * the UART and exits through the exit device with status 42 (or 3 if the
 * zero page is missing).
 */
	.code64
	.section .text
	.globl _start
_start:
	cmpl	$0x53726448, 0x202(%rsi)	/* "HdrS" */
	jne	bad
	lea	msg(%rip), %rbx
1:	movb	(%rbx), %al
	testb	%al, %al
	jz	2f
	mov	$0x3fd, %dx			/* LSR: wait for THRE */
3:	inb	%dx, %al
	testb	$0x20, %al
	jz	3b
	movb	(%rbx), %al
	mov	$0x3f8, %dx
	outb	%al, %dx
	inc	%rbx
	jmp	1b
2:	mov	$42, %eax
exit:	mov	$0x501, %dx
	outl	%eax, %dx
	cli
	hlt
bad:	mov	$3, %eax
	jmp	exit

	.section .rodata
msg:	.asciz	"hello from the test guest\n"
