#!/bin/bash
# timeout: 300
# A link cut while the guest runs (atomic counters over the DSM, every
# instance with --peer-timeout 3), over simulated hosts whose links have
# 50 us delay and up to 1 ms jitter:
#   - every link of host 2 of 3 cut at the relay (a host unplugged): all
#     three instances end (net_fault_run), non-zero; ranks 0 and
#     1 name rank 2 (rank and address), rank 2 names one of them;
#   - host 1 of 2 with its interface set down (ip link set gvtun0 down):
#     the same, each naming the other;
#   - rank 0's packets to rank 1 dropped, the other way still open (a
#     one-way failure): both end within the same time, non-zero, named.
# Nothing may be left behind.
. "$GVM_TOP/tests/net/lib.sh"
net_need
net_seed
relay_opts="--delay 50 --jitter 1000 --seed $seed"

# judge VICTIM SURVIVOR_NAMES_ANY...: every instance non-zero; each other
# rank names VICTIM; VICTIM names one of the others.
judge() {
	local v=$1 r o named
	for r in $(seq 0 $((net_n - 1))); do
		[ "${net_rc[$r]}" != 0 ] || { net_logs; fail "rank $r exited 0 after the cut"; }
		if [ "$r" != "$v" ]; then
			net_named "$r" "$v" || { net_logs; fail "rank $r does not name rank $v as lost"; }
		else
			named=
			for o in $(seq 0 $((net_n - 1))); do
				[ "$o" != "$v" ] && net_named "$v" "$o" && named+=" $o"
			done
			[ -n "$named" ] || { net_logs; fail "rank $v (cut off) names no lost rank"; }
		fi
	done
	net_logs | grep -E 'error|lost|STOP|stopp'
	echo "statuses: ${net_rc[*]}"
}

net_setup 3 $relay_opts
net_fault_run 3 "net_ctl cut 2"
judge 2
net_check_clean
net_teardown_hosts || exit 1
echo "ok: host 2 of 3 cut off: every instance ended within $net_ms ms, named"
ms_cut=$net_ms

net_setup 2 $relay_opts
net_fault_run 2 "net_in 1 ip link set $NET_IF down"
judge 1
net_check_clean
net_teardown_hosts || exit 1
echo "ok: host 1's interface down: both ended within $net_ms ms, named"
ms_down=$net_ms

net_setup 2 $relay_opts
net_fault_run 2 "net_ctl drop 0 1"
for r in 0 1; do
	[ "${net_rc[$r]}" != 0 ] || { net_logs; fail "rank $r exited 0 after the one-way cut"; }
done
net_named 1 0 || { net_logs; fail "rank 1, which hears nothing from rank 0, does not name it"; }
grep -q "rank 1 .*lost\|rank 1 (gvnet1:$NET_PORT)" "$T/r0.log" ||
	{ net_logs; fail "rank 0 does not name rank 1"; }
net_logs | grep -E 'error|lost'
net_check_clean
net_teardown_hosts || exit 1
echo "ok: rank 0 -> 1 dropped: both ended within $net_ms ms, named"
echo "ok: cut ${ms_cut} ms, link down ${ms_down} ms, one-way ${net_ms} ms (peer-timeout 3 s)"
