/*
 * One guest time on every instance.  Two clocks matter to a guest:
 *   - the TSC: guest TSC = host TSC + the vCPU's TSC offset (KVM's
 *     KVM_VCPU_TSC_OFFSET);
 *   - kvmclock: the VM's clock, CLOCK_BOOTTIME + a per-VM offset that KVM
 *     sets when the VM is created (KVM_GET_CLOCK / KVM_SET_CLOCK), which
 *     the guest reads through its TSC.
 * Rank 0 keeps its own; every other rank measures how far its host's TSC
 * and CLOCK_BOOTTIME are from rank 0's (round trips over the control
 * channel, the sample of least round-trip time taken: its error is at most
 * half that round trip) and sets its offsets so that, at the same instant,
 * its guest reads what rank 0's guest reads.
 *
 * Hosts' TSCs run apart by tens of ppm, below what KVM would scale (it
 * leaves rates within 250 ppm alone), so from time to time (clock_resync)
 * each rank k measures again and steps its guest TSC forward when behind,
 * or asks rank 0 to step forward when it is ahead: never back, so no vCPU
 * sees its own TSC go backwards, and the guest's time follows the fastest
 * host's.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <x86intrin.h>

#include "common/deadline.h"
#include "common/log.h"
#include "common/parse.h"
#include "vmm/cluster-internal.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * GVM_TEST_TSC_PPM=P0,P1,... makes rank R's host TSC run PR ppm fast from
 * the moment its clock thread starts (tests/cluster/clock-drift.t), as on a
 * host whose crystal runs fast: every measurement here reads it, and the
 * guest's TSC gains it (vm->tsc_drift, brought up to date every
 * CL_TIME_DRIFT_MS).
 */
static unsigned test_drift_ppm(unsigned rank)
{
	const char *env = getenv("GVM_TEST_TSC_PPM");
	unsigned ppm[TOPO_MAX_NODES], n = 0;
	char err[PARSE_ERR_MAX];

	if (!env || parse_uint_list(env, 10000, ppm, TOPO_MAX_NODES, &n, err) || rank >= n)
		return 0;
	return ppm[rank];
}

/* t0 read before tsc: a TSC read before the drift began would wrap. */
static int64_t test_drift(const struct cluster *c, uint64_t t0, uint64_t tsc)
{
	int64_t d = (int64_t)(tsc - t0);

	return t0 && d > 0 ? (int64_t)((uint64_t)d / 1000 * c->drift_ppm / 1000) : 0;
}

/*
 * The host TSC as this instance's clocks see it: with a simulated drift,
 * exact at every read (the guest's gains it about every CL_TIME_DRIFT_MS),
 * so the looks measure the mechanism and not the simulation's steps.
 */
static uint64_t host_tsc(const struct cluster *c)
{
	uint64_t t0 = atomic_load(&c->drift_t0), tsc = __rdtsc();

	return tsc + (uint64_t)test_drift(c, t0, tsc);
}

/* kvmclock - CLOCK_BOOTTIME, from the tightest of a few bracketed reads. */
static int kvmclock_offset(struct vm *vm, int64_t *off, char *err)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 5; i++) {
		struct kvm_clock_data d = { 0 };
		uint64_t b0 = boot_ns(), b1;

		if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &d)) {
			snprintf(err, CLUSTER_ERR_MAX, "KVM_GET_CLOCK: %s", strerror(errno));
			return -1;
		}
		b1 = boot_ns();
		if (b1 - b0 < best) {
			best = b1 - b0;
			*off = (int64_t)(d.clock - (b0 + (b1 - b0) / 2));
		}
	}
	return 0;
}

