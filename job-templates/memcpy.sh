#!/bin/sh
# The seed microbenchmark in a giantvm guest: every thread copies one shared
# source buffer, which lives on NUMA node 0, to its own destination on its own
# node, again and again.  One thread per vCPU, each pinned to its vCPU; every
# buffer is bound to its node (mbind, as numa_alloc_onnode does) before it is
# first touched.  Over several gvm instances the threads off node 0 read the
# source from another host through the DSM (once: after the first copy each
# instance holds a read-only copy of it), so the first copy shows the DSM's
# transfer cost and the timed ones the local bandwidth.
#
#   gvm run --nodes 2 --vcpus 2 --mem 512M -- job-templates/memcpy.sh
#   sbatch -N2 --giantvm job-templates/memcpy.sh -s 64M
#
# usage: memcpy.sh [-s SIZE] [-r REPS] [-t THREADS] [-n SRC_NODE] [-m rep|sse2] [-k TSC_KHZ]
#   -s SIZE  bytes per copy, a multiple of 64 (default 4M, small: where guest
#            kernel code is emulated each page first touched costs the guest
#            kernel a page fault at about a microsecond per instruction)
#   -r N     timed copies per thread (default 10)
#   -t N     threads (default: all, one per vCPU)
#   -n NODE  the source's NUMA node (default 0)
#   -m M     rep (rep movsb, default) or sse2
#   -k KHZ   the TSC rate, for GB/s (default: measured against the guest's clock)
#
# Output: a 'placement:' line for the source and one per thread (its CPU, its
# destination's node, how many of its pages sampled are on that node, whether
# its copy equals the source), then, last, bench/memcpy's summary line, the
# probe guest's keys first (bench/report.c):
#   memcpy: threads=T size=S reps=R method=rep placement=node verify=ok
#           cycles=... gbps=G numa_nodes=M src_node=0 on_node=K/N
# Exit status 0, or 1 when a copy differs from the source (verify=FAIL).
set -u

size=4M reps=10 threads=all node=0 method=rep khz=
usage() {
	echo "usage: memcpy.sh [-s SIZE] [-r REPS] [-t THREADS] [-n SRC_NODE] [-m rep|sse2] [-k TSC_KHZ]" >&2
	exit 2
}
while getopts s:r:t:n:m:k:h opt; do
	case $opt in
	s) size=$OPTARG ;;
	r) reps=$OPTARG ;;
	t) threads=$OPTARG ;;
	n) node=$OPTARG ;;
	m) method=$OPTARG ;;
	k) khz=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage

echo "memcpy.sh: ${GVM_VCPUS:-?} vCPUs in ${GVM_NUMA_NODES:-?} NUMA nodes over" \
	"${GVM_NODES:-?} gvm instances; $size per copy, $reps copies, threads: $threads," \
	"source on node $node, method $method"
# GB/s need the TSC rate (see spmv.sh): say when the guest's clock is not the TSC.
cs=/sys/devices/system/clocksource/clocksource0/current_clocksource
if [ -z "$khz" ] && [ -r $cs ] && read -r clock <$cs && [ "$clock" != tsc ]; then
	echo "memcpy.sh: note: the guest's clock is $clock, not the TSC: GB/s are only" \
		"as right as that clock (pass -k with the host's TSC rate in kHz to fix them)"
fi

# bench/memcpy: the image's (/usr/local/bin), or this tree's build on a host
prog=memcpy
command -v $prog >/dev/null 2>&1 || prog=${0%/*}/../build/bench/memcpy
exec $prog -v -s "$size" -r "$reps" -t "$threads" -n "$node" -m "$method" \
	${khz:+--tsc-khz "$khz"}
