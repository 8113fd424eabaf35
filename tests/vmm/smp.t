#!/bin/bash
# SMP bring-up and interrupts through the VMM's own LAPIC and IOAPIC, with
# tests/vmm/smp.S, for (vCPUs, NUMA nodes) = (1,1) (2,1) (2,2) (4,2) (6,3):
# every AP starts with INIT/SIPI/SIPI and sends the BSP an IPI with its own
# vector; the LAPIC timer, the PIT and the UART interrupt (through the
# IOAPIC) and an NMI arrive.  More vCPUs than host cores is fine.
# timeout: 600
set -u
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm is missing or not usable by this user"; exit 77; }
gvm=$GVM_BUILD/gvm
guest=$GVM_BUILD/tests/vmm/smp.elf
[ -x "$gvm" ] && [ -f "$guest" ] || { echo "gvm or the test guest is not built: run make"; exit 1; }
fail=0
for shape in "1 1" "2 1" "2 2" "4 2" "6 3"; do
	set -- $shape
	aps=$(($1 - 1))
	out=$(timeout 100 "$gvm" run --kernel "$guest" --mem $((64 * $2))M --vcpus $1 --numa $2 \
		--append $aps 2>"$GVM_TEST_TMP/err")
	rc=$?
	if [ $rc != 0 ] || ! grep -qx "smp: aps $aps" <<<"$out" || ! grep -qx "smp: ipis $aps" <<<"$out" ||
		! grep -qx "smp: all ok" <<<"$out"; then
		echo "FAIL: $1 vCPUs, $2 nodes: status $rc"
		echo "$out"
		cat "$GVM_TEST_TMP/err"
		fail=1
	else
		echo "ok: $1 vCPUs, $2 nodes"
	fi
done
exit $fail
