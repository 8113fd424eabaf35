#include "vmm/vcpu.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/deadline.h"
#include "common/log.h"
#include "common/parse.h"
#include "vmm/vm.h"
#include "vmm/x86/cpu.h"
#include "vmm/x86/emulate.h"
#include "vmm/x86/ioapic.h"
#include "vmm/x86/lapic.h"
#include "vmm/hw/pic.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

const char *const vcpu_stat_names[VS_NR] = {
	[VS_EXIT_IO] = "port I/O",
	[VS_EXIT_MMIO_LAPIC] = "MMIO LAPIC",
	[VS_EXIT_MMIO_IOAPIC] = "MMIO IOAPIC",
	[VS_EXIT_MMIO_OTHER] = "MMIO other",
	[VS_EXIT_HLT] = "HLT",
	[VS_EXIT_IRQ_WINDOW] = "interrupt window",
	[VS_EXIT_INTR] = "kick (EINTR)",
	[VS_EXIT_MSR] = "MSR (x2APIC)",
	[VS_EXIT_OTHER] = "other",
	[VS_INJECT_IRQ] = "interrupts injected",
	[VS_INJECT_NMI] = "NMIs injected",
	[VS_UNHANDLED_IO] = "unclaimed I/O accesses",
	[VS_EMULATED] = "instructions gvm emulated",
};

static void kick_handler(int sig)
{
	(void)sig;
}

void vcpu_signal_setup(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL))
		die_perror("sigaction");
}

/* --- the LAPIC's environment --------------------------------------------- */

static void env_send(void *opaque, const struct apic_msg *m)
{
	struct vcpu *v = opaque;

	apic_bus_send(&v->vm->apic, m);
}

static void env_eoi(void *opaque, uint8_t vector)
{
	struct vcpu *v = opaque;

	if (v->vm->ioapic)
		ioapic_eoi(v->vm->ioapic, vector);
	else if (v->vm->cfg.hooks.eoi)
		v->vm->cfg.hooks.eoi(v->vm->cfg.hooks.arg, vector);
}

static void env_kick(void *opaque)
{
	vcpu_kick(opaque);
}

static void env_timer_arm(void *opaque, uint64_t deadline)
{
	struct vcpu *v = opaque;
	struct itimerspec its = {
		.it_value = { .tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000 },
	};

	v->timer_deadline = deadline;
	if (v->timer_created && timer_settime(v->timer, TIMER_ABSTIME, &its, NULL))
		pr_warn("vCPU %u: cannot arm the LAPIC timer: %s", v->index, strerror(errno));
}

static void env_dest_changed(void *opaque, const struct apic_dest_state *d)
{
	struct vcpu *v = opaque;

	apic_bus_set_dest(&v->vm->apic, v->index, d);
	if (v->vm->cfg.hooks.dest_changed)
		v->vm->cfg.hooks.dest_changed(v->vm->cfg.hooks.arg, v->index, d);
}

static uint64_t env_now(void *opaque)
{
	struct timespec ts;

	(void)opaque;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void port_deliver(struct apic_port *port, const struct apic_msg *m)
{
	struct vcpu *v = (struct vcpu *)((char *)port - offsetof(struct vcpu, port));

	lapic_accept(v->lapic, m);
}

/* --- creation -------------------------------------------------------------- */

struct vcpu *vcpu_create(struct vm *vm, unsigned index)
{
	const struct topo_cpu *tc = &vm->topo.cpus[index];
	struct vcpu *v = calloc(1, sizeof(*v));
	struct lapic_env env = {
		.send = env_send,
		.eoi = env_eoi,
		.kick = env_kick,
		.timer_arm = env_timer_arm,
		.dest_changed = env_dest_changed,
		.now = env_now,
	};

	if (!v) {
		pr_err("out of memory creating vCPU %u", index);
		return NULL;
	}
	v->vm = vm;
	v->index = index;
	v->bsp = index == 0;
	v->host_pu = -1;
	v->state = v->bsp ? VCPU_RUNNING : VCPU_WAIT_SIPI;
	v->run = MAP_FAILED;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)tc->apic_id);
	if (v->fd < 0) {
		pr_err("cannot create vCPU %u: %s", index, strerror(errno));
		goto fail;
	}
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		pr_err("cannot map the run area of vCPU %u: %s", index, strerror(errno));
		goto fail;
	}
	if (ioctl(v->fd, KVM_GET_SREGS, &v->reset_sregs)) {
		pr_err("vCPU %u: KVM_GET_SREGS: %s", index, strerror(errno));
		goto fail;
	}
	if (cpu_setup_vcpu(vm, v->fd, index))
		goto fail;
	env.opaque = v;
	v->lapic = lapic_create(index, tc->apic_id, index == 0, &env);
	v->port.deliver = port_deliver;
	apic_bus_attach(&vm->apic, index, tc->apic_id, &v->port);
	return v;
