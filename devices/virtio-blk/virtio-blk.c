/*
 * virtio-blk: a virtio block device (DeviceID 2) over virtio-mmio, backed by a raw image
 * file or block device. Requests are served in blk-req.c; this file holds the plugin:
 * configuration, the image, the MMIO window, the interrupt line and the description.
 *
 * Keys:
 *   path      the image (required; relative to the INI file's folder)
 *   readonly  bool, default off: VIRTIO_BLK_F_RO, every write refused with IOERR
 *   serial    GET_ID string, up to 20 bytes (default: the image's file name, truncated)
 *   cache     writeback (default: FLUSH is fdatasync) or none (O_DIRECT, bounce buffers)
 *   block_size  the logical block size told to the guest (VIRTIO_BLK_F_BLK_SIZE), 512 to
 *             64 KiB, a power of 2; default 512, or with cache = none the image's direct-I/O
 *             alignment. With cache = none the image is read and written in aligned blocks
 *             of the larger of the two (partial blocks read-modify-write).
 *   base      MMIO base of the 0x200-byte window (default: chosen by the core)
 *   irq       interrupt line (default: the first free line from 5 up), edge-triggered
 *
 * Queue notifications arrive through an ioeventfd (ABI 1.2) and are served by the disk's own
 * I/O thread, outside the core's device lock (devices/virtio/virtio-worker.h); interrupts leave
 * through an irqfd. Without an ioeventfd, requests are served in the MMIO handler (a vCPU thread)
 * and self-kicks go through the event loop; without an irqfd, interrupts through irq_pulse.
 *
 * The image is locked while the disk exists (an OFD lock on the whole file: a write lock when
 * writable, a shared read lock when read-only), so two machines (clones of one snapshot, say)
 * cannot both write it, nor one write what another reads. Snapshots (save, load, pause,
 * resume) are in blk-snap.c.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk.h"

/* ---- virtio transport glue ------------------------------------------------------------ */

static void *blk_gpa(void *opaque, uint64_t gpa, uint64_t len)
{
	struct blk *b = opaque;

	return b->host->gpa_ptr(b->dev, gpa, len);
}

/* Edge-triggered, as the description says: a pulse per interrupt, nothing on the ACK. */
static void blk_irq(void *opaque, int level)
{
	struct blk *b = opaque;

	if (level)
		virtio_dev_pulse(b->host, b->dev, b->irq_fd, b->irq);
}

static void blk_notify(void *opaque, unsigned index)
{
	struct blk *b = opaque;

	virtio_worker_notify(&b->w, index); /* the thread, or blk_serve here */
}

static void blk_config_read(void *opaque, uint32_t off, void *buf, unsigned len)
{
	struct blk *b = opaque;

	memcpy(buf, b->config + off, len); /* bounds checked by the transport */
}

static void blk_vlog(void *opaque, int level, const char *msg)
{
	struct blk *b = opaque;

	virtio_dev_log(b->host, b->dev, level, msg);
}

static const struct virtio_mmio_ops blk_virtio_ops = {
	.gpa_ptr = blk_gpa,
	.irq = blk_irq,
	.queue_notify = blk_notify,
	.config_read = blk_config_read,
	.log = blk_vlog,
};

static uint64_t blk_mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct blk *b = opaque;

	virtio_worker_lock(&b->w);
	uint64_t v = virtio_mmio_read(&b->vm, off, size);
	virtio_worker_unlock(&b->w);
	return v;
}

static void blk_mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct blk *b = opaque;

	virtio_worker_lock(&b->w);
	/* a reset or a queue switched off: the request in flight (only) ends first, early
	 * (its result is thrown away); another status write lets it finish */
	if ((off == VIRTIO_MMIO_STATUS || off == VIRTIO_MMIO_QUEUE_READY) && value == 0)
		virtio_worker_cancel_idle(&b->w);
	else if (off == VIRTIO_MMIO_STATUS || off == VIRTIO_MMIO_QUEUE_READY)
		virtio_worker_wait_idle(&b->w);
	virtio_mmio_write(&b->vm, off, size, value);
	virtio_worker_unlock(&b->w);
}

static const struct smol_io_ops blk_mmio_ops = {
	.read = blk_mmio_read,
	.write = blk_mmio_write,
};

/* ---- configuration -------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void blk_fill_config(struct blk *b)
{
	uint64_t cap = htole64(b->sectors);

	memset(b->config, 0, sizeof(b->config));
	memcpy(b->config, &cap, 8); /* capacity */
	put32(b->config + 12, BLK_SEG_MAX); /* seg_max */
	put32(b->config + 20, b->block_size); /* blk_size */
	put32(b->config + 36, BLK_MAX_DISCARD_SECTORS); /* max_discard_sectors */
	put32(b->config + 40, BLK_MAX_DISCARD_SEG); /* max_discard_seg */
	/* discard_sector_alignment: 4 KiB, or the block when larger */
	put32(b->config + 44, b->block_size > 4096 ? b->block_size / BLK_SECTOR : 8);
	put32(b->config + 48, BLK_MAX_DISCARD_SECTORS); /* max_write_zeroes_sectors */
	put32(b->config + 52, BLK_MAX_DISCARD_SEG); /* max_write_zeroes_seg */
	b->config[56] = 1; /* write_zeroes_may_unmap */
}

