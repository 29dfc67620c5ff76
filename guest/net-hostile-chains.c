/*
 * net-hostile's chains: the descriptor chains of the cases (net-hostile.c has the list and
 * what each one expects). Transmit builders lay a chain at head 0 whose frame is marked X (the
 * peer fails the run if it arrives) or H (the device may send it); the legal layouts are
 * tx_builders the device must send. Receive builders lay a chain at head 0 and register it
 * with the bytes the device may fill (0: none), guard zones around every buffer.
 */
#include "net-hostile.h"

uint8_t xhdr[NET_HDR + 4] __attribute__((aligned(64)));
uint8_t xbuf[MAX_FRAME + 128] __attribute__((aligned(64)));
uint8_t area[8][2048 + 128] __attribute__((aligned(64)));
static uint8_t wbuf[(NQ_MAX + 8) * 16 + 128] __attribute__((aligned(64)));
static struct virtq_desc itable[NQ_MAX + 8] __attribute__((aligned(16)));
static struct virtq_desc itable2[4] __attribute__((aligned(16)));

uint32_t xframe(char op, uint32_t len, const char *tag)
{
	memset(xhdr, 0, sizeof(xhdr));
	return frame_build(xbuf, op, ++g_seq, len, tag);
}

/* ---- transmit cases: the chain at head 0, frames X (must not arrive) or H (may) -------- */

static void t_hdr(struct virtq_desc *t, uint16_t next)
{
	t[0] = D(A(xhdr), NET_HDR, VIRTQ_DESC_F_NEXT, next);
}

void t_outside(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	t_hdr(t, 1);
	t[1] = D(BAD_ADDR, TRIGGER_LEN, 0, 0);
}

void t_past_top(struct virtq_desc *t, uint16_t num, const char *tag)
{
	t_outside(t, num, tag);
	t[1].addr = g_top;
}

void t_straddle(struct virtq_desc *t, uint16_t num, const char *tag)
{
	t_outside(t, num, tag);
	t[1].addr = g_top - TRIGGER_LEN / 2;
}

void t_loop(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	t_hdr(t, 1);
	t[1] = D(A(xbuf), TRIGGER_LEN, VIRTQ_DESC_F_NEXT, 0);
}

void t_long_loop(struct virtq_desc *t, uint16_t num, const char *tag)
{
	xframe('X', TRIGGER_LEN, tag);
	t_hdr(t, 1);
	for (uint16_t i = 1; i < num; i++)
		t[i] = D(A(xbuf + i - 1), 1, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % num));
}

void t_next_range(struct virtq_desc *t, uint16_t num, const char *tag)
{
	xframe('X', TRIGGER_LEN, tag);
	t_hdr(t, 1);
	t[1] = D(A(xbuf), TRIGGER_LEN, VIRTQ_DESC_F_NEXT, num);
}

void t_len_overflow(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	t_hdr(t, 1);
	t[1] = D(A(xbuf), 0xffffffffu, VIRTQ_DESC_F_NEXT, 2);
	t[2] = D(A(xbuf), TRIGGER_LEN, 0, 0);
}

void t_short_hdr(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	t[0] = D(A(xhdr), 8, 0, 0);
}

void t_hdr_only(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	t[0] = D(A(xhdr), NET_HDR, 0, 0);
}

void t_short_frame(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	t_hdr(t, 1);
	t[1] = D(A(xbuf), 13, 0, 0);
}

void t_csum(struct virtq_desc *t, uint16_t num, const char *tag)
{
	t_loop(t, num, tag);
	t[1].flags = 0;
	xhdr[VIRTIO_NET_HDR_FLAGS] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	xhdr[6] = 34; /* csum_start, le16 */
	xhdr[8] = 16; /* csum_offset */
}

