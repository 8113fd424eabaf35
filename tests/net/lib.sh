# Helpers for tests/net/*.t (sourced, not a test itself): gvm instances on
# simulated hosts.  Each host is a network namespace with its own UTS
# (host name) and mount namespace (its own /etc/hosts, Debian style: its own
# name at 127.0.1.1, the others' at their addresses), held by a sleeping
# process; tests/tools/netrelay joins them with one TUN device each
# (gvtun0, 10.77.0.R+1/24) and adds delay, jitter and loss, or cuts links.
# Nothing leaves those namespaces but loopback of each.  An EXIT trap ends
# every process the test started, the relay (checking its own exit: its
# sanitizer build reports leaks) and the namespaces, and checks that nothing
# is left behind.
. "$GVM_TOP/tests/probe/lib.sh"
. "$GVM_TOP/tests/lib/munge.sh"

NETRELAY=$GVM_BUILD/tests/tools/netrelay
NET_PORT=7100           # every host's gvm listens there, as on a real cluster
NET_NET=10.77.0         # host R is $NET_NET.$((R + 1))
NET_IF=gvtun0
NET_VMID=$((RANDOM * 32768 + RANDOM + 1))
T=$GVM_TEST_TMP

# Workloads that keep the DSM busy (counters, copies and SpMV over pages of
# every node), IPIs, device interrupts and clocks across hosts; kept short
# (tests/net/soak.sh makes them long).
NET_WORKLOADS=ipi,irq,clock,counter,memcpy,spmv
NET_APPEND=${NET_APPEND:-"probe.iters=2 probe.memcpy_size=1M probe.memcpy_reps=2 probe.counter_iters=20000 probe.ipi_rounds=5"}
NET_PROBE_WAIT_MS=${NET_PROBE_WAIT_MS:-200000}
# A long run to disturb: atomic counters shared across every node.
NET_LONG_APPEND="probe.workloads=counter probe.counter_iters=1000000000"

net_n=0
net_holder=()   # per host: pid of the process that holds its namespaces
net_nsid=()     # per host: its network namespace (net:[INODE])
net_pid=()      # per rank: the gvm node instance (the test's child)
net_rc=()       # per rank: its exit status, once reaped
net_relay=
net_relay_rc=
net_ms=
NET_INITRDS=
net_own_munge=0

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Alive and not a zombie.
alive() { [ -d /proc/$1 ] && [ "$(awk '{ print $3 }' /proc/$1/stat 2>/dev/null)" != Z ]; }

net_need() {
	[ -x "$GVM" ] || fail "no $GVM: run 'make'"
	[ -x "$NETRELAY" ] || fail "no $NETRELAY: run 'make tests'"
	[ -f "$PROBE" ] || fail "no probe image $PROBE: run 'make images'"
	[ "$(id -u)" = 0 ] || skip "network namespaces and TUN devices need root"
	# Minutes of simulated faults, spent once per run: the sanitizer build's
	# own tests cover the same failure paths on loopback (tests/cluster/).
	case $GVM_BUILD in */san) skip "the network simulation runs on the optimised build only" ;; esac
	local c
	for c in ip unshare nsenter ss getent; do
		command -v $c >/dev/null || skip "no $c (iproute2, util-linux)"
	done
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
	[ -r /dev/kvm ] || skip "no /dev/kvm"
	unshare --net --uts --mount --propagation private -- true 2>/dev/null ||
		skip "cannot create network, UTS and mount namespaces"
	if ! { [ -n "${GVM_MUNGE_SOCKET:-}" ] && munge_works "$GVM_MUNGE_SOCKET"; } && ! munge_works; then
		munge_ensure || fail "no munged answers and none could be started"
		net_own_munge=1
	fi
}

# net_need_linux: what net_need asks, and the Linux guest image (its
# kernel, initramfs and command line, as gvm --image linux boots it).
NET_LINUX=$GVM_IMAGES/linux
net_need_linux() {
	local f
	net_need
	for f in vmlinux initramfs.cpio cmdline; do
		[ -r "$NET_LINUX/$f" ] || skip "no $NET_LINUX/$f: run 'make SAN=0 linux-image'"
	done
}

