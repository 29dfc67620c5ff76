/*
 * serial: the host side of the serial line's input (the output is in serial-out.c): stdin,
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

#include "serial.h"
#include "serial-int.h"

#define CTRL_A 0x01

/* stdin can feed one UART only: the first instance that asks for it gets it. This flag is
 * per plugin (each links its own copy of this file); across plugins, the core's refusal to
 * watch one fd twice (-EEXIST) says the same. */
static bool stdin_taken;

/* @val must be @keyword, none or a path; @wrong is the keyword of the other direction. */
static int check_mode(struct serial *s, const char *key, const char *val, const char *keyword,
                      const char *wrong)
{
	if (*val && strcmp(val, wrong))
		return 0;
	s->host->cfg_error(s->dev, key, "'%s' is not valid here: use %s, none or a file path", val,
	                   keyword);
	return -EINVAL;
}

int serial_config(struct serial *s)
{
	int ret;

	ret = s->host->cfg_str(s->dev, "output", "stdout", &s->output);
	ret |= s->host->cfg_str(s->dev, "input", "stdin", &s->input);
	if (ret)
		return -EINVAL;
	ret = check_mode(s, "output", s->output, "stdout", "stdin");
	ret |= check_mode(s, "input", s->input, "stdin", "stdout");
	return ret ? -EINVAL : 0;
}

static int open_path(struct serial *s, const char *key, const char *val, int flags, int *fd)
{
	char *path = s->host->cfg_path(s->dev, val);
	int ret = 0;

	if (!path) {
		s->host->cfg_error(s->dev, key, "cannot resolve path '%s'", val);
		return -ENOMEM;
	}
	*fd = open(path, flags | O_CLOEXEC | O_NOCTTY, 0644);
	if (*fd < 0) {
		s->host->cfg_error(s->dev, key, "cannot open %s: %s", path, strerror(errno));
		ret = -EINVAL;
	}
	free(path);
	return ret;
}

static void tty_raw(struct serial *s)
{
	struct termios t;

	if (tcgetattr(s->in_fd, &s->tty_saved) < 0)
		return;
	t = s->tty_saved;
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(s->in_fd, TCSANOW, &t) < 0) {
		s->host->log(s->dev, SMOL_LOG_WARN, "cannot put the terminal in raw mode: %s",
		             strerror(errno));
		return;
	}
	s->in_tty = true;
	s->host->log(s->dev, SMOL_LOG_INFO,
	             "console: Ctrl-A x ends the run, Ctrl-A b sends a break");
}

static void input_stop(struct serial *s)
{
	if (s->in_watched)
		(void)s->host->fd_unwatch(s->dev, s->in_fd);
	s->in_watched = false;
}

static void push(struct serial *s, uint8_t c, uint8_t err)
{
	if (s->in_count == SERIAL_INBUF_LEN) {
		if (!s->drop_warned)
			s->host->log(s->dev, SMOL_LOG_WARN,
			             "the guest is not reading: input dropped");
		s->drop_warned = true;
		return;
	}
	s->inbuf[(s->in_head + s->in_count++) % SERIAL_INBUF_LEN] = (uint16_t)(c | err << 8);
	s->drop_warned = false;
}

/* A byte typed on the terminal; returns false when the run ends. */
static bool tty_byte(struct serial *s, uint8_t c)
{
	if (!s->esc) {
		if (c == CTRL_A)
			s->esc = true;
		else
			push(s, c, 0);
		return true;
	}
	s->esc = false;
	switch (c) {
	case 'x':
	case 'X':
		s->host->log(s->dev, SMOL_LOG_INFO, "Ctrl-A x: ending the run");
		s->host->request_exit(s->dev, 0);
		return false;
	case 'b':
	case 'B': push(s, 0, SERIAL_BREAK); break;
	case CTRL_A: push(s, CTRL_A, 0); break;
	default: /* not an escape: both characters go to the guest */
		push(s, CTRL_A, 0);
		push(s, c, 0);
		break;
	}
	return true;
}

