#!/bin/sh
# STREAM-style memory bandwidth in a giantvm guest (bench/stream: copy,
# scale, add, triad), with per-node placement: one thread per vCPU, each
# pinned to its vCPU, each thread's slice of the three arrays bound to its
# vCPU's NUMA node and first touched by that thread.  Every access is then
# local: over several gvm instances each host serves its own vCPUs from its
# own memory, and the rates add up over the nodes.
#
#   gvm run --nodes 2 --vcpus 2 --mem 512M -- job-templates/stream.sh
#   sbatch -N2 --giantvm job-templates/stream.sh -n 64M
#
# usage: stream.sh [-n ELEMENTS] [-r REPS] [-t THREADS] [-k TSC_KHZ]
#   -n N     elements per array, in all (default 1M: 3 arrays of 8 MiB, small:
#            where guest kernel code is emulated each page first touched costs
#            the guest kernel a page fault at about a microsecond per
#            instruction; STREAM's own rule wants each array 4 times the
#            last-level caches, e.g. -n 64M)
#   -r N     repetitions of the four kernels (default 10; the first is a
#            warm-up and not counted)
#   -t N     threads (default: all, one per vCPU)
#   -k KHZ   the TSC rate, for MB/s (default: measured against the guest's clock)
#
# Output: a 'placement:' line per thread, a 'stream: kernel=K' line per
# kernel (best and average MB/s, times in seconds), then, last, the summary:
#   stream: threads=T elements=N reps=R copy=MB/s scale=MB/s add=MB/s
#           triad=MB/s verify=ok bad=0 numa_nodes=M on_node=K/S
# verify=ok: every element of every array has the value the same operations
# give on one scalar, exactly.  Exit status 0, or 1 when validation fails.
set -u

elements=1M reps=10 threads=all khz=
usage() {
	echo "usage: stream.sh [-n ELEMENTS] [-r REPS] [-t THREADS] [-k TSC_KHZ]" >&2
	exit 2
}
while getopts n:r:t:k:h opt; do
	case $opt in
	n) elements=$OPTARG ;;
	r) reps=$OPTARG ;;
	t) threads=$OPTARG ;;
	k) khz=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage

echo "stream.sh: ${GVM_VCPUS:-?} vCPUs in ${GVM_NUMA_NODES:-?} NUMA nodes over" \
	"${GVM_NODES:-?} gvm instances; $elements elements per array, $reps repetitions," \
	"threads: $threads"
# MB/s need the TSC rate (see spmv.sh): say when the guest's clock is not the TSC.
cs=/sys/devices/system/clocksource/clocksource0/current_clocksource
if [ -z "$khz" ] && [ -r $cs ] && read -r clock <$cs && [ "$clock" != tsc ]; then
	echo "stream.sh: note: the guest's clock is $clock, not the TSC: MB/s are only" \
		"as right as that clock (pass -k with the host's TSC rate in kHz to fix them)"
fi

# bench/stream: the image's (/usr/local/bin), or this tree's build on a host
prog=stream
command -v $prog >/dev/null 2>&1 || prog=${0%/*}/../build/bench/stream
exec $prog -v -n "$elements" -r "$reps" -t "$threads" ${khz:+--tsc-khz "$khz"}
