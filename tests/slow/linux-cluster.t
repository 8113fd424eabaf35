#!/bin/bash
# timeout: 900
# The Linux guest image over 2 gvm instances (gvm run --nodes 2), each
# running one vCPU and holding one NUMA node's RAM: every check of
# linux-boot.t (Linux reads the SRAT and SLIT gvm wrote, puts each vCPU and
# each node's memory where gvm said, brings up both vCPUs across instances,
# runs /init; with hardware virtualization, the job and its status).
GVM_LINUX_BOOT_INSTANCES=2 exec "$GVM_TOP/tests/slow/linux-boot.t"
