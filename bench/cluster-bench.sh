#!/bin/bash
# make bench-cluster: one guest over several gvm instances on this machine
# (gvm run --nodes), against the same guest in one instance, measured in one
# run and reported as ratios.
#
#   bench/cluster-bench.sh [BUILD_DIR]      (default build; ROUNDS=N, default 5)
#
# - IPI round trip from vCPU 0 to a vCPU of the same instance and to one of
#   another instance (2 instances of 2 vCPUs), and the same pair in one
#   instance;
# - SpMV GFLOP/s with 2 vCPUs: over 2 instances with NUMA-aware placement
#   (each thread writes its own rows first, in its node), over 2 instances
#   with naive placement (thread 0 writes everything first: on rank 0), and
#   in 1 instance (2 NUMA nodes): steady state (timed iterations) and the
#   first iteration apart, where data placement shows;
# - the seed memcpy microbenchmark (every vCPU copies one source on node 0)
#   on 1, 2 and 4 instances of 1 vCPU, with each instance's share of vCPU
#   time spent waiting for DSM faults (gvm --stats), and on 2 and 4 with a
#   second untimed pass (probe.memcpy_warmups=2: what the first costs the home);
# - the same copy, longer, on N instances against N independent VMs without
#   DSM placed on the same host CPUs (the DSM's own cost);
# - each instance's peak RSS against its share of the guest's RAM.
# Rounds are interleaved (each round runs every configuration once); the
# best run of each is compared (interference only ever slows a run down),
# and the median of the per-round ratios is given with its range.
set -u
bench_name=cluster-bench
. "$(dirname "$0")/lib.sh"
. "$top/tests/lib/munge.sh"
trap 'munge_stop_own; rm -rf "$tmp"' EXIT
munge_ensure || fail "cannot start munged"

best_min() { sort -g | head -1; }
best_max() { sort -g | tail -1; }

echo "cluster-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) host CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), load $(cut -d' ' -f1-3 /proc/loadavg), $rounds rounds"
echo "cluster-bench: every instance runs on this machine: a 'remote' access crosses loopback TCP and another process, not a network"

# --- IPIs ---------------------------------------------------------------------
: >"$tmp/ipi"
for r in $(seq "$rounds"); do
	guest ipi-c --nodes 2 --vcpus 4 --mem 512M --append "probe.workloads=ipi probe.ipi_rounds=200"
	guest ipi-s --vcpus 4 --numa 2 --mem 512M --append "probe.workloads=ipi probe.ipi_rounds=200"
	for k in c s; do
		for to in 1 2; do
			l=$(grep "^ipi: from=0 to=$to .*dest=physical" "$tmp/ipi-$k")
			echo "$k$to $(field "$l" min_us) $(field "$l" avg_us)" >>"$tmp/ipi"
		done
	done
done
ipi() { grep "^$1 " "$tmp/ipi" | cut -d' ' -f"$2" | best_min; }
printf '\n%-58s %8s %8s\n' "IPI round trip from vCPU 0 (200 per run, best of $rounds runs)" "min us" "avg us"
printf '%-58s %8s %8s\n' "2 instances: to vCPU 1, same instance" "$(ipi c1 2)" "$(ipi c1 3)"
printf '%-58s %8s %8s\n' "2 instances: to vCPU 2, other instance" "$(ipi c2 2)" "$(ipi c2 3)"
printf '%-58s %8s %8s\n' "1 instance, 2 NUMA nodes: to vCPU 2, other node" "$(ipi s2 2)" "$(ipi s2 3)"
printf '%-58s %8s\n' "remote / local (2 instances, min)" "$(ratio "$(ipi c2 2)" "$(ipi c1 2)")"

# --- SpMV -------------------------------------------------------------------------
spmv_append="probe.workloads=spmv probe.iters=200 probe.matrix=gen"
real_append="probe.workloads=spmv probe.iters=10000 probe.matrix=$(echo $real | tr ' ' ,)"
: >"$tmp/spmv"
: >"$tmp/rss"
for r in $(seq "$rounds"); do
	for cfg in node naive single; do
		case $cfg in
		node) args="--nodes 2 --stats" place=node ;;
		naive) args="--nodes 2 --stats" place=naive ;;
		single) args="--numa 2" place=node ;;
		esac
		guest "spmv-$cfg" $args --vcpus 2 --mem 1G --append "$spmv_append probe.placement=$place"
		if [ $have_real = 1 ]; then
			guest "spmvr-$cfg" $args --vcpus 2 --mem 1G --initrd "$tmp/m.cpio" \
				--append "$real_append probe.placement=$place"
			cat "$tmp/spmvr-$cfg" >>"$tmp/spmv-$cfg"
		fi
		grep '^spmv: ' "$tmp/spmv-$cfg" | while IFS= read -r l; do
			echo "$cfg $(field "$l" matrix) $(field "$l" cycles) $(field "$l" gflops) $(field "$l" first_cycles) $(field "$l" nnz) $(field "$l" checksum)"
		done >>"$tmp/spmv"
		sed -n "s/^gvm rank \([0-9]\): stats: peak RSS \([0-9.]*\) MiB, guest RAM share \(.*\)/spmv-$cfg \1 \2 \3/p" \
			"$tmp/spmv-$cfg" >>"$tmp/rss"
	done
