/* bus.c: MMIO and port-I/O address spaces. Ranges are added before the machine runs and never
 * change afterwards, so lookups from vCPU threads need no lock; each access runs under the
 * owning device's lock (see device.c). */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

void bus_init(struct bus *b, const char *name, uint64_t limit)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	b->limit = limit;
	b->is_pio = strcmp(name, "pio") == 0;
}

void bus_free(struct bus *b)
{
	free(b->r);
	b->r = NULL;
	b->n = b->cap = 0;
}

int bus_add(struct bus *b, uint64_t base, uint64_t len, const struct smol_io_ops *ops, void *opaque,
            struct smol_dev *dev, const char *owner, const struct bus_range **conflict)
{
	if (conflict)
		*conflict = NULL;
	if (len == 0 || base >= b->limit || len > b->limit - base)
		return -EINVAL;
	size_t i = 0;
	while (i < b->n && b->r[i].base < base)
		i++;
	/* neighbours: the one before must end before base; the one at i must start after end */
	if (i > 0 && b->r[i - 1].base + b->r[i - 1].len > base) {
		if (conflict)
			*conflict = &b->r[i - 1];
		return -EEXIST;
	}
	if (i < b->n && b->r[i].base < base + len) {
		if (conflict)
			*conflict = &b->r[i];
		return -EEXIST;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *r = realloc(b->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->r = r;
		b->cap = cap;
	}
	memmove(&b->r[i + 1], &b->r[i], (b->n - i) * sizeof(*b->r));
	b->r[i] = (struct bus_range){
		.base = base, .len = len, .ops = ops, .opaque = opaque, .dev = dev, .owner = owner
	};
	b->n++;
	return 0;
}

void bus_remove_dev(struct bus *b, struct smol_dev *dev)
{
	size_t j = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->r[i].dev != dev)
			b->r[j++] = b->r[i];
	b->n = j;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr)
{
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->r[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

int bus_find_free(const struct bus *b, uint64_t lo, uint64_t hi, uint64_t len, uint64_t align,
                  uint64_t *out)
{
	uint64_t cand = (lo + align - 1) & ~(align - 1);
	for (size_t i = 0; i <= b->n; i++) {
		uint64_t next = i < b->n ? b->r[i].base : hi;
		if (i < b->n && b->r[i].base + b->r[i].len <= cand)
			continue;
		if (next > hi)
			next = hi;
		if (cand + len >= cand && cand + len <= next) {
			*out = cand;
			return 0;
		}
		if (i == b->n)
			break;
		cand = (b->r[i].base + b->r[i].len + align - 1) & ~(align - 1);
		if (cand >= hi)
			break;
	}
	return -ENOSPC;
}

bool bus_access(struct bus *b, uint64_t addr, unsigned size, bool is_write, uint8_t *data)
{
	const struct bus_range *r = bus_find(b, addr);
	if (size > 8)
		size = 8;
	/* an access running past the range's end (an outl to its last port) is not the
	 * device's: handlers only ever see offset + size <= len */
	if (r && (addr - r->base) + size > r->len)
		r = NULL;
	if (!r || !r->ops) {
		if (!is_write)
			memset(data, 0xff, size);
		__atomic_add_fetch(&b->unhandled, 1, __ATOMIC_RELAXED);
		return false;
	}
	uint64_t off = addr - r->base;
	if (r->dev) {
		struct smol_dev *d = r->dev;
		uint64_t *count = b->is_pio ? (is_write ? &d->pio_writes : &d->pio_reads)
		                            : (is_write ? &d->mmio_writes : &d->mmio_reads);
		__atomic_add_fetch(count, 1, __ATOMIC_RELAXED);
	}
	if (is_write) {
		uint64_t v = 0;
		memcpy(&v, data, size); /* little-endian host */
		if (r->ops->write) {
			dev_lock(r->dev);
			r->ops->write(r->opaque, off, size, v);
			dev_unlock(r->dev);
		}
	} else {
		uint64_t v = ~0ull;
		if (r->ops->read) {
			dev_lock(r->dev);
			v = r->ops->read(r->opaque, off, size);
			dev_unlock(r->dev);
		}
		memcpy(data, &v, size);
	}
	return true;
}
