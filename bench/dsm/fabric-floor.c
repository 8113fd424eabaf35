/*
 * bench-dsm's floor through libfabric: one endpoint per side, of the provider
 * the DSM's fabric transport chooses (dsm_fabric_choose), waiting on its
 * completion queue as that transport's progress threads do, so that the
 * floor's round trip is the fabric's and not TCP's.  Strict ping-pong: one
 * send and one receive in flight at most.
 */
#include "bench/dsm/fabric-floor.h"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/wire.h"
#include "dsm/dsm.h"
#include "dsm/transport.h"

#if !HAVE_LIBFABRIC
struct fab_floor *fab_floor_open(int fd, const char *provider)
{
	(void)fd;
	(void)provider;
	die("bench-dsm: --transport fabric: this build has no libfabric (./configure --with-libfabric)");
}

void fab_floor_send(struct fab_floor *p, const void *buf, size_t len)
{
	(void)p, (void)buf, (void)len;
}

void fab_floor_recv(struct fab_floor *p, void *buf, size_t len)
{
	(void)p, (void)buf, (void)len;
}

void fab_floor_close(struct fab_floor *p)
{
	(void)p;
}
#else
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#define FLOOR_BUF (1u << 16)

struct fab_floor {
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_ep *ep;
	struct fid_cq *cq;
	struct fid_mr *mr;
	void *desc;
	fi_addr_t peer;
	struct fi_context send_ctx, recv_ctx;
	bool recv_done, send_done;
	size_t recv_len;
	unsigned char *buf; /* [0, FLOOR_BUF): receives; [FLOOR_BUF, 2 FLOOR_BUF): sends */
};

static void floor_check(int rc, const char *what)
{
	if (rc)
		die("bench-dsm: fabric floor: %s: %s", what, fi_strerror(rc < 0 ? -rc : rc));
}

static void floor_post_recv(struct fab_floor *p)
{
	p->recv_done = false;
	floor_check((int)fi_recv(p->ep, p->buf, FLOOR_BUF, p->desc, FI_ADDR_UNSPEC, &p->recv_ctx),
		    "posting a receive");
}

/* Wait until the completion wanted (*flag) came, noting the other kind's too; block or not. */
static void floor_wait(struct fab_floor *p, bool *flag, bool block)
{
	while (!*flag) {
		struct fi_cq_data_entry e;
		ssize_t n = block ? fi_cq_sread(p->cq, &e, 1, NULL, -1) : fi_cq_read(p->cq, &e, 1);

		if (n == -FI_EAGAIN && !block)
			return;
		if (n == -FI_EAGAIN)
			continue;
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry err = { 0 };

			fi_cq_readerr(p->cq, &err, 0);
			die("bench-dsm: fabric floor: a transfer failed: %s", fi_strerror(err.err));
		}
		if (n < 0)
			floor_check((int)n, "waiting for a completion");
		if (e.op_context == &p->recv_ctx) {
			p->recv_done = true;
			p->recv_len = e.len;
		} else {
			p->send_done = true;
		}
	}
}

struct fab_floor *fab_floor_open(int fd, const char *provider)
{
	struct fab_floor *p = calloc(1, sizeof(*p));
	struct fi_cq_attr cq_attr = { .format = FI_CQ_FORMAT_DATA, .wait_obj = FI_WAIT_UNSPEC,
				      .size = 16 };
	struct fi_av_attr av_attr = { .type = FI_AV_UNSPEC, .count = 1 };
	unsigned char addr[256], peer[256];
	size_t len = sizeof(addr);
	uint32_t plen, mylen;
	char err[DSM_ERR_MAX];

	if (!p || !(p->buf = aligned_alloc(4096, 2 * FLOOR_BUF)))
		die("bench-dsm: fabric floor: out of memory");
	p->info = dsm_fabric_choose(provider, err);
	if (!p->info)
		die("bench-dsm: %s", err);
	floor_check(fi_fabric(p->info->fabric_attr, &p->fabric, NULL), "the fabric");
	floor_check(fi_domain(p->fabric, p->info, &p->domain, NULL), "the domain");
	floor_check(fi_av_open(p->domain, &av_attr, &p->av, NULL), "an address vector");
	floor_check(fi_endpoint(p->domain, p->info, &p->ep, NULL), "an endpoint");
	floor_check(fi_cq_open(p->domain, &cq_attr, &p->cq, NULL), "a completion queue");
	floor_check(fi_ep_bind(p->ep, &p->cq->fid, FI_TRANSMIT | FI_RECV), "binding its queue");
	floor_check(fi_ep_bind(p->ep, &p->av->fid, 0), "binding its address vector");
	if (p->info->domain_attr->mr_mode & FI_MR_LOCAL) {
		floor_check(fi_mr_reg(p->domain, p->buf, 2 * FLOOR_BUF, FI_SEND | FI_RECV, 0, 0, 0,
				      &p->mr, NULL), "registering its buffers");
		if (p->info->domain_attr->mr_mode & FI_MR_ENDPOINT) {
			floor_check(fi_mr_bind(p->mr, &p->ep->fid, 0), "binding its buffers");
			floor_check(fi_mr_enable(p->mr), "enabling its buffers");
		}
		p->desc = fi_mr_desc(p->mr);
	}
	floor_check(fi_enable(p->ep), "enabling the endpoint");
	floor_post_recv(p);
	floor_check(fi_getname(&p->ep->fid, addr, &len), "its address");
	/* Addresses over the floor's TCP connection, then a byte each way: both are in. */
	mylen = (uint32_t)len;
	if (wire_write_full(fd, &mylen, sizeof(mylen)) || wire_write_full(fd, addr, len) ||
	    wire_read_full(fd, &plen, sizeof(plen)) || plen > sizeof(peer) ||
	    wire_read_full(fd, peer, plen))
		die("bench-dsm: fabric floor: the address exchange failed");
	if (fi_av_insert(p->av, peer, 1, &p->peer, 0, NULL) != 1)
		die("bench-dsm: fabric floor: the peer's address is not one this provider reaches");
	if (wire_write_full(fd, "r", 1) || wire_read_full(fd, addr, 1))
		die("bench-dsm: fabric floor: the peer did not get ready");
	return p;
}

void fab_floor_send(struct fab_floor *p, const void *buf, size_t len)
{
	ssize_t rc;

	memcpy(p->buf + FLOOR_BUF, buf, len);
	p->send_done = false;
	/* The provider may want its queue read (progress) before it takes a send. */
	while ((rc = fi_send(p->ep, p->buf + FLOOR_BUF, len, p->desc, p->peer, &p->send_ctx)) ==
	       -FI_EAGAIN)
		floor_wait(p, &p->recv_done, false);
	floor_check((int)rc, "a send");
	floor_wait(p, &p->send_done, true);
}

void fab_floor_recv(struct fab_floor *p, void *buf, size_t len)
{
	floor_wait(p, &p->recv_done, true);
	if (p->recv_len != len)
		die("bench-dsm: fabric floor: %zu bytes came, not %zu", p->recv_len, len);
	memcpy(buf, p->buf, len);
	floor_post_recv(p);
}

void fab_floor_close(struct fab_floor *p)
{
	if (!p)
		return;
	fi_close(&p->ep->fid);
	if (p->mr)
		fi_close(&p->mr->fid);
	fi_close(&p->cq->fid);
	fi_close(&p->av->fid);
	fi_close(&p->domain->fid);
	fi_close(&p->fabric->fid);
	fi_freeinfo(p->info);
	free(p->buf);
	free(p);
}
#endif
