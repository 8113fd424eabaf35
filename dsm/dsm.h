/*
 * libgvdsm: one range of memory made coherent across the node instances of a
 * VM, page by page, on a stock kernel with userfaultfd.
 *
 * Every instance maps a region of the same size.  Each page has a home node
 * (a contiguous range of pages per node, matching the guest NUMA nodes) that
 * keeps its directory: who owns it and who holds read copies.  Coherence is
 * single writer / multiple readers with invalidation (Ivy), sequentially
 * consistent.  docs/protocol.md describes the messages, states and races.
 *
 * Life cycle:
 *   dsm_create()  map the region and register it with userfaultfd;
 *                 nothing runs yet, and the region must not be touched;
 *   dsm_start()   start the fault handlers and the receive threads: the
 *                 region is usable (also as a KVM memslot) on return;
 *   dsm_stop()    collective: tells every peer this instance is done and
 *                 serves their requests until every peer has said the same;
 *   dsm_destroy() release everything (also after a failed or no start;
 *                 without dsm_stop, the peers see this instance as lost).
 *
 * The mapping is the DSM's: read and write it, but never madvise
 * (MADV_DONTNEED, MADV_FREE: a balloon must not), mprotect, mremap or
 * munmap any part of it.  A page dropped behind the DSM's back is still
 * present in its books, so the next access to it would wait forever.
 *
 * A fatal error (a peer lost, a protocol violation) stops the DSM: on_fatal
 * is called once, from an internal thread that holds no DSM lock, with a
 * message naming the rank and its host:port.  From then on an access to a
 * page that is not present blocks until the process exits or the DSM is
 * destroyed (the region is unmapped: the access faults, SIGSEGV or EFAULT
 * from KVM_RUN, and never sees data the DSM did not give), so on_fatal
 * should stop the users of the region (a VMM stops its vCPUs and exits
 * non-zero).  on_fatal may exit the process.
 */
#ifndef GVM_DSM_DSM_H
#define GVM_DSM_DSM_H

#include <stdbool.h>
#include <stdint.h>

struct mesh;

#define DSM_PAGE_SIZE 4096u
#define DSM_PAGE_SHIFT 12
/* The copyset is a 64-bit mask (as many nodes as vmm/topo.h allows). */
#define DSM_MAX_NODES 64
/*
 * Mesh channels the DSM uses, from cfg.first_channel on: demand traffic
 * (requests, replies, invalidations), and bulk transfers (prefetch), so that
 * a demand fault never queues behind a bulk transfer.
 */
#define DSM_NR_CHANNELS 2
#define DSM_ERR_MAX 512
/* Fault latency histogram: bucket i counts faults of [2^i, 2^(i+1)) µs; bucket 0 also < 1 µs. */
#define DSM_LAT_BUCKETS 24

struct dsm_config {
	/* Borrowed, must outlive the dsm: rank and nr_nodes come from it. */
	struct mesh *mesh;
	unsigned first_channel;
	uint64_t size; /* bytes: > 0, a multiple of DSM_PAGE_SIZE, the same on every node */
	/*
	 * nr_nodes + 1 page numbers: node i homes pages [home_start[i],
	 * home_start[i + 1]); home_start[0] = 0 and home_start[nr_nodes] =
	 * size / DSM_PAGE_SIZE.  A node may home no page.  NULL: equal split,
	 * the remainder on the last node.  Copied by dsm_create.
	 */
	const uint64_t *home_start;
	/*
	 * A descriptor of /dev/userfaultfd opened by someone allowed to (the
	 * Slurm plugin, as root, for an unprivileged instance): the dsm asks
	 * it for a userfaultfd of this process (one that sees kernel-mode
	 * faults, KVM's).  Or a userfaultfd this process created, not yet
	 * initialised with UFFDIO_API.  The dsm owns the descriptor from
	 * dsm_create on, error or not.  -1: open /dev/userfaultfd or call
	 * userfaultfd(2) here (needs the rights to).
	 */
	int uffd;
	int numa_node;        /* host NUMA node for the pages homed here, or -1 */
	unsigned nr_handlers; /* fault handler threads; 0: 2 */
	/*
	 * Busy-poll budgets in µs before a thread blocks: fault handlers on
	 * the userfaultfd, receive threads on their socket.  Spinning trades
	 * CPU for wake-up latency; on a machine with fewer cores than busy
	 * threads it loses.  0: block at once.
	 */
	unsigned handler_poll_us;
	unsigned recv_poll_us;
	/*
	 * Policies, each measured by bench-dsm:
	 * excl_read: a read fault on a page nobody but its owner holds is
	 *   granted write access (the owner's copy moves), saving the second
	 *   fault of read-modify-write; never-touched pages are always
	 *   granted write access, whatever this says.
	 * prefetch_pages: largest read-ahead window for sequential read
	 *   faults, sent on the bulk channel, at most 64 (the default);
	 *   0 disables prefetch.
	 * hold_us: a page granted write access is kept at least this long
	 *   before it is given away (anti ping-pong), at most 10 s.  0: give at once.
	 * hold_progress_us: a page granted write access is kept until the
	 *   thread that faulted for it has run (its CPU time moved), at most
	 *   this long: on a host whose cores are busy, a writer woken but not
	 *   yet scheduled would otherwise lose the page before it could write,
	 *   again and again.  At most 10 s; 0: off; default 20 ms.
	 */
	bool excl_read;
	unsigned prefetch_pages;
	unsigned hold_us;
	unsigned hold_progress_us;
	/* NULL, or where to record the fault path (below): a measuring aid. */
	struct dsm_trace *trace;
	/*
	 * What carries the messages, the same on every node: NULL or "tcp",
	 * the mesh's own connections; "fabric" or "fabric:PROVIDER", libfabric
	 * (dsm/transport.h), with the first provider that reaches other hosts
	 * or the one named.  Read by dsm_create only.
	 */
	const char *transport;
	/* Seconds dsm_stop waits for every peer to stop; 0: 30. */
	unsigned stop_timeout_s;
	void (*on_fatal)(void *arg, const char *msg);
	void *arg;
};

