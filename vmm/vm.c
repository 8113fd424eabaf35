#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/deadline.h"
#include "common/guest_abi.h"
#include "common/log.h"
#include "vmm/hw/exit.h"
#include "vmm/hw/legacy.h"
#include "vmm/hw/pic.h"
#include "vmm/hw/pit.h"
#include "vmm/hw/rtc.h"
#include "vmm/hw/pm.h"
#include "vmm/hw/uart.h"
#include "vmm/host.h"
#include "vmm/vcpu.h"
#include "vmm/x86/cpu.h"
#include "vmm/watch.h"
#include "vmm/x86/ioapic.h"
#include "vmm/x86/lapic.h"

static int check_cap(int kvm_fd, long cap, const char *name)
{
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap) <= 0) {
		pr_err("this host's KVM lacks %s, which giantvm needs", name);
		return -1;
	}
	return 0;
}

static int set_memslot(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t size, void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r)) {
		pr_err("cannot give the guest its RAM at 0x%llx (%llu bytes): %s",
		       (unsigned long long)gpa, (unsigned long long)size, strerror(errno));
		return -1;
	}
	return 0;
}

static int get_supported_cpuid(struct vm *vm)
{
	char err[CPUID_ERR_MAX];

	vm->supported_cpuid = cpuid_get_supported(vm->kvm_fd, err);
	if (!vm->supported_cpuid) {
		pr_err("%s", err);
		return -1;
	}
	return 0;
}

