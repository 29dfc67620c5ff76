/*
 * Unit tests of the virtio library's snapshots (devices/virtio/virtio-snap.c), linked in
 * directly: a two-queue device saved and loaded into another made like it (or not), through
 * a host table with only the snap_* stream functions. virtio-blk's tests cover the rest
 * (every refused field, through a plugin).
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smolvm/sdk.h>

#include "ring-desc.h"
#include "virtio.h"

#define RAM_SIZE (1u << 20)
#define QMAX 16
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define BUF 0x10000
#define FEATURES ((1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_F_INDIRECT_DESC))

struct smol_snap_writer {
	uint8_t buf[1024];
	size_t len;
};

struct smol_snap_reader {
	const uint8_t *buf;
	size_t len, pos;
};

static int t_snap_write(struct smol_snap_writer *w, const void *data, size_t len)
{
	if (len > sizeof(w->buf) - w->len)
		return -ENOSPC;
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

static int t_snap_read(struct smol_snap_reader *r, void *data, size_t len)
{
	if (len > r->len - r->pos)
		return -EBADMSG;
	memcpy(data, r->buf + r->pos, len);
	r->pos += len;
	return 0;
}

static size_t t_snap_remaining(struct smol_snap_reader *r)
{
	return r->len - r->pos;
}

static const struct smol_host host = {
	.abi_major = SMOL_ABI_MAJOR,
	.abi_minor = SMOL_ABI_MINOR,
	.struct_size = sizeof(struct smol_host),
	.snap_write = t_snap_write,
	.snap_read = t_snap_read,
	.snap_remaining = t_snap_remaining,
};

static uint8_t *ram;
static int irq_raises;
static char last_log[256];

static void *t_gpa(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	return ram + gpa;
}

static void t_irq(void *opaque, int level)
{
	(void)opaque;
	irq_raises += level;
}

static void t_notify(void *opaque, unsigned index)
{
	(void)opaque;
	(void)index;
}

static void t_log(void *opaque, int level, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "virtio log %d: %s\n", level, msg);
	if (level == VIRTIO_LOG_STATE)
		snprintf(last_log, sizeof(last_log), "%s", msg);
}

static const struct virtio_mmio_ops ops = {
	.gpa_ptr = t_gpa,
	.irq = t_irq,
	.queue_notify = t_notify,
	.log = t_log,
};

static struct virtio_mmio a, b;
static struct virtio_chain chain;
static struct smol_snap_writer w;

static void setup(void)
{
	ram = calloc(1, RAM_SIZE);
	cr_assert(ram);
	cr_assert_eq(virtio_mmio_init(&a, &ops, NULL, 2, FEATURES, 2, QMAX, 0), 0);
	irq_raises = 0;
	last_log[0] = 0;
	w.len = 0;
}

static void teardown(void)
{
	free(ram);
}

TestSuite(vsnap, .init = setup, .fini = teardown);

static void wr(struct virtio_mmio *vm, uint64_t off, uint32_t v)
{
	virtio_mmio_write(vm, off, 4, v);
}

static void put16(uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(ram + gpa, &v, 2);
}

/* Driver up on @a: queue 0 ready at DESC/AVAIL/USED with 8 entries, queue 1 given 4 entries
 * and addresses but not made ready. */
