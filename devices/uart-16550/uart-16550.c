/*
 * uart-16550: a 16550A UART (NS PC16550D datasheet) on 8 I/O ports: the register model and
 * the plugin's ops. Host-side output, input and terminal handling are devices/serial's.
 *
 * Modelling choices:
 *  - Transmission is instantaneous while the host output takes the bytes: a THR write goes
 *    straight to the output (or, in loopback, to the receiver) and raises a THR-empty
 *    interrupt when IER.ETBEI is set. When the output is full (a reader that does not read),
 *    bytes wait in a bounded host buffer (devices/serial) and the transmitter looks busy: THRE
 *    clears while less than a FIFO's worth of room is left, TEMT while anything waits, and
 *    THR empty is raised when room comes back. FCR's TX reset has nothing to clear.
 *  - Overrun: in FIFO mode a character that finds the 16-byte FIFO full is lost (it would
 *    stay in the shift register and be overwritten) and the FIFO is kept; in 16450 mode it
 *    replaces the unread RBR character ("thereby destroying the previous character").
 *    Both set LSR.OE.
 *  - Character timeout (FIFO mode): ABI 1.0 has no timers, so the "4 character times" run
 *    out when the host input has nothing more to deliver (uart_rx_quiet()); any character
 *    that arrives restarts it. Loopback characters below the trigger level are thus only
 *    seen by polling LSR.DR.
 *  - Byte-wide registers: an access wider than a byte handles the register at its offset
 *    through the low byte; the upper bytes read as 0 and are ignored on writes.
 *  - Power-on divisor: DLL=1, DLM=0 (115200 baud from a 1.8432 MHz clock); the datasheet
 *    leaves the divisor latch undefined after reset. SCR resets to 0.
 *  - No modem lines are connected outside loopback: CTS, DSR, RI and DCD read as 0.
 *  - Snapshots (uart-snap.c): every register, the receiver FIFO and the host-side input
 *    buffer are state; the output and input files are the restored configuration's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "uart.h"

#define UART_NPORTS 8

enum { REG_RBR = 0, REG_IER, REG_IIR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };

enum {
	IIR_MSI = 0x00,
	IIR_NONE = 0x01,
	IIR_THRI = 0x02,
	IIR_RDI = 0x04,
	IIR_RLSI = 0x06,
	IIR_CTI = 0x0c,
	IIR_FIFO = 0xc0
};
static bool fifo_on(const struct uart *u)
{
	return u->fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct uart *u)
{
	return fifo_on(u) ? UART_FIFO_LEN : 1; /* 16450 mode: the RBR alone */
}

static unsigned rx_trigger(const struct uart *u)
{
	static const uint8_t level[4] = { 1, 4, 8, 14 };

	return fifo_on(u) ? level[u->fcr >> 6] : 1;
}

/* The highest-priority pending interrupt, as IIR reads. */
static uint8_t uart_iir(const struct uart *u)
{
	uint8_t id = IIR_NONE;

	if ((u->ier & IER_ELSI) && (u->lsr_err & LSR_ERRORS))
		id = IIR_RLSI;
	else if ((u->ier & IER_ERBFI) && u->rx_count >= rx_trigger(u))
		id = IIR_RDI;
	else if ((u->ier & IER_ERBFI) && fifo_on(u) && u->rx_count && u->rx_quiet)
		id = IIR_CTI;
	else if ((u->ier & IER_ETBEI) && u->thri)
		id = IIR_THRI;
	else if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
		id = IIR_MSI;
	return id | (fifo_on(u) ? IIR_FIFO : 0);
}

/*
 * Drives the IRQ line. On PCs the 16550's INTR pin reaches the interrupt controller through
 * a buffer enabled by the OUT2 output (MCR bit 3): with OUT2 clear the line stays low
 * whatever is pending, which is why drivers (Linux's 8250 among them) set OUT2. In loopback
 * the datasheet forces the modem-control outputs inactive, OUT2 included, so the line is
 * gated off there too; interrupts stay visible in IIR.
 */
