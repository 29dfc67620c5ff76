/* Unit tests of the control socket's client (`smolvm ctl`, core/ctl.c) against the test
 * server and against servers that misbehave, and of the request parser on its own
 * (control_parse_request, the fuzzer's entry point). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control-harness.h"

static char out[8192], err[8192];

static void slurp(FILE *f, char *buf, size_t cap)
{
	rewind(f);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Runs ctl_main on SOCK @p a0 with the other words, capturing stdout and stderr. */
static int ctl(const char *a0, ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;
	va_start(ap, a0);
	for (const char *a = a0; a && argc < 15; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;

	FILE *o = tmpfile(), *e = tmpfile();
	fflush(stdout);
	fflush(stderr);
	int so = dup(1), se = dup(2);
	dup2(fileno(o), 1);
	dup2(fileno(e), 2);
	int status = ctl_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(o, out, sizeof(out));
	slurp(e, err, sizeof(err));
	return status;
}

static void has(const char *text, const char *what)
{
	cr_assert(strstr(text, what), "'%s' lacks '%s'", text, what);
}

TestSuite(ctl, .init = setup, .fini = teardown, .timeout = 30);

Test(ctl, commands_succeed)
{
	cr_assert_eq(ctl(sock, "status", NULL), 0, "%s", err);
	has(out, "state: running\n");
	has(out, "vcpus: 2\n");
	has(out, "memory: 268435456\n");
	has(out, "uptime_ms: 1234\n");
	has(out, "backend: kvm\n");
	cr_assert_eq(ctl(sock, "pause", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "paused\n");
	cr_assert_eq(calls(&fake.pause_calls, &fake), 1);
	cr_assert_eq(ctl(sock, "resume", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "running\n");
	cr_assert_eq(calls(&fake.resume_calls, &fake), 1);
	cr_assert_str_eq(err, "");
}

Test(ctl, snapshot_paths_are_made_absolute)
{
	char cwd[PATH_MAX], want[PATH_MAX], sub[PATH_MAX];
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	/* relative to ctl's own directory, not the machine's */
	cr_assert_eq(chdir(dir), 0);
	int status = ctl(sock, "snapshot", "sub dir/../m.smolmachine", NULL);
	cr_assert_eq(chdir(cwd), 0);
	snprintf(want, sizeof(want), "%s/sub dir/../m.smolmachine", dir);
	cr_assert_str_eq(fake_path(), want);
	/* "sub dir" does not exist: the machine failed, and said why */
	cr_assert_eq(status, 1, "%s", out);
	has(err, strerror(ENOENT));
	has(err, want);

	snprintf(sub, sizeof(sub), "%s/sub dir", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);
	cr_assert_eq(chdir(dir), 0);
	status = ctl(sock, "snapshot", "sub dir/../m.smolmachine", NULL);
	cr_assert_eq(chdir(cwd), 0);
	cr_assert_eq(status, 0, "%s", err);
	cr_assert_eq(fake_stop(), false);
	has(out, "snapshot written to ");
	has(out, "(1234 bytes, ");

	snprintf(want, sizeof(want), "%s/abs.smolmachine", dir);
	cr_assert_eq(ctl(sock, "snapshot", "--stop", want, NULL), 0, "%s", err);
	cr_assert_str_eq(fake_path(), want);
	cr_assert_eq(fake_stop(), true);
	has(out, "the machine is stopping");
}

Test(ctl, refusals_exit_1_with_the_message)
{
	cr_assert_eq(ctl(sock, "resume", NULL), 1);
	has(err, "the machine is not paused");
	cr_assert_str_eq(out, "");
	pthread_mutex_lock(&fake.lock);
	fake.snapshot_fail = -EIO;
	fake.fail_msg = "disk full \"really\"";
	pthread_mutex_unlock(&fake.lock);
	cr_assert_eq(ctl(sock, "snapshot", "/x.smolmachine", NULL), 1);
	has(err, "snapshot to /x.smolmachine failed: disk full \"really\"");
}

Test(ctl, devices_methods_and_calls)
{
	cr_assert_eq(ctl(sock, "devices", NULL), 0, "%s", err);
	has(out, "com1             uart-16550       - 0x3f8+0x8 [4] 0\n");
	has(out, "thermo           fake-sensor      0xd0000000+0x1000 - [5] 5\n");
	cr_assert_eq(ctl(sock, "methods", NULL), 0, "%s", err);
	has(out, "thermo (fake-sensor):\n");
	has(out, "  thermo.set ");
	has(out, "i(d)         sets the value\n");
	cr_assert(!strstr(out, "com1"), "%s", out);

	cr_assert_eq(ctl(sock, "call", "thermo.set", "36.6", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "0\n");
	cr_assert_eq(ctl(sock, "call", "thermo.get", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "36.600000000000001\n");
	cr_assert_eq(ctl(sock, "call", "thermo.name", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "thermo \"one\"\n\n");
	cr_assert_eq(ctl(sock, "call", "--json", "thermo.add", "2", "-5", NULL), 0, "%s", err);
	has(out, "\"value\":-3");
	has(out, "\"out\":[]");

	/* refusals: the machine's message, status 1, nothing called */
	int before = calls(&fake.call_calls, &fake);
	cr_assert_eq(ctl(sock, "call", "thermo.add", "2", NULL), 1);
	has(err, "smolvm: ctl: ");
	has(err, "thermo.add l(ll): ");
	cr_assert_eq(ctl(sock, "call", "thermo.add", "2", "x", NULL), 1);
	has(err, "argument 2");
	cr_assert_eq(ctl(sock, "call", "oven.get", NULL), 1);
	has(err, "no device named \"oven\"");
	cr_assert_eq(calls(&fake.call_calls, &fake), before + 2, "refused by method_call");
	/* usage: status 2, nothing sent */
	cr_assert_eq(ctl(sock, "call", NULL), 2);
	has(err, "call needs DEV.METHOD");
	cr_assert_eq(ctl(sock, "call", "thermo", NULL), 2);
	cr_assert_eq(ctl(sock, "call", ".get", NULL), 2);
	cr_assert_eq(ctl(sock, "call", "thermo.", NULL), 2);
	cr_assert_eq(ctl(sock, "methods", "x", NULL), 2);
	cr_assert_eq(calls(&fake.call_calls, &fake), before + 2);
}

Test(ctl, stats_for_people_and_as_json)
{
	cr_assert_eq(ctl(sock, "stats", NULL), 0, "%s", err);
	has(out, "uptime 1.2 s");
	has(out, "vCPU 0: 0 exits");
	cr_assert_eq(ctl(sock, "stats", "--json", NULL), 0, "%s", err);
	cr_assert_eq(strncmp(out, "{\"ok\":true,\"uptime_ms\":1234,", 28), 0, "%s", out);
	cr_assert_eq(ctl(sock, "stats", "--watch", NULL), 2);
	cr_assert_eq(calls(&fake.stats_calls, &fake), 2);
}

Test(ctl, top_refreshes_on_one_connection)
{
	char *argv[] = { sock, "--count", "3", "--interval", "100", NULL };
	FILE *o = tmpfile();
	fflush(stdout);
	int so = dup(1);
	dup2(fileno(o), 1);
	int status = top_main(5, argv);
	fflush(stdout);
	dup2(so, 1);
	close(so);
	slurp(o, out, sizeof(out));
	cr_assert_eq(status, 0);
	cr_assert_eq(calls(&fake.stats_calls, &fake), 3);
	int n = 0;
	for (const char *p = out; (p = strstr(p, "smolvm top ")); p++)
		n++;
	cr_assert_eq(n, 3, "%s", out);
	cr_assert_null(strstr(out, "\033["), "no terminal: no escapes");
	char *bad[] = { sock, "--interval", "5", NULL };
	cr_assert_eq(top_main(3, bad), 2);
}

Test(ctl, bad_usage_exits_2_without_asking)
{
	cr_assert_eq(ctl(sock, NULL), 2);
	has(err, "usage: smolvm ctl SOCK COMMAND");
	cr_assert_eq(ctl(sock, "reboot", NULL), 2);
	has(err, "unknown command 'reboot'");
	cr_assert_eq(ctl(sock, "snapshot", NULL), 2);
	has(err, "snapshot needs a FILE");
	cr_assert_eq(ctl(sock, "snapshot", "", NULL), 2);
	cr_assert_eq(ctl(sock, "snapshot", "a", "b", NULL), 2);
	has(err, "one FILE");
	cr_assert_eq(ctl(sock, "snapshot", "--force", "a", NULL), 2);
	has(err, "unknown option '--force'");
	cr_assert_eq(ctl(sock, "status", "now", NULL), 2);
	has(err, "status takes no arguments");
	cr_assert_eq(ctl(sock, "--help", NULL), 2);
	cr_assert_eq(calls(&fake.status_calls, &fake) + calls(&fake.snapshot_calls, &fake), 0);
}

Test(ctl, no_machine_exits_2)
{
	char path[200];
	snprintf(path, sizeof(path), "%s/none.sock", dir);
	cr_assert_eq(ctl(path, "status", NULL), 2);
	has(err, "no such socket");
	/* a socket file nobody listens on */
	struct sockaddr_un sa;
	sun_set(&sa, path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	cr_assert_eq(ctl(path, "status", NULL), 2);
	has(err, "nobody is listening");
	/* a regular file */
	snprintf(path, sizeof(path), "%s/plain", dir);
	fclose(fopen(path, "w"));
	cr_assert_eq(ctl(path, "status", NULL), 2);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	cr_assert_eq(ctl(longp, "status", NULL), 2);
	has(err, "a socket path has 1 to 107 bytes");
}

/* A server that answers one connection with @p reply (NULL: closes without a word). */
struct rogue {
	int lfd;
	const char *reply;
	char path[200];
	pthread_t t;
};

static void *rogue_serve(void *arg)
{
	struct rogue *r = arg;
	int fd = accept(r->lfd, NULL, NULL);
	char ch;
	while (recv(fd, &ch, 1, 0) == 1 && ch != '\n')
		;
	if (r->reply && send(fd, r->reply, strlen(r->reply), MSG_NOSIGNAL) < 0)
		cr_log_warn("rogue send: %s", strerror(errno));
	close(fd);
	return NULL;
}

static int rogue_ctl(const char *reply)
{
	struct rogue r = { .reply = reply };
	struct sockaddr_un sa;
	snprintf(r.path, sizeof(r.path), "%s/rogue.sock", dir);
	unlink(r.path);
	sun_set(&sa, r.path);
	r.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(r.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(r.lfd, 1), 0);
	cr_assert_eq(pthread_create(&r.t, NULL, rogue_serve, &r), 0);
	int status = ctl(r.path, "status", NULL);
	pthread_join(r.t, NULL);
	close(r.lfd);
	return status;
}

Test(ctl, a_machine_that_fails_mid_exchange_exits_1)
{
	cr_assert_eq(rogue_ctl(NULL), 1);
	has(err, "closed the connection without a reply");
	cr_assert_eq(rogue_ctl("{\"ok\":true"), 1);
	has(err, "without a reply");
	cr_assert_eq(rogue_ctl("garbage\n"), 1);
	has(err, "reply is not valid");
	cr_assert_eq(rogue_ctl("{\"ok\":false}\n"), 1);
	has(err, "neither \"ok\" nor \"error\"");
	cr_assert_eq(rogue_ctl("{\"error\":\"no \\u00e9\"}\n"), 1);
	has(err, "status: no \xc3\xa9");
	cr_assert_eq(rogue_ctl("{\"ok\":true,\"state\":\"paused\",\"new\":{\"x\":[1]}}\n"), 0);
	has(out, "new: {\"x\":[1]}");
}

/* ---- the request parser alone */

static int req(const char *line, struct control_req *r, char *msg)
{
	return control_parse_request(line, strlen(line), r, msg, 256);
}

Test(ctl_request, fields)
{
	struct control_req r;
	char msg[256];
	cr_assert_eq(
	        req("{\"cmd\":\"snapshot\",\"path\":\"/a\\\"b\\u00e9\",\"stop\":true,\"id\":5}", &r,
	            msg),
	        0, "%s", msg);
	cr_assert_eq(r.cmd, CONTROL_SNAPSHOT);
	cr_assert_str_eq(r.path, "/a\"b\xc3\xa9");
	cr_assert(r.stop);
	cr_assert_not_null(r.id);
	control_req_free(&r);
	cr_assert_eq(req(" {\"cmd\" : \"resume\"}\r", &r, msg), 0, "%s", msg);
	cr_assert_eq(r.cmd, CONTROL_RESUME);
	cr_assert_null(r.id);
	cr_assert_null(r.path);
	control_req_free(&r);
	cr_assert_eq(req("{\"cmd\":\"snapshot\",\"path\":\"/a\",\"stop\":false}", &r, msg), 0);
	cr_assert(!r.stop);
	control_req_free(&r);
}

Test(ctl_request, limits)
{
	struct control_req r;
	char msg[256];
	static char line[PATH_MAX + 64];
	int n = snprintf(line, sizeof(line), "{\"cmd\":\"snapshot\",\"path\":\"/");
	memset(line + n, 'p', PATH_MAX - 1);
	snprintf(line + n + PATH_MAX - 1, sizeof(line) - (size_t)n - PATH_MAX + 1, "\"}");
	cr_assert_eq(req(line, &r, msg), -EINVAL);
	has(msg, "longer than");
	control_req_free(&r);
	line[n + PATH_MAX - 2] = '"';
	line[n + PATH_MAX - 1] = '}';
	line[n + PATH_MAX] = '\0';
	cr_assert_eq(req(line, &r, msg), 0, "%s", msg);
	cr_assert_eq(strlen(r.path), PATH_MAX - 1);
	control_req_free(&r);
	/* a hostile, unterminated \u after a valid prefix */
	cr_assert_eq(control_parse_request("{\"cmd\":\"\\u", 10, &r, msg, sizeof(msg)), -EINVAL);
	control_req_free(&r);
}
