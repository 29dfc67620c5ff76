/* Unit tests of the control socket's server (core/control.c): every command against fake
 * machine ops on a real event loop, malformed and hostile requests, many clients, clients
 * that do not read or never finish a line, and the socket file itself. */
#define _GNU_SOURCE /* POLLRDHUP */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control-harness.h"

TestSuite(control, .init = setup, .fini = teardown, .timeout = 30);

static uint64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

Test(control, status)
{
	const char *r = request("{\"cmd\":\"status\"}\n");
	cr_assert(is_ok(r), "%s", r);
	const struct json_obj *o = parsed(r);
	cr_assert_str_eq(str_member(o, "state"), "running");
	cr_assert_eq(u64_member(o, "vcpus"), 2);
	cr_assert_eq(u64_member(o, "memory"), 256ull << 20);
	cr_assert_eq(u64_member(o, "uptime_ms"), 1234);
	cr_assert_str_eq(str_member(o, "arch"), "x86_64");
	cr_assert_str_eq(str_member(o, "backend"), "kvm");
	cr_assert_eq(u64_member(o, "pid"), (uint64_t)getpid());
	cr_assert_eq(u64_member(o, "protocol"), CONTROL_PROTOCOL);
	cr_assert_eq(u64_member(o, "clients"), 1);
	cr_assert_eq(calls(&fake.status_calls, &fake), 1);
	cr_assert_eq(calls(&fake.pause_calls, &fake), 0);
}

