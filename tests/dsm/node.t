#!/bin/bash
# dsm-node, the standalone DSM instance: three processes on loopback agree
# on every counter; bad command lines, an unreachable peer and garbage on a
# node's port while the mesh forms are refused with a clear message.
# timeout: 120
set -u
node=$GVM_BUILD/tests/tools/dsm-node
tmp=$GVM_TEST_TMP
fail=0
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
}
trap cleanup EXIT

# expect_fail STATUS PATTERN -- ARGS: dsm-node exits STATUS and says PATTERN.
expect_fail() {
	local want=$1 pattern=$2
	shift 3
	"$node" "$@" >"$tmp/out" 2>&1
	local rc=$?
	if [ $rc -ne "$want" ] || ! grep -q -- "$pattern" "$tmp/out"; then
		echo "FAIL: dsm-node $*: status $rc (want $want), output:"
		sed 's/^/  | /' "$tmp/out"
		fail=1
	else
		echo "ok: dsm-node $* -> $want: $(grep -m1 -- "$pattern" "$tmp/out")"
	fi
}

two=127.0.0.1:1,127.0.0.1:2
expect_fail 2 "--size: 0: the region must be a non-zero multiple of 4096" -- --rank 0 --peers $two --size 0
expect_fail 2 "--size: 5000: the region must be a non-zero multiple of 4096" -- --rank 0 --peers $two --size 5000
expect_fail 2 "--size: " -- --rank 0 --peers $two --size 12Q
expect_fail 2 "--rank: there are 2 peers, so the rank must be below 2" -- --rank 2 --peers $two
expect_fail 2 "required" -- --peers $two
expect_fail 2 "unknown option" -- --rank 0 --peers $two --frobnicate
expect_fail 2 "--peers: " -- --rank 0 --peers 127.0.0.1

# Three instances on free ports (a busy port makes a rank exit 5: try others),
# above the kernel's ephemeral range (32768-60999) and the Slurm tests' ports
# (20000-31999), which may be in use by the slow tier's lane beside this one.
free_ports() {
	local base=$((61000 + (RANDOM * 7 + $$) % 4000)) i
	for i in 0 1 2; do echo $((base + i * 7)); done
}
run_three() {
	local ports peers i rc
	for attempt in 1 2 3 4 5; do
		ports=($(free_ports))
		peers=127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}
		pids=()
		for i in 0 1 2; do
			"$node" --rank $i --peers "$peers" --size 256K --threads 2 --rounds 10 \
				--prefetch 8 "$@" >"$tmp/out.$i" 2>&1 &
			pids+=($!)
		done
		rc=0
		for i in 0 1 2; do
			wait "${pids[$i]}"
			st=$?
			[ $st -ne 0 ] && rc=$st
		done
		pids=()
		[ $rc -eq 5 ] && continue
		return $rc
	done
	return 5
}
# Rank 1 listens on a free port (another one if that one is taken: status 5); rank 0 is nowhere.
for attempt in 1 2 3 4 5; do
	ports=($(free_ports))
	"$node" --rank 1 --peers "127.0.0.1:1,127.0.0.1:${ports[1]}" --timeout 2 >"$tmp/out" 2>&1
	rc=$?
	[ $rc -ne 5 ] && break
done
if [ $rc -ne 4 ] || ! grep -q "cannot reach rank 0 at 127.0.0.1:1" "$tmp/out"; then
	echo "FAIL: unreachable rank 0: status $rc (want 4), output:"
	sed 's/^/  | /' "$tmp/out"
	fail=1
else
	echo "ok: unreachable rank 0 -> 4: $(grep -m1 "cannot reach" "$tmp/out")"
fi

if run_three; then
	for i in 0 1 2; do
		if ! grep -q "rank $i: counters exact" "$tmp/out.$i"; then
			echo "FAIL: rank $i did not report exact counters:"; sed 's/^/  | /' "$tmp/out.$i"; fail=1
		fi
	done
	[ $fail = 0 ] && echo "ok: three instances, counters exact: $(head -1 "$tmp/out.0")"
else
	echo "FAIL: three instances"; for i in 0 1 2; do sed "s/^/  $i| /" "$tmp/out.$i"; done; fail=1
fi

# Garbage on rank 0's port before rank 1 connects: refused, and the DSM still forms.
for attempt in 1 2 3 4 5; do
	ports=($(free_ports))
	peers=127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}
	"$node" --rank 0 --peers "$peers" --size 64K --rounds 5 >"$tmp/g.0" 2>&1 &
	pids=($!)
	for _ in $(seq 600); do
		[ -n "$(ss -ltnH "sport = :${ports[0]}" 2>/dev/null)" ] && break
		kill -0 "${pids[0]}" 2>/dev/null || break
		sleep 0.1
	done
	if ! kill -0 "${pids[0]}" 2>/dev/null; then
		wait "${pids[0]}"; st=$?; pids=()
		[ $st -eq 5 ] && continue
		echo "FAIL: rank 0 ended early ($st)"; sed 's/^/  | /' "$tmp/g.0"; fail=1; break
	fi
	exec 3<>"/dev/tcp/127.0.0.1/${ports[0]}"
	printf 'GV\001\000this is not a giantvm node, these are garbage bytes!!' >&3
	# rank 0 judges the garbage before rank 1 comes (once the mesh formed,
	# a handshake still open is cut, not judged)
	for _ in $(seq 600); do
		grep -q "refused connection" "$tmp/g.0" && break
		sleep 0.1
	done
	"$node" --rank 1 --peers "$peers" --size 64K --rounds 5 >"$tmp/g.1" 2>&1
	st1=$?
	wait "${pids[0]}"; st0=$?; pids=()
	exec 3>&-
	[ $st1 -eq 5 ] && continue
	if [ $st0 -eq 0 ] && [ $st1 -eq 0 ] && grep -q "refused connection.*malformed" "$tmp/g.0"; then
		echo "ok: garbage refused: $(grep -m1 "refused connection" "$tmp/g.0")"
	else
		echo "FAIL: garbage on the port: statuses $st0 $st1"
		sed 's/^/  0| /' "$tmp/g.0"; sed 's/^/  1| /' "$tmp/g.1"; fail=1
	fi
	break
done
exit $fail
