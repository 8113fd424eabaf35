#!/bin/bash
# The --giantvm plugin on a private 2-node Slurm cluster, without waiting for
# a guest to boot:
#   - it exports the SPANK symbols and nothing else;
#   - sbatch, srun and salloc list --giantvm in --help;
#   - a bad key or value (option, GIANTVM_* variable, above a site limit) is
#     refused at submission with a message naming it: nothing is queued;
#   - a job without --giantvm runs on the host as if the plugin were absent;
#   - a wrong plugstack line refuses --giantvm only, saying why;
#   - the site's integrity=yes and report_silence=S reach every instance;
#   - numa= (per node, or host) reaches gvm;
#   - a missing image, and a guest that cannot boot, fail the job with
#     gvm's message in its error file, and the nodes stay idle (a user's
#     error never drains one); a missing image the same from an srun inside
#     salloc --giantvm, and with several tasks per node (one instance per
#     node, the other tasks exit 0);
#   - scancel --signal=TERM of a batch job while its guest boots ends both
#     instances (ExitCode 143) and the srun of its batch step; the plugin's
#     records go with them;
#   - a job past its time limit (TIMEOUT) leaves nothing either.
# timeout: 600
. "$GVM_TOP/tests/slurm/lib.sh"
. "$GVM_TOP/tests/slurm/giantvm.sh"

gv_setup 2 mem=256M vcpus=1 max_vcpus=4 connect_timeout=10
t0=$SECONDS
h=$gv_home

# 1. Only Slurm's symbols.
exported=$(nm -D --defined-only "$gv_so" | awk '{print $3}' | sort | tr '\n' ' ')
want="plugin_name plugin_type plugin_version slurm_spank_exit slurm_spank_init"
want+=" slurm_spank_init_post_opt slurm_spank_job_epilog slurm_spank_task_exit"
want+=" slurm_spank_task_init slurm_spank_task_init_privileged slurm_spank_task_post_fork"
want+=" spank_plugin_version "
[ "$exported" = "$want" ] || fail "the plugin exports: $exported"
echo "ok: the plugin exports the SPANK symbols only"

slurm_start

# 8, in the background from now on: a job killed by its time limit (1 min)
# whatever it was doing then (booting, or spinning in the guest).
cat >"$h/spin.sh" <<'EOF'
#!/bin/sh
echo spinning
while :; do :; done
EOF
chmod 755 "$h/spin.sh"
tl=$(cd "$h" && slurm_as_user sbatch -N2 -t 1 --giantvm --parsable -o "$h/tl-%j.out" ./spin.sh) ||
	fail "sbatch -t 1 --giantvm was refused"

# 2. --help.
for c in sbatch srun salloc; do
	out=$($c --help)
	grep -q -- '--giantvm=\[key=value,...\]' <<<"$out" &&
		grep -q "run the job's command inside one giantvm guest" <<<"$out" ||
		fail "$c --help does not list --giantvm"
done
echo "ok: sbatch, srun and salloc --help list --giantvm"

# 3. Refused at submission, as the user, each naming what is wrong.
jobs() { squeue -h -t all -o %i | sort; }
before=$(jobs)	# (the time-limited job is one of them)
refused() { # WANT-STATUS WANT-TEXT COMMAND...
	local want_rc=$1 text=$2 out rc
	shift 2
	out=$(cd "$h" && slurm_as_user "$@" 2>&1)
	rc=$?
	[ $rc = "$want_rc" ] || fail "'$*' exited with $rc, not $want_rc: $out"
	grep -qF -- "$text" <<<"$out" || fail "'$*' did not say '$text': $out"
}
refused 255 "mem=99M: the guest RAM of each node must be a non-zero multiple of 2 MiB" \
	sbatch -N2 --giantvm=mem=99M --wrap true
refused 255 "unknown setting 'bogus' (known: image, mem, vcpus, numa, output, copy, overwrite, verbose)" \
	sbatch --giantvm=bogus=1 --wrap true