static void uart_update_irq(struct uart *u)
{
	int level = !(uart_iir(u) & IIR_NONE) && (u->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;

	if (level == u->irq_level)
		return;
	u->irq_level = level;
	(void)u->host->irq_set(u->dev, u->irq, level);
}

/* The error flags of the character at the top of the FIFO go to LSR when it gets there. */
static void rx_load_top_errors(struct uart *u)
{
	if (!u->rx_count)
		return;
	u->lsr_err |= u->rx_err[u->rx_head];
	u->rx_err[u->rx_head] = 0;
}

static void rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
	memset(u->rx_err, 0, sizeof u->rx_err);
}

static unsigned uart_rx_room(void *model)
{
	const struct uart *u = model;

	if (u->mcr & MCR_LOOP) /* the serial input is disconnected in loopback */
		return 0;
	return rx_capacity(u) - u->rx_count;
}

static void uart_rx_quiet(void *model)
{
	struct uart *u = model;

	u->rx_quiet = true;
	uart_update_irq(u);
}

/* A character arrives at the receiver, with its LSR_PE/FE/BI flags. */
static void uart_receive(void *model, uint8_t c, uint8_t err)
{
	struct uart *u = model;

	err &= LSR_CHAR_ERRORS;
	u->rx_quiet = false;
	if (u->rx_count == rx_capacity(u)) {
		u->lsr_err |= LSR_OE;
		if (!fifo_on(u)) {
			u->rx[u->rx_head] = c;
			u->lsr_err |= err;
		}
	} else {
		unsigned i = (u->rx_head + u->rx_count) % UART_FIFO_LEN;

		u->rx[i] = c;
		u->rx_err[i] = err;
		if (++u->rx_count == 1)
			rx_load_top_errors(u);
	}
	uart_update_irq(u);
}

static uint8_t rbr_read(struct uart *u)
{
	if (!u->rx_count)
		return u->rbr;
	u->rbr = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_FIFO_LEN;
	u->rx_count--;
	rx_load_top_errors(u);
	serial_feed(&u->io); /* room for input the host holds */
	uart_update_irq(u);
	return u->rbr;
}

static void thr_write(struct uart *u, uint8_t c)
{
	/* The write clears a THR-empty interrupt; the instant transmission raises a new one. */
	u->thri = false;
	uart_update_irq(u);
	if (u->mcr & MCR_LOOP)
		uart_receive(u, c, 0);
	else
		serial_tx(&u->io, c);
	u->tx_blocked = !serial_tx_ready(&u->io);
	u->thri = !u->tx_blocked;
	uart_update_irq(u);
}

/* The host output took what waited: THR is empty again. */
static void uart_tx_room(void *model)
{
	struct uart *u = model;

	if (!u->tx_blocked || !serial_tx_ready(&u->io))
		return;
	u->tx_blocked = false;
	u->thri = true;
	uart_update_irq(u);
}

static void ier_write(struct uart *u, uint8_t v)
{
	/* Enabling ETBEI while THR is empty raises THR empty, as on a 16550. */
	if ((v & IER_ETBEI) && !(u->ier & IER_ETBEI) && serial_tx_ready(&u->io))
		u->thri = true;
	u->ier = v & IER_MASK;
	uart_update_irq(u);
}

static void fcr_write(struct uart *u, uint8_t v)
{
	/* Switching between 16450 and FIFO mode empties the FIFOs. */
	if ((v ^ u->fcr) & FCR_ENABLE)
		rx_clear(u);
	if (v & FCR_ENABLE) {
		if (v & FCR_RX_RESET)
			rx_clear(u);
		u->fcr = v & (FCR_ENABLE | FCR_DMA | FCR_TRIGGER);
	} else {
		u->fcr &= ~FCR_ENABLE; /* "FCR0 must be 1 when other FCR bits are written" */
	}
	serial_feed(&u->io);
	uart_update_irq(u);
}

