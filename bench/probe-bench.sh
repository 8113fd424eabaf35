#!/bin/bash
# make bench-probe: the probe guest on one gvm instance against the same code
# on the host, measured in one run, reported as ratios (guest / host).
#
#   bench/probe-bench.sh [BUILD_DIR]      (default build; ROUNDS=N, default 5)
#
# - boot: wall time from starting gvm to the probe's "ready:" line, the
#   probe's own kernel-entry-to-user time, and gvm's exits per second;
# - IPI round trips between vCPUs (through gvm's userspace LAPIC);
# - memcpy GB/s and SpMV GFLOP/s in the guest (user mode, native here) and
#   on the host with bench/memcpy and bench/spmv, same code, same sizes,
#   same thread count, same page size (THP), host and guest back to back in
#   each round.  Ratios are of TSC cycles for the same work.  Two estimates:
#   best guest over best host (interference on a shared machine only ever
#   slows a run down, so the best run is the least disturbed), and the
#   median of the per-round ratios with their range.
set -u
bench_name=probe-bench
. "$(dirname "$0")/lib.sh"
for f in "$build/bench/spmv" "$build/bench/memcpy"; do
	[ -x "$f" ] || fail "missing $f (run make)"
done

echo "probe-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) host CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $rounds rounds"
echo "probe-bench: the machine is shared with other work: expect noise, compare ratios, not absolutes"

# --- boot ------------------------------------------------------------------
: >"$tmp/boot"
for r in $(seq "$rounds"); do
	start=$EPOCHREALTIME ready=
	while IFS= read -r line; do
		case $line in
		ready:*) ready=$EPOCHREALTIME ;;
		boot:*) kus=$(field "$line" ready_us) sus=$(field "$line" smp_us) ;;
		"gvm: stats: "*exits/s) eps=$(sed 's/.* exits, \([0-9]*\) exits\/s/\1/' <<<"$line") ;;
		esac
	done < <("$gvm" run --stats --kernel "$probe" --vcpus 2 --numa 2 --mem 1G \
		--append "probe.workloads=none" 2>&1)
	end=$EPOCHREALTIME
	[ -n "$ready" ] || { echo "probe-bench: the probe never got ready" >&2; exit 1; }
	awk -v s="$start" -v r="$ready" -v e="$end" -v k="$kus" -v x="$eps" -v m="$sus" \
		'BEGIN { printf "%.1f %.1f %.1f %s %.1f\n", (r - s) * 1000, (e - s) * 1000, k / 1000, x, m / 1000 }' >>"$tmp/boot"
done
printf '\n%-44s %10s\n' "boot (2 vCPUs, 2 nodes, 1 GiB; median of $rounds)" "value"
printf '%-44s %8s ms\n' "gvm start -> probe ready" "$(cut -d' ' -f1 "$tmp/boot" | median)"
printf '%-44s %8s ms\n' "gvm start -> gvm exit" "$(cut -d' ' -f2 "$tmp/boot" | median)"
printf '%-44s %8s ms\n' "probe kernel entry -> user mode ready" "$(cut -d' ' -f3 "$tmp/boot" | median)"
printf '%-44s %8s ms\n' "  of which: first INIT -> every AP up" "$(cut -d' ' -f5 "$tmp/boot" | median)"
printf '%-44s %8s /s\n' "VM exits per second during the boot run" "$(cut -d' ' -f4 "$tmp/boot" | median)"

# --- IPIs and exits ---------------------------------------------------------
"$gvm" run --stats --kernel "$probe" --vcpus 2 --mem 256M \
	--append "probe.workloads=ipi probe.ipi_rounds=500" >"$tmp/ipi" 2>&1
eps=$(sed -n 's/^gvm: stats: .* exits, \([0-9]*\) exits\/s/\1/p' "$tmp/ipi")
printf '\n%-44s %10s\n' "IPI round trip, vCPU 0 -> 1 (500 rounds)" "value"
# One line per destination mode the probe tries (physical, logical).
while read -r ipi; do
	mode=$(field "$ipi" dest)
	printf '%-44s %8s us\n' "minimum, ${mode:-physical} destination" "$(field "$ipi" min_us)"
	printf '%-44s %8s us\n' "average, ${mode:-physical} destination" "$(field "$ipi" avg_us)"
