#!/bin/bash
# The DSM suites again, over the fabric transport: libfabric's tcp provider
# (tcp;ofi_rxm) pinned to loopback, real processes, real endpoints.  The
# forging peers of test-dsm-failure and test-dsm-races open the same
# transport (tests/dsm/cluster.h's link) and send their messages through
# it; what only TCP can carry (bytes that are no frame, a header that lies
# about its length), sealed frames and a check of TCP's sockets say they
# skip.  Every other case must pass as it does over TCP.
# timeout: 600
set -u
. "$GVM_TOP/tests/dsm/suites.sh"
. "$GVM_TOP/tests/lib/fabric.sh"
fabric_need
export FI_TCP_IFACE=lo GVM_DSM_TRANSPORT="fabric:tcp;ofi_rxm"
dsm_suites "over the fabric" "fabric: provider tcp;ofi_rxm, domain lo"
