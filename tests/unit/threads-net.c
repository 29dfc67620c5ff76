/*
 * virtio-net with its I/O thread (the fake host takes both ioeventfds) on its socket
 * backend, the test at the other end: a peer thread sends frames, another reads what the
 * device transmits, while the main thread (a vCPU) posts receive buffers, transmits, takes
 * interrupts, and resets, switches the receive queue off, pauses and snapshots, or destroys
 * the device in the middle of it. Frame k carries k (bytes 14..17, big-endian) and a length
 * and payload derived from it: whoever gets one checks it whole, and that k only grows.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-driver.h"
#include "threads.h"

#define RX_LEN 1526 /* a buffer takes a whole 1514-byte frame (no mergeable buffers) */
#define RX_POSTED 16
#define TX_IN_FLIGHT 24

static uint32_t flen(unsigned k)
{
	return 60 + (k * 211) % 1455;
}

static uint32_t mkframe(uint8_t *buf, unsigned k)
{
	uint32_t len = flen(k), be = htonl(k);

	make_frame(buf, len, k);
	memcpy(buf + 14, &be, 4);
	return len;
}

/* @buf of @len bytes is frame k whole: k, or -1 after a failed check. */
static long frame_seq(const uint8_t *buf, uint32_t len, const char *who)
{
	static __thread uint8_t want[2048];
	uint32_t be;

	CHECK_GE(len, 18, "%s: a frame of %u bytes", who, len);
	memcpy(&be, buf + 14, 4);
	unsigned k = ntohl(be);
	CHECK_LT(k, 100000, "%s: frame number %u", who, k);
	CHECK_EQ(len, flen(k), "%s: frame %u's length", who, k);
	mkframe(want, k);
	CHECK(!memcmp(buf, want, len), "%s: frame %u's bytes differ", who, k);
	return k;
}

/* ---- the peer's two threads --------------------------------------------------------- */

struct sender {
	int fd;
	unsigned from, to; /* frames [from, to) */
	int stop; /* atomic */
	bool device_goes; /* the device may leave: a send error ends it quietly */
	unsigned sent; /* atomic */
};

static void send_frames(void *arg)
{
	struct sender *s = arg;
	static __thread uint8_t buf[4 + 2048];

	for (unsigned k = s->from; k < s->to && !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); k++) {
		uint32_t len = mkframe(buf + 4, k), be = htonl(len), off = 0;

		memcpy(buf, &be, 4);
		while (off < 4 + len) {
			ssize_t n = send(s->fd, buf + off, 4 + len - off, MSG_NOSIGNAL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 && s->device_goes)
				return;
			CHECK_GT(n, 0, "peer send of frame %u: %s", k, strerror(errno));
			off += (uint32_t)n;
		}
		__atomic_store_n(&s->sent, k + 1 - s->from, __ATOMIC_RELEASE);
		if (k % 8 == 0)
			usleep(100);
	}
}

struct reader {
	int fd;
	int stop; /* atomic: end at a frame boundary once nothing comes for 20 ms */
	bool eof_ok; /* the device may leave */
	bool contiguous; /* every frame from the first on, none lost */
	unsigned got; /* atomic */
	long last; /* atomic: the last frame's k, -1 none */
	bool eof;
};

/* Reads @len bytes; false at a frame boundary (@len 4, nothing read) on stop or EOF. */
static bool read_all(struct reader *r, uint8_t *buf, size_t len, bool boundary)
{
	size_t off = 0;
	long end = now_ms() + 5000, quiet = now_ms() + 20;

	while (off < len) {
		struct pollfd p = { .fd = r->fd, .events = POLLIN };

		if (poll(&p, 1, 5) == 0) {
			if (boundary && off == 0) {
				/* between frames the device may rightly send nothing for long (the
				 * driver's last frame is out, the test's other side still runs on a
				 * loaded machine): wait for stop; the test's own deadlines catch a
				 * stalled device */
				if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) && now_ms() > quiet)
					return false;
				continue;
			}
			CHECK_LT(now_ms(), end, "peer: a frame cut short (%zu of %zu bytes)", off,
			         len);
			continue;
		}
		ssize_t n = read(r->fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			CHECK(r->eof_ok, "peer: the device's end closed (%s)",
			      n ? strerror(errno) : "EOF");
			CHECK(boundary && off == 0,
			      "peer: the device left in the middle of a frame");
			r->eof = true;
			return false;
		}
		off += (size_t)n;
		quiet = now_ms() + 20;
		end = now_ms() + 5000; /* a frame is cut short after 5 s without a byte of it */
	}
	return true;
}

