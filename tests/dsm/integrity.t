#!/bin/bash
# The DSM suites that move pages again with every frame between the nodes
# sealed (--integrity: mesh_config.integrity, an AES-GCM tag per frame
# checked before it is dispatched); each case must pass as it does without.
# test-dsm-failure's forgers seal what they send, as a peer with the keys
# would; the bytes that are no frame skip (test_integrity_injected shows a
# frame without its tag refused).
# timeout: 300
set -u
. "$GVM_TOP/tests/dsm/suites.sh"
export GVM_DSM_INTEGRITY=1
dsm_suites "sealed" "tcp, every message checked (--integrity)" basic coherence stress races failure
