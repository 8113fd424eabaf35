#include "vmm/watch.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/hw/uart.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
/* How long the vCPUs have to answer; one that does not is reported as such. */
#define ANSWER_NS (500 * NS_PER_MS)
#define ANSWER_POLL_MS 10

struct watch {
	struct vm *vm;
	uint64_t interval;       /* ns; 0: only when asked */
	uint64_t look;           /* ns between looks at the console */
	int fd;                  /* eventfd: watch_ask was called */
	_Atomic unsigned asked_silent_s;

	bool started;
	uint64_t last_output;    /* the console's last output seen, or the start */
	uint64_t next_report;
	/* the window exit rates are measured over: from `since`, with these counts */
	uint64_t since;
	uint64_t exits[TOPO_MAX_CPUS];

	/* a report waiting for the vCPUs' answers */
	bool pending, remote;
	unsigned silent_s;
	uint64_t deadline;
	uint32_t question[TOPO_MAX_CPUS];
};

struct watch *watch_create(struct vm *vm, unsigned interval_s)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (!w) {
		pr_err("out of memory");
		return NULL;
	}
	w->vm = vm;
	w->interval = (uint64_t)interval_s * NS_PER_S;
	/* often enough for the window to start near the last output, cheap enough to ignore */
	w->look = w->interval / 4 < NS_PER_S ? w->interval / 4 : NS_PER_S;
	if (w->look < 100 * NS_PER_MS)
		w->look = 100 * NS_PER_MS;
	w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->fd < 0) {
		pr_err("eventfd: %s", strerror(errno));
		free(w);
		return NULL;
	}
	return w;
}

void watch_destroy(struct watch *w)
{
	if (!w)
		return;
	close(w->fd);
	free(w);
}

int watch_fd(const struct watch *w)
{
	return w->fd;
}

void watch_ask(struct watch *w, unsigned silent_s)
{
	uint64_t one = 1;

	atomic_store(&w->asked_silent_s, silent_s);
	if (write(w->fd, &one, sizeof(one)) < 0)
		pr_warn("cannot ask for a report of the vCPUs: %s", strerror(errno));
}

static void restart_window(struct watch *w, uint64_t now)
{
	struct vm *vm = w->vm;

	w->since = now;
	for (unsigned i = vm->first_local; i < vm->first_local + vm->nr_local; i++)
		if (vm->vcpus[i])
			w->exits[i] = atomic_load_explicit(&vm->vcpus[i]->nr_exits,
							   memory_order_relaxed);
}

static void start_report(struct watch *w, uint64_t now, unsigned silent_s, bool remote)
{
	struct vm *vm = w->vm;

	w->pending = true;
	w->remote = remote;
	w->silent_s = silent_s;
	w->deadline = now + ANSWER_NS;
	for (unsigned i = vm->first_local; i < vm->first_local + vm->nr_local; i++)
		if (vm->vcpus[i])
			w->question[i] = vcpu_ask_report(vm->vcpus[i]);
}

static bool all_answered(struct watch *w)
{
	struct vm *vm = w->vm;
	struct vcpu_report r;

	for (unsigned i = vm->first_local; i < vm->first_local + vm->nr_local; i++)
		if (vm->vcpus[i] && !vcpu_get_report(vm->vcpus[i], w->question[i], &r))
			return false;
	return true;
}

static void print_vcpu(struct watch *w, unsigned i, double secs)
{
	struct vcpu *v = w->vm->vcpus[i];
	uint64_t exits = atomic_load_explicit(&v->nr_exits, memory_order_relaxed) - w->exits[i];
	double rate = secs > 0 ? exits / secs : 0;
	struct vcpu_report r;

	if (!vcpu_get_report(v, w->question[i], &r)) {
		/* its thread is not in its loop: a device access or a page of memory holds it */
		pr_info("  vCPU %u: no answer within %.1f s (waiting outside the guest), "
			"%.0f exits/s", i, ANSWER_NS / 1e9, rate);
		return;
	}
	if (r.state == VCPU_WAIT_SIPI) {
		pr_info("  vCPU %u: waiting for its start-up IPI", i);
		return;
	}
	if (!r.have_regs) {
		pr_info("  vCPU %u: %s (KVM would not give its registers), %.0f exits/s", i,
			r.state == VCPU_HALTED ? "halted" : "running", rate);
		return;
	}
	pr_info("  vCPU %u: %s in %s at rip 0x%llx, %.0f exits/s", i,
		r.state == VCPU_RUNNING ? "running" :
		r.rflags & (1u << 9) ? "halted" : "halted with interrupts off",
		r.mode, (unsigned long long)r.rip, rate);
}

static void print_report(struct watch *w, uint64_t now)
{
	struct vm *vm = w->vm;
	unsigned first = vm->first_local, end = vm->first_local + vm->nr_local;
	double secs = (now - w->since) / 1e9;

	if (w->remote)
		pr_info("rank 0's console has been silent for %u s; the vCPUs here (exits per "
			"second over the last %.0f s):", w->silent_s, secs);
	else
		pr_info("the console has been silent for %u s; the vCPUs (exits per second over "
			"the last %.0f s):", w->silent_s, secs);
	for (unsigned i = first; i < end; i++)
		if (vm->vcpus[i])
			print_vcpu(w, i, secs);
	/* rank 0 runs the first vCPUs: the others follow */
	if (!w->remote && end + 1 == vm->nr_vcpus)
		pr_info("  vCPU %u: on another instance, which reports its own", end);
	else if (!w->remote && end < vm->nr_vcpus)
		pr_info("  vCPUs %u-%u: on the other instances, which report their own", end,
			vm->nr_vcpus - 1);
	w->pending = false;
	restart_window(w, now);
}

int watch_tick(struct watch *w, uint64_t now)
{
	struct vm *vm = w->vm;
	bool console = vm->uart && w->interval;
	uint64_t out = vm->uart ? uart_last_output(vm->uart) : 0, asked;

	if (!w->started) {
		w->started = true;
		w->last_output = now;
		w->next_report = now + w->interval;
		restart_window(w, now);
	}
	if (out > w->last_output) {
		w->last_output = out;
		w->next_report = out + w->interval;
		if (!w->pending)
			restart_window(w, now);
	}
	if (read(w->fd, &asked, sizeof(asked)) == sizeof(asked) && !w->pending)
		start_report(w, now, atomic_load(&w->asked_silent_s), true);
	if (console && !w->pending && now >= w->next_report) {
		unsigned silent_s = (now - w->last_output) / NS_PER_S;

		start_report(w, now, silent_s, false);
		if (vm->cfg.hooks.silent)
			vm->cfg.hooks.silent(vm->cfg.hooks.arg, silent_s);
		w->next_report = now + w->interval;
	}
	if (w->pending && (all_answered(w) || now >= w->deadline))
		print_report(w, now);
	if (w->pending)
		return ANSWER_POLL_MS;
	if (!console)
		return -1;
	if (w->next_report - now < w->look)
		return (w->next_report - now + NS_PER_MS - 1) / NS_PER_MS;
	return w->look / NS_PER_MS;
}
