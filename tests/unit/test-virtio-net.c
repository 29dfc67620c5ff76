/*
 * Unit tests of virtio-net.so, driven through the fake host (no core, no KVM) by a small
 * virtio-mmio driver (net-driver.c) with the device's socket backend connected to the test,
 * which plays the peer: frames both ways checked byte for byte with their length prefixes,
 * used lengths, interrupts and the config space; backpressure, hostile buffers and peers
 * (reset and snapshots: test-virtio-net-snap.c, in the same program). Without ioeventfds (the
 * default) the queues are served in the MMIO write and on the fake event loop (fake_fd_pump()); the
 * `threaded` tests give the fake host the ioeventfds, and the device serves its queues on its I/O
 * thread.
 *
 * The device's own counters (struct net, devices/virtio-net/net.h) are read where the guest
 * sees nothing (a frame dropped before it used a buffer): only without the I/O thread, or
 * with it paused.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net-driver.h"
#include "net.h"

TestSuite(net, .init = nd_setup, .fini = nd_teardown, .timeout = 60);

static uint8_t fa[NMAX_FRAME], fb[NMAX_FRAME];

/* ---- configuration and config space --------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static void read_mac(uint8_t *m)
{
	for (unsigned i = 0; i < 6; i++)
		m[i] = ncfg8(VIRTIO_NET_CFG_MAC + i);
}

Test(net, default_mac_derived_from_the_names)
{
	uint64_t h = fnv1a(fnv1a(fnv1a(0xcbf29ce484222325ull, "fake-machine"), "/"), "net0");
	uint8_t want[6], a[6], b[6], c[6];

	for (unsigned i = 0; i < 6; i++)
		want[i] = (uint8_t)(h >> (8 * i));
	want[0] = (uint8_t)((want[0] & 0xfc) | 0x02); /* locally administered, unicast */
	nd_create_connected("net0", NULL);
	read_mac(a);
	cr_assert(!memcmp(a, want, 6), "MAC %02x:%02x:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3],
	          a[4], a[5]);
	fake_dev_destroy(ndev);
	nd_create_connected("net0", NULL);
	read_mac(b);
	cr_assert(!memcmp(a, b, 6), "another MAC for the same names");
	fake_dev_destroy(ndev);
	nd_create_connected("net1", NULL);
	read_mac(c);
	cr_assert(memcmp(a, c, 6), "the same MAC for another device");
	cr_assert_eq(c[0] & 3, 2);
}

