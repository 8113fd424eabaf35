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
#include "vmm/cluster-internal.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int tsc_offset_attr(int fd, int op, int64_t *off)
{
	struct kvm_device_attr a = {
		.group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET, .addr = (uintptr_t)off,
	};

	return ioctl(fd, op, &a);
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
	m->has_tsc_offset = tsc_offset_attr(v0->fd, KVM_GET_DEVICE_ATTR, &off) == 0;
	m->tsc_offset = m->has_tsc_offset ? off : 0;
	/*
	 * Rank 0's other vCPUs are left as KVM made them: it matched them to
	 * vCPU 0 already, and setting an offset again would end KVM's "master
	 * clock" (kvmclock's TSC-stable mode, which keeps the vCPUs' kvmclocks
	 * in step), measured.
	 */
	return kvmclock_offset(vm, &m->kvmclock_offset, err);
}

int cl_time_pong(struct cluster *c, const struct wire_hdr *h, char *why)
{
	pthread_mutex_lock(&c->lock);
	if (c->pong_valid || h->arg[0] >= CL_TIME_SAMPLES) {
		pthread_mutex_unlock(&c->lock);
		snprintf(why, 128, "an unrequested clock sample (%llu)",
			 (unsigned long long)h->arg[0]);
		return -1;
	}
	c->pong_valid = true;
	c->pong_seq = h->arg[0];
	c->pong_tsc = h->arg[1];
	c->pong_boot = h->arg[2];
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Rank 0's reading minus the midpoint of ours; 0 when within the uncertainty. */
static int64_t clock_delta(uint64_t theirs, uint64_t t0, uint64_t t1, uint64_t *unc)
{
	uint64_t mid = t0 + (t1 - t0) / 2;
	int64_t d = (int64_t)(theirs - mid);

	*unc = (t1 - t0) / 2 + 1;
	/*
	 * Anything within the uncertainty fits the samples equally well; 0 is
	 * exact when the clocks are one (instances on one host).
	 */
	return (uint64_t)(d < 0 ? -d : d) <= *unc ? 0 : d;
}

int cluster_sync_clocks(struct cluster *c, const struct cluster_machine *m, char *err)
{
	uint64_t best_rtt = UINT64_MAX, unc_boot = 0, unc_tsc = 0;
	int64_t d_boot = 0, d_tsc = 0;
	struct vm *vm = c->vm;
	int khz = -1;

	for (unsigned i = 0; i < CL_TIME_SAMPLES; i++) {
		struct timespec deadline;
		uint64_t b0, b1, t0, t1, ub, ut;
		int rc = 0;

		pthread_mutex_lock(&c->lock);
		c->pong_valid = false;
		pthread_mutex_unlock(&c->lock);
		t0 = __rdtsc();
		b0 = boot_ns();
		if (cl_send(c, 0, CLUSTER_CH_CTRL, CL_TIME_PING, i, 0, 0, NULL, 0)) {
			snprintf(err, CLUSTER_ERR_MAX, "cannot reach rank 0 to read its clocks");
			return -1;
		}
		deadline_in_ms(&deadline, 10000);
		pthread_mutex_lock(&c->lock);
		while (!c->pong_valid && !atomic_load(&c->failed) && !vm_stopping(vm) &&
		       rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&c->cond, &c->lock, &deadline);
		b1 = boot_ns();
		t1 = __rdtsc();
		if (!c->pong_valid || c->pong_seq != i) {
			pthread_mutex_unlock(&c->lock);
			snprintf(err, CLUSTER_ERR_MAX, "rank 0 did not answer clock sample %u", i);
			return -1;
		}
		if (b1 - b0 < best_rtt) {
			best_rtt = b1 - b0;
			d_boot = clock_delta(c->pong_boot, b0, b1, &ub);
			d_tsc = clock_delta(c->pong_tsc, t0, t1, &ut);
			unc_boot = ub;
			unc_tsc = ut;
		}
		pthread_mutex_unlock(&c->lock);
	}
	pr_debug("clocks: rank 0 - here: CLOCK_BOOTTIME %+" PRId64 " ns (+-%" PRIu64
		 "), TSC %+" PRId64 " cycles (+-%" PRIu64 "); best round trip %" PRIu64 " ns",
		 d_boot, unc_boot, d_tsc, unc_tsc, best_rtt);

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		int64_t off = m->tsc_offset + d_tsc;

		if (!vm->vcpus[i])
			continue;
		if (khz < 0)
			khz = ioctl(vm->vcpus[i]->fd, KVM_GET_TSC_KHZ, 0);
		if (!m->has_tsc_offset)
			continue;
		if (tsc_offset_attr(vm->vcpus[i]->fd, KVM_SET_DEVICE_ATTR, &off)) {
			pr_warn("cannot set the guest TSC of vCPU %u (%s): it may differ from rank "
				"0's", i, strerror(errno));
			break;
		}
	}
	if (!m->has_tsc_offset)
		pr_warn("rank 0's KVM cannot report its TSC offset: guest TSCs may differ "
			"between instances");
	if (khz > 0 && (uint32_t)abs(khz - (int)m->tsc_khz) > m->tsc_khz / 1000)
		pr_warn("this host's TSC runs at %d kHz, rank 0's at %u kHz: the guest's TSC "
			"will drift between nodes", khz, m->tsc_khz);

	struct kvm_clock_data d = { 0 };

	d.clock = boot_ns() + d_boot + m->kvmclock_offset;
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &d)) {
		snprintf(err, CLUSTER_ERR_MAX, "KVM_SET_CLOCK: %s", strerror(errno));
		return -1;
	}
	return 0;
}
