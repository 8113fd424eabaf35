/*
 * A model of libgvdsm's coherence protocol as implemented in dsm/ (home.c,
 * node.c, prefetch.c, hold.c, msg.c), for spin.  docs/protocol.md, section
 * "The protocol model", says what is modelled and what is abstracted;
 * tests/model/model.t runs it.
 *
 * 3 nodes x 2 pages, both pages homed on node 0 (so that prefetch, which
 * stays within one home's range, has a window of two pages), two channels
 * per ordered pair of nodes (DEMAND and BULK), each a FIFO; no order
 * between different channels or different pairs.
 *
 * Granularity: one step of a node is what one of its threads does under a
 * page lock followed by the sends that come after it (every send goes into
 * a FIFO at once).  Steps of a node's threads interleave with each other
 * and with the other nodes.  The one send that is a step of its own is
 * DONE to a remote home (node_send_done: sched_yield, then send), so that
 * the node's next request may overtake it, as it can in the code.
 *
 * Names follow the code: message types DSM_MSG_*, local states PG_*, page
 * flags PF_*, directory states DIR_*, inline functions named after the C
 * functions they stand for.  Every check the code makes on a message
 * (msg_check, node_reply, node_ack, node_fwd, node_inv, home_start,
 * home_request, home_done, prefetch_bulk, prefetch_done) is an assert: a
 * correct protocol never makes a node fail with "protocol error".
 *
 * Invariants (checked after every step, see check()):
 *  - single writer / multiple readers: a MODIFIED copy is the only valid copy;
 *  - every read returns the last write: every mapped (readable) copy holds
 *    the value of the last write to the page (writes count modulo V);
 *  - one owner: the directory's owner is one of its holders, and an
 *    exclusive owner is the only holder;
 * and when nothing can move any more (timeout, quiescent()): every request
 * was answered and every transaction ended (no flag, no queue, no message,
 * no held request left), and the directory matches the copies.  There is a
 * bounded number of faults (FAULTS), so every run ends: together with the
 * non-progress-cycle search (no cycle at all), "every request answered"
 * holds for every run within the bound.
 *
 * Options (spin -DNAME):
 *  FAULTS=k     faults in all (default 5)
 *  EXCL_READ    the excl_read option of the DSM
 *  NO_HOLD      hold_us = 0 (pins only); default: hold_us > 0
 *  NO_PARK_FULL never run out of park slots (default: explore both)
 *  BUG_NO_INVALIDATE  mutation: a write invalidates no other copy
 *  BUG_NO_BULK_BUSY   mutation: a prefetched page is not kept busy until BULK_DONE
 *  BUG_EARLY_DONE     mutation: a write's DONE goes with the reply, before its last ack
 *  BUG_READ_AT_HOME   mutation: the home answers a READ from its own memory even
 *                     when its copy was dropped (a stale page)
 *  BUG_ACK_FROM_ANYONE mutation: the set of acks the home announces to itself names
 *                     another node than the one it invalidates (same count: a count of
 *                     acks, as the protocol had before, would not notice)
 */

#define N 3
#define P 2
#define HOME(p) 0
#define V 3          /* values of a page: writes count modulo V */
#define CAP 4        /* messages a FIFO may hold (a send to a full one is an error) */
#define QMAX 3       /* requests queued at the home, per page */
#define NONE 255

#ifndef FAULTS
#define FAULTS 5
#endif
#ifdef EXCL_READ
#define EXCL 1
#else
#define EXCL 0
#endif
#ifdef NO_PARK_FULL
#define PARK_FULL 0
#else
#define PARK_FULL 1
#endif

/* enum dsm_msg (dsm/internal.h); BYE and ABORT are not modelled */
mtype = { READ, WRITE, FWD, INV, INV_ACK, PAGE, ZERO, GRANT, DONE, PREFETCH, BULK, BULK_DONE,
	  NOREPLY };

/* channels (DSM_CH_*) */
#define DEMAND 0
#define BULKCH 1
/* enum dsm_kind */
#define KREAD 0
#define KWRITE 1
/* enum dsm_state */
#define PG_INVALID 0
#define PG_SHARED 1
#define PG_MODIFIED 2
/* struct dsm_page.flags */
#define PF_PEND_READ 1
#define PF_PEND_WRITE 2
#define PF_REPLIED 4
#define PF_DONE 8
#define PF_PREFETCH 16
#define PF_WANT_READ 32
#define PF_WANT_WRITE 64
#define PF_GRANT 128
#define PF_PENDING 3
#define PF_WANT 96
/* directory busy states */
#define DIR_IDLE 0
#define DIR_SENDING 1
#define DIR_WAIT_DONE 2
#define DIR_BULK 3
#define DIR_HELD 4
/* reply flags */
#define DSM_REPLY_WRITE 1
#define DSM_REPLY_DONE 2
/* held requests (hold.c struct held) */
#define HI_NONE 0
#define HI_HOME 1
#define HI_FWD 2

/*
 * One FIFO per (sender, receiver, channel): index of sender s to receiver r.
 * Fields: type, page (first page for the bulk messages), a1, a2, d where
 *   READ, WRITE, INV_ACK: -
 *   DONE: a1 = the node the page came from (the home itself for ZERO and GRANT)
 *   FWD: a1 = requester | kind << 4 (the code: << 16), a2 = acks
 *   INV: a1 = ack to
 *   PAGE, ZERO, GRANT: a1 = flags, a2 = acks, d = the page's value (PAGE)
 * "acks" is the set of nodes (bit i: node i) that owe the requester an INV_ACK.
 *   PREFETCH: a1 = count;  BULK: a1 = count, a2 = n sent, d = values (2 bits each)
 *   BULK_DONE: a1 = n
 */
#define CH(s, r, c) ((((r) * 2 + ((s) + N - (r)) % N - 1) * 2) + (c))
chan ch[12] = [CAP] of { mtype, byte, byte, byte, byte };

