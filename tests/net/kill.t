#!/bin/bash
# timeout: 300
# A peer killed (SIGKILL) at a random moment of set-up, run or exit, over 3
# simulated hosts with 50 us delay, up to 1 ms jitter and 0.1% loss
# (--connect-timeout 10, --peer-timeout 10: a killed process's connections
# close at once, so the silence rule is not what must catch it).  First one
# undisturbed run (it must pass) gives the length of a run; then
# NET_KILL_ITERS (default 6) runs, each killing a random rank at a moment
# drawn around set-up, run and exit events in turn (below; seeded: NET_SEED
# repeats a sequence).
# Every other instance must end (within 60 s: a hang guard), with a
# non-zero status naming the victim unless the run had already finished
# (the guest's result out, or an instance exited), and none may take it for
# silent: its connections closed, and that is what must catch it (the
# silence rule would take 10 s; how long they took is printed); nothing may
# be left behind after each run.
. "$GVM_TOP/tests/net/lib.sh"
net_need
net_seed
iters=${NET_KILL_ITERS:-6}
RANDOM=$seed
n=3
append="probe.workloads=ipi,counter probe.counter_iters=5000 probe.ipi_rounds=3"
opts="--connect-timeout 10 --peer-timeout 10"
net_setup $n --delay 50 --jitter 1000 --loss 0.1 --seed "$seed"

t0=$(now_ms)
net_start 3 192M "$append" $opts
net_wait_ended 120000 0 1 2 || { net_logs; fail "the undisturbed run still runs after 120 s"; }
total=$(($(now_ms) - t0))
[ "${net_rc[*]}" = "0 0 0" ] || { net_logs; fail "the undisturbed run ended with ${net_rc[*]}"; }
grep -q '^result: PASS' "$T/r0.log" || { net_logs; fail "the undisturbed run did not pass"; }
net_check_clean
echo "undisturbed run: $total ms, statuses ${net_rc[*]}"

# The moment of each kill: a trigger (cycling through set-up, run and exit)
# and a random delay after it:
#   start      right after the instances were started (0-200 ms)
#   connected  a random rank reported its mesh connected (0-20 ms)
#   ready      a random rank reported ready (0-20 ms)
#   running    rank 0 reported running (0 to the run's length)
#   result     the guest printed its result (0-100 ms)
#   exit       an instance reported its exit (0-30 ms)
triggers=(start connected ready running result exit)
# trigger_seen TRIGGER RANK: 0 once it happened
trigger_seen() {
	case $1 in
	start) return 0 ;;
	connected|ready) grep -q "^$2 $1" "$T/st$2" ;;
	running) grep -q "^0 running" "$T/st0" ;;
	result) grep -q '^result:' "$T/r0.log" ;;
	exit) grep -q ' exit' "$T"/st? ;;
	esac
}
summary=
for it in $(seq 1 "$iters"); do
	v=$((RANDOM % n))
	trig=${triggers[$(((it - 1) % ${#triggers[@]}))]}
	trank=$((RANDOM % n))
	case $trig in
	start) delay=$((RANDOM % 200)) ;;
	connected|ready) delay=$((RANDOM % 20)) ;;
	running) delay=$(((RANDOM * 32768 + RANDOM) % total)) ;;
	result) delay=$((RANDOM % 100)) ;;
	exit) delay=$((RANDOM % 30)) ;;
	esac
	net_start 3 192M "$append" $opts
	t0=$(now_ms)
	for _ in $(seq 6000); do
		trigger_seen $trig $trank && break
		sleep 0.01
	done
	trigger_seen $trig $trank || { net_logs; fail "iteration $it: '$trig' of rank $trank never came"; }
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	# where every instance is at the kill: its last status line
	phase=
	for r in $(seq 0 $((n - 1))); do
		p=$(tail -1 "$T/st$r" | cut -d' ' -f2-)
		phase+="${r}:${p:-setting-up} "
	done
	vphase=$(tail -1 "$T/st$v" | cut -d' ' -f2-)
	finished=0
	grep -q '^result:' "$T/r0.log" && finished=1
	grep -q ' exit' "$T"/st? && finished=1
	{ kill -KILL "${net_pid[$v]}"; tk=$(now_ms); } 2>/dev/null
	limit=60000
	echo "+ iteration $it: rank $v killed $delay ms after $trig${trank:+ of rank $trank}, $((tk - t0)) ms after the start (phases: $phase; finished: $finished)"
	if ! net_wait_ended $limit 0 1 2; then
		net_logs
		fail "iteration $it (seed $seed): instances still run $net_ms ms after rank $v was killed" \
			"at $((tk - t0)) ms"
	fi
	echo "  all ended within $net_ms ms of the kill, statuses ${net_rc[*]}"
	for r in $(seq 0 $((n - 1))); do
		[ "$r" = "$v" ] && continue
		if [ $finished = 0 ]; then
			[ "${net_rc[$r]}" != 0 ] ||
				{ net_logs; fail "iteration $it: rank $r exited 0 though rank $v was killed mid-way"; }
			grep -q "rank $v (gvnet$v:$NET_PORT)\|rank $v at gvnet$v:$NET_PORT" "$T/r$r.log" ||
				{ net_logs; fail "iteration $it: rank $r does not name rank $v"; }
			! grep -q "rank $v (gvnet$v:$NET_PORT) lost: nothing from it" "$T/r$r.log" ||
				{ net_logs; fail "iteration $it: rank $r took the killed rank $v for silent"; }
		fi
		grep -E 'error' "$T/r$r.log" | head -2 | sed 's/^/  /'
	done
	net_check_clean
	summary+="  iteration $it: rank $v killed $delay ms after $trig, at $((tk - t0)) ms (victim ${vphase:-setting up}; finished $finished): others ended within $net_ms ms, statuses ${net_rc[*]}"$'\n'
done
printf '%s' "$summary"
echo "ok: $iters kills (seed $seed): every other instance ended in time, named the victim, nothing left"
