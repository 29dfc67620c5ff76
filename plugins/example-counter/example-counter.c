/*
 * example-counter: a custom device written in C against the installed smolvm SDK only.
 * Build it out of tree:  make -C plugins/example-counter   (uses pkg-config smolvm-sdk)
 *
 * Guest interface, 8 I/O ports at `port` (default 0x510):
 *   +0 (32-bit)  read: the counter, which then advances by `step`; write: set the counter
 *   +4 (32-bit)  read: 0x4c4f4d53 ("SMOL"), the device's magic
 * Keys: port (default 0x510), step (default 1).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <smolvm/sdk.h>

#define COUNTER_MAGIC 0x4c4f4d53u

struct counter {
	const struct smol_host *host;
	struct smol_dev *dev;
	uint32_t value;
	uint32_t step;
};

static uint64_t counter_read(void *opaque, uint64_t offset, unsigned size)
{
	struct counter *c = opaque;
	(void)size;
	if (offset == 0) {
		uint32_t v = c->value;
		c->value += c->step;
		return v;
	}
	if (offset == 4)
		return COUNTER_MAGIC;
	return 0;
}

static void counter_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct counter *c = opaque;
	(void)size;
	if (offset == 0)
		c->value = (uint32_t)value;
}

static const struct smol_io_ops counter_io = { .read = counter_read, .write = counter_write };

static int counter_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                          void **state)
{
	uint64_t port, step;
	(void)flags;
	if (host->cfg_u64(dev, "port", 0x510, &port) < 0 ||
	    host->cfg_u64(dev, "step", 1, &step) < 0)
		return -EINVAL;
	if (port > 0xfff8) {
		host->cfg_error(dev, "port", "0x%llx leaves no room for 8 ports",
		                (unsigned long long)port);
		return -EINVAL;
	}
	if (step > UINT32_MAX) {
		host->cfg_error(dev, "step", "must fit in 32 bits");
		return -EINVAL;
	}
	struct counter *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->host = host;
	c->dev = dev;
	c->step = (uint32_t)step;
	*state = c;
	host->log(dev, SMOL_LOG_DEBUG, "counter at port 0x%llx, step %u", (unsigned long long)port,
	          c->step);
	return host->map_pio(dev, (uint16_t)port, 8, &counter_io, c);
}

static void counter_reset(void *state)
{
	((struct counter *)state)->value = 0;
}

static void counter_destroy(void *state)
{
	free(state);
}

static const struct smol_device_ops counter_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = counter_create,
	.destroy = counter_destroy,
	.reset = counter_reset,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "example-counter",
            "example custom device in C: a counter on I/O ports", &counter_ops);
