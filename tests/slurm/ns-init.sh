#!/bin/bash
# The init (PID 1) of a private Slurm cluster's PID namespace, started by
# slurm_start in tests/slurm/lib.sh: munged, then slurmctld and one slurmd
# per node name, then wait.  As PID 1 it also reaps the orphans
# (slurmstepd, daemonised job processes).  Killing it ends every process in
# the namespace.
#   ns-init.sh DIR NODE...      (SLURM_CONF in the environment)
d=$1
shift
cd "$d" || exit 1	# not the test's directory: prologs and slurmstepd inherit it
munged --foreground --force --socket="$d/run/munge.sock" --key-file="$d/munge/munge.key" \
	--pid-file="$d/run/munged.pid" --seed-file="$d/munge/seed" \
	--log-file="$d/log/munged.log" >"$d/log/munged.out" 2>&1 </dev/null &
for _ in $(seq 100); do
	munge -S "$d/run/munge.sock" -n </dev/null 2>/dev/null |
		unmunge -S "$d/run/munge.sock" >/dev/null 2>&1 && break
	sleep 0.1
done
munge -S "$d/run/munge.sock" -n </dev/null >/dev/null 2>&1 || {
	echo "munged does not answer on $d/run/munge.sock" >>"$d/run/exited"
	exit 1
}
# A daemon that exits says so in run/exited (slurm_start fails at once).
daemon() {
	local name=$1
	shift
	"$@" >"$d/log/$name.out" 2>&1 </dev/null
	echo "$name exited with status $?" >>"$d/run/exited"
}
daemon slurmctld slurmctld -D -i -f "$SLURM_CONF" &
# With GV_PIN_NODES, node i and everything it starts (its jobs) run on host
# CPU i-1 (modulo the CPUs there are), as the nodes of a real cluster each
# have CPUs of their own.
i=0 cpus=$(nproc)
for n; do
	pin=()
	[ -n "${GV_PIN_NODES:-}" ] && pin=(taskset -c $((i % cpus)))
	daemon "slurmd-$n" "${pin[@]}" slurmd -D -N "$n" -f "$SLURM_CONF" &
	i=$((i + 1))
done
wait
