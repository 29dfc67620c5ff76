/*
 * The virtio-mmio transport, register layout version 2 (virtio 1.2, section 4.2).
 *
 * Rules enforced (the driver is hostile):
 *  - registers below 0x100 take 32-bit accesses only: other widths read 0, writes are
 *    ignored; config space (0x100 + config_size) takes 1, 2, 4 and 8-byte accesses inside
 *    its bounds, outside them reads 0 and writes are ignored;
 *  - Status bits are only added in the order ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK
 *    (a bit whose predecessor is missing is dropped); a write that would clear a bit is
 *    ignored, except 0, which resets the device; FAILED is taken at any time; NEEDS_RESET
 *    is the device's and survives the driver's writes;
 *  - FEATURES_OK is only set when the accepted features are a subset of the offered ones
 *    and include VIRTIO_F_VERSION_1 (the driver reads Status back and sees it clear);
 *  - DriverFeatures is writable between DRIVER and FEATURES_OK only;
 *  - queue registers (QueueNum, addresses) are writable while QueueReady is 0 only; QueueNum
 *    must be a power of 2 <= QueueNumMax: another value makes QueueReady fail (the queue is
 *    broken, NEEDS_RESET); QueueReady = 1 needs FEATURES_OK;
 *  - QueueNotify is served only after DRIVER_OK, without NEEDS_RESET, for a ready queue.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "virtio-priv.h"

#define STATUS_ORDERED                                                                             \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK)

void virtio_log(struct virtio_mmio *vm, int level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!vm->ops->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vm->ops->log(vm->opaque, level, msg);
}

int virtio_mmio_init(struct virtio_mmio *vm, const struct virtio_mmio_ops *ops, void *opaque,
                     uint32_t device_id, uint64_t features, unsigned n_queues, uint16_t queue_max,
                     uint32_t config_size)
{
	if (!ops || !ops->gpa_ptr || !ops->irq || !ops->queue_notify)
		return -EINVAL;
	if (n_queues == 0 || n_queues > VIRTIO_MAX_QUEUES || queue_max == 0 ||
	    queue_max > VIRTQ_MAX_SIZE || (queue_max & (queue_max - 1)) || config_size > 0x100)
		return -EINVAL;
	memset(vm, 0, sizeof(*vm));
	vm->ops = ops;
	vm->opaque = opaque;
	vm->device_id = device_id;
	vm->device_features = features | (1ull << VIRTIO_F_VERSION_1);
	vm->config_size = config_size;
	vm->n_queues = n_queues;
	for (unsigned i = 0; i < n_queues; i++) {
		vm->queues[i].vm = vm;
		vm->queues[i].index = (uint16_t)i;
		vm->queues[i].num_max = queue_max;
		virtq_clear(&vm->queues[i]);
	}
	return 0;
}

struct virtq *virtio_mmio_queue(struct virtio_mmio *vm, unsigned index)
{
	return index < vm->n_queues ? &vm->queues[index] : NULL;
}

bool virtio_mmio_has_feature(const struct virtio_mmio *vm, unsigned bit)
{
	return bit < 64 && (vm->status & VIRTIO_STATUS_FEATURES_OK) &&
	       ((vm->driver_features >> bit) & 1);
}

void virtio_mmio_interrupt(struct virtio_mmio *vm, uint32_t bits)
{
	vm->isr |= bits;
	vm->ops->irq(vm->opaque, 1);
}

void virtio_mmio_config_changed(struct virtio_mmio *vm)
{
	vm->config_generation++;
	if (vm->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_interrupt(vm, VIRTIO_INT_CONFIG);
}

void virtio_mmio_set_needs_reset(struct virtio_mmio *vm, const char *why)
{
	if (vm->status & VIRTIO_STATUS_NEEDS_RESET)
		return; /* said once: a guest must not be able to flood the host's log */
	virtio_log(vm, VIRTIO_LOG_GUEST_ERROR, "device needs a reset: %s", why);
	vm->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (vm->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_interrupt(vm, VIRTIO_INT_CONFIG);
}

