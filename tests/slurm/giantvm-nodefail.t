#!/bin/bash
# A node of a running --giantvm job fails (on a private 2-node Slurm
# cluster): once the job's command runs in the guest, every process of node
# gv2 (its slurmd, its slurmstepd, its gvm instance) is killed at once, as
# a crash would end them.  Then:
#   - the instance on gv1 sees its peer lost and ends, the job ends (not
#     requeued: --no-requeue) with gvm's message in its error file, and
#     nothing of the job is left on gv1 (no instance, no record), which
#     stays usable;
#   - gv2's slurmd comes back, the node returns to service, and the next
#     job there (one without --giantvm) removes any record whose instance
#     is gone (the crash's, one planted as a reboot would leave it): the
#     plugin's epilog sweeps them; nothing left anywhere, both nodes idle.
# timeout: 900
. "$GVM_TOP/tests/slurm/lib.sh"
. "$GVM_TOP/tests/slurm/giantvm.sh"

gv_need_linux_image
command -v nsenter >/dev/null || fail "no nsenter (util-linux)"
gv_setup 2 mem=256M vcpus=1
# A node that does not answer is DOWN after 10 s, not 5 minutes.
slurm_conf_add SlurmdTimeout=10
slurm_start
t0=$SECONDS
h=$gv_home

node_state() { # NODE: its state as sinfo says it (idle, down*, ...)
	sinfo -h -N -o '%N %T' | awk -v n="$1" '$1 == n { print $2; exit }'
}

cat >"$h/long.sh" <<'EOF'
#!/bin/sh
echo "started on $GVM_NODES nodes"
exec sleep 100000
EOF
chmod 755 "$h/long.sh"
chown "$slurm_user:" "$h/long.sh"
j=$(cd "$h" && slurm_as_user sbatch -N2 --no-requeue --giantvm --parsable \
	-o "$h/long-%j.out" -e "$h/long-%j.err" ./long.sh) || fail "sbatch --giantvm was refused"
deadline=$((SECONDS + 480))
until grep -q '^started on 2 nodes$' "$h/long-$j.out" 2>/dev/null; do
	if [ $SECONDS -ge $deadline ]; then
		gv_debug
		cat "$h/long-$j.out" "$h/long-$j.err"
		fail "job $j: its command did not start within 480 s"
	fi
	sleep 1
done
echo "job $j: its command runs in the guest ($((SECONDS - t0)) s); gv2 fails"

# gv2's processes: its slurmd, the slurmstepd of the job's step there (the
# parent of rank 1's instance: slurmstepd keeps its node's name in no place
# a test can read), and everything below them.
node_procs() { # NODE RANK-1-INSTANCE-PID
	local p pids=() ppid more=1
	for p in $(slurm_procs | cut -d' ' -f1); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "^slurmd -D -N $1 " && pids+=("$p")
	done
	pids+=("$(awk '{print $4}' "/proc/$2/stat")")
	while [ $more = 1 ]; do
		more=0
		for p in $(slurm_procs | cut -d' ' -f1); do
			ppid=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)
			[[ " ${pids[*]} " == *" $ppid "* ]] && [[ " ${pids[*]} " != *" $p "* ]] &&
				pids+=("$p") more=1
		done
	done
	echo "${pids[*]}"
}
inst=$(gv_job_instances "$j" | grep -- ' --rank=1 ' | cut -d' ' -f1)
[ -n "$inst" ] || { gv_instances; fail "job $j: no instance of rank 1"; }
victims=$(node_procs gv2 "$inst")
[ -n "$(gv_job_instances "$j" | awk -v v=" $victims " 'index(v, " " $1 " ")')" ] ||
	{ gv_instances; echo "gv2: $victims"; fail "the job's instance on gv2 is not among gv2's processes"; }
# shellcheck disable=SC2086
kill -STOP $victims 2>/dev/null
# shellcheck disable=SC2086
kill -KILL $victims 2>/dev/null
echo "killed gv2's processes: $victims"

slurm_wait_job "$j" 180
rc=$?
[ $rc = 124 ] && { gv_debug; slurm_logs; fail "job $j: still not ended 180 s after gv2 failed"; }
state=$(scontrol -o show job "$j" | sed -n 's/.* JobState=\([A-Z_]*\).*/\1/p')
echo "job $j: $state, exit status $rc; its error file:"
cat "$h/long-$j.err"
case $state in
FAILED|NODE_FAIL|CANCELLED) ;;
*) fail "job $j: $state after its node failed" ;;
esac
# gv1: nothing of the job, and usable (idle once its epilog is done)
deadline=$((SECONDS + 30))
while [ -n "$(gv_job_instances "$j")" ] || [ -n "$(gv_records | grep "^gv1/$j\.")" ] ||
	[ "$(node_state gv1)" != idle ]; do
	if [ $SECONDS -ge $deadline ]; then
		echo "instances of job $j: [$(gv_job_instances "$j")]; records: [$(gv_records)];" \
			"gv1: [$(node_state gv1)]"
		fail "job $j: 30 s after it ended, gv1 kept its instance or record, or is not idle:" \
			"$(sinfo -h -N -o '%N %T' | tr '\n' ' ')"
	fi
	sleep 0.5
done
echo "ok: gv2 failed mid-job: job $j ended ($state), gv1 has nothing left of it and is idle ($((SECONDS - t0)) s)"

# gv2 comes back (its slurmd in the cluster's namespace, on its CPU).
cpus=$(nproc)
nsenter -t "$slurm_init_pid" -p -m -- taskset -c $((1 % cpus)) slurmd -D -N gv2 -f "$SLURM_CONF" \
	</dev/null >>"$slurm_dir/log/slurmd-gv2.out" 2>&1 &
slurm_track $!
deadline=$((SECONDS + 120))
until [ "$(node_state gv2)" = idle ]; do
	[ $SECONDS -ge $deadline ] && { slurm_logs; fail "gv2 did not return to service: $(sinfo -h -N -o '%N %T')"; }
	sleep 1
done
stale=$(gv_records | grep "^gv2/$j\.")
echo "gv2 is back; the crash left: ${stale:-no record (job $j's epilog ran on gv2's return)}"
# What a node that rebooted with the plugin's records on disk would find:
# a record whose process is long gone (one that ran here and exited), of a
# job Slurm has forgotten.  The next job there, an ordinary one, removes it
# and any record the crash left.
sh -c 'exit 0' &
gone=$!
wait $gone
mkdir -p "$gv_runtime/gv2" && echo "$gone 12345" >"$gv_runtime/gv2/99999.0" ||
	fail "cannot write a record in $gv_runtime/gv2"
n=$(cd "$h" && slurm_as_user sbatch -N2 --parsable -o /dev/null --wrap true) || fail "sbatch --wrap true was refused"
slurm_wait_job "$n" 60 || fail "job $n (no --giantvm) failed"
gv_check_clean "the failed node's return"
echo "ok: gv2 back in service; the next job's epilog removed the records of instances long gone;" \
	"both nodes idle ($((SECONDS - t0)) s)"
