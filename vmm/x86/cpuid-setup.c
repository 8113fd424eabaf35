#include "vmm/x86/cpuid-setup.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vm.h"

/*
 * Interim until vmm/x86/cpuid.c lands: KVM's supported CPUID with the APIC
 * ID of the vCPU, no x2APIC and no TSC-deadline timer (the LAPIC is ours and
 * xAPIC only).
 */
int cpuid_setup_vcpu(struct vm *vm, int fd, unsigned index)
{
	const struct kvm_cpuid2 *sup = vm->supported_cpuid;
	size_t size = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	unsigned apic_id = vm->topo.cpus[index].apic_id;
	int r;

	if (!c) {
		pr_err("out of memory");
		return -1;
	}
	memcpy(c, sup, size);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x00FFFFFF) | apic_id << 24;
			e->ecx &= ~((1u << 21) | (1u << 24));
			e->ecx |= 1u << 31;
			break;
		case 0xB:
		case 0x1F:
			e->edx = apic_id;
			break;
		}
	}
	r = ioctl(fd, KVM_SET_CPUID2, c);
	free(c);
	if (r) {
		pr_err("vCPU %u: KVM_SET_CPUID2: %s", index, strerror(errno));
		return -1;
	}
	return 0;
}
