/*
 * The region's life cycle (create, start, the collective stop, destroy),
 * fatal errors, sending and statistics.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/deadline.h"
#include "common/log.h"
#include "common/mesh.h"
#include "common/parse.h"
#include "dsm/internal.h"

#define DSM_MAX_SIZE (1ull << 46) /* 64 TiB: well inside the user address space */
#define DSM_MAX_HANDLERS 64
/* Holds are timed with a 32-bit µs clock (hold.c): far below its 35.8 minutes. */
#define DSM_MAX_HOLD_US 10000000u

void dsm_config_init(struct dsm_config *cfg)
{
	*cfg = (struct dsm_config){
		.uffd = -1,
		.numa_node = -1,
		.nr_handlers = 2,
		.prefetch_pages = DSM_MAX_RUN,
		.hold_progress_us = 20000,
	};
}

const char *dsm_peer_name(const struct dsm *d, unsigned peer, char *buf, size_t len)
{
	return mesh_peer_name(d->mesh, peer, buf, len);
}

void dsm_fail(struct dsm *d, unsigned culprit, const char *fmt, ...)
{
	char msg[DSM_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/*
	 * The reason is written before `failed` is set, both under the lock:
	 * dsm_error() must never see a failure whose reason is not there yet.
	 */
	pthread_mutex_lock(&d->lock);
	if (atomic_load(&d->failed)) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	snprintf(d->error, sizeof(d->error), "%s", msg);
	atomic_store(&d->failed, true);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pr_err("rank %u: %s", d->rank, msg);

	/*
	 * Tell every peer why before closing, on every channel (each has its
	 * own receive thread, which must see why before it sees the close),
	 * so that each names the culprit, not us.  The culprit too: when only
	 * a link failed, it is alive, and must learn that the others lost it
	 * rather than blame us for closing (sends never block, so a dead one
	 * costs nothing).
	 */
	if (d->tr) {
		for (unsigned p = 0; p < d->nr_nodes; p++)
			for (unsigned ch = 0; ch < DSM_NR_CHANNELS; ch++) {
				uint32_t len = strnlen(msg, DSM_ABORT_MAX);
				struct wire_hdr h = wire_hdr_make(DSM_MSG_ABORT, d->rank, len);

				if (p == d->rank)
					continue;
				h.arg[0] = culprit < d->nr_nodes ? culprit : d->rank;
				d->tr->ops->send_pages(d->tr, p, ch, &h, msg);
			}
		d->tr->ops->shutdown(d->tr);
	}
	/*
	 * The caller may hold a page lock: the hold thread, which holds none,
	 * calls on_fatal (it may exit, or tear the DSM down).
	 */
	if (!hold_notify_fatal(d) && d->cfg.on_fatal)
		d->cfg.on_fatal(d->cfg.arg, msg);
}

void dsm_trace_add(struct dsm_trace *t, enum dsm_trace_point point, unsigned rank, unsigned peer,
		   uint16_t type, uint64_t pg)
{
	uint32_t i = atomic_fetch_add_explicit(&t->n, 1, memory_order_relaxed);
	struct timespec ts;

	if (i >= t->cap)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t->ev[i] = (struct dsm_trace_event){ .ns = ts.tv_sec * 1000000000ull + ts.tv_nsec, .pg = pg,
					     .type = type, .point = point, .rank = rank,
					     .peer = peer };
}

int dsm_send(struct dsm *d, unsigned to, unsigned ch, uint16_t type, uint64_t a0, uint64_t a1,
	     uint64_t a2, const void *payload, uint32_t len)
{
	return dsm_send_token(d, to, ch, type, 0, a0, a1, a2, payload, len);
}

int dsm_send_token(struct dsm *d, unsigned to, unsigned ch, uint16_t type, uint32_t token,
		   uint64_t a0, uint64_t a1, uint64_t a2, const void *payload, uint32_t len)
{
	struct wire_hdr h = wire_hdr_make(type, d->rank, len);
	int rc;

	h.seq = token;
	h.arg[0] = a0;
	h.arg[1] = a1;
	h.arg[2] = a2;
	DSM_TRACE(d, DSM_TP_SEND, to, type, a0);
	if (len)
		rc = d->tr->ops->send_pages(d->tr, to, ch, &h, payload);
	else
		rc = d->tr->ops->send_msg(d->tr, to, ch, &h);
	DSM_TRACE(d, DSM_TP_SENT, to, type, a0);
	if (rc) {
		/*
		 * Not reported here: the receive thread of this connection
		 * sees it fail too, after whatever the peer sent before
		 * closing.  That may be an ABORT naming another node as the
		 * culprit (the peer is only the messenger), or a BYE (then the
		 * close is no loss).
		 */
		return rc;
	}
	STAT_ADD(d, st_msgs_sent, 1);
	STAT_ADD(d, st_bytes_sent, sizeof(h) + len);
	STAT_ADD(d, st_pages_sent, len / DSM_PAGE_SIZE);
	return 0;
}

void dsm_account_fault(struct dsm *d, enum dsm_fault_kind kind, uint32_t start_us)
{
	uint32_t us = dsm_now_us() - start_us;
	unsigned b = us ? 31 - __builtin_clz(us) : 0;

	STAT_ADD(d, st_faults[kind], 1);
	STAT_ADD(d, st_lat[b < DSM_LAT_BUCKETS ? b : DSM_LAT_BUCKETS - 1], 1);
	STAT_ADD(d, st_fault_us, us);
}

static int dsm_check_homes(const struct dsm_config *cfg, unsigned n, uint64_t npages, char *err)
{
	const uint64_t *hs = cfg->home_start;

	if (!hs)
		return 0;
	if (hs[0] != 0 || hs[n] != npages) {
		snprintf(err, DSM_ERR_MAX,
			 "home map: must start at page 0 and end at page %llu (the region's size), "
			 "not [%llu, %llu)", (unsigned long long)npages, (unsigned long long)hs[0],
			 (unsigned long long)hs[n]);
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		if (hs[i + 1] < hs[i]) {
			snprintf(err, DSM_ERR_MAX,
				 "home map: node %u's range ends (page %llu) before it starts (page %llu)",
				 i, (unsigned long long)hs[i + 1], (unsigned long long)hs[i]);
			return -1;
		}
	return 0;
}

static int dsm_check_config(const struct dsm_config *cfg, char *err)
{
	char perr[PARSE_ERR_MAX];
	unsigned n;

	if (!cfg->mesh) {
		snprintf(err, DSM_ERR_MAX, "no mesh given");
		return -1;
	}
	n = mesh_nr_nodes(cfg->mesh);
	if (cfg->size == 0 || cfg->size % DSM_PAGE_SIZE || cfg->size > DSM_MAX_SIZE) {
		snprintf(err, DSM_ERR_MAX,
			 "region size %llu bytes: it must be a non-zero multiple of %u bytes, "
			 "at most %llu", (unsigned long long)cfg->size, DSM_PAGE_SIZE,
			 (unsigned long long)DSM_MAX_SIZE);
		return -1;
	}
	if (n > DSM_MAX_NODES || mesh_rank(cfg->mesh) >= n) {
		snprintf(err, DSM_ERR_MAX, "rank %u of %u nodes: at most %u nodes, rank below that",
			 mesh_rank(cfg->mesh), n, DSM_MAX_NODES);
		return -1;
	}
	for (unsigned p = 0; p < n; p++)
		for (unsigned ch = 0; ch < DSM_NR_CHANNELS && p != mesh_rank(cfg->mesh); ch++)
			if (mesh_fd(cfg->mesh, p, cfg->first_channel + ch) < 0) {
				snprintf(err, DSM_ERR_MAX,
					 "the mesh has no channel %u: the DSM needs %u channels from "
					 "channel %u", cfg->first_channel + ch, DSM_NR_CHANNELS,
					 cfg->first_channel);
				return -1;
			}
	if (cfg->transport && parse_transport(cfg->transport, perr)) {
		snprintf(err, DSM_ERR_MAX, "transport: %s", perr);
		return -1;
	}
	if (cfg->nr_handlers > DSM_MAX_HANDLERS) {
		snprintf(err, DSM_ERR_MAX, "%u fault handler threads: at most %u", cfg->nr_handlers,
			 DSM_MAX_HANDLERS);
		return -1;
	}
	if (cfg->hold_us > DSM_MAX_HOLD_US) {
		snprintf(err, DSM_ERR_MAX, "hold of %u us: at most %u", cfg->hold_us,
			 DSM_MAX_HOLD_US);
		return -1;
	}
	if (cfg->hold_progress_us > DSM_MAX_HOLD_US) {
		snprintf(err, DSM_ERR_MAX, "progress hold of %u us: at most %u",
			 cfg->hold_progress_us, DSM_MAX_HOLD_US);
		return -1;
	}
	if (cfg->prefetch_pages > DSM_MAX_RUN) {
		snprintf(err, DSM_ERR_MAX, "prefetch window of %u pages: at most %u",
			 cfg->prefetch_pages, DSM_MAX_RUN);
		return -1;
	}
	return dsm_check_homes(cfg, n, cfg->size / DSM_PAGE_SIZE, err);
}

/* A zeroed array that costs nothing until touched, however large. */
static void *dsm_zalloc(size_t size)
{
	void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void dsm_zfree(void *p, size_t size)
{
	if (p)
		munmap(p, size ? size : 1);
}

struct dsm_transport *dsm_transport_open(const struct dsm_transport_config *tc, char *err)
{
	if (tc->spec && !strncmp(tc->spec, "fabric", 6)) {
		/* The demand channel's largest message is a page; the bulk channel's, a run. */
		static const uint32_t max_payload[DSM_NR_CHANNELS] = {
			[DSM_CH_DEMAND] = DSM_PAGE_SIZE, [DSM_CH_BULK] = DSM_TRANSPORT_MAX_PAYLOAD,
		};
		struct dsm_fabric_config fc = {
			.mesh = tc->mesh, .first_channel = tc->first_channel,
			.nr_channels = DSM_NR_CHANNELS,
			.provider = tc->spec[6] == ':' ? tc->spec + 7 : NULL,
			.max_payload = max_payload,
			.dispatch = tc->dispatch, .lost = tc->lost, .arg = tc->arg,
		};

		return dsm_fabric_create(&fc, err);
	}
	return dsm_tcp_create(&(struct dsm_tcp_config){
		.mesh = tc->mesh, .first_channel = tc->first_channel,
		.nr_channels = DSM_NR_CHANNELS, .poll_us = tc->poll_us,
		.expecting = tc->expecting, .dispatch = tc->dispatch, .lost = tc->lost,
		.arg = tc->arg,
	}, err);
}

int dsm_create(const struct dsm_config *cfg, struct dsm **out, char *err)
{
	struct dsm_transport_config tc;
	struct dsm *d;
	unsigned n;

	*out = NULL;
	if (dsm_check_config(cfg, err)) {
		if (cfg->uffd >= 0)
			close(cfg->uffd);
		return -1;
	}
	n = mesh_nr_nodes(cfg->mesh);
	d = calloc(1, sizeof(*d));
	if (!d) {
		if (cfg->uffd >= 0)
			close(cfg->uffd);
		snprintf(err, DSM_ERR_MAX, "out of memory");
		return -1;
	}
	d->cfg = *cfg;
	d->cfg.home_start = NULL;
	d->cfg.transport = NULL; /* borrowed: dsm_create is done with it on return */
	if (!d->cfg.nr_handlers)
		d->cfg.nr_handlers = 2;
	if (!d->cfg.stop_timeout_s)
		d->cfg.stop_timeout_s = 30;
	d->mesh = cfg->mesh;
	d->rank = mesh_rank(cfg->mesh);
	d->nr_nodes = n;
	d->npages = cfg->size / DSM_PAGE_SIZE;
	d->uffd = cfg->uffd;
	d->stop_fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	deadline_cond_init(&d->cond);
	pthread_mutex_init(&d->hold_lock, NULL);
	pthread_mutex_init(&d->acks_lock, NULL);
	pthread_mutex_init(&d->token_lock, NULL);
	deadline_cond_init(&d->hold_cond);

	d->home_start = calloc(n + 1, sizeof(*d->home_start));
	d->bye = calloc(n * DSM_NR_CHANNELS, 1);
	d->handlers = calloc(d->cfg.nr_handlers, sizeof(*d->handlers));
	d->awaiting = calloc(n, sizeof(*d->awaiting));
	d->park = aligned_alloc(DSM_PAGE_SIZE, DSM_PARK_SLOTS * DSM_PAGE_SIZE);
	d->park_free = ~0ull;
	if (!d->home_start || !d->bye || !d->handlers || !d->awaiting || !d->park)
		goto oom;
	for (unsigned i = 0; i <= n; i++)
		d->home_start[i] = cfg->home_start ? cfg->home_start[i] :
				   i == n ? d->npages : d->npages / n * i;
	d->home_first = d->home_start[d->rank];
	d->home_end = d->home_start[d->rank + 1];

	d->pages = dsm_zalloc(d->npages * sizeof(*d->pages));
	d->dir = dsm_zalloc((d->home_end - d->home_first) * sizeof(*d->dir));
	if (!d->pages || !d->dir)
		goto oom;
	for (unsigned i = 0; i < DSM_STREAMS; i++)
		d->streams[i].next = UINT64_MAX; /* no stream yet: page 0 is no continuation */

	if (region_create(d, err))
		goto fail;
	tc = (struct dsm_transport_config){
		.spec = cfg->transport, .mesh = cfg->mesh, .first_channel = cfg->first_channel,
		.poll_us = cfg->recv_poll_us, .expecting = msg_expecting,
		.dispatch = msg_dispatch, .lost = msg_lost, .arg = d,
	};
	d->tr = dsm_transport_open(&tc, err);
	if (!d->tr)
		goto fail;
	*out = d;
	return 0;
oom:
	snprintf(err, DSM_ERR_MAX, "out of memory for a region of %llu pages",
		 (unsigned long long)d->npages);
fail:
	dsm_destroy(d);
	return -1;
}

int dsm_start(struct dsm *d, char *err)
{
	if (d->started) {
		snprintf(err, DSM_ERR_MAX, "the DSM is already started");
		return -1;
	}
	d->started = true;
	if (hold_start(d, err) || d->tr->ops->start(d->tr, err) || fault_start(d, err))
		return -1;
	return 0;
}

static void dsm_halt(struct dsm *d)
{
	if (!d->started)
		return;
	atomic_store(&d->stopping, true);
	d->tr->ops->stop(d->tr);
	fault_stop(d);
	hold_stop(d);
	d->started = false;
}

int dsm_stop(struct dsm *d)
{
	unsigned want = (d->nr_nodes - 1) * DSM_NR_CHANNELS;
	struct timespec deadline;
	char missing[256] = "";
	int rc = 0;

	if (!d->started)
		return atomic_load(&d->failed) ? -1 : 0;
	/* Before the first BYE goes: from then on a peer may close (msg_lost). */
	pthread_mutex_lock(&d->lock);
	d->bye_sent = true;
	pthread_mutex_unlock(&d->lock);
	for (unsigned p = 0; p < d->nr_nodes; p++)
		for (unsigned ch = 0; ch < DSM_NR_CHANNELS && p != d->rank; ch++)
			dsm_send(d, p, ch, DSM_MSG_BYE, 0, 0, 0, NULL, 0);

	deadline_in_ms(&deadline, d->cfg.stop_timeout_s * 1000ul);
	pthread_mutex_lock(&d->lock);
	while (d->bye_count < want && !atomic_load(&d->failed) && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&d->cond, &d->lock, &deadline);
	if (d->bye_count < want && !atomic_load(&d->failed))
		for (unsigned p = 0, len = 0; p < d->nr_nodes; p++)
			if (p != d->rank && !d->bye[p * DSM_NR_CHANNELS] && len < sizeof(missing) - 8)
				len += snprintf(missing + len, sizeof(missing) - len, " %u", p);
	pthread_mutex_unlock(&d->lock);
	if (missing[0])
		dsm_fail(d, d->rank, "stopping: rank(s)%s did not stop within %u s", missing,
			 d->cfg.stop_timeout_s);
	dsm_halt(d);
	return atomic_load(&d->failed) ? -1 : 0;
}

void dsm_destroy(struct dsm *d)
{
	if (!d)
		return;
	dsm_halt(d);
	if (d->tr)
		d->tr->ops->destroy(d->tr);
	region_destroy(d);
	home_free(d);
	node_free(d);
	dsm_zfree(d->dir, (d->home_end - d->home_first) * sizeof(*d->dir));
	dsm_zfree(d->pages, d->npages * sizeof(*d->pages));
	free(d->handlers);
	free((void *)d->awaiting);
	free(d->park);
	free(d->bye);
	free(d->home_start);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->hold_cond);
	pthread_mutex_destroy(&d->hold_lock);
	pthread_mutex_destroy(&d->acks_lock);
	pthread_mutex_destroy(&d->token_lock);
	free(d);
}

void *dsm_addr(const struct dsm *d)
{
	return d->base;
}

uint64_t dsm_size(const struct dsm *d)
{
	return d->npages << DSM_PAGE_SHIFT;
}

unsigned dsm_rank(const struct dsm *d)
{
	return d->rank;
}

unsigned dsm_nr_nodes(const struct dsm *d)
{
	return d->nr_nodes;
}

unsigned dsm_home_of(const struct dsm *d, uint64_t off)
{
	return dsm_home(d, off >> DSM_PAGE_SHIFT);
}

const char *dsm_error(struct dsm *d)
{
	const char *e;

	pthread_mutex_lock(&d->lock);
	e = atomic_load(&d->failed) ? d->error : NULL;
	pthread_mutex_unlock(&d->lock);
	return e;
}

const char *dsm_transport_describe(struct dsm *d)
{
	return d->tr->ops->describe(d->tr);
}

void dsm_get_stats(struct dsm *d, struct dsm_stats *st)
{
#define LOAD(f) atomic_load_explicit(&d->f, memory_order_relaxed)
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < DSM_FAULT_KINDS; i++)
		st->faults[i] = LOAD(st_faults[i]);
	for (unsigned i = 0; i < DSM_LAT_BUCKETS; i++)
		st->lat_hist[i] = LOAD(st_lat[i]);
	st->faults_joined = LOAD(st_joined);
	st->invalidations = LOAD(st_inval);
	st->downgrades = LOAD(st_downgrades);
	st->pages_sent = LOAD(st_pages_sent);
	st->pages_received = LOAD(st_pages_recv);
	st->prefetched = LOAD(st_prefetched);
	st->msgs_sent = LOAD(st_msgs_sent);
	st->msgs_received = LOAD(st_msgs_recv);
	st->bytes_sent = LOAD(st_bytes_sent);
	st->bytes_received = LOAD(st_bytes_recv);
	st->holds = LOAD(st_holds);
	st->fault_us = LOAD(st_fault_us);
#undef LOAD
}
