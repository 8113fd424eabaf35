#!/bin/bash
# Every input of every fuzz target's corpus (tests/fuzz/corpus/NAME),
# replayed once through the target as this build compiles it (gcc, with
# ASan and UBSan in the sanitizer build) by $GVM_BUILD/fuzz-replay/NAME
# (tests/fuzz/lib/replay.c): none aborts (a FUZZ_CHECK, a sanitizer
# report) and each replays its whole corpus.  These programs are how
# tools/coverage counts what the fuzzers drive.
set -u
. "$GVM_TOP/tests/lib/fabric.sh"
fail=0
n=0
for src in "$GVM_TOP"/tests/fuzz/*.c; do
	name=$(basename "$src" .c)
	if [ "$name" = fabric-recv ] && ! fabric_built; then
		echo "skip: $name: this gvm was built without libfabric"
		continue
	fi
	prog=$GVM_BUILD/fuzz-replay/$name
	corpus=$GVM_TOP/tests/fuzz/corpus/$name
	[ -x "$prog" ] || { echo "FAIL: $name: $prog was not built (make tests)"; fail=1; continue; }
	want=$(find "$corpus" -type f ! -name '.*' | wc -l)
	[ "$want" -gt 0 ] || { echo "FAIL: $name: no seed in $corpus"; fail=1; continue; }
	GVM_FUZZ_TMP=$GVM_TEST_TMP "$prog" "$corpus" >"$GVM_TEST_TMP/$name.log" 2>&1
	rc=$?
	if [ $rc != 0 ] || ! grep -qx "replay: $want inputs" "$GVM_TEST_TMP/$name.log"; then
		echo "FAIL: $name: status $rc, not all $want inputs replayed:"
		tail -20 "$GVM_TEST_TMP/$name.log"
		fail=1
	else
		echo "ok: $name: $want inputs"
	fi
	n=$((n + 1))
done
[ $n -gt 0 ] || { echo "FAIL: no fuzz target in tests/fuzz"; exit 1; }
exit $fail
