#!/bin/bash
# The hwloc XML of a guest topology, read by hwloc's own tools (lstopo,
# hwloc-info, hwloc-calc): it loads, and shows the nodes, their CPUs and
# memory, the distances and the caches that the text output (topo_print)
# describes, through tests/tools/topo-tool (which can fake a host with known
# caches) and, once `gvm topo --xml` writes the file, through gvm itself.
# timeout: 120
set -u
tool=$GVM_BUILD/tests/tools/topo-tool
for t in lstopo-no-graphics hwloc-info hwloc-calc; do
	command -v $t >/dev/null || { echo "SKIP: $t not installed (apt-get install hwloc)"; exit 77; }
done
[ -x "$tool" ] || { echo "topo-tool not built: run make tests"; exit 1; }

fail=0
bad() { echo "FAIL [$case]: $*"; fail=1; }
GiB=$((1 << 30))
# A host with known caches, so the expected sizes are fixed.
host="pack:1 l3u:1(size=33554432) core:8 l2u:1(size=1048576) l1d:1(size=49152) l1i:1(size=32768) pu:1"

check_case() { # name nodes vcpus mem-GiB distance
	case=$1
	local nodes=$2 vcpus=$3 mem=$4 dist=$5 dir=$GVM_TEST_TMP/$1 per=$(($3 / $2))
	local xml=$dir/guest.xml
	mkdir -p "$dir"
	"$tool" --host "$host" --nodes "$nodes" --vcpus "$vcpus" --mem "${mem}G" --distance "$dist" \
		--print --xml "$xml" >"$dir/print.txt" || { bad "topo-tool failed"; return; }

	# lstopo loads it; the console view has every node and PU.
	lstopo-no-graphics --input "$xml" --of console >"$dir/lstopo.txt" 2>&1 ||
		{ bad "lstopo cannot load the XML"; cat "$dir/lstopo.txt"; return; }
	[ "$(grep -c 'NUMANode L#' "$dir/lstopo.txt")" = "$nodes" ] || bad "lstopo: NUMA nodes"
	[ "$(grep -o 'PU L#[0-9]*' "$dir/lstopo.txt" | wc -l)" = "$vcpus" ] || bad "lstopo: PUs"
	[ "$(grep -c 'Package L#' "$dir/lstopo.txt")" = "$nodes" ] || bad "lstopo: packages"

	for ((n = 0; n < nodes; n++)); do
		local first=$((n * per)) last=$(((n + 1) * per - 1)) want got
		# hwloc's PUs of node n are the CPUs topo_print lists for it.
		want=$(seq -s, $first $last)
		got=$(hwloc-calc --input "$xml" --intersect pu "node:$n")
		[ "$got" = "$want" ] || bad "node $n PUs: hwloc says '$got', want '$want'"
		grep -q "^node $n: cpus $first$([ $last != $first ] && echo "-$last")," "$dir/print.txt" ||
			bad "topo_print: node $n cpus"
		got=$(hwloc-info --input "$xml" "numanode:$n" | sed -n 's/^ *local memory = //p')
		[ "$got" = $((mem * GiB / nodes)) ] || bad "node $n memory: $got"
		got=$(hwloc-calc --input "$xml" --number-of core "node:$n")
		[ "$got" = "$per" ] || bad "node $n cores: $got, want $per"
	done

	# Each PU carries its guest APIC ID, bit-packed as in the MADT.
	local b=0
	while [ $((1 << b)) -lt "$per" ]; do b=$((b + 1)); done
	for i in 0 $((vcpus - 1)); do
		local got=$(hwloc-info --input "$xml" "pu:$i" | sed -n 's/^ *info GuestAPICID = //p')
		[ "$got" = $(((i / per) << b | (i % per))) ] || bad "PU $i APIC ID $got"
	done

	# The SLIT as hwloc's NUMA latency matrix.
	if [ "$nodes" -gt 1 ]; then
		lstopo-no-graphics --input "$xml" --distances >"$dir/dist.txt"
		grep -q "NUMALatency" "$dir/dist.txt" || bad "no NUMALatency matrix"
		for ((i = 0; i < nodes; i++)); do
			local row="$i"
			for ((j = 0; j < nodes; j++)); do row+=" $([ $i = $j ] && echo 10 || echo "$dist")"; done
			grep -q "^ *$(echo "$row" | sed 's/ \+/ \\+/g') *$" "$dir/dist.txt" ||
				bad "distance row $i: want '$row'"
		done
	fi

	# Caches: L3 per package, L2/L1 per core, with the host's sizes.
	[ "$(hwloc-calc --input "$xml" --number-of l3cache all)" = "$nodes" ] || bad "L3 count"
	[ "$(hwloc-calc --input "$xml" --number-of l2cache all)" = "$vcpus" ] || bad "L2 count"
	hwloc-info --input "$xml" l3cache:0 | grep -q "attr cache size = 33554432" || bad "L3 size"
	hwloc-info --input "$xml" l1dcache:0 | grep -q "attr cache size = 49152" || bad "L1d size"
	hwloc-info --input "$xml" l1icache:0 | grep -q "attr cache size = 32768" || bad "L1i size"
	grep -q "^cache L3: 32 MiB, 16-way, 64-byte lines, one per node, shared by its $per vCPU" \
		"$dir/print.txt" || bad "topo_print: L3 line"
	[ $fail = 0 ] && echo "ok: $case"
}

check_case one 1 1 1 20
check_case two 2 4 2 20
check_case three 3 9 3 31
check_case four 4 8 4 20
check_case big 2 254 8 20

# The same through the real command, on this host's caches.
gvm=$GVM_BUILD/gvm
if [ -x "$gvm" ]; then
	case=gvm-topo
	dir=$GVM_TEST_TMP/gvm && mkdir -p "$dir"
	"$gvm" topo --numa 2 --vcpus 6 --mem 2G --xml "$dir/g.xml" >"$dir/print.txt" 2>&1 ||
		bad "gvm topo failed: $(cat "$dir/print.txt")"
	if [ -s "$dir/g.xml" ]; then
		grep -q "^node 1: cpus 3-5, apic-ids 4-6," "$dir/print.txt" || bad "gvm topo text"
		[ "$(hwloc-calc --input "$dir/g.xml" --intersect pu node:1)" = 3,4,5 ] ||
			bad "gvm topo XML: node 1 PUs"
		[ "$(hwloc-calc --input "$dir/g.xml" --number-of numanode all)" = 2 ] ||
			bad "gvm topo XML: nodes"
		[ $fail = 0 ] && echo "ok: $case"
	else
		bad "gvm topo --xml wrote no file"
	fi
	# A file it cannot write: status 1, the reason, and no topology printed
	# as if it had worked.
	out=$("$gvm" topo --numa 2 --vcpus 4 --mem 2G --xml /nonexistent/g.xml 2>"$dir/err")
	rc=$?
	[ $rc = 1 ] && [ -z "$out" ] && grep -q "cannot write /nonexistent/g.xml" "$dir/err" ||
		bad "gvm topo --xml to a missing directory: status $rc, stdout '$out', $(cat "$dir/err")"
else
	bad "no $gvm: run make"
fi

# A topology that cannot be built writes no file and says why.
out=$("$tool" --nodes 3 --vcpus 256 --mem 3G --xml "$GVM_TEST_TMP/no.xml" 2>&1)
[ $? != 0 ] && [ ! -e "$GVM_TEST_TMP/no.xml" ] && [[ $out == *"256 vCPUs do not divide evenly among 3"* ]] ||
	{ echo "FAIL: bad topology: $out"; fail=1; }
exit $fail
