/*
 * Polled virtio-mmio driver (virtio 1.2: 3.1 device initialisation, 4.2.2
 * register layout version 2, 2.7 split virtqueues) and virtio-blk requests
 * (5.2). See virtio.h for the contract.
 */
#include "virtio.h"

#define MICROVM_MMIO_BASE 0xfeb00000ull
#define MICROVM_MMIO_SIZE 0x200ull
#define MICROVM_MMIO_SLOTS 32

#define RESET_TIMEOUT_US 1000000
#define DEFAULT_TIMEOUT_US 5000000

/* Driver-owned memory of one device: its rings, the header and status of the one-at-a-time
 * request, and those of each queued-request slot. */
struct dev_mem {
	struct virtq_mem q;
	struct virtio_blk_req_hdr hdr __attribute__((aligned(64)));
	uint8_t status __attribute__((aligned(64)));
	struct virtio_blk_req_hdr slot_hdr[VBLK_MAX_DEPTH] __attribute__((aligned(64)));
	uint8_t slot_status[VBLK_MAX_DEPTH] __attribute__((aligned(64)));
	uint64_t base; /* owner, 0 = free */
};

static struct dev_mem g_mem[VIRTIO_MAX_DEVICES];

static struct dev_mem *dev_mem(uint64_t base)
{
	for (unsigned i = 0; i < VIRTIO_MAX_DEVICES; i++)
		if (g_mem[i].base == base)
			return &g_mem[i];
	for (unsigned i = 0; i < VIRTIO_MAX_DEVICES; i++)
		if (g_mem[i].base == 0) {
			g_mem[i].base = base;
			return &g_mem[i];
		}
	return NULL;
}

static void set_err(struct virtio_dev *d, const char *fmt, ...) GUEST_PRINTF(2, 3);
static void set_err(struct virtio_dev *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
}

const char *virtio_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case VIRTIO_OK: return "ok";
	case VIRTIO_ENODEV: return "no virtio-mmio version 2 device";
	case VIRTIO_EFEATURES: return "feature negotiation failed";
	case VIRTIO_EQUEUE: return "queue setup failed";
	case VIRTIO_ETIMEDOUT: return "timed out";
	case VIRTIO_ENEEDS_RESET: return "device needs reset";
	case VIRTIO_EINVAL: return "invalid request";
	case VIRTIO_EPROTO: return "device protocol error";
	default: return "unknown error";
	}
}

/* ---- discovery ----------------------------------------------------------- */

/* Parses a number (0x hex or decimal) with an optional K/M/G suffix, like memparse. */
static bool parse_num(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	unsigned base = 10;
	if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	const char *start = p;
	while (p < end) {
		unsigned dig;
		char c = *p;
		if (c >= '0' && c <= '9')
			dig = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			dig = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			dig = (unsigned)(c - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - dig) / base)
			return false;
		v = v * base + dig;
		p++;
	}
	if (p == start)
		return false;
	if (p < end) {
		unsigned shift = 0;
		switch (*p) {
		case 'k':
		case 'K': shift = 10; break;
		case 'm':
		case 'M': shift = 20; break;
		case 'g':
		case 'G': shift = 30; break;
		}
		if (shift) {
			if (v > (UINT64_MAX >> shift))
				return false;
			v <<= shift;
			p++;
		}
	}
	*pp = p;
	*out = v;
	return true;
}

/* <size>@<base>:<irq>[:<id>] */
static bool parse_device_word(const char *p, const char *end, struct virtio_mmio_loc *loc)
{
	uint64_t size, base, irq;
	if (!parse_num(&p, end, &size) || p >= end || *p++ != '@')
		return false;
	if (!parse_num(&p, end, &base) || p >= end || *p++ != ':')
		return false;
	if (!parse_num(&p, end, &irq))
		return false;
	if (p < end && *p != ':')
		return false;
	if (size == 0 || base == 0 || base + size < base || irq > 0xffffffffu)
		return false;
	loc->base = base;
	loc->size = size;
	loc->irq = (uint32_t)irq;
	return true;
}

