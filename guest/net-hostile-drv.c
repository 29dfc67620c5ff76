/*
 * net-hostile's driver half: virtio-net (5.1) over virtio-mmio with both split queues,
 * polled like the rest of the guest kit (interrupts suppressed, every wait bounded). See
 * net-hostile.h.
 */
#include "net-hostile.h"

#define TX_TIMEOUT_US 2000000

struct net g_net;
const uint8_t peer_mac[6] = { 0x02, 0x6e, 0x68, 0x00, 0x00, 0x01 };
uint64_t g_top;
uint32_t g_seq;
uint32_t g_sent;
uint8_t g_mode;
int first_fail;

static struct nq_mem qmem[2];

void fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("net-hostile: FAIL [%d] ", code);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	if (!first_fail)
		first_fail = code;
}

static uint64_t deadline(uint64_t us)
{
	uint64_t khz = tsc_khz(NULL);
	if (!khz)
		khz = 4000000;
	return rdtsc() + us * khz / 1000;
}

void delay_us(uint64_t us)
{
	uint64_t end = deadline(us);
	while (rdtsc() < end)
		cpu_relax();
}

/* ---- initialisation ------------------------------------------------------------------------ */

static void add_status(uint8_t bits)
{
	virtio_write(&g_net.dev, VIRTIO_MMIO_STATUS, virtio_get_status(&g_net.dev) | bits);
}

static int init_fail(int err, const char *fmt, ...) GUEST_PRINTF(2, 3);
static int init_fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_net.dev.err, sizeof(g_net.dev.err), fmt, ap);
	va_end(ap);
	add_status(VIRTIO_STATUS_FAILED);
	return err;
}

static void write_addr(uint32_t lo_off, const void *p)
{
	virtio_write(&g_net.dev, lo_off, (uint32_t)A(p));
	virtio_write(&g_net.dev, lo_off + 4, (uint32_t)(A(p) >> 32));
}

static int queue_setup(unsigned i)
{
	struct virtio_dev *d = &g_net.dev;
	struct nq *q = &g_net.q[i];

	virtio_write(d, VIRTIO_MMIO_QUEUE_SEL, i);
	if (virtio_read(d, VIRTIO_MMIO_QUEUE_READY) != 0)
		return init_fail(-VIRTIO_EQUEUE, "queue %u ready after a reset", i);
	uint32_t max = virtio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max == 0)
		return init_fail(-VIRTIO_EQUEUE, "queue %u: QueueNumMax 0", i);
	uint16_t num = NQ_MAX;
	while (num > max)
		num >>= 1;
	memset(&qmem[i], 0, sizeof(qmem[i]));
	/* polled: no interrupts (with EVENT_IDX, used_event half the index space ahead) */
	if (virtio_has(d, VIRTIO_F_EVENT_IDX))
		qmem[i].avail.used_event = 0x8000;
	else
		qmem[i].avail.flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	*q = (struct nq){ .index = (uint16_t)i, .num = num, .m = &qmem[i] };
	virtio_write(d, VIRTIO_MMIO_QUEUE_NUM, num);
	write_addr(VIRTIO_MMIO_QUEUE_DESC_LOW, qmem[i].desc);
	write_addr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, &qmem[i].avail);
	write_addr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, &qmem[i].used);
	virtio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
	if (virtio_read(d, VIRTIO_MMIO_QUEUE_READY) != 1)
		return init_fail(-VIRTIO_EQUEUE, "queue %u: QueueReady did not read back 1", i);
	return 0;
}

