#include "vmm/iobus.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

void io_bus_init(struct io_bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

void io_bus_destroy(struct io_bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nr = bus->cap = 0;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, io_handler_fn fn,
		    void *dev, unsigned flags, const char *name)
{
	unsigned pos = 0;

	if (!len || base + len < base) {
		pr_err("%s range %s at 0x%llx: bad length %llu", bus->name, name,
		       (unsigned long long)base, (unsigned long long)len);
		return -1;
	}
	while (pos < bus->nr && bus->ranges[pos].base < base)
		pos++;
	for (unsigned i = pos ? pos - 1 : 0; i < bus->nr && i <= pos; i++) {
		const struct io_range *r = &bus->ranges[i];

		if (base < r->base + r->len && r->base < base + len) {
			pr_err("%s range %s [0x%llx, 0x%llx) overlaps %s", bus->name, name,
			       (unsigned long long)base, (unsigned long long)(base + len),
			       r->name);
			return -1;
		}
	}
	if (bus->nr == bus->cap) {
		unsigned cap = bus->cap ? 2 * bus->cap : 16;
		struct io_range *n = realloc(bus->ranges, cap * sizeof(*n));

		if (!n)
			die("out of memory registering %s range %s", bus->name, name);
		bus->ranges = n;
		bus->cap = cap;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->nr - pos) * sizeof(*bus->ranges));
	bus->ranges[pos] = (struct io_range){
		.base = base, .len = len, .fn = fn, .dev = dev, .flags = flags, .name = name,
	};
	bus->nr++;
	return 0;
}

void io_bus_set_forwarder(struct io_bus *bus, io_forward_fn fn, void *dev)
{
	bus->forward = fn;
	bus->forward_dev = dev;
}

const struct io_range *io_bus_find(const struct io_bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nr;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct io_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool io_bus_dispatch(const struct io_bus *bus, struct io_access *a)
{
	const struct io_range *r = io_bus_find(bus, a->addr);

	if (bus->forward && !(r && (r->flags & IO_LOCAL))) {
		a->off = r ? a->addr - r->base : 0;
		return bus->forward(bus->forward_dev, a);
	}
	if (!r) {
		if (!a->write)
			memset(a->data, 0xff, a->len);
		return false;
	}
	a->off = a->addr - r->base;
	r->fn(r->dev, a);
	return true;
}

unsigned io_bus_dispatch_string(const struct io_bus *bus, struct io_access *a, unsigned count)
{
	const struct io_range *r = io_bus_find(bus, a->addr);
	uint8_t *data = a->data;
	unsigned len = a->len, unclaimed = 0;

	if (count > 1 && a->write && len == 1 && r && (r->flags & IO_STRING) && !bus->forward) {
		a->len = count;
		a->off = a->addr - r->base;
		r->fn(r->dev, a);
		a->len = len;
		return 0;
	}
	for (unsigned i = 0; i < count; i++) {
		a->data = data + (size_t)i * len;
		unclaimed += !io_bus_dispatch(bus, a);
	}
	a->data = data;
	return unclaimed;
}
