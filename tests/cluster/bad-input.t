#!/bin/bash
# timeout: 300
# Bad input to gvm node and gvm run --nodes: a clear error naming what is
# wrong and what would work, status 2 for bad options and 1 for input that
# cannot run, and no guest starts (it would print on stdout).  Also
# instances that disagree: other machine options, another VM id, a peer
# that never comes or cannot be reached.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
WITH=$GVM_BUILD/tests/tools/with-listener
T=$GVM_TEST_TMP
bad=0

# check WANT-STATUS REGEX COMMAND...: the command fails so, with REGEX on stderr, nothing on stdout
check() {
	local want=$1 re=$2 out rc
	shift 2
	out=$("$@" 2>"$T/err" </dev/null)
	rc=$?
	if [ $rc != "$want" ] || ! grep -Eq -e "$re" "$T/err" || [ -n "$out" ]; then
		echo "FAIL: $*: status $rc (want $want), stdout '$out', stderr:"
		cat "$T/err"
		bad=1
	else
		echo "ok: ${*#$GVM }: $(grep -E -e "$re" "$T/err" | head -1)"
	fi
}

N="$GVM node"
P="--peers 127.0.0.1:1,127.0.0.1:2"
K="--kernel $PROBE"
check 2 "--rank, --peers and --vm-id are required" $N
check 2 "--rank, --peers and --vm-id are required" $N --rank 0 $P
check 2 "--rank 2, but --peers lists 2 instances \(ranks 0 to 1\)" $N --rank 2 $P --vm-id 1
check 2 "--peers: " $N --rank 0 --peers "127.0.0.1" --vm-id 1
check 2 "--vm-id: 0 is out of range" $N --rank 0 $P --vm-id 0
check 2 "--numa 3, but --peers lists 2 instances" $N --rank 0 $P --vm-id 1 --numa 3
check 2 "--listen-fd: descriptor 77 is not open" $N --rank 0 $P --vm-id 1 --listen-fd 77
check 2 "--listen-fd 0 is not a socket" $N --rank 0 $P --vm-id 1 --listen-fd 0
check 2 "--kvm-fd: descriptor 78 is not open" $N --rank 0 $P --vm-id 1 --kvm-fd 78
check 2 "--host-cpus: " $N --rank 0 $P --vm-id 1 --host-cpus x
check 2 "--connect-timeout: 0 is out of range" $N --rank 0 $P --vm-id 1 --connect-timeout 0
check 2 "unknown option '--nodes'" $N --rank 0 $P --vm-id 1 --nodes 2
check 1 "nothing to boot: give a job" $N --rank 0 $P --vm-id 1 --vcpus 2 --mem 256M
check 1 "3 vCPUs do not divide evenly among 2 NUMA nodes" $N --rank 1 $P --vm-id 1 --vcpus 3 --mem 256M
check 1 "does not divide among 2 NUMA nodes" $N --rank 1 $P --vm-id 1 --vcpus 2 --mem 6M
check 1 "--host-cpus lists 2 CPUs, but this instance runs 1 vCPUs" \
	$N --rank 1 $P --vm-id 1 --vcpus 2 --mem 256M --host-cpus 0,1
check 2 "--peers lists 127.0.0.1:1 for rank 0 and rank 1: every instance needs an address" \
	$N --rank 1 --peers 127.0.0.1:1,127.0.0.1:1 --vm-id 1 --vcpus 2 --mem 256M
# a CPU that does not exist, or that this process may not use: refused before connecting
check 1 "--host-cpus: host CPU 65535 does not exist or this process may not use it; it may use" \
	$N --rank 1 $P --vm-id 1 --vcpus 2 --mem 256M --host-cpus 65535 --connect-timeout 1
if command -v taskset >/dev/null; then
	check 1 "--host-cpus: host CPU 1 does not exist or this process may not use it; it may use 0 " \
		taskset -c 0 $N --rank 1 $P --vm-id 1 --vcpus 2 --mem 256M --host-cpus 1 \
		--connect-timeout 1
fi
check 1 "cannot reach rank 0 at 127.0.0.1:1: Connection refused \(gave up after 1 s\)" \
	$N --rank 1 $P --vm-id 1 --vcpus 2 --mem 256M --connect-timeout 1
check 1 "rank 1 \(127.0.0.1:[0-9]+\) did not connect within 1 s" \
	"$WITH" -- $N --rank 0 --peers 127.0.0.1:@PORT@,127.0.0.1:2 --listen-fd @FD@ --vm-id 1 \
	--vcpus 2 --mem 256M $K --connect-timeout 1