refused 255 "vcpus=9 per node is above this site's limit, 4" sbatch --giantvm=vcpus=9 --wrap true
refused 255 "image= is empty" sbatch --giantvm=mem=1G,image= --wrap true
refused 255 "mem is given twice" sbatch --giantvm=mem=1G,mem=2G --wrap true
refused 255 "copy= '-x' starts with '-'" sbatch --giantvm=copy=a,copy=-x --wrap true
refused 1 "GIANTVM_COPY= 'b c' has a space" env GIANTVM_COPY='a,b c' sbatch --giantvm --wrap true
refused 1 "GIANTVM_OUTPUT='a,b' has a comma" env GIANTVM_OUTPUT='a,b' sbatch --giantvm --wrap true
refused 1 "GIANTVM_MEM= 'lots' is not a size" env GIANTVM_MEM=lots sbatch --giantvm --wrap true
refused 255 "vcpus= 0 is out of range [1, 255]" srun -N2 --giantvm=vcpus=0 true
refused 255 "overwrite=maybe: say yes or no" salloc --giantvm=overwrite=maybe true
refused 255 "numa=9: say host (one guest NUMA node per NUMA node of each host) or a number of them per node, 1 to 8" \
	sbatch -N2 --giantvm=numa=9 --wrap true
refused 1 "GIANTVM_NUMA=sockets: say host" env GIANTVM_NUMA=sockets sbatch --giantvm --wrap true
[ "$(jobs)" = "$before" ] || fail "a refused submission queued a job: $(squeue -t all)"
echo "ok: bad values refused by sbatch, srun and salloc, each named; nothing queued"

# 4. Without --giantvm: untouched, even with GIANTVM_* set.
cat >"$h/plain.sh" <<'EOF'
#!/bin/sh
echo "plain on $SLURMD_NODENAME as $(id -un)"
srun -l sh -c 'echo "step on $SLURMD_NODENAME"' | sort
exit 4
EOF
chmod 755 "$h/plain.sh"
id=$(cd "$h" && GIANTVM_MEM=lots slurm_as_user sbatch -N2 --parsable -o "$h/plain-%j.out" ./plain.sh) ||
	fail "sbatch without --giantvm was refused"
slurm_wait_job "$id" 60
rc=$?
cat "$h/plain-$id.out"
[ $rc = 4 ] || fail "job $id without --giantvm: exit status $rc, not 4"
[ "$(cat "$h/plain-$id.out")" = "$(printf 'plain on gv1 as %s\n0: step on gv1\n1: step on gv2' \
	"$slurm_user")" ] || fail "job $id without --giantvm: unexpected output"
gv_check_clean "a job without --giantvm" "$id"
echo "ok: a job without --giantvm ran on the host, its steps too, exit status 4"

# 5. A wrong plugstack line: --giantvm refused, saying so; other jobs run.
cp "$slurm_plugstack" "$slurm_dir/plugstack.good"
sed -i 's/$/ mme=4G/' "$slurm_plugstack"
refused 255 "the plugin's line in plugstack.conf is wrong (unknown argument 'mme=4G'" \
	sbatch --giantvm --wrap true
out=$(cd "$h" && slurm_as_user srun -N2 -l true 2>&1) || fail "srun without --giantvm failed: $out"
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
echo "ok: a wrong plugstack line refuses --giantvm, names the word; jobs without it run"

# 6. A missing image: the job fails, gvm says why, the nodes stay idle.
id=$(cd "$h" && slurm_as_user sbatch -N2 --giantvm=image=/nonexistent/img --parsable \
	-o "$h/img-%j.out" -e "$h/img-%j.err" ./plain.sh) || fail "sbatch --giantvm=image=... refused"
slurm_wait_job "$id" 60
rc=$?
cat "$h/img-$id.err"
[ $rc = 1 ] || fail "job $id with a missing image: exit status $rc, not 1"
grep -q '^gvm rank 0: .*/nonexistent/img' "$h/img-$id.err" ||
	fail "job $id: its error file does not name the missing image"
[ ! -s "$h/img-$id.out" ] || fail "job $id: the script ran: $(cat "$h/img-$id.out")"
# the plugin's srun adds nothing but errors (task/none here: no --cpu-bind note)
grep -q 'cpu binding' "$h/img-$id.err" && fail "job $id: srun's note on CPU binding in the error file"
gv_check_clean "a job with a missing image" "$id"
echo "ok: a missing image fails the job (status 1) with gvm's message; nodes idle, nothing left"

