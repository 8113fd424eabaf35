#!/bin/bash
# --giantvm jobs on a private 3-node Slurm cluster, as a site runs them:
#   - sbatch -N3 --giantvm as the unprivileged user: one guest of 3 NUMA
#     nodes (CPUs 0-2 online, numactl -H), which sees its Slurm job id;
#   - then, on the same two nodes at once, a job array of 2 --giantvm jobs
#     of the user (one task at a time) and a --giantvm job of root's: both
#     users' instances run side by side; each array task sees its own
#     SLURM_ARRAY_TASK_ID in the guest and its file comes back; root's job
#     reaches its command, then its time limit (cut short once the command
#     runs: a time limit mid-job, not mid-boot): TIMEOUT, and nothing of any
#     job is left on any node.
# Each boot takes a minute or more where KVM emulates guest kernel code.
# timeout: 2400
. "$GVM_TOP/tests/slurm/lib.sh"
. "$GVM_TOP/tests/slurm/giantvm.sh"

gv_need_linux_image
# report_silence: a boot that stalls (once in a loaded CI run, 2026-12-06)
# leaves each instance's vCPU states and RIPs in the job's error file,
# which the failure shows.
gv_setup 3 mem=256M vcpus=1 report_silence=120
slurm_start
t0=$SECONDS
h=$gv_home

show() { # FILE...: for a failure
	local f
	for f; do
		echo "--- $f"
		cat "$f" 2>/dev/null
	done
}

# 1. Three nodes.
cat >"$h/three.sh" <<'EOF'
#!/bin/sh
echo "cpus online: $(cat /sys/devices/system/cpu/online)"
echo "slurm job: $SLURM_JOB_ID on $SLURM_JOB_NUM_NODES nodes"
numactl -H
EOF
chmod 755 "$h/three.sh"
chown "$slurm_user:" "$h/three.sh"
j=$(cd "$h" && slurm_as_user sbatch -N3 --giantvm --parsable -o "$h/three-%j.out" \
	-e "$h/three-%j.err" ./three.sh) || fail "sbatch -N3 --giantvm was refused"
echo "job $j: -N3"
slurm_wait_job "$j" 600
rc=$?
[ $rc = 124 ] && gv_debug
[ $rc = 0 ] || { show "$h/three-$j.out" "$h/three-$j.err"; slurm_logs; fail "job $j (-N3): exit status $rc"; }
out=$h/three-$j.out
grep -qx 'cpus online: 0-2' "$out" && grep -qx "slurm job: $j on 3 nodes" "$out" ||
	{ show "$out" "$h/three-$j.err"; fail "job $j (-N3): not 3 CPUs online, or not its job id"; }
if grep -qx 'available: 3 nodes (0-2)' "$out"; then
	for n in 0 1 2; do
		grep -qE "^node $n cpus: $n *$" "$out" ||
			{ show "$out"; fail "job $j (-N3): numactl -H: node $n does not hold vCPU $n"; }
	done
elif ! grep -qw -e vmx -e svm /proc/cpuinfo &&
	grep -qE 'Segmentation fault|Illegal instruction|Bus error' "$h/three-$j.err"; then
	# (docs/cluster.md, "Limits": the shell's lines above prove the guest)
	echo "NOTE: job $j (-N3): numactl crashed, as a process may where KVM emulates guest kernel code"
else
	show "$out" "$h/three-$j.err"
	fail "job $j (-N3): numactl -H does not show 3 nodes"
fi
gv_check_clean "the 3-node job"
echo "ok: sbatch -N3 --giantvm: one guest of 3 nodes, CPUs 0-2, its job id ($((SECONDS - t0)) s)"

