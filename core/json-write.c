/* json-write.c: the escaping JSON writer of json.h. Whatever bytes a string holds (a path, a
 * device's message), the output is valid JSON in valid UTF-8. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsonw_init(struct jsonw *w, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->max = max;
}

void jsonw_free(struct jsonw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
	if (w->err)
		return;
	if (n > w->max || w->len > w->max - n) {
		w->err = -E2BIG;
		return;
	}
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n + 1)
			cap *= 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void puts_(struct jsonw *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_string(struct jsonw *w, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	put(w, "\"", 1);
	while (i < n && !w->err) {
		/* the longest run that needs no escaping goes in one piece */
		size_t run = i;
		uint32_t cp;
		size_t k;
		while (run < n && u[run] >= 0x20 && u[run] != '"' && u[run] != '\\') {
			if (u[run] < 0x80) {
				run++;
				continue;
			}
			k = json_utf8_decode(u + run, n - run, &cp);
			if (k == 0)
				break;
			run += k;
		}
		put(w, s + i, run - i);
		i = run;
		if (i == n)
			break;
		char esc[8];
		switch (u[i]) {
		case '"': puts_(w, "\\\""); break;
		case '\\': puts_(w, "\\\\"); break;
		case '\b': puts_(w, "\\b"); break;
		case '\f': puts_(w, "\\f"); break;
		case '\n': puts_(w, "\\n"); break;
		case '\r': puts_(w, "\\r"); break;
		case '\t': puts_(w, "\\t"); break;
		default:
			if (u[i] < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
				puts_(w, esc);
			} else {
				puts_(w, "\\ufffd"); /* not UTF-8: the replacement character */
			}
			break;
		}
		i++;
	}
	put(w, "\"", 1);
}

/* The separator and member name before a value. */
static void prefix(struct jsonw *w, const char *key)
{
	if (w->err)
		return;
	bool obj = w->depth > 0 && w->in_object[w->depth];
	if (obj != (key != NULL) || (w->depth == 0 && w->comma[0])) {
		w->err = -EINVAL; /* a member without a name, or a second top-level value */
		return;
	}
	if (w->comma[w->depth])
		put(w, ",", 1);
	w->comma[w->depth] = true;
	if (key) {
		put_string(w, key, strlen(key));
		put(w, ":", 1);
	}
}

static void open_(struct jsonw *w, const char *key, bool object)
{
	prefix(w, key);
	if (w->err)
		return;
	if (w->depth == JSON_MAX_DEPTH) {
		w->err = -EINVAL;
		return;
	}
	put(w, object ? "{" : "[", 1);
	w->depth++;
	w->comma[w->depth] = false;
	w->in_object[w->depth] = object;
}

static void close_(struct jsonw *w, bool object)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->in_object[w->depth] != object) {
		w->err = -EINVAL;
		return;
	}
	put(w, object ? "}" : "]", 1);
	w->depth--;
}

void jsonw_obj_begin(struct jsonw *w, const char *key)
{
	open_(w, key, true);
}

void jsonw_obj_end(struct jsonw *w)
{
	close_(w, true);
}

void jsonw_arr_begin(struct jsonw *w, const char *key)
{
	open_(w, key, false);
}

void jsonw_arr_end(struct jsonw *w)
{
	close_(w, false);
}

void jsonw_strn(struct jsonw *w, const char *key, const char *s, size_t n)
{
	prefix(w, key);
	put_string(w, s, n);
}

void jsonw_str(struct jsonw *w, const char *key, const char *s)
{
	if (!s)
		jsonw_null(w, key);
	else
		jsonw_strn(w, key, s, strlen(s));
}

void jsonw_u64(struct jsonw *w, const char *key, uint64_t v)
{
	char b[24];
	prefix(w, key);
	snprintf(b, sizeof(b), "%" PRIu64, v);
	puts_(w, b);
}

void jsonw_i64(struct jsonw *w, const char *key, int64_t v)
{
	char b[24];
	prefix(w, key);
	snprintf(b, sizeof(b), "%" PRId64, v);
	puts_(w, b);
}

void jsonw_bool(struct jsonw *w, const char *key, bool v)
{
	prefix(w, key);
	puts_(w, v ? "true" : "false");
}

void jsonw_null(struct jsonw *w, const char *key)
{
	prefix(w, key);
	puts_(w, "null");
}

void jsonw_raw(struct jsonw *w, const char *key, const char *raw, size_t n)
{
	prefix(w, key);
	put(w, raw, n);
}

int jsonw_finish(struct jsonw *w, const char *suffix, char **out, size_t *len)
{
	if (!w->err && (w->depth != 0 || !w->comma[0]))
		w->err = -EINVAL; /* unbalanced, or nothing written */
	if (suffix)
		puts_(w, suffix);
	if (w->err) {
		jsonw_free(w);
		return w->err;
	}
	*out = w->buf;
	*len = w->len;
	w->buf = NULL;
	w->len = w->cap = 0;
	return 0;
}
