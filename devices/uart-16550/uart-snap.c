/*
 * uart-16550: snapshots. The state is everything the guest can see, and the host-side input
 * already read from the host but not yet in the receiver (losing it would lose console input).
 * Output and input files are not state: a restored UART uses the ones its configuration names.
 *
 * State version 1, little-endian, byte by byte:
 *   0   u8  IER            (bits 0-3)
 *   1   u8  LCR
 *   2   u8  MCR            (bits 0-4)
 *   3   u8  MSR            (bits 4-7 as MCR's loopback drives them; deltas 0-3)
 *   4   u8  SCR
 *   5   u8  DLL
 *   6   u8  DLM
 *   7   u8  FCR as programmed (ENABLE 0x01, DMA 0x08, TRIGGER 0xc0)
 *   8   u8  sticky LSR error bits (OE, PE, FE, BI)
 *   9   u8  RBR: the last character read
 *   10  u8  flags: 0x01 THR-empty interrupt pending, 0x02 character timeout run out (the line
 *           is quiet), 0x04 the level last driven on the IRQ line, 0x08 the transmitter is
 *           busy (the host output was full: THR empty comes when the restored one has room);
 *           other bits 0
 *   11  u8  N: characters in the receiver (at most 16 with the FIFO on, 1 without)
 *   12  N x (u8 character, u8 its PE/FE/BI flags), oldest first; the oldest one's flags are 0
 *           (they moved to LSR when it reached the top)
 *   12+2N      u16 M: host-side input waiting for the receiver (at most 256)
 *   14+2N      M x u16 (character | PE/FE/BI flags << 8), oldest first
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dev-snap.h"
#include "uart.h"

#define UART_STATE_VERSION 1
#define UART_STATE_MAX (14 + 2 * UART_FIFO_LEN + 2 * UART_INBUF_LEN)

enum { FL_THRI = 0x01, FL_RX_QUIET = 0x02, FL_IRQ_LEVEL = 0x04, FL_TX_BLOCKED = 0x08 };
#define FCR_KEPT (FCR_ENABLE | FCR_DMA | FCR_TRIGGER)

int uart_save(void *state, struct smol_snap_writer *w)
{
	struct uart *u = state;
	uint8_t buf[UART_STATE_MAX];
	size_t n = 0;

	buf[n++] = u->ier;
	buf[n++] = u->lcr;
	buf[n++] = u->mcr;
	buf[n++] = u->msr;
	buf[n++] = u->scr;
	buf[n++] = u->dll;
	buf[n++] = u->dlm;
	buf[n++] = u->fcr;
	buf[n++] = u->lsr_err;
	buf[n++] = u->rbr;
	buf[n++] =
	        (uint8_t)((u->thri ? FL_THRI : 0) | (u->rx_quiet ? FL_RX_QUIET : 0) |
	                  (u->irq_level ? FL_IRQ_LEVEL : 0) | (u->tx_blocked ? FL_TX_BLOCKED : 0));
	buf[n++] = (uint8_t)u->rx_count;
	for (unsigned i = 0; i < u->rx_count; i++) {
		unsigned k = (u->rx_head + i) % UART_FIFO_LEN;

		buf[n++] = u->rx[k];
		buf[n++] = u->rx_err[k];
	}
	buf[n++] = (uint8_t)(u->io.in_count & 0xff);
	buf[n++] = (uint8_t)(u->io.in_count >> 8);
	for (unsigned i = 0; i < u->io.in_count; i++) {
		uint16_t e = u->io.inbuf[(u->io.in_head + i) % UART_INBUF_LEN];

		buf[n++] = (uint8_t)(e & 0xff);
		buf[n++] = (uint8_t)(e >> 8);
	}
	u->host->snap_set_version(w, UART_STATE_VERSION);
	return u->host->snap_write(w, buf, n);
}

/* The saved registers and buffers, checked before any of it reaches the device. */
struct saved {
	uint8_t ier, lcr, mcr, msr, scr, dll, dlm, fcr, lsr_err, rbr, flags;
	unsigned rx_count, in_count;
	uint8_t rx[UART_FIFO_LEN], rx_err[UART_FIFO_LEN];
	uint16_t inbuf[UART_INBUF_LEN];
};

static int get(struct uart *u, struct smol_snap_reader *r, void *p, size_t len, const char *what)
{
	int ret = u->host->snap_read(r, p, len);

	if (ret)
		u->host->log(u->dev, SMOL_LOG_ERROR, "state: truncated at %s", what);
	return ret;
}

static int get_u16(struct uart *u, struct smol_snap_reader *r, uint16_t *v, const char *what)
{
	uint8_t b[2];
	int ret = get(u, r, b, 2, what);

	*v = (uint16_t)(b[0] | b[1] << 8);
	return ret;
}

/* Logs which field of the state is wrong: "state: FIELD ...". */
static SMOL_PRINTF(2, 3) int bad(struct uart *u, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	u->host->log(u->dev, SMOL_LOG_ERROR, "state: %s", msg);
	return -EINVAL;
}

