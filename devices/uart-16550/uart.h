/*
 * uart-16550: internal header shared by the register model (uart-16550.c) and its snapshots
 * (uart-snap.c). The host side (output, input, terminal) is devices/serial. Not part of the SDK.
 */
#ifndef SMOLVM_UART_16550_H
#define SMOLVM_UART_16550_H

#include <stdbool.h>
#include <stdint.h>

#include <smolvm/sdk.h>

#include "serial.h"

#define UART_FIFO_LEN 16 /* the 16550's receiver FIFO */
#define UART_INBUF_LEN SERIAL_INBUF_LEN /* host-side input waiting for the receiver */

/* Line Status Register bits (the receive error bits double as per-character flags). */
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_PE 0x04
#define LSR_FE 0x08
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_RXFERR 0x80
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)
#define LSR_CHAR_ERRORS (LSR_PE | LSR_FE | LSR_BI)
/* The host side's per-character flags are LSR's: the snapshot stores them as they are. */
_Static_assert(SERIAL_PE == LSR_PE && SERIAL_FE == LSR_FE && SERIAL_BREAK == LSR_BI,
               "serial error flags are the 16550's LSR bits");

/* IER: received data (and character timeout), THR empty, line status, modem status. */
enum { IER_ERBFI = 0x01, IER_ETBEI = 0x02, IER_ELSI = 0x04, IER_EDSSI = 0x08, IER_MASK = 0x0f };
/* FCR: the bits kept are ENABLE, DMA and TRIGGER (RX/TX reset act and are not kept). */
enum { FCR_ENABLE = 0x01, FCR_RX_RESET = 0x02, FCR_DMA = 0x08, FCR_TRIGGER = 0xc0 };
enum { LCR_DLAB = 0x80 };
enum {
	MCR_DTR = 0x01,
	MCR_RTS = 0x02,
	MCR_OUT1 = 0x04,
	MCR_OUT2 = 0x08,
	MCR_LOOP = 0x10,
	MCR_MASK = 0x1f
};
enum {
	MSR_DCTS = 0x01,
	MSR_DDSR = 0x02,
	MSR_TERI = 0x04,
	MSR_DDCD = 0x08,
	MSR_DELTAS = 0x0f,
	MSR_CTS = 0x10,
	MSR_DSR = 0x20,
	MSR_RI = 0x40,
	MSR_DCD = 0x80
};

struct uart {
	const struct smol_host *host;
	struct smol_dev *dev;
	uint16_t port; /* the first of the 8 ports */
	uint32_t irq;
	int irq_level; /* the level last driven on the IRQ line */

	/* Registers. LSR's DR/THRE/TEMT/bit 7 and IIR are computed when read. */
	uint8_t ier, lcr, mcr, msr, scr, dll, dlm;
	uint8_t fcr; /* FIFO enable, DMA mode and trigger bits as last programmed */
	uint8_t lsr_err; /* OE, PE, FE, BI: sticky until LSR is read */
	uint8_t rbr; /* the last character read (what an empty RBR reads as) */
	bool thri; /* THR-empty interrupt pending */
	bool rx_quiet; /* no character arrives any more: the character timeout has run out */
	uint8_t rx[UART_FIFO_LEN], rx_err[UART_FIFO_LEN];
	unsigned rx_head, rx_count;

	bool tx_blocked; /* THR was written while the host buffer left THRE clear */

	struct serial io; /* the host side (devices/serial) */
};

/* Register model (uart-16550.c). */
uint8_t uart_msr_lines(uint8_t mcr);

/* Snapshots (uart-snap.c): the state, version 1, is described there. */
int uart_save(void *state, struct smol_snap_writer *w);
int uart_load(void *state, struct smol_snap_reader *r);

#endif
