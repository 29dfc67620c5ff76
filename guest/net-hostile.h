/*
 * net-hostile's shared parts. The driver half (net-hostile-drv.c): a polled virtio-net
 * driver over virtio-mmio with both split queues (receiveq 0, transmitq 1) in its own ring
 * memory, the frame format it shares with the host peer (tests/kvm/net-peer.py), receive
 * buffers with guard zones, and the payload's failure bookkeeping. The cases' chains are in
 * net-hostile-chains.c; the list of cases, what each expects, and main in net-hostile.c.
 */
#ifndef NET_HOSTILE_H
#define NET_HOSTILE_H

#include "virtio.h"

/* Exit codes: the code of the FIRST failure (net-hostile.c says what each means). */
#define EXIT_DISCOVERY 10
#define EXIT_INIT 11
#define EXIT_LINK 12
#define EXIT_EXCHANGE 13
#define EXIT_GARBAGE 14
#define EXIT_OVERWRITE 15
#define EXIT_ACCEPTED 16
#define EXIT_RESET 17
#define EXIT_DEAD 18
#define EXIT_PEER 19

#define NQ_MAX 256 /* queue size used at most: the device's QueueNumMax */
#define RXQ 0
#define TXQ 1
#define NET_HDR VIRTIO_NET_HDR_SIZE
#define MAX_FRAME (65535 + 14 + 4) /* the device's largest frame (a TAP's TSO frame) */

/* ---- frames (the peer's format) --------------------------------------------------------
 * 0 dst, 6 src, 12 ethertype 0x88b5, 14 magic "NHOSTILE", 22 op, 23 mode, 24 seq (be32),
 * 28 length of the whole frame (be32), 32 tag (the case, NUL-padded), 48.. the pattern:
 * byte i is pattern(seq, i); a reply (op R, P) holds it inverted. */
#define F_OP 22
#define F_MODE 23
#define F_SEQ 24
#define F_LEN 28
#define F_TAG 32
#define F_BODY 48
#define F_MIN 60
#define SPLIT_LEN 200 /* the peer's P frame */
#define SPLIT_AT 100 /* ... sent up to here first */

static inline uint8_t pattern(uint32_t seq, uint32_t i)
{
	return (uint8_t)(seq * 31u + i * 7u + (i >> 8));
}

/* ---- split queues ---------------------------------------------------------------------- */

struct nq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[NQ_MAX];
	uint16_t used_event;
};

struct nq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[NQ_MAX];
	uint16_t avail_event;
};

struct nq_mem {
	struct virtq_desc desc[NQ_MAX] __attribute__((aligned(4096)));
	struct nq_avail avail __attribute__((aligned(4096)));
	struct nq_used used __attribute__((aligned(4096)));
};

struct nq {
	uint16_t index;
	uint16_t num;
	uint16_t avail_idx; /* next avail->idx to publish */
	uint16_t used_idx; /* next used->idx expected */
	struct nq_mem *m;
};

/* ---- the device -------------------------------------------------------------------------- */

struct net {
	struct virtio_dev dev; /* rt's: base, features (virtio_has), err */
	uint64_t want;
	struct nq q[2];
	uint8_t mac[6];
	uint16_t status, mtu, pairs;
	bool mrg;
};

extern struct net g_net;
extern const uint8_t peer_mac[6];
extern uint64_t g_top; /* first byte above the highest RAM range */
extern uint32_t g_seq; /* the last sequence number used */
extern uint32_t g_sent; /* E and S frames the device took from good chains */
extern uint8_t g_mode; /* 0: plain; 1: MRG_RXBUF + EVENT_IDX */
extern int first_fail;

void fail(int code, const char *fmt, ...) GUEST_PRINTF(2, 3);
void delay_us(uint64_t us);

/* 3.1 initialisation with both queues: reset, features (VERSION_1 + want & offered),
 * rings, DRIVER_OK; then reads the config space. 0 or -VIRTIO_E* (g_net.dev.err). */
int net_init(uint64_t want);
void net_print_config(void);

void nq_add(struct nq *q, uint16_t head);
void nq_publish(struct nq *q, uint16_t idx); /* any avail index (hostile) */
void nq_kick(struct nq *q); /* publishes what was added, notifies */
int nq_wait(struct nq *q, uint64_t timeout_us, uint32_t *id, uint32_t *len);

