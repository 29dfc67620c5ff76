/* json.h: a small strict JSON reader for request objects and an escaping writer for replies
 * (the control socket's protocol, core/control.c). No allocation beyond one buffer per parsed
 * object; every input is bounded (members, depth, nothing read past the given length).
 *
 * The reader takes one JSON object (RFC 8259, UTF-8; whitespace around it is fine, nothing
 * else). Its members' scalar values are decoded; a nested object or array is validated (up to
 * JSON_MAX_DEPTH levels) and handed back as its text, which json_parse_object() can parse in
 * turn. Strings: escapes including \uXXXX and surrogate pairs; raw control characters, invalid
 * UTF-8, lone surrogates and \u0000 (decoded strings are C strings) are errors, as are
 * duplicate member names. */
#ifndef SMOLVM_JSON_H
#define SMOLVM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Members of one object or elements of one array (a stats reply's 128 counters of a device, a
 * device's 64 methods, 64 vCPUs), and nesting levels of a value (the object itself is level
 * 1). */
#define JSON_MAX_MEMBERS 256
#define JSON_MAX_DEPTH 16

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_OBJECT, JSON_ARRAY };

struct json_value {
	enum json_type type;
	bool b; /**< JSON_BOOL */
	const char *str; /**< JSON_STRING: decoded, NUL-terminated, no NUL inside */
	size_t str_len;
	/** The value's text in the input (numbers, nested objects and arrays: validated) */
	const char *raw;
	size_t raw_len;
};

struct json_member {
	const char *key; /**< decoded */
	struct json_value v;
};

struct json_obj {
	size_t n;
	struct json_member m[JSON_MAX_MEMBERS];
	char *strings; /**< decoded keys and strings (freed by json_obj_free) */
};

/**
 * Parses @p len bytes at @p in as one JSON object into @p obj (raw pointers point into
 * @p in, which must outlive @p obj). A pure function of its input.
 * @return 0; -EINVAL with @p err saying what is wrong and at which byte; -ENOMEM. @p obj
 * needs json_obj_free() in every case.
 */
int json_parse_object(const char *in, size_t len, struct json_obj *obj, char *err, size_t errlen);
/**
 * The same for one JSON array (a nested value's raw text, say): its elements in @p arr's
 * members, in order, each with a NULL key (json_get finds none). At most JSON_MAX_MEMBERS.
 */
int json_parse_array(const char *in, size_t len, struct json_obj *arr, char *err, size_t errlen);
void json_obj_free(struct json_obj *obj);
/** The member named @p key, or NULL. */
const struct json_value *json_get(const struct json_obj *obj, const char *key);
/** A JSON_NUMBER that is an integer within range (no fraction, no exponent). 0 or -ERANGE /
 * -EINVAL. */
int json_number_u64(const struct json_value *v, uint64_t *out);
int json_number_i64(const struct json_value *v, int64_t *out);
/** Name of a type for messages ("a string", "an object", ...). */
const char *json_type_name(enum json_type t);

/**
 * Decodes one UTF-8 sequence (strict: no overlong forms, no surrogates, at most U+10FFFF).
 * @return its length (1-4) with *cp set, or 0 when @p s does not start with a valid one.
 */
size_t json_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* ---- writer: builds one JSON value in a growing buffer (bounded by @p max). Errors are
 * sticky (err): the calls after one do nothing and jsonw_finish reports it. Inside an
 * object every call takes a member name (@p key); at the top level and in arrays key is
 * NULL. Strings are escaped ("\\", quotes, control characters); invalid UTF-8 bytes become
 * U+FFFD, so the output is always valid JSON. */

struct jsonw {
	char *buf;
	size_t len, cap, max;
	int depth;
	bool comma[JSON_MAX_DEPTH + 1]; /**< a value was written at this level */
	bool in_object[JSON_MAX_DEPTH + 1];
	int err; /**< 0, -ENOMEM, -E2BIG (over max), -EINVAL (misuse: unbalanced, key) */
};

void jsonw_init(struct jsonw *w, size_t max);
void jsonw_free(struct jsonw *w);
void jsonw_obj_begin(struct jsonw *w, const char *key);
void jsonw_obj_end(struct jsonw *w);
void jsonw_arr_begin(struct jsonw *w, const char *key);
void jsonw_arr_end(struct jsonw *w);
/** @p s NULL writes null. */
void jsonw_str(struct jsonw *w, const char *key, const char *s);
void jsonw_strn(struct jsonw *w, const char *key, const char *s, size_t n);
void jsonw_u64(struct jsonw *w, const char *key, uint64_t v);
void jsonw_i64(struct jsonw *w, const char *key, int64_t v);
void jsonw_bool(struct jsonw *w, const char *key, bool v);
void jsonw_null(struct jsonw *w, const char *key);
/** Copies already valid JSON text (a value the reader validated). */
void jsonw_raw(struct jsonw *w, const char *key, const char *raw, size_t n);
/**
 * Ends the document (every object and array closed), appends @p suffix (e.g. "\n") and
 * hands back the NUL-terminated text (the caller frees it). 0 or the sticky error.
 */
int jsonw_finish(struct jsonw *w, const char *suffix, char **out, size_t *len);

#endif
