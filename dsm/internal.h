/*
 * libgvdsm internals, shared by the files of dsm/ only.  docs/protocol.md
 * is the readable version of the protocol implemented here.
 *
 * Locking: every page has its own lock (a futex word in struct dsm_page)
 * that protects its local state and, at its home, its directory entry.  No
 * lock is held while sending, and at most one page lock is held at a time,
 * except by prefetch, which takes a run of locks in ascending order.
 */
#ifndef GVM_DSM_INTERNAL_H
#define GVM_DSM_INTERNAL_H

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dsm/dsm.h"
#include "dsm/transport.h"

/* Message types (common/wire.h range of the DSM). */
enum dsm_msg {
	DSM_MSG_READ = 0x0100,  /* requester -> home: read access to page a0 */
	DSM_MSG_WRITE,          /* requester -> home: write access to page a0 */
	DSM_MSG_FWD,            /* home -> owner: send page a0 to a1 & 0xffff (kind a1 >> 16), a2 acks */
	DSM_MSG_INV,            /* home -> holder: drop page a0, then ack to a1 */
	DSM_MSG_INV_ACK,        /* holder -> requester: page a0 dropped */
	DSM_MSG_PAGE,           /* home/owner -> requester: page a0 (4 KiB), a1 = flags, a2 = acks */
	DSM_MSG_ZERO,           /* home -> requester: page a0 was never touched: zeros, write access */
	DSM_MSG_GRANT,          /* home -> requester: keep your copy of page a0, a1 flags, a2 acks */
	DSM_MSG_DONE,           /* requester -> home: transaction on page a0 finished; a1: its source */
	DSM_MSG_PREFETCH,       /* requester -> home (bulk): pages [a0, a0 + a1) if cheap */
	DSM_MSG_BULK,           /* home -> requester (bulk): of [a0, a0 + a1), the first a2 pages */
	DSM_MSG_BULK_DONE,      /* requester -> home (bulk): pages [a0, a0 + a1) installed */
	DSM_MSG_BYE,            /* this node is done with the region (dsm_stop) */
	DSM_MSG_ABORT,          /* this node stops because of rank a0; payload: the reason */
	DSM_MSG_LAST = DSM_MSG_ABORT,
};

/*
 * "acks" (a2 of the replies and of FWD) is the set of nodes that will send
 * the requester an INV_ACK (bit i: rank i), so that it takes an ack from
 * those nodes only, once each.  DONE names the node the page came from (the
 * home itself for ZERO and GRANT), which the home checks against the one it
 * asked: a page from anyone else stops the DSM.
 */

/* Reply flags (a1 of PAGE and GRANT). */
#define DSM_REPLY_WRITE 1u  /* write access granted */
#define DSM_REPLY_DONE 2u   /* send DONE to the home when finished */
#define DSM_ABORT_MAX 200

enum { DSM_CH_DEMAND = 0, DSM_CH_BULK = 1 };

enum dsm_kind { DSM_KIND_READ = 0, DSM_KIND_WRITE = 1 };

/* Local access to a page. */
enum dsm_state { PG_INVALID = 0, PG_SHARED, PG_MODIFIED };

/* struct dsm_page.flags */
#define PF_PEND_READ 0x01   /* our read request is in flight */
#define PF_PEND_WRITE 0x02  /* our write request is in flight */
#define PF_REPLIED 0x04     /* the reply came; waiting for invalidation acks */
#define PF_DONE 0x08        /* tell the home when finished */
#define PF_PREFETCH 0x10    /* expected on the bulk channel */
#define PF_WANT_READ 0x20   /* a read fault waits for the prefetch */
#define PF_WANT_WRITE 0x40  /* a write fault waits for the prefetch */
#define PF_GRANT 0x80       /* the reply was a grant: no data moved */
#define PF_PENDING (PF_PEND_READ | PF_PEND_WRITE)