int virtio_mmio_find(struct virtio_mmio_loc *locs, int max, bool *scanned)
{
	static const char key[] = "virtio_mmio.device=";
	const size_t klen = sizeof(key) - 1;
	const char *p = guest_cmdline(), *word;
	size_t wlen;
	int n = 0;

	if (scanned)
		*scanned = false;
	while ((word = guest_cmdline_word(&p, &wlen))) {
		if (wlen <= klen || strncmp(word, key, klen) != 0)
			continue;
		struct virtio_mmio_loc loc;
		if (!parse_device_word(word + klen, word + wlen, &loc)) {
			printf("virtio: ignoring malformed %.*s\n", (int)wlen, word);
			continue;
		}
		if (n < max)
			locs[n++] = loc;
	}
	if (n > 0)
		return n;

	if (scanned)
		*scanned = true;
	for (unsigned i = 0; i < MICROVM_MMIO_SLOTS && n < max; i++) {
		uint64_t base = MICROVM_MMIO_BASE + i * MICROVM_MMIO_SIZE;
		if (mmio_read32(base + VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC)
			continue;
		if (mmio_read32(base + VIRTIO_MMIO_DEVICE_ID) == 0)
			continue; /* transport without a device behind it */
		locs[n].base = base;
		locs[n].size = MICROVM_MMIO_SIZE;
		locs[n].irq = 0;
		n++;
	}
	return n;
}

/* ---- registers ----------------------------------------------------------- */

uint32_t virtio_read(const struct virtio_dev *d, uint32_t off)
{
	return mmio_read32(d->base + off);
}

void virtio_write(const struct virtio_dev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->base + off, v);
}

uint8_t virtio_get_status(const struct virtio_dev *d)
{
	return (uint8_t)virtio_read(d, VIRTIO_MMIO_STATUS);
}

static void set_status(struct virtio_dev *d, uint8_t bits)
{
	virtio_write(d, VIRTIO_MMIO_STATUS, virtio_get_status(d) | bits);
}

int virtio_dev_probe(struct virtio_dev *d, uint64_t base)
{
	memset(d, 0, sizeof(*d));
	d->base = base;
	uint32_t magic = virtio_read(d, VIRTIO_MMIO_MAGIC_VALUE);
	if (magic != VIRTIO_MMIO_MAGIC) {
		set_err(d, "0x%llx: magic 0x%08x, want 0x%08x", (unsigned long long)base, magic,
		        VIRTIO_MMIO_MAGIC);
		return -VIRTIO_ENODEV;
	}
	uint32_t version = virtio_read(d, VIRTIO_MMIO_VERSION);
	if (version != 2) {
		set_err(d, "0x%llx: version %u, only 2 (modern) is supported",
		        (unsigned long long)base, version);
		return -VIRTIO_ENODEV;
	}
	d->device_id = virtio_read(d, VIRTIO_MMIO_DEVICE_ID);
	d->vendor_id = virtio_read(d, VIRTIO_MMIO_VENDOR_ID);
	if (d->device_id == 0) {
		set_err(d, "0x%llx: device id 0 (no device)", (unsigned long long)base);
		return -VIRTIO_ENODEV;
	}
	return 0;
}

static uint64_t tsc_deadline(uint64_t timeout_us)
{
	uint64_t khz = tsc_khz(NULL);
	if (khz == 0)
		khz = 4000000; /* unknown: assume fast, so waits only get longer */
	return rdtsc() + timeout_us * khz / 1000;
}

int virtio_dev_reset(struct virtio_dev *d)
{
	virtio_write(d, VIRTIO_MMIO_STATUS, 0);
	uint64_t end = tsc_deadline(RESET_TIMEOUT_US);
	while (virtio_get_status(d) != 0) {
		if (rdtsc() > end) {
			set_err(d, "reset: status still 0x%02x after 1 s", virtio_get_status(d));
			return -VIRTIO_ETIMEDOUT;
		}
		cpu_relax();
	}
	return 0;
}

static void write_addr(struct virtio_dev *d, uint32_t lo_off, const void *p)
{
	uint64_t a = (uint64_t)(uintptr_t)p;
	virtio_write(d, lo_off, (uint32_t)a);
	virtio_write(d, lo_off + 4, (uint32_t)(a >> 32));
}

static int fail_init(struct virtio_dev *d, int err)
{
	set_status(d, VIRTIO_STATUS_FAILED);
	return err;
}

