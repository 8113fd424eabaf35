#!/bin/bash
# gvm run boots an ELF64 guest through the 64-bit boot protocol: the guest
# finds its zero page in rsi, prints on the UART (gvm's stdout), and the
# value it writes to the exit device becomes gvm's exit status.  The ACPI
# tables gvm gives the guest (--dump-acpi) disassemble cleanly with iasl.
# timeout: 60
set -u
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
for t in XSDT FACP DSDT APIC SRAT SLIT; do
	[ -s "$GVM_TEST_TMP/acpi/$t.dat" ] || { echo "FAIL: --dump-acpi wrote no $t.dat"; fail=1; }
done
if command -v iasl >/dev/null; then
	for t in XSDT FACP DSDT APIC SRAT SLIT; do
		(cd "$GVM_TEST_TMP/acpi" && iasl -d $t.dat) >"$GVM_TEST_TMP/iasl.$t" 2>&1 ||
			{ echo "FAIL: iasl -d $t.dat"; cat "$GVM_TEST_TMP/iasl.$t"; fail=1; }
	done
	grep -q "Proximity Domain : 00000001" "$GVM_TEST_TMP/acpi/SRAT.dsl" ||
		{ echo "FAIL: the SRAT has no node 1"; fail=1; }
fi
exit $fail
