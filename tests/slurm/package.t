#!/bin/bash
# The Debian packages (debian/), built, installed and used on this machine:
#   - dpkg-buildpackage -us -uc -b in a copy of the source tree under
#     GVM_TEST_TMP builds giantvm and slurm-spank-giantvm (the Linux
#     image's kernel reused from GVM_IMAGES when it is built there:
#     GVM_PREBUILT_IMAGES; else the probe only, pkg.giantvm.nolinux);
#   - installed with apt-get, they hold what they should where they should
#     (dpkg -L), the plugstack line is a conffile naming the installed
#     plugin and gvm, and the plugin's package is pinned to this Slurm;
#   - one --giantvm batch job of the unprivileged user on a private 2-node
#     cluster whose plugstack.conf includes the installed line, nothing
#     else: with the Linux image, its script runs in the guest (2 CPUs,
#     GVM_NODES=2) and its exit status 3 is the job's; with the probe only,
#     the installed probe boots over both nodes and passes (the job then
#     fails: the probe runs no job);
#   - purged on every path: afterwards nothing of giantvm is under /usr
#     and /etc that was not there before.
# Skipped, not clobbering anything, where giantvm is installed already (the
# packages, or a make install under /usr).
# timeout: 600
. "$GVM_TOP/tests/slurm/lib.sh"
. "$GVM_TOP/tests/slurm/giantvm.sh"

slurm_need
[ -e /dev/kvm ] || skip "no /dev/kvm"
for c in dpkg-buildpackage dh apt-get; do
	command -v "$c" >/dev/null || skip "no $c: tools/install-deps --slow installs debhelper"
done
pkgs="giantvm slurm-spank-giantvm"
installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null; }
for p in $pkgs; do
	[ -z "$(installed "$p")" ] || [ "$(installed "$p")" = not-installed ] ||
		skip "the package $p is on this machine ($(installed "$p")): this test would replace and purge it"
done
# What the packages install, unless dpkg owns it (it does not: see above).
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for f in /usr/bin/gvm /usr/share/giantvm /usr/lib/"$multiarch"/slurm/spank_giantvm.so \
	/etc/slurm/plugstack.conf.d/giantvm.conf /usr/share/man/man1/gvm.1.gz \
	/usr/share/man/man8/spank-giantvm.8.gz; do
	[ -e "$f" ] && skip "$f is there and no package owns it (make install PREFIX=/usr?):" \
		"the packages would overwrite it; remove it to run this test"
done

# Whatever of giantvm is under /usr and /etc now, to compare with at the end.
giantvm_files() { find /usr /etc -path '*giantvm*' 2>/dev/null | sort; }
before=$(giantvm_files)
runtime=/run/giantvm	# the plugin's default runtime_dir
had_runtime=0
[ -e $runtime ] && had_runtime=1

t0=$SECONDS
# purge: remove the packages dpkg has (in any state) with their conffiles,
# and the plugin's runtime directory if this test made it.  Safe to call
# twice, and before anything was installed.
purge() {
	local p todo=
	[ $had_runtime = 1 ] || rm -rf $runtime
	for p in $pkgs; do
		case $(installed "$p") in '' | not-installed) ;; *) todo="$todo $p" ;; esac
	done
	[ -n "$todo" ] || return 0
	# apt-get waits for a dpkg lock another process holds; dpkg, if apt
	# will not (a broken dependency), removes them all the same.
	apt-get purge -y -q -o DPkg::Lock::Timeout=120 $todo >"$GVM_TEST_TMP/purge.log" 2>&1 ||
		dpkg --purge $todo >>"$GVM_TEST_TMP/purge.log" 2>&1 ||
		{ cat "$GVM_TEST_TMP/purge.log"; echo "purge: could not purge$todo"; return 1; }
}
cleanup() {
	slurm_stop
	purge
}
trap cleanup EXIT
trap 'cleanup; exit 129' HUP
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# 1. Build, in a copy of the tree (the tree's files only: no build/, no
# config.mk), so that nothing lands in the repository or beside it.
src=$GVM_TEST_TMP/pkg/giantvm
mkdir -p "$src"
if git -C "$GVM_TOP" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$GVM_TOP" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -xf - -C "$src" || fail "cannot copy the source tree"
else
	tar -C "$GVM_TOP" --exclude=./build --exclude=./config.mk --exclude=./config.h -cf - . |
		tar -xf - -C "$src" || fail "cannot copy the source tree"
fi
[ -f "$src/debian/control" ] || fail "no debian/control in the copy of $GVM_TOP"
linux=1
for f in vmlinux bzImage gen_init_cpio config; do
	[ -s "${GVM_IMAGES:-}/linux/$f" ] || linux=0
