/*
 * pl011: ARM's PrimeCell UART (PL011), r1p5, on a 4 KiB MMIO region: the register model and
 * the plugin's ops. Host-side output, input and terminal handling are devices/serial's, shared
 * with uart-16550 (same `input` and `output` keys, same behaviour).
 *
 * Modelling choices (TRM references are to the PL011 TRM r1p5):
 *  - Transmission is instantaneous while the host output takes the bytes. What the output
 *    cannot take yet waits in the host side's bounded buffer (devices/serial); the transmit
 *    FIFO is the last 32 slots of that buffer (1 without FIFOs): its level is how far the
 *    buffer has filled into them. FR.TXFF is set when it is full, FR.TXFE when it is empty,
 *    FR.BUSY while anything at all waits for the host. A write with TXFF set is lost, counted.
 *  - Interrupts are latched in RIS on the events the TRM names, and cleared by ICR or by the
 *    conditions it gives: RX when an arriving character brings the receive FIFO to its trigger
 *    level (any character without FIFOs), cleared by reading below it; TX when the transmit
 *    FIFO falls to its trigger level or below (empties without FIFOs) as the host output
 *    drains, or as a written character leaves at once without FIFOs, cleared by writing it
 *    above the level (Linux's driver relies on these transitions: "RXIS is asserted only when
 *    the RX FIFO transitions from below to above the trigger threshold"); FE/PE/BE when such a
 *    character arrives; OE when one is lost; modem interrupts when an input changes. The
 *    interrupt line is level-triggered and high while RIS & IMSC is not 0.
 *  - Receive timeout (RTIS): ABI 1.x has no timers, so, as the 16550's character timeout, the
 *    "32 bit periods" run out when the host input has nothing more to deliver; in loopback,
 *    after each character. It is set then if the FIFO holds data, and cleared by ICR or by
 *    reading the FIFO empty.
 *  - Overrun: a character that finds the receive FIFO (or the holding register) full is lost,
 *    the FIFO kept; RSR.OE and RIS.OE are set at once, and the next character that enters the
 *    FIFO carries DR.OE (TRM: OE "is cleared to 0 once there is an empty space in the FIFO and
 *    a new character can be written to it"). Host input never overruns: it waits for room.
 *  - RSR's FE/PE/BE are those of the character last read from DR; OE stays until ECR is
 *    written.
 *  - A break from the host (the console's Ctrl-A b) is a NUL with DR.BE. LCR_H.BRK sends a
 *    break only in loopback (the host output is a byte stream). The receiver cuts characters
 *    to WLEN bits; the host output gets the 8 bits written whatever WLEN says (LCR_H powers on
 *    with 5-bit words, and no firmware sets it before Linux's earlycon writes). No parity or
 *    framing errors happen on the host line.
 *  - Enables: the receiver takes characters only while CR.UARTEN and CR.RXE are set (host
 *    input waits meanwhile, nothing is lost). The transmitter sends whatever CR says: no
 *    firmware runs before the kernel, and Linux's earlycon writes DR with CR at its power-on
 *    value (UARTEN clear), as QEMU's PL011 also allows.
 *  - Loopback (CR.LBE): transmitted characters reach the receiver, not the host output;
 *    RTS, DTR, Out1 and Out2 drive CTS, DSR, DCD and RI. Outside loopback no modem input is
 *    connected (they read 0) and CTSEn/RTSEn hold nothing back: the host side has its own
 *    backpressure.
 *  - Changing LCR_H.FEN empties the receive FIFO (as QEMU does; the TRM leaves it open).
 *  - No DMA: DMACR reads back what was written.
 *  - Accesses: registers are 32-bit words; a narrower or wider access at a word's offset
 *    reads the low bytes of the register (Linux's driver uses 16-bit accesses) and writes
 *    them (the other bits as 0, there being no byte strobes); reads inside a word return its
 *    bytes without side effects, writes there are ignored. Reserved offsets read 0.
 *  - Identification: PeriphID 0x00341011 (part 0x011, ARM, revision 3 = r1p5: Linux's
 *    amba-pl011 uses a 32-entry FIFO from revision 3, 16 below) and PrimeCell ID 0xb105f00d.
 *  - Snapshots (pl011-snap.c): every register, the receive FIFO and the host-side input.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pl011.h"

static const uint8_t pl011_id[8] = { 0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

static bool fifo_on(uint16_t lcr_h)
{
	return lcr_h & LCRH_FEN;
}

unsigned pl011_rx_capacity(uint16_t lcr_h)
{
	return fifo_on(lcr_h) ? PL011_FIFO_LEN : 1;
}

unsigned pl011_tx_depth(uint16_t lcr_h)
{
	return fifo_on(lcr_h) ? PL011_FIFO_LEN : 1;
}

/* IFLS's 3-bit selects, 1/8 to 7/8 of the FIFO; the reserved values 5-7 act as 1/2. */
static unsigned fifo_eighths(unsigned sel)
{
	static const uint8_t eighths[5] = { 1, 2, 4, 6, 7 };

	return sel < 5 ? eighths[sel] : 4;
}

