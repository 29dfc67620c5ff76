/*
 * virtio-net's reset and snapshots, through the fake host with the test-virtio-net.c driver
 * and peer (net-driver.h): a reset drops what waits but keeps a stream's framing (the start
 * of a frame received in part, the rest of a frame sent in part); a frame sent completes before
 * the other queue can set NEEDS_RESET, and none is sent while it is set; a state saved, loaded into
 * a new device made from the same configuration (its socket reached again), the queues going on
 * (with and without the I/O thread), a link change told; states refused (another MAC or MTU, link
 * bits, truncated, longer, newer, version 0).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net-driver.h"
#include "net.h"

TestSuite(netreset, .init = nd_setup, .fini = nd_teardown, .timeout = 60);
TestSuite(netsnap, .init = nd_setup, .fini = nd_teardown, .timeout = 60);

#define BP_LEN 9000

static uint8_t fa[NMAX_FRAME], fb[NMAX_FRAME];

/* ---- reset ---------------------------------------------------------------------------- */

Test(netreset, reset_drops_what_waits)
{
	uint16_t h;

	nd_create_connected("net0", NULL);
	nd_up(NO_MRG);
	make_frame(fa, 200, 1);
	peer_send(fa, 200);
	nd_pump_for(20);
	cr_assert_geq(net_state()->stats.rx_waits, 1, "the frame did not wait");
	nwr(VIRTIO_MMIO_STATUS, 0);
	cr_assert_eq(nrd(VIRTIO_MMIO_STATUS), 0);
	nd_up(NO_MRG);
	h = rx_post(1526);
	nd_notify(&rxq);
	nd_pump_for(30);
	cr_assert_eq(nd_used_idx(&rxq), 0, "the frame from before the reset was given");
	make_frame(fb, 300, 2);
	peer_send(fb, 300);
	cr_assert(nd_wait_used(&rxq, 1, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h, NHDR + 300);
	expect_rx(h, 1, fb, 300);
	/* and transmit works again */
	tx_send(NULL, fb, 300, 1);
	recv_expect(fb, 300);
}

/* A reset while the device holds a frame and the start of the next one from the stream: the
 * rest of that one comes after the reset, and must be read as the rest of it. */
Test(netreset, reset_keeps_the_receive_stream_in_step)
{
	uint32_t be = htonl(1000);
	uint16_t h;

	nd_create_connected("net0", NULL);
	nd_up(NO_MRG);
	make_frame(fa, 200, 1);
	make_frame(fb, 1000, 2);
	peer_send(fa, 200);
	peer_send_raw(&be, 4);
	peer_send_raw(fb, 100);
	nd_pump_for(20);
	cr_assert_geq(net_state()->stats.rx_waits, 1, "the frame did not wait");
	nwr(VIRTIO_MMIO_STATUS, 0);
	nd_up(NO_MRG);
	h = rx_post(1526);
	nd_notify(&rxq);
	peer_send_raw(fb + 100, 900);
	cr_assert(nd_wait_used(&rxq, 1, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h, NHDR + 1000);
	expect_rx(h, 1, fb, 1000);
	cr_assert(link_up());
}

/* A reset while part of a frame is sent: the peer gets the rest of it, then what comes. */
Test(netreset, reset_keeps_the_transmit_stream_in_step)
{
	nd_create_connected("net0", "mtu", "9000", NULL);
	nd_up(0);
	shrink_sndbuf();
	for (unsigned i = 0; i < 4; i++) {
		make_frame(fa, BP_LEN, i);
		tx_send(NULL, fa, BP_LEN, 1);
	}
	settle(&txq);
	cr_assert_gt(net_state()->stats.tx_stalls, 0);
	cr_assert_gt(net_state()->tx_pending_off, 0, "no frame was cut short (the test needs one)");
	unsigned sent = (unsigned)net_state()->stats.tx_frames; /* the last one only in part */
	nwr(VIRTIO_MMIO_STATUS, 0);
	nd_up(0);
	make_frame(fb, 1000, 99);
	tx_send(NULL, fb, 1000, 1);
	for (unsigned i = 0; i < sent; i++) {
		make_frame(fa, BP_LEN, i);
		recv_expect(fa, BP_LEN);
	}
	recv_expect(fb, 1000);
	cr_assert(peer_quiet(20));
	cr_assert(link_up());
}

/*
 * A frame sent has its transmit chain completed before the receive queue can set NEEDS_RESET
 * (the frame's echo breaks the receive ring: guest/net-hostile's rx-avail-far-ahead); once
 * the device needs a reset it sends nothing and completes nothing, and a chain made available
 * then is not sent after the reset either. net-hostile counts the frames sent by their
 * completions, and its peer checks the count against what arrived.
 */
static void needs_reset_after_a_sent_frame(bool threaded)
{
	uint32_t st = 0;
	uint16_t h;

	fake_ioeventfd_accept(threaded);
	nd_create_connected("net0", NULL);
	nd_up(NO_MRG);
	/* the receive ring's avail index more than the queue size ahead, notified: the device
	 * looks at it when a frame comes for a buffer */
	__atomic_store_n((uint16_t *)(nram + rxq.avail + 2), htole16(NQSIZE + 7), __ATOMIC_RELEASE);
	nd_notify(&rxq);
	nd_pump_for(20);
	cr_assert_eq(
	        nrd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0,
	        "NEEDS_RESET before a frame came (the test needs the frame to break the ring)");
	make_frame(fa, 100, 1);
	h = tx_send(NULL, fa, 100, 1);
	recv_expect(fa, 100);
	peer_send(fa, 100); /* the echo */
	for (int ms = 0; ms < NTIMEOUT_MS && !(st & VIRTIO_STATUS_NEEDS_RESET); ms++) {
		st = nrd(VIRTIO_MMIO_STATUS);
		if (!(st & VIRTIO_STATUS_NEEDS_RESET))
			nd_pump_for(1);
	}
	cr_assert(st & VIRTIO_STATUS_NEEDS_RESET, "the echo did not break the receive ring: %s",
	          fake_log());
	/* the used ring read after the status, as a driver does: the completion came first */
	cr_assert_eq(nd_used_idx(&txq), 1, "NEEDS_RESET before the sent frame's completion");
	expect_used(&txq, h, 0);
	make_frame(fb, 100, 2);
	tx_send(NULL, fb, 100, 1);
	cr_assert(peer_quiet(100), "a frame sent while the device needs a reset");
	cr_assert_eq(settle(&txq), 1, "a chain completed while the device needs a reset");
	nd_up(NO_MRG);
	cr_assert(peer_quiet(100), "a chain made available before the reset was sent after it");
	make_frame(fa, 100, 3);
	h = tx_send(NULL, fa, 100, 1);
	recv_expect(fa, 100);
	tx_done(h);
}

Test(netreset, needs_reset_after_a_sent_frame)
{
	needs_reset_after_a_sent_frame(false);
}

Test(netreset, needs_reset_after_a_sent_frame_threaded)
{
	needs_reset_after_a_sent_frame(true);
}

/* ---- snapshots ------------------------------------------------------------------------ */

#define NET_STATE_LEN (6 + 2 + 2 + 52 + 2 * 40)

static uint8_t *snap;
static size_t snap_len;

static void save(void)
{
	uint32_t version = 0;

	free(snap);
	snap = NULL;
	fake_dev_pause(ndev);
	cr_assert_eq(fake_dev_save(ndev, &snap, &snap_len, &version), 0, "%s", fake_log());
	cr_assert_eq(version, 1);
	cr_assert_eq(snap_len, NET_STATE_LEN);
}

/* The device goes (its peer with it); a new one is made from @mac's configuration. */
static void recreate(const char *mac)
{
	fake_dev_destroy(ndev);
	if (mac)
		nd_create_connected("net0", "mac", mac, NULL);
	else
		nd_create_connected("net0", NULL);
	cr_assert_eq(nrd(VIRTIO_MMIO_STATUS), 0);
}

static int load(const uint8_t *buf, size_t len, uint32_t version)
{
	fake_dev_pause(ndev);
	int r = fake_dev_load(ndev, buf, len, version);
	fake_dev_resume(ndev);
	return r;
}

static void snapshot_continues(bool threaded)
{
	uint16_t h[3], t;

	fake_ioeventfd_accept(threaded);
	nd_create_connected("net0", NULL);
	nd_up(NO_MRG);
	for (unsigned i = 0; i < 3; i++)
		h[i] = rx_post(1526);
	nd_notify(&rxq);
	make_frame(fa, 100, 1);
	peer_send(fa, 100);
	cr_assert(nd_wait_used(&rxq, 1, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h[0], NHDR + 100);
	t = tx_send(NULL, fa, 100, 1);
	recv_expect(fa, 100);
	tx_done(t);
	save();
	recreate(NULL);
	cr_assert_eq(load(snap, snap_len, 1), 0, "%s", fake_log());
	cr_assert_eq(nrd(VIRTIO_MMIO_STATUS), 0xf);
	cr_assert(link_up());
	/* the buffers posted before the snapshot take the next frames */
	make_frame(fb, 400, 2);
	peer_send(fb, 400);
	cr_assert(nd_wait_used(&rxq, 2, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h[1], NHDR + 400);
	expect_rx(h[1], 1, fb, 400);
	t = tx_send(NULL, fb, 400, 3);
	recv_expect(fb, 400);
	tx_done(t);
}

Test(netsnap, snapshot_queues_continue)
{
	snapshot_continues(false);
}

Test(netsnap, snapshot_queues_continue_threaded)
{
	snapshot_continues(true);
}

Test(netsnap, snapshot_link_change_is_told)
{
	uint32_t gen;

	nd_create_connected("net0", NULL);
	nd_up(0);
	close(peer);
	peer = -1;
	rx_post(1526);
	wait_link(false);
	nwr(VIRTIO_MMIO_INTERRUPT_ACK, nrd(VIRTIO_MMIO_INTERRUPT_STATUS));
	gen = nrd(VIRTIO_MMIO_CONFIG_GENERATION);
	save();
	recreate(NULL);
	cr_assert_eq(load(snap, snap_len, 1), 0, "%s", fake_log());
	cr_assert(link_up());
	cr_assert_eq(nrd(VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	cr_assert(nrd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
}

Test(netsnap, snapshot_states_refused)
{
	uint8_t bad[NET_STATE_LEN + 1];

	nd_create_connected("net0", "mac", "52:54:00:00:00:01", NULL);
	nd_up(0);
	save();
	recreate("52:54:00:00:00:02");
	cr_assert_eq(load(snap, snap_len, 1), -EINVAL);
	cr_assert(fake_log_contains("MAC address is 52:54:00:00:00:01"), "%s", fake_log());
	recreate("52:54:00:00:00:01");
	for (size_t n = 0; n < snap_len; n++)
		cr_assert_eq(load(snap, n, 1), -EBADMSG, "%zu of %zu bytes", n, snap_len);
	memcpy(bad, snap, snap_len);
	bad[snap_len] = 0;
	cr_assert_eq(load(bad, snap_len + 1, 1), -EINVAL);
	cr_assert_eq(load(snap, snap_len, 2), -ENOTSUP);
	cr_assert(fake_log_contains("newer"), "%s", fake_log());
	cr_assert_eq(load(snap, snap_len, 0), -EINVAL);
	memcpy(bad, snap, snap_len);
	bad[6] ^= 1; /* MTU */
	cr_assert_eq(load(bad, snap_len, 1), -EINVAL);
	memcpy(bad, snap, snap_len);
	bad[8] |= 2; /* link status: an unknown bit */
	cr_assert_eq(load(bad, snap_len, 1), -EINVAL);
	/* nothing changed by all that: the good state still loads */
	cr_assert_eq(nrd(VIRTIO_MMIO_STATUS), 0);
	cr_assert_eq(load(snap, snap_len, 1), 0, "%s", fake_log());
	cr_assert_eq(nrd(VIRTIO_MMIO_STATUS), 0xf);
	free(snap);
	snap = NULL;
}