/* Per node and page: struct dsm_page, the copy's value, DONE to send, a held FWD. */
#define I(n, p) ((n) * P + (p))
byte st[N * P];          /* PG_* (the mapping: INVALID unmapped, SHARED read-only, MODIFIED writable) */
byte fl[N * P];          /* PF_* */
byte got[N * P];         /* struct dsm_ackset.got: the nodes whose INV_ACK came (lp->acks: how many) */
byte want[N * P];        /* .want: the nodes the reply names (lp->nacks: how many) */
byte asrc[N * P];        /* .src: the node the reply came from, for the DONE of the last ack */
bool parked[N * P];      /* the data waits in a park slot for the last ack */
byte pval[N * P];        /* the parked data */
byte val[N * P];         /* the value of the mapped copy */
bool hot[N * P];         /* hold_check would hold it (if MODIFIED): hold_us, pin or after-pin not over */
bool wrote[N * P];       /* the guest wrote since the copy became writable (bounds the writes) */
byte donep[N * P];       /* node_send_done: DONE to send to the (remote) home: 1 + its source, or 0 */
byte hitem[N * P];       /* HI_*: a request held here (hold.c), redone by the hold thread */
byte hto[N * P];
byte hkind[N * P];
byte hacks[N * P];
bool pfpend[N];          /* prefetch_on_fault to run after a read fault on page 0 */
byte faults = FAULTS;    /* faults left to take (all nodes) */
byte streams = 1;        /* prefetch windows asked by streams from below page 0 */
byte last[P];            /* the value of the last write */

/* struct dsm_dir, at the home */
byte holders[P];
byte owner[P];
byte cur[P];
byte dsrc[P];            /* e->src: the node that sends the page to cur (home_start) */
byte busy[P];
bool excl[P];
byte qlen[P];
byte qent[P * QMAX];     /* queued request: from | kind << 2 */
#define Q(p, j) ((p) * QMAX + (j))

/* Scratch of one step (every step is atomic): not part of the state. */
hidden byte pg, a1, a2, dv, from, chn;
hidden mtype mt;
hidden byte ix, k, j, cp, cpl, tmp, act;
hidden byte pl_to, pl_rflags, pl_ann, pl_inv, pl_fwd, pl_fkind, pl_data, pl_rc;
hidden byte pl_cafter;
hidden mtype pl_reply;
hidden byte s_kind, s_others, hc_from, hc_kind, hc_j;
hidden byte r_write, r_complete, r_done, r_park, r_src;
hidden byte f_data, f_flags;
hidden byte pi_q, pi_n, pr_n, pr_i, pr_q, pr_data, pb_i, pb_ask, pb_askw, pa_first;
hidden byte pb_waited;
hidden byte ck_p, ck_n, ck_mod, ck_valid;

/*
 * Vacuity probes: REACH(k) counts the transitions of the search that pass
 * there; pan prints the counts when it exits ("probe k: count"), and
 * tests/model/model.t fails if a mechanism was never exercised:
 *  1 a FWD held at its owner          9 an INV_ACK before the reply
 *  2 a request held at the home      10 an INV while our upgrade is in flight
 *  3 data parked until the last ack  11 a FWD(write) with invalidations
 *  4 data mapped read-only, acks due 12 a GRANT with invalidations
 *  5 a BULK with pages               13 the hold thread restarts a home queue
 *  6 a page not sent, asked on demand 14 a BULK with fewer pages than asked
 *  7 prefetch_ahead                  15 the home's own fault served by a FWD
 *  8 a request overtaking its DONE   16 the end: nothing can move any more
 * 17 a DONE naming an owner, not the home, as its source (checked against e->src)
 * 18 an early INV_ACK checked against the set its reply names
 */
#define NPROBES 19
c_code {
	unsigned long reach_hits[NPROBES];
	static void reach_report(void) __attribute__((destructor));
	static void reach_report(void)
	{
		int i;

		for (i = 1; i < NPROBES; i++)
			printf("probe %d: %lu\n", i, reach_hits[i]);
	}
}
#define REACH(id) c_code { reach_hits[id]++; }

/* how many nodes a set names (N = 3) */
#define POP(x) (((x) & 1) + (((x) >> 1) & 1) + (((x) >> 2) & 1))

#define HOLDING(n, p) (st[I(n, p)] == PG_MODIFIED && hot[I(n, p)])

inline send(s_, r_, c_, t_, x0, x1, x2, x3)
{
	printf("MSC: %d -> %d ch%d %e pg %d (%d, %d, %d)\n", s_, r_, c_, t_, x0, x1, x2, x3);
	assert(nfull(ch[CH(s_, r_, c_)]));
	ch[CH(s_, r_, c_)]!t_, x0, x1, x2, x3
}

/* State and mapping change together; node_finish stamps t_us (hold_us), a drop clears the pins. */
inline setst(sn, sp, sv)
{
	st[I(sn, sp)] = sv;
	if
	:: sv == PG_MODIFIED ->
		wrote[I(sn, sp)] = 0;
#ifndef NO_HOLD
		hot[I(sn, sp)] = 1
#else
		skip
#endif
	:: else -> hot[I(sn, sp)] = 0
	fi
}

/* ---------------------------------------------------------------- home.c */

