/*
 * serial: the host side of a UART, shared by the UART models (uart-16550, pl011) and linked
 * statically into each (not part of the plugin ABI, like devices/virtio/). It owns the
 * `output` and `input` keys: the output (stdout, a file, a FIFO, a terminal or none) behind a
 * bounded buffer that never blocks the guest (serial-out.c), and the input (stdin, a file, a
 * FIFO, a terminal or none) read on the event loop into a small buffer that refills the
 * model's receiver as the guest drains it, with the terminal's raw mode and escape keys
 * (serial-in.c).
 *
 * A model embeds a struct serial, fills its first fields (host, dev, name, ops, model,
 * tx_chunk) and calls serial_init() before anything else. The host side calls back into the
 * model through struct serial_model_ops.
 */
#ifndef SMOLVM_SERIAL_H
#define SMOLVM_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include <smolvm/sdk.h>

#define SERIAL_INBUF_LEN 256 /* host-side input waiting for room in the receiver */
#define SERIAL_OUTBUF_LEN 4096 /* host-side output waiting for the output to take it */

/* Per-character error flags of received characters (the 16550's LSR bit positions, which its
 * snapshot format stores). The host side only ever makes SERIAL_BREAK (a NUL with it). */
enum { SERIAL_PE = 0x04, SERIAL_FE = 0x08, SERIAL_BREAK = 0x10 };
#define SERIAL_CHAR_ERRORS (SERIAL_PE | SERIAL_FE | SERIAL_BREAK)

/* What the host side asks of the register model; called under the device's lock. */
struct serial_model_ops {
	/* How many characters the receiver takes now (0 while it is disconnected). */
	unsigned (*rx_room)(void *model);
	/* A character arrives at the receiver with its SERIAL_* error flags. */
	void (*receive)(void *model, uint8_t c, uint8_t err);
	/* The host input has nothing more to deliver: the character timeout runs out. */
	void (*rx_quiet)(void *model);
	/* The host output took bytes that waited: the transmitter may have room again. */
	void (*tx_room)(void *model);
};

struct serial {
	/* Set by the model before serial_init(). */
	const struct smol_host *host;
	struct smol_dev *dev;
	const char *name; /* the plugin's name, for messages ("uart-16550") */
	const struct serial_model_ops *ops;
	void *model;
	size_t tx_chunk; /* room the transmitter needs to look ready (a FIFO's worth) */

	/* Configuration (serial_config()). */
	const char *output, *input;
	/* Input (serial-in.c). */
	int in_fd;
	bool in_owned, in_stdin, in_tty, in_watched, in_eof;
	bool drop_warned;
	bool esc; /* Ctrl-A seen on a terminal */
	struct termios tty_saved;
	uint16_t inbuf[SERIAL_INBUF_LEN]; /* character | SERIAL_* flags << 8 */
	unsigned in_head, in_count;
	/* Output (serial-out.c): a ring of SERIAL_OUTBUF_LEN bytes for outputs that can be full. */
	int out_fd;
	int out_kind;
	bool out_owned, out_watched, out_gone;
	uint8_t *outbuf;
	size_t out_head, out_count;
	uint64_t out_dropped;
};

/* No files open yet; call once the first fields are set. */
void serial_init(struct serial *s);
/* Reads and checks `output` and `input` (reporting errors with cfg_error). */
int serial_config(struct serial *s);
/* `smolvm check`: the output, if it exists, must be usable; nothing is opened for good. */
int serial_check(struct serial *s);
/* Opens the output and the input and watches the input (reads nothing yet). */
int serial_open(struct serial *s);
/* Gives waiting output a last bounded chance, restores the terminal, closes what it opened. */
void serial_close(struct serial *s);

/* Transmits @c: written now, or buffered, or dropped (counted) when the buffer is full. */
void serial_tx(struct serial *s, uint8_t c);
/* Free bytes in the output buffer (SERIAL_OUTBUF_LEN when nothing waits). */
size_t serial_tx_free(const struct serial *s);
/* At least tx_chunk bytes of room: the transmitter looks ready. */
bool serial_tx_ready(const struct serial *s);
/* Nothing waits for the output. */
bool serial_tx_empty(const struct serial *s);

/* Moves what the input buffer holds into the receiver while it has room, and watches a
 * stopped input again; call when the receiver may have room (after a read, a mode change). */
void serial_feed(struct serial *s);
/* After a restore (the input buffer came from the snapshot): stops a pipe whose buffer is
 * full, watches the output if @tx_blocked (the transmitter was saved busy), feeds. */
void serial_restored(struct serial *s, bool tx_blocked);

#endif
