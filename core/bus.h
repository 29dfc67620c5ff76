/* bus.h: MMIO and port-I/O address spaces: ranges owned by devices, overlap checks, dispatch. */
#ifndef SMOLVM_BUS_H
#define SMOLVM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

struct smol_dev;

/** One mapped range. @c dev is NULL for ranges the core reserves (LAPIC, IOAPIC). */
struct bus_range {
	uint64_t base, len;
	const struct smol_io_ops *ops;
	void *opaque;
	struct smol_dev *dev;
	const char *owner; /**< name for messages */
};

/** An address space: ranges sorted by base, fixed once the machine runs. */
struct bus {
	const char *name; /**< "mmio" or "pio" */
	uint64_t limit; /**< one past the highest address */
	struct bus_range *r;
	size_t n, cap;
	bool is_pio; /**< the port space (named "pio"): accesses count as a device's PIO */
	uint64_t unhandled; /**< accesses that hit no range (for -v, `ctl stats`) */
};

void bus_init(struct bus *b, const char *name, uint64_t limit);
void bus_free(struct bus *b);

/**
 * Adds [base, base+len). -EINVAL for an empty or out-of-space range, -EEXIST when it
 * overlaps an existing range (then *conflict points at it).
 */
int bus_add(struct bus *b, uint64_t base, uint64_t len, const struct smol_io_ops *ops, void *opaque,
            struct smol_dev *dev, const char *owner, const struct bus_range **conflict);

/** Removes every range owned by @p dev. */
void bus_remove_dev(struct bus *b, struct smol_dev *dev);

/** Finds the range holding @p addr, or NULL. */
const struct bus_range *bus_find(const struct bus *b, uint64_t addr);

/**
 * Finds a free, @p align-aligned window of @p len bytes within [lo, hi).
 * @return 0 and *out, or -ENOSPC
 */
int bus_find_free(const struct bus *b, uint64_t lo, uint64_t hi, uint64_t len, uint64_t align,
                  uint64_t *out);

/**
 * Performs one access of @p size bytes (1, 2, 4, 8) at @p addr: calls the owning device's
 * handler under its lock. A read fills @p data (all ones where nothing is mapped).
 * @return true if a range handled it
 */
bool bus_access(struct bus *b, uint64_t addr, unsigned size, bool is_write, uint8_t *data);

#endif