Test(control, pause_and_resume)
{
	const char *r = request("{\"cmd\":\"pause\"}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_str_eq(str_member(parsed(r), "state"), "paused");
	cr_assert_eq(calls(&fake.pause_calls, &fake), 1);
	cr_assert_str_eq(str_member(parsed(request("{\"cmd\":\"status\"}\n")), "state"), "paused");
	/* a second pause holds nothing more: one resume undoes it */
	r = request("{\"cmd\":\"pause\"}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_eq(calls(&fake.pause_calls, &fake), 1);
	r = request("{\"cmd\":\"resume\"}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_str_eq(str_member(parsed(r), "state"), "running");
	cr_assert_eq(calls(&fake.resume_calls, &fake), 1);
	cr_assert_eq(calls(&fake.depth, &fake), 0);
	expect_error(request("{\"cmd\":\"resume\"}\n"), "the machine is not paused");
	cr_assert_eq(calls(&fake.resume_calls, &fake), 1);
}

Test(control, pause_refused)
{
	pthread_mutex_lock(&fake.lock);
	fake.pause_fail = -EBUSY;
	fake.fail_msg = "vCPU 1 \"stuck\" in\tMMIO";
	pthread_mutex_unlock(&fake.lock);
	expect_error(request("{\"cmd\":\"pause\"}\n"),
	             "cannot pause the machine: vCPU 1 \"stuck\" in\tMMIO");
	/* not held: a resume has nothing to undo */
	expect_error(request("{\"cmd\":\"resume\"}\n"), "not paused");
	pthread_mutex_lock(&fake.lock);
	fake.fail_msg = NULL;
	pthread_mutex_unlock(&fake.lock);
	expect_error(request("{\"cmd\":\"pause\"}\n"), strerror(EBUSY));
}

Test(control, snapshot)
{
	char path[256], line[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/snap \"1\".smolmachine", dir);
	snprintf(line, sizeof(line),
	         "{\"cmd\":\"snapshot\",\"path\":\"%s/snap \\\"1\\\".smolmachine\"}\n", dir);
	const char *r = request(line);
	cr_assert(is_ok(r), "%s", r);
	const struct json_obj *o = parsed(r);
	cr_assert_str_eq(str_member(o, "path"), path);
	cr_assert_eq(u64_member(o, "bytes"), 1234);
	u64_member(o, "ms");
	cr_assert_eq(json_get(o, "stopped")->b, false);
	cr_assert_eq(calls(&fake.snapshot_calls, &fake), 1);
	cr_assert_str_eq(fake_path(), path);
	cr_assert_eq(fake_stop(), false);
	/* the reply came after the file was written */
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 1234);
	/* the machine goes on */
	cr_assert(is_ok(request("{\"cmd\":\"pause\"}\n")));
}

Test(control, snapshot_and_stop)
{
	char line[512];
	snprintf(line, sizeof(line),
	         "{\"stop\":true,\"path\":\"%s/s.smolmachine\",\"cmd\":\"snapshot\"}\n", dir);
	const char *r = request(line);
	cr_assert(is_ok(r), "%s", r);
	cr_assert_eq(json_get(parsed(r), "stopped")->b, true);
	cr_assert_eq(fake_stop(), true);
	/* the run is ending: nothing may let the guest run again */
	expect_error(request("{\"cmd\":\"resume\"}\n"), "stopping");
	expect_error(request("{\"cmd\":\"pause\"}\n"), "stopping");
	expect_error(request(line), "stopping");
	cr_assert_eq(calls(&fake.snapshot_calls, &fake), 1);
	cr_assert(is_ok(request("{\"cmd\":\"status\"}\n")));
}

Test(control, snapshot_failure)
{
	char line[512];
	pthread_mutex_lock(&fake.lock);
	fake.snapshot_fail = -ENOTSUP;
	fake.fail_msg = "device 'gpu0' (vendor-gpu) cannot be saved";
	pthread_mutex_unlock(&fake.lock);
	snprintf(line, sizeof(line), "{\"cmd\":\"snapshot\",\"path\":\"%s/x\",\"stop\":true}\n",
	         dir);
	const char *r = request(line);
	expect_error(r, "failed: device 'gpu0' (vendor-gpu) cannot be saved");
	expect_error(r, dir);
	/* a failed stop leaves the machine as it was */
	cr_assert(is_ok(request("{\"cmd\":\"pause\"}\n")));
}

Test(control, ids_are_copied)
{
	const char *r = request("{\"id\":\"a\\\"\\u00e9\\n\",\"cmd\":\"status\"}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_str_eq(str_member(parsed(r), "id"), "a\"\xc3\xa9\n");
	r = request("{\"cmd\":\"pause\",\"id\":-42}\n");
	cr_assert(is_ok(r), "%s", r);
	int64_t id;
	cr_assert_eq(json_number_i64(json_get(parsed(r), "id"), &id), 0);
	cr_assert_eq(id, -42);
	/* errors carry it too */
	r = request("{\"cmd\":\"pause\",\"id\":7}\n");
	cr_assert(is_ok(r), "%s", r);
	r = request("{\"cmd\":\"resume\",\"id\":8}\n");
	r = request("{\"cmd\":\"resume\",\"id\":9}\n");
	expect_error(r, "not paused");
	cr_assert_eq(u64_member(parsed(r), "id"), 9);
}

/* Element @p k of the array member @p key of @p o, itself an object (freed by the caller). */
static void element(const struct json_obj *o, const char *key, size_t k, struct json_obj *out)
{
	struct json_obj arr;
	char err[160];
	const struct json_value *v = json_get(o, key);
	cr_assert(v && v->type == JSON_ARRAY, "no array \"%s\"", key);
	cr_assert_eq(json_parse_array(v->raw, v->raw_len, &arr, err, sizeof(err)), 0, "%s", err);
	cr_assert_lt(k, arr.n, "\"%s\" has %zu elements", key, arr.n);
	const struct json_value *e = &arr.m[k].v;
	cr_assert_eq(json_parse_object(e->raw, e->raw_len, out, err, sizeof(err)), 0, "%s", err);
	json_obj_free(&arr);
}

static size_t array_len(const struct json_obj *o, const char *key)
{
	struct json_obj arr;
	char err[160];
	const struct json_value *v = json_get(o, key);
	cr_assert(v && v->type == JSON_ARRAY, "no array \"%s\"", key);
	cr_assert_eq(json_parse_array(v->raw, v->raw_len, &arr, err, sizeof(err)), 0, "%s", err);
	size_t n = arr.n;
	json_obj_free(&arr);
	return n;
}

Test(control, devices_lists_every_device_and_its_resources)
{
	const char *r = request("{\"cmd\":\"devices\",\"id\":3}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_eq(array_len(parsed(r), "devices"), 2);
	struct json_obj d, x;
	element(parsed(r), "devices", 0, &d);
	cr_assert_str_eq(str_member(&d, "name"), "com1");
	cr_assert_str_eq(str_member(&d, "type"), "uart-16550");
	cr_assert_str_eq(str_member(&d, "plugin"), "/p/uart-16550.so");
	cr_assert_eq(array_len(&d, "mmio"), 0);
	element(&d, "pio", 0, &x);
	cr_assert_eq(u64_member(&x, "base"), 0x3f8);
	cr_assert_eq(u64_member(&x, "size"), 8);
	json_obj_free(&x);
	cr_assert_eq(json_get(&d, "irqs")->raw_len, 3, "[4]");
	cr_assert_eq(u64_member(&d, "methods"), 0);
	json_obj_free(&d);
	element(parsed(r), "devices", 1, &d);
	cr_assert_str_eq(str_member(&d, "name"), "thermo");
	element(&d, "mmio", 0, &x);
	cr_assert_eq(u64_member(&x, "base"), 0xd0000000u);
	json_obj_free(&x);
	cr_assert_eq(u64_member(&d, "methods"), 5);
	json_obj_free(&d);
}

Test(control, methods_lists_devices_that_export_some)
{
	const char *r = request("{\"cmd\":\"methods\"}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_eq(array_len(parsed(r), "devices"), 1, "com1 exports none: %s", r);
	struct json_obj d, m;
	element(parsed(r), "devices", 0, &d);
	cr_assert_str_eq(str_member(&d, "name"), "thermo");
	cr_assert_str_eq(str_member(&d, "type"), "fake-sensor");
	cr_assert_eq(array_len(&d, "methods"), 5);
	element(&d, "methods", 3, &m);
	cr_assert_str_eq(str_member(&m, "name"), "add");
	cr_assert_str_eq(str_member(&m, "signature"), "l(ll)");
	cr_assert_str_eq(str_member(&m, "help"), "a + b");
	json_obj_free(&m);
	json_obj_free(&d);
}

Test(control, call_parses_arguments_and_returns_typed_values)
{
	const char *r = request("{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"set\","
	                        "\"args\":[\"21.5\"],\"id\":\"x\"}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_str_eq(str_member(parsed(r), "id"), "x");
	cr_assert_str_eq(str_member(parsed(r), "device"), "thermo");
	cr_assert_str_eq(str_member(parsed(r), "method"), "set");
	cr_assert_str_eq(str_member(parsed(r), "signature"), "i(d)");
	cr_assert_eq(json_get(parsed(r), "value")->type, JSON_NUMBER);
	cr_assert_eq(u64_member(parsed(r), "value"), 0);
	/* a JSON number is taken as its text */
	r = request("{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"set\",\"args\":[1e3]}\n");
	cr_assert(is_ok(r), "%s", r);
	r = request("{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"get\",\"args\":[]}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_eq(strncmp(json_get(parsed(r), "value")->raw, "1000", 4), 0, "%s", r);
	/* the method's own refusal is its value, not an error */
	r = request(
	        "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"set\",\"args\":[\"1e4\"]}\n");
	cr_assert(is_ok(r), "%s", r);
	int64_t v;
	cr_assert_eq(json_number_i64(json_get(parsed(r), "value"), &v), 0);
	cr_assert_eq(v, -ERANGE);
	r = request("{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"add\","
	            "\"args\":[\"-9223372036854775807\",-1]}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_eq(json_number_i64(json_get(parsed(r), "value"), &v), 0);
	cr_assert_eq(v, INT64_MIN);
	r = request("{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"name\"}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_null(json_get(parsed(r), "value"), "void returns nothing: %s", r);
	cr_assert(strstr(r, "\"out\":[\"thermo \\\"one\\\"\\n\"]"), "%s", r);
	/* JSON has no infinity: its text, as a string */
	r = request("{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"inf\"}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_str_eq(str_member(parsed(r), "value"), "inf");
	cr_assert_eq(calls(&fake.call_calls, &fake), 7);
}

Test(control, bad_calls_are_refused_before_any_call)
{
	static const struct {
		const char *line, *what;
	} cases[] = {
		{ "{\"cmd\":\"call\"}", "missing \"device\"" },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\"}", "missing \"method\"" },
		{ "{\"cmd\":\"call\",\"device\":\"\",\"method\":\"get\"}", "1 to 255 bytes" },
		{ "{\"cmd\":\"call\",\"device\":7,\"method\":\"get\"}", "must be a string" },
		{ "{\"cmd\":\"call\",\"device\":\"nope\",\"method\":\"get\"}",
		  "no device named \"nope\" (devices: com1, thermo)" },
		{ "{\"cmd\":\"call\",\"device\":\"com1\",\"method\":\"get\"}", "it exports none" },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"gte\"}",
		  "no method \"gte\"" },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"set\"}",
		  "thermo.set i(d): " },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"set\",\"args\":[\"warm\"]}",
		  "argument 1" },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"get\",\"args\":[1]}",
		  "thermo.get d(): " },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"add\",\"args\":[1,\"2x\"]}",
		  "argument 2" },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"add\",\"args\":[1,true]}",
		  "argument 2 must be a string or a number, not a boolean" },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"add\",\"args\":\"1 2\"}",
		  "\"args\" must be an array" },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"add\",\"args\":[1,2,3,4,5,"
		  "6,7,"
		  "8,9]}",
		  "at most 8" },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"add\",\"args\":[[1],2]}",
		  "not an array" },
		{ "{\"cmd\":\"call\",\"device\":\"thermo\",\"method\":\"add\",\"args\":[1,2],"
		  "\"path\":\"/x\"}",
		  "unknown member \"path\" in a call request" },
	};
	char buf[4096];
	int fd = connect_to(sock);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		send_str(fd, cases[k].line);
		send_str(fd, "\n");
		expect_line(fd, buf, sizeof(buf));
		expect_error(buf, cases[k].what);
	}
	close(fd);
	/* the ones that reached the machine were refused by method_call before calling */
	cr_assert_eq(calls(&fake.set_calls, &fake), 0, "set() never ran");
	cr_assert_eq(calls(&fake.call_calls, &fake), 4, "four reached the machine's call op");
}

