#!/bin/bash
# timeout: 120
# job-templates/spmv-local.sh checks a matrix file on this host, with the
# reader the guest has, before any gvm starts: a truncated file, a complex
# or a dense (array) one, an index out of range each stop it with one line
# naming the file, the line and the fault, and leave nothing in TMPDIR.
# When the guest fails instead, only its console log is kept, where the
# script says, and the guest was given the file under a fixed name.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
probe_need
job=$GVM_TOP/job-templates/spmv-local.sh
T=$GVM_TEST_TMP
export GVM_IMAGES TMPDIR=$T/tmpdir
mkdir "$TMPDIR" "$T/bad dir"

# A stand-in for gvm, next to the real bench/spmv: it keeps what it was
# given, prints a console that ends in a failure, and fails.
fake=$T/build
mkdir -p "$fake/bench"
ln -s "$SPMV" "$fake/bench/spmv"
cat >"$fake/gvm" <<FAKE
#!/bin/bash
printf '%s\n' "\$@" >"$T/gvm-args"
while [ \$# -gt 1 ]; do
	[ "\$1" = --initrd ] && cp "\$2" "$T/initrd.cpio"
	shift
done
echo "probe: pretending"
echo "result: FAIL (pretend $$)"
exit 3
FAKE
chmod +x "$fake/gvm"
export GVM_BUILD=$fake

# bad FILE LINE WHAT: the job refuses FILE in one line naming it, LINE and WHAT.
bad() {
	local f=$1 line=$2 what=$3 out rc
	rm -f "$T/gvm-args"
	out=$("$job" "$f" 2>&1 </dev/null)
	rc=$?
	printf '%s\n' "$out"
	[ $rc -ne 0 ] || fail "'$f' was accepted"
	[ ! -e "$T/gvm-args" ] || fail "'$f': gvm was started before the file was found bad"
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "'$f': not one line"
	for want in "$f" "line $line:" "$what"; do
		grep -qF -- "$want" <<<"$out" || fail "'$f': the error does not say '$want'"
	done
	[ -z "$(ls -A "$TMPDIR")" ] || fail "'$f': left in TMPDIR: $(ls -A "$TMPDIR")"
}

hdr="%%MatrixMarket matrix coordinate real general"
printf '%s\n3 3 3\n1 1 1.5\n2 2 2.5\n' "$hdr" >"$T/bad dir/short,1.mtx"
bad "$T/bad dir/short,1.mtx" 4 "the file ends after 2 of the 3 entries declared"
printf '%%%%MatrixMarket matrix coordinate complex general\n2 2 1\n1 1 1.0 0.5\n' >"$T/complex.mtx"
bad "$T/complex.mtx" 1 "field 'complex' unsupported"
printf '%%%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n' >"$T/array.mtx"
bad "$T/array.mtx" 1 "format 'array' unsupported"
printf '%s\n%% a comment\n3 3 2\n1 1 1\n4 2 1\n' "$hdr" >"$T/range.mtx"
bad "$T/range.mtx" 5 "row 4 out of range [1, 3]"
: >"$T/empty.mtx"
bad "$T/empty.mtx" 1 "the file is empty"
printf '%s\n3 3 2\n1 1 1\n2 0 1\n' "$hdr" >"$T/col.mtx"
bad "$T/col.mtx" 4 "column 0 out of range [1, 3]"
# A download cut short: its last line, whole or not, is named and the cut suspected.
head -c $((200000 + RANDOM)) "$MATRICES/bcsstk13.mtx" >"$T/cut.mtx"
bad "$T/cut.mtx" "$(awk 'END { print NR }' "$T/cut.mtx")" "is it cut short?"

# A good file, a guest that fails: only the console log stays, where the job says.
good="$T/bad dir/good,1 probe.iters=x.mtx"
printf '%s\n3 3 3\n1 1 1.5\n2 2 2.5\n3 1 -1e-3\n' "$hdr" >"$good"
out=$("$job" "$good" 2>&1 </dev/null)
rc=$?
printf '%s\n' "$out"
[ $rc -eq 3 ] || fail "a failing guest: status $rc, not gvm's 3"
[ -e "$T/gvm-args" ] || fail "the good file did not reach gvm"
left=$(ls -A "$TMPDIR")
[ "$(printf '%s\n' "$left" | wc -l)" -eq 1 ] || fail "left in TMPDIR: $left"
grep -qF -- "$TMPDIR/$left" <<<"$out" || fail "the job does not say where the console log is"
grep -qx "result: FAIL (pretend $$)" "$TMPDIR/$left" || fail "what is kept is not the console log"
# The guest got the file as matrix.mtx, whatever its name here.
grep -q "probe.matrix=matrix.mtx\( \|$\)" "$T/gvm-args" || fail "the guest was not told matrix.mtx"
! grep -qF "good,1" "$T/gvm-args" || fail "the file's name reached gvm's arguments"
[ "$(cpio -it --quiet <"$T/initrd.cpio")" = matrix.mtx ] || fail "the initramfs holds other names"
(mkdir "$T/x" && cd "$T/x" && cpio -id --quiet <"$T/initrd.cpio") && cmp "$T/x/matrix.mtx" "$good" ||
	fail "the initramfs's matrix.mtx is not the file"
echo "ok: bad matrices refused before gvm, in one line; a failed run keeps only its console log"
