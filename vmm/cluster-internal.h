/*
 * The cluster instance's internals, shared by vmm/cluster*.c only.
 * docs/cluster.md is the readable version: the channels, the messages,
 * what each instance checks in them, and how the instances stop together.
 */
#ifndef GVM_VMM_CLUSTER_INTERNAL_H
#define GVM_VMM_CLUSTER_INTERNAL_H

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/wire.h"
#include "vmm/cluster.h"
#include "vmm/iobus.h"
#include "vmm/topo.h"
#include "vmm/x86/apic.h"

/* Message types: the VMM's range of common/wire.h. */
enum cl_msg {
	CL_CONFIG = WIRE_TYPE_VMM_FIRST, /* 0 -> k: the machine (payload struct cl_config) */
	CL_READY,      /* k -> 0: a0 0 built and running, 1 refused (payload: why) */
	CL_TIME_PING,  /* k -> 0: a0 sample number (counts up from 1) */
	CL_TIME_PONG,  /* 0 -> k: a0 sample, a1 host TSC, a2 CLOCK_BOOTTIME ns, read on arrival;
			  payload: rank 0's TSC step then (int64_t, vm->tsc_step) */
	CL_IPI,        /* -> the owner of vCPU a0: a1 the message (CL_IPI_*), a2 source vCPU */
	CL_DEST,       /* owner of vCPU a0 -> all: a1 APIC ID | LDR << 32, a2 DFR | flags */
	CL_DEST_ACK,   /* -> the owner of vCPU a0: its CL_DEST is applied here */
	CL_EOI,        /* k -> 0: EOI of level-triggered vector a0 */
	CL_STOP,       /* -> all: the VM ends with status a0; payload: the reason (text) */
	CL_IO_REQ,     /* k -> 0, I/O channel: vCPU's access (CL_IO_* in a0), a1 addr, a2 data */
	CL_IO_REPLY,   /* 0 -> k, I/O channel: a0 vCPU, a1 claimed (0 or 1), a2 data read */
	CL_HEARTBEAT,  /* -> all, every CL_HEARTBEAT_MS: still here */
	CL_SILENT,     /* 0 -> all: the console has been silent for a0 s, report your vCPUs */
	CL_TIME_LEAD,  /* k -> 0: my guest TSC leads yours by a0 cycles when your step was a1 */
	CL_MSG_END,
};

/* CL_IPI a1: an apic_msg whose destination the sender already resolved. */
#define CL_IPI_VECTOR(x) ((x) & 0xFF)
#define CL_IPI_MODE(x) (((x) >> 8) & 7)
#define CL_IPI_LOGICAL (1u << 11)
#define CL_IPI_LEVEL (1u << 12)
#define CL_IPI_ASSERT (1u << 13)
#define CL_IPI_KNOWN 0x3FFFu

/* CL_DEST a2: the DFR in bits 31:0 (0 in x2APIC mode), then flags */
#define CL_DEST_X2APIC (1ull << 32)

/* CL_IO_REQ a0: vCPU in bits 15:0, length (1, 2, 4, 8) 23:16, write 24, MMIO 25. */
#define CL_IO_CPU(x) ((x) & 0xFFFF)
#define CL_IO_LEN(x) (((x) >> 16) & 0xFF)
#define CL_IO_WRITE (1ull << 24)
#define CL_IO_MMIO (1ull << 25)
#define CL_IO_KNOWN ((1ull << 26) - 1)

/* CL_CONFIG: what rank 0 decided and every instance must present the same. */
#define CL_CONFIG_MAGIC 0x47564d43u /* "GVMC" */
#define CL_CONFIG_VERSION 2
#define CL_CFG_TSC_OFFSET 1u   /* tsc_offset is meaningful */

struct cl_cache {
	uint32_t level, type, line_size, ways;
	uint64_t size;
};

