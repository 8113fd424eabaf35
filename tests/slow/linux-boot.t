#!/bin/bash
# gvm boots the Linux guest image: 2 vCPUs in 2 NUMA nodes, 2 x 128 MiB.
# Asserts on the kernel's own boot log: it found our ACPI tables, took its
# NUMA layout from SRAT (each vCPU and each node's memory where gvm put
# them), brought up both vCPUs, and ran /init.
#
# Where guest kernel code runs in hardware (the CPU flags show vmx or svm),
# the test goes on: the job payload runs, prints, and its exit status
# becomes gvm's.  Where KVM emulates guest kernel code (no vmx/svm: this
# project's CI machines), guest user mode cannot make system calls, so the
# test stops at "Run /init"; booting there takes minutes (about 1 us per
# guest kernel instruction).  There the guest's kernel-mode CPUID is the
# host's whatever gvm asks for, so the kernel gets the command line words of
# images/linux/cmdline-emulated: noxsave (the emulator has no XSAVE),
# no-int3-selftest (images/linux/patches) and clearcpuid=erms,fsrm (faster
# there).  docs/linux-image.md has the details.
# timeout: 900
set -u

gvm=$GVM_BUILD/gvm
img=$GVM_IMAGES/linux
tmp=$GVM_TEST_TMP
share_mib=128
limit=${GVM_LINUX_BOOT_LIMIT:-720} # seconds to reach the end of the boot
# 2: the same guest over 2 gvm instances, one NUMA node each (linux-cluster.t)
instances=${GVM_LINUX_BOOT_INSTANCES:-1}
shape="--numa 2"
[ "$instances" = 2 ] && shape="--nodes 2"

if [ ! -x "$gvm" ]; then
	echo "SKIP: $gvm is not built (make progs)"
	exit 77
fi
for f in bzImage initramfs.cpio; do
	if [ ! -r "$img/$f" ]; then
		echo "SKIP: $img/$f is missing: run make linux-image"
		exit 77
	fi
done
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "SKIP: /dev/kvm is not usable by $(id -un)"
	exit 77
fi

if grep -qw -e vmx -e svm /proc/cpuinfo; then
	mode=hardware
	append="console=ttyS0 panic=-1"
	echo "host: hardware virtualization (vmx/svm): boot, run the job, check its status"
else
	mode=emulated
	append="console=ttyS0 panic=-1 $(grep -v "^#" "$GVM_TOP/images/linux/cmdline-emulated")"
	echo "host: KVM without vmx/svm emulates guest kernel code and guest user mode" \
		"cannot make system calls: checking the boot up to 'Run /init' (takes minutes)"
fi

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

printf '#!/bin/sh\necho "job: hello from gvm"\nexit 3\n' >"$tmp/job.sh"
"$GVM_TOP/images/linux/mkpayload" -o "$tmp/job.cpio" "$tmp/job.sh" || exit 1

log=$tmp/console.log
start=$(date +%s)
"$gvm" run --vcpus 2 $shape --mem $((2 * share_mib))M \
	--kernel "$img/bzImage" --initrd "$img/initramfs.cpio" --initrd "$tmp/job.cpio" \
	--append "$append" >"$log" 2>&1 &
pid=$!
stop_gvm() {
	kill -TERM $pid 2>/dev/null || return 0
	for _ in $(seq 20); do
		kill -0 $pid 2>/dev/null || return 0
		sleep 0.5
	done
	echo "gvm did not stop within 10 s of SIGTERM: killing it"
	kill -KILL $pid 2>/dev/null
}
trap 'stop_gvm' EXIT

# Follow the boot, printing each milestone with the time it took.
milestones=("ACPI: SRAT 0x" "SRAT: PXM" "Initmem setup node 1" "smp: Brought up"
	"Unpacking initramfs" "Run /init as init process")
