#!/bin/bash
# timeout: 300
# A peer SIGSTOPped while the guest runs (atomic counters over the DSM),
# over 3 simulated hosts with 50 us delay, up to 1 ms jitter and 0.1% loss,
# every instance with --peer-timeout 3.  A stopped process keeps its
# connections open (its kernel still acknowledges), so only its silence
# shows it:
#   - rank 1 stopped: ranks 0 and 2 end (net_fault_run), non-zero, naming
#     rank 1 ("nothing from it for ..."); then SIGCONT: rank 1 must end
#     too (within 60 s: a hang guard), non-zero;
#   - rank 0 (the devices) stopped: ranks 1 and 2 end the same way, naming
#     rank 0; then SIGKILL of rank 0 reaps it.
# Nothing may be left behind.
. "$GVM_TOP/tests/net/lib.sh"
net_need
net_seed
relay_opts="--delay 50 --jitter 1000 --loss 0.1 --seed $seed"

# stopped VICTIM THEN: SIGSTOP VICTIM mid-run; THEN (cont or kill) after the others ended.
stopped() {
	local v=$1 then=$2 r others ms_others
	others=$(seq 0 2 | grep -vx "$v" | tr '\n' ' ')
	net_setup 3 $relay_opts
	NET_WAIT_RANKS=$others net_fault_run 3 "kill -STOP \${net_pid[$v]}"
	ms_others=$net_ms
	for r in $others; do
		[ "${net_rc[$r]}" != 0 ] || { net_logs; fail "rank $r exited 0 though rank $v was stopped"; }
		net_named "$r" "$v" || { net_logs; fail "rank $r does not name rank $v as lost"; }
		grep -q "rank $v (gvnet$v:$NET_PORT) lost: nothing from it for" "$T/r$r.log" ||
			echo "(rank $r saw rank $v lost otherwise than by its silence)"
	done
	alive "${net_pid[$v]}" || fail "the stopped rank $v ended while stopped?"
	if [ "$then" = cont ]; then
		echo "+ kill -CONT rank $v"
		kill -CONT "${net_pid[$v]}"
		net_wait_ended 60000 "$v" ||
			{ net_logs; fail "rank $v, continued, still runs $net_ms ms later"; }
		[ "${net_rc[$v]}" != 0 ] || { net_logs; fail "rank $v, continued after the others ended, exited 0"; }
		echo "rank $v, continued, ended within $net_ms ms with status ${net_rc[$v]}"
	else
		echo "+ kill -KILL rank $v"
		{ kill -KILL "${net_pid[$v]}"; sleep 0.1; } 2>/dev/null
		net_wait_ended 60000 "$v" || fail "rank $v survives SIGKILL"
	fi
	net_logs | grep -E 'error|lost'
	echo "statuses: ${net_rc[*]}"
	net_check_clean
	net_teardown_hosts || exit 1
	echo "ok: rank $v stopped: the others ended within $ms_others ms, named it"
}

stopped 1 cont
stopped 0 kill
echo "ok: a stopped peer stops the others, named"
