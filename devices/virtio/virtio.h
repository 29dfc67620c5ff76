/*
 * virtio helper library: the virtio-mmio transport (register layout version 2, modern only)
 * and split virtqueues (virtio 1.2, sections 2.7 and 4.2). A static library linked into each
 * virtio device plugin: it is NOT part of the plugin ABI and may change freely.
 *
 * A device model fills a struct virtio_mmio_ops (guest memory, interrupt line, queue
 * notifications, reset, config space), calls virtio_mmio_init(), forwards its MMIO handler
 * to virtio_mmio_read()/virtio_mmio_write(), and in its queue_notify callback does:
 *
 *   struct virtq *q = virtio_mmio_queue(vm, index);
 *   while (virtq_pop(q, chain) > 0) {
 *           ... virtq_read()/virtq_write()/virtq_iov() on the chain ...
 *           virtq_push(q, chain->head, bytes_written);
 *   }
 *   virtq_notify(q);    // one interrupt for the batch, if the driver wants one
 *
 * Locking: the library has no lock of its own. Every function must be called with the
 * device's lock held (the core serialises a device's callbacks with it), from any thread.
 * virtio_mmio_queue_notify() is a plain function so that an ioeventfd callback can call it.
 *
 * Guest memory: every guest address goes through ops->gpa_ptr at each access (ring indices,
 * ring entries, descriptors, buffers); no host pointer is kept across calls, so nothing the
 * guest does between two calls can make the library touch memory outside guest RAM. Every
 * value read from the guest is copied once, then validated, then used.
 *
 * Hostile input: a malformed descriptor chain (index out of range, loop, chain longer than
 * the queue, lengths overflowing 32 bits, a buffer outside RAM, a readable descriptor after
 * a writable one, a bad or nested indirect table) fails that request only: virtq_pop()
 * returns it to the driver as used with length 0 and goes on with the next one. A malformed
 * ring (an avail index more than the queue size ahead, a head index out of range, a ring
 * outside RAM) marks the queue broken and sets NEEDS_RESET with a configuration-change
 * interrupt: the queue is not served again until the driver resets the device.
 */
#ifndef SMOLVM_VIRTIO_H
#define SMOLVM_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio-spec.h"

#define VIRTIO_MMIO_VENDOR 0x4c4f4d53u /* "SMOL", our VendorID */

/* Largest queue size the library serves (a power of 2, the split ring's maximum). */
#define VIRTQ_MAX_SIZE 1024u
/* Most queues per device. */
#define VIRTIO_MAX_QUEUES 8u

/* Levels of virtio_mmio_ops::log. The guest's errors (a queue broken) are said once per
 * reset; its warnings may repeat (show them at debug level: a guest must not be able to
 * flood the host's log). A snapshot state refused by virtio_mmio_load() is not the guest's
 * doing (a corrupt file, another configuration): an error for the host's log. */
#define VIRTIO_LOG_GUEST_ERROR 0
#define VIRTIO_LOG_GUEST_WARN 1
#define VIRTIO_LOG_STATE 2

/* One guest buffer of a descriptor chain: guest-physical, not yet checked against RAM. */
struct virtio_seg {
	uint64_t gpa;
	uint32_t len;
	uint32_t write; /* 1: device-writable */
};

/*
 * A descriptor chain as virtq_pop() returns it: the device-readable segments first
 * (seg[0..nread)), then the device-writable ones. At most the queue size segments, indirect
 * tables flattened, sums checked not to overflow 32 bits.
 */
struct virtio_chain {
	uint16_t head; /* descriptor index to pass to virtq_push() */
	uint16_t nseg;
	uint16_t nread;
	uint32_t read_len; /* bytes in the readable segments */
	uint32_t write_len; /* bytes in the writable segments */
	struct virtio_seg seg[VIRTQ_MAX_SIZE];
};

struct virtio_mmio;

/* One split virtqueue. Fields are the library's; devices read them for diagnostics only. */
struct virtq {
	struct virtio_mmio *vm;
	uint16_t index;
	uint16_t num_max; /* QueueNumMax */
	uint16_t num; /* QueueNum: a power of 2, <= num_max */
	bool ready; /* QueueReady */
	bool broken; /* malformed ring seen: not served until reset */
	uint64_t desc, avail, used; /* guest-physical ring addresses */
	uint16_t last_avail; /* next avail ring entry to consume */
	uint16_t used_idx; /* the used index the device published */
	uint16_t signalled_used; /* used index at the last interrupt decision */
	uint32_t pushed; /* entries pushed since the last virtq_notify() */
	/* counters since the device was created (not reset, not saved; `smolvm ctl stats`) */
	uint64_t requests; /* chains virtq_pop() handed to the device */
	uint64_t malformed; /* chains it completed as malformed instead */
	uint64_t mmio_notifications; /* QueueNotify writes that reached the transport */
	uint64_t interrupts; /* used-buffer interrupts virtq_notify() raised */
	uint64_t suppressed; /* ... and those the driver suppressed */
};