static unsigned rx_trigger(const struct pl011 *p)
{
	return fifo_on(p->lcr_h) ? PL011_FIFO_LEN * fifo_eighths((p->ifls >> 3) & 7) / 8 : 1;
}

static unsigned tx_trigger(const struct pl011 *p)
{
	return fifo_on(p->lcr_h) ? PL011_FIFO_LEN * fifo_eighths(p->ifls & 7) / 8 : 0;
}

/* How far the host buffer has filled into the transmit FIFO's slots. */
static unsigned tx_level(const struct pl011 *p)
{
	unsigned depth = pl011_tx_depth(p->lcr_h);
	size_t room = serial_tx_free(&p->io);

	return room >= depth ? 0 : depth - (unsigned)room;
}

void pl011_update_irq(struct pl011 *p)
{
	int level = (p->ris & p->imsc) != 0;

	if (level == p->irq_level)
		return;
	p->irq_level = level;
	(void)p->host->irq_set(p->dev, p->irq, level);
}

static bool rx_enabled(const struct pl011 *p)
{
	return (p->cr & (CR_UARTEN | CR_RXE)) == (CR_UARTEN | CR_RXE);
}

static uint8_t wlen_mask(const struct pl011 *p)
{
	return (uint8_t)(0xff >> (3 - ((p->lcr_h & LCRH_WLEN) >> 5)));
}

static void rx_clear(struct pl011 *p)
{
	p->rx_head = 0;
	p->rx_count = 0;
	memset(p->rx, 0, sizeof p->rx);
}

/* The host input (not connected in loopback, waiting while the receiver is off). */
static unsigned pl011_rx_room(void *model)
{
	const struct pl011 *p = model;

	if (!rx_enabled(p) || (p->cr & CR_LBE))
		return 0;
	return pl011_rx_capacity(p->lcr_h) - p->rx_count;
}

/* A character arrives at the receiver, with SERIAL_* error flags. */
static void pl011_receive(void *model, uint8_t c, uint8_t err)
{
	struct pl011 *p = model;
	uint16_t e = (uint16_t)(c & wlen_mask(p));

	if (p->rx_count == pl011_rx_capacity(p->lcr_h)) {
		p->rsr |= RSR_OE;
		p->ris |= INT_OE;
		p->oe_pending = true;
		pl011_update_irq(p);
		return;
	}
	if (err & SERIAL_BREAK) {
		e = DR_BE; /* a break is a NUL */
		p->ris |= INT_BE;
	}
	if (err & SERIAL_FE) {
		e |= DR_FE;
		p->ris |= INT_FE;
	}
	if (err & SERIAL_PE) {
		e |= DR_PE;
		p->ris |= INT_PE;
	}
	if (p->oe_pending)
		e |= DR_OE;
	p->oe_pending = false;
	p->rx[(p->rx_head + p->rx_count) % PL011_FIFO_LEN] = e;
	if (++p->rx_count == rx_trigger(p))
		p->ris |= INT_RX;
	pl011_update_irq(p);
}

/* Nothing more arrives: the receive timeout runs out. */
static void pl011_rx_quiet(void *model)
{
	struct pl011 *p = model;

	if (p->rx_count)
		p->ris |= INT_RT;
	pl011_update_irq(p);
}

/* The host output took bytes: the transmit FIFO drains, maybe through its trigger level. */
static void pl011_tx_room(void *model)
{
	struct pl011 *p = model;
	unsigned now = tx_level(p), trig = tx_trigger(p);

	if (p->tx_level > trig && now <= trig)
		p->ris |= INT_TX;
	p->tx_level = (uint8_t)now;
	pl011_update_irq(p);
}

