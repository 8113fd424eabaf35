#!/bin/bash
# The DSM suites again with every frame between the nodes sealed
# (--integrity: mesh_config.integrity, an AES-GCM tag per frame checked
# before it is dispatched).  The cases whose forger writes frames without
# tags say they skip (test-dsm-failure's test_integrity_injected shows such
# a frame refused); every other case must pass as it does without.
# timeout: 300
set -u
. "$GVM_TOP/tests/dsm/suites.sh"
export GVM_DSM_INTEGRITY=1
dsm_suites "sealed" "tcp, every message checked (--integrity)"
