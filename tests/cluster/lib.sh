# Helpers for tests/cluster/*.t (sourced, not a test itself): one guest over
# several gvm instances on this machine (gvm run --nodes, gvm node).
. "$GVM_TOP/tests/probe/lib.sh"

cluster_need() {
	[ -x "$GVM" ] || fail "no $GVM: run 'make'"
	[ -r /dev/kvm ] || skip "no /dev/kvm"
	[ -f "$PROBE" ] || fail "no probe image $PROBE: run 'make images'"
}

# Workloads of the cluster runs, kept short: a loaded 2-core machine runs
# them with more vCPUs than cores.
CLUSTER_WORKLOADS=ipi,irq,clock,counter,memcpy,spmv
CLUSTER_APPEND="probe.iters=2 probe.memcpy_size=1M probe.memcpy_reps=2 probe.counter_iters=20000 probe.ipi_rounds=5"

# cluster_probe NODES VCPUS MEM [EXTRA_APPEND]: the probe over NODES instances with
# every workload on the generated and the real matrices; judge everything.
# $CLUSTER_TRANSPORT, when set, is the instances' --transport; $CLUSTER_OPTS,
# more options of gvm run.
cluster_probe() {
	local nodes=$1 vcpus=$2 mem=$3 extra=${4:-} log=$GVM_TEST_TMP/probe.log rc
	local matrices="$GEN_MATRIX,$(echo $REAL_MATRICES | tr ' ' ,)"

	cluster_need
	probe_need
	probe_inputs
	"$GVM" topo --vcpus "$vcpus" --numa "$nodes" --mem "$mem" >"$GVM_TEST_TMP/topo.txt" ||
		fail "gvm topo refused --vcpus $vcpus --numa $nodes --mem $mem"
	echo "+ gvm run --nodes $nodes --vcpus $vcpus --mem $mem ${CLUSTER_TRANSPORT:+--transport $CLUSTER_TRANSPORT }${CLUSTER_OPTS:+$CLUSTER_OPTS }$extra"
	# shellcheck disable=SC2086
	"$GVM" run --nodes "$nodes" --kernel "$PROBE" --vcpus "$vcpus" --mem "$mem" \
		${CLUSTER_TRANSPORT:+--transport "$CLUSTER_TRANSPORT"} ${CLUSTER_OPTS:-} \
		--initrd "$GVM_TEST_TMP/part1.cpio" --initrd "$GVM_TEST_TMP/part2.cpio" \
		--append "probe.workloads=$CLUSTER_WORKLOADS probe.matrix=$matrices $CLUSTER_APPEND $extra" \
		>"$log" 2>&1 </dev/null
	rc=$?
	cat "$log"
	[ $rc -eq 0 ] || fail "gvm run --nodes $nodes exited with $rc, not 0"
	"$PROBE_CHECK" --vcpus "$vcpus" --numa "$nodes" --mem "$mem" --topo "$GVM_TEST_TMP/topo.txt" \
		--ref "$GVM_TEST_TMP/ref.txt" --matrices "$matrices" --expect ipi,irq,clock "$log" ||
		fail "the probe's output does not match what was asked for"
	grep -q "^gvm: $nodes instances connected" "$log" || fail "no progress line for the connection"
	echo "ok: $nodes instances, $vcpus vCPUs, $mem: topology, APs, IPIs, device interrupts," \
		"clocks, counters, checksums, exit status"
}

