#!/bin/bash
# The Slurm test harness (tests/slurm/lib.sh) works: a private cluster of two
# nodes on this machine runs sbatch -N2 (the script sees both nodes, its
# exit status comes back), srun -N2 steps on both nodes, jobs of an
# unprivileged user (sbatch --wait, srun), the caller's Prolog/Epilog and
# PrologFlags, and a SPANK plugin from the caller's plugstack.conf (its
# option in sbatch --help, refused at submission, seen as root on each
# node); and slurm_stop leaves nothing running, not even a process a job
# left behind.
# timeout: 120
. "$GVM_TOP/tests/slurm/lib.sh"

slurm_need
[ -r /usr/include/slurm/spank.h ] || skip "no /usr/include/slurm/spank.h (libslurm-dev: tools/install-deps)"
command -v gcc >/dev/null || skip "no gcc"
t0=$SECONDS

slurm_user_ensure
slurm_init 2
d=$slurm_dir
mkdir "$d/out" "$d/home" && chown "$slurm_user:" "$d/home" || fail "cannot make $d/out, $d/home"

# The caller's additions: a prolog on every node at allocation, an epilog.
for s in prolog epilog; do
	printf '#!/bin/sh\necho "%s $SLURMD_NODENAME $SLURM_JOB_ID" >>%s\n' "$s" "$d/out/pe.log" >"$d/etc/$s.sh"
	chmod 755 "$d/etc/$s.sh"
done
slurm_conf_add PrologFlags=Alloc "Prolog=$d/etc/prolog.sh" "Epilog=$d/etc/epilog.sh"

# A SPANK plugin with an option --gvcheck=WORD: "bad" is refused wherever it
# is given; in slurmstepd (remote) it records the node, euid and WORD.
cat >"$d/out/gvcheck.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <slurm/spank.h>

SPANK_PLUGIN(gvcheck, 1);

static const char *out = "/dev/null";
static char word[64];

static int word_cb(int val, const char *arg, int remote)
{
	(void)val;
	(void)remote;
	if (!arg || !strcmp(arg, "bad") || strlen(arg) >= sizeof(word))
		return -1;
	strcpy(word, arg);
	return 0;
}

static struct spank_option opt = {
	"gvcheck", "WORD", "harness check: record WORD on every node", 1, 0, word_cb
};

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	for (int i = 0; i < ac; i++)
		if (!strncmp(av[i], "out=", 4))
			out = av[i] + 4;
	if (spank_context() == S_CTX_SLURMD || spank_context() == S_CTX_JOB_SCRIPT)
		return 0;
	return spank_option_register(sp, &opt);
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	FILE *f;

	(void)ac;
	(void)av;
	if (!spank_remote(sp) || !word[0])
		return 0;
	if (!(f = fopen(out, "a")))
		return -1;
	fprintf(f, "%s euid=%d word=%s\n", getenv("SLURMD_NODENAME"), (int)geteuid(), word);
	return fclose(f);
}
EOF
mkdir -m 755 "$d/lib"
gcc -std=gnu11 -Wall -Werror -fPIC -shared -o "$d/lib/gvcheck.so" "$d/out/gvcheck.c" ||
	fail "cannot build the SPANK check plugin"
echo "required $d/lib/gvcheck.so out=$d/out/gvcheck.log" >>"$slurm_plugstack"

slurm_start

# 1. The unprivileged user's batch job, in the background (sbatch --wait
#    polls every 2 s, then 8 s): its script sees the user and both nodes,
#    runs a step on both, leaves a process behind (linuxproc does not track
#    a reparented one) and exits 5, which sbatch --wait returns.
cat >"$d/home/user.sh" <<EOF
#!/bin/sh
echo "user=\$(id -un) uid=\$(id -u) nodelist=\$SLURM_JOB_NODELIST"
srun -l id -un | sort
setsid sleep 300 </dev/null >/dev/null 2>&1 &
exit 5
EOF
chmod 755 "$d/home/user.sh"
slurm_as_user_bg sbatch --wait -N2 --chdir "$d/home" -o "$d/home/user-%j.txt" "$d/home/user.sh" \
	>"$d/out/user-sbatch.txt" 2>&1
user_sbatch=$slurm_bg_pid

# 2. A root batch job on two nodes; its exit status through scontrol.
cat >"$d/out/job.sh" <<'EOF'
#!/bin/sh
echo "nodelist=$SLURM_JOB_NODELIST nnodes=$SLURM_JOB_NUM_NODES"
echo "batch on $SLURMD_NODENAME as $(id -un)"
srun -l sh -c 'echo "step on $SLURMD_NODENAME"' | sort
exit 3
EOF
chmod 755 "$d/out/job.sh"
id=$(cd "$d/out" && sbatch -N2 --parsable -o "$d/out/job-%j.txt" ./job.sh) || fail "sbatch -N2 failed"
slurm_wait_job "$id" 60
rc=$?
cat "$d/out/job-$id.txt"
[ $rc = 3 ] || fail "job $id: exit status $rc, not 3"
info=$(scontrol -o show job "$id")
for want in JobState=FAILED ExitCode=3:0 'NodeList=gv\[1-2\]' NumNodes=2 BatchHost=gv1; do
	echo "$info" | grep -q " $want " || fail "scontrol show job $id: no $want in: $info"
