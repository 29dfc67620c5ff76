/*
 * pl011: snapshots. The state is everything the guest can see, and the host-side input
 * already read from the host but not yet in the receiver (losing it would lose console input).
 * Output and input files are not state: a restored UART uses the ones its configuration names;
 * nor is what waited for a slow output (the transmitter is restored busy, and the restored
 * output's first room raises the transmit interrupt as a drain would).
 *
 * State version 1, little-endian, field by field:
 *   0   u16 RSR            (bits 0-3: FE, PE, BE, OE)
 *   2   u16 ILPR           (bits 0-7)
 *   4   u16 IBRD
 *   6   u16 FBRD           (bits 0-5)
 *   8   u16 LCR_H          (bits 0-7)
 *   10  u16 CR             (bits 0-2, 7-15)
 *   12  u16 IFLS           (bits 0-5)
 *   14  u16 IMSC           (bits 0-10)
 *   16  u16 RIS            (bits 0-10)
 *   18  u16 DMACR          (bits 0-2)
 *   20  u8  flags: 0x01 a character was lost and the next one in carries OE, 0x02 the level
 *           last driven on the interrupt line; other bits 0
 *   21  u8  the transmit FIFO's level after the last event (at most 32 with FIFOs, 1 without)
 *   22  u8  N: characters in the receive FIFO (at most 32 with FIFOs, 1 without)
 *   23  N x u16 receive FIFO entries, oldest first: character (bits 0-7) | FE, PE, BE, OE
 *           (bits 8-11); bits 12-15 0
 *   23+2N      u16 M: host-side input waiting for the receiver (at most 256)
 *   25+2N      M x u16 (character | PE 0x04, FE 0x08, break 0x10 << 8), oldest first
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dev-snap.h"
#include "pl011.h"

#define PL011_STATE_VERSION 1
#define PL011_REGS_LEN 23 /* up to N */
#define PL011_STATE_MAX (PL011_REGS_LEN + 2 * PL011_FIFO_LEN + 2 + 2 * SERIAL_INBUF_LEN)

enum { FL_OE_PENDING = 0x01, FL_IRQ_LEVEL = 0x02, FL_ALL = 0x03 };

int pl011_save(void *state, struct smol_snap_writer *w)
{
	struct pl011 *p = state;
	const uint16_t regs[10] = { p->rsr, p->ilpr, p->ibrd, p->fbrd, p->lcr_h,
		                    p->cr,  p->ifls, p->imsc, p->ris,  p->dmacr };
	uint8_t buf[PL011_STATE_MAX];
	size_t n = 0;

	for (unsigned i = 0; i < 10; i++, n += 2)
		dev_le_put(buf + n, regs[i], 2);
	buf[n++] =
	        (uint8_t)((p->oe_pending ? FL_OE_PENDING : 0) | (p->irq_level ? FL_IRQ_LEVEL : 0));
	buf[n++] = p->tx_level;
	buf[n++] = (uint8_t)p->rx_count;
	for (unsigned i = 0; i < p->rx_count; i++, n += 2)
		dev_le_put(buf + n, p->rx[(p->rx_head + i) % PL011_FIFO_LEN], 2);
	dev_le_put(buf + n, p->io.in_count, 2);
	n += 2;
	for (unsigned i = 0; i < p->io.in_count; i++, n += 2)
		dev_le_put(buf + n, p->io.inbuf[(p->io.in_head + i) % SERIAL_INBUF_LEN], 2);
	p->host->snap_set_version(w, PL011_STATE_VERSION);
	return p->host->snap_write(w, buf, n);
}

/* The saved state, checked whole before any of it reaches the device. */
struct saved {
	uint16_t regs[10]; /* RSR ILPR IBRD FBRD LCR_H CR IFLS IMSC RIS DMACR */
	uint8_t flags, tx_level;
	unsigned rx_count, in_count;
	uint16_t rx[PL011_FIFO_LEN];
	uint16_t inbuf[SERIAL_INBUF_LEN];
};

enum { S_RSR, S_ILPR, S_IBRD, S_FBRD, S_LCR_H, S_CR, S_IFLS, S_IMSC, S_RIS, S_DMACR };

static int get(struct pl011 *p, struct smol_snap_reader *r, void *buf, size_t len, const char *what)
{
	int ret = p->host->snap_read(r, buf, len);

	if (ret)
		p->host->log(p->dev, SMOL_LOG_ERROR, "state: truncated at %s", what);
	return ret;
}

static int get_u16(struct pl011 *p, struct smol_snap_reader *r, uint16_t *v, const char *what)
{
	uint8_t b[2];
	int ret = get(p, r, b, 2, what);

	*v = (uint16_t)dev_le_get(b, 2);
	return ret;
}

/* Logs which field of the state is wrong: "state: FIELD ...". */
static SMOL_PRINTF(2, 3) int bad(struct pl011 *p, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p->host->log(p->dev, SMOL_LOG_ERROR, "state: %s", msg);
	return -EINVAL;
}

