/*
 * A KVM virtual machine: its memory slots, its vCPUs, its I/O buses and
 * devices, and how it ends.
 *
 * Guest RAM (struct guest_ram) is mapped into two memslots: RAM offsets
 * below TOPO_HOLE_START at the same guest-physical addresses, the rest at
 * 4 GiB and up.  The VM has no in-kernel irqchip, so every LAPIC and IOAPIC
 * access exits to user space (see vmm/x86/lapic.h).
 *
 * What a cluster instance (one VM over several processes, vmm/cluster.h)
 * plugs in, without changing the vCPU or device code:
 *   - guest RAM: a struct guest_ram over the DSM region instead of
 *     guest_ram_anon();
 *   - only some vCPUs run here (vm_config.first_cpu, nr_cpus): the others
 *     have no struct vcpu (vm->vcpus[i] is NULL) and their apic_bus port
 *     (vmm/x86/apic.h) sends the message to the instance that runs them,
 *     which delivers it to its own port; the destination table (APIC ID,
 *     LDR, DFR of every vCPU) is fed by apic_bus_set_dest from the updates
 *     the owners broadcast (vm_hooks.dest_changed);
 *   - devices on rank 0 (vm_config.no_devices elsewhere): io_bus_set_forwarder
 *     on the other instances sends every access that is not IO_LOCAL to rank
 *     0; device interrupts leave rank 0's IOAPIC through the same apic_bus
 *     ports, and EOIs of level-triggered vectors come back (vm_hooks.eoi);
 *   - the end: vm_hooks.stopped tells the other instances.
 */
#ifndef GVM_VMM_VM_H
#define GVM_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "vmm/iobus.h"
#include "vmm/ram.h"
#include "vmm/topo.h"
#include "vmm/x86/apic.h"
#include "vmm/x86/cpuid.h"

struct vcpu;
struct ioapic;
struct pic;
struct pit;
struct rtc;
struct uart;
struct pm;
struct watch;
struct kvm_cpuid2;
struct host;

/* Exit status of gvm when the VM itself failed (triple fault, KVM error). */
#define VM_STATUS_FAILED 125
/* ... when stopped by SIGINT / SIGTERM (128 + signal, as a shell reports it). */
#define VM_STATUS_SIGNAL_BASE 128

#define VM_TSS_ADDR 0xFFFBD000ull         /* three pages KVM needs on Intel, in the hole */
#define VM_IDENTITY_MAP_ADDR 0xFFFBC000ull /* one page, likewise */

/* What a cluster instance plugs into the VM; every hook may be NULL. */
struct vm_hooks {
	void *arg;
	/*
	 * The destination state (APIC ID, LDR, DFR, x2APIC mode) of local vCPU
	 * cpu changed (the local bus
	 * table already says so): tell the other instances.  Called from the
	 * vCPU's thread, which continues only when it returns, so a guest that
	 * changes its LDR and then tells another CPU (through memory) finds
	 * every instance up to date.
	 */
	void (*dest_changed)(void *arg, unsigned cpu, const struct apic_dest_state *d);
	/* EOI of a level-triggered vector, where the IOAPIC is on another instance. */
	void (*eoi)(void *arg, uint8_t vector);
	/* The VM stopped here: called once, by the thread whose vm_stop won. */
	void (*stopped)(void *arg, int status, const char *reason);
	/*
	 * The console has been silent for silent_s and this instance reports
	 * its vCPUs (vmm/watch.h): the others should report theirs.
	 */
	void (*silent)(void *arg, unsigned silent_s);
};

struct vm_config {
	int console_fd;      /* UART output (normally 1) */
	int console_in_fd;   /* UART input, or -1 */
	bool stats;          /* count exits */
	unsigned report_silence_s; /* report the vCPUs after so much console silence; 0: never */
	const struct host *host;  /* where vCPU threads are pinned; NULL: not pinned */
	struct cpuid_features cpu_features; /* resolved: host or conservative */
	/* /dev/kvm opened by someone else (the VM owns it from vm_create on), or -1 */
	int kvm_fd;
	/*
	 * The vCPUs this instance runs: [first_cpu, first_cpu + nr_cpus), all
	 * of one NUMA node in a cluster.  nr_cpus 0: every vCPU (one instance).
	 */
	unsigned first_cpu, nr_cpus;
	/* host PU of each local vCPU (nr_cpus entries), or NULL: chosen with hwloc */
	const unsigned *host_pus;
	bool no_devices;     /* the devices live on another instance (rank 0) */
	bool ram_bound;      /* RAM is already bound to host NUMA nodes (the DSM does it) */
	struct vm_hooks hooks;
};

