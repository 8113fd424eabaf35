/*
 * Glue between the VM and the CPUID builder (vmm/x86/cpuid.h): gives each
 * vCPU its CPUID with KVM_SET_CPUID2.
 */
#ifndef GVM_VMM_X86_CPUID_SETUP_H
#define GVM_VMM_X86_CPUID_SETUP_H

struct vm;

int cpuid_setup_vcpu(struct vm *vm, int vcpu_fd, unsigned index);

#endif
