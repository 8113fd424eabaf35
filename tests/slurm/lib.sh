# Helpers for tests/slurm/*.t (sourced, not a test itself): a private Slurm
# cluster on this machine, started and stopped by the test itself.
#
#   . "$GVM_TOP/tests/slurm/lib.sh"
#   slurm_need                      # skip unless root and Slurm is installed
#   slurm_init 2                    # nodes gv1 gv2; writes nothing to run yet
#   slurm_conf_add 'PrologFlags=Alloc,DeferBatch' "Epilog=$GVM_TEST_TMP/epi"
#   echo "required $so arg=1" >>"$slurm_plugstack"
#   slurm_start                     # munged, slurmctld, 2 slurmd; every node idle
#   id=$(sbatch -N2 --parsable ...); slurm_wait_job $id   # its exit status
#   slurm_user_ensure; slurm_as_user sbatch ...  # as the unprivileged user
#   slurm_as_user_bg sbatch --wait ...   # in the background, killed by slurm_stop
#   slurm_procs                     # every process of the cluster (jobs too)
#   slurm_stop                      # also done by the EXIT/INT/TERM/HUP trap
#
# slurm_init sets those traps; a test with cleanup of its own calls
# slurm_stop from its trap.  slurm_start must run in the test's shell
# itself (not in $(...) or a pipeline): the cluster dies with the process
# that started it.  The cluster is a background job of that shell: wait for
# PIDs, never a bare `wait` (it would wait for the cluster).
#
# What it sets up:
# - a directory slurm_dir (mktemp under ${TMPDIR:-/tmp}, mode 0755 so that
#   the unprivileged user reaches slurm.conf and the munge socket; the
#   runner's GVM_TEST_TMP is 0700), removed by slurm_stop;
# - its own munged (own key and socket; GVM_MUNGE_SOCKET is exported to it),
#   one slurmctld and K slurmd (NodeName gv1..gvK, all on this host: Debian's
#   Slurm is built with MULTIPLE_SLURMD, so each has its own Port=, spool
#   directory and log), proctrack/linuxproc, task/none, no accounting;
# - slurm.conf used through SLURM_CONF (exported), with the caller's lines
#   (slurm_conf_add) before the node lines; batch_sched_delay=0, so a job
#   starts within about a second; the other SLURM_*,
#   SBATCH_*, SRUN_*, SALLOC_* variables are unset, so that a test run
#   inside a real Slurm job does not talk to that job's allocation;
# - every daemon lives in a PID namespace of its own (unshare --pid
#   --mount-proc), so slurm_stop ends all of them, the slurmstepds and every
#   job process (even daemonised ones) by ending that namespace's init; the
#   namespace also dies with the test's shell (setpriv --pdeathsig) and with
#   the test's process group (the runner's timeout signals it);
# - ports: one block of 16 TCP ports in [20000, 32000), below the ephemeral
#   range, held with flock for the cluster's life (two runs never share
#   one) and only taken when nothing listens on any of them (a system
#   slurm on 6817/6818, a leftover cluster); slurmctld and the slurmd bind
#   127.0.0.1 only (NoInAddrAny), srun the address of `hostname`.
#
# Globals for the caller: slurm_dir, slurm_nodes (array of node names),
# slurm_nodelist (their hostlist, e.g. gv[1-2]), slurm_plugstack (the
# PlugStackConfig file, empty unless the caller fills it), slurm_user (the
# unprivileged user, made by slurm_user_ensure), slurm_port (the block's
# first port: slurmctld; node i has slurm_port + i).
set -u
PATH=$PATH:/usr/sbin:/sbin
_slurm_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

type skip >/dev/null 2>&1 || skip() { echo "SKIP: $*"; exit 77; }
type fail >/dev/null 2>&1 || fail() { echo "FAIL: $*"; exit 1; }

slurm_user=${GVM_SLURM_USER:-gvmtest}
slurm_dir='' slurm_ns_pid='' slurm_init_pid='' slurm_ns='' slurm_port='' slurm_port_fd=''
slurm_mpi_ports='' slurm_mpi_port_fd='' slurm_port_lock='' slurm_mpi_port_lock=''
slurm_nodes=() slurm_nodelist='' slurm_plugstack='' _slurm_tracked=''
# CPUs per node (slurm.conf's CPUs=; config_overrides, so not the hardware's).
slurm_cpus=${slurm_cpus:-2}
# slurm_pin_nodes=1 (before slurm_start): node i and its jobs run on host
# CPU i-1 only (modulo the CPUs there are), as on a cluster where each node
# has CPUs of its own; otherwise every node's jobs share all the CPUs.
slurm_pin_nodes=${slurm_pin_nodes:-}
# Time to wait for every node to be idle (seconds); a loaded machine is slow.
slurm_start_timeout=${slurm_start_timeout:-60}

