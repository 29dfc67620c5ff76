/*
 * virtio-blk requests (virtio 1.2, 5.2.6): a 16-byte header { le32 type; le32 reserved;
 * le64 sector; } in the device-readable part, data, and the status byte as the last byte of
 * the device-writable part. used.len is the number of bytes written into device-writable
 * buffers: data read for IN and GET_ID, plus the status byte.
 *
 * Every length and sector comes from the guest: data lengths must be whole sectors, ranges
 * must end inside the disk (overflow included), a read-only disk refuses every write-like
 * request with IOERR before touching the file. cache = writeback reads and writes straight
 * between the image and guest memory (preadv/pwritev on iovecs from the checked accessor).
 * cache = none (O_DIRECT) moves whole, aligned blocks of b->align bytes through the aligned
 * bounce buffer: a request that starts or ends inside a block reads that block first and
 * writes it back whole (read-modify-write), so a guest using 512-byte sectors works on an
 * image whose direct I/O wants 4 KiB.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blk.h"

/* Transfers all of @iov at @off, resuming short transfers, at most BLK_CHUNK bytes a call:
 * between calls, a request a reset or the stop throws away ends (-ECANCELED), so one request
 * (up to 4 GiB from one buffer repeated, or 16 x 2 GiB of zeroes) never holds them for long.
 * 0 or a negative errno. */