static void read_frames(void *arg)
{
	struct reader *r = arg;
	static __thread uint8_t buf[2048];
	uint32_t be;

	__atomic_store_n(&r->last, -1, __ATOMIC_RELEASE);
	while (read_all(r, (uint8_t *)&be, 4, true)) {
		uint32_t len = ntohl(be);

		CHECK_LE(len, sizeof(buf), "peer: a frame of %u bytes", len);
		CHECK(read_all(r, buf, len, false));
		long k = frame_seq(buf, len, "peer");
		long last = __atomic_load_n(&r->last, __ATOMIC_ACQUIRE);
		if (r->contiguous && last >= 0)
			CHECK_EQ(k, last + 1, "peer: frames lost or out of order");
		CHECK_GT(k, last, "peer: frames out of order");
		__atomic_store_n(&r->last, k, __ATOMIC_RELEASE);
		__atomic_add_fetch(&r->got, 1, __ATOMIC_RELEASE);
	}
}

static long reader_last(struct reader *r)
{
	return __atomic_load_n(&r->last, __ATOMIC_ACQUIRE);
}

/* ---- the driver's side (main thread) ------------------------------------------------ */

static struct {
	uint16_t heads[NQSIZE]; /* posted receive buffers, in order */
	unsigned first, n;
	unsigned got;
	long last; /* the last frame's k, -1 none */
	bool contiguous;
	unsigned tx_next, tx_in_flight;
} d;

static void driver_reset_view(void)
{
	d.first = d.n = 0;
	d.tx_in_flight = 0;
}

static void rx_fill(void)
{
	bool posted = false;

	while (d.n < RX_POSTED) {
		d.heads[(d.first + d.n++) % NQSIZE] = rx_post(RX_LEN);
		posted = true;
	}
	if (posted)
		nd_notify(&rxq);
}

/* Reaps what the device received: each frame whole, in its buffer, k growing. */
static void rx_reap(void)
{
	uint16_t head;
	uint32_t len;
	static uint8_t want[2048];

	while (nd_reap(&rxq, &head, &len)) {
		CHECK_GT(d.n, 0);
		CHECK_EQ(head, d.heads[d.first % NQSIZE], "receive buffers used out of order");
		d.first++;
		d.n--;
		CHECK_GE(len, NHDR + 18);
		long k = frame_seq(rx_buf(head) + NHDR, len - NHDR, "driver");
		CHECK_EQ(mkframe(want, (unsigned)k), len - NHDR);
		expect_rx(head, 1, want, len - NHDR);
		if (d.contiguous && d.last >= 0)
			CHECK_EQ(k, d.last + 1, "driver: frames lost or out of order");
		CHECK_GT(k, d.last, "driver: frames out of order");
		d.last = k;
		d.got++;
	}
}

static void tx_reap(void)
{
	uint16_t head;
	uint32_t len;

	while (nd_reap(&txq, &head, &len)) {
		CHECK_EQ(len, 0, "transmit chain %u", head);
		d.tx_in_flight--;
	}
}

static void tx_one(void)
{
	static uint8_t buf[2048];
	uint32_t len = mkframe(buf, d.tx_next);

	tx_send(NULL, buf, len, 1 + d.tx_next % 2);
	d.tx_next++;
	d.tx_in_flight++;
}

/* What a vCPU does in a turn: interrupts acknowledged, receive buffers reaped and posted,
 * a frame transmitted (below @tx_to), transmit chains reaped. */
static void turn(unsigned tx_to)
{
	uint32_t isr = nrd(VIRTIO_MMIO_INTERRUPT_STATUS);

	if (isr)
		nwr(VIRTIO_MMIO_INTERRUPT_ACK, isr);
	rx_reap();
	rx_fill();
	tx_reap();
	if (d.tx_next < tx_to && d.tx_in_flight < TX_IN_FLIGHT)
		tx_one();
	nd_sleep_ms(0);
	usleep(50);
}