/* home_start: decide the transaction of a request of hf (page lock held), into the plan. */
inline home_start(hp, hf, hk)
{
	pl_to = hf; pl_reply = NOREPLY; pl_rflags = 0; pl_ann = 0; pl_inv = 0;
	pl_fwd = NONE; pl_fkind = 0; pl_cafter = 0; pl_data = 0;
	s_kind = hk;
	/* "read request for page, of which rank holds a copy" */
	assert(!(s_kind == KREAD && (holders[hp] & (1 << hf))));
	/* "write request for page, which rank can already write" */
	assert(!(s_kind == KWRITE && owner[hp] == hf && excl[hp]));
	cur[hp] = hf;
	if
	:: holders[hp] == 0 ->
		/* never touched: zeros, write access */
		owner[hp] = hf; holders[hp] = 1 << hf; excl[hp] = 1;
		pl_reply = ZERO; pl_rflags = DSM_REPLY_WRITE
	:: else ->
		if
		:: EXCL && s_kind == KREAD && holders[hp] == (1 << owner[hp]) -> s_kind = KWRITE
		:: else -> skip
		fi;
		if
		:: s_kind == KREAD ->
			if
#ifdef BUG_READ_AT_HOME
			:: true ->
#else
			:: (holders[hp] & (1 << HOME(hp))) != 0 ->
#endif
				if
				:: st[I(HOME(hp), hp)] == PG_MODIFIED -> setst(HOME(hp), hp, PG_SHARED)
				:: else -> skip
				fi;
#ifndef BUG_READ_AT_HOME
				assert(st[I(HOME(hp), hp)] != PG_INVALID);
#endif
				pl_data = val[I(HOME(hp), hp)]; pl_reply = PAGE
			:: else -> pl_fwd = owner[hp]; pl_fkind = KREAD
			fi;
			excl[hp] = 0; holders[hp] = holders[hp] | (1 << hf)
		:: else ->
			if
			:: (holders[hp] & (1 << hf)) != 0 -> pl_reply = GRANT;
				if
				:: hf != HOME(hp) && (holders[hp] & ~(1 << hf) & ~(1 << HOME(hp))) != 0 -> REACH(12)
				:: else -> skip
				fi
			:: else ->
				if
				:: (holders[hp] & (1 << HOME(hp))) != 0 ->
					assert(st[I(HOME(hp), hp)] != PG_INVALID);
					pl_data = val[I(HOME(hp), hp)]; pl_reply = PAGE
				:: else -> pl_fwd = owner[hp]; pl_fkind = KWRITE
				fi
			fi;
			pl_rflags = DSM_REPLY_WRITE;
			s_others = holders[hp] & ~(1 << hf);
			if
			:: pl_fwd != NONE -> s_others = s_others & ~(1 << pl_fwd)
			:: else -> skip
			fi;
			if
			:: (s_others & (1 << HOME(hp))) != 0 ->
				/* our copy goes before anyone can write the page */
				setst(HOME(hp), hp, PG_INVALID);
				s_others = s_others & ~(1 << HOME(hp))
			:: else -> skip
			fi;
#ifdef BUG_NO_INVALIDATE
			s_others = 0;
#endif
			pl_inv = s_others;
			/* the set the reply or FWD announces */
			pl_ann = s_others;
#ifdef BUG_ACK_FROM_ANYONE
			/*
			 * mutation: replying to itself (no msg_check on the way), the home
			 * names the other remote node than the one it invalidates (as many acks)
			 */
			if
			:: hf == HOME(hp) && pl_fwd == NONE && s_others == 2 -> pl_ann = 4
			:: hf == HOME(hp) && pl_fwd == NONE && s_others == 4 -> pl_ann = 2
			:: else -> skip
			fi;
#endif
			owner[hp] = hf; holders[hp] = 1 << hf; excl[hp] = 1
		fi
	fi;
	/* out: e->src, the node the requester gets the page from */
	if
	:: pl_fwd != NONE -> dsrc[hp] = pl_fwd
	:: else -> dsrc[hp] = HOME(hp)
	fi;
	if
	:: hf == HOME(hp) ->
		busy[hp] = DIR_WAIT_DONE; pl_rflags = pl_rflags | DSM_REPLY_DONE
	:: hf != HOME(hp) && (pl_fwd != NONE || pl_inv != 0) ->
		busy[hp] = DIR_WAIT_DONE; pl_rflags = pl_rflags | DSM_REPLY_DONE
	:: else ->
		busy[hp] = DIR_SENDING; pl_cafter = 1
	fi
}

/* home_try_start: pl_rc 0 started, 1 held (back at the head of the queue). */
inline home_try_start(hp, hf, hk)
{
	if
	:: hf == HOME(hp) || !HOLDING(HOME(hp), hp) ->
		home_start(hp, hf, hk); pl_rc = 0
	:: else ->
		assert(qlen[hp] < QMAX);
		j = qlen[hp];
		do
		:: j > 0 -> qent[Q(hp, j)] = qent[Q(hp, j - 1)]; j--
		:: else -> break
		od;
		qent[Q(hp, 0)] = hf | (hk << 2); qlen[hp]++;
		busy[hp] = DIR_HELD; pl_rc = 1;
		REACH(2)
	fi
}

inline hold_home(hp)
{
	assert(hitem[I(HOME(hp), hp)] == HI_NONE);
	hitem[I(HOME(hp), hp)] = HI_HOME
}

/* home_run: send what the plan says (the home's own reply is a local call). */
inline home_run(hp)
{
	k = 0;
	do
	:: k < N ->
		if
		:: (pl_inv & (1 << k)) != 0 -> send(HOME(hp), k, DEMAND, INV, hp, pl_to, 0, 0)
		:: else -> skip
		fi;
		k++
	:: else -> break
	od;
	if
	:: pl_fwd != NONE ->
		if
		:: pl_fkind == KWRITE && pl_inv != 0 -> REACH(11)  /* a moved page and invalidations */
		:: else -> skip
		fi;
		if
		:: pl_to == HOME(hp) -> REACH(15)
		:: else -> skip
		fi;
		send(HOME(hp), pl_fwd, DEMAND, FWD, hp, pl_to | (pl_fkind << 4), pl_ann, 0)
	:: else -> skip
	fi;
	if
	:: pl_reply != NOREPLY && pl_to == HOME(hp) ->
		node_reply(HOME(hp), hp, HOME(hp), pl_reply, pl_rflags, pl_ann, pl_data)
	:: pl_reply != NOREPLY && pl_to != HOME(hp) ->
		send(HOME(hp), pl_to, DEMAND, pl_reply, hp, pl_rflags, pl_ann, pl_data)
	:: else -> skip
	fi
}

