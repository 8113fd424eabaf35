# The DSM suites again, under another set-up (sourced by tests/dsm/*.t, not a
# test itself): dsm_suites WHAT DESCRIBED [SUITE...] runs test-dsm-SUITE
# (default: basic coherence stress races failure kvm) with the caller's
# environment (GVM_DSM_*), says
# how each ended and how many cases skipped, and checks that test-dsm-basic's
# nodes were carried by DESCRIBED (the start of dsm_transport_describe).
# Exits 0 when every suite passed.
dsm_suites() {
	local what=$1 described=$2 fail=0 s prog suites
	shift 2
	suites=${*:-basic coherence stress races failure kvm}
	for s in $suites; do
		prog=$GVM_BUILD/tests/unit/test-dsm-$s
		[ -x "$prog" ] || { echo "FAIL: $prog is not built"; fail=1; continue; }
		if "$prog" >"$GVM_TEST_TMP/$s.out" 2>&1; then
			echo "ok: test-dsm-$s $what: $(tail -1 "$GVM_TEST_TMP/$s.out")$(grep -c '^skip' "$GVM_TEST_TMP/$s.out" | sed 's/^0$//; s/.\+/ (& cases skipped)/')"
		else
			echo "FAIL: test-dsm-$s $what:"
			grep -v '^ok ' "$GVM_TEST_TMP/$s.out" | tail -30
			fail=1
		fi
	done
	grep -q "^two nodes carried by $described" "$GVM_TEST_TMP/basic.out" ||
		{ echo "FAIL: test-dsm-basic did not report '$described'"; fail=1; }
	exit $fail
}
