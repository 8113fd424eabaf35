#!/bin/bash
# A soak over the network simulation (not part of the default tier: it runs
# for many minutes): the probe over 4 simulated hosts, 2 vCPUs each, with
# 50 us delay, 0-1 ms jitter and 0.1% loss, its atomic counters shared by
# every vCPU (SOAK_ITERS increments per vCPU, 125000 by default: 10^6 in
# all) and its checksummed copies and SpMV over pages of every node.  Passes
# when every increment is there (no lost update), every checksum matches the
# host's (no bad read), every instance exits 0 and nothing is left behind.
#
#   usage (as root, after make, make tests, make images; munged running or
#   startable):
#     GVM_TOP=$PWD GVM_BUILD=$PWD/build GVM_IMAGES=$PWD/build/images \
#       GVM_TEST_TMP=$(mktemp -d) tests/net/soak.sh
iters=${SOAK_ITERS:-125000}
export NET_APPEND="probe.iters=20 probe.memcpy_size=4M probe.memcpy_reps=20 probe.counter_iters=$iters probe.ipi_rounds=20"
export NET_PROBE_WAIT_MS=${SOAK_WAIT_MS:-3600000}
. "$GVM_TOP/tests/net/lib.sh"
net_need
start=$(date +%s)
net_probe 4 8 1G
grep '^counter:' "$T/r0.log" 2>/dev/null
echo "soak: $((8 * iters)) atomic increments over 4 hosts in $(($(date +%s) - start)) s"
