/*
 * fuzz-control: the control socket's requests (core/control-req.c) and the JSON reader and
 * writer under them (core/json.c, core/json-write.c): what a hostile client can send.
 *
 * Input: one request line's bytes (no newline needed). Parsed as a request; every array and
 * object member is parsed in turn (as the server and `smolvm ctl` do with nested values); a
 * parsed request's strings are written back through the JSON writer and read again.
 *
 * Checked: no sanitizer report; a request either parses or says why; what the writer makes of
 * the decoded strings reads back as the same strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

/* Parses nested values in turn, as deep as they go (the reader bounds the depth). */
static void walk(const struct json_obj *o, int depth)
{
	for (size_t k = 0; k < o->n && depth < JSON_MAX_DEPTH + 2; k++) {
		const struct json_value *v = &o->m[k].v;
		struct json_obj in;
		char err[160];
		int64_t i;
		uint64_t u;
		(void)json_number_i64(v, &i);
		(void)json_number_u64(v, &u);
		if (v->type != JSON_OBJECT && v->type != JSON_ARRAY)
			continue;
		int r = v->type == JSON_OBJECT
		                ? json_parse_object(v->raw, v->raw_len, &in, err, sizeof(err))
		                : json_parse_array(v->raw, v->raw_len, &in, err, sizeof(err));
		/* a value the reader validated once parses again, unless it has too many members */
		if (r < 0 && !strstr(err, "more than") && !strstr(err, "appears twice")) {
			fprintf(stderr, "fuzz-control: a validated nested value refused: %s\n",
			        err);
			abort();
		}
		if (r == 0)
			walk(&in, depth + 1);
		json_obj_free(&in);
	}
}

/* Writes @p s with the writer and reads it back: the same bytes. */
static void round_trip(const char *s)
{
	struct jsonw w;
	struct json_obj o;
	char *text, err[160];
	size_t len;
	jsonw_init(&w, CONTROL_REPLY_MAX);
	jsonw_obj_begin(&w, NULL);
	jsonw_str(&w, "s", s);
	jsonw_obj_end(&w);
	if (jsonw_finish(&w, "", &text, &len) < 0)
		return;
	if (json_parse_object(text, len, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-control: the writer's output does not parse: %s\n", err);
		abort();
	}
	const struct json_value *v = json_get(&o, "s");
	if (!v || v->type != JSON_STRING || strcmp(v->str, s) != 0) {
		fprintf(stderr, "fuzz-control: a string changed on its way through the writer\n");
		abort();
	}
	json_obj_free(&o);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_req req;
	char err[256];
	int r = control_parse_request((const char *)data, size, &req, err, sizeof(err));
	if (r < 0 && !err[0]) {
		fprintf(stderr, "fuzz-control: a request refused without a reason\n");
		abort();
	}
	if (r == 0) {
		walk(&req.obj, 1);
		if (req.path)
			round_trip(req.path);
		if (req.device)
			round_trip(req.device);
		if (req.method)
			round_trip(req.method);
		for (unsigned k = 0; k < req.n_args; k++)
			round_trip(req.args[k]);
	} else {
		/* a line that is not a request may still be JSON: walk what parses */
		struct json_obj o;
		if (json_parse_object((const char *)data, size, &o, err, sizeof(err)) == 0)
			walk(&o, 1);
		json_obj_free(&o);
	}
	control_req_free(&req);
	return 0;
}
