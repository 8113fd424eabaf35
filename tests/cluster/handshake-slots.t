#!/bin/bash
# timeout: 300
# Strangers cannot keep a VM from forming by holding its handshake slots:
# 20 connections to rank 0 that each send a byte every 2 s (never a whole
# handshake) are cut off 5 s after they came, whatever they send, and the
# real rank 1, which came after them, is let in (its own handshake, unanswered
# while the strangers held every slot, is tried again): the VM forms within
# --connect-timeout and the guest runs.  Rank 0 logs the strangers refused.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_listeners 2 "$@"
cluster_need
T=$GVM_TEST_TMP
peers="127.0.0.1:${port[0]},127.0.0.1:${port[1]}"

# A stranger: connects, then a byte every 2 s for 60 s (a handshake header
# takes more bytes than that).
stranger() {
	local s i
	exec {s}<>"/dev/tcp/127.0.0.1/$1" || return
	for i in $(seq 30); do
		printf x >&"$s" 2>/dev/null || break
		sleep 2
	done
}
for i in $(seq 20); do
	stranger "${port[0]}" &
	track_bg $!
done
sleep 1

# inst RANK LOG [OPTIONS]: with its own listening socket only
inst() {
	local r=$1 log=$2 close="${fd[$((1 - $1))]}>&-"
	shift 2
	eval '"$GVM" node --rank $r --peers $peers --vm-id 79 --vcpus 2 --mem 256M \
		--connect-timeout 40 --listen-fd ${fd[$r]} "$@" </dev/null >"$log" 2>&1' "$close" '&'
}
t0=$(now_ms)
inst 0 "$T/r0.log" --kernel "$PROBE" --append "probe.workloads=ipi probe.ipi_rounds=3"
p0=$!
inst 1 "$T/r1.log"
p1=$!
track_bg $p0 $p1
eval "exec ${fd[0]}>&- ${fd[1]}>&-"
wait $p0
rc0=$?
wait $p1
rc1=$?
secs=$((($(now_ms) - t0) / 1000))
cat "$T/r0.log" "$T/r1.log"
[ $rc0 = 0 ] && [ $rc1 = 0 ] ||
	fail "status $rc0 / $rc1 after $secs s: 20 strangers that trickle bytes kept rank 1 out"
grep -q "^result: PASS" "$T/r0.log" || fail "the guest did not pass"
grep -q "refused connection from 127.0.0.1" "$T/r0.log" ||
	fail "rank 0 did not log the strangers it refused"
echo "ok: 20 strangers trickling bytes at rank 0 were cut off; rank 1 joined, the guest ran ($secs s)"
