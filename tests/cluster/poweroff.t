#!/bin/bash
# timeout: 300
# ACPI soft-off ends the guest like the exit device does: the probe finds
# PM1a_CNT in the FADT and SLP_TYPa in the DSDT's \_S5 itself, writes S5
# there, and gvm must stop with status 0 and say why; over 2 instances, with
# the write made by whichever vCPU ends the probe, every instance stops.
# Had gvm ignored the write, the probe would report it and exit 1.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
log=$GVM_TEST_TMP/run.log

check_poweroff() {
	local what=$1 rc=$2
	cat "$log"
	[ "$rc" -eq 0 ] || fail "$what: exited with $rc, not 0, after the guest's ACPI power-off"
	grep -q '^result: PASS' "$log" || fail "$what: the probe did not pass"
	grep -q '^poweroff: pm1a_cnt=0x[0-9a-f]* slp_typ=[0-9]*$' "$log" ||
		fail "$what: the probe did not power off through the ACPI tables"
	grep -q '^gvm\( rank 0\)\?: the guest powered off' "$log" ||
		fail "$what: gvm did not say the guest powered off"
}

"$GVM" run --kernel "$PROBE" --vcpus 2 --mem 64M \
	--append "probe.workloads=none probe.end=poweroff" >"$log" 2>&1 </dev/null
check_poweroff "one instance" $?

"$GVM" run --nodes 2 --kernel "$PROBE" --vcpus 2 --mem 128M \
	--append "probe.workloads=counter probe.counter_iters=2000 probe.end=poweroff" \
	>"$log" 2>&1 </dev/null
check_poweroff "2 instances" $?
grep -q "^gvm: 2 instances connected" "$log" || fail "2 instances: no progress line for the connection"
# The launcher returns once every instance has ended; it kills and names the late ones.
! grep -q "did not stop in time\|killed by signal" "$log" || fail "2 instances: an instance did not stop by itself"

echo "ok: ACPI power-off stops one instance and every instance of two, status 0"
