#!/bin/bash
# Build the giantvm Linux guest's initramfs: an uncompressed newc cpio.
#
# usage: images/linux/mkinitramfs.sh GEN_INIT_CPIO GVM_EXIT OUTPUT [PROGRAM...]
#
# Contents: /init (images/linux/init), busybox (static) with a link per
# applet (made by /init), hwloc's lstopo-no-graphics and numactl with the shared libraries
# ldd finds for them on this host, gvm-exit, and each PROGRAM (benchmarks)
# in /usr/local/bin with its libraries.  gvm-exit and the PROGRAMs go in
# stripped: the guest kernel copies every byte of the archive at each boot.
# GEN_INIT_CPIO is the kernel's usr/gen_init_cpio: it writes device nodes and
# root ownership without root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 3 ] || { echo "usage: $0 GEN_INIT_CPIO GVM_EXIT OUTPUT [PROGRAM...]" >&2; exit 2; }
gen=$1 exit_tool=$2 output=$3
shift 3
fail() { echo "mkinitramfs: error: $*" >&2; exit 1; }

busybox=$(command -v busybox) || fail "busybox is missing: install busybox-static"
dynamic() { LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; }
! dynamic "$busybox" || fail "$busybox is not static: install busybox-static"
lstopo=$(command -v lstopo-no-graphics) || fail "lstopo-no-graphics is missing: install hwloc"
numactl=$(command -v numactl) || fail "numactl is missing: install numactl"

work=$(mktemp -d)
trap 'rm -rf "$work" "$output.tmp"' EXIT
list=$work/list
mkdir "$work/bin"
declare -A seen

dir() {
	local d=$1
	[ "$d" = / ] || [ -n "${seen[$d]:-}" ] && return 0
	dir "$(dirname "$d")"
	seen[$d]=1
	echo "dir $d 0755 0 0" >>"$list"
}

# A file at a path in the image, with its parent directories.
put() { # DEST SRC MODE
	[ -n "${seen[$1]:-}" ] && return 0
	[ -r "$2" ] || fail "$2 is missing"
	dir "$(dirname "$1")"
	seen[$1]=1
	echo "file $1 $(readlink -f "$2") $3 0 0" >>"$list"
}

# A dynamically linked program's libraries and loader, at the paths the
# host's ldd resolves them to (the guest's loader searches the same ones).
libs() {
	local line lib
	dynamic "$1" || return 0
	while read -r line; do
		case $line in
		*"=> not found"*) fail "$1 needs ${line%% *}, not found on this host" ;;
		*"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
		/*) lib=${line%% (*} ;;
		*) continue ;;
		esac
		put "$lib" "$lib" 0755
	done < <(ldd "$1")
}

# One of ours: a stripped copy, and its libraries.
program() { # DEST SRC
	local copy
	copy=$work/bin/$(basename "$1")
	[ -r "$2" ] || fail "$2 is missing"
	strip --strip-unneeded -o "$copy" "$2" || fail "cannot strip $2"
	put "$1" "$copy" 0755
	libs "$2"
}

for d in /dev /proc /sys /tmp /job /root /etc /mnt; do dir $d; done
echo "nod /dev/console 0600 0 0 c 5 1" >>"$list"
echo "nod /dev/null 0666 0 0 c 1 3" >>"$list"
put /init "$here/init" 0755
# Only /bin/sh links to busybox here: /init makes the other applets' hard
# links.  Each file in the archive costs the kernel tens of thousands of
# instructions to create, which is seconds where guest kernel code is
# emulated, while user space does it in no time (docs/linux-image.md).
put /bin/busybox "$busybox" 0755
echo "slink /bin/sh busybox 0777 0 0" >>"$list"
for d in /sbin /usr/bin /usr/sbin; do dir $d; done
put /usr/bin/lstopo-no-graphics "$lstopo" 0755
libs "$lstopo"
put /usr/bin/numactl "$numactl" 0755
libs "$numactl"
program /usr/bin/gvm-exit "$exit_tool"
for p in "$@"; do
	program "/usr/local/bin/$(basename "$p")" "$p"
done

printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/passwd"
printf 'root:x:0:\n' >"$work/group"
# What /init mounts, in one `mount -a`.
cat >"$work/fstab" <<'EOF'
proc /proc proc defaults 0 0
sysfs /sys sysfs defaults 0 0
devtmpfs /dev devtmpfs defaults 0 0
tmpfs /tmp tmpfs defaults 0 0
EOF
put /etc/passwd "$work/passwd" 0644
put /etc/group "$work/group" 0644
put /etc/fstab "$work/fstab" 0644

"$gen" "$list" >"$output.tmp"
mv "$output.tmp" "$output"
echo "mkinitramfs: $output: $(stat -c %s "$output") bytes," \
	"$(grep -c '^file' "$list") files"
