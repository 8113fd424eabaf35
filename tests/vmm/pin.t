#!/bin/bash
# gvm run --host-cpus: the vCPU's thread is pinned to the host CPU named,
# not to the one gvm would choose (the first core's), e.g. to place
# single-instance VMs as the instances of a cluster run are placed
# (bench/cluster-bench.sh's control).
# timeout: 60
set -u
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm is missing or not usable by this user"; exit 77; }
gvm=$GVM_BUILD/gvm
[ -x "$gvm" ] || { echo "gvm is not built: run make"; exit 1; }
# the last CPU this process may use: gvm's own choice would be the first core's
cpu=$(taskset -pc $$ | sed 's/.*: //; s/.*[,-]//')
[ "$cpu" != 0 ] || { echo "SKIP: one usable CPU: nothing to tell apart"; exit 77; }
log=$GVM_TEST_TMP/pin
"$gvm" run --kernel "$GVM_BUILD/tests/vmm/spin.elf" --mem 64M --vcpus 1 --append busy \
	--host-cpus "$cpu" >"$log.out" 2>"$log.err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
pinned=
for ((i = 0; i < 200; i++)); do
	if grep -q spinning "$log.out" 2>/dev/null; then
		pinned=$(grep -l "^Cpus_allowed_list:[[:space:]]*$cpu\$" /proc/$pid/task/*/status 2>/dev/null | wc -l)
		[ "$pinned" -ge 1 ] && break
	fi
	sleep 0.1
done
grep -q spinning "$log.out" || { echo "FAIL: the guest did not start"; cat "$log.err"; exit 1; }
[ "${pinned:-0}" -ge 1 ] || {
	echo "FAIL: no thread of gvm is pinned to CPU $cpu:"
	grep -H Cpus_allowed_list /proc/$pid/task/*/status
	exit 1
}
echo "ok: the vCPU's thread runs on host CPU $cpu only"
