# Sourced by tests/run and by tests that need munge on their own.
# munge_ensure: make sure a munged answers; if none does on the default
# socket, start a private one (own key, own socket) and export
# GVM_MUNGE_SOCKET so that gvm and the tests use it.  munge_stop_own stops
# only a munged that munge_ensure started.

_gv_munged_dir=

munge_works() {
	local sock_opt=()
	[ -n "${1:-}" ] && sock_opt=(-S "$1")
	munge "${sock_opt[@]}" -n 2>/dev/null | unmunge "${sock_opt[@]}" >/dev/null 2>&1
}

munge_ensure() {
	if [ -n "${GVM_MUNGE_SOCKET:-}" ] && munge_works "$GVM_MUNGE_SOCKET"; then
		return 0
	fi
	if munge_works; then
		unset GVM_MUNGE_SOCKET
		return 0
	fi
	command -v munged >/dev/null || { echo "munged is not installed (apt-get install munge)" >&2; return 1; }
	_gv_munged_dir=$(mktemp -d "${TMPDIR:-/tmp}/gvmunge.XXXXXX") || return 1
	chmod 755 "$_gv_munged_dir"
	mkdir -m 700 "$_gv_munged_dir/key"
	dd if=/dev/urandom of="$_gv_munged_dir/key/munge.key" bs=1024 count=1 2>/dev/null
	chmod 400 "$_gv_munged_dir/key/munge.key"
	munged --socket="$_gv_munged_dir/munge.sock" --key-file="$_gv_munged_dir/key/munge.key" \
		--pid-file="$_gv_munged_dir/munged.pid" --seed-file="$_gv_munged_dir/key/seed" \
		--log-file="$_gv_munged_dir/munged.log" --force 2>"$_gv_munged_dir/start.err" || {
		cat "$_gv_munged_dir/start.err" >&2
		return 1
	}
	for _ in $(seq 50); do
		munge_works "$_gv_munged_dir/munge.sock" && break
		sleep 0.1
	done
	munge_works "$_gv_munged_dir/munge.sock" || return 1
	export GVM_MUNGE_SOCKET=$_gv_munged_dir/munge.sock
}

munge_stop_own() {
	[ -n "$_gv_munged_dir" ] || return 0
	[ -f "$_gv_munged_dir/munged.pid" ] && kill "$(cat "$_gv_munged_dir/munged.pid")" 2>/dev/null
	sleep 0.2
	rm -rf "$_gv_munged_dir"
	_gv_munged_dir=
}