fail:
	vcpu_destroy(v);
	return NULL;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	if (v->timer_created)
		timer_delete(v->timer);
	lapic_destroy(v->lapic);
	if (v->run != MAP_FAILED)
		munmap(v->run, v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}

/* --- the run loop ---------------------------------------------------------- */

void vcpu_kick(struct vcpu *v)
{
	/* seq_cst: pairs with the thread's store of kickable and load of stopping */
	if (!atomic_load(&v->kickable) || pthread_equal(v->self, pthread_self()))
		return;
	pthread_kill(v->self, VCPU_KICK_SIGNAL);
}

static int tsc_offset_attr(struct vcpu *v, unsigned long op, int64_t *off)
{
	struct kvm_device_attr a = {
		.group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET, .addr = (uintptr_t)off,
	};

	return ioctl(v->fd, op, &a);
}

int vcpu_get_tsc_offset(struct vcpu *v, int64_t *off)
{
	return tsc_offset_attr(v, KVM_GET_DEVICE_ATTR, off);
}

int vcpu_set_tsc_offset(struct vcpu *v, int64_t off)
{
	int64_t now;

	if (tsc_offset_attr(v, KVM_SET_DEVICE_ATTR, &off) || vcpu_get_tsc_offset(v, &now))
		return -1;
	/* Some KVMs (where guest kernel code is emulated) take it and go on with the host's. */
	if (now != off) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return 0;
}

/* The VM's TSC corrections (vm.h) that this vCPU's offset does not have yet. */
static void apply_tsc(struct vcpu *v)
{
	int64_t want = atomic_load(&v->vm->tsc_step) + atomic_load(&v->vm->tsc_drift), off;

	if (want == v->tsc_applied || v->tsc_stuck)
		return;
	if (vcpu_get_tsc_offset(v, &off) || vcpu_set_tsc_offset(v, off + want - v->tsc_applied)) {
		pr_warn("vCPU %u: cannot correct its TSC: %s", v->index,
			errno == EOPNOTSUPP ? "this KVM does not apply TSC offsets" : strerror(errno));
		v->tsc_stuck = true; /* every later correction would fail alike */
	}
	v->tsc_applied = want;
}

/* The registers, as errors when the VM failed, as debug output at a normal end. */
static void dump_state(struct vcpu *v, enum log_level level)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(v->fd, KVM_GET_REGS, &r) || ioctl(v->fd, KVM_GET_SREGS, &s))
		return;
	log_msg(level, "vCPU %u: rip %016llx rsp %016llx rflags %08llx cs %04x", v->index, r.rip,
		r.rsp, r.rflags, s.cs.selector);
	log_msg(level, "vCPU %u: rax %016llx rbx %016llx rcx %016llx rdx %016llx", v->index,
		r.rax, r.rbx, r.rcx, r.rdx);
	log_msg(level, "vCPU %u: rsi %016llx rdi %016llx rbp %016llx", v->index, r.rsi, r.rdi,
		r.rbp);
	log_msg(level, "vCPU %u: cr0 %08llx cr2 %016llx cr3 %016llx cr4 %08llx efer %llx",
		v->index, s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	struct io_access a = {
		.addr = run->io.port,
		.len = run->io.size,
		.write = run->io.direction == KVM_EXIT_IO_OUT,
		.cpu = v->index,
	};

	v->stats[VS_EXIT_IO]++;
	a.data = p;
	v->stats[VS_UNHANDLED_IO] += io_bus_dispatch_string(&v->vm->pio, &a, run->io.count);
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t addr = run->mmio.phys_addr;
	struct io_access a = {
		.addr = addr,
		.len = run->mmio.len,
		.write = run->mmio.is_write,
		.cpu = v->index,
		.data = run->mmio.data,
	};

	if (addr - APIC_DEFAULT_BASE < APIC_MMIO_SIZE)
		v->stats[VS_EXIT_MMIO_LAPIC]++;
	else if (addr - IOAPIC_DEFAULT_BASE < IOAPIC_MMIO_SIZE)
		v->stats[VS_EXIT_MMIO_IOAPIC]++;
	else
		v->stats[VS_EXIT_MMIO_OTHER]++;
	if (a.len > 8)
		a.len = 8;
	if (!io_bus_dispatch(&v->vm->mmio, &a))
		v->stats[VS_UNHANDLED_IO]++;
}

