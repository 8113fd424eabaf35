#!/bin/bash
# images/linux/mkpayload: a job script and its files become a newc cpio with
# /job/run (executable, owned by root) and /job/NAME; a directory becomes
# /job; bad input is refused with a message naming it.  Needs no kernel.
set -u

mk=$GVM_TOP/images/linux/mkpayload
tmp=$GVM_TEST_TMP
cd "$tmp" || exit 1
if ! command -v cpio >/dev/null; then
	echo "SKIP: cpio is missing: install cpio"
	exit 77
fi

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# listing ARCHIVE: "MODE OWNER GROUP NAME" per member
listing() { cpio -itv --quiet <"$1" | awk '{ print $1, $3, $4, $NF }'; }

refused() { # WHAT EXPECTED-MESSAGE ARGS...
	local what=$1 msg=$2 out rc
	shift 2
	out=$("$mk" "$@" 2>&1)
	rc=$?
	[ $rc -ne 0 ] || fail "$what: accepted"
	[[ $out == *"$msg"* ]] || fail "$what: message '$out' does not say '$msg'"
	[ ! -e bad.cpio ] || fail "$what: left bad.cpio behind"
}

printf '#!/bin/sh\necho hi\n' >job.sh
echo data >data.txt
mkdir tree && echo inner >tree/inner
"$mk" -o job.cpio job.sh data.txt tree || fail "mkpayload job.sh data.txt tree failed"
[ "$(head -c 6 job.cpio)" = 070701 ] || fail "job.cpio is not a newc cpio"
[ $(($(stat -c %s job.cpio) % 4)) -eq 0 ] ||
	fail "job.cpio is not 4-byte aligned (cannot be concatenated)"
want='drwxr-xr-x root root job
-rw-r--r-- root root job/data.txt
-rwxr-xr-x root root job/run
drwxr-xr-x root root job/tree
-rw-r--r-- root root job/tree/inner'
got=$(listing job.cpio)
[ "$got" = "$want" ] || fail "job.cpio holds:
$got
expected:
$want"
mkdir x && (cd x && cpio -id --quiet <../job.cpio) && cmp -s x/job/run job.sh ||
	fail "job/run is not job.sh"

# An ELF program is a job too.
"$mk" -o elf.cpio /bin/true || fail "mkpayload of an ELF program failed"

mkdir jobdir && printf '#!/bin/sh\n' >jobdir/run && chmod +x jobdir/run && echo 1 >jobdir/f
"$mk" -o dir.cpio -d jobdir || fail "mkpayload -d jobdir failed"
got=$(listing dir.cpio | awk '{ print $NF }' | tr '\n' ' ')
[ "$got" = "job job/f job/run " ] || fail "dir.cpio holds '$got'"

refused "no output" "usage" job.sh
refused "no script" "usage" -o bad.cpio
refused "missing script" "nope.sh is not a file" -o bad.cpio nope.sh
echo "just text" >text.txt
refused "not a program" "text.txt starts with neither" -o bad.cpio text.txt
refused "missing file" "missing.dat does not exist" -o bad.cpio job.sh missing.dat
mkdir other && cp job.sh other/run
refused "a file named run" "would replace the job script" -o bad.cpio job.sh other/run
mkdir other2 && cp data.txt other2/
refused "two files of one name" "two files named 'data.txt'" \
	-o bad.cpio job.sh data.txt other2/data.txt
mkdir norun
refused "-d without run" "has no 'run' script" -o bad.cpio -d norun
mkdir noexec && printf '#!/bin/sh\n' >noexec/run
refused "-d with a run that is not executable" "is not executable" -o bad.cpio -d noexec
refused "-d with files" "takes no other files" -o bad.cpio -d jobdir data.txt

[ $failures -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "PASS: mkpayload"
