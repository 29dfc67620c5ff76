/* control.c: the control socket's server, on the machine's event loop. Everything is
 * non-blocking and bounded: at most CONTROL_MAX_CLIENTS clients, one request line of at most
 * CONTROL_LINE_MAX bytes buffered per client, one reply in flight per client (a client's next
 * request is not read before its last reply is written), and a client whose reply stays
 * unwritten (it does not read) or whose request line stays incomplete for too long is dropped
 * by a timer. Requests are parsed by control_parse_request (control-req.c). */
#define _GNU_SOURCE /* accept4 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "evloop.h"
#include "log.h"

#ifndef SMOLVM_VERSION
#define SMOLVM_VERSION "0.0.0"
#endif

/* How long control_close waits for the last replies to drain. */
#define CLOSE_FLUSH_MS 200

struct client {
	struct control *c;
	int fd;
	uint32_t watching; /**< the events its evloop watch asks for */
	char *in; /**< received bytes not yet handled (grows up to CONTROL_LINE_MAX + 1) */
	size_t in_off, in_len, in_cap; /**< handled up to in_off; compacted after each round */
	char *out; /**< the reply being written */
	size_t out_len, out_off;
	uint64_t out_since, line_since; /**< when the reply / the incomplete line began */
	bool eof; /**< the client sent everything it will send */
	bool closing; /**< close once the reply is written */
};

