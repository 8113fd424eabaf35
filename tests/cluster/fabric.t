#!/bin/bash
# timeout: 300
# gvm run --nodes over the fabric transport: the probe guest over 2 and 3
# instances with guest RAM's pages carried by libfabric (its tcp provider,
# pinned to loopback), judged as over TCP; each instance says which provider
# and domain carried them; gvm check over it too.  A provider that is not there stops the VM
# before the guest starts, naming it; a bad --transport, or one without
# --nodes, is refused at once.  Over verbs too where there is an RDMA device
# (not on the development machine: the test says so).
. "$GVM_TOP/tests/cluster/lib.sh"
. "$GVM_TOP/tests/lib/fabric.sh"
fabric_need
export FI_TCP_IFACE=lo
CLUSTER_TRANSPORT="fabric:tcp;ofi_rxm"
log=$GVM_TEST_TMP/probe.log
cluster_probe 2 4 512M
for r in 0 1; do
	fabric_carried "$log" lo $r || fail "rank $r did not say the fabric carried its pages"
done
cluster_probe 3 3 384M
[ "$(grep -c "node: guest RAM's pages go over fabric: provider tcp;ofi_rxm" "$log")" = 3 ] ||
	fail "not every one of 3 instances said the fabric carried its pages"

"$GVM" run --nodes 2 --kernel "$PROBE" --vcpus 2 --mem 256M --transport fabric:nosuch \
	>"$GVM_TEST_TMP/nosuch.log" 2>&1 </dev/null
rc=$?
[ $rc != 0 ] || fail "a provider that is not there: gvm exited 0"
grep -q "provider 'nosuch' is not available here" "$GVM_TEST_TMP/nosuch.log" ||
	{ cat "$GVM_TEST_TMP/nosuch.log"; fail "a provider that is not there is not named"; }
grep -q "stopped before the guest started" "$GVM_TEST_TMP/nosuch.log" ||
	fail "the VM did not stop before the guest started"

# gvm check over the fabric: its table, and each instance naming what carried its pages
"$GVM" check --nodes 2 --vcpus 2 --flag-factor 1000 --transport "fabric:tcp;ofi_rxm" \
	>"$GVM_TEST_TMP/check.out" 2>"$GVM_TEST_TMP/check.err" </dev/null ||
	{ cat "$GVM_TEST_TMP/check.out" "$GVM_TEST_TMP/check.err"; fail "gvm check over the fabric failed"; }
grep -q "^gvm check: 2 nodes joined" "$GVM_TEST_TMP/check.out" ||
	{ cat "$GVM_TEST_TMP/check.out"; fail "gvm check over the fabric printed no table"; }
for r in 0 1; do
	fabric_carried "$GVM_TEST_TMP/check.err" lo $r ||
		fail "gvm check's rank $r did not say the fabric carried its pages"
done

cluster_refused "'udp' is not tcp, fabric or fabric:PROVIDER" --nodes 2 --kernel "$PROBE" --transport udp
cluster_refused "'fabric:' is not tcp, fabric or fabric:PROVIDER" --nodes 2 --kernel "$PROBE" --transport fabric:
cluster_refused "give --nodes too" --kernel "$PROBE" --transport fabric
echo "ok: the fabric transport carries the guest over 2 and 3 instances and gvm check; bad choices refused"

# verbs (InfiniBand, RoCE) only where there is an RDMA device: say so when there is none.
"$GVM" run --nodes 2 --kernel "$PROBE" --vcpus 2 --mem 256M --transport "fabric:verbs;ofi_rxm" \
	--append probe.workloads=counter >"$GVM_TEST_TMP/verbs.log" 2>&1 </dev/null
if grep -q "provider 'verbs;ofi_rxm' is not available here" "$GVM_TEST_TMP/verbs.log"; then
	echo "note: no RDMA device here (libfabric offers no verbs provider): verbs is not tested"
else
	CLUSTER_TRANSPORT="fabric:verbs;ofi_rxm"
	cluster_probe 2 4 512M
	echo "ok: the fabric transport over verbs"
fi