/* MSR's line bits (CTS, DSR, RI, DCD) with MCR @mcr: only loopback drives them. */
uint8_t uart_msr_lines(uint8_t mcr)
{
	uint8_t now = 0;

	if (mcr & MCR_LOOP) {
		now |= (mcr & MCR_RTS) ? MSR_CTS : 0;
		now |= (mcr & MCR_DTR) ? MSR_DSR : 0;
		now |= (mcr & MCR_OUT1) ? MSR_RI : 0;
		now |= (mcr & MCR_OUT2) ? MSR_DCD : 0;
	}
	return now;
}

/* Recomputes MSR's line bits from their sources and records what changed in the deltas. */
static void msr_update(struct uart *u)
{
	uint8_t now = uart_msr_lines(u->mcr), changed;

	changed = (u->msr ^ now) & 0xf0;
	u->msr = now | (u->msr & MSR_DELTAS) | ((changed >> 4) & (MSR_DCTS | MSR_DDSR | MSR_DDCD));
	if ((changed & MSR_RI) && !(now & MSR_RI)) /* trailing edge of RI */
		u->msr |= MSR_TERI;
}

static void mcr_write(struct uart *u, uint8_t v)
{
	u->mcr = v & MCR_MASK;
	msr_update(u);
	serial_feed(&u->io); /* leaving loopback reconnects the input */
	uart_update_irq(u);
}

static uint8_t uart_read(struct uart *u, unsigned reg)
{
	uint8_t v;

	switch (reg) {
	case REG_RBR: return (u->lcr & LCR_DLAB) ? u->dll : rbr_read(u);
	case REG_IER: return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case REG_IIR:
		v = uart_iir(u);
		if ((v & 0x0f) == IIR_THRI) {
			u->thri = false;
			uart_update_irq(u);
		}
		return v;
	case REG_LCR: return u->lcr;
	case REG_MCR: return u->mcr;
	case REG_LSR:
		v = u->lsr_err | (u->rx_count ? LSR_DR : 0);
		v |= serial_tx_ready(&u->io) ? LSR_THRE : 0;
		v |= serial_tx_ready(&u->io) && serial_tx_empty(&u->io) ? LSR_TEMT : 0;
		u->lsr_err = 0;
		if (fifo_on(u)) {
			bool err = v & LSR_CHAR_ERRORS;

			for (unsigned i = 0; i < u->rx_count; i++)
				err |= u->rx_err[(u->rx_head + i) % UART_FIFO_LEN] != 0;
			v |= err ? LSR_RXFERR : 0;
		}
		uart_update_irq(u);
		return v;
	case REG_MSR:
		v = u->msr;
		u->msr &= ~MSR_DELTAS;
		uart_update_irq(u);
		return v;
	default: return u->scr;
	}
}

static void uart_write(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case REG_RBR:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else
			thr_write(u, v);
		break;
	case REG_IER:
		if (u->lcr & LCR_DLAB)
			u->dlm = v;
		else
			ier_write(u, v);
		break;
	case REG_IIR: fcr_write(u, v); break;
	case REG_LCR: u->lcr = v; break;
	case REG_MCR: mcr_write(u, v); break;
	case REG_SCR: u->scr = v; break;
	default: /* LSR and MSR: writes are for factory testing only, ignored */ break;
	}
}

static uint64_t uart_pio_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)size; /* byte-wide: the register at @offset in the low byte */
	if (offset >= UART_NPORTS)
		return UINT64_MAX;
	return uart_read(opaque, (unsigned)offset);
}

static void uart_pio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)size;
	if (offset < UART_NPORTS)
		uart_write(opaque, (unsigned)offset, (uint8_t)value);
}

static const struct smol_io_ops uart_pio_ops = {
	.read = uart_pio_read,
	.write = uart_pio_write,
};

static const struct serial_model_ops uart_serial_ops = {
	.rx_room = uart_rx_room,
	.receive = uart_receive,
	.rx_quiet = uart_rx_quiet,
	.tx_room = uart_tx_room,
};

