/*
 * What vmm/cluster.c and vmm/cluster-io.c link against besides their
 * checks, for the cluster-msg fuzz target: the VM, the APIC bus, the mesh,
 * the send queues (common/outq.c), the DSM and the clock
 * (vmm/cluster-time.c), which only the handlers, the threads and the set-up
 * call.  The target calls the checks alone, so
 * every one of these aborts.  They are aliases without prototypes: a check
 * that reached one would be a bug whatever its arguments, and the clock's
 * entry points change with its code.
 */
#include <stdlib.h>

void fuzz_unreachable(void);

void fuzz_unreachable(void)
{
	abort();
}

#define UNREACHABLE(name) void name(void) __attribute__((alias("fuzz_unreachable")))

UNREACHABLE(apic_bus_attach);
UNREACHABLE(apic_bus_set_dest);
UNREACHABLE(ioapic_eoi);
UNREACHABLE(vm_ask_report);
UNREACHABLE(vm_stop);
UNREACHABLE(dsm_error);
UNREACHABLE(mesh_fd);
UNREACHABLE(mesh_seal);
UNREACHABLE(seal_tag);
UNREACHABLE(seal_check);
UNREACHABLE(mesh_nr_nodes);
UNREACHABLE(mesh_peer_name);
UNREACHABLE(mesh_rank);
UNREACHABLE(mesh_shutdown);
UNREACHABLE(outq_new);
UNREACHABLE(outq_attach);
UNREACHABLE(outq_start);
UNREACHABLE(outq_send);
UNREACHABLE(outq_set_down);
UNREACHABLE(outq_is_down);
UNREACHABLE(outq_drain);
UNREACHABLE(outq_stop);
UNREACHABLE(outq_free);
UNREACHABLE(cl_time_ping);
UNREACHABLE(cl_time_pong);
UNREACHABLE(cl_time_lead);
UNREACHABLE(cl_clock_start);
UNREACHABLE(cl_clock_stop);
