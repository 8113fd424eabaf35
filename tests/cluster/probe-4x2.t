#!/bin/bash
# timeout: 600
# The probe guest over 4 gvm instances of 2 vCPUs each: 8 vCPUs on this
# machine's few cores.  Every check of probe-2x2.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_probe 4 8 1G