static const struct serial_model_ops pl011_serial_ops = {
	.rx_room = pl011_rx_room,
	.receive = pl011_receive,
	.rx_quiet = pl011_rx_quiet,
	.tx_room = pl011_tx_room,
};

/* A character sent in loopback reaches the receiver, if it is on. */
static void loopback(struct pl011 *p, uint8_t c, uint8_t err)
{
	if (!rx_enabled(p))
		return;
	pl011_receive(p, c, err);
	pl011_rx_quiet(p);
}

static uint16_t dr_read(struct pl011 *p, bool pop)
{
	uint16_t e;

	if (!p->rx_count)
		return 0;
	e = p->rx[p->rx_head];
	if (!pop)
		return e;
	p->rx_head = (p->rx_head + 1) % PL011_FIFO_LEN;
	p->rx_count--;
	p->rsr = (uint16_t)((p->rsr & RSR_OE) | ((e >> 8) & RSR_MASK));
	if (p->rx_count < rx_trigger(p))
		p->ris &= (uint16_t)~INT_RX;
	if (!p->rx_count)
		p->ris &= (uint16_t)~INT_RT;
	serial_feed(&p->io); /* room for input the host holds */
	pl011_update_irq(p);
	return e;
}

static void dr_write(struct pl011 *p, uint8_t c)
{
	unsigned before = tx_level(p), after, trig = tx_trigger(p);

	if (p->cr & CR_LBE)
		loopback(p, c, 0); /* the receiver cuts it to WLEN bits */
	else
		serial_tx(&p->io, c);
	after = tx_level(p);
	/* the character entered the FIFO (level before + 1) and left at once, or waits */
	if (after > trig)
		p->ris &= (uint16_t)~INT_TX;
	else if (before + 1 > trig)
		p->ris |= INT_TX;
	p->tx_level = (uint8_t)after;
	pl011_update_irq(p);
}

/* FR's modem inputs for CR @cr: only loopback drives them. */
static uint16_t modem_inputs(uint16_t cr)
{
	uint16_t fr = 0;

	if (cr & CR_LBE) {
		fr |= (cr & CR_RTS) ? FR_CTS : 0;
		fr |= (cr & CR_DTR) ? FR_DSR : 0;
		fr |= (cr & CR_OUT1) ? FR_DCD : 0;
		fr |= (cr & CR_OUT2) ? FR_RI : 0;
	}
	return fr;
}

static void cr_write(struct pl011 *p, uint16_t v)
{
	uint16_t changed = modem_inputs(p->cr) ^ modem_inputs(v);

	p->cr = v & CR_MASK;
	p->ris |= (changed & FR_CTS) ? INT_CTS : 0;
	p->ris |= (changed & FR_DSR) ? INT_DSR : 0;
	p->ris |= (changed & FR_DCD) ? INT_DCD : 0;
	p->ris |= (changed & FR_RI) ? INT_RI : 0;
	serial_feed(&p->io); /* the receiver may take host input now */
	pl011_update_irq(p);
}

static void lcr_h_write(struct pl011 *p, uint16_t v)
{
	uint16_t old = p->lcr_h;

	p->lcr_h = v & LCRH_MASK;
	if ((old ^ p->lcr_h) & LCRH_FEN) {
		rx_clear(p);
		p->oe_pending = false;
		p->ris &= (uint16_t) ~(INT_RX | INT_RT);
		p->tx_level = (uint8_t)tx_level(p);
	}
	if ((p->lcr_h & LCRH_BRK) && !(old & LCRH_BRK) && (p->cr & CR_LBE))
		loopback(p, 0, SERIAL_BREAK);
	serial_feed(&p->io);
	pl011_update_irq(p);
}

static uint16_t fr_read(const struct pl011 *p)
{
	unsigned level = tx_level(p);
	uint16_t fr = modem_inputs(p->cr);

	fr |= serial_tx_empty(&p->io) ? 0 : FR_BUSY;
	fr |= p->rx_count ? 0 : FR_RXFE;
	fr |= p->rx_count == pl011_rx_capacity(p->lcr_h) ? FR_RXFF : 0;
	fr |= level == pl011_tx_depth(p->lcr_h) ? FR_TXFF : 0;
	fr |= level == 0 ? FR_TXFE : 0;
	return fr;
}

