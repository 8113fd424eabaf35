# Helpers for the --giantvm tests (sourced after lib.sh): a private cluster
# with the built plugin on its plugstack line.
#
#   gv_need_linux_image             skip unless the build has the Linux image
#   gv_setup K [PLUGSTACK-ARG...]   slurm_init K, reserved ports, the plugin
#   slurm_start
#   gv_instances                    gvm instances running in the cluster
#   gv_records                      the plugin's bookkeeping (one file each)
#   gv_job_instances JOB, gv_job_records JOB   the same, of one job
#   gv_check_clean WHAT [JOB]       none of either (JOB's), nodes idle, or fail
#   gv_debug                        where each instance's threads wait (a stall)
#
# Globals: gv_so (the plugin), gv_runtime (its bookkeeping directory),
# gv_home (a directory the test user owns, for its jobs' files).

gv_need_linux_image() {
	local f
	for f in vmlinux initramfs.cpio cmdline; do
		[ -r "$GVM_IMAGES/linux/$f" ] || skip "$GVM_IMAGES/linux/$f is missing: run make linux-image"
	done
}

gv_setup() {
	local k=$1
	shift
	slurm_need
	[ -n "${GVM_BUILD:-}" ] || fail "GVM_BUILD is not set (run me through tests/run)"
	gv_so=$GVM_BUILD/spank/spank_giantvm.so
	[ -r "$gv_so" ] || skip "$gv_so is not built (./configure found no libslurm-dev?)"
	[ -x "$GVM_BUILD/gvm" ] || skip "$GVM_BUILD/gvm is not built"
	[ -e /dev/kvm ] || skip "no /dev/kvm"
	slurm_user_ensure
	slurm_init "$k"
	slurm_mpi_ports
	# sbatch and srun load the plugin as the user: a directory all may read
	mkdir -m 755 "$slurm_dir/lib" && install -m 644 "$gv_so" "$slurm_dir/lib/" ||
		fail "cannot copy the plugin"
	gv_runtime=$slurm_dir/run/giantvm
	gv_home=$slurm_dir/home
	mkdir -m 755 "$gv_home" && chown "$slurm_user:" "$gv_home" || fail "cannot make $gv_home"
	# scancel: SIGTERM, and SIGKILL 5 s later rather than 30
	slurm_conf_add KillWait=5
	# Each node's instances on a CPU of their own, as on distinct hosts:
	# gvm pins its vCPUs among the CPUs it may use.
	slurm_pin_nodes=1
	echo "required $slurm_dir/lib/spank_giantvm.so gvm=$GVM_BUILD/gvm" \
		"munge_socket=$slurm_dir/run/munge.sock runtime_dir=$gv_runtime $*" >>"$slurm_plugstack"
}

gv_instances() {
	slurm_procs | grep -E '^[0-9]+ [^ ]*/gvm node ' || true
}

# gv_job_instances JOB: the instances of JOB's steps (vm-id: JOB << 32 | STEP).
gv_job_instances() {
	local line v
	gv_instances | while read -r line; do
		v=$(grep -o -- '--vm-id=[0-9]*' <<<"$line" | cut -d= -f2)
		[ -n "$v" ] && [ $((v >> 32)) = "$1" ] && echo "$line"
	done
}

# gv_job_records JOB: the plugin's records of JOB's steps.
gv_job_records() {
	gv_records | grep "^[^/]*/$1\." || true
}

gv_records() {
	[ -d "$gv_runtime" ] || return 0
	find "$gv_runtime" -type f -printf '%P: ' -exec cat {} \;
}

# gv_check_clean WHAT [JOB]: after a job (WHAT names it): within 20 s, no
# instance and no record left (of JOB only, if given), and every node idle
# (with JOB: none drained or down, as other jobs may be running).
gv_check_clean() {
	local what=$1 job=${2:-} deadline=$((SECONDS + 20)) out inst rec bad
	while :; do
		out=$(sinfo -h -N -o '%N %T' | sort -u)
		if [ -n "$job" ]; then
			inst=$(gv_job_instances "$job") rec=$(gv_job_records "$job")
			bad=$(grep -Ev ' (idle|mixed|allocated|completing)$' <<<"$out")
		else
			inst=$(gv_instances) rec=$(gv_records)
			bad=$(grep -v ' idle$' <<<"$out")
		fi
		[ -z "$inst" ] && [ -z "$rec" ] && [ -z "$bad" ] && return 0
		[ $SECONDS -ge $deadline ] && break
		sleep 0.5
	done
	echo "after $what:"
	echo "nodes: $out"
	echo "instances: $inst"
	echo "records: $rec"
	fail "$what left something behind, or a node not ${job:+usable}${job:-idle}"
}

# gv_debug: each instance's threads, their state and where they wait in the
# kernel (a vCPU in handle_userfault waits for the DSM), for a failure.
gv_debug() {
	local pid
	for pid in $(gv_instances | cut -d' ' -f1); do
		echo "instance $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)"
		ps -L -o tid=,comm=,stat=,time=,wchan:32= -p "$pid" 2>/dev/null | sed 's/^/    /'
	done
}