/* What the device model gives the transport. Callbacks run under the device's lock. */
struct virtio_mmio_ops {
	/* Required: checked guest memory (smol_host::gpa_ptr): NULL unless all of it is RAM. */
	void *(*gpa_ptr)(void *opaque, uint64_t gpa, uint64_t len);
	/* Required: interrupt line. level 1 on every new interrupt (an edge-triggered line
	 * pulses), 0 when InterruptStatus became 0 (a level-triggered line drops). */
	void (*irq)(void *opaque, int level);
	/* Required: the driver notified queue @index (ready, DRIVER_OK, not broken). */
	void (*queue_notify)(void *opaque, unsigned index);
	/* Optional: the device was reset (Status written 0, or virtio_mmio_reset()). */
	void (*reset)(void *opaque);
	/* Optional: config space accesses, already bounds-checked against config_size. Reads
	 * fill @buf (zeroed beforehand); writes are ignored without config_write. */
	void (*config_read)(void *opaque, uint32_t off, void *buf, unsigned len);
	void (*config_write)(void *opaque, uint32_t off, const void *buf, unsigned len);
	/* Optional: diagnostics (level: VIRTIO_LOG_*). */
	void (*log)(void *opaque, int level, const char *msg);
};

/* Transport state. Embed it in the device's state; initialise with virtio_mmio_init(). */
struct virtio_mmio {
	const struct virtio_mmio_ops *ops;
	void *opaque;
	uint32_t device_id;
	uint64_t device_features; /* offered (VIRTIO_F_VERSION_1 always included) */
	uint64_t driver_features; /* accepted by the driver */
	uint32_t device_features_sel, driver_features_sel;
	uint32_t queue_sel;
	uint32_t status;
	uint32_t isr; /* InterruptStatus */
	uint32_t config_generation;
	uint32_t config_size;
	unsigned n_queues;
	struct virtq queues[VIRTIO_MAX_QUEUES];
};

/*
 * Initialises @vm for a device with @n_queues queues of at most @queue_max entries (a power
 * of 2, <= VIRTQ_MAX_SIZE), offering @features and a config space of @config_size bytes
 * (<= 0x100 in a 0x200 window). 0 or -EINVAL.
 */
int virtio_mmio_init(struct virtio_mmio *vm, const struct virtio_mmio_ops *ops, void *opaque,
                     uint32_t device_id, uint64_t features, unsigned n_queues, uint16_t queue_max,
                     uint32_t config_size);

/* The device's MMIO handlers: offsets relative to the window's base. */
uint64_t virtio_mmio_read(struct virtio_mmio *vm, uint64_t off, unsigned size);
void virtio_mmio_write(struct virtio_mmio *vm, uint64_t off, unsigned size, uint64_t value);

/* Is queue @index to be served: the device DRIVER_OK without NEEDS_RESET, the queue ready
 * and not broken? */
bool virtio_mmio_queue_live(struct virtio_mmio *vm, uint32_t index);

/* A QueueNotify for queue @index, from an MMIO write or an ioeventfd: ops->queue_notify when
 * the queue is live, else ignored. */
void virtio_mmio_queue_notify(struct virtio_mmio *vm, uint32_t index);

/* Device reset (machine reset): as if the driver wrote 0 to Status. */
void virtio_mmio_reset(struct virtio_mmio *vm);

/* The device changed its config space: bump ConfigGeneration, raise a config interrupt. */
void virtio_mmio_config_changed(struct virtio_mmio *vm);

/* The device cannot go on: set NEEDS_RESET and (after DRIVER_OK) raise a config interrupt. */
void virtio_mmio_set_needs_reset(struct virtio_mmio *vm, const char *why);

/* Was feature @bit negotiated (offered, accepted and FEATURES_OK)? */
bool virtio_mmio_has_feature(const struct virtio_mmio *vm, unsigned bit);

/* Queue @index, or NULL past n_queues. */
struct virtq *virtio_mmio_queue(struct virtio_mmio *vm, unsigned index);

/*
 * Takes the next available chain into @c. 1: a chain to serve (complete it with
 * virtq_push()); 0: none available; -EIO: the queue is broken (NEEDS_RESET was set).
 * Malformed chains are completed with used length 0 and skipped.
 */
int virtq_pop(struct virtq *q, struct virtio_chain *c);

/*
 * For a caller about to stop taking chains: true when the driver has made entries available
 * that virtq_pop() has not taken yet (come back for them: the driver may not notify again).
 * With EVENT_IDX it first asks the driver for a notification at the next entry, so false
 * means one will come.
 */
bool virtq_pending(struct virtq *q);

/*
 * Gives back the last @n chains virtq_pop() returned, none of them pushed (a device that took
 * buffers for a packet and found too few): the next virtq_pop() returns them again. @mark is
 * q->last_avail before the first of them was taken. false (nothing changed) when chains
 * virtq_pop() completed as malformed lie among them: those must not be taken twice; the
 * caller then pushes its @n chains itself.
 */
bool virtq_unpop(struct virtq *q, uint16_t mark, unsigned n);