Test(control, stats_are_the_machines)
{
	const char *r = request("{\"cmd\":\"stats\"}\n");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_eq(u64_member(parsed(r), "uptime_ms"), 1234);
	cr_assert_eq(array_len(parsed(r), "vcpus"), 1);
	cr_assert_eq(calls(&fake.stats_calls, &fake), 1);
	expect_error(request("{\"cmd\":\"stats\",\"watch\":true}\n"), "unknown member \"watch\"");
}

Test(control, bad_requests_get_errors_and_the_connection_lives_on)
{
	static const struct {
		const char *line, *what;
	} cases[] = {
		{ "{\"cmd\":\"reboot\"}", "unknown command \"reboot\"" },
		{ "{\"cmd\":\"status\"", "malformed request" },
		{ "cmd=status", "malformed request" },
		{ "", "malformed request" },
		{ "[\"status\"]", "malformed request" },
		{ "{}", "missing \"cmd\"" },
		{ "{\"command\":\"status\"}", "missing \"cmd\"" },
		{ "{\"cmd\":1}", "\"cmd\" must be a string, not a number" },
		{ "{\"cmd\":null}", "\"cmd\" must be a string, not null" },
		{ "{\"cmd\":\"snapshot\"}", "missing \"path\"" },
		{ "{\"cmd\":\"snapshot\",\"path\":7}", "\"path\" must be a string" },
		{ "{\"cmd\":\"snapshot\",\"path\":\"rel/x\"}", "must be absolute" },
		{ "{\"cmd\":\"snapshot\",\"path\":\"/x\",\"stop\":\"yes\"}",
		  "\"stop\" must be true or false, not a string" },
		{ "{\"cmd\":\"snapshot\",\"path\":\"/x\",\"force\":true}",
		  "unknown member \"force\" in a snapshot request" },
		{ "{\"cmd\":\"status\",\"path\":\"/x\"}", "unknown member \"path\" in a status" },
		{ "{\"cmd\":\"status\",\"id\":[1]}", "\"id\" must be a string or an integer" },
		{ "{\"cmd\":\"status\",\"id\":1.5}", "\"id\" must be a string or an integer" },
		{ "{\"cmd\":\"status\",\"cmd\":\"pause\"}", "appears twice" },
		{ "{\"cmd\":\"st\\u0000atus\"}", "\\u0000" },
	};
	char buf[4096];
	int fd = connect_to(sock);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		send_str(fd, cases[k].line);
		send_str(fd, "\n");
		expect_line(fd, buf, sizeof(buf));
		expect_error(buf, cases[k].what);
	}
	send_str(fd, "{\"cmd\":\"status\"}\n");
	expect_line(fd, buf, sizeof(buf));
	cr_assert(is_ok(buf), "%s", buf);
	close(fd);
	cr_assert_eq(calls(&fake.pause_calls, &fake), 0);
	cr_assert_eq(calls(&fake.snapshot_calls, &fake), 0);
}

