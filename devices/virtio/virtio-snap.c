/*
 * Snapshots of the virtio-mmio transport and its split virtqueues: the layout is in
 * virtio.h. Load treats the state as hostile: it accepts exactly the states the transport
 * can reach under virtio_mmio_write()'s rules (a guest can only have made those), for the
 * device as it is configured now, and changes nothing until all of it was checked.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <smolvm/sdk.h>

#include "dev-snap.h"
#include "virtio-priv.h"

#define STATUS_KNOWN                                                                               \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)

/* ---- little-endian fields in a byte buffer -------------------------------------------- */

#define put16(p, v) dev_le_put(p, v, 2)
#define put32(p, v) dev_le_put(p, v, 4)
#define put64(p, v) dev_le_put(p, v, 8)
#define get16(p) ((uint16_t)dev_le_get(p, 2))
#define get32(p) ((uint32_t)dev_le_get(p, 4))
#define get64(p) dev_le_get(p, 8)

/* ---- feature names -------------------------------------------------------------------- */

struct feature_name {
	uint32_t device_id; /* 0: a reserved bit, any device */
	unsigned bit;
	const char *name;
};

static const struct feature_name feature_names[] = {
	{ 0, VIRTIO_F_INDIRECT_DESC, "VIRTIO_F_INDIRECT_DESC" },
	{ 0, VIRTIO_F_EVENT_IDX, "VIRTIO_F_EVENT_IDX" },
	{ 0, VIRTIO_F_VERSION_1, "VIRTIO_F_VERSION_1" },
	{ 0, VIRTIO_F_ACCESS_PLATFORM, "VIRTIO_F_ACCESS_PLATFORM" },
	{ 0, VIRTIO_F_RING_PACKED, "VIRTIO_F_RING_PACKED" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_SIZE_MAX, "VIRTIO_BLK_F_SIZE_MAX" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_SEG_MAX, "VIRTIO_BLK_F_SEG_MAX" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_GEOMETRY, "VIRTIO_BLK_F_GEOMETRY" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_RO, "VIRTIO_BLK_F_RO" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_BLK_SIZE, "VIRTIO_BLK_F_BLK_SIZE" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_FLUSH, "VIRTIO_BLK_F_FLUSH" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_TOPOLOGY, "VIRTIO_BLK_F_TOPOLOGY" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_CONFIG_WCE, "VIRTIO_BLK_F_CONFIG_WCE" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_DISCARD, "VIRTIO_BLK_F_DISCARD" },
	{ VIRTIO_ID_BLOCK, VIRTIO_BLK_F_WRITE_ZEROES, "VIRTIO_BLK_F_WRITE_ZEROES" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_CSUM, "VIRTIO_NET_F_CSUM" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_GUEST_CSUM, "VIRTIO_NET_F_GUEST_CSUM" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_MTU, "VIRTIO_NET_F_MTU" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_MAC, "VIRTIO_NET_F_MAC" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_GUEST_TSO4, "VIRTIO_NET_F_GUEST_TSO4" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_GUEST_TSO6, "VIRTIO_NET_F_GUEST_TSO6" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_GUEST_ECN, "VIRTIO_NET_F_GUEST_ECN" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_GUEST_UFO, "VIRTIO_NET_F_GUEST_UFO" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_HOST_TSO4, "VIRTIO_NET_F_HOST_TSO4" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_HOST_TSO6, "VIRTIO_NET_F_HOST_TSO6" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_HOST_ECN, "VIRTIO_NET_F_HOST_ECN" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_HOST_UFO, "VIRTIO_NET_F_HOST_UFO" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_MRG_RXBUF, "VIRTIO_NET_F_MRG_RXBUF" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_STATUS, "VIRTIO_NET_F_STATUS" },
	{ VIRTIO_ID_NET, VIRTIO_NET_F_CTRL_VQ, "VIRTIO_NET_F_CTRL_VQ" },
};

const char *virtio_feature_name(uint32_t device_id, unsigned bit)
{
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (feature_names[i].bit == bit &&
		    (feature_names[i].device_id == 0 || feature_names[i].device_id == device_id))
			return feature_names[i].name;
	return NULL;
}

/* ---- save ----------------------------------------------------------------------------- */

int virtio_mmio_save(const struct virtio_mmio *vm, const struct smol_host *h,
                     struct smol_snap_writer *w)
{
	uint8_t buf[VIRTIO_MMIO_STATE_HEADER + VIRTIO_MMIO_STATE_QUEUE * VIRTIO_MAX_QUEUES];
	uint8_t *p = buf;