/* home_complete: end the transaction on hp and start the queued ones, in order. */
inline home_complete(hp)
{
	do
	:: true ->
		busy[hp] = DIR_IDLE;
		dsrc[hp] = 0;                    /* dead until the next home_start: cleared to keep the state small */
		if
		:: qlen[hp] == 0 -> break
		:: else ->
			hc_from = qent[Q(hp, 0)] & 3; hc_kind = qent[Q(hp, 0)] >> 2;
			hc_j = 0;
			do
			:: hc_j + 1 < qlen[hp] -> qent[Q(hp, hc_j)] = qent[Q(hp, hc_j + 1)]; hc_j++
			:: else -> break
			od;
			qlen[hp]--; qent[Q(hp, qlen[hp])] = 0;
			home_try_start(hp, hc_from, hc_kind);
			if
			:: pl_rc == 1 -> hold_home(hp); break
			:: else ->
				home_run(hp);
				if
				:: !pl_cafter -> break
				:: else -> skip
				fi
			fi
		fi
	od
}

/*
 * home_complete runs at the end of a step, for every page whose
 * transaction the step ended (cpl), lowest page first: a DONE or BULK_DONE
 * at the home, a transaction that ended once its reply was sent, a held
 * request to redo, and a DONE of the home to itself (node_send_done ->
 * home_done, a local call made from home_run, node_reply or node_ack).  In
 * the code these are nested calls; each is the last thing its caller does
 * (a home_complete loop stops right after a home_run that replied to the
 * home itself; prefetch_done ends the pages of a run in ascending order),
 * so running them after the step's handler does them in the same order.
 */
inline flush_cpl()
{
	do
	:: cpl != 0 ->
		if
		:: (cpl & 1) != 0 -> cp = 0
		:: else -> cp = 1
		fi;
		cpl = cpl & ~(1 << cp);
		home_complete(cp)
	:: else -> break
	od
}

inline home_request(hp, hf, hk)
{
	if
	:: busy[hp] != DIR_IDLE ->
		j = 0;
		do
		:: j < qlen[hp] ->
			/* "second request for page while the first is in progress" */
			assert((qent[Q(hp, j)] & 3) != hf); j++
		:: else -> break
		od;
		assert(qlen[hp] < QMAX);
		if
		:: busy[hp] == DIR_WAIT_DONE && cur[hp] == hf -> REACH(8)   /* overtook its DONE */
		:: else -> skip
		fi;
		qent[Q(hp, qlen[hp])] = hf | (hk << 2); qlen[hp]++
	:: else ->
		home_try_start(hp, hf, hk);
		if
		:: pl_rc == 1 -> hold_home(hp)
		:: else ->
			home_run(hp);
			if
			:: pl_cafter -> cpl = cpl | (1 << hp)
			:: else -> skip
			fi
		fi
	fi
}

inline home_done(hp, hf, hsrc)
{
	/* "DONE for page, which has no transaction of rank in progress" */
	assert(busy[hp] == DIR_WAIT_DONE && cur[hp] == hf);
	/* "page came to rank from rank, not from rank" */
	assert(hsrc == dsrc[hp]);
	if
	:: hsrc != HOME(hp) -> REACH(17)
	:: else -> skip
	fi;
	cpl = cpl | (1 << hp)
}

/* ---------------------------------------------------------------- node.c */

inline node_send_done(nn, dp, dsrc_)
{
	if
	:: HOME(dp) == nn -> home_done(dp, nn, dsrc_)
	:: else ->
		assert(donep[I(nn, dp)] == 0);
		donep[I(nn, dp)] = 1 + dsrc_
	fi
}

/* node_finish: the fault is resolved; r_done: the home wants DONE. */
inline node_finish(nn, fp)
{
	r_done = (fl[I(nn, fp)] & PF_DONE) != 0;
	fl[I(nn, fp)] = fl[I(nn, fp)] & ~(PF_PENDING | PF_REPLIED | PF_DONE | PF_GRANT);
	/* dead until the next request sets them again (node_ackset_drop): cleared to keep the state small */
	got[I(nn, fp)] = 0; want[I(nn, fp)] = 0; asrc[I(nn, fp)] = 0
}