[ $mode = hardware ] && milestones+=("gvm-init: exit status")
next=0 rc=
while :; do
	now=$(($(date +%s) - start))
	while [ $next -lt ${#milestones[@]} ] && grep -qF "${milestones[$next]}" "$log"; do
		echo "[${now}s] ${milestones[$next]}"
		next=$((next + 1))
	done
	if ! kill -0 $pid 2>/dev/null; then
		wait $pid
		rc=$?
		echo "[${now}s] gvm exited with status $rc"
		break
	fi
	[ $mode = emulated ] && [ $next -ge ${#milestones[@]} ] && break
	if [ $now -ge "$limit" ]; then
		fail "the boot did not finish within ${limit}s; it got as far as" \
			"'${milestones[$((next > 0 ? next - 1 : 0))]}'"
		break
	fi
	sleep 2
done

if [ $mode = emulated ] && grep -qF "Run /init as init process" "$log"; then
	# User space cannot run here (its first SYSCALL lands at LSTAR still in
	# user mode); show what the kernel makes of it, then stop.
	for _ in $(seq 15); do
		[ -n "$rc" ] && break
		if ! kill -0 $pid 2>/dev/null; then
			wait $pid
			rc=$?
			break
		fi
		sleep 1
	done
	[ -n "$rc" ] || stop_gvm
	echo "--- after 'Run /init' (user space cannot run on this host;" \
		"gvm status ${rc:-stopped}):"
	sed -n '/Run \/init as init process/,$p' "$log" | tr -d '\r' | sed -n '2,8p'
fi

tr -d '\r' <"$log" >"$tmp/console"
log=$tmp/console
expect() { # REGEX WHAT
	grep -qE "$1" "$log" || fail "$2: no line matching '$1'"
}
refuse() { # REGEX WHAT
	! grep -qE "$1" "$log" || fail "$2: $(grep -E "$1" "$log" | head -1)"
}

# Linux found the tables gvm wrote.
for t in APIC SRAT SLIT; do
	expect "ACPI: $t 0x[0-9A-F]+" "ACPI table $t"
done
refuse "SRAT: not used|No NUMA configuration found|Faking a node|NUMA: nodes only cover" \
	"NUMA from SRAT refused"
refuse "SLIT table looks invalid" "SLIT refused"

# Each vCPU in its own node (the APIC IDs are gvm's to choose).
cpus=$(sed -n 's/.*SRAT: PXM \([0-9]*\) -> APIC 0x[0-9a-f]* -> Node \([0-9]*\)$/\1:\2/p' "$log" |
	sort | tr '\n' ' ')
[ "$cpus" = "0:0 1:1 " ] ||
	fail "SRAT processor affinity: PXM:node pairs are '$cpus', expected '0:0 1:1 '"

# Each node's memory is its share: node n spans [n, n+1) x 128 MiB.
share=$((share_mib << 20))
for n in 0 1; do
	hex='\(0x[0-9a-f]*\)'
	span=$(sed -n "s/.*Initmem setup node $n \[mem $hex-$hex\].*/\1 \2/p" "$log")
	if [ -z "$span" ]; then
		fail "no 'Initmem setup node $n' line"
		continue
	fi
	read -r lo hi <<<"$span"
	if [ $((hi + 1)) -ne $(((n + 1) * share)) ] || [ $((lo)) -gt $((n * share + (1 << 20))) ] ||
		[ $((lo)) -lt $((n * share)) ]; then
		fail "node $n spans [$lo, $hi], expected [$((n * share)), $(((n + 1) * share - 1))]"
	fi
	expect "ACPI: SRAT: Node $n PXM $n \[mem " "SRAT memory affinity of node $n"
done

expect "smp: Brought up 2 nodes, 2 CPUs" "both vCPUs up, in 2 nodes"
expect "Run /init as init process" "the kernel ran /init"
kerr=$(sed '/Run \/init as init process/q' "$log" | grep -E "Kernel panic|BUG: |Oops|WARNING: CPU" |
	head -1)
[ -z "$kerr" ] || fail "kernel error before user space: $kerr"

if [ $mode = hardware ]; then
	expect "^gvm-init: up: 2 CPUs, 2 NUMA nodes" "/init sees the topology"
	expect "^available: 2 nodes \(0-1\)" "numactl -H"
	expect "^node 0 cpus: 0 *$" "numactl -H node 0"
	expect "^node 1 cpus: 1 *$" "numactl -H node 1"
	expect "^job: hello from gvm" "job output"
	[ "${rc:-}" = 3 ] || fail "gvm exited with '${rc:-?}', expected the job's status 3"
fi

if [ $failures -ne 0 ]; then
	echo "--- last console lines:"
	tail -n 40 "$log"
	echo "$failures check(s) failed"
	exit 1
fi
echo "PASS: Linux booted under gvm ($mode, $instances instance(s)), $(($(date +%s) - start))s"
