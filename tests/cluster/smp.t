#!/bin/bash
# timeout: 300
# The VMM's SMP test guest (tests/vmm/smp.S) over several instances: the
# boot CPU starts the APs with INIT/SIPI by shorthand (all but self: every
# instance's vCPUs), each AP answers with a logical-destination IPI, then
# PIT and UART interrupts through the I/O APIC and an NMI.  Then the VM's
# end coming from another instance: the last AP writes status 42 to the exit
# device (an access forwarded to rank 0) and every instance must exit 42;
# the last AP triple-faults, and every instance must stop with 125, the
# message naming the vCPU.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
guest=$GVM_BUILD/tests/vmm/smp.elf
[ -f "$guest" ] || fail "no $guest: run make tests"
log=$GVM_TEST_TMP/smp.log

for shape in "2 2" "4 2" "3 3" "4 4"; do
	set -- $shape
	aps=$(($1 - 1))
	timeout 120 "$GVM" run --nodes "$2" --kernel "$guest" --mem $((64 * $2))M --vcpus "$1" \
		--append "$aps" >"$log" 2>&1 </dev/null
	rc=$?
	cat "$log"
	[ $rc -eq 0 ] && grep -qx "smp: aps $aps" "$log" && grep -qx "smp: ipis $aps" "$log" &&
		grep -qx "smp: all ok" "$log" || fail "$1 vCPUs over $2 instances: status $rc"
	echo "ok: $1 vCPUs over $2 instances"
done

timeout 120 "$GVM" run --nodes 2 --kernel "$guest" --mem 128M --vcpus 2 --append "1x" \
	>"$log" 2>&1 </dev/null
rc=$?
cat "$log"
[ $rc -eq 42 ] || fail "the exit device written on rank 1: status $rc, not 42"
echo "ok: the guest's exit status from another instance"

timeout 120 "$GVM" run --nodes 3 --kernel "$guest" --mem 192M --vcpus 3 --append "2t" \
	>"$log" 2>&1 </dev/null
rc=$?
cat "$log"
[ $rc -eq 125 ] || fail "a triple fault on another instance: status $rc, not 125"
grep -q "^gvm rank [12]: error: vCPU [12]: the guest shut down (triple fault" "$log" ||
	fail "no message naming the vCPU that triple-faulted"
grep -q "lost" "$log" && fail "a triple fault was reported as a lost instance"
echo "ok: a triple fault on another instance stops all with 125"
