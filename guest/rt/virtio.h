/*
 * smolvm guest kit: a small, polled virtio-mmio driver (virtio 1.2, register
 * layout version 2 only: no legacy devices) with split virtqueues and
 * virtio-blk requests, plus TSC timing for timeouts and benchmarks.
 *
 * Everything is polled: the driver suppresses interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT,
 * or with EVENT_IDX a used_event kept far ahead) and never takes one (the kit has no
 * IDT). Every wait is bounded by a TSC timeout and reports instead of hanging.
 * vblk_request() has one request in flight, in descriptors 0..; the queued API
 * (vblk_queue_*) keeps up to VBLK_MAX_DEPTH in flight, each slot in its own run of
 * descriptors, and with EVENT_IDX notifies only when the device asked for it.
 *
 * Guest-physical == virtual (the kit identity-maps the first 4 GiB), so
 * buffers are passed by pointer and must live below 4 GiB (static .bss is).
 */
#ifndef SMOLVM_GUEST_VIRTIO_H
#define SMOLVM_GUEST_VIRTIO_H

#include "guest.h"

/* Register offsets, status and feature bits, ring flags: the numbers the device side
 * uses too (devices/virtio/virtio-spec.h). */
#include "virtio-spec.h"

/* ---- split virtqueue (2.7) --------------------------------------------- */

#define VIRTQ_MAX 128 /* queue size the driver uses at most */

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VIRTQ_MAX];
	uint16_t used_event;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[VIRTQ_MAX];
	uint16_t avail_event;
};

/* The rings of one queue, in RAM the driver owns (one per device, static). */
struct virtq_mem {
	struct virtq_desc desc[VIRTQ_MAX] __attribute__((aligned(4096)));
	struct virtq_avail avail __attribute__((aligned(4096)));
	struct virtq_used used __attribute__((aligned(4096)));
};

struct virtq {
	uint16_t num; /* queue size in use (power of 2, <= VIRTQ_MAX) */
	uint16_t avail_idx; /* next avail->idx the driver publishes */
	uint16_t published_idx; /* avail->idx as last written */
	uint16_t used_idx; /* next used->idx the driver expects */
	struct virtq_mem *mem;
};

/* ---- device ------------------------------------------------------------ */

#define VIRTIO_MAX_DEVICES 8

struct virtio_mmio_loc {
	uint64_t base;
	uint64_t size;
	uint32_t irq;
};

struct virtio_dev {
	uint64_t base;
	uint32_t device_id;
	uint32_t vendor_id;
	uint64_t device_features; /* as offered */
	uint64_t features; /* negotiated */
	uint64_t want_features; /* what virtio_dev_init was asked for (for re-init) */
	struct virtq vq; /* queue 0 */
	char err[96]; /* why the last failing call failed */
};

/* Errors returned (negated) by the functions below. */
enum {
	VIRTIO_OK = 0,
	VIRTIO_ENODEV = 1, /* no magic / wrong version / device id 0 */
	VIRTIO_EFEATURES = 2, /* VERSION_1 not offered or FEATURES_OK not accepted */
	VIRTIO_EQUEUE = 3, /* queue 0 missing or already live */
	VIRTIO_ETIMEDOUT = 4, /* no used entry / reset not acknowledged in time */
	VIRTIO_ENEEDS_RESET = 5, /* device set DEVICE_NEEDS_RESET */
	VIRTIO_EINVAL = 6, /* bad request from the caller */
	VIRTIO_EPROTO = 7, /* device returned something impossible (wrong id, len) */
};

const char *virtio_strerror(int err); /* accepts err or -err */

/*
 * Collects virtio-mmio devices from the command line's
 * virtio_mmio.device=<size>@<base>:<irq>[:<id>] words (Linux's format: size
 * and base take 0x prefixes and K/M/G suffixes), in command-line order. With
 * no such word, scans QEMU microvm's transport window (0xfeb00000 + 0x200*n,
 * n < 32) for the magic value and a non-zero device id. Returns the count.
 */
int virtio_mmio_find(struct virtio_mmio_loc *locs, int max, bool *scanned);

/* Register access. */
uint32_t virtio_read(const struct virtio_dev *d, uint32_t off);
void virtio_write(const struct virtio_dev *d, uint32_t off, uint32_t v);
uint8_t virtio_get_status(const struct virtio_dev *d);

/* Identifies the device at base: magic, version 2, device id. No writes. */
int virtio_dev_probe(struct virtio_dev *d, uint64_t base);

/*
 * The full initialisation of 3.1.1: reset, ACKNOWLEDGE, DRIVER, features
 * (accepts device & (want | VERSION_1)), FEATURES_OK read back, queue 0 with
 * rings in d's static ring memory, DRIVER_OK. d must have been probed.
 * Returns 0 or -VIRTIO_E*, with d->err saying why; on failure the device is
 * left with FAILED set.
 */
int virtio_dev_init(struct virtio_dev *d, uint64_t want_features);

/* Writes 0 to Status and waits (bounded) until it reads back 0. */
int virtio_dev_reset(struct virtio_dev *d);

/* virtio_dev_reset + virtio_dev_init with the same features. */
int virtio_dev_reinit(struct virtio_dev *d);