struct cl_config {
	uint32_t magic, version;
	uint32_t nr_nodes, nr_cpus;
	uint64_t ram_size;
	uint32_t remote_distance;
	uint32_t features_base;
	uint64_t features_add[CPUID_FEATURE_WORDS];
	uint64_t features_remove[CPUID_FEATURE_WORDS];
	uint32_t nr_caches, flags;
	struct cl_cache caches[TOPO_MAX_CACHES];
	int64_t tsc_offset;      /* rank 0: guest TSC - host TSC */
	int64_t kvmclock_offset; /* rank 0: kvmclock - CLOCK_BOOTTIME, ns */
	uint32_t tsc_khz;        /* rank 0's guest TSC rate */
	uint32_t stats;          /* 1: --stats was given to rank 0 */
	uint8_t host_distance[TOPO_MAX_LOCAL_NODES][TOPO_MAX_LOCAL_NODES];
};

/* Heartbeats; an instance silent for cluster->silent_ms while the guest runs is lost. */
#define CL_HEARTBEAT_MS 250

/*
 * Unsent bytes one connection may hold before its peer counts as gone: far
 * more than a live peer leaves unread (a frame is 56 bytes or so).
 */
#define CL_QUEUE_MAX (16u << 20)
/* At the end, the longest wait for the last frames to reach their sockets. */
#define CL_DRAIN_MS 2000

#define CL_REASON_MAX 256
#define CL_RXBUF 1024
#define CL_TIME_SAMPLES 16
/* Rank k's guest TSC against rank 0's: samples, how often (adapted), the drift aimed at. */
#define CL_TIME_RESYNC_SAMPLES 4
#define CL_TIME_RESYNC_MIN_MS 10
#define CL_TIME_RESYNC_MAX_MS 1000
#define CL_TIME_TARGET_US 10
#define CL_TIME_DRIFT_MS 10      /* GVM_TEST_TSC_PPM's steps */
/*
 * A lead of more than this is not a crystal's drift but a broken clock
 * (seconds at any TSC rate): following it would throw the guest's time ahead.
 */
#define CL_TIME_MAX_LEAD (1ll << 32)

/* A futex word: wait while it holds val (or until woken), wake everyone. */
static inline void cl_futex_wait(_Atomic uint32_t *w, uint32_t val, long timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };

	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, timeout_ms >= 0 ? &ts : NULL, NULL, 0);
}

static inline void cl_futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

/* One (peer, channel) connection; its sends go through cluster->out. */
struct cl_conn {
	struct cluster *c;
	unsigned peer, channel;
	int fd;
	struct seal *seal; /* the mesh's (--integrity), or NULL: every frame goes through it */
	pthread_t thread;
	bool started;
	atomic_bool closed;  /* the receive thread saw the end */
	_Atomic uint64_t last_rx_ms; /* when the last message arrived (control channel) */
	unsigned char buf[CL_RXBUF];
};

/* The port through which the APIC bus reaches a vCPU another instance runs. */
struct cl_port {
	struct apic_port port;
	struct cluster *c;
	unsigned cpu, owner;
};

/* rank k: a local vCPU's forwarded access, waiting for rank 0's reply. */
enum { IO_IDLE, IO_WAITING, IO_REPLIED, IO_ABORTED };
struct cl_io_slot {
	_Atomic uint32_t state;
	uint8_t data[8];
	bool claimed;
} __attribute__((aligned(64)));

/* rank 0: the thread that performs the accesses of one remote vCPU. */
struct cl_proxy {
	struct cluster *c;
	unsigned cpu, peer;
	_Atomic uint32_t pending; /* 1: req holds an access to do */
	uint64_t req_a0, req_addr, req_data;
	pthread_t thread;
	bool started;
} __attribute__((aligned(64)));

struct cl_bus_ctx {
	struct cluster *c;
	bool mmio;
};

struct cluster {
	struct mesh *mesh;
	unsigned rank, nr;
	struct vm *vm;
	pthread_mutex_t dsm_lock; /* dsm may go (NULL) while a receive thread reports a loss */
	struct dsm *dsm;
	int status_fd;
	unsigned silent_ms;       /* silence that makes an instance lost */
	struct cl_conn *conns;   /* [peer * CL_NR_OWN + ch] */
	struct outq *out;        /* the sends of every conn, same index (common/outq.h) */

	/* which rank runs each vCPU */
	uint8_t owner[TOPO_MAX_CPUS];
	unsigned nr_cpus;
	struct cl_port ports[TOPO_MAX_CPUS];

	/* DEST broadcasts of the local vCPUs: acks received */
	_Atomic uint32_t dest_acks[TOPO_MAX_CPUS];