int net_init(uint64_t want)
{
	struct virtio_dev *d = &g_net.dev;
	int rc;

	g_net.want = want;
	d->features = 0;
	rx_forget();
	rc = virtio_dev_reset(d);
	if (rc)
		return rc;
	add_status(VIRTIO_STATUS_ACKNOWLEDGE);
	add_status(VIRTIO_STATUS_DRIVER);
	virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t lo = virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	d->device_features = (uint64_t)virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32 | lo;
	if (!virtio_offers(d, VIRTIO_F_VERSION_1))
		return init_fail(-VIRTIO_EFEATURES, "features 0x%llx lack VERSION_1",
		                 (unsigned long long)d->device_features);
	d->features = d->device_features & (want | 1ull << VIRTIO_F_VERSION_1);
	virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)d->features);
	virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
	add_status(VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_get_status(d) & VIRTIO_STATUS_FEATURES_OK))
		return init_fail(-VIRTIO_EFEATURES, "features 0x%llx refused",
		                 (unsigned long long)d->features);
	for (unsigned i = 0; i < 2; i++)
		if ((rc = queue_setup(i)))
			return rc;
	add_status(VIRTIO_STATUS_DRIVER_OK);
	uint8_t st = virtio_get_status(d);
	if (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
		return init_fail(-VIRTIO_ENEEDS_RESET, "status 0x%02x after DRIVER_OK", st);

	g_net.mrg = virtio_has(d, VIRTIO_NET_F_MRG_RXBUF);
	for (unsigned i = 0; i < 6; i++)
		g_net.mac[i] = (uint8_t)virtio_config_read(d, VIRTIO_NET_CFG_MAC + i, 1);
	g_net.status = (uint16_t)virtio_config_read(d, VIRTIO_NET_CFG_STATUS, 2);
	g_net.pairs = (uint16_t)virtio_config_read(d, VIRTIO_NET_CFG_MAX_PAIRS, 2);
	g_net.mtu = virtio_has(d, VIRTIO_NET_F_MTU)
	                    ? (uint16_t)virtio_config_read(d, VIRTIO_NET_CFG_MTU, 2)
	                    : 1500;
	d->err[0] = '\0';
	return 0;
}

void net_print_config(void)
{
	const uint8_t *m = g_net.mac;
	printf("net-hostile: mac %02x:%02x:%02x:%02x:%02x:%02x, status 0x%x (link %s), mtu %u, "
	       "max pairs %u, queues %u/%u\n",
	       m[0], m[1], m[2], m[3], m[4], m[5], g_net.status,
	       g_net.status & VIRTIO_NET_S_LINK_UP ? "up" : "down", g_net.mtu, g_net.pairs,
	       g_net.q[RXQ].num, g_net.q[TXQ].num);
	printf("net-hostile: features offered 0x%llx, negotiated 0x%llx\n",
	       (unsigned long long)g_net.dev.device_features,
	       (unsigned long long)g_net.dev.features);
}

/* ---- queues ---------------------------------------------------------------------------- */

static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

void nq_add(struct nq *q, uint16_t head)
{
	q->m->avail.ring[q->avail_idx % q->num] = head;
	q->avail_idx++;
}

void nq_publish(struct nq *q, uint16_t idx)
{
	barrier();
	*(volatile uint16_t *)&q->m->avail.idx = idx;
	__asm__ volatile("mfence" ::: "memory");
}

/* Notifies every time: with EVENT_IDX a notification the device did not ask for is
 * harmless, and a polled driver has nothing to save. */
