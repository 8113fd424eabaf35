#!/bin/bash
# timeout: 300
# The probe on gvm with bad input: every case must end with exit status 1,
# "result: FAIL" and an error line that says what was wrong.
. "$GVM_TOP/tests/probe/lib.sh"

[ -x "$GVM" ] || fail "no $GVM: run 'make'"
[ -r /dev/kvm ] || skip "no /dev/kvm"
probe_need
T=$GVM_TEST_TMP

# expect_fail MESSAGE INITRD APPEND
expect_fail() {
	local msg=$1 initrd=$2 append=$3 rc args=()

	[ -n "$initrd" ] && args=(--initrd "$initrd")
	echo "+ gvm run ... ${args[*]} --append '$append'"
	"$GVM" run --kernel "$PROBE" --vcpus 2 --mem 256M "${args[@]}" --append "$append" >"$T/out" 2>&1
	rc=$?
	cat "$T/out"
	[ $rc -eq 1 ] || fail "exit status $rc, expected 1"
	grep -qx "result: FAIL" "$T/out" || fail "no 'result: FAIL'"
	grep -qF -- "$msg" "$T/out" || fail "no message containing: $msg"
}

mkdir -p "$T/in"
cp "$MATRICES/bcsstk13.mtx" "$T/in/good.mtx"
head -c 500000 "$MATRICES/bcsstk13.mtx" >"$T/in/cut.mtx"
# The first entry (the line after the size line) gets a row index out of range.
first=$(grep -n -v '^%' "$MATRICES/bcsstk13.mtx" | sed -n 2p | cut -d: -f1)
sed "${first}s/.*/2004 5 1.0/" "$MATRICES/bcsstk13.mtx" >"$T/in/range.mtx"
(cd "$T/in" && ls good.mtx cut.mtx range.mtx | cpio -o -H newc --quiet) >"$T/in.cpio"
gzip -c "$T/in.cpio" >"$T/in.cpio.gz"

expect_fail "error: unknown option 'probe.bogus' (see docs/probe.md)" "" "probe.bogus=1"
expect_fail "error: bad value 'fast' for option probe.iters" "" "probe.iters=fast"
expect_fail "error: bad value 'avx' for option probe.memcpy_method" "" "probe.memcpy_method=avx"
expect_fail "error: spmv: matrix 'good.mtx' asked for, but no initramfs was given" "" \
	"probe.workloads=spmv probe.matrix=good.mtx"
expect_fail "error: spmv: no file 'nothere.mtx' in the initramfs" "$T/in.cpio" \
	"probe.workloads=spmv probe.matrix=nothere.mtx"
# Named: the file's last line, whole or not.
expect_fail "error: spmv: cut.mtx: line $(awk 'END { print NR }' "$T/in/cut.mtx"): the file ends after" \
	"$T/in.cpio" \
	"probe.workloads=spmv probe.matrix=cut.mtx"
expect_fail "error: spmv: range.mtx: line $first: row 2004 out of range [1, 2003]" "$T/in.cpio" \
	"probe.workloads=spmv probe.matrix=range.mtx"
expect_fail "gzip-compressed archive" "$T/in.cpio.gz" "probe.workloads=spmv probe.matrix=good.mtx"
expect_fail "error: spmv: 'gen:0:4:1': field 1 must be a number" "" \
	"probe.workloads=spmv probe.matrix=gen:0:4:1"
# Sanity: the same initramfs with its good matrix passes.
"$GVM" run --kernel "$PROBE" --vcpus 2 --mem 256M --initrd "$T/in.cpio" \
	--append "probe.workloads=spmv probe.matrix=good.mtx probe.iters=1" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the good matrix failed"; }
echo "ok: bad input fails the probe with a clear message"
