#!/bin/bash
# The job templates (job-templates/*.sh) in the Linux guest, under
# `gvm run -- ` with 2 vCPUs in 2 NUMA nodes, all in one boot: over 2
# instances (one NUMA node each) where the host has hardware
# virtualization, over 1 where KVM emulates guest kernel code, whose shadow
# page tables the instances' shared memory does not keep coherent for a
# guest's processes (docs/cluster.md, "Limits"; tests/slow/linux-cluster.t
# runs jobs over several instances there).  A job script runs each template
# in turn between marker lines, and this test judges each one's output:
#   - topology.sh: PASS (lstopo and numactl -H inside agree with the
#     machine gvm described), and its files come back through --output;
#   - spmv.sh on the generated matrix and on every matrix of
#     ../shared/data/matrices: the checksum bench/spmv computes on this host,
#     2 threads, every page sampled on its thread's node;
#   - memcpy.sh: every copy verified, the source on node 0, every page
#     sampled on its node;
#   - stream.sh: validated, every page sampled on its thread's node.
# A Linux boot takes 30-90 s here, so the cases share one.
# timeout: 1800
set -u

gvm=$GVM_BUILD/gvm
img=$GVM_IMAGES/linux
tmp=$GVM_TEST_TMP
top=$GVM_TOP
matrices=$top/../shared/data/matrices
gen=gen:20000:16:1

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$gvm" ] || skip "$gvm is not built (make progs)"
[ -x "$GVM_BUILD/bench/spmv" ] || skip "$GVM_BUILD/bench/spmv is not built (make tests)"
for f in vmlinux initramfs.cpio; do
	[ -r "$img/$f" ] || skip "$img/$f is missing: run make linux-image"
done
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not usable by $(id -un)"
inside=$(cpio -it --quiet <"$img/initramfs.cpio")
for p in spmv memcpy stream; do
	grep -qx "usr/local/bin/$p" <<<"$inside" ||
		skip "the image has no $p: run make linux-image again"
done

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# The host's checksums, by the same code (bench/spmv).
mats=()
copies=()
for m in "$matrices"/*.mtx; do
	[ -r "$m" ] || continue
	mats+=("$(basename "$m")")
	copies+=(--copy "$m")
done
[ ${#mats[@]} -gt 0 ] || echo "note: no matrices in $matrices: the generated one only"
declare -A want
for m in "$gen" "${mats[@]}"; do
	src=$m
	[ "${m#gen}" = "$m" ] && src=$matrices/$m
	want[$m]=$("$GVM_BUILD/bench/spmv" -i 1 "$src" | sed -n 's/^spmv: .* checksum=\([0-9a-fx]*\) .*/\1/p')
	[ -n "${want[$m]}" ] || { echo "FAIL: bench/spmv gave no checksum for $m on the host"; exit 1; }
done

# The job: every template in turn, each between '=== NAME' and '=== end
# NAME status=S'.  Only builtins besides the templates: in this guest every
# process costs about a second.
cat >"$tmp/job.sh" <<'EOF'
#!/bin/sh
failed=0
run() { # NAME TEMPLATE [ARGS]
	name=$1
	shift
	echo "=== $name"
	"$@"
	s=$?
	echo "=== end $name status=$s"
	[ $s = 0 ] || failed=$((failed + 1))
}
t=./job-templates
run topology $t/topology.sh
run spmv:GEN $t/spmv.sh -i 3 GEN
for m in MATRICES; do
	run spmv:$m $t/spmv.sh -i 3 $m
done
run memcpy $t/memcpy.sh -s 1M -r 3
run stream $t/stream.sh -n 256K -r 3
exit $failed
EOF
sed -i "s/GEN/$gen/g; s/MATRICES/${mats[*]}/" "$tmp/job.sh"
chmod +x "$tmp/job.sh"

mkdir "$tmp/out"
if grep -qw -e vmx -e svm /proc/cpuinfo; then
	shape=(--nodes 2) where="over 2 instances"
else
	shape=(--numa 2) where="on 1 instance (this host's KVM emulates guest kernel code)"
fi
start=$(date +%s)
echo "+ gvm run ${shape[*]} --vcpus 2 --mem 512M --copy job-templates ${copies[*]} -- job.sh"
"$gvm" run --verbose "${shape[@]}" --vcpus 2 --mem 512M --copy "$top/job-templates" \
	"${copies[@]}" --output "$tmp/out" -- "$tmp/job.sh" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null