done
build_env=(DEB_BUILD_OPTIONS="noddebs parallel=$(nproc)")
if [ $linux = 1 ]; then
	build_env+=(GVM_PREBUILT_IMAGES="$GVM_IMAGES")
	echo "building the packages with the Linux kernel of $GVM_IMAGES (GVM_PREBUILT_IMAGES)"
else
	build_env+=(DEB_BUILD_PROFILES=pkg.giantvm.nolinux)
	echo "NOTE: no Linux image in ${GVM_IMAGES:-GVM_IMAGES} (make linux-image): building the" \
		"packages with the probe guest only (pkg.giantvm.nolinux), and the job boots the probe"
fi
(cd "$src" && env "${build_env[@]}" dpkg-buildpackage -us -uc -b) >"$GVM_TEST_TMP/build.log" 2>&1 ||
	{ tail -n 40 "$GVM_TEST_TMP/build.log"; fail "dpkg-buildpackage -us -uc -b failed"; }
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
debs=()
for p in $pkgs; do
	deb=$GVM_TEST_TMP/pkg/${p}_${version}_$(dpkg --print-architecture).deb
	[ -f "$deb" ] || fail "dpkg-buildpackage did not make $deb: $(ls "$GVM_TEST_TMP/pkg")"
	debs+=("$deb")
done
echo "ok: dpkg-buildpackage -us -uc -b built $pkgs $version ($((SECONDS - t0)) s)"

# 2. Install (apt-get: it would fetch a missing dependency) and look.
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 "${debs[@]}" \
	>"$GVM_TEST_TMP/install.log" 2>&1 ||
	{ cat "$GVM_TEST_TMP/install.log"; fail "apt-get install of the packages failed"; }
for p in $pkgs; do
	[ "$(installed "$p")" = installed ] || fail "$p is '$(installed "$p")' after apt-get install"
done
has() { # PACKAGE PATH...
	local p=$1 list f
	shift
	list=$(dpkg -L "$p")
	for f in "$@"; do
		grep -qxF "$f" <<<"$list" || fail "$p does not hold $f: $list"
		[ -e "$f" ] || fail "$f ($p) is not on disk"
	done
}
has giantvm /usr/bin/gvm /usr/share/giantvm/images/probe.elf /usr/share/man/man1/gvm.1.gz
if [ $linux = 1 ]; then
	for f in vmlinux initramfs.cpio cmdline cmdline-emulated; do
		has giantvm /usr/share/giantvm/images/linux/$f
	done
	# The kernel is GVM_IMAGES's; the rest is made by the package build.
	cmp -s "$GVM_IMAGES/linux/vmlinux" /usr/share/giantvm/images/linux/vmlinux ||
		fail "the installed vmlinux is not $GVM_IMAGES/linux/vmlinux"
	for f in cmdline cmdline-emulated; do
		cmp -s "$GVM_TOP/images/linux/$f" /usr/share/giantvm/images/linux/$f ||
			fail "the installed linux/$f is not images/linux/$f"
	done
fi
so=/usr/lib/$multiarch/slurm/spank_giantvm.so
snippet=/etc/slurm/plugstack.conf.d/giantvm.conf
has slurm-spank-giantvm "$so" "$snippet" /usr/share/man/man8/spank-giantvm.8.gz
[ -x /usr/bin/gvm ] || fail "/usr/bin/gvm is not executable"
out=$(/usr/bin/gvm --version 2>&1) && grep -qw "$version" <<<"$out" ||
	fail "/usr/bin/gvm --version says '$out', not $version"
dpkg-query -W -f='${Conffiles}\n' slurm-spank-giantvm | grep -q "^ $snippet " ||
	fail "$snippet is not a conffile of slurm-spank-giantvm"
line=$(grep -v '^#' "$snippet")
[ "$line" = "required $so gvm=/usr/bin/gvm" ] || fail "$snippet says: $line"
depends=$(dpkg-query -W -f='${Depends}' slurm-spank-giantvm)
slurm=$(dpkg-query -W -f='${Version}' slurm-wlm-basic-plugins)
release=${slurm%%.*}.$(cut -d. -f2 <<<"$slurm")
grep -qF "slurm-wlm-basic-plugins (>= $release~)" <<<"$depends" &&
	grep -qF "giantvm (= $version)" <<<"$depends" ||
	fail "slurm-spank-giantvm's Depends do not pin Slurm $release and giantvm $version: $depends"
for f in /usr/bin/gvm "$so"; do
	ldd "$f" | grep -q 'not found' && fail "$f: a library is missing: $(ldd "$f")"
done
# The packaged gvm has the fabric transport and --integrity (their libraries
# are Build-Depends, asked for by debian/rules, not picked up by chance).
for lib in libfabric libcrypto; do
	ldd /usr/bin/gvm | grep -q "$lib" || fail "/usr/bin/gvm is not linked with $lib: $(ldd /usr/bin/gvm)"
