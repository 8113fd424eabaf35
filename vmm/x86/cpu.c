#include "vmm/x86/cpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/cpuid-setup.h"
#include "vmm/x86/lapic.h"

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

/* --- x2APIC: the MSRs that go to gvm's LAPICs ------------------------------ */

int cpu_setup_vm(struct vm *vm)
{
	/*
	 * KVM filters no x2APIC MSR (api.rst), but without an in-kernel LAPIC
	 * it finds every access to them invalid, and those exit to us
	 * (KVM_MSR_EXIT_REASON_INVAL); so do other MSRs KVM refuses, which get
	 * the same #GP from us.  IA32_APIC_BASE, which KVM would serve itself,
	 * exits through the filter.
	 */
	static const uint8_t deny[1]; /* a clear bit: exit to gvm */
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_X86_USER_SPACE_MSR,
		.args[0] = KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_INVAL,
	};
	struct kvm_msr_filter filter = {
		.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
		.ranges = { { .flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			      .base = MSR_IA32_APICBASE, .nmsrs = 1, .bitmap = (uint8_t *)deny } },
	};

	if (!cpuid_features_x2apic(&vm->cfg.cpu_features))
		return 0;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) <= 0 ||
	    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) <= 0) {
		pr_err("x2APIC (+x2apic) needs KVM's user-space MSR exits and MSR filters "
		       "(Linux 5.10 or later), which this host's KVM lacks: leave +x2apic out");
		return -1;
	}
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) ||
	    ioctl(vm->vm_fd, KVM_X86_SET_MSR_FILTER, &filter)) {
		pr_err("cannot route the x2APIC MSRs to gvm (KVM_CAP_X86_USER_SPACE_MSR, "
		       "KVM_X86_SET_MSR_FILTER): %s", strerror(errno));
		return -1;
	}
	return 0;
}

void cpu_msr_exit(struct vcpu *v, struct kvm_run *run)
{
	uint32_t msr = run->msr.index;
	bool write = run->exit_reason == KVM_EXIT_X86_WRMSR;
	int rc = -1;

	if (msr == MSR_IA32_APICBASE) {
		if (write) {
			rc = lapic_set_base(v->lapic, run->msr.data);
		} else {
			run->msr.data = lapic_base(v->lapic);
			rc = 0;
		}
	} else if (write) {
		rc = lapic_msr_write(v->lapic, msr, run->msr.data);
	} else {
		uint64_t val = 0;

		rc = lapic_msr_read(v->lapic, msr, &val);
		run->msr.data = val;
	}
	/*
	 * The LAPIC refuses any MSR not its own: such an MSR here is one KVM
	 * refused, and gets the #GP KVM would have given.
	 */
	run->msr.error = rc ? 1 : 0; /* 1: KVM injects #GP */
}
