#!/bin/bash
# make bench-dsm's path, small: bench/dsm/run runs bench-dsm over real DSM
# processes, keeps its output and draws the scaling plot from it.  Checks
# that every yardstick printed its figures (a paired ratio for each latency,
# a rate for each thread count, the 4- and 8-node reads against 2 nodes,
# installing a window both ways),
# that the PNG is one, and that the plot refuses input without figures by
# name; the same over the fabric transport, its floor through the fabric.
# A benchmark, not a timed test: no figure is judged.
# timeout: 240
set -u
bench=$GVM_BUILD/bench/dsm/bench-dsm
[ -x "$bench" ] || { echo "FAIL: $bench is not built (make benches)"; exit 1; }
command -v gnuplot >/dev/null || { echo "FAIL: gnuplot is missing (tools/install-deps installs it)"; exit 1; }
T=$GVM_TEST_TMP
fail=0

# --perf-control's FIFO, held open for reading (and writing, so that opening
# it does not block) by the test where perf record --control would read it.
mkfifo "$T/ctl" && exec 7<>"$T/ctl" || { echo "FAIL: cannot make a FIFO in $T"; exit 1; }
"$GVM_TOP/bench/dsm/run" --report "$T/b" "$bench" --pages 50 --rounds 1 --seq 1M \
	--perf-control "$T/ctl" >"$T/out" 2>"$T/err" ||
	{ echo "FAIL: bench/dsm/run failed:"; tail -20 "$T/err"; exit 1; }
ctl=
while read -r -t 1 -u 7 line; do ctl="$ctl$line,"; done
exec 7<&-
[ "$ctl" = "enable,disable," ] ||
	{ echo "FAIL: --perf-control wrote '$ctl', not enable and disable around the one sequential read"; fail=1; }
for y in "remote read fault" "remote read fault, the floor's reply read by a second thread" \
	"remote read fault, 4 nodes" "remote read fault, 8 nodes" \
	"remote write fault" "write fault, 1 sharer to invalidate" \
	"write fault, 3 sharers to invalidate"; do
	grep -Eq "^$y: [0-9.]+ us, floor [0-9.]+ us; ratio [0-9.]+ to the floor \(IQR [0-9.]+-[0-9.]+, 50 pairs\)" "$T/b.txt" ||
		{ echo "FAIL: no paired figures for '$y'"; fail=1; }
done
n=$(grep -Ec '^    against 2 nodes: [0-9.]+ x' "$T/b.txt")
[ "$n" = 2 ] || { echo "FAIL: $n lines comparing to 2 nodes, not 2"; fail=1; }
for t in "1 thread" "2 threads" "4 threads" "8 threads"; do
	grep -Eq "^read faults on disjoint remote pages, $t: [1-9][0-9]* pages/s" "$T/b.txt" ||
		{ echo "FAIL: no throughput for $t"; fail=1; }
done
grep -Eq '^sequential read of pages homed on another node: [0-9]+ MB/s, TCP stream [0-9]+ MB/s' "$T/b.txt" ||
	{ echo "FAIL: no sequential read figure"; fail=1; }
grep -Eq '^installing a received window of 64 pages: (UFFDIO_CONTINUE of shared memory already written [0-9.]+ us/page, UFFDIO_COPY into private memory \(the DSM.s\) [0-9.]+ us/page; ratio [0-9.]+ to UFFDIO_COPY \(IQR [0-9.]+-[0-9.]+, 4 pairs\)|this kernel does not offer UFFDIO_CONTINUE)' "$T/b.txt" ||
	{ echo "FAIL: no figures for installing a window"; fail=1; }
cmp -s <(head -c "$(stat -c %s "$T/b.txt")" "$T/out") "$T/b.txt" ||
	{ echo "FAIL: the kept output differs from what was printed"; fail=1; }
[ "$(head -c 8 "$T/b.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
	{ echo "FAIL: $T/b.png is not a PNG"; fail=1; }
grep -q "bench-dsm plot: $T/b.png" "$T/out" || grep -q "bench-dsm plot: $T/b.png" "$T/err" ||
	{ echo "FAIL: the plot's path was not shown"; fail=1; }

# Over the fabric transport (tcp;ofi_rxm on loopback), the floor through it
# too; a build without libfabric says it did not.
. "$GVM_TOP/tests/lib/fabric.sh"
if fabric_built; then
	FI_TCP_IFACE=lo "$GVM_TOP/bench/dsm/run" --report "$T/f" "$bench" --pages 50 --rounds 1 --seq 1M \
		--transport "fabric:tcp;ofi_rxm" >"$T/fout" 2>"$T/ferr" ||
		{ echo "FAIL: bench-dsm --transport fabric failed:"; tail -20 "$T/ferr"; exit 1; }
	grep -q "transport fabric:tcp;ofi_rxm" "$T/f.txt" && grep -q "^floor: .* does a fabric round trip" "$T/f.txt" ||
		{ echo "FAIL: the fabric run does not say its floor went through the fabric"; fail=1; }
	for y in "remote read fault" "remote write fault" "write fault, 3 sharers to invalidate"; do
		grep -Eq "^$y: [0-9.]+ us, floor [0-9.]+ us; ratio [0-9.]+ to the floor" "$T/f.txt" ||
			{ echo "FAIL: over the fabric, no paired figures for '$y'"; fail=1; }
	done
	grep -q "read by a second thread" "$T/f.txt" &&
		{ echo "FAIL: the split floor was measured over the fabric, where it cannot be"; fail=1; }
else
	echo "note: this gvm was built without libfabric: bench-dsm over the fabric is not run"
fi

# A control FIFO that nobody reads: refused at once, naming it.
if "$bench" --perf-control "$T/ctl" --pages 10 2>"$T/cerr"; then
	echo "FAIL: bench-dsm ran with a control FIFO that nobody reads"; fail=1
fi
grep -q -- "--perf-control: $T/ctl: " "$T/cerr" ||
	{ echo "FAIL: the refusal does not name the FIFO:"; cat "$T/cerr"; fail=1; }

# Input without figures: refused, naming the file, and no PNG left.
echo "not bench-dsm output" >"$T/junk.txt"
if "$GVM_TOP/bench/dsm/plot" "$T/junk.txt" "$T/junk.png" 2>"$T/perr"; then
	echo "FAIL: the plot accepted a file without figures"; fail=1
fi
grep -q "'$T/junk.txt' has no scaling figures" "$T/perr" ||
	{ echo "FAIL: the refusal does not name the file:"; cat "$T/perr"; fail=1; }
[ ! -e "$T/junk.png" ] && [ ! -e "$T/junk.png.part" ] || { echo "FAIL: a PNG was left for junk"; fail=1; }
"$GVM_TOP/bench/dsm/plot" "$T/missing.txt" "$T/m.png" 2>"$T/perr" && { echo "FAIL: a missing file plotted"; fail=1; }
grep -q "cannot read '$T/missing.txt'" "$T/perr" || { echo "FAIL: a missing file not named"; fail=1; }
[ $fail = 0 ] && echo "ok: bench-dsm ran, kept its output and drew $T/b.png"
exit $fail
