/*
 * serial: the host side of the transmitter. A transmitted byte never waits for the host:
 * it is written at once with a write that cannot block, and what the output cannot take yet
 * waits in a bounded buffer that the core's event loop drains when the output is writable.
 *
 * Outputs and how they are written:
 *  - a regular file: written at once (a file always takes its bytes);
 *  - a pipe, a FIFO, a terminal or another character device: through a file descriptor of
 *    our own that is non-blocking (stdout is opened again through /proc/self/fd/1 rather than
 *    made non-blocking: its open file is shared with stderr and the shell);
 *  - a socket: send() with MSG_DONTWAIT.
 *  - none: nothing.
 * A FIFO without a reader, a directory or anything else is a configuration error.
 *
 * The model shows the buffer to the guest as a transmitter that is busy: not ready while
 * fewer than tx_chunk bytes of room are left (a driver writes up to a FIFO's worth per
 * transmit interrupt; the 16550 clears LSR.THRE, the PL011 sets FR.TXFF), not empty while
 * anything waits (LSR.TEMT clear, FR.BUSY set), and the model's tx_room() is called as the
 * buffer drains. A guest that transmits regardless loses those bytes, counted. An output
 * whose reader is gone for good (EPIPE, an error) drops everything from then on, counted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "serial.h"
#include "serial-int.h"

enum { OUT_NONE, OUT_FILE, OUT_STREAM, OUT_SOCKET, OUT_POLLED };

/* A write of what the output takes now, never blocking; -1 with errno EAGAIN when it takes
 * nothing. */
static ssize_t out_write(struct serial *s, const uint8_t *p, size_t n)
{
	ssize_t r;
	struct pollfd pfd = { .fd = s->out_fd, .events = POLLOUT };

	do {
		switch (s->out_kind) {
		case OUT_SOCKET: r = send(s->out_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL); break;
		case OUT_POLLED:
			/* a blocking descriptor we could not reopen: one byte when poll says
			 * there is room never blocks (a pipe or a terminal with any room) */
			r = poll(&pfd, 1, 0);
			if (r == 0) {
				errno = EAGAIN;
				r = -1;
			} else if (r > 0) {
				r = write(s->out_fd, p, 1);
			}
			break;
		default: r = write(s->out_fd, p, n); break;
		}
	} while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EWOULDBLOCK)
		errno = EAGAIN;
	return r;
}

static void out_gone(struct serial *s, int err)
{
	s->out_gone = true;
	s->out_dropped += s->out_count;
	s->out_count = 0;
	if (s->out_watched)
		(void)s->host->fd_unwatch(s->dev, s->out_fd);
	s->out_watched = false;
	s->host->log(s->dev, SMOL_LOG_WARN,
	             "output: %s: what the guest sends is dropped from now on",
	             err ? strerror(err) : "short write");
}

/* Writes what the buffer holds until the output takes no more. */
static void out_flush(struct serial *s)
{
	while (s->out_count && !s->out_gone) {
		size_t first = SERIAL_OUTBUF_LEN - s->out_head;
		size_t n = s->out_count < first ? s->out_count : first;
		ssize_t w = out_write(s, s->outbuf + s->out_head, n);

		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			out_gone(s, w < 0 ? errno : 0);
			return;
		}
		s->out_head = (s->out_head + (size_t)w) % SERIAL_OUTBUF_LEN;
		s->out_count -= (size_t)w;
	}
}

static void output_ready(void *opaque, int fd, uint32_t events)
{
	struct serial *s = opaque;

	(void)fd;
	(void)events; /* a hang-up shows as the write's EPIPE */
	out_flush(s);
	if (!s->out_count && s->out_watched) {
		(void)s->host->fd_unwatch(s->dev, s->out_fd);
		s->out_watched = false;
	}
	s->ops->tx_room(s->model);
}

size_t serial_tx_free(const struct serial *s)
{
	return SERIAL_OUTBUF_LEN - s->out_count;
}

