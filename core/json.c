/* json.c: the strict JSON object reader and the escaping writer of json.h. The reader never
 * reads past its input's length and recurses at most JSON_MAX_DEPTH levels, so any byte
 * string (a fuzzer's, a hostile client's) gets an answer: an object or an error. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const unsigned char *s;
	size_t n, i;
	char *out; /**< where decoded strings go (NULL: validating a nested value) */
	size_t out_len;
	char *err;
	size_t errlen;
};

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parser *p, const char *fmt, ...)
{
	char what[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (p->errlen)
		snprintf(p->err, p->errlen, "at byte %zu: %s", p->i, what);
	return -EINVAL;
}

/* "'x'" for a printable character, "byte 0xNN" otherwise, "the end" past it */
static const char *here(struct parser *p, char *buf, size_t len)
{
	if (p->i >= p->n)
		snprintf(buf, len, "the end of the input");
	else if (p->s[p->i] >= 0x20 && p->s[p->i] < 0x7f)
		snprintf(buf, len, "'%c'", p->s[p->i]);
	else
		snprintf(buf, len, "byte 0x%02x", p->s[p->i]);
	return buf;
}

static int unexpected(struct parser *p, const char *wanted)
{
	char b[32];
	return fail(p, "expected %s, found %s", wanted, here(p, b, sizeof(b)));
}

static void skip_ws(struct parser *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
	                       p->s[p->i] == '\r'))
		p->i++;
}