# 6'. The site's transport= reaches every instance (gvm node --transport):
#     a provider this host lacks fails the job before the guest starts,
#     naming it; a value that is no transport refuses --giantvm.
cp "$slurm_plugstack" "$slurm_dir/plugstack.good"
sed -i 's/$/ transport=fabric:nosuch/' "$slurm_plugstack"
id=$(cd "$h" && slurm_as_user sbatch -N2 --giantvm --parsable \
	-o "$h/tr-%j.out" -e "$h/tr-%j.err" ./plain.sh) || fail "sbatch --giantvm refused with transport="
slurm_wait_job "$id" 60
rc=$?
cat "$h/tr-$id.err"
[ $rc = 1 ] || fail "job $id over a missing fabric provider: exit status $rc, not 1"
. "$GVM_TOP/tests/lib/fabric.sh"
missing="provider 'nosuch' is not available here"
fabric_built || missing="this gvm was built without libfabric"
grep -q "^gvm rank 0: .*$missing" "$h/tr-$id.err" ||
	fail "job $id: its error file does not name the missing provider"
gv_check_clean "a job over a missing fabric provider" "$id"
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
sed -i 's/$/ transport=udp/' "$slurm_plugstack"
refused 255 "transport=udp: it is tcp, fabric or fabric:PROVIDER" sbatch --giantvm --wrap true
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
echo "ok: the site's transport= reaches gvm node (a missing provider named, status 1); a bad one refuses --giantvm"

# 6a. A guest that fails to boot (a kernel that triple-faults at once):
#     the job fails, gvm says how, the nodes stay idle.
bad=$GVM_BUILD/tests/vmm/triple.elf
[ -r "$bad" ] || fail "$bad is not built (make tests)"
id=$(cd "$h" && slurm_as_user sbatch -N2 --giantvm="image=$bad" --parsable \
	-o "$h/boot-%j.out" -e "$h/boot-%j.err" ./plain.sh) || fail "sbatch --giantvm=image=$bad refused"
slurm_wait_job "$id" 120
rc=$?
cat "$h/boot-$id.err"
[ $rc = 125 ] || fail "job $id, whose guest cannot boot: exit status $rc, not 125"
grep -q '^gvm rank 0: .*the guest shut down (triple fault' "$h/boot-$id.err" &&
	grep -q '^gvm rank 0: .*the guest ended (status 125) before the job started' "$h/boot-$id.err" ||
	fail "job $id: its error file does not say that the guest failed before the job started"
gv_check_clean "a job whose guest cannot boot" "$id"
echo "ok: a guest that cannot boot fails the job (status 125) with gvm's message; nodes idle, nothing left"

# 6a'. The site's integrity=yes reaches every instance (gvm node
#      --integrity): they form the VM with every message checked, and say
#      so (the same guest that cannot boot: the instances met first); a
#      value that is not yes or no, or integrity=yes with the fabric
#      transport, refuses --giantvm.
cp "$slurm_plugstack" "$slurm_dir/plugstack.good"
sed -i 's/$/ integrity=yes/' "$slurm_plugstack"
id=$(cd "$h" && slurm_as_user sbatch -N2 --giantvm="image=$bad" --parsable \
	-o "$h/int-%j.out" -e "$h/int-%j.err" ./plain.sh) || fail "sbatch --giantvm refused with integrity=yes"
slurm_wait_job "$id" 120
rc=$?
cat "$h/int-$id.err"
[ $rc = 125 ] || fail "job $id with integrity=yes: exit status $rc, not 125"
for r in 0 1; do
	grep -q "^gvm rank $r: node: every message between instances is checked (--integrity)" \
		"$h/int-$id.err" || fail "job $id: rank $r did not say its messages are checked"
done
gv_check_clean "a job with integrity=yes" "$id"
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
sed -i 's/$/ integrity=maybe/' "$slurm_plugstack"
refused 255 "integrity=maybe: it is yes or no" sbatch --giantvm --wrap true
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
sed -i 's/$/ integrity=yes transport=fabric/' "$slurm_plugstack"
refused 255 "integrity=yes checks the instances' TCP connections only" sbatch --giantvm --wrap true
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
echo "ok: the site's integrity=yes reaches every instance; a bad value, or one with transport=fabric, refuses --giantvm"