static inline bool virtio_has(const struct virtio_dev *d, unsigned bit)
{
	return (d->features >> bit) & 1;
}
static inline bool virtio_offers(const struct virtio_dev *d, unsigned bit)
{
	return (d->device_features >> bit) & 1;
}

/*
 * Device-specific configuration reads (width 1, 2, 4 or 8), retried until
 * ConfigGeneration is the same before and after (4.2.2.2).
 */
uint64_t virtio_config_read(const struct virtio_dev *d, uint32_t off, unsigned width);

/*
 * Puts head into the avail ring, publishes avail->idx and notifies queue 0.
 * virtq_publish_idx publishes an arbitrary avail index (hostile tests).
 */
void virtq_submit(struct virtio_dev *d, uint16_t head);
void virtq_publish_idx(struct virtio_dev *d, uint16_t idx);

/*
 * virtq_add puts head into the avail ring without publishing it; virtq_kick
 * publishes everything added since the last publish and notifies queue 0,
 * unless EVENT_IDX is negotiated and avail_event says the device is still
 * working through the ring (2.7.10). Returns whether it notified.
 */
void virtq_add(struct virtio_dev *d, uint16_t head);
bool virtq_kick(struct virtio_dev *d);
/* Publishes what was added without notifying: the device sees it on its next look. */
void virtq_publish(struct virtio_dev *d);

/*
 * Waits up to timeout_us for the next used entry; returns 0 with *id, *len
 * filled, -VIRTIO_ENEEDS_RESET if the device set DEVICE_NEEDS_RESET, or
 * -VIRTIO_ETIMEDOUT.
 */
int virtq_wait(struct virtio_dev *d, uint64_t timeout_us, uint32_t *id, uint32_t *len);

/* ---- virtio-blk (5.2; constants in virtio-spec.h) ---------------------- */

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

#define VBLK_MAX_DEPTH 32 /* queued requests in flight at most */

struct virtio_blk {
	struct virtio_dev dev;
	uint64_t capacity; /* sectors */
	uint32_t blk_size; /* 512 unless BLK_SIZE */
	uint32_t seg_max; /* 0 = not offered */
	uint32_t size_max; /* 0 = not offered */
	bool ro;
	bool flush;
	uint64_t timeout_us; /* per request, default 5 s */
	/* queued requests (vblk_queue_*) */
	unsigned depth; /* slots; 0 until vblk_queue_setup */
	unsigned stride; /* descriptors per slot */
	uint32_t slot_max_len[VBLK_MAX_DEPTH]; /* used.len allowed, 0 = slot free */
};

struct vblk_seg {
	void *buf;
	uint32_t len;
};

/* Probes + initialises a virtio-blk device at base and reads its config. */
int vblk_init(struct virtio_blk *b, uint64_t base);
/* The same, also accepting the device's offer of the extra feature bits (e.g.
 * 1 << VIRTIO_F_EVENT_IDX). */
int vblk_init_features(struct virtio_blk *b, uint64_t base, uint64_t extra);
/* Re-initialises after a reset (e.g. NEEDS_RESET) and re-reads the config. */
int vblk_reinit(struct virtio_blk *b);

/*
 * One request: header, nseg data segments (device-writable for IN and
 * GET_ID), status byte. Returns 0 when the device completed it (*status is
 * the device's status byte), else -VIRTIO_E*.
 */
int vblk_request(struct virtio_blk *b, uint32_t type, uint64_t sector, const struct vblk_seg *segs,
                 unsigned nseg, uint8_t *status);
int vblk_read(struct virtio_blk *b, uint64_t sector, void *buf, uint32_t len, uint8_t *status);
int vblk_write(struct virtio_blk *b, uint64_t sector, const void *buf, uint32_t len,
               uint8_t *status);
int vblk_flush(struct virtio_blk *b, uint8_t *status);
int vblk_get_id(struct virtio_blk *b, char id[VIRTIO_BLK_ID_BYTES], uint8_t *status);

/*
 * Queued requests, several in flight. vblk_queue_setup splits the queue into
 * depth slots (1..VBLK_MAX_DEPTH) of queue size / depth descriptors each;
 * -VIRTIO_EINVAL when a slot would hold fewer than 3. vblk_queue_start builds
 * a request in a free slot and adds it to the avail ring (nothing published:
 * call virtq_kick). vblk_queue_reap waits for the next completion and returns
 * its slot and status byte; the slot is free again.
 */
int vblk_queue_setup(struct virtio_blk *b, unsigned depth);
int vblk_queue_start(struct virtio_blk *b, unsigned slot, uint32_t type, uint64_t sector,
                     const struct vblk_seg *segs, unsigned nseg);
int vblk_queue_reap(struct virtio_blk *b, unsigned *slot, uint8_t *status);

/* ---- time (rt/time.c) ---------------------------------------------------- */

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return (uint64_t)hi << 32 | lo;
}

/*
 * TSC frequency in kHz: CPUID 0x40000010 (hypervisor timing leaf), else
 * CPUID 0x15, else calibrated against PIT channel 2; 0 when all fail.
 * *source (may be NULL) names where the figure came from. Cached.
 */
uint64_t tsc_khz(const char **source);

/* Microseconds between two TSC readings (assumes 4 GHz when unknown). */
uint64_t tsc_to_us(uint64_t cycles);

#endif
