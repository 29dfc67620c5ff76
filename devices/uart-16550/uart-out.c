/*
 * uart-16550: the host side of the transmitter. A transmitted byte never waits for the host:
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
 * The guest sees the buffer as a transmitter that is busy: LSR.THRE clears while fewer than
 * UART_FIFO_LEN bytes of room are left (a driver writes up to a FIFO's worth per THR-empty
 * interrupt), LSR.TEMT while anything is waiting, and THR empty is raised again when the
 * buffer drains. A guest that writes THR regardless loses those bytes, counted. An output
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

#include "uart.h"

enum { OUT_NONE, OUT_FILE, OUT_STREAM, OUT_SOCKET, OUT_POLLED };

/* A write of what the output takes now, never blocking; -1 with errno EAGAIN when it takes
 * nothing. */
static ssize_t out_write(struct uart *u, const uint8_t *p, size_t n)
{
	ssize_t r;
	struct pollfd pfd = { .fd = u->out_fd, .events = POLLOUT };

	do {
		switch (u->out_kind) {
		case OUT_SOCKET: r = send(u->out_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL); break;
		case OUT_POLLED:
			/* a blocking descriptor we could not reopen: one byte when poll says
			 * there is room never blocks (a pipe or a terminal with any room) */
			r = poll(&pfd, 1, 0);
			if (r == 0) {
				errno = EAGAIN;
				r = -1;
			} else if (r > 0) {
				r = write(u->out_fd, p, 1);
			}
			break;
		default: r = write(u->out_fd, p, n); break;
		}
	} while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EWOULDBLOCK)
		errno = EAGAIN;
	return r;
}

static void out_gone(struct uart *u, int err)
{
	u->out_gone = true;
	u->out_dropped += u->out_count;
	u->out_count = 0;
	if (u->out_watched)
		(void)u->host->fd_unwatch(u->dev, u->out_fd);
	u->out_watched = false;
	u->host->log(u->dev, SMOL_LOG_WARN,
	             "output: %s: what the guest sends is dropped from now on",
	             err ? strerror(err) : "short write");
}

/* Writes what the buffer holds until the output takes no more. */
static void out_flush(struct uart *u)
{
	while (u->out_count && !u->out_gone) {
		size_t first = UART_OUTBUF_LEN - u->out_head;
		size_t n = u->out_count < first ? u->out_count : first;
		ssize_t w = out_write(u, u->outbuf + u->out_head, n);

		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			out_gone(u, w < 0 ? errno : 0);
			return;
		}
		u->out_head = (u->out_head + (size_t)w) % UART_OUTBUF_LEN;
		u->out_count -= (size_t)w;
	}
}

static void output_ready(void *opaque, int fd, uint32_t events)
{
	struct uart *u = opaque;

	(void)fd;
	(void)events; /* a hang-up shows as the write's EPIPE */
	out_flush(u);
	if (!u->out_count && u->out_watched) {
		(void)u->host->fd_unwatch(u->dev, u->out_fd);
		u->out_watched = false;
	}
	uart_tx_room(u);
}

bool uart_io_tx_ready(const struct uart *u)
{
	return UART_OUTBUF_LEN - u->out_count >= UART_FIFO_LEN;
}

bool uart_io_tx_empty(const struct uart *u)
{
	return u->out_count == 0;
}

void uart_io_tx(struct uart *u, uint8_t c)
{
	if (u->out_kind == OUT_NONE)
		return;
	if (u->out_gone) {
		u->out_dropped++;
		return;
	}
	if (!u->out_count) {
		ssize_t w = out_write(u, &c, 1);

		if (w == 1)
			return;
		if (w == 0 || errno != EAGAIN) {
			out_gone(u, w < 0 ? errno : 0);
			u->out_dropped++;
			return;
		}
	}
	if (!u->outbuf) { /* a file that took nothing: not a wait */
		u->out_dropped++;
		return;
	}
	if (u->out_count == UART_OUTBUF_LEN) { /* written while THRE was clear */
		if (!u->out_dropped++)
			u->host->log(u->dev, SMOL_LOG_WARN,
			             "output: the guest writes while the transmitter is busy "
			             "(the host's reader is slow): dropping those bytes");
		return;
	}
	u->outbuf[(u->out_head + u->out_count++) % UART_OUTBUF_LEN] = c;
	if (!u->out_watched) {
		int r = u->host->fd_watch(u->dev, u->out_fd, SMOL_FD_OUT, output_ready, u);

		if (r) {
			u->host->log(u->dev, SMOL_LOG_ERROR, "output: cannot watch it: %s",
			             strerror(-r));
			out_gone(u, -r);
			return;
		}
		u->out_watched = true;
	}
}

/* What kind of output @fd (just opened, or stdout) is; -errno with @why set if unusable. */
static int out_classify(struct uart *u, int fd, const char **why)
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
	(void)u;
	*why = S_ISDIR(st.st_mode)   ? "a directory"
	       : S_ISCHR(st.st_mode) ? "a character device that is neither a terminal nor /dev/null"
	                             : "not a file, FIFO or terminal";
	return -EINVAL;
}

