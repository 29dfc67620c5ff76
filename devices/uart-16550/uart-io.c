/*
 * uart-16550: the host side of the serial line's input (the output is in uart-out.c): stdin,
 * a file, a FIFO or nothing, read on the core's event loop into a small host-side buffer that
 * refills the receiver as the guest drains it.
 *
 * A terminal input is put in raw mode (output processing kept, so the core's own messages
 * keep their line ends) and restored on destroy. On a terminal, Ctrl-A is an escape:
 * Ctrl-A x ends the run, Ctrl-A b sends a break (Linux: magic SysRq), Ctrl-A Ctrl-A sends a
 * Ctrl-A. A terminal is always read, so the escape works even when the guest stops reading:
 * typed characters that find the buffer full are dropped, as on a real line. Other inputs
 * (pipes, files) are not read while the buffer is full: nothing is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uart.h"

#define CTRL_A 0x01

/* stdin can feed one UART only: the first instance that asks for it gets it. */
static bool stdin_taken;

/* @val must be @keyword, none or a path; @wrong is the keyword of the other direction. */
static int check_mode(struct uart *u, const char *key, const char *val, const char *keyword,
                      const char *wrong)
{
	if (*val && strcmp(val, wrong))
		return 0;
	u->host->cfg_error(u->dev, key, "'%s' is not valid here: use %s, none or a file path", val,
	                   keyword);
	return -EINVAL;
}

int uart_io_config(struct uart *u)
{
	int ret;

	ret = u->host->cfg_str(u->dev, "output", "stdout", &u->output);
	ret |= u->host->cfg_str(u->dev, "input", "stdin", &u->input);
	if (ret)
		return -EINVAL;
	ret = check_mode(u, "output", u->output, "stdout", "stdin");
	ret |= check_mode(u, "input", u->input, "stdin", "stdout");
	return ret ? -EINVAL : 0;
}

static int open_path(struct uart *u, const char *key, const char *val, int flags, int *fd)
{
	char *path = u->host->cfg_path(u->dev, val);
	int ret = 0;

	if (!path) {
		u->host->cfg_error(u->dev, key, "cannot resolve path '%s'", val);
		return -ENOMEM;
	}
	*fd = open(path, flags | O_CLOEXEC | O_NOCTTY, 0644);
	if (*fd < 0) {
		u->host->cfg_error(u->dev, key, "cannot open %s: %s", path, strerror(errno));
		ret = -EINVAL;
	}
	free(path);
	return ret;
}

static void tty_raw(struct uart *u)
{
	struct termios t;

	if (tcgetattr(u->in_fd, &u->tty_saved) < 0)
		return;
	t = u->tty_saved;
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(u->in_fd, TCSANOW, &t) < 0) {
		u->host->log(u->dev, SMOL_LOG_WARN, "cannot put the terminal in raw mode: %s",
		             strerror(errno));
		return;
	}
	u->in_tty = true;
	u->host->log(u->dev, SMOL_LOG_INFO,
	             "console: Ctrl-A x ends the run, Ctrl-A b sends a break");
}

static void input_stop(struct uart *u)
{
	if (u->in_watched)
		(void)u->host->fd_unwatch(u->dev, u->in_fd);
	u->in_watched = false;
}

static void push(struct uart *u, uint8_t c, uint8_t err)
{
	if (u->in_count == UART_INBUF_LEN) {
		if (!u->drop_warned)
			u->host->log(u->dev, SMOL_LOG_WARN,
			             "the guest is not reading: input dropped");
		u->drop_warned = true;
		return;
	}
	u->inbuf[(u->in_head + u->in_count++) % UART_INBUF_LEN] = (uint16_t)(c | err << 8);
	u->drop_warned = false;
}

/* A byte typed on the terminal; returns false when the run ends. */
static bool tty_byte(struct uart *u, uint8_t c)
{
	if (!u->esc) {
		if (c == CTRL_A)
			u->esc = true;
		else
			push(u, c, 0);
		return true;
	}
	u->esc = false;
	switch (c) {
	case 'x':
	case 'X':
		u->host->log(u->dev, SMOL_LOG_INFO, "Ctrl-A x: ending the run");
		u->host->request_exit(u->dev, 0);
		return false;
	case 'b':
	case 'B': push(u, 0, LSR_BI); break;
	case CTRL_A: push(u, CTRL_A, 0); break;
	default: /* not an escape: both characters go to the guest */
		push(u, CTRL_A, 0);
		push(u, c, 0);
		break;
	}
	return true;
}

