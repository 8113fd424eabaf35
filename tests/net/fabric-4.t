#!/bin/bash
# timeout: 300
# The probe guest over 4 simulated hosts (as net/probe-4: 50 us delay, up to
# 1 ms jitter, 0.1% loss on every link) with guest RAM's pages over the
# fabric transport, libfabric's tcp provider on each host's own interface.
# Every check of probe-4, and each instance must say the fabric on its own
# interface carried its pages.
. "$GVM_TOP/tests/net/lib.sh"
. "$GVM_TOP/tests/lib/fabric.sh"
net_need
fabric_need
export FI_TCP_IFACE=$NET_IF
NET_TRANSPORT="fabric:tcp;ofi_rxm"
net_probe 4 4 512M
for r in 0 1 2 3; do
	fabric_carried "$T/r$r.log" "$NET_IF" ||
		{ net_logs; fail "rank $r did not say the fabric on $NET_IF carried its pages"; }
done
echo "ok: over 4 simulated hosts, the fabric transport on each host's interface"
