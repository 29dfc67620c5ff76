/*
 * virtio-blk snapshots (ABI 1.3): pause and resume of the I/O thread, save and load of the
 * device's state. State version 1, all little-endian:
 *
 *   le64 capacity in 512-byte sectors
 *   u8   read-only (0 or 1)
 *   u8   config space[60], as the guest reads it (struct virtio_blk_config)
 *   the virtio-mmio transport (virtio.h: 52 bytes, then 40 for the one queue)
 *
 * The image itself is not state: the restored device opens it from its configuration, and
 * load refuses one of another size, or a change between read-only and writable, naming the
 * image. The config space is the guest's view: it must be the one this device shows now,
 * except for blk_size (and the discard alignment that follows it), which a cache = none
 * disk takes from the file system the image is on now: the guest keeps the one it read.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "blk.h"
#include "dev-snap.h"

#define BLK_STATE_VERSION 1
#define BLK_STATE_OWN (8 + 1 + BLK_CONFIG_SIZE)
#define BLK_STATE_SIZE (BLK_STATE_OWN + VIRTIO_MMIO_STATE_HEADER + VIRTIO_MMIO_STATE_QUEUE)

/* config space fields that may differ between the saved device and this one */
#define CFG_BLK_SIZE 20
#define CFG_DISCARD_ALIGN 44

#define get32(p) ((uint32_t)dev_le_get(p, 4))

/* pause: the request in hand finishes, no new one is taken; a kick that comes meanwhile is
 * served on resume (virtio-worker.h). */
void blk_pause(void *state)
{
	struct blk *b = state;

	virtio_worker_pause(&b->w);
}

void blk_resume(void *state)
{
	struct blk *b = state;

	virtio_worker_resume(&b->w);
}

int blk_save(void *state, struct smol_snap_writer *w)
{
	struct blk *b = state;
	const struct smol_host *h = b->host;
	uint8_t own[BLK_STATE_OWN];
	uint64_t cap = htole64(b->sectors);
	int r;

	h->snap_set_version(w, BLK_STATE_VERSION);
	memcpy(own, &cap, 8);
	own[8] = b->readonly;
	virtio_worker_lock(&b->w);
	/* paused, nothing is in flight; if not, the request in hand completes first (a
	 * request taken and not completed could not be restored) */
	virtio_worker_wait_idle(&b->w);
	memcpy(own + 9, b->config, BLK_CONFIG_SIZE);
	r = h->snap_write(w, own, sizeof(own));
	if (r == 0)
		r = virtio_mmio_save(&b->vm, h, w);
	virtio_worker_unlock(&b->w);
	return r;
}

/* The saved config space against this device's: 0, or -EINVAL after saying why. */
static int check_config(struct blk *b, const uint8_t *cfg)
{
	const struct smol_host *h = b->host;
	uint32_t bs = get32(cfg + CFG_BLK_SIZE), align = get32(cfg + CFG_DISCARD_ALIGN);

	for (unsigned i = 0; i < BLK_CONFIG_SIZE; i++) {
		if ((i >= CFG_BLK_SIZE && i < CFG_BLK_SIZE + 4) ||
		    (i >= CFG_DISCARD_ALIGN && i < CFG_DISCARD_ALIGN + 4) || cfg[i] == b->config[i])
			continue;
		h->log(b->dev, SMOL_LOG_ERROR,
		       "snapshot refused: config space byte %u is 0x%02x in the snapshot, 0x%02x "
		       "here (another smolvm?)",
		       i, cfg[i], b->config[i]);
		return -EINVAL;
	}
	if (bs < BLK_SECTOR || bs > BLK_MAX_BLOCK || (bs & (bs - 1)) ||
	    align != (bs > 4096 ? bs / BLK_SECTOR : 8)) {
		h->log(b->dev, SMOL_LOG_ERROR,
		       "snapshot refused: blk_size %u with discard alignment %u sectors is not a "
		       "configuration this device makes",
		       bs, align);
		return -EINVAL;
	}
	if (bs != b->block_size)
		h->log(b->dev, SMOL_LOG_INFO,
		       "the guest keeps the block size it was told, %u bytes (%u for this image "
		       "now)",
		       bs, b->block_size);
	return 0;
}

int blk_load(void *state, struct smol_snap_reader *r)
{
	struct blk *b = state;
	const struct smol_host *h = b->host;
	uint32_t version = h->snap_version(r);
	uint8_t own[BLK_STATE_OWN];
	uint64_t sectors;
	int ret;

	if (version > BLK_STATE_VERSION || version == 0) {
		h->log(b->dev, SMOL_LOG_ERROR,
		       "snapshot refused: virtio-blk state version %u; this one reads 1 to %u",
		       version, BLK_STATE_VERSION);
		return version ? -ENOTSUP : -EINVAL;
	}
	/* (a short one is found by the reads, each part saying it is truncated) */
	if (h->snap_remaining(r) > BLK_STATE_SIZE) {
		h->log(b->dev, SMOL_LOG_ERROR,
		       "snapshot refused: the disk's state has %zu bytes, version 1 has %u",
		       h->snap_remaining(r), (unsigned)BLK_STATE_SIZE);
		return -EINVAL;
	}
	ret = h->snap_read(r, own, sizeof(own));
	if (ret) {
		h->log(b->dev, SMOL_LOG_ERROR, "snapshot refused: the disk's state is truncated");
		return ret;
	}
	memcpy(&sectors, own, 8);
	sectors = le64toh(sectors);
	if (sectors != b->sectors) {
		h->log(b->dev, SMOL_LOG_ERROR,
		       "snapshot refused: image '%s' has %llu sectors (%llu bytes), the snapshot's "
		       "disk had %llu (%llu bytes): restore with the image it was taken with",
		       b->path, (unsigned long long)b->sectors,
		       (unsigned long long)b->sectors * BLK_SECTOR, (unsigned long long)sectors,
		       (unsigned long long)(sectors * BLK_SECTOR));
		return -EINVAL;
	}
	if (own[8] > 1) {
		h->log(b->dev, SMOL_LOG_ERROR, "snapshot refused: read-only flag %u", own[8]);
		return -EINVAL;
	}
	if (own[8] != b->readonly) {
		h->log(b->dev, SMOL_LOG_ERROR,
		       "snapshot refused: image '%s' is %s here but was %s in the snapshot "
		       "(readonly = %s)",
		       b->path, b->readonly ? "read-only" : "writable",
		       own[8] ? "read-only" : "writable", own[8] ? "on" : "off");
		return -EINVAL;
	}
	ret = check_config(b, own + 9);
	if (ret)
		return ret;
	virtio_worker_lock(&b->w);
	virtio_worker_wait_idle(&b->w); /* a new device: nothing in flight, but the thread runs */
	ret = virtio_mmio_load(&b->vm, h, r);
	if (ret == 0) {
		memcpy(b->config, own + 9, BLK_CONFIG_SIZE);
		b->block_size = get32(own + 9 + CFG_BLK_SIZE);
		/* requests the driver posted before the snapshot and will not notify again:
		 * the thread (or the event loop, through the same eventfd) serves them */
		if (virtio_mmio_queue_pending(&b->vm, 0))
			virtio_worker_kick(&b->w, 0);
	}
	virtio_worker_unlock(&b->w);
	return ret;
}