static uint64_t blk_features(const struct blk *b)
{
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) |
	             (1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
	             (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH);

	if (b->readonly)
		f |= 1ull << VIRTIO_BLK_F_RO;
	else
		f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	return f;
}

/* The file offset alignment O_DIRECT needs on @fd (statx STATX_DIOALIGN, Linux 6.1; for a
 * block device, else its logical block size), 0 when the system does not say. */
static uint32_t dio_alignment(int fd, const struct stat *st, uint32_t *mem_align)
{
	*mem_align = 0;
#ifdef STATX_DIOALIGN
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
		*mem_align = sx.stx_dio_mem_align;
		return sx.stx_dio_offset_align;
	}
#endif
	int lbs = 0;

	if (S_ISBLK(st->st_mode) && ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0)
		return (uint32_t)lbs;
	return 0;
}

/* cache = none: block size and I/O alignment from the image, checked against what the bounce
 * buffer can do. */
static int blk_direct_align(struct blk *b, const char *path, const struct stat *st,
                            bool block_size_set)
{
	uint32_t mem_align, a = dio_alignment(b->fd, st, &mem_align);
	const struct smol_host *h = b->host;

	if (a && (a & (a - 1) || a > BLK_MAX_BLOCK || mem_align > 4096)) {
		h->cfg_error(b->dev, "cache",
		             "%s: direct I/O wants %u-byte offsets and %u-byte buffers; smolvm "
		             "handles powers of 2 up to %u and 4096: use cache = writeback",
		             path, a, mem_align, BLK_MAX_BLOCK);
		return -EINVAL;
	}
	if (!block_size_set && a > b->block_size)
		b->block_size = a;
	/* unknown: 4 KiB blocks work on every file system (partial ones cost a read) */
	b->align = a ? a : 4096;
	if (b->align < b->block_size)
		b->align = b->block_size;
	return 0;
}

/* Opens the image: a regular file or a block device, its size in whole sectors (whole
 * aligned blocks with cache = none). */
