#include "vmm/x86/cpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vm.h"
#include "vmm/x86/cpuid-setup.h"

static int set_msrs(int fd, unsigned index, bool bsp)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[3];
	} m = {
		.hdr.nmsrs = 3,
		.e = {
			{ .index = MSR_IA32_APICBASE,
			  .data = APIC_DEFAULT_BASE | MSR_IA32_APICBASE_ENABLE |
				  (bsp ? MSR_IA32_APICBASE_BSP : 0) },
			{ .index = MSR_IA32_MISC_ENABLE, .data = MSR_IA32_MISC_ENABLE_FAST_STRING },
			/* MTRRs enabled, default type write-back: all RAM cacheable */
			{ .index = MSR_MTRR_DEF_TYPE, .data = (1u << 11) | 6 },
		},
	};
	int r = ioctl(fd, KVM_SET_MSRS, &m);

	if (r != 3) {
		pr_err("vCPU %u: KVM_SET_MSRS set %d of 3 boot MSRs%s%s", index, r,
		       r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
		return -1;
	}
	return 0;
}

int cpu_setup_vcpu(struct vm *vm, int fd, unsigned index)
{
	struct kvm_fpu fpu = { .fcw = 0x37F, .mxcsr = 0x1F80 };

	if (cpuid_setup_vcpu(vm, fd, index))
		return -1;
	if (set_msrs(fd, index, index == 0))
		return -1;
	if (ioctl(fd, KVM_SET_FPU, &fpu)) {
		pr_err("vCPU %u: KVM_SET_FPU: %s", index, strerror(errno));
		return -1;
	}
	return 0;
}

int cpu_reset(int fd, const struct kvm_sregs *reset)
{
	struct kvm_regs regs = { .rflags = 2, .rip = 0xFFF0 };

	if (ioctl(fd, KVM_SET_SREGS, reset) || ioctl(fd, KVM_SET_REGS, &regs)) {
		pr_err("cannot reset a vCPU: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int cpu_start_real_mode(int fd, const struct kvm_sregs *reset, uint8_t vector)
{
	struct kvm_sregs s = *reset;
	struct kvm_regs regs = { .rflags = 2, .rip = 0 };

	s.cs.selector = (uint16_t)vector << 8;
	s.cs.base = (uint64_t)vector << 12;
	if (ioctl(fd, KVM_SET_SREGS, &s) || ioctl(fd, KVM_SET_REGS, &regs)) {
		pr_err("cannot start a vCPU at 0x%x: %s", vector << 12, strerror(errno));
		return -1;
	}
	return 0;
}

const char *cpu_mode_name(const struct kvm_sregs *s, uint64_t rflags, char *buf)
{
	unsigned cpl = s->cs.selector & 3;

	if (!(s->cr0 & 1))
		snprintf(buf, CPU_MODE_MAX, "real mode");
	else if (rflags & (1u << 17))
		snprintf(buf, CPU_MODE_MAX, "virtual-8086 mode");
	else if ((s->efer & (1u << 10)) && s->cs.l)
		snprintf(buf, CPU_MODE_MAX, "64-bit %s mode", cpl ? "user" : "kernel");
	else if (s->efer & (1u << 10))
		snprintf(buf, CPU_MODE_MAX, "%u-bit compatibility mode, CPL %u", s->cs.db ? 32 : 16,
			 cpl);
	else
		snprintf(buf, CPU_MODE_MAX, "%u-bit protected mode, CPL %u", s->cs.db ? 32 : 16,
			 cpl);
	return buf;
}