	/* I/O forwarding */
	struct cl_bus_ctx bus_ctx[2];
	struct cl_io_slot io_slots[TOPO_MAX_CPUS];
	struct cl_proxy *proxies[TOPO_MAX_CPUS];

	/* time: rank k's samples, filled by the receive thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t ping_seq;        /* of the last sample asked for; its answer alone is taken */
	bool pong_valid;
	uint64_t pong_tsc, pong_boot;
	int64_t pong_step;
	/* rank k: rank 0's host TSC - ours when the vCPUs' offsets were set */
	int64_t tsc_base;
	uint32_t tsc_khz;         /* rank 0's */
	pthread_t clock_thread;   /* rank k, or a simulated drift: cl_clock_thread */
	/* GVM_TEST_TSC_PPM's drift: ppm set before the clock thread starts, read after t0 */
	unsigned drift_ppm;
	_Atomic uint64_t drift_t0; /* the host TSC it counts from, set by the clock thread */
	bool clock_started;

	/* rank 0: instances ready (answered: one bit per rank, each answers once) */
	unsigned ready, refused;
	bool answered[TOPO_MAX_NODES];
	char refusal[CL_REASON_MAX + 64];

	/* heartbeats: sent from cluster_start, watched from cluster_watch on */
	pthread_t beat_thread;
	bool beat_started;
	atomic_bool watching;
	atomic_bool beat_quit;

	/* the end */
	atomic_bool stopping;     /* no more traffic expected: EOF is not a loss */
	atomic_bool failed;       /* an instance was lost, or misbehaved */
	atomic_bool stop_from_peer; /* the VM's vm_stop came from a CL_STOP */
	atomic_bool stop_sent;
	int setup_status;         /* a STOP before the VM exists */
	char setup_reason[CL_REASON_MAX];
	bool setup_stopped;
};

/* Own channels: control and I/O (the DSM's follow). */
#define CL_NR_OWN 2

struct cl_conn *cl_conn(struct cluster *c, unsigned peer, unsigned ch);
int cl_send(struct cluster *c, unsigned peer, unsigned ch, uint16_t type, uint64_t a0,
	    uint64_t a1, uint64_t a2, const void *payload, uint32_t len);
const char *cl_peer_name(const struct cluster *c, unsigned peer, char *buf, size_t len);
/*
 * Check every field of a message from peer on channel (control or I/O)
 * against the machine alone (rank, nr, nr_cpus, owner): 0, or -1 with the
 * reason in why (128 bytes).  What depends on traffic in progress (a
 * second READY, a reply nobody awaits) and the clock's messages are checked
 * by their handlers.  tests/fuzz/cluster-msg.c runs it.
 */
int cl_msg_check(const struct cluster *c, unsigned peer, unsigned channel,
		 const struct wire_hdr *h, char *why);
/*
 * rank k: rank 0's CONFIG (header h, payload) as the machine, every field
 * checked, for nr instances; sender names rank 0 in err.  0, or -1 with err
 * (CLUSTER_ERR_MAX bytes).
 */
int cl_config_decode(unsigned nr, const char *sender, const struct wire_hdr *h,
		     const void *payload, struct cluster_machine *m, char *err);

/* cluster-io.c */
int cl_io_check(const struct cluster *c, unsigned peer, const struct wire_hdr *h, char *why);
bool cl_io_forward(void *dev, struct io_access *a);
int cl_io_request(struct cluster *c, unsigned peer, const struct wire_hdr *h, char *why);
int cl_io_reply(struct cluster *c, const struct wire_hdr *h, char *why);
int cl_io_start(struct cluster *c);
void cl_io_abort(struct cluster *c);
void cl_io_stop(struct cluster *c);

/* cluster-time.c */
int cl_time_ping(struct cluster *c, unsigned peer, const struct wire_hdr *h, char *why);
int cl_time_pong(struct cluster *c, const struct wire_hdr *h, const void *payload, char *why);
int cl_time_lead(struct cluster *c, unsigned peer, const struct wire_hdr *h, char *why);
/* Keep the instances' guest TSCs together from now on (cluster_watch); stop with beat_quit. */
void cl_clock_start(struct cluster *c);
void cl_clock_stop(struct cluster *c);

#endif