done
# every run of every configuration computed the same checksum as every other
[ "$(awk '{ print $2, $7 }' "$tmp/spmv" | sort -u | awk '{ print $1 }' | uniq -d)" = "" ] ||
	fail "SpMV checksums differ between runs or placements"
khz=$(sed -n 's/^tsc: khz=\([0-9]*\).*/\1/p' "$tmp/spmv-node" | head -1)
printf '\n%-18s %7s %7s %7s %10s %16s %10s %16s\n' "SpMV, 2 vCPUs" "2 inst." "2 inst." "1 inst." "node/1inst" "node/1inst" "node/naive" "node/naive"
printf '%-18s %7s %7s %7s %10s %16s %10s %16s\n' "(GFLOP/s, best)" "node" "naive" "2 NUMA" "best/best" "median(range)" "best/best" "median(range)"
for m in $(awk '{ print $2 }' "$tmp/spmv" | awk '!s[$0]++'); do
	g() { awk -v c="$1" -v m="$m" '$1 == c && $2 == m { print $3 }' "$tmp/spmv" | best_min; }
	gf() { awk -v c="$1" -v m="$m" '$1 == c && $2 == m { print $4 }' "$tmp/spmv" | best_max; }
	per_round() { # A B: cycles of A over cycles of B, round by round
		paste <(awk -v c="$1" -v m="$m" '$1 == c && $2 == m { print $3 }' "$tmp/spmv") \
			<(awk -v c="$2" -v m="$m" '$1 == c && $2 == m { print $3 }' "$tmp/spmv") |
			awk '{ print $1 / $2 }' >"$tmp/r"
		echo "$(ratio "$(median <"$tmp/r")" 1)($(ratio "$(best_min <"$tmp/r")" 1)-$(ratio "$(best_max <"$tmp/r")" 1))"
	}
	printf '%-18s %7s %7s %7s %10s %16s %10s %16s\n' "$m" "$(gf node)" "$(gf naive)" "$(gf single)" \
		"$(ratio "$(g single)" "$(g node)")" "$(per_round single node)" \
		"$(ratio "$(g naive)" "$(g node)")" "$(per_round naive node)"
done
printf '\n%-22s %9s %9s %9s %14s\n' "SpMV first iteration" "2 inst." "2 inst." "1 inst." "naive / node"
printf '%-22s %9s %9s %9s %14s\n' " (ms, best of $rounds)" "node" "naive" "2 NUMA" "best/best"
for m in $(awk '{ print $2 }' "$tmp/spmv" | awk '!s[$0]++'); do
	fc() { awk -v c="$1" -v m="$m" '$1 == c && $2 == m { print $5 }' "$tmp/spmv" | best_min; }
	ms() { awk -v c="$1" -v k="$khz" 'BEGIN { printf "%.2f", c / k }'; }
	printf '%-22s %9s %9s %9s %14s\n' "$m" "$(ms "$(fc node)")" "$(ms "$(fc naive)")" \
		"$(ms "$(fc single)")" "$(ratio "$(fc naive)" "$(fc node)")"
done

