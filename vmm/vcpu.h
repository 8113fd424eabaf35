/*
 * One vCPU: a KVM vCPU run by its own thread, pinned to a host PU.
 *
 * The thread runs KVM_RUN and dispatches every exit.  Interrupts come from
 * its LAPIC (vmm/x86/lapic.h): before each entry the thread injects the
 * highest pending vector with KVM_INTERRUPT if the guest can take it now,
 * and otherwise asks KVM for an interrupt-window exit.  NMIs go in with
 * KVM_NMI.
 *
 * Other threads never touch the vCPU's KVM state.  They change its LAPIC and
 * then kick it (vcpu_kick): a signal, VCPU_KICK_SIGNAL, sent to the thread.
 * The signal is blocked except inside KVM_RUN (KVM_SET_SIGNAL_MASK), so it
 * either interrupts KVM_RUN (EINTR) or stays pending until the next
 * KVM_RUN or wait, which then returns at once: no wake-up is lost.  The
 * LAPIC timer of the vCPU is a POSIX timer sending the same signal to the
 * same thread.  A halted vCPU (HLT) or an AP waiting for SIPI sleeps in
 * sigtimedwait, not in a loop.
 *
 * What another thread wants to know of the vCPU's state it asks for
 * (vcpu_ask_report) and the vCPU's thread answers at its next turn of the
 * loop, which the kick makes soon.
 */
#ifndef GVM_VMM_VCPU_H
#define GVM_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "vmm/x86/apic.h"
#include "vmm/x86/cpu.h"

#define VCPU_KICK_SIGNAL SIGUSR1

struct vm;
struct lapic;

enum vcpu_state {
	VCPU_WAIT_SIPI, /* an AP before its start-up IPI, or after INIT */
	VCPU_RUNNING,
	VCPU_HALTED,
};

/* What --stats counts, per vCPU, written only by its thread. */
enum vcpu_stat {
	VS_EXIT_IO,
	VS_EXIT_MMIO_LAPIC,
	VS_EXIT_MMIO_IOAPIC,
	VS_EXIT_MMIO_OTHER,
	VS_EXIT_HLT,
	VS_EXIT_IRQ_WINDOW,
	VS_EXIT_INTR,        /* KVM_RUN interrupted by a kick */
	VS_EXIT_MSR,         /* IA32_APIC_BASE and the x2APIC MSRs (+x2apic) */
	VS_EXIT_OTHER,
	VS_INJECT_IRQ,
	VS_INJECT_NMI,
	VS_UNHANDLED_IO,
	VS_EMULATED,         /* completed by vmm/x86/emulate.c for KVM */
	VS_NR,
};

/* Where the vCPU is, as its thread saw it when asked. */
struct vcpu_report {
	enum vcpu_state state;
	int64_t tsc_applied;       /* of vm->tsc_step + tsc_drift, in its TSC offset */
	bool tsc_stuck;            /* KVM refused a correction: no more tries */
	bool have_regs;           /* KVM gave them: the fields below are valid */
	uint64_t rip, rflags;
	char mode[CPU_MODE_MAX];  /* cpu_mode_name */
};

struct vcpu {
	struct vm *vm;
	unsigned index;
	bool bsp;
	int fd;
	struct kvm_run *run;
	struct lapic *lapic;
	struct apic_port port;     /* how the APIC bus reaches this vCPU here */

	pthread_t thread;          /* as pthread_create returned it: for joining */
	bool thread_created;       /* by vcpu_start; cleared once joined */
	/*
	 * Set by the thread itself before it first looks at the VM stopping, so
	 * that a vm_stop either sees it (and kicks) or is seen by the thread.
	 */
	atomic_bool kickable;
	pthread_t self;            /* the thread's own id, valid while kickable */
	pid_t tid;
	int host_pu;               /* host PU to pin to, -1: none */

	timer_t timer;             /* the LAPIC timer */
	bool timer_created;
	uint64_t timer_deadline;   /* as last armed; read by the own thread only */

	enum vcpu_state state;
	int64_t tsc_applied;       /* of vm->tsc_step + tsc_drift, in its TSC offset */
	bool tsc_stuck;            /* KVM refused a correction: no more tries */
	struct kvm_sregs reset_sregs; /* as KVM created it: what INIT returns to */
	uint64_t stats[VS_NR];

	_Atomic uint64_t nr_exits; /* KVM exits handled (not kicks), readable by any thread */
	/*
	 * A report is asked for by bumping report_asked; the vCPU's thread
	 * writes report and then sets report_done to the number it answered,
	 * and writes report again only for a later question: one asker reads
	 * it safely once report_done matches its question.
	 */
	_Atomic uint32_t report_asked, report_done;
	struct vcpu_report report;
};

/* Create vCPU index of vm: KVM vCPU, CPUID, MSRs, LAPIC.  NULL on failure. */
struct vcpu *vcpu_create(struct vm *vm, unsigned index);
void vcpu_destroy(struct vcpu *v);

/* Start the thread. */
int vcpu_start(struct vcpu *v);
void vcpu_join(struct vcpu *v);
/* Join, giving up at deadline (CLOCK_MONOTONIC): 0 joined, -1 still running. */
int vcpu_timedjoin(struct vcpu *v, const struct timespec *deadline);

/* Make the vCPU look at its LAPIC (and at the VM stopping) soon. */
void vcpu_kick(struct vcpu *v);

/*
 * KVM_VCPU_TSC_OFFSET (guest TSC = host TSC + offset): by the vCPU's own
 * thread, or before it runs.  0, or -1 with errno; setting reads it back,
 * EOPNOTSUPP when KVM took it but did not apply it.
 */
int vcpu_get_tsc_offset(struct vcpu *v, int64_t *off);
int vcpu_set_tsc_offset(struct vcpu *v, int64_t off);

/*
 * Ask the vCPU's thread where it is (and kick it); one asker at a time.
 * Returns the question's number for vcpu_get_report.
 */
uint32_t vcpu_ask_report(struct vcpu *v);
/* The answer to question `asked`, if the vCPU gave it yet: true and *r. */
bool vcpu_get_report(struct vcpu *v, uint32_t asked, struct vcpu_report *r);

/* Install the (empty) kick handler; once per process, before any vCPU starts. */
void vcpu_signal_setup(void);

extern const char *const vcpu_stat_names[VS_NR];

#endif