done < <(grep '^ipi:' "$tmp/ipi")
printf '%-44s %8s /s\n' "VM exits per second during the IPI run" "$eps"

# --- memcpy and SpMV: guest against host ---------------------------------------
run_round() { # threads round
	local t=$1 hl gl
	hl=$("$build/bench/memcpy" --threads "$t" --size 16M --reps 40 | grep '^memcpy:')
	"$build/bench/spmv" --threads "$t" --iters 40 gen | grep '^spmv:' >"$tmp/host-spmv"
	if [ $have_real = 1 ]; then
		for m in $real; do
			"$build/bench/spmv" --threads "$t" --iters 2000 "$matrices/$m" | grep '^spmv:'
		done >>"$tmp/host-spmv"
	fi
	"$gvm" run --kernel "$probe" --vcpus "$t" --mem 1G \
		--append "probe.workloads=memcpy,spmv probe.matrix=gen probe.iters=40 probe.memcpy_size=16M probe.memcpy_reps=40" \
		>"$tmp/guest" 2>&1 || { cat "$tmp/guest"; echo "probe-bench: guest run failed" >&2; exit 1; }
	if [ $have_real = 1 ]; then
		"$gvm" run --kernel "$probe" --vcpus "$t" --mem 1G --initrd "$tmp/m.cpio" \
			--append "probe.workloads=spmv probe.matrix=$(echo $real | tr ' ' ,) probe.iters=2000" \
			>>"$tmp/guest" 2>&1 || { cat "$tmp/guest"; echo "probe-bench: guest run failed" >&2; exit 1; }
	fi
	gl=$(grep '^memcpy:' "$tmp/guest")
	echo "memcpy $(field "$hl" cycles) $(field "$gl" cycles) $(field "$hl" gbps) $(field "$gl" gbps)"
	while IFS= read -r h; do
		m=$(field "$h" matrix)
		g=$(grep "^spmv: matrix=$m " "$tmp/guest")
		[ "$(field "$h" checksum)" = "$(field "$g" checksum)" ] ||
			{ echo "probe-bench: $m: checksums differ between host and guest" >&2; exit 1; }
		echo "$m $(field "$h" cycles) $(field "$g" cycles) $(field "$h" gflops) $(field "$g" gflops)"
	done <"$tmp/host-spmv"
}

for t in 1 2; do
	: >"$tmp/rounds"
	for r in $(seq "$rounds"); do
		run_round "$t" >>"$tmp/rounds" || exit 1
	done
	printf '\n%-26s %9s %9s %10s %12s  %s\n' "$t thread(s), $rounds rounds" "host" "guest" \
		"best/best" "median ratio" "(range)"
	for w in $(cut -d' ' -f1 "$tmp/rounds" | awk '!s[$0]++'); do
		unit=GFLOP/s
		[ "$w" = memcpy ] && unit=GB/s
		grep "^$w " "$tmp/rounds" >"$tmp/w"
		hbest=$(cut -d' ' -f2 "$tmp/w" | sort -g | head -1)
		gbest=$(cut -d' ' -f3 "$tmp/w" | sort -g | head -1)
		awk '{ print $2 / $3 }' "$tmp/w" >"$tmp/r"
		printf '%-26s %9s %9s %10s %12s  (%s-%s)\n' "$w $unit" \
			"$(cut -d' ' -f4 "$tmp/w" | sort -g | tail -1)" \
			"$(cut -d' ' -f5 "$tmp/w" | sort -g | tail -1)" "$(ratio "$hbest" "$gbest" 3)" \
			"$(ratio "$(median <"$tmp/r")" 1 3)" "$(ratio "$(sort -g "$tmp/r" | head -1)" 1 3)" \
			"$(ratio "$(sort -g "$tmp/r" | tail -1)" 1 3)"
	done
done