rc=$?
echo "gvm exited with $rc after $(($(date +%s) - start)) s"
grep -E '^gvm.*job: (started|ended)' "$tmp/stderr"
cat "$tmp/stdout"
[ $rc = 0 ] || fail "gvm exited with $rc, not 0 (the job counts the templates that failed)"

# The output of a template, between its markers.
section() {
	sed -n "/^=== $1\$/,/^=== end $1 /p" "$tmp/stdout"
}
# Its summary: the last line before the end marker.
summary() { section "$1" | grep -v '^===' | tail -1; }
status() { section "$1" | sed -n 's/^=== end .* status=\([0-9]*\)$/\1/p'; }
field() { sed -n "s/.*[ :]$2=\([^ ]*\).*/\1/p" <<<"$1"; }
# every page sampled where it was meant to be: on_node=K/K with K > 0
all_on_node() { local v; v=$(field "$1" on_node); [ -n "$v" ] && [ "${v%/*}" = "${v#*/}" ] && [ "${v%/*}" -gt 0 ]; }

judge_status() { # NAME
	local s
	s=$(status "$1")
	[ "$s" = 0 ] || fail "$1: the template exited with '${s:-no end marker}'"
}

# topology
judge_status topology
l=$(summary topology)
[[ $l == "topology: PASS nodes=2 cpus=2 "* ]] ||
	fail "topology: summary '$l', expected 'topology: PASS nodes=2 cpus=2 ...'"
section topology | grep -q '^topology: check .*MISMATCH' &&
	fail "topology: $(section topology | grep -m1 MISMATCH)"
for f in topology-guest.xml topology-numactl.txt; do
	[ -s "$tmp/out/$f" ] || fail "topology: $f did not come back into --output"
done
grep -q '^available: 2 nodes (0-1)' "$tmp/out/topology-numactl.txt" 2>/dev/null ||
	fail "topology: the numactl -H that came back does not show 2 nodes"

# spmv
for m in "$gen" "${mats[@]}"; do
	judge_status "spmv:$m"
	l=$(summary "spmv:$m")
	if [[ $l != "spmv: matrix=$m "* ]]; then
		fail "spmv $m: summary '$l'"
		continue
	fi
	got=$(field "$l" checksum)
	[ "$got" = "${want[$m]}" ] || fail "spmv $m: checksum in the guest $got, on the host ${want[$m]}"
	[ "$(field "$l" threads)" = 2 ] && [ "$(field "$l" numa_nodes)" = 2 ] &&
		[ "$(field "$l" placement)" = node ] ||
		fail "spmv $m: not 2 threads over 2 NUMA nodes with node placement: '$l'"
	all_on_node "$l" || fail "spmv $m: pages off their node: '$l'"
	n=$(section "spmv:$m" | grep -c '^placement: thread=[01] cpu=\([01]\) node=\1 ')
	[ "$n" = 2 ] || fail "spmv $m: threads not one per vCPU, each on its vCPU's node"
done

# memcpy
judge_status memcpy
l=$(summary memcpy)
[[ $l == "memcpy: threads=2 "* ]] && [ "$(field "$l" verify)" = ok ] &&
	[ "$(field "$l" numa_nodes)" = 2 ] && [ "$(field "$l" src_node)" = 0 ] ||
	fail "memcpy: summary '$l', expected 2 threads, verify=ok, 2 nodes, the source on node 0"
all_on_node "$l" || fail "memcpy: pages off their node: '$l'"
n=$(section memcpy | grep -c '^placement: thread=[01] cpu=\([01]\) node=\1 .*verify=ok')
[ "$n" = 2 ] || fail "memcpy: threads not one per vCPU, each copying onto its vCPU's node"

# stream
judge_status stream
l=$(summary stream)
[[ $l == "stream: threads=2 "* ]] && [ "$(field "$l" verify)" = ok ] &&
	[ "$(field "$l" numa_nodes)" = 2 ] ||
	fail "stream: summary '$l', expected 2 threads, verify=ok, 2 nodes"
all_on_node "$l" || fail "stream: pages off their node: '$l'"
for k in copy scale add triad; do
	v=$(field "$l" $k)
	awk -v v="${v:-0}" 'BEGIN { exit !(v > 0) }' || fail "stream: no $k rate in '$l'"
done

if [ $failures -ne 0 ]; then
	echo "--- gvm's standard error (the guest's console), last lines:"
	tail -n 30 "$tmp/stderr"
	echo "$failures check(s) failed"
	exit 1
fi
echo "PASS: every template ran in the guest $where" \
	"($((${#mats[@]} + 1)) SpMV checksums equal the host's), $(($(date +%s) - start)) s"