Test(control, binary_garbage)
{
	char garbage[8192], buf[4096];
	uint32_t x = 12345;
	for (size_t k = 0; k < sizeof(garbage); k++) {
		x = x * 1103515245 + 12345;
		garbage[k] = (char)(x >> 16);
		if (garbage[k] == '\n')
			garbage[k] = '{';
	}
	int fd = connect_to(sock);
	send_bytes(fd, garbage, sizeof(garbage));
	send_str(fd, "\n{\"cmd\":\"status\"}\n");
	expect_line(fd, buf, sizeof(buf));
	expect_error(buf, "malformed request");
	expect_line(fd, buf, sizeof(buf));
	cr_assert(is_ok(buf), "%s", buf);
	close(fd);
}

Test(control, overlong_line)
{
	char buf[4096];
	size_t n = CONTROL_LINE_MAX + 4000;
	char *big = malloc(n);
	memset(big, ' ', n);
	int fd = connect_to(sock);
	send_bytes(fd, big, n);
	expect_line(fd, buf, sizeof(buf));
	expect_error(buf, "request line longer than 65536 bytes");
	expect_eof(fd);
	close(fd);
	/* a line of exactly the limit is fine */
	const char *req = "{\"cmd\":\"status\"}";
	memcpy(big + CONTROL_LINE_MAX - strlen(req), req, strlen(req));
	big[CONTROL_LINE_MAX] = '\n';
	fd = connect_to(sock);
	send_bytes(fd, big, CONTROL_LINE_MAX + 1);
	expect_line(fd, buf, sizeof(buf));
	cr_assert(is_ok(buf), "%s", buf);
	close(fd);
	free(big);
}

