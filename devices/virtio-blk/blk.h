/* virtio-blk: state shared by the plugin (virtio-blk.c) and the request code (blk-req.c). */
#ifndef SMOLVM_VIRTIO_BLK_H
#define SMOLVM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <smolvm/sdk.h>

#include "virtio-dev.h"
#include "virtio-worker.h"
#include "virtio.h"

#define BLK_WINDOW VIRTIO_MMIO_WINDOW
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2) /* data segments; plus header and status */
#define BLK_SECTOR VIRTIO_BLK_SECTOR
#define BLK_ID_BYTES VIRTIO_BLK_ID_BYTES
#define BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per segment */
#define BLK_MAX_DISCARD_SEG 16
#define BLK_BOUNCE (1u << 20) /* cache = none: aligned bounce buffer */
#define BLK_CHUNK (1u << 20) /* the most one read or write call moves (blk-req.c) */
#define BLK_MAX_BLOCK 65536 /* block_size and direct-I/O alignment at most */

/* struct virtio_blk_config (5.2.4) up to write_zeroes_may_unmap and its padding. */
#define BLK_CONFIG_SIZE 60

#define BLK_LATENCY_BUCKETS 6
/* One request in this many is timed (two clock reads): where the host's clock is slow to read
 * (an HPET, as in the test nest) timing every request halved the disk's throughput. */
#define BLK_LATENCY_SAMPLE 16

struct blk {
	const struct smol_host *host;
	struct smol_dev *dev;
	struct virtio_mmio vm;
	int fd;
	bool readonly;
	bool direct; /* cache = none: O_DIRECT through the bounce buffer */
	uint32_t block_size; /* blk_size told to the guest: 512..64 KiB, a power of 2 */
	uint32_t align; /* cache = none: the image is accessed in aligned blocks of this size */
	uint64_t sectors; /* capacity in 512-byte sectors */
	uint64_t base;
	uint32_t irq;
	int irq_fd; /* irqfd on the interrupt line (ABI 1.2), -1 without */
	char serial[BLK_ID_BYTES]; /* NUL-padded, not NUL-terminated when 20 bytes long */
	uint8_t config[BLK_CONFIG_SIZE];
	uint8_t *bounce; /* BLK_BOUNCE bytes, 4 KiB aligned (cache = none) */
	uint8_t *zeros; /* BLK_BOUNCE zero bytes, 4 KiB aligned (write zeroes) */
	struct iovec iov[BLK_QUEUE_SIZE];
	struct virtio_chain chain;
	/* Queue notifications and the I/O thread (virtio-worker.h): with the thread, requests
	 * are served outside the core's device lock, the worker's lock guarding vm, dropped
	 * during each request's I/O; without it, in the handlers. */
	struct virtio_worker w;
	char *path; /* the image, for messages */
	bool f_discard, f_write_zeroes; /* negotiated, as read when the request was taken */
	/* statistics, logged with -v when the device goes (self-kicks: w.n_self_kicks) */
	uint64_t n_requests, n_serves, n_empty_serves;
	/* `smolvm ctl stats` (blk_stats), updated under the worker's lock after each request */
	struct blk_counters {
		uint64_t reads, writes, flushes, discards, write_zeroes, get_ids, unsupported;
		uint64_t errors; /* requests answered with a status other than OK */
		uint64_t read_bytes, write_bytes;
		/* service time (from the chain taken to its status written) of one request in
		 * BLK_LATENCY_SAMPLE (the first, the 17th, ...), microseconds, in disjoint buckets
		 * [0,10), [10,100), ..., [100000, inf) */
		uint64_t latency_us[BLK_LATENCY_BUCKETS];
		uint64_t served; /* requests, sampled or not */
	} stat;
};

/* The device op stats (ABI 1.6): the queue's counters (virtio_worker_stats) and the disk's. */
void blk_stats(void *state, smol_stat_fn *put, void *ctx);

/* Snapshots (blk-snap.c): the device ops save, load, pause and resume (ABI 1.3). */
int blk_save(void *state, struct smol_snap_writer *w);
int blk_load(void *state, struct smol_snap_reader *r);
void blk_pause(void *state);
void blk_resume(void *state);

/* The worker's serve callback: serves up to a queue's worth of available requests (with
 * the thread: worker lock held, released during each request's I/O), interrupts once if the
 * driver wants, and returns whether more are waiting. */
bool blk_serve(void *opaque, unsigned index);

#endif
