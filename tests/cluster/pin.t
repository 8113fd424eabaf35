#!/bin/bash
# timeout: 120
# Each instance runs only its own vCPUs (those of its NUMA node), each
# pinned to one host CPU, and instances on one host do not share CPUs while
# there are enough: 2 instances of 1 vCPU each, looked at from /proc while
# the guest runs (the vCPU threads are named vcpuN, N the guest's CPU index).
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
command -v setsid >/dev/null || skip "no setsid"
log=$GVM_TEST_TMP/pin.log

setsid "$GVM" run --nodes 2 --vcpus 2 --mem 256M --kernel "$PROBE" \
	--append "probe.workloads=counter probe.counter_iters=1000000000" >"$log" 2>&1 </dev/null &
launcher=$!
track_bg $launcher
wait_for_line "$log" "^ready:" 120 || { cat "$log"; fail "the guest never got ready"; }
inst=$(cluster_instances $launcher)
[ "$(wc -l <<<"$inst")" = 2 ] || fail "expected 2 instances of launcher $launcher, found: $inst"

pins=
while read -r pid rank; do
	vcpus=
	for t in /proc/$pid/task/*; do
		name=$(cat "$t/comm" 2>/dev/null)
		case $name in vcpu*) ;; *) continue ;; esac
		cpus=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status")
		echo "rank $rank: $name on host CPU(s) $cpus"
		[[ $cpus =~ ^[0-9]+$ ]] || fail "rank $rank: $name may run on CPUs $cpus, not one"
		vcpus="$vcpus ${name#vcpu}"
		pins="$pins $cpus"
	done
	[ "$vcpus" = " $rank" ] ||
		fail "rank $rank runs vCPU threads$vcpus; it must run vCPU $rank only"
done <<<"$inst"
kill -TERM $launcher
wait $launcher
rc=$?
[ $rc = 143 ] || { cat "$log"; fail "gvm run exited $rc after SIGTERM, not 143"; }
if [ "$(nproc)" -ge 2 ]; then
	[ "$(tr ' ' '\n' <<<"$pins" | sed '/^$/d' | sort -u | wc -l)" = 2 ] ||
		fail "the two instances' vCPUs share a host CPU (pinned to$pins) on a host of $(nproc)"
fi
echo "ok: each instance runs its own vCPU, pinned to a host CPU of its own (CPUs$pins)"
