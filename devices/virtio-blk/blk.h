/* virtio-blk: state shared by the plugin (virtio-blk.c) and the request code (blk-req.c). */
#ifndef SMOLVM_VIRTIO_BLK_H
#define SMOLVM_VIRTIO_BLK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <smolvm/sdk.h>

#include "virtio.h"

#define BLK_WINDOW 0x200
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2) /* data segments; plus header and status */
#define BLK_SECTOR VIRTIO_BLK_SECTOR
#define BLK_ID_BYTES VIRTIO_BLK_ID_BYTES
#define BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per segment */
#define BLK_MAX_DISCARD_SEG 16
#define BLK_BOUNCE (1u << 20) /* cache = none: aligned bounce buffer */
#define BLK_MAX_BLOCK 65536 /* block_size and direct-I/O alignment at most */

/* struct virtio_blk_config (5.2.4) up to write_zeroes_may_unmap and its padding. */
#define BLK_CONFIG_SIZE 60

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
	int kick_fd; /* ioeventfd on QueueNotify (ABI 1.2), -1 without */
	int irq_fd; /* irqfd on the interrupt line (ABI 1.2), -1 without */
	char serial[BLK_ID_BYTES]; /* NUL-padded, not NUL-terminated when 20 bytes long */
	uint8_t config[BLK_CONFIG_SIZE];
	uint8_t *bounce; /* BLK_BOUNCE bytes, 4 KiB aligned (cache = none) */
	uint8_t *zeros; /* BLK_BOUNCE zero bytes, 4 KiB aligned (write zeroes) */
	struct iovec iov[BLK_QUEUE_SIZE];
	struct virtio_chain chain;
	/* The I/O thread (when the backend takes an ioeventfd for QueueNotify): it serves the
	 * queue outside the core's device lock and drops qlock during each request's I/O, so
	 * register accesses from vCPUs wait for at most one request, never a whole batch.
	 * qlock guards the transport and queue state (b->vm) between it and the handlers;
	 * busy says it is inside a request with qlock released, and a reset waits on idle
	 * until it is not. want_idle counts such waiters: while it is not 0 the thread takes
	 * no new request and waits on idle too, so a reset waits for one request, not for
	 * the ring to drain. stopping (destroy) makes it finish the request it has and
	 * leave. Without the thread, requests are served in the handlers. */
	bool threaded;
	bool thread_started;
	pthread_t io_thread;
	int stop_fd;
	pthread_mutex_t qlock;
	pthread_cond_t idle;
	bool busy;
	unsigned want_idle;
	bool stopping;
	/* pause() (ABI 1.3, before a snapshot): no request is taken until resume(). With the
	 * thread, paused holds one count of want_idle; without it, a notification that comes
	 * meanwhile sets kick_missed and resume() kicks the queue for it. */
	bool paused;
	bool kick_missed;
	char *path; /* the image, for messages */
	bool f_discard, f_write_zeroes; /* negotiated, as read when the request was taken */
	/* statistics, logged with -v when the device goes */
	uint64_t n_requests, n_serves, n_empty_serves, n_self_kicks;
};

/* The transport lock (qlock) with the I/O thread, nothing without it (the core's device
 * lock is enough then). */
void blk_lock(struct blk *b);
void blk_unlock(struct blk *b);
/* With blk_lock held: until the I/O thread is out of the request it took (see struct blk). */
void blk_wait_idle(struct blk *b);

/* Snapshots (blk-snap.c): the device ops save, load, pause and resume (ABI 1.3). */
int blk_save(void *state, struct smol_snap_writer *w);
int blk_load(void *state, struct smol_snap_reader *r);
void blk_pause(void *state);
void blk_resume(void *state);

/* Serves up to a queue's worth of available requests (with b->threaded: called with qlock
 * held, released during each request's I/O), interrupts once if the driver wants, and
 * returns whether more are waiting (without the thread it has kicked itself for them). */
bool blk_serve(struct blk *b, unsigned index);
/* Has the event loop call blk_serve again soon (through kick_fd). */
void blk_kick_self(struct blk *b);

#endif
