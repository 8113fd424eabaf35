#!/bin/bash
# timeout: 300
# The probe guest over 2 simulated hosts (as net/probe-2: network
# namespaces joined by the relay, 50 us delay, up to 1 ms jitter, 0.1%
# loss) with guest RAM's pages over the fabric transport: libfabric's tcp
# provider on each host's own interface (FI_TCP_IFACE), its endpoint
# addresses traded over the munge-authenticated links.  The guest must pass
# as over TCP, and each instance must say the fabric on its own interface
# carried its pages.
. "$GVM_TOP/tests/net/lib.sh"
. "$GVM_TOP/tests/lib/fabric.sh"
net_need
fabric_need
export FI_TCP_IFACE=$NET_IF
NET_TRANSPORT="fabric:tcp;ofi_rxm"
net_probe 2 2 256M
for r in 0 1; do
	fabric_carried "$T/r$r.log" "$NET_IF" ||
		{ net_logs; fail "rank $r did not say the fabric on $NET_IF carried its pages"; }
done
echo "ok: over 2 simulated hosts, the fabric transport on each host's interface"
