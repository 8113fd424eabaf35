#!/bin/bash
# Build the giantvm Linux guest kernel from Debian's linux-source-6.1.
#
# usage: images/linux/build-kernel.sh OUTDIR
#
# Unpacks the source into OUTDIR/src (never into the repository), applies
# images/linux/patches/*.patch, configures OUTDIR/obj from `make tinyconfig`
# plus images/linux/config.fragment, builds, and leaves OUTDIR/bzImage,
# OUTDIR/vmlinux and OUTDIR/gen_init_cpio.  Each step is redone only when its
# inputs changed.  The compiler runs under `nice -n 19` (shared machines).
#
# Environment: LINUX_TARBALL (default /usr/src/linux-source-6.1.tar.xz),
# JOBS (default: the number of online CPUs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
tarball=${LINUX_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
jobs=${JOBS:-$(nproc)}
src=$out/src
obj=$out/obj
t0=$(date +%s)

step() { printf 'linux-image: [%4ds] %s\n' $(($(date +%s) - t0)) "$*"; }
fail() { echo "linux-image: error: $*" >&2; exit 1; }

[ -r "$tarball" ] || fail "$tarball not found: install Debian's linux-source-6.1" \
	"(tools/install-deps --slow) or set LINUX_TARBALL"
for tool in bc bison flex xz; do
	command -v $tool >/dev/null ||
		fail "'$tool' is missing: run tools/install-deps --slow"
done

# The source tree: the tarball plus our patches.  Any change to either
# unpacks afresh, so a patch is never applied twice or left half-applied.
src_key=$( { stat -c '%n %s %Y' "$tarball"; cat "$here"/patches/*.patch; } | sha256sum)
if [ "$(cat "$out/src.stamp" 2>/dev/null)" != "$src_key" ]; then
	step "unpacking $tarball"
	rm -rf "$src" "$obj" "$out/src.stamp" "$out/src.tmp"
	mkdir -p "$out/src.tmp"
	tar -xJf "$tarball" -C "$out/src.tmp" --strip-components=1
	for p in "$here"/patches/*.patch; do
		step "applying $(basename "$p")"
		patch -d "$out/src.tmp" -p1 --batch --forward --quiet <"$p" ||
			fail "$p does not apply to $tarball"
	done
	mv "$out/src.tmp" "$src"
	echo "$src_key" >"$out/src.stamp"
fi

# The configuration: tinyconfig, then the fragment, then olddefconfig.  A
# fragment line that Kconfig dropped (an unmet dependency, a typo) is an
# error, not a silent surprise at boot.
frag=$here/config.fragment
cfg_key=$( { echo "$src_key"; cat "$frag"; } | sha256sum)
if [ "$(cat "$obj/config.stamp" 2>/dev/null)" != "$cfg_key" ]; then
	step "configuring: tinyconfig + $(basename "$frag")"
	mkdir -p "$obj"
	rm -f "$obj/config.stamp"
	make -s -C "$src" O="$obj" tinyconfig >/dev/null
	cat "$frag" >>"$obj/.config"
	make -s -C "$src" O="$obj" olddefconfig >/dev/null 2>&1
	bad=0
	while read -r line; do
		case $line in
		CONFIG_*=*) grep -qxF "$line" "$obj/.config" && continue ;;
		"# CONFIG_"*" is not set")
			sym=${line#\# }; sym=${sym%% *}
			grep -q "^$sym=" "$obj/.config" || continue ;;
		*) continue ;;
		esac
		sym=${line#\# }; sym=${sym%%[= ]*}
		now=$(grep -E "^$sym=|^# $sym is not set" "$obj/.config" || echo absent)
		echo "linux-image: $frag: '$line' did not survive olddefconfig (now: $now)" >&2
		bad=1
	done <"$frag"
	[ $bad = 0 ] || fail "fix $frag (a dependency or a 'select' overrides it)"
	echo "$cfg_key" >"$obj/config.stamp"
fi

# The build.  kbuild prints one line per step; number them for progress.
step "building bzImage with $jobs jobs (nice -n 19)"
nice -n 19 make -C "$src" O="$obj" -j"$jobs" bzImage 2>&1 |
	awk '/^  [A-Z]/ { n++; printf "linux-image: %5d %s\n", n, $0; fflush(); next }
		{ print; fflush() }' |
	grep -v '^make\[[0-9]*\]: \(Entering\|Leaving\)'

cp "$obj/arch/x86/boot/bzImage" "$out/bzImage.tmp" && mv "$out/bzImage.tmp" "$out/bzImage"
cp "$obj/vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
cp "$obj/usr/gen_init_cpio" "$out/gen_init_cpio"
cp "$obj/.config" "$out/config"
step "done: $out/bzImage ($(stat -c %s "$out/bzImage") bytes)," \
	"$out/vmlinux ($(stat -c %s "$out/vmlinux") bytes)"
