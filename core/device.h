/* device.h: device instances and the host table (struct smol_host) handed to device plugins. */
#ifndef SMOLVM_DEVICE_H
#define SMOLVM_DEVICE_H

#include <pthread.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <smolvm/sdk.h>

#include "config.h"
#include "plugin.h"

struct machine;

#define DEV_MAX_RANGES 16
#define DEV_MAX_IRQS 8

/** The core's side of one device instance (opaque to plugins). */
struct smol_dev {
	char *name; /**< [device NAME] */
	char *label; /**< "uart-16550 device 'com1'" for messages */
	struct machine *m;
	struct cfg_section *sec;
	struct plugin *plugin;
	const struct smol_device_ops *ops;
	void *state;
	pthread_mutex_t lock;
	int cfg_errors; /**< config problems reported through the host table */
	/* what it claimed, for `smolvm check` */
	struct {
		uint64_t base, len;
		bool pio;
	} ranges[DEV_MAX_RANGES];
	int n_ranges;
	uint32_t irqs[DEV_MAX_IRQS];
	int n_irqs;
	/* guest accesses served by its handlers (bus_access; atomic, read by `ctl stats`) */
	uint64_t mmio_reads, mmio_writes, pio_reads, pio_writes;
};

/** True when a plugin's ops table (of its own struct_size) is long enough to hold @p field. */
#define DEV_HAS_OP(ops, field)                                                                     \
	((ops)->struct_size >= offsetof(struct smol_device_ops, field) + sizeof((ops)->field))

/** An op of ABI 1.3 or later that device @p d provides: its plugin says 1.3 or later (slots a
 * 1.2 plugin left reserved are never read), its table holds @p field, and it is set. */
#define DEV_HAS_OP_1_3(d, field) DEV_HAS_OP_SINCE(d, 3, field)
/** The same for an op of ABI 1.@p minor or later. */
#define DEV_HAS_OP_SINCE(d, minor, field)                                                          \
	((d)->plugin->desc->abi_minor >= (minor) && DEV_HAS_OP((d)->ops, field) && (d)->ops->field)

/**
 * Reports "FILE:LINE: <device label>: message" about @p kv (NULL: the device's section) and
 * counts it against the device, so create() failing after it is not reported twice.
 */
void dev_error(struct smol_dev *dev, const struct cfg_kv *kv, const char *fmt, ...)
        SMOL_PRINTF(3, 4);

/** The one host table every device gets. */
extern const struct smol_host dev_host_table;

/** Creates every [device NAME] of the machine; reports problems as file:line. 0 or -EINVAL. */
int dev_create_all(struct machine *m);
/** Destroys every device (reverse order). */
void dev_destroy_all(struct machine *m);
/** Resets every device that has a reset op. */
void dev_reset_all(struct machine *m);

/** Locks/unlocks a device's callback lock (NULL: no-op). */
static inline void dev_lock(struct smol_dev *d)
{
	if (d)
		pthread_mutex_lock(&d->lock);
}
static inline void dev_unlock(struct smol_dev *d)
{
	if (d)
		pthread_mutex_unlock(&d->lock);
}

#endif