static int io_full(struct blk *b, struct iovec *iov, int n, uint64_t off, bool write)
{
	while (n > 0) {
		int k = 0;
		size_t sum = 0, keep;
		ssize_t r;

		if (virtio_worker_io_cancelled(&b->w))
			return -ECANCELED;
		while (k < n && sum < BLK_CHUNK)
			sum += iov[k++].iov_len;
		keep = iov[k - 1].iov_len;
		if (sum > BLK_CHUNK) /* the last one in part: less than BLK_CHUNK came before it */
			iov[k - 1].iov_len -= sum - BLK_CHUNK;
		r = write ? pwritev(b->fd, iov, k, (off_t)off) : preadv(b->fd, iov, k, (off_t)off);
		iov[k - 1].iov_len = keep;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* the image shrank under us */
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static int buf_full(struct blk *b, void *buf, size_t len, uint64_t off, bool write)
{
	struct iovec iov = { buf, len };

	return io_full(b, &iov, 1, off, write);
}

/* Is [sector, sector + bytes / 512) inside the disk, in whole sectors? */
static bool in_disk(const struct blk *b, uint64_t sector, uint64_t bytes)
{
	return bytes % BLK_SECTOR == 0 && sector <= b->sectors &&
	       bytes / BLK_SECTOR <= b->sectors - sector;
}

/* cache = none: the next bounce-buffer load of a transfer at image offset @pos with @left
 * bytes to go: the aligned span of the image [start, start + len) that holds its next n
 * bytes, from offset head in the span on. */
struct span {
	uint64_t start;
	uint32_t head, n, len;
};

static struct span next_span(const struct blk *b, uint64_t pos, uint64_t left)
{
	uint64_t mask = ~(uint64_t)(b->align - 1);
	struct span s = { .start = pos & mask };

	s.head = (uint32_t)(pos - s.start);
	s.n = (uint32_t)(left < BLK_BOUNCE - s.head ? left : BLK_BOUNCE - s.head);
	s.len = (uint32_t)((s.head + s.n + b->align - 1) & mask);
	return s;
}

/* cache = none, IN: aligned spans of the image into the bounce buffer, then into the chain's
 * writable part from @done on. */
static int direct_read(struct blk *b, struct virtq *q, const struct virtio_chain *c, uint64_t off,
                       uint32_t len, uint32_t *written)
{
	for (uint32_t done = 0; done < len;) {
		struct span s = next_span(b, off + done, len - done);

		if (buf_full(b, b->bounce, s.len, s.start, false) ||
		    virtq_write(q, c, done, b->bounce + s.head, s.n))
			return -EIO;
		done += s.n;
		*written = done;
	}
	return 0;
}

/* cache = none, OUT and zeroing: @len bytes at @off from the chain's readable part at @from
 * on, or zeros when @c is NULL. A partly covered block is read first. */
static int direct_write(struct blk *b, struct virtq *q, const struct virtio_chain *c, uint32_t from,
                        uint64_t off, uint64_t len)
{
	for (uint64_t done = 0; done < len;) {
		struct span s = next_span(b, off + done, len - done);
		uint32_t end = s.head + s.n, last = s.len - b->align;

		if (s.head && buf_full(b, b->bounce, b->align, s.start, false))
			return -EIO;
		/* the last block, partly covered, unless it is the first one, read just above */
		if (end != s.len && (last || !s.head) &&
		    buf_full(b, b->bounce + last, b->align, s.start + last, false))
			return -EIO;
		if (c ? virtq_read(q, c, from + (uint32_t)done, b->bounce + s.head, s.n)
		      : (memset(b->bounce + s.head, 0, s.n), 0))
			return -EIO;
		if (buf_full(b, b->bounce, s.len, s.start, true))
			return -EIO;
		done += s.n;
	}
	return 0;
}

static uint8_t blk_in(struct blk *b, struct virtq *q, const struct virtio_chain *c, uint64_t sector,
                      uint32_t *written)
{
	uint32_t len = c->write_len - 1;
	int n;

	if (!in_disk(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (b->direct)
		return direct_read(b, q, c, sector * BLK_SECTOR, len, written) ? VIRTIO_BLK_S_IOERR
		                                                               : VIRTIO_BLK_S_OK;
	n = virtq_iov(q, c, true, 0, len, b->iov, BLK_QUEUE_SIZE);
	if (n < 0 || io_full(b, b->iov, n, sector * BLK_SECTOR, false))
		return VIRTIO_BLK_S_IOERR;
	*written = len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_out(struct blk *b, struct virtq *q, const struct virtio_chain *c,
                       uint64_t sector)
{
	uint32_t len = c->read_len - 16;
	int n;

	if (b->readonly || !in_disk(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (b->direct)
		return direct_write(b, q, c, 16, sector * BLK_SECTOR, len) ? VIRTIO_BLK_S_IOERR
		                                                           : VIRTIO_BLK_S_OK;
	n = virtq_iov(q, c, false, 16, len, b->iov, BLK_QUEUE_SIZE);
	if (n < 0 || io_full(b, b->iov, n, sector * BLK_SECTOR, true))
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

static int zero_range(struct blk *b, uint64_t off, uint64_t len, bool unmap)
{
	uint64_t k;
	int r;

	if (unmap) {
		if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		              (off_t)len) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return -errno;
	}
	if (b->direct)
		return direct_write(b, NULL, NULL, 0, off, len);
	for (; len; off += k, len -= k) {
		k = len < BLK_BOUNCE ? len : BLK_BOUNCE;
		r = buf_full(b, b->zeros, k, off, true);
		if (r)
			return r;
	}
	return 0;
}

/* DISCARD and WRITE_ZEROES: up to BLK_MAX_DISCARD_SEG segments { le64 sector; le32
 * num_sectors; le32 flags; }, all checked before any is carried out. */
static uint8_t blk_discard(struct blk *b, struct virtq *q, const struct virtio_chain *c, bool wz)
{
	uint8_t raw[BLK_MAX_DISCARD_SEG][16];
	uint32_t len = c->read_len - 16, n = len / 16, num, flags;
	uint64_t sector;

	if (b->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (len == 0 || len % 16 || n > BLK_MAX_DISCARD_SEG || virtq_read(q, c, 16, raw, len))
		return VIRTIO_BLK_S_IOERR;
	for (unsigned pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < n; i++) {
			memcpy(&sector, raw[i], 8);
			memcpy(&num, raw[i] + 8, 4);
			memcpy(&flags, raw[i] + 12, 4);
			sector = le64toh(sector);
			num = le32toh(num);
			flags = le32toh(flags);
			if (pass == 0) {
				/* unmap is meaningless for discard: the spec wants UNSUPP */
				if (flags & ~(wz ? VIRTIO_BLK_WZ_UNMAP : 0))
					return VIRTIO_BLK_S_UNSUPP;
				if (num > BLK_MAX_DISCARD_SECTORS ||
				    !in_disk(b, sector, (uint64_t)num * BLK_SECTOR))
					return VIRTIO_BLK_S_IOERR;
				continue;
			}
			if (num != 0 && /* an empty segment is done already */
			    zero_range(b, sector * BLK_SECTOR, (uint64_t)num * BLK_SECTOR,
			               !wz || (flags & VIRTIO_BLK_WZ_UNMAP)))
				return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_dispatch(struct blk *b, struct virtq *q, const struct virtio_chain *c,
                            uint32_t type, uint64_t sector, uint32_t *written)
{
	uint32_t n;

	switch (type) {
	case VIRTIO_BLK_T_IN: return blk_in(b, q, c, sector, written);
	case VIRTIO_BLK_T_OUT: return blk_out(b, q, c, sector);
	case VIRTIO_BLK_T_FLUSH:
		if (!b->readonly && fdatasync(b->fd))
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		n = c->write_len - 1 < BLK_ID_BYTES ? c->write_len - 1 : BLK_ID_BYTES;
		if (virtq_write(q, c, 0, b->serial, n))
			return VIRTIO_BLK_S_IOERR;
		*written = n;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
		if (!b->f_discard)
			return VIRTIO_BLK_S_UNSUPP;
		return blk_discard(b, q, c, false);
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!b->f_write_zeroes)
			return VIRTIO_BLK_S_UNSUPP;
		return blk_discard(b, q, c, true);
	default: return VIRTIO_BLK_S_UNSUPP;
	}
}

/* What one request was, for the counters. */
struct blk_done {
	uint32_t type; /* VIRTIO_BLK_T_*, or UINT32_MAX without a header */
	uint8_t status;
	uint32_t bytes; /* data moved: read into the guest or written to the image */
};

/* Serves one chain; returns used.len. */
static uint32_t blk_request(struct blk *b, struct virtq *q, const struct virtio_chain *c,
                            struct blk_done *done)
{
	uint8_t hdr[16], status = VIRTIO_BLK_S_IOERR;
	uint32_t type = UINT32_MAX, written = 0;
	uint64_t sector;

	*done = (struct blk_done){ .type = UINT32_MAX, .status = VIRTIO_BLK_S_IOERR };
	if (c->write_len == 0) {
		b->host->log(b->dev, SMOL_LOG_DEBUG, "request %u without a status byte", c->head);
		return 0;
	}
	if (c->read_len >= 16 && virtq_read(q, c, 0, hdr, 16) == 0) {
		memcpy(&type, hdr, 4);
		memcpy(&sector, hdr + 8, 8);
		type = le32toh(type);
		status = blk_dispatch(b, q, c, type, le64toh(sector), &written);
		done->type = type;
		if (type == VIRTIO_BLK_T_IN && status == VIRTIO_BLK_S_OK)
			done->bytes = written;
		else if (type == VIRTIO_BLK_T_OUT && status == VIRTIO_BLK_S_OK)
			done->bytes = c->read_len - 16;
	}
	done->status = status;
	if (status != VIRTIO_BLK_S_OK)
		b->host->log(b->dev, SMOL_LOG_DEBUG, "request %u failed with status %u", c->head,
		             status);
	if (virtq_write(q, c, c->write_len - 1, &status, 1))
		return written;
	return written + 1;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Counts a request served in @p us microseconds (UINT64_MAX: not timed; worker lock held). */
static void blk_count(struct blk *b, const struct blk_done *d, uint64_t us)
{
	struct blk_counters *s = &b->stat;
	switch (d->type) {
	case VIRTIO_BLK_T_IN: s->reads++, s->read_bytes += d->bytes; break;
	case VIRTIO_BLK_T_OUT: s->writes++, s->write_bytes += d->bytes; break;
	case VIRTIO_BLK_T_FLUSH: s->flushes++; break;
	case VIRTIO_BLK_T_GET_ID: s->get_ids++; break;
	case VIRTIO_BLK_T_DISCARD: s->discards++; break;
	case VIRTIO_BLK_T_WRITE_ZEROES: s->write_zeroes++; break;
	default: s->unsupported++; break;
	}
	if (d->status != VIRTIO_BLK_S_OK)
		s->errors++;
	if (us == UINT64_MAX)
		return;
	unsigned k = 0;
	for (uint64_t bound = 10; k + 1 < BLK_LATENCY_BUCKETS && us >= bound; bound *= 10)
		k++;
	s->latency_us[k]++;
}

void blk_stats(void *state, smol_stat_fn *put, void *ctx)
{
	struct blk *b = state;
	static const char *const buckets[BLK_LATENCY_BUCKETS] = {
		"latency_us.under_10",    "latency_us.under_100",    "latency_us.under_1000",
		"latency_us.under_10000", "latency_us.under_100000", "latency_us.over_100000",
	};
	virtio_worker_stats(&b->w, put, ctx);
	virtio_worker_lock(&b->w);
	struct blk_counters s = b->stat;
	virtio_worker_unlock(&b->w);
	put(ctx, "reads", s.reads);
	put(ctx, "writes", s.writes);
	put(ctx, "flushes", s.flushes);
	put(ctx, "discards", s.discards);
	put(ctx, "write_zeroes", s.write_zeroes);
	put(ctx, "get_ids", s.get_ids);
	put(ctx, "unsupported", s.unsupported);
	put(ctx, "errors", s.errors);
	put(ctx, "read_bytes", s.read_bytes);
	put(ctx, "write_bytes", s.write_bytes);
	for (unsigned k = 0; k < BLK_LATENCY_BUCKETS; k++)
		put(ctx, buckets[k], s.latency_us[k]);
	put(ctx, "latency_us.one_in", BLK_LATENCY_SAMPLE);
}

bool blk_serve(void *opaque, unsigned index)
{
	struct blk *b = opaque;
	struct virtq *q = virtio_mmio_queue(&b->vm, index);
	uint64_t before = b->n_requests;

	if (!q)
		return false;
	b->n_serves++;
	/* At most a queue's worth per call: a guest that keeps refilling the ring must not hold
	 * the device (and, without the thread, the event loop) forever. */
	for (unsigned served = 0; served < q->num; served++) {
		/* a vCPU waits to reset the queue, a pause, or the device goes: no new request */
		if (virtio_worker_yield(&b->w))
			break;
		if (virtq_pop(q, &b->chain) <= 0)
			break;
		b->f_discard = virtio_mmio_has_feature(&b->vm, VIRTIO_BLK_F_DISCARD);
		b->f_write_zeroes = virtio_mmio_has_feature(&b->vm, VIRTIO_BLK_F_WRITE_ZEROES);
		/* The chain is a copy and the I/O touches only guest RAM and the image: the
		 * transport is free meanwhile. A reset waits for the request to end, so the queue
		 * is still the one the chain came from when it is pushed below. */
		struct blk_done done;
		bool timed = b->stat.served++ % BLK_LATENCY_SAMPLE == 0;
		uint64_t t0 = timed ? now_us() : 0;
		virtio_worker_io_begin(&b->w);
		uint32_t len = blk_request(b, q, &b->chain, &done);
		virtio_worker_io_end(&b->w);
		b->n_requests++;
		blk_count(b, &done, timed ? now_us() - t0 : UINT64_MAX);
		if (virtq_push(q, b->chain.head, len))
			break;
		/* The thread takes its time over a batch: each completion is announced at once
		 * (as far as the driver's used_event or NO_INTERRUPT allow), not after the
		 * batch's last request. */
		if (b->w.threaded)
			virtq_notify(q);
	}
	if (b->n_requests == before)
		b->n_empty_serves++;
	virtq_notify(q);
	/* more waiting: the worker comes back (without the thread, after the event loop has had
	 * its turn) */
	return virtq_pending(q);
}
