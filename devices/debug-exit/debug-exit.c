/* debug-exit: a guest write of byte V to the port ends the run, and `smolvm run` exits with
 * status V. Four ports wide like QEMU's isa-debug-exit (iosize=4) unless `size` says fewer (1:
 * a snapshot-port can sit at 0xf5 beside it); only the low byte counts.
 * Keys: port (default 0xf4), size (1, 2 or 4; default 4).
 * Snapshots: the device has no state; version 1 is zero bytes. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <smolvm/sdk.h>

#include "dev-snap.h"

struct debug_exit {
	const struct smol_host *host;
	struct smol_dev *dev;
};

#define DEBUG_EXIT_PORTS 4 /* the default size */

static uint64_t de_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	return 0;
}

static void de_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct debug_exit *d = opaque;
	(void)offset;
	(void)size;
	d->host->log(d->dev, SMOL_LOG_DEBUG, "guest wrote %u: ending the run",
	             (unsigned)(value & 0xff));
	d->host->request_exit(d->dev, (int)(value & 0xff));
}

static const struct smol_io_ops de_io = { .read = de_read, .write = de_write };

static int de_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                     void **state)
{
	uint64_t port, size;
	(void)flags;
	if (host->cfg_u64(dev, "port", 0xf4, &port) < 0 ||
	    host->cfg_u64(dev, "size", DEBUG_EXIT_PORTS, &size) < 0)
		return -EINVAL;
	if (size != 1 && size != 2 && size != 4) {
		host->cfg_error(dev, "size", "%llu ports: 1, 2 or 4", (unsigned long long)size);
		return -EINVAL;
	}
	if (port > 0x10000 - size) {
		host->cfg_error(dev, "port", "0x%llx is not the first of %llu I/O ports (0-0x%llx)",
		                (unsigned long long)port, (unsigned long long)size,
		                (unsigned long long)(0x10000 - size));
		return -EINVAL;
	}
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->host = host;
	d->dev = dev;
	*state = d;
	return host->map_pio(dev, (uint16_t)port, (uint16_t)size, &de_io, d);
}

static void de_destroy(void *state)
{
	free(state);
}

#define DE_STATE_VERSION 1

static int de_save(void *state, struct smol_snap_writer *w)
{
	struct debug_exit *d = state;
	d->host->snap_set_version(w, DE_STATE_VERSION);
	return 0; /* nothing to save */
}

static int de_load(void *state, struct smol_snap_reader *r)
{
	struct debug_exit *d = state;
	return dev_snap_load_empty(d->host, d->dev, r, DE_STATE_VERSION);
}

static const struct smol_device_ops de_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = de_create,
	.destroy = de_destroy,
	.save = de_save,
	.load = de_load,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "debug-exit",
            "guest-chosen exit status: a write of byte V to the port ends the run with status V",
            &de_ops);