size_t json_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;
	if (n == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0; /* a continuation byte or 0xf8..0xff */
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static void put_utf8(struct parser *p, uint32_t c)
{
	if (!p->out)
		return;
	char *o = p->out + p->out_len;
	size_t k = 0;
	if (c < 0x80) {
		o[k++] = (char)c;
	} else if (c < 0x800) {
		o[k++] = (char)(0xc0 | c >> 6);
		o[k++] = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		o[k++] = (char)(0xe0 | c >> 12);
		o[k++] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[k++] = (char)(0x80 | (c & 0x3f));
	} else {
		o[k++] = (char)(0xf0 | c >> 18);
		o[k++] = (char)(0x80 | ((c >> 12) & 0x3f));
		o[k++] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[k++] = (char)(0x80 | (c & 0x3f));
	}
	p->out_len += k;
}

static int hex4(struct parser *p, uint32_t *v)
{
	*v = 0;
	if (p->n - p->i < 4)
		return fail(p, "\\u needs four hex digits");
	for (int k = 0; k < 4; k++) {
		unsigned char h = p->s[p->i + k];
		uint32_t d;
		if (h >= '0' && h <= '9')
			d = h - '0';
		else if (h >= 'a' && h <= 'f')
			d = h - 'a' + 10;
		else if (h >= 'A' && h <= 'F')
			d = h - 'A' + 10;
		else
			return fail(p, "\\u needs four hex digits");
		*v = *v << 4 | d;
	}
	p->i += 4;
	return 0;
}

/* One \uXXXX escape (p->i after the 'u'), a surrogate pair taken whole. */
static int unicode_escape(struct parser *p, uint32_t *cp)
{
	uint32_t hi, lo;
	int r = hex4(p, &hi);
	if (r < 0)
		return r;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return fail(p, "\\u%04" PRIx32 " is a lone low surrogate", hi);
	if (hi >= 0xd800 && hi <= 0xdbff) {
		if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
			return fail(p,
			            "\\u%04" PRIx32 " (a high surrogate) is not followed by "
			            "a low one",
			            hi);
		p->i += 2;
		if ((r = hex4(p, &lo)) < 0)
			return r;
		if (lo < 0xdc00 || lo > 0xdfff)
			return fail(p,
			            "\\u%04" PRIx32 " (a high surrogate) is followed by "
			            "\\u%04" PRIx32 ", not a low one",
			            hi, lo);
		*cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
		return 0;
	}
	if (hi == 0)
		return fail(p, "\\u0000 is not allowed in strings");
	*cp = hi;
	return 0;
}

/* A string (p->i on its opening quote); decoded into p->out when there is one, with *dst
 * set to its start. */
static int parse_string(struct parser *p, const char **dst, size_t *dlen)
{
	size_t start = p->out_len;
	int r;
	p->i++;
	for (;;) {
		if (p->i >= p->n)
			return fail(p, "unterminated string");
		unsigned char c = p->s[p->i];
		uint32_t cp;
		if (c == '"') {
			p->i++;
			break;
		}
		if (c < 0x20)
			return fail(p, "control character 0x%02x in a string (escape it)", c);
		if (c == '\\') {
			if (p->i + 1 >= p->n)
				return fail(p, "unterminated string");
			char e = (char)p->s[p->i + 1];
			p->i += 2;
			switch (e) {
			case '"': cp = '"'; break;
			case '\\': cp = '\\'; break;
			case '/': cp = '/'; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			case 'u':
				if ((r = unicode_escape(p, &cp)) < 0)
					return r;
				break;
			default:
				p->i--;
				return unexpected(p, "an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t "
				                     "\\uXXXX)");
			}
			put_utf8(p, cp);
			continue;
		}
		size_t k = json_utf8_decode(p->s + p->i, p->n - p->i, &cp);
		if (k == 0)
			return fail(p, "invalid UTF-8 in a string");
		if (p->out)
			memcpy(p->out + p->out_len, p->s + p->i, k);
		p->out_len += p->out ? k : 0;
		p->i += k;
	}
	if (p->out) {
		p->out[p->out_len++] = '\0';
		if (dst)
			*dst = p->out + start;
		if (dlen)
			*dlen = p->out_len - start - 1;
	}
	return 0;
}

static bool digit(struct parser *p)
{
	return p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(struct parser *p)
{
	if (p->i < p->n && p->s[p->i] == '-')
		p->i++;
	else if (!digit(p))
		return unexpected(p, "a value");
	if (!digit(p))
		return unexpected(p, "a digit");
	if (p->s[p->i] == '0') {
		p->i++;
		if (digit(p))
			return fail(p, "a number has a leading zero");
	} else {
		while (digit(p))
			p->i++;
	}
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		if (!digit(p))
			return unexpected(p, "a digit after the decimal point");
		while (digit(p))
			p->i++;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (!digit(p))
			return unexpected(p, "a digit in the exponent");
		while (digit(p))
			p->i++;
	}
	return 0;
}

static int parse_literal(struct parser *p, const char *word)
{
	size_t k = strlen(word);
	if (p->n - p->i < k || memcmp(p->s + p->i, word, k) != 0)
		return unexpected(p, "a value");
	p->i += k;
	return 0;
}

/* Any value at nesting level @p level (the top object is 1), validated and not stored. */
static int skip_value(struct parser *p, int level)
{
	int r;
	if (p->i >= p->n)
		return unexpected(p, "a value");
	unsigned char c = p->s[p->i];
	if (c == '"')
		return parse_string(p, NULL, NULL);
	if (c == 't')
		return parse_literal(p, "true");
	if (c == 'f')
		return parse_literal(p, "false");
	if (c == 'n')
		return parse_literal(p, "null");
	if (c != '{' && c != '[')
		return parse_number(p);
	if (level > JSON_MAX_DEPTH)
		return fail(p, "nested deeper than %d levels", JSON_MAX_DEPTH);
	char close = c == '{' ? '}' : ']';
	p->i++;
	skip_ws(p);
	if (p->i < p->n && p->s[p->i] == close) {
		p->i++;
		return 0;
	}
	for (;;) {
		skip_ws(p);
		if (c == '{') {
			if (p->i >= p->n || p->s[p->i] != '"')
				return unexpected(p, "a member name");
			if ((r = parse_string(p, NULL, NULL)) < 0)
				return r;
			skip_ws(p);
			if (p->i >= p->n || p->s[p->i] != ':')
				return unexpected(p, "':' after a member name");
			p->i++;
			skip_ws(p);
		}
		if ((r = skip_value(p, level + 1)) < 0)
			return r;
		skip_ws(p);
		if (p->i < p->n && p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->i < p->n && p->s[p->i] == close) {
			p->i++;
			return 0;
		}
		return unexpected(p, c == '{' ? "',' or '}'" : "',' or ']'");
	}
}

/* A member's value (level 2): scalars decoded, objects and arrays validated and kept raw. */
static int member_value(struct parser *p, struct json_value *v)
{
	int r;
	size_t start = p->i;
	char *out = p->out;
	memset(v, 0, sizeof(*v));
	if (p->i >= p->n)
		return unexpected(p, "a value");
	switch (p->s[p->i]) {
	case '"':
		v->type = JSON_STRING;
		r = parse_string(p, &v->str, &v->str_len);
		break;
	case 't':
		v->type = JSON_BOOL, v->b = true;
		r = parse_literal(p, "true");
		break;
	case 'f':
		v->type = JSON_BOOL;
		r = parse_literal(p, "false");
		break;
	case 'n':
		v->type = JSON_NULL;
		r = parse_literal(p, "null");
		break;
	case '{':
	case '[':
		v->type = p->s[p->i] == '{' ? JSON_OBJECT : JSON_ARRAY;
		p->out = NULL; /* its strings are decoded when it is parsed in turn */
		r = skip_value(p, 2);
		p->out = out;
		break;
	default:
		v->type = JSON_NUMBER;
		r = parse_number(p);
		break;
	}
	v->raw = (const char *)p->s + start;
	v->raw_len = p->i - start;
	return r;
}

/* One object or array (@p open '{' or '['), the whole input: its members or elements decoded
 * into @p obj (an array's elements have a NULL key). */
static int parse_top(const char *in, size_t len, char open, struct json_obj *obj, char *err,
                     size_t errlen)
{
	struct parser p = {
		.s = (const unsigned char *)in, .n = len, .err = err, .errlen = errlen
	};
	const bool array = open == '[';
	const char close = array ? ']' : '}';
	int r;
	obj->n = 0;
	/* decoded strings never outgrow their encoded form, quotes included */
	obj->strings = malloc(len + 1);
	if (!obj->strings) {
		if (errlen)
			snprintf(err, errlen, "out of memory for a %zu-byte request", len);
		return -ENOMEM;
	}
	p.out = obj->strings;
	if (errlen)
		err[0] = '\0';
	skip_ws(&p);
	if (p.i >= p.n || p.s[p.i] != open)
		return unexpected(&p, array ? "a JSON array ('[')" : "a JSON object ('{')");
	p.i++;
	skip_ws(&p);
	if (p.i < p.n && p.s[p.i] == close) {
		p.i++;
		goto end;
	}
	for (;;) {
		struct json_member m = { 0 };
		size_t at;
		skip_ws(&p);
		at = p.i;
		if (!array) {
			if (p.i >= p.n || p.s[p.i] != '"')
				return unexpected(&p, "a member name (a string)");
			if ((r = parse_string(&p, &m.key, NULL)) < 0)
				return r;
			skip_ws(&p);
			if (p.i >= p.n || p.s[p.i] != ':')
				return unexpected(&p, "':' after a member name");
			p.i++;
			skip_ws(&p);
		}
		if ((r = member_value(&p, &m.v)) < 0)
			return r;
		if (!array && json_get(obj, m.key)) {
			p.i = at;
			return fail(&p, "member \"%.64s\" appears twice", m.key);
		}
		if (obj->n == JSON_MAX_MEMBERS) {
			p.i = at;
			return fail(&p, "more than %d %s", JSON_MAX_MEMBERS,
			            array ? "elements" : "members");
		}
		obj->m[obj->n++] = m;
		skip_ws(&p);
		if (p.i < p.n && p.s[p.i] == ',') {
			p.i++;
			continue;
		}
		if (p.i < p.n && p.s[p.i] == close) {
			p.i++;
			break;
		}
		return unexpected(&p, array ? "',' or ']'" : "',' or '}'");
	}
end:
	skip_ws(&p);
	if (p.i != p.n)
		return unexpected(&p,
		                  array ? "nothing after the array" : "nothing after the object");
	return 0;
}

int json_parse_object(const char *in, size_t len, struct json_obj *obj, char *err, size_t errlen)
{
	return parse_top(in, len, '{', obj, err, errlen);
}

int json_parse_array(const char *in, size_t len, struct json_obj *arr, char *err, size_t errlen)
{
	return parse_top(in, len, '[', arr, err, errlen);
}

void json_obj_free(struct json_obj *obj)
{
	free(obj->strings);
	obj->strings = NULL;
	obj->n = 0;
}

const struct json_value *json_get(const struct json_obj *obj, const char *key)
{
	for (size_t k = 0; k < obj->n; k++)
		if (obj->m[k].key && strcmp(obj->m[k].key, key) == 0)
			return &obj->m[k].v;
	return NULL;
}

/* The magnitude of an integer number's text (an optional '-' and digits only). */
static int integer_text(const struct json_value *v, bool *neg, uint64_t *mag)
{
	size_t k = 0;
	if (v->type != JSON_NUMBER || v->raw_len == 0)
		return -EINVAL;
	*neg = v->raw[0] == '-';
	k = *neg;
	if (k == v->raw_len)
		return -EINVAL;
	*mag = 0;
	for (; k < v->raw_len; k++) {
		unsigned d = (unsigned char)v->raw[k] - '0';
		if (d > 9)
			return -EINVAL; /* a fraction or an exponent */
		if (*mag > (UINT64_MAX - d) / 10)
			return -ERANGE;
		*mag = *mag * 10 + d;
	}
	return 0;
}

int json_number_u64(const struct json_value *v, uint64_t *out)
{
	bool neg;
	uint64_t mag;
	int r = integer_text(v, &neg, &mag);
	if (r < 0)
		return r;
	if (neg && mag)
		return -ERANGE;
	*out = mag;
	return 0;
}

int json_number_i64(const struct json_value *v, int64_t *out)
{
	bool neg;
	uint64_t mag;
	int r = integer_text(v, &neg, &mag);
	if (r < 0)
		return r;
	if (mag > (uint64_t)INT64_MAX + neg)
		return -ERANGE;
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}

const char *json_type_name(enum json_type t)
{
	switch (t) {
	case JSON_NULL: return "null";
	case JSON_BOOL: return "a boolean";
	case JSON_NUMBER: return "a number";
	case JSON_STRING: return "a string";
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	}
	return "a value";
}
