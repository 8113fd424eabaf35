/*
 * Per-node memory: a bump allocator over the heap the kernel found in each
 * node, page aligned so that no two threads' data share a 4 KiB page (the
 * DSM moves whole pages).  Each node's cursor sits in its own page.
 */
#include "images/probe/user/ulib.h"

struct node_heap {
	uint64_t base, end;
	volatile uint64_t next;
} __attribute__((aligned(4096)));

static struct node_heap heaps[PROBE_ACPI_MAX_DOMAINS];

void node_alloc_init(void)
{
	struct probe_bootinfo *bi = &probe_bootinfo;

	for (uint32_t d = 0; d < bi->acpi.nr_domains; d++) {
		heaps[d].base = bi->heap[d].base;
		heaps[d].end = bi->heap[d].base + bi->heap[d].size;
		heaps[d].next = heaps[d].base;
	}
}

void *node_alloc(unsigned node, uint64_t size)
{
	struct node_heap *h = &heaps[node];
	uint64_t sz = (size + 4095) & ~4095ull, p;

	if (!sz)
		sz = 4096;
	p = atomic_xadd(&h->next, sz);
	if (p + sz > h->end || p + sz < p)
		return NULL;
	return (void *)p;
}

uint64_t node_alloc_mark(unsigned node)
{
	return heaps[node].next;
}

void node_alloc_release(unsigned node, uint64_t mark)
{
	heaps[node].next = mark;
}

uint64_t node_free(unsigned node)
{
	return heaps[node].next < heaps[node].end ? heaps[node].end - heaps[node].next : 0;
}
