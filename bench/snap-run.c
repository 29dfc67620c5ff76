/* snap-run.c: see snap-run.h. */
#define _GNU_SOURCE
#include "snap-run.h"
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double snap_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static pid_t spawn2(char *const argv[], unsigned alarm_s, int *out, int *err)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		alarm(alarm_s);
		execv(argv[0], argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	if (pid < 0) {
		close(po[0]);
		close(pe[0]);
		return -1;
	}
	*out = po[0];
	*err = pe[0];
	return pid;
}

/* Appends to a buffer that keeps its head (stdout: the marker must be found) or its tail
 * (stderr: the last words explain a failure). */
static void keep(char *buf, size_t size, const char *data, size_t n, bool tail)
{
	size_t len = strlen(buf);
	if (!tail) {
		if (n > size - 1 - len)
			n = size - 1 - len;
		memcpy(buf + len, data, n);
		buf[len + n] = 0;
		return;
	}
	if (n >= size - 1) {
		data += n - (size - 1);
		n = size - 1;
	}
	if (len + n > size - 1) {
		memmove(buf, buf + (len + n - (size - 1)), size - 1 - n);
		len = size - 1 - n;
	}
	memcpy(buf + len, data, n);
	buf[len + n] = 0;
}

static long status_kib(const char *status, const char *key)
{
	const char *p = strstr(status, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void sample(pid_t pid, struct proc_result *r)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	r->vmhwm = status_kib(buf, "VmHWM:");
	r->vmrss = status_kib(buf, "VmRSS:");
	r->rss_anon = status_kib(buf, "RssAnon:");
	r->rss_file = status_kib(buf, "RssFile:");
	r->rss_shmem = status_kib(buf, "RssShmem:");
}

struct child {
	pid_t pid;
	int fd[2]; /* stdout, stderr */
	double t0;
};

static int start(const struct snap_cmd *c, unsigned timeout_s, struct child *ch)
{
	ch->t0 = snap_now_ms();
	ch->pid = spawn2(c->argv, timeout_s, &ch->fd[0], &ch->fd[1]);
	return ch->pid < 0 ? -1 : 0;
}

static int qmp_cont(const char *sock, pid_t qemu, double deadline, char *err, size_t errlen);

/* Reads a started child's output to EOF (killing it at @p deadline, or once idle and
 * sampled), waits for it and fills @p r. 0, or -1 when it could not be waited for. */
static int collect(struct child *ch, double deadline, bool idle, struct proc_result *r)
{
	bool open_[2] = { true, true }, killed = false;
	while (open_[0] || open_[1]) {
		struct pollfd p[2] = { { open_[0] ? ch->fd[0] : -1, POLLIN, 0 },
			               { open_[1] ? ch->fd[1] : -1, POLLIN, 0 } };
		double left = deadline - snap_now_ms();
		if (left <= 0 && !killed) {
			/* QEMU blocks SIGALRM (it takes it through a signalfd): the alarm is
			 * not enough */
			kill(ch->pid, SIGKILL);
			killed = true;
			snprintf(r->err, sizeof(r->err),
			         "killed: still running after the time limit");
		}
		int n = poll(p, 2, left > 0 ? (int)left + 1 : 1000);
		if (n < 0 && errno != EINTR)
			break;
		for (int k = 0; k < 2 && n > 0; k++) {
			if (!open_[k] || !p[k].revents)
				continue;
			char buf[4096];
			ssize_t got = read(ch->fd[k], buf, sizeof(buf));
			if (got <= 0) {
				open_[k] = false;
				continue;
			}
			if (k == 0 && r->marker_ms < 0 && memchr(buf, SNAP_MARKER, (size_t)got))
				r->marker_ms = snap_now_ms() - ch->t0;
			keep(k ? r->err : r->out, sizeof(r->out), buf, (size_t)got, k == 1);
		}
		if (idle && !killed && r->marker_ms >= 0) {
			usleep(100000); /* idle for a while: what it holds then */
			sample(ch->pid, r);
			kill(ch->pid, SIGKILL);
			killed = true;
		}
	}
	close(ch->fd[0]);
	close(ch->fd[1]);
	int status;
	struct rusage ru;
	if (wait4(ch->pid, &status, 0, &ru) < 0) {
		snprintf(r->err, sizeof(r->err), "wait4: %s", strerror(errno));
		return -1;
	}
	r->exit_ms = snap_now_ms() - ch->t0;
	r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->maxrss_kib = ru.ru_maxrss;
	return 0;
}

static void result_init(struct proc_result *r)
{
	memset(r, 0, sizeof(*r));
	r->marker_ms = -1;
	r->vmhwm = r->vmrss = r->rss_anon = r->rss_file = r->rss_shmem = -1;
}

int snap_run(const struct snap_cmd *c, unsigned timeout_s, bool idle, struct proc_result *r)
{
	result_init(r);
	struct child ch;
	if (start(c, timeout_s, &ch) < 0) {
		snprintf(r->err, sizeof(r->err), "cannot start %s: %s", c->argv[0],
		         strerror(errno));
		return -1;
	}
	double deadline = ch.t0 + timeout_s * 1e3;
	if (c->qmp && qmp_cont(c->qmp, ch.pid, deadline, r->err, sizeof(r->err)) < 0)
		kill(ch.pid, SIGKILL); /* collected below: the error stays in r->err */
	char why[sizeof(r->err)];
	snprintf(why, sizeof(why), "%s", r->err);
	int rc = collect(&ch, deadline, idle, r);
	if (why[0]) /* QMP's story comes first */
		snprintf(r->err, sizeof(r->err), "%s", why);
	return rc;
}

double snap_clones(const struct snap_cmd *cmds, int n, int ok_status, char *err, size_t errlen)
{
	static struct child ch[SNAP_MAX_CLONES];
	static struct proc_result r[SNAP_MAX_CLONES];
	if (n < 1 || n > SNAP_MAX_CLONES)
		return snprintf(err, errlen, "%d clones: 1 to %d", n, SNAP_MAX_CLONES), -1;
	double t0 = snap_now_ms(), deadline = t0 + 300e3;
	int started = 0, bad = 0;
	for (; started < n; started++) {
		result_init(&r[started]);
		if (start(&cmds[started], 300, &ch[started]) < 0) {
			snprintf(err, errlen, "clone %d: cannot start %s: %s", started,
			         cmds[started].argv[0], strerror(errno));
			bad = 1;
			break;
		}
	}
	/* QEMU: each machine is continued once its incoming migration is done, in turn */
	for (int i = 0; i < started; i++)
		if (cmds[i].qmp &&
		    qmp_cont(cmds[i].qmp, ch[i].pid, deadline, r[i].err, sizeof(r[i].err)) < 0) {
			if (!bad)
				snprintf(err, errlen, "clone %d of %d: %.300s", i, n, r[i].err);
			bad = 1;
			kill(ch[i].pid, SIGKILL);
		}
	for (int i = 0; i < started; i++) {
		if (collect(&ch[i], deadline, false, &r[i]) < 0 ||
		    (!bad && (r[i].code != ok_status || r[i].marker_ms < 0))) {
			if (!bad)
				snprintf(err, errlen,
				         "clone %d of %d: status %d, stdout: %.60s, stderr: %.200s",
				         i, n, r[i].code, r[i].out, r[i].err);
			bad = 1;
		}
	}
	double t1 = snap_now_ms();
	return bad ? -1 : t1 - t0;
}

/* ---- QEMU: the migration file of a machine paused before its first instruction ---- */

/* One QMP line (without its CRLF) into @p line; -1 on EOF, error or @p deadline. */
static int qmp_line(int fd, char *line, size_t size, double deadline)
{
	size_t len = 0;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int left = (int)(deadline - snap_now_ms());
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		char c;
		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n') {
			if (len && line[len - 1] == '\r')
				len--;
			line[len] = 0;
			return 0;
		}
		if (len < size - 1)
			line[len++] = c;
	}
}