inline node_reply(nn, rp, rfrom, rtype, rflags, rn, rdata)
{
	ix = I(nn, rp);
	/* the checks of node_reply ("reply 0x.. for page .. from rank ..: ...") */
	assert((fl[ix] & PF_PENDING) != 0);          /* no request of ours is in progress */
	assert((fl[ix] & PF_REPLIED) == 0);          /* it was already answered */
	r_write = (rflags & DSM_REPLY_WRITE) != 0;
	if
	:: rtype == GRANT -> assert(st[ix] == PG_SHARED && r_write)  /* a grant needs a read copy */
	:: else -> assert(st[ix] == PG_INVALID)      /* a copy is already mapped here */
	fi;
	assert(!((rtype == ZERO || !r_write) && rn != 0));
	assert(!(rtype == ZERO && !r_write));
	/* "a page from another node than its home must be reported DONE" */
	assert(rfrom == HOME(rp) || (rflags & DSM_REPLY_DONE) != 0);
	/* "an invalidation ack came from a node it does not name" */
	assert((got[ix] & ~rn) == 0);
	if
	:: got[ix] != 0 -> REACH(18)
	:: else -> skip
	fi;
	fl[ix] = fl[ix] | PF_REPLIED;
	if
	:: (rflags & DSM_REPLY_DONE) != 0 -> fl[ix] = fl[ix] | PF_DONE
	:: else -> skip
	fi;
	if
	:: rtype == GRANT -> fl[ix] = fl[ix] | PF_GRANT
	:: else -> skip
	fi;
	/* the ackset: the acks still to come are checked against it; lp->acks == nacks */
	want[ix] = rn; asrc[ix] = rfrom;
	r_complete = (POP(got[ix]) == POP(rn));
	r_done = 0;
	if
	:: r_complete -> node_finish(nn, rp)
	:: else -> skip
	fi;
	if
	:: rtype == PAGE ->
		r_park = 0;
		if
		:: r_write && !r_complete ->
			if
			:: r_park = 1                 /* a park slot is free */
			:: PARK_FULL -> skip          /* all DSM_PARK_SLOTS taken (by other pages) */
			fi
		:: else -> skip
		fi;
		if
		:: r_park -> parked[ix] = 1; pval[ix] = rdata; REACH(3)
		:: else ->
			/* read-only (and DONTWAKE) until the last ack when acks are missing */
			val[ix] = rdata;
			if
			:: r_write && r_complete -> setst(nn, rp, PG_MODIFIED)
			:: r_write && !r_complete -> setst(nn, rp, PG_SHARED); REACH(4)
			:: else -> setst(nn, rp, PG_SHARED)
			fi
		fi
	:: rtype == ZERO -> val[ix] = 0; setst(nn, rp, PG_MODIFIED)
	:: rtype == GRANT ->
		if
		:: r_complete -> setst(nn, rp, PG_MODIFIED)
		:: else -> skip
		fi
	fi;
#ifdef BUG_EARLY_DONE
	/* mutation: the requester reports the end of its write with the reply, acks missing */
	if
	:: !r_complete && (fl[ix] & PF_DONE) != 0 -> fl[ix] = fl[ix] & ~PF_DONE; r_done = 1
	:: else -> skip
	fi;
#endif
	if
	:: r_done -> node_send_done(nn, rp, rfrom)
	:: else -> skip
	fi
}

inline node_ack(nn, ap, afrom)
{
	ix = I(nn, ap);
	/* "unexpected invalidation ack" */
	assert((fl[ix] & PF_PEND_WRITE) != 0 &&
	       !((fl[ix] & PF_REPLIED) != 0 && POP(got[ix]) >= POP(want[ix])));
	/* "a second one from that node" */
	assert(afrom != nn && (got[ix] & (1 << afrom)) == 0);
	/* "the home did not ask that node to drop the page" */
	assert((fl[ix] & PF_REPLIED) == 0 || (want[ix] & (1 << afrom)) != 0);
	if
	:: (fl[ix] & PF_REPLIED) == 0 -> REACH(9)    /* an ack before the reply */
	:: else -> skip
	fi;
	got[ix] = got[ix] | (1 << afrom);
	if
	:: (fl[ix] & PF_REPLIED) != 0 && POP(got[ix]) == POP(want[ix]) ->
		r_src = asrc[ix];
		node_finish(nn, ap);
		if
		:: parked[ix] -> val[ix] = pval[ix]; parked[ix] = 0; pval[ix] = 0
		:: else ->
			/* region_protect(clear) makes the read-only copy writable: there must be one */
			assert(st[ix] == PG_SHARED)
		fi;
		setst(nn, ap, PG_MODIFIED);
		if
		:: r_done -> node_send_done(nn, ap, r_src)
		:: else -> skip
		fi
	:: else -> skip
	fi

}

inline node_fwd(nn, fp, fto, fkind, facks)
{
	ix = I(nn, fp);
	assert(st[ix] != PG_INVALID);                /* "asked to send page, which is not here" */
	if
	:: HOLDING(nn, fp) ->
		assert(hitem[ix] == HI_NONE);
		REACH(1);
		hitem[ix] = HI_FWD; hto[ix] = fto; hkind[ix] = fkind; hacks[ix] = facks
	:: else ->
		hot[ix] = 0;                             /* xflags &= ~(PX_PIN | PX_AFTER_PIN) */
		f_data = val[ix];
		if
		:: fkind == KREAD ->
			if
			:: st[ix] == PG_MODIFIED -> setst(nn, fp, PG_SHARED)
			:: else -> skip
			fi;
			f_flags = DSM_REPLY_DONE
		:: else ->
			setst(nn, fp, PG_INVALID);
			f_flags = DSM_REPLY_DONE | DSM_REPLY_WRITE
		fi;
		send(nn, fto, DEMAND, PAGE, fp, f_flags, facks, f_data)
	fi
}

inline node_inv(nn, ip, ito)
{
	assert(st[I(nn, ip)] == PG_SHARED);          /* "asked to drop page, of which no read copy is here" */
	if
	:: (fl[I(nn, ip)] & PF_PEND_WRITE) != 0 -> REACH(10)  /* our upgrade is in flight */
	:: else -> skip
	fi;
	setst(nn, ip, PG_INVALID);
	send(nn, ito, DEMAND, INV_ACK, ip, 0, 0, 0)
}

/* node_fault (and node_request): a fault of the guest on page fp of node nn. */
inline node_fault(nn, fp, fw)
{
	ix = I(nn, fp);
	/* hold_pin_lower: a write fault on q pins q-1 if this thread got write access to it */
	if
	:: fw && fp == 1 && st[I(nn, 0)] == PG_MODIFIED -> hot[I(nn, 0)] = 1
	:: else -> skip
	fi;
	if
	:: (fl[ix] & PF_PREFETCH) != 0 ->
		if
		:: fw -> fl[ix] = fl[ix] | PF_WANT_WRITE
		:: else -> fl[ix] = fl[ix] | PF_WANT_READ
		fi
	:: (fl[ix] & PF_PREFETCH) == 0 && (fl[ix] & PF_PENDING) != 0 -> skip      /* joined */
	:: (fl[ix] & (PF_PREFETCH | PF_PENDING)) == 0 &&
	   (fw && st[ix] == PG_MODIFIED || !fw && st[ix] != PG_INVALID) -> skip  /* resolved already */
	:: (fl[ix] & (PF_PREFETCH | PF_PENDING)) == 0 &&
	   !(fw && st[ix] == PG_MODIFIED || !fw && st[ix] != PG_INVALID) ->
		if
		:: fw -> fl[ix] = fl[ix] | PF_PEND_WRITE
		:: else -> fl[ix] = fl[ix] | PF_PEND_READ
		fi;
		assert(got[ix] == 0 && want[ix] == 0);
		if
		:: HOME(fp) == nn -> home_request(fp, nn, fw)
		:: else ->
			if
			:: fw -> send(nn, HOME(fp), DEMAND, WRITE, fp, 0, 0, 0)
			:: else -> send(nn, HOME(fp), DEMAND, READ, fp, 0, 0, 0)
			fi;
			/* prefetch_on_fault: a read fault on page 0 continuing a stream asks for page 1 */
			if
			:: !fw && fp + 1 < P ->
				if
				:: pfpend[nn] = 1
				:: skip
				fi
			:: else -> skip
			fi
		fi
	fi
}

