/*
 * fuzz-virtio-net: virtio-net (devices/virtio-net) with the virtio library's transport and
 * virtqueue (devices/virtio) through the fake host, on its socket backend: the guest's
 * register accesses, its two rings and buffers, guest RAM rewritten between notifications, and
 * the host side's stream (4-byte big-endian length, then the frame), which the target writes
 * itself: well-formed frames, malformed lengths, frames cut short, the peer leaving and coming
 * back. Queues are served in the QueueNotify handler and the host fd on the fake event loop
 * (no ioeventfd, no I/O thread: one thread, reproducible).
 *
 * The target listens on a UNIX socket and accepts the device's connection (backend = socket),
 * or with listen = on connects to the device's; it holds its end of that stream.
 *
 * Input: byte 0 configures the device (bit 0 MRG_RXBUF refused, bit 1 EVENT_IDX refused,
 * bit 2 no driver handshake, bit 3 mtu = 68, bit 4 mtu = 9000, bit 5 listen = on, bit 6
 * INDIRECT_DESC refused, bit 7 the device's socket send buffer small: a few frames fill it,
 * and the transmit queue waits for room); then operations, one byte (op & 15 the operation, p = op
 * >> 4) and operands: 0  MMIO read,  width 1 << (p & 3), at the 2 bytes' offset & 0x1ff 1  MMIO
 * write, the same, then the value 2  descriptor of queue p & 1 (index, address, length, flags,
 * next): a 16-byte entry 3  a head into queue p & 1's avail ring, avail idx published 4 QueueNotify
 * of queue p & 3 (2 and 3 do not exist) 5  2 * (p + 1) bytes written into guest RAM at an offset in
 * the 128 KiB window 6  p + 1 receive buffers (2 bytes: length), published, receiveq notified 7  a
 * frame sent by the driver: 2 bytes length, 1 byte segments and header flags (bit 7: a header's
 * flags and gso bytes follow), published and notified 8  the peer sends: p & 3 == 0 a frame (2
 * bytes: length, any: runts, jumbo frames), 1 a raw 4-byte length then up to 16 bytes, 2 a frame's
 * length and the first (p >> 2) quarters of it (the rest may come as raw bytes), 3 (1 byte n) n &
 * 31 raw bytes; then the event loop turns 9  the event loop turns (p & 3) + 1 times, the peer reads
 * what the device sent 10 the peer: p & 3 == 0 leaves (close), 1 comes back (listen = on:
 * connects), 2 stops sending (shutdown), 3 reads what the device sent 11 p & 3: 0 a machine reset,
 * 1 a restore, 2 a restore of changed state, 3 the driver's handshake again 12-15 a config space
 * read, width 1 << (p & 3), at 0x100 + the byte's value & 0xf
 *
 * Checked: no sanitizer report; the device drives only its own interrupt line; it writes
 * guest RAM (in the window where the target's rings and buffers are) only inside the used
 * rings of its queues and buffers that a descriptor (direct or in an indirect table) marks
 * device-writable; a restore gives back the state that was saved; what it sends the peer
 * keeps the stream's framing (every length prefix 14 to 65553, frames whole).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../devices/virtio-net/net.h"
#include "fuzz-dev.h"

#define BASE FAKE_MMIO_AUTO_BASE
#define QSIZE 16
#define RING(q) (0x1000ull + 0x1000ull * (q)) /* desc; avail at +0x400, used at +0x800 */
#define RXBUF(slot) (0x4000ull + 0x800ull * ((slot) % 16))
#define TXBUF(slot) (0xc000ull + 0x800ull * ((slot) % 16))
#define WINDOW 0x20000ull /* everything the target lays out is below */

static char dir[] = "/tmp/fuzz-virtio-net-XXXXXX";
static char peer_path[80], dev_path[80];
static int listen_fd = -1, peer = -1;
static bool dev_listens;
static uint8_t shadow[WINDOW]; /* guest RAM as the driver left it */
static uint8_t allowed[WINDOW / 8];
static uint16_t avail_idx[2], next_desc[2], next_slot[2];
static uint64_t refused;
static bool print_log; /* FUZZ_LOG=1: the fake host's log of each input on stderr */

