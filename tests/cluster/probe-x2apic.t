#!/bin/bash
# timeout: 600
# The probe guest with more than 255 vCPUs: 260 over 4 gvm instances (65
# each, APIC IDs up to 448), most of them halted in their kernels.  gvm
# makes it an x2APIC machine by itself; the probe reads MADT x2APIC and
# SRAT x2APIC affinity entries, turns x2APIC on in every CPU (the MSRs, the
# 64-bit ICR) and starts every AP across instances; IPI round trips reach
# every CPU by x2APIC ID and by its cluster-model logical destination; the
# UART's interrupt reaches every CPU, those above 255 through the IOAPIC's
# extended destination ID.  probe-check compares all of it with the
# topology gvm topo prints.  Then 252 vCPUs, the most that 4 NUMA nodes
# hold in xAPIC (APIC IDs up to 254): the probe stays in xAPIC mode.
. "$GVM_TOP/tests/cluster/lib.sh"
log=$GVM_TEST_TMP/probe.log
cluster_x2apic_probe 260 x2apic
# The largest APIC ID (node 3, 65th CPU: 3 << 7 | 64) and a logical IPI to it.
grep -q "^ipi: from=0 to=259 node=3 .* dest=logical$" "$log" ||
	fail "no logical IPI to cpu 259 (APIC ID 448)"
grep -q "^irq: to=259 node=3 " "$log" || fail "no device interrupt at cpu 259 (APIC ID 448)"
cluster_x2apic_probe 252 xapic
echo "ok: 260 vCPUs in x2APIC mode and 252 in xAPIC mode over 4 instances: APs, IPIs," \
	"device interrupts"
