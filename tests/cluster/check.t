#!/bin/bash
# timeout: 240
# gvm check: the probe's check workload over 2 and 3 instances started here
# (--nodes), and over 2 instances started one by one (--rank/--peers, as on
# the nodes of a cluster): every ordered pair of nodes in the table with
# positive numbers, exit 0; a pair flagged (exit 3, a FLAGGED line); a node
# that cannot join (exit 1, the message names its rank); bad usage (exit 2).
# No timing is judged: on a loaded 2-core host any pair may be slow, so the
# runs that must pass use a flag factor no noise reaches (the rule itself is
# tests/unit/test-check's).
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_listeners 2 "$@"
cluster_need
T=$GVM_TEST_TMP

"$GVM" help check >"$T/help" && grep -q "FLAGGED" "$T/help" && grep -q -- "--flag-factor" "$T/help" ||
	fail "gvm help check does not say the rule"
"$GVM" check --help >/dev/null || fail "gvm check --help failed"

# table NODES LOG: every ordered pair once, with positive numbers ("-": no local IPI)
table() {
	local n=$1 log=$2 i j row
	for i in $(seq 0 $((n - 1))); do
		for j in $(seq 0 $((n - 1))); do
			row=$(grep -E "^ +$i -> $j +" "$log")
			[ "$(printf '%s\n' "$row" | grep -c .)" -eq 1 ] ||
				fail "node $i -> node $j is not in the table exactly once"
			echo "$row" | awk -v i=$i -v j=$j '{
				ok = ($4 == "-" && i == j) || $4 > 0
				exit !(ok && $5 > 0 && $6 > 0) }' ||
				fail "node $i -> node $j: not positive numbers: $row"
		done
	done
	[ "$(grep -cE '^ +[0-9]+ -> [0-9]+ ' "$log")" -eq $((n * n)) ] || fail "rows beyond the $n x $n pairs"
}

# run_check EXPECTED_STATUS LOG ARGS...
run_check() {
	local want=$1 log=$2 rc
	shift 2
	echo "+ gvm check $*"
	"$GVM" check "$@" >"$log" 2>"$log.err" </dev/null
	rc=$?
	cat "$log" "$log.err"
	[ $rc -eq "$want" ] || fail "gvm check $* exited with $rc, not $want"
}

run_check 0 "$T/n2" --nodes 2 --vcpus 4 --flag-factor 1000
table 2 "$T/n2"
grep -q "^gvm check: 2 nodes joined" "$T/n2" || fail "no summary line"
grep -q "no pair of nodes is far" "$T/n2" || fail "no verdict line"
grep -q "(local)" "$T/n2" || fail "no local baseline"

run_check 0 "$T/n3" --nodes 3 --vcpus 3 --flag-factor 1000
table 3 "$T/n3"
# one vCPU per node: no local IPI
grep -E "^ +1 -> 1 +- " "$T/n3" >/dev/null || fail "a node of one vCPU shows a local IPI"

# factor 1: a pair above the median of the others (with 2 nodes: the other direction)
run_check 3 "$T/flag" --nodes 2 --vcpus 2 --flag-factor 1
table 2 "$T/flag"
grep -q "^FLAGGED: node [01] " "$T/flag" || fail "exit 3 without a FLAGGED line"

# one instance at a time, as on a cluster: rank 0 prints the table, rank 1 nothing
peers="127.0.0.1:${port[0]},127.0.0.1:${port[1]}"
"$GVM" check --rank 1 --peers "$peers" --listen-fd "${fd[1]}" --vcpus 2 --flag-factor 1000 \
	>"$T/r1" 2>"$T/r1.err" </dev/null &
p1=$!
track_bg $p1
run_check 0 "$T/r0" --rank 0 --peers "$peers" --listen-fd "${fd[0]}" --vcpus 2 --flag-factor 1000
wait $p1 || { cat "$T/r1.err"; fail "rank 1 exited with $?, not 0"; }
table 2 "$T/r0"
[ ! -s "$T/r1" ] || fail "rank 1 printed a table: $(cat "$T/r1")"

# a node that cannot join: rank 0 waits for rank 1 in vain; rank 1 finds nobody at rank 0's address
run_check 1 "$T/alone0" --rank 0 --peers "127.0.0.1:${port[0]},127.0.0.1:1" --listen-fd "${fd[0]}" \
	--connect-timeout 2
grep -q "rank 1 .*did not connect" "$T/alone0.err" || fail "rank 0's message does not name rank 1"
grep -q "check: the check did not start, or a node could not join" "$T/alone0.err" || fail "no verdict on the failed join"
run_check 1 "$T/alone1" --rank 1 --peers "127.0.0.1:1,127.0.0.1:${port[1]}" --listen-fd "${fd[1]}" \
	--connect-timeout 2
grep -q "cannot reach rank 0" "$T/alone1.err" || fail "rank 1's message does not name rank 0"

# bad usage
env -u SLURM_STEP_NODELIST -u SLURM_NODEID "$GVM" check 2>"$T/usage.err"
[ $? -eq 2 ] && grep -q -- "--nodes N" "$T/usage.err" || fail "gvm check without a form: not status 2 with a hint"
"$GVM" check --nodes 2 --rank 0 2>/dev/null
[ $? -eq 2 ] || fail "--nodes with --rank is not refused"
"$GVM" check --nodes 2 --flag-factor 0.5 2>/dev/null
[ $? -eq 2 ] || fail "--flag-factor 0.5 is not refused"
"$GVM" check --rank 5 --peers 127.0.0.1:1,127.0.0.1:2 2>"$T/rank.err"
[ $? -eq 2 ] && grep -q "check: --rank 5, but --peers lists 2 instances" "$T/rank.err" ||
	fail "--rank beyond --peers is not refused as check's bad option: $(cat "$T/rank.err")"
for numa in host 4; do
	"$GVM" check --nodes 2 --numa $numa 2>"$T/numa.err"
	[ $? -eq 2 ] && grep -q "the check measures one NUMA node per instance" "$T/numa.err" ||
		fail "--numa $numa (more than one node per instance) is not refused"
done
echo "ok: gvm check over 2 and 3 instances, one by one, a flagged pair, a node that cannot join"
