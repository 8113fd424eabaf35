/*
 * A KVM guest running on DSM memory homed in another process.  Rank 0
 * writes a few real-mode instructions and a counter into pages it homes;
 * rank 1 makes the region its guest's RAM (a KVM memslot) and runs a vCPU
 * that reads the counter, increments it and writes it back, twice more
 * after rank 0 has read it (the guest's copy is write-protected: the
 * guest's write faults through KVM) and rewritten it (the guest's copy is
 * dropped: KVM must fetch the new one).  KVM's accesses are kernel-mode
 * faults, the ones UFFD_USER_MODE_ONLY would miss.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "tests/dsm/cluster.h"
#include "tests/lib/check.h"

/* 4 pages: 0-1 homed on rank 0 (code, counter), 2-3 on rank 1. */
#define CODE 0x0000
#define COUNTER 0x1000
#define RESULT 0x2000

static const uint8_t guest_code[] = {
	0xa1, 0x00, 0x10, /* mov ax, [0x1000] */
	0x40,             /* inc ax */
	0xa3, 0x00, 0x10, /* mov [0x1000], ax */
	0xa3, 0x00, 0x20, /* mov [0x2000], ax */
	0xf4,             /* hlt */
};

struct vm {
	int kvm, fd, vcpu;
	struct kvm_run *run;
	size_t run_size;
};

static int vm_open(struct vm *vm, void *ram, uint64_t size, char *why)
{
	struct kvm_userspace_memory_region slot = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = size,
		.userspace_addr = (uintptr_t)ram,
	};
	int sz;

	vm->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm < 0)
		return snprintf(why, 128, "/dev/kvm: %s", strerror(errno)), -1;
	vm->fd = ioctl(vm->kvm, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return snprintf(why, 128, "KVM_CREATE_VM: %s", strerror(errno)), -1;
	/* Real mode without unrestricted guest needs these on Intel; harmless elsewhere. */
	ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000ul);
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot))
		return snprintf(why, 128, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno)), -1;
	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	sz = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu < 0 || sz <= 0)
		return snprintf(why, 128, "KVM_CREATE_VCPU: %s", strerror(errno)), -1;
	vm->run_size = sz;
	vm->run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		return snprintf(why, 128, "mmap kvm_run: %s", strerror(errno)), -1;
	return 0;
}

/* Run the guest code from its start until HLT. */
static int vm_run(struct vm *vm, char *why)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = CODE, .rflags = 2 };

	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sregs))
		return snprintf(why, 128, "KVM_GET_SREGS: %s", strerror(errno)), -1;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sregs) || ioctl(vm->vcpu, KVM_SET_REGS, &regs))
		return snprintf(why, 128, "setting registers: %s", strerror(errno)), -1;
	for (;;) {
		if (ioctl(vm->vcpu, KVM_RUN, 0)) {
			if (errno == EINTR)
				continue;
			return snprintf(why, 128, "KVM_RUN: %s", strerror(errno)), -1;
		}
		if (vm->run->exit_reason == KVM_EXIT_HLT)
			return 0;
		return snprintf(why, 128, "unexpected exit %u", vm->run->exit_reason), -1;
	}
}

static void vm_close(struct vm *vm)
{
	if (vm->run && vm->run != MAP_FAILED)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu >= 0)
		close(vm->vcpu);
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->kvm >= 0)
		close(vm->kvm);
}

static uint16_t rd16(uint8_t *base, unsigned off)
{
	return *(volatile uint16_t *)(base + off);
}

static int kvm_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	uint8_t *ram = dsm_addr(d);
	struct vm vm = { -1, -1, -1, NULL, 0 };
	char why[128];
	int bad = 0;

	if (rank == 0) {
		memcpy(ram + CODE, guest_code, sizeof(guest_code));
		*(volatile uint16_t *)(ram + COUNTER) = 41;
	} else if (vm_open(&vm, ram, dsm_size(d), why)) {
		fprintf(stderr, "rank 1: %s\n", why);
		bad = 1;
	}
	for (unsigned step = 0; step < 3; step++) {
		static const uint16_t want[] = { 42, 43, 101 };

		cluster_barrier(c);
		if (rank == 1 && !bad && vm_run(&vm, why)) {
			fprintf(stderr, "rank 1: run %u: %s\n", step, why);
			bad = 1;
		}
		cluster_barrier(c);
		if (rank == 0 && (rd16(ram, COUNTER) != want[step] || rd16(ram, RESULT) != want[step])) {
			fprintf(stderr, "run %u: counter %u, result %u, expected %u\n", step,
				rd16(ram, COUNTER), rd16(ram, RESULT), want[step]);
			bad = 1;
		}
		/* After run 1 rank 0 only read (the guest's copy is read-only now); after run 2 it writes. */
		if (rank == 0 && step == 1)
			*(volatile uint16_t *)(ram + COUNTER) = 100;
	}
	cluster_barrier(c);
	if (rank == 1)
		vm_close(&vm);
	return bad;
}

int main(void)
{
	struct cluster c;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	log_init("test-dsm-kvm");
	if (fd < 0) {
		printf("SKIP: /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	close(fd);
	check_state.current = "kvm_guest_on_dsm";
	cluster_init(&c, 2, 4 * DSM_PAGE_SIZE);
	if (cluster_run(&c, kvm_node, &c))
		cluster_report(&c);
	CHECK_EQ(c.status[0], 0);
	CHECK_EQ(c.status[1], 0);
	printf("%s kvm_guest_on_dsm\n", c.status[0] || c.status[1] ? "FAIL" : "ok  ");
	return check_summary();
}