int cluster_clock_reference(struct vm *vm, struct cluster_machine *m, char *err)
{
	struct vcpu *v0 = vm->vcpus[0];
	int64_t off;
	int khz;

	if (!v0) {
		snprintf(err, CLUSTER_ERR_MAX, "vCPU 0 does not run here");
		return -1;
	}
	khz = ioctl(v0->fd, KVM_GET_TSC_KHZ, 0);
	m->tsc_khz = khz > 0 ? (uint32_t)khz : 1;
	m->has_tsc_offset = vcpu_get_tsc_offset(v0, &off) == 0;
	m->tsc_offset = m->has_tsc_offset ? off : 0;
	/*
	 * Rank 0's other vCPUs are left as KVM made them: it matched them to
	 * vCPU 0 already, and setting an offset again would end KVM's "master
	 * clock" (kvmclock's TSC-stable mode, which keeps the vCPUs' kvmclocks
	 * in step), measured.
	 */
	return kvmclock_offset(vm, &m->kvmclock_offset, err);
}

/* The local vCPUs take vm->tsc_step and tsc_drift before they next run. */
static void kick_vcpus(struct vm *vm)
{
	for (unsigned i = vm->first_local; i < vm->first_local + vm->nr_local; i++)
		if (vm->vcpus[i])
			vcpu_kick(vm->vcpus[i]);
}

