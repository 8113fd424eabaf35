#!/bin/bash
# timeout: 300
# x2APIC (--cpu-features ...,+x2apic, or more than 255 vCPUs) with the
# VMM's x2APIC test guest (tests/vmm/x2apic.S), on one instance and over 2
# and 4: the boot CPU
# turns x2APIC on through IA32_APIC_BASE and reads its ID and LDR from the
# MSRs, three accesses the SDM refuses raise #GP, a SELF IPI and a logical
# IPI to itself arrive, and the APs it starts through the 64-bit ICR turn
# x2APIC on themselves (on the other instances too, whose destination
# changes must reach every instance) and answer by x2APIC ID.  Then 260
# and 1024 vCPUs over 4 instances, most of them halted once up, without
# +x2apic (APIC IDs above 254 need it: gvm adds it): every AP up, the
# largest APIC ID as the topology has it, gvm topo saying x2APIC.  Without
# +x2apic and with 255 vCPUs or fewer, the guest finds no x2APIC in CPUID.
. "$GVM_TOP/tests/cluster/lib.sh"
cluster_need
guest=$GVM_BUILD/tests/vmm/x2apic.elf
[ -f "$guest" ] || fail "no $guest: run make tests"
log=$GVM_TEST_TMP/x2apic.log

for shape in "4 1" "4 2" "4 4"; do
	set -- $shape
	aps=$(($1 - 1))
	nodes=()
	[ "$2" = 1 ] || nodes=(--nodes "$2")
	timeout 120 "$GVM" run "${nodes[@]}" --kernel "$guest" --mem $((64 * $2))M --vcpus "$1" \
		--numa "$2" --cpu-features auto,+x2apic --stats --append "$aps" >"$log" 2>&1 </dev/null
	rc=$?
	cat "$log"
	[ $rc -eq 0 ] && grep -qx "x2apic: bsp id 0" "$log" && grep -qx "x2apic: bsp ldr 1" "$log" &&
		grep -qx "x2apic: gp 3" "$log" && grep -qx "x2apic: self ipis ok" "$log" &&
		grep -qx "x2apic: aps $aps" "$log" && grep -qx "x2apic: max ap id $aps" "$log" &&
		grep -qx "x2apic: ipis ok" "$log" &&
		grep -qx "x2apic: all ok" "$log" || fail "$1 vCPUs over $2 instances: status $rc"
	grep -qE 'stats: +MSR \(x2APIC\) +[1-9]' "$log" ||
		fail "$1 vCPUs over $2 instances: --stats counts no MSR exit"
	echo "ok: x2APIC, $1 vCPUs over $2 instance(s)"
done

# vCPUs, instances, the largest APIC ID (packages of 65 vCPUs: 7 core bits)
for shape in "260 4 448" "1024 4 1023"; do
	set -- $shape
	aps=$(($1 - 1))
	"$GVM" topo --vcpus "$1" --numa "$2" --mem 256M >"$log" 2>&1 &&
		grep -qx "apic: x2APIC (APIC IDs above 254; MADT and SRAT x2APIC entries)" "$log" ||
		{ cat "$log"; fail "gvm topo --vcpus $1: no x2APIC line"; }
	timeout 200 "$GVM" run --nodes "$2" --kernel "$guest" --mem 256M --vcpus "$1" \
		--append "$aps" >"$log" 2>&1 </dev/null
	rc=$?
	grep -v -e 'halted with interrupts off' -e 'waiting for its start-up IPI' "$log"
	[ $rc -eq 0 ] && grep -qx "x2apic: aps $aps" "$log" && grep -qx "x2apic: max ap id $3" "$log" &&
		grep -qx "x2apic: ipis ok" "$log" && grep -qx "x2apic: all ok" "$log" ||
		fail "$1 vCPUs over $2 instances: status $rc"
	echo "ok: $1 vCPUs over $2 instances, x2APIC without +x2apic, APIC IDs up to $3"
done

timeout 120 "$GVM" run --kernel "$guest" --mem 64M --vcpus 2 --append 1 >"$log" 2>&1 </dev/null
rc=$?
cat "$log"
[ $rc -eq 3 ] && grep -qx "x2apic: not offered" "$log" ||
	fail "without +x2apic: status $rc, not 3 (no x2APIC in CPUID)"
echo "ok: no x2APIC without +x2apic"