/* The device's stream as the peer reads it: a length prefix, then that many bytes. */
static struct {
	uint8_t prefix[4];
	unsigned have; /* prefix bytes read */
	uint32_t left; /* frame bytes still to come */
} rx;

static void die(const char *what)
{
	fprintf(stderr, "fuzz-virtio-net: %s\n%s", what, fake_log());
	abort();
}

static void cleanup(void)
{
	unlink(peer_path);
	unlink(dev_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	print_log = getenv("FUZZ_LOG") != NULL;
	if (!mkdtemp(dir)) {
		perror("fuzz-virtio-net: mkdtemp");
		abort();
	}
	snprintf(peer_path, sizeof(peer_path), "%s/peer.sock", dir);
	snprintf(dev_path, sizeof(dev_path), "%s/dev.sock", dir);
	memcpy(sa.sun_path, peer_path, strlen(peer_path) + 1);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(listen_fd, 32)) {
		perror("fuzz-virtio-net: the peer's socket");
		abort();
	}
	atexit(cleanup);
	return 0;
}

/* ---- guest RAM: the driver's writes go to the shadow too ------------------------------- */

static void put_le(uint64_t gpa, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		fake_ram()[gpa + i] = (uint8_t)(v >> (8 * i));
		if (gpa + i < WINDOW)
			shadow[gpa + i] = (uint8_t)(v >> (8 * i));
	}
}