static void input_ready(void *opaque, int fd, uint32_t events)
{
	struct serial *s = opaque;
	uint8_t buf[64];
	size_t want = sizeof(buf);
	ssize_t n;

	(void)events;
	if (!s->in_tty && SERIAL_INBUF_LEN - s->in_count < want)
		want = SERIAL_INBUF_LEN - s->in_count;
	if (want) {
		n = read(fd, buf, want);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (n <= 0) { /* end of file, or an error such as EIO from a closed terminal */
			if (n < 0)
				s->host->log(s->dev, SMOL_LOG_WARN, "input: %s", strerror(errno));
			s->in_eof = true;
			input_stop(s);
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (!s->in_tty)
				push(s, buf[i], 0);
			else if (!tty_byte(s, buf[i]))
				break;
		}
	}
	if (!s->in_tty && s->in_count == SERIAL_INBUF_LEN)
		input_stop(s); /* resumed by serial_feed() once the guest has read some */
	serial_feed(s);
}

static int input_watch(struct serial *s)
{
	int ret = s->host->fd_watch(s->dev, s->in_fd, SMOL_FD_IN, input_ready, s);

	s->in_watched = !ret;
	return ret;
}

void serial_feed(struct serial *s)
{
	unsigned room = s->ops->rx_room(s->model);
	bool fed = false;
	int ret;

	for (; room && s->in_count; room--, fed = true) {
		uint16_t e = s->inbuf[s->in_head];

		s->in_head = (s->in_head + 1) % SERIAL_INBUF_LEN;
		s->in_count--;
		s->ops->receive(s->model, (uint8_t)e, (uint8_t)(e >> 8));
	}
	if (fed && !s->in_count)
		s->ops->rx_quiet(
		        s->model); /* nothing more arrives: the character timeout runs out */
	if (s->in_fd < 0 || s->in_watched || s->in_eof || s->in_count == SERIAL_INBUF_LEN)
		return;
	ret = input_watch(s); /* resumes an input stopped while the buffer was full */
	if (ret) {
		s->host->log(s->dev, SMOL_LOG_ERROR, "input: cannot watch it again: %s",
		             strerror(-ret));
		s->in_eof = true;
	}
}

static int input_open(struct serial *s)
{
	int ret;

	if (!strcmp(s->input, "none"))
		return 0;
	if (strcmp(s->input, "stdin")) {
		ret = open_path(s, "input", s->input, O_RDONLY | O_NONBLOCK, &s->in_fd);
		if (ret)
			return ret;
		s->in_owned = true;
	} else if (stdin_taken) {
		s->host->log(s->dev, SMOL_LOG_WARN,
		             "stdin feeds another %s already: no input here (input = none)",
		             s->name);
		return 0;
	} else if (fcntl(STDIN_FILENO, F_GETFL) < 0) {
		return 0; /* stdin is closed */
	} else {
		s->in_fd = STDIN_FILENO;
		s->in_stdin = stdin_taken = true;
	}
	ret = input_watch(s);
	if (ret == -EEXIST && s->in_stdin) { /* another plugin's UART watches stdin */
		s->host->log(
		        s->dev, SMOL_LOG_WARN,
		        "stdin feeds another serial device already: no input here (input = none)");
		s->in_fd = -1;
		s->in_stdin = stdin_taken = false;
		return 0;
	}
	if (ret && s->in_owned) {
		s->host->cfg_error(s->dev, "input", "cannot watch %s: %s", s->input,
		                   strerror(-ret));
		return -EINVAL;
	}
	if (ret) { /* e.g. /dev/null or a regular file under an epoll loop */
		s->host->log(s->dev, SMOL_LOG_DEBUG, "stdin cannot be watched (%s): no input",
		             strerror(-ret));
		s->in_eof = true;
		return 0;
	}
	if (isatty(s->in_fd))
		tty_raw(s);
	return 0;
}

void serial_init(struct serial *s)
{
	s->in_fd = -1;
	s->out_fd = -1;
}

int serial_open(struct serial *s)
{
	int ret = serial_out_open(s);

	return ret ? ret : input_open(s);
}

void serial_close(struct serial *s)
{
	input_stop(s);
	if (s->in_tty)
		(void)tcsetattr(s->in_fd, TCSANOW, &s->tty_saved);
	if (s->in_owned)
		close(s->in_fd);
	if (s->in_stdin)
		stdin_taken = false;
	serial_out_close(s);
}

/* After a restore: the host buffer came from the snapshot. A full buffer stops a pipe or a
 * file until the guest reads (as input_ready() does), and what fits in the receiver goes in. */
void serial_restored(struct serial *s, bool tx_blocked)
{
	serial_out_restored(s, tx_blocked);
	if (!s->in_tty && s->in_count == SERIAL_INBUF_LEN)
		input_stop(s);
	serial_feed(s);
}