/* Sends @p cmd and reads lines, skipping events, to its "return" or "error" (in @p reply).
 * 0 on a return, -1 otherwise. */
static int qmp(int fd, const char *cmd, char *reply, size_t size, double deadline)
{
	size_t n = strlen(cmd);
	if (write(fd, cmd, n) != (ssize_t)n)
		return snprintf(reply, size, "write to QMP: %s", strerror(errno)), -1;
	for (;;) {
		if (qmp_line(fd, reply, size, deadline) < 0)
			return snprintf(reply, size, "no answer from QMP to %.60s", cmd), -1;
		if (strstr(reply, "\"return\""))
			return 0;
		if (strstr(reply, "\"error\""))
			return -1;
	}
}

static int qmp_connect(const char *sock, pid_t qemu, double deadline)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	while (snap_now_ms() < deadline) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		close(fd);
		if (waitpid(qemu, NULL, WNOHANG) == qemu)
			return -1;
		usleep(1000);
	}
	return -1;
}

/* A QEMU restore started with -incoming and -qmp @p sock stays paused after the load (the
 * migration file says its source was): waits for the load to end and continues it. */
static int qmp_cont(const char *sock, pid_t qemu, double deadline, char *err, size_t errlen)
{
	char reply[1024] = "";
	int rc = -1, fd = qmp_connect(sock, qemu, deadline);
	if (fd < 0)
		return snprintf(err, errlen, "no QMP socket at %s", sock), -1;
	if (qmp_line(fd, reply, sizeof(reply), deadline) < 0 ||
	    qmp(fd, "{\"execute\": \"qmp_capabilities\"}\n", reply, sizeof(reply), deadline))
		goto out;
	for (;;) {
		if (qmp(fd, "{\"execute\": \"query-status\"}\n", reply, sizeof(reply), deadline))
			goto out;
		if (strstr(reply, "\"running\": true")) {
			rc = 0;
			goto out;
		}
		if (!strstr(reply, "\"inmigrate\""))
			break;
		usleep(1000);
	}
	/* The answer, or the end: the guest may reach its exit, and QEMU quit, before QEMU
	 * answers (its exit status tells the rest). The socket stays open until then: QEMU drops
	 * the commands it has not run yet when its client goes away. */
	static const char cont[] = "{\"execute\": \"cont\"}\n";
	if (write(fd, cont, sizeof(cont) - 1) != (ssize_t)sizeof(cont) - 1) {
		snprintf(reply, sizeof(reply), "writing cont: %s", strerror(errno));
		goto out;
	}
	while (qmp_line(fd, reply, sizeof(reply), deadline) == 0) {
		if (strstr(reply, "\"error\""))
			goto out;
		if (strstr(reply, "\"return\""))
			break;
	}
	rc = 0;
out:
	if (rc < 0)
		snprintf(err, errlen, "QMP on %s: %.300s", sock, reply);
	close(fd);
	return rc;
}

