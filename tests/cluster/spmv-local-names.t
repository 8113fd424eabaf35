#!/bin/bash
# timeout: 300
# job-templates/spmv-local.sh (and tools/demo, which ends in it) hands the
# guest a Matrix Market file named by the user: with a space, a comma,
# guest command-line syntax, a leading dash, or the generator's name "gen".
# None of that may become guest syntax: each run must compute that very
# file (its size shows, and the host's checksum by the same code matches),
# show the name as given, exit 0 and leave nothing in TMPDIR.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
probe_need
job=$GVM_TOP/job-templates/spmv-local.sh
T=$GVM_TEST_TMP
export GVM_BUILD GVM_IMAGES ITERS=2 TMPDIR=$T/tmpdir
mkdir "$TMPDIR"

# A small matrix, unlike any generated one, with values that need exact rounding.
n=$((40 + RANDOM % 20))
awk -v n=$n -v seed=$RANDOM 'BEGIN {
	srand(seed)
	print "%%MatrixMarket matrix coordinate real general"
	print n, n, 2 * n
	for (i = 1; i <= n; i++) {
		printf "%d %d %.17g\n", i, i, 4 + rand()
		if (i == 1)
			printf "1 2 7.008967e-17\n"
		else
			printf "%d %d %.16g\n", i, int(rand() * n) + 1, (rand() - 0.5) * 1e-16
	}
}' >"$T/small.mtx"

mkdir -p "$T/dir with space"
names=("$T/dir with space/m x.mtx" "$T/a,b.mtx" "gen" "-n probe.workloads=ipi,x.mtx")
for name in "${names[@]}"; do
	cp "$T/small.mtx" "$T/${name#$T/}"
	echo "+ spmv-local.sh '$name'"
	(cd "$T" && "$job" "$name") >"$T/out" 2>&1 </dev/null
	rc=$?
	cat "$T/out"
	[ $rc -eq 0 ] || fail "spmv-local.sh '$name' exited $rc"
	base=${name##*/}
	grep -qF -- "$base: $n x $n, $((2 * n)) non-zeros" "$T/out" ||
		fail "'$name': the guest did not compute that file, or its name is not shown"
	grep -qF "the same as this host computes with the same code" "$T/out" ||
		fail "'$name': the guest's result differs from the host's"
	[ -z "$(ls -A "$TMPDIR")" ] || fail "'$name': left in TMPDIR: $(ls -A "$TMPDIR")"
done
echo "ok: ${#names[@]} awkward file names, each computed as that file"