# cluster_x2apic_probe VCPUS MODE: the probe over 4 instances with the IPI and
# device interrupt workloads, judged with probe-check; the probe must be in
# MODE (x2apic or xapic).  Its output is left in $GVM_TEST_TMP/probe.log;
# $CLUSTER_TRANSPORT as for cluster_probe.
cluster_x2apic_probe() {
	local vcpus=$1 mode=$2 log=$GVM_TEST_TMP/probe.log rc

	cluster_need
	probe_need
	"$GVM" topo --vcpus "$vcpus" --numa 4 --mem 1G >"$GVM_TEST_TMP/topo.txt" ||
		fail "gvm topo refused --vcpus $vcpus --numa 4"
	echo "+ gvm run --nodes 4 --vcpus $vcpus --mem 1G ${CLUSTER_TRANSPORT:+--transport $CLUSTER_TRANSPORT }(probe: ipi, irq)"
	"$GVM" run --nodes 4 --kernel "$PROBE" --vcpus "$vcpus" --mem 1G \
		${CLUSTER_TRANSPORT:+--transport "$CLUSTER_TRANSPORT"} \
		--append "probe.workloads=ipi,irq probe.ipi_rounds=2" >"$log" 2>&1 </dev/null
	rc=$?
	grep -v "^ipi: \|^irq: \|^ap: \|^cpu: " "$log"
	echo "($(grep -c "^ipi: " "$log") ipi lines, $(grep -c "^irq: " "$log") irq lines," \
		"$(grep -c "^ap: " "$log") ap lines: in $log)"
	[ $rc -eq 0 ] || fail "gvm run with $vcpus vCPUs exited with $rc, not 0"
	"$PROBE_CHECK" --vcpus "$vcpus" --numa 4 --mem 1G --topo "$GVM_TEST_TMP/topo.txt" \
		--expect ipi,irq "$log" || fail "the probe's output does not match what was asked for"
	grep -qx "apic: mode=$mode" "$log" || fail "$vcpus vCPUs: the probe is not in $mode mode"
}

# cluster_refused TEXT ARGS...: gvm run ARGS must refuse at once (status 2),
# saying TEXT.
cluster_refused() {
	local want=$1 rc
	shift
	"$GVM" run "$@" >"$GVM_TEST_TMP/bad.log" 2>&1 </dev/null
	rc=$?
	[ $rc = 2 ] || { cat "$GVM_TEST_TMP/bad.log"; fail "gvm run $*: status $rc, not 2"; }
	grep -q -- "$want" "$GVM_TEST_TMP/bad.log" ||
		{ cat "$GVM_TEST_TMP/bad.log"; fail "gvm run $*: no '$want'"; }
}

# cluster_listeners N "$@": listening sockets for gvm node --listen-fd, bound
# once for the whole test by tests/tools/with-listener (no race for free
# ports).  Called with no test arguments it runs the test again under
# with-listener; then it sets fd[0..N-1] and port[0..N-1] from them.
cluster_listeners() {
	local n=$1 i a=()
	shift
	if [ $# -eq 0 ]; then
		for i in $(seq 0 $((n - 1))); do a+=("@FD$i@" "@PORT$i@"); done
		exec "$GVM_BUILD/tests/tools/with-listener" --count "$n" -- "$0" "${a[@]}"
	fi
	fd=() port=()
	while [ $# -ge 2 ]; do fd+=("$1"); port+=("$2"); shift 2; done
	[ ${#fd[@]} -eq "$n" ] || fail "cluster_listeners: $n sockets expected, got ${#fd[@]}"
}

# Children of the launcher pid $1 that are gvm node instances (one per line: pid rank).
cluster_instances() {
	local p
	for p in $(pgrep -P "$1" 2>/dev/null); do
		{ tr '\0' ' ' </proc/$p/cmdline 2>/dev/null; echo; } |
			sed -n "s/.* node --rank \([0-9]*\) .*/$p \1/p"
	done
}

# Wait until file $1 has a line matching $2 (timeout $3 s); 0 when it does.
wait_for_line() {
	local i
	for i in $(seq $((${3:-60} * 10))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Whatever a test started in the background (launchers, instances) does not
# outlive it, even when it fails half-way: track_bg PID... registers them.
# (A killed launcher takes its instances with it.)
_cluster_bg=
track_bg() { _cluster_bg="$_cluster_bg $*"; }
_cluster_cleanup() {
	local p
	for p in $_cluster_bg; do kill -KILL "$p" 2>/dev/null; done
}
trap _cluster_cleanup EXIT
