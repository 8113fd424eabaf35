/*
 * A kernel-mode instruction that KVM cannot emulate and gvm does not
 * complete: CRC32 with its operand at an unclaimed address of the 3-4 GiB
 * hole.  Where KVM emulates guest kernel code it lacks CRC32; where
 * hardware runs it, the access to memory that is not RAM makes KVM emulate
 * it all the same.  Either way gvm must stop the VM and name it.  It
 * prints "noemul: running" first; reaching the end exits with 3.
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
2:	mov	$0xFEB00000, %ebx
	xor	%eax, %eax
	.globl	bad_insn
bad_insn:
	crc32l	(%rbx), %eax
	mov	$3, %eax
	mov	$0x501, %dx
	outl	%eax, %dx
	cli
	hlt

	.section .rodata
msg:	.asciz	"noemul: running\n"