static bool extint_pending(struct vcpu *v)
{
	return v->bsp && v->vm->pic && pic_output(v->vm->pic) && lapic_accepts_extint(v->lapic);
}

/* --- reports to other threads ---------------------------------------------- */

uint32_t vcpu_ask_report(struct vcpu *v)
{
	uint32_t asked = atomic_fetch_add(&v->report_asked, 1) + 1;

	vcpu_kick(v);
	return asked;
}

bool vcpu_get_report(struct vcpu *v, uint32_t asked, struct vcpu_report *r)
{
	if (atomic_load_explicit(&v->report_done, memory_order_acquire) != asked)
		return false;
	*r = v->report;
	return true;
}

static void answer_report(struct vcpu *v)
{
	uint32_t asked = atomic_load_explicit(&v->report_asked, memory_order_relaxed);
	struct kvm_regs k;
	struct kvm_sregs s;

	if (asked == atomic_load_explicit(&v->report_done, memory_order_relaxed))
		return;
	v->report = (struct vcpu_report){ .state = v->state };
	if (!ioctl(v->fd, KVM_GET_REGS, &k) && !ioctl(v->fd, KVM_GET_SREGS, &s)) {
		v->report.have_regs = true;
		v->report.rip = k.rip;
		v->report.rflags = k.rflags;
		cpu_mode_name(&s, k.rflags, v->report.mode);
	}
	atomic_store_explicit(&v->report_done, asked, memory_order_release);
}

/* Timer, INIT, SIPI, NMI: everything that changes the vCPU's state. */
static void process_events(struct vcpu *v)
{
	int sipi;

	if (v->timer_deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec >= v->timer_deadline)
			lapic_timer_expired(v->lapic);
	}
	if (lapic_take_start(v->lapic, &sipi)) {
		if (v->bsp) {
			pr_warn("vCPU 0 (the BSP) received INIT: ignored, there is no firmware "
				"to reset to");
		} else {
			lapic_reset(v->lapic);
			cpu_reset(v->fd, &v->reset_sregs);
			v->state = VCPU_WAIT_SIPI;
			pr_debug("vCPU %u: INIT", v->index);
		}
	}
	if (sipi >= 0 && v->state == VCPU_WAIT_SIPI) {
		if (cpu_start_real_mode(v->fd, &v->reset_sregs, sipi)) {
			vm_stop(v->vm, VM_STATUS_FAILED,
				"vCPU %u: cannot start at SIPI vector 0x%02x", v->index, sipi);
			return;
		}
		pr_debug("vCPU %u: started by SIPI at 0x%x", v->index, sipi << 12);
		v->state = VCPU_RUNNING;
	}
	if (v->state != VCPU_WAIT_SIPI && lapic_take_nmi(v->lapic)) {
		if (ioctl(v->fd, KVM_NMI) < 0)
			pr_warn("vCPU %u: KVM_NMI: %s", v->index, strerror(errno));
		v->stats[VS_INJECT_NMI]++;
		v->state = VCPU_RUNNING;
	}
	if (v->state == VCPU_HALTED && v->run->if_flag &&
	    (lapic_pending_interrupt(v->lapic) >= 0 || extint_pending(v)))
		v->state = VCPU_RUNNING;
	answer_report(v);
}

