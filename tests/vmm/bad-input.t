#!/bin/bash
# Bad input to gvm run gets a clear error naming what is wrong, a non-zero
# status, and no guest starts (the test guest would print on stdout).
# timeout: 60
set -u
gvm=$GVM_BUILD/gvm
guest=$GVM_BUILD/tests/vmm/hello.elf
[ -x "$gvm" ] && [ -f "$guest" ] || { echo "gvm or the test guest is not built: run make"; exit 1; }
fail=0
tmp=$GVM_TEST_TMP

echo "not a kernel" >"$tmp/text"
printf '\177ELF\001\001\001' >"$tmp/elf32"; head -c 100 /dev/zero >>"$tmp/elf32"
mkdir "$tmp/dir"

check() { # want-status message-regex args...
	local want=$1 re=$2
	shift 2
	out=$("$gvm" run "$@" 2>"$tmp/err")
	rc=$?
	if [ $rc != "$want" ] || ! grep -Eq -e "$re" "$tmp/err" || [ -n "$out" ]; then
		echo "FAIL: gvm run $*: status $rc (want $want), stdout '$out', stderr:"
		cat "$tmp/err"
		fail=1
	else
		echo "ok: gvm run $*: $(head -1 "$tmp/err")"
	fi
}

check 1 "nothing to boot: give a job"
check 1 "kernel '/nonexistent/k': No such file" --kernel /nonexistent/k
check 1 "is not a kernel giantvm can boot" --kernel "$tmp/text"
check 1 "not a 64-bit" --kernel "$tmp/elf32"
check 1 "not a regular file" --kernel "$tmp/dir"
check 1 "initrd '/nonexistent/i': No such file" --kernel "$guest" --mem 64M --initrd /nonexistent/i
check 1 "do not divide evenly among 2 NUMA nodes" --kernel "$guest" --mem 64M --vcpus 3 --numa 2
check 1 "does not divide among 1 NUMA node in" --kernel "$guest" --mem 3M
check 1 "does not divide among 2 NUMA nodes" --kernel "$guest" --mem 66M --numa 2
check 1 "is more than the .* it has" --kernel "$guest" --mem 1T
# 2^53 bytes: beyond the 52 bits that x86-64 allows at most, on any host
check 1 "beyond the [0-9]+-bit physical address space" --kernel "$guest" --mem 8192T
check 2 "unknown CPU feature set 'bogus'" --kernel "$guest" --mem 64M --cpu-features bogus
check 2 "nosuchflag" --kernel "$guest" --mem 64M --cpu-features conservative,+nosuchflag
check 2 "unknown option '--bogus'" --kernel "$guest" --bogus
check 2 "--vcpus: 0 is out of range" --kernel "$guest" --vcpus 0
check 2 "--vcpus: 'x' is not a number" --kernel "$guest" --vcpus x
check 2 "--mem: '1Q' has an unknown size suffix" --kernel "$guest" --mem 1Q
check 2 "--kernel given twice" --kernel "$guest" --kernel "$guest"
check 2 "--mem needs a value" --kernel "$guest" --mem
check 2 "--stats takes no value" --kernel "$guest" --stats=1
check 2 "unexpected argument 'extra'" --kernel "$guest" extra
check 1 "--dump-acpi: '/nonexistent/d' is not a directory" --kernel "$guest" --mem 64M \
	--dump-acpi /nonexistent/d
check 2 "--host-cpus pins the vCPUs of one instance; with --nodes" --kernel "$guest" --nodes 2 \
	--host-cpus 0,1
check 2 "--host-cpus lists 2 CPUs, but the guest has 1 vCPUs" --kernel "$guest" --vcpus 1 \
	--mem 64M --host-cpus 0,0
check 1 "--host-cpus: host CPU 65535 does not exist or this process may not use it; it may use" \
	--kernel "$guest" --vcpus 1 --mem 64M --host-cpus 65535
exit $fail
