#!/bin/bash
# make bench-linux: a job in the Linux guest image (gvm run -- JOB), on 1
# instance (2 vCPUs in 2 NUMA nodes) and over 2 instances (1 vCPU each),
# against the probe guest and the host, measured in one run.
#
#   bench/linux-bench.sh [BUILD_DIR]      (default build; ROUNDS=N, default 3)
#
# - time from starting gvm to the job's first line on standard output and
#   to gvm's exit, and gvm's own phases (--verbose: instances connected,
#   guest booting, job started, job ended, each with its time since start);
# - SpMV on bcsstk13.mtx with 1 thread (job-templates/spmv.sh in the Linux
#   guest, the probe's spmv workload, bench/spmv on the host: the same
#   code): TSC cycles per iteration, the guest's over the host's.
# Rounds are interleaved (each round runs every configuration once); times
# are medians with their range, ratios the median of the per-round ratios.
# Where KVM emulates guest kernel code (no vmx/svm), the boot and every
# process the job starts cost that emulation (about a microsecond per
# guest kernel instruction); user-mode code runs natively there.
set -u
bench_name=linux-bench
rounds=${ROUNDS:-3}
. "$(dirname "$0")/lib.sh"
. "$top/tests/lib/munge.sh"
trap 'munge_stop_own; rm -rf "$tmp"' EXIT
munge_ensure || fail "cannot start munged"
img=$top/build/images/linux
for f in vmlinux initramfs.cpio; do
	[ -r "$img/$f" ] || fail "missing $img/$f (run make linux-image)"
done
[ -x "$build/bench/spmv" ] || fail "missing $build/bench/spmv (run make)"
m=bcsstk13.mtx
[ -r "$matrices/$m" ] || fail "missing $matrices/$m"
iters=2000

ms() { echo $(($(date +%s%N) / 1000000)); }
range() { sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%s-%s", v[1], v[NR] }'; }
cycles_per_iter() { # SPMV-LINE
	awk -v c="$(field "$1" cycles)" -v i="$(field "$1" iters)" 'BEGIN { printf "%.0f", c / i }'
}

# job NAME GVM-ARGS...: the SpMV template as a job; times in $tmp/NAME.times
# ("first EXIT", ms since start), its output in $tmp/NAME.out, gvm's in .err
job() {
	local name=$1 t0 first=
	shift
	t0=$(ms)
	"$gvm" run "$@" --verbose --copy "$matrices/$m" \
		-- "$top/job-templates/spmv.sh" -t 1 -i "$iters" "$m" 2>"$tmp/$name.err" </dev/null |
		while IFS= read -r l; do
			[ -z "$first" ] && first=$(($(ms) - t0)) && echo "$first" >"$tmp/$name.first"
			echo "$l"
		done >"$tmp/$name.out"
	[ "${PIPESTATUS[0]}" = 0 ] || { tail -n 20 "$tmp/$name.err"; fail "$name: gvm run $* failed"; }
	echo "$(cat "$tmp/$name.first") $(($(ms) - t0))" >"$tmp/$name.times"
	grep -q '^spmv: ' "$tmp/$name.out" || { cat "$tmp/$name.out"; fail "$name: no spmv: line"; }
}

echo "linux-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) host CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), load $(cut -d' ' -f1-3 /proc/loadavg), $rounds rounds"
grep -qw -e vmx -e svm /proc/cpuinfo ||
	echo "linux-bench: this host's KVM emulates guest kernel code: boot and process start-up pay for it"

: >"$tmp/rows"
for r in $(seq "$rounds"); do
	job one --vcpus 2 --numa 2 --mem 1G
	job two --nodes 2 --vcpus 2 --mem 1G
	# (the probe runs a thread per vCPU: 1 vCPU)
	"$gvm" run --kernel "$probe" --vcpus 1 --mem 512M --initrd "$tmp/m.cpio" \
		--append "probe.workloads=spmv probe.matrix=$m probe.iters=$iters" \
		>"$tmp/probe" 2>&1 </dev/null || { cat "$tmp/probe"; fail "the probe failed"; }
	"$build/bench/spmv" -t 1 -i "$iters" "$matrices/$m" >"$tmp/host" || fail "bench/spmv failed"
	host=$(cycles_per_iter "$(grep "^spmv: matrix=$m " "$tmp/host")")
	pg=$(cycles_per_iter "$(grep "^spmv: matrix=$m " "$tmp/probe")")
	l1=$(cycles_per_iter "$(grep '^spmv: ' "$tmp/one.out")")
	l2=$(cycles_per_iter "$(grep '^spmv: ' "$tmp/two.out")")
	[ "$(field "$(grep '^spmv: ' "$tmp/one.out")" checksum)" = \
		"$(field "$(grep "^spmv: matrix=$m " "$tmp/host")" checksum)" ] ||
		fail "the Linux guest's checksum differs from the host's"
	echo "$r $(cat "$tmp/one.times") $(cat "$tmp/two.times") $host $pg $l1 $l2" >>"$tmp/rows"
	# gvm's phases, from the last round
	for k in one two; do
		grep -E '^gvm( rank 0)?: .*\([0-9.]+ s\)' "$tmp/$k.err" | sed -E 's/^gvm( rank 0)?: //' >"$tmp/$k.phases"
	done
done

col() { cut -d' ' -f"$1" "$tmp/rows"; }
secs() { awk '{ printf "%.1f\n", $1 / 1000 }'; }
per_round_ratio() { # COL-A COL-B: the median A/B over the rounds, and their range
	local v
	v=$(awk -v a="$1" -v b="$2" '{ printf "%.2f\n", $a / $b }' "$tmp/rows")
	echo "$(median <<<"$v") ($(range <<<"$v"))"
}
printf '\n%-52s %10s %14s\n' "Linux guest, SpMV job (median of $rounds, range)" "seconds" "range"
printf '%-52s %10s %14s\n' "1 instance, 2 NUMA nodes: first line of the job" \
	"$(col 2 | secs | median)" "$(col 2 | secs | range)"
printf '%-52s %10s %14s\n' "1 instance, 2 NUMA nodes: gvm exits" "$(col 3 | secs | median)" "$(col 3 | secs | range)"
printf '%-52s %10s %14s\n' "2 instances: first line of the job" "$(col 4 | secs | median)" "$(col 4 | secs | range)"
printf '%-52s %10s %14s\n' "2 instances: gvm exits" "$(col 5 | secs | median)" "$(col 5 | secs | range)"
for k in one two; do
	echo
	echo "gvm's phases, $([ $k = one ] && echo "1 instance" || echo "2 instances") (last round):"
	sed 's/^/  /' "$tmp/$k.phases"
done
printf '\n%-52s %10s\n' "SpMV $m, 1 thread, $iters iterations: cycles/iter" "median"
printf '%-52s %10s\n' "host (bench/spmv)" "$(col 6 | median)"
printf '%-52s %10s\n' "probe guest" "$(col 7 | median)"
printf '%-52s %10s\n' "Linux guest, 1 instance" "$(col 8 | median)"
printf '%-52s %10s\n' "Linux guest, 2 instances" "$(col 9 | median)"
printf '\n%-52s %s\n' "ratio to the host (median of per-round ratios)" ""
printf '%-52s %s\n' "probe guest / host" "$(per_round_ratio 7 6)"
printf '%-52s %s\n' "Linux guest, 1 instance / host" "$(per_round_ratio 8 6)"
printf '%-52s %s\n' "Linux guest, 2 instances / host" "$(per_round_ratio 9 6)"