static void uart_power_on(struct uart *u)
{
	u->ier = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->msr = 0; /* no modem inputs, not in loopback */
	u->scr = 0;
	u->fcr = 0;
	u->lsr_err = 0;
	u->dll = 1;
	u->dlm = 0;
	u->thri = false;
	u->tx_blocked = false;
	u->rx_quiet = false;
	rx_clear(u);
}

static void uart_reset(void *state)
{
	struct uart *u = state;

	uart_power_on(u);
	serial_feed(&u->io);
	uart_update_irq(u);
}

static void uart_destroy(void *state)
{
	struct uart *u = state;

	serial_close(&u->io);
	free(u);
}

static int uart_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                       void **state)
{
	struct uart *u;
	uint64_t port, irq;
	int ret;

	u = calloc(1, sizeof(*u));
	if (!u) {
		host->log(dev, SMOL_LOG_ERROR, "cannot allocate the device state");
		return -ENOMEM;
	}
	u->host = host;
	u->dev = dev;
	u->io.host = host;
	u->io.dev = dev;
	u->io.name = "uart-16550";
	u->io.ops = &uart_serial_ops;
	u->io.model = u;
	u->io.tx_chunk = UART_FIFO_LEN;
	serial_init(&u->io);
	*state = u;

	/* Read and check every key before failing: all are known, all errors reported. */
	bool bad = host->cfg_u64(dev, "port", 0x3f8, &port) != 0;

	bad |= host->cfg_u64(dev, "irq", 4, &irq) != 0;
	bad |= serial_config(&u->io) != 0;
	if (port > 0x10000 - UART_NPORTS) {
		host->cfg_error(dev, "port",
		                "0x%llx is out of range: the 8 ports must end by 0xffff",
		                (unsigned long long)port);
		bad = true;
	}
	if (irq >= SMOL_IRQ_AUTO) { /* (SMOL_IRQ_AUTO would ask the core to pick one) */
		host->cfg_error(dev, "irq", "%llu is not an interrupt line",
		                (unsigned long long)irq);
		bad = true;
	}
	if (bad)
		return -EINVAL;
	u->irq = (uint32_t)irq;
	u->port = (uint16_t)port;
	uart_power_on(u);

	ret = host->map_pio(dev, (uint16_t)port, UART_NPORTS, &uart_pio_ops, u);
	if (ret) {
		if (ret == -EEXIST) /* the core reports overlaps itself */
			return ret;
		host->cfg_error(dev, "port", "cannot map ports 0x%llx-0x%llx: %s",
		                (unsigned long long)port,
		                (unsigned long long)port + UART_NPORTS - 1, strerror(-ret));
		return -EINVAL;
	}
	ret = host->irq_claim(dev, u->irq);
	if (ret)
		return -EINVAL; /* the core said why (no such line, reserved, taken) */
	if (flags & SMOL_CREATE_CHECK_ONLY)
		return serial_check(&u->io);
	/* Opens and watches the input but reads nothing from it: on a restore, load() runs before
	 * the event loop first polls, so input already waiting reaches the restored receiver. */
	return serial_open(&u->io);
}

/* A PC COM port to ACPI: PNP0501 (16550A-compatible) with its ports and its ISA-style,
 * edge-triggered interrupt line. */
static int uart_describe(void *state, struct smol_describe *d)
{
	struct uart *u = state;
	const struct smol_host *h = u->host;
	int r = h->desc_device(d, "PNP0501");
	if (r == 0)
		r = h->desc_io(d, u->port, UART_NPORTS);
	if (r == 0)
		r = h->desc_irq(d, u->irq, SMOL_IRQ_EDGE);
	return r;
}

static const struct smol_device_ops uart_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = uart_create,
	.destroy = uart_destroy,
	.reset = uart_reset,
	.save = uart_save,
	.load = uart_load,
	.describe = uart_describe,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "uart-16550", "16550A UART on 8 I/O ports (PC COM port)", &uart_ops);
