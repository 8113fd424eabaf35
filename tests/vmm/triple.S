/*
 * A guest that triple-faults: with an empty IDT, an invalid opcode cannot be
 * delivered, nor can the double fault that follows.
 */
	.code64
	.section .text
	.globl _start
_start:
	lidt	idtr(%rip)
	ud2

	.section .rodata
idtr:	.word	0
	.quad	0
