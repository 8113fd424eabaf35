#!/bin/bash
# timeout: 300
# gvm run --nodes --integrity: the probe guest over 3 instances with every
# message between them sealed (control, I/O forwarding and the DSM's pages),
# judged as without it; each instance says so.  --integrity with the fabric
# transport, or without --nodes, is refused at once; instances that do not
# agree on it never form a VM (tests/unit/test-mesh.c), and a frame altered
# on the wire stops the VM (tests/net/integrity.t).
. "$GVM_TOP/tests/cluster/lib.sh"
log=$GVM_TEST_TMP/probe.log
CLUSTER_OPTS=--integrity
cluster_probe 3 3 384M
[ "$(grep -c "node: every message between instances is checked (--integrity)" "$log")" = 3 ] ||
	fail "not every one of 3 instances said its messages are checked"

cluster_refused "would carry guest RAM's pages unchecked: use --transport tcp with it" \
	--nodes 2 --kernel "$PROBE" --vcpus 2 --mem 256M --integrity --transport fabric
cluster_refused "--integrity checks the messages between instances: give --nodes too" \
	--kernel "$PROBE" --integrity
echo "ok: --integrity carries the guest over 3 instances; refused where it cannot apply"