/* ------------------------------------------------------------ prefetch.c */

/* prefetch_issue: mark the idle prefix of [pfirst, pfirst + pwin) expected, ask the home. */
inline prefetch_issue(nn, pfirst, pwin)
{
	pi_n = 0; pi_q = pfirst;
	do
	:: pi_q < pfirst + pwin && pi_q < P ->
		if
		:: st[I(nn, pi_q)] == PG_INVALID && (fl[I(nn, pi_q)] & (PF_PENDING | PF_PREFETCH)) == 0 ->
			fl[I(nn, pi_q)] = fl[I(nn, pi_q)] | PF_PREFETCH; pi_n++; pi_q++
		:: else -> break
		fi
	:: else -> break
	od;
	if
	:: pi_n > 0 -> send(nn, HOME(pfirst), BULKCH, PREFETCH, pfirst, pi_n, 0, 0)
	:: else -> skip
	fi
}

/* prefetch_request: at the home, give the longest prefix it can give at once. */
inline prefetch_request(hh, rfrom, rfirst, rcount)
{
	pr_n = 0;
	do
	:: pr_n < rcount ->
		pr_q = rfirst + pr_n;
		if
		:: busy[pr_q] != DIR_IDLE || qlen[pr_q] != 0 || (holders[pr_q] & (1 << rfrom)) != 0 ||
		   (holders[pr_q] & (1 << hh)) == 0 || HOLDING(hh, pr_q) -> break
		:: else -> pr_n++
		fi
	:: else -> break
	od;
	pr_data = 0; pr_i = 0;
	do
	:: pr_i < pr_n ->
		pr_q = rfirst + pr_i;
		assert(st[I(hh, pr_q)] != PG_INVALID);
		if
		:: st[I(hh, pr_q)] == PG_MODIFIED -> setst(hh, pr_q, PG_SHARED)
		:: else -> skip
		fi;
		excl[pr_q] = 0; holders[pr_q] = holders[pr_q] | (1 << rfrom);
#ifndef BUG_NO_BULK_BUSY
		busy[pr_q] = DIR_BULK;
#endif
		cur[pr_q] = rfrom;
		pr_data = pr_data | (val[I(hh, pr_q)] << (2 * pr_i));
		pr_i++
	:: else -> break
	od;
	if
	:: pr_n < rcount -> REACH(14)
	:: else -> skip
	fi;
	send(hh, rfrom, BULKCH, BULK, rfirst, rcount, pr_n, pr_data)
}

/* prefetch_bulk: at the requester, the home's answer to our PREFETCH. */
inline prefetch_bulk(nn, bfrom, bfirst, bcount, bn, bdata)
{
	assert(bn <= bcount && bcount >= 1 && bfirst + bcount <= P);
	pb_i = 0;
	do
	:: pb_i < bcount ->
		/* "bulk page was not asked for" */
		assert((fl[I(nn, bfirst + pb_i)] & PF_PREFETCH) != 0 && st[I(nn, bfirst + pb_i)] == PG_INVALID);
		pb_i++
	:: else -> break
	od;
	pb_waited = 0; pb_i = 0;
	do
	:: pb_i < bn ->
		ix = I(nn, bfirst + pb_i);
		if
		:: (fl[ix] & PF_WANT) != 0 -> pb_waited = 1
		:: else -> skip
		fi;
		fl[ix] = fl[ix] & ~(PF_PREFETCH | PF_WANT);
		val[ix] = (bdata >> (2 * pb_i)) & 3;
		setst(nn, bfirst + pb_i, PG_SHARED);
		pb_i++
	:: else -> break
	od;
	if
	:: bn > 0 -> REACH(5); send(nn, bfrom, BULKCH, BULK_DONE, bfirst, bn, 0, 0)
	:: else -> skip
	fi;
	/* not sent: a thread waiting for one of them asks for it now */
	pb_ask = 0; pb_askw = 0; pb_i = bn;
	do
	:: pb_i < bcount ->
		ix = I(nn, bfirst + pb_i);
		fl[ix] = fl[ix] & ~PF_PREFETCH;
		if
		:: (fl[ix] & PF_WANT) != 0 ->
			if
			:: (fl[ix] & PF_WANT_WRITE) != 0 ->
				fl[ix] = fl[ix] | PF_PEND_WRITE; pb_askw = pb_askw | (1 << (bfirst + pb_i))
			:: else -> fl[ix] = fl[ix] | PF_PEND_READ
			fi;
			assert(got[ix] == 0 && want[ix] == 0);
			REACH(6);
			pb_ask = pb_ask | (1 << (bfirst + pb_i))
		:: else -> skip
		fi;
		fl[ix] = fl[ix] & ~PF_WANT;
		pb_i++
	:: else -> break
	od;
	pb_i = 0;
	do
	:: pb_i < P ->
		if
		:: (pb_ask & (1 << pb_i)) != 0 && (pb_askw & (1 << pb_i)) != 0 ->
			send(nn, HOME(pb_i), DEMAND, WRITE, pb_i, 0, 0, 0)
		:: (pb_ask & (1 << pb_i)) != 0 && (pb_askw & (1 << pb_i)) == 0 ->
			send(nn, HOME(pb_i), DEMAND, READ, pb_i, 0, 0, 0)
		:: else -> skip
		fi;
		pb_i++
	:: else -> break
	od;
	/* prefetch_ahead: a full window came and a thread waited: what follows (its 2 pages hold one window) */
	if
	:: pb_waited && bn == bcount && bfirst + bcount < P ->
		pa_first = bfirst + bcount;
		REACH(7);
		if
		:: prefetch_issue(nn, pa_first, 1)
		:: skip                               /* no stream goes on there */
		fi
	:: else -> skip
	fi
}