static void input_ready(void *opaque, int fd, uint32_t events)
{
	struct uart *u = opaque;
	uint8_t buf[64];
	size_t want = sizeof(buf);
	ssize_t n;

	(void)events;
	if (!u->in_tty && UART_INBUF_LEN - u->in_count < want)
		want = UART_INBUF_LEN - u->in_count;
	if (want) {
		n = read(fd, buf, want);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (n <= 0) { /* end of file, or an error such as EIO from a closed terminal */
			if (n < 0)
				u->host->log(u->dev, SMOL_LOG_WARN, "input: %s", strerror(errno));
			u->in_eof = true;
			input_stop(u);
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (!u->in_tty)
				push(u, buf[i], 0);
			else if (!tty_byte(u, buf[i]))
				break;
		}
	}
	if (!u->in_tty && u->in_count == UART_INBUF_LEN)
		input_stop(u); /* resumed by uart_io_feed() once the guest has read some */
	uart_io_feed(u);
}

static int input_watch(struct uart *u)
{
	int ret = u->host->fd_watch(u->dev, u->in_fd, SMOL_FD_IN, input_ready, u);

	u->in_watched = !ret;
	return ret;
}

void uart_io_feed(struct uart *u)
{
	unsigned room = uart_rx_room(u);
	bool fed = false;
	int ret;

	for (; room && u->in_count; room--, fed = true) {
		uint16_t e = u->inbuf[u->in_head];

		u->in_head = (u->in_head + 1) % UART_INBUF_LEN;
		u->in_count--;
		uart_receive(u, (uint8_t)e, (uint8_t)(e >> 8));
	}
	if (fed && !u->in_count)
		uart_rx_quiet(u); /* nothing more arrives: the character timeout runs out */
	if (u->in_fd < 0 || u->in_watched || u->in_eof || u->in_count == UART_INBUF_LEN)
		return;
	ret = input_watch(u); /* resumes an input stopped while the buffer was full */
	if (ret) {
		u->host->log(u->dev, SMOL_LOG_ERROR, "input: cannot watch it again: %s",
		             strerror(-ret));
		u->in_eof = true;
	}
}

static int input_open(struct uart *u)
{
	int ret;

	if (!strcmp(u->input, "none"))
		return 0;
	if (strcmp(u->input, "stdin")) {
		ret = open_path(u, "input", u->input, O_RDONLY | O_NONBLOCK, &u->in_fd);
		if (ret)
			return ret;
		u->in_owned = true;
	} else if (stdin_taken) {
		u->host->log(
		        u->dev, SMOL_LOG_WARN,
		        "stdin feeds another uart-16550 already: no input here (input = none)");
		return 0;
	} else if (fcntl(STDIN_FILENO, F_GETFL) < 0) {
		return 0; /* stdin is closed */
	} else {
		u->in_fd = STDIN_FILENO;
		u->in_stdin = stdin_taken = true;
	}
	ret = input_watch(u);
	if (ret && u->in_owned) {
		u->host->cfg_error(u->dev, "input", "cannot watch %s: %s", u->input,
		                   strerror(-ret));
		return -EINVAL;
	}
	if (ret) { /* e.g. /dev/null or a regular file under an epoll loop */
		u->host->log(u->dev, SMOL_LOG_DEBUG, "stdin cannot be watched (%s): no input",
		             strerror(-ret));
		u->in_eof = true;
		return 0;
	}
	if (isatty(u->in_fd))
		tty_raw(u);
	return 0;
}

int uart_io_open(struct uart *u)
{
	int ret = uart_out_open(u);

	return ret ? ret : input_open(u);
}

void uart_io_close(struct uart *u)
{
	input_stop(u);
	if (u->in_tty)
		(void)tcsetattr(u->in_fd, TCSANOW, &u->tty_saved);
	if (u->in_owned)
		close(u->in_fd);
	if (u->in_stdin)
		stdin_taken = false;
	uart_out_close(u);
}

/* After a restore: the host buffer came from the snapshot. A full buffer stops a pipe or a
 * file until the guest reads (as input_ready() does), and what fits in the receiver goes in. */
void uart_io_restored(struct uart *u)
{
	uart_out_restored(u);
	if (!u->in_tty && u->in_count == UART_INBUF_LEN)
		input_stop(u);
	uart_io_feed(u);
}
