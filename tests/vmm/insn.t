#!/bin/bash
# Kernel-mode INT3, FWAIT, CLAC/STAC, POPCNT, LDMXCSR and STMXCSR (with
# their faults) work in a guest (tests/vmm/insn.S) whether the host runs
# them in hardware or gvm has to complete them for a KVM that cannot emulate
# them (vmm/x86/emulate.c).
# timeout: 60
set -u
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm is missing or not usable by this user"; exit 77; }
gvm=$GVM_BUILD/gvm
guest=$GVM_BUILD/tests/vmm/insn.elf
[ -x "$gvm" ] && [ -f "$guest" ] || { echo "gvm or the test guest is not built: run make"; exit 1; }
out=$("$gvm" run --kernel "$guest" --mem 64M --vcpus 1 2>"$GVM_TEST_TMP/err")
rc=$?
echo "$out"
fail=0
[ $rc = 0 ] || { echo "FAIL: status $rc (failed checks)"; cat "$GVM_TEST_TMP/err"; fail=1; }
for name in int3 fwait mxcsr mxcsr-faults; do
	grep -qx "insn: $name ok" <<<"$out" || { echo "FAIL: $name"; fail=1; }
done
# CLAC/STAC and POPCNT run only where CPUID offers them.
exit $fail
