#!/bin/bash
# timeout: 300
# RAM adds up: a guest of 512 MiB over 2 instances (256 MiB homed on each)
# runs SpMV on a generated matrix whose blocks, x and y fill most of each
# node's share (about 200 MiB per node, 400 MiB in all, more than one
# share).  Each instance's peak RSS (gvm --stats: getrusage, VmHWM) must
# stay below its share plus a 32 MiB margin (gvm itself, the DSM's page
# tables, read copies of node 0's kernel and program), and above 150 MiB:
# it did hold its own part.  An instance that held the whole guest would
# need about 400 MiB.  The test does not take gvm's word for it: it samples
# every instance's resident set itself (/proc/PID/status, every 100 ms)
# while they run, and that must fit too, and agree with gvm's peak.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
log=$GVM_TEST_TMP/mem.log
share=256
margin=32
"$GVM" run --nodes 2 --vcpus 2 --mem 512M --stats --kernel "$PROBE" \
	--append "probe.workloads=spmv probe.matrix=gen:1800000:16:1 probe.iters=2" >"$log" 2>&1 </dev/null &
run=$!
track_bg $run
# The instances are gvm run's children that run `gvm node` (not, say, the
# sanitizer's leak-check tracer, a clone of gvm run itself): the largest
# VmRSS each showed, in kB.
declare -A seen
while kill -0 $run 2>/dev/null; do
	for p in $(cluster_instances $run | cut -d' ' -f1); do
		kb=$(awk '/^VmRSS:/ { print $2 }' /proc/$p/status 2>/dev/null) || continue
		[ -n "$kb" ] && [ "$kb" -gt "${seen[$p]:-0}" ] && seen[$p]=$kb
	done
	sleep 0.1
done
wait $run
rc=$?
grep -v "stats:   " "$log"
[ $rc -eq 0 ] || fail "gvm run exited $rc"
grep -q "^spmv: matrix=gen:1800000:16:1 .*checksum=0xdfe875a849a8d425" "$log" ||
	fail "no SpMV result with the host's checksum"
[ ${#seen[@]} = 2 ] || fail "saw ${#seen[@]} instance processes of gvm run, not 2"
for p in "${!seen[@]}"; do
	mib=$((seen[$p] / 1024))
	echo "instance $p: largest resident set seen $mib MiB"
	[ $mib -lt $((share + margin)) ] ||
		fail "instance $p held $mib MiB, more than its $share MiB share + $margin MiB"
	[ $mib -gt 150 ] || fail "instance $p held only $mib MiB: the workload did not fill its share"
done
for r in 0 1; do
	rss=$(sed -n "s/^gvm rank $r: stats: peak RSS \([0-9.]*\) MiB.*/\1/p" "$log")
	[ -n "$rss" ] || fail "rank $r printed no peak RSS"
	awk -v x="$rss" -v hi=$((share + margin)) 'BEGIN { exit !(x < hi) }' ||
		fail "rank $r: peak RSS $rss MiB, more than its $share MiB share + $margin MiB"
	awk -v x="$rss" 'BEGIN { exit !(x > 150) }' ||
		fail "rank $r: peak RSS $rss MiB: the workload did not fill its share"
	echo "rank $r: peak RSS $rss MiB < $share + $margin MiB"
done
# gvm's peak is the kernel's high-water mark: never below what was sampled.
sampled=$(for p in "${!seen[@]}"; do echo $((seen[$p] / 1024)); done | sort -n | tail -1)
reported=$(for r in 0 1; do sed -n "s/^gvm rank $r: stats: peak RSS \([0-9.]*\) MiB.*/\1/p" "$log"; done |
	sort -n | tail -1)
awk -v s="$sampled" -v g="$reported" 'BEGIN { exit !(s <= g + 1) }' ||
	fail "an instance was seen holding $sampled MiB, above the largest peak gvm reports ($reported MiB)"
echo "ok: each instance holds its share, not the guest (sampled and reported alike)"
