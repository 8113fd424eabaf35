#!/bin/bash
# timeout: 300
# Every link is authenticated with munge at set-up.  Rank 0 of a 2-instance
# VM waits for its peer while tests/tools/forge-peer knocks with a
# credential for another VM id, one signed for another uid (nobody), and
# claims that do not fit (wrong node count, addressed to rank 1, claiming
# rank 0), and a valid credential answering the challenge of another
# connection (one read off the network and presented first elsewhere): each
# must be refused, and logged by rank 0 with its own reason.  Then the real
# rank 1 joins and the guest runs to completion.
#
# Second VM: a peer with a valid credential (same VM, same uid: munge cannot
# tell it from gvm) takes rank 1's place and leaves without speaking: rank 0
# must fail cleanly (non-zero, naming rank 1, no hang), and the real rank 1,
# whose slot is taken, must give up cleanly too.
#
# The instances' listening sockets are bound once for the whole test by
# tests/tools/with-listener (no race for free ports), which runs this script
# again with their descriptors and ports as arguments.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_listeners 4 "$@"
cluster_need
FORGE=$GVM_BUILD/tests/tools/forge-peer
T=$GVM_TEST_TMP
VM="--vcpus 2 --mem 256M"

# node RANK VMID SOCKET [OPTIONS]...: gvm node on socket SOCKET (0-3) of a
# 2-instance VM whose ranks listen on sockets SOCKET - RANK and SOCKET - RANK + 1.
# Each instance inherits only its own socket: a copy left open elsewhere
# would keep a socket listening after its instance closed it.
node() {
	local rank=$1 vmid=$2 s=$3 base=$(($3 - $1)) close= k
	shift 3
	for k in 0 1 2 3; do [ $k = "$s" ] || close="$close ${fd[$k]}>&-"; done
	eval '"$GVM" node --rank "$rank" --vm-id "$vmid" --listen-fd "${fd[$s]}" \
		--peers "127.0.0.1:${port[$base]},127.0.0.1:${port[$((base + 1))]}" $VM "$@" \
		</dev/null' "$close"
}

# The test's own copy of socket S, once its instance has it.
drop() { eval "exec ${fd[$1]}>&-"; }

forge() {
	echo "+ forge-peer $*"
	"$FORGE" --to "127.0.0.1:$P0" "$@" || fail "forge-peer $* did not get the answer it expected"
}

P0=${port[0]}
node 0 4242 0 --connect-timeout 120 --kernel "$PROBE" \
	--append "probe.workloads=ipi,counter probe.counter_iters=2000 probe.ipi_rounds=3" \
	>"$T/r0.log" 2>&1 &
r0=$!
track_bg $r0
drop 0
forge --vm-id 4243 --rank 1 --nodes 2 --expect refused
if [ "$(id -u)" = 0 ]; then
	forge --vm-id 4242 --rank 1 --nodes 2 --uid nobody --expect refused
else
	echo "(not root: the other-uid forger cannot become another user; skipped)"
fi
forge --vm-id 4242 --rank 1 --nodes 3 --expect refused
forge --vm-id 4242 --rank 1 --nodes 2 --target 1 --expect refused
forge --vm-id 4242 --rank 0 --nodes 2 --expect refused
forge --vm-id 4242 --rank 1 --nodes 2 --replay --expect refused
echo "+ the real rank 1"
node 1 4242 1 >"$T/r1.log" 2>&1
rc1=$?
drop 1
wait $r0
rc0=$?
cat "$T/r0.log" "$T/r1.log"
[ $rc0 -eq 0 ] && [ $rc1 -eq 0 ] || fail "the VM did not run to completion (rank 0: $rc0, rank 1: $rc1)"
grep -q "^result: PASS" "$T/r0.log" || fail "the guest did not pass"
grep -q "refused connection from 127.0.0.1:[0-9]*: peer belongs to VM 4243, this is VM 4242" \
	"$T/r0.log" || fail "rank 0 did not log the refusal of another VM's peer"
if [ "$(id -u)" = 0 ]; then
	grep -q "refused connection from 127.0.0.1:[0-9]*: credential of uid $(id -u nobody), expected uid 0" \
		"$T/r0.log" || fail "rank 0 did not log the refusal of another uid's peer"
fi
refusal() {
	grep -q "refused connection from 127.0.0.1:[0-9]*: $1" "$T/r0.log" ||
		fail "rank 0 did not log the refusal of $2"
}
refusal "claim does not fit this VM (from 1 to 0 channel 0 of 3 nodes)" "a 3-node claim"
refusal "claim does not fit this VM (from 1 to 1 channel 0 of 2 nodes)" "a claim addressed to rank 1"
refusal "unexpected peer: rank 0 channel 0" "a peer claiming rank 0"
refusal "the credential answers another connection's challenge" "a credential made for another connection"

P0=${port[2]}
node 0 4244 2 --connect-timeout 120 --kernel "$PROBE" >"$T/r0b.log" 2>&1 &
r0=$!
track_bg $r0
drop 2
forge --vm-id 4244 --rank 1 --nodes 2 --channels 4 --hold 2 --expect accepted
start=$(now_ms)
node 1 4244 3 --connect-timeout 3 >"$T/r1b.log" 2>&1
rc1=$?
wait $r0
rc0=$?
cat "$T/r0b.log" "$T/r1b.log"
echo "rank 0: $rc0, rank 1: $rc1, $(($(now_ms) - start)) ms"
[ $rc0 -ne 0 ] || fail "rank 0 exited 0 with an impostor as rank 1"
grep -q "rank 1 (127.0.0.1:${port[3]}) lost" "$T/r0b.log" || fail "rank 0 did not name rank 1 as lost"
[ $rc1 -ne 0 ] || fail "the real rank 1 exited 0 without its VM"
grep -q "rank 0 at 127.0.0.1:$P0" "$T/r1b.log" || fail "the real rank 1 did not say what failed"
echo "ok: forged peers refused and logged, the VM ran; an impostor with valid credentials fails it cleanly"
