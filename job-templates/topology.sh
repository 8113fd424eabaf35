#!/bin/sh
# The machine a giantvm guest sees, as its own tools see it: runs hwloc's
# lstopo-no-graphics and numactl -H in the guest and checks that both agree
# with the machine gvm meant to build ($GVM_TOPOLOGY_XML, the hwloc XML of
# `gvm topo --xml`): the same NUMA nodes, the same CPUs in each, each node's
# memory (less what the guest kernel keeps for itself), and the same
# distances.
#
#   gvm run --nodes 2 --vcpus 4 --mem 1G -- job-templates/topology.sh
#   sbatch -N2 --giantvm job-templates/topology.sh
#
# usage: topology.sh
#
# Output: lstopo's view (console), numactl -H, one 'topology: check' line
# per comparison, then, last:
#   topology: PASS nodes=N cpus=C checks=K
#   topology: FAIL nodes=N cpus=C checks=K failed=F
# Exit status 0 (PASS), 1 (a mismatch), 2 (no $GVM_TOPOLOGY_XML: not in a
# gvm guest, or a tool missing), or the status of lstopo or numactl when one
# of them failed.  The guest's view is left in the output
# directory ($GVM_OUTPUT_DIR, which gvm hands back): topology-guest.xml
# (lstopo --of xml) and topology-numactl.txt.
#
# Memory: the kernel keeps part of each node for itself (its image, the
# page structures: 64 bytes per 4 KiB page, about 1.6%, the low megabyte),
# so a node may show less than gvm gave it, by at most 32 MiB + 1/32 of it,
# and never more.
#
# Few processes on purpose: where guest kernel code is emulated every
# process costs about a second, and lstopo's scan of /sys several.  lstopo
# scans once (to XML), and one awk compares the three descriptions.
set -u