/* stdout as the output: a pipe or a terminal gets a non-blocking open file of its own. */
static int open_stdout(struct uart *u)
{
	const char *why = NULL;
	int kind = out_classify(u, STDOUT_FILENO, &why);

	if (kind == -EBADF)
		return OUT_NONE; /* stdout is closed */
	if (kind < 0) {
		u->host->log(u->dev, SMOL_LOG_WARN, "stdout is %s: no output", why);
		return OUT_NONE;
	}
	u->out_fd = STDOUT_FILENO;
	if (kind != OUT_STREAM)
		return kind;
	int fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		u->host->log(u->dev, SMOL_LOG_DEBUG,
		             "cannot open stdout again (%s): one byte at a time when it has room",
		             strerror(errno));
		return OUT_POLLED;
	}
	u->out_fd = fd;
	u->out_owned = true;
	return OUT_STREAM;
}

static int open_output_path(struct uart *u)
{
	char *path = u->host->cfg_path(u->dev, u->output);
	const char *why = NULL;
	int kind;

	if (!path) {
		u->host->cfg_error(u->dev, "output", "cannot resolve path '%s'", u->output);
		return -ENOMEM;
	}
	/* O_NONBLOCK: a FIFO with no reader fails (ENXIO) instead of waiting for one */
	u->out_fd =
	        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644);
	if (u->out_fd < 0) {
		int e = errno;

		u->host->cfg_error(u->dev, "output", "cannot open %s: %s", path,
		                   e == ENXIO ? "a FIFO (or socket) with no reader" : strerror(e));
		free(path);
		return -EINVAL;
	}
	u->out_owned = true;
	kind = out_classify(u, u->out_fd, &why);
	if (kind < 0 || kind == OUT_SOCKET) {
		u->host->cfg_error(u->dev, "output", "%s is %s", path,
		                   kind < 0 ? why : "a socket: not a file, FIFO or terminal");
		free(path);
		return -EINVAL;
	}
	free(path);
	return kind;
}

/* `smolvm check`: an output that exists must be usable (it is neither created nor
 * truncated here); one that does not is created by the run. */
int uart_out_check(struct uart *u)
{
	const char *why = NULL;
	char *path;
	int fd, kind;

	if (!strcmp(u->output, "stdout") || !strcmp(u->output, "none"))
		return 0;
	path = u->host->cfg_path(u->dev, u->output);
	if (!path) {
		u->host->cfg_error(u->dev, "output", "cannot resolve path '%s'", u->output);
		return -ENOMEM;
	}
	fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		u->host->cfg_error(u->dev, "output", "cannot open %s: %s", path,
		                   errno == ENXIO ? "a FIFO (or socket) with no reader"
		                                  : strerror(errno));
		free(path);
		return -EINVAL;
	}
	kind = fd < 0 ? OUT_FILE : out_classify(u, fd, &why);
	if (fd >= 0)
		close(fd);
	if (kind < 0)
		u->host->cfg_error(u->dev, "output", "%s is %s", path, why);
	free(path);
	return kind < 0 ? -EINVAL : 0;
}

int uart_out_open(struct uart *u)
{
	int kind = OUT_NONE;

	if (!strcmp(u->output, "stdout"))
		kind = open_stdout(u);
	else if (strcmp(u->output, "none"))
		kind = open_output_path(u);
	if (kind < 0)
		return kind;
	u->out_kind = kind;
	if (kind == OUT_STREAM || kind == OUT_SOCKET || kind == OUT_POLLED) {
		u->outbuf = malloc(UART_OUTBUF_LEN);
		if (!u->outbuf) {
			u->host->log(u->dev, SMOL_LOG_ERROR, "cannot allocate the output buffer");
			return -ENOMEM;
		}
	}
	return 0;
}

/* After a restore: a transmitter saved busy (its host output was full; what waited there is
 * not part of the state) finds room here. THR empty is raised on the event loop's first turn,
 * so the restored state is exactly the saved one until the machine runs. */
void uart_out_restored(struct uart *u)
{
	if (!u->tx_blocked || u->out_watched || u->out_kind == OUT_NONE)
		return;
	if (u->host->fd_watch(u->dev, u->out_fd, SMOL_FD_OUT, output_ready, u) == 0)
		u->out_watched = true;
	else
		uart_tx_room(u);
}

/* The run is over: what waits gets one last chance, bounded, then the output is closed. */
void uart_out_close(struct uart *u)
{
	for (int tries = 0; u->out_count && !u->out_gone && tries < 20; tries++) {
		struct pollfd pfd = { .fd = u->out_fd, .events = POLLOUT };

		if (poll(&pfd, 1, 50) > 0)
			out_flush(u);
	}
	if (u->out_count)
		u->out_dropped += u->out_count;
	u->out_count = 0;
	if (u->out_dropped)
		u->host->log(u->dev, SMOL_LOG_WARN,
		             "output: %llu bytes the guest sent were dropped",
		             (unsigned long long)u->out_dropped);
	if (u->out_watched)
		(void)u->host->fd_unwatch(u->dev, u->out_fd);
	u->out_watched = false;
	if (u->out_owned)
		close(u->out_fd);
	u->out_owned = false;
	u->out_fd = -1;
	u->out_kind = OUT_NONE;
	free(u->outbuf);
	u->outbuf = NULL;
}