struct vm *vm_create(const struct vm_topology *t, struct guest_ram *ram,
		     const struct vm_config *cfg)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int max_vcpus;

	if (!vm) {
		pr_err("out of memory");
		guest_ram_release(ram);
		if (cfg->kvm_fd >= 0)
			close(cfg->kvm_fd);
		return NULL;
	}
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	vm->topo = *t;
	vm->cfg = *cfg;
	vm->ram = ram;
	pthread_mutex_init(&vm->stop_lock, NULL);
	io_bus_init(&vm->pio, "port");
	io_bus_init(&vm->mmio, "MMIO");
	apic_bus_init(&vm->apic, t->nr_cpus);

	vm->first_local = cfg->nr_cpus ? cfg->first_cpu : 0;
	vm->nr_local = cfg->nr_cpus ? cfg->nr_cpus : t->nr_cpus;
	if (vm->first_local + vm->nr_local > t->nr_cpus) {
		pr_err("vCPUs %u to %u asked for, but the guest has %u", vm->first_local,
		       vm->first_local + vm->nr_local - 1, t->nr_cpus);
		if (cfg->kvm_fd >= 0)
			close(cfg->kvm_fd);
		goto fail;
	}
	if (cfg->kvm_fd >= 0) {
		vm->kvm_fd = cfg->kvm_fd;
	} else {
		vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		if (vm->kvm_fd < 0) {
			pr_err("cannot open /dev/kvm: %s (is KVM enabled, and may this user open "
			       "it?)", strerror(errno));
			goto fail;
		}
	}
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		pr_err("%s is not /dev/kvm, or speaks an unexpected KVM API version",
		       cfg->kvm_fd >= 0 ? "the KVM descriptor handed over" : "/dev/kvm");
		goto fail;
	}
	if (check_cap(vm->kvm_fd, KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY") ||
	    check_cap(vm->kvm_fd, KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR") ||
	    check_cap(vm->kvm_fd, KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"))
		goto fail;
	max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus > 0 && t->nr_cpus > (unsigned)max_vcpus) {
		pr_err("%u vCPUs asked for, but this host's KVM allows at most %d per VM",
		       t->nr_cpus, max_vcpus);
		goto fail;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0) {
		pr_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		goto fail;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		pr_err("cannot create a KVM VM: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR)) {
		pr_err("KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto fail;
	}
	uint64_t ident = VM_IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident)) {
		pr_err("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		goto fail;
	}
	/* RAM below the hole at the same addresses, the rest from 4 GiB. */
	uint64_t low = ram->size < TOPO_HOLE_START ? ram->size : TOPO_HOLE_START;
	if (set_memslot(vm, 0, 0, low, ram->base))
		goto fail;
	if (ram->size > low &&
	    set_memslot(vm, 1, TOPO_HOLE_START + TOPO_HOLE_SIZE, ram->size - low, ram->base + low))
		goto fail;
	if (get_supported_cpuid(vm) || cpu_setup_vm(vm))
		goto fail;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (vm->stop_fd < 0) {
		pr_err("eventfd: %s", strerror(errno));
		goto fail;
	}
	vm->watch = watch_create(vm, cfg->report_silence_s);
	if (!vm->watch)
		goto fail;
	return vm;
fail:
	vm_destroy(vm);
	return NULL;
}

void vm_ask_report(struct vm *vm, unsigned silent_s)
{
	watch_ask(vm->watch, silent_s);
}

/* --- interrupts ------------------------------------------------------------ */

static void ioapic_send(void *opaque, const struct apic_msg *m)
{
	struct vm *vm = opaque;

	apic_bus_send(&vm->apic, m);
}

static void pic_notify(void *opaque)
{
	struct vm *vm = opaque;

	if (vm->vcpus[0])
		vcpu_kick(vm->vcpus[0]);
}

void vm_set_irq(struct vm *vm, unsigned irq, bool level)
{
	if (vm->pic)
		pic_set_irq(vm->pic, irq, level);
	/* ISA IRQ 0 is wired to IOAPIC pin 2 (the MADT says so with an override). */
	if (vm->ioapic)
		ioapic_set_irq(vm->ioapic, irq == 0 ? 2 : irq, level);
}

static void irq_set(void *opaque, unsigned irq, bool level)
{
	vm_set_irq(opaque, irq, level);
}

static void lapic_mmio(void *dev, struct io_access *a)
{
	struct vm *vm = dev;

	lapic_access(vm->vcpus[a->cpu]->lapic, a);
}

int vm_create_machine(struct vm *vm)
{
	struct irq_line irq0 = { .set = irq_set, .opaque = vm, .irq = 0 };
	struct irq_line irq4 = { .set = irq_set, .opaque = vm, .irq = GVM_UART_IRQ };

	unsigned chosen[TOPO_MAX_CPUS];
	const unsigned *pus = vm->cfg.host_pus;
	char err[HOST_ERR_MAX];

	if (!pus && vm->cfg.host) {
		if (host_choose_pus(vm->cfg.host, vm->nr_local, vm->topo.nodes_per_instance,
				    chosen, err)) {
			pr_err("cannot choose host CPUs for the vCPUs: %s", err);
			return -1;
		}
		pus = chosen;
	}
	vm->nr_vcpus = vm->topo.nr_cpus;
	for (unsigned k = 0; k < vm->nr_local; k++) {
		unsigned i = vm->first_local + k;

		vm->vcpus[i] = vcpu_create(vm, i);
		if (!vm->vcpus[i])
			return -1;
		vm->vcpus[i]->host_pu = pus ? (int)pus[k] : -1;
	}
	/*
	 * Each guest NUMA node's memory goes to the host NUMA node of the PU
	 * that runs its first vCPU, so a guest-local access is host-local.
	 */
	for (unsigned n = 0; pus && !vm->cfg.ram_bound && n < vm->topo.nr_nodes; n++) {
		const struct topo_node *tn = &vm->topo.nodes[n];
		int hn;

		if (tn->first_cpu < vm->first_local ||
		    tn->first_cpu >= vm->first_local + vm->nr_local)
			continue;
		hn = vm->cfg.host ? host_pu_node(vm->cfg.host, pus[tn->first_cpu - vm->first_local])
				  : -1;
		if (hn >= 0)
			guest_ram_prefer_node(vm->ram, tn->ram_offset, tn->ram_size, hn);
	}
	if (io_bus_register(&vm->mmio, APIC_DEFAULT_BASE, APIC_MMIO_SIZE, lapic_mmio, vm,
			    IO_LOCAL, "LAPIC"))
		return -1;
	if (vm->cfg.no_devices)
		return 0;
	vm->ioapic = ioapic_create(0, ioapic_send, vm);
	if (io_bus_register(&vm->mmio, IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_SIZE, ioapic_access,
			    vm->ioapic, IO_SHARED, "IOAPIC"))
		return -1;
	vm->pic = pic_create(&vm->pio, pic_notify, vm);
	vm->pit = pit_create(&vm->pio, &irq0);
	vm->rtc = rtc_create(&vm->pio);
	vm->uart = uart_create(&vm->pio, GVM_UART_PORT, &irq4, vm->cfg.console_fd,
			       vm->cfg.console_in_fd);
	if (!vm->pic || !vm->pit || !vm->rtc || !vm->uart)
		return -1;
	if (exit_dev_init(vm) || legacy_init(vm) || pm_init(vm))
		return -1;
	return 0;
}

/* --- life cycle ------------------------------------------------------------ */

void vm_pin_thread(struct vm *vm, int host_pu)
{
	char err[HOST_ERR_MAX];

	if (vm->cfg.host && host_pin_thread(vm->cfg.host, pthread_self(), host_pu, err))
		pr_warn("cannot pin a vCPU thread to host CPU %d: %s", host_pu, err);
}

int vm_start(struct vm *vm)
{
	clock_gettime(CLOCK_MONOTONIC, &vm->started);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i] && vcpu_start(vm->vcpus[i])) {
			vm_stop(vm, VM_STATUS_FAILED, NULL);
			return -1;
		}
	}
	return 0;
}

