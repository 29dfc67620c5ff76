/* dev-snap.h: the part of a device's load() that every in-tree device does the same way: the
 * state version check, the whole load() of a device without guest state, and little-endian
 * fields. Header-only and
 * not ABI (like devices/virtio/): the out-of-tree examples in plugins/ spell it out, as a vendor
 * would. */
#ifndef SMOLVM_DEV_SNAP_H
#define SMOLVM_DEV_SNAP_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

/* Little-endian fields of @p n bytes in a state buffer, whatever the host's byte order. */
static inline void dev_le_put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t dev_le_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A saved state's version against @p newest, the one this plugin writes: 0 with the version
 * in *@p out, -ENOTSUP for a newer one (a newer plugin saved it), -EINVAL for 0; logged. */
static inline int dev_snap_version(const struct smol_host *h, struct smol_dev *dev,
                                   struct smol_snap_reader *r, uint32_t newest, uint32_t *out)
{
	uint32_t version = h->snap_version(r);
	if (version > newest) {
		h->log(dev, SMOL_LOG_ERROR,
		       "state version %u is newer than this plugin's %u: upgrade the plugin",
		       version, newest);
		return -ENOTSUP;
	}
	if (version < 1) {
		h->log(dev, SMOL_LOG_ERROR, "state version %u does not exist", version);
		return -EINVAL;
	}
	*out = version;
	return 0;
}

/* load() of a device with no guest state: every version up to @p newest is empty. */
static inline int dev_snap_load_empty(const struct smol_host *h, struct smol_dev *dev,
                                      struct smol_snap_reader *r, uint32_t newest)
{
	uint32_t version;
	int ret = dev_snap_version(h, dev, r, newest, &version);
	if (ret)
		return ret;
	size_t left = h->snap_remaining(r);
	if (left) {
		h->log(dev, SMOL_LOG_ERROR, "state: %zu bytes left over: version %u has none", left,
		       version);
		return -EBADMSG;
	}
	return 0;
}

#endif
