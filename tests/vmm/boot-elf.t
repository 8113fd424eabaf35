#!/bin/bash
# gvm run boots an ELF64 guest through the 64-bit boot protocol: the guest
# finds its zero page in rsi, prints on the UART (gvm's stdout), and the
# value it writes to the exit device becomes gvm's exit status.  The ACPI
# tables gvm gives the guest (--dump-acpi) disassemble cleanly with iasl.
# --stats counts the exits by reason.
# timeout: 60
set -u
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm is missing or not usable by this user"; exit 77; }
gvm=$GVM_BUILD/gvm
guest=$GVM_BUILD/tests/vmm/hello.elf
[ -x "$gvm" ] && [ -f "$guest" ] || { echo "gvm or the test guest is not built: run make"; exit 1; }
fail=0

out=$("$gvm" run --kernel "$guest" --mem 64M --vcpus 1 2>"$GVM_TEST_TMP/err")
rc=$?
[ $rc = 42 ] || { echo "FAIL: exit status $rc, want 42 (the guest's)"; cat "$GVM_TEST_TMP/err"; fail=1; }
[ "$out" = "hello from the test guest" ] || { echo "FAIL: console output '$out'"; fail=1; }

# The same with the tables dumped; iasl reads each of them without errors.
mkdir "$GVM_TEST_TMP/acpi"
"$gvm" run --kernel "$guest" --mem 256M --vcpus 2 --numa 2 --dump-acpi "$GVM_TEST_TMP/acpi" \
	>/dev/null 2>&1
rc=$?
[ $rc = 42 ] || { echo "FAIL: with --dump-acpi, exit status $rc"; fail=1; }
for t in RSDP XSDT FACP FACS DSDT APIC SRAT SLIT; do
	[ -s "$GVM_TEST_TMP/acpi/$t.dat" ] || { echo "FAIL: --dump-acpi wrote no $t.dat"; fail=1; }
done
if command -v iasl >/dev/null; then
	# iasl exits 0 on a bad checksum or a malformed subtable: read what it says.
	for t in XSDT FACP FACS DSDT APIC SRAT SLIT; do
		(cd "$GVM_TEST_TMP/acpi" && iasl -d $t.dat) >"$GVM_TEST_TMP/iasl.$t" 2>&1 ||
			{ echo "FAIL: iasl -d $t.dat"; cat "$GVM_TEST_TMP/iasl.$t"; fail=1; }
		if grep -i -E "warning|error|incorrect|invalid" "$GVM_TEST_TMP/iasl.$t" \
			"$GVM_TEST_TMP/acpi/$t.dsl"; then
			echo "FAIL: iasl complains about $t (from gvm run --dump-acpi)"
			fail=1
		fi
	done
	grep -q "Proximity Domain : 00000001" "$GVM_TEST_TMP/acpi/SRAT.dsl" ||
		{ echo "FAIL: the SRAT has no node 1"; fail=1; }
fi
# --stats: the SMP guest's exits are counted by reason, with rates.
"$gvm" run --kernel "$GVM_BUILD/tests/vmm/smp.elf" --mem 64M --vcpus 2 --append 1 --stats \
	>/dev/null 2>"$GVM_TEST_TMP/stats"
rc=$?
[ $rc = 0 ] || { echo "FAIL: smp guest with --stats: status $rc"; cat "$GVM_TEST_TMP/stats"; fail=1; }
count() { sed -n "s/^gvm: stats: *$1 *\([0-9]*\) .*/\1/p" "$GVM_TEST_TMP/stats"; }
grep -Eq "^gvm: stats: [0-9.]+ s, 2 vCPUs, [0-9]+ exits, [0-9]+ exits/s$" "$GVM_TEST_TMP/stats" ||
	{ echo "FAIL: no stats summary line"; cat "$GVM_TEST_TMP/stats"; fail=1; }
[ "$(count "port I\/O")" -gt 50 ] 2>/dev/null || { echo "FAIL: port I/O exits not counted"; fail=1; }
[ "$(count 'MMIO LAPIC')" -gt 10 ] 2>/dev/null || { echo "FAIL: LAPIC exits not counted"; fail=1; }
[ "$(count 'interrupts injected')" -gt 5 ] 2>/dev/null ||
	{ echo "FAIL: injected interrupts not counted"; cat "$GVM_TEST_TMP/stats"; fail=1; }
[ "$(count 'NMIs injected')" = 1 ] || { echo "FAIL: the NMI was not counted"; fail=1; }
exit $fail
