#!/bin/bash
# timeout: 300
# The probe guest on gvm with 1 vCPU(s) in 1 NUMA node(s): it must print exactly
# this topology (APIC IDs, memory ranges, distances, as `gvm topo` says), start
# every AP, compute the host's SpMV checksums on a generated matrix and on the
# real ones, and exit 0.
. "$GVM_TOP/tests/probe/lib.sh"
probe_gvm 1 1 512M
