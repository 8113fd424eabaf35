#include "vmm/x86/cpuid-setup.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vm.h"
#include "vmm/x86/cpuid.h"

int cpuid_setup_vcpu(struct vm *vm, int fd, unsigned index)
{
	char err[CPUID_ERR_MAX];
	struct kvm_cpuid2 *c = cpuid_build(vm->supported_cpuid, &vm->topo, &vm->cfg.cpu_features,
					   index, err);
	int r;

	if (!c) {
		pr_err("vCPU %u: %s", index, err);
		return -1;
	}
	r = ioctl(fd, KVM_SET_CPUID2, c);
	free(c);
	if (r) {
		pr_err("vCPU %u: KVM_SET_CPUID2: %s", index, strerror(errno));
		return -1;
	}
	return 0;
}