static int check_regs(struct pl011 *p, const struct saved *s)
{
	static const struct {
		const char *name;
		uint16_t mask;
	} reg[10] = {
		{ "RSR", RSR_MASK },     { "ILPR", ILPR_MASK },  { "IBRD", IBRD_MASK },
		{ "FBRD", FBRD_MASK },   { "LCR_H", LCRH_MASK }, { "CR", CR_MASK },
		{ "IFLS", IFLS_MASK },   { "IMSC", INT_MASK },   { "RIS", INT_MASK },
		{ "DMACR", DMACR_MASK },
	};

	for (unsigned i = 0; i < 10; i++)
		if (s->regs[i] & ~reg[i].mask)
			return bad(p, "%s 0x%04x has bits outside 0x%04x", reg[i].name, s->regs[i],
			           reg[i].mask);
	if (s->flags & ~FL_ALL)
		return bad(p, "flags 0x%02x have bits outside 0x%02x", s->flags, FL_ALL);
	bool pending = (s->regs[S_RIS] & s->regs[S_IMSC]) != 0;
	if (!!(s->flags & FL_IRQ_LEVEL) != pending)
		return bad(p, "the line's level %d does not follow RIS 0x%03x & IMSC 0x%03x",
		           !!(s->flags & FL_IRQ_LEVEL), s->regs[S_RIS], s->regs[S_IMSC]);
	unsigned depth = pl011_tx_depth(s->regs[S_LCR_H]);
	if (s->tx_level > depth)
		return bad(p, "transmit FIFO level %u exceeds its %u entries", s->tx_level, depth);
	unsigned cap = pl011_rx_capacity(s->regs[S_LCR_H]);
	if (s->rx_count > cap)
		return bad(p, "receive FIFO count %u exceeds its %u entries", s->rx_count, cap);
	return 0;
}

static int read_state(struct pl011 *p, struct smol_snap_reader *r, struct saved *s)
{
	uint8_t b[PL011_REGS_LEN];
	int ret;

	if ((ret = get(p, r, b, sizeof b, "the registers")))
		return ret;
	for (unsigned i = 0; i < 10; i++)
		s->regs[i] = (uint16_t)dev_le_get(b + 2 * i, 2);
	s->flags = b[20];
	s->tx_level = b[21];
	s->rx_count = b[22];
	if ((ret = check_regs(p, s)))
		return ret;
	for (unsigned i = 0; i < s->rx_count; i++) {
		if ((ret = get_u16(p, r, &s->rx[i], "the receive FIFO")))
			return ret;
		if (s->rx[i] & ~(0xff | DR_ERRORS))
			return bad(p, "receive FIFO entry %u 0x%04x has bits outside 0x0fff", i,
			           s->rx[i]);
	}
	uint16_t m;
	if ((ret = get_u16(p, r, &m, "the host input count")))
		return ret;
	s->in_count = m;
	if (s->in_count > SERIAL_INBUF_LEN)
		return bad(p, "host input count %u exceeds its %u characters", s->in_count,
		           SERIAL_INBUF_LEN);
	for (unsigned i = 0; i < s->in_count; i++) {
		if ((ret = get_u16(p, r, &s->inbuf[i], "the host input")))
			return ret;
		if ((s->inbuf[i] >> 8) & ~SERIAL_CHAR_ERRORS)
			return bad(p, "host input character %u has error flags 0x%02x", i,
			           s->inbuf[i] >> 8);
	}
	return 0;
}

int pl011_load(void *state, struct smol_snap_reader *r)
{
	struct pl011 *p = state;
	uint32_t version;
	struct saved s;
	size_t left;
	int ret;

	if ((ret = dev_snap_version(p->host, p->dev, r, PL011_STATE_VERSION, &version)))
		return ret;
	memset(&s, 0, sizeof s);
	if ((ret = read_state(p, r, &s)))
		return ret;
	left = p->host->snap_remaining(r);
	if (left) {
		p->host->log(p->dev, SMOL_LOG_ERROR, "state: %zu bytes left over after version %u",
		             left, version);
		return -EBADMSG;
	}

	p->rsr = s.regs[S_RSR], p->ilpr = s.regs[S_ILPR], p->ibrd = s.regs[S_IBRD];
	p->fbrd = s.regs[S_FBRD], p->lcr_h = s.regs[S_LCR_H], p->cr = s.regs[S_CR];
	p->ifls = s.regs[S_IFLS], p->imsc = s.regs[S_IMSC], p->ris = s.regs[S_RIS];
	p->dmacr = s.regs[S_DMACR];
	p->oe_pending = s.flags & FL_OE_PENDING;
	/* The core restores the line's level: remember it, do not drive it. */
	p->irq_level = !!(s.flags & FL_IRQ_LEVEL);
	p->tx_level = s.tx_level;
	p->rx_head = 0;
	p->rx_count = s.rx_count;
	memcpy(p->rx, s.rx, sizeof p->rx);
	p->io.in_head = 0;
	p->io.in_count = s.in_count;
	memcpy(p->io.inbuf, s.inbuf, sizeof p->io.inbuf);
	/* A transmitter saved with characters in its FIFO drains into the restored output when
	 * the event loop first turns; input the receiver has room for flows in. */
	serial_restored(&p->io, p->tx_level > 0);
	return 0;
}
