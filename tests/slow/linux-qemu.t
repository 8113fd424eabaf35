#!/bin/bash
# The Linux guest image's user space under QEMU TCG, with the topology of a
# 2-node giantvm guest (one socket per node, 2 vCPUs, 2 x 256 MiB, SLIT
# 10/20): /init mounts the file systems, lstopo and numactl -H inside show
# 2 NUMA nodes with the right CPUs and memory, a job payload runs with its
# files and NUMA binding, and its exit status comes back through the exit
# device.  (Under this machine's KVM guest user mode cannot make system
# calls, so the image's user space is checked here; tests/slow/linux-boot.t
# boots the same kernel under gvm.)
# timeout: 600
set -u

img=$GVM_IMAGES/linux
qrun=$GVM_TOP/images/linux/qemu-run
mkpayload=$GVM_TOP/images/linux/mkpayload
tmp=$GVM_TEST_TMP
for f in bzImage initramfs.cpio; do
	if [ ! -r "$img/$f" ]; then
		echo "SKIP: $img/$f is missing: run make linux-image"
		exit 77
	fi
done
if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "SKIP: qemu-system-x86_64 is missing: install qemu-system-x86"
	exit 77
fi

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_line() { # FILE REGEX WHAT
	grep -qE "$2" "$1" || fail "$3: no line matching '$2' in $1"
}