slurm_need() {
	[ "$(id -u)" = 0 ] || skip "the Slurm tests run slurmd, which needs root"
	local c
	for c in slurmctld slurmd slurmstepd sbatch srun scontrol sinfo munged munge; do
		command -v "$c" >/dev/null ||
			skip "no $c: install Slurm and munge (tools/install-deps)"
	done
	for c in unshare setpriv flock ss useradd; do
		command -v "$c" >/dev/null || fail "no $c (util-linux, iproute2, passwd)"
	done
}

# slurm_init K: the cluster's directory, ports and names for K nodes.
slurm_init() {
	local k=$1 i v
	[ "$k" -ge 1 ] && [ "$k" -le 15 ] || fail "slurm_init: 1 to 15 nodes, not '$k'"
	for v in $(compgen -e | grep -E '^(SLURM|SBATCH|SRUN|SALLOC|SQUEUE|SINFO|SCONTROL)_'); do
		unset "$v"
	done
	slurm_dir=$(mktemp -d "${TMPDIR:-/tmp}/gvslurm.XXXXXX") || fail "mktemp"
	chmod 755 "$slurm_dir"
	mkdir -p "$slurm_dir"/{etc,log,run,spool/ctld} && mkdir -m 700 "$slurm_dir/munge" ||
		fail "cannot make $slurm_dir"
	trap 'slurm_stop' EXIT
	trap 'slurm_stop; exit 129' HUP
	trap 'slurm_stop; exit 130' INT
	trap 'slurm_stop; exit 143' TERM
	_slurm_pick_ports
	slurm_nodes=()
	for i in $(seq "$k"); do
		slurm_nodes+=("gv$i")
		mkdir "$slurm_dir/spool/gv$i"
	done
	if [ "$k" = 1 ]; then slurm_nodelist=gv1; else slurm_nodelist="gv[1-$k]"; fi
	slurm_plugstack=$slurm_dir/etc/plugstack.conf
	: >"$slurm_plugstack"
	: >"$slurm_dir/etc/extra.conf"
	export SLURM_CONF=$slurm_dir/etc/slurm.conf
}

# One free block of 16 ports, locked for the life of this shell and of the
# daemons (they inherit the descriptor): its first port in _slurm_block, the
# descriptor in _slurm_block_fd, the lock file in _slurm_block_lock.  A
# block taken already by this shell is skipped (its lock is ours, so flock
# alone would hand it out again).  slurm_stop removes the lock file while it
# still holds the lock; so a lock won here counts only if the file is still
# the one at that path (else a shell that opened it afterwards could hold
# the same block through a new file).
_slurm_pick_block() {
	local b fd lock
	for ((b = 20000; b + 16 <= 32000; b += 16)); do
		[ "$b" = "$slurm_port" ] && continue
		lock=${TMPDIR:-/tmp}/gvslurm-ports-$b.lock
		exec {fd}>>"$lock" || continue
		if flock -n "$fd" &&
			[ "$(stat -c %d:%i "$lock" 2>/dev/null)" = "$(stat -L -c %d:%i "/proc/$BASHPID/fd/$fd")" ] &&
			[ -z "$(ss -Hltn "sport >= :$b and sport <= :$((b + 15))")" ]; then
			_slurm_block=$b _slurm_block_fd=$fd _slurm_block_lock=$lock
			return 0
		fi
		exec {fd}>&-
	done
	fail "no free block of 16 ports in 20000-31999"
}

_slurm_pick_ports() {
	_slurm_pick_block
	slurm_port=$_slurm_block slurm_port_fd=$_slurm_block_fd slurm_port_lock=$_slurm_block_lock
}

# slurm_mpi_ports: a second block of 16 ports for the steps' reserved ports
# (MpiParams=ports=A-B: Slurm gives every step some, in
# SLURM_STEP_RESV_PORTS, never the same to two steps on one node); before
# slurm_start.  Sets slurm_mpi_ports to A-B.
slurm_mpi_ports() {
	[ -n "$slurm_dir" ] || fail "slurm_mpi_ports before slurm_init"
	_slurm_pick_block
	slurm_mpi_port_fd=$_slurm_block_fd slurm_mpi_port_lock=$_slurm_block_lock
	slurm_mpi_ports="$_slurm_block-$((_slurm_block + 15))"
	slurm_conf_add "MpiParams=ports=$slurm_mpi_ports"
}

# slurm_conf_add LINE...: lines for slurm.conf (PrologFlags=, Prolog=,
# Epilog=, ...), before slurm_start.
slurm_conf_add() {
	printf '%s\n' "$@" >>"$slurm_dir/etc/extra.conf"
}