struct dsm_page {
	_Atomic uint32_t lock; /* 0 free, 1 held, 2 held with waiters */
	uint8_t state;
	uint8_t flags;
	uint8_t acks;          /* invalidation acks received for our pending write */
	uint8_t nacks;         /* acks to expect (once PF_REPLIED) */
	uint32_t t_us;         /* pending: fault start; else: when write access came (or pin) */
	uint16_t tid;          /* low bits of the id of the thread whose fault started the last request */
	uint8_t xflags;        /* PX_* (hold.c) */
	uint8_t parked;        /* 1 + the slot of d->park holding its data until the last ack */
	uint32_t token;        /* pending: our request's token, which its PAGE must carry back */
};
/* The per-page cost, paid only for pages touched: 20 bytes per page of the region. */
_Static_assert(sizeof(struct dsm_page) == 20, "struct dsm_page grew");

/* struct dsm_page.xflags */
#define PX_PIN 0x01          /* held for a write fault on the next page (split lock) */
#define PX_PINS_LOWER 0x02   /* our pending write pins the previous page */
#define PX_AFTER_PIN 0x04    /* was pinned: held a little after the pin ended */

/* Directory entry, at the page's home. */
enum { DIR_IDLE = 0, DIR_SENDING, DIR_WAIT_DONE, DIR_BULK, DIR_HELD };

struct dsm_req {
	struct dsm_req *next;
	uint16_t from;
	uint8_t kind;
	uint32_t token;         /* the requester's, for the PAGE that answers it */
};

/* All zero: never touched (no holder), idle.  24 bytes per page homed here. */
struct dsm_dir {
	uint64_t holders;       /* nodes with a valid copy, the owner included; 0: never touched */
	uint16_t owner;         /* the node that supplies the data (if holders) */
	uint16_t cur;           /* requester of the transaction in progress */
	uint16_t src;           /* the node that sends it the page */
	uint8_t busy;
	uint8_t excl;           /* the owner has write access */
	struct dsm_req *queue;  /* requests waiting for the transaction to finish */
};
_Static_assert(sizeof(struct dsm_dir) == 24, "struct dsm_dir grew");

/* A faulting thread's sequential-read detector (prefetch.c), by thread id. */
#define DSM_STREAMS 32
struct dsm_stream {
	_Atomic uint64_t next;   /* the page its next fault would be on */
	_Atomic uint32_t window; /* pages asked for last time */
};

struct dsm {
	struct dsm_config cfg;
	struct mesh *mesh;
	unsigned rank, nr_nodes;
	uint64_t npages;
	uint64_t *home_start;   /* nr_nodes + 1 */
	uint64_t home_first, home_end; /* our own home range */
	unsigned char *base;
	struct dsm_page *pages;
	struct dsm_dir *dir;    /* [pg - home_first] */
	int uffd;
	int stop_fd;            /* eventfd: handler threads exit */
	struct dsm_transport *tr;

	pthread_t *handlers;
	unsigned nr_started;
	bool started;

	atomic_bool failed, stopping;
	pthread_mutex_t lock;   /* the stop barrier and the error text */
	pthread_cond_t cond;
	unsigned bye_count;
	uint8_t *bye;           /* [peer * DSM_NR_CHANNELS + channel] */
	bool bye_sent;          /* dsm_stop began: a peer may close once it has every BYE */
	char error[DSM_ERR_MAX];

	struct dsm_stream streams[DSM_STREAMS];
	_Atomic uint32_t *awaiting; /* [peer]: our requests to that home not answered yet */
	/*
	 * Invalidation acks by sender, for our pending writes that have seen
	 * an ack or a reply announcing acks but not the last ack yet (node.c);
	 * taken under a page lock, never the other way round.
	 */
	pthread_mutex_t acks_lock;
	struct dsm_ackset *acksets;
	/*
	 * Request tokens drawn ahead, 64 per getrandom (arc4random here makes
	 * a syscall per call, on the fault path); taken under a page lock.
	 */
	pthread_mutex_t token_lock;
	uint32_t tokens[64];
	unsigned nr_tokens;
	unsigned nr_acksets, cap_acksets;
	/* Pages that came before their invalidation acks wait here (node.c). */
#define DSM_PARK_SLOTS 64
	unsigned char *park;        /* DSM_PARK_SLOTS pages */
	_Atomic uint64_t park_free; /* bit i: slot i is free */

