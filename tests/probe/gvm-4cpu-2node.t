#!/bin/bash
# timeout: 300
# The probe guest on gvm with 4 vCPU(s) in 2 NUMA node(s): it must print exactly
# this topology (APIC IDs, memory ranges, distances, as `gvm topo` says), start
# every AP, compute the host's SpMV checksums on a generated matrix and on the
# real ones, and exit 0.  Then again with every thread's data on node 0
# (probe.placement=naive): same results.
. "$GVM_TOP/tests/probe/lib.sh"
probe_gvm 4 2 512M
probe_gvm 4 2 512M probe.placement=naive
grep -q "placement=naive" "$GVM_TEST_TMP/probe.log" || fail "the naive run did not say so"