static void put_bytes(uint64_t gpa, const void *p, size_t n)
{
	memcpy(fake_ram() + gpa, p, n);
	if (gpa < WINDOW)
		memcpy(shadow + gpa, p, gpa + n <= WINDOW ? n : WINDOW - gpa);
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- what the device may write --------------------------------------------------------- */

/* The checks below are the target's, not code under test: no coverage feedback from them. */
#define CHECKER __attribute__((no_sanitize("coverage")))

struct qcfg {
	uint64_t desc, used;
	uint16_t num;
};

static void queues_of(struct smol_dev *d, struct qcfg q[2])
{
	struct net *n = d ? fake_dev_state(d) : NULL;

	for (unsigned i = 0; i < 2; i++) {
		const struct virtq *v = n ? virtio_mmio_queue(&n->vm, i) : NULL;
		q[i] = v ? (struct qcfg){ v->desc, v->used, v->num } : (struct qcfg){ 0, 0, 0 };
	}
}

CHECKER static void allow(uint64_t gpa, uint64_t len)
{
	if (gpa >= WINDOW)
		return;
	if (len > WINDOW - gpa)
		len = WINDOW - gpa;
	uint64_t i = gpa, end = gpa + len;
	for (; i < end && i % 8; i++)
		allowed[i / 8] |= (uint8_t)(1u << (i % 8));
	if (end - i >= 8) { /* whole bytes of the bitmap at once: a buffer may span the window */
		memset(allowed + i / 8, 0xff, (end - i) / 8);
		i += (end - i) & ~7ull;
	}
	for (; i < end; i++)
		allowed[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* 16 bytes of guest RAM at @gpa as they are now, or (@old) as the driver left them: the shadow
 * below the window. false past the end of RAM. */
CHECKER static bool ram_read16(bool old, uint64_t gpa, uint8_t out[16])
{
	if (gpa >= FAKE_RAM_SIZE || FAKE_RAM_SIZE - gpa < 16)
		return false;
	if (!old || gpa >= WINDOW)
		memcpy(out, fake_ram() + gpa, 16);
	else if (WINDOW - gpa >= 16)
		memcpy(out, shadow + gpa, 16);
	else
		for (unsigned i = 0; i < 16; i++)
			out[i] = gpa + i < WINDOW ? shadow[gpa + i] : fake_ram()[gpa + i];
	return true;
}

/* The device-writable buffers of the descriptor table at @table (@n entries), following
 * indirect tables one level down (the library refuses nested ones). */
CHECKER static void allow_table(bool old, uint64_t table, uint64_t n, bool top)
{
	uint8_t e[16];

	for (uint64_t i = 0; i < n && ram_read16(old, table + 16 * i, e); i++) {
		uint64_t addr = get_le(e, 8);
		uint32_t len = (uint32_t)get_le(e + 8, 4);
		uint16_t flags = (uint16_t)get_le(e + 12, 2);
		if ((flags & VIRTQ_DESC_F_INDIRECT) && top)
			allow_table(old, addr,
			            len / 16 < VIRTQ_MAX_SIZE ? len / 16 : VIRTQ_MAX_SIZE, false);
		else if (flags & VIRTQ_DESC_F_WRITE)
			allow(addr, len);
	}
}

CHECKER static void allow_queues(bool old, const struct qcfg q[2])
{
	for (unsigned i = 0; i < 2; i++) {
		if (!q[i].num)
			continue;
		allow(q[i].used, 6 + 8ull * q[i].num);
		allow_table(old, q[i].desc, q[i].num, true);
	}
}

/* Guest RAM changed under the device: only where the queues before or after let it. The
 * tables are read as the driver left them (the shadow) and as they are now (the device may
 * have written a descriptor into a buffer it was given). */
CHECKER static void check_writes(struct smol_dev *d, const struct qcfg before[2], uint8_t op)
{
	const uint8_t *ram = fake_ram();
	struct qcfg after[2];

	if (!memcmp(ram, shadow, WINDOW))
		return;
	queues_of(d, after);
	memset(allowed, 0, sizeof(allowed));
	bool moved = false; /* the same queues twice allow the same bytes twice */
	for (unsigned i = 0; i < 2; i++)
		moved |= before[i].desc != after[i].desc || before[i].used != after[i].used ||
		         before[i].num != after[i].num;
	for (int old = 0; old < 2; old++) {
		allow_queues(old, before);
		if (moved)
			allow_queues(old, after);
	}
	for (uint64_t i = 0; i < WINDOW; i++) {
		if (i % 256 == 0 && !memcmp(ram + i, shadow + i, 256)) {
			i += 255;
			continue;
		}
		if (ram[i] == shadow[i] || (allowed[i / 8] >> (i % 8) & 1))
			continue;
		fprintf(stderr,
		        "fuzz-virtio-net: operation 0x%02x: the device wrote guest RAM at 0x%llx "
		        "(0x%02x -> 0x%02x), in no used ring and no device-writable buffer "
		        "(queues: desc 0x%llx/0x%llx, used 0x%llx/0x%llx)\n",
		        op, (unsigned long long)i, shadow[i], ram[i],
		        (unsigned long long)after[0].desc, (unsigned long long)after[1].desc,
		        (unsigned long long)after[0].used, (unsigned long long)after[1].used);
		die("a write outside the driver's writable buffers");
	}
	memcpy(shadow, ram, WINDOW);
}

/* ---- the driver ----------------------------------------------------------------------- */

static void wr32(uint64_t off, uint32_t v)
{
	fake_mmio_write(BASE + off, 4, v);
}

static uint32_t rd32(uint64_t off)
{
	return (uint32_t)fake_mmio_read(BASE + off, 4);
}

static void queue_init(unsigned q)
{
	uint8_t zero[0x1000] = { 0 };

	put_bytes(RING(q), zero, sizeof(zero));
	wr32(VIRTIO_MMIO_QUEUE_SEL, q);
	wr32(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr32(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)RING(q));
	wr32(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)RING(q) + 0x400);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)RING(q) + 0x800);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_READY, 1);
	avail_idx[q] = next_desc[q] = 0;
}

/* What Linux's virtio_mmio + virtio_net do, accepting what is offered but @refused. */
static void handshake(void)
{
	wr32(VIRTIO_MMIO_STATUS, 0);
	wr32(VIRTIO_MMIO_STATUS, 1);
	wr32(VIRTIO_MMIO_STATUS, 3);
	for (uint32_t sel = 0; sel < 2; sel++) {
		wr32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
		uint32_t f = rd32(VIRTIO_MMIO_DEVICE_FEATURES) & ~(uint32_t)(refused >> (32 * sel));
		wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		wr32(VIRTIO_MMIO_DRIVER_FEATURES, f);
	}
	wr32(VIRTIO_MMIO_STATUS, 0xb);
	queue_init(0);
	queue_init(1);
	wr32(VIRTIO_MMIO_STATUS, 0xf);
}

static void desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t d = RING(q) + 16ull * (i % QSIZE);

	put_le(d, addr, 8);
	put_le(d + 8, len, 4);
	put_le(d + 12, flags, 2);
	put_le(d + 14, next, 2);
}