	/*
	 * Threads that faulted for write access, by the low bits of their id
	 * (hold.c): enough to tell whether a writer has run since its page
	 * came.  Relaxed atomics: a torn entry only ends a hold early or late.
	 */
#define DSM_WRITERS 64
	struct dsm_writer {
		_Atomic uint32_t tid;       /* 0: free */
		_Atomic uint32_t fault_us;  /* its last fault */
		_Atomic uint64_t cpu_ns;    /* its CPU time when write access came */
	} writers[DSM_WRITERS];

	/* Requests for held pages, redone by the hold thread (hold.c). */
	pthread_mutex_t hold_lock;
	pthread_cond_t hold_cond;
	struct held *held;
	pthread_t hold_thread;
	bool hold_started, hold_stop;
	bool fatal_pending;     /* on_fatal to call (by the hold thread) */

	/* Statistics: relaxed atomics, summed by dsm_get_stats. */
	_Atomic uint64_t st_faults[DSM_FAULT_KINDS];
	_Atomic uint64_t st_joined, st_inval, st_downgrades, st_pages_sent, st_pages_recv,
		st_prefetched, st_msgs_sent, st_msgs_recv, st_bytes_sent, st_bytes_recv,
		st_holds, st_fault_us;
	_Atomic uint64_t st_lat[DSM_LAT_BUCKETS];
};

/* An event of the fault path, when the caller asked for a trace (dsm.h). */
#define DSM_TRACE(d, point, peer, type, pg)                                                 \
	do {                                                                                \
		if (__builtin_expect((d)->cfg.trace != NULL, 0))                            \
			dsm_trace_add((d)->cfg.trace, (point), (d)->rank, (peer), (type), (pg)); \
	} while (0)

#define STAT_ADD(d, field, n) atomic_fetch_add_explicit(&(d)->field, (n), memory_order_relaxed)

