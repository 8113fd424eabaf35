#!/bin/bash
# gvm run --report-silence: when the console has been silent that long (and
# again as long as it stays so), gvm says on stderr what each vCPU does
# (tests/vmm/spin.S): a busy loop is running in 64-bit kernel mode at its
# RIP with no exits, an AP never started waits for its start-up IPI, a
# halted vCPU with interrupts off says so, a guest polling its UART makes
# exits.  Nothing is said while the console speaks more often than that,
# nor with --report-silence 0.
# timeout: 90
set -u
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm is missing or not usable by this user"; exit 77; }
gvm=$GVM_BUILD/gvm
guest=$GVM_BUILD/tests/vmm/spin.elf
[ -x "$gvm" ] && [ -f "$guest" ] || { echo "gvm or the test guest is not built: run make"; exit 1; }
fail=0
t=$GVM_TEST_TMP

# The address of a label of spin.S, as gvm prints RIPs.
addr() { printf '0x%x' "0x$(nm "$guest" | awk -v s="$1" '$3 == s { print $1 }')"; }

# wait_for FILE PATTERN SECONDS
wait_for() {
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# run NAME MODE VCPUS INTERVAL: start gvm in the background ($pid), output in $t/NAME.*
run() {
	"$gvm" run --kernel "$guest" --mem 64M --vcpus "$3" --append "$2" --report-silence "$4" \
		>"$t/$1.out" 2>"$t/$1.err" </dev/null &
	pid=$!
	wait_for "$t/$1.out" spinning 20 || { echo "FAIL: $1: the guest did not start"; fail=1; }
}

stop() { # NAME: SIGTERM, status 143
	kill -TERM $pid
	wait $pid
	local rc=$?
	[ $rc = 143 ] || { echo "FAIL: $1: status $rc, want 143"; fail=1; }
}

expect() { # NAME PATTERN WHAT
	grep -q "$2" "$t/$1.err" || { echo "FAIL: $1: $3 (no line matching '$2')"; fail=1; }
}

# Reports repeat every second while the guest is silent: on a loaded host a
# vCPU thread may miss one ("no answer"), so wait for the line wanted.
busy_line="^gvm:   vCPU 0: running in 64-bit kernel mode at rip $(addr busy), 0 exits/s$"

# a busy vCPU and an AP that never started
run busy busy 2 1
wait_for "$t/busy.err" "$busy_line" 30 || true
stop busy
cat "$t/busy.err"
expect busy "^gvm: the console has been silent for [1-9][0-9]* s; the vCPUs (exits per second over the last [0-9]* s):$" "no report"
expect busy "$busy_line" "vCPU 0 not reported running at busy"
expect busy "^gvm:   vCPU 1: waiting for its start-up IPI$" "vCPU 1 not reported waiting"

# a vCPU halted with interrupts off
halt_line="^gvm:   vCPU 0: halted with interrupts off in 64-bit kernel mode at rip 0x[0-9a-f]*, 0 exits/s$"
run halt halt 1 1
wait_for "$t/halt.err" "$halt_line" 30 || true
stop halt
cat "$t/halt.err"
expect halt "$halt_line" "not reported halted with interrupts off"

# A guest that echoes its input is reported only once the input, and so the
# output, stops.  An attempt counts only if the guest kept up with the input
# and this script fed it with no gap near the 2 s of silence (a host too
# loaded to run either for that long would rightly report the silence).
echo_line="^gvm:   vCPU 0: running in 64-bit kernel mode at rip 0x[0-9a-f]*, [1-9][0-9]* exits/s$"
mkfifo "$t/in"
for ((attempt = 1; attempt <= 3; attempt++)); do
	"$gvm" run --kernel "$guest" --mem 64M --vcpus 1 --append echo --report-silence 2 \
		<"$t/in" >"$t/echo.out" 2>"$t/echo.err" &
	pid=$!
	exec 3>"$t/in"
	wait_for "$t/echo.out" spinning 20 || { echo "FAIL: echo: the guest did not start"; fail=1; }
	kept_up=1
	fed=$(date +%s%N)
	for ((k = 1; k <= 15; k++)); do
		printf x >&3
		now=$(date +%s%N)
		(( now - fed < 1500000000 )) || kept_up=0
		fed=$now
		sleep 0.2
		(( $(tr -cd x <"$t/echo.out" | wc -c) >= k - 1 )) || kept_up=0
	done
	spoke=$(grep -c "silent" "$t/echo.err")
	wait_for "$t/echo.err" "$echo_line" 30 || true
	exec 3>&-
	stop echo
	cat "$t/echo.err"
	[ $kept_up = 1 ] && break
	echo "echo: attempt $attempt: the guest did not keep up with its input, or its input came late (a loaded host); again"
done
if [ $kept_up = 0 ]; then
	echo "FAIL: echo: the guest never kept up with its input (or it was never fed in time)"; fail=1
fi
[ "$spoke" = 0 ] || { echo "FAIL: echo: a report while the console spoke"; fail=1; }
rip=$(grep "$echo_line" "$t/echo.err" | sed 's/.* rip \(0x[0-9a-f]*\),.*/\1/' | head -1)
if [ -z "$rip" ]; then
	echo "FAIL: echo: vCPU 0 not reported running with exits"; fail=1
elif (( rip < $(addr echo) || rip > $(addr echo) + 32 )); then
	echo "FAIL: echo: rip $rip is not in the polling loop at $(addr echo)"; fail=1
fi

# never, with 0
run off busy 1 0
sleep 2.5
stop off
[ -s "$t/off.err" ] && [ "$(grep -v 'stopped by' "$t/off.err")" ] &&
	{ echo "FAIL: off: gvm said something with --report-silence 0"; cat "$t/off.err"; fail=1; }

"$gvm" run --kernel "$guest" --report-silence soon >/dev/null 2>"$t/bad.err"
rc=$?
[ $rc = 2 ] && grep -q -- "--report-silence" "$t/bad.err" ||
	{ echo "FAIL: --report-silence soon: status $rc"; cat "$t/bad.err"; fail=1; }
exit $fail
