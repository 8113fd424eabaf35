/* Interim stand-ins for the platform part of issue #3; removed when it lands. */
#ifndef GVM_VMM_INTERIM_H
#define GVM_VMM_INTERIM_H

#include <stdio.h>

#include "vmm/topo.h"

void interim_topo_print(FILE *f, const struct vm_topology *t);

#endif