# net_setup N [RELAY OPTIONS]: N hosts gvnet0..gvnetN-1 joined by the relay.
net_setup() {
	local n=$1 i j ready
	shift
	net_n=$n
	for i in $(seq 0 $((n - 1))); do
		{
			printf '127.0.0.1\tlocalhost\n127.0.1.1\tgvnet%d\n' "$i"
			for j in $(seq 0 $((n - 1))); do
				[ "$j" = "$i" ] || printf '%s.%d\tgvnet%d\n' "$NET_NET" $((j + 1)) "$j"
			done
		} >"$T/hosts.$i"
		mkdir -p "$T/tmp.$i"
		rm -f "$T/held.$i"
		unshare --net --uts --mount --propagation private -- sh -c '
			hostname "$1" && mount --bind "$2" /etc/hosts && ip link set lo up || exit 1
			echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null
			echo held >"$3"
			exec sleep 100000' sh "gvnet$i" "$T/hosts.$i" "$T/held.$i" </dev/null &
		net_holder[$i]=$!
	done
	for i in $(seq 0 $((n - 1))); do
		for _ in $(seq 100); do [ -s "$T/held.$i" ] && break; sleep 0.05; done
		[ -s "$T/held.$i" ] || fail "host $i's namespaces could not be set up"
		net_nsid[$i]=$(readlink /proc/${net_holder[$i]}/ns/net)
	done
	rm -f "$T/relay.ctl"
	mkfifo "$T/relay.ctl" || fail "mkfifo"
	local args=()
	for i in $(seq 0 $((n - 1))); do args+=("/proc/${net_holder[$i]}/ns/net=$NET_NET.$((i + 1))/24"); done
	echo "+ netrelay $* (${n} hosts)"
	# As net_node's logs: a previous relay's "ready" is not this one's.
	rm -f "$T/relay.out" "$T/relay.err"
	"$NETRELAY" --ifname $NET_IF --control "$T/relay.ctl" "$@" "${args[@]}" \
		>"$T/relay.out" 2>"$T/relay.err" </dev/null &
	net_relay=$!
	for _ in $(seq 200); do
		grep -q '^netrelay: ready' "$T/relay.out" 2>/dev/null && break
		alive $net_relay || break
		sleep 0.05
	done
	grep -q '^netrelay: ready' "$T/relay.out" ||
		{ cat "$T/relay.out" "$T/relay.err"; fail "the relay did not start"; }
	head -1 "$T/relay.out"
	# names resolve as on a cluster: its own to 127.0.1.1, the others' to theirs
	for i in $(seq 0 $((n - 1))); do
		ready=$(net_in "$i" sh -c 'hostname; for h in "$@"; do getent hosts "$h"; done' sh \
			$(for j in $(seq 0 $((n - 1))); do echo gvnet$j; done) | tr -s ' \t\n' ' ')
		local want="gvnet$i "
		for j in $(seq 0 $((n - 1))); do
			if [ "$j" = "$i" ]; then want+="127.0.1.1 gvnet$j "; else want+="$NET_NET.$((j + 1)) gvnet$j "; fi
		done
		[ "$ready" = "$want" ] || fail "host $i: names resolve as '$ready', not '$want'"
	done
	NET_PEERS=$(for i in $(seq 0 $((n - 1))); do printf 'gvnet%d:%d,' "$i" $NET_PORT; done)
	NET_PEERS=${NET_PEERS%,}
}

# net_in HOST COMMAND...: run COMMAND on host HOST (its namespaces).
net_in() {
	local h=$1
	shift
	nsenter -t "${net_holder[$h]}" -n -u -m -- "$@"
}

# net_ctl COMMAND: tell the relay (cut A B, heal A, drop A B, stall A, ...)
# and wait for its acknowledgement.
net_ctl() {
	local before
	before=$(grep -c '^netrelay: \(ok\|bad command\):' "$T/relay.out")
	echo "$*" >"$T/relay.ctl"
	for _ in $(seq 100); do
		[ "$(grep -c '^netrelay: \(ok\|bad command\):' "$T/relay.out")" -gt "$before" ] && break
		sleep 0.02
	done
	grep -q "^netrelay: ok: $*\$" "$T/relay.out" || fail "the relay did not take '$*'"
}

# net_node RANK VCPUS MEM [OPTIONS]: start instance RANK on host RANK in the
# background (log $T/rRANK.log, status lines in $T/stRANK), its vCPUs pinned
# round-robin over this machine's CPUs, in the caller's working directory
# (where a job's files are).  Rank 0 gets the options that load the guest
# from the caller.
net_node() {
	local r=$1 vcpus=$2 mem=$3 per cpus= k ncpu
	shift 3
	ncpu=$(nproc)
	per=$((vcpus / net_n))
	for k in $(seq 0 $((per - 1))); do cpus+=$(((r * per + k) % ncpu)),; done
	# Emptied here, not by the redirections of a process that may not have
	# run yet: what an earlier instance wrote must not be taken for its own.
	: >"$T/st$r"
	: >"$T/r$r.log"
	TMPDIR=$T/tmp.$r nsenter -t "${net_holder[$r]}" -n -u -m --wd="$PWD" -- \
		"$GVM" node --rank "$r" --peers "$NET_PEERS" --vm-id "$NET_VMID" --vcpus "$vcpus" \
		--mem "$mem" --host-cpus "${cpus%,}" --status-fd 3 "$@" \
		</dev/null >"$T/r$r.log" 2>&1 3>"$T/st$r" &
	net_pid[$r]=$!
	net_rc[$r]=
}

