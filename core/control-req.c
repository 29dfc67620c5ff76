/* control-req.c: control socket requests, from one line of bytes to a struct control_req (a
 * pure function: the fuzzer's entry point). Each command lists the members it takes; any
 * other member is an error, so a client never mistakes an ignored option for one obeyed. */
#include "control.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	enum control_cmd cmd;
	const char *members[4]; /**< besides "cmd" and "id" (NULL-terminated) */
};

static const struct command commands[] = {
	{ "status", CONTROL_STATUS, { NULL } },
	{ "pause", CONTROL_PAUSE, { NULL } },
	{ "resume", CONTROL_RESUME, { NULL } },
	{ "snapshot", CONTROL_SNAPSHOT, { "path", "stop", NULL } },
	{ "devices", CONTROL_DEVICES, { NULL } },
	{ "methods", CONTROL_METHODS, { NULL } },
	{ "call", CONTROL_CALL, { "device", "method", "args", NULL } },
	{ "stats", CONTROL_STATS, { NULL } },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))
#define KNOWN "status, pause, resume, snapshot, devices, methods, call, stats"

static bool takes(const struct command *c, const char *key)
{
	if (strcmp(key, "cmd") == 0 || strcmp(key, "id") == 0)
		return true;
	for (size_t k = 0; c->members[k]; k++)
		if (strcmp(c->members[k], key) == 0)
			return true;
	return false;
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A required string member @p key of at most @p max bytes, into *out. */
static int string_member(struct control_req *req, const char *key, size_t max, const char *what,
                         const char **out, char *err, size_t errlen)
{
	const struct json_value *v = json_get(&req->obj, key);
	if (!v)
		return bad(err, errlen, "missing \"%s\" (%s)", key, what);
	if (v->type != JSON_STRING)
		return bad(err, errlen, "\"%s\" must be a string, not %s", key,
		           json_type_name(v->type));
	if (v->str_len == 0 || v->str_len > max)
		return bad(err, errlen, "\"%s\" must have 1 to %zu bytes", key, max);
	*out = v->str;
	return 0;
}

/* A call's "args": an array of strings and numbers (a number is taken as its text). */
static int call_args(struct control_req *req, char *err, size_t errlen)
{
	char why[160];
	const struct json_value *v = json_get(&req->obj, "args");
	if (!v)
		return 0; /* no arguments */
	if (v->type != JSON_ARRAY)
		return bad(err, errlen, "\"args\" must be an array of strings and numbers, not %s",
		           json_type_name(v->type));
	int r = json_parse_array(v->raw, v->raw_len, &req->args_arr, why, sizeof(why));
	if (r < 0)
		return bad(err, errlen, "\"args\": %s", why);
	if (req->args_arr.n > CONTROL_CALL_MAX_ARGS)
		return bad(err, errlen, "\"args\" has %zu elements; a method takes at most %d",
		           req->args_arr.n, CONTROL_CALL_MAX_ARGS);
	for (size_t k = 0; k < req->args_arr.n; k++) {
		const struct json_value *a = &req->args_arr.m[k].v;
		if (a->type == JSON_STRING) {
			req->args[k] = a->str;
		} else if (a->type == JSON_NUMBER) {
			if (a->raw_len >= sizeof(req->num_text[k]))
				return bad(err, errlen, "argument %zu: a number of %zu characters",
				           k + 1, a->raw_len);
			memcpy(req->num_text[k], a->raw, a->raw_len);
			req->num_text[k][a->raw_len] = '\0';
			req->args[k] = req->num_text[k];
		} else {
			return bad(err, errlen, "argument %zu must be a string or a number, not %s",
			           k + 1, json_type_name(a->type));
		}
	}
	req->n_args = (unsigned)req->args_arr.n;
	return 0;
}

int control_parse_request(const char *line, size_t len, struct control_req *req, char *err,
                          size_t errlen)
{
	char why[160];
	memset(req, 0, sizeof(*req));
	int r = json_parse_object(line, len, &req->obj, why, sizeof(why));
	if (r == -ENOMEM) {
		bad(err, errlen, "%s", why);
		return -ENOMEM;
	}
	if (r < 0)
		return bad(err, errlen, "malformed request (%s)", why);

	const struct json_value *v = json_get(&req->obj, "cmd");
	if (!v)
		return bad(err, errlen, "missing \"cmd\" (one of " KNOWN ")");
	if (v->type != JSON_STRING)
		return bad(err, errlen, "\"cmd\" must be a string, not %s",
		           json_type_name(v->type));
	const struct command *c = NULL;
	for (size_t k = 0; k < N_COMMANDS; k++)
		if (strcmp(commands[k].name, v->str) == 0)
			c = &commands[k];
	if (!c)
		return bad(err, errlen, "unknown command \"%.64s\" (known: " KNOWN ")", v->str);
	req->cmd = c->cmd;

	for (size_t k = 0; k < req->obj.n; k++)
		if (!takes(c, req->obj.m[k].key))
			return bad(err, errlen, "unknown member \"%.64s\" in a %s request",
			           req->obj.m[k].key, c->name);

	if ((v = json_get(&req->obj, "id"))) {
		int64_t n;
		if (v->type != JSON_STRING && json_number_i64(v, &n) < 0)
			return bad(err, errlen, "\"id\" must be a string or an integer, not %s",
			           v->type == JSON_NUMBER ? "a fraction or a huge number"
			                                  : json_type_name(v->type));
		req->id = v;
	}

	if (req->cmd == CONTROL_SNAPSHOT) {
		v = json_get(&req->obj, "path");
		if (!v)
			return bad(err, errlen, "missing \"path\" (where to write the snapshot)");
		if (v->type != JSON_STRING)
			return bad(err, errlen, "\"path\" must be a string, not %s",
			           json_type_name(v->type));
		if (v->str[0] != '/')
			return bad(err, errlen, "\"path\" must be absolute (\"%.64s\" is not)",
			           v->str);
		if (v->str_len >= PATH_MAX)
			return bad(err, errlen, "\"path\" is longer than %d bytes", PATH_MAX - 1);
		req->path = v->str;
		if ((v = json_get(&req->obj, "stop"))) {
			if (v->type != JSON_BOOL)
				return bad(err, errlen, "\"stop\" must be true or false, not %s",
				           json_type_name(v->type));
			req->stop = v->b;
		}
	}
	if (req->cmd == CONTROL_CALL) {
		int r2;
		if ((r2 = string_member(req, "device", CONTROL_NAME_MAX, "the device's name",
		                        &req->device, err, errlen)) < 0 ||
		    (r2 = string_member(req, "method", CONTROL_NAME_MAX, "the method's name",
		                        &req->method, err, errlen)) < 0)
			return r2;
		return call_args(req, err, errlen);
	}
	return 0;
}

void control_req_free(struct control_req *req)
{
	json_obj_free(&req->obj);
	json_obj_free(&req->args_arr);
	req->path = req->device = req->method = NULL;
	req->id = NULL;
	req->n_args = 0;
}
