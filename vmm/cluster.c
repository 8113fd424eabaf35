/*
 * The links between the instances of one VM: connections and their receive
 * threads, the control messages (machine description, IPIs, destination
 * changes, EOIs, the end) and failures.  I/O forwarding is in cluster-io.c,
 * the clocks in cluster-time.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <x86intrin.h>

#include "common/deadline.h"
#include "common/log.h"
#include "common/mesh.h"
#include "common/outq.h"
#include "vmm/cluster-internal.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86/ioapic.h"

/* --- connections ----------------------------------------------------------- */

struct cl_conn *cl_conn(struct cluster *c, unsigned peer, unsigned ch)
{
	if (peer >= c->nr || peer == c->rank || ch >= CL_NR_OWN)
		return NULL;
	return &c->conns[peer * CL_NR_OWN + ch];
}

const char *cl_peer_name(const struct cluster *c, unsigned peer, char *buf, size_t len)
{
	return mesh_peer_name(c->mesh, peer, buf, len);
}

int cl_send(struct cluster *c, unsigned peer, unsigned ch, uint16_t type, uint64_t a0,
	    uint64_t a1, uint64_t a2, const void *payload, uint32_t len)
{
	struct cl_conn *cn = cl_conn(c, peer, ch);
	struct wire_hdr h = wire_hdr_make(type, c->rank, len);
	char name[96];
	int rc;

	if (!cn)
		return -EINVAL;
	h.arg[0] = a0;
	h.arg[1] = a1;
	h.arg[2] = a2;
	rc = outq_send(c->out, peer * CL_NR_OWN + ch, &h, len ? payload : NULL);
	if (rc == -ENOBUFS) {
		/* Drop it now: what we queue for it would otherwise hold up the end. */
		outq_set_down(c->out, peer * CL_NR_OWN + ch);
		cluster_fail(c, peer, "%s lost: it has not read what was sent to it for too long "
			     "(%u MiB waiting)", cl_peer_name(c, peer, name, sizeof(name)),
			     CL_QUEUE_MAX >> 20);
		shutdown(cn->fd, SHUT_RDWR);
	} else if (rc && !(rc == -ECONNRESET && outq_is_down(c->out, peer * CL_NR_OWN + ch)) &&
		   !atomic_load(&c->stopping)) {
		cluster_fail(c, peer, "%s lost: cannot send to it: %s",
			     cl_peer_name(c, peer, name, sizeof(name)), strerror(-rc));
	}
	return rc;
}

struct cluster *cluster_create(struct mesh *mesh, int status_fd, unsigned silent_ms)
{
	struct cluster *c = calloc(1, sizeof(*c));
	char err[OUTQ_ERR_MAX];

	if (!c)
		die("out of memory");
	c->mesh = mesh;
	c->rank = mesh_rank(mesh);
	c->nr = mesh_nr_nodes(mesh);
	c->status_fd = status_fd;
	c->silent_ms = silent_ms;
	pthread_mutex_init(&c->lock, NULL);
	deadline_cond_init(&c->cond);
	pthread_mutex_init(&c->dsm_lock, NULL);
	c->conns = calloc((size_t)c->nr * CL_NR_OWN, sizeof(*c->conns));
	if (!c->conns)
		die("out of memory");
	c->out = outq_new(c->nr * CL_NR_OWN, CL_QUEUE_MAX, err);
	if (!c->out)
		die("%s", err);
	for (unsigned p = 0; p < c->nr; p++)
		for (unsigned ch = 0; ch < CL_NR_OWN; ch++) {
			struct cl_conn *cn = &c->conns[p * CL_NR_OWN + ch];

			cn->c = c;
			cn->peer = p;
			cn->channel = ch;
			cn->fd = mesh_fd(mesh, p, ch);
			cn->seal = mesh_seal(mesh, p, ch);
			if (p != c->rank && cn->fd >= 0)
				outq_attach(c->out, p * CL_NR_OWN + ch, cn->fd, cn->seal);
		}
	/* From here on: rank 0 sends the machine before the receive threads start. */
	if (outq_start(c->out, err))
		die("%s", err);
	c->bus_ctx[0] = (struct cl_bus_ctx){ c, false };
	c->bus_ctx[1] = (struct cl_bus_ctx){ c, true };
	return c;
}