struct control {
	struct evloop *loop;
	const struct control_ops *ops;
	void *opaque;
	int fd, timer_fd;
	bool timer_armed;
	char *path;
	dev_t dev;
	ino_t ino;
	struct client *clients[CONTROL_MAX_CLIENTS];
	size_t n_clients;
	bool user_paused; /**< a pause request holds the machine */
	bool stopped; /**< a snapshot with stop was taken: the run is ending */
	unsigned write_ms, line_ms;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void update_timer(struct control *c)
{
	bool need = false;
	for (size_t k = 0; k < c->n_clients && !need; k++)
		need = c->clients[k]->out || c->clients[k]->in_len;
	if (need == c->timer_armed)
		return;
	unsigned step = (c->write_ms < c->line_ms ? c->write_ms : c->line_ms) / 4;
	if (step < 10)
		step = 10;
	struct itimerspec it = { 0 };
	if (need) {
		it.it_interval.tv_sec = step / 1000;
		it.it_interval.tv_nsec = (long)(step % 1000) * 1000000;
		it.it_value = it.it_interval;
	}
	if (timerfd_settime(c->timer_fd, 0, &it, NULL) == 0)
		c->timer_armed = need;
}

static void client_drop(struct client *cl, const char *why)
{
	struct control *c = cl->c;
	log_debug("control socket %s: dropping client %d: %s", c->path, cl->fd, why);
	if (cl->watching)
		evloop_unwatch(c->loop, cl->fd, NULL);
	close(cl->fd);
	for (size_t k = 0; k < c->n_clients; k++) {
		if (c->clients[k] == cl) {
			c->clients[k] = c->clients[--c->n_clients];
			break;
		}
	}
	free(cl->in);
	free(cl->out);
	free(cl);
	update_timer(c);
}

static void on_client(void *opaque, int fd, uint32_t events);

static int client_watch(struct client *cl, uint32_t events)
{
	if (cl->watching == events)
		return 0;
	if (cl->watching)
		evloop_unwatch(cl->c->loop, cl->fd, NULL);
	cl->watching = 0;
	int r = evloop_watch(cl->c->loop, cl->fd, events, NULL, on_client, cl);
	if (r == 0)
		cl->watching = events;
	return r;
}

/* Hands a finished reply (or an error building it) to the client's output. */
static void set_reply(struct client *cl, struct jsonw *w)
{
	char *text;
	size_t len;
	if (jsonw_finish(w, "\n", &text, &len) < 0) {
		log_err("control socket %s: could not build a reply", cl->c->path);
		cl->closing = true;
		return;
	}
	cl->out = text;
	cl->out_len = len;
	cl->out_off = 0;
	cl->out_since = now_ms();
}

static void reply_error(struct client *cl, const struct control_req *req, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void reply_error(struct client *cl, const struct control_req *req, const char *fmt, ...)
{
	char msg[PATH_MAX + 512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct jsonw w;
	jsonw_init(&w, CONTROL_REPLY_MAX);
	jsonw_obj_begin(&w, NULL);
	jsonw_str(&w, "error", msg);
	if (req && req->id)
		jsonw_raw(&w, "id", req->id->raw, req->id->raw_len);
	jsonw_obj_end(&w);
	set_reply(cl, &w);
}

/* {"ok":true,"id":...: the start of every successful reply */
static void reply_ok(struct jsonw *w, const struct control_req *req)
{
	jsonw_init(w, CONTROL_REPLY_MAX);
	jsonw_obj_begin(w, NULL);
	jsonw_bool(w, "ok", true);
	if (req->id)
		jsonw_raw(w, "id", req->id->raw, req->id->raw_len);
}

static const char *why(int r, const char *err)
{
	return err[0] ? err : strerror(-r);
}

static bool query_paused(struct control *c)
{
	struct control_status st = { 0 };
	c->ops->status(c->opaque, &st);
	return st.paused;
}

static void cmd_status(struct client *cl, const struct control_req *req)
{
	struct control *c = cl->c;
	struct control_status st = { 0 };
	struct jsonw w;
	c->ops->status(c->opaque, &st);
	reply_ok(&w, req);
	jsonw_str(&w, "state", st.paused ? "paused" : "running");
	jsonw_u64(&w, "vcpus", st.vcpus);
	jsonw_u64(&w, "memory", st.memory);
	jsonw_u64(&w, "uptime_ms", st.uptime_ms);
	if (st.arch)
		jsonw_str(&w, "arch", st.arch);
	if (st.backend)
		jsonw_str(&w, "backend", st.backend);
	jsonw_u64(&w, "pid", (uint64_t)getpid());
	jsonw_str(&w, "version", SMOLVM_VERSION);
	jsonw_u64(&w, "protocol", CONTROL_PROTOCOL);
	jsonw_u64(&w, "clients", c->n_clients);
	jsonw_obj_end(&w);
	set_reply(cl, &w);
}

static void reply_state(struct client *cl, const struct control_req *req)
{
	struct jsonw w;
	reply_ok(&w, req);
	jsonw_str(&w, "state", query_paused(cl->c) ? "paused" : "running");
	jsonw_obj_end(&w);
	set_reply(cl, &w);
}

static void cmd_pause(struct client *cl, const struct control_req *req)
{
	struct control *c = cl->c;
	char err[512] = "";
	if (!c->user_paused) {
		int r = c->ops->pause(c->opaque, err, sizeof(err));
		if (r < 0) {
			reply_error(cl, req, "cannot pause the machine: %s", why(r, err));
			return;
		}
		c->user_paused = true;
	}
	reply_state(cl, req);
}

static void cmd_resume(struct client *cl, const struct control_req *req)
{
	struct control *c = cl->c;
	char err[512] = "";
	if (!c->user_paused) {
		reply_error(cl, req, "the machine is not paused%s",
		            query_paused(c) ? " by a pause request" : "");
		return;
	}
	int r = c->ops->resume(c->opaque, err, sizeof(err));
	if (r < 0) {
		reply_error(cl, req, "cannot resume the machine: %s", why(r, err));
		return;
	}
	c->user_paused = false;
	reply_state(cl, req);
}

static void cmd_snapshot(struct client *cl, const struct control_req *req)
{
	struct control *c = cl->c;
	char err[512] = "";
	uint64_t t0 = now_ms();
	int r = c->ops->snapshot(c->opaque, req->path, req->stop, err, sizeof(err));
	uint64_t ms = now_ms() - t0;
	if (r < 0) {
		reply_error(cl, req, "snapshot to %s failed: %s", req->path, why(r, err));
		return;
	}
	if (req->stop)
		c->stopped = true;
	struct jsonw w;
	struct stat st;
	reply_ok(&w, req);
	jsonw_str(&w, "path", req->path);
	if (stat(req->path, &st) == 0)
		jsonw_u64(&w, "bytes", (uint64_t)st.st_size);
	jsonw_u64(&w, "ms", ms);
	jsonw_bool(&w, "stopped", req->stop);
	jsonw_obj_end(&w);
	set_reply(cl, &w);
}

/* The device list's common members of device @p d. */
static void write_device_head(struct jsonw *w, const struct control_device *d)
{
	jsonw_str(w, "name", d->name);
	jsonw_str(w, "type", d->type);
}

/* The device's MMIO (@p pio false) or port ranges as an array @p key of {base, size}. */
static void write_ranges(struct jsonw *w, const char *key, const struct control_device *d, bool pio)
{
	jsonw_arr_begin(w, key);
	for (unsigned k = 0; k < d->n_ranges; k++) {
		if (d->ranges[k].pio != pio)
			continue;
		jsonw_obj_begin(w, NULL);
		jsonw_u64(w, "base", d->ranges[k].base);
		jsonw_u64(w, "size", d->ranges[k].len);
		jsonw_obj_end(w);
	}
	jsonw_arr_end(w);
}

static void cmd_devices(struct client *cl, const struct control_req *req)
{
	struct control *c = cl->c;
	struct jsonw w;
	size_t n = c->ops->n_devices(c->opaque);
	reply_ok(&w, req);
	jsonw_arr_begin(&w, "devices");
	for (size_t i = 0; i < n; i++) {
		struct control_device d = { 0 };
		c->ops->device(c->opaque, i, &d);
		jsonw_obj_begin(&w, NULL);
		write_device_head(&w, &d);
		jsonw_str(&w, "plugin", d.plugin);
		write_ranges(&w, "mmio", &d, false);
		write_ranges(&w, "pio", &d, true);
		jsonw_arr_begin(&w, "irqs");
		for (unsigned k = 0; k < d.n_irqs; k++)
			jsonw_u64(&w, NULL, d.irqs[k]);
		jsonw_arr_end(&w);
		jsonw_u64(&w, "methods", d.n_methods);
		jsonw_obj_end(&w);
	}
	jsonw_arr_end(&w);
	jsonw_obj_end(&w);
	set_reply(cl, &w);
}

static void cmd_methods(struct client *cl, const struct control_req *req)
{
	struct control *c = cl->c;
	struct jsonw w;
	size_t n = c->ops->n_devices(c->opaque);
	reply_ok(&w, req);
	jsonw_arr_begin(&w, "devices");
	for (size_t i = 0; i < n; i++) {
		struct control_device d = { 0 };
		c->ops->device(c->opaque, i, &d);
		if (!d.n_methods)
			continue;
		jsonw_obj_begin(&w, NULL);
		write_device_head(&w, &d);
		jsonw_arr_begin(&w, "methods");
		for (uint32_t k = 0; k < d.n_methods; k++) {
			jsonw_obj_begin(&w, NULL);
			jsonw_str(&w, "name", d.methods[k].name);
			jsonw_str(&w, "signature", d.methods[k].signature);
			jsonw_str(&w, "help", d.methods[k].help);
			jsonw_obj_end(&w);
		}
		jsonw_arr_end(&w);
		jsonw_obj_end(&w);
	}
	jsonw_arr_end(&w);
	jsonw_obj_end(&w);
	set_reply(cl, &w);
}

/* Device @p name's index and its entry, or -1 after replying why. */
static long find_device(struct client *cl, const struct control_req *req, const char *name,
                        struct control_device *d)
{
	struct control *c = cl->c;
	size_t n = c->ops->n_devices(c->opaque);
	char known[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		c->ops->device(c->opaque, i, d);
		if (strcmp(d->name, name) == 0)
			return (long)i;
		if (used < sizeof(known)) {
			int k = snprintf(known + used, sizeof(known) - used, "%s%s",
			                 used ? ", " : "", d->name);
			used += k > 0 ? (size_t)k : 0;
		}
	}
	reply_error(cl, req, "no device named \"%.64s\" (devices: %s)", name, n ? known : "none");
	return -1;
}

/* The method's value as JSON: integers as numbers, a double as a number when finite (else
 * its text as a string: JSON has no infinity), void as nothing. */
static void write_value(struct jsonw *w, const char *sig, const char *text)
{
	char ret = sig[0];
	if (ret == 'v')
		return;
	if (ret == 'd') {
		char *end;
		double d = strtod(text, &end);
		if (*end || !isfinite(d)) {
			jsonw_str(w, "value", text);
			return;
		}
	}
	jsonw_raw(w, "value", text, strlen(text));
}

static void cmd_call(struct client *cl, const struct control_req *req)
{
	struct control *c = cl->c;
	struct control_device d = { 0 };
	char err[512] = "";
	long i = find_device(cl, req, req->device, &d);
	if (i < 0)
		return;
	const struct smol_method *m = NULL;
	for (uint32_t k = 0; k < d.n_methods && !m; k++)
		if (strcmp(d.methods[k].name, req->method) == 0)
			m = &d.methods[k];
	if (!m) {
		reply_error(cl, req, "device \"%s\" has no method \"%.64s\"%s", d.name, req->method,
		            d.n_methods ? " (`smolvm ctl SOCK methods` lists them)"
		                        : ": it exports none");
		return;
	}
	struct method_result *res = calloc(1, sizeof(*res));
	if (!res) {
		reply_error(cl, req, "out of memory");
		return;
	}
	int r = c->ops->call(c->opaque, (size_t)i, m, req->args, req->n_args, res, err,
	                     sizeof(err));
	if (r < 0) {
		reply_error(cl, req, "%s.%s %s: %s", d.name, m->name, m->signature, why(r, err));
		free(res);
		return;
	}
	struct jsonw w;
	reply_ok(&w, req);
	jsonw_str(&w, "device", d.name);
	jsonw_str(&w, "method", m->name);
	jsonw_str(&w, "signature", m->signature);
	write_value(&w, m->signature, res->value);
	jsonw_arr_begin(&w, "out");
	for (unsigned k = 0; k < res->n_out; k++)
		jsonw_str(&w, NULL, res->out[k]);
	jsonw_arr_end(&w);
	jsonw_obj_end(&w);
	free(res);
	set_reply(cl, &w);
}

static void cmd_stats(struct client *cl, const struct control_req *req)
{
	struct control *c = cl->c;
	struct jsonw w;
	reply_ok(&w, req);
	c->ops->stats(c->opaque, &w);
	jsonw_obj_end(&w);
	set_reply(cl, &w);
}

static void handle_line(struct client *cl, const char *line, size_t len)
{
	struct control_req req;
	char err[256];
	int r = control_parse_request(line, len, &req, err, sizeof(err));
	if (r < 0) {
		reply_error(cl, NULL, "%s", err);
	} else if (cl->c->stopped && req.cmd != CONTROL_STATUS) {
		reply_error(cl, &req, "the machine is stopping (a snapshot with stop was taken)");
	} else {
		switch (req.cmd) {
		case CONTROL_STATUS: cmd_status(cl, &req); break;
		case CONTROL_PAUSE: cmd_pause(cl, &req); break;
		case CONTROL_RESUME: cmd_resume(cl, &req); break;
		case CONTROL_SNAPSHOT: cmd_snapshot(cl, &req); break;
		case CONTROL_DEVICES: cmd_devices(cl, &req); break;
		case CONTROL_METHODS: cmd_methods(cl, &req); break;
		case CONTROL_CALL: cmd_call(cl, &req); break;
		case CONTROL_STATS: cmd_stats(cl, &req); break;
		}
	}
	control_req_free(&req);
}

/* Writes what it can of the reply: 0 (done or would block) or a negative errno. */
static int client_flush(struct client *cl)
{
	while (cl->out) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		cl->out_off += (size_t)n;
		if (cl->out_off == cl->out_len) {
			free(cl->out);
			cl->out = NULL;
			cl->out_since = 0;
		}
	}
	return 0;
}

/* Handles the complete lines it has, one reply at a time; then watches for what it waits
 * for. Drops the client when it is done or misbehaves. */
static void client_progress(struct client *cl)
{
	for (;;) {
		if (cl->out) {
			int r = client_flush(cl);
			if (r < 0) {
				client_drop(cl, strerror(-r));
				return;
			}
			if (cl->out)
				break; /* the socket is full: wait for room */
		}
		if (cl->closing) {
			client_drop(cl, "closed after an error");
			return;
		}
		char *start = cl->in + cl->in_off;
		char *nl = memchr(start, '\n', cl->in_len - cl->in_off);
		if (nl) {
			handle_line(cl, start, (size_t)(nl - start));
			cl->in_off += (size_t)(nl - start) + 1;
			cl->line_since = cl->in_len > cl->in_off ? now_ms() : 0;
			continue;
		}
		if (cl->in_len - cl->in_off > CONTROL_LINE_MAX) {
			reply_error(cl, NULL, "request line longer than %d bytes",
			            CONTROL_LINE_MAX);
			cl->closing = true;
			continue;
		}
		if (cl->eof) {
			client_drop(cl, cl->in_len > cl->in_off ? "disconnected mid-request"
			                                        : "disconnected");
			return;
		}
		break;
	}
	/* what is left of the input goes to the front, once per round (not once per line) */
	if (cl->in_off) {
		memmove(cl->in, cl->in + cl->in_off, cl->in_len - cl->in_off);
		cl->in_len -= cl->in_off;
		cl->in_off = 0;
	}
	if (client_watch(cl, cl->out ? SMOL_FD_OUT : SMOL_FD_IN) < 0) {
		client_drop(cl, "cannot watch it");
		return;
	}
	update_timer(cl->c);
}

static void on_client(void *opaque, int fd, uint32_t events)
{
	struct client *cl = opaque;
	(void)fd;
	if (!cl->out && !cl->eof && !cl->closing && (events & (SMOL_FD_IN | SMOL_FD_HUP))) {
		if (cl->in_cap == cl->in_len) {
			size_t cap = cl->in_cap ? cl->in_cap * 2 : 4096;
			if (cap > CONTROL_LINE_MAX + 1)
				cap = CONTROL_LINE_MAX + 1;
			char *b = realloc(cl->in, cap);
			if (!b) {
				client_drop(cl, "out of memory");
				return;
			}
			cl->in = b;
			cl->in_cap = cap;
		}
		/* one read per round: other fds get their turn */
		ssize_t n =
		        recv(cl->fd, cl->in + cl->in_len, cl->in_cap - cl->in_len, MSG_DONTWAIT);
		if (n > 0) {
			if (cl->in_len == 0)
				cl->line_since = now_ms();
			cl->in_len += (size_t)n;
		} else if (n == 0) {
			cl->eof = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			client_drop(cl, strerror(errno));
			return;
		}
	}
	client_progress(cl);
}

static void refuse(int fd, const char *line)
{
	if (send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* it gets nothing more than the close */
	}
	close(fd);
}

static void on_listen(void *opaque, int fd, uint32_t events)
{
	struct control *c = opaque;
	(void)events;
	for (int k = 0; k < 2 * CONTROL_MAX_CLIENTS; k++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("control socket %s: accept: %s", c->path, strerror(errno));
			return;
		}
		if (c->n_clients == CONTROL_MAX_CLIENTS) {
			refuse(cfd, "{\"error\":\"too many clients\"}\n");
			continue;
		}
		struct client *cl = calloc(1, sizeof(*cl));
		if (!cl) {
			refuse(cfd, "{\"error\":\"out of memory\"}\n");
			continue;
		}
		cl->c = c;
		cl->fd = cfd;
		c->clients[c->n_clients++] = cl;
		if (client_watch(cl, SMOL_FD_IN) < 0)
			client_drop(cl, "cannot watch it");
	}
}

static void on_timer(void *opaque, int fd, uint32_t events)
{
	struct control *c = opaque;
	uint64_t ticks;
	(void)events;
	if (read(fd, &ticks, sizeof(ticks)) < 0) {
		/* not expired yet */
	}
	uint64_t now = now_ms();
	for (size_t k = c->n_clients; k-- > 0;) {
		struct client *cl = c->clients[k];
		if (cl->out && now - cl->out_since >= c->write_ms)
			client_drop(cl, "its reply could not be written (it does not read)");
		else if (!cl->out && cl->in_len && now - cl->line_since >= c->line_ms)
			client_drop(cl, "its request line stayed incomplete");
	}
	update_timer(c);
}

void control_set_timeouts(struct control *c, unsigned write_ms, unsigned line_ms)
{
	struct itimerspec off = { 0 };
	c->write_ms = write_ms;
	c->line_ms = line_ms;
	/* re-armed with the new period when needed */
	timerfd_settime(c->timer_fd, 0, &off, NULL);
	c->timer_armed = false;
	update_timer(c);
}

/* Refuses @p path unless it is absent or a socket nobody listens on (then removed). */
static int clear_path(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		int e = errno;
		log_err("control socket %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_err("control socket %s: the file exists and is not a socket; not replacing it",
		        path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		log_err("control socket %s: socket: %s", path, strerror(e));
		return -e;
	}
	int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int e = errno;
	close(fd);
	if (r == 0) {
		log_err("control socket %s: another process is serving it", path);
		return -EADDRINUSE;
	}
	if (e != ECONNREFUSED) {
		log_err("control socket %s: cannot tell whether it is in use: %s", path,
		        strerror(e));
		return -e;
	}
	log_debug("control socket %s: replacing a stale socket", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		e = errno;
		log_err("control socket %s: cannot remove the stale socket: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

/* Logs why @p what failed on @p path (errno) and returns -errno. */
static int sys_fail(const char *path, const char *what)
{
	int e = errno;
	log_err("control socket %s: %s: %s", path, what, strerror(e));
	return -e;
}

static int control_bind(struct control *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int r;
	if (path[0] == '\0' || strlen(path) >= sizeof(sa.sun_path)) {
		log_err("control socket '%s': a socket path must have 1 to %zu bytes", path,
		        sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((r = clear_path(path, &sa)) < 0)
		return r;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return sys_fail(path, "socket");
	if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return sys_fail(path, "bind");
	/* nobody can connect before listen(): the mode is set first */
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0)
		r = sys_fail(path, "cannot make it private (mode 0600)");
	else if (listen(c->fd, CONTROL_MAX_CLIENTS) < 0)
		r = sys_fail(path, "listen");
	if (r < 0) {
		unlink(path);
		return r;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	return 0;
}

int control_open(struct evloop *loop, const char *path, const struct control_ops *ops, void *opaque,
                 struct control **out)
{
	int r;
	struct control *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c || !(c->path = strdup(path))) {
		free(c);
		log_err("control socket %s: out of memory", path);
		return -ENOMEM;
	}
	c->loop = loop;
	c->ops = ops;
	c->opaque = opaque;
	c->fd = c->timer_fd = -1;
	c->write_ms = 2000;
	c->line_ms = 10000;
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->timer_fd < 0) {
		r = -errno;
		log_err("control socket %s: timerfd: %s", path, strerror(-r));
		goto err;
	}
	if ((r = control_bind(c, path)) < 0)
		goto err;
	if ((r = evloop_watch(loop, c->timer_fd, SMOL_FD_IN, NULL, on_timer, c)) < 0 ||
	    (r = evloop_watch(loop, c->fd, SMOL_FD_IN, NULL, on_listen, c)) < 0) {
		log_err("control socket %s: cannot watch it: %s", path, strerror(-r));
		evloop_unwatch(loop, c->timer_fd, NULL);
		unlink(path);
		goto err;
	}
	*out = c;
	return 0;
err:
	if (c->fd >= 0)
		close(c->fd);
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	free(c->path);
	free(c);
	return r;
}

/* Waits (up to CLOSE_FLUSH_MS in all) for the replies still being written. */
static void flush_all(struct control *c)
{
	uint64_t end = now_ms() + CLOSE_FLUSH_MS;
	for (size_t k = 0; k < c->n_clients; k++) {
		struct client *cl = c->clients[k];
		while (cl->out && client_flush(cl) == 0 && cl->out) {
			uint64_t now = now_ms();
			if (now >= end)
				return;
			struct pollfd pfd = { .fd = cl->fd, .events = POLLOUT };
			if (poll(&pfd, 1, (int)(end - now)) <= 0)
				return;
		}
	}
}

void control_close(struct control *c)
{
	struct stat st;
	if (!c)
		return;
	flush_all(c);
	while (c->n_clients)
		client_drop(c->clients[c->n_clients - 1], "the control socket is closing");
	evloop_unwatch(c->loop, c->fd, NULL);
	evloop_unwatch(c->loop, c->timer_fd, NULL);
	close(c->fd);
	close(c->timer_fd);
	/* another machine may have replaced it since: only our own socket goes */
	if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c->path);
	free(c);
}