/*
 * For a device waiting for more buffers than the driver has made available (they are too
 * few for its packet): asks the driver to notify at its next new entry (with EVENT_IDX,
 * avail_event is set to the current avail index). true when entries came meanwhile (look
 * again now), false when a notification will come.
 */
bool virtq_want_more(struct virtq *q);

/*
 * Several chains returned as one (a network frame spread over receive buffers): the driver
 * must not see the first before the last. virtq_fill() writes the @i-th used entry after the
 * published ones, unpublished; virtq_flush() publishes @n filled entries with one index
 * update. 0, or -EIO (queue broken).
 */
int virtq_fill(struct virtq *q, unsigned i, uint16_t head, uint32_t len);
int virtq_flush(struct virtq *q, unsigned n);

/* Returns chain @head to the driver with @len bytes written. 0, or -EIO (queue broken). */
int virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* Raises the used-buffer interrupt for what was pushed since the last call, unless the
 * driver suppressed it (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). */
void virtq_notify(struct virtq *q);

/*
 * Copies @len bytes at byte offset @off of the chain's readable part into @buf, or @buf into
 * its writable part. 0, -ERANGE when the part is shorter than off + len, -EFAULT when a
 * segment is not in guest RAM (nothing is copied past the fault).
 */
int virtq_read(struct virtq *q, const struct virtio_chain *c, uint32_t off, void *buf,
               uint32_t len);
int virtq_write(struct virtq *q, const struct virtio_chain *c, uint32_t off, const void *buf,
                uint32_t len);

/*
 * Host iovecs for bytes [off, off+len) of the chain's readable (@writable false) or writable
 * part, for preadv/pwritev straight into guest memory. The number of iovecs (<= @max), or
 * -ERANGE, -EFAULT (a segment not in RAM), -E2BIG (more than @max needed).
 */
int virtq_iov(struct virtq *q, const struct virtio_chain *c, bool writable, uint32_t off,
              uint32_t len, struct iovec *iov, unsigned max);

/*
 * Snapshots. The transport's state (registers and queues) goes through the SDK's snap_*
 * stream functions as one section the device writes inside its own state, from its own
 * save() and load() (sdk.h, ABI 1.3). All fields little-endian, in this order:
 *
 *   le32 layout version (VIRTIO_MMIO_STATE_VERSION)   le32 DeviceID
 *   le64 offered features    le64 driver (accepted) features
 *   le32 DeviceFeaturesSel   le32 DriverFeaturesSel   le32 QueueSel
 *   le32 Status              le32 InterruptStatus     le32 ConfigGeneration
 *   le32 number of queues, then per queue (40 bytes):
 *     le16 QueueNumMax  le16 QueueNum  u8 QueueReady  u8 broken
 *     le64 desc  le64 driver (avail)  le64 device (used)
 *     le16 last_avail  le16 used_idx  le16 signalled_used  le32 pushed
 *
 * Save only a device whose queues hold no chain taken and not returned (paused: every
 * virtq_pop() answered by its virtq_push()). 0 or snap_write()'s error.
 */
#define VIRTIO_MMIO_STATE_VERSION 1
#define VIRTIO_MMIO_STATE_HEADER 52
#define VIRTIO_MMIO_STATE_QUEUE 40

struct smol_host;
struct smol_snap_writer;
struct smol_snap_reader;

int virtio_mmio_save(const struct virtio_mmio *vm, const struct smol_host *h,
                     struct smol_snap_writer *w);

/*
 * Loads what virtio_mmio_save() wrote into @vm, made by virtio_mmio_init() as the device is
 * configured now, with guest RAM in place. Every field is checked as if a hostile guest had
 * written it, and against the device as configured: the same DeviceID, queues and
 * QueueNumMax, the same offered features (a difference is refused naming the feature); a
 * Status reachable by the rules of virtio_mmio_write(); accepted features within the offered
 * ones; InterruptStatus bits the transport knows; QueueNum 0 or a power of 2 <= QueueNumMax;
 * for a ready queue that is not broken: FEATURES_OK, rings aligned and inside guest RAM (as
 * QueueReady checks), no chain held (last_avail == used_idx) and the interrupt bookkeeping
 * consistent (used_idx - signalled_used == pushed, mod 2^16). Nothing is changed unless all
 * of it is good. No interrupt is raised: the core restores the line's level.
 * 0; -ENOTSUP for a newer layout; -EINVAL for a state refused (after ops->log at
 * VIRTIO_LOG_STATE says why); snap_read()'s error (-EBADMSG) for a truncated one.
 */
int virtio_mmio_load(struct virtio_mmio *vm, const struct smol_host *h, struct smol_snap_reader *r);

/* Is queue @index live with entries the device has not taken (virtq_pending())? After a
 * load: work the driver posted before the snapshot, which it will not notify again. */
bool virtio_mmio_queue_pending(struct virtio_mmio *vm, unsigned index);

/* The specification's name of feature @bit (a reserved bit, or one of @device_id's), or
 * NULL. */
const char *virtio_feature_name(uint32_t device_id, unsigned bit);

#endif