/* Fills the defaults (everything the VMM does not need to choose). */
void dsm_config_init(struct dsm_config *cfg);

enum dsm_fault_kind {
	DSM_FAULT_READ,       /* read fault, page fetched from another node */
	DSM_FAULT_WRITE,      /* write fault on a page not held, fetched */
	DSM_FAULT_UPGRADE,    /* write fault on a read copy: copies invalidated, no data */
	DSM_FAULT_ZERO,       /* never-touched page: zero-filled, no data moved */
	DSM_FAULT_LOCAL,      /* resolved at this node (its home) without a message */
	DSM_FAULT_KINDS,
};

struct dsm_stats {
	uint64_t faults[DSM_FAULT_KINDS];
	uint64_t faults_joined;       /* a fault on a page already being fetched */
	uint64_t invalidations;       /* copies dropped on request */
	uint64_t downgrades;          /* write access given up for a read copy */
	uint64_t pages_sent, pages_received;
	uint64_t prefetched;          /* pages received ahead of a fault */
	uint64_t msgs_sent, msgs_received;
	uint64_t bytes_sent, bytes_received;
	uint64_t holds;               /* requests delayed by a hold (hold.c) */
	uint64_t lat_hist[DSM_LAT_BUCKETS]; /* faults resolved by a message, by latency */
	uint64_t fault_us;            /* their latencies added up: time threads waited */
};

/*
 * A trace of the fault path, for a latency breakdown (bench-dsm
 * --breakdown): with cfg.trace set, each fault read by a handler, message
 * sent (before and after the send) and received, and page mapped is
 * appended, stamped with CLOCK_MONOTONIC (comparable between the processes
 * of one host), until cap events.  Several nodes may share one buffer in
 * shared memory.  Costs two clock reads per message when on.
 */
enum dsm_trace_point {
	DSM_TP_FAULT,   /* type: 1 for a write fault, 0 for a read; peer: the home */
	DSM_TP_SEND,    /* type: the wire message type (dsm/internal.h); peer: to */
	DSM_TP_SENT,
	DSM_TP_RECV,    /* peer: from */
	DSM_TP_MAPPED,  /* the page is mapped for the faulting access; type: the reply's */
	DSM_TP_USER,    /* the caller's own events */
};

struct dsm_trace_event {
	uint64_t ns;
	uint64_t pg;
	uint16_t type;
	uint8_t point, rank, peer;
};

struct dsm_trace {
	_Atomic uint32_t n;   /* events appended, may pass cap: only cap are kept */
	uint32_t cap;
	struct dsm_trace_event ev[];
};

/* A message type's name (DSM_TP_SEND, _SENT, _RECV), "?" if none. */
const char *dsm_msg_name(uint16_t type);
void dsm_trace_add(struct dsm_trace *t, enum dsm_trace_point point, unsigned rank, unsigned peer,
		   uint16_t type, uint64_t pg);

struct dsm;

/*
 * Check cfg, map the region, register it with userfaultfd and bind the home
 * range to cfg->numa_node.  Returns 0, or -1 with the reason in err
 * (DSM_ERR_MAX bytes).
 */
int dsm_create(const struct dsm_config *cfg, struct dsm **out, char *err);
int dsm_start(struct dsm *d, char *err);
/*
 * Collective stop (see above).  Returns 0; -1 with dsm_error() set when a
 * peer was lost or did not stop within stop_timeout_s.
 */
int dsm_stop(struct dsm *d);
void dsm_destroy(struct dsm *d);

void *dsm_addr(const struct dsm *d);
uint64_t dsm_size(const struct dsm *d);
unsigned dsm_rank(const struct dsm *d);
unsigned dsm_nr_nodes(const struct dsm *d);
/* The home node of the page containing byte offset off (off < size). */
unsigned dsm_home_of(const struct dsm *d, uint64_t off);
void dsm_get_stats(struct dsm *d, struct dsm_stats *st);
/* The first fatal error, or NULL while there is none. */
const char *dsm_error(struct dsm *d);
/* What carries the DSM's messages, for the user: "tcp", or the fabric provider and domain. */
const char *dsm_transport_describe(struct dsm *d);

#endif