static int blk_open(struct blk *b, const char *key, const char *path, bool block_size_set)
{
	const struct smol_host *h = b->host;
	int flags = (b->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (b->direct ? O_DIRECT : 0);
	uint64_t size = 0;
	struct stat st;

	/* O_NONBLOCK: a FIFO in the image's place is refused below, not waited on */
	b->fd = open(path, flags | O_NONBLOCK | O_NOCTTY);
	if (b->fd < 0) {
		int e = errno;

		h->cfg_error(b->dev, key, "cannot open %s%s: %s%s", path,
		             b->direct ? " with O_DIRECT (cache = none)" : "", strerror(e),
		             (!b->readonly && (e == EROFS || e == EACCES)) ? " (readonly = on?)"
		                                                           : "");
		return -EINVAL;
	}
	if (fstat(b->fd, &st)) {
		h->cfg_error(b->dev, key, "cannot stat %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &size)) {
			h->cfg_error(b->dev, key, "cannot size %s: %s", path, strerror(errno));
			return -EINVAL;
		}
	} else {
		h->cfg_error(b->dev, key, "%s is %s, neither a regular file nor a block device",
		             path,
		             S_ISDIR(st.st_mode)    ? "a directory"
		             : S_ISFIFO(st.st_mode) ? "a FIFO"
		             : S_ISCHR(st.st_mode)  ? "a character device"
		                                    : "something else");
		return -EINVAL;
	}
	/* the image itself is read and written in the usual blocking way */
	if (fcntl(b->fd, F_SETFL, fcntl(b->fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		h->cfg_error(b->dev, key, "cannot use %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	if (b->direct && blk_direct_align(b, path, &st, block_size_set))
		return -EINVAL;
	uint32_t unit = b->direct ? b->align : BLK_SECTOR;
	if (size % unit)
		h->log(b->dev, SMOL_LOG_WARN, "%s: the last %llu bytes are not a whole %s: unused",
		       path, (unsigned long long)(size % unit),
		       b->direct ? "aligned block (cache = none)" : "sector");
	b->sectors = size / unit * (unit / BLK_SECTOR);
	return 0;
}

/*
 * Clones restore one snapshot in several processes: two machines writing one image, or one
 * writing under another's feet, corrupt it. A writable disk takes an OFD write lock on the
 * whole image, a read-only one a shared read lock (OFD locks belong to the open file, so
 * they conflict between two opens in one process too, and go with its last close). `smolvm
 * check` takes none, but reports a conflict. A file system without such locks is not an
 * error: it is said, and the disk goes on unprotected.
 */
static int blk_lock_image(struct blk *b, const char *path, bool check_only)
{
	const struct smol_host *h = b->host;
	struct flock fl = { .l_type = b->readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };

	if (fcntl(b->fd, check_only ? F_OFD_GETLK : F_OFD_SETLK, &fl) == 0) {
		if (!check_only || fl.l_type == F_UNLCK)
			return 0;
	} else if (errno == EAGAIN || errno == EACCES) {
		/* what is in the way: a writer, or readers (then we are the writer) */
		fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fcntl(b->fd, F_OFD_GETLK, &fl) || fl.l_type == F_UNLCK)
			fl.l_type = b->readonly ? F_WRLCK : F_RDLCK;
	} else {
		h->log(b->dev, SMOL_LOG_WARN,
		       "cannot lock image '%s': %s: nothing keeps another machine from using it "
		       "at the same time",
		       path, strerror(errno));
		return 0;
	}
	h->cfg_error(b->dev, "path",
	             "image '%s' is in use by another process (%s): give each machine its own "
	             "copy (cp --reflink=auto)%s",
	             path,
	             fl.l_type == F_WRLCK ? "locked for writing"
	                                  : "open read-only, and this disk is writable",
	             fl.l_type == F_WRLCK ? "" : ", or make this one readonly = on");
	return -EINVAL;
}

static void blk_set_serial(struct blk *b, const char *serial, const char *path)
{
	const char *base = strrchr(path, '/');

	if (!serial)
		serial = base ? base + 1 : path;
	memset(b->serial, 0, sizeof(b->serial));
	memcpy(b->serial, serial, strnlen(serial, BLK_ID_BYTES));
}

/* Interrupts through an irqfd when the backend takes one (ABI 1.2), else irq_pulse. Queue
 * notifications through the worker: an ioeventfd served by the I/O thread when the backend
 * takes one, else the MMIO handler serves them and the kick eventfd, watched on the event
 * loop, carries the device's self-kicks. */
static int blk_attach_eventfds(struct blk *b)
{
	const struct smol_host *h = b->host;

	if (h->abi_minor >= 2) {
		b->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (b->irq_fd >= 0 && h->irqfd(b->dev, b->irq, b->irq_fd) < 0) {
			close(b->irq_fd);
			b->irq_fd = -1;
		}
	}
	if (virtio_worker_attach(&b->w, b->base + VIRTIO_MMIO_QUEUE_NOTIFY))
		return -EINVAL;
	h->log(b->dev, SMOL_LOG_DEBUG, "queue notifications: %s; interrupts: %s",
	       b->w.threaded ? "ioeventfd, served by the disk's I/O thread" : "MMIO exits",
	       b->irq_fd >= 0 ? "irqfd" : "irq_pulse");
	return 0;
}

static void blk_destroy(void *state)
{
	struct blk *b = state;

	/* the thread finishes the request in hand (if any), takes no other, and leaves */
	if (virtio_worker_stop(&b->w))
		return; /* it may still run: keep all it could use */
	/* how well notifications were batched: a wake-up per request means none were (read
	 * once the thread is gone: it updates them) */
	b->host->log(b->dev, SMOL_LOG_DEBUG,
	             "served %llu requests in %llu wake-ups (%llu found nothing, %llu "
	             "self-kicks)",
	             (unsigned long long)b->n_requests, (unsigned long long)b->n_serves,
	             (unsigned long long)b->n_empty_serves, (unsigned long long)b->w.n_self_kicks);
	if (b->irq_fd >= 0)
		close(b->irq_fd);
	if (b->fd >= 0)
		close(b->fd);
	free(b->bounce);
	if (b->zeros)
		munmap(b->zeros, BLK_BOUNCE);
	free(b->path);
	free(b);
}

static int blk_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                      void **state)
{
	const char *path_cfg, *serial, *cache;
	uint64_t base, irq, block_size;
	char *path;
	struct blk *b;
	int ro, ret = -EINVAL;

	/* opening the image changes nothing: done for `smolvm check` too; eventfds are not */
	b = calloc(1, sizeof(*b));
	if (!b) {
		host->log(dev, SMOL_LOG_ERROR, "cannot allocate the device state");
		return -ENOMEM;
	}
	b->host = host;
	b->dev = dev;
	b->fd = -1;
	b->irq_fd = -1;
	virtio_worker_init(&b->w, host, dev, &b->vm, 1, blk_serve, b);
	*state = b;

	/* Read every key before failing: all are known, all errors reported. */
	bool bad = host->cfg_str(dev, "path", NULL, &path_cfg) != 0;
	bad |= host->cfg_bool(dev, "readonly", 0, &ro) != 0;
	bad |= host->cfg_str(dev, "serial", NULL, &serial) != 0;
	bad |= host->cfg_str(dev, "cache", "writeback", &cache) != 0;
	bad |= host->cfg_u64(dev, "block_size", 0, &block_size) != 0;
	bad |= host->cfg_u64(dev, "base", SMOL_ADDR_AUTO, &base) != 0;
	bad |= host->cfg_u64(dev, "irq", UINT64_MAX, &irq) != 0;
	if (!bad && !path_cfg) {
		host->cfg_error(dev, "path", "required: the disk image");
		bad = true;
	}
	if (serial && strlen(serial) > BLK_ID_BYTES) {
		host->cfg_error(dev, "serial", "'%s' is longer than %u bytes", serial,
		                BLK_ID_BYTES);
		bad = true;
	}
	if (cache && strcmp(cache, "writeback") && strcmp(cache, "none")) {
		host->cfg_error(dev, "cache", "'%s' is neither writeback nor none", cache);
		bad = true;
	}
	if (block_size && (block_size < BLK_SECTOR || block_size > BLK_MAX_BLOCK ||
	                   (block_size & (block_size - 1)))) {
		host->cfg_error(dev, "block_size", "%llu: a power of 2 from 512 to 65536",
		                (unsigned long long)block_size);
		bad = true;
	}
	if (base != SMOL_ADDR_AUTO && (base % BLK_WINDOW || base > (1ull << 32) - BLK_WINDOW)) {
		host->cfg_error(dev, "base",
		                "0x%llx: the 0x200-byte window must be 0x200-aligned, below 4 GiB",
		                (unsigned long long)base);
		bad = true;
	}
	if (bad)
		return -EINVAL;
	b->readonly = ro;
	b->direct = !strcmp(cache, "none");
	b->block_size = block_size ? (uint32_t)block_size : BLK_SECTOR;

	path = host->cfg_path(dev, path_cfg);
	if (!path) {
		host->log(dev, SMOL_LOG_ERROR, "cannot resolve the path %s", path_cfg);
		return -ENOMEM;
	}
	b->path = path;
	if (blk_open(b, "path", path, block_size != 0) ||
	    blk_lock_image(b, path, flags & SMOL_CREATE_CHECK_ONLY))
		goto out;
	blk_set_serial(b, serial, path);
	/* the zeros: a read-only anonymous mapping, the kernel's zero page (no 1 MiB cleared
	 * and kept per disk) */
	if (!b->readonly) {
		void *z = mmap(NULL, BLK_BOUNCE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		b->zeros = z == MAP_FAILED ? NULL : z;
	}
	if ((b->direct && posix_memalign((void **)&b->bounce, 4096, BLK_BOUNCE)) ||
	    (!b->readonly && !b->zeros)) {
		host->log(dev, SMOL_LOG_ERROR, "cannot allocate buffers");
		ret = -ENOMEM;
		goto out;
	}
	blk_fill_config(b);
	ret = virtio_mmio_init(&b->vm, &blk_virtio_ops, b, VIRTIO_ID_BLOCK, blk_features(b), 1,
	                       BLK_QUEUE_SIZE, BLK_CONFIG_SIZE);
	if (ret) {
		host->log(dev, SMOL_LOG_ERROR, "virtio transport: %s", strerror(-ret));
		goto out;
	}
	ret = host->map_mmio(dev, base, BLK_WINDOW, &blk_mmio_ops, b, &b->base);
	if (ret) {
		if (ret != -EEXIST) /* the core reports overlaps itself */
			host->cfg_error(dev, "base", "cannot map the MMIO window: %s",
			                strerror(-ret));
		ret = -EINVAL;
		goto out;
	}
	ret = virtio_dev_claim_irq(b->host, b->dev, irq, &b->irq);
	if (ret == 0 && !(flags & SMOL_CREATE_CHECK_ONLY))
		ret = blk_attach_eventfds(b);
out:
	return ret;
}

static void blk_reset(void *state)
{
	struct blk *b = state;

	virtio_worker_lock(&b->w);
	virtio_worker_cancel_idle(&b->w);
	virtio_mmio_reset(&b->vm);
	virtio_worker_unlock(&b->w);
}

static int blk_describe(void *state, struct smol_describe *d)
{
	struct blk *b = state;

	return virtio_dev_describe(b->host, d, b->base, b->irq);
}

static const struct smol_device_ops blk_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = blk_create,
	.destroy = blk_destroy,
	.reset = blk_reset,
	.save = blk_save,
	.load = blk_load,
	.describe = blk_describe,
	.pause = blk_pause,
	.resume = blk_resume,
	.stats = blk_stats,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "virtio-blk", "virtio block device (virtio-mmio) on a raw image",
            &blk_ops);