inline prefetch_done(hh, dfrom, dfirst, dn)
{
	pr_i = 0;
	do
	:: pr_i < dn ->
		pr_q = dfirst + pr_i;
#ifndef BUG_NO_BULK_BUSY
		/* "BULK_DONE for page, which was not sent to rank" */
		assert(busy[pr_q] == DIR_BULK && cur[pr_q] == dfrom);
		cpl = cpl | (1 << pr_q);
#endif
		pr_i++
	:: else -> break
	od
}

/* --------------------------------------------------------------- msg.c */

/* msg_check's checks of one message, then its handler. */
inline dispatch(nn)
{
	assert(pg < P);
	if
	:: mt == READ || mt == WRITE ->
		assert(chn == DEMAND && HOME(pg) == nn && a1 == 0 && a2 == 0);
		if
		:: mt == READ -> home_request(pg, from, KREAD)
		:: else -> home_request(pg, from, KWRITE)
		fi
	:: mt == DONE ->
		assert(chn == DEMAND && HOME(pg) == nn && a1 < N && a2 == 0);
		home_done(pg, from, a1)
	:: mt == FWD ->
		/* to, kind, and the acks (none of them the owner's, the requester's or the home's) */
		assert(chn == DEMAND && HOME(pg) == from && (a1 & 15) < N && (a1 & 15) != nn &&
		       (a1 >> 4) <= KWRITE && (a2 & ~7) == 0 &&
		       (a2 & ((1 << nn) | (1 << (a1 & 15)) | (1 << from))) == 0 &&
		       !((a1 >> 4) == KREAD && a2 != 0) && dv == 0);
		node_fwd(nn, pg, a1 & 15, a1 >> 4, a2)
	:: mt == INV ->
		assert(chn == DEMAND && HOME(pg) == from && a1 < N && a1 != nn);
		node_inv(nn, pg, a1)
	:: mt == INV_ACK ->
		assert(chn == DEMAND && a1 == 0 && a2 == 0);
		node_ack(nn, pg, from)
	:: mt == PAGE || mt == ZERO || mt == GRANT ->
		assert(chn == DEMAND && (mt == PAGE || HOME(pg) == from) && (a1 & ~3) == 0 &&
		       (a2 & ~7) == 0 && (a2 & ((1 << nn) | (1 << from))) == 0);
		node_reply(nn, pg, from, mt, a1, a2, dv)
	:: mt == PREFETCH ->
		assert(chn == BULKCH && HOME(pg) == nn && a1 >= 1 && pg + a1 <= P);
		prefetch_request(nn, from, pg, a1)
	:: mt == BULK ->
		assert(chn == BULKCH && HOME(pg) == from);
		prefetch_bulk(nn, from, pg, a1, a2, dv)
	:: mt == BULK_DONE ->
		assert(chn == BULKCH && HOME(pg) == nn && a1 >= 1 && pg + a1 <= P);
		prefetch_done(nn, from, pg, a1)
	fi
}

/* ------------------------------------------------------------ invariants */

inline check()
{
	ck_p = 0;
	do
	:: ck_p < P ->
		ck_mod = 0; ck_valid = 0; ck_n = 0;
		do
		:: ck_n < N ->
			if
			:: st[I(ck_n, ck_p)] != PG_INVALID ->
				ck_valid++;
				/* every read returns the last write */
				assert(val[I(ck_n, ck_p)] == last[ck_p])
			:: else -> skip
			fi;
			if
			:: st[I(ck_n, ck_p)] == PG_MODIFIED -> ck_mod++
			:: else -> skip
			fi;
			ck_n++
		:: else -> break
		od;
		/* single writer, and no reader beside it */
		assert(ck_mod == 0 || ck_valid == 1);
		/* one owner: a holder, the only one when exclusive */
		assert(holders[ck_p] == 0 || (holders[ck_p] & (1 << owner[ck_p])) != 0);
		assert(!excl[ck_p] || holders[ck_p] == (1 << owner[ck_p]));
		ck_p++
	:: else -> break
	od
}

#define QUIET(p) (busy[p] == DIR_IDLE && qlen[p] == 0 && \
	fl[I(0, p)] == 0 && fl[I(1, p)] == 0 && fl[I(2, p)] == 0 && \
	!donep[I(0, p)] && !donep[I(1, p)] && !donep[I(2, p)] && \
	!parked[I(0, p)] && !parked[I(1, p)] && !parked[I(2, p)] && \
	hitem[I(0, p)] == HI_NONE && hitem[I(1, p)] == HI_NONE && hitem[I(2, p)] == HI_NONE && \
	((holders[p] & 1) != 0) == (st[I(0, p)] != PG_INVALID) && \
	((holders[p] & 2) != 0) == (st[I(1, p)] != PG_INVALID) && \
	((holders[p] & 4) != 0) == (st[I(2, p)] != PG_INVALID) && \
	(holders[p] == 0 || excl[p] == (st[I(owner[p], p)] == PG_MODIFIED)))

#define EMPTY(i) (len(ch[i]) == 0)

