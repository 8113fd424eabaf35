#!/bin/bash
# A user's job in the Linux image under gvm (gvm run -- COMMAND), one
# instance with 2 vCPUs in 2 NUMA nodes, everything in one boot:
#   - the kernel's own log: it found gvm's ACPI tables, took its NUMA layout
#     from SRAT and SLIT (each vCPU and each node's memory where gvm put
#     them), brought both vCPUs up, and logged no ACPI error, oops or panic;
#   - the job: its arguments exactly as given (spaces, quotes, $, ;), its
#     working directory holding the --copy files under their own names (a
#     space and a comma in one, a directory), its GVM_* environment and the
#     variables --env gave (a value as given, and one taken from here), its
#     standard output and error apart, its exit status 3 as gvm's;
#   - its output files: written into --output, a subdirectory too; a
#     symbolic link, a FIFO and a file that would replace one of the user's
#     refused, each named, the user's file untouched.
# On a host whose KVM emulates guest kernel code, gvm adds the image's words
# for it (images/linux/cmdline-emulated) by itself; the boot takes a minute
# or more there.
# timeout: 900
set -u
gvm=$GVM_BUILD/gvm
img=$GVM_IMAGES/linux
T=$GVM_TEST_TMP
[ -x "$gvm" ] || { echo "SKIP: $gvm is not built (make progs)"; exit 77; }
for f in vmlinux initramfs.cpio cmdline; do
	[ -r "$img/$f" ] || { echo "SKIP: $img/$f is missing: run make linux-image"; exit 77; }
done
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm is not usable by $(id -un)"; exit 77; }

failures=0 failed=
fail() { echo "FAIL: $*"; failures=$((failures + 1)); failed+="FAIL: $*"$'\n'; }
has() { # FILE FIXED-LINE WHAT
	grep -qxF -e "$2" "$1" || fail "$3: no line '$2' in $(basename "$1")"
}
expect() { # FILE REGEX WHAT
	grep -qE -e "$2" "$1" || fail "$3: no line matching '$2' in $(basename "$1")"
}
refuse() { # FILE REGEX WHAT
	! grep -qE -e "$2" "$1" || fail "$3: $(grep -E -e "$2" "$1" | head -1)"
}

mkdir -p "$T/work/indir/sub" "$T/out"
cd "$T/work" || exit 1
printf 'first line\nsecond line\n' >"in put,1.txt"
echo "deep input" >indir/sub/x
echo "the user's own" >"$T/out/existing.txt"
cat >job.sh <<'EOF'
#!/bin/sh
echo "args: $#"
for a in "$@"; do echo "arg: [$a]"; done
echo "cwd: $(pwd)"
echo "to stderr" >&2
for f in *; do echo "file: [$f]"; done
sed 's/^/content: /' "in put,1.txt"
echo "deep: $(cat indir/sub/x)"
env | grep '^GVM_' | sort | sed 's/^/env: /'
echo "user env: [$GREETING] [$FROM_HERE]"
[ -r "$GVM_TOPOLOGY_XML" ] && echo "topology xml: yes"
numactl -H | sed -n 's/^\(node [0-9]* cpus:.*\)/numa: \1/p' | sed 's/ *$//'
o=$GVM_OUTPUT_DIR
echo result >"$o/result.txt"
mkdir "$o/sub" && echo deep >"$o/sub/deep.txt"
ln -s /etc/passwd "$o/link"
mkfifo "$o/fifo"
echo "the guest's" >"$o/existing.txt"
exit 3
EOF
chmod +x job.sh

start=$(date +%s)
FROM_HERE="this host's value" "$gvm" run --vcpus 2 --numa 2 --mem 512M --verbose --append loglevel=7 \
	--copy "in put,1.txt" --copy indir --output "$T/out" --job-id 4242 \
	--env 'GREETING=hello, $USER; `x`' --env FROM_HERE \
	-- ./job.sh "two words" '$(not run)' "semi;colon" "" >"$T/stdout" 2>"$T/stderr"
rc=$?
secs=$(($(date +%s) - start))
tr -d '\r' <"$T/stderr" >"$T/log"
log=$T/log out=$T/stdout

# gvm itself
[ $rc = 3 ] || fail "gvm exited with $rc, not the job's 3"
expect "$log" "gvm: job: started \([0-9.]+ s\)" "gvm's progress (--verbose)"
started=$(sed -n 's/.*gvm: job: started (\([0-9.]*\) s).*/\1/p' "$log")

# The kernel's log (--verbose puts the console on stderr).
for t in APIC SRAT SLIT FACP; do
	expect "$log" "ACPI: $t 0x[0-9A-F]+" "ACPI table $t"
done
refuse "$log" "SRAT: not used|No NUMA configuration found|Faking a node|NUMA: nodes only cover" \
	"NUMA from SRAT refused"
