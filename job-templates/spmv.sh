#!/bin/sh
# SpMV (y = A x, CSR) in a giantvm guest, NUMA-aware: one thread per vCPU,
# each pinned to its vCPU, each thread's block of rows (and its copy of x)
# bound to its vCPU's NUMA node and first touched by that thread, so that
# every node computes from its own host's memory.
#
#   gvm run --nodes 2 --vcpus 2 --mem 512M --copy m.mtx -- job-templates/spmv.sh m.mtx
#   gvm run --nodes 2 --vcpus 2 --mem 512M -- job-templates/spmv.sh    (a generated matrix)
#   sbatch -N2 --giantvm=copy=m.mtx job-templates/spmv.sh m.mtx          (the same, under Slurm)
#
# usage: spmv.sh [-i ITERS] [-t THREADS] [-p node|naive] [-k TSC_KHZ] [MATRIX]
#   MATRIX   a Matrix Market file (copied in with --copy: give its name), or
#            gen:ROWS:PER_ROW:SEED, a matrix generated in the guest (default
#            gen:20000:16:1, small: on a host whose KVM emulates guest kernel
#            code every page the job touches costs the guest kernel a page
#            fault at about a microsecond per instruction; gen:200000:16:1
#            is bench/spmv's own default)
#   -i N     timed iterations (default 20)
#   -t N     threads (default: all, one per vCPU)
#   -p P     node (default) or naive: every thread's data on node 0, to see
#            what ignoring placement costs
#   -k KHZ   the TSC rate, for GFLOP/s (default: measured against the guest's
#            clock, which is only as good as that clock: see below)
#
# Output: a line on the machine, a 'placement:' line per thread (its CPU, its
# node, how many of its pages sampled are on that node), then, last, the
# summary line of bench/spmv, the same as the host's and the probe guest's
# (bench/report.c, docs/probe.md):
#   spmv: matrix=NAME rows=R cols=C nnz=N checksum=0x... iters=I threads=T
#         placement=node cycles=... gflops=G numa_nodes=M on_node=K/S
# The checksum covers y bit for bit: `bench/spmv -i 1 MATRIX` on any host
# prints the same one.  Exit status: bench/spmv's (0, or 1 with a message).
#
# Everything is done by builtins but one program: in a guest whose kernel
# code is emulated every process costs about a second.
set -u

iters=20 threads=all placement=node khz=
usage() {
	echo "usage: spmv.sh [-i ITERS] [-t THREADS] [-p node|naive] [-k TSC_KHZ] [MATRIX]" >&2
	exit 2
}
while getopts i:t:p:k:h opt; do
	case $opt in
	i) iters=$OPTARG ;;
	t) threads=$OPTARG ;;
	p) placement=$OPTARG ;;
	k) khz=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage
matrix=${1:-gen:20000:16:1}
case $matrix in
gen|gen:*) ;;
*) [ -r "$matrix" ] || {
	echo "spmv.sh: cannot read the matrix '$matrix' (with gvm run, --copy it and name it" \
		"by its file name)" >&2
	exit 1
} ;;
esac

echo "spmv.sh: ${GVM_VCPUS:-?} vCPUs in ${GVM_NUMA_NODES:-?} NUMA nodes over" \
	"${GVM_NODES:-?} gvm instances; matrix $matrix, $iters iterations, threads: $threads," \
	"placement: $placement"
# The GFLOP/s need the TSC rate.  A guest kernel that could not calibrate
# its TSC keeps time with jiffies, which run slow where guest kernel code is
# emulated: say so (the cycles are exact whatever the clock).
cs=/sys/devices/system/clocksource/clocksource0/current_clocksource
if [ -z "$khz" ] && [ -r $cs ] && read -r clock <$cs && [ "$clock" != tsc ]; then
	echo "spmv.sh: note: the guest's clock is $clock, not the TSC: GFLOP/s are only" \
		"as right as that clock (pass -k with the host's TSC rate in kHz to fix them)"
fi

# bench/spmv: the image's (/usr/local/bin), or this tree's build on a host
prog=spmv
command -v $prog >/dev/null 2>&1 || prog=${0%/*}/../build/bench/spmv
exec $prog -v -i "$iters" -t "$threads" -p "$placement" ${khz:+--tsc-khz "$khz"} "$matrix"
