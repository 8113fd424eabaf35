#!/bin/bash
# timeout: 300
# Rank 0 decides the NUMA shape, as the Slurm plugin runs the instances:
# rank 0 of `gvm node` with --numa 4 and rank 1 with no machine option at
# all form a guest of 4 NUMA nodes, 2 per instance (the probe reads them
# back); a rank 1 told --numa 2 while rank 0 says 4 refuses, saying so,
# and neither instance runs a guest.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_listeners 2 "$@"
cluster_need
probe_need
T=$GVM_TEST_TMP
peers="127.0.0.1:${port[0]},127.0.0.1:${port[1]}"

# inst RANK VM-ID LOG [OPTIONS]: in the background, its listening socket inherited
inst() {
	local r=$1 id=$2 log=$3
	shift 3
	"$GVM" node --rank "$r" --peers "$peers" --vm-id "$id" --listen-fd "${fd[$r]}" \
		--connect-timeout 30 "$@" </dev/null >"$log" 2>&1 &
}

# pair VM-ID LOG-PREFIX RANK1-OPTIONS -- RANK0-OPTIONS: both, waited for: rc0, rc1
pair() {
	local id=$1 log=$2 o1=() p0 p1
	shift 2
	while [ "$1" != -- ]; do o1+=("$1"); shift; done
	shift
	inst 0 "$id" "${log}0.log" "$@"
	p0=$!
	inst 1 "$id" "${log}1.log" "${o1[@]}"
	p1=$!
	track_bg $p0 $p1
	wait $p0
	rc0=$?
	wait $p1
	rc1=$?
	cat "${log}0.log" "${log}1.log"
}

pair 81 "$T/a" -- --numa 4 --vcpus 4 --mem 512M --kernel "$PROBE" \
	--append "probe.workloads=ipi probe.ipi_rounds=2"
[ $rc0 = 0 ] && [ $rc1 = 0 ] || fail "rank 0 --numa 4, rank 1 without: status $rc0 / $rc1, not 0"
"$PROBE_CHECK" --vcpus 4 --numa 4 --mem 512M --per-host 2 --host-distance 20 --distance 40 \
	"$T/a0.log" || fail "rank 0 --numa 4, rank 1 without: the probe saw another machine"
echo "ok: rank 1 without --numa took rank 0's 4 NUMA nodes"

pair 82 "$T/b" --numa 2 -- --numa 4 --vcpus 4 --mem 512M --kernel "$PROBE"
[ $rc0 != 0 ] && [ $rc1 != 0 ] || fail "rank 0 --numa 4, rank 1 --numa 2: status $rc0 / $rc1"
grep -q "rank 1: error: node: --numa 2 here, but rank 0 runs the guest with 4 NUMA nodes" \
	"$T/b1.log" || fail "rank 1 did not say why it refused rank 0's machine"
grep -q "^probe:" "$T/b0.log" && fail "a guest ran although rank 1 refused the machine"
echo "ok: a rank 1 given another --numa refuses rank 0's machine, naming both"