void t_gso(struct virtq_desc *t, uint16_t num, const char *tag)
{
	t_loop(t, num, tag);
	t[1].flags = 0;
	xhdr[VIRTIO_NET_HDR_GSO_TYPE] = 1; /* VIRTIO_NET_HDR_GSO_TCPV4 */
	xhdr[2] = 54; /* hdr_len */
	xhdr[4] = 32; /* gso_size */
}

void t_writable(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	guard_set(area[0], TRIGGER_LEN + 128); /* sent, the peer sees 0xc3 bytes */
	t_hdr(t, 1);
	t[1] = D(A(area[0] + 64), TRIGGER_LEN, VIRTQ_DESC_F_WRITE, 0);
}

void t_read_after_write(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	uint8_t *w = guarded(area[0], 16);
	t_hdr(t, 1);
	t[1] = D(A(w), 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	t[2] = D(A(xbuf), TRIGGER_LEN, 0, 0);
}

void t_over_mtu(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	uint32_t len = xframe('X', g_net.mtu + 18u + 1u, tag);
	t_hdr(t, 1);
	t[1] = D(A(xbuf), len, 0, 0);
}

void t_over_max(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	uint32_t len = xframe('X', MAX_FRAME + 1, tag);
	t_hdr(t, 1);
	t[1] = D(A(xbuf), len, 0, 0);
}

void t_ind_long(struct virtq_desc *t, uint16_t num, const char *tag)
{
	uint32_t len = xframe('H', num + 1u, tag); /* a byte per descriptor */
	itable[0] = D(A(xhdr), NET_HDR, VIRTQ_DESC_F_NEXT, 1);
	for (uint32_t i = 1; i <= len; i++)
		itable[i] =
		        D(A(xbuf + i - 1), 1, i < len ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	t[0] = D(A(itable), (len + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0);
}

void t_ind_nested(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('H', TRIGGER_LEN, tag);
	itable2[0] = D(A(xhdr), NET_HDR, VIRTQ_DESC_F_NEXT, 1);
	itable2[1] = D(A(xbuf), TRIGGER_LEN, 0, 0);
	itable[0] = D(A(itable2), 32, VIRTQ_DESC_F_INDIRECT, 0);
	t[0] = D(A(itable), 16, VIRTQ_DESC_F_INDIRECT, 0);
}

void t_ind_next(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('H', TRIGGER_LEN, tag);
	itable[0] = D(A(xhdr), NET_HDR, VIRTQ_DESC_F_NEXT, 1);
	itable[1] = D(A(xbuf), TRIGGER_LEN, 0, 0);
	t[0] = D(A(itable), 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(xbuf), 10, 0, 0);
}

void t_ind_outside(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	t[0] = D(BAD_ADDR, 32, VIRTQ_DESC_F_INDIRECT, 0);
}

void t_ind_odd(struct virtq_desc *t, uint16_t num, const char *tag)
{
	(void)num;
	xframe('X', TRIGGER_LEN, tag);
	itable[0] = D(A(xhdr), NET_HDR, VIRTQ_DESC_F_NEXT, 1);
	itable[1] = D(A(xbuf), TRIGGER_LEN, 0, 0);
	t[0] = D(A(itable), 24, VIRTQ_DESC_F_INDIRECT, 0);
}

void t_ind_empty(struct virtq_desc *t, uint16_t num, const char *tag)
{
	t_ind_odd(t, num, tag);
	t[0].len = 0;
}

/* Legal layouts (tx_builder): the device must send them whole. */
void g_split_hdr(struct virtq_desc *t, uint8_t *hdr, uint8_t *frame, uint32_t len)
{
	t[0] = D(A(hdr), 5, VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(hdr + 5), 0, VIRTQ_DESC_F_NEXT, 2);
	t[2] = D(A(hdr + 5), NET_HDR - 5, VIRTQ_DESC_F_NEXT, 3);
	t[3] = D(A(frame), 1, VIRTQ_DESC_F_NEXT, 4);
	t[4] = D(A(frame + 1), len - 1, 0, 0);
}

void g_indirect(struct virtq_desc *t, uint8_t *hdr, uint8_t *frame, uint32_t len)
{
	itable[0] = D(A(hdr), NET_HDR, VIRTQ_DESC_F_NEXT, 1);
	itable[1] = D(A(frame), len, 0, 0);
	t[0] = D(A(itable), 32, VIRTQ_DESC_F_INDIRECT, 0);
}

/* ---- receive cases: the chain at head 0 (registered with the bytes it may take) -------- */

static void r_short(struct virtq_desc *t, uint32_t n)
{
	uint8_t *b = guarded(area[0], n);
	t[0] = D(A(b), n, VIRTQ_DESC_F_WRITE, 0);
	rx_register(0, b, 0);
}

void r_4(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	r_short(t, 4);
}

void r_11(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	r_short(t, 11);
}

void r_readable(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	guard_set(area[0], 2048);
	t[0] = D(A(area[0]), 2048, 0, 0);
	rx_register(0, area[0], 0);
}

void r_read_first(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	guard_set(area[0], 64);
	uint8_t *w = guarded(area[1], 2048);
	t[0] = D(A(area[0]), 64, VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(w), 2048, VIRTQ_DESC_F_WRITE, 0);
	rx_register(0, w, 2048); /* the device may use the writable part */
}

void r_read_after(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	guard_set(area[0], 64);
	uint8_t *w = guarded(area[1], 2048);
	t[0] = D(A(w), 2048, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(area[0]), 64, 0, 0);
	rx_register(0, w, 0);
}

static void r_at(struct virtq_desc *t, uint64_t addr)
{
	t[0] = D(addr, 2048, VIRTQ_DESC_F_WRITE, 0);
	rx_register(0, area[0], 0);
}

void r_outside(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	r_at(t, BAD_ADDR);
}

void r_past_top(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	r_at(t, g_top);
}

void r_straddle(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	r_at(t, g_top - 1024);
}

void r_loop(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	uint8_t *w = guarded(area[1], 2048);
	t[0] = D(A(w), 1024, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(w + 1024), 1024, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	rx_register(0, w, 0);
}

void r_next_range(struct virtq_desc *t, uint16_t num)
{
	uint8_t *w = guarded(area[1], 2048);
	t[0] = D(A(w), 2048, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, num);
	rx_register(0, w, 0);
}

void r_len_overflow(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	uint8_t *w = guarded(area[1], 2048);
	t[0] = D(A(w), 0xffffffffu, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(w), 2048, VIRTQ_DESC_F_WRITE, 0);
	rx_register(0, w, 0);
}

void r_ind_long(struct virtq_desc *t, uint16_t num)
{
	uint32_t n = num + 2u, size = n * 16;
	uint8_t *w = guarded(wbuf, size); /* the pieces are contiguous: one frame if used */
	for (uint32_t i = 0; i < n; i++)
		itable[i] = D(A(w + 16 * i), 16,
		              VIRTQ_DESC_F_WRITE | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
		              (uint16_t)(i + 1));
	t[0] = D(A(itable), size, VIRTQ_DESC_F_INDIRECT, 0);
	rx_register(0, w, size);
}

void r_ind_nested(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	uint8_t *w = guarded(area[1], 2048);
	itable2[0] = D(A(w), 2048, VIRTQ_DESC_F_WRITE, 0);
	itable[0] = D(A(itable2), 16, VIRTQ_DESC_F_INDIRECT, 0);
	t[0] = D(A(itable), 16, VIRTQ_DESC_F_INDIRECT, 0);
	rx_register(0, w, 2048);
}

void r_indirect(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	uint8_t *w = guarded(area[1], 2048);
	itable[0] = D(A(w), 2048, VIRTQ_DESC_F_WRITE, 0);
	t[0] = D(A(itable), 16, VIRTQ_DESC_F_INDIRECT, 0);
	rx_register(0, w, 2048);
}
