#!/bin/bash
# timeout: 300
# Stopping gvm run --nodes from outside: Ctrl-C (SIGINT to the whole process
# group, as a terminal sends it) stops every instance cleanly with status
# 130; SIGINT and SIGTERM to the launcher alone are passed on as they are
# (130 and 143); SIGKILL of the launcher leaves no instance behind.  No case
# may print a lost instance.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
command -v setsid >/dev/null || skip "no setsid"

# start LOG: 2 instances on a long workload in their own process group
start() {
	: >"$1"
	setsid "$GVM" run --nodes 2 --vcpus 2 --mem 256M --kernel "$PROBE" \
		--append "probe.workloads=counter probe.counter_iters=1000000000" \
		>"$1" 2>&1 </dev/null &
	launcher=$!
	track_bg $launcher
	wait_for_line "$1" "^ready:" 120 || { cat "$1"; fail "the guest never got ready"; }
	inst=$(cluster_instances $launcher | awk '{ print $1 }')
	[ "$(wc -w <<<"$inst")" = 2 ] || fail "expected 2 instances, found: $inst"
}

gone() {
	local p
	for p in $inst; do
		for _ in $(seq 100); do
			[ -d /proc/$p ] && [ "$(awk '{ print $3 }' /proc/$p/stat 2>/dev/null)" != Z ] ||
				break
			sleep 0.1
		done
		[ -d /proc/$p ] && [ "$(awk '{ print $3 }' /proc/$p/stat 2>/dev/null)" != Z ] &&
			fail "instance $p still runs after: $1"
	done
	return 0
}

log=$GVM_TEST_TMP/int.log
start "$log"
echo "+ SIGINT to the process group"
kill -INT -- -"$launcher"
wait $launcher
rc=$?
cat "$log"
[ $rc -eq 130 ] || fail "Ctrl-C: gvm run exited $rc, not 130"
gone "Ctrl-C"
grep -q "lost" "$log" && fail "Ctrl-C reported a lost instance"

log=$GVM_TEST_TMP/int1.log
start "$log"
echo "+ SIGINT to the launcher alone (kill -INT)"
kill -INT "$launcher"
wait $launcher
rc=$?
cat "$log"
[ $rc -eq 130 ] || fail "kill -INT of the launcher: gvm run exited $rc, not 130"
grep -q "stopped by Terminated" "$log" && fail "kill -INT was passed on as SIGTERM"
gone "kill -INT of the launcher"
grep -q "lost" "$log" && fail "kill -INT reported a lost instance"

log=$GVM_TEST_TMP/term.log
start "$log"
echo "+ SIGTERM to the launcher"
kill -TERM "$launcher"
wait $launcher
rc=$?
cat "$log"
[ $rc -eq 143 ] || fail "SIGTERM: gvm run exited $rc, not 143"
gone "SIGTERM"
grep -q "lost" "$log" && fail "SIGTERM reported a lost instance"

log=$GVM_TEST_TMP/kill.log
start "$log"
echo "+ SIGKILL to the launcher"
kill -KILL "$launcher"
wait $launcher 2>/dev/null
gone "SIGKILL of the launcher"
echo "ok: Ctrl-C 130, SIGINT 130, SIGTERM 143, nothing left after SIGKILL of the launcher"
