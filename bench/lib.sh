# Sourced by the guest benchmarks (probe-bench.sh, cluster-bench.sh): the
# paths they share, the real matrices packed as an initrd, and the helpers
# that turn the probe's key=value lines into numbers.
# Before sourcing, set bench_name; $1 of the script is the build directory.
# Sets top, build, rounds, gvm, probe, matrices, real, have_real and tmp
# (removed at exit; a script adding its own EXIT trap removes it too).
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
rounds=${ROUNDS:-5}
gvm=$build/gvm
probe=$top/build/images/probe.elf
matrices=$top/../shared/data/matrices
real="bcsstk13.mtx bayer10.mtx pushpull.mtx"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$bench_name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "$bench_name: $*" >&2; exit 1; }
# field LINE KEY: the value of KEY=... in LINE
field() { sed -n "s/.*[ :]$2=\([^ ]*\).*/\1/p" <<<"$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# guest NAME GVM-ARGS...: run the probe, keep its output in $tmp/NAME, fail loudly
guest() {
	local name=$1
	shift
	"$gvm" run --kernel "$probe" "$@" >"$tmp/$name" 2>&1 </dev/null ||
		{ cat "$tmp/$name"; fail "$name: gvm run $* failed"; }
	grep -q '^result: PASS' "$tmp/$name" || { cat "$tmp/$name"; fail "$name: the probe failed"; }
}
# ratio A B [DIGITS]: A / B
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN { printf "%.*f", d, (b > 0 ? a / b : 0) }'; }

[ -x "$gvm" ] || fail "missing $gvm (run make)"
[ -f "$probe" ] || fail "missing $probe (run make images)"
have_real=1
for m in $real; do [ -r "$matrices/$m" ] || have_real=0; done
[ $have_real = 1 ] && (cd "$matrices" && ls $real | cpio -o -H newc --quiet) >"$tmp/m.cpio"
