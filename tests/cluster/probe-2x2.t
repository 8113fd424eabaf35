#!/bin/bash
# timeout: 300
# The probe guest over 2 gvm instances of 2 vCPUs each (gvm run --nodes 2):
# it must see all 4 vCPUs, one NUMA node per instance with its CPUs, memory
# and the SLIT, start every AP (2 of them by INIT/SIPI across instances),
# get IPI round trips by APIC ID and by LDR bit to every CPU, the UART's
# interrupt at every CPU (and the EOIs back), TSC and kvmclock in causal
# order between every pair, exact atomic counters, the host's SpMV checksums
# on a generated matrix and on the three SuiteSparse matrices, and exit 0.
# Then again with every SpMV block first written on rank 0 (naive placement),
# and two untimed memcpy passes (probe.memcpy_warmups) where the first ran one.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_probe 2 4 512M
cluster_probe 2 4 512M "probe.placement=naive probe.memcpy_warmups=2"
grep -q "placement=naive" "$GVM_TEST_TMP/probe.log" || fail "the naive run did not say so"
