#!/bin/bash
# The ACPI tables, read by ACPICA's own tools for several topologies:
# - `iasl -d` disassembles every table without an error, warning or bad
#   checksum, and the disassembly shows the APIC IDs, proximity domains,
#   memory ranges and distances that the documented layout predicts
#   (computed here, independently of the C code);
# - `acpiexec` loads FADT, FACS, DSDT, MADT, SRAT and SLIT into the ACPICA
#   core that Linux also uses, without errors, and evaluates \_S5 and COM1.
# timeout: 240
set -u
tool=$GVM_BUILD/tests/tools/topo-tool
command -v iasl >/dev/null || { echo "SKIP: iasl not installed (apt-get install acpica-tools)"; exit 77; }
[ -x "$tool" ] || { echo "topo-tool not built: run make tests"; exit 1; }

fail=0
bad() { echo "FAIL [$case]: $*"; fail=1; }

GiB=$((1 << 30))
HOLE=$((3 * GiB))

bits() { local n=$1 b=0; while [ $((1 << b)) -lt "$n" ]; do b=$((b + 1)); done; echo $b; }

# The fields of every subtable of one type, as "value value ..." lines.
field() { # file label
	sed -n "s/^\[[0-9A-F]*h [0-9]* *[0-9]*\] *$2 : \([0-9A-Fa-f]*\).*/\1/p" "$1"
}

# A field of the subtables of one type only, one value a line.
sub_field() { # file type label
	awk -v ty="$2" -v l="$3" '
		{ line = $0; sub(/^\[[^]]*\] */, "", line); n = split(line, kv, " : ") }
		n == 2 && kv[1] == "Subtable Type" { cur = substr(kv[2], 1, 2); next }
		n == 2 && cur == ty && kv[1] == l { v = kv[2]; sub(/ .*/, "", v); print v }' "$1"
}

