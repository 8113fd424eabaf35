#!/bin/bash
# timeout: 300
# probe-check, the judge of the other probe tests, must reject output that
# differs from what was asked for: a CPU in the wrong node, an AP down, a
# wrong checksum, distance or memory range, a missing result or matrix.
. "$GVM_TOP/tests/probe/lib.sh"

[ -x "$GVM" ] || fail "no $GVM: run 'make'"
[ -r /dev/kvm ] || skip "no /dev/kvm"
probe_gvm 4 2 512M >"$GVM_TEST_TMP/run.txt" 2>&1 || { cat "$GVM_TEST_TMP/run.txt"; exit 1; }
log=$GVM_TEST_TMP/probe.log
check() {
	"$PROBE_CHECK" --vcpus 4 --numa 2 --mem 512M --topo "$GVM_TEST_TMP/topo.txt" \
		--ref "$GVM_TEST_TMP/ref.txt" --matrices "$GEN_MATRIX,bcsstk13.mtx" "$@"
}
check "$log" || fail "the unchanged log was rejected"
while IFS= read -r edit; do
	sed "$edit" "$log" >"$GVM_TEST_TMP/m.log"
	cmp -s "$log" "$GVM_TEST_TMP/m.log" && fail "edit '$edit' changed nothing: fix the test"
	if check "$GVM_TEST_TMP/m.log" 2>"$GVM_TEST_TMP/err"; then
		fail "probe-check accepted a log with: $edit"
	fi
	echo "rejected ($edit): $(head -1 "$GVM_TEST_TMP/err")"
done <<'EDITS'
s/cpus 2,3 mem/cpus 2,4 mem/
s/cpus 0,1 mem/cpus 0 mem/
s/^ap: cpu 3 apic 3 up.*/ap: cpu 3 apic 3 down/
/^ap: cpu 2 /d
s/checksum=0x\(.\)/checksum=0x\1f/
s/distance: node 1 20 10/distance: node 1 21 10/
s/0x10000000-0x1fffffff/0x10000000-0x1ffffffe/
s/result: PASS/result: FAIL/
/matrix=bcsstk13/d
s/topology: nodes=2 cpus=4/topology: nodes=2 cpus=3/
/topology: node 1 /d
$a error: something went wrong
EDITS
# A gvm topo that disagrees with the rules is caught too.
sed 's/^cpu 3: apic-id 3,/cpu 3: apic-id 4,/' "$GVM_TEST_TMP/topo.txt" >"$GVM_TEST_TMP/topo2.txt"
cmp -s "$GVM_TEST_TMP/topo.txt" "$GVM_TEST_TMP/topo2.txt" && fail "the gvm topo edit changed nothing"
"$PROBE_CHECK" --vcpus 4 --numa 2 --mem 512M --topo "$GVM_TEST_TMP/topo2.txt" "$log" 2>/dev/null &&
	fail "probe-check accepted a gvm topo with a wrong APIC ID"
echo "ok: probe-check rejects every altered log"