done
grep -q '^transports: tcp fabric (libfabric [0-9]' <<<"$out" ||
	fail "/usr/bin/gvm --version does not say it has the fabric transport: $out"
echo "ok: installed; gvm $version in /usr/bin, the images, the plugin, its conffile line," \
	"both man pages; slurm-spank-giantvm pinned to Slurm $release"

# 3. One job through the installed plugin: the cluster's plugstack.conf
# includes the installed line and nothing else; the instances find munged
# through GVM_MUNGE_SOCKET, which slurm_start exports to the jobs.
# The job must find the installed images, as on a site: not the tree's, which
# GVM_IMAGES (set by tests/run) would point gvm at.
unset GVM_IMAGES
slurm_user_ensure
slurm_init 2
trap cleanup EXIT	# slurm_init's traps stop the cluster only
trap 'cleanup; exit 129' HUP
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
slurm_mpi_ports
slurm_conf_add KillWait=5
slurm_pin_nodes=1
echo "include $snippet" >"$slurm_plugstack"
gv_runtime=$runtime	# for gv_check_clean
slurm_start
grep -q "giantvm: gvm /usr/bin/gvm" "$slurm_dir"/log/slurmd-gv1.log ||
	{ slurm_logs; fail "slurmd did not load the installed plugin with gvm=/usr/bin/gvm"; }
h=$slurm_dir/home
mkdir -m 755 "$h" && chown "$slurm_user:" "$h" || fail "cannot make $h"
cat >"$h/job.sh" <<'EOF'
#!/bin/sh
read -r online </sys/devices/system/cpu/online
echo "in the guest: GVM_NODES=$GVM_NODES, cpus online $online"
exit 3
EOF
chmod 755 "$h/job.sh"
if [ $linux = 1 ]; then
	opt=--giantvm=mem=256M,vcpus=1 want=3 limit=480
else
	opt=--giantvm=image=probe,mem=256M,vcpus=1 want=1 limit=120
fi
t1=$SECONDS
# GVM_LOG=debug: gvm names the image it boots (the plugin passes GVM_LOG on).
id=$(cd "$h" && GVM_LOG=debug slurm_as_user sbatch -N2 "$opt" --parsable -o "$h/%j.out" \
	-e "$h/%j.err" ./job.sh) ||
	fail "sbatch -N2 $opt as $slurm_user was refused"
slurm_wait_job "$id" $limit
rc=$?
[ $rc = 124 ] && gv_debug
echo "--- the job's output"
cat "$h/$id.out"
if [ $rc != $want ]; then
	echo "--- its error file (last 30 lines)"
	tail -n 30 "$h/$id.err"
	slurm_logs
	fail "job $id: exit status $rc, not $want"
fi
echo "--- its error file, gvm's image and errors"
grep -E ': image |error' "$h/$id.err"
if [ $linux = 1 ]; then want=/usr/share/giantvm/images/linux; else want=/usr/share/giantvm/images/probe.elf; fi
grep -qE "^gvm rank 0: .*: image $want(,|\$)" "$h/$id.err" ||
	fail "job $id: gvm did not say it booted the installed image $want"
if [ $linux = 1 ]; then
	grep -qx 'in the guest: GVM_NODES=2, cpus online 0-1' "$h/$id.out" ||
		fail "job $id: its script did not run in a guest of 2 nodes"
	what="its script ran in the Linux guest over 2 nodes, ExitCode 3"
else
	grep -q 'result: PASS' "$h/$id.err" && grep -q 'the guest ended (status 0) before the job started' "$h/$id.err" ||
		fail "job $id: the probe did not pass over 2 nodes"
	what="the installed probe passed over 2 nodes (it runs no job: ExitCode 1)"
fi
gv_check_clean "the job"
echo "ok: sbatch -N2 --giantvm through the installed plugin and line: $what ($((SECONDS - t1)) s)"

# 4. Purge: nothing of giantvm left.
slurm_stop
purge || fail "purging $pkgs failed"
for p in $pkgs; do
	[ -z "$(installed "$p")" ] || [ "$(installed "$p")" = not-installed ] ||
		fail "$p is '$(installed "$p")' after apt-get purge"
done
after=$(giantvm_files)
[ "$after" = "$before" ] || fail "after the purge, under /usr and /etc:" \
	"$(diff <(echo "$before") <(echo "$after") | grep '^>')"
[ $had_runtime = 1 ] || [ ! -e $runtime ] || fail "$runtime is left"
echo "ok: purged; nothing of giantvm left under /usr and /etc ($((SECONDS - t0)) s in all)"
