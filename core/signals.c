/*
 * signals.c: SIGINT, SIGTERM and SIGHUP are answered from the first line of main() on.
 *
 * One handler, two phases:
 *  - Setting up, checking, tearing down (no machine runs): the handler puts the terminal back
 *    as it was when smolvm started and leaves at once with 128 + N. A blocked open(), a long
 *    `check` or a plugin's create() cannot hold a signal back.
 *  - While a machine runs: the handler writes the signal's number to a pipe the event loop
 *    watches, and the loop stops the machine in order (signals_take()). The main thread keeps
 *    the signals unblocked, so its epoll_wait() returns EINTR and the loop reads the pipe
 *    whatever a device does. The third signal of a run leaves at once, as in the first phase
 *    (a machine that does not stop, or a user who does not want to wait for it).
 * Threads the core starts (vCPUs, device I/O threads through signals_block_thread()) block
 * the stop signals, so the handler runs on the main thread or on a plugin's own thread, and
 * never interrupts a guest's KVM_RUN.
 * Everything the handler does is async-signal-safe: write(), tcsetattr(), _exit().
 */
#define _GNU_SOURCE
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios term_saved;
static volatile sig_atomic_t term_known;
static volatile sig_atomic_t serve_fd = -1; /* the pipe's writing end while a machine runs */
static volatile sig_atomic_t forwarded; /* signals forwarded during this run */
static int pipe_fds[2] = { -1, -1 };

static void put(const char *s)
{
	if (write(STDERR_FILENO, s, strlen(s)) < 0) {
		/* nothing more can be said */
	}
}

static void leave_now(int sig)
{
	if (term_known)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &term_saved);
	_exit(128 + sig);
}

static void on_stop_signal(int sig)
{
	int saved_errno = errno;
	int fd = serve_fd;
	unsigned char b = (unsigned char)sig;

	if (fd < 0)
		leave_now(sig);
	if (++forwarded >= 3) {
		put("\nsmolvm: the machine does not stop: leaving without cleanup\n");
		leave_now(sig);
	}
	if (write(fd, &b, 1) < 0) {
		/* a full pipe: the loop has signals to read already */
	}
	errno = saved_errno;
}

void signals_stop_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

int signals_init(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART };
	sigset_t set;

	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &term_saved) == 0)
		term_known = 1;
	signals_stop_set(&set);
	sa.sa_mask = set; /* one handler at a time */
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		return -errno;
	return pthread_sigmask(SIG_UNBLOCK, &set, NULL) ? -EINVAL : 0;
}

int signals_serve_start(void)
{
	if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	forwarded = 0;
	serve_fd = pipe_fds[1];
	return pipe_fds[0];
}

int signals_take(void)
{
	unsigned char b;

	if (pipe_fds[0] < 0 || read(pipe_fds[0], &b, 1) != 1)
		return 0;
	return b;
}

void signals_serve_stop(void)
{
	serve_fd = -1;
	for (int i = 0; i < 2; i++) {
		if (pipe_fds[i] >= 0)
			close(pipe_fds[i]);
		pipe_fds[i] = -1;
	}
}

int signals_block_thread(sigset_t *old)
{
	sigset_t set;

	signals_stop_set(&set);
	return pthread_sigmask(SIG_BLOCK, &set, old);
}

void signals_restore_thread(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}
