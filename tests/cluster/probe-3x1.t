#!/bin/bash
# timeout: 300
# The probe guest over 3 gvm instances of 1 vCPU each: every check of
# probe-2x2 (topology, APs, IPIs, device interrupts, clocks, counters,
# checksums of the generated and real matrices, exit status).
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_probe 3 3 384M