int cl_time_ping(struct cluster *c, unsigned peer, const struct wire_hdr *h, char *why)
{
	struct timespec ts;
	int64_t step;
	uint64_t tsc;

	(void)why;
	tsc = host_tsc(c);
	clock_gettime(CLOCK_BOOTTIME, &ts);
	step = c->vm ? atomic_load(&c->vm->tsc_step) : 0;
	cl_send(c, peer, CLUSTER_CH_CTRL, CL_TIME_PONG, h->arg[0], tsc,
		(uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, &step, sizeof(step));
	return 0;
}

int cl_time_pong(struct cluster *c, const struct wire_hdr *h, const void *payload, char *why)
{
	int64_t step;

	memcpy(&step, payload, sizeof(step));
	pthread_mutex_lock(&c->lock);
	if (h->arg[0] > c->ping_seq || step < 0) {
		pthread_mutex_unlock(&c->lock);
		snprintf(why, 128, "an unrequested clock sample (%llu, step %lld)",
			 (unsigned long long)h->arg[0], (long long)step);
		return -1;
	}
	/* else the answer to a sample given up on (late, not wrong): dropped */
	if (h->arg[0] == c->ping_seq && !c->pong_valid) {
		c->pong_valid = true;
		c->pong_tsc = h->arg[1];
		c->pong_boot = h->arg[2];
		c->pong_step = step;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cl_time_lead(struct cluster *c, unsigned peer, const struct wire_hdr *h, char *why)
{
	int64_t lead = (int64_t)h->arg[0], seen = (int64_t)h->arg[1], step;

	if (!c->vm) {
		snprintf(why, 128, "a clock lead before the VM exists");
		return -1;
	}
	step = atomic_load(&c->vm->tsc_step);
	if (seen > step) {
		snprintf(why, 128, "a clock lead over a step not taken (%lld)", (long long)seen);
		return -1;
	}
	/* Several ranks may report one lead: step to the furthest, once. */
	while (seen + lead > step)
		if (atomic_compare_exchange_weak(&c->vm->tsc_step, &step, seen + lead)) {
			kick_vcpus(c->vm);
			pr_debug("clocks: step: forward %" PRId64 " cycles on rank %u's lead",
				 seen + lead - step, peer);
			break;
		}
	return 0;
}

/* Rank 0's clocks minus ours, from the tightest of n round trips. */
struct clock_est {
	int64_t d_tsc, d_boot;   /* rank 0's host TSC + its step, CLOCK_BOOTTIME; minus ours */
	uint64_t unc_tsc, unc_boot; /* half the round trip */
	uint64_t rtt_ns;
	uint64_t at_ns;          /* CLOCK_BOOTTIME at its midpoint */
	int64_t step0;           /* rank 0's step in that sample */
};

/* Rank 0's reading minus the midpoint of ours, and its uncertainty. */
static int64_t clock_delta(uint64_t theirs, uint64_t t0, uint64_t t1, uint64_t *unc)
{
	*unc = (t1 - t0) / 2 + 1;
	return (int64_t)(theirs - (t0 + (t1 - t0) / 2));
}

/* Anything within the uncertainty fits the samples equally well: 0 then. */
static int64_t clock_round(int64_t d, uint64_t unc)
{
	return (uint64_t)(d < 0 ? -d : d) <= unc ? 0 : d;
}

static int clock_sample(struct cluster *c, unsigned n, struct clock_est *e, char *err)
{
	e->rtt_ns = UINT64_MAX;
	for (unsigned i = 0; i < n; i++) {
		struct timespec deadline;
		uint64_t b0, b1, t0, t1, seq;
		int rc = 0;

		pthread_mutex_lock(&c->lock);
		c->pong_valid = false;
		seq = ++c->ping_seq;
		pthread_mutex_unlock(&c->lock);
		t0 = host_tsc(c);
		b0 = boot_ns();
		if (cl_send(c, 0, CLUSTER_CH_CTRL, CL_TIME_PING, seq, 0, 0, NULL, 0)) {
			snprintf(err, CLUSTER_ERR_MAX, "cannot reach rank 0 to read its clocks");
			return -1;
		}
		deadline_in_ms(&deadline, 10000);
		pthread_mutex_lock(&c->lock);
		while (!c->pong_valid && !atomic_load(&c->failed) && !atomic_load(&c->beat_quit) &&
		       !(c->vm && vm_stopping(c->vm)) && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&c->cond, &c->lock, &deadline);
		b1 = boot_ns();
		t1 = host_tsc(c);
		if (!c->pong_valid) {
			pthread_mutex_unlock(&c->lock);
			snprintf(err, CLUSTER_ERR_MAX, "rank 0 did not answer clock sample %u", i);
			return -1;
		}
		if (b1 - b0 < e->rtt_ns) {
			e->rtt_ns = b1 - b0;
			e->at_ns = b0 + (b1 - b0) / 2;
			e->d_boot = clock_delta(c->pong_boot, b0, b1, &e->unc_boot);
			e->d_tsc = clock_delta(c->pong_tsc + (uint64_t)c->pong_step, t0, t1,
					       &e->unc_tsc);
			e->step0 = c->pong_step;
		}
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

int cluster_sync_clocks(struct cluster *c, const struct cluster_machine *m, char *err)
{
	struct vm *vm = c->vm;
	struct clock_est e = { 0 };
	int64_t d_tsc;
	int khz = -1;

	if (clock_sample(c, CL_TIME_SAMPLES, &e, err))
		return -1;
	d_tsc = clock_round(e.d_tsc, e.unc_tsc);
	pr_debug("clocks: rank 0 - here: CLOCK_BOOTTIME %+" PRId64 " ns (+-%" PRIu64
		 "), TSC %+" PRId64 " cycles (+-%" PRIu64 ") at %" PRIu32 " kHz; best round trip %"
		 PRIu64 " ns", e.d_boot, e.unc_boot, e.d_tsc, e.unc_tsc, m->tsc_khz, e.rtt_ns);
	c->tsc_base = d_tsc;
	c->tsc_khz = m->tsc_khz;

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		int64_t off = m->tsc_offset + d_tsc;

		if (!vm->vcpus[i])
			continue;
		if (khz < 0)
			khz = ioctl(vm->vcpus[i]->fd, KVM_GET_TSC_KHZ, 0);
		if (!m->has_tsc_offset)
			continue;
		if (vcpu_set_tsc_offset(vm->vcpus[i], off)) {
			pr_warn("cannot set the guest TSC of vCPU %u (%s): it may differ from rank "
				"0's", i, errno == EOPNOTSUPP ? "this KVM does not apply TSC offsets"
							  : strerror(errno));
			break;
		}
	}
	if (!m->has_tsc_offset)
		pr_warn("rank 0's KVM cannot report its TSC offset: guest TSCs may differ "
			"between instances");
	if (khz > 0 && (uint32_t)abs(khz - (int)m->tsc_khz) > m->tsc_khz / 1000)
		pr_warn("this host's TSC runs at %d kHz, rank 0's at %u kHz: the guest's TSC "
			"will drift from rank 0's, and be stepped back to it", khz, m->tsc_khz);

	struct kvm_clock_data d = { 0 };

	d.clock = boot_ns() + clock_round(e.d_boot, e.unc_boot) + m->kvmclock_offset;
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &d)) {
		snprintf(err, CLUSTER_ERR_MAX, "KVM_SET_CLOCK: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* What rank k's looks carry from one to the next. */
struct clock_looks {
	unsigned period_ms;  /* to the next look */
	uint64_t last_ns;    /* CLOCK_BOOTTIME of the last one's sample */
	uint64_t best_unc;   /* the least uncertainty of late, cycles */
};

/*
 * One look of rank k: our guest TSC against rank 0's, both read through the
 * same samples.  The true gap lies within the sample's uncertainty of the
 * gap measured, and a clock is moved only by the part of it that is
 * certain: a step by the whole estimate could overshoot, and as no clock
 * steps back, every overshoot would stay, and the guest's time would pull
 * ahead of the fastest host's by the noise of the samples.  Sets when to
 * look again: soon enough that the drift found stays near
 * CL_TIME_TARGET_US between looks, within [CL_TIME_RESYNC_MIN_MS,
 * CL_TIME_RESYNC_MAX_MS].
 */
static void clock_resync(struct cluster *c, struct clock_looks *l)
{
	uint64_t khz = c->tsc_khz ? c->tsc_khz : 1, target = khz * CL_TIME_TARGET_US / 1000;
	uint64_t gap, sure, since_us, period;
	struct vm *vm = c->vm;
	struct clock_est e = { 0 };
	char err[CLUSTER_ERR_MAX], act[64];
	int64_t behind;

	if (clock_sample(c, CL_TIME_RESYNC_SAMPLES, &e, err)) {
		l->period_ms = CL_TIME_RESYNC_MAX_MS; /* rank 0 is gone or going: the heartbeats say so */
		return;
	}
	since_us = (e.at_ns - l->last_ns) / 1000;
	l->last_ns = e.at_ns;
	/* (rank 0's host TSC + its step) - (ours + base + our step) */
	behind = e.d_tsc - c->tsc_base - atomic_load(&vm->tsc_step);
	gap = (uint64_t)(behind < 0 ? -behind : behind);
	sure = gap > e.unc_tsc ? gap - e.unc_tsc : 0;
	/* creeps up 1/64 a look: a host that stays busier than at its quietest is judged by now */
	l->best_unc += l->best_unc / 64;
	if (e.unc_tsc < l->best_unc)
		l->best_unc = e.unc_tsc;
	if (log_enabled(LOG_DEBUG)) {
		snprintf(act, sizeof(act), !sure ? "left alone (within the uncertainty)"
				     : behind > 0 ? "steps forward %" PRIu64 " cycles"
						  : "asks rank 0 to step forward %" PRIu64 " cycles",
			 sure);
		pr_debug("clocks: look: the guest TSC here is %+" PRId64 " cycles (%+" PRId64
			 " us) from rank 0's (stepped %" PRId64 " cycles so far), +-%" PRIu64
			 " cycles, %" PRIu64 " us after the last look: %s", -behind,
			 -behind * 1000 / (int64_t)khz, e.step0, e.unc_tsc, since_us, act);
	}
	if (!sure) {
		/*
		 * Nothing found by a look as sharp as the sharpest (within a
		 * factor 2): the drift is slower than the period assumed, look
		 * half as often.  A blurred look (a busy host, a busy network)
		 * tells nothing: the period stays.
		 */
		if (e.unc_tsc / 2 <= l->best_unc)
			l->period_ms = l->period_ms * 2 < CL_TIME_RESYNC_MAX_MS ? l->period_ms * 2
										: CL_TIME_RESYNC_MAX_MS;
		return;
	}
	if (sure > CL_TIME_MAX_LEAD) {
		pr_warn("the guest TSC here is %" PRIu64 " cycles %s rank 0's: a host clock is "
			"broken, left alone", sure, behind > 0 ? "behind" : "ahead of");
		l->period_ms = CL_TIME_RESYNC_MAX_MS;
		return;
	}
	if (behind > 0) {
		atomic_fetch_add(&vm->tsc_step, (int64_t)sure);
		kick_vcpus(vm);
	} else {
		cl_send(c, 0, CLUSTER_CH_CTRL, CL_TIME_LEAD, sure, (uint64_t)e.step0, 0, NULL, 0);
	}
	/*
	 * The gap built up in since_us (drift, with what the last look left
	 * and other ranks' leads): at that pace, `target` builds up in
	 */
	period = since_us * target / gap / 1000;
	l->period_ms = period < CL_TIME_RESYNC_MIN_MS   ? CL_TIME_RESYNC_MIN_MS
		       : period > CL_TIME_RESYNC_MAX_MS ? CL_TIME_RESYNC_MAX_MS
							: (unsigned)period;
}

/* Sleep ms, or less if told to quit.  False once told. */
static bool clock_nap(struct cluster *c, unsigned ms)
{
	struct timespec deadline;

	deadline_in_ms(&deadline, ms);
	pthread_mutex_lock(&c->lock);
	while (!atomic_load(&c->beat_quit) &&
	       pthread_cond_timedwait(&c->cond, &c->lock, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&c->lock);
	return !atomic_load(&c->beat_quit);
}

static void *cl_clock_thread(void *arg)
{
	struct cluster *c = arg;
	struct clock_looks l = { .period_ms = CL_TIME_RESYNC_MAX_MS / 4, .best_unc = UINT64_MAX / 2 };
	uint64_t next;

	pthread_setname_np(pthread_self(), "clock");
	/* the simulated drift and the looks' time count from one moment */
	if (c->drift_ppm)
		atomic_store(&c->drift_t0, __rdtsc());
	l.last_ns = boot_ns();
	next = deadline_now_ms() + l.period_ms;
	for (;;) {
		uint64_t now = deadline_now_ms();
		unsigned nap = next > now ? (unsigned)(next - now) : 0;

		if (!clock_nap(c, c->drift_ppm && nap > CL_TIME_DRIFT_MS ? CL_TIME_DRIFT_MS : nap))
			break;
		if (c->drift_ppm) {
			atomic_store(&c->vm->tsc_drift,
				     test_drift(c, atomic_load(&c->drift_t0), __rdtsc()));
			kick_vcpus(c->vm);
		}
		if (c->rank && deadline_now_ms() >= next) {
			clock_resync(c, &l);
			next = deadline_now_ms() + l.period_ms;
		} else if (!c->rank) {
			next = deadline_now_ms() + CL_TIME_DRIFT_MS;
		}
	}
	return NULL;
}

void cl_clock_start(struct cluster *c)
{
	int rc;

	if (!c->vm || c->clock_started)
		return;
	c->drift_ppm = test_drift_ppm(c->rank);
	if (c->rank == 0 && !c->drift_ppm)
		return;
	rc = pthread_create(&c->clock_thread, NULL, cl_clock_thread, c);
	if (rc)
		pr_warn("cannot start the clock thread (%s): guest TSCs will drift apart",
			strerror(rc));
	c->clock_started = !rc;
}

void cl_clock_stop(struct cluster *c)
{
	if (!c->clock_started)
		return;
	pthread_mutex_lock(&c->lock);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->clock_thread, NULL);
	c->clock_started = false;
}
