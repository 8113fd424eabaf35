#!/bin/bash
# timeout: 300
# The probe guest over 2 simulated hosts (network namespaces, each with its
# own name and address; its own name resolves to 127.0.1.1 on itself, as
# Debian's /etc/hosts says) joined by tests/tools/netrelay with 50 us
# delay, up to 1 ms jitter and 0.1% packet loss: each instance a `gvm node`
# listening on port 7100 of its own host and dialling the other by name.
# The guest must see every vCPU and node, get its IPIs, device interrupts,
# clocks in causal order, exact atomic counters and the host's SpMV
# checksums (the DSM moves its pages over the lossy link), both instances
# must exit 0, the relay must have carried the traffic, and nothing may be
# left behind.
. "$GVM_TOP/tests/net/lib.sh"
net_need
net_probe 2 2 256M