	put32(p, VIRTIO_MMIO_STATE_VERSION);
	put32(p + 4, vm->device_id);
	put64(p + 8, vm->device_features);
	put64(p + 16, vm->driver_features);
	put32(p + 24, vm->device_features_sel);
	put32(p + 28, vm->driver_features_sel);
	put32(p + 32, vm->queue_sel);
	put32(p + 36, vm->status);
	put32(p + 40, vm->isr);
	put32(p + 44, vm->config_generation);
	put32(p + 48, vm->n_queues);
	p += VIRTIO_MMIO_STATE_HEADER;
	for (unsigned i = 0; i < vm->n_queues; i++, p += VIRTIO_MMIO_STATE_QUEUE) {
		const struct virtq *q = &vm->queues[i];

		put16(p, q->num_max);
		put16(p + 2, q->num);
		p[4] = q->ready;
		p[5] = q->broken;
		put64(p + 6, q->desc);
		put64(p + 14, q->avail);
		put64(p + 22, q->used);
		put16(p + 30, q->last_avail);
		put16(p + 32, q->used_idx);
		put16(p + 34, q->signalled_used);
		put32(p + 36, q->pushed);
	}
	return h->snap_write(w, buf, (size_t)(p - buf));
}

/* ---- load ----------------------------------------------------------------------------- */

