/*
 * pl011: internal header shared by the register model (pl011.c) and its snapshots
 * (pl011-snap.c). The host side (output, input, terminal) is devices/serial. Not part of the
 * SDK. Register names and bits follow the ARM PrimeCell UART (PL011) TRM, r1p5.
 */
#ifndef SMOLVM_PL011_H
#define SMOLVM_PL011_H

#include <stdbool.h>
#include <stdint.h>

#include <smolvm/sdk.h>

#include "serial.h"

#define PL011_FIFO_LEN 32 /* r1p5: 32-entry transmit and receive FIFOs */
#define PL011_REGION 0x1000 /* a PrimeCell's 4 KiB */
/** The rate the device tree gives uartclk and apb_pclk (24 MHz, as on QEMU's virt): the baud rate
 * divisors the driver writes count from it; the model itself sends at the host's pace. */
#define PL011_CLOCK_HZ 24000000u

/* Register offsets. */
enum {
	PL011_DR = 0x000,
	PL011_RSR = 0x004, /* UARTRSR on reads, UARTECR on writes */
	PL011_FR = 0x018,
	PL011_ILPR = 0x020,
	PL011_IBRD = 0x024,
	PL011_FBRD = 0x028,
	PL011_LCR_H = 0x02c,
	PL011_CR = 0x030,
	PL011_IFLS = 0x034,
	PL011_IMSC = 0x038,
	PL011_RIS = 0x03c,
	PL011_MIS = 0x040,
	PL011_ICR = 0x044,
	PL011_DMACR = 0x048,
	PL011_PERIPHID0 = 0xfe0, /* PeriphID0-3 at 0xfe0-0xfec, PCellID0-3 at 0xff0-0xffc */
};

/* UARTDR on reads: the character and its error bits (a receive FIFO entry). */
enum { DR_FE = 1u << 8, DR_PE = 1u << 9, DR_BE = 1u << 10, DR_OE = 1u << 11 };
#define DR_ERRORS (DR_FE | DR_PE | DR_BE | DR_OE)
/* UARTRSR: the same bits, 8 places down. */
enum { RSR_FE = 0x1, RSR_PE = 0x2, RSR_BE = 0x4, RSR_OE = 0x8, RSR_MASK = 0xf };
/* UARTFR. */
enum {
	FR_CTS = 1u << 0,
	FR_DSR = 1u << 1,
	FR_DCD = 1u << 2,
	FR_BUSY = 1u << 3,
	FR_RXFE = 1u << 4,
	FR_TXFF = 1u << 5,
	FR_RXFF = 1u << 6,
	FR_TXFE = 1u << 7,
	FR_RI = 1u << 8,
};
/* UARTLCR_H. */
enum {
	LCRH_BRK = 1u << 0,
	LCRH_PEN = 1u << 1,
	LCRH_EPS = 1u << 2,
	LCRH_STP2 = 1u << 3,
	LCRH_FEN = 1u << 4,
	LCRH_WLEN = 3u << 5,
	LCRH_SPS = 1u << 7,
	LCRH_MASK = 0xff,
};
/* UARTCR (bits 3-6 reserved). */
enum {
	CR_UARTEN = 1u << 0,
	CR_SIREN = 1u << 1,
	CR_SIRLP = 1u << 2,
	CR_LBE = 1u << 7,
	CR_TXE = 1u << 8,
	CR_RXE = 1u << 9,
	CR_DTR = 1u << 10,
	CR_RTS = 1u << 11,
	CR_OUT1 = 1u << 12,
	CR_OUT2 = 1u << 13,
	CR_RTSEN = 1u << 14,
	CR_CTSEN = 1u << 15,
	CR_MASK = 0xff87,
};
/* Interrupt bits: UARTIMSC, UARTRIS, UARTMIS, UARTICR. */
enum {
	INT_RI = 1u << 0,
	INT_CTS = 1u << 1,
	INT_DCD = 1u << 2,
	INT_DSR = 1u << 3,
	INT_RX = 1u << 4,
	INT_TX = 1u << 5,
	INT_RT = 1u << 6,
	INT_FE = 1u << 7,
	INT_PE = 1u << 8,
	INT_BE = 1u << 9,
	INT_OE = 1u << 10,
	INT_MASK = 0x7ff,
};
enum { ILPR_MASK = 0xff, IBRD_MASK = 0xffff, FBRD_MASK = 0x3f, IFLS_MASK = 0x3f, DMACR_MASK = 0x7 };

/* Power-on values (TRM): CR has TXE and RXE set, IFLS both trigger levels at 1/2. */
#define PL011_CR_RESET 0x0300
#define PL011_IFLS_RESET 0x12

struct pl011 {
	const struct smol_host *host;
	struct smol_dev *dev;
	uint64_t base;
	uint32_t irq;
	int irq_level; /* the level last driven on the interrupt line */

	/* Registers; FR, MIS and the modem inputs are computed when read. */
	uint16_t rsr, ilpr, ibrd, fbrd, lcr_h, cr, ifls, imsc, ris, dmacr;
	bool oe_pending; /* a character was lost to a full FIFO: the next one in carries OE */
	uint8_t tx_level; /* the transmit FIFO's level after the last event (pl011_tx_level) */
	uint16_t rx[PL011_FIFO_LEN]; /* character | DR_FE/PE/BE/OE */
	unsigned rx_head, rx_count;

	struct serial io; /* the host side (devices/serial) */
};

/* Register model (pl011.c). */
unsigned pl011_rx_capacity(uint16_t lcr_h);
unsigned pl011_tx_depth(uint16_t lcr_h);
void pl011_update_irq(struct pl011 *p);

/* Snapshots (pl011-snap.c): the state, version 1, is described there. */
int pl011_save(void *state, struct smol_snap_writer *w);
int pl011_load(void *state, struct smol_snap_reader *r);

#endif