/* the "clients" count of a status reply, from a new connection (itself included) */
static uint64_t clients_now(void)
{
	return u64_member(parsed(request("{\"cmd\":\"status\"}\n")), "clients");
}

static void wait_clients(uint64_t want)
{
	uint64_t end = ms_now() + 20000, n; /* a bound for a broken server, not a speed check */
	while ((n = clients_now()) != want && ms_now() < end)
		usleep(10000);
	cr_assert_eq(n, want, "%lu clients, expected %lu", (unsigned long)n, (unsigned long)want);
}

Test(control, disconnect_mid_request)
{
	int fd = connect_to(sock);
	send_str(fd, "{\"cmd\":\"snapshot\",\"path\":\"/tmp/x");
	usleep(50000);
	close(fd);
	/* and one that leaves after a whole request, before its reply */
	fd = connect_to(sock);
	send_str(fd, "{\"cmd\":\"pause\"}\n");
	close(fd);
	wait_clients(1);
	cr_assert_eq(calls(&fake.snapshot_calls, &fake), 0);
	cr_assert(is_ok(request("{\"cmd\":\"status\"}\n")));
}

Test(control, pipelined_requests_answered_in_order)
{
	char buf[4096];
	int fd = connect_to(sock);
	send_str(fd, "{\"cmd\":\"pause\",\"id\":1}\n{\"cmd\":\"status\",\"id\":2}\nnope\n"
	             "{\"cmd\":\"resume\",\"id\":3}\n");
	expect_line(fd, buf, sizeof(buf));
	cr_assert(is_ok(buf) && u64_member(parsed(buf), "id") == 1, "%s", buf);
	expect_line(fd, buf, sizeof(buf));
	cr_assert(is_ok(buf) && u64_member(parsed(buf), "id") == 2, "%s", buf);
	cr_assert_str_eq(str_member(parsed(buf), "state"), "paused");
	expect_line(fd, buf, sizeof(buf));
	expect_error(buf, "malformed");
	expect_line(fd, buf, sizeof(buf));
	cr_assert(is_ok(buf) && u64_member(parsed(buf), "id") == 3, "%s", buf);
	/* a client that closes its sending side still gets its replies */
	send_str(fd, "{\"cmd\":\"status\",\"id\":4}\n");
	shutdown(fd, SHUT_WR);
	expect_line(fd, buf, sizeof(buf));
	cr_assert(is_ok(buf) && u64_member(parsed(buf), "id") == 4, "%s", buf);
	expect_eof(fd);
	close(fd);
}

