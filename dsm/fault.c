/*
 * Fault handler threads: a pool reading the userfaultfd.  A handler never
 * waits for the network: it sends the request (or resolves the fault
 * locally at the home) and goes back to the descriptor, so many faults on
 * different pages are in flight at once.  The thread that receives the
 * reply installs the page, which wakes the faulting thread.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "dsm/internal.h"

#define FAULT_BATCH 8

static uint64_t fault_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void fault_event(struct dsm *d, const struct uffd_msg *m)
{
	uint64_t addr = m->arg.pagefault.address, off;

	if (m->event != UFFD_EVENT_PAGEFAULT)
		return; /* no other event was asked for */
	off = addr - (uintptr_t)d->base;
	if (addr < (uintptr_t)d->base || off >= (d->npages << DSM_PAGE_SHIFT)) {
		dsm_fail(d, d->rank, "internal error: fault at 0x%llx, outside the region",
			 (unsigned long long)addr);
		return;
	}
	node_fault(d, off >> DSM_PAGE_SHIFT, m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE,
		   m->arg.pagefault.feat.ptid);
}

/*
 * Each handler waits in its own epoll set where the userfaultfd is
 * EPOLLEXCLUSIVE: a fault wakes one handler, not the whole pool.
 */
static int fault_epoll(struct dsm *d)
{
	struct epoll_event uev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = 0 };
	struct epoll_event sev = { .events = EPOLLIN, .data.u32 = 1 };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		return -1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, d->uffd, &uev) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, d->stop_fd, &sev)) {
		close(ep);
		return -1;
	}
	return ep;
}

/* Read and handle what is queued; false when nothing was. */
static bool fault_drain(struct dsm *d)
{
	struct uffd_msg msgs[FAULT_BATCH];
	ssize_t r = read(d->uffd, msgs, sizeof(msgs));

	if (r > 0) {
		for (size_t i = 0; i < r / sizeof(msgs[0]); i++)
			fault_event(d, &msgs[i]);
		return true;
	}
	if (r < 0 && errno != EAGAIN && errno != EINTR)
		dsm_fail(d, d->rank, "reading the userfaultfd: %s", strerror(errno));
	return false;
}

static void *fault_thread(void *arg)
{
	struct dsm *d = arg;
	uint64_t spin_ns = d->cfg.handler_poll_us * 1000ull;
	int ep = fault_epoll(d);

	if (ep < 0) {
		dsm_fail(d, d->rank, "fault handler: epoll: %s", strerror(errno));
		return NULL;
	}
	while (!atomic_load(&d->stopping)) {
		struct epoll_event ev[2];
		int n;

		/* Bounded busy-poll (if configured) before sleeping. */
		if (spin_ns) {
			uint64_t end = fault_now_ns() + spin_ns;

			while (fault_now_ns() < end && !atomic_load(&d->stopping))
				if (fault_drain(d))
					end = fault_now_ns() + spin_ns;
		}
		/* Straight to sleep after a fault: a queued one wakes us at once. */
		n = epoll_wait(ep, ev, 2, -1);
		if (n < 0 && errno != EINTR) {
			dsm_fail(d, d->rank, "waiting on the userfaultfd: %s", strerror(errno));
			break;
		}
		if (n > 0 && (ev[0].data.u32 == 1 || (n > 1 && ev[1].data.u32 == 1)))
			break;
		if (n > 0)
			fault_drain(d);
	}
	close(ep);
	return NULL;
}

int fault_start(struct dsm *d, char *err)
{
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->stop_fd < 0) {
		snprintf(err, DSM_ERR_MAX, "eventfd: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < d->cfg.nr_handlers; i++) {
		int rc = pthread_create(&d->handlers[i], NULL, fault_thread, d);
		if (rc) {
			snprintf(err, DSM_ERR_MAX, "cannot start a fault handler thread: %s",
				 strerror(rc));
			return -1;
		}
		d->nr_started++;
	}
	return 0;
}

void fault_stop(struct dsm *d)
{
	uint64_t one = 1;

	if (d->stop_fd >= 0 && write(d->stop_fd, &one, sizeof(one)) < 0)
		pr_warn("waking the fault handlers: %s", strerror(errno));
	for (unsigned i = 0; i < d->nr_started; i++)
		pthread_join(d->handlers[i], NULL);
	d->nr_started = 0;
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	d->stop_fd = -1;
}
