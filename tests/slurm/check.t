#!/bin/bash
# timeout: 240
# gvm check as Slurm runs it, on a private cluster of 2 nodes on this
# machine (tests/slurm/lib.sh): srun -N2 --ntasks-per-node=1 gvm check takes
# each rank from SLURM_NODEID and the peers from scontrol (the nodes gv1 and
# gv2 share the address 127.0.0.1, so they take the step's two reserved
# ports); rank 0 prints the table with the nodes' names, rank 1 nothing, and
# the step exits 0.  Then job-templates/check.sbatch as a batch job: its
# output holds the table, its exit code is 0.  A flag factor no noise
# reaches: no timing is judged here (tests/unit/test-check has the rule).
. "$GVM_TOP/tests/probe/lib.sh"
. "$GVM_TOP/tests/slurm/lib.sh"

slurm_need
[ -x "$GVM" ] || fail "no $GVM: run 'make'"
[ -r /dev/kvm ] || skip "no /dev/kvm"
[ -f "$PROBE" ] || fail "no probe image $PROBE: run 'make images'"
slurm_init 2
d=$slurm_dir
slurm_mpi_ports
slurm_start
mkdir "$d/out" || fail "cannot make $d/out"

# table LOG: both ordered pairs and both local ones, named by node, positive
table() {
	local log=$1 i j
	for i in 0 1; do
		for j in 0 1; do
			grep -E "^ +$i -> $j +" "$log" | awk '{ exit !(($4 == "-" || $4 > 0) && $5 > 0 && $6 > 0) }' ||
				fail "node $i -> node $j is missing or not positive in $log"
		done
	done
	grep -qE "^ +0 -> 1 .* gv1 -> gv2" "$log" || fail "the table does not name the nodes gv1 and gv2"
}

echo "+ srun -N2 --ntasks-per-node=1 gvm check"
(cd "$d/out" && srun -N2 --ntasks-per-node=1 --label "$GVM" check --vcpus 2 --flag-factor 1000) \
	>"$d/out/srun.txt" 2>"$d/out/srun.err"
rc=$?
cat "$d/out/srun.txt" "$d/out/srun.err"
[ $rc -eq 0 ] || fail "srun gvm check exited with $rc, not 0"
grep -q "rank 1 of 2 in Slurm step" "$d/out/srun.err" || fail "rank 1 did not take its rank from Slurm"
grep -q "^1: " "$d/out/srun.txt" && fail "rank 1 printed on standard output"
sed 's/^0: //' "$d/out/srun.txt" >"$d/out/table.txt"
table "$d/out/table.txt"

echo "+ sbatch -N2 job-templates/check.sbatch"
id=$(cd "$d/out" && GVM=$GVM sbatch -N2 --parsable -o "$d/out/job-%j.txt" \
	"$GVM_TOP/job-templates/check.sbatch" --vcpus 2 --flag-factor 1000) || fail "sbatch failed"
slurm_wait_job "$id" 180
rc=$?
cat "$d/out/job-$id.txt"
[ $rc -eq 0 ] || fail "the check job ended with $rc, not 0"
table "$d/out/job-$id.txt"
echo "ok: srun gvm check and the job template over 2 Slurm nodes"
