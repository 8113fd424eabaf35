#!/bin/bash
# timeout: 300
# --integrity against an attacker on the wire, over 2 simulated hosts (50 us
# delay, up to 200 us jitter): the guest runs its atomic counters over the
# DSM with every message sealed; then tests/tools/netrelay changes one byte
# of one TCP segment from host 1 to host 0 and fixes its checksum, so TCP
# delivers it as sent.  Rank 0 must refuse the frame it lands in (its
# integrity check), and both instances must end within the peer timeout +
# 5 s, non-zero, with nothing left behind.
. "$GVM_TOP/tests/net/lib.sh"
net_need
net_seed
net_setup 2 --delay 50 --jitter 200 --seed "$seed"
net_fault_run 2 "net_ctl tamper 1 0" --integrity
for r in 0 1; do
	[ "${net_rc[$r]}" != 0 ] || { net_logs; fail "rank $r exited 0 after a frame was altered"; }
	grep -q "node: every message between instances is checked (--integrity)" "$T/r$r.log" ||
		{ net_logs; fail "rank $r did not say its messages are checked"; }
done
grep -q "fails its integrity check" "$T/r0.log" ||
	{ net_logs; fail "rank 0 does not say a frame failed its integrity check"; }
net_ctl stats
grep -q "tampered segments 1" "$T/relay.out" || { cat "$T/relay.out"; fail "the relay altered no segment"; }
grep "fails its integrity check" "$T/r0.log" | head -2
statuses="${net_rc[*]}"
net_check_clean
net_teardown_hosts || exit 1
echo "ok: a segment altered on the wire: the frame refused, both instances ended within $net_ms ms (statuses $statuses)"