check_case() { # name nodes vcpus mem distance
	case=$1 nodes=$2 vcpus=$3 mem=$4 dist=$5
	local dir=$GVM_TEST_TMP/$case per=$(($3 / $2)) memsz=$(($4 * GiB))
	mkdir -p "$dir"
	local args=(--nodes "$nodes" --vcpus "$vcpus" --mem "${mem}G" --acpi "$dir")
	[ "$dist" != 20 ] && args+=(--distance "$dist")
	"$tool" "${args[@]}" || { bad "topo-tool failed"; return; }

	for t in RSDP XSDT FACP FACS DSDT APIC SRAT SLIT; do
		[ -s "$dir/$t.dat" ] || bad "$t.dat missing"
	done
	# iasl cannot load an RSDP from a file (it has no standard header); the
	# unit test and the guests read it.  Every other table goes through iasl.
	for t in XSDT FACP FACS DSDT APIC SRAT SLIT; do
		(cd "$dir" && iasl -d "$t.dat") >"$dir/$t.log" 2>&1 || bad "iasl -d $t.dat failed"
		[ -s "$dir/$t.dsl" ] || { bad "no $t.dsl"; cat "$dir/$t.log"; continue; }
		if grep -i -E "warning|error|incorrect|invalid" "$dir/$t.log" "$dir/$t.dsl"; then
			bad "iasl complains about $t"
		fi
	done

	# MADT: one LAPIC per vCPU, in order, with the bit-packed APIC IDs;
	# those above 254 in x2APIC entries (which come after: IDs grow).
	local b=$(bits "$per") want_ids="" want_pd="" want_x2=0 id
	for ((i = 0; i < vcpus; i++)); do
		id=$(((i / per) << b | (i % per)))
		if [ $id -gt 254 ]; then
			want_ids+=$(printf '%08X ' $id)
			want_pd+=$(printf '%08X ' $((i / per)))
			want_x2=1
		else
			want_ids+=$(printf '%02X ' $id)
			want_pd+=$(printf '%02X ' $((i / per)))
		fi
	done
	local got=$( (sub_field "$dir/APIC.dsl" 00 "Local Apic ID"
		sub_field "$dir/APIC.dsl" 09 "Processor x2Apic ID") | tr '\n' ' ')
	[ "$got" = "$want_ids" ] || bad "MADT APIC IDs: got '$got', want '$want_ids'"
	got=$( (sub_field "$dir/APIC.dsl" 00 "Processor ID"
		sub_field "$dir/APIC.dsl" 09 "Processor UID") | wc -l)
	[ "$got" = "$vcpus" ] || bad "MADT has $got processors, want $vcpus"
	got=$(sub_field "$dir/APIC.dsl" 0A "Interrupt Input LINT")
	[ "$got" = "$([ $want_x2 = 1 ] && echo 01)" ] ||
		bad "MADT: x2APIC NMI on LINT '$got' ($([ $want_x2 = 1 ] || echo "none ")wanted)"
	grep -q "Address : FEC00000" "$dir/APIC.dsl" || bad "MADT: no IOAPIC at 0xFEC00000"
	[ "$(grep -c 'Subtable Type : 02 \[Interrupt Source Override\]' "$dir/APIC.dsl")" = 2 ] ||
		bad "MADT: want 2 interrupt source overrides"
	grep -A2 "Source : 00" "$dir/APIC.dsl" | grep -q "Interrupt : 00000002" ||
		bad "MADT: IRQ 0 is not overridden to GSI 2"
	grep -A1 "Processor ID : FF" "$dir/APIC.dsl" >/dev/null &&
		grep -q "Interrupt Input LINT : 01" "$dir/APIC.dsl" || bad "MADT: no NMI on LINT1"

	# SRAT: each APIC ID in its node's proximity domain...
	got=$( (sub_field "$dir/SRAT.dsl" 00 "Apic ID"
		sub_field "$dir/SRAT.dsl" 02 "Apic ID") | tr '\n' ' ')
	[ "$got" = "$want_ids" ] || bad "SRAT APIC IDs: got '$got', want '$want_ids'"
	got=$( (sub_field "$dir/SRAT.dsl" 00 "Proximity Domain Low(8)"
		sub_field "$dir/SRAT.dsl" 02 "Proximity Domain") | tr '\n' ' ')
	[ "$got" = "$want_pd" ] || bad "SRAT CPU domains: got '$got', want '$want_pd'"
	# ...and each node's RAM, split at the 3-4 GiB hole, node 0 from 0.
	local want_mem="" per_mem=$((memsz / nodes))
	for ((n = 0; n < nodes; n++)); do
		local s=$((n * per_mem)) e=$(((n + 1) * per_mem))
		if [ $s -lt $HOLE ] && [ $e -gt $HOLE ]; then
			want_mem+=$(printf '%08X:%016X:%016X ' $n $s $((HOLE - s)))
			want_mem+=$(printf '%08X:%016X:%016X ' $n $((4 * GiB)) $((e - HOLE)))
		elif [ $s -ge $HOLE ]; then
			want_mem+=$(printf '%08X:%016X:%016X ' $n $((s + GiB)) $per_mem)
		else
			want_mem+=$(printf '%08X:%016X:%016X ' $n $s $per_mem)
		fi
	done
	got=$(paste -d: <(sub_field "$dir/SRAT.dsl" 01 "Proximity Domain") \
		<(field "$dir/SRAT.dsl" "Base Address") <(field "$dir/SRAT.dsl" "Address Length") |
		tr '\n' ' ')
	[ "$got" = "$want_mem" ] || bad "SRAT memory: got '$got', want '$want_mem'"

	# SLIT: 10 on the diagonal, the remote distance elsewhere.
	got=$(field "$dir/SLIT.dsl" "Localities")
	[ "$((16#$got))" = "$nodes" ] || bad "SLIT localities $got, want $nodes"
	for ((i = 0; i < nodes; i++)); do
		local row=""
		for ((j = 0; j < nodes; j++)); do
			row+=$(printf '%02X ' $([ $i = $j ] && echo 10 || echo "$dist"))
		done
		# iasl prints 16 distances per line; join the continuation lines.
		got=$(awk -v l="Locality $(printf '%3d' $i) :" '
			index($0, l) { on = 1; sub(/.*: /, ""); printf "%s ", $0; next }
			on && /^ +[0-9A-F][0-9A-F]( |$)/ { sub(/^ +/, ""); printf "%s ", $0; next }
			{ on = 0 }' "$dir/SLIT.dsl" | tr -s ' ')
		[ "$got" = "$row" ] || bad "SLIT row $i: got '$got', want '$row'"
	done

	# FADT: conventional, SCI 9, PM1 blocks at the documented ports, X_DSDT.
	grep -q "Hardware Reduced (V5) : 0" "$dir/FACP.dsl" || bad "FADT is hardware-reduced"
	grep -q "SCI Interrupt : 0009" "$dir/FACP.dsl" || bad "FADT: SCI is not 9"
	grep -q "PM1A Event Block Address : 00000600" "$dir/FACP.dsl" || bad "FADT: PM1a_EVT"
	grep -q "PM1A Control Block Address : 00000604" "$dir/FACP.dsl" || bad "FADT: PM1a_CNT"
	grep -q "DSDT Address : 00000000000E" "$dir/FACP.dsl" || bad "FADT: X_DSDT"
	# DSDT: COM1 and \_S5.
	grep -q 'EisaId ("PNP0501")' "$dir/DSDT.dsl" || bad "DSDT: no PNP0501"
	grep -q "0x03F8, *// Range Minimum" "$dir/DSDT.dsl" || bad "DSDT: COM1 not at 0x3F8"
	grep -A1 "IRQNoFlags" "$dir/DSDT.dsl" | grep -q "{4}" || bad "DSDT: COM1 not on IRQ 4"
	grep -q "Name (_S5, Package" "$dir/DSDT.dsl" || bad "DSDT: no _S5"
	# XSDT: FADT, MADT, SRAT, SLIT.
	[ "$(grep -c 'ACPI Table Address' "$dir/XSDT.dsl")" = 4 ] || bad "XSDT: want 4 entries"

	# ACPICA's core (as in Linux) loads the set and evaluates the AML.
	if command -v acpiexec >/dev/null; then
		(cd "$dir" && timeout 60 acpiexec -b 'evaluate \_S5; evaluate \_SB.COM1._CRS' \
			DSDT.dat FACP.dat FACS.dat APIC.dat SRAT.dat SLIT.dat) >"$dir/exec.log" 2>&1 ||
			bad "acpiexec failed"
		grep -E "ACPI (Error|Warning|Exception)|Firmware (Bug|Warning)" "$dir/exec.log" &&
			bad "acpiexec reports problems"
		grep -q "Contains 4 Elements" "$dir/exec.log" || bad "acpiexec: \\_S5 not a 4-package"
		grep -q "47 01 F8 03 F8 03 00 08 22 10 00 79 00" "$dir/exec.log" ||
			bad "acpiexec: COM1 _CRS is not IO 0x3f8/8 + IRQ 4"
	fi
	[ $fail = 0 ] && echo "ok: $case ($nodes nodes, $vcpus vCPUs, ${mem} GiB, distance $dist)"
}

check_case one-node 1 1 1 20
check_case two-nodes 2 4 2 20
check_case four-nodes 4 8 4 20
check_case above-4g 2 2 10 20
check_case split-node 3 6 6 31
check_case max-cpus 1 255 1 20
check_case max-cpus-2n 2 254 8 20
# x2APIC entries: APIC IDs 256 and above (2 x 150), and 1024 vCPUs in 4 nodes
check_case x2apic-2n 2 300 2 20
check_case x2apic-1024 4 1024 4 20
exit $fail
