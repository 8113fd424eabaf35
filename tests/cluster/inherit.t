#!/bin/bash
# timeout: 300
# What a Slurm plugin (root) will hand an unprivileged instance: its
# listening socket, /dev/kvm and /dev/userfaultfd, as inherited descriptors.
# Two instances get all three and run the probe; while it runs, each must
# hold /dev/kvm through the descriptor it was given and no other.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_listeners 2 "$@"
cluster_need
[ -w /dev/userfaultfd ] || skip "no writable /dev/userfaultfd"
T=$GVM_TEST_TMP
peers="127.0.0.1:${port[0]},127.0.0.1:${port[1]}"

# inst RANK LOG [OPTIONS]: its socket, /dev/kvm as 20, /dev/userfaultfd as 21
inst() {
	local r=$1 log=$2 close="${fd[$((1 - $1))]}>&-"
	shift 2
	eval '"$GVM" node --rank $r --peers $peers --vm-id 77 --vcpus 2 --mem 256M \
		--listen-fd ${fd[$r]} --kvm-fd 20 --uffd-fd 21 "$@" \
		20<>/dev/kvm 21<>/dev/userfaultfd </dev/null >"$log" 2>&1' "$close" '&'
}

: >"$T/r0.log"
inst 0 "$T/r0.log" --kernel "$PROBE" \
	--append "probe.workloads=ipi,clock,counter,memcpy probe.counter_iters=300000 probe.ipi_rounds=3 \
	probe.memcpy_size=32M probe.memcpy_reps=200"
p0=$!
inst 1 "$T/r1.log"
p1=$!
track_bg $p0 $p1
eval "exec ${fd[0]}>&- ${fd[1]}>&-"  # the instances have them
wait_for_line "$T/r0.log" "^ready:" 120 || { cat "$T/r0.log" "$T/r1.log"; fail "the guest never got ready"; }
for p in $p0 $p1; do
	kvm=$(for f in /proc/$p/fd/*; do [ "$(readlink "$f")" = /dev/kvm ] && basename "$f"; done)
	echo "instance $p holds /dev/kvm as: $kvm"
	[ "$kvm" = 20 ] || fail "instance $p holds /dev/kvm as '$kvm', not only as the descriptor 20 it was given"
done
wait $p0
rc0=$?
wait $p1
rc1=$?
cat "$T/r0.log" "$T/r1.log"
[ $rc0 -eq 0 ] && [ $rc1 -eq 0 ] || fail "status $rc0 / $rc1, not 0"
grep -q "^result: PASS" "$T/r0.log" || fail "the guest did not pass"
echo "ok: listening socket, /dev/kvm and /dev/userfaultfd handed over; the guest ran"