static inline struct virtq_desc D(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
	return (struct virtq_desc){ addr, len, flags, next };
} static inline uint64_t A(const volatile void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* ---- guard zones: bytes next to buffers the device must never write -------------------- */
void guard_set(uint8_t *p, uint32_t len); /* for the current case */
void guard_keep(uint8_t *p, uint32_t len); /* for the whole run */
bool guards_check(const char *when); /* fails EXIT_OVERWRITE; clears the case's guards */
/* A buffer of n bytes inside area (n + 128 bytes) with guards before and after it. */
uint8_t *guarded(uint8_t *area, uint32_t n);

/* ---- frames ------------------------------------------------------------------------------ */
uint32_t frame_build(uint8_t *f, char op, uint32_t seq, uint32_t len, const char *tag);

/* Receive buffers: slot = descriptor = head index, one descriptor each. */
#define NPOOL 16
#define POOL_BUF 2048
void rx_register(uint16_t id, uint8_t *buf, uint32_t size); /* a buffer posted by hand */
void rx_post(uint16_t id, uint8_t *buf, uint32_t size); /* one descriptor, added */
void rx_pool_post(void); /* the NPOOL good buffers, kicked */
void rx_forget(void); /* after a reset: nothing is posted */
extern bool g_pool; /* the pool is posted */
unsigned rx_outstanding(void); /* buffers posted by hand and not returned */

enum rx_result { R_FRAME, R_EMPTY, R_TIMEOUT, R_NEEDS_RESET, R_PROTO };
extern uint8_t rx_frame[MAX_FRAME + 64];
extern char rx_why[160];
extern bool rx_too_long; /* R_PROTO because a used len exceeded the chain */
/* The next frame (all its buffers), into rx_frame; pool buffers are posted again. */
enum rx_result rx_recv(uint64_t timeout_us, uint32_t *len);

/* What rx_frame holds: 1 a reply from the peer (op R, P or V: *op, *seq), 0 not one (why). */
int frame_check_reply(const uint8_t *f, uint32_t len, char *op, uint32_t *seq, char *why,
                      size_t whylen);

/* One good frame on the transmit queue: header + frame in descriptors 0 and 1 unless a
 * builder lays the chain out (head 0). 0 when the device completed it, else -VIRTIO_E*. */
typedef void (*tx_builder)(struct virtq_desc *t, uint8_t *hdr, uint8_t *frame, uint32_t len);
int tx_send(const uint8_t *frame, uint32_t len, tx_builder build);

/* ---- the cases' chains (net-hostile-chains.c) --------------------------------------------- */
#define TRIGGER_LEN 100 /* the frames of hostile chains and echo requests */
#define BAD_ADDR 0xfff00000000ull /* far above any RAM */
extern uint8_t xhdr[NET_HDR + 4];
extern uint8_t xbuf[MAX_FRAME + 128]; /* the frame of the case */
extern uint8_t area[8][2048 + 128]; /* buffers for guarded() */
/* Builds the case's frame in xbuf (the next seq), zeroes xhdr; returns len. */
uint32_t xframe(char op, uint32_t len, const char *tag);

typedef void tx_chain(struct virtq_desc *t, uint16_t num, const char *tag);
tx_chain t_outside, t_past_top, t_straddle, t_loop, t_long_loop, t_next_range, t_len_overflow,
        t_short_hdr, t_hdr_only, t_short_frame, t_csum, t_gso, t_writable, t_read_after_write,
        t_over_mtu, t_over_max, t_ind_long, t_ind_nested, t_ind_next, t_ind_outside, t_ind_odd,
        t_ind_empty;
/* legal layouts (tx_builder): a header over three descriptors, one empty; an indirect table */
void g_split_hdr(struct virtq_desc *t, uint8_t *hdr, uint8_t *frame, uint32_t len);
void g_indirect(struct virtq_desc *t, uint8_t *hdr, uint8_t *frame, uint32_t len);
typedef void rx_chain(struct virtq_desc *t, uint16_t num);
rx_chain r_4, r_11, r_readable, r_read_first, r_read_after, r_outside, r_past_top, r_straddle,
        r_loop, r_next_range, r_len_overflow, r_ind_long, r_ind_nested, r_indirect;

#endif