_slurm_write_conf() {
	local d=$slurm_dir host i n
	host=$(hostname -s)
	{
		cat <<-EOF
		# Written by tests/slurm/lib.sh: a private cluster on this machine.
		ClusterName=gvtest
		SlurmctldHost=$host(127.0.0.1)
		SlurmctldPort=$slurm_port
		CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
		AuthType=auth/munge
		CredType=cred/munge
		AuthInfo=socket=$d/run/munge.sock
		SlurmUser=root
		SlurmdUser=root
		StateSaveLocation=$d/spool/ctld
		SlurmdSpoolDir=$d/spool/%n
		SlurmctldPidFile=$d/run/slurmctld.pid
		SlurmdPidFile=$d/run/slurmd-%n.pid
		SlurmctldLogFile=$d/log/slurmctld.log
		SlurmdLogFile=$d/log/slurmd-%n.log
		SlurmctldDebug=info
		SlurmdDebug=info
		# Start a batch job at once, not up to 3 s after it is submitted.
		SchedulerParameters=batch_sched_delay=0
		PlugStackConfig=$slurm_plugstack
		ProctrackType=proctrack/linuxproc
		TaskPlugin=task/none
		JobAcctGatherType=jobacct_gather/none
		AccountingStorageType=accounting_storage/none
		JobCompType=jobcomp/none
		SelectType=select/cons_tres
		SelectTypeParameters=CR_Core
		SlurmdParameters=config_overrides
		MpiDefault=none
		SwitchType=switch/none
		ReturnToService=2
		MailProg=/bin/true
		EOF
		cat "$d/etc/extra.conf"
		i=0
		for n in "${slurm_nodes[@]}"; do
			i=$((i + 1))
			echo "NodeName=$n NodeHostname=$host NodeAddr=127.0.0.1 Port=$((slurm_port + i))" \
				"CPUs=$slurm_cpus RealMemory=1000 State=UNKNOWN"
		done
		echo "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
	} >"$SLURM_CONF"
	# cgroup/v2 hosts without systemd: slurmd 22.05 always starts its cgroup
	# plugin (even with linuxproc); let it make its directories itself.
	echo "IgnoreSystemdOnFailure=yes" >"$d/etc/cgroup.conf"
}

