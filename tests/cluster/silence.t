#!/bin/bash
# timeout: 120
# --report-silence over 2 instances: only rank 0 has the console, so rank 0
# reports its vCPU and names the one it does not run, and tells rank 1,
# which reports its own (an AP never started: waiting for its start-up IPI).
. "$GVM_TOP/tests/cluster/lib.sh"
[ -x "$GVM" ] || fail "no $GVM: run 'make'"
[ -r /dev/kvm ] || skip "no /dev/kvm"
guest=$GVM_BUILD/tests/vmm/spin.elf
log=$GVM_TEST_TMP/run.log

"$GVM" run --nodes 2 --vcpus 2 --mem 128M --kernel "$guest" --append busy --report-silence 1 \
	>"$log" 2>&1 </dev/null &
launcher=$!
track_bg $launcher
# A report comes every second; on a loaded machine a vCPU thread may miss
# one ("no answer within 0.5 s"), so wait for the lines wanted.
wait_for_line "$log" "^gvm rank 1:   vCPU 1: waiting for its start-up IPI$" 60 &&
	wait_for_line "$log" "^gvm rank 0:   vCPU 0: running in 64-bit kernel mode at rip 0x[0-9a-f]*, 0 exits/s$" 60 &&
	wait_for_line "$log" "^gvm rank 0:   vCPU 1:" 60 || { cat "$log"; fail "no reports"; }
kill -TERM $launcher
wait $launcher
rc=$?
cat "$log"
[ $rc -eq 143 ] || fail "SIGTERM: gvm run exited $rc, not 143"
grep -q "^gvm rank 0: the console has been silent for [1-9][0-9]* s; the vCPUs" "$log" ||
	fail "rank 0 did not report the silence"
grep -q "^gvm rank 0:   vCPU 0: running in 64-bit kernel mode at rip 0x[0-9a-f]*, 0 exits/s$" "$log" ||
	fail "rank 0 did not report its vCPU running"
grep -q "^gvm rank 0:   vCPU 1: on another instance, which reports its own$" "$log" ||
	fail "rank 0 did not name the vCPU it does not run"
grep -q "^gvm rank 1: rank 0's console has been silent for [1-9][0-9]* s; the vCPUs here" "$log" ||
	fail "rank 1 did not report when rank 0 did"
grep -q "^gvm rank 1:   vCPU 1: waiting for its start-up IPI$" "$log" ||
	fail "rank 1 did not report its vCPU"
grep -q "^gvm rank 1:   vCPU 0:" "$log" && fail "rank 1 reported a vCPU it does not run"
grep -q "lost\|malformed" "$log" && fail "an instance was lost or misbehaved"
echo "ok: rank 0 reports the console's silence and its vCPU, rank 1 its own"
