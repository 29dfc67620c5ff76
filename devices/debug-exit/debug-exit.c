/* debug-exit: a guest write of byte V to the port ends the run, and `smolvm run` exits with
 * status V. Four ports wide like QEMU's isa-debug-exit (iosize=4); only the low byte counts.
 * Keys: port (default 0xf4). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <smolvm/sdk.h>

struct debug_exit {
	const struct smol_host *host;
	struct smol_dev *dev;
};

#define DEBUG_EXIT_PORTS 4

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
	uint64_t port;
	(void)flags;
	if (host->cfg_u64(dev, "port", 0xf4, &port) < 0)
		return -EINVAL;
	if (port > 0x10000 - DEBUG_EXIT_PORTS) {
		host->cfg_error(dev, "port", "0x%llx is not an I/O port (0-0xfffc)",
		                (unsigned long long)port);
		return -EINVAL;
	}
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->host = host;
	d->dev = dev;
	*state = d;
	return host->map_pio(dev, (uint16_t)port, DEBUG_EXIT_PORTS, &de_io, d);
}

static void de_destroy(void *state)
{
	free(state);
}

static const struct smol_device_ops de_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = de_create,
	.destroy = de_destroy,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "debug-exit",
            "guest-chosen exit status: a write of byte V to the port ends the run with status V",
            &de_ops);
