/* The block the kernel fills for user mode: in the user image, so user mode reads it. */
#include "images/probe/abi.h"

struct probe_bootinfo probe_bootinfo __attribute__((aligned(4096)));