fail2() { echo "topology: FAIL $*"; exit 2; }
[ $# -eq 0 ] || { echo "usage: topology.sh" >&2; exit 2; }
ref=${GVM_TOPOLOGY_XML:-}
[ -n "$ref" ] && [ -r "$ref" ] ||
	fail2 "reason=no-reference (no \$GVM_TOPOLOGY_XML: run this in a gvm guest)"
command -v lstopo-no-graphics >/dev/null 2>&1 || fail2 "reason=no-lstopo-no-graphics"
command -v numactl >/dev/null 2>&1 || fail2 "reason=no-numactl"
out=${GVM_OUTPUT_DIR:-${TMPDIR:-/tmp}}
xml=$out/topology-guest.xml
num=$out/topology-numactl.txt

# A tool that fails ends this with its own status (128+N: killed by signal N).
tool_failed() { echo "topology: FAIL reason=$1-failed status=$2"; exit "$2"; }
lstopo-no-graphics --of xml >"$xml" || tool_failed lstopo $?
numactl -H >"$num" || tool_failed numactl $?
echo "topology: --- lstopo-no-graphics (the guest's view, from $xml)"
lstopo-no-graphics --input "$xml" --of console || tool_failed lstopo-input $?

# One awk for the three descriptions: gvm's XML (file 1), the guest's hwloc
# XML (file 2), numactl -H (file 3, also printed).  For each it gathers, per
# NUMA node (by OS index): its CPUs (the PUs whose nodeset is that node), its
# memory in bytes, and its row of distances.
exec awk -v vcpus="${GVM_VCPUS:-}" -v nnodes="${GVM_NUMA_NODES:-}" '
function attr(s, name,   v) {
	if (!match(s, " " name "=\"[^\"]*\""))
		return ""
	v = substr(s, RSTART + length(name) + 3, RLENGTH - length(name) - 4)
	return v
}
# the lowest bit set in an hwloc bitmap: 0x00000003, or 0x1,0x00000000 past 32 bits
function first_bit(mask,   hex, i, d, b) {
	gsub(/0x|,/, "", mask)
	hex = "0123456789abcdef"
	for (i = length(mask); i >= 1; i--) {
		d = index(hex, tolower(substr(mask, i, 1))) - 1
		# no power operator: the busybox awk of the guest is built without math
		for (b = 0; b < 4; b++) {
			if (d % 2)
				return (length(mask) - i) * 4 + b
			d = int(d / 2)
		}
	}
	return -1
}
function add_cpu(f, node, cpu) {
	has[f, node, cpu] = 1
	ncpus[f]++
	if (cpu > maxcpu) maxcpu = cpu
}
# the CPUs of a node, as a sorted list
function cpu_list(f, node,   c, s) {
	s = ""
	for (c = 0; c <= maxcpu; c++)
		if ((f, node, c) in has)
			s = s == "" ? c : s "," c
	return s == "" ? "none" : s
}
FNR == 1 { f++; indist = 0; numadist = 0 }
# --- the two XML files -------------------------------------------------------
f <= 2 && /<object type="NUMANode"/ {
	n = attr($0, "os_index")
	nodes[f] = nodes[f] " " n
	nnode[f]++
	mem[f, n] = attr($0, "local_memory")
}
f <= 2 && /<object type="PU"/ {
	add_cpu(f, first_bit(attr($0, "nodeset")), attr($0, "os_index"))
}
f <= 2 && /<distances2 / {
	indist = attr($0, "type") == "NUMANode" && attr($0, "name") ~ /^(NUMALatency)?$/
	nidx = 0; nval = 0
}
f <= 2 && indist && /<indexes / {
	s = $0; sub(/.*<indexes[^>]*>/, "", s); sub(/<.*/, "", s)
	k = split(s, a, " ")
	for (i = 1; i <= k; i++) idx[f, nidx++] = a[i]
}
f <= 2 && indist && /<u64values / {
	s = $0; sub(/.*<u64values[^>]*>/, "", s); sub(/<.*/, "", s)
	k = split(s, a, " ")
	for (i = 1; i <= k; i++) {
		dist[f, idx[f, int(nval / nidx)], idx[f, nval % nidx]] = a[i]
		nval++
	}
	hasdist[f] = 1
}
f <= 2 && /<\/distances2>/ { indist = 0 }
# --- numactl -H --------------------------------------------------------------
f == 3 && FNR == 1 { print "topology: --- numactl -H" }
f == 3 { print }
f == 3 && /^available:/ { navail = $2 }
f == 3 && /^node [0-9]+ cpus:/ {
	nodes[3] = nodes[3] " " $2
	nnode[3]++
	for (i = 4; i <= NF; i++) add_cpu(3, $2, $i)
}
f == 3 && /^node [0-9]+ size:/ { mem[3, $2] = $4 * 1048576 }
f == 3 && /^node distances:/ { numadist = 1; next }
f == 3 && numadist && /^node / { for (i = 2; i <= NF; i++) col[i] = $i; next }
f == 3 && numadist && /^ *[0-9]+:/ {
	r = $1; sub(/:/, "", r)
	for (i = 2; i <= NF; i++) dist[3, r, col[i]] = $i
	hasdist[3] = 1
}
function check(ok, what) {
	checks++
	if (!ok) failed++
	printf "topology: check %-44s %s\n", what, ok ? "ok" : "MISMATCH"
}
END {
	name[1] = "gvm"; name[2] = "lstopo"; name[3] = "numactl"
	print "topology: --- the guest against gvm (" ARGV[1] ")"
	check(nnode[1] > 0, "gvm describes NUMA nodes (" nnode[1] + 0 ")")
	if (nnodes != "")
		check(nnodes == nnode[1], "$GVM_NUMA_NODES=" nnodes ", as gvm describes")
	if (vcpus != "")
		check(vcpus == ncpus[1], "$GVM_VCPUS=" vcpus ", as gvm describes")
	for (t = 2; t <= 3; t++) {
		check(nodes[t] == nodes[1], sprintf("%s: nodes%s (gvm:%s)", name[t], nodes[t], nodes[1]))
	}
	check(navail == nnode[1], "numactl: available: " navail + 0 " nodes")
	k = split(nodes[1], nl, " ")
	for (i = 1; i <= k; i++) {
		n = nl[i]
		want = mem[1, n]
		slack = 33554432 + want / 32
		for (t = 2; t <= 3; t++) {
			check(cpu_list(t, n) == cpu_list(1, n), sprintf("%s: node %s cpus %s (gvm: %s)",
				name[t], n, cpu_list(t, n), cpu_list(1, n)))
			got = mem[t, n]
			# numactl rounds down to MiB
			ok = got != "" && got <= want && got + slack + (t == 3) * 1048576 >= want
			check(ok, sprintf("%s: node %s memory %d MiB (gvm: %d MiB)", name[t], n,
				got / 1048576, want / 1048576))
		}
		for (j = 1; j <= k; j++) {
			m = nl[j]
			# without a SLIT, Linux takes 10 for local and 20 for remote
			want = hasdist[1] ? dist[1, n, m] : n == m ? 10 : 20
			for (t = 2; t <= 3; t++)
				# hwloc reports no distances for a single node
				if (hasdist[t] || k > 1)
					check(dist[t, n, m] == want, sprintf("%s: distance %s-%s %s (gvm: %s)",
						name[t], n, m, dist[t, n, m], want))
		}
	}
	printf "topology: %s nodes=%d cpus=%d checks=%d%s\n", failed ? "FAIL" : "PASS", nnode[1],
		ncpus[1], checks, failed ? " failed=" failed : ""
	exit failed ? 1 : 0
}' "$ref" "$xml" "$num"