# The NUMA node of every PU in lstopo's console output: a NUMANode line
# holds the PUs printed after it at its indentation or deeper.
lstopo_pus() {
	sed -n '/^gvm-init: --- lstopo/,/^gvm-init: --- numactl/p' "$1" | awk '
		{ match($0, /^ */); ind = RLENGTH }
		node >= 0 && ind < nind { node = -1 }
		/NUMANode L#[0-9]+ \(P#[0-9]+/ {
			s = $0; sub(/.*NUMANode L#[0-9]+ \(P#/, "", s); node = s + 0; nind = ind
		}
		{
			s = $0
			while (match(s, /PU L#[0-9]+ \(P#[0-9]+\)/)) {
				pu = substr(s, RSTART, RLENGTH); sub(/.*\(P#/, "", pu)
				printf "pu %d node %d\n", pu + 0, node
				s = substr(s, RSTART + RLENGTH)
			}
		}' node=-1
}

check_topology() { # CONSOLE
	local log=$1
	expect_line "$log" '^gvm-init: up: 2 CPUs, 2 NUMA nodes' "/init"
	expect_line "$log" 'smp: Brought up 2 nodes, 2 CPUs' "kernel SMP"
	# numactl -H: nodes, their CPUs, memory (most of each 256 MiB share), SLIT.
	expect_line "$log" '^available: 2 nodes \(0-1\)' "numactl -H"
	expect_line "$log" '^node 0 cpus: 0 *$' "numactl -H node 0 CPUs"
	expect_line "$log" '^node 1 cpus: 1 *$' "numactl -H node 1 CPUs"
	expect_line "$log" '^  0:  10  20 *$' "numactl -H distances from node 0"
	expect_line "$log" '^  1:  20  10 *$' "numactl -H distances from node 1"
	local n size
	for n in 0 1; do
		size=$(sed -n "s/^node $n size: \([0-9]*\) MB.*/\1/p" "$log")
		if [ -z "$size" ] || [ "$size" -lt 192 ] || [ "$size" -gt 256 ]; then
			fail "numactl -H: node $n has '${size}' MB, expected most of 256 MB"
		fi
	done
	# lstopo: the same nodes and CPUs, and the caches of each core.
	lstopo_pus "$log" >"$tmp/pus"
	[ "$(cat "$tmp/pus")" = "$(printf 'pu 0 node 0\npu 1 node 1')" ] ||
		fail "lstopo: PUs and nodes are '$(tr '\n' ';' <"$tmp/pus")'," \
			"expected PU 0 in node 0 and PU 1 in node 1"
	expect_line "$log" '^ *NUMANode L#0 \(P#0 2[0-9][0-9]MB\)' "lstopo node 0 memory"
	expect_line "$log" '^ *NUMANode L#1 \(P#1 2[0-9][0-9]MB\)' "lstopo node 1 memory"
	expect_line "$log" 'L1d L#1 .*PU L#1 \(P#1\)' "lstopo caches (sysfs cache info)"
}

boot() { # NAME EXPECTED-STATUS [qemu-run args]
	local name=$1 want=$2 rc
	shift 2
	echo "--- boot: $name"
	# The serial console ends lines with CR LF.
	"$qrun" --vcpus 2 --numa 2 --mem 512M --timeout 240 "$@" 2>&1 | tr -d '\r' >"$tmp/$name.log"
	rc=${PIPESTATUS[0]}
	if [ $rc -ne "$want" ]; then
		fail "$name: qemu-run exited with $rc, expected $want; console:"
		tail -n 40 "$tmp/$name.log"
	fi
}

# 1. A job script and a data file: output, files, NUMA binding, status 7.
cat >"$tmp/job.sh" <<'EOF'
#!/bin/sh
echo "job: data says $(cat /job/data.txt)"
echo "job: in $(pwd) as uid $(id -u)"
numactl --cpunodebind=1 --membind=1 grep Cpus_allowed_list /proc/self/status
echo "job: stderr line" >&2
exit 7
EOF
echo "payload-data-42" >"$tmp/data.txt"
"$mkpayload" -o "$tmp/job.cpio" "$tmp/job.sh" "$tmp/data.txt" || fail "mkpayload failed"
boot job 7 --payload "$tmp/job.cpio"
log=$tmp/job.log
check_topology "$log"
expect_line "$log" '^job: data says payload-data-42' "job output and its file"
expect_line "$log" '^job: in /job as uid 0' "job working directory and user"
expect_line "$log" '^Cpus_allowed_list:[[:space:]]+1$' "numactl --cpunodebind=1 inside the job"
expect_line "$log" '^job: stderr line' "job stderr on the console"
expect_line "$log" '^gvm-init: job exited with status 7' "/init reports the status"

# 2. A job directory (mkpayload -d) that succeeds: status 0.
mkdir -p "$tmp/jobdir/sub"
printf '#!/bin/sh\necho "job: dir job sees $(cat sub/x)"\n' >"$tmp/jobdir/run"
chmod +x "$tmp/jobdir/run"
echo xyzzy >"$tmp/jobdir/sub/x"
"$mkpayload" -o "$tmp/dir.cpio" -d "$tmp/jobdir" || fail "mkpayload -d failed"
boot dirjob 0 --payload "$tmp/dir.cpio"
expect_line "$tmp/dirjob.log" '^job: dir job sees xyzzy' "directory payload"

# 3. The benchmarks of bench/, when the image has them (make linux-image
# picks them up): SpMV in the guest gives the host's checksum.
if cpio -it --quiet <"$img/initramfs.cpio" | grep -qx usr/local/bin/spmv; then
	mat=gen:20000:16:1
	if [ -x "$GVM_BUILD/bench/spmv" ]; then
		want=$("$GVM_BUILD/bench/spmv" -i 1 "$mat" |
			sed -n 's/.* checksum=\([0-9a-fx]*\) .*/\1/p')
	else
		want=
	fi
	printf '#!/bin/sh\nspmv -t 2 -i 2 %s\n' $mat >"$tmp/spmv.sh"
	"$mkpayload" -o "$tmp/spmv.cpio" "$tmp/spmv.sh" || fail "mkpayload spmv.sh failed"
	boot spmv 0 --payload "$tmp/spmv.cpio" --append gvm.notopo
	got=$(sed -n 's/^spmv: .* checksum=\([0-9a-fx]*\) .*threads=2 .*/\1/p' "$tmp/spmv.log")
	if [ -z "$got" ]; then
		fail "no 'spmv:' result line from the guest"
	elif [ -n "$want" ] && [ "$got" != "$want" ]; then
		fail "SpMV checksum in the guest $got, on the host $want"
	fi
	echo "spmv in the guest: checksum $got (host: ${want:-not built})"
else
	echo "note: the image has no bench/ programs (bench/spmv-main.c is not in this tree)"
fi

# 4. No payload: the topology, a note, status 0.
boot nojob 0
expect_line "$tmp/nojob.log" '^gvm-init: no job payload' "no payload"
check_topology "$tmp/nojob.log"

[ $failures -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "PASS: user space, topology and job payloads under QEMU TCG"