refuse "$log" "SLIT table looks invalid" "SLIT refused"
refuse "$log" "ACPI Error|ACPI BIOS Error|ACPI Exception" "an ACPI error"
refuse "$log" "Kernel panic|BUG: |Oops|WARNING: CPU|segfault" "a kernel error"
cpus=$(sed -n 's/.*SRAT: PXM \([0-9]*\) -> APIC 0x[0-9a-f]* -> Node \([0-9]*\)$/\1:\2/p' "$log" |
	sort | tr '\n' ' ')
[ "$cpus" = "0:0 1:1 " ] || fail "SRAT processor affinity: PXM:node pairs '$cpus', not '0:0 1:1 '"
share=$((256 << 20))
for n in 0 1; do
	span=$(sed -n "s/.*Initmem setup node $n \[mem \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\)\].*/\1 \2/p" "$log")
	if [ -z "$span" ]; then
		fail "no 'Initmem setup node $n' line"
		continue
	fi
	read -r lo hi <<<"$span"
	[ $((hi + 1)) -eq $(((n + 1) * share)) ] && [ $((lo)) -le $((n * share + (1 << 20))) ] &&
		[ $((lo)) -ge $((n * share)) ] ||
		fail "node $n spans [$lo, $hi], not [$((n * share)), $(((n + 1) * share - 1))]"
done
expect "$log" "smp: Brought up 2 nodes, 2 CPUs" "both vCPUs up, in 2 nodes"
if ! grep -qw -e vmx -e svm /proc/cpuinfo; then
	# gvm added the words this host needs, unasked
	expect "$log" "Command line: .*noxsave .*syscall-from-pf" "the emulated host's words"
	expect "$log" "Command line: .* loglevel=7$" "--append comes last"
fi

# The job's standard output, exactly.
cat >"$T/want" <<'EOF'
args: 4
arg: [two words]
arg: [$(not run)]
arg: [semi;colon]
arg: []
cwd: /job
file: [in put,1.txt]
file: [indir]
file: [out]
content: first line
content: second line
deep: deep input
env: GVM_JOB_ID=4242
env: GVM_NODES=1
env: GVM_NUMA_NODES=2
env: GVM_OUTPUT_DIR=/job/out
env: GVM_TOPOLOGY_XML=/gvm/topology.xml
user env: [hello, $USER; `x`] [this host's value]
EOF
grep -v '^env: GVM_VM_ID=\|^env: GVM_VCPUS=\|^env: GVM_WORKDIR=\|^topology xml\|^numa:' \
	"$out" >"$T/got"
cmp -s "$T/want" "$T/got" || { fail "the job's standard output differs:"; diff "$T/want" "$T/got"; }
has "$out" "env: GVM_VCPUS=2" "GVM_VCPUS"
has "$out" "env: GVM_WORKDIR=/job" "GVM_WORKDIR"
expect "$out" "^env: GVM_VM_ID=[0-9a-f]{16}$" "GVM_VM_ID"
has "$out" "topology xml: yes" "GVM_TOPOLOGY_XML"
has "$out" "numa: node 0 cpus: 0" "numactl -H node 0"
has "$out" "numa: node 1 cpus: 1" "numactl -H node 1"
refuse "$out" "to stderr|^gvm" "standard error or gvm's messages on standard output"
has "$log" "to stderr" "the job's standard error"

# Its output files.
[ "$(cat "$T/out/result.txt" 2>/dev/null)" = result ] || fail "out/result.txt did not come back"
[ "$(cat "$T/out/sub/deep.txt" 2>/dev/null)" = deep ] || fail "out/sub/deep.txt did not come back"
[ "$(cat "$T/out/existing.txt")" = "the user's own" ] || fail "existing.txt was replaced"
[ -e "$T/out/link" ] || [ -L "$T/out/link" ] && fail "the symbolic link was written"
[ -e "$T/out/fifo" ] && fail "the FIFO was written"
expect "$log" "output file out/link: a symbolic link: not written" "the link named"
expect "$log" "output file out/fifo: a FIFO: not written" "the FIFO named"
expect "$log" "output file out/existing.txt: a file of that name is there already" \
	"the replacement named"
expect "$log" "job: 2 output files .* written to $T/out" "the summary"
[ -z "$(ls -A "$T/out" | grep -v '^existing.txt$\|^result.txt$\|^sub$')" ] ||
	fail "more in --output than expected: $(ls -A "$T/out")"

if [ $failures -ne 0 ]; then
	echo "--- gvm's standard error (the console among it), last lines:"
	tail -n 60 "$log"
	echo "--- standard output:"
	cat "$out"
	printf '%s' "$failed"
	echo "$failures check(s) failed"
	exit 1
fi
echo "PASS: a job in the Linux image under gvm, 1 instance: job started after ${started:-?} s," \
	"gvm exited after ${secs} s"
