#!/bin/bash
# timeout: 900
# The model of the DSM protocol (tests/model/dsm.pml, docs/protocol.md "The
# protocol model"), checked exhaustively by spin:
# - safety: single writer / multiple readers, every read returns the last
#   write, one owner per page, every message check of the code holds (the
#   attribution of acks and pages among them: an ack only from a node the
#   reply names, once each, early acks among them, DONE's source the node
#   the home asked), no
#   invalid end state, and once nothing can move every request has been
#   answered (FAULTS faults in all, 4 unless GVM_MODEL_FAULTS says);
# - the same with the excl_read option;
# - no cycle at all (non-progress cycle search), so every run ends, in a
#   state where every request has been answered;
# - every search is complete: full state space (no bitstate), lossless
#   compression only (COLLAPSE), no depth limit hit, no memory bound hit;
# - every probe of the model was reached (no mechanism left unexercised);
# - the model can fail: each mutation (a mechanism broken) is caught.
# Runs with the opt build only: it does not involve the C code.
set -u
case ${GVM_BUILD:-} in
*/san) echo "SKIP: the protocol model does not involve the C build (it runs with the opt build)"; exit 77 ;;
esac
command -v spin >/dev/null || { echo "SKIP: spin is not installed (apt-get install spin)"; exit 77; }
command -v gcc >/dev/null || { echo "SKIP: gcc is not installed"; exit 77; }

model=$GVM_TOP/tests/model/dsm.pml
faults=${GVM_MODEL_FAULTS:-4}
tmp=$GVM_TEST_TMP
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# prepare NAME CFLAGS SPIN-OPTION...: spin -a and gcc in $tmp/NAME.
prepare() {
	local name=$1 cflags=$2 dir=$tmp/$1
	shift 2
	mkdir -p "$dir"
	cp "$model" "$dir/dsm.pml"
	(cd "$dir" && spin -a "$@" dsm.pml >spin.log 2>&1 && gcc $cflags -o pan pan.c >gcc.log 2>&1) ||
		{ cat "$dir/spin.log" "$dir/gcc.log"; bad "$name: cannot build pan"; return 1; }
}

# search NAME PAN-OPTION...: run pan, its report in $tmp/NAME/pan.log.
search() {
	local name=$1 dir=$tmp/$1
	shift
	local t0 t1
	t0=$(date +%s%N)
	(cd "$dir" && ./pan "$@" >pan.log 2>&1)
	t1=$(date +%s%N)
	echo "time $(((t1 - t0) / 1000000)) ms" >>"$dir/pan.log"
}

# complete NAME: the search found nothing and covered the whole state space.
complete() {
	local name=$1 log=$tmp/$1/pan.log
	grep -q "^Full statespace search for:" "$log" || bad "$name: not a full state-space search"
	grep -q "errors: 0$" "$log" || {
		grep -E "^pan:|violated" "$log"
		(cd "$tmp/$name" && spin -t $(cat spin.opts) dsm.pml | grep -E "MSC|assert" | tail -40)
		bad "$name: spin found an error"
	}
	grep -qi "max search depth too small" "$log" && bad "$name: the depth limit was hit"
	grep -qi "MEMLIM bound\|out of memory" "$log" && bad "$name: memory ran out"
	grep -qi "bitstate\|hash-compact\|HC[0-9]" "$log" && bad "$name: a lossy search"
	grep -E "assertion violations" "$log" | grep -q -- "- (disabled" &&
		bad "$name: the assertions were not checked"
	if [ "$name" = cycles ]; then
		# (the never claim of this search turns the end-state check off: the others do it)
		grep -qE "non-progress cycles[[:space:]]+\+" "$log" || bad "$name: no non-progress cycle search"
	else
		grep -qE "invalid end states[[:space:]]+\+" "$log" || bad "$name: no invalid end state check"
	fi
	echo "ok: $name: $(grep -E "states, stored" "$log" | head -1 | sed 's/^ *//'), $(grep -E "states, matched" "$log" | sed 's/^ *//'), $(grep -E "total actual memory" "$log" | sed 's/^ *//;s/\t/ MB /'), $(grep -o "time .*" "$log" | tail -1)"
}

# caught NAME WHAT: the mutated model fails, as it should; show the trace.
caught() {
	local name=$1 what=$2 log=$tmp/$1/pan.log
	if grep -q "errors: 0$" "$log" || ! grep -q "assertion violated" "$log"; then
		bad "$name: the mutation ($what) was not caught"
		return
	fi
	echo "ok: $name ($what) is caught: $(grep -m1 "assertion violated" "$log")"
	(cd "$tmp/$name" && spin -t $(cat spin.opts) dsm.pml | grep -E "MSC|assert" | sed 's/^ */    /' | tail -12)
}

opts="-DFAULTS=$faults"
cflags="-O1 -DCOLLAPSE -DMEMLIM=3500"
echo "+ spin -a $opts dsm.pml; gcc $cflags -DSAFETY; pan -m100000 -w24 (and -DNP, pan -l)"
# Two cores: the safety search and the cycle search side by side.
prepare safety "$cflags -DSAFETY" $opts && echo "$opts" >"$tmp/safety/spin.opts" &
prepare cycles "$cflags -DNP" $opts && echo "$opts" >"$tmp/cycles/spin.opts" &
wait
[ -x "$tmp/safety/pan" ] && [ -x "$tmp/cycles/pan" ] || { echo "FAIL"; exit 1; }
# The cycle search is the longest: it has one core, everything else the other.
search cycles -l -m100000 -w24 &
cycles=$!
search safety -m100000 -w24

# The excl_read option, and the mutations (each must be caught).
mutations="BUG_NO_INVALIDATE BUG_NO_BULK_BUSY BUG_EARLY_DONE BUG_READ_AT_HOME BUG_ACK_FROM_ANYONE"
prepare excl-read "$cflags -DSAFETY" $opts -DEXCL_READ && echo "$opts -DEXCL_READ" >"$tmp/excl-read/spin.opts" &&
	search excl-read -m100000 -w24
for m in $mutations; do
	prepare $m "-O0 -DCOLLAPSE -DSAFETY" $opts -D$m && echo "$opts -D$m" >"$tmp/$m/spin.opts" &&
		search $m -m100000 -w22
done
wait $cycles
complete safety
complete cycles

# Every mechanism exercised (the probes of dsm.pml).
probes=$(grep -c "^probe " "$tmp/safety/pan.log")
[ "$probes" -ge 18 ] || bad "the probes were not reported ($probes)"
if grep -E "^probe [0-9]+: 0$" "$tmp/safety/pan.log"; then
	bad "some mechanism was never exercised (probe count 0 above)"
fi

complete excl-read
caught BUG_NO_INVALIDATE "a write invalidates no other copy"
caught BUG_NO_BULK_BUSY "prefetched pages not busy until BULK_DONE"
caught BUG_EARLY_DONE "a write's DONE before its last ack"
caught BUG_READ_AT_HOME "a READ served from the home's dropped copy"
caught BUG_ACK_FROM_ANYONE "the announced acks name another node than the invalidated one"
[ $fail = 0 ] && echo "ok: model of the DSM protocol, $faults faults"
exit $fail