bool serial_tx_ready(const struct serial *s)
{
	return serial_tx_free(s) >= s->tx_chunk;
}

bool serial_tx_empty(const struct serial *s)
{
	return s->out_count == 0;
}

void serial_tx(struct serial *s, uint8_t c)
{
	if (s->out_kind == OUT_NONE)
		return;
	if (s->out_gone) {
		s->out_dropped++;
		return;
	}
	if (!s->out_count) {
		ssize_t w = out_write(s, &c, 1);

		if (w == 1)
			return;
		if (w == 0 || errno != EAGAIN) {
			out_gone(s, w < 0 ? errno : 0);
			s->out_dropped++;
			return;
		}
	}
	if (!s->outbuf) { /* a file that took nothing: not a wait */
		s->out_dropped++;
		return;
	}
	if (s->out_count == SERIAL_OUTBUF_LEN) { /* written while THRE was clear */
		if (!s->out_dropped++)
			s->host->log(s->dev, SMOL_LOG_WARN,
			             "output: the guest writes while the transmitter is busy "
			             "(the host's reader is slow): dropping those bytes");
		return;
	}
	s->outbuf[(s->out_head + s->out_count++) % SERIAL_OUTBUF_LEN] = c;
	if (!s->out_watched) {
		int r = s->host->fd_watch(s->dev, s->out_fd, SMOL_FD_OUT, output_ready, s);

		if (r) {
			s->host->log(s->dev, SMOL_LOG_ERROR, "output: cannot watch it: %s",
			             strerror(-r));
			out_gone(s, -r);
			return;
		}
		s->out_watched = true;
	}
}

/* What kind of output @fd (just opened, or stdout) is; -errno with @why set if unusable. */
static int out_classify(struct serial *s, int fd, const char **why)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		*why = strerror(errno);
		return -errno;
	}
	if (S_ISREG(st.st_mode))
		return OUT_FILE;
	if (S_ISSOCK(st.st_mode))
		return OUT_SOCKET;
	if (S_ISFIFO(st.st_mode) || (S_ISCHR(st.st_mode) && isatty(fd)))
		return OUT_STREAM;
	if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3)
		return OUT_FILE; /* /dev/null */
	(void)s;
	*why = S_ISDIR(st.st_mode)   ? "a directory"
	       : S_ISCHR(st.st_mode) ? "a character device that is neither a terminal nor /dev/null"
	                             : "not a file, FIFO or terminal";
	return -EINVAL;
}

/* stdout as the output: a pipe or a terminal gets a non-blocking open file of its own. */
static int open_stdout(struct serial *s)
{
	const char *why = NULL;
	int kind = out_classify(s, STDOUT_FILENO, &why);

	if (kind == -EBADF)
		return OUT_NONE; /* stdout is closed */
	if (kind < 0) {
		s->host->log(s->dev, SMOL_LOG_WARN, "stdout is %s: no output", why);
		return OUT_NONE;
	}
	s->out_fd = STDOUT_FILENO;
	if (kind != OUT_STREAM)
		return kind;
	int fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		s->host->log(s->dev, SMOL_LOG_DEBUG,
		             "cannot open stdout again (%s): one byte at a time when it has room",
		             strerror(errno));
		return OUT_POLLED;
	}
	s->out_fd = fd;
	s->out_owned = true;
	return OUT_STREAM;
}

static int open_output_path(struct serial *s)
{
	char *path = s->host->cfg_path(s->dev, s->output);
	const char *why = NULL;
	int kind;

	if (!path) {
		s->host->cfg_error(s->dev, "output", "cannot resolve path '%s'", s->output);
		return -ENOMEM;
	}
	/* O_NONBLOCK: a FIFO with no reader fails (ENXIO) instead of waiting for one */
	s->out_fd =
	        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644);
	if (s->out_fd < 0) {
		int e = errno;

		s->host->cfg_error(s->dev, "output", "cannot open %s: %s", path,
		                   e == ENXIO ? "a FIFO (or socket) with no reader" : strerror(e));
		free(path);
		return -EINVAL;
	}
	s->out_owned = true;
	kind = out_classify(s, s->out_fd, &why);
	if (kind < 0 || kind == OUT_SOCKET) {
		s->host->cfg_error(s->dev, "output", "%s is %s", path,
		                   kind < 0 ? why : "a socket: not a file, FIFO or terminal");
		free(path);
		return -EINVAL;
	}
	free(path);
	return kind;
}