/*
 * Give the guest the highest pending interrupt if it can take one now;
 * otherwise have KVM exit as soon as it can.
 */
static void inject(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	int vec = -1;
	bool more;

	if (lapic_pending_interrupt(v->lapic) < 0 && !extint_pending(v)) {
		run->request_interrupt_window = 0;
		return;
	}
	if (run->ready_for_interrupt_injection) {
		bool from_pic = false;

		vec = lapic_ack_interrupt(v->lapic);
		if (vec < 0 && extint_pending(v)) {
			vec = pic_ack(v->vm->pic);
			from_pic = true;
		}
		if (vec >= 0) {
			struct kvm_interrupt irq = { .irq = vec };

			if (ioctl(v->fd, KVM_INTERRUPT, &irq) < 0) {
				/* keep it pending rather than lose it (the PIC's is gone) */
				pr_warn("vCPU %u: KVM_INTERRUPT %d: %s", v->index, vec,
					strerror(errno));
				if (!from_pic)
					lapic_unack_interrupt(v->lapic, vec);
			} else {
				v->stats[VS_INJECT_IRQ]++;
			}
		}
	}
	more = lapic_pending_interrupt(v->lapic) >= 0 || extint_pending(v);
	run->request_interrupt_window = more;
}

static void wait_for_event(struct vcpu *v, const sigset_t *kick)
{
	while (v->state != VCPU_RUNNING && !vm_stopping(v->vm)) {
		process_events(v);
		if (v->state == VCPU_RUNNING || vm_stopping(v->vm))
			break;
		/* A kick since the checks above is pending and ends the wait at once. */
		sigwaitinfo(kick, NULL);
	}
}

