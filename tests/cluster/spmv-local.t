#!/bin/bash
# timeout: 300
# The README's first command ends in job-templates/spmv-local.sh: SpMV in a
# guest over 2 instances, on the generated matrix and on a Matrix Market
# file given to it.  It must show the two NUMA nodes the guest saw and a
# result whose checksum equals the host's, and exit 0; a file that is not a
# Matrix Market file is refused.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
probe_need
job=$GVM_TOP/job-templates/spmv-local.sh
export GVM_BUILD GVM_IMAGES ITERS=3

for m in "" "$MATRICES/bcsstk13.mtx"; do
	echo "+ spmv-local.sh $m"
	"$job" $m >"$GVM_TEST_TMP/out" 2>&1 </dev/null
	rc=$?
	cat "$GVM_TEST_TMP/out"
	[ $rc -eq 0 ] || fail "spmv-local.sh $m exited $rc"
	for want in "NUMA node 0: vCPU(s) 0, 512 MiB" "NUMA node 1: vCPU(s) 1, 512 MiB" \
		"distances between nodes (SLIT): 10 20 / 20 10" "IPI round trips" "speed " \
		"the same as this host computes with the same code"; do
		grep -qF "$want" "$GVM_TEST_TMP/out" || fail "spmv-local.sh $m did not print '$want'"
	done
done
grep -q "bcsstk13.mtx: 2003 x 2003, 83883 non-zeros" "$GVM_TEST_TMP/out" ||
	fail "the real matrix's size is not shown"
echo "not a matrix" >"$GVM_TEST_TMP/bad.mtx"
"$job" "$GVM_TEST_TMP/bad.mtx" >"$GVM_TEST_TMP/out" 2>&1 && fail "a file that is not a matrix was accepted"
grep -q "not a Matrix Market file" "$GVM_TEST_TMP/out" || fail "no clear error for a bad file"
echo "ok: the demo job shows the machine and a result equal to the host's"