void nq_kick(struct nq *q)
{
	nq_publish(q, q->avail_idx);
	virtio_write(&g_net.dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

/* The next used entry of q, if the device published one: true with its id and length. */
static bool nq_used(struct nq *q, uint32_t *id, uint32_t *len)
{
	volatile uint16_t *used = &q->m->used.idx;

	if (*used == q->used_idx)
		return false;
	barrier();
	volatile struct virtq_used_elem *e = &q->m->used.ring[q->used_idx % q->num];
	*id = e->id;
	*len = e->len;
	q->used_idx++;
	if (virtio_has(&g_net.dev, VIRTIO_F_EVENT_IDX))
		*(volatile uint16_t *)&q->m->avail.used_event = (uint16_t)(q->used_idx + 0x8000);
	return true;
}

/*
 * The used ring is looked at once more after the status read and the deadline: the device
 * may complete the chain between the first look and them (the status read is a VM exit,
 * slow in a nest). NEEDS_RESET set by the other queue after this one's chain completed
 * (rx-avail-far-ahead: the echo request is sent and completed, then its echo breaks the
 * receive queue) must not make a completed chain count as not done: the frame went out.
 */
int nq_wait(struct nq *q, uint64_t timeout_us, uint32_t *id, uint32_t *len)
{
	uint64_t end = deadline(timeout_us);
	for (unsigned spins = 0;; spins++) {
		if (nq_used(q, id, len))
			return 0;
		if ((spins & 1023) == 1023) {
			uint8_t st = virtio_get_status(&g_net.dev);
			bool late = rdtsc() > end;
			if (!(st & VIRTIO_STATUS_NEEDS_RESET) && !late) {
				cpu_relax();
				continue;
			}
			if (nq_used(q, id, len))
				return 0;
			if (st & VIRTIO_STATUS_NEEDS_RESET) {
				snprintf(g_net.dev.err, sizeof(g_net.dev.err),
				         "device set NEEDS_RESET (status 0x%02x)", st);
				return -VIRTIO_ENEEDS_RESET;
			}
			snprintf(g_net.dev.err, sizeof(g_net.dev.err),
			         "queue %u: no used entry in %llu ms", q->index,
			         (unsigned long long)(timeout_us / 1000));
			return -VIRTIO_ETIMEDOUT;
		}
		cpu_relax();
	}
}

/* ---- guard zones ---------------------------------------------------------------------- */

#define GUARD_BYTE 0xc3
#define MAX_GUARDS 96

struct guard {
	uint8_t *p;
	uint32_t len;
};
static struct guard guards[MAX_GUARDS];
static unsigned n_keep, n_guards; /* guards[0..n_keep) last the whole run */

static void guard_add(uint8_t *p, uint32_t len)
{
	if (n_guards == MAX_GUARDS) {
		printf("net-hostile: too many guard zones (payload bug)\n");
		return;
	}
	memset(p, GUARD_BYTE, len);
	guards[n_guards++] = (struct guard){ p, len };
}

void guard_keep(uint8_t *p, uint32_t len)
{
	guard_add(p, len);
	n_keep = n_guards;
}

void guard_set(uint8_t *p, uint32_t len)
{
	guard_add(p, len);
}

uint8_t *guarded(uint8_t *area, uint32_t n)
{
	guard_set(area, 64);
	guard_set(area + 64 + n, 64);
	memset(area + 64, 0, n);
	return area + 64;
}

bool guards_check(const char *when)
{
	bool ok = true;
	for (unsigned i = 0; i < n_guards; i++) {
		const volatile uint8_t *p = guards[i].p;
		for (uint32_t j = 0; j < guards[i].len; j++)
			if (p[j] != GUARD_BYTE) {
				fail(EXIT_OVERWRITE,
				     "%s: the device wrote 0x%02x at 0x%llx, byte %u of a %u-byte "
				     "guard zone",
				     when, p[j], (unsigned long long)A(p + j), j, guards[i].len);
				ok = false;
				break;
			}
	}
	n_guards = n_keep;
	return ok;
}

/* ---- frames ---------------------------------------------------------------------------- */

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint32_t frame_build(uint8_t *f, char op, uint32_t seq, uint32_t len, const char *tag)
{
	memcpy(f, peer_mac, 6);
	memcpy(f + 6, g_net.mac, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	memcpy(f + 14, "NHOSTILE", 8);
	f[F_OP] = (uint8_t)op;
	f[F_MODE] = g_mode;
	be32(f + F_SEQ, seq);
	be32(f + F_LEN, len);
	memset(f + F_TAG, 0, 16);
	memcpy(f + F_TAG, tag, strnlen(tag, 16));
	for (uint32_t i = F_BODY; i < len; i++)
		f[i] = pattern(seq, i);
	return len;
}

int frame_check_reply(const uint8_t *f, uint32_t len, char *op, uint32_t *seq, char *why,
                      size_t whylen)
{
	if (len < F_MIN) {
		snprintf(why, whylen, "%u bytes: shorter than any frame the peer sends", len);
		return 0;
	}
	if (memcmp(f, g_net.mac, 6) || memcmp(f + 6, peer_mac, 6) || f[12] != 0x88 ||
	    f[13] != 0xb5 || memcmp(f + 14, "NHOSTILE", 8)) {
		snprintf(why, whylen,
		         "%u bytes not from the peer (dst %02x:%02x:%02x:%02x:%02x:%02x, type "
		         "0x%02x%02x)",
		         len, f[0], f[1], f[2], f[3], f[4], f[5], f[12], f[13]);
		return 0;
	}
	*op = (char)f[F_OP];
	*seq = get_be32(f + F_SEQ);
	if (get_be32(f + F_LEN) != len) {
		snprintf(why, whylen, "length field %u, frame %u bytes: cut or glued",
		         get_be32(f + F_LEN), len);
		return 0;
	}
	if (*op == 'V')
		return 1;
	if (*op != 'R' && *op != 'P') {
		snprintf(why, whylen, "op 0x%02x is no reply", f[F_OP]);
		return 0;
	}
	if (*op == 'P' && len != SPLIT_LEN) {
		snprintf(why, whylen, "split reply of %u bytes, not %u", len, SPLIT_LEN);
		return 0;
	}
	for (uint32_t i = F_BODY; i < len; i++) {
		if (*op == 'P' && i >= SPLIT_AT && i < SPLIT_AT + 4)
			continue; /* the peer's fake length prefix */
		uint8_t want = (uint8_t)(255u - pattern(*seq, i)); /* inverted */
		if (f[i] != want) {
			snprintf(why, whylen, "seq %u: byte %u is 0x%02x, not the pattern's", *seq,
			         i, f[i]);
			return 0;
		}
	}
	return 1;
}

/* ---- receive buffers --------------------------------------------------------------------- */

struct slot {
	uint8_t *buf;
	uint32_t size;
	bool posted;
	bool pool;
};
static struct slot slots[NQ_MAX];
static uint8_t pool[NPOOL][POOL_BUF + 64] __attribute__((aligned(64)));
uint8_t rx_frame[MAX_FRAME + 64];
char rx_why[160];
bool rx_too_long;
bool g_pool;

void rx_forget(void)
{
	memset(slots, 0, sizeof(slots));
	g_pool = false;
}

unsigned rx_outstanding(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < NQ_MAX; i++)
		n += slots[i].posted && !slots[i].pool;
	return n;
}

void rx_register(uint16_t id, uint8_t *buf, uint32_t size)
{
	slots[id] = (struct slot){ buf, size, true, false };
}

void rx_post(uint16_t id, uint8_t *buf, uint32_t size)
{
	struct nq *q = &g_net.q[RXQ];
	rx_register(id, buf, size);
	q->m->desc[id] = D(A(buf), size, VIRTQ_DESC_F_WRITE, 0);
	nq_add(q, id);
}

void rx_pool_post(void)
{
	static bool guarded_once;
	if (!guarded_once) {
		for (unsigned i = 0; i < NPOOL; i++)
			guard_keep(pool[i] + POOL_BUF, 64);
		guarded_once = true;
	}
	for (uint16_t i = 0; i < NPOOL; i++) {
		rx_post(i, pool[i], POOL_BUF);
		slots[i].pool = true;
	}
	nq_kick(&g_net.q[RXQ]);
	g_pool = true;
}

enum rx_result rx_recv(uint64_t timeout_us, uint32_t *flen)
{
	struct nq *q = &g_net.q[RXQ];
	uint32_t got = 0, nbuf = 1, id, len;
	bool repost = false;
	enum rx_result res = R_FRAME;

	rx_too_long = false;

	for (uint32_t k = 0; k < nbuf; k++) {
		int rc = nq_wait(q, k ? 1000000 : timeout_us, &id, &len);
		if (rc) {
			snprintf(rx_why, sizeof(rx_why), "%s%s",
			         k ? "a frame's later buffer: " : "", g_net.dev.err);
			res = rc == -VIRTIO_ENEEDS_RESET ? R_NEEDS_RESET : k ? R_PROTO : R_TIMEOUT;
			break;
		}
		if (id >= q->num || !slots[id].posted) {
			snprintf(rx_why, sizeof(rx_why), "used id %u was not posted", id);
			res = R_PROTO;
			break;
		}
		struct slot *s = &slots[id];
		s->posted = false;
		if (len > s->size) {
			snprintf(rx_why, sizeof(rx_why),
			         "used id %u: len %u, but the chain has %u writable bytes", id, len,
			         s->size);
			rx_too_long = true;
			res = R_PROTO;
			break;
		}
		if (k == 0 && len == 0) {
			snprintf(rx_why, sizeof(rx_why), "buffer %u came back empty", id);
			res = R_EMPTY;
		} else if (k == 0) {
			if (len < NET_HDR) {
				snprintf(rx_why, sizeof(rx_why),
				         "used len %u: no room for the header", len);
				res = R_PROTO;
				break;
			}
			nbuf = s->buf[VIRTIO_NET_HDR_NUM_BUFFERS] |
			       (uint32_t)s->buf[VIRTIO_NET_HDR_NUM_BUFFERS + 1] << 8;
			if (nbuf == 0 || nbuf > q->num || (!g_net.mrg && nbuf != 1) || s->buf[0] ||
			    s->buf[1]) {
				snprintf(rx_why, sizeof(rx_why),
				         "header flags 0x%x gso %u num_buffers %u (MRG_RXBUF %s)",
				         s->buf[0], s->buf[1], nbuf, g_net.mrg ? "on" : "off");
				res = R_PROTO;
				break;
			}
			memcpy(rx_frame, s->buf + NET_HDR, len - NET_HDR);
			got = len - NET_HDR;
		} else {
			if (len == 0 || got + len > MAX_FRAME) {
				snprintf(rx_why, sizeof(rx_why), "buffer %u of a frame: len %u", k,
				         len);
				res = R_PROTO;
				break;
			}
			memcpy(rx_frame + got, s->buf, len);
			got += len;
		}
		if (s->pool) {
			rx_post((uint16_t)id, s->buf, s->size);
			slots[id].pool = true;
			repost = true;
		}
	}
	if (repost)
		nq_kick(q);
	*flen = got;
	return res;
}

/* ---- transmit --------------------------------------------------------------------------- */

static uint8_t tx_hdr[NET_HDR] __attribute__((aligned(64)));
static uint8_t tx_buf[MAX_FRAME + 64] __attribute__((aligned(64)));

static void tx_plain(struct virtq_desc *t, uint8_t *hdr, uint8_t *frame, uint32_t len)
{
	t[0] = D(A(hdr), NET_HDR, VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(frame), len, 0, 0);
}

int tx_send(const uint8_t *frame, uint32_t len, tx_builder build)
{
	struct nq *q = &g_net.q[TXQ];
	uint32_t id, ulen;

	memset(tx_hdr, 0, sizeof(tx_hdr));
	if (frame != tx_buf)
		memcpy(tx_buf, frame, len);
	(build ? build : tx_plain)(q->m->desc, tx_hdr, tx_buf, len);
	nq_add(q, 0);
	nq_kick(q);
	int rc = nq_wait(q, TX_TIMEOUT_US, &id, &ulen);
	if (rc)
		return rc;
	if (id != 0) {
		snprintf(g_net.dev.err, sizeof(g_net.dev.err), "transmit: used id %u, not 0", id);
		return -VIRTIO_EPROTO;
	}
	char op = (char)tx_buf[F_OP];
	if (op == 'E' || op == 'S')
		g_sent++;
	return 0;
}
