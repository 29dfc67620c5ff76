/* The virtio-net tests' driver and peer: see net-driver.h. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "net-driver.h"
#include "net.h"
#include "ring-desc.h"

const struct smol_plugin_desc *net_plugin;
struct smol_dev *ndev;
struct nq rxq, txq;
uint8_t *nram;
int peer = -1;
int peer_listen = -1;

static char tmpdir[64];

static const char *so_path(void)
{
	const char *p = getenv("VIRTIO_NET_SO");

	return p ? p : VIRTIO_NET_SO;
}

const char *nd_path(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

void nd_setup(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	signal(SIGPIPE, SIG_IGN); /* a peer writing to a device that left: EPIPE */
	fake_host_init();
	net_plugin = fake_plugin_open(so_path());
	cr_assert(net_plugin, "cannot load %s: %s", so_path(), fake_log());
	strcpy(tmpdir, "/tmp/net-test-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	fake_cfg_dir(tmpdir);
	nram = fake_ram();
	peer = -1;
	peer_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_lt(strlen(nd_path("peer.sock")), sizeof(sa.sun_path));
	memcpy(sa.sun_path, nd_path("peer.sock"), strlen(nd_path("peer.sock")) + 1);
	cr_assert(peer_listen >= 0 && bind(peer_listen, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	          listen(peer_listen, 4) == 0);
}

void nd_teardown(void)
{
	char cmd[128];

	fake_host_fini();
	if (peer >= 0)
		close(peer);
	close(peer_listen);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static int create_v(const char *name, bool connected, va_list ap)
{
	const char *k;

	ndev = fake_dev_new(name);
	if (connected) {
		fake_cfg_set(ndev, "backend", "socket");
		fake_cfg_set(ndev, "socket", "peer.sock");
	}
	while ((k = va_arg(ap, const char *)))
		fake_cfg_set(ndev, k, va_arg(ap, const char *));
	return fake_dev_create(ndev, net_plugin, 0);
}

int nd_create(const char *name, ...)
{
	va_list ap;
	int r;

	va_start(ap, name);
	r = create_v(name, false, ap);
	va_end(ap);
	return r;
}

void nd_accept(void)
{
	struct pollfd p = { .fd = peer_listen, .events = POLLIN };

	cr_assert_eq(poll(&p, 1, NTIMEOUT_MS), 1, "the device did not connect: %s", fake_log());
	if (peer >= 0)
		close(peer);
	peer = accept4(peer_listen, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(peer, 0);
}

void nd_create_connected(const char *name, ...)
{
	va_list ap;
	int r;

	va_start(ap, name);
	r = create_v(name, true, ap);
	va_end(ap);
	cr_assert_eq(r, 0, "%s", fake_log());
	nd_accept();
}

uint32_t nrd(uint64_t off)
{
	return (uint32_t)fake_mmio_read(NBASE + off, 4);
}

void nwr(uint64_t off, uint32_t v)
{
	fake_mmio_write(NBASE + off, 4, v);
}

uint8_t ncfg8(unsigned off)
{
	return (uint8_t)fake_mmio_read(NBASE + VIRTIO_MMIO_CONFIG + off, 1);
}

uint16_t ncfg16(unsigned off)
{
	return (uint16_t)fake_mmio_read(NBASE + VIRTIO_MMIO_CONFIG + off, 2);
}

uint64_t nd_device_features(void)
{
	nwr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t f = (uint64_t)nrd(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	nwr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	return f | nrd(VIRTIO_MMIO_DEVICE_FEATURES);
}

static void queue_init(struct nq *q, unsigned index, uint64_t ring)
{
	memset(q, 0, sizeof(*q));
	q->index = index;
	q->desc = ring;
	q->avail = ring + 0x400;
	q->used = ring + 0x800;
	memset(nram + ring, 0, 0x1000);
	nwr(VIRTIO_MMIO_QUEUE_SEL, index);
	cr_assert_eq(nrd(VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
	nwr(VIRTIO_MMIO_QUEUE_NUM, NQSIZE);
	nwr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc);
	nwr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	nwr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)q->avail);
	nwr(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	nwr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)q->used);
	nwr(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	nwr(VIRTIO_MMIO_QUEUE_READY, 1);
}

void nd_rings_init(void)
{
	queue_init(&rxq, 0, RX_RING);
	queue_init(&txq, 1, TX_RING);
}

void nd_up(uint64_t refuse)
{
	uint64_t f;

	cr_assert_eq(nrd(VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	cr_assert_eq(nrd(VIRTIO_MMIO_VERSION), 2);
	cr_assert_eq(nrd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	nwr(VIRTIO_MMIO_STATUS, 0);
	nwr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	nwr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	f = nd_device_features() & ~refuse;
	nwr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	nwr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	nwr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	nwr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	nwr(VIRTIO_MMIO_STATUS, 0xb);
	cr_assert_eq(nrd(VIRTIO_MMIO_STATUS), 0xb, "%s", fake_log());
	nd_rings_init();
	nwr(VIRTIO_MMIO_STATUS, 0xf);
	cr_assert_eq(nrd(VIRTIO_MMIO_STATUS), 0xf, "%s", fake_log());
}

static uint16_t ld16(uint64_t gpa)
{
	return le16toh(__atomic_load_n((uint16_t *)(nram + gpa), __ATOMIC_ACQUIRE));
}

static void st16(uint64_t gpa, uint16_t v)
{
	__atomic_store_n((uint16_t *)(nram + gpa), htole16(v), __ATOMIC_RELEASE);
}

uint16_t nd_add(struct nq *q, const struct nd_seg *s, unsigned n)
{
	uint16_t d[NQSIZE];
	unsigned got = 0;

	for (uint16_t i = 0; i < NQSIZE && got < n; i++)
		if (!q->busy[i])
			d[got++] = i;
	cr_assert_eq(got, n, "queue %u: no %u free descriptors", q->index, n);
	for (unsigned i = 0; i < n; i++) {
		q->busy[d[i]] = true;
		put_desc(nram + q->desc + 16 * d[i], s[i].gpa, s[i].len,
		         (uint16_t)((i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
		                    (s[i].write ? VIRTQ_DESC_F_WRITE : 0)),
		         i + 1 < n ? d[i + 1] : 0);
	}
	q->chain_len[d[0]] = (uint16_t)n;
	st16(q->avail + 4 + 2 * (q->avail_idx % NQSIZE), d[0]);
	q->avail_idx++;
	return d[0];
}

void nd_publish(struct nq *q)
{
	st16(q->avail + 4 + 2 * NQSIZE, nd_used_idx(q)); /* used_event */
	st16(q->avail + 2, q->avail_idx);
}

void nd_notify(struct nq *q)
{
	nwr(VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

uint16_t nd_used_idx(const struct nq *q)
{
	return ld16(q->used + 2);
}

bool nd_reap(struct nq *q, uint16_t *head, uint32_t *len)
{
	uint32_t id, l;
	uint64_t e = q->used + 4 + 8 * (q->used_seen % NQSIZE);

	if (nd_used_idx(q) == q->used_seen)
		return false;
	memcpy(&id, nram + e, 4);
	memcpy(&l, nram + e + 4, 4);
	id = le32toh(id);
	cr_assert_lt(id, NQSIZE, "queue %u: used id %u", q->index, id);
	cr_assert(q->busy[id], "queue %u: used id %u was not available", q->index, id);
	/* free the chain: its descriptors are linked by next */
	for (uint16_t i = (uint16_t)id, k = 0; k < q->chain_len[id]; k++) {
		uint16_t next;

		memcpy(&next, nram + q->desc + 16 * i + 14, 2);
		q->busy[i] = false;
		i = le16toh(next);
	}
	q->chain_len[id] = 0;
	q->used_seen++;
	*head = (uint16_t)id;
	*len = le32toh(l);
	return true;
}

void nd_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned nd_pump_for(int ms)
{
	long end = now_ms() + ms;
	unsigned fired = 0;

	do
		fired += fake_fd_pump(1);
	while (now_ms() < end);
	return fired;
}

bool nd_wait_used(const struct nq *q, uint16_t target, int ms)
{
	long end = now_ms() + ms;

	while ((int16_t)(nd_used_idx(q) - target) < 0) {
		if (now_ms() > end)
			return false;
		fake_fd_pump(1);
	}
	return true;
}

uint16_t rx_post(uint32_t len)
{
	unsigned slot = rxq.next_slot++ % RX_SLOTS;
	struct nd_seg s = { RXBUF(slot), len, true };
	uint16_t head;

	cr_assert_leq(len + 256, 0x11000);
	memset(nram + RXBUF(slot), 0xa5, len + 256);
	head = nd_add(&rxq, &s, 1);
	rxq.slot[head] = (uint16_t)slot;
	nd_publish(&rxq);
	return head;
}

uint8_t *rx_buf(uint16_t head)
{
	return nram + RXBUF(rxq.slot[head]);
}

uint16_t tx_send(const uint8_t *hdr, const uint8_t *frame, uint32_t len, unsigned nseg)
{
	unsigned slot = txq.next_slot++ % TX_SLOTS;
	uint32_t total = NHDR + len, at = 0;
	uint64_t gpa = TXBUF(slot);
	uint8_t *bytes = malloc(total);
	struct nd_seg s[8];
	uint16_t head;

	cr_assert(bytes && nseg >= 1 && nseg <= 8 && total + 16 * nseg <= 0x11000);
	if (hdr)
		memcpy(bytes, hdr, NHDR);
	else
		memset(bytes, 0, NHDR);
	memcpy(bytes + NHDR, frame, len);
	/* segments of about total / nseg bytes, with 16 bytes of 0xcc (never sent) between */
	memset(nram + gpa, 0xcc, total + 16 * nseg);
	for (unsigned i = 0; i < nseg; i++) {
		uint32_t l = i + 1 < nseg ? total / nseg : total - at;

		s[i] = (struct nd_seg){ gpa + at + 16 * i, l, false };
		memcpy(nram + s[i].gpa, bytes + at, l);
		at += l;
	}
	free(bytes);
	head = nd_add(&txq, s, nseg);
	txq.slot[head] = (uint16_t)slot;
	nd_publish(&txq);
	nd_notify(&txq);
	return head;
}

void make_frame(uint8_t *buf, uint32_t len, unsigned seed)
{
	static const uint8_t dst[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	static const uint8_t src[6] = { 0x02, 0x66, 0x77, 0x88, 0x99, 0xaa };

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
	if (len >= 14) {
		memcpy(buf, dst, 6);
		memcpy(buf + 6, src, 6);
		buf[12] = 0x88;
		buf[13] = 0xb5;
	}
}

void peer_send_raw(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t k = write(peer, p, len);

		cr_assert_gt(k, 0, "peer write: %s", strerror(errno));
		p += k;
		len -= (size_t)k;
	}
}

void peer_send(const uint8_t *frame, uint32_t len)
{
	uint32_t be = htonl(len);

	peer_send_raw(&be, 4);
	peer_send_raw(frame, len);
}

/* Reads exactly @len bytes from the peer by @end (ms), turning the event loop meanwhile. */
static bool read_exact(uint8_t *buf, size_t len, long end)
{
	while (len) {
		struct pollfd p = { .fd = peer, .events = POLLIN };
		ssize_t k;

		fake_fd_pump(0);
		if (poll(&p, 1, 1) == 0) {
			if (now_ms() > end)
				return false;
			continue;
		}
		k = read(peer, buf, len);
		if (k <= 0)
			return false;
		buf += k;
		len -= (size_t)k;
	}
	return true;
}

long peer_recv(uint8_t *buf, size_t max, int ms)
{
	long end = now_ms() + ms;
	uint32_t be, len;

	if (!read_exact((uint8_t *)&be, 4, end))
		return -1;
	len = ntohl(be);
	cr_assert_leq(len, max, "the device sent a frame of %u bytes", len);
	cr_assert(read_exact(buf, len, end), "a frame of %u bytes cut short", len);
	return (long)len;
}

bool peer_quiet(int ms)
{
	long end = now_ms() + ms;

	do {
		struct pollfd p = { .fd = peer, .events = POLLIN };

		fake_fd_pump(0);
		if (poll(&p, 1, 1) == 1)
			return false;
	} while (now_ms() < end);
	return true;
}

/* ---- checks the tests share ---------------------------------------------------------- */

struct net *net_state(void)
{
	return fake_dev_state(ndev);
}

bool link_up(void)
{
	return ncfg16(VIRTIO_NET_CFG_STATUS) & VIRTIO_NET_S_LINK_UP;
}

/* The next used entry of @q: asserts there is one, checks its head and length. */
void expect_used(struct nq *q, uint16_t head, uint32_t len)
{
	uint16_t h;
	uint32_t l;

	cr_assert(nd_reap(q, &h, &l), "queue %u: no used entry: %s", q->index, fake_log());
	cr_assert_eq(h, head, "queue %u: used head %u, expected %u", q->index, h, head);
	cr_assert_eq(l, len, "queue %u: used length %u, expected %u", q->index, l, len);
}

/* Transmit chain @head completed (the I/O thread pushes it after the peer may have read it):
 * the next used entry, length 0. */
void tx_done(uint16_t head)
{
	cr_assert(nd_wait_used(&txq, (uint16_t)(txq.used_seen + 1), NTIMEOUT_MS), "%s", fake_log());
	expect_used(&txq, head, 0);
}

/* RX buffer @head holds the header (num_buffers @nbuf) then @len bytes of @frame, then the
 * canary. */
void expect_rx(uint16_t head, uint16_t nbuf, const uint8_t *frame, uint32_t len)
{
	const uint8_t *b = rx_buf(head);
	uint16_t nb;

	for (unsigned i = 0; i < 10; i++)
		cr_assert_eq(b[i], 0, "header byte %u is 0x%x", i, b[i]);
	memcpy(&nb, b + 10, 2);
	cr_assert_eq(le16toh(nb), nbuf, "num_buffers");
	cr_assert(!memcmp(b + NHDR, frame, len), "the frame's bytes differ");
	for (unsigned i = 0; i < 256; i++)
		cr_assert_eq(b[NHDR + len + i], 0xa5, "canary byte %u after the frame overwritten",
		             i);
}

void untouched(uint16_t head, uint32_t len)
{
	for (uint32_t i = 0; i < len + 256; i++)
		cr_assert_eq(rx_buf(head)[i], 0xa5, "byte %u of a dropped buffer written", i);
}

void recv_expect(const uint8_t *frame, uint32_t len)
{
	static uint8_t got[NMAX_FRAME];
	long n = peer_recv(got, sizeof(got), NTIMEOUT_MS);

	cr_assert_eq(n, (long)len, "the peer got %ld bytes, %u sent: %s", n, len, fake_log());
	cr_assert(!memcmp(got, frame, len), "the frame's bytes differ at the peer");
}

/* The peer closes: the device sees it (at its next read) and takes the link down. */
void wait_link(bool up)
{
	for (int i = 0; i < NTIMEOUT_MS && link_up() != up; i++)
		fake_fd_pump(1);
	cr_assert_eq(link_up(), up, "the link is not %s: %s", up ? "up" : "down", fake_log());
}

/* The device's socket buffer made small: a 9000-byte frame does not fit in it whole. */
void shrink_sndbuf(void)
{
	int small = 4096;

	cr_assert_eq(setsockopt(net_state()->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
}

/* Until the used index of @q stays put for 50 ms. */
uint16_t settle(const struct nq *q)
{
	uint16_t u = nd_used_idx(q);

	for (int quiet = 0; quiet < 50;) {
		nd_pump_for(10);
		quiet = nd_used_idx(q) == u ? quiet + 10 : 0;
		u = nd_used_idx(q);
	}
	return u;
}
