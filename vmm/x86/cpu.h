/*
 * x86 vCPU state set-up: CPUID, boot MSRs and FPU at creation, the reset
 * state an INIT returns to, and the real-mode start a SIPI asks for.
 */
#ifndef GVM_VMM_X86_CPU_H
#define GVM_VMM_X86_CPU_H

#include <linux/kvm.h>
#include <stdint.h>

struct vm;

#define MSR_IA32_APICBASE 0x1B
#define MSR_IA32_APICBASE_BSP (1ull << 8)
#define MSR_IA32_APICBASE_ENABLE (1ull << 11)
#define MSR_IA32_MISC_ENABLE 0x1A0
#define MSR_IA32_MISC_ENABLE_FAST_STRING (1ull << 0)
#define MSR_MTRR_DEF_TYPE 0x2FF

/*
 * The VM's MSR set-up: with x2APIC (+x2apic), the guest's accesses to
 * IA32_APIC_BASE (through a KVM MSR filter) and to the x2APIC MSRs (which
 * KVM finds invalid without its LAPIC) exit to gvm, whose LAPICs serve them
 * (cpu_msr_exit).  0, or -1 with a message.
 */
int cpu_setup_vm(struct vm *vm);

/* A KVM_EXIT_X86_RDMSR/WRMSR of vCPU v: served, run->msr.error set. */
struct vcpu;
void cpu_msr_exit(struct vcpu *v, struct kvm_run *run);

/* CPUID (consistent with vm->topo), boot MSRs, FPU of vCPU index. */
int cpu_setup_vcpu(struct vm *vm, int vcpu_fd, unsigned index);

/* Back to the state KVM created the vCPU in (INIT). */
int cpu_reset(int vcpu_fd, const struct kvm_sregs *reset);

/* Real mode at vector << 12, as a start-up IPI leaves an AP. */
int cpu_start_real_mode(int vcpu_fd, const struct kvm_sregs *reset, uint8_t vector);

/*
 * The mode the vCPU runs in, for messages: "64-bit kernel mode", "64-bit
 * user mode", "32-bit compatibility mode, CPL 3", "32-bit protected mode,
 * CPL 0", "real mode"...  Writes into buf (CPU_MODE_MAX bytes), returns it.
 */
#define CPU_MODE_MAX 48
const char *cpu_mode_name(const struct kvm_sregs *s, uint64_t rflags, char *buf);

#endif
