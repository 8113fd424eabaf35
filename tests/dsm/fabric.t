#!/bin/bash
# The DSM suites again, over the fabric transport: libfabric's tcp provider
# (tcp;ofi_rxm) pinned to loopback, real processes, real endpoints.  The
# cases whose forger writes the TCP transport's frames say they skip; every
# other case must pass as it does over TCP.
# timeout: 300
set -u
. "$GVM_TOP/tests/dsm/suites.sh"
export FI_TCP_IFACE=lo GVM_DSM_TRANSPORT="fabric:tcp;ofi_rxm"
dsm_suites "over the fabric" "fabric: provider tcp;ofi_rxm, domain lo"
