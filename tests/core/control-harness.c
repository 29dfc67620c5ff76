/* control-harness.c: a control socket server on a real event loop thread with fake machine
 * ops that record their calls, and raw-socket client helpers, for test-control.c and
 * test-ctl.c. */
#include "control-harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- fake machine */

static void f_status(void *o, struct control_status *st)
{
	struct fake *f = o;
	pthread_mutex_lock(&f->lock);
	f->status_calls++;
	st->paused = f->depth > 0;
	st->vcpus = 2;
	st->memory = 256ull << 20;
	st->uptime_ms = 1234;
	st->arch = "x86_64";
	st->backend = "kvm";
	pthread_mutex_unlock(&f->lock);
}

static int f_pause(void *o, char *err, size_t errlen)
{
	struct fake *f = o;
	int r = 0;
	pthread_mutex_lock(&f->lock);
	f->pause_calls++;
	if (f->pause_fail) {
		r = f->pause_fail;
		if (f->fail_msg)
			snprintf(err, errlen, "%s", f->fail_msg);
	} else {
		f->depth++;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int f_resume(void *o, char *err, size_t errlen)
{
	struct fake *f = o;
	int r = 0;
	(void)err, (void)errlen;
	pthread_mutex_lock(&f->lock);
	f->resume_calls++;
	if (f->depth == 0)
		r = -EINVAL;
	else
		f->depth--;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int f_snapshot(void *o, const char *path, bool stop, char *err, size_t errlen)
{
	struct fake *f = o;
	int r = 0;
	pthread_mutex_lock(&f->lock);
	f->snapshot_calls++;
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->stop = stop;
	if (f->snapshot_fail) {
		r = f->snapshot_fail;
		if (f->fail_msg)
			snprintf(err, errlen, "%s", f->fail_msg);
	} else {
		char data[1234];
		memset(data, 'S', sizeof(data));
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, data, sizeof(data)) != (ssize_t)sizeof(data) || fsync(fd))
			r = -errno;
		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* a fake device's methods: real functions, called through method_call (libffi) */
static int32_t m_set(void *state, double v)
{
	struct fake *f = state;
	f->set_calls++;
	if (v > 1000)
		return -ERANGE;
	f->value = v;
	return 0;
}

static double m_get(void *state)
{
	return ((struct fake *)state)->value;
}

static void m_name(void *state, char *buf, size_t len)
{
	(void)state;
	snprintf(buf, len, "thermo \"one\"\n");
}

static int64_t m_add(void *state, int64_t a, int64_t b)
{
	(void)state;
	return a + b;
}

static double m_inf(void *state)
{
	(void)state;
	return 1e308 * 10;
}

static const struct smol_method fake_methods[] = {
	{ "set", (void (*)(void))m_set, "i(d)", "sets the value" },
	{ "get", (void (*)(void))m_get, "d()", "the value" },
	{ "name", (void (*)(void))m_name, "v(S)", "the name" },
	{ "add", (void (*)(void))m_add, "l(ll)", "a + b" },
	{ "inf", (void (*)(void))m_inf, "d()", "infinity" },
};

static size_t f_n_devices(void *o)
{
	(void)o;
	return 2;
}

static void f_device(void *o, size_t i, struct control_device *d)
{
	(void)o;
	memset(d, 0, sizeof(*d));
	if (i == 0) {
		d->name = "com1";
		d->type = "uart-16550";
		d->plugin = "/p/uart-16550.so";
		d->n_ranges = 1;
		d->ranges[0].base = 0x3f8;
		d->ranges[0].len = 8;
		d->ranges[0].pio = true;
		d->n_irqs = 1;
		d->irqs[0] = 4;
	} else {
		d->name = "thermo";
		d->type = "fake-sensor";
		d->plugin = "/p/fake-sensor.so";
		d->n_ranges = 1;
		d->ranges[0].base = 0xd0000000;
		d->ranges[0].len = 0x1000;
		d->n_irqs = 1;
		d->irqs[0] = 5;
		d->methods = fake_methods;
		d->n_methods = sizeof(fake_methods) / sizeof(fake_methods[0]);
	}
}

static int f_call(void *o, size_t i, const struct smol_method *m, const char *const *args,
                  unsigned n, struct method_result *res, char *err, size_t errlen)
{
	struct fake *f = o;
	cr_assert_eq(i, 1, "only thermo has methods");
	pthread_mutex_lock(&f->lock);
	f->call_calls++;
	int r = method_call(m, f, args, n, res, err, errlen);
	pthread_mutex_unlock(&f->lock);
	return r;
}

static void f_stats(void *o, struct jsonw *w)
{
	struct fake *f = o;
	pthread_mutex_lock(&f->lock);
	f->stats_calls++;
	pthread_mutex_unlock(&f->lock);
	jsonw_u64(w, "uptime_ms", 1234);
	jsonw_arr_begin(w, "vcpus");
	jsonw_obj_begin(w, NULL);
	jsonw_u64(w, "index", 0);
	jsonw_obj_end(w);
	jsonw_arr_end(w);
}

const struct control_ops fake_ops = {
	.status = f_status,
	.pause = f_pause,
	.resume = f_resume,
	.snapshot = f_snapshot,
	.n_devices = f_n_devices,
	.device = f_device,
	.call = f_call,
	.stats = f_stats,
};

int calls(int *field, struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	int v = *field;
	pthread_mutex_unlock(&f->lock);
	return v;
}

const char *fake_path(void)
{
	static char copy[PATH_MAX];
	pthread_mutex_lock(&fake.lock);
	memcpy(copy, fake.path, sizeof(copy));
	pthread_mutex_unlock(&fake.lock);
	return copy;
}

bool fake_stop(void)
{
	pthread_mutex_lock(&fake.lock);
	bool stop = fake.stop;
	pthread_mutex_unlock(&fake.lock);
	return stop;
}

/* ---- the server, on an event loop thread */

struct evloop loop;
struct control *srv;
struct fake fake = { .lock = PTHREAD_MUTEX_INITIALIZER };
static pthread_t loop_thread;
static atomic_int loop_stop;
char dir[64], sock[128];

static void *run_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&loop_stop))
		evloop_run_once(&loop, 50);
	return NULL;
}

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/smolvm-control-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/ctl.sock", dir);
	cr_assert_eq(evloop_init(&loop), 0);
}