static void publish(unsigned q, uint16_t head)
{
	uint64_t avail = RING(q) + 0x400;

	put_le(avail + 4 + 2ull * (avail_idx[q] % QSIZE), head, 2);
	avail_idx[q]++;
	put_le(avail + 4 + 2ull * QSIZE, get_le(fake_ram() + RING(q) + 0x802, 2),
	       2); /* used_event */
	put_le(avail + 2, avail_idx[q], 2);
}

static void frame_bytes(uint8_t *buf, uint32_t len, unsigned seed)
{
	static const uint8_t addrs[12] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
		                           0x02, 0x66, 0x77, 0x88, 0x99, 0xaa };

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
	memcpy(buf, addrs, len < 12 ? len : 12);
}

/* @count receive buffers of one descriptor each, published, receiveq notified. */
static void rx_post(struct in *in, unsigned count)
{
	uint32_t len = (uint32_t)in_le(in, 2) & 0x1fff;

	for (unsigned i = 0; i < count; i++) {
		unsigned d = next_desc[0]++ % QSIZE;
		desc(0, d, RXBUF(next_slot[0]++), len, VIRTQ_DESC_F_WRITE, 0);
		publish(0, (uint16_t)d);
	}
	wr32(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* A frame as the driver sends it: header then frame over 1 to 3 segments. */
static void tx_send(struct in *in)
{
	static uint8_t buf[0x800 * 3];
	uint32_t len = (uint32_t)in_le(in, 2) % (sizeof(buf) - NET_HDR);
	uint8_t f = in_u8(in);
	unsigned nseg = f % 3 + 1, d0 = next_desc[1];
	uint32_t total = NET_HDR + len, at = 0;

	memset(buf, 0, NET_HDR);
	if (f & 0x80) {
		buf[VIRTIO_NET_HDR_FLAGS] = in_u8(in);
		buf[VIRTIO_NET_HDR_GSO_TYPE] = in_u8(in);
	}
	frame_bytes(buf + NET_HDR, len, f);
	for (unsigned i = 0; i < nseg; i++) {
		uint32_t l = i + 1 < nseg ? total / nseg : total - at;
		uint64_t gpa = TXBUF(next_slot[1]++);
		if (l > 0x800)
			l = 0x800; /* a slot's worth: the rest of the frame is not sent */
		put_bytes(gpa, buf + at, l);
		unsigned di = next_desc[1]++;
		desc(1, di, gpa, l, i + 1 < nseg ? VIRTQ_DESC_F_NEXT : 0,
		     (uint16_t)((di + 1) % QSIZE));
		at += l;
	}
	publish(1, (uint16_t)(d0 % QSIZE));
	wr32(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
}

/* ---- the peer ------------------------------------------------------------------------- */

static void peer_send(const void *p, size_t n)
{
	if (peer >= 0)
		(void)send(peer, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* The peer reads what the device sent, and checks its framing. */
CHECKER static void peer_read(void)
{
	uint8_t buf[4096];
	ssize_t k;

	while (peer >= 0 && (k = recv(peer, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (ssize_t i = 0; i < k;) {
			if (rx.left) {
				uint32_t m =
				        (uint32_t)(k - i) < rx.left ? (uint32_t)(k - i) : rx.left;
				rx.left -= m;
				i += m;
				continue;
			}
			rx.prefix[rx.have++] = buf[i++];
			if (rx.have < 4)
				continue;
			uint32_t len;
			memcpy(&len, rx.prefix, 4);
			len = ntohl(len);
			rx.have = 0;
			rx.left = len;
			if (len < NET_ETH_HLEN || len > NET_MAX_FRAME) {
				fprintf(stderr, "fuzz-virtio-net: the device sent a length of %u\n",
				        len);
				die("the stream to the peer lost its framing");
			}
		}
	}
}

static void peer_close(void)
{
	if (peer >= 0)
		close(peer);
	peer = -1;
	memset(&rx, 0, sizeof(rx));
}

/* The peer's end of a new device's stream: the device connected (accepted here; the last
 * connection is the newest device's), or listens (connected here). */
static void peer_attach(void)
{
	int fd;

	if (dev_listens) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		memcpy(sa.sun_path, dev_path, strlen(dev_path) + 1);
		peer_close();
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			close(fd);
			fd = -1;
		}
		peer = fd;
		fake_fd_pump(0); /* the device accepts */
		return;
	}
	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		peer_close();
		peer = fd;
	}
}

static void peer_inject(struct in *in, uint8_t p)
{
	static uint8_t buf[4 + 9100];
	uint32_t len, be;
	size_t n;

	switch (p & 3) {
	case 0:
	case 2:
		len = (uint32_t)in_le(in, 2) % 9100;
		be = htonl(len);
		memcpy(buf, &be, 4);
		frame_bytes(buf + 4, len, len);
		n = 4 + ((p & 3) == 0 ? len : len * (p >> 2) / 4);
		peer_send(buf, n);
		break;
	case 1:
		be = htonl((uint32_t)in_le(in, 4));
		memcpy(buf, &be, 4);
		n = in_bytes(in, buf + 4, 16);
		peer_send(buf, 4 + n);
		break;
	default: n = in_bytes(in, buf, in_u8(in) & 31); peer_send(buf, n);
	}
	fake_fd_pump(0);
}

/* ---- the run -------------------------------------------------------------------------- */

/* The device's end of the stream holds little: a frame or two (net-driver.c does the same). */
static void small_sndbuf(struct smol_dev *d)
{
	struct net *n = fake_dev_state(d);
	int small = 4096;

	if (n->fd >= 0)
		(void)setsockopt(n->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
}

/* The state (net-snap.c): MAC, MTU, the link status the guest saw (at 8), then the transport
 * (virtio.h: Status, InterruptStatus and ConfigGeneration at 36, 40, 44 of it). */
#define ST_LINK 8
#define ST_STATUS (10 + 36)
#define ST_ISR (10 + 40)
#define ST_GEN (10 + 44)

/*
 * A restored device saves the state it loaded, but for the link: when the host side is not
 * what it was at the save (this peer left, or a new device waits for one), load() tells the
 * guest: the link status of now, the configuration one generation further and, after
 * DRIVER_OK, a configuration interrupt pending.
 */
static bool same_state(const uint8_t *saved, const uint8_t *again, size_t len)
{
	static uint8_t c[512];

	if (!memcmp(saved, again, len))
		return true;
	if (len > sizeof(c) || len < ST_GEN + 4 || !memcmp(saved + ST_LINK, again + ST_LINK, 2))
		return false;
	memcpy(c, again, len);
	memcpy(c + ST_LINK, saved + ST_LINK, 2);
	uint32_t gen = (uint32_t)get_le(saved + ST_GEN, 4),
	         isr = (uint32_t)get_le(saved + ST_ISR, 4);
	if ((uint32_t)get_le(again + ST_GEN, 4) != gen + 1)
		return false;
	if (get_le(saved + ST_STATUS, 4) & VIRTIO_STATUS_DRIVER_OK)
		isr |= VIRTIO_INT_CONFIG;
	if ((uint32_t)get_le(again + ST_ISR, 4) != isr)
		return false;
	memcpy(c + ST_GEN, saved + ST_GEN, 4);
	memcpy(c + ST_ISR, saved + ST_ISR, 4);
	return !memcmp(c, saved, len);
}

static struct smol_dev *restore(struct smol_dev *d, const struct fuzz_cfg *cfg, struct in *in,
                                bool mutate, unsigned *budget)
{
	d = fuzz_dev_restore(d, cfg, in, mutate, budget);
	peer_attach();
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned budget = 12;
	uint8_t flags = in_u8(&in);
	struct fuzz_cfg cfg = { "net0", { "backend", "socket", "socket", "peer.sock", NULL } };
	unsigned k = 4;

	dev_listens = flags & 0x20;
	if (dev_listens) {
		cfg.kv[3] = "dev.sock";
		cfg.kv[k++] = "listen";
		cfg.kv[k++] = "on";
	}
	if (flags & 0x18) {
		cfg.kv[k++] = "mtu";
		cfg.kv[k++] = flags & 0x08 ? "68" : "9000";
	}
	cfg.kv[k] = NULL;
	refused = (flags & 1 ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0) |
	          (flags & 2 ? 1ull << VIRTIO_F_EVENT_IDX : 0) |
	          (flags & 0x40 ? 1ull << VIRTIO_F_INDIRECT_DESC : 0);
	fuzz_same_state = same_state;
	fake_host_init();
	fake_cfg_dir(dir);
	memset(shadow, 0, sizeof(shadow));
	memset(avail_idx, 0, sizeof(avail_idx));
	memset(next_desc, 0, sizeof(next_desc));
	memset(next_slot, 0, sizeof(next_slot));
	peer_close();
	struct smol_dev *d = fuzz_dev_create(&cfg);
	peer_attach();
	if (!(flags & 4))
		handshake();
	check_writes(d, (struct qcfg[2]){ { 0, 0, 0 }, { 0, 0, 0 } }, 0xff);
	while (d && in_left(&in)) {
		uint8_t op = in_u8(&in), p = op >> 4;
		unsigned width = 1u << (p & 3);
		struct qcfg before[2];

		queues_of(d, before);
		switch (op & 15) {
		case 0: fuzz_mmio_op(&in, BASE, VIRTIO_MMIO_WINDOW, width, false); break;
		case 1: fuzz_mmio_op(&in, BASE, VIRTIO_MMIO_WINDOW, width, true); break;
		case 2: {
			unsigned i = in_u8(&in);
			uint8_t sel = in_u8(&in);
			uint64_t addr = sel & 0x80 ? in_le(&in, 8)
			                           : (uint64_t)(sel & 0x1f) << 12 | in_le(&in, 2);
			uint32_t len = (uint32_t)in_le(&in, sel & 0x40 ? 4 : 2);
			uint8_t f = in_u8(&in);
			desc(p & 1, i, addr, len, f & 7, f >> 3);
			break;
		}
		case 3: publish(p & 1, in_u8(&in)); break;
		case 4: wr32(VIRTIO_MMIO_QUEUE_NOTIFY, p & 3); break;
		case 5: {
			uint64_t at = in_le(&in, 3) & (WINDOW - 1);
			uint8_t buf[32];
			size_t n = in_bytes(&in, buf, 2u * (p + 1u));
			if (at + n > WINDOW)
				n = WINDOW - at;
			put_bytes(at, buf, n);
			break;
		}
		case 6: rx_post(&in, p + 1u); break;
		case 7:
			if (flags & 0x80)
				small_sndbuf(d);
			tx_send(&in);
			break;
		case 8: peer_inject(&in, p); break;
		case 9:
			for (unsigned i = 0; i <= (p & 3u); i++)
				fake_fd_pump(0);
			peer_read();
			break;
		case 10:
			switch (p & 3) {
			case 0: peer_close(); break;
			case 1:
				if (dev_listens && peer < 0)
					peer_attach();
				break;
			case 2:
				if (peer >= 0)
					shutdown(peer, SHUT_WR);
				break;
			default: peer_read();
			}
			fake_fd_pump(0);
			break;
		case 11:
			switch (p & 3) {
			case 0: fake_dev_reset(d); break;
			case 3: handshake(); break;
			default: d = restore(d, &cfg, &in, (p & 3) == 2, &budget); break;
			}
			break;
		default: {
			uint64_t off = VIRTIO_MMIO_CONFIG + (in_u8(&in) & 0xf);
			(void)fake_mmio_read(BASE + off, width);
		}
		}
		if (d)
			check_writes(d, before, op);
	}
	peer_read();
	if (fake_irq_misuse())
		die("the device drove a line it did not claim");
	peer_close();
	if (print_log) {
		struct net *n = d ? fake_dev_state(d) : NULL;
		if (n)
			fprintf(stderr,
			        "rx %llu frames, %llu dropped, %llu waits; tx %llu frames, "
			        "%llu dropped, %llu stalls\n",
			        (unsigned long long)n->stats.rx_frames,
			        (unsigned long long)n->stats.rx_dropped,
			        (unsigned long long)n->stats.rx_waits,
			        (unsigned long long)n->stats.tx_frames,
			        (unsigned long long)n->stats.tx_dropped,
			        (unsigned long long)n->stats.tx_stalls);
		fprintf(stderr, "%s", fake_log());
	}
	fake_host_fini();
	return 0;
}