struct vm {
	int kvm_fd, vm_fd;
	int run_size;                 /* mmap size of struct kvm_run */
	struct vm_topology topo;
	struct vm_config cfg;
	struct guest_ram *ram;
	struct kvm_cpuid2 *supported_cpuid; /* KVM_GET_SUPPORTED_CPUID */

	struct io_bus pio, mmio;
	struct apic_bus apic;
	unsigned nr_vcpus;                /* in the guest; vcpus[i] is NULL if not run here */
	unsigned first_local, nr_local;   /* the ones run here */
	struct vcpu *vcpus[TOPO_MAX_CPUS];

	struct ioapic *ioapic;
	struct pic *pic;
	struct pit *pit;
	struct rtc *rtc;
	struct uart *uart;
	struct pm *pm;
	struct watch *watch;          /* of the console's silence (vmm/watch.h) */

	/*
	 * Cycles added to every local vCPU's TSC offset, each by its own thread
	 * before it next enters the guest (KVM sets a vCPU's attributes only
	 * between runs): forward steps that keep the instances' TSCs together
	 * (vmm/cluster-time.c), and a host TSC drift that tests simulate.
	 */
	_Atomic int64_t tsc_step, tsc_drift;

	/* The end: the first vm_stop wins and sets status and reason. */
	atomic_bool stopping;
	pthread_mutex_t stop_lock;
	int exit_status;
	char exit_reason[256];
	int stop_fd;                  /* eventfd, readable once the VM stops */

	struct timespec started;
};

/*
 * Open KVM (or take cfg->kvm_fd) and create the VM over ram (the VM takes
 * ownership of both, error or not), with topology t.  Devices and vCPUs are
 * added by vm_create_machine.  Returns NULL with a message on failure.
 */
struct vm *vm_create(const struct vm_topology *t, struct guest_ram *ram,
		     const struct vm_config *cfg);

/* Create the local vCPUs and, unless no_devices, the interrupt controllers and devices. */
int vm_create_machine(struct vm *vm);

/* Start every vCPU thread; the BSP must have been given its entry state. */
int vm_start(struct vm *vm);

/*
 * Wait until the VM stops (guest exit, failure, or SIGINT/SIGTERM, which
 * the caller must have blocked) and join the vCPU threads.  Returns the exit
 * status.  While it waits, it reports the vCPUs when the console is silent
 * (vm_config.report_silence_s, vmm/watch.h).
 */
int vm_wait(struct vm *vm);

/* The first half of vm_wait: until the VM stops (signals included). */
void vm_wait_stop(struct vm *vm);

/*
 * The second half: join the vCPU threads, giving up after timeout_ms (-1:
 * never).  Returns 0, or -1 if a thread did not end in time (one blocked
 * on memory a lost instance held, say).
 */
int vm_join(struct vm *vm, int timeout_ms);

/*
 * End the VM with status, for the given reason (printed unless NULL and
 * the status is the guest's own).  Callable from any thread; later calls do
 * nothing.
 */
void vm_stop(struct vm *vm, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline bool vm_stopping(struct vm *vm)
{
	return atomic_load_explicit(&vm->stopping, memory_order_relaxed);
}

/*
 * Report the local vCPUs on standard error soon: another instance's console
 * has been silent for silent_s.  Any thread.
 */
void vm_ask_report(struct vm *vm, unsigned silent_s);

/* ISA interrupt line irq (0-15) to level: to the PIC and the IOAPIC. */
void vm_set_irq(struct vm *vm, unsigned irq, bool level);

/* Print exit counts and rates of the local vCPUs (--stats), each line after prefix. */
void vm_print_stats(struct vm *vm, FILE *f, const char *prefix);

/* Pin the calling thread to a host PU. */
void vm_pin_thread(struct vm *vm, int host_pu);

void vm_destroy(struct vm *vm);

#endif
