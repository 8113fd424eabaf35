#!/bin/bash
# timeout: 300
# A peer that passes authentication (same VM, same uid) but then speaks
# wrongly must stop the VM with an error that names it and the fault, close
# its connection, and never crash rank 0 or let it boot a guest some
# instance did not agree to.  tests/tools/forge-peer takes the place of the
# other ranks and sends:
#  - READY twice from rank 1 of a 3-instance VM whose rank 2 stays silent:
#    counted twice it would stand in for rank 2's, and rank 0 would boot;
#  - after a proper READY, an I/O request for the LAPIC page, which only a
#    vCPU's own instance serves: rank 0 would run it for a vCPU it does not
#    have;
#  - one message of each kind of the control and I/O channels that breaks
#    one of rank 0's checks (vmm/cluster.c cl_msg_check, cluster-io.c,
#    cluster-time.c), each to a fresh rank 0 of a 2-instance VM (vCPU 0 on
#    rank 0, vCPU 1 on the forged rank 1), one after the other on one
#    listening socket.
. "$GVM_TOP/tests/cluster/lib.sh"
# Message types and fields of vmm/cluster-internal.h.
CL_READY=0x201 CL_IO_REQ=0x209 CH_CTRL=0 CH_IO=1 CHANNELS=4
IO_REQ_LAPIC_READ="$((1 | 4 << 16 | 1 << 25)):0xfee00020:0"
# WHAT|FRAMES (CH:TYPE:A0:A1:A2[:TEXT], space-separated)|REASON (grep pattern)
CASES=(
	"IPI with a payload|0:0x204:0:0x30:1:x|IPI with a payload"
	"IPI for a vCPU elsewhere|0:0x204:1:0x30:1|IPI for vCPU 1, which does not run here"
	"IPI with unknown bits|0:0x204:0:0x10030:1|IPI with unknown bits 0x10030"
	"IPI of mode SMI|0:0x204:0:0x230:1|IPI with delivery mode 2"
	"IPI from rank 0's vCPU|0:0x204:0:0x30:0|IPI claiming to come from vCPU 0"
	"DEST of rank 0's vCPU|0:0x205:0:0:0xffffffff|destination change of vCPU 0, which the sender does not run"
	"DEST with APIC ID 256|0:0x205:1:0x100:0xffffffff|destination change with APIC ID 0x100"
	"DEST_ACK of a vCPU elsewhere|0:0x206:1:0:0|acknowledgement for vCPU 1, which does not run here"
	"DEST_ACK twice|0:0x206:0:0:0 0:0x206:0:0:0|more acknowledgements for vCPU 0 than instances"
	"EOI of vector 5|0:0x207:5:0:0|malformed EOI (vector 5)"
	"STOP with status 300|0:0x208:300:0:0|malformed stop (status 300)"
	"READY of kind 2|0:0x201:2:0:0|malformed ready message"
	"heartbeat with an argument|0:0x20b:1:0:0|malformed heartbeat"
	"SILENT from rank 1|0:0x20c:30:0:0|malformed console silence report (30 s)"
	"clock ping with arguments|0:0x202:1:1:0|malformed clock sample request"
	"clock pong to rank 0|0:0x203:1:0:0|malformed clock sample from rank 1"
	"clock lead of 0|0:0x20d:0:0:0|malformed clock lead (0 cycles)"
	"clock lead over a step not taken|0:0x20d:100:5:0|a clock lead over a step not taken (5)"
	"I/O request on the control channel|0:0x209:0:0:0|unexpected message type 0x209 on the control channel"
	"I/O request with a payload|1:0x209:0x10001:0x3f8:0:abc|I/O message 0x209 with flags 0x0 sequence 0 length 3"
	"I/O request with unknown bits|1:0x209:0x4010001:0x3f8:0|I/O request with unknown bits 0x4010001"
	"I/O request of rank 0's vCPU|1:0x209:0x10000:0x3f8:0|I/O request of vCPU 0, which the sender does not run"
	"I/O request of 3 bytes|1:0x209:0x30001:0x3f8:0|I/O request of 3 bytes at port 0x3f8"
	"I/O write wider than its length|1:0x209:0x1010001:0x3f8:0x100|I/O request of 1 bytes carrying 0x100"
	"I/O read carrying data|1:0x209:0x10001:0x3f8:1|I/O read request carrying data"
	"I/O reply to rank 0|1:0x20a:1:0:0|unexpected message type 0x20a on the I/O channel"
)
cluster_listeners 3 "$@"
cluster_need
FORGE=$GVM_BUILD/tests/tools/forge-peer
T=$GVM_TEST_TMP

# rank0 SOCKET VMID NODES LOG [keep]: gvm node rank 0 on socket SOCKET, in
# the background; the test closes its copy of the socket unless told to keep
# it for the next rank 0.
rank0() {
	local s=$1 vmid=$2 nodes=$3 log=$4 keep=${5:-} peers=127.0.0.1:${port[$1]} others= i r
	for r in $(seq 2 "$nodes"); do peers="$peers,127.0.0.1:$((40000 + r))"; done
	for i in "${!fd[@]}"; do [ "$i" = "$s" ] || others="$others ${fd[$i]}>&-"; done
	eval '"$GVM" node --rank 0 --vm-id "$vmid" --listen-fd "${fd[$s]}" --peers "$peers" \
		--vcpus "$nodes" --mem $((64 * nodes))M --connect-timeout 60 --kernel "$PROBE" \
		--append probe.workloads=none </dev/null >"$log" 2>&1 &' "$others"
	r0=$!
	track_bg $r0
	[ -n "$keep" ] || eval "exec ${fd[$s]}>&-"
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

for i in "${!CASES[@]}"; do
	IFS='|' read -r what frames reason <<<"${CASES[$i]}"
	vmid=$((5000 + i))
	sends=()
	for f in $frames; do sends+=(--send "$f"); done
	rank0 2 $vmid 2 "$T/case$i.log" keep
	forge 1 2 2 --hold 20 "${sends[@]}" >"$T/forge$i.log" 2>&1 ||
		{ cat "$T/forge$i.log"; fail "$what: the forged rank 1 was not accepted"; }
	judge "$T/case$i.log" "$what" "$reason"
	grep -q "the instance closed the connection" "$T/forge$i.log" ||
		fail "$what: rank 0 did not close the connection"
done
echo "ok: a second READY, a forwarded LAPIC access and ${#CASES[@]} malformed messages are refused, naming rank 1"