# 6a''. The site's report_silence=S reaches every instance: a guest silent
#      after its first line (spin.elf) has each instance say what its vCPUs
#      do, in the job's error file (where a user looks at a job that seems
#      stuck); the job is then cancelled. report_silence=0 is refused.
spin=$GVM_BUILD/tests/vmm/spin.elf
[ -r "$spin" ] || fail "$spin is not built (make tests)"
sed -i 's/$/ report_silence=2/' "$slurm_plugstack"
id=$(cd "$h" && slurm_as_user sbatch -N2 --giantvm="image=$spin" --parsable \
	-o "$h/quiet-%j.out" -e "$h/quiet-%j.err" ./plain.sh) ||
	fail "sbatch --giantvm refused with report_silence=2"
seen=
for ((i = 0; i < 600; i++)); do
	grep -q "^gvm rank 0: .*the console has been silent for [0-9]* s; the vCPUs" \
		"$h/quiet-$id.err" 2>/dev/null &&
		grep -q "^gvm rank 1: .*rank 0's console has been silent for [0-9]* s; the vCPUs here" \
			"$h/quiet-$id.err" && grep -q "^gvm rank 1: .*vCPU 1: " "$h/quiet-$id.err" &&
		{ seen=1; break; }
	sleep 0.2
done
scancel "$id"
slurm_wait_job "$id" 60 >/dev/null
[ -n "$seen" ] || { cat "$h/quiet-$id.err"; fail "job $id with report_silence=2: no instance reported its vCPUs within 120 s"; }
gv_check_clean "a job with report_silence=2" "$id"
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
sed -i 's/$/ report_silence=0/' "$slurm_plugstack"
refused 255 "report_silence=: " sbatch --giantvm --wrap true
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
echo "ok: the site's report_silence=2 reaches every instance: each reports its vCPUs in the job's error file; report_silence=0 refuses --giantvm"

# 6a'''. numa= (per node) reaches gvm as the guest's --numa: 2 per node over
#      2 nodes of 1 vCPU each is 4 NUMA nodes for 2 vCPUs, which gvm refuses,
#      saying so in the job's error file; with 2 vCPUs per node the VM forms
#      (the guest that cannot boot, status 125); the site's numa=host (this host
#      has one NUMA node: 2 in all) forms the VM (the guest that cannot boot,
#      status 125, the instances met first); a bad site value refuses --giantvm.
id=$(cd "$h" && slurm_as_user sbatch -N2 --giantvm="numa=2,image=$bad" --parsable \
	-o "$h/numa-%j.out" -e "$h/numa-%j.err" ./plain.sh) || fail "sbatch --giantvm=numa=2 refused"
slurm_wait_job "$id" 120
rc=$?
cat "$h/numa-$id.err"
[ $rc = 1 ] || fail "job $id with numa=2 and 1 vCPU per node: exit status $rc, not 1"
grep -q "^gvm rank 0: .*2 vCPUs do not divide evenly among 4 NUMA nodes" "$h/numa-$id.err" ||
	fail "job $id: gvm did not get --numa 4 (2 per node) or did not say why it refused"
gv_check_clean "a job with numa=2" "$id"
# with 2 vCPUs per node the same shape forms the VM: rank 1, which gets no
# --numa (rank 0 decides), takes rank 0's 4 NUMA nodes
id=$(cd "$h" && slurm_as_user sbatch -N2 --giantvm="numa=2,vcpus=2,image=$bad" --parsable \
	-o "$h/numa2-%j.out" -e "$h/numa2-%j.err" ./plain.sh) || fail "sbatch --giantvm=numa=2,vcpus=2 refused"
slurm_wait_job "$id" 120
rc=$?
cat "$h/numa2-$id.err"
[ $rc = 125 ] || fail "job $id with numa=2 and 2 vCPUs per node: exit status $rc, not 125"
gv_check_clean "a job with numa=2 and 2 vCPUs per node" "$id"
sed -i 's/$/ numa=host/' "$slurm_plugstack"
id=$(cd "$h" && slurm_as_user sbatch -N2 --giantvm="image=$bad" --parsable \
	-o "$h/numah-%j.out" -e "$h/numah-%j.err" ./plain.sh) || fail "sbatch --giantvm refused with numa=host"
