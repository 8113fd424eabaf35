#!/bin/bash
# timeout: 300
# The probe on gvm with 8 vCPUs in 4 NUMA nodes (more vCPUs than this
# machine's cores): same checks as the other shapes.
. "$GVM_TOP/tests/probe/lib.sh"
probe_gvm 8 4 1G
