/*
 * Split virtqueues (virtio 1.2, section 2.7), device side.
 *
 * Ring layout in guest memory, all little-endian:
 *   descriptor table  num x { le64 addr; le32 len; le16 flags; le16 next; }
 *   driver (avail)    le16 flags; le16 idx; le16 ring[num]; le16 used_event;
 *   device (used)     le16 flags; le16 idx; { le32 id; le32 len; } ring[num]; le16 avail_event;
 *
 * Every access goes through gpa_ptr() at the time of the access: no host pointer outlives a
 * call. Values the guest can change under us (indices, descriptors) are read once into
 * locals and validated there. Shared indices use atomics with acquire/release ordering, and
 * a full fence separates "publish" from "check whether the other side wants a kick".
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "virtio-priv.h"

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static void *gpa(struct virtq *q, uint64_t addr, uint64_t len)
{
	return q->vm->ops->gpa_ptr(q->vm->opaque, addr, len);
}

static uint64_t avail_size(uint16_t num)
{
	return 6 + 2 * (uint64_t)num;
}

static uint64_t used_size(uint16_t num)
{
	return 6 + 8 * (uint64_t)num;
}

static bool event_idx(const struct virtq *q)
{
	return virtio_mmio_has_feature(q->vm, VIRTIO_F_EVENT_IDX);
}

/* A malformed ring: the queue is not served again until the device is reset. */
static int queue_broken(struct virtq *q, const char *why)
{
	char msg[160];

	if (!q->broken) {
		q->broken = true;
		snprintf(msg, sizeof(msg), "queue %u: %s", q->index, why);
		virtio_mmio_set_needs_reset(q->vm, msg);
	}
	return -EIO;
}

void virtq_clear(struct virtq *q)
{
	q->num = q->num_max;
	q->ready = false;
	q->broken = false;
	q->desc = q->avail = q->used = 0;
	q->last_avail = q->used_idx = q->signalled_used = 0;
	q->pushed = 0;
}

void virtq_start(struct virtq *q)
{
	q->ready = true;
	/* a device that needs a reset serves no queue until it gets one */
	q->broken = (q->vm->status & VIRTIO_STATUS_NEEDS_RESET) != 0;
	if (q->broken)
		return;
	q->last_avail = q->used_idx = q->signalled_used = 0;
	q->pushed = 0;
	const char *bad = virtq_rings_bad(q);
	if (bad)
		queue_broken(q, bad);
}

const char *virtq_rings_bad(struct virtq *q)
{
	if ((q->desc & 15) || (q->avail & 1) || (q->used & 3))
		return "misaligned ring";
	if (!gpa(q, q->desc, 16 * (uint64_t)q->num) || !gpa(q, q->avail, avail_size(q->num)) ||
	    !gpa(q, q->used, used_size(q->num)))
		return "ring outside guest RAM";
	return NULL;
}

static int load16(struct virtq *q, uint64_t addr, uint16_t *out)
{
	uint16_t *p = gpa(q, addr, 2);

	if (!p)
		return -EFAULT;
	*out = le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
	return 0;
}

static int store16(struct virtq *q, uint64_t addr, uint16_t v)
{
	uint16_t *p = gpa(q, addr, 2);

	if (!p)
		return -EFAULT;
	__atomic_store_n(p, htole16(v), __ATOMIC_RELEASE);
	return 0;
}

static int read_desc(struct virtq *q, uint64_t table, uint16_t i, struct vdesc *d)
{
	uint8_t raw[16];
	const void *p = gpa(q, table + 16 * (uint64_t)i, 16);

	if (!p)
		return -EFAULT;
	memcpy(raw, p, sizeof(raw)); /* one snapshot: the guest may change it meanwhile */
	memcpy(&d->addr, raw, 8);
	memcpy(&d->len, raw + 8, 4);
	memcpy(&d->flags, raw + 12, 2);
	memcpy(&d->next, raw + 14, 2);
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
	return 0;
}

/*
 * Walks the chain at @head into @c. NULL on success, else what is wrong with it. Bounds:
 * each table is walked at most its size steps (a loop runs out of steps), at most num
 * segments in all, one indirect table (not nested, not with NEXT, 16-byte entries, at most
 * num of them, wholly in RAM), byte counts within 32 bits, readable before writable, then
 * every buffer in RAM.
 */