slurm_wait_job "$id" 120
rc=$?
cat "$h/numah-$id.err"
[ $rc = 125 ] || fail "job $id with the site's numa=host: exit status $rc, not 125"
gv_check_clean "a job with numa=host" "$id"
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
sed -i 's/$/ numa=0/' "$slurm_plugstack"
refused 255 "numa=0: say host" sbatch --giantvm --wrap true
cp "$slurm_dir/plugstack.good" "$slurm_plugstack"
echo "ok: numa= per node reaches gvm (4 NUMA nodes over 2 nodes: refused for 2 vCPUs, the VM formed with 4); the site's numa=host forms the VM; numa=0 refuses --giantvm"

# 6b. salloc --giantvm: its sruns run in a guest (here: fail on the same
#     missing image, which only gvm node reports).
out=$(cd "$h" && slurm_as_user salloc -N2 --giantvm=image=/nonexistent/img srun true 2>&1)
rc=$?
sal=$(grep -o 'Granted job allocation [0-9]*' <<<"$out" | grep -o '[0-9]*$')
[ $rc = 1 ] && grep -q '^gvm rank 0: .*/nonexistent/img' <<<"$out" ||
	fail "salloc --giantvm; srun: exit status $rc, and: $out"
gv_check_clean "salloc --giantvm" "$sal"
echo "ok: salloc --giantvm: the srun in it ran gvm node (it reported the missing image)"

# 6c. Several tasks per node: each node's first task is its instance, the
#     others exit 0 at once (only tasks 0 and 2, the instances, report the
#     missing image's failure).
out=$(cd "$h" && slurm_as_user srun -N2 -n4 --giantvm=image=/nonexistent/img true 2>&1)
rc=$?
tasks=$(grep -o 'task [0-9]*: Exited with exit code [0-9]*' <<<"$out" | sort | tr '\n' ';')
[ $rc = 1 ] && [ "$tasks" = "task 0: Exited with exit code 1;task 2: Exited with exit code 1;" ] ||
	fail "srun -N2 -n4 --giantvm: exit status $rc, and: $out"
echo "ok: srun -N2 -n4 --giantvm: one instance per node (tasks 0 and 2), the other tasks exit 0"

# 7. scancel while the guest boots, of a batch job (the srun its batch step
#    runs goes too; giantvm-jobs cancels an srun step once its command runs).
id=$(cd "$h" && slurm_as_user sbatch -N2 --giantvm --parsable -o "$h/c-%j.out" ./plain.sh) ||
	fail "sbatch -N2 --giantvm was refused"
deadline=$((SECONDS + 30))
until [ "$(gv_job_records "$id" | wc -l)" = 2 ]; do
	[ $SECONDS -ge $deadline ] && { cat "$h/c-$id.out"; gv_records; fail "job $id: no 2 instances after 30 s"; }
	sleep 0.2
done
sleep 2
[ "$(gv_job_instances "$id" | wc -l)" = 2 ] || { gv_instances; fail "job $id: not 2 instances running"; }
slurm_procs | grep -q " /usr/bin/srun --quiet --nodes=2 .*job0*$id/slurm_script" ||
	{ slurm_procs; fail "job $id: no srun of the instances in its batch step"; }
# SIGTERM to the steps only (not the batch step): the instances stop, the
# srun of the batch step returns their status, which is the job's.
scancel --signal=TERM "$id"
slurm_wait_job "$id" 30
rc=$?
cat "$h/c-$id.out"
[ $rc = 143 ] || fail "job $id: exit status $rc after scancel --signal=TERM, not 143"
grep -q 'plain on' "$h/c-$id.out" && fail "job $id: the script ran despite scancel"
gv_check_clean "scancel --signal=TERM" "$id"
[ -z "$(slurm_procs | grep " /usr/bin/srun --quiet .*job0*$id/")" ] ||
	fail "job $id: its srun is still there"
echo "ok: scancel --signal=TERM of a batch job while its guest boots: ExitCode 143, instances, records and its srun gone"

# 8. The time limit.
slurm_wait_job "$tl" 150
cat "$h/tl-$tl.out"
scontrol -o show job "$tl" | grep -q ' JobState=TIMEOUT ' ||
	fail "job $tl: not TIMEOUT: $(scontrol -o show job "$tl")"
gv_check_clean "a time limit"
echo "ok: a --giantvm job past its time limit: TIMEOUT, no instance or record left, nodes idle"
echo "ok: $((SECONDS - t0)) s"
