/*
 * Port and MMIO accesses of vCPUs that do not run on rank 0, forwarded to
 * rank 0's devices over the I/O channel.
 *
 * A vCPU makes one access at a time and waits for its reply, so each vCPU
 * has one slot on its own instance (the reply lands there) and one proxy
 * thread on rank 0 (which performs the access): accesses of different
 * vCPUs proceed in parallel, each device under its own lock, and nothing
 * is allocated or globally locked on the way (the connection's send lock
 * is held for one frame).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/cluster-internal.h"
#include "vmm/vm.h"

#define PROXY_QUIT 2u

/* --- the vCPU's side (rank k) ----------------------------------------------- */

bool cl_io_forward(void *dev, struct io_access *a)
{
	struct cl_bus_ctx *bc = dev;
	struct cluster *c = bc->c;
	struct cl_io_slot *s = &c->io_slots[a->cpu];
	uint64_t a0 = a->cpu | (uint64_t)a->len << 16 | (a->write ? CL_IO_WRITE : 0) |
		      (bc->mmio ? CL_IO_MMIO : 0);
	uint64_t data = 0;
	uint32_t st;
	bool claimed = false;

	if (a->write)
		memcpy(&data, a->data, a->len);
	atomic_store(&s->state, IO_WAITING);
	/* after the store: a stop from now on finds the slot waiting and aborts it */
	if (vm_stopping(c->vm) ||
	    cl_send(c, 0, CLUSTER_CH_IO, CL_IO_REQ, a0, a->addr, data, NULL, 0)) {
		atomic_store(&s->state, IO_IDLE);
		goto none;
	}
	while ((st = atomic_load(&s->state)) == IO_WAITING)
		cl_futex_wait(&s->state, IO_WAITING, 1000);
	if (st == IO_REPLIED) {
		claimed = s->claimed;
		if (!a->write)
			memcpy(a->data, s->data, a->len);
		atomic_store(&s->state, IO_IDLE);
		return claimed;
	}
	atomic_store(&s->state, IO_IDLE);
none:
	if (!a->write)
		memset(a->data, 0xff, a->len);
	return false;
}

int cl_io_reply(struct cluster *c, const struct wire_hdr *h, char *why)
{
	uint64_t cpu = h->arg[0];
	struct cl_io_slot *s = &c->io_slots[cpu];
	uint32_t waiting = IO_WAITING;

	if (atomic_load(&s->state) != IO_WAITING) {
		/* the VM's end aborted the wait: the reply crossed the STOP */
		if (vm_stopping(c->vm))
			return 0;
		return snprintf(why, 128, "I/O reply for vCPU %llu, which awaits none",
				(unsigned long long)cpu), -1;
	}
	memcpy(s->data, &h->arg[2], sizeof(s->data));
	s->claimed = h->arg[1];
	if (atomic_compare_exchange_strong(&s->state, &waiting, IO_REPLIED))
		cl_futex_wake(&s->state);
	return 0;
}

void cl_io_abort(struct cluster *c)
{
	for (unsigned i = 0; i < TOPO_MAX_CPUS; i++) {
		uint32_t waiting = IO_WAITING;

		if (atomic_compare_exchange_strong(&c->io_slots[i].state, &waiting, IO_ABORTED))
			cl_futex_wake(&c->io_slots[i].state);
	}
}

/* --- rank 0's side ----------------------------------------------------------- */

static int cl_io_request_check(const struct cluster *c, unsigned peer, const struct wire_hdr *h,
			       char *why)
{
	uint64_t a0 = h->arg[0], addr = h->arg[1], data = h->arg[2];
	unsigned cpu = CL_IO_CPU(a0), len = CL_IO_LEN(a0);
	bool mmio = a0 & CL_IO_MMIO;

	if (a0 & ~CL_IO_KNOWN)
		return snprintf(why, 128, "I/O request with unknown bits 0x%llx",
				(unsigned long long)a0), -1;
	if (cpu >= c->nr_cpus || c->owner[cpu] != peer)
		return snprintf(why, 128, "I/O request of vCPU %u, which the sender does not run",
				cpu), -1;
	if (!(len == 1 || len == 2 || len == 4 || (len == 8 && mmio)) ||
	    (!mmio && addr > 0xFFFF) || (addr + len < addr))
		return snprintf(why, 128, "I/O request of %u bytes at %s 0x%llx", len,
				mmio ? "address" : "port", (unsigned long long)addr), -1;
	if (len < 8 && (data >> (8 * len)))
		return snprintf(why, 128, "I/O request of %u bytes carrying 0x%llx", len,
				(unsigned long long)data), -1;
	if (!(a0 & CL_IO_WRITE) && data)
		return snprintf(why, 128, "I/O read request carrying data"), -1;
	return 0;
}

