#!/bin/bash
# timeout: 600
# The x2APIC guest of probe-x2apic (260 vCPUs over 4 instances, APIC IDs up
# to 448) with guest RAM's pages carried by the fabric transport (tcp
# provider on loopback): the APs' start, IPIs by x2APIC ID and logical
# destination, and device interrupts all cross instances, so every one of
# them depends on pages the fabric moved.
. "$GVM_TOP/tests/cluster/lib.sh"
. "$GVM_TOP/tests/lib/fabric.sh"
fabric_need
export FI_TCP_IFACE=lo
CLUSTER_TRANSPORT="fabric:tcp;ofi_rxm"
log=$GVM_TEST_TMP/probe.log
cluster_x2apic_probe 260 x2apic
grep -q "^ipi: from=0 to=259 node=3 .* dest=logical$" "$log" ||
	fail "no logical IPI to cpu 259 (APIC ID 448)"
grep -q "^irq: to=259 node=3 " "$log" || fail "no device interrupt at cpu 259 (APIC ID 448)"
for r in 0 1 2 3; do
	fabric_carried "$log" lo $r || fail "rank $r did not say the fabric carried its pages"
done
echo "ok: 260 vCPUs in x2APIC mode over 4 instances, the fabric transport carrying their pages"