/* Turns until the driver got frame @rx_k and the peer frame @tx_k (-1: not waited for). */
static void run_until(long rx_k, long tx_k, struct reader *r, unsigned tx_to)
{
	long end = now_ms() + 15000;

	while ((rx_k >= 0 && d.last < rx_k) || (tx_k >= 0 && reader_last(r) < tx_k)) {
		CHECK_LT(now_ms(), end,
		         "traffic stalled: driver at frame %ld of %ld, peer at %ld of %ld", d.last,
		         rx_k, reader_last(r), tx_k);
		turn(tx_to);
	}
}

static void up(bool contiguous)
{
	nd_setup();
	fake_ioeventfd_accept(true);
	nd_create_connected("net0", NULL);
	CHECK(fake_log_contains("served by the device's I/O thread"), "no I/O thread");
	nd_up(NO_MRG);
	memset(&d, 0, sizeof(d));
	d.last = -1;
	d.contiguous = contiguous;
}

static void start_peer(struct sender *s, struct bg *sb, struct reader *r, struct bg *rb,
                       unsigned from, unsigned to, bool contiguous, bool device_goes)
{
	*s = (struct sender){ .fd = peer, .from = from, .to = to, .device_goes = device_goes };
	*r = (struct reader){
		.fd = peer, .contiguous = contiguous, .eof_ok = device_goes, .last = -1
	};
	bg_start(sb, send_frames, s);
	bg_start(rb, read_frames, r);
}

static void stop_reader(struct reader *r, struct bg *rb)
{
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	bg_join(rb, "the peer's reader", 10000);
}

/* Used rings of both queues unchanged for @ms while the peer sends and frames are posted. */
static void queues_frozen(int ms, bool rx, bool tx, const char *why)
{
	uint8_t r0[4 + 8 * NQSIZE], t0[4 + 8 * NQSIZE];

	memcpy(r0, nram + rxq.used, sizeof(r0));
	memcpy(t0, nram + txq.used, sizeof(t0));
	for (long end = now_ms() + ms; now_ms() < end;)
		nd_sleep_ms(2);
	if (rx)
		CHECK(!memcmp(r0, nram + rxq.used, sizeof(r0)), "receive queue served %s", why);
	if (tx)
		CHECK(!memcmp(t0, nram + txq.used, sizeof(t0)), "transmit queue served %s", why);
}

#define FRAMES 200

void net_traffic_both_ways(void)
{
	struct sender s;
	struct reader r;
	struct bg sb = { 0 }, rb = { 0 };

	up(true);
	start_peer(&s, &sb, &r, &rb, 0, FRAMES, true, false);
	run_until(FRAMES - 1, FRAMES - 1, &r, FRAMES);
	bg_join(&sb, "the peer's sender", 10000);
	stop_reader(&r, &rb);
	CHECK_EQ(d.got, FRAMES, "frames the driver received");
	CHECK_EQ(r.got, FRAMES, "frames the peer received");
	CHECK_EQ(fake_irq_misuse(), 0);
	nd_teardown();
}

/* Status 0 in the middle: nothing is completed after it; once the driver is back, both
 * streams go on in step (frames may be lost at the reset, never cut or reordered). */