int cl_io_check(const struct cluster *c, unsigned peer, const struct wire_hdr *h, char *why)
{
	if (h->flags || h->seq || h->len)
		return snprintf(why, 128, "I/O message 0x%x with flags 0x%x sequence %u length %u",
				h->type, h->flags, h->seq, h->len), -1;
	if (h->type == CL_IO_REQ && c->rank == 0)
		return cl_io_request_check(c, peer, h, why);
	if (h->type == CL_IO_REPLY && peer == 0) {
		if (h->arg[0] >= c->nr_cpus || c->owner[h->arg[0]] != c->rank || h->arg[1] > 1)
			return snprintf(why, 128, "I/O reply for vCPU %llu (claimed %llu)",
					(unsigned long long)h->arg[0],
					(unsigned long long)h->arg[1]), -1;
		return 0;
	}
	return snprintf(why, 128, "unexpected message type 0x%x on the I/O channel", h->type), -1;
}

/* A request cl_io_check accepted: its proxy performs it. */
int cl_io_request(struct cluster *c, unsigned peer, const struct wire_hdr *h, char *why)
{
	uint64_t a0 = h->arg[0], addr = h->arg[1], data = h->arg[2];
	unsigned cpu = CL_IO_CPU(a0);
	bool mmio = a0 & CL_IO_MMIO;
	const struct io_range *r;
	struct cl_proxy *px = c->proxies[cpu];

	if (!px)
		return snprintf(why, 128, "I/O request of vCPU %u from rank %u before its proxy "
				"started", cpu, peer), -1;
	/*
	 * An IO_LOCAL range (the LAPIC) belongs to the vCPU's own instance, which
	 * never forwards it; here its handler would look for a vCPU rank 0 does
	 * not run.
	 */
	r = io_bus_find(mmio ? &c->vm->mmio : &c->vm->pio, addr);
	if (r && (r->flags & IO_LOCAL))
		return snprintf(why, 128, "I/O request of vCPU %u at %s 0x%llx (%s), which its own "
				"instance handles", cpu, mmio ? "address" : "port",
				(unsigned long long)addr, r->name), -1;
	/* only this thread posts to px, and the proxy only takes back what was posted */
	if (atomic_load(&px->pending))
		return snprintf(why, 128, "a second I/O request of vCPU %u before its reply", cpu),
		       -1;
	px->req_a0 = a0;
	px->req_addr = addr;
	px->req_data = data;
	atomic_store(&px->pending, 1);
	cl_futex_wake(&px->pending);
	return 0;
}

static void *cl_proxy_thread(void *arg)
{
	struct cl_proxy *px = arg;
	struct cluster *c = px->c;
	char name[16];

	snprintf(name, sizeof(name), "io%u", px->cpu);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		uint32_t p = atomic_load(&px->pending);
		uint8_t data[8];
		uint64_t out = 0;
		bool claimed;

		if (p == 0) {
			cl_futex_wait(&px->pending, 0, -1);
			continue;
		}
		if (p == PROXY_QUIT)
			break;
		struct io_access a = {
			.addr = px->req_addr,
			.len = CL_IO_LEN(px->req_a0),
			.write = px->req_a0 & CL_IO_WRITE,
			.cpu = px->cpu,
			.data = data,
		};
		memcpy(data, &px->req_data, sizeof(data));
		claimed = io_bus_dispatch(px->req_a0 & CL_IO_MMIO ? &c->vm->mmio : &c->vm->pio, &a);
		if (!a.write)
			memcpy(&out, data, a.len);
		/* free before replying: the next request may follow the reply at once */
		p = 1;
		if (!atomic_compare_exchange_strong(&px->pending, &p, 0))
			break;
		cl_send(c, px->peer, CLUSTER_CH_IO, CL_IO_REPLY, px->cpu, claimed, out, NULL, 0);
	}
	return NULL;
}

int cl_io_start(struct cluster *c)
{
	if (c->rank != 0)
		return 0;
	for (unsigned i = 0; i < c->nr_cpus; i++) {
		struct cl_proxy *px;
		int rc;

		if (c->owner[i] == c->rank)
			continue;
		px = aligned_alloc(64, sizeof(*px));
		if (!px)
			die("out of memory");
		memset(px, 0, sizeof(*px));
		px->c = c;
		px->cpu = i;
		px->peer = c->owner[i];
		rc = pthread_create(&px->thread, NULL, cl_proxy_thread, px);
		if (rc) {
			free(px);
			pr_err("cannot start an I/O proxy thread: %s", strerror(rc));
			return -1;
		}
		px->started = true;
		c->proxies[i] = px;
	}
	return 0;
}

void cl_io_stop(struct cluster *c)
{
	for (unsigned i = 0; i < TOPO_MAX_CPUS; i++) {
		struct cl_proxy *px = c->proxies[i];

		if (!px)
			continue;
		atomic_store(&px->pending, PROXY_QUIT);
		cl_futex_wake(&px->pending);
		if (px->started)
			pthread_join(px->thread, NULL);
		free(px);
		c->proxies[i] = NULL;
	}
}