static const char *walk_chain(struct virtq *q, uint16_t head, struct virtio_chain *c)
{
	uint64_t table = q->desc, total = 0;
	uint32_t tsize = q->num, steps = 0;
	bool indirect = false;
	uint16_t i = head;
	struct vdesc d;

	c->head = head;
	c->nseg = c->nread = 0;
	c->read_len = c->write_len = 0;
	for (;;) {
		if (i >= tsize)
			return "descriptor index out of range";
		if (++steps > tsize)
			return "descriptor loop or chain longer than its table";
		if (read_desc(q, table, i, &d))
			return "descriptor table outside guest RAM";
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (indirect)
				return "indirect descriptor inside an indirect table";
			if (!virtio_mmio_has_feature(q->vm, VIRTIO_F_INDIRECT_DESC))
				return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return "indirect descriptor with NEXT";
			if (d.len == 0 || d.len % 16 || d.len / 16 > q->num)
				return "indirect table size not a multiple of 16 in 16..16*num";
			if ((d.addr & 15) || !gpa(q, d.addr, d.len))
				return "indirect table misaligned or outside guest RAM";
			table = d.addr;
			tsize = d.len / 16;
			indirect = true;
			steps = 0;
			i = 0;
			continue;
		}
		if (c->nseg >= q->num)
			return "chain longer than the queue size";
		total += d.len;
		if (total > UINT32_MAX)
			return "chain length overflows 32 bits";
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			c->write_len += d.len;
		} else {
			if (c->nseg > c->nread)
				return "device-readable descriptor after a device-writable one";
			c->read_len += d.len;
			c->nread++;
		}
		c->seg[c->nseg++] =
		        (struct virtio_seg){ d.addr, d.len, !!(d.flags & VIRTQ_DESC_F_WRITE) };
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		i = d.next;
	}
	/* The chain is well-formed: are its buffers in RAM? (Checked again at each access.) */
	for (unsigned k = 0; k < c->nseg; k++)
		if (c->seg[k].len && !gpa(q, c->seg[k].gpa, c->seg[k].len))
			return "buffer outside guest RAM";
	return NULL;
}

int virtq_pop(struct virtq *q, struct virtio_chain *c)
{
	uint16_t avail_idx, pending, head;
	const char *bad;

	if (q->broken)
		return -EIO;
	if (!q->ready)
		return 0;
	/* A guest that keeps moving avail->idx must not keep the device here: at most a
	 * queue's worth of entries per call (virtq_pending() tells the caller to come back). */
	for (unsigned turns = 0; turns <= q->num; turns++) {
		if (load16(q, q->avail + 2, &avail_idx))
			return queue_broken(q, "avail ring outside guest RAM");
		pending = (uint16_t)(avail_idx - q->last_avail);
		if (pending > q->num)
			return queue_broken(q, "avail index more than the queue size ahead");
		if (pending == 0) {
			if (!event_idx(q))
				return 0;
			/* Ask for a kick at the next entry, then look again: an entry added
			 * before the driver saw avail_event would otherwise wait forever. */
			if (store16(q, q->used + 4 + 8 * (uint64_t)q->num, q->last_avail))
				return queue_broken(q, "used ring outside guest RAM");
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (load16(q, q->avail + 2, &avail_idx))
				return queue_broken(q, "avail ring outside guest RAM");
			if (avail_idx == q->last_avail)
				return 0;
			continue;
		}
		if (load16(q, q->avail + 4 + 2 * (uint64_t)(q->last_avail & (q->num - 1)), &head))
			return queue_broken(q, "avail ring outside guest RAM");
		if (head >= q->num)
			return queue_broken(q, "avail ring entry out of range");
		q->last_avail++;
		bad = walk_chain(q, head, c);
		if (!bad) {
			q->requests++;
			return 1;
		}
		q->malformed++;
		virtio_log(q->vm, VIRTIO_LOG_GUEST_WARN, "queue %u: chain %u failed: %s", q->index,
		           head, bad);
		if (virtq_push(q, head, 0))
			return -EIO;
	}
	return 0;
}