check 1 "is not /dev/kvm" \
	"$WITH" -- sh -c "exec $N --rank 0 --peers 127.0.0.1:@PORT@ --listen-fd @FD@ --vm-id 1 \
	--vcpus 1 --mem 64M $K --kvm-fd 9 9</dev/null"
check 1 "guest RAM: " \
	"$WITH" -- sh -c "exec $N --rank 0 --peers 127.0.0.1:@PORT@ --listen-fd @FD@ --vm-id 1 \
	--vcpus 1 --mem 64M $K --uffd-fd 9 9</dev/null"

R="$GVM run"
check 2 "--nodes: 0 is out of range" $R $K --nodes 0
check 2 "--nodes: 65 is out of range" $R $K --nodes 65
check 2 "--nodes: 'x' is not a number" $R $K --nodes x
check 2 "--numa 3 over 2 instances: every instance holds the same number of NUMA nodes, so --numa must be a multiple of 2" $R $K --nodes 2 --numa 3
check 2 "unknown option '--rank'" $R $K --nodes 2 --rank 0
check 1 "4 vCPUs do not divide evenly among 3 NUMA nodes" $R $K --nodes 3 --vcpus 4 --mem 384M
check 1 "does not divide among 2 NUMA nodes" $R $K --nodes 2 --vcpus 2 --mem 6M
check 1 "is more than the .* it has" $R $K --nodes 2 --vcpus 2 --mem 1T
check 1 "nothing to boot: give a job" $R --nodes 2 --vcpus 2 --mem 256M
check 1 "authenticate each other with munge" \
	env GVM_MUNGE_SOCKET=/nonexistent/munge.sock $R $K --nodes 2 --vcpus 2 --mem 256M

# Instances that disagree: rank 1 is given other machine options, then another VM id.
# disagree TIMEOUT RANK1-OPTIONS...: rank 0 (2 vCPUs, 256M, VM 5) and rank 1
# with those options, each with --connect-timeout TIMEOUT (where they refuse
# each other at once, a long one costs nothing and a loaded machine needs
# it; where rank 0 waits for a rank 1 it would accept, it waits it out)
disagree() {
	local timeout=$1
	shift
	"$WITH" --count 2 -- bash -c '
		"$0" node --rank 0 --peers 127.0.0.1:@PORT0@,127.0.0.1:@PORT1@ --listen-fd @FD0@ \
			--vm-id 5 --vcpus 2 --mem 256M --kernel "$1" --connect-timeout "$3" \
			>"$2/r0.log" 2>&1 </dev/null @FD1@>&- &
		r0=$!
		timeout=$3
		shift 3
		"$0" node --rank 1 --peers 127.0.0.1:@PORT0@,127.0.0.1:@PORT1@ --listen-fd @FD1@ \
			--connect-timeout "$timeout" "$@" >"$T/r1.log" 2>&1 </dev/null @FD0@>&-
		rc1=$?
		wait $r0
		echo "$? $rc1"' "$GVM" "$PROBE" "$T" "$timeout" "$@"
}
export T
set -- $(disagree 60 --vm-id 5 --vcpus 4 --mem 256M)
cat "$T/r0.log" "$T/r1.log"
if [ "$1" != 1 ] || [ "$2" != 1 ] ||
   ! grep -q "vcpus 4 here, but rank 0 runs the guest with 2: give every instance the same" "$T/r1.log" ||
   ! grep -q "rank 1: cannot build its part of the machine" "$T/r0.log"; then
	echo "FAIL: other --vcpus on rank 1: statuses $1 $2 (want 1 1) or messages wrong"
	bad=1
else
	echo "ok: other --vcpus on rank 1: both refuse with status 1"
fi
set -- $(disagree 20 --vm-id 6 --vcpus 2 --mem 256M)
cat "$T/r0.log" "$T/r1.log"
if [ "$1" != 1 ] || [ "$2" != 1 ] ||
   ! grep -q "peer belongs to VM 6, this is VM 5" "$T/r0.log" ||
   ! grep -q "failed the handshake" "$T/r1.log"; then
	echo "FAIL: another --vm-id on rank 1: statuses $1 $2 (want 1 1) or messages wrong"
	bad=1
else
	echo "ok: another --vm-id on rank 1: refused, both give up with status 1"
fi
exit $bad
