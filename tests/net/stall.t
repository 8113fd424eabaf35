#!/bin/bash
# timeout: 300
# A peer that stops reading, while the guest runs (atomic counters over the
# DSM), over 3 simulated hosts with 50 us delay and up to 1 ms jitter,
# every instance with --peer-timeout 3.  The relay makes every TCP segment
# that rank 1's host sends advertise a zero window ("stall 1"): to the
# others rank 1 looks like a process whose socket buffers are full and
# that reads nothing more, though its own messages still arrive.  Their
# writes to it block once their send buffers fill, and rank 1 hears nothing
# from them (their heartbeats wait behind) and finds them silent.  Every
# instance, rank 1 too, must end (net_fault_run), non-zero, each
# naming a lost rank; no thread may stay blocked on a write, and nothing
# may be left behind.  Then the same with one direction only dropped at
# the relay (rank 2 -> rank 1: what rank 2 sends rank 1 never arrives, the
# other way works).
. "$GVM_TOP/tests/net/lib.sh"
net_need
net_seed
relay_opts="--delay 50 --jitter 1000 --seed $seed"

# judge WHAT: every instance non-zero, naming some lost rank
judge() {
	local r
	for r in $(seq 0 $((net_n - 1))); do
		[ "${net_rc[$r]}" != 0 ] || { net_logs; fail "$1: rank $r exited 0"; }
		grep -q "rank [0-9] (gvnet[0-9]:$NET_PORT) lost" "$T/r$r.log" ||
			{ net_logs; fail "$1: rank $r names no lost rank"; }
	done
	net_logs | grep -E 'error|lost'
	echo "statuses: ${net_rc[*]}"
}

net_setup 3 $relay_opts
net_fault_run 3 "net_ctl stall 1"
judge "rank 1 stalled"
grep -q 'zero-window segments [1-9]' <(net_ctl stats; cat "$T/relay.out") ||
	fail "the relay rewrote no segment's window"
net_check_clean
net_teardown_hosts || exit 1
ms_stall=$net_ms

net_setup 3 $relay_opts
net_fault_run 3 "net_ctl drop 2 1"
judge "rank 2 -> 1 dropped"
# Rank 1 hears nothing from rank 2: its log must say something of rank 2
# (lost, or the reason rank 2 gave).  Rank 0, told by rank 2 that rank 1 is
# lost, stops and closes its links: rank 1 must not blame rank 0 for that
# ("rank 0 (gvnet0:7100) lost: connection closed", as it did in one run of
# two before the culprit was sent the reason too).
grep -q "rank 2 (gvnet2:$NET_PORT) lost\|rank 2: \|reported by rank 2" "$T/r1.log" ||
	{ net_logs; fail "rank 1, which heard nothing from rank 2, names only:" \
		"$(grep error "$T/r1.log" | tr '\n' ' ')"; }
net_check_clean
net_teardown_hosts || exit 1
echo "ok: a peer that stops reading: every instance ended within $ms_stall ms; one way" \
	"dropped: within $net_ms ms (peer-timeout 3 s)"
