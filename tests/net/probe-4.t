#!/bin/bash
# timeout: 300
# The probe guest over 4 simulated hosts, 1 vCPU each, every link with
# 50 us delay, up to 1 ms jitter and 0.1% packet loss: every check of
# probe-2 (topology, APs, IPIs, device interrupts, clocks, counters, SpMV
# checksums, exit status 0 everywhere, traffic through the relay, nothing
# left behind).
. "$GVM_TOP/tests/net/lib.sh"
net_need
net_probe 4 4 512M
