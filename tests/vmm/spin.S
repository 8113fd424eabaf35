/*
 * A guest that never ends by itself, to test stopping gvm from outside.
 * It prints "spinning" and then, if the command line starts with 'b', runs
 * a busy loop; otherwise it halts with interrupts off, forever.
 */
	.code64
	.section .text
	.globl _start
_start:
	lea	msg(%rip), %rsi
	mov	$0x3f8, %dx
1:	movb	(%rsi), %al
	testb	%al, %al
	jz	2f
	outb	%al, %dx
	inc	%rsi
	jmp	1b
2:	cmpb	$'b', (0x20000)
	je	busy
	cli
3:	hlt
	jmp	3b
busy:	jmp	busy

	.section .rodata
msg:	.asciz	"spinning\n"