void cluster_status(struct cluster *c, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	if (c->status_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%u ", c->rank);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - 1 - n, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(line) - 1)
		return;
	line[n++] = '\n';
	/* one write of a short line: atomic on a pipe shared by every instance */
	if (write(c->status_fd, line, n) < 0)
		pr_debug("status: %s", strerror(errno));
}

/* --- the end --------------------------------------------------------------- */

static void cl_wake_waiters(struct cluster *c)
{
	cl_io_abort(c);
	for (unsigned i = 0; i < TOPO_MAX_CPUS; i++)
		cl_futex_wake(&c->dest_acks[i]);
	pthread_mutex_lock(&c->lock);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void cluster_stop_all(struct cluster *c, int status, const char *reason)
{
	uint32_t len = reason ? strnlen(reason, CL_REASON_MAX) : 0;

	if (atomic_exchange(&c->stop_sent, true))
		return;
	for (unsigned p = 0; p < c->nr; p++)
		if (p != c->rank)
			cl_send(c, p, CLUSTER_CH_CTRL, CL_STOP, (uint64_t)status & 0xFF, 0, 0,
				reason, len);
}

/* Set while a receive thread applies another instance's CL_STOP. */
static __thread bool applying_peer_stop;

static void hook_stopped(void *arg, int status, const char *reason)
{
	struct cluster *c = arg;

	if (applying_peer_stop)
		atomic_store(&c->stop_from_peer, true);
	cl_wake_waiters(c);
	cluster_stop_all(c, status, reason);
}

void cluster_fail(struct cluster *c, unsigned culprit, const char *fmt, ...)
{
	char msg[CL_REASON_MAX];
	va_list ap;

	(void)culprit;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (atomic_exchange(&c->failed, true))
		return;
	/* the DSM names the instance it lost, and noticed first */
	pthread_mutex_lock(&c->dsm_lock);
	if (!c->dsm || !dsm_error(c->dsm))
		pr_err("%s", msg);
	pthread_mutex_unlock(&c->dsm_lock);
	if (c->vm) {
		vm_stop(c->vm, VM_STATUS_FAILED, "%s", msg);
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (!c->setup_stopped) {
		c->setup_stopped = true;
		c->setup_status = VM_STATUS_FAILED;
		snprintf(c->setup_reason, sizeof(c->setup_reason), "%s", msg);
	}
	pthread_mutex_unlock(&c->lock);
	cl_wake_waiters(c);
	cluster_stop_all(c, VM_STATUS_FAILED, msg);
}

bool cluster_failed(struct cluster *c)
{
	return atomic_load(&c->failed);
}

void cluster_set_dsm(struct cluster *c, struct dsm *d)
{
	pthread_mutex_lock(&c->dsm_lock);
	c->dsm = d;
	pthread_mutex_unlock(&c->dsm_lock);
}

bool cluster_stopped_by_peer(struct cluster *c)
{
	return atomic_load(&c->stop_from_peer);
}

void cluster_dsm_fatal(void *arg, const char *msg)
{
	struct cluster *c = arg;

	/* the DSM printed it already, naming the rank at fault */
	if (atomic_exchange(&c->failed, true))
		return;
	if (c->vm) {
		vm_stop(c->vm, VM_STATUS_FAILED, "%s", msg);
		return;
	}
	cl_wake_waiters(c);
	cluster_stop_all(c, VM_STATUS_FAILED, msg);
}

int cluster_setup_stopped(struct cluster *c, int *status, const char **reason)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = c->setup_stopped;
	*status = c->setup_status;
	*reason = c->setup_reason;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* A reason from another instance: printable ASCII only. */
static void cl_text(char *out, size_t size, const void *in, uint32_t len)
{
	const unsigned char *s = in;
	size_t n = 0;

	for (uint32_t i = 0; i < len && n + 1 < size; i++)
		out[n++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	out[n] = '\0';
}

static void cl_remote_stop(struct cluster *c, unsigned peer, int status, const char *reason)
{
	if (c->vm) {
		applying_peer_stop = true;
		if (reason[0])
			vm_stop(c->vm, status, "rank %u: %s", peer, reason);
		else
			vm_stop(c->vm, status, NULL);
		applying_peer_stop = false;
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (!c->setup_stopped) {
		c->setup_stopped = true;
		c->setup_status = status;
		snprintf(c->setup_reason, sizeof(c->setup_reason), "rank %u: %s", peer,
			 reason[0] ? reason : "stopped");
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* --- the machine ----------------------------------------------------------- */

int cluster_send_config(struct cluster *c, const struct cluster_machine *m, char *err)
{
	struct cl_config cfg = {
		.magic = CL_CONFIG_MAGIC, .version = CL_CONFIG_VERSION,
		.nr_nodes = m->nr_nodes, .nr_cpus = m->nr_cpus, .ram_size = m->ram_size,
		.remote_distance = m->remote_distance,
		.features_base = m->features.base,
		.nr_caches = m->nr_caches,
		.flags = m->has_tsc_offset ? CL_CFG_TSC_OFFSET : 0,
		.tsc_offset = m->tsc_offset, .kvmclock_offset = m->kvmclock_offset,
		.tsc_khz = m->tsc_khz, .stats = m->stats,
	};

	memcpy(cfg.features_add, m->features.add, sizeof(cfg.features_add));
	memcpy(cfg.features_remove, m->features.remove, sizeof(cfg.features_remove));
	memcpy(cfg.host_distance, m->host_distance, sizeof(cfg.host_distance));
	for (unsigned i = 0; i < m->nr_caches && i < TOPO_MAX_CACHES; i++)
		cfg.caches[i] = (struct cl_cache){
			.level = m->caches[i].level, .type = m->caches[i].type,
			.line_size = m->caches[i].line_size, .ways = m->caches[i].ways,
			.size = m->caches[i].size,
		};
	for (unsigned p = 1; p < c->nr; p++)
		if (cl_send(c, p, CLUSTER_CH_CTRL, CL_CONFIG, 0, 0, 0, &cfg, sizeof(cfg))) {
			char name[96];

			snprintf(err, CLUSTER_ERR_MAX, "cannot send the machine to %s",
				 cl_peer_name(c, p, name, sizeof(name)));
			return -1;
		}
	return 0;
}

#define CFGERR(...) (snprintf(err, CLUSTER_ERR_MAX, __VA_ARGS__), -1)

static int cl_check_config(unsigned nr, const struct cl_config *cfg, char *err)
{
	char ferr[CPUID_ERR_MAX];
	struct cpuid_features f;

	if (cfg->magic != CL_CONFIG_MAGIC || cfg->version != CL_CONFIG_VERSION)
		return CFGERR("rank 0 speaks another version of gvm (machine description "
			      "0x%08x version %u, this is version %u): run the same gvm everywhere",
			      cfg->magic, cfg->version, CL_CONFIG_VERSION);
	if (!cfg->nr_nodes || cfg->nr_nodes % nr || cfg->nr_nodes / nr > TOPO_MAX_LOCAL_NODES ||
	    cfg->nr_nodes > TOPO_MAX_NODES)
		return CFGERR("rank 0 describes %u NUMA nodes for %u instances", cfg->nr_nodes,
			      nr);
	if (!cfg->nr_cpus || cfg->nr_cpus > TOPO_MAX_CPUS || cfg->nr_cpus % cfg->nr_nodes)
		return CFGERR("rank 0 describes %u vCPUs for %u NUMA nodes", cfg->nr_cpus,
			      cfg->nr_nodes);
	if (!cfg->ram_size || cfg->ram_size % cfg->nr_nodes ||
	    (cfg->ram_size / cfg->nr_nodes) % TOPO_NODE_ALIGN)
		return CFGERR("rank 0 describes %llu bytes of RAM for %u NUMA nodes",
			      (unsigned long long)cfg->ram_size, cfg->nr_nodes);
	if (cfg->features_base != CPUID_BASE_HOST &&
	    cfg->features_base != CPUID_BASE_CONSERVATIVE)
		return CFGERR("rank 0 describes an unknown CPU feature set %u", cfg->features_base);
	f.base = cfg->features_base;
	memcpy(f.add, cfg->features_add, sizeof(f.add));
	memcpy(f.remove, cfg->features_remove, sizeof(f.remove));
	if (cpuid_features_check(&f, ferr))
		return CFGERR("rank 0's CPU features: %s", ferr);
	if (cfg->nr_caches > TOPO_MAX_CACHES)
		return CFGERR("rank 0 describes %u caches", cfg->nr_caches);
	if (cfg->flags & ~CL_CFG_TSC_OFFSET)
		return CFGERR("rank 0's machine has unknown flags 0x%x", cfg->flags);
	if (cfg->stats > 1 || !cfg->tsc_khz || cfg->tsc_khz > 100000000)
		return CFGERR("rank 0's machine is malformed (stats %u, TSC %u kHz)", cfg->stats,
			      cfg->tsc_khz);
	return 0;
}

int cl_config_decode(unsigned nr, const char *sender, const struct wire_hdr *h,
		     const void *payload, struct cluster_machine *m, char *err)
{
	struct cl_config cfg;

	if (h->type == CL_STOP && h->len <= CL_REASON_MAX) {
		char reason[CL_REASON_MAX + 1];

		cl_text(reason, sizeof(reason), payload, h->len);
		return CFGERR("rank 0 stopped: %s", reason[0] ? reason : "no reason given");
	}
	if (h->type != CL_CONFIG || h->len != sizeof(cfg) || h->flags || h->seq || h->arg[0] ||
	    h->arg[1] || h->arg[2])
		return CFGERR("%s sent a malformed machine description (type 0x%x, %u bytes)",
			      sender, h->type, h->len);
	memcpy(&cfg, payload, sizeof(cfg));
	if (cl_check_config(nr, &cfg, err))
		return -1;
	*m = (struct cluster_machine){
		.nr_cpus = cfg.nr_cpus, .nr_nodes = cfg.nr_nodes, .ram_size = cfg.ram_size,
		.remote_distance = cfg.remote_distance, .nr_caches = cfg.nr_caches,
		.stats = cfg.stats, .has_tsc_offset = cfg.flags & CL_CFG_TSC_OFFSET,
		.tsc_offset = cfg.tsc_offset, .kvmclock_offset = cfg.kvmclock_offset,
		.tsc_khz = cfg.tsc_khz,
	};
	memcpy(m->host_distance, cfg.host_distance, sizeof(m->host_distance));
	m->features.base = cfg.features_base;
	memcpy(m->features.add, cfg.features_add, sizeof(m->features.add));
	memcpy(m->features.remove, cfg.features_remove, sizeof(m->features.remove));
	for (unsigned i = 0; i < cfg.nr_caches; i++)
		m->caches[i] = (struct topo_cache){
			.level = cfg.caches[i].level, .type = cfg.caches[i].type,
			.size = cfg.caches[i].size, .line_size = cfg.caches[i].line_size,
			.ways = cfg.caches[i].ways,
		};
	return 0;
}

/* Has the caller's signal descriptor become readable (a signal is pending)? */
static bool cl_signalled(int sig_fd)
{
	struct pollfd p = { .fd = sig_fd, .events = POLLIN };

	return sig_fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

int cluster_recv_config(struct cluster *c, struct cluster_machine *m, unsigned timeout_s,
			int sig_fd, char *err)
{
	struct cl_conn *cn = cl_conn(c, 0, CLUSTER_CH_CTRL);
	struct pollfd p[2] = { { .fd = cn->fd, .events = POLLIN },
			       { .fd = sig_fd, .events = POLLIN } };
	struct wire_hdr h;
	char why[128], name[96];

	cl_peer_name(c, 0, name, sizeof(name));
	if (poll(p, sig_fd >= 0 ? 2 : 1, (int)timeout_s * 1000) <= 0)
		return CFGERR("%s sent no machine description within %u s", name, timeout_s);
	if (cl_signalled(sig_fd))
		return CFGERR("interrupted by a signal");
	if (wire_recv_sealed(cn->fd, cn->seal, 0, &h, cn->buf, sizeof(cn->buf), why))
		return CFGERR("%s lost before it described the machine: %s", name, why);
	return cl_config_decode(c->nr, name, &h, cn->buf, m, err);
}

/* --- the VM's hooks: destinations and EOIs ------------------------------ */

static void hook_dest_changed(void *arg, unsigned cpu, const struct apic_dest_state *d)
{
	struct cluster *c = arg;
	_Atomic uint32_t *acks = &c->dest_acks[cpu];
	uint32_t want = c->nr - 1, seen;

	if (!want)
		return;
	atomic_store(acks, 0);
	for (unsigned p = 0; p < c->nr; p++)
		if (p != c->rank && cl_send(c, p, CLUSTER_CH_CTRL, CL_DEST, cpu,
					    d->id | (uint64_t)d->ldr << 32,
					    d->dfr | (d->x2apic ? CL_DEST_X2APIC : 0), NULL, 0))
			return;
	/* the wake-up of a stop may fall between the check and the wait: 100 ms at most */
	while ((seen = atomic_load(acks)) < want && !vm_stopping(c->vm))
		cl_futex_wait(acks, seen, 100);
}

static void hook_eoi(void *arg, uint8_t vector)
{
	struct cluster *c = arg;

	cl_send(c, 0, CLUSTER_CH_CTRL, CL_EOI, vector, 0, 0, NULL, 0);
}

/* Only rank 0 has the console; the others' vCPUs are theirs to report. */
static void hook_silent(void *arg, unsigned silent_s)
{
	struct cluster *c = arg;

	for (unsigned p = 1; p < c->nr; p++)
		cl_send(c, p, CLUSTER_CH_CTRL, CL_SILENT, silent_s, 0, 0, NULL, 0);
}

void cluster_vm_hooks(struct cluster *c, struct vm_hooks *h)
{
	*h = (struct vm_hooks){
		.arg = c,
		.dest_changed = hook_dest_changed,
		.eoi = c->rank ? hook_eoi : NULL,
		.stopped = hook_stopped,
		.silent = c->rank ? NULL : hook_silent,
	};
}

/* --- remote vCPUs ---------------------------------------------------------- */

static void port_send(struct apic_port *port, const struct apic_msg *m)
{
	struct cl_port *cp = (struct cl_port *)port;
	uint64_t msg = m->vector | (uint64_t)m->mode << 8 | (m->logical ? CL_IPI_LOGICAL : 0) |
		       (m->level ? CL_IPI_LEVEL : 0) | (m->assert ? CL_IPI_ASSERT : 0);

	cl_send(cp->c, cp->owner, CLUSTER_CH_CTRL, CL_IPI, cp->cpu, msg,
		m->src_cpu == APIC_SRC_NONE ? UINT32_MAX : m->src_cpu, NULL, 0);
}

int cluster_attach(struct cluster *c, struct vm *vm)
{
	const struct vm_topology *t = &vm->topo;

	if (t->nr_instances != c->nr) {
		pr_err("the guest spans %u instances, but there are %u", t->nr_instances, c->nr);
		return -1;
	}
	c->nr_cpus = t->nr_cpus;
	for (unsigned i = 0; i < t->nr_cpus; i++) {
		c->owner[i] = (uint8_t)topo_instance_of_cpu(t, i);
		if (c->owner[i] == c->rank)
			continue;
		c->ports[i] = (struct cl_port){ .port.deliver = port_send, .c = c, .cpu = i,
						.owner = c->owner[i] };
		apic_bus_attach(&vm->apic, i, t->cpus[i].apic_id, &c->ports[i].port);
	}
	if (c->rank) {
		io_bus_set_forwarder(&vm->pio, cl_io_forward, &c->bus_ctx[0]);
		io_bus_set_forwarder(&vm->mmio, cl_io_forward, &c->bus_ctx[1]);
	}
	c->vm = vm;
	return 0;
}

/* --- receiving ------------------------------------------------------------- */

#define BAD(...) (snprintf(why, 128, __VA_ARGS__), -1)

/*
 * The checks of the control channel's messages that need no state but the
 * machine: cl_msg_check.  What depends on what is in progress (a second
 * READY, one DEST_ACK too many) is checked where the message is applied.
 */
static int cl_ipi_check(const struct cluster *c, unsigned peer, const struct wire_hdr *h,
			char *why)
{
	uint64_t cpu = h->arg[0], msg = h->arg[1], src = h->arg[2];
	unsigned mode = CL_IPI_MODE(msg);

	if (h->len)
		return BAD("IPI with a payload");
	if (cpu >= c->nr_cpus || c->owner[cpu] != c->rank)
		return BAD("IPI for vCPU %llu, which does not run here", (unsigned long long)cpu);
	if (msg & ~(uint64_t)CL_IPI_KNOWN)
		return BAD("IPI with unknown bits 0x%llx", (unsigned long long)msg);
	if (mode != APIC_DM_FIXED && mode != APIC_DM_LOWEST && mode != APIC_DM_NMI &&
	    mode != APIC_DM_INIT && mode != APIC_DM_SIPI)
		return BAD("IPI with delivery mode %u", mode);
	if (src == UINT32_MAX ? peer != 0 : src >= c->nr_cpus || c->owner[src] != peer)
		return BAD("IPI claiming to come from vCPU %llu", (unsigned long long)src);
	return 0;
}

static int cl_dest_check(const struct cluster *c, unsigned peer, const struct wire_hdr *h,
			 char *why)
{
	uint64_t cpu = h->arg[0], idldr = h->arg[1], dfr = h->arg[2];
	uint32_t id = (uint32_t)idldr, ldr = idldr >> 32;

	if (h->len || cpu >= c->nr_cpus || c->owner[cpu] != peer)
		return BAD("destination change of vCPU %llu, which the sender does not run",
			   (unsigned long long)cpu);
	if (dfr == CL_DEST_X2APIC) {
		/* x2APIC mode: the LDR follows from the ID; all ones is the broadcast */
		if (id == APIC_X2_BROADCAST_ID || ldr != apic_x2apic_ldr(id))
			return BAD("x2APIC destination change of vCPU %llu with APIC ID 0x%x LDR 0x%x",
				   (unsigned long long)cpu, id, ldr);
		return 0;
	}
	if (id > 0xFF || (ldr & 0x00FFFFFFu) || dfr > UINT32_MAX ||
	    (dfr & 0x0FFFFFFFu) != 0x0FFFFFFFu)
		return BAD("destination change with APIC ID 0x%x LDR 0x%x DFR 0x%llx", id, ldr,
			   (unsigned long long)dfr);
	return 0;
}

static int cl_ctrl_check(const struct cluster *c, unsigned peer, const struct wire_hdr *h,
			 char *why)
{
	if (h->flags || h->seq)
		return BAD("message 0x%x with flags 0x%x sequence %u", h->type, h->flags, h->seq);
	switch (h->type) {
	case CL_IPI:
		return cl_ipi_check(c, peer, h, why);
	case CL_DEST:
		return cl_dest_check(c, peer, h, why);
	case CL_DEST_ACK:
		if (h->len || h->arg[1] || h->arg[2] || h->arg[0] >= c->nr_cpus ||
		    c->owner[h->arg[0]] != c->rank)
			return BAD("acknowledgement for vCPU %llu, which does not run here",
				   (unsigned long long)h->arg[0]);
		return 0;
	case CL_EOI:
		if (c->rank != 0 || h->len || h->arg[0] < 16 || h->arg[0] > 255 || h->arg[1] ||
		    h->arg[2])
			return BAD("malformed EOI (vector %llu)", (unsigned long long)h->arg[0]);
		return 0;
	case CL_STOP:
		if (h->arg[0] > 255 || h->arg[1] || h->arg[2] || h->len > CL_REASON_MAX)
			return BAD("malformed stop (status %llu)", (unsigned long long)h->arg[0]);
		return 0;
	case CL_READY:
		if (c->rank != 0 || h->arg[0] > 1 || h->arg[1] || h->arg[2] ||
		    h->len > CL_REASON_MAX || (!h->arg[0] && h->len) || peer >= TOPO_MAX_NODES)
			return BAD("malformed ready message");
		return 0;
	case CL_HEARTBEAT:
		if (h->len || h->arg[0] || h->arg[1] || h->arg[2])
			return BAD("malformed heartbeat");
		return 0;
	case CL_SILENT:
		if (peer != 0 || h->len || h->arg[0] > UINT32_MAX || h->arg[1] || h->arg[2])
			return BAD("malformed console silence report (%llu s)",
				   (unsigned long long)h->arg[0]);
		return 0;
	/* The clock's: cluster-time.c checks what depends on the samples in progress. */
	case CL_TIME_PING:
		if (c->rank != 0 || h->len || h->arg[1] || h->arg[2])
			return BAD("malformed clock sample request");
		return 0;
	case CL_TIME_PONG:
		if (peer != 0 || h->len != sizeof(int64_t) || !h->arg[0])
			return BAD("malformed clock sample from rank %u", peer);
		return 0;
	case CL_TIME_LEAD:
		if (c->rank != 0 || h->len || h->arg[2] || !h->arg[0] ||
		    h->arg[0] > CL_TIME_MAX_LEAD || h->arg[1] > INT64_MAX)
			return BAD("malformed clock lead (%llu cycles)",
				   (unsigned long long)h->arg[0]);
		return 0;
	default: /* CONFIG is read by cluster_recv_config, before the receive threads */
		break;
	}
	return BAD("unexpected message type 0x%x on the control channel", h->type);
}

int cl_msg_check(const struct cluster *c, unsigned peer, unsigned channel,
		 const struct wire_hdr *h, char *why)
{
	return channel == CLUSTER_CH_CTRL ? cl_ctrl_check(c, peer, h, why)
					  : cl_io_check(c, peer, h, why);
}

static void cl_ipi(struct cluster *c, const struct wire_hdr *h)
{
	uint64_t cpu = h->arg[0], msg = h->arg[1], src = h->arg[2];
	struct apic_msg m;
	struct apic_port *port;

	m = (struct apic_msg){
		.vector = CL_IPI_VECTOR(msg), .mode = CL_IPI_MODE(msg), .shorthand = APIC_SH_NONE,
		.logical = msg & CL_IPI_LOGICAL, .level = msg & CL_IPI_LEVEL,
		.assert = msg & CL_IPI_ASSERT,
		.src_cpu = src == UINT32_MAX ? APIC_SRC_NONE : (unsigned)src,
	};
	port = c->vm->apic.port[cpu];
	if (port)
		port->deliver(port, &m);
}

static void cl_dest(struct cluster *c, unsigned peer, const struct wire_hdr *h)
{
	uint64_t cpu = h->arg[0], idldr = h->arg[1];

	struct apic_dest_state d = {
		.id = (uint32_t)idldr, .ldr = idldr >> 32, .dfr = (uint32_t)h->arg[2],
		.x2apic = h->arg[2] & CL_DEST_X2APIC,
	};

	apic_bus_set_dest(&c->vm->apic, (unsigned)cpu, &d);
	cl_send(c, peer, CLUSTER_CH_CTRL, CL_DEST_ACK, cpu, 0, 0, NULL, 0);
}

static int cl_dest_ack(struct cluster *c, const struct wire_hdr *h, char *why)
{
	uint64_t cpu = h->arg[0];

	if (atomic_fetch_add(&c->dest_acks[cpu], 1) >= c->nr - 1)
		return BAD("more acknowledgements for vCPU %llu than instances",
			   (unsigned long long)cpu);
	cl_futex_wake(&c->dest_acks[cpu]);
	return 0;
}

static int cl_ready_msg(struct cluster *c, unsigned peer, const struct wire_hdr *h,
			const void *payload, char *why)
{
	static const char none[] = "no reason given";

	pthread_mutex_lock(&c->lock);
	/* counted per rank: a second answer must not stand in for a missing one */
	if (c->answered[peer]) {
		pthread_mutex_unlock(&c->lock);
		return BAD("said ready twice");
	}
	c->answered[peer] = true;
	if (h->arg[0]) {
		char text[CL_REASON_MAX + 1];

		cl_text(text, sizeof(text), payload, h->len);
		if (!c->refused++)
			snprintf(c->refusal, sizeof(c->refusal), "rank %u: %s", peer,
				 text[0] ? text : none);
	} else {
		c->ready++;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* A message cl_msg_check accepted. */
static int cl_dispatch_ctrl(struct cluster *c, unsigned peer, const struct wire_hdr *h,
			    const void *payload, char *why)
{
	switch (h->type) {
	case CL_IPI:
		cl_ipi(c, h);
		return 0;
	case CL_DEST:
		cl_dest(c, peer, h);
		return 0;
	case CL_DEST_ACK:
		return cl_dest_ack(c, h, why);
	case CL_EOI:
		if (c->vm->ioapic)
			ioapic_eoi(c->vm->ioapic, (uint8_t)h->arg[0]);
		return 0;
	case CL_STOP: {
		char reason[CL_REASON_MAX + 1];

		cl_text(reason, sizeof(reason), payload, h->len);
		cl_remote_stop(c, peer, (int)h->arg[0], reason);
		return 0;
	}
	case CL_TIME_PING:
		return cl_time_ping(c, peer, h, why);
	case CL_TIME_PONG:
		return cl_time_pong(c, h, payload, why);
	case CL_TIME_LEAD:
		return cl_time_lead(c, peer, h, why);
	case CL_READY:
		return cl_ready_msg(c, peer, h, payload, why);
	case CL_SILENT:
		if (c->vm)
			vm_ask_report(c->vm, (unsigned)h->arg[0]);
		return 0;
	}
	return 0;
}

/* A message cl_msg_check accepted: a request at rank 0, a reply elsewhere. */
static int cl_dispatch_io(struct cluster *c, unsigned peer, const struct wire_hdr *h, char *why)
{
	return h->type == CL_IO_REQ ? cl_io_request(c, peer, h, why) : cl_io_reply(c, h, why);
}

static void *cl_rx_thread(void *arg)
{
	struct cl_conn *cn = arg;
	struct cluster *c = cn->c;
	char why[128], name[96];
	struct wire_hdr h;

	for (;;) {
		if (wire_recv_sealed(cn->fd, cn->seal, (int)cn->peer, &h, cn->buf, sizeof(cn->buf),
				     why)) {
			/*
			 * Once the VM stops, an instance that stopped too may leave
			 * first; one lost meanwhile shows in the DSM's collective stop.
			 */
			if (!atomic_load(&c->stopping) && !(c->vm && vm_stopping(c->vm)))
				cluster_fail(c, cn->peer, "%s lost: %s",
					     cl_peer_name(c, cn->peer, name, sizeof(name)), why);
			else
				pr_debug("%s closed: %s",
					 cl_peer_name(c, cn->peer, name, sizeof(name)), why);
			break;
		}
		atomic_store_explicit(&cn->last_rx_ms, deadline_now_ms(), memory_order_relaxed);
		if (atomic_load(&c->stopping))
			continue;
		if (cl_msg_check(c, cn->peer, cn->channel, &h, why) ||
		    (cn->channel == CLUSTER_CH_CTRL ? cl_dispatch_ctrl(c, cn->peer, &h, cn->buf, why)
						    : cl_dispatch_io(c, cn->peer, &h, why))) {
			cluster_fail(c, cn->peer, "%s sent a malformed message: %s",
				     cl_peer_name(c, cn->peer, name, sizeof(name)), why);
			shutdown(cn->fd, SHUT_RDWR);
			break;
		}
	}
	atomic_store(&cn->closed, true);
	return NULL;
}

/*
 * Every CL_HEARTBEAT_MS: a heartbeat to every instance, and, once watching,
 * a look at when each last spoke.  A hung instance keeps its connections
 * open (its kernel still acknowledges), so only silence shows it.
 */
static void *cl_beat_thread(void *arg)
{
	struct cluster *c = arg;
	char name[96];

	pthread_setname_np(pthread_self(), "heartbeat");
	while (!atomic_load(&c->beat_quit) && !atomic_load(&c->stopping)) {
		uint64_t now = deadline_now_ms();

		for (unsigned p = 0; p < c->nr; p++) {
			struct cl_conn *cn = cl_conn(c, p, CLUSTER_CH_CTRL);
			uint64_t last;

			if (!cn)
				continue;
			cl_send(c, p, CLUSTER_CH_CTRL, CL_HEARTBEAT, 0, 0, 0, NULL, 0);
			last = atomic_load_explicit(&cn->last_rx_ms, memory_order_relaxed);
			if (atomic_load(&c->watching) && !atomic_load(&c->stopping) &&
			    !(c->vm && vm_stopping(c->vm)) && now > last + c->silent_ms)
				cluster_fail(c, p, "%s lost: nothing from it for %.1f s",
					     cl_peer_name(c, p, name, sizeof(name)),
					     (now - last) / 1000.0);
		}
		usleep(CL_HEARTBEAT_MS * 1000);
	}
	return NULL;
}

void cluster_watch(struct cluster *c)
{
	uint64_t now = deadline_now_ms();

	/* the silence counts from now, not from the last message of the set-up */
	for (unsigned p = 0; p < c->nr; p++) {
		struct cl_conn *cn = cl_conn(c, p, CLUSTER_CH_CTRL);

		if (cn && atomic_load(&cn->last_rx_ms) < now)
			atomic_store(&cn->last_rx_ms, now);
	}
	atomic_store(&c->watching, true);
	cl_clock_start(c);
}

int cluster_start(struct cluster *c)
{
	/* The proxies first: the receive threads hand them I/O from the start. */
	if (cl_io_start(c))
		return -1;
	for (unsigned p = 0; p < c->nr; p++)
		for (unsigned ch = 0; ch < CL_NR_OWN; ch++) {
			struct cl_conn *cn = cl_conn(c, p, ch);
			int rc;

			/* I/O goes between rank 0 and the others only */
			if (!cn || (ch == CLUSTER_CH_IO && p != 0 && c->rank != 0))
				continue;
			rc = pthread_create(&cn->thread, NULL, cl_rx_thread, cn);
			if (rc) {
				pr_err("cannot start a receive thread: %s", strerror(rc));
				return -1;
			}
			cn->started = true;
		}
	if (c->nr > 1) {
		int rc = pthread_create(&c->beat_thread, NULL, cl_beat_thread, c);

		if (rc) {
			pr_err("cannot start the heartbeat thread: %s", strerror(rc));
			return -1;
		}
		c->beat_started = true;
	}
	return 0;
}

int cluster_ready(struct cluster *c, const char *why)
{
	return cl_send(c, 0, CLUSTER_CH_CTRL, CL_READY, why ? 1 : 0, 0, 0, why,
		       why ? strnlen(why, CL_REASON_MAX) : 0);
}

int cluster_wait_ready(struct cluster *c, unsigned timeout_s, int sig_fd, char *err)
{
	uint64_t deadline = deadline_now_ms() + timeout_s * 1000ull;
	bool signalled = false;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	/* in slices: a signal shows on sig_fd, which no condition variable wakes for */
	while (c->ready + c->refused < c->nr - 1 && !c->refused && !atomic_load(&c->failed) &&
	       !c->setup_stopped && !(c->vm && vm_stopping(c->vm)) && deadline_now_ms() < deadline &&
	       !(signalled = cl_signalled(sig_fd))) {
		struct timespec ts;

		deadline_in_ms(&ts, 200);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	if (signalled) {
		snprintf(err, CLUSTER_ERR_MAX, "interrupted by a signal");
		ret = -1;
	} else if (c->refused) {
		snprintf(err, CLUSTER_ERR_MAX, "%s", c->refusal);
		ret = -1;
	} else if (c->setup_stopped || atomic_load(&c->failed)) {
		snprintf(err, CLUSTER_ERR_MAX, "%s",
			 c->setup_stopped ? c->setup_reason : "an instance was lost");
		ret = -1;
	} else if (c->vm && vm_stopping(c->vm)) {
		snprintf(err, CLUSTER_ERR_MAX, "the VM was stopped before every instance was ready");
		ret = -1;
	} else if (c->ready < c->nr - 1) {
		snprintf(err, CLUSTER_ERR_MAX, "%u of %u instances not ready after %u s",
			 c->nr - 1 - c->ready, c->nr - 1, timeout_s);
		ret = -1;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

bool cluster_refused(struct cluster *c)
{
	bool r;

	pthread_mutex_lock(&c->lock);
	r = c->refused;
	pthread_mutex_unlock(&c->lock);
	return r;
}

void cluster_linger(struct cluster *c, unsigned timeout_s)
{
	struct cl_conn *cn = cl_conn(c, 0, CLUSTER_CH_CTRL);

	if (!cn)
		return;
	if (!cn->started) {
		/* no receive thread: read (and drop) until rank 0 is gone */
		struct pollfd p = { .fd = cn->fd, .events = POLLIN };
		struct wire_hdr h;
		char why[128];

		while (poll(&p, 1, (int)timeout_s * 1000) > 0 &&
		       !wire_recv_sealed(cn->fd, cn->seal, 0, &h, cn->buf, sizeof(cn->buf), why))
			;
		return;
	}
	for (unsigned i = 0; i < timeout_s * 20 && !atomic_load(&cn->closed); i++)
		usleep(50 * 1000);
}

void cluster_quiesce(struct cluster *c)
{
	atomic_store(&c->stopping, true);
}

void cluster_stop(struct cluster *c)
{
	atomic_store(&c->stopping, true);
	atomic_store(&c->beat_quit, true);
	cl_clock_stop(c);
	if (c->beat_started) {
		pthread_join(c->beat_thread, NULL);
		c->beat_started = false;
	}
	/* The last frames (a STOP and its reason) go before the connections close. */
	outq_drain(c->out, CL_DRAIN_MS);
	mesh_shutdown(c->mesh);
	for (unsigned i = 0; i < c->nr * CL_NR_OWN; i++)
		if (c->conns[i].started) {
			pthread_join(c->conns[i].thread, NULL);
			c->conns[i].started = false;
		}
	/* after the receive threads, which post I/O requests to the proxies */
	cl_io_stop(c);
	outq_stop(c->out);
}

void cluster_destroy(struct cluster *c)
{
	if (!c)
		return;
	cluster_stop(c);
	outq_free(c->out);
	free(c->conns);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->dsm_lock);
	free(c);
}
