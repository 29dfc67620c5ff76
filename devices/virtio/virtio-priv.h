/* Internal to the virtio library: shared by virtio-mmio.c and virtqueue.c. */
#ifndef SMOLVM_VIRTIO_PRIV_H
#define SMOLVM_VIRTIO_PRIV_H

#include "virtio.h"

/* Sets @bits in InterruptStatus and signals the line. */
void virtio_mmio_interrupt(struct virtio_mmio *vm, uint32_t bits);

/* Reports through ops->log at @level (VIRTIO_LOG_*). */
void virtio_log(struct virtio_mmio *vm, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Queue setup when the driver writes QueueReady = 1: checks the ring's placement. */
void virtq_start(struct virtq *q);
/* What is wrong with the placement of a queue's rings (alignment, inside guest RAM for its
 * num), or NULL. */
const char *virtq_rings_bad(struct virtq *q);
/* Back to the reset state (ready 0, addresses 0, num = num_max). */
void virtq_clear(struct virtq *q);

#endif
