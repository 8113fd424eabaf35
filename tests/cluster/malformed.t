#!/bin/bash
# timeout: 300
# A peer that passes authentication (same VM, same uid) but then speaks
# wrongly must stop the VM with an error that names it, never crash rank 0
# or let it boot a guest some instance did not agree to.  tests/tools/
# forge-peer takes the place of the other ranks and sends:
#  - READY twice from rank 1 of a 3-instance VM whose rank 2 stays silent:
#    counted twice it would stand in for rank 2's, and rank 0 would boot;
#  - after a proper READY, an I/O request for the LAPIC page, which only a
#    vCPU's own instance serves: rank 0 would run it for a vCPU it does not
#    have.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_listeners 2 "$@"
cluster_need
FORGE=$GVM_BUILD/tests/tools/forge-peer
T=$GVM_TEST_TMP
# Message types and fields of vmm/cluster-internal.h.
CL_READY=0x201 CL_IO_REQ=0x209 CH_CTRL=0 CH_IO=1 CHANNELS=4
IO_REQ_LAPIC_READ="$((1 | 4 << 16 | 1 << 25)):0xfee00020:0"

# rank0 SOCKET VMID NODES LOG: gvm node rank 0 on socket SOCKET, in the background.
rank0() {
	local s=$1 vmid=$2 nodes=$3 log=$4 peers=127.0.0.1:${port[$1]} other=$((1 - $1)) r
	for r in $(seq 2 "$nodes"); do peers="$peers,127.0.0.1:$((40000 + r))"; done
	eval '"$GVM" node --rank 0 --vm-id "$vmid" --listen-fd "${fd[$s]}" --peers "$peers" \
		--vcpus "$nodes" --mem $((64 * nodes))M --connect-timeout 60 --kernel "$PROBE" \
		--append probe.workloads=none </dev/null >"$log" 2>&1 &' "${fd[$other]}>&-"
	r0=$!
	track_bg $r0
	eval "exec ${fd[$s]}>&-"
}

# forge RANK NODES SOCKET [ARGS]...: a peer with a valid credential.
forge() {
	local rank=$1 nodes=$2 s=$3
	shift 3
	echo "+ forge-peer rank $rank $*"
	"$FORGE" --to "127.0.0.1:${port[$s]}" --vm-id "$vmid" --rank "$rank" --nodes "$nodes" \
		--channels $CHANNELS --expect accepted "$@"
}

# judge LOG WHAT REASON: rank 0 failed (not crashed), naming rank 1 and the reason.
judge() {
	local log=$1 what=$2 reason=$3 rc
	wait $r0
	rc=$?
	cat "$log"
	[ $rc -ne 0 ] || fail "$what: rank 0 exited 0"
	[ $rc -lt 128 ] || fail "$what: rank 0 died of signal $((rc - 128))"
	grep -q "rank 1 (127.0.0.1:[0-9]*) sent a malformed message: $reason" "$log" ||
		fail "$what: rank 0 did not name rank 1 and '$reason'"
}

vmid=4246
rank0 0 $vmid 3 "$T/ready.log"
forge 2 3 0 --hold 4 >"$T/forge2.log" 2>&1 &
track_bg $!
forge 1 3 0 --hold 4 --send "$CH_CTRL:$CL_READY:0:0:0" --send "$CH_CTRL:$CL_READY:0:0:0" ||
	fail "the forged rank 1 was not accepted"
judge "$T/ready.log" "READY twice" "said ready twice"
grep -q "guest booting\|^ready:" "$T/ready.log" && fail "READY twice: rank 0 booted the guest"

vmid=4247
rank0 1 $vmid 2 "$T/io.log"
forge 1 2 1 --hold 4 --send "$CH_CTRL:$CL_READY:0:0:0" --gap 1000 \
	--send "$CH_IO:$CL_IO_REQ:$IO_REQ_LAPIC_READ" || fail "the forged rank 1 was not accepted"
judge "$T/io.log" "LAPIC access forwarded" "I/O request of vCPU 1 at address 0xfee00020 (.*), which its own instance handles"
echo "ok: a second READY and a forwarded LAPIC access are refused, naming rank 1"
