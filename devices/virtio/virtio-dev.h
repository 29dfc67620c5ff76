/*
 * virtio helper library: what every virtio-mmio device plugin does the same way with the host
 * table: claim its interrupt line, pulse it (through an irqfd when there is one), describe its
 * window and line to the guest, and route the transport's log levels. Not ABI.
 */
#ifndef SMOLVM_VIRTIO_DEV_H
#define SMOLVM_VIRTIO_DEV_H

#include <stdint.h>

#include <smolvm/sdk.h>

/* The size of a virtio-mmio device's window (register layout version 2, config space). */
#define VIRTIO_MMIO_WINDOW 0x200

/*
 * The device's `irq` key, @irq as cfg_u64 read it (UINT64_MAX: absent): that line, or the
 * first free one from 5 up. The line in *@out and 0, or -EINVAL after the device or the core
 * said why.
 */
int virtio_dev_claim_irq(const struct smol_host *h, struct smol_dev *dev, uint64_t irq,
                         uint32_t *out);

/* An edge-triggered interrupt: a write to @irq_fd when there is one (KVM injects it without a
 * trip through the core), else irq_pulse on @line. */
void virtio_dev_pulse(const struct smol_host *h, struct smol_dev *dev, int irq_fd, uint32_t line);

/* A virtio-mmio device to ACPI (LNRO0005, as Linux's virtio_mmio matches it), or to the kernel
 * command line without ACPI. */
int virtio_dev_describe(const struct smol_host *h, struct smol_describe *d, uint64_t base,
                        uint32_t line);

/* virtio_mmio_ops::log for a device: the snapshot's refusals as errors, the guest's errors as
 * warnings, its warnings at debug level (a guest must not flood the log). */
void virtio_dev_log(const struct smol_host *h, struct smol_dev *dev, int level, const char *msg);

#endif
