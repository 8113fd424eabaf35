# Helpers for tests/probe/*.t (sourced, not a test itself).
set -u

GVM=$GVM_BUILD/gvm
PROBE=$GVM_IMAGES/probe.elf
SPMV=$GVM_BUILD/bench/spmv
PROBE_CHECK=$GVM_BUILD/tests/tools/probe-check
MATRICES=$GVM_TOP/../shared/data/matrices
# The real matrices the tests run, and the generated one.
REAL_MATRICES="bcsstk13.mtx bayer10.mtx pushpull.mtx"
GEN_MATRIX=gen:100000:16:7

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

probe_need() {
	[ -f "$PROBE" ] || fail "no probe image $PROBE: run 'make images'"
	[ -x "$SPMV" ] && [ -x "$PROBE_CHECK" ] || fail "missing $SPMV or $PROBE_CHECK: run 'make tests'"
	for m in $REAL_MATRICES; do
		[ -r "$MATRICES/$m" ] || fail "missing $MATRICES/$m (the repository's parent holds shared/)"
	done
}

# Initramfs images (newc cpio) holding the real matrices: all in matrices.cpio,
# and split over part1.cpio (the first) and part2.cpio (the others), which
# gvm concatenates; and the host's reference lines.
probe_inputs() {
	set -- $REAL_MATRICES
	(cd "$MATRICES" && ls "$@" | cpio -o -H newc --quiet) >"$GVM_TEST_TMP/matrices.cpio" &&
		(cd "$MATRICES" && ls "$1" | cpio -o -H newc --quiet) >"$GVM_TEST_TMP/part1.cpio" &&
		(shift; cd "$MATRICES" && ls "$@" | cpio -o -H newc --quiet) >"$GVM_TEST_TMP/part2.cpio" ||
		fail "cannot build the initramfs images"
	: >"$GVM_TEST_TMP/ref.txt"
	for m in $GEN_MATRIX $REAL_MATRICES; do
		src=$m
		[ "${m#gen}" = "$m" ] && src=$MATRICES/$m
		"$SPMV" --iters 1 "$src" >>"$GVM_TEST_TMP/ref.txt" || fail "bench/spmv $m failed"
	done
}

# probe_gvm VCPUS NODES MEM [EXTRA_APPEND]: boot the probe on gvm with every workload, judge it.
probe_gvm() {
	local vcpus=$1 nodes=$2 mem=$3 extra=${4:-} log=$GVM_TEST_TMP/probe.log rc
	local matrices="$GEN_MATRIX,$(echo $REAL_MATRICES | tr ' ' ,)"

	[ -x "$GVM" ] || fail "no $GVM: run 'make'"
	[ -r /dev/kvm ] || skip "no /dev/kvm"
	probe_need
	probe_inputs
	"$GVM" topo --vcpus "$vcpus" --numa "$nodes" --mem "$mem" >"$GVM_TEST_TMP/topo.txt" ||
		fail "gvm topo refused --vcpus $vcpus --numa $nodes --mem $mem"
	echo "+ gvm run --vcpus $vcpus --numa $nodes --mem $mem $extra"
	"$GVM" run --kernel "$PROBE" --vcpus "$vcpus" --numa "$nodes" --mem "$mem" \
		--initrd "$GVM_TEST_TMP/part1.cpio" --initrd "$GVM_TEST_TMP/part2.cpio" \
		--append "probe.matrix=$matrices probe.iters=3 probe.memcpy_size=4M probe.memcpy_reps=3 $extra" \
		>"$log" 2>&1
	rc=$?
	cat "$log"
	[ $rc -eq 0 ] || fail "gvm run exited with $rc, not 0"
	"$PROBE_CHECK" --vcpus "$vcpus" --numa "$nodes" --mem "$mem" --topo "$GVM_TEST_TMP/topo.txt" \
		--ref "$GVM_TEST_TMP/ref.txt" --matrices "$matrices" "$log" ||
		fail "the probe's output does not match what was asked for"
	echo "ok: $vcpus vCPUs, $nodes nodes, $mem $extra: topology, APs, checksums, exit status"
}