Test(control, twenty_clients_at_once)
{
	int fds[20];
	char buf[4096];
	for (int k = 0; k < 20; k++)
		fds[k] = connect_to(sock);
	for (int k = 0; k < 20; k++) {
		char line[64];
		snprintf(line, sizeof(line), "{\"cmd\":\"status\",\"id\":%d}\n", k);
		send_str(fds[k], line);
	}
	for (int k = 19; k >= 0; k--) {
		expect_line(fds[k], buf, sizeof(buf));
		cr_assert(is_ok(buf), "%s", buf);
		cr_assert_eq(u64_member(parsed(buf), "id"), (uint64_t)k);
		cr_assert_eq(u64_member(parsed(buf), "clients"), 20);
	}
	for (int k = 0; k < 20; k++)
		close(fds[k]);
	cr_assert_eq(calls(&fake.status_calls, &fake), 20);
	wait_clients(1);
}

Test(control, client_count_is_bounded)
{
	int fds[CONTROL_MAX_CLIENTS];
	char buf[4096];
	for (int k = 0; k < CONTROL_MAX_CLIENTS; k++) {
		fds[k] = connect_to(sock);
		send_str(fds[k], "{\"cmd\":\"status\"}\n");
		expect_line(fds[k], buf, sizeof(buf));
		cr_assert(is_ok(buf), "%s", buf);
	}
	int extra = connect_to(sock);
	expect_line(extra, buf, sizeof(buf));
	expect_error(buf, "too many clients");
	expect_eof(extra);
	close(extra);
	close(fds[0]);
	/* room again once the server saw it leave */
	wait_clients(CONTROL_MAX_CLIENTS);
	for (int k = 1; k < CONTROL_MAX_CLIENTS; k++)
		close(fds[k]);
	wait_clients(1);
}

Test(control, a_client_that_never_reads_is_dropped)
{
	stop_serving(); /* the suite's server: this test wants its own */
	/* The hog is dropped after 6 s without progress, past the 5 s a request waits for its
	 * reply (connect_to's SO_RCVTIMEO): a loop that waited on the hog fails the request. */
	serve(6000, 10000);
	int hog = connect_to(sock);
	int fl = fcntl(hog, F_GETFL);
	fcntl(hog, F_SETFL, fl | O_NONBLOCK);
	/* requests until the socket is full in both directions: replies pile up unread */
	static char req[17 * 1000 + 1];
	for (int k = 0; k < 1000; k++)
		memcpy(req + 17 * k, "{\"cmd\":\"status\"}\n", 17);
	size_t sent = 0;
	for (int full = 0; full < 50;) {
		ssize_t n = send(hog, req, sizeof(req) - 1, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			full++; /* the server has stopped reading it */
			usleep(2000);
			continue;
		}
		if (n < 0)
			break; /* EPIPE: already dropped */
		full = 0;
		sent += (size_t)n;
	}
	cr_assert_gt(sent, 100000, "only %zu bytes sent", sent);
	/* meanwhile the loop serves others */
	cr_assert(is_ok(request("{\"cmd\":\"status\"}\n")));
	/* The server now waits for room to write the hog's reply; past the write timeout (6 s)
	 * it drops the hog, which sees the hang-up without reading a byte (reading would make
	 * room and let the server go on answering it). 30 s: the bound of a loaded machine, not
	 * a measure. */
	struct pollfd p = { .fd = hog, .events = POLLRDHUP };
	int r = poll(&p, 1, 30000);
	cr_assert(r == 1 && (p.revents & (POLLHUP | POLLRDHUP)),
	          "hog not dropped within 30 s (poll %d, revents 0x%x)", r, (unsigned)p.revents);
	/* what it was sent before, then the end */
	fcntl(hog, F_SETFL, fl);
	char buf[65536];
	ssize_t n;
	while ((n = recv(hog, buf, sizeof(buf), 0)) > 0)
		;
	cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "hog not dropped (%zd, %s)", n,
	          strerror(errno));
	close(hog);
	wait_clients(1);
}

