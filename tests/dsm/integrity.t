#!/bin/bash
# The DSM suites that move pages again with every frame between the nodes
# sealed (--integrity: mesh_config.integrity, an AES-GCM tag per frame
# checked before it is dispatched); each case must pass as it does without.
# test-dsm-failure's forgers write frames without tags: it runs unsealed,
# where test_integrity_injected shows such a frame refused.
# timeout: 300
set -u
. "$GVM_TOP/tests/dsm/suites.sh"
export GVM_DSM_INTEGRITY=1
dsm_suites "sealed" "tcp, every message checked (--integrity)" basic coherence stress races
