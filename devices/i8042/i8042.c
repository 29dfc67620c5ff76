/* i8042: just enough of the PC keyboard controller for the reset path real PCs use. A guest
 * writing command 0xFE (pulse the reset line) to port 0x64 resets the machine: the run ends
 * with status 3 (SMOL_STATUS_REBOOT), or the machine starts again with on_reboot = restart.
 * Status reads say "no data, input buffer empty, self-test passed"; no keyboard is attached.
 * Ports 0x60 (data) and 0x64 (status/command); no keys.
 * Snapshots: the controller has no state (every read is constant); version 1 is zero bytes. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <smolvm/sdk.h>

#include "dev-snap.h"

#define I8042_DATA 0x60
#define I8042_CMD 0x64
#define I8042_STATUS_SYS 0x04 /* system flag: self-test passed */
#define I8042_CMD_RESET 0xfe

struct i8042 {
	const struct smol_host *host;
	struct smol_dev *dev;
};

static uint64_t data_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	return 0; /* no keyboard: nothing to read */
}

static uint64_t status_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	return I8042_STATUS_SYS; /* output buffer empty, input buffer empty, self-test passed */
}

static void cmd_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct i8042 *k = opaque;
	(void)offset;
	(void)size;
	if ((value & 0xff) == I8042_CMD_RESET) {
		k->host->log(k->dev, SMOL_LOG_DEBUG, "reset requested (0xfe to port 0x64)");
		k->host->request_reset(k->dev);
	}
}

static void data_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)opaque;
	(void)offset;
	(void)size;
	(void)value; /* no keyboard to talk to */
}

static const struct smol_io_ops data_io = { .read = data_read, .write = data_write };
static const struct smol_io_ops cmd_io = { .read = status_read, .write = cmd_write };

static int kbd_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                      void **state)
{
	(void)flags;
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->host = host;
	k->dev = dev;
	*state = k;
	int r = host->map_pio(dev, I8042_DATA, 1, &data_io, k);
	if (r == 0)
		r = host->map_pio(dev, I8042_CMD, 1, &cmd_io, k);
	return r;
}

static void kbd_destroy(void *state)
{
	free(state);
}

#define KBD_STATE_VERSION 1

static int kbd_save(void *state, struct smol_snap_writer *w)
{
	struct i8042 *k = state;
	k->host->snap_set_version(w, KBD_STATE_VERSION);
	return 0; /* nothing to save */
}

static int kbd_load(void *state, struct smol_snap_reader *r)
{
	struct i8042 *k = state;
	return dev_snap_load_empty(k->host, k->dev, r, KBD_STATE_VERSION);
}

static const struct smol_device_ops kbd_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = kbd_create,
	.destroy = kbd_destroy,
	.save = kbd_save,
	.load = kbd_load,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "i8042",
            "PC keyboard controller, reset line only: 0xFE to port 0x64 is a reboot (status 3, or "
            "a restart)",
            &kbd_ops);