/* Starts serving @p sock; @p write_ms / @p line_ms: 0 keeps the defaults. */
void serve(unsigned write_ms, unsigned line_ms)
{
	cr_assert_eq(control_open(&loop, sock, &fake_ops, &fake, &srv), 0);
	if (write_ms)
		control_set_timeouts(srv, write_ms, line_ms);
	atomic_store(&loop_stop, 0);
	cr_assert_eq(pthread_create(&loop_thread, NULL, run_loop, NULL), 0);
}

void setup(void)
{
	make_dir();
	serve(0, 0);
}

void stop_serving(void)
{
	atomic_store(&loop_stop, 1);
	evloop_wake(&loop);
	pthread_join(loop_thread, NULL);
	control_close(srv);
	srv = NULL;
}

void teardown(void)
{
	if (srv)
		stop_serving();
	evloop_free(&loop);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* ---- raw clients */

void sun_set(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);
	cr_assert_lt(n, sizeof(sa->sun_path), "socket path %s too long", path);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
}

int connect_to(const char *path)
{
	struct sockaddr_un sa;
	sun_set(&sa, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", path,
	             strerror(errno));
	struct timeval tv = { .tv_sec = 5 }; /* a broken server fails the test, not hangs it */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

void send_bytes(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		cr_assert_gt(k, 0, "send: %s", strerror(errno));
		s += k;
		n -= (size_t)k;
	}
}

void send_str(int fd, const char *s)
{
	send_bytes(fd, s, strlen(s));
}

/* One reply line (newline stripped) into @p buf; -1 at EOF, -2 on a timeout/error. */
int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	for (;;) {
		char ch;
		ssize_t k = recv(fd, &ch, 1, 0);
		/* a server closing with our bytes unread resets the connection: closed too */
		if (k == 0 || (k < 0 && errno == ECONNRESET))
			return n ? -2 : -1;
		if (k < 0)
			return -2;
		if (ch == '\n')
			break;
		cr_assert_lt(n + 1, cap, "reply too long");
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return (int)n;
}

void expect_line(int fd, char *buf, size_t cap)
{
	int r = read_line(fd, buf, cap);
	cr_assert_geq(r, 0, "no reply (%d)", r);
}

void expect_eof(int fd)
{
	char buf[256];
	cr_assert_eq(read_line(fd, buf, sizeof(buf)), -1, "expected the server to close");
}

/* Sends one request on a new connection and returns its reply (static buffer). */
const char *request(const char *line)
{
	static char buf[8192];
	int fd = connect_to(sock);
	send_str(fd, line);
	expect_line(fd, buf, sizeof(buf));
	close(fd);
	return buf;
}

/* Parses a reply (static object, freed on the next call). */
const struct json_obj *parsed(const char *reply)
{
	static struct json_obj o;
	char err[128];
	json_obj_free(&o);
	cr_assert_eq(json_parse_object(reply, strlen(reply), &o, err, sizeof(err)), 0,
	             "reply '%s' is not JSON: %s", reply, err);
	return &o;
}

const char *str_member(const struct json_obj *o, const char *key)
{
	const struct json_value *v = json_get(o, key);
	cr_assert(v && v->type == JSON_STRING, "no string \"%s\"", key);
	return v->str;
}

uint64_t u64_member(const struct json_obj *o, const char *key)
{
	uint64_t n;
	const struct json_value *v = json_get(o, key);
	cr_assert(v && json_number_u64(v, &n) == 0, "no integer \"%s\"", key);
	return n;
}

bool is_ok(const char *reply)
{
	const struct json_value *v = json_get(parsed(reply), "ok");
	return v && v->type == JSON_BOOL && v->b && !json_get(parsed(reply), "error");
}

/* Expects an error reply whose message contains @p what. */
void expect_error(const char *reply, const char *what)
{
	const char *msg = str_member(parsed(reply), "error");
	cr_assert(strstr(msg, what), "error '%s' lacks '%s'", msg, what);
	cr_assert_null(json_get(parsed(reply), "ok"));
}