static int read_state(struct uart *u, struct smol_snap_reader *r, struct saved *s)
{
	uint8_t regs[12], pair[2];
	uint16_t v;
	int ret;

	if ((ret = get(u, r, regs, sizeof regs, "the registers")))
		return ret;
	s->ier = regs[0], s->lcr = regs[1], s->mcr = regs[2], s->msr = regs[3];
	s->scr = regs[4], s->dll = regs[5], s->dlm = regs[6], s->fcr = regs[7];
	s->lsr_err = regs[8], s->rbr = regs[9], s->flags = regs[10], s->rx_count = regs[11];
	if (s->ier & ~IER_MASK)
		return bad(u, "IER 0x%02x has bits outside 0x%02x", s->ier, IER_MASK);
	if (s->mcr & ~MCR_MASK)
		return bad(u, "MCR 0x%02x has bits outside 0x%02x", s->mcr, MCR_MASK);
	if ((s->msr & ~MSR_DELTAS) != uart_msr_lines(s->mcr))
		return bad(u, "MSR 0x%02x: its line bits do not follow MCR (expected 0x%02x)",
		           s->msr, uart_msr_lines(s->mcr));
	if (s->fcr & ~FCR_KEPT)
		return bad(u, "FCR 0x%02x has bits outside 0x%02x", s->fcr, FCR_KEPT);
	if (s->lsr_err & ~LSR_ERRORS)
		return bad(u, "LSR errors 0x%02x have bits outside 0x%02x", s->lsr_err, LSR_ERRORS);
	if (s->flags & ~(FL_THRI | FL_RX_QUIET | FL_IRQ_LEVEL | FL_TX_BLOCKED))
		return bad(u, "flags 0x%02x have bits outside 0x%02x", s->flags,
		           FL_THRI | FL_RX_QUIET | FL_IRQ_LEVEL | FL_TX_BLOCKED);
	unsigned cap = (s->fcr & FCR_ENABLE) ? UART_FIFO_LEN : 1;
	if (s->rx_count > cap)
		return bad(u, "receiver count %u exceeds its %u characters", s->rx_count, cap);
	for (unsigned i = 0; i < s->rx_count; i++) {
		if ((ret = get(u, r, pair, 2, "the receiver's characters")))
			return ret;
		s->rx[i] = pair[0];
		s->rx_err[i] = pair[1];
		if (pair[1] & ~LSR_CHAR_ERRORS)
			return bad(u, "receiver character %u has error flags 0x%02x", i, pair[1]);
		if (i == 0 && pair[1])
			return bad(u, "the top character's error flags 0x%02x belong in LSR",
			           pair[1]);
	}
	if ((ret = get_u16(u, r, &v, "the host input count")))
		return ret;
	s->in_count = v;
	if (s->in_count > UART_INBUF_LEN)
		return bad(u, "host input count %u exceeds its %u characters", s->in_count,
		           UART_INBUF_LEN);
	for (unsigned i = 0; i < s->in_count; i++) {
		if ((ret = get_u16(u, r, &s->inbuf[i], "the host input")))
			return ret;
		if ((s->inbuf[i] >> 8) & ~LSR_CHAR_ERRORS)
			return bad(u, "host input character %u has error flags 0x%02x", i,
			           s->inbuf[i] >> 8);
	}
	return 0;
}

int uart_load(void *state, struct smol_snap_reader *r)
{
	struct uart *u = state;
	uint32_t version;
	struct saved s;
	size_t left;
	int ret;

	if ((ret = dev_snap_version(u->host, u->dev, r, UART_STATE_VERSION, &version)))
		return ret;
	memset(&s, 0, sizeof s);
	if ((ret = read_state(u, r, &s)))
		return ret;
	left = u->host->snap_remaining(r);
	if (left) {
		u->host->log(u->dev, SMOL_LOG_ERROR, "state: %zu bytes left over after version %u",
		             left, version);
		return -EBADMSG;
	}

	u->ier = s.ier, u->lcr = s.lcr, u->mcr = s.mcr, u->msr = s.msr, u->scr = s.scr;
	u->dll = s.dll, u->dlm = s.dlm, u->fcr = s.fcr, u->lsr_err = s.lsr_err, u->rbr = s.rbr;
	u->thri = s.flags & FL_THRI;
	u->tx_blocked = s.flags & FL_TX_BLOCKED;
	u->rx_quiet = s.flags & FL_RX_QUIET;
	/* The core restores the line's level: remember it, do not drive it. */
	u->irq_level = !!(s.flags & FL_IRQ_LEVEL);
	u->rx_head = 0;
	u->rx_count = s.rx_count;
	memcpy(u->rx, s.rx, sizeof u->rx);
	memcpy(u->rx_err, s.rx_err, sizeof u->rx_err);
	u->io.in_head = 0;
	u->io.in_count = s.in_count;
	memcpy(u->io.inbuf, s.inbuf, sizeof u->io.inbuf);
	/* Input the receiver has room for flows in as it would have (nothing, for a state saved
	 * by this plugin: it never leaves both), and a stopped input is watched again. */
	serial_restored(&u->io, u->tx_blocked);
	return 0;
}
