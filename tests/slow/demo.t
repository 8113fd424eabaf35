#!/bin/bash
# The README's main command: tools/demo runs SpMV in the Linux guest over 2
# gvm instances and checks the result against this host's, here on a
# SuiteSparse matrix whose file name has a space and a comma (it reaches the
# guest as matrix.mtx).  Everything it needs is built already, so only the
# run itself takes time (a Linux boot: a minute or more where KVM emulates
# guest kernel code).
# timeout: 900
set -u
m=$GVM_TOP/../shared/data/matrices/bcsstk13.mtx
[ -r "$m" ] || { echo "missing $m (the repository's parent holds shared/)"; exit 1; }
[ -f "$GVM_IMAGES/linux/vmlinux" ] || { echo "SKIP: the Linux image is not built"; exit 77; }
mkdir -p "$GVM_TEST_TMP/my data"
ln -s "$m" "$GVM_TEST_TMP/my data/a, b.mtx"
export TMPDIR=$GVM_TEST_TMP/tmp
unset VCPUS # tools/demo's vCPUs per instance: 1, the 2 vCPUs judged below
mkdir -p "$TMPDIR"
"$GVM_TOP/tools/demo" "$GVM_TEST_TMP/my data/a, b.mtx" >"$GVM_TEST_TMP/out" 2>&1
rc=$?
cat "$GVM_TEST_TMP/out"
fail=0
[ $rc = 0 ] || { echo "FAIL: tools/demo exited with $rc"; fail=1; }
grep -q "available: 2 nodes (0-1)" "$GVM_TEST_TMP/out" ||
	{ echo "FAIL: the guest's two NUMA nodes are not shown"; fail=1; }
grep -q "matrix     2003 x 2003, " "$GVM_TEST_TMP/out" ||
	{ echo "FAIL: not bcsstk13's shape"; fail=1; }
grep -q "the same as this host computes" "$GVM_TEST_TMP/out" ||
	{ echo "FAIL: the result was not checked against the host's"; fail=1; }
# The result names the job's thread count; where KVM emulates guest kernel
# code the guest keeps the job on the first instance's vCPU, and says so.
t=$(sed -n 's/.*| spmv: .* threads=\([0-9]*\) .*/\1/p' "$GVM_TEST_TMP/out" | tail -1)
case "$t" in
'') echo "FAIL: no thread count in the job's spmv line"; fail=1 ;;
1) want="iterations by 1 thread, computing" ;;
*) want="iterations by $t threads, each" ;;
esac
[ -z "$t" ] || grep -q "$want" "$GVM_TEST_TMP/out" ||
	{ echo "FAIL: the result does not say the job's $t thread(s) ('$want')"; fail=1; }
if [ -n "$t" ] && [ "$t" -lt 2 ] && ! grep -qw -e vmx -e svm /proc/cpuinfo; then
	grep -q "(threads: $t of the 2 vCPUs: " "$GVM_TEST_TMP/out" ||
		{ echo "FAIL: fewer threads than vCPUs, not explained"; fail=1; }
fi
[ -z "$(ls -A "$TMPDIR")" ] || { echo "FAIL: left in TMPDIR: $(ls -A "$TMPDIR")"; fail=1; }
exit $fail
