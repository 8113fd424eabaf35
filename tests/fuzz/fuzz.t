#!/bin/bash
# The fuzz targets (tests/fuzz/NAME.c, libFuzzer with ASan and UBSan), each
# for a few seconds (GVM_FUZZ_SECONDS, default 4) from a copy of its seed
# corpus (tests/fuzz/corpus/NAME/, which holds the inputs of the bugs the
# fuzzers found): any crash, sanitizer report or broken invariant fails.
# The targets are built here (make fuzz) with clang, once per run of the
# tests: they bring their own sanitizers, so the sanitizer build skips.
# docs/reliability.md has the long runs.
# timeout: 300
set -u
case $GVM_BUILD in
*/san|*/san/) echo "SKIP: the fuzz targets carry their own sanitizers; they run with the optimised build"
	exit 77 ;;
esac
T=$GVM_TEST_TMP
secs=${GVM_FUZZ_SECONDS:-4}

# libFuzzer's runtime is in libclang-rt-14-dev, which apt-get leaves out
# with --no-install-recommends: say so rather than fail to build.
command -v clang >/dev/null ||
	{ echo "SKIP: clang is not installed (tools/install-deps installs it)"; exit 77; }
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return !d && n; }' >"$T/probe.c"
clang -fsanitize=fuzzer,address,undefined "$T/probe.c" -o "$T/probe" 2>"$T/err" || {
	echo "SKIP: clang cannot link a libFuzzer program (install libclang-rt-14-dev): $(head -1 "$T/err")"
	exit 77
}

# The top Makefile may not include tests/fuzz/module.mk (yet): read it here then.
mk=()
grep -q '^include tests/fuzz/module.mk' "$GVM_TOP/Makefile" || mk=(-f Makefile -f tests/fuzz/module.mk)
if ! make -C "$GVM_TOP" "${mk[@]}" -j2 fuzz >"$T/make.log" 2>&1; then
	echo "FAIL: make fuzz:"
	tail -20 "$T/make.log"
	exit 1
fi

# job-output and image write files: on tmpfs if there is one, as fsync is slow elsewhere.
scratch=$T
if [ -w /dev/shm ] && scratch=$(mktemp -d /dev/shm/gvm-fuzz.XXXXXX); then
	trap 'rm -rf "$scratch"' EXIT
else
	scratch=$T
fi

. "$GVM_TOP/tests/lib/fabric.sh"
fail=0
n=0
for src in "$GVM_TOP"/tests/fuzz/*.c; do
	name=$(basename "$src" .c)
	if [ "$name" = fabric-recv ] && ! fabric_built; then
		echo "skip: $name: this gvm was built without libfabric"
		continue
	fi
	prog=$GVM_TOP/build/fuzz/$name
	[ -x "$prog" ] || { echo "FAIL: $name: $prog was not built"; fail=1; continue; }
	[ -d "$GVM_TOP/tests/fuzz/corpus/$name" ] ||
		{ echo "FAIL: $name: no seed corpus tests/fuzz/corpus/$name"; fail=1; continue; }
	mkdir -p "$T/corpus/$name" "$T/crash/$name"
	cp "$GVM_TOP/tests/fuzz/corpus/$name"/* "$T/corpus/$name/"
	GVM_FUZZ_TMP=$scratch "$prog" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$T/crash/$name/" "$T/corpus/$name" >"$T/$name.log" 2>&1
	rc=$?
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$T/$name.log" | tail -1)
	if [ $rc != 0 ] || [ -n "$(ls -A "$T/crash/$name")" ] || [ -z "$done_line" ]; then
		echo "FAIL: $name: status $rc; its report:"
		grep -E -A25 'ERROR|FUZZ_CHECK|runtime error' "$T/$name.log" | head -40
		# The temporary directory goes away: the input, to replay with `base64 -d`.
		for f in "$T/crash/$name"/*; do
			[ -f "$f" ] && echo "input $(basename "$f") (base64): $(head -c 8192 "$f" | base64 -w0)"
		done
		fail=1
	else
		echo "ok: $name: ${done_line#*DONE }"
	fi
	n=$((n + 1))
done
[ $n -gt 0 ] || { echo "FAIL: no fuzz target in tests/fuzz"; exit 1; }
exit $fail
