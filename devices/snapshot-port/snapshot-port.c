/* snapshot-port: one I/O port through which a guest takes its own snapshot (ABI 1.3).
 *
 * A guest write of any byte asks the core for a snapshot as the machine's [snapshot] section
 * says (smol_host::request_snapshot): every vCPU stops once the write has returned, so the
 * writer resumes at the next instruction, now and in every restore. Without a [snapshot]
 * section the core logs the request and ignores it. A guest read returns how many times this
 * machine has been restored from a snapshot, saturating at 255: 0 in the first run, 1 after the
 * first restore, and so on down a chain of snapshots of restored machines. A guest tells the
 * run that took the snapshot from a restored one by it:
 *
 *   outb(0, 0xf5);                  // snapshot here
 *   if (inb(0xf5) == 0) ...         // the run that asked; a restore reads 1 or more
 *
 * Key: port (default 0xf5). A debug and test port, like debug-exit: nothing is described to
 * the guest's ACPI tables (the guest is told the port by whoever wrote it).
 *
 * State version 1, little-endian: u32 restores, the count the guest reads (before the
 * restore that loads it: load() adds one, saturating at UINT32_MAX).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <smolvm/sdk.h>

#include "dev-snap.h"

#define SNAP_PORT_DEFAULT 0xf5
#define SNAP_PORT_STATE_VERSION 1

struct snap_port {
	const struct smol_host *host;
	struct smol_dev *dev;
	uint32_t restores; /* times this machine was restored from a snapshot */
};

static uint64_t sp_read(void *opaque, uint64_t offset, unsigned size)
{
	struct snap_port *s = opaque;
	(void)offset;
	(void)size;
	return s->restores > 255 ? 255 : s->restores;
}

static void sp_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct snap_port *s = opaque;
	(void)offset;
	(void)size;
	(void)value; /* any byte */
	s->host->log(s->dev, SMOL_LOG_DEBUG, "the guest asks for a snapshot");
	s->host->request_snapshot(s->dev);
}

static const struct smol_io_ops sp_io = { .read = sp_read, .write = sp_write };

static int sp_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                     void **state)
{
	uint64_t port;
	(void)flags;
	if (host->abi_minor < 3) {
		host->cfg_error(dev, NULL,
		                "needs smolvm plugin ABI 1.3 (snapshots); this smolvm speaks %u.%u",
		                host->abi_major, host->abi_minor);
		return -EINVAL;
	}
	if (host->cfg_u64(dev, "port", SNAP_PORT_DEFAULT, &port) < 0)
		return -EINVAL;
	if (port > 0xffff) {
		host->cfg_error(dev, "port", "0x%llx is not an I/O port (0-0xffff)",
		                (unsigned long long)port);
		return -EINVAL;
	}
	struct snap_port *s = calloc(1, sizeof(*s));
	if (!s) {
		host->log(dev, SMOL_LOG_ERROR, "cannot allocate the device state");
		return -ENOMEM;
	}
	s->host = host;
	s->dev = dev;
	*state = s;
	return host->map_pio(dev, (uint16_t)port, 1, &sp_io, s);
}

static void sp_destroy(void *state)
{
	free(state);
}

static int sp_save(void *state, struct smol_snap_writer *w)
{
	struct snap_port *s = state;
	uint8_t b[4];
	dev_le_put(b, s->restores, 4);
	s->host->snap_set_version(w, SNAP_PORT_STATE_VERSION);
	return s->host->snap_write(w, b, sizeof(b));
}

static int sp_load(void *state, struct smol_snap_reader *r)
{
	struct snap_port *s = state;
	uint32_t version;
	uint8_t b[4];
	int ret = dev_snap_version(s->host, s->dev, r, SNAP_PORT_STATE_VERSION, &version);
	if (ret)
		return ret;
	size_t left = s->host->snap_remaining(r);
	if (left != sizeof(b)) {
		s->host->log(s->dev, SMOL_LOG_ERROR,
		             "state: %zu bytes, version 1 has 4 (the restore count)", left);
		return -EBADMSG;
	}
	ret = s->host->snap_read(r, b, sizeof(b));
	if (ret)
		return ret;
	uint32_t restores = (uint32_t)dev_le_get(b, 4);
	s->restores = restores == UINT32_MAX ? restores : restores + 1;
	return 0;
}

static const struct smol_device_ops sp_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = sp_create,
	.destroy = sp_destroy,
	.save = sp_save,
	.load = sp_load,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "snapshot-port",
            "guest-requested snapshots: a write to the port takes one, a read counts restores",
            &sp_ops);