int virtio_dev_init(struct virtio_dev *d, uint64_t want_features)
{
	d->want_features = want_features;
	d->features = 0;
	int rc = virtio_dev_reset(d);
	if (rc)
		return rc;
	set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(d, VIRTIO_STATUS_DRIVER);

	virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t lo = virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t hi = virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	d->device_features = hi << 32 | lo;
	if (!virtio_offers(d, VIRTIO_F_VERSION_1)) {
		set_err(d, "features 0x%llx lack VERSION_1",
		        (unsigned long long)d->device_features);
		return fail_init(d, -VIRTIO_EFEATURES);
	}
	d->features = d->device_features & (want_features | 1ull << VIRTIO_F_VERSION_1);
	virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)d->features);
	virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
	set_status(d, VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_get_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
		set_err(d, "device refused features 0x%llx (FEATURES_OK not kept)",
		        (unsigned long long)d->features);
		return fail_init(d, -VIRTIO_EFEATURES);
	}

	struct dev_mem *m = dev_mem(d->base);
	if (!m) {
		set_err(d, "more than %d devices", VIRTIO_MAX_DEVICES);
		return fail_init(d, -VIRTIO_EQUEUE);
	}
	virtio_write(d, VIRTIO_MMIO_QUEUE_SEL, 0);
	if (virtio_read(d, VIRTIO_MMIO_QUEUE_READY) != 0) {
		set_err(d, "queue 0 already ready after reset");
		return fail_init(d, -VIRTIO_EQUEUE);
	}
	uint32_t qmax = virtio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (qmax == 0) {
		set_err(d, "queue 0 not available (QueueNumMax 0)");
		return fail_init(d, -VIRTIO_EQUEUE);
	}
	uint16_t num = VIRTQ_MAX;
	while (num > qmax)
		num >>= 1; /* split rings: a power of 2 no larger than QueueNumMax */
	memset(&m->q, 0, sizeof(m->q));
	/* No interrupts wanted. With EVENT_IDX the flag must be 0 (2.7.7) and used_event,
	 * kept half the index space ahead of the used index, does the suppressing. */
	if (virtio_has(d, VIRTIO_F_EVENT_IDX))
		m->q.avail.used_event = 0x8000;
	else
		m->q.avail.flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	d->vq.num = num;
	d->vq.avail_idx = 0;
	d->vq.published_idx = 0;
	d->vq.used_idx = 0;
	d->vq.mem = &m->q;
	virtio_write(d, VIRTIO_MMIO_QUEUE_NUM, num);
	write_addr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, m->q.desc);
	write_addr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, &m->q.avail);
	write_addr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, &m->q.used);
	virtio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
	if (virtio_read(d, VIRTIO_MMIO_QUEUE_READY) != 1) {
		set_err(d, "QueueReady did not read back 1");
		return fail_init(d, -VIRTIO_EQUEUE);
	}

	set_status(d, VIRTIO_STATUS_DRIVER_OK);
	uint8_t st = virtio_get_status(d);
	if (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
		set_err(d, "status 0x%02x after DRIVER_OK", st);
		return -VIRTIO_ENEEDS_RESET;
	}
	d->err[0] = '\0';
	return 0;
}

int virtio_dev_reinit(struct virtio_dev *d)
{
	return virtio_dev_init(d, d->want_features);
}

uint64_t virtio_config_read(const struct virtio_dev *d, uint32_t off, unsigned width)
{
	uint64_t base = d->base + VIRTIO_MMIO_CONFIG + off;
	uint64_t v;
	uint32_t gen;
	unsigned tries = 0;
	do {
		gen = virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
		switch (width) {
		case 1: v = *(volatile uint8_t *)(uintptr_t)base; break;
		case 2: v = *(volatile uint16_t *)(uintptr_t)base; break;
		case 8: v = mmio_read32(base) | (uint64_t)mmio_read32(base + 4) << 32; break;
		default: v = mmio_read32(base); break;
		}
	} while (virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION) != gen && ++tries < 1000);
	return v;
}

/* ---- virtqueue ----------------------------------------------------------- */