void vm_stop(struct vm *vm, int status, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;

	pthread_mutex_lock(&vm->stop_lock);
	if (atomic_load(&vm->stopping)) {
		pthread_mutex_unlock(&vm->stop_lock);
		return;
	}
	vm->exit_status = status;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(vm->exit_reason, sizeof(vm->exit_reason), fmt, ap);
		va_end(ap);
	}
	atomic_store(&vm->stopping, true);
	pthread_mutex_unlock(&vm->stop_lock);

	if (write(vm->stop_fd, &one, sizeof(one)) < 0)
		pr_warn("cannot signal the end of the VM: %s", strerror(errno));
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i])
			vcpu_kick(vm->vcpus[i]);
	/* exit_reason is written once, above, and never again: no lock needed to read it */
	if (vm->cfg.hooks.stopped)
		vm->cfg.hooks.stopped(vm->cfg.hooks.arg, status, vm->exit_reason);
}

void vm_wait_stop(struct vm *vm)
{
	sigset_t sigs;
	int sfd;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0)
		pr_warn("signalfd: %s; Ctrl-C will not stop the VM cleanly", strerror(errno));
	while (!vm_stopping(vm)) {
		struct pollfd p[3] = {
			{ .fd = vm->stop_fd, .events = POLLIN },
			{ .fd = watch_fd(vm->watch), .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};
		struct timespec now;
		int timeout;

		clock_gettime(CLOCK_MONOTONIC, &now);
		timeout = watch_tick(vm->watch, (uint64_t)now.tv_sec * 1000000000 + now.tv_nsec);
		if (poll(p, sfd < 0 ? 2 : 3, timeout) < 0 && errno != EINTR)
			break;
		if (sfd >= 0 && (p[2].revents & POLLIN)) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				vm_stop(vm, VM_STATUS_SIGNAL_BASE + si.ssi_signo,
					"stopped by %s", strsignal(si.ssi_signo));
		}
	}
	if (sfd >= 0)
		close(sfd);
}

int vm_join(struct vm *vm, int timeout_ms)
{
	struct timespec deadline;
	int ret = 0;

	deadline_in_ms(&deadline, timeout_ms >= 0 ? (unsigned long)timeout_ms : 0);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (!vm->vcpus[i])
			continue;
		if (timeout_ms < 0)
			vcpu_join(vm->vcpus[i]);
		else if (vcpu_timedjoin(vm->vcpus[i], &deadline))
			ret = -1;
	}
	return ret;
}

int vm_wait(struct vm *vm)
{
	vm_wait_stop(vm);
	vm_join(vm, -1);
	return vm->exit_status;
}

void vm_print_stats(struct vm *vm, FILE *f, const char *prefix)
{
	uint64_t total[VS_NR] = { 0 }, exits = 0;
	struct timespec now;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (now.tv_sec - vm->started.tv_sec) + (now.tv_nsec - vm->started.tv_nsec) / 1e9;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		for (unsigned s = 0; vm->vcpus[i] && s < VS_NR; s++)
			total[s] += vm->vcpus[i]->stats[s];
	for (unsigned s = 0; s <= VS_EXIT_OTHER; s++)
		exits += total[s];
	fprintf(f, "%s: stats: %.3f s, %u vCPUs, %llu exits, %.0f exits/s\n", prefix, secs,
		vm->nr_local, (unsigned long long)exits, secs > 0 ? exits / secs : 0.0);
	for (unsigned s = 0; s < VS_NR; s++) {
		if (s == VS_INJECT_IRQ)
			fprintf(f, "%s: stats: events:\n", prefix);
		else if (s == 0)
			fprintf(f, "%s: stats: exits by reason:\n", prefix);
		fprintf(f, "%s: stats:   %-24s %12llu  %10.0f/s\n", prefix, vcpu_stat_names[s],
			(unsigned long long)total[s], secs > 0 ? total[s] / secs : 0.0);
	}
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(vm->vcpus[i]);
	/* Devices with threads first: they may raise interrupts into the rest. */
	pit_destroy(vm->pit);
	uart_destroy(vm->uart);
	rtc_destroy(vm->rtc);
	pic_destroy(vm->pic);
	ioapic_destroy(vm->ioapic);
	pm_destroy(vm->pm);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(vm->vcpus[i]);
	watch_destroy(vm->watch);
	io_bus_destroy(&vm->pio);
	io_bus_destroy(&vm->mmio);
	free(vm->supported_cpuid);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	guest_ram_release(vm->ram);
	pthread_mutex_destroy(&vm->stop_lock);
	free(vm);
}