Test(control, an_unfinished_line_times_out)
{
	stop_serving(); /* the suite's server: this test wants its own */
	serve(2000, 200);
	int fd = connect_to(sock);
	send_str(fd, "{\"cmd\":");
	uint64_t t0 = ms_now();
	expect_eof(fd);
	cr_assert_geq(ms_now() - t0, 150);
	close(fd);
	/* an idle client with nothing pending stays */
	fd = connect_to(sock);
	usleep(500000);
	send_str(fd, "{\"cmd\":\"status\"}\n");
	char buf[4096];
	expect_line(fd, buf, sizeof(buf));
	cr_assert(is_ok(buf), "%s", buf);
	close(fd);
}

Test(control, socket_is_private)
{
	stop_serving(); /* the suite's server: this test wants its own */
	struct stat st;
	mode_t old = umask(0);
	serve(0, 0);
	umask(old);
	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	stop_serving();
	cr_assert_eq(lstat(sock, &st), -1, "the socket file was not removed");
}

static void stale_socket(const char *path)
{
	struct sockaddr_un sa;
	sun_set(&sa, path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd); /* the file stays, nobody listens */
}

Test(control, stale_socket_replaced)
{
	stop_serving(); /* the suite's server: this test wants its own */
	stale_socket(sock);
	serve(0, 0);
	cr_assert(is_ok(request("{\"cmd\":\"status\"}\n")));
}

Test(control, live_socket_kept)
{
	struct control *second;
	cr_assert_eq(control_open(&loop, sock, &fake_ops, &fake, &second), -EADDRINUSE);
	cr_assert_null(second);
	cr_assert(is_ok(request("{\"cmd\":\"status\"}\n")));
}

Test(control, other_files_refused)
{
	stop_serving(); /* the suite's server: this test wants its own */
	struct control *c;
	char buf[16] = "";
	FILE *f = fopen(sock, "w");
	fputs("keep", f);
	fclose(f);
	cr_assert_eq(control_open(&loop, sock, &fake_ops, &fake, &c), -EEXIST);
	f = fopen(sock, "r");
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "keep");
	unlink(sock);
	cr_assert_eq(mkdir(sock, 0700), 0);
	cr_assert_eq(control_open(&loop, sock, &fake_ops, &fake, &c), -EEXIST);
	rmdir(sock);
	cr_assert_eq(symlink("/nonexistent", sock), 0);
	cr_assert_eq(control_open(&loop, sock, &fake_ops, &fake, &c), -EEXIST);
	unlink(sock);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	cr_assert_eq(control_open(&loop, longp, &fake_ops, &fake, &c), -ENAMETOOLONG);
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/no/such/dir/s", dir);
	cr_assert_eq(control_open(&loop, missing, &fake_ops, &fake, &c), -ENOENT);
}

Test(control, close_keeps_a_replacement)
{
	struct stat st;
	/* another machine took the path meanwhile: its file is not ours to remove */
	cr_assert_eq(unlink(sock), 0);
	FILE *f = fopen(sock, "w");
	fclose(f);
	stop_serving();
	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
}