bool virtq_pending(struct virtq *q)
{
	uint16_t avail_idx;

	if (!q->ready || q->broken)
		return false;
	/* A caller that stops before seeing an empty ring (its budget ran out) left avail_event
	 * where it was the last time the ring was empty: the driver would not notify for what
	 * it adds next. Ask for a kick at the next entry first, then look. */
	if (event_idx(q)) {
		if (store16(q, q->used + 4 + 8 * (uint64_t)q->num, q->last_avail)) {
			queue_broken(q, "used ring outside guest RAM");
			return false;
		}
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	if (load16(q, q->avail + 2, &avail_idx)) {
		queue_broken(q, "avail ring outside guest RAM");
		return false;
	}
	return avail_idx != q->last_avail;
}

bool virtq_unpop(struct virtq *q, uint16_t mark, unsigned n)
{
	if ((uint16_t)(q->last_avail - mark) != n)
		return false; /* malformed chains were completed in between */
	q->last_avail = mark;
	return true;
}

bool virtq_want_more(struct virtq *q)
{
	uint16_t avail_idx, again;

	if (!q->ready || q->broken)
		return false;
	if (load16(q, q->avail + 2, &avail_idx)) {
		queue_broken(q, "avail ring outside guest RAM");
		return false;
	}
	if (!event_idx(q))
		return false; /* the driver notifies every new entry */
	if (store16(q, q->used + 4 + 8 * (uint64_t)q->num, avail_idx)) {
		queue_broken(q, "used ring outside guest RAM");
		return false;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (load16(q, q->avail + 2, &again)) {
		queue_broken(q, "avail ring outside guest RAM");
		return false;
	}
	return again != avail_idx;
}

int virtq_fill(struct virtq *q, unsigned i, uint16_t head, uint32_t len)
{
	uint64_t slot = (uint16_t)(q->used_idx + i) & (q->num - 1);
	uint8_t *p;
	uint32_t v;

	if (q->broken || !q->ready)
		return -EIO;
	if (i >= q->num)
		return queue_broken(q, "more used entries than the queue holds");
	p = gpa(q, q->used + 4 + 8 * slot, 8);
	if (!p)
		return queue_broken(q, "used ring outside guest RAM");
	v = htole32(head);
	memcpy(p, &v, 4);
	v = htole32(len);
	memcpy(p + 4, &v, 4);
	return 0;
}

int virtq_flush(struct virtq *q, unsigned n)
{
	if (q->broken || !q->ready)
		return -EIO;
	q->used_idx = (uint16_t)(q->used_idx + n);
	/* a release store: the entries are visible before the index that publishes them */
	if (store16(q, q->used + 2, q->used_idx))
		return queue_broken(q, "used ring outside guest RAM");
	q->pushed += n;
	return 0;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	int r = virtq_fill(q, 0, head, len);

	return r ? r : virtq_flush(q, 1);
}

void virtq_notify(struct virtq *q)
{
	uint16_t old = q->signalled_used, now = q->used_idx, v;
	bool all = q->pushed >= 0x10000; /* indices wrapped: the comparison means nothing */

	if (!q->pushed || q->broken)
		return;
	q->pushed = 0;
	q->signalled_used = now;
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* used idx visible before reading the hint */
	if (event_idx(q)) {
		if (load16(q, q->avail + 4 + 2 * (uint64_t)q->num, &v)) {
			queue_broken(q, "avail ring outside guest RAM");
			return;
		}
		/* Section 2.7.10: interrupt when used_event lies in [old, now). */
		if (!all && (uint16_t)(now - v - 1) >= (uint16_t)(now - old)) {
			q->suppressed++;
			return;
		}
	} else {
		if (load16(q, q->avail, &v)) {
			queue_broken(q, "avail ring outside guest RAM");
			return;
		}
		if (v & VIRTQ_AVAIL_F_NO_INTERRUPT) {
			q->suppressed++;
			return;
		}
	}
	q->interrupts++;
	virtio_mmio_interrupt(q->vm, VIRTIO_INT_USED);
}

/* Finds the segment holding byte @off of a part: its index, and the offset inside it. */
static int part_seek(const struct virtio_chain *c, bool writable, uint32_t off, uint32_t len,
                     unsigned *seg, uint32_t *skip)
{
	unsigned i = writable ? c->nread : 0, end = writable ? c->nseg : c->nread;
	uint32_t part = writable ? c->write_len : c->read_len;

	if (off > part || len > part - off)
		return -ERANGE;
	while (i < end && off >= c->seg[i].len) {
		off -= c->seg[i].len;
		i++;
	}
	*seg = i;
	*skip = off;
	return 0;
}

static int copy(struct virtq *q, const struct virtio_chain *c, bool writable, uint32_t off,
                void *buf, uint32_t len)
{
	uint8_t *b = buf;
	uint32_t skip;
	unsigned i;
	int r = part_seek(c, writable, off, len, &i, &skip);

	if (r)
		return r;
	for (; len; i++, skip = 0) {
		uint32_t n = c->seg[i].len - skip;
		uint8_t *p;

		if (n == 0)
			continue;
		if (n > len)
			n = len;
		p = gpa(q, c->seg[i].gpa + skip, n);
		if (!p)
			return -EFAULT;
		if (writable)
			memcpy(p, b, n);
		else
			memcpy(b, p, n);
		b += n;
		len -= n;
	}
	return 0;
}

int virtq_read(struct virtq *q, const struct virtio_chain *c, uint32_t off, void *buf, uint32_t len)
{
	return copy(q, c, false, off, buf, len);
}

int virtq_write(struct virtq *q, const struct virtio_chain *c, uint32_t off, const void *buf,
                uint32_t len)
{
	return copy(q, c, true, off, (void *)buf, len);
}

int virtq_iov(struct virtq *q, const struct virtio_chain *c, bool writable, uint32_t off,
              uint32_t len, struct iovec *iov, unsigned max)
{
	unsigned i, n = 0;
	uint32_t skip;
	int r = part_seek(c, writable, off, len, &i, &skip);

	if (r)
		return r;
	for (; len; i++, skip = 0) {
		uint32_t k = c->seg[i].len - skip;
		void *p;

		if (k == 0)
			continue;
		if (k > len)
			k = len;
		if (n == max)
			return -E2BIG;
		p = gpa(q, c->seg[i].gpa + skip, k);
		if (!p)
			return -EFAULT;
		iov[n].iov_base = p;
		iov[n].iov_len = k;
		n++;
		len -= k;
	}
	return (int)n;
}