Test(net, explicit_mac_shown_as_given)
{
	static const uint8_t want[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	uint8_t m[6];

	nd_create_connected("net0", "mac", "52:54:00:ab:cd:ef", NULL);
	read_mac(m);
	cr_assert(!memcmp(m, want, 6));
	cr_assert_null(fake_cfg_unread(ndev));
}

Test(net, bad_keys_are_config_errors)
{
	static const char *const bad[][2] = {
		{ "mac", "01:00:5e:00:00:01" },
		{ "mac", "52:54:00:12:34" },
		{ "mac", "52:54:00:12:34:567" },
		{ "mtu", "67" },
		{ "mtu", "65536" },
		{ "tap", "tap0" },
		{ "passt", "/bin/true" },
		{ "base", "0xd0000100" },
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned errors = fake_cfg_errors();

		cr_assert_eq(nd_create("net0", "backend", "socket", "socket", "peer.sock",
		                       bad[i][0], bad[i][1], NULL),
		             -EINVAL, "%s = %s accepted", bad[i][0], bad[i][1]);
		cr_assert(fake_cfg_errors() > errors && fake_cfg_error_about(bad[i][0]),
		          "no error about %s", bad[i][0]);
	}
	cr_assert_eq(nd_create("net0", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("backend"));
	cr_assert_eq(nd_create("net0", "backend", "socket", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("socket"));
	cr_assert_eq(nd_create("net0", "backend", "socket", "socket", "nobody.sock", NULL),
	             -EINVAL);
	cr_assert(strstr(fake_log(), "nobody.sock"), "%s", fake_log());
}

Test(net, features_mtu_and_status)
{
	uint64_t want = F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX) | F(VIRTIO_F_INDIRECT_DESC) |
	                F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MTU) |
	                F(VIRTIO_NET_F_MRG_RXBUF);

	nd_create_connected("net0", NULL);
	/* a stream carries no virtio_net_hdr: no checksum or segmentation offloads */
	cr_assert_eq(nd_device_features(), want, "offered 0x%llx",
	             (unsigned long long)nd_device_features());
	cr_assert_eq(ncfg16(VIRTIO_NET_CFG_MTU), 1500);
	cr_assert_eq(ncfg16(VIRTIO_NET_CFG_MAX_PAIRS), 1);
	cr_assert(link_up());
	cr_assert_eq(nrd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	fake_dev_destroy(ndev);
	nd_create_connected("net0", "mtu", "9000", NULL);
	cr_assert_eq(ncfg16(VIRTIO_NET_CFG_MTU), 9000);
}

Test(net, link_goes_down_when_the_peer_leaves)
{
	uint32_t gen, rises;

	nd_create_connected("net0", NULL);
	nd_up(0);
	cr_assert(link_up());
	rx_post(1526);
	gen = nrd(VIRTIO_MMIO_CONFIG_GENERATION);
	rises = fake_irq_rises(NIRQ);
	close(peer);
	peer = -1;
	wait_link(false);
	cr_assert_eq(nrd(VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	cr_assert(nrd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	cr_assert_gt(fake_irq_rises(NIRQ), rises, "no configuration interrupt");
	cr_assert(fake_log_contains("link down: the peer closed the connection"), "%s", fake_log());
	/* a frame sent meanwhile completes, unsent (nothing to crash on) */
	make_frame(fa, 60, 1);
	uint16_t h = tx_send(NULL, fa, 60, 1);
	tx_done(h);
	cr_assert_eq(net_state()->stats.tx_dropped, 1);
	cr_assert_eq(nrd(VIRTIO_MMIO_STATUS), 0xf);
}

Test(net, listen_for_one_peer_at_a_time)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int second;
	uint32_t gen;
	char c;

	cr_assert_eq(
	        nd_create("net0", "backend", "socket", "socket", "dev.sock", "listen", "on", NULL),
	        0, "%s", fake_log());
	nd_up(NO_MRG);
	cr_assert_not(link_up());
	gen = nrd(VIRTIO_MMIO_CONFIG_GENERATION);
	cr_assert_lt(strlen(nd_path("dev.sock")), sizeof(sa.sun_path));
	memcpy(sa.sun_path, nd_path("dev.sock"), strlen(nd_path("dev.sock")) + 1);
	for (int round = 0; round < 2; round++) {
		peer = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(peer, (struct sockaddr *)&sa, sizeof(sa)), 0);
		wait_link(true);
		cr_assert_eq(nrd(VIRTIO_MMIO_CONFIG_GENERATION), gen + 1 + 2 * round);
		/* a second peer is turned away while the first is there */
		second = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(second, (struct sockaddr *)&sa, sizeof(sa)), 0);
		nd_pump_for(20);
		cr_assert_eq(recv(second, &c, 1, MSG_DONTWAIT), 0,
		             "the second peer was not closed");
		close(second);
		/* frames flow */
		uint16_t h = rx_post(1526);
		make_frame(fa, 100, (unsigned)round);
		peer_send(fa, 100);
		cr_assert(nd_wait_used(&rxq, rxq.used_seen + 1, NTIMEOUT_MS), "%s", fake_log());
		expect_used(&rxq, h, NHDR + 100);
		expect_rx(h, 1, fa, 100);
		/* the peer leaves; the next one brings the link back */
		close(peer);
		peer = -1;
		wait_link(false);
	}
}

/* ---- transmit ------------------------------------------------------------------------- */

Test(net, tx_frames_reach_the_peer_with_their_length)
{
	static const uint32_t lens[] = { 60, 14, 1514, 1518 };

	nd_create_connected("net0", NULL);
	nd_up(0);
	for (unsigned i = 0; i < 4; i++) {
		unsigned rises = fake_irq_rises(NIRQ);

		make_frame(fa, lens[i], i);
		uint16_t h = tx_send(NULL, fa, lens[i], 1);
		recv_expect(fa, lens[i]);
		tx_done(h);
		cr_assert_gt(fake_irq_rises(NIRQ), rises, "no interrupt for frame %u", i);
	}
	cr_assert(peer_quiet(20));
}

Test(net, tx_frames_in_segments)
{
	nd_create_connected("net0", NULL);
	nd_up(0);
	for (unsigned nseg = 1; nseg <= 8; nseg++) {
		uint32_t len = nseg & 1 ? 1514 : 60; /* with 60, the header spans two segments */

		make_frame(fa, len, nseg);
		uint16_t h = tx_send(NULL, fa, len, nseg);
		recv_expect(fa, len);
		tx_done(h);
	}
	/* the header alone in its descriptor, the frame in three */
	make_frame(fa, 1000, 9);
	memset(nram + TXBUF(40), 0, NHDR);
	memcpy(nram + TXBUF(41), fa, 100);
	memcpy(nram + TXBUF(42), fa + 100, 800);
	memcpy(nram + TXBUF(43), fa + 900, 100);
	struct nd_seg s[4] = { { TXBUF(40), NHDR, false },
		               { TXBUF(41), 100, false },
		               { TXBUF(42), 800, false },
		               { TXBUF(43), 100, false } };
	uint16_t h = nd_add(&txq, s, 4);
	nd_publish(&txq);
	nd_notify(&txq);
	recv_expect(fa, 1000);
	tx_done(h);
}

Test(net, tx_runts_offloads_and_oversized_frames_dropped)
{
	uint8_t csum[NHDR] = { VIRTIO_NET_HDR_F_NEEDS_CSUM }, gso[NHDR] = { 0, 1 /* TCPV4 */ };
	uint16_t h[7];

	nd_create_connected("net0", NULL);
	nd_up(0);
	make_frame(fa, 1519, 1);
	h[0] = tx_send(NULL, fa, 0, 1); /* the header only */
	h[1] = tx_send(NULL, fa, 13, 1); /* shorter than an Ethernet header */
	h[2] = tx_send(csum, fa, 60, 1); /* checksum offload, never offered */
	h[3] = tx_send(gso, fa, 1514, 1); /* segmentation offload, never offered */
	h[4] = tx_send(NULL, fa, 1519, 1); /* longer than MTU + Ethernet header + VLAN tag */
	make_frame(fb, 1518, 2);
	h[5] = tx_send(NULL, fb, 1518, 1); /* the largest frame */
	h[6] = tx_send(NULL, fb, 14, 2); /* the shortest one */
	recv_expect(fb, 1518);
	recv_expect(fb, 14);
	cr_assert(peer_quiet(20), "a dropped frame reached the peer");
	for (unsigned i = 0; i < 7; i++)
		tx_done(h[i]);
	cr_assert_eq(net_state()->stats.tx_dropped, 5);
	cr_assert_eq(net_state()->stats.tx_frames, 2);
	cr_assert(link_up());
}

/* Process CPU time in ms (every thread). */
static long cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

#define BP_FRAMES 40
#define BP_LEN 9000

static void backpressure(bool threaded)
{
	uint16_t stalled, heads[BP_FRAMES];
	uint64_t gpa;
	long cpu;

	fake_ioeventfd_accept(threaded);
	nd_create_connected("net0", "mtu", "9000", NULL);
	nd_up(0);
	shrink_sndbuf();
	/* the peer reads nothing: the device's socket fills */
	for (unsigned i = 0; i < BP_FRAMES; i++) {
		make_frame(fa, BP_LEN, i);
		heads[i] = tx_send(NULL, fa, BP_LEN, 1 + i % 2);
	}
	stalled = settle(&txq);
	cr_assert_lt(stalled, BP_FRAMES, "every frame taken, none waited");
	cr_assert_gt(stalled, 0);
	/* waiting for room, not spinning: no chain taken, the guest's RAM not even read, the
	 * event loop not woken, the CPU idle */
	gpa = fake_gpa_calls();
	cpu = cpu_ms();
	if (threaded)
		nd_sleep_ms(200);
	else
		cr_assert_eq(nd_pump_for(200), 0, "the event loop woke for a full socket");
	cr_assert_lt(cpu_ms() - cpu, threaded ? 40 : 400, "the device spins");
	cr_assert_eq(fake_gpa_calls(), gpa, "the device touched guest RAM while stalled");
	nd_notify(&txq); /* a notification changes nothing while the socket is full */
	nd_pump_for(20);
	cr_assert_eq(nd_used_idx(&txq), stalled, "chains taken while the socket is full");
	/* the peer reads: every frame, whole and in order */
	for (unsigned i = 0; i < BP_FRAMES; i++) {
		make_frame(fa, BP_LEN, i);
		recv_expect(fa, BP_LEN);
	}
	cr_assert(nd_wait_used(&txq, BP_FRAMES, NTIMEOUT_MS));
	for (unsigned i = 0; i < BP_FRAMES; i++)
		tx_done(heads[i]);
	cr_assert(peer_quiet(20));
	fake_dev_pause(ndev);
	cr_assert_geq(net_state()->stats.tx_stalls, 1);
	cr_assert_eq(net_state()->stats.tx_frames, BP_FRAMES);
	fake_dev_resume(ndev);
}

Test(net, tx_backpressure)
{
	backpressure(false);
}

Test(net, tx_backpressure_threaded)
{
	backpressure(true);
}

/* ---- receive -------------------------------------------------------------------------- */

Test(net, rx_frame_in_one_buffer)
{
	uint16_t h0, h1;
	unsigned rises;

	nd_create_connected("net0", NULL);
	nd_up(NO_MRG);
	h0 = rx_post(1526);
	h1 = rx_post(1526);
	nd_notify(&rxq);
	rises = fake_irq_rises(NIRQ);
	make_frame(fa, 60, 1);
	peer_send(fa, 60);
	cr_assert(nd_wait_used(&rxq, 1, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h0, NHDR + 60);
	expect_rx(h0, 1, fa, 60);
	cr_assert_gt(fake_irq_rises(NIRQ), rises);
	cr_assert(nrd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_USED);
	make_frame(fb, 1514, 2);
	peer_send(fb, 1514);
	cr_assert(nd_wait_used(&rxq, 2, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h1, NHDR + 1514);
	expect_rx(h1, 1, fb, 1514);
}

/* 5.1.4.1: with VIRTIO_NET_F_MTU taken, nothing above MTU + Ethernet header + VLAN tag reaches
 * the driver; without it, the frame does. */
static void rx_above_mtu(bool take_mtu)
{
	uint16_t h0;

	nd_create_connected("net0", "mtu", "1400", NULL);
	nd_up(take_mtu ? 0 : 1ull << VIRTIO_NET_F_MTU);
	h0 = rx_post(4096);
	rx_post(4096);
	nd_notify(&rxq);
	make_frame(fa, 1419, 1); /* 1400 + 14 + 4 + 1 */
	peer_send(fa, 1419);
	make_frame(fb, 1418, 2);
	peer_send(fb, 1418);
	cr_assert(nd_wait_used(&rxq, take_mtu ? 1 : 2, NTIMEOUT_MS), "%s", fake_log());
	if (take_mtu) {
		expect_used(&rxq, h0, NHDR + 1418);
		expect_rx(h0, 1, fb, 1418);
		nd_pump_for(20);
		cr_assert_eq(nd_used_idx(&rxq), 1, "the frame above the MTU reached the driver");
	} else {
		expect_used(&rxq, h0, NHDR + 1419);
		expect_rx(h0, 1, fa, 1419);
	}
}

Test(net, rx_above_mtu_dropped)
{
	rx_above_mtu(true);
}

Test(net, rx_above_mtu_without_the_feature)
{
	rx_above_mtu(false);
}

Test(net, rx_mergeable_buffers)
{
	uint16_t h[3];
	uint8_t whole[NHDR + 3000];

	nd_create_connected("net0", "mtu", "65535", NULL); /* frames above 1500 */
	nd_up(0);
	for (unsigned i = 0; i < 3; i++)
		h[i] = rx_post(1500);
	make_frame(fa, 3000, 3);
	peer_send(fa, 3000);
	cr_assert(nd_wait_used(&rxq, 3, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h[0], 1500);
	expect_used(&rxq, h[1], 1500);
	expect_used(&rxq, h[2], 12);
	memcpy(whole, rx_buf(h[0]), 1500);
	memcpy(whole + 1500, rx_buf(h[1]), 1500);
	memcpy(whole + 3000, rx_buf(h[2]), 12);
	cr_assert_eq(whole[10] | whole[11] << 8, 3, "num_buffers");
	cr_assert(!memcmp(whole + NHDR, fa, 3000));
	cr_assert_eq(rx_buf(h[2])[12], 0xa5, "past the used length written");
	cr_assert_eq(rx_buf(h[0])[1500], 0xa5, "past the buffer written");
}

Test(net, rx_frames_wait_for_buffers)
{
	uint16_t h;

	nd_create_connected("net0", NULL);
	nd_up(NO_MRG);
	make_frame(fa, 200, 1);
	make_frame(fb, 300, 2);
	peer_send(fa, 200);
	peer_send(fb, 300);
	nd_pump_for(50);
	cr_assert_eq(nd_used_idx(&rxq), 0);
	cr_assert_geq(net_state()->stats.rx_waits, 1);
	cr_assert_eq(net_state()->stats.rx_dropped, 0);
	for (unsigned i = 0; i < 2; i++) {
		h = rx_post(1526);
		nd_notify(&rxq);
		cr_assert(nd_wait_used(&rxq, (uint16_t)(i + 1), NTIMEOUT_MS), "%s", fake_log());
		expect_used(&rxq, h, NHDR + (i ? 300 : 200));
		expect_rx(h, 1, i ? fb : fa, i ? 300 : 200);
	}
	cr_assert_eq(nd_pump_for(30), 0, "the event loop keeps waking");
}

Test(net, rx_mergeable_frame_waits_for_enough_buffers)
{
	uint16_t h0, h1, h2;
	uint16_t avail_event;

	nd_create_connected("net0", "mtu", "65535", NULL); /* frames above 1500 */
	nd_up(0);
	h0 = rx_post(1500);
	nd_notify(&rxq);
	make_frame(fa, 3000, 4);
	peer_send(fa, 3000);
	nd_pump_for(50);
	cr_assert_eq(nd_used_idx(&rxq), 0, "part of a frame given");
	/* EVENT_IDX: the device asks to be told of the next buffer */
	memcpy(&avail_event, nram + rxq.used + 4 + 8 * NQSIZE, 2);
	cr_assert_eq(le16toh(avail_event), rxq.avail_idx);
	h1 = rx_post(1500);
	nd_notify(&rxq);
	nd_pump_for(20);
	cr_assert_eq(nd_used_idx(&rxq), 0, "part of a frame given");
	h2 = rx_post(1500);
	nd_notify(&rxq);
	cr_assert(nd_wait_used(&rxq, 3, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h0, 1500);
	expect_used(&rxq, h1, 1500);
	expect_used(&rxq, h2, 12);
	cr_assert_eq(rx_buf(h0)[10], 3, "num_buffers");
	cr_assert(!memcmp(rx_buf(h0) + NHDR, fa, 1500 - NHDR));
	cr_assert(!memcmp(rx_buf(h1), fa + 1500 - NHDR, 1500));
	cr_assert(!memcmp(rx_buf(h2), fa + 3000 - NHDR, NHDR));
}

Test(net, rx_short_buffers_drop_the_frame)
{
	uint16_t tiny, ok;

	/* with MRG_RXBUF: a buffer shorter than the header */
	nd_create_connected("net0", NULL);
	nd_up(0);
	tiny = rx_post(NHDR - 1);
	ok = rx_post(1526);
	make_frame(fa, 60, 1);
	make_frame(fb, 70, 2);
	peer_send(fa, 60);
	peer_send(fb, 70);
	cr_assert(nd_wait_used(&rxq, 2, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, tiny, 0);
	untouched(tiny, NHDR - 1);
	expect_used(&rxq, ok, NHDR + 70);
	expect_rx(ok, 1, fb, 70);
	cr_assert_eq(net_state()->stats.rx_dropped, 1);
	cr_assert(link_up());
}

Test(net, rx_buffer_too_short_without_mergeable)
{
	uint16_t small, ok;

	nd_create_connected("net0", NULL);
	nd_up(NO_MRG);
	small = rx_post(NHDR + 199);
	ok = rx_post(1526);
	make_frame(fa, 200, 1);
	make_frame(fb, 199, 2);
	peer_send(fa, 200);
	peer_send(fb, 199);
	cr_assert(nd_wait_used(&rxq, 2, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, small, 0);
	untouched(small, NHDR + 199);
	expect_used(&rxq, ok, NHDR + 199);
	expect_rx(ok, 1, fb, 199);
	cr_assert_eq(net_state()->stats.rx_dropped, 1);
}

Test(net, rx_largest_and_smallest_frames)
{
	uint16_t h0, h1, h2;

	nd_create_connected("net0", "mtu", "65535", NULL); /* frames above 1500 */
	nd_up(0);
	h0 = rx_post(65536);
	h1 = rx_post(65536);
	h2 = rx_post(1526);
	make_frame(fa, NMAX_FRAME, 5);
	make_frame(fb, 14, 6);
	peer_send(fa, NMAX_FRAME);
	peer_send(fb, 14);
	cr_assert(nd_wait_used(&rxq, 3, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h0, 65536);
	expect_used(&rxq, h1, NHDR + NMAX_FRAME - 65536);
	cr_assert_eq(rx_buf(h0)[10], 2, "num_buffers");
	cr_assert(!memcmp(rx_buf(h0) + NHDR, fa, 65536 - NHDR));
	cr_assert(!memcmp(rx_buf(h1), fa + 65536 - NHDR, NMAX_FRAME + NHDR - 65536));
	expect_used(&rxq, h2, NHDR + 14);
	expect_rx(h2, 1, fb, 14);
}

static void bad_prefix(uint32_t len)
{
	uint32_t be = htonl(len), gen;
	char c;

	nd_create_connected("net0", NULL);
	nd_up(0);
	rx_post(1526);
	gen = nrd(VIRTIO_MMIO_CONFIG_GENERATION);
	peer_send_raw(&be, 4);
	peer_send_raw(fa, 100);
	wait_link(false);
	cr_assert_eq(nrd(VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	cr_assert(nrd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	cr_assert(fake_log_contains("the peer sent a frame of"), "%s", fake_log());
	cr_assert_eq(nd_used_idx(&rxq), 0, "something was delivered");
	cr_assert_eq(recv(peer, &c, 1, MSG_DONTWAIT), 0, "the device kept the connection");
	/* the device lives on: registers, transmit (dropped), a reset */
	cr_assert_eq(nrd(VIRTIO_MMIO_STATUS), 0xf);
	make_frame(fa, 60, 1);
	uint16_t h = tx_send(NULL, fa, 60, 1);
	tx_done(h);
	nd_up(0);
	cr_assert_not(link_up());
}

Test(net, rx_zero_length_prefix_takes_the_link_down)
{
	bad_prefix(0);
}

Test(net, rx_runt_prefix_takes_the_link_down)
{
	bad_prefix(13);
}

Test(net, rx_huge_prefix_takes_the_link_down)
{
	bad_prefix(NMAX_FRAME + 1);
}

Test(net, rx_threaded)
{
	uint16_t h[4];

	fake_ioeventfd_accept(true);
	nd_create_connected("net0", "mtu", "65535", NULL); /* frames above 1500 */
	cr_assert(fake_log_contains("served by the device's I/O thread"), "%s", fake_log());
	nd_up(0);
	for (unsigned i = 0; i < 4; i++)
		h[i] = rx_post(1500);
	nd_notify(&rxq);
	make_frame(fa, 60, 1);
	make_frame(fb, 2900, 2);
	peer_send(fa, 60);
	peer_send(fb, 2900);
	cr_assert(nd_wait_used(&rxq, 3, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h[0], NHDR + 60);
	expect_rx(h[0], 1, fa, 60);
	expect_used(&rxq, h[1], 1500);
	expect_used(&rxq, h[2], NHDR + 2900 - 1500);
	cr_assert_eq(rx_buf(h[1])[10], 2, "num_buffers");
	cr_assert(!memcmp(rx_buf(h[1]) + NHDR, fb, 1500 - NHDR));
	cr_assert(!memcmp(rx_buf(h[2]), fb + 1500 - NHDR, 2900 - (1500 - NHDR)));
	/* and transmit */
	tx_send(NULL, fb, 1514, 2);
	recv_expect(fb, 1514);
}

/* ---- no spinning on a host fd a queue cannot serve ------------------------------------ */

Test(net, rx_before_the_driver_is_ready_does_not_spin)
{
	uint16_t h;

	nd_create_connected("net0", NULL);
	make_frame(fa, 500, 1);
	peer_send(fa, 500);
	cr_assert_leq(nd_pump_for(100), 2, "the event loop spins on a frame nobody can take");
	nd_up(NO_MRG);
	h = rx_post(1526);
	nd_notify(&rxq);
	cr_assert(nd_wait_used(&rxq, 1, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h, NHDR + 500);
	expect_rx(h, 1, fa, 500);
}

/* The transmit ring broken (NEEDS_RESET): the receive queue is not served either. */
Test(net, rx_after_a_broken_ring_does_not_spin)
{
	uint16_t h;

	nd_create_connected("net0", NULL);
	nd_up(NO_MRG);
	nd_pump_for(10); /* DRIVER_OK's kick: the receive queue waits for frames */
	/* the driver's avail index runs more than the queue size ahead */
	__atomic_store_n((uint16_t *)(nram + txq.avail + 2), htole16(NQSIZE + 5), __ATOMIC_RELEASE);
	nd_notify(&txq);
	cr_assert(nrd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, "%s", fake_log());
	make_frame(fa, 500, 1);
	peer_send(fa, 500);
	cr_assert_leq(nd_pump_for(100), 2, "the event loop spins on a queue that needs a reset");
	/* a reset brings it back, the frame with it */
	nd_up(NO_MRG);
	h = rx_post(1526);
	nd_notify(&rxq);
	cr_assert(nd_wait_used(&rxq, 1, NTIMEOUT_MS), "%s", fake_log());
	expect_used(&rxq, h, NHDR + 500);
	expect_rx(h, 1, fa, 500);
}