int snap_qemu_save(char **argv, const char *sock, const char *file, char *err, size_t errlen)
{
	int out;
	unlink(sock);
	pid_t pid = bench_spawn(argv, 120, &out);
	if (pid < 0)
		return snprintf(err, errlen, "cannot start QEMU: %s", strerror(errno)), -1;
	double deadline = snap_now_ms() + 90000;
	char reply[1024] = "", cmd[600];
	int rc = -1, fd = qmp_connect(sock, pid, deadline);
	if (fd < 0) {
		snprintf(err, errlen, "no QMP socket at %s", sock);
		goto out;
	}
	snprintf(cmd, sizeof(cmd),
	         "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"exec:cat > %s\"}}\n", file);
	if (qmp_line(fd, reply, sizeof(reply), deadline) < 0 || /* the greeting */
	    qmp(fd, "{\"execute\": \"qmp_capabilities\"}\n", reply, sizeof(reply), deadline) ||
	    qmp(fd,
	        "{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"max-bandwidth\": "
	        "68719476736}}\n",
	        reply, sizeof(reply), deadline) ||
	    qmp(fd, cmd, reply, sizeof(reply), deadline)) {
		snprintf(err, errlen, "QMP: %.300s", reply);
		goto out;
	}
	for (;;) {
		if (qmp(fd, "{\"execute\": \"query-migrate\"}\n", reply, sizeof(reply), deadline)) {
			snprintf(err, errlen, "query-migrate: %.300s", reply);
			goto out;
		}
		if (strstr(reply, "\"completed\"")) {
			rc = 0;
			break;
		}
		if (strstr(reply, "\"failed\"") || strstr(reply, "\"cancelled\"")) {
			snprintf(err, errlen, "the migration to %s failed: %.300s", file, reply);
			goto out;
		}
		usleep(10000);
	}
	qmp(fd, "{\"execute\": \"quit\"}\n", reply, sizeof(reply), deadline);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		kill(pid, SIGKILL);
	char buf[4096], tail[512] = "";
	ssize_t n;
	while ((n = read(out, buf, sizeof(buf))) > 0)
		keep(tail, sizeof(tail), buf, (size_t)n, true);
	close(out);
	int status;
	waitpid(pid, &status, 0);
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		snprintf(err, errlen, "QEMU ended with status 0x%x after saving: %.300s", status,
		         tail);
		rc = -1;
	} else if (rc < 0 && tail[0]) {
		size_t len = strlen(err);
		snprintf(err + len, errlen - len, "; QEMU: %.300s", tail);
	}
	unlink(sock);
	return rc;
}