# 2. Two users at once on gv[1-2]: the user's array (%1: one task at a
# time) and root's job beside its first task.
t1=$SECONDS
cat >"$h/task.sh" <<'EOF'
#!/bin/sh
echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID (job $SLURM_JOB_ID, $GVM_NODES nodes)"
echo "task $SLURM_ARRAY_TASK_ID" >"$GVM_OUTPUT_DIR/task-$SLURM_ARRAY_TASK_ID.txt"
EOF
chmod 755 "$h/task.sh"
chown "$slurm_user:" "$h/task.sh"
a=$(cd "$h" && slurm_as_user sbatch -N2 -w "gv[1-2]" --array=1-2%1 --giantvm --parsable \
	-o "$h/task-%A_%a.out" -e "$h/task-%A_%a.err" ./task.sh) ||
	fail "sbatch --array=1-2%1 --giantvm was refused"
mkdir -m 700 "$slurm_dir/root"
cat >"$slurm_dir/root/long.sh" <<'EOF'
#!/bin/sh
echo "started: job $SLURM_JOB_ID as uid $(id -u)"
exec sleep 100000
EOF
chmod 755 "$slurm_dir/root/long.sh"
r=$(cd "$slurm_dir/root" && sbatch -N2 -w "gv[1-2]" --time=20 --giantvm --parsable \
	-o "$slurm_dir/root/long.out" -e "$slurm_dir/root/long.err" ./long.sh) ||
	fail "root's sbatch --giantvm was refused"
echo "array $a (user $slurm_user), job $r (root), on gv[1-2] at once"

# Until root's command runs: were both users' instances up at one time?
both=
deadline=$((SECONDS + 600))
until grep -q '^started: ' "$slurm_dir/root/long.out" 2>/dev/null; do
	mine=$(gv_job_instances "$r" | wc -l)
	theirs=$(gv_instances | grep -vc -- "--vm-id=$(((r << 32) | 0)) ")
	[ "$mine" = 2 ] && [ "$theirs" -ge 2 ] && both=yes
	if [ $SECONDS -ge $deadline ]; then
		gv_debug
		show "$slurm_dir/root/long.out" "$slurm_dir/root/long.err"
		fail "job $r (root): its command did not start within 600 s"
	fi
	sleep 1
done
grep -qx "started: job $r as uid 0" "$slurm_dir/root/long.out" ||
	{ show "$slurm_dir/root/long.out"; fail "job $r: not root's own job in its guest"; }
[ -n "$both" ] || fail "the two users' instances never ran at once (array $a, job $r)"
echo "job $r (root): its command runs, after $((SECONDS - t1)) s, beside the user's array task;" \
	"time limit cut to 1 minute"
scontrol update JobId="$r" TimeLimit=1 || fail "scontrol update JobId=$r TimeLimit=1 failed"

for k in 1 2; do
	slurm_wait_job "${a}_$k" 600
	rc=$?
	f=$h/task-${a}_$k
	[ $rc = 124 ] && gv_debug
	[ $rc = 0 ] || { show "$f.out" "$f.err"; slurm_logs; fail "array task ${a}_$k: exit status $rc"; }
	grep -qE "^task $k of $a \(job [0-9]+, 2 nodes\)$" "$f.out" ||
		{ show "$f.out" "$f.err"; fail "array task ${a}_$k: did not see its own SLURM_ARRAY_TASK_ID"; }
	[ "$(cat "$h/task-$k.txt" 2>/dev/null)" = "task $k" ] ||
		fail "array task ${a}_$k: task-$k.txt did not come back: $(ls "$h")"
	[ "$(stat -c %U "$h/task-$k.txt")" = "$slurm_user" ] || fail "task-$k.txt is not $slurm_user's"
done
echo "ok: the array's 2 tasks each saw their index and sent their file back ($((SECONDS - t1)) s)"

slurm_wait_job "$r" 240
state=$(scontrol -o show job "$r" | sed -n 's/.* JobState=\([A-Z_]*\).*/\1/p')
[ "$state" = TIMEOUT ] ||
	{ show "$slurm_dir/root/long.out" "$slurm_dir/root/long.err"; fail "job $r: $state, not TIMEOUT"; }
gv_check_clean "the array and root's job"
echo "ok: root's job, beside the user's, ran its command until its time limit: TIMEOUT;" \
	"no instance, no record left, nodes idle ($((SECONDS - t0)) s in all)"