static void driver_up(void)
{
	uint64_t f = FEATURES | (1ull << VIRTIO_F_VERSION_1);

	wr(&a, VIRTIO_MMIO_STATUS, 1);
	wr(&a, VIRTIO_MMIO_STATUS, 3);
	wr(&a, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(&a, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr(&a, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(&a, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	wr(&a, VIRTIO_MMIO_STATUS, 0xb);
	wr(&a, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(&a, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(&a, VIRTIO_MMIO_QUEUE_DESC_LOW, DESC);
	wr(&a, VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL);
	wr(&a, VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED);
	wr(&a, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(&a, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(&a, VIRTIO_MMIO_QUEUE_NUM, 4);
	wr(&a, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
	wr(&a, VIRTIO_MMIO_STATUS, 0xf);
	cr_assert_eq(virtio_mmio_read(&a, VIRTIO_MMIO_STATUS, 4), 0xf);
}

/* Three chains made available on queue 0; @served of them popped, @pushed pushed. */
static void work(unsigned served, unsigned pushed)
{
	struct virtq *q = virtio_mmio_queue(&a, 0);

	for (uint16_t i = 0; i < 3; i++) {
		put_desc(ram + DESC + 16 * i, BUF + 0x100 * i, 16, VIRTQ_DESC_F_WRITE, 0);
		put16(AVAIL + 4 + 2 * i, i);
	}
	put16(AVAIL + 2, 3);
	for (unsigned i = 0; i < served; i++)
		cr_assert_eq(virtq_pop(q, &chain), 1);
	for (unsigned i = 0; i < pushed; i++)
		cr_assert_eq(virtq_push(q, (uint16_t)i, 16), 0);
	virtq_notify(q);
}

static int load_into(struct virtio_mmio *vm)
{
	struct smol_snap_reader r = { .buf = w.buf, .len = w.len };
	int ret = virtio_mmio_load(vm, &host, &r);

	if (ret == 0)
		cr_assert_eq(r.pos, r.len, "load left bytes unread");
	return ret;
}

Test(vsnap, two_queues_round_trip)
{
	driver_up();
	work(2, 2);
	wr(&a, VIRTIO_MMIO_QUEUE_SEL, 1);
	cr_assert_eq(virtio_mmio_save(&a, &host, &w), 0);
	cr_assert_eq(w.len, VIRTIO_MMIO_STATE_HEADER + 2 * VIRTIO_MMIO_STATE_QUEUE);
	cr_assert_eq(virtio_mmio_init(&b, &ops, NULL, 2, FEATURES, 2, QMAX, 0), 0);
	int raises = irq_raises;
	cr_assert_eq(load_into(&b), 0, "%s", last_log);
	cr_assert_eq(irq_raises, raises + 1,
	             "InterruptStatus is set: load raises the interrupt again (its edge may have "
	             "been in flight when the state was saved)");
	cr_assert_eq(b.status, a.status);
	cr_assert_eq(b.driver_features, a.driver_features);
	cr_assert_eq(b.queue_sel, 1);
	cr_assert_eq(b.isr, VIRTIO_INT_USED);
	for (unsigned i = 0; i < 2; i++) {
		struct virtq *x = &a.queues[i], *y = &b.queues[i];

		cr_assert_eq(y->vm, &b, "queue %u points at the other device", i);
		cr_assert_eq(y->num, x->num);
		cr_assert_eq(y->ready, x->ready);
		cr_assert_eq(y->broken, x->broken);
		cr_assert_eq(y->desc, x->desc);
		cr_assert_eq(y->avail, x->avail);
		cr_assert_eq(y->used, x->used);
		cr_assert_eq(y->last_avail, x->last_avail);
		cr_assert_eq(y->used_idx, x->used_idx);
		cr_assert_eq(y->signalled_used, x->signalled_used);
		cr_assert_eq(y->pushed, x->pushed);
	}
	cr_assert_eq(b.queues[1].num, 4);
	cr_assert_eq(b.queues[1].desc, 0x5000);
	/* the third chain is still waiting, on the restored device */
	cr_assert(virtio_mmio_queue_pending(&b, 0));
	cr_assert_not(virtio_mmio_queue_pending(&b, 1), "queue 1 is not ready");
	cr_assert_eq(virtq_pop(&b.queues[0], &chain), 1);
	cr_assert_eq(chain.head, 2);
	cr_assert_eq(virtq_push(&b.queues[0], 2, 16), 0);
	cr_assert_not(virtio_mmio_queue_pending(&b, 0));
}

Test(vsnap, chain_held_at_save_refused)
{
	driver_up();
	work(2, 1);
	cr_assert_eq(virtio_mmio_save(&a, &host, &w), 0);
	cr_assert_eq(virtio_mmio_init(&b, &ops, NULL, 2, FEATURES, 2, QMAX, 0), 0);
	cr_assert_eq(load_into(&b), -EINVAL);
	cr_assert(strstr(last_log, "queue 0: 1 requests taken but not completed"), "%s", last_log);
	cr_assert_eq(b.status, 0, "a refused load changed the device");
}

Test(vsnap, another_device_refused)
{
	driver_up();
	work(1, 1);
	cr_assert_eq(virtio_mmio_save(&a, &host, &w), 0);

	cr_assert_eq(virtio_mmio_init(&b, &ops, NULL, 2, FEATURES, 2, QMAX / 2, 0), 0);
	cr_assert_eq(load_into(&b), -EINVAL);
	cr_assert(strstr(last_log, "QueueNumMax 16 when saved, 8 now"), "%s", last_log);

	cr_assert_eq(virtio_mmio_init(&b, &ops, NULL, 2, FEATURES, 1, QMAX, 0), 0);
	cr_assert_eq(load_into(&b), -EINVAL);
	cr_assert(strstr(last_log, "2 queues when saved, 1 now"), "%s", last_log);

	cr_assert_eq(
	        virtio_mmio_init(&b, &ops, NULL, 2, 1ull << VIRTIO_F_INDIRECT_DESC, 2, QMAX, 0), 0);
	cr_assert_eq(load_into(&b), -EINVAL);
	cr_assert(strstr(last_log, "feature VIRTIO_F_EVENT_IDX (bit 29) was offered when the "
	                           "snapshot was taken and is not offered now"),
	          "%s", last_log);

	cr_assert_eq(virtio_mmio_init(&b, &ops, NULL, 3, FEATURES, 2, QMAX, 0), 0);
	cr_assert_eq(load_into(&b), -EINVAL);
	cr_assert(strstr(last_log, "DeviceID 2 when saved, 3 now"), "%s", last_log);
	cr_assert_eq(b.status, 0);
}

Test(vsnap, ring_no_longer_in_ram_refused)
{
	driver_up();
	cr_assert_eq(virtio_mmio_save(&a, &host, &w), 0);
	/* a machine with less RAM: the used ring of queue 0 is past its end */
	cr_assert_eq(virtio_mmio_init(&b, &ops, NULL, 2, FEATURES, 2, QMAX, 0), 0);
	memcpy(w.buf + VIRTIO_MMIO_STATE_HEADER + 22, &(uint64_t){ htole64(RAM_SIZE - 8) }, 8);
	cr_assert_eq(load_into(&b), -EINVAL);
	cr_assert(strstr(last_log, "queue 0: ring outside guest RAM"), "%s", last_log);
}

Test(vsnap, load_without_interrupt_status_raises_nothing)
{
	driver_up();
	work(2, 2);
	wr(&a, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED);
	cr_assert_eq(a.isr, 0);
	cr_assert_eq(virtio_mmio_save(&a, &host, &w), 0);
	cr_assert_eq(virtio_mmio_init(&b, &ops, NULL, 2, FEATURES, 2, QMAX, 0), 0);
	int raises = irq_raises;
	cr_assert_eq(load_into(&b), 0, "%s", last_log);
	cr_assert_eq(irq_raises, raises, "nothing pending: no interrupt from load");
}
