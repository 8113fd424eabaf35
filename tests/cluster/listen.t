#!/bin/bash
# timeout: 300
# gvm node listens on every address of its host, at its port in --peers,
# not at the address its own entry resolves to there: Debian's /etc/hosts
# maps a host's own name to 127.0.1.1, where no other node can reach it.
# Two instances, each with an /etc/hosts of its own (a mount namespace), in
# which the name of rank 0's node resolves to 127.0.1.1 on that node itself
# and to 127.0.0.1 on rank 1's:
#   - they form the VM and run the probe;
#   - with --listen 127.0.1.1, rank 0 listens there alone, as it used to:
#     rank 1 cannot reach it and says so within --connect-timeout, naming
#     rank 0, and both end.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_listeners 2 "$@"
cluster_need
[ "$(id -u)" = 0 ] || skip "a mount namespace of its own (/etc/hosts per instance) needs root"
command -v unshare >/dev/null || skip "no unshare (util-linux)"
T=$GVM_TEST_TMP
name=gvtest-node0
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >"$T/hosts.rank0"
printf '127.0.0.1 localhost %s\n' "$name" >"$T/hosts.rank1"
unshare -m -- sh -c "mount --bind '$T/hosts.rank0' /etc/hosts && getent hosts $name" |
	grep -q '^127\.0\.1\.1 ' || skip "cannot give an instance an /etc/hosts of its own"
# rank 0 opens its own socket: give its port back first
p0=${port[0]}
eval "exec ${fd[0]}>&-"
peers="$name:$p0,127.0.0.1:${port[1]}"

# inst RANK LOG [OPTIONS]: in a mount namespace with hosts.RANK as /etc/hosts
inst() {
	local r=$1 log=$2
	shift 2
	unshare -m -- sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' sh \
		"$T/hosts.rank$r" "$GVM" node --rank "$r" --peers "$peers" --vm-id 78 --vcpus 2 \
		--mem 256M --connect-timeout 10 "$@" </dev/null >"$log" 2>&1 &
}

inst 0 "$T/r0.log" --kernel "$PROBE" --append "probe.workloads=ipi probe.ipi_rounds=3"
a0=$!
inst 1 "$T/r1.log" --listen-fd "${fd[1]}"
a1=$!
track_bg $a0 $a1
wait $a0
rc0=$?
wait $a1
rc1=$?
cat "$T/r0.log" "$T/r1.log"
[ $rc0 = 0 ] && [ $rc1 = 0 ] || fail "status $rc0 / $rc1, not 0: rank 1 could not reach rank 0 at" \
	"the address its name has on rank 1's node?"
grep -q "^result: PASS" "$T/r0.log" || fail "the guest did not pass"
echo "ok: rank 0's name resolves to 127.0.1.1 on its own node: it listened on every address," \
	"rank 1 reached it at 127.0.0.1, the guest ran"

# The same with --listen 127.0.1.1: unreachable, said, and over.
inst 0 "$T/r0b.log" --kernel "$PROBE" --listen 127.0.1.1 --append "probe.workloads=ipi"
a0=$!
inst 1 "$T/r1b.log" --listen-fd "${fd[1]}"
a1=$!
track_bg $a0 $a1
wait $a1
rc1=$?
wait $a0
rc0=$?
cat "$T/r0b.log" "$T/r1b.log"
[ $rc1 != 0 ] || fail "rank 1 exited 0, though rank 0 listened where it could not reach it"
[ $rc0 != 0 ] || fail "rank 0 exited 0 without rank 1"
grep -q "cannot reach rank 0 at $name:$p0" "$T/r1b.log" || fail "rank 1 does not say it cannot reach rank 0 ($name:$p0)"
echo "ok: with --listen 127.0.1.1, rank 1 could not reach rank 0 and said so; both ended ($rc0 / $rc1)"