# --- memcpy -------------------------------------------------------------------------
: >"$tmp/memcpy"
mc_append="probe.workloads=memcpy probe.memcpy_size=16M probe.memcpy_reps=10"
for r in $(seq "$rounds"); do
	for n in 1 2 4; do
		guest "memcpy-$n" --nodes $n --vcpus $n --mem $((256 * n))M --stats --append "$mc_append"
		l=$(grep '^memcpy: ' "$tmp/memcpy-$n")
		share=$(sed -n 's/^gvm rank [0-9]*: stats: dsm: fault time .*, \([0-9.]*\)% of .*/\1/p' \
			"$tmp/memcpy-$n" | sort -g | tr '\n' ' ')
		echo "c$n $(field "$l" cycles) $(field "$l" gbps) $share" >>"$tmp/memcpy"
		sed -n "s/^gvm rank \([0-9]\): stats: peak RSS \([0-9.]*\) MiB, guest RAM share \(.*\)/memcpy-$n \1 \2 \3/p" \
			"$tmp/memcpy-$n" >>"$tmp/rss"
		guest "memcpy-s$n" --vcpus $n --numa $n --mem $((256 * n))M --append "$mc_append"
		l=$(grep '^memcpy: ' "$tmp/memcpy-s$n")
		echo "s$n $(field "$l" cycles) $(field "$l" gbps)" >>"$tmp/memcpy"
		[ $n = 1 ] && continue
		# A second untimed pass: the home's first pass after the readers took the
		# source re-maps it page by page (docs/performance.md); this one pays for it.
		guest "memcpy-w$n" --nodes $n --vcpus $n --mem $((256 * n))M --stats \
			--append "$mc_append probe.memcpy_warmups=2"
		l=$(grep '^memcpy: ' "$tmp/memcpy-w$n")
		share=$(sed -n 's/^gvm rank [0-9]*: stats: dsm: fault time .*, \([0-9.]*\)% of .*/\1/p' \
			"$tmp/memcpy-w$n" | sort -g | tr '\n' ' ')
		echo "w$n $(field "$l" cycles) $(field "$l" gbps) $share" >>"$tmp/memcpy"
	done
