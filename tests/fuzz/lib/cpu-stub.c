/*
 * vmm/x86/cpu.c's part that vmm/x86/emulate.c links against, for the
 * emulate fuzz target: only emulate_describe calls it, on a vCPU the
 * target has not got, and cpu.c would bring in the whole VM.
 */
#include <stdlib.h>

#include "vmm/x86/cpu.h"

const char *cpu_mode_name(const struct kvm_sregs *s, uint64_t rflags, char *buf)
{
	(void)s;
	(void)rflags;
	(void)buf;
	abort();
}
