#!/bin/bash
# timeout: 600
# The probe guest over 4 gvm instances of 2 vCPUs each (as probe-4x2) with
# guest RAM's pages carried by the fabric transport: libfabric's tcp
# provider pinned to loopback.  Every check of probe-4x2, and each instance
# must say the fabric carried its pages.
. "$GVM_TOP/tests/cluster/lib.sh"
. "$GVM_TOP/tests/lib/fabric.sh"
fabric_need
export FI_TCP_IFACE=lo
CLUSTER_TRANSPORT="fabric:tcp;ofi_rxm"
cluster_probe 4 8 1G
for r in 0 1 2 3; do
	fabric_carried "$GVM_TEST_TMP/probe.log" lo $r || fail "rank $r did not say the fabric carried its pages"
done
echo "ok: 4 instances of 2 vCPUs over the fabric transport"
