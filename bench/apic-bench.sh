#!/bin/bash
# make bench-apic: the probe in x2APIC mode against xAPIC mode, and the
# probe's boot as vCPUs grow past xAPIC's 255.
#
#   bench/apic-bench.sh [BUILD_DIR]      (default build; ROUNDS=N, default 5)
#
# - IPI round trip from vCPU 0 to a vCPU of the same instance and to one of
#   another instance (2 instances of 2 vCPUs), by physical destination, with
#   the probe in xAPIC mode (MMIO: KVM's MMIO exits) and in x2APIC mode
#   (probe.apic=x2apic: MSR exits).  Each round runs both, back to back, the
#   order alternating; the per-round ratio x2APIC / xAPIC of the average
#   round trip is reported as a median with its range.
# - Boot of the probe with 64, 128, 256 and 512 vCPUs over 4 instances (the
#   APs halted once up): gvm's wall time from start to exit, the probe's
#   kernel time and its SMP phase, the median of the rounds.
set -u
bench_name=apic-bench
. "$(dirname "$0")/lib.sh"
. "$top/tests/lib/munge.sh"
trap 'munge_stop_own; rm -rf "$tmp"' EXIT
munge_ensure || fail "cannot start munged"

echo "apic-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) host CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), load $(cut -d' ' -f1-3 /proc/loadavg), $rounds rounds"

# --- IPIs: x2APIC against xAPIC, paired ----------------------------------------
: >"$tmp/ipi"
ipi_args=(--nodes 2 --vcpus 4 --mem 512M --cpu-features auto,+x2apic)
for r in $(seq "$rounds"); do
	order="x1 x2"
	[ $((r % 2)) = 0 ] && order="x2 x1"
	for k in $order; do
		mode=auto
		[ $k = x2 ] && mode=x2apic
		guest "ipi-$k" "${ipi_args[@]}" \
			--append "probe.workloads=ipi probe.ipi_rounds=200 probe.apic=$mode"
	done
	grep -qx "apic: mode=x2apic" "$tmp/ipi-x2" || fail "probe.apic=x2apic did not give x2APIC mode"
	grep -qx "apic: mode=xapic" "$tmp/ipi-x1" || fail "the xAPIC run is not in xAPIC mode"
	for to in 1 2; do
		a=$(field "$(grep "^ipi: from=0 to=$to .*dest=physical" "$tmp/ipi-x1")" avg_us)
		b=$(field "$(grep "^ipi: from=0 to=$to .*dest=physical" "$tmp/ipi-x2")" avg_us)
		echo "$to $a $b $(ratio "$b" "$a" 3)" >>"$tmp/ipi"
	done
done
printf '\n%-44s %10s %10s %22s\n' "IPI round trip from vCPU 0 (200 per run)" "xAPIC us" "x2APIC us" "x2APIC/xAPIC per pair"
for to in 1 2; do
	what="to vCPU $to (same instance)"
	[ $to = 2 ] && what="to vCPU $to (the other instance)"
	col() { grep "^$to " "$tmp/ipi" | cut -d' ' -f"$1"; }
	printf '%-44s %10s %10s %8s (%s-%s)\n' "$what" "$(col 2 | median)" "$(col 3 | median)" \
		"$(col 4 | median)" "$(col 4 | sort -g | head -1)" "$(col 4 | sort -g | tail -1)"
done

# --- Boot as vCPUs grow -------------------------------------------------------------
: >"$tmp/boot"
for r in $(seq "$rounds"); do
	for n in 64 128 256 512; do
		guest "boot-$n" --nodes 4 --vcpus "$n" --mem 1G --append "probe.workloads=none"
		l=$(grep "^boot: " "$tmp/boot-$n")
		wall=$(sed -n 's/^gvm: guest exited with status 0 (\([0-9.]*\) s)$/\1/p' "$tmp/boot-$n")
		echo "$n $wall $(field "$l" kernel_us) $(field "$l" smp_us) $(sed -n 's/^apic: mode=//p' "$tmp/boot-$n")" >>"$tmp/boot"
	done
done
printf '\n%-34s %8s %14s %12s %8s\n' "probe boot over 4 instances" "wall s" "kernel ms" "SMP ms" "mode"
for n in 64 128 256 512; do
	col() { grep "^$n " "$tmp/boot" | cut -d' ' -f"$1"; }
	printf '%-34s %8s %14s %12s %8s\n' "$n vCPUs (median of $rounds)" "$(col 2 | median)" \
		"$(( $(col 3 | median) / 1000 ))" "$(( $(col 4 | median) / 1000 ))" "$(col 5 | head -1)"
done