done
printf '\n%-40s %8s %8s %9s %13s  %s\n' "memcpy 16 MiB x 10 per vCPU, source on" "N inst." "1 inst." "N inst. /" "N inst. / 1" "time in DSM faults per"
printf '%-40s %8s %8s %9s %13s  %s\n' " node 0, 1 vCPU per node (best of $rounds)" "GB/s" "GB/s" "1 inst." "median(range)" "instance (% of vCPU time)"
for kn in c1 c2 w2 c4 w4; do
	k=${kn%?} n=${kn#?}
	cb=$(awk -v k=$kn '$1 == k { print $2 }' "$tmp/memcpy" | best_min)
	sb=$(awk -v k=s$n '$1 == k { print $2 }' "$tmp/memcpy" | best_min)
	paste <(awk -v k=s$n '$1 == k { print $2 }' "$tmp/memcpy") \
		<(awk -v k=$kn '$1 == k { print $2 }' "$tmp/memcpy") | awk '{ print $1 / $2 }' >"$tmp/r"
	row=$(awk -v k=$kn -v b="$cb" '$1 == k && $2 == b' "$tmp/memcpy" | head -1)
	what="$n node(s): gvm run --nodes $n / --numa $n"
	[ $k = w ] && what="$n node(s), 2 untimed passes"
	printf '%-40s %8s %8s %9s %13s  %s\n' "$what" \
		"$(awk -v k=$kn '$1 == k { print $3 }' "$tmp/memcpy" | best_max)" \
		"$(awk -v k=s$n '$1 == k { print $3 }' "$tmp/memcpy" | best_max)" \
		"$(ratio "$sb" "$cb")" \
		"$(ratio "$(median <"$tmp/r")" 1)($(ratio "$(best_min <"$tmp/r")" 1)-$(ratio "$(best_max <"$tmp/r")" 1))" \
		"$(cut -d' ' -f4- <<<"$row" | sed 's/ *$//; s/ /%, /g; s/$/%/')"
done

# --- memcpy: the DSM's own cost, against N independent VMs --------------------------
# N instances (one vCPU each) against N single-instance VMs without DSM run at
# once and placed alike: VM r pinned (gvm run --host-cpus) to the host CPU gvm
# run --nodes N gives instance r (vmm/host.c, host_choose_pus: core r mod the
# cores, then that core's next PU).  Both run the same long copy (CTL_REPS
# copies, default 2000: seconds), so that the independent VMs' copies overlap
# although they boot at slightly different moments; the overlap is measured
# and printed.  The two sides run back to back in each round, the order
# alternating, and the ratio is taken per round.
ctl_reps=${CTL_REPS:-2000}
ctl_append="probe.workloads=memcpy probe.memcpy_size=16M probe.memcpy_reps=$ctl_reps"
command -v hwloc-calc >/dev/null || fail "hwloc-calc is missing (Debian: apt-get install hwloc)"
ncores=$(hwloc-calc --number-of core machine:0)
inst_cpu() { # R: the host CPU (OS number) of instance R
	local pus
	IFS=, read -ra pus <<<"$(hwloc-calc --physical-output -I pu "core:$(($1 % ncores))")"
	echo "${pus[$((($1 / ncores) % ${#pus[@]}))]}"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# independent N: N single-instance VMs at once; prints the sum of their GB/s and
# the overlap of their runs (shortest common span over longest run, %)
independent() {
	local n=$1 k pids=() t0 ends=() starts=() sum
	for ((k = 0; k < n; k++)); do
		(
			echo "start $(now_ms)"
			"$gvm" run --kernel "$probe" --vcpus 1 --mem 256M --host-cpus "$(inst_cpu $k)" \
				--append "$ctl_append" 2>&1 </dev/null
			echo "status $? end $(now_ms)"
		) >"$tmp/ctl-i$n.$k" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for ((k = 0; k < n; k++)); do
		grep -q '^result: PASS' "$tmp/ctl-i$n.$k" && grep -q '^status 0 ' "$tmp/ctl-i$n.$k" ||
			{ cat "$tmp/ctl-i$n.$k"; fail "independent VM $k of $n failed"; }
		starts+=("$(sed -n 's/^start //p' "$tmp/ctl-i$n.$k")")
		ends+=("$(sed -n 's/^status 0 end //p' "$tmp/ctl-i$n.$k")")
	done
	sum=$(for ((k = 0; k < n; k++)); do field "$(grep '^memcpy: ' "$tmp/ctl-i$n.$k")" gbps; done |
		awk '{ s += $1 } END { printf "%.3f", s }')
	echo "$sum $(printf '%s\n' "${starts[@]}" | sort -g | tail -1) $(printf '%s\n' "${ends[@]}" | sort -g | head -1) $(for ((k = 0; k < n; k++)); do echo $((ends[k] - starts[k])); done | sort -g | tail -1)" |
		awk '{ o = ($3 - $2) / $4 * 100; printf "%s %.0f\n", $1, (o > 0 ? o : 0) }'
}
: >"$tmp/ctl"
for r in $(seq "$rounds"); do
	for n in 1 2 4; do
		if ((r % 2)); then
			guest "ctl-c$n" --nodes $n --vcpus $n --mem $((256 * n))M --append "$ctl_append"
			ind=$(independent $n)
		else
			ind=$(independent $n)
			guest "ctl-c$n" --nodes $n --vcpus $n --mem $((256 * n))M --append "$ctl_append"
		fi
		echo "$n $(field "$(grep '^memcpy: ' "$tmp/ctl-c$n")" gbps) $ind" >>"$tmp/ctl"
	done
done
printf '\n%-40s %9s %9s %11s %16s %9s\n' "memcpy 16 MiB x $ctl_reps per vCPU, 1 vCPU" "N inst." "N indep." "N inst. /" "N inst./indep." "overlap"
printf '%-40s %9s %9s %11s %16s %9s\n' " per node, source on node 0 (GB/s, best)" "(DSM)" "VMs" "N indep." "median(range)" "(min)"
for n in 1 2 4; do
	awk -v n=$n '$1 == n { print $2 / $3 }' "$tmp/ctl" >"$tmp/r"
	printf '%-40s %9s %9s %11s %16s %8s%%\n' "N = $n, placed alike" \
		"$(awk -v n=$n '$1 == n { print $2 }' "$tmp/ctl" | best_max)" \
		"$(awk -v n=$n '$1 == n { print $3 }' "$tmp/ctl" | best_max)" \
		"$(ratio "$(awk -v n=$n '$1 == n { print $2 }' "$tmp/ctl" | best_max)" \
			"$(awk -v n=$n '$1 == n { print $3 }' "$tmp/ctl" | best_max)")" \
		"$(ratio "$(median <"$tmp/r")" 1)($(ratio "$(best_min <"$tmp/r")" 1)-$(ratio "$(best_max <"$tmp/r")" 1))" \
		"$(awk -v n=$n '$1 == n { print $4 }' "$tmp/ctl" | best_min)"
done

# --- RSS ----------------------------------------------------------------------------
printf '\n%-44s %12s %12s\n' "peak RSS per instance (largest over runs)" "RSS MiB" "RAM share"
for run in $(awk '{ print $1 }' "$tmp/rss" | awk '!s[$0]++'); do
	for rk in $(awk -v x="$run" '$1 == x { print $2 }' "$tmp/rss" | sort -u); do
		printf '%-44s %12s %12s\n' "$run rank $rk" \
			"$(awk -v x="$run" -v k="$rk" '$1 == x && $2 == k { print $3 }' "$tmp/rss" | best_max)" \
			"$(awk -v x="$run" -v k="$rk" '$1 == x && $2 == k { print $4, $5 }' "$tmp/rss" | head -1)"
	done
done
