#!/bin/bash
# SpMV in one virtual machine spanning 2 gvm instances on this machine: the
# same set-up as on 2 cluster nodes (each instance runs its own vCPUs and
# holds its own share of the guest's RAM; the guest sees one machine with
# one NUMA node per instance), joined over loopback instead of a network.
#
# usage: job-templates/spmv-local.sh [MATRIX.mtx]
#
# Without an argument the matrix is generated inside the guest; with one,
# the Matrix Market file is first read on this host by the guest's own
# reader (bench/spmv --check), so a bad file is named with its line before
# any VM starts, then handed to the guest as matrix.mtx in an initramfs.
# Prints the machine the guest saw and the result, and checks the result
# against the same computation on this host.  Exits with the guest's status;
# when that is a failure, the guest's console log is kept in TMPDIR.
#
# Environment: GVM_BUILD (default: build/ of this repository), GVM_IMAGES
# (default: build/images), VCPUS (per instance), MEM (in all, e.g. 2G),
# ITERS (SpMV iterations, default 20).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${GVM_BUILD:-$top/build}
gvm=$build/gvm
probe=${GVM_IMAGES:-$top/build/images}/probe.elf
nodes=2

say() { printf '%s\n' "$*"; }
die() { printf 'spmv-local: %s\n' "$*" >&2; exit 1; }

[ -x "$gvm" ] && [ -f "$probe" ] ||
	die "gvm or the probe guest is not built: run ./configure && make progs images (or tools/demo)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] ||
	die "this user cannot use /dev/kvm: run as root, or join the kvm group"
matrix=${1:-}
[ $# -le 1 ] || die "usage: $0 [MATRIX.mtx]"

# The same reader as the guest's, on this host: to check a file before any
# VM starts, and afterwards to compute the result the guest's must equal.
spmv=$build/bench/spmv
if [ ! -x "$spmv" ] && [ -f "$top/config.mk" ]; then
	make -s -C "$top" "${build#$top/}/bench/spmv" >/dev/null 2>&1
fi

# The user's file name is only ever a path here: the guest always gets the
# file as matrix.mtx, and the name is shown, never parsed.
path= name=
if [ -n "$matrix" ]; then
	[ -f "$matrix" ] && [ -r "$matrix" ] || die "cannot read matrix file '$matrix'"
	case $matrix in
	/*) path=$matrix ;;
	*) path=$PWD/$matrix ;;
	esac
	name=${matrix##*/}
	[ -x "$spmv" ] ||
		die "cannot check '$matrix' before starting the VM: no $spmv (make ${build#$top/}/bench/spmv)"
	if ! err=$("$spmv" --check "$path" 2>&1 >/dev/null); then
		err=${err#spmv: error: }
		die "matrix file '$matrix': ${err#"$path": }; no VM was started: correct the file or give another"
	fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/spmv-local.XXXXXX") || die "cannot create a temporary directory"
cleanup() {
	command -v munge_stop_own >/dev/null && munge_stop_own
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The instances authenticate each other with munge: use the system's munged,
# or start a private one for this run.
. "$top/tests/lib/munge.sh"
munge_ensure || die "cannot start munged (apt-get install munge)"

cores=$(nproc)
vcpus=${VCPUS:-$([ "$cores" -ge 4 ] && echo 2 || echo 1)}
iters=${ITERS:-20}
append="probe.workloads=ipi,spmv probe.iters=$iters probe.ipi_rounds=10"
initrd=()
if [ -n "$matrix" ]; then
	# A link, archived as what it points to: no copy of the file but the archive.
	mkdir "$tmp/in" && ln -s "$path" "$tmp/in/matrix.mtx" &&
		(cd "$tmp/in" && echo matrix.mtx | cpio -o -H newc -L --quiet) >"$tmp/matrix.cpio" ||
		die "cannot pack '$matrix' into an initramfs (is cpio installed?)"
	initrd=(--initrd "$tmp/matrix.cpio")
	append="$append probe.matrix=matrix.mtx"
	# node 0 reads and converts the whole file; each node then holds its rows
	size_mb=$(($(stat -c %s "$path") / 1048576))
	per=$(((4 * size_mb + 160 + 1) / 2 * 2))
	[ $per -lt 512 ] && per=512
	mem=${MEM:-$((per * nodes))M}
	what=$name
else
	mem=${MEM:-1G}
	what="a generated matrix (gen:200000:16:1: 200 000 rows, 16 entries per row)"
fi

say "giantvm: SpMV on $what, in one VM over $nodes gvm instances on this machine"
say "  Each instance plays one cluster node: it runs its own vCPUs and holds its own"
say "  share of the guest's RAM; together they are one guest with one NUMA node each."
say ""
"$gvm" run --nodes $nodes --vcpus $((vcpus * nodes)) --mem "$mem" --kernel "$probe" \
	"${initrd[@]}" --append "$append" >"$tmp/console.log"
status=$?
log=$tmp/console.log

if [ $status -ne 0 ] || ! grep -q '^result: PASS' "$log"; then
	say ""
	say "The guest did not finish well (status $status). Its console:"
	sed 's/^/  | /' "$log"
	# The log alone outlives the run: the matrix's archive goes with $tmp.
	kept=$(mktemp "${TMPDIR:-/tmp}/spmv-local-console.XXXXXX") && mv -f "$log" "$kept" &&
		say "(the console log is kept in $kept)"
	exit $((status ? status : 1))
fi

say ""
say "The machine the guest saw (it read these from the ACPI tables gvm wrote):"
while read -r _ _ node _ cpus _ ranges; do
	bytes=0
	for r in ${ranges//,/ }; do
		bytes=$((bytes + ${r#*-} - ${r%-*} + 1))
	done
	say "  NUMA node $node: vCPU(s) $cpus, $((bytes >> 20)) MiB of RAM ($ranges), gvm instance $node"
done < <(grep '^topology: node ' "$log")
dist=$(sed -n 's/^distance: node [0-9]* //p' "$log" | paste -sd '/' | sed 's|/| / |g')
say "  distances between nodes (SLIT): $dist"
ipi=$(grep '^ipi: .*dest=physical' "$log" | awk '{
	for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	printf "vCPU %s -> %s (node %s) %s us; ", f["from"], f["to"], f["node"], f["min_us"] }')
[ -n "$ipi" ] && say "  IPI round trips, best of 10: ${ipi%; }"

line=$(grep '^spmv: ' "$log")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
say ""
say "Result: y = A x in CSR form, $(field iters) iterations by $(field threads) threads, each"
say "computing its block of rows from its own node's memory:"
say "  matrix     ${name:-$(field matrix)}: $(field rows) x $(field cols), $(field nnz) non-zeros"
say "  speed      $(field gflops) GFLOP/s"
say "  checksum   $(field checksum)"

# The same computation on this host, by the same code: the result must be identical.
if [ -x "$spmv" ]; then
	ref=$("$spmv" --iters 1 "${path:-gen}" 2>/dev/null | sed -n 's/.* checksum=\([^ ]*\).*/\1/p')
	if [ "$ref" = "$(field checksum)" ]; then
		say "             the same as this host computes with the same code (bench/spmv)"
	else
		say "  this host computes checksum $ref with the same code: THE RESULTS DIFFER"
		exit 1
	fi
fi
exit 0