static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static void store_avail_idx(struct virtio_dev *d, uint16_t idx)
{
	volatile uint16_t *p = &d->vq.mem->avail.idx;
	barrier(); /* ring entries before the index (x86: stores stay ordered) */
	*p = idx;
	d->vq.published_idx = idx;
	__asm__ volatile("mfence" ::
	                         : "memory"); /* index visible before the notify (or the
	                                         avail_event read that decides it) */
}

void virtq_publish_idx(struct virtio_dev *d, uint16_t idx)
{
	store_avail_idx(d, idx);
	virtio_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

void virtq_publish(struct virtio_dev *d)
{
	store_avail_idx(d, d->vq.avail_idx);
}

void virtq_add(struct virtio_dev *d, uint16_t head)
{
	struct virtq *q = &d->vq;
	q->mem->avail.ring[q->avail_idx % q->num] = head;
	q->avail_idx++;
}

void virtq_submit(struct virtio_dev *d, uint16_t head)
{
	virtq_add(d, head);
	virtq_publish_idx(d, d->vq.avail_idx);
}

bool virtq_kick(struct virtio_dev *d)
{
	struct virtq *q = &d->vq;
	uint16_t old = q->published_idx, now = q->avail_idx;
	if (old == now)
		return false;
	store_avail_idx(d, now);
	if (virtio_has(d, VIRTIO_F_EVENT_IDX)) {
		/* 2.7.10: notify only when avail_event lies in [old, now): the device asked
		 * to hear about one of the entries just published. */
		uint16_t ev = *(volatile uint16_t *)&q->mem->used.avail_event;
		if ((uint16_t)(now - ev - 1) >= (uint16_t)(now - old))
			return false;
	}
	virtio_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	return true;
}

int virtq_wait(struct virtio_dev *d, uint64_t timeout_us, uint32_t *id, uint32_t *len)
{
	struct virtq *q = &d->vq;
	volatile uint16_t *used_idx = &q->mem->used.idx;
	uint64_t end = tsc_deadline(timeout_us);
	for (unsigned spins = 0;; spins++) {
		if (*used_idx != q->used_idx) {
			barrier(); /* index before the entry (x86: loads stay ordered) */
			volatile struct virtq_used_elem *e =
			        &q->mem->used.ring[q->used_idx % q->num];
			*id = e->id;
			*len = e->len;
			q->used_idx++;
			if (virtio_has(d, VIRTIO_F_EVENT_IDX)) /* still no interrupts, please */
				*(volatile uint16_t *)&q->mem->avail.used_event =
				        (uint16_t)(q->used_idx + 0x8000);
			return 0;
		}
		if ((spins & 1023) == 1023) { /* Status is an MMIO exit: not on every poll */
			if (virtio_get_status(d) & VIRTIO_STATUS_NEEDS_RESET) {
				set_err(d, "device set NEEDS_RESET (status 0x%02x)",
				        virtio_get_status(d));
				return -VIRTIO_ENEEDS_RESET;
			}
			if (rdtsc() > end) {
				set_err(d,
				        "no used entry within %llu ms (used idx %u, avail idx %u)",
				        (unsigned long long)(timeout_us / 1000), *used_idx,
				        q->avail_idx);
				return -VIRTIO_ETIMEDOUT;
			}
		}
		cpu_relax();
	}
}

/* ---- virtio-blk ---------------------------------------------------------- */

static void vblk_read_config(struct virtio_blk *b)
{
	struct virtio_dev *d = &b->dev;
	b->capacity = virtio_config_read(d, VIRTIO_BLK_CFG_CAPACITY, 8);
	b->blk_size = virtio_has(d, VIRTIO_BLK_F_BLK_SIZE)
	                      ? (uint32_t)virtio_config_read(d, VIRTIO_BLK_CFG_BLK_SIZE, 4)
	                      : VIRTIO_BLK_SECTOR;
	b->seg_max = virtio_has(d, VIRTIO_BLK_F_SEG_MAX)
	                     ? (uint32_t)virtio_config_read(d, VIRTIO_BLK_CFG_SEG_MAX, 4)
	                     : 0;
	b->size_max = virtio_has(d, VIRTIO_BLK_F_SIZE_MAX)
	                      ? (uint32_t)virtio_config_read(d, VIRTIO_BLK_CFG_SIZE_MAX, 4)
	                      : 0;
	b->ro = virtio_has(d, VIRTIO_BLK_F_RO);
	b->flush = virtio_has(d, VIRTIO_BLK_F_FLUSH);
}

#define VBLK_FEATURES                                                                              \
	(1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_RO |  \
	 1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH |                              \
	 1ull << VIRTIO_F_INDIRECT_DESC)

int vblk_init(struct virtio_blk *b, uint64_t base)
{
	return vblk_init_features(b, base, 0);
}

int vblk_init_features(struct virtio_blk *b, uint64_t base, uint64_t extra)
{
	memset(b, 0, sizeof(*b));
	b->timeout_us = DEFAULT_TIMEOUT_US;
	int rc = virtio_dev_probe(&b->dev, base);
	if (rc)
		return rc;
	if (b->dev.device_id != VIRTIO_ID_BLOCK) {
		set_err(&b->dev, "device id %u is not a block device", b->dev.device_id);
		return -VIRTIO_ENODEV;
	}
	rc = virtio_dev_init(&b->dev, VBLK_FEATURES | extra);
	if (rc)
		return rc;
	vblk_read_config(b);
	return 0;
}

int vblk_reinit(struct virtio_blk *b)
{
	b->depth = 0; /* the reset dropped whatever was in flight */
	memset(b->slot_max_len, 0, sizeof(b->slot_max_len));
	int rc = virtio_dev_reset(&b->dev);
	if (rc)
		return rc;
	rc = virtio_dev_reinit(&b->dev);
	if (rc)
		return rc;
	vblk_read_config(b);
	return 0;
}

/*
 * Writes one request's chain into desc[first..first + nseg + 1]: header (device-readable),
 * data segments (device-writable for IN and GET_ID), status byte. Returns the used.len the
 * device may report at most.
 */
static uint32_t vblk_chain(struct virtq_desc *desc, uint16_t first, struct virtio_blk_req_hdr *hdr,
                           uint8_t *status, uint32_t type, uint64_t sector,
                           const struct vblk_seg *segs, unsigned nseg)
{
	bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	hdr->type = type;
	hdr->reserved = 0;
	hdr->sector = sector;
	*status = 0xff;
	desc[first] = (struct virtq_desc){ (uintptr_t)hdr, sizeof(*hdr), VIRTQ_DESC_F_NEXT,
		                           (uint16_t)(first + 1) };
	uint32_t total = 0;
	for (unsigned i = 0; i < nseg; i++) {
		desc[first + 1 + i] = (struct virtq_desc){
			(uintptr_t)segs[i].buf, segs[i].len,
			(uint16_t)(VIRTQ_DESC_F_NEXT | (dev_writes ? VIRTQ_DESC_F_WRITE : 0)),
			(uint16_t)(first + 2 + i)
		};
		total += segs[i].len;
	}
	desc[first + 1 + nseg] = (struct virtq_desc){ (uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0 };
	return (dev_writes ? total : 0) + 1;
}

static int check_used_len(struct virtio_dev *d, uint32_t len, uint32_t max_len)
{
	if (len > max_len) {
		set_err(d, "used len %u exceeds the %u writable bytes", len, max_len);
		return -VIRTIO_EPROTO;
	}
	return 0;
}

int vblk_request(struct virtio_blk *b, uint32_t type, uint64_t sector, const struct vblk_seg *segs,
                 unsigned nseg, uint8_t *status)
{
	struct virtio_dev *d = &b->dev;
	struct virtq *q = &d->vq;
	if (!q->mem || nseg + 2 > q->num || (b->seg_max && nseg > b->seg_max)) {
		set_err(d, "%u segments do not fit (queue %u, seg_max %u)", nseg, q->num,
		        b->seg_max);
		return -VIRTIO_EINVAL;
	}
	if (b->depth) {
		set_err(d, "queued requests set up: use vblk_queue_*");
		return -VIRTIO_EINVAL;
	}
	struct dev_mem *m = (struct dev_mem *)(void *)q->mem; /* q is the first member */
	uint32_t max_len =
	        vblk_chain(q->mem->desc, 0, &m->hdr, &m->status, type, sector, segs, nseg);

	virtq_submit(d, 0);
	uint32_t id, len;
	int rc = virtq_wait(d, b->timeout_us, &id, &len);
	if (rc)
		return rc;
	if (id != 0) {
		set_err(d, "used id %u, submitted head 0", id);
		return -VIRTIO_EPROTO;
	}
	rc = check_used_len(d, len, max_len);
	if (rc)
		return rc;
	*status = *(volatile uint8_t *)&m->status;
	return 0;
}

int vblk_queue_setup(struct virtio_blk *b, unsigned depth)
{
	struct virtio_dev *d = &b->dev;
	unsigned stride = depth ? d->vq.num / depth : 0;
	if (!d->vq.mem || depth == 0 || depth > VBLK_MAX_DEPTH || stride < 3) {
		set_err(d, "queue depth %u: 1 to %u, at least 3 descriptors each (queue %u)", depth,
		        VBLK_MAX_DEPTH, d->vq.num);
		return -VIRTIO_EINVAL;
	}
	for (unsigned i = 0; i < b->depth; i++)
		if (b->slot_max_len[i]) {
			set_err(d, "slot %u still in flight", i);
			return -VIRTIO_EINVAL;
		}
	b->depth = depth;
	b->stride = stride;
	memset(b->slot_max_len, 0, sizeof(b->slot_max_len));
	return 0;
}

int vblk_queue_start(struct virtio_blk *b, unsigned slot, uint32_t type, uint64_t sector,
                     const struct vblk_seg *segs, unsigned nseg)
{
	struct virtio_dev *d = &b->dev;
	struct virtq *q = &d->vq;
	if (slot >= b->depth || b->slot_max_len[slot]) {
		set_err(d, "slot %u is not a free slot (depth %u)", slot, b->depth);
		return -VIRTIO_EINVAL;
	}
	if (nseg + 2 > b->stride || (b->seg_max && nseg > b->seg_max)) {
		set_err(d, "%u segments do not fit (slot of %u descriptors, seg_max %u)", nseg,
		        b->stride, b->seg_max);
		return -VIRTIO_EINVAL;
	}
	struct dev_mem *m = (struct dev_mem *)(void *)q->mem;
	uint16_t first = (uint16_t)(slot * b->stride);
	b->slot_max_len[slot] = vblk_chain(q->mem->desc, first, &m->slot_hdr[slot],
	                                   &m->slot_status[slot], type, sector, segs, nseg);
	virtq_add(d, first);
	return 0;
}

int vblk_queue_reap(struct virtio_blk *b, unsigned *slot, uint8_t *status)
{
	struct virtio_dev *d = &b->dev;
	uint32_t id, len;
	int rc = virtq_wait(d, b->timeout_us, &id, &len);
	if (rc)
		return rc;
	unsigned s = b->stride ? id / b->stride : 0;
	if (!b->stride || id % b->stride || s >= b->depth || !b->slot_max_len[s]) {
		set_err(d, "used id %u is no request in flight", id);
		return -VIRTIO_EPROTO;
	}
	rc = check_used_len(d, len, b->slot_max_len[s]);
	b->slot_max_len[s] = 0;
	if (rc)
		return rc;
	struct dev_mem *m = (struct dev_mem *)(void *)d->vq.mem;
	*slot = s;
	*status = *(volatile uint8_t *)&m->slot_status[s];
	return 0;
}

int vblk_read(struct virtio_blk *b, uint64_t sector, void *buf, uint32_t len, uint8_t *status)
{
	struct vblk_seg s = { buf, len };
	return vblk_request(b, VIRTIO_BLK_T_IN, sector, &s, 1, status);
}

int vblk_write(struct virtio_blk *b, uint64_t sector, const void *buf, uint32_t len,
               uint8_t *status)
{
	struct vblk_seg s = { (void *)(uintptr_t)buf, len };
	return vblk_request(b, VIRTIO_BLK_T_OUT, sector, &s, 1, status);
}

int vblk_flush(struct virtio_blk *b, uint8_t *status)
{
	return vblk_request(b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, status);
}

int vblk_get_id(struct virtio_blk *b, char id[VIRTIO_BLK_ID_BYTES], uint8_t *status)
{
	struct vblk_seg s = { id, VIRTIO_BLK_ID_BYTES };
	return vblk_request(b, VIRTIO_BLK_T_GET_ID, 0, &s, 1, status);
}
