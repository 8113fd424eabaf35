#!/bin/bash
# timeout: 120
# Bad input to a job (gvm run [--nodes N] ... -- COMMAND): a clear error that
# names the bad value and what would work, status 2 for malformed options and
# 1 for input that cannot run, and nothing starts (no instance, no guest,
# nothing on stdout, nothing left in TMPDIR).  Needs no guest image: the
# checks come before any boot.
set -u
gvm=$GVM_BUILD/gvm
K="--kernel $GVM_BUILD/tests/vmm/hello.elf"
T=$GVM_TEST_TMP
[ -x "$gvm" ] && [ -f "$GVM_BUILD/tests/vmm/hello.elf" ] || { echo "gvm is not built: run make"; exit 1; }
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
bad=0

# check WANT-STATUS REGEX ARGS...: gvm run ARGS fails so, REGEX on stderr, nothing else
check() {
	local want=$1 re=$2 out rc
	shift 2
	out=$(cd "$T/work" && "$gvm" run "$@" 2>"$T/err" </dev/null)
	rc=$?
	if [ $rc != "$want" ] || ! grep -Eq -e "$re" "$T/err" || [ -n "$out" ] ||
		grep -q "starting .* instance" "$T/err" || [ -n "$(ls -A "$TMPDIR")" ]; then
		echo "FAIL: gvm run $*: status $rc (want $want), stdout '$out', TMPDIR: $(ls -A "$TMPDIR"), stderr:"
		cat "$T/err"
		bad=1
	else
		echo "ok: gvm run $*: $(grep -E -e "$re" "$T/err" | head -1)"
	fi
}

mkdir -p "$T/work/dir" "$T/work/other"
cd "$T/work" || exit 1
printf '#!/bin/sh\necho hi\n' >job.sh
chmod +x job.sh
echo "plain text" >notes.txt
echo data >data.mtx
echo data >other/data.mtx
echo secret >unreadable
chmod 000 unreadable
mkdir out
head -c $((80 << 20)) /dev/zero >big.bin

for nodes in "" "--nodes 2 --vcpus 2"; do
	# shellcheck disable=SC2086
	set -- $nodes
	check 2 "-- must be followed by the job's command" "$@" $K --mem 64M --
	check 1 "the command '\./nope\.sh': No such file" "$@" $K --mem 64M -- ./nope.sh
	check 1 "the command 'notes\.txt' starts with neither '#!' nor an ELF header" \
		"$@" $K --mem 64M -- notes.txt
	check 1 "the command 'dir/' is not a regular file|the command 'dir/': Is a directory" \
		"$@" $K --mem 64M -- dir/
	check 1 "--copy 'missing\.mtx': No such file" "$@" $K --mem 64M --copy missing.mtx -- ./job.sh
	[ "$(id -u)" = 0 ] ||
		check 1 "'unreadable': Permission denied" "$@" $K --mem 64M --copy unreadable -- ./job.sh
	check 1 "--copy 'data\.mtx' and --copy 'other/data\.mtx' would both be 'data\.mtx'" \
		"$@" $K --mem 64M --copy data.mtx --copy other/data.mtx -- ./job.sh
	check 1 "--copy 'data\.mtx' is given twice" "$@" $K --mem 64M --copy data.mtx --copy data.mtx -- ./job.sh
	check 2 "--output: an empty path \(give a directory\)" "$@" $K --mem 64M --output '' -- ./job.sh
	check 1 "--copy 'out': 'out' is the job's output directory" "$@" $K --mem 64M --copy out -- ./job.sh
	check 1 "--copy '/' has no name of its own" "$@" $K --mem 64M --copy / -- ./job.sh
	check 1 "--output 'notes\.txt' is not a directory" "$@" $K --mem 64M --output notes.txt -- ./job.sh
	check 1 "--output 'no/such/dir' does not exist and cannot be created" \
		"$@" $K --mem 64M --output no/such/dir -- ./job.sh
	check 1 "payload \(80\.0 MiB, the files given with --copy included\) need about [0-9]+ MiB .* --mem gives 64 MiB" \
		"$@" $K --mem 64M --copy big.bin -- ./job.sh
	check 1 "image: $T/work/dir holds no kernel" "$@" --image ./dir --mem 64M -- ./job.sh
	check 1 "image '\./nothing-here': No such file" "$@" --image ./nothing-here --mem 64M -- ./job.sh
	check 1 "no image 'nosuch' \(neither nosuch/ nor nosuch\.elf in .*images.*\): build it" "$@" --image nosuch --mem 64M -- ./job.sh
	check 1 "is not a kernel giantvm can boot" "$@" --image ./notes.txt --mem 64M -- ./job.sh
	check 2 "--kernel and --image both name the guest" "$@" $K --image probe --mem 64M -- ./job.sh
	check 2 "--copy, --env, --output, --overwrite, --output-max and --job-id are for a job" \
		"$@" $K --mem 64M --copy data.mtx
	check 2 "--copy, --env, --output, --overwrite, --output-max and --job-id are for a job" \
		"$@" $K --mem 64M --env A=1
	check 2 "--env: '1A' is not a variable name" "$@" $K --mem 64M --env 1A=x -- ./job.sh
	check 2 "--env: 'A B' is not a variable name" "$@" $K --mem 64M --env "A B=x" -- ./job.sh
	check 2 "--env: '' is not a variable name" "$@" $K --mem 64M --env =x -- ./job.sh
	check 2 "--env: GVM_NODES: GVM_\\* variables are gvm's own" "$@" $K --mem 64M --env GVM_NODES=9 -- ./job.sh
	check 2 "--env: GVM_UNSET_HERE is not set here: give GVM_UNSET_HERE=VALUE|GVM_\\*" \
		"$@" $K --mem 64M --env GVM_UNSET_HERE -- ./job.sh
	check 2 "--env: NOT_SET_HERE_X is not set here: give NOT_SET_HERE_X=VALUE" \
		"$@" $K --mem 64M --env NOT_SET_HERE_X -- ./job.sh
	check 2 "--job-id: 'a b' is not a job id" "$@" $K --mem 64M --job-id "a b" -- ./job.sh
	check 2 "--output-max: 'lots' is not a size|--output-max: .*lots" \
		"$@" $K --mem 64M --output-max lots -- ./job.sh
done
# More environment than the guest's agent reads (one argument is at most
# 128 KiB: several), said before anything starts.
big=$(printf '%*s' 100000 '' | tr ' ' x)
envs=()
for i in $(seq 11); do envs+=(--env "BIG$i=$big"); done
out=$(cd "$T/work" && "$gvm" run $K --mem 256M "${envs[@]}" -- ./job.sh 2>"$T/err" </dev/null)
rc=$?
if [ $rc = 1 ] && [ -z "$out" ] && [ -z "$(ls -A "$TMPDIR")" ] &&
	grep -Eq "job: the --env variables take 1100[0-9]{3} bytes; the guest takes at most 1048575" "$T/err"; then
	echo "ok: 11 --env of 100 kB: $(cat "$T/err")"
else
	echo "FAIL: 11 --env of 100 kB: status $rc (want 1), stdout '$out', stderr: $(cut -c1-300 "$T/err")"
	bad=1
fi
[ -n "$(ls -A "$TMPDIR")" ] && { echo "FAIL: left in TMPDIR: $(ls -A "$TMPDIR")"; bad=1; }
exit $bad