/* Every request answered, every transaction over, the directory true. */
#define quiescent() (QUIET(0) && QUIET(1) && !pfpend[0] && !pfpend[1] && !pfpend[2] && \
	EMPTY(0) && EMPTY(1) && EMPTY(2) && EMPTY(3) && EMPTY(4) && EMPTY(5) && \
	EMPTY(6) && EMPTY(7) && EMPTY(8) && EMPTY(9) && EMPTY(10) && EMPTY(11))

/* ---------------------------------------------------------------- nodes */

/*
 * One step of node n: one of its threads takes the next message of one of
 * its connections, takes a fault, writes, sends a DONE, or its hold thread
 * redoes a held request; or a hold of it ends (time passes).  Each step is
 * atomic: a guard picks what happens, then the handler runs (each handler
 * is written once, below the guards, to keep pan small).
 */
#define A_NONE 0
#define A_MSG 1
#define A_FAULT 2
#define A_STREAM 3
#define A_PFETCH 4

/* Receive from sender rank (n + kk + 1) % N on channel cc: that connection's thread. */
#define RECV(kk, cc) \
	:: nempty(ch[CH((n + kk + 1) % N, n, cc)]) -> \
		ch[CH((n + kk + 1) % N, n, cc)]?mt, pg, a1, a2, dv; \
		from = (n + kk + 1) % N; chn = cc; act = A_MSG; \
		printf("MSC: node %d takes %e pg %d (%d, %d, %d) from %d ch%d\n", n, mt, pg, a1, a2, dv, from, chn)

/* A fault of the guest: a read of an unmapped page, a write of a page not writable. */
#define FAULT(pp, ww) \
	:: faults > 0 && \
		(ww && st[I(n, pp)] != PG_MODIFIED || !ww && st[I(n, pp)] == PG_INVALID) && \
		((fl[I(n, pp)] & PF_PENDING) == 0 || (ww && pp == 1 && st[I(n, 0)] == PG_MODIFIED)) && \
		!(ww && (fl[I(n, pp)] & PF_WANT_WRITE) != 0) && !(!ww && (fl[I(n, pp)] & PF_WANT_READ) != 0) -> \
		faults--; pg = pp; a1 = ww; act = A_FAULT; \
		printf("MSC: node %d: fault on page %d (write %d)\n", n, pp, ww)

/* A write of the guest: the page's value changes. */
#define GUEST_WRITE(pp) \
	:: st[I(n, pp)] == PG_MODIFIED && !wrote[I(n, pp)] -> \
		wrote[I(n, pp)] = 1; last[pp] = (last[pp] + 1) % V; val[I(n, pp)] = last[pp]; \
		printf("MSC: node %d writes page %d: value %d\n", n, pp, last[pp])

/* node_send_done after the sched_yield: DONE to the remote home. */
#define SEND_DONE(pp) \
	:: donep[I(n, pp)] != 0 -> \
		send(n, HOME(pp), DEMAND, DONE, pp, donep[I(n, pp)] - 1, 0, 0); donep[I(n, pp)] = 0

/* Time passes: a hold (hold_us, a pin, the time after a pin) is over. */
#define TIME(pp) \
	:: hot[I(n, pp)] -> hot[I(n, pp)] = 0; printf("MSC: node %d: hold of page %d over\n", n, pp)

/*
 * The hold thread redoes a held request once its page is no longer held:
 * at the home, home_complete (which restarts the queue); at an owner, the
 * FWD, handled as if it came again.
 */
#define REDO(pp) \
	:: hitem[I(n, pp)] != HI_NONE && !HOLDING(n, pp) -> \
		printf("MSC: node %d: hold thread redoes the request held on page %d\n", n, pp); \
		if \
		:: hitem[I(n, pp)] == HI_HOME -> cpl = cpl | (1 << pp); REACH(13) \
		:: else -> mt = FWD; pg = pp; a1 = hto[I(n, pp)] | (hkind[I(n, pp)] << 4); \
			a2 = hacks[I(n, pp)]; dv = 0; from = HOME(pp); chn = DEMAND; act = A_MSG; \
			hto[I(n, pp)] = 0; hkind[I(n, pp)] = 0; hacks[I(n, pp)] = 0 \
		fi; \
		hitem[I(n, pp)] = HI_NONE

proctype node(byte n)
{
end:
	do
	:: atomic {
		if
		FAULT(0, 0)
		FAULT(0, 1)
		FAULT(1, 0)
		FAULT(1, 1)
		GUEST_WRITE(0)
		GUEST_WRITE(1)
		/* a stream reaching page 0 from a page below it (outside the model) asks for [0, 2) */
		:: n != HOME(0) && streams > 0 && faults > 0 ->
			streams--; faults--; act = A_STREAM;
			printf("MSC: node %d: a stream reaches page 0\n", n)
		/* prefetch_on_fault, after the demand READ of page 0 went */
		:: pfpend[n] -> pfpend[n] = 0; act = A_PFETCH
		SEND_DONE(0)
		SEND_DONE(1)
		TIME(0)
		TIME(1)
		REDO(0)
		REDO(1)
		RECV(0, DEMAND)
		RECV(0, BULKCH)
		RECV(1, DEMAND)
		RECV(1, BULKCH)
		fi;
		if
		:: act == A_MSG -> dispatch(n)
		:: act == A_FAULT -> node_fault(n, pg, a1)
		:: act == A_STREAM -> prefetch_issue(n, 0, 2)
		:: act == A_PFETCH -> prefetch_issue(n, 1, 1)
		:: else -> skip
		fi;
		flush_cpl();
		check();
		act = A_NONE
	}
	od
}

init
{
	atomic {
		run node(0);
		run node(1);
		run node(2)
	}
}

/* When nothing can move any more, every request has been answered. */
active proctype quiescence()
{
	timeout -> REACH(16); assert(quiescent())
}
