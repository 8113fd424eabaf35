#!/bin/bash
# timeout: 300
# The probe on gvm with 8 GiB in 2 NUMA nodes: node 0's RAM is split by the
# MMIO hole at 3 GiB and continues above 4 GiB, node 1's is all above 4 GiB,
# so the probe maps RAM beyond its static 4 GiB and places node 1's data
# there.  Same checks as the other shapes.
. "$GVM_TOP/tests/probe/lib.sh"
probe_gvm 2 2 8G
