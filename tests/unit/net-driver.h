/*
 * A small virtio-net driver for the virtio-net unit tests (test-virtio-net.c), through the
 * fake host, and the peer at the other end of the device's UNIX stream socket.
 *
 * The driver: the handshake, receiveq1 and transmitq1 of NQSIZE entries each in the fake
 * guest RAM, a free list of descriptors, chains of one or more segments, the used rings read
 * back entry by entry (head, length). Indices shared with the device are read and written
 * with atomics, as a driver does, so that the device's I/O thread (when the fake host takes
 * the ioeventfds) sees the ring's own ordering.
 *
 * The peer: the test listens on a socket in a temporary folder (the device connects with
 * `socket = PATH`) and holds the accepted end; frames go both ways preceded by their length,
 * 4 bytes big-endian. Without the I/O thread, the device's host fds are served when the fake
 * host's event loop turns (fake_fd_pump()): every wait here turns it.
 */
#ifndef SMOLVM_TEST_NET_DRIVER_H
#define SMOLVM_TEST_NET_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake-host.h"
#include "virtio.h"

#define NBASE FAKE_MMIO_AUTO_BASE
#define NIRQ 5
#define NQSIZE 64
#define NHDR 12
#define NTIMEOUT_MS 5000
#define NMAX_FRAME (65535 + 14 + 4)
#define F(bit) (1ull << (bit))
#define NO_MRG F(VIRTIO_NET_F_MRG_RXBUF)

/* Guest RAM: the rings, then a 68 KiB area per RX buffer slot and per TX chain slot. */
#define RX_RING 0x1000
#define TX_RING 0x4000
#define RXBUF(slot) (0x100000ull + 0x11000ull * (slot))
#define TXBUF(slot) (0x900000ull + 0x11000ull * (slot))
#define RX_SLOTS 32
#define TX_SLOTS 64

/* One virtqueue as the driver sees it. */
struct nq {
	unsigned index;
	uint64_t desc, avail, used;
	uint16_t avail_idx; /* the next avail entry */
	uint16_t used_seen; /* the next used entry to read back */
	uint16_t chain_len[NQSIZE]; /* descriptors of the chain at this head, 0: free */
	uint16_t slot[NQSIZE]; /* buffer slot of the chain at this head */
	bool busy[NQSIZE];
	unsigned next_slot;
};

struct nd_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

extern const struct smol_plugin_desc *net_plugin;
extern struct smol_dev *ndev; /* the device nd_create() made last */
extern struct nq rxq, txq;
extern uint8_t *nram;
extern int peer; /* the test's end of the device's socket, -1 none */
extern int peer_listen; /* the socket the test listens on */

/* Criterion .init and .fini: fresh fake host, the plugin loaded, a temporary folder with
 * the test's listening socket "peer.sock" in it. */
void nd_setup(void);
void nd_teardown(void);
const char *nd_path(const char *name);

/* Creates a device from key/value pairs ending in NULL; @name is the section's name. */
int nd_create(const char *name, ...);
/* The same with backend = socket on the test's socket, then accepts its connection. */
void nd_create_connected(const char *name, ...);
/* Accepts the device's connection into peer (up to NTIMEOUT_MS). */
void nd_accept(void);

uint32_t nrd(uint64_t off);
void nwr(uint64_t off, uint32_t v);
uint8_t ncfg8(unsigned off);
uint16_t ncfg16(unsigned off);
uint64_t nd_device_features(void);
/* The handshake, accepting what is offered except @refuse (feature bits), both queues. */
void nd_up(uint64_t refuse);
/* The queues and rings again (after a reset the driver starts over), not the features. */
void nd_rings_init(void);

/* A chain of @n segments, made available but not yet published; its head. */
uint16_t nd_add(struct nq *q, const struct nd_seg *s, unsigned n);
/* Publishes what nd_add() queued (used_event: an interrupt on the next completion). */
void nd_publish(struct nq *q);
/* QueueNotify (through the ioeventfd when the fake host took it). */
void nd_notify(struct nq *q);
uint16_t nd_used_idx(const struct nq *q);
/* The next used entry not read yet: true with its head and length (its descriptors freed). */
bool nd_reap(struct nq *q, uint16_t *head, uint32_t *len);
/* Until the used index reaches @target, turning the event loop, at most @ms. */
bool nd_wait_used(const struct nq *q, uint16_t target, int ms);

/* Receive buffers: one writable buffer of @len bytes in the next RX slot, the slot filled
 * with the canary byte 0xa5 (len + 256 bytes); published, not notified. Its head. */
uint16_t rx_post(uint32_t len);
/* Where the buffer of RX chain @head is. */
uint8_t *rx_buf(uint16_t head);
/* A frame as the guest sends it: @hdr (NULL: zeros) and @len bytes of @frame, spread over
 * @nseg segments (1: header and frame in one) in the next TX slot; published and notified.
 * Its head. */
uint16_t tx_send(const uint8_t *hdr, const uint8_t *frame, uint32_t len, unsigned nseg);

/* An Ethernet frame of @len bytes: addresses, ethertype 0x88b5, a payload from @seed. */
void make_frame(uint8_t *buf, uint32_t len, unsigned seed);
/* The peer sends @len bytes of @frame with its length prefix (@prefix: that length). */
void peer_send(const uint8_t *frame, uint32_t len);
void peer_send_raw(const void *buf, size_t len);
/* The next frame from the device: its length (the prefix), or -1 when none came within
 * @ms (the event loop turns meanwhile). */
long peer_recv(uint8_t *buf, size_t max, int ms);
/* Nothing from the device within @ms (turning the event loop). */
bool peer_quiet(int ms);

/* Turns the fake host's event loop for @ms; the number of callbacks run. */
unsigned nd_pump_for(int ms);
void nd_sleep_ms(int ms);

/* Checks the tests share. The device's own state (devices/virtio-net/net.h), for what the
 * guest does not see (counters, the host fd): without the I/O thread, or with it paused. */
struct net;
struct net *net_state(void);
bool link_up(void); /* VIRTIO_NET_S_LINK_UP in the config space */
/* The next used entry of @q: there is one, with head @head and length @len. */
void expect_used(struct nq *q, uint16_t head, uint32_t len);
/* Transmit chain @head completed (waited for: the I/O thread pushes it after the peer may
 * have read the frame), length 0. */
void tx_done(uint16_t head);
/* RX buffer @head holds the header (num_buffers @nbuf), @len bytes of @frame, the canary. */
void expect_rx(uint16_t head, uint16_t nbuf, const uint8_t *frame, uint32_t len);
/* RX buffer @head of @len bytes and the canary after it: not written at all. */
void untouched(uint16_t head, uint32_t len);
/* The peer receives @len bytes of @frame next. */
void recv_expect(const uint8_t *frame, uint32_t len);
/* Until the link is @up (the device sees a peer leave at its next read), turning the loop. */
void wait_link(bool up);
/* The device's socket send buffer made small: a 9000-byte frame does not fit it whole. */
void shrink_sndbuf(void);
/* Until the used index of @q stays put for 50 ms; that index. */
uint16_t settle(const struct nq *q);

#endif
