/*
 * example-counter: a custom device written in C against the installed smolvm SDK only.
 * Build it out of tree:  make -C plugins/example-counter   (uses pkg-config smolvm-sdk)
 *
 * Guest interface, 8 I/O ports at `port` (default 0x510):
 *   +0 (32-bit)  read: the counter, which then advances by `step`; write: set the counter
 *   +4 (32-bit)  read: 0x4c4f4d53 ("SMOL"), the device's magic
 * Keys: port (default 0x510), step (default 1).
 *
 * Snapshots (SDK 1.3): save() writes the device's state, load() puts it back into a device
 * the restoring smolvm just created from the configuration. The state is what the guest can
 * see and the configuration cannot give back: here the counter. `step` is configuration, not
 * state: a restored machine counts with the step its configuration says now.
 *
 * The state has a version of its own, and every field is written at a fixed width in a fixed
 * byte order (little-endian), one by one: never a raw struct, whose layout a compiler or a
 * later version of this file may change. When a later version adds a field, it bumps
 * COUNTER_STATE_VERSION, and load() keeps reading every older version it knows.
 *   version 1:  u32 counter (little-endian)
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <smolvm/sdk.h>

#define COUNTER_MAGIC 0x4c4f4d53u
#define COUNTER_STATE_VERSION 1

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

/* Fixed-width little-endian fields, whatever the host's byte order. */
static int put_le32(struct counter *c, struct smol_snap_writer *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	return c->host->snap_write(w, b, sizeof(b));
}

static int get_le32(struct counter *c, struct smol_snap_reader *r, uint32_t *v)
{
	uint8_t b[4];
	int ret = c->host->snap_read(r, b, sizeof(b)); /* -EBADMSG when the state is short */
	if (ret)
		return ret;
	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

/* Runs with the vCPUs stopped: nothing changes the state meanwhile. */
static int counter_save(void *state, struct smol_snap_writer *w)
{
	struct counter *c = state;
	c->host->snap_set_version(w, COUNTER_STATE_VERSION); /* first, before any write */
	return put_le32(c, w, c->value);
}

/* A snapshot file may be damaged or hostile: check everything before using it. */
static int counter_load(void *state, struct smol_snap_reader *r)
{
	struct counter *c = state;
	uint32_t version = c->host->snap_version(r), value;
	if (version > COUNTER_STATE_VERSION) {
		c->host->log(c->dev, SMOL_LOG_ERROR,
		             "state version %u is newer than this plugin's %u: upgrade the plugin",
		             version, COUNTER_STATE_VERSION);
		return -ENOTSUP;
	}
	if (version < 1) {
		c->host->log(c->dev, SMOL_LOG_ERROR, "state version %u does not exist", version);
		return -EINVAL;
	}
	int ret = get_le32(c, r, &value);
	if (ret) {
		c->host->log(c->dev, SMOL_LOG_ERROR, "state: truncated at the counter");
		return ret;
	}
	/* Every u32 is a valid counter; a field with fewer valid values would be checked here.
	 * Bytes left over are refused by the core. */
	c->value = value;
	return 0;
}

static const struct smol_device_ops counter_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = counter_create,
	.destroy = counter_destroy,
	.reset = counter_reset,
	.save = counter_save,
	.load = counter_load,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "example-counter",
            "example custom device in C: a counter on I/O ports", &counter_ops);
