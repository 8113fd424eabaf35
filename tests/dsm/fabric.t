#!/bin/bash
# The DSM suites again, over the fabric transport: libfabric's tcp provider
# (tcp;ofi_rxm) pinned to loopback, real processes, real endpoints.  The
# cases whose forger writes the TCP transport's frames say they skip; every
# other case must pass as it does over TCP.
# timeout: 300
set -u
export FI_TCP_IFACE=lo GVM_DSM_TRANSPORT="fabric:tcp;ofi_rxm"
fail=0
for s in basic coherence stress races failure kvm; do
	prog=$GVM_BUILD/tests/unit/test-dsm-$s
	[ -x "$prog" ] || { echo "FAIL: $prog is not built"; fail=1; continue; }
	if "$prog" >"$GVM_TEST_TMP/$s.out" 2>&1; then
		echo "ok: test-dsm-$s over the fabric: $(tail -1 "$GVM_TEST_TMP/$s.out")$(grep -c '^skip' "$GVM_TEST_TMP/$s.out" | sed 's/^0$//; s/.\+/ (& cases skipped)/')"
	else
		echo "FAIL: test-dsm-$s over the fabric:"
		grep -v '^ok ' "$GVM_TEST_TMP/$s.out" | tail -30
		fail=1
	fi
done
# The suites really ran over the fabric: test-dsm-basic's nodes checked what carried them.
grep -q "^two nodes carried by fabric: provider tcp;ofi_rxm, domain lo" "$GVM_TEST_TMP/basic.out" ||
	{ echo "FAIL: test-dsm-basic did not report the fabric transport"; fail=1; }
exit $fail