static void handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	atomic_fetch_add_explicit(&v->nr_exits, 1, memory_order_relaxed);

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		break;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		break;
	case KVM_EXIT_HLT:
		v->stats[VS_EXIT_HLT]++;
		v->state = VCPU_HALTED;
		break;
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		v->stats[VS_EXIT_IRQ_WINDOW]++;
		break;
	case KVM_EXIT_INTR:
		v->stats[VS_EXIT_INTR]++;
		break;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		v->stats[VS_EXIT_MSR]++;
		cpu_msr_exit(v, run);
		break;
	case KVM_EXIT_SHUTDOWN:
		dump_state(v, LOG_ERR);
		vm_stop(v->vm, VM_STATUS_FAILED,
			"vCPU %u: the guest shut down (triple fault or shutdown request)",
			v->index);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		dump_state(v, LOG_ERR);
		vm_stop(v->vm, VM_STATUS_FAILED,
			"vCPU %u: KVM could not enter the guest (hardware reason 0x%llx)", v->index,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
		    !emulate_fixup(v->vm->ram, v->fd)) {
			v->stats[VS_EMULATED]++;
			break;
		}
		dump_state(v, LOG_ERR);
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
			char what[200];

			emulate_describe(v->vm->ram, v->fd, what, sizeof(what));
			vm_stop(v->vm, VM_STATUS_FAILED,
				"vCPU %u: KVM internal error, suberror %u: KVM cannot emulate %s",
				v->index, run->internal.suberror, what);
		} else {
			vm_stop(v->vm, VM_STATUS_FAILED, "vCPU %u: KVM internal error, suberror %u",
				v->index, run->internal.suberror);
		}
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		vm_stop(v->vm, run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? 0 :
			VM_STATUS_FAILED, "vCPU %u: guest system event %u", v->index,
			run->system_event.type);
		break;
	default:
		v->stats[VS_EXIT_OTHER]++;
		dump_state(v, LOG_ERR);
		vm_stop(v->vm, VM_STATUS_FAILED, "vCPU %u: unexpected KVM exit reason %u", v->index,
			run->exit_reason);
		break;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = VCPU_KICK_SIGNAL };
	struct {
		struct kvm_signal_mask m;
		sigset_t set;
	} run_mask;
	sigset_t kick, cur;
	const struct timespec no_wait = { 0, 0 };
	char name[16];

	v->tid = gettid();
	v->self = pthread_self();
	/*
	 * From here on a vm_stop kicks this thread; one that came earlier is
	 * seen below.  The kick signal is still blocked, so a kick now stays
	 * pending until the thread waits or runs the guest.
	 */
	atomic_store(&v->kickable, true);
	if (atomic_load(&v->vm->stopping))
		return NULL;
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);
	if (v->host_pu >= 0)
		vm_pin_thread(v->vm, v->host_pu);

	sev.sigev_notify_thread_id = v->tid;
	if (timer_create(CLOCK_MONOTONIC, &sev, &v->timer)) {
		vm_stop(v->vm, VM_STATUS_FAILED, "vCPU %u: cannot create its LAPIC timer: %s",
			v->index, strerror(errno));
		return NULL;
	}
	v->timer_created = true;

	/* Inside KVM_RUN the kick signal is open; everywhere else it stays blocked. */
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	sigdelset(&cur, VCPU_KICK_SIGNAL);
	run_mask.m.len = 8; /* the kernel's sigset size */
	memcpy(run_mask.m.sigset, &cur, 8);
	if (ioctl(v->fd, KVM_SET_SIGNAL_MASK, &run_mask.m)) {
		vm_stop(v->vm, VM_STATUS_FAILED, "vCPU %u: KVM_SET_SIGNAL_MASK: %s", v->index,
			strerror(errno));
		return NULL;
	}

	while (!vm_stopping(v->vm)) {
		process_events(v);
		if (v->state != VCPU_RUNNING) {
			wait_for_event(v, &kick);
			continue;
		}
		apply_tsc(v);
		inject(v);
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/*
				 * The kick is still pending: KVM_RUN returned before
				 * delivering it, and it is blocked out here.  Take it,
				 * or every KVM_RUN would return at once.
				 */
				sigtimedwait(&kick, NULL, &no_wait);
				v->stats[VS_EXIT_INTR]++;
				continue;
			}
			dump_state(v, LOG_ERR);
			vm_stop(v->vm, VM_STATUS_FAILED, "vCPU %u: KVM_RUN: %s", v->index,
				strerror(errno));
			break;
		}
		handle_exit(v);
	}
	if (log_enabled(LOG_DEBUG))
		dump_state(v, LOG_DEBUG);
	return NULL;
}

/*
 * GVM_TEST_AP_START_DELAY_MS: a test-only pause after an AP's thread is
 * created, which widens the window in which the guest may stop the VM
 * while vCPU threads are still being started (tests/vmm/stop.t).
 */
static void start_delay(const struct vcpu *v)
{
	const char *env = getenv("GVM_TEST_AP_START_DELAY_MS");
	unsigned ms;
	char err[PARSE_ERR_MAX];

	if (!v->bsp && env && !parse_uint(env, 0, 10000, &ms, err))
		usleep(ms * 1000u);
}

/* Once joined, the thread's id may be reused: nobody may kick it any more. */
static void vcpu_joined(struct vcpu *v)
{
	atomic_store(&v->kickable, false);
	v->thread_created = false;
}

int vcpu_start(struct vcpu *v)
{
	sigset_t block, old;
	int err;

	/* The thread starts with the kick signal blocked, so no kick is lost. */
	sigemptyset(&block);
	sigaddset(&block, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	err = pthread_create(&v->thread, NULL, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pr_err("cannot start the thread of vCPU %u: %s", v->index, strerror(err));
		return -1;
	}
	v->thread_created = true;
	start_delay(v);
	return 0;
}

int vcpu_timedjoin(struct vcpu *v, const struct timespec *deadline)
{
	if (!v || !v->thread_created)
		return 0;
	if (deadline_join(v->thread, deadline))
		return -1;
	vcpu_joined(v);
	return 0;
}

void vcpu_join(struct vcpu *v)
{
	if (!v || !v->thread_created)
		return;
	pthread_join(v->thread, NULL);
	vcpu_joined(v);
}
