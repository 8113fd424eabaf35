# Sourced by the tests of the fabric transport (not a test itself).
# fabric_built: whether this build's gvm has it (gvm --version says);
# fabric_need: skip the test when it has not, saying so; fabric_carried
# FILE DOMAIN [RANK]: FILE holds the line in which an instance (rank RANK,
# in a log of several) says guest RAM's pages went over tcp;ofi_rxm on
# DOMAIN.

fabric_built() {
	"$GVM_BUILD/gvm" --version 2>/dev/null | grep -q '^transports: tcp fabric '
}

fabric_need() {
	fabric_built && return 0
	echo "SKIP: this gvm was built without libfabric (install libfabric-dev and run ./configure --with-libfabric)"
	exit 77
}

fabric_carried() {
	local who=
	[ -n "${3:-}" ] && who="^gvm rank $3: "
	grep -q "${who}node: guest RAM's pages go over fabric: provider tcp;ofi_rxm, domain $2" "$1"
}