/* `smolvm check`: an output that exists must be usable (it is neither created nor
 * truncated here); one that does not is created by the run. */
int serial_check(struct serial *s)
{
	const char *why = NULL;
	char *path;
	int fd, kind;

	if (!strcmp(s->output, "stdout") || !strcmp(s->output, "none"))
		return 0;
	path = s->host->cfg_path(s->dev, s->output);
	if (!path) {
		s->host->cfg_error(s->dev, "output", "cannot resolve path '%s'", s->output);
		return -ENOMEM;
	}
	fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		s->host->cfg_error(s->dev, "output", "cannot open %s: %s", path,
		                   errno == ENXIO ? "a FIFO (or socket) with no reader"
		                                  : strerror(errno));
		free(path);
		return -EINVAL;
	}
	kind = fd < 0 ? OUT_FILE : out_classify(s, fd, &why);
	if (fd >= 0)
		close(fd);
	if (kind < 0)
		s->host->cfg_error(s->dev, "output", "%s is %s", path, why);
	free(path);
	return kind < 0 ? -EINVAL : 0;
}

int serial_out_open(struct serial *s)
{
	int kind = OUT_NONE;

	if (!strcmp(s->output, "stdout"))
		kind = open_stdout(s);
	else if (strcmp(s->output, "none"))
		kind = open_output_path(s);
	if (kind < 0)
		return kind;
	s->out_kind = kind;
	if (kind == OUT_STREAM || kind == OUT_SOCKET || kind == OUT_POLLED) {
		s->outbuf = malloc(SERIAL_OUTBUF_LEN);
		if (!s->outbuf) {
			s->host->log(s->dev, SMOL_LOG_ERROR, "cannot allocate the output buffer");
			return -ENOMEM;
		}
	}
	return 0;
}

/* After a restore: a transmitter saved busy (its host output was full; what waited there is
 * not part of the state) finds room here. THR empty is raised on the event loop's first turn,
 * so the restored state is exactly the saved one until the machine runs. */
void serial_out_restored(struct serial *s, bool tx_blocked)
{
	if (!tx_blocked || s->out_watched || s->out_kind == OUT_NONE)
		return;
	if (s->host->fd_watch(s->dev, s->out_fd, SMOL_FD_OUT, output_ready, s) == 0)
		s->out_watched = true;
	else
		s->ops->tx_room(s->model);
}

/* The run is over: what waits gets one last chance, bounded, then the output is closed. */
void serial_out_close(struct serial *s)
{
	for (int tries = 0; s->out_count && !s->out_gone && tries < 20; tries++) {
		struct pollfd pfd = { .fd = s->out_fd, .events = POLLOUT };

		if (poll(&pfd, 1, 50) > 0)
			out_flush(s);
	}
	if (s->out_count)
		s->out_dropped += s->out_count;
	s->out_count = 0;
	if (s->out_dropped)
		s->host->log(s->dev, SMOL_LOG_WARN,
		             "output: %llu bytes the guest sent were dropped",
		             (unsigned long long)s->out_dropped);
	if (s->out_watched)
		(void)s->host->fd_unwatch(s->dev, s->out_fd);
	s->out_watched = false;
	if (s->out_owned)
		close(s->out_fd);
	s->out_owned = false;
	s->out_fd = -1;
	s->out_kind = OUT_NONE;
	free(s->outbuf);
	s->outbuf = NULL;
}