/* The register at word offset @off; @side_effects false for a read inside the word. */
static uint32_t reg_read(struct pl011 *p, unsigned off, bool side_effects)
{
	switch (off) {
	case PL011_DR: return dr_read(p, side_effects);
	case PL011_RSR: return p->rsr;
	case PL011_FR: return fr_read(p);
	case PL011_ILPR: return p->ilpr;
	case PL011_IBRD: return p->ibrd;
	case PL011_FBRD: return p->fbrd;
	case PL011_LCR_H: return p->lcr_h;
	case PL011_CR: return p->cr;
	case PL011_IFLS: return p->ifls;
	case PL011_IMSC: return p->imsc;
	case PL011_RIS: return p->ris;
	case PL011_MIS: return p->ris & p->imsc;
	case PL011_DMACR: return p->dmacr;
	default:
		if (off >= PL011_PERIPHID0)
			return pl011_id[(off - PL011_PERIPHID0) / 4];
		return 0; /* ICR (write-only), reserved offsets */
	}
}

static void reg_write(struct pl011 *p, unsigned off, uint32_t v)
{
	switch (off) {
	case PL011_DR: dr_write(p, (uint8_t)v); break;
	case PL011_RSR: p->rsr = 0; break; /* UARTECR: any write clears the errors */
	case PL011_ILPR: p->ilpr = v & ILPR_MASK; break;
	case PL011_IBRD: p->ibrd = v & IBRD_MASK; break;
	case PL011_FBRD: p->fbrd = v & FBRD_MASK; break;
	case PL011_LCR_H: lcr_h_write(p, (uint16_t)v); break;
	case PL011_CR: cr_write(p, (uint16_t)v); break;
	case PL011_IFLS: p->ifls = v & IFLS_MASK; break;
	case PL011_IMSC:
		p->imsc = v & INT_MASK;
		pl011_update_irq(p);
		break;
	case PL011_ICR:
		p->ris &= (uint16_t) ~(v & INT_MASK);
		pl011_update_irq(p);
		break;
	case PL011_DMACR: p->dmacr = v & DMACR_MASK; break;
	default: break; /* FR, RIS, MIS, IDs: read-only; reserved offsets */
	}
}

static uint64_t pl011_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pl011 *p = opaque;
	unsigned word = (unsigned)offset & ~3u, shift = ((unsigned)offset & 3) * 8;
	uint64_t v;

	if (offset >= PL011_REGION)
		return 0;
	v = reg_read(p, word, shift == 0) >> shift;
	return size >= 8 ? v : v & ((1ull << (size * 8)) - 1);
}

static void pl011_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)size;
	if (offset < PL011_REGION && !(offset & 3))
		reg_write(opaque, (unsigned)offset, (uint32_t)value);
}

static const struct smol_io_ops pl011_mmio_ops = {
	.read = pl011_mmio_read,
	.write = pl011_mmio_write,
};

static void pl011_power_on(struct pl011 *p)
{
	p->rsr = 0;
	p->ilpr = 0;
	p->ibrd = 0;
	p->fbrd = 0;
	p->lcr_h = 0;
	p->cr = PL011_CR_RESET;
	p->ifls = PL011_IFLS_RESET;
	p->imsc = 0;
	p->ris = 0;
	p->dmacr = 0;
	p->oe_pending = false;
	rx_clear(p);
	p->tx_level = (uint8_t)tx_level(p);
}

static void pl011_reset(void *state)
{
	struct pl011 *p = state;

	pl011_power_on(p);
	serial_feed(&p->io);
	pl011_update_irq(p);
}

static void pl011_destroy(void *state)
{
	struct pl011 *p = state;

	serial_close(&p->io);
	free(p);
}