void virtio_mmio_reset(struct virtio_mmio *vm)
{
	bool had_irq = vm->isr != 0;

	vm->status = 0;
	vm->driver_features = 0;
	vm->device_features_sel = vm->driver_features_sel = 0;
	vm->queue_sel = 0;
	vm->isr = 0;
	for (unsigned i = 0; i < vm->n_queues; i++)
		virtq_clear(&vm->queues[i]);
	if (had_irq)
		vm->ops->irq(vm->opaque, 0);
	if (vm->ops->reset)
		vm->ops->reset(vm->opaque);
}

bool virtio_mmio_queue_live(struct virtio_mmio *vm, uint32_t index)
{
	struct virtq *q = virtio_mmio_queue(vm, index);

	if ((vm->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) !=
	    VIRTIO_STATUS_DRIVER_OK)
		return false;
	return q && q->ready && !q->broken;
}

void virtio_mmio_queue_notify(struct virtio_mmio *vm, uint32_t index)
{
	if (virtio_mmio_queue_live(vm, index))
		vm->ops->queue_notify(vm->opaque, index);
}

static void status_write(struct virtio_mmio *vm, uint32_t v)
{
	uint32_t cur = vm->status, drv = v & (STATUS_ORDERED | VIRTIO_STATUS_FAILED), add;
	uint64_t unknown;

	if ((v & 0xff) == 0) {
		virtio_mmio_reset(vm);
		return;
	}
	if ((cur & (STATUS_ORDERED | VIRTIO_STATUS_FAILED)) & ~drv) {
		virtio_log(vm, VIRTIO_LOG_GUEST_WARN,
		           "Status 0x%x would clear bits of 0x%x: ignored", v, cur);
		return;
	}
	add = drv & ~cur;
	if ((add & VIRTIO_STATUS_DRIVER) && !((cur | add) & VIRTIO_STATUS_ACKNOWLEDGE))
		add &= ~VIRTIO_STATUS_DRIVER;
	if ((add & VIRTIO_STATUS_FEATURES_OK) && !((cur | add) & VIRTIO_STATUS_DRIVER))
		add &= ~VIRTIO_STATUS_FEATURES_OK;
	if (add & VIRTIO_STATUS_FEATURES_OK) {
		unknown = vm->driver_features & ~vm->device_features;
		if (unknown || !((vm->driver_features >> VIRTIO_F_VERSION_1) & 1)) {
			virtio_log(vm, VIRTIO_LOG_GUEST_WARN, "features 0x%llx refused: %s",
			           (unsigned long long)vm->driver_features,
			           unknown ? "not offered" : "no VIRTIO_F_VERSION_1");
			add &= ~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	if ((add & VIRTIO_STATUS_DRIVER_OK) && !((cur | add) & VIRTIO_STATUS_FEATURES_OK))
		add &= ~VIRTIO_STATUS_DRIVER_OK;
	vm->status = cur | add;
}

static void set_half(uint64_t *field, bool high, uint32_t v)
{
	if (high)
		*field = (*field & 0xffffffffull) | ((uint64_t)v << 32);
	else
		*field = (*field & ~0xffffffffull) | v;
}

static void queue_ready_write(struct virtio_mmio *vm, struct virtq *q, uint32_t v)
{
	if (v == 0) {
		q->ready = false;
		return;
	}
	if (v != 1 || q->ready)
		return;
	if (!(vm->status & VIRTIO_STATUS_FEATURES_OK) || (vm->status & VIRTIO_STATUS_FAILED)) {
		virtio_log(vm, VIRTIO_LOG_GUEST_WARN,
		           "queue %u: QueueReady before FEATURES_OK: ignored", q->index);
		return;
	}
	if (q->num == 0) {
		q->ready = true;
		q->broken = true;
		virtio_mmio_set_needs_reset(vm, "QueueReady with an invalid QueueNum");
		return;
	}
	virtq_start(q);
}

static uint64_t config_read(struct virtio_mmio *vm, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	if ((size != 1 && size != 2 && size != 4 && size != 8) || off > vm->config_size ||
	    size > vm->config_size - off || !vm->ops->config_read)
		return 0;
	vm->ops->config_read(vm->opaque, (uint32_t)off, &v, size); /* little-endian host */
	return v;
}

uint64_t virtio_mmio_read(struct virtio_mmio *vm, uint64_t off, unsigned size)
{
	struct virtq *q = virtio_mmio_queue(vm, vm->queue_sel);

	if (off >= VIRTIO_MMIO_CONFIG)
		return config_read(vm, off - VIRTIO_MMIO_CONFIG, size);
	if (size != 4 || (off & 3))
		return 0;
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION: return 2;
	case VIRTIO_MMIO_DEVICE_ID: return vm->device_id;
	case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (vm->device_features_sel > 1)
			return 0;
		return (uint32_t)(vm->device_features >> (32 * vm->device_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? q->num_max : 0;
	case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: return vm->isr;
	case VIRTIO_MMIO_STATUS: return vm->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH: return 0xffffffffu; /* no shared memory regions */
	case VIRTIO_MMIO_CONFIG_GENERATION: return vm->config_generation;
	default: return 0; /* write-only or reserved */
	}
}

static void queue_reg_write(struct virtio_mmio *vm, struct virtq *q, uint64_t off, uint32_t v)
{
	if (!q)
		return;
	if (q->ready) {
		virtio_log(vm, VIRTIO_LOG_GUEST_WARN,
		           "queue %u: register 0x%llx written while ready: ignored", q->index,
		           (unsigned long long)off);
		return;
	}
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		q->num = (v && v <= q->num_max && !(v & (v - 1))) ? (uint16_t)v : 0;
		if (!q->num)
			virtio_log(vm, VIRTIO_LOG_GUEST_WARN, "queue %u: QueueNum %u invalid",
			           q->index, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_half(&q->desc, off == VIRTIO_MMIO_QUEUE_DESC_HIGH, v);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		set_half(&q->avail, off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, v);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		set_half(&q->used, off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, v);
		break;
	}
}

void virtio_mmio_write(struct virtio_mmio *vm, uint64_t off, unsigned size, uint64_t value)
{
	struct virtq *q = virtio_mmio_queue(vm, vm->queue_sel);
	uint32_t v = (uint32_t)value;

	if (off >= VIRTIO_MMIO_CONFIG) {
		off -= VIRTIO_MMIO_CONFIG;
		if ((size == 1 || size == 2 || size == 4 || size == 8) && off <= vm->config_size &&
		    size <= vm->config_size - off && vm->ops->config_write)
			vm->ops->config_write(vm->opaque, (uint32_t)off, &value, size);
		return;
	}
	if (size != 4 || (off & 3)) {
		virtio_log(vm, VIRTIO_LOG_GUEST_WARN, "%u-byte write to register 0x%llx: ignored",
		           size, (unsigned long long)off);
		return;
	}
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: vm->device_features_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if ((vm->status & (VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)) !=
		            VIRTIO_STATUS_DRIVER ||
		    vm->driver_features_sel > 1) {
			virtio_log(vm, VIRTIO_LOG_GUEST_WARN,
			           "DriverFeatures written outside negotiation: ignored");
			break;
		}
		set_half(&vm->driver_features, vm->driver_features_sel == 1, v);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: vm->driver_features_sel = v; break;
	case VIRTIO_MMIO_QUEUE_SEL: vm->queue_sel = v; break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (q)
			queue_ready_write(vm, q, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		if (v < vm->n_queues)
			vm->queues[v].mmio_notifications++;
		virtio_mmio_queue_notify(vm, v);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		if (vm->isr && !(vm->isr &= ~v))
			vm->ops->irq(vm->opaque, 0);
		break;
	case VIRTIO_MMIO_STATUS: status_write(vm, v); break;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: queue_reg_write(vm, q, off, v); break;
	default: break; /* read-only or reserved */
	}
}