# net_launch VCPUS MEM [OPTIONS]: every instance with OPTIONS, rank 0 also
# with the words of the array NET_RANK0 after them (what loads the guest:
# the probe and its command line, or a job's -- COMMAND [ARGS]).
NET_RANK0=()
net_launch() {
	local vcpus=$1 mem=$2 r
	shift 2
	NET_VMID=$((RANDOM * 32768 + RANDOM + 1))
	echo "+ gvm node x $net_n --vcpus $vcpus --mem $mem $* (peers $NET_PEERS; rank 0: ${NET_RANK0[*]})"
	for r in $(seq 0 $((net_n - 1))); do
		if [ "$r" = 0 ]; then
			net_node 0 "$vcpus" "$mem" "$@" "${NET_RANK0[@]}"
		else
			net_node "$r" "$vcpus" "$mem" "$@"
		fi
	done
}

# net_start VCPUS MEM RANK0_APPEND [OPTIONS]: every instance, rank 0 with the
# probe and that command line, all with OPTIONS.
net_start() {
	local vcpus=$1 mem=$2 append=$3
	shift 3
	NET_RANK0=(--kernel "$PROBE" --append "$append" $NET_INITRDS)
	net_launch "$vcpus" "$mem" "$@"
}

# net_wait_line FILE REGEX SECONDS: 0 once FILE has a matching line.
net_wait_line() {
	local i
	for i in $(seq $(($3 * 20))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# net_wait_ended MS RANK...: wait until every RANK's instance has ended, at
# most MS ms; reap them (net_rc).  net_ms: the time it took; 1 if some
# still ran at the deadline (left running: the EXIT trap kills them).
net_wait_ended() {
	local ms=$1 t0 t left r
	shift
	t0=$(now_ms)
	while :; do
		left=
		for r in "$@"; do alive "${net_pid[$r]}" && left+=" $r"; done 2>/dev/null
		t=$(now_ms)
		[ -z "$left" ] && break
		[ $((t - t0)) -gt "$ms" ] && { net_ms=$((t - t0)); net_diagnose $left; return 1; }
		sleep 0.02
	done 2>/dev/null
	for r in "$@"; do
		[ -n "${net_rc[$r]}" ] && continue
		wait "${net_pid[$r]}"
		net_rc[$r]=$?
	done 2>/dev/null
	net_ms=$((t - t0))
}

# net_diagnose RANK...: what the instances of RANK... are doing (threads,
# their state and kernel wait; their stacks when gdb is there).
net_diagnose() {
	local r p t
	for r in "$@"; do
		p=${net_pid[$r]}
		alive "$p" || continue
		echo "--- rank $r (pid $p) still runs; its threads:"
		for t in /proc/$p/task/*; do
			echo "  $(cat $t/comm 2>/dev/null) $(awk '{ print $3 }' $t/stat 2>/dev/null)" \
				"wchan=$(cat $t/wchan 2>/dev/null)"
		done
		command -v gdb >/dev/null &&
			timeout -k 5 30 gdb -p "$p" -batch -ex 'thread apply all bt' 2>/dev/null |
			grep -E '^(Thread|#)' | sed 's/^/  /'
	done
}

net_logs() {
	local r
	for r in $(seq 0 $((net_n - 1))); do
		[ -f "$T/r$r.log" ] || continue
		echo "--- rank $r (host gvnet$r), status ${net_rc[$r]:-?}:"
		sed 's/^/  /' "$T/r$r.log"
	done
	echo "--- relay:"
	sed 's/^/  /' "$T/relay.out" "$T/relay.err" 2>/dev/null
}

# Processes in one of our namespaces other than the holders (one per line).
net_strays() {
	local p ns h
	for p in $(ls /proc | grep -E '^[0-9]+$'); do
		ns=$(readlink /proc/$p/ns/net 2>/dev/null) || continue
		for h in $(seq 0 $((net_n - 1))); do
			[ "$ns" = "${net_nsid[$h]}" ] && [ "$p" != "${net_holder[$h]}" ] &&
				alive "$p" && echo "pid $p on host $h: $(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null)"
		done
	done
}

# net_check_clean: after the instances ended: no process left in any of the
# hosts, no socket that a process holds, no temporary file.  The relay's own
# and the namespaces' ends are checked by net_teardown.
net_check_clean() {
	local h s left
	left=$(net_strays)
	[ -z "$left" ] || fail "left behind: $left"
	for h in $(seq 0 $((net_n - 1))); do
		s=$(net_in "$h" ss -Hanp 2>/dev/null | grep 'users:')
		[ -z "$s" ] || fail "host $h: sockets held: $s"
		s=$(ls -A "$T/tmp.$h")
		[ -z "$s" ] || fail "host $h: temporary files left: $s"
	done
	s=$(find "$T" -type s)
	[ -z "$s" ] || fail "sockets left: $s"
}

# net_named RANK VICTIM: RANK's log names VICTIM as lost (rank and address).
net_named() {
	grep -q "rank $2 (gvnet$2:$NET_PORT) lost" "$T/r$1.log"
}

# net_fault_run N FAULT_CMD [OPTIONS]: N hosts on the long counter run
# with --peer-timeout $NET_PEER_TIMEOUT; once the guest runs and has been
# running 1 s, run FAULT_CMD (a shell command), and wait for every
# instance in $NET_WAIT_RANKS (default: all) to end within
# $NET_PEER_TIMEOUT + 60 s: a guard against a hang, not a latency bound
# (a loaded machine may take seconds to let them end; TCP alone would wait
# out its retransmissions for many minutes); how long it took is printed.
# Sets net_ms.
NET_PEER_TIMEOUT=3
net_fault_run() {
	local n=$1 fault=$2 r limit
	shift 2
	net_start "$n" "$((n * 64))M" "$NET_LONG_APPEND" --peer-timeout $NET_PEER_TIMEOUT \
		--connect-timeout 20 "$@"
	net_wait_line "$T/r0.log" '^ready:' 90 || { net_logs; fail "the guest never got ready"; }
	for r in $(seq 0 $((n - 1))); do
		net_wait_line "$T/st$r" "^$r running" 10 || { net_logs; fail "rank $r never said it runs"; }
	done
	sleep 1
	for r in $(seq 0 $((n - 1))); do
		alive "${net_pid[$r]}" || { net_logs; fail "rank $r ended before the fault"; }
	done
	echo "+ $fault"
	eval "$fault"
	limit=$(((NET_PEER_TIMEOUT + 60) * 1000))
	net_wait_ended $limit ${NET_WAIT_RANKS:-$(seq 0 $((n - 1)))} ||
		{ net_logs; fail "after '$fault', instances still run $net_ms ms later (limit $limit ms)"; }
	echo "after '$fault': instances ${NET_WAIT_RANKS:-$(seq 0 $((n - 1)) | tr '\n' ' ')}ended within $net_ms ms"
}

# net_seed: the run's random seed, $NET_SEED or from the clock, said so that
# a run can be repeated; sets seed.
net_seed() {
	seed=${NET_SEED:-$(( $(date +%s) % 100000 ))}
	echo "seed $seed (NET_SEED=$seed to repeat)"
}

# net_probe NODES VCPUS MEM: the probe guest over NODES hosts joined with
# 50 us delay, up to 1 ms jitter and 0.1% loss (seed $NET_SEED, else from
# the clock); every workload, judged by probe-check; every instance must
# exit 0, the relay must have forwarded (and, past 10000 packets, lost)
# packets, nothing may be left behind.
# $NET_TRANSPORT, when set, is every instance's --transport.
net_probe() {
	local n=$1 vcpus=$2 mem=$3 r t0 lost fwd seed matrices
	net_seed
	probe_need
	probe_inputs
	NET_INITRDS="--initrd $T/part1.cpio --initrd $T/part2.cpio"
	matrices="$GEN_MATRIX,$(echo $REAL_MATRICES | tr ' ' ,)"
	net_setup "$n" --delay 50 --jitter 1000 --loss 0.1 --seed "$seed"
	"$GVM" topo --vcpus "$vcpus" --numa "$n" --mem "$mem" >"$T/topo.txt" ||
		fail "gvm topo refused --vcpus $vcpus --numa $n --mem $mem"
	t0=$(now_ms)
	net_start "$vcpus" "$mem" \
		"probe.workloads=$NET_WORKLOADS probe.matrix=$matrices $NET_APPEND" \
		${NET_TRANSPORT:+--transport "$NET_TRANSPORT"}
	net_wait_ended $NET_PROBE_WAIT_MS $(seq 0 $((n - 1))) ||
		{ net_logs; fail "instances still run after $((NET_PROBE_WAIT_MS / 1000)) s"; }
	echo "all $n instances ended after $(($(now_ms) - t0)) ms"
	for r in $(seq 0 $((n - 1))); do
		[ "${net_rc[$r]}" = 0 ] || { net_logs; fail "rank $r exited ${net_rc[$r]}, not 0"; }
	done
	cat "$T/r0.log"
	"$PROBE_CHECK" --vcpus "$vcpus" --numa "$n" --mem "$mem" --topo "$T/topo.txt" \
		--ref "$T/ref.txt" --matrices "$matrices" --expect ipi,irq,clock "$T/r0.log" ||
		{ net_logs; fail "the probe's output over $n hosts does not match what was asked for"; }
	grep -q "^result: PASS" "$T/r0.log" || fail "no 'result: PASS'"
	net_check_clean
	net_relay_carried
	echo "ok: the probe passed over $n hosts, $fwd packets forwarded, $lost lost"
	net_teardown_hosts || exit 1
}

# net_relay_carried: the relay's totals (asked for, printed); it must have
# forwarded more than 1000 packets and, past 10000 at 0.1% loss, lost some.
# Sets fwd and lost.
net_relay_carried() {
	local total
	net_ctl stats
	total=$(grep '^netrelay: total' "$T/relay.out" | tail -1)
	echo "$total"
	fwd=$(echo "$total" | sed 's/.*forwarded \([0-9]*\) packets.*/\1/')
	lost=$(echo "$total" | sed 's/.*, lost \([0-9]*\) .*/\1/')
	[[ $fwd =~ ^[0-9]+$ && $lost =~ ^[0-9]+$ ]] || fail "no totals from the relay: '$total'"
	[ "$fwd" -gt 1000 ] || fail "the relay forwarded only $fwd packets: did the instances use it?"
	# 0.1% of thousands of packets: P(none lost) is below 1e-4 past 10000
	[ "$fwd" -lt 10000 ] || [ "$lost" -gt 0 ] || fail "no packet lost of $fwd at 0.1%"
}

# net_teardown_hosts: end the instances still running, the relay (its
# status must be 0, with no sanitizer report) and the hosts, and check that
# the namespaces are gone; 1 (said) if something went wrong.
net_teardown_hosts() {
	local r p h ns left bad=0
	{
		for r in "${!net_pid[@]}"; do kill -KILL "${net_pid[$r]}"; done
		for r in "${!net_pid[@]}"; do wait "${net_pid[$r]}"; done
	} 2>/dev/null
	if [ -n "$net_relay" ]; then
		kill -TERM "$net_relay" 2>/dev/null
		wait "$net_relay" 2>/dev/null
		net_relay_rc=$?
		sed 's/^/relay: /' "$T/relay.err" 2>/dev/null | grep -v 'link [0-9]*->'
		if [ "$net_relay_rc" != 0 ] || grep -q 'Sanitizer' "$T/relay.err" 2>/dev/null; then
			echo "FAIL: the relay exited with status $net_relay_rc or a sanitizer report"
			bad=1
		fi
	fi
	for h in "${!net_holder[@]}"; do kill -KILL "${net_holder[$h]}" 2>/dev/null; done
	for h in "${!net_holder[@]}"; do wait "${net_holder[$h]}" 2>/dev/null; done
	# the namespaces end with their last process
	for _ in $(seq 100); do
		left=
		for p in $(ls /proc | grep -E '^[0-9]+$'); do
			ns=$(readlink /proc/$p/ns/net 2>/dev/null) || continue
			for h in "${!net_nsid[@]}"; do [ "$ns" = "${net_nsid[$h]}" ] && left+=" $p"; done
		done
		[ -z "$left" ] && break
		sleep 0.05
	done
	if [ -n "$left" ]; then
		echo "FAIL: processes still in the test's namespaces: $left"
		bad=1
	fi
	rm -f "$T/relay.ctl"
	for h in "${!net_holder[@]}"; do rm -rf "$T/tmp.$h" "$T/hosts.$h" "$T/held.$h"; done
	net_pid=() net_rc=() net_holder=() net_nsid=() net_relay= net_n=0
	return $bad
}

# Always, whatever ends the test.
net_teardown() {
	local rc=$?
	trap - EXIT
	net_teardown_hosts || { [ $rc = 0 ] && rc=1; }
	[ $net_own_munge = 1 ] && munge_stop_own
	exit $rc
}
trap net_teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
