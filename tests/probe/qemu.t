#!/bin/bash
# timeout: 300
# The probe guest under QEMU (TCG, PVH boot), whose ACPI tables, LAPIC and
# NUMA layout were written by other people: the probe must read QEMU's
# topology exactly, start every AP and match the host's checksums; and with
# an asymmetric SLIT (wrong for a machine gvm describes) it must say so and
# fail.  This checks the probe itself, independently of gvm.
. "$GVM_TOP/tests/probe/lib.sh"

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (tools/install-deps)"
probe_need
probe_inputs
matrices="$GEN_MATRIX,$(echo $REAL_MATRICES | tr ' ' ,)"

# qemu VCPUS NODES MEM_MB LOG [extra QEMU args...]: exit status as the probe gave it.
qemu() {
	local vcpus=$1 nodes=$2 mb=$3 log=$4 numa=() per share rc
	shift 4
	per=$((vcpus / nodes))
	share=$((mb / nodes))
	if [ "$nodes" -gt 1 ]; then
		for n in $(seq 0 $((nodes - 1))); do
			numa+=(-object "memory-backend-ram,id=m$n,size=${share}M"
			       -numa "node,nodeid=$n,cpus=$((n * per))-$((n * per + per - 1)),memdev=m$n")
		done
	fi
	echo "+ qemu -smp $vcpus, $nodes nodes, ${mb}M $*"
	timeout 120 qemu-system-x86_64 -accel tcg -cpu max -m "${mb}M" -smp "$vcpus" "${numa[@]}" "$@" \
		-display none -serial "file:$log" -monitor none -no-reboot -nodefaults \
		-device isa-debug-exit,iobase=0x501,iosize=4 -kernel "$PROBE" \
		-initrd "$GVM_TEST_TMP/matrices.cpio" \
		-append "probe.matrix=$matrices probe.iters=1 probe.memcpy_size=1M probe.memcpy_reps=1 probe.counter_iters=20000 probe.tsc_khz=1000000"
	rc=$?
	cat "$log"
	# isa-debug-exit: QEMU exits with (status << 1) | 1.
	[ $rc -ge 1 ] && [ $rc -le 255 ] && [ $((rc % 2)) -eq 1 ] || fail "QEMU ended with $rc, not through the exit device"
	return $(((rc - 1) / 2))
}

for shape in "1 1 256" "2 1 256" "2 2 512" "4 2 512" "3 3 768"; do
	set -- $shape
	log=$GVM_TEST_TMP/qemu-$1-$2.log
	dist=()
	[ "$2" -gt 1 ] && for a in $(seq 0 $(($2 - 1))); do for b in $(seq 0 $(($2 - 1))); do
		[ $a -ne $b ] && dist+=(-numa "dist,src=$a,dst=$b,val=$((20 + a + b))")
	done; done
	qemu "$1" "$2" "$3" "$log" "${dist[@]}" || fail "the probe failed under QEMU with $1 vCPUs, $2 nodes"
	d=()
	[ "$2" -eq 2 ] && d=(--distance 21)
	if [ "$2" -le 2 ]; then
		"$PROBE_CHECK" --layout qemu --vcpus "$1" --numa "$2" --mem "$3M" "${d[@]}" \
			--ref "$GVM_TEST_TMP/ref.txt" --matrices "$matrices" "$log" ||
			fail "the probe misread QEMU's $1-vCPU, $2-node machine"
	else
		# Three nodes: distances 20+a+b, which probe-check's single value cannot say.
		grep -qx "distance: node 0 10 21 22" "$log" && grep -qx "distance: node 1 21 10 23" "$log" &&
			grep -qx "distance: node 2 22 23 10" "$log" || fail "wrong distances for 3 nodes"
		grep -qx "topology: node 2 cpus 2 mem .*" "$log" || fail "node 2 should hold CPU 2"
		grep -qx "result: PASS" "$log" || fail "no PASS with 3 nodes"
	fi
done

# A wrong table: distance(0,1) = 20 but distance(1,0) = 30.
log=$GVM_TEST_TMP/qemu-asym.log
qemu 2 2 512 "$log" -numa dist,src=0,dst=1,val=20 -numa dist,src=1,dst=0,val=30
rc=$?
[ $rc -eq 1 ] || fail "the probe exited with $rc on an asymmetric SLIT, expected 1"
grep -q "^error: acpi: SLIT: distance(0, 1) = 20 but distance(1, 0) = 30" "$log" ||
	fail "the probe did not name the asymmetric SLIT"
grep -qx "result: FAIL" "$log" || fail "no 'result: FAIL' line"
# Soft-off through QEMU's FADT and \_S5 (SLP_TYP 0 there, 5 in gvm's): QEMU exits 0
# on a power-off, and would exit through the exit device (odd status) had the
# probe found the wrong port or value.
log=$GVM_TEST_TMP/qemu-poweroff.log
echo "+ qemu -smp 1, probe.end=poweroff"
timeout 120 qemu-system-x86_64 -accel tcg -cpu max -m 256M -smp 1 \
	-display none -serial "file:$log" -monitor none -no-reboot -nodefaults \
	-device isa-debug-exit,iobase=0x501,iosize=4 -kernel "$PROBE" \
	-append "probe.workloads=none probe.end=poweroff probe.tsc_khz=1000000"
rc=$?
cat "$log"
[ $rc -eq 0 ] || fail "QEMU ended with $rc after the probe's ACPI power-off, not 0"
grep -q '^poweroff: pm1a_cnt=0x[0-9a-f]* slp_typ=[0-9]*$' "$log" || fail "the probe did not power off"
echo "ok: QEMU's machines read exactly; an asymmetric SLIT fails the probe; soft-off through QEMU's tables"