void net_reset_mid_traffic(void)
{
	struct sender s;
	struct reader r;
	struct bg sb = { 0 }, rb = { 0 };

	up(false);
	start_peer(&s, &sb, &r, &rb, 0, FRAMES, false, false);
	run_until(40, 40, &r, FRAMES);
	nwr(VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(nrd(VIRTIO_MMIO_STATUS), 0);
	queues_frozen(30, true, true, "after the reset");
	nd_up(NO_MRG);
	driver_reset_view();
	run_until(FRAMES - 1, FRAMES - 1, &r, FRAMES);
	bg_join(&sb, "the peer's sender", 10000);
	stop_reader(&r, &rb);
	CHECK_GT(d.got, 40);
	nd_teardown();
}

/* QueueReady 0 on the receive queue in the middle: it is not served any more, transmit is;
 * a reset brings it back. */
void net_queue_ready_0_mid_traffic(void)
{
	struct sender s;
	struct reader r;
	struct bg sb = { 0 }, rb = { 0 };

	up(false);
	start_peer(&s, &sb, &r, &rb, 0, FRAMES, false, false);
	run_until(30, 30, &r, FRAMES);
	nwr(VIRTIO_MMIO_QUEUE_SEL, 0);
	nwr(VIRTIO_MMIO_QUEUE_READY, 0);
	CHECK_EQ(nrd(VIRTIO_MMIO_QUEUE_READY), 0);
	queues_frozen(30, true, false, "after QueueReady 0");
	/* transmit goes on */
	long tx_k = (long)d.tx_next + 5;
	for (long end = now_ms() + 10000; reader_last(&r) < tx_k;) {
		CHECK_LT(now_ms(), end,
		         "transmit stalled after the receive queue went: peer at %ld",
		         reader_last(&r));
		tx_reap();
		if (d.tx_in_flight < TX_IN_FLIGHT && d.tx_next <= (unsigned)tx_k)
			tx_one();
		usleep(100);
	}
	CHECK_EQ(nrd(VIRTIO_MMIO_STATUS), 0xf);
	nd_up(NO_MRG);
	driver_reset_view();
	run_until(FRAMES - 1, FRAMES - 1, &r, FRAMES);
	bg_join(&sb, "the peer's sender", 10000);
	stop_reader(&r, &rb);
	nd_teardown();
}

static void do_pause(void *arg)
{
	(void)arg;
	fake_dev_pause(ndev);
}

static void do_destroy(void *arg)
{
	(void)arg;
	fake_dev_destroy(ndev);
}

/* Paused (from another thread) in the middle: nothing served; saved, the device replaced by
 * one on a new connection that loads the state; the queues go on where they were. */
void net_pause_save_restore(void)
{
	struct sender s;
	struct reader r;
	struct bg sb = { 0 }, rb = { 0 }, pb = { 0 };
	uint8_t *state = NULL;
	size_t len = 0;
	uint32_t version = 0;

	up(false);
	start_peer(&s, &sb, &r, &rb, 0, 40, false, false);
	run_until(20, 20, &r, 60);
	bg_start(&pb, do_pause, NULL);
	bg_join(&pb, "pause", 5000);
	for (unsigned i = 0; i < 4 && d.tx_in_flight < TX_IN_FLIGHT; i++)
		tx_one(); /* notified while paused */
	queues_frozen(40, true, true, "while paused");
	bg_join(&sb, "the peer's sender", 10000);
	CHECK_EQ(fake_dev_save(ndev, &state, &len, &version), 0, "save");
	CHECK_EQ(version, 1);
	stop_reader(&r, &rb);
	fake_dev_destroy(ndev);
	nd_create_connected("net0", NULL);
	fake_dev_pause(ndev);
	CHECK_EQ(fake_dev_load(ndev, state, len, version), 0, "load");
	fake_dev_resume(ndev);
	free(state);
	CHECK_EQ(nrd(VIRTIO_MMIO_STATUS), 0xf, "Status survives");
	/* the new peer: frames from 1000 on into the buffers posted before the snapshot; what
	 * was posted for transmit before it reaches the new peer */
	long rx_before = d.last;
	start_peer(&s, &sb, &r, &rb, 1000, 1100, false, false);
	run_until(1099, (long)d.tx_next + 10, &r, d.tx_next + 11);
	bg_join(&sb, "the peer's sender", 10000);
	stop_reader(&r, &rb);
	CHECK_GT(d.last, rx_before);
	nd_teardown();
}

/* Destroy (another thread) in the middle of both streams: it returns, the peer sees the
 * connection end after whole frames only. */
void net_destroy_mid_traffic(void)
{
	struct sender s;
	struct reader r;
	struct bg sb = { 0 }, rb = { 0 }, db = { 0 };

	up(false);
	start_peer(&s, &sb, &r, &rb, 0, 100000, false, true);
	run_until(30, 30, &r, 100000);
	for (unsigned i = 0; i < 8 && d.tx_in_flight < TX_IN_FLIGHT; i++)
		tx_one();
	bg_start(&db, do_destroy, NULL);
	bg_join(&db, "destroy", 5000);
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	bg_join(&sb, "the peer's sender", 10000);
	for (long end = now_ms() + 5000; !bg_done(&rb);) {
		CHECK_LT(now_ms(), end, "the peer never saw the connection end");
		nd_sleep_ms(2);
	}
	bg_join(&rb, "the peer's reader", 1000);
	CHECK(r.eof, "the peer's reader ended without EOF");
	nd_teardown();
}
