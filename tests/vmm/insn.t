#!/bin/bash
# Kernel-mode INT3, FWAIT, CLAC/STAC, POPCNT, LDMXCSR and STMXCSR (with
# their faults), LSL, VERR and VERW work in a guest (tests/vmm/insn.S)
# whether the host runs them in hardware or gvm has to complete them for a
# KVM that cannot emulate them (vmm/x86/emulate.c).  An instruction KVM
# cannot emulate and gvm does not complete (tests/vmm/noemul.S) stops the
# VM with status 125 and a message naming it, with its bytes, address and
# CPU mode.
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
for name in int3 fwait mxcsr mxcsr-faults lsl verr-verw; do
	grep -qx "insn: $name ok" <<<"$out" || { echo "FAIL: $name"; fail=1; }
done
# CLAC/STAC and POPCNT run only where CPUID offers them.

guest=$GVM_BUILD/tests/vmm/noemul.elf
out=$("$gvm" run --kernel "$guest" --mem 64M --vcpus 1 2>"$GVM_TEST_TMP/err")
rc=$?
[ $rc = 125 ] || { echo "FAIL: noemul: status $rc, want 125"; fail=1; }
grep -qx "noemul: running" <<<"$out" || { echo "FAIL: noemul: the guest did not start"; fail=1; }
rip=$(nm "$guest" | awk '$3 == "bad_insn" { print $1 }' | sed 's/^0*//')
[ -n "$rip" ] || { echo "FAIL: no bad_insn in $guest"; fail=1; }
want="KVM cannot emulate CRC32 (f2 0f 38 f1 03) at rip 0x$rip in 64-bit kernel mode"
grep -qF "vCPU 0: KVM internal error, suberror 1: $want" "$GVM_TEST_TMP/err" ||
	{ echo "FAIL: noemul: no message with '$want'"; cat "$GVM_TEST_TMP/err"; fail=1; }
exit $fail