/* Refuses the state: says why (VIRTIO_LOG_STATE) and returns -EINVAL. */
static int refuse(struct virtio_mmio *vm, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int refuse(struct virtio_mmio *vm, const char *fmt, ...)
{
	char msg[224];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	virtio_log(vm, VIRTIO_LOG_STATE, "snapshot refused: virtio transport: %s", msg);
	return -EINVAL;
}

/* The offered features must be what the device offers now, as configured. */
static int check_offered(struct virtio_mmio *vm, uint64_t saved)
{
	uint64_t diff = saved ^ vm->device_features;
	unsigned bit;
	const char *name;

	if (!diff)
		return 0;
	bit = (unsigned)__builtin_ctzll(diff);
	name = virtio_feature_name(vm->device_id, bit);
	return refuse(vm,
	              "feature %s%s%u%s was %s when the snapshot was taken and is %s now "
	              "(another configuration?)",
	              name ? name : "", name ? " (bit " : "bit ", bit, name ? ")" : "",
	              (saved >> bit) & 1 ? "offered" : "not offered",
	              (saved >> bit) & 1 ? "not offered" : "offered");
}

/* Status bits the transport can have reached, with the driver features they imply. */
static int check_status(struct virtio_mmio *vm, uint32_t st, uint64_t drv, uint64_t offered)
{
	if (st & ~STATUS_KNOWN)
		return refuse(vm, "Status 0x%x has unknown bits", st);
	if (((st & VIRTIO_STATUS_DRIVER) && !(st & VIRTIO_STATUS_ACKNOWLEDGE)) ||
	    ((st & VIRTIO_STATUS_FEATURES_OK) && !(st & VIRTIO_STATUS_DRIVER)) ||
	    ((st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_FEATURES_OK)))
		return refuse(vm,
		              "Status 0x%x skips a step of ACKNOWLEDGE, DRIVER, FEATURES_OK, "
		              "DRIVER_OK",
		              st);
	if (!(st & VIRTIO_STATUS_DRIVER) && drv)
		return refuse(vm, "driver features 0x%llx without DRIVER in Status 0x%x",
		              (unsigned long long)drv, st);
	if (!(st & VIRTIO_STATUS_FEATURES_OK))
		return 0; /* DriverFeatures takes any bits until FEATURES_OK checks them */
	if (drv & ~offered)
		return refuse(vm, "accepted features 0x%llx include 0x%llx, never offered",
		              (unsigned long long)drv, (unsigned long long)(drv & ~offered));
	if (!((drv >> VIRTIO_F_VERSION_1) & 1))
		return refuse(vm, "accepted features 0x%llx lack VIRTIO_F_VERSION_1",
		              (unsigned long long)drv);
	return 0;
}

/* Parses and checks queue @q's 40 bytes at @p into @q (a copy: nothing live changes). */
static int load_queue(struct virtio_mmio *vm, struct virtq *q, const uint8_t *p, uint32_t st)
{
	uint16_t num_max = get16(p), num = get16(p + 2);
	unsigned i = q->index;
	const char *bad;

	if (num_max != q->num_max)
		return refuse(vm, "queue %u: QueueNumMax %u when saved, %u now", i, num_max,
		              q->num_max);
	if (num > num_max || (num & (num - 1)))
		return refuse(vm, "queue %u: QueueNum %u is not a power of 2 up to %u", i, num,
		              num_max);
	if (p[4] > 1 || p[5] > 1)
		return refuse(vm, "queue %u: QueueReady %u, broken %u: not booleans", i, p[4],
		              p[5]);
	q->num = num;
	q->ready = p[4];
	q->broken = p[5];
	q->desc = get64(p + 6);
	q->avail = get64(p + 14);
	q->used = get64(p + 22);
	q->last_avail = get16(p + 30);
	q->used_idx = get16(p + 32);
	q->signalled_used = get16(p + 34);
	q->pushed = get32(p + 36);
	if (!q->ready || q->broken)
		return 0; /* never served as it is: QueueReady = 1 starts it afresh */
	if (num == 0)
		return refuse(vm, "queue %u: ready with QueueNum 0", i);
	if (!(st & VIRTIO_STATUS_FEATURES_OK))
		return refuse(vm, "queue %u: ready without FEATURES_OK (Status 0x%x)", i, st);
	bad = virtq_rings_bad(q);
	if (bad)
		return refuse(vm,
		              "queue %u: %s (desc 0x%llx, driver 0x%llx, device 0x%llx, %u "
		              "entries)",
		              i, bad, (unsigned long long)q->desc, (unsigned long long)q->avail,
		              (unsigned long long)q->used, num);
	if (q->last_avail != q->used_idx)
		return refuse(vm,
		              "queue %u: %u requests taken but not completed (next avail %u, "
		              "used index %u): the device was not paused",
		              i, (uint16_t)(q->last_avail - q->used_idx), q->last_avail,
		              q->used_idx);
	if ((uint16_t)(q->used_idx - q->signalled_used) != (uint16_t)q->pushed)
		return refuse(vm,
		              "queue %u: used index %u, %u entries since the interrupt at %u: "
		              "inconsistent",
		              i, q->used_idx, q->pushed, q->signalled_used);
	return 0;
}

int virtio_mmio_load(struct virtio_mmio *vm, const struct smol_host *h, struct smol_snap_reader *r)
{
	uint8_t buf[VIRTIO_MMIO_STATE_HEADER + VIRTIO_MMIO_STATE_QUEUE * VIRTIO_MAX_QUEUES];
	struct virtio_mmio s = *vm; /* the queues' vm pointers stay &*vm */
	uint32_t version, device_id, nq;
	uint64_t offered;
	int ret;

	ret = h->snap_read(r, buf, VIRTIO_MMIO_STATE_HEADER);
	if (ret) {
		virtio_log(vm, VIRTIO_LOG_STATE, "snapshot refused: virtio transport: truncated");
		return ret;
	}
	version = get32(buf);
	device_id = get32(buf + 4);
	offered = get64(buf + 8);
	s.driver_features = get64(buf + 16);
	s.device_features_sel = get32(buf + 24);
	s.driver_features_sel = get32(buf + 28);
	s.queue_sel = get32(buf + 32);
	s.status = get32(buf + 36);
	s.isr = get32(buf + 40);
	s.config_generation = get32(buf + 44);
	nq = get32(buf + 48);
	if (version > VIRTIO_MMIO_STATE_VERSION) {
		virtio_log(vm, VIRTIO_LOG_STATE,
		           "snapshot refused: virtio transport state layout %u is newer than this "
		           "build's (%u)",
		           version, VIRTIO_MMIO_STATE_VERSION);
		return -ENOTSUP;
	}
	if (version == 0)
		return refuse(vm, "state layout version 0");
	if (device_id != vm->device_id)
		return refuse(vm, "DeviceID %u when saved, %u now", device_id, vm->device_id);
	if (nq != vm->n_queues)
		return refuse(vm, "%u queues when saved, %u now", nq, vm->n_queues);
	ret = check_offered(vm, offered);
	if (!ret)
		ret = check_status(vm, s.status, s.driver_features, offered);
	if (ret)
		return ret;
	if (s.isr & ~(VIRTIO_INT_USED | VIRTIO_INT_CONFIG))
		return refuse(vm, "InterruptStatus 0x%x has unknown bits", s.isr);
	ret = h->snap_read(r, buf + VIRTIO_MMIO_STATE_HEADER, VIRTIO_MMIO_STATE_QUEUE * (size_t)nq);
	if (ret) {
		virtio_log(vm, VIRTIO_LOG_STATE, "snapshot refused: virtio transport: truncated");
		return ret;
	}
	for (unsigned i = 0; i < nq; i++) {
		ret = load_queue(vm, &s.queues[i],
		                 buf + VIRTIO_MMIO_STATE_HEADER + VIRTIO_MMIO_STATE_QUEUE * i,
		                 s.status);
		if (ret)
			return ret;
	}
	*vm = s;
	/* InterruptStatus set: the interrupt that set it may never have reached the guest (an
	 * irqfd's injection still queued in the kernel when the vCPUs' state was saved). Raise
	 * it again: at worst the driver finds nothing new, as after any shared interrupt. */
	if (vm->isr)
		vm->ops->irq(vm->opaque, 1);
	return 0;
}

bool virtio_mmio_queue_pending(struct virtio_mmio *vm, unsigned index)
{
	return virtio_mmio_queue_live(vm, index) && virtq_pending(&vm->queues[index]);
}
