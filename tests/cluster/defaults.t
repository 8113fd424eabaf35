#!/bin/bash
# timeout: 300
# gvm run --nodes N with no --vcpus or --mem: the launcher's defaults (this
# host's cores and half its RAM, shared among the instances) must reach every
# instance, so the guest starts, and has exactly the shape `gvm topo` gives
# for the same defaults.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
log=$GVM_TEST_TMP/run.log

"$GVM" topo --numa 2 >"$GVM_TEST_TMP/topo.txt" || fail "gvm topo --numa 2 failed"
vcpus=$(sed -n 's/.* \([0-9]*\) vCPUs.*/\1/p' "$GVM_TEST_TMP/topo.txt" | head -1)
"$GVM" run --nodes 2 --kernel "$PROBE" --append "probe.workloads=counter probe.counter_iters=2000" \
	>"$log" 2>&1 </dev/null
rc=$?
cat "$log"
[ $rc -eq 0 ] || fail "gvm run --nodes 2 with default vCPUs and memory exited with $rc"
grep -q '^result: PASS' "$log" || fail "the probe did not pass"
grep -q '^gvm: guest exited with status 0' "$log" || fail "no final 'guest exited' line"
grep -q "^topology: nodes=2 cpus=${vcpus:-?}\$" "$log" ||
	fail "the guest does not have gvm topo's default shape (${vcpus:-?} vCPUs in 2 nodes)"

echo "ok: the launcher's default shape reaches every instance"
