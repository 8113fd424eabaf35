#!/bin/bash
# timeout: 300
# An instance that dies stops every other one, with a message naming it
# (rank and host:port) and a non-zero status: rank 1 of 3 killed (SIGKILL)
# while the guest runs, then rank 0 (the one with the devices): the others
# see its connections close, and say so (not a silence: the default peer
# timeout is 30 s); then rank 1 stopped (SIGSTOP: its connections stay
# open, it just goes silent; with --peer-timeout 5, the others name it
# after 5 s of silence, no sooner).  Judged by what the instances say, not
# by how fast a loaded machine lets them end: they must end within 60 s.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need

# kill_rank VICTIM [SIGNAL]: start 3 instances on a long workload, signal one, judge.
kill_rank() {
	local victim=$1 sig=${2:-KILL} log=$GVM_TEST_TMP/lost-$1-${2:-KILL}.log launcher inst vpid
	local vport t0 t1 left rc r
	: >"$log"
	"$GVM" run --nodes 3 --vcpus 3 --mem 384M --kernel "$PROBE" \
		$([ "$sig" = STOP ] && echo --peer-timeout 5) \
		--append "probe.workloads=counter probe.counter_iters=1000000000" \
		>"$log" 2>&1 </dev/null &
	launcher=$!
	track_bg $launcher
	wait_for_line "$log" "^ready:" 120 || { cat "$log"; fail "the guest never got ready"; }
	inst=$(cluster_instances $launcher)
	[ "$(wc -l <<<"$inst")" = 3 ] || fail "expected 3 instances of launcher $launcher, found: $inst"
	vpid=$(awk -v r="$victim" '$2 == r { print $1 }' <<<"$inst")
	vport=$(tr '\0' ' ' </proc/$vpid/cmdline | sed -n 's/.*--peers \([^ ]*\) .*/\1/p' |
		cut -d, -f$((victim + 1)))
	echo "+ kill -$sig rank $victim (pid $vpid, $vport)"
	t0=$(now_ms)
	kill -"$sig" "$vpid"
	# every surviving instance must end
	while :; do
		left=0
		for p in $(awk -v v="$vpid" '$1 != v { print $1 }' <<<"$inst") $([ "$sig" = KILL ] && echo "$vpid"); do
			[ -d /proc/$p ] && [ "$(awk '{ print $3 }' /proc/$p/stat 2>/dev/null)" != Z ] &&
				left=1
		done
		t1=$(now_ms)
		[ $left = 0 ] && break
		[ $((t1 - t0)) -gt 60000 ] && { cat "$log"; fail "instances still run $((t1 - t0)) ms after rank $victim got SIG$sig"; }
		sleep 0.05
	done
	[ "$sig" = KILL ] || kill -KILL "$vpid" # the stopped one: the launcher would, later
	wait $launcher
	rc=$?
	cat "$log"
	echo "every other instance ended $((t1 - t0)) ms after rank $victim got SIG$sig;" \
		"gvm run exited $rc"
	[ $rc -ne 0 ] || fail "gvm run exited 0 although rank $victim died"
	for r in 0 1 2; do
		[ $r = "$victim" ] && continue
		grep -q "^gvm rank $r: error: .*rank $victim ($vport) lost" "$log" ||
			fail "rank $r did not say that rank $victim ($vport) was lost"
		if [ "$sig" = KILL ]; then
			! grep -q "^gvm rank $r: error: .*rank $victim ($vport) lost: nothing from it" "$log" ||
				fail "rank $r took the killed rank $victim for silent: it did not see its connections close"
		else
			grep "^gvm rank $r: error: .*rank $victim ($vport) lost: nothing from it for" "$log" |
				awk '{ for (i = 1; i < NF; i++) if ($i == "for") s = $(i + 1) } END { exit !(s >= 5.0) }' ||
				fail "rank $r did not name the stopped rank $victim as silent for 5 s or more"
		fi
	done
	grep -q "rank $victim (pid $vpid) was killed by signal 9" "$log" ||
		fail "the launcher did not report how rank $victim ended"
}

kill_rank 1
kill_rank 0
kill_rank 1 STOP
echo "ok: a dead or silent instance stops the others, named (how it was lost too), non-zero"