/* Per-page lock: a futex word, a short spin before sleeping. */
static inline void pg_lock(struct dsm_page *p)
{
	uint32_t c = 0;

	if (atomic_compare_exchange_strong(&p->lock, &c, 1))
		return;
	for (int i = 0; i < 100; i++) {
		__builtin_ia32_pause();
		c = 0;
		if (atomic_load_explicit(&p->lock, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong(&p->lock, &c, 1))
			return;
	}
	if (c != 2)
		c = atomic_exchange(&p->lock, 2);
	while (c != 0) {
		syscall(SYS_futex, &p->lock, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
		c = atomic_exchange(&p->lock, 2);
	}
}

static inline void pg_unlock(struct dsm_page *p)
{
	if (atomic_exchange(&p->lock, 0) == 2)
		syscall(SYS_futex, &p->lock, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static inline uint32_t dsm_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)(ts.tv_sec * 1000000ull + ts.tv_nsec / 1000);
}

static inline unsigned dsm_home(const struct dsm *d, uint64_t pg)
{
	unsigned lo = 0, hi = d->nr_nodes; /* home_start[lo] <= pg < home_start[hi] */

	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;
		if (d->home_start[mid] <= pg)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static inline bool dsm_is_home(const struct dsm *d, uint64_t pg)
{
	return pg >= d->home_first && pg < d->home_end;
}

static inline struct dsm_dir *dsm_dir(struct dsm *d, uint64_t pg)
{
	return &d->dir[pg - d->home_first];
}

static inline void *dsm_page_addr(const struct dsm *d, uint64_t pg)
{
	return d->base + (pg << DSM_PAGE_SHIFT);
}

/* dsm.c */
void dsm_fail(struct dsm *d, unsigned culprit, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *dsm_peer_name(const struct dsm *d, unsigned peer, char *buf, size_t len);
int dsm_send(struct dsm *d, unsigned to, unsigned ch, uint16_t type, uint64_t a0, uint64_t a1,
	     uint64_t a2, const void *payload, uint32_t len);
/* The same with a request's token in the header's seq (READ, WRITE, FWD, PAGE). */
int dsm_send_token(struct dsm *d, unsigned to, unsigned ch, uint16_t type, uint32_t token,
		   uint64_t a0, uint64_t a1, uint64_t a2, const void *payload, uint32_t len);
void dsm_account_fault(struct dsm *d, enum dsm_fault_kind kind, uint32_t start_us);

/* region.c: the mapping and userfaultfd */
int region_create(struct dsm *d, char *err);
void region_destroy(struct dsm *d);
int region_copy(struct dsm *d, uint64_t pg, uint64_t n, const void *src, bool wp, bool wake);
int region_zeropage(struct dsm *d, uint64_t pg);
int region_protect(struct dsm *d, uint64_t pg, uint64_t n, bool wp, bool wake);
int region_drop(struct dsm *d, uint64_t pg, uint64_t n);

/* fault.c: the handler threads */
int fault_start(struct dsm *d, char *err);
void fault_stop(struct dsm *d);

/*
 * The handlers of messages (home_request, home_done, node_reply, node_ack,
 * node_fwd, node_inv, prefetch_*) return 0; -1 when the message is wrong
 * for the page's state, the sender's fault, with why; or -ENOMEM when this
 * node has no memory to handle it, its own fault (msg_dispatch names it).
 */

/* home.c: the directory */
int home_request(struct dsm *d, uint64_t pg, unsigned from, enum dsm_kind kind, uint32_t token,
		 char *why);
int home_done(struct dsm *d, uint64_t pg, unsigned from, unsigned src, char *why);
void home_complete(struct dsm *d, uint64_t pg);
void home_free(struct dsm *d);

/* node.c: the requester, owner and holder roles */
void node_fault(struct dsm *d, uint64_t pg, bool write, uint32_t ptid);
void node_request(struct dsm *d, uint64_t pg, bool write, uint32_t token);
int node_reply(struct dsm *d, uint64_t pg, unsigned from, uint16_t type, uint32_t flags,
	       uint64_t acks, uint32_t token, const void *data, char *why);
int node_ack(struct dsm *d, uint64_t pg, unsigned from, char *why);
int node_fwd(struct dsm *d, uint64_t pg, unsigned to, enum dsm_kind kind, uint64_t acks,
	     uint32_t token, char *why);
uint32_t node_pend(struct dsm *d, struct dsm_page *lp, bool write);
void node_free(struct dsm *d);
int node_inv(struct dsm *d, uint64_t pg, unsigned ack_to, char *why);

/* hold.c: split-lock pins and the anti ping-pong hold */
bool hold_check(struct dsm *d, struct dsm_page *lp, uint32_t *until);
void hold_on_fault(struct dsm *d, uint32_t tid, uint32_t now_us);
void hold_on_write_access(struct dsm *d, struct dsm_page *lp);
int hold_fwd(struct dsm *d, uint64_t pg, unsigned to, enum dsm_kind kind, uint64_t acks,
	     uint32_t token, uint32_t until);
int hold_home(struct dsm *d, uint64_t pg, uint32_t until);
bool hold_pin_lower(struct dsm *d, uint64_t pg, uint16_t tid);
void hold_unpin_lower(struct dsm *d, uint64_t pg);
bool hold_notify_fatal(struct dsm *d);
int hold_start(struct dsm *d, char *err);
void hold_stop(struct dsm *d);

/* prefetch.c: sequential read-ahead on the bulk channel */
void prefetch_on_fault(struct dsm *d, uint64_t pg, uint32_t ptid);
int prefetch_request(struct dsm *d, unsigned from, uint64_t first, unsigned count, char *why);
int prefetch_bulk(struct dsm *d, unsigned from, uint64_t first, unsigned count, unsigned n,
		  const void *data, char *why);
int prefetch_done(struct dsm *d, unsigned from, uint64_t first, unsigned n, char *why);

/* msg.c: validation and dispatch of incoming messages */
/*
 * Check every field of a message from peer on channel against the region's
 * shape (rank, nr_nodes, npages, home_start), not against page state: 0,
 * or -1 with the reason in why (128 bytes).  Reads nothing else of d.
 */
int msg_check(const struct dsm *d, unsigned peer, unsigned channel, const struct wire_hdr *h,
	      char *why);
bool msg_expecting(void *arg, unsigned peer, unsigned channel);
int msg_dispatch(void *arg, unsigned peer, unsigned channel, const struct wire_hdr *h,
		 const void *payload, char *why);
void msg_lost(void *arg, unsigned peer, unsigned channel, bool malformed, const char *why);

#endif
