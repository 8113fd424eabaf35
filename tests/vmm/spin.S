/*
 * A guest that never ends by itself, to test stopping gvm from outside and
 * what gvm says of a silent guest.  It prints "spinning" and then, by the
 * command line's first letter: 'b' runs a busy loop (no exits); 'e' echoes
 * what the console receives, polling the UART (an exit per poll);
 * otherwise it halts with interrupts off, forever.
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
	cmpb	$'e', (0x20000)
	je	echo
	cli
3:	hlt
	jmp	3b
busy:	jmp	busy
echo:	mov	$0x3fd, %dx			/* LSR: data ready? */
	inb	%dx, %al
	testb	$1, %al
	jz	echo
	mov	$0x3f8, %dx
	inb	%dx, %al
	outb	%al, %dx
	jmp	echo

	.section .rodata
msg:	.asciz	"spinning\n"