done
grep -qx 'nodelist=gv\[1-2\] nnodes=2' "$d/out/job-$id.txt" &&
	grep -qx 'batch on gv1 as root' "$d/out/job-$id.txt" &&
	grep -qx '0: step on gv1' "$d/out/job-$id.txt" &&
	grep -qx '1: step on gv2' "$d/out/job-$id.txt" ||
	fail "job $id: its output does not show both nodes"
for n in gv1 gv2; do
	for s in prolog epilog; do
		grep -qx "$s $n $id" "$d/out/pe.log" || { cat "$d/out/pe.log"; fail "no $s of job $id on $n"; }
	done
done
echo "ok: sbatch -N2 as root: script on gv1, step on gv1 and gv2, exit status 3, prolog and epilog on both"

# 3. srun -N2 on both nodes, as root and as the user.
out=$(srun -N2 -l sh -c 'echo "$SLURMD_NODENAME $(id -un)"' | sort) || fail "srun -N2 failed"
[ "$out" = "$(printf '0: gv1 root\n1: gv2 root')" ] || fail "srun -N2 printed: $out"
out=$(slurm_as_user srun -N2 --chdir "$d/home" -l sh -c 'echo "$SLURMD_NODENAME $(id -un)"' | sort) ||
	fail "srun -N2 as $slurm_user failed"
[ "$out" = "$(printf '0: gv1 %s\n1: gv2 %s' "$slurm_user" "$slurm_user")" ] ||
	fail "srun -N2 as $slurm_user printed: $out"
echo "ok: srun -N2 on gv1 and gv2, as root and as $slurm_user"

# 4. The plugin: sbatch lists its option, refuses "bad" before anything is
#    queued (the user's job and the root one are the only ones so far), and
#    the option reaches slurmstepd on both nodes, which runs it as root.
sbatch --help | grep -q -- '--gvcheck=WORD .*harness check' || fail "sbatch --help does not list --gvcheck"
jobs=$(squeue -h -t all -o %i | sort)
if out=$(sbatch --gvcheck=bad --wrap true 2>&1); then fail "sbatch --gvcheck=bad was accepted: $out"; fi
echo "$out" | grep -q 'Invalid --gvcheck argument: bad' || fail "sbatch --gvcheck=bad said: $out"
[ "$(squeue -h -t all -o %i | sort)" = "$jobs" ] || fail "sbatch --gvcheck=bad queued a job"
slurm_as_user srun -N2 --chdir "$d/home" --gvcheck=hello true || fail "srun --gvcheck=hello failed"
[ "$(sort "$d/out/gvcheck.log")" = "$(printf 'gv1 euid=0 word=hello\ngv2 euid=0 word=hello')" ] ||
	{ cat "$d/out/gvcheck.log"; fail "the plugin did not run as root on both nodes"; }
echo "ok: plugin option in sbatch --help, refused at submission, run as root on gv1 and gv2"

# 5. The user's job: sbatch --wait's exit status, the output file.
wait "$user_sbatch"
rc=$?
cat "$d/out/user-sbatch.txt"
[ $rc = 5 ] || fail "sbatch --wait as $slurm_user: exit status $rc, not 5"
uid=$(id -u "$slurm_user")
uid_job=$(sed -n 's/^Submitted batch job //p' "$d/out/user-sbatch.txt")
cat "$d/home/user-$uid_job.txt"
grep -qx "user=$slurm_user uid=$uid nodelist=gv\[1-2\]" "$d/home/user-$uid_job.txt" &&
	grep -qx "0: $slurm_user" "$d/home/user-$uid_job.txt" &&
	grep -qx "1: $slurm_user" "$d/home/user-$uid_job.txt" ||
	fail "job $uid_job: its output does not show $slurm_user on both nodes"
scontrol -o show job "$uid_job" | grep -q " UserId=$slurm_user($uid) " ||
	fail "job $uid_job does not belong to $slurm_user"
echo "ok: sbatch --wait -N2 as $slurm_user: exit status 5, steps on both nodes as $slurm_user"

# 6. Stop: every daemon, and the process the user's job left, end.
procs=$(slurm_procs)
echo "$procs" | grep -q ' sleep 300 ' || { echo "$procs"; fail "the job's leftover process is not running"; }
for want in munged slurmctld 'slurmd -D -N gv1' 'slurmd -D -N gv2'; do
	echo "$procs" | grep -q "$want" || { echo "$procs"; fail "no $want in the cluster's namespace"; }
done
pids=$(echo "$procs" | cut -d' ' -f1)
ports="sport >= :$slurm_port and sport <= :$((slurm_port + 15))"
elapsed=$((SECONDS - t0))
slurm_stop
for p in $pids; do
	[ -d "/proc/$p" ] && fail "process $p is still there after slurm_stop: $(tr '\0' ' ' <"/proc/$p/cmdline")"
done
left=$(slurm_procs)
[ -z "$left" ] || fail "left in the cluster's namespace: $left"
for p in /proc/[0-9]*; do
	c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)
	[[ $c == *"$d"* ]] && fail "a process naming $d is left: ${p#/proc/} $c"
done
[ -z "$(ss -Hltn "$ports")" ] || fail "a port of the cluster still listens: $(ss -Hltn "$ports")"
[ ! -e "$d" ] || fail "$d is still there"
echo "ok: slurm_stop ended $(echo "$pids" | wc -w) processes (daemons, the job's leftover); ports and $d free"
echo "ok: ${elapsed}s with the cluster, $((SECONDS - t0))s in all"