/* Reads and checks every key before failing: all are known, all errors reported. */
static int pl011_config(struct pl011 *p)
{
	const struct smol_host *h = p->host;
	uint64_t base = SMOL_ADDR_AUTO, irq = SMOL_IRQ_AUTO;
	bool bad_base = h->cfg_u64(p->dev, "base", SMOL_ADDR_AUTO, &base) != 0;
	bool bad_irq = h->cfg_u64(p->dev, "irq", SMOL_IRQ_AUTO, &irq) != 0;
	bool bad = serial_config(&p->io) != 0;

	if (!bad_base && base != SMOL_ADDR_AUTO &&
	    ((base & (PL011_REGION - 1)) || base > UINT64_MAX - 2 * PL011_REGION)) {
		h->cfg_error(p->dev, "base",
		             "0x%llx is not a 4 KiB-aligned address with 4 KiB above it "
		             "(leave it out to have one chosen)",
		             (unsigned long long)base);
		bad_base = true;
	}
	if (!bad_irq && irq > SMOL_IRQ_AUTO) {
		h->cfg_error(p->dev, "irq", "%llu is not an interrupt line",
		             (unsigned long long)irq);
		bad_irq = true;
	}
	p->base = base;
	p->irq = (uint32_t)irq;
	return bad || bad_base || bad_irq ? -EINVAL : 0;
}

static int pl011_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                        void **state)
{
	struct pl011 *p;
	int ret;

	p = calloc(1, sizeof(*p));
	if (!p) {
		host->log(dev, SMOL_LOG_ERROR, "cannot allocate the device state");
		return -ENOMEM;
	}
	p->host = host;
	p->dev = dev;
	p->io.host = host;
	p->io.dev = dev;
	p->io.name = "pl011";
	p->io.ops = &pl011_serial_ops;
	p->io.model = p;
	p->io.tx_chunk = PL011_FIFO_LEN;
	serial_init(&p->io);
	*state = p;

	if (pl011_config(p))
		return -EINVAL;
	pl011_power_on(p);
	ret = host->map_mmio(dev, p->base, PL011_REGION, &pl011_mmio_ops, p, &p->base);
	if (ret) {
		if (ret == -EEXIST) /* the core reports overlaps itself */
			return ret;
		host->cfg_error(dev, "base", "cannot map 4 KiB of MMIO at 0x%llx: %s",
		                (unsigned long long)p->base, strerror(-ret));
		return -EINVAL;
	}
	ret = host->irq_claim(dev, p->irq);
	if (ret < 0)
		return -EINVAL; /* the core said why (no such line, reserved, taken) */
	if (p->irq == SMOL_IRQ_AUTO)
		p->irq = (uint32_t)ret; /* the line the core chose */
	if (flags & SMOL_CREATE_CHECK_ONLY)
		return serial_check(&p->io);
	/* Opens and watches the input but reads nothing from it: on a restore, load() runs before
	 * the event loop first polls, so input already waiting reaches the restored receiver. */
	return serial_open(&p->io);
}

/*
 * For ACPI the PL011 is ARMH0011 (the SBSA generic UART ID, which Linux's amba-pl011 binds as
 * "sbsa-uart"), with its region and its level-triggered line. For a device tree (ABI 1.5) it is
 * "arm,pl011" on the AMBA bus ("arm,primecell": Linux matches the PrimeCell ID registers), with
 * the two clocks the binding names (uartclk, from which the baud rate divisors count, and
 * apb_pclk) and the console mark for /chosen's stdout-path.
 */
static int pl011_describe(void *state, struct smol_describe *d)
{
	struct pl011 *p = state;
	const struct smol_host *h = p->host;
	int r = h->desc_device(d, "ARMH0011");

	if (r == 0)
		r = h->desc_mmio(d, p->base, PL011_REGION);
	if (r == 0)
		r = h->desc_irq(d, p->irq, SMOL_IRQ_LEVEL);
	if (r || h->abi_minor < 5)
		return r;
	r = h->desc_compatible(d, "arm,pl011");
	if (r == 0)
		r = h->desc_compatible(d, "arm,primecell");
	if (r == 0)
		r = h->desc_clock(d, "uartclk", PL011_CLOCK_HZ);
	if (r == 0)
		r = h->desc_clock(d, "apb_pclk", PL011_CLOCK_HZ);
	if (r == 0)
		r = h->desc_console(d);
	return r;
}

static const struct smol_device_ops pl011_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = pl011_create,
	.destroy = pl011_destroy,
	.reset = pl011_reset,
	.save = pl011_save,
	.load = pl011_load,
	.describe = pl011_describe,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "pl011", "ARM PrimeCell PL011 UART (r1p5) on 4 KiB of MMIO",
            &pl011_ops);