# slurm_start: start everything, wait until every node is idle.
slurm_start() {
	local d=$slurm_dir deadline t0=$SECONDS out
	[ -n "$d" ] || fail "slurm_start before slurm_init"
	_slurm_write_conf
	dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 2>/dev/null &&
		chmod 400 "$d/munge/munge.key" || fail "cannot write the munge key"
	# setpriv: the namespace dies with this shell even if it is SIGKILLed;
	# --kill-child: the namespace's init dies with unshare.
	GV_PIN_NODES=$slurm_pin_nodes setpriv --pdeathsig KILL -- \
		unshare --pid --fork --mount-proc --kill-child -- \
		"$_slurm_lib_dir/ns-init.sh" "$d" "${slurm_nodes[@]}" \
		</dev/null >"$d/log/init.out" 2>&1 &
	slurm_ns_pid=$!
	for _ in $(seq 100); do
		slurm_init_pid=$(cat "/proc/$slurm_ns_pid/task/$slurm_ns_pid/children" 2>/dev/null)
		slurm_init_pid=${slurm_init_pid%% *}
		[ -n "$slurm_init_pid" ] && break
		kill -0 "$slurm_ns_pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -n "$slurm_init_pid" ] || { slurm_logs; fail "unshare --pid did not start (no PID namespaces?)"; }
	slurm_ns=$(readlink "/proc/$slurm_init_pid/ns/pid")
	export GVM_MUNGE_SOCKET=$d/run/munge.sock
	deadline=$((SECONDS + slurm_start_timeout))
	while :; do
		out=$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u)
		[ "$(echo "$out" | grep -c ' idle$')" = ${#slurm_nodes[@]} ] && break
		if [ -s "$d/run/exited" ] || ! kill -0 "$slurm_init_pid" 2>/dev/null; then
			slurm_logs
			fail "a daemon exited before every node was idle:" \
				"$(tr '\n' ' ' <"$d/run/exited" 2>/dev/null)"
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "sinfo: ${out:-nothing}"
			slurm_logs
			fail "not every node idle after ${slurm_start_timeout}s"
		fi
		sleep 0.2
	done
	echo "slurm: $slurm_nodelist idle after $((SECONDS - t0))s (ports $slurm_port-$((slurm_port + ${#slurm_nodes[@]})), $slurm_dir)"
}

# The daemons' logs, for a failure.
slurm_logs() {
	local f
	for f in "$slurm_dir"/log/*; do
		[ -s "$f" ] || continue
		echo "---- $f (last 25 lines)"
		tail -n 25 "$f"
	done
}

# slurm_procs: the processes of the cluster's namespace, one "PID COMMAND"
# a line (host PIDs): daemons, slurmstepds, job processes.
slurm_procs() {
	local p
	[ -n "$slurm_ns" ] || return 0
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$slurm_ns" ] || continue
		echo "${p#/proc/} $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
	done
}

# slurm_stop: end the namespace (every daemon, step and job process in it),
# release the ports, remove the directory.  Safe to call twice.
slurm_stop() {
	local p
	for p in $_slurm_tracked; do kill -KILL "$p" 2>/dev/null; done
	_slurm_tracked=
	if [ -n "$slurm_init_pid" ]; then
		kill -KILL "$slurm_init_pid" 2>/dev/null
		# unshare returns once its child is reaped, and the kernel reaps
		# the namespace's init only after every process in it is gone.
		wait "$slurm_ns_pid" 2>/dev/null
		slurm_init_pid='' slurm_ns_pid=''
	elif [ -n "$slurm_ns_pid" ]; then
		kill -KILL "$slurm_ns_pid" 2>/dev/null
		wait "$slurm_ns_pid" 2>/dev/null
		slurm_ns_pid=
	fi
	# The lock files go while their locks are still held (see _slurm_pick_block).
	[ -n "$slurm_port_fd" ] && { rm -f "$slurm_port_lock"; exec {slurm_port_fd}>&-; }
	[ -n "$slurm_mpi_port_fd" ] && { rm -f "$slurm_mpi_port_lock"; exec {slurm_mpi_port_fd}>&-; }
	slurm_port_fd='' slurm_mpi_port_fd='' slurm_mpi_ports='' slurm_port=''
	slurm_port_lock='' slurm_mpi_port_lock=''
	[ -n "$slurm_dir" ] && rm -rf "$slurm_dir"
	slurm_dir=
	return 0
}

# slurm_user_ensure: the unprivileged user jobs may run as (idempotent; two
# runs at once may both try to add it).
slurm_user_ensure() {
	local err
	id -u "$slurm_user" >/dev/null 2>&1 && return 0
	err=$(useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
		--user-group "$slurm_user" 2>&1)
	id -u "$slurm_user" >/dev/null 2>&1 || fail "cannot add the user $slurm_user: $err"
}

# slurm_as_user CMD...: run CMD as $slurm_user, with this environment
# (SLURM_CONF) but the user's HOME, USER and LOGNAME; CMD dies with the
# process that started it.
slurm_as_user() {
	setpriv --reuid="$slurm_user" --regid="$slurm_user" --init-groups --pdeathsig KILL -- \
		env HOME="$(getent passwd "$slurm_user" | cut -d: -f6)" USER="$slurm_user" \
		LOGNAME="$slurm_user" "$@"
}

# slurm_as_user_bg CMD...: the same in the background, a child of the test's
# shell (so it dies with it), its PID in slurm_bg_pid and tracked.
slurm_as_user_bg() {
	setpriv --reuid="$slurm_user" --regid="$slurm_user" --init-groups --pdeathsig KILL -- \
		env HOME="$(getent passwd "$slurm_user" | cut -d: -f6)" USER="$slurm_user" \
		LOGNAME="$slurm_user" "$@" &
	slurm_bg_pid=$!
	slurm_track $slurm_bg_pid
}

# slurm_track PID...: processes of the test (a background sbatch --wait, a
# salloc) that slurm_stop kills first.
slurm_track() {
	_slurm_tracked="$_slurm_tracked $*"
}

# slurm_wait_job ID [TIMEOUT]: wait until job ID has ended (epilogs done:
# not PENDING, RUNNING or COMPLETING); print its JobState and ExitCode;
# return its exit status (a job killed by a signal: 128 + the signal), or
# 124 after TIMEOUT seconds (default 60).
slurm_wait_job() {
	local id=$1 deadline=$((SECONDS + ${2:-60})) line state code
	while :; do
		line=$(scontrol -o show job "$id" 2>&1)
		state=$(echo "$line" | sed -n 's/.* JobState=\([A-Z_]*\).*/\1/p')
		case $state in
		''|PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED|REQUEUED|RESIZING) ;;
		*)
			code=$(echo "$line" | sed -n 's/.* ExitCode=\([0-9]*:[0-9]*\).*/\1/p')
			echo "job $id: JobState=$state ExitCode=$code"
			[ -n "$code" ] || return 1
			[ "${code#*:}" != 0 ] && return $((128 + ${code#*:}))
			return "${code%:*}"
			;;
		esac
		if [ $SECONDS -ge $deadline ]; then
			echo "job $id: still ${state:-unknown} after ${2:-60}s: $line"
			return 124
		fi
		sleep 0.2
	done
}
