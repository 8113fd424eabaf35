/* User-mode entry points: the boot CPU's first thread, and every other thread. */
	.text
	.globl _ustart, _uthread
/* rdi = boot information, rsi = this CPU's index */
_ustart:
	fninit
	ldmxcsr mxcsr_default
	call user_main
	ud2

/* rdi = argument, rsi = this CPU's index, rdx = boot information */
_uthread:
	fninit
	ldmxcsr mxcsr_default
	call thread_main
	ud2

	.section .rodata
	.balign 4
mxcsr_default:
	.long 0x1f80 /* round to nearest, all exceptions masked */

	.bss
	.balign 4096
	.globl user_bsp_stack_top
	.fill 262144, 1, 0
user_bsp_stack_top:

	.section .note.GNU-stack, "", @progbits
