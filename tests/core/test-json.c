/* Unit tests of the JSON reader and writer (core/json.c, core/json-write.c): the grammar,
 * escapes, hostile inputs (truncations, deep nesting, invalid UTF-8, random bytes) and the
 * writer's escaping, checked by reading its output back. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int parse(const char *s, struct json_obj *o, char *err, size_t errlen)
{
	return json_parse_object(s, strlen(s), o, err, errlen);
}

/* Parses @p s, expecting success; the caller frees @p o. */
static void ok(const char *s, struct json_obj *o)
{
	char err[256];
	int r = parse(s, o, err, sizeof(err));
	cr_assert_eq(r, 0, "%s: %s", s, err);
}

/* Expects @p s to be refused with a message containing @p what. */
static void refused(const char *s, size_t len, const char *what)
{
	struct json_obj o;
	char err[256] = "";
	int r = json_parse_object(s, len, &o, err, sizeof(err));
	cr_assert_eq(r, -EINVAL, "accepted: %.*s", (int)len, s);
	cr_assert(strstr(err, what), "'%.*s': message '%s' lacks '%s'", (int)len, s, err, what);
	json_obj_free(&o);
}
#define REFUSED(s, what) refused(s, strlen(s), what)

Test(json, members_of_every_type)
{
	struct json_obj o;
	ok(" {\"s\":\"x\" , \"t\":true,\"f\":false,\"n\":null,\"i\":-12,\"d\":1.5e+3,"
	   "\"o\":{\"a\":[1,{\"b\":\"}\"}]},\"a\":[ ]}\r\n\t",
	   &o);
	cr_assert_eq(o.n, 8);
	const struct json_value *v = json_get(&o, "s");
	cr_assert(v && v->type == JSON_STRING && strcmp(v->str, "x") == 0 && v->str_len == 1);
	cr_assert(json_get(&o, "t")->type == JSON_BOOL && json_get(&o, "t")->b);
	cr_assert(json_get(&o, "f")->type == JSON_BOOL && !json_get(&o, "f")->b);
	cr_assert_eq(json_get(&o, "n")->type, JSON_NULL);
	int64_t i;
	cr_assert_eq(json_number_i64(json_get(&o, "i"), &i), 0);
	cr_assert_eq(i, -12);
	v = json_get(&o, "d");
	cr_assert_eq(v->type, JSON_NUMBER);
	cr_assert_eq(v->raw_len, 6);
	cr_assert_eq(json_number_i64(v, &i), -EINVAL, "a fraction is not an integer");
	v = json_get(&o, "o");
	cr_assert_eq(v->type, JSON_OBJECT);
	cr_assert_eq(v->raw_len, strlen("{\"a\":[1,{\"b\":\"}\"}]}"));
	/* a nested object is parsed in turn */
	struct json_obj in;
	char err[128];
	cr_assert_eq(json_parse_object(v->raw, v->raw_len, &in, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(json_get(&in, "a")->type, JSON_ARRAY);
	json_obj_free(&in);
	cr_assert_eq(json_get(&o, "a")->type, JSON_ARRAY);
	cr_assert_null(json_get(&o, "missing"));
	json_obj_free(&o);

	ok("{}", &o);
	cr_assert_eq(o.n, 0);
	json_obj_free(&o);
}

Test(json, arrays_parsed_in_turn)
{
	struct json_obj o, a;
	char err[160];
	ok("{\"args\":[\"21.5\", -3 ,\"a\\u00e9\",[1,2],{\"k\":null},true]}", &o);
	const struct json_value *v = json_get(&o, "args");
	cr_assert_eq(v->type, JSON_ARRAY);
	cr_assert_eq(json_parse_array(v->raw, v->raw_len, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.n, 6);
	cr_assert(a.m[0].v.type == JSON_STRING && strcmp(a.m[0].v.str, "21.5") == 0);
	cr_assert_eq(a.m[1].v.type, JSON_NUMBER);
	cr_assert_eq(a.m[1].v.raw_len, 2);
	cr_assert_str_eq(a.m[2].v.str, "a\xc3\xa9");
	cr_assert_eq(a.m[3].v.type, JSON_ARRAY);
	cr_assert_eq(a.m[4].v.type, JSON_OBJECT);
	cr_assert_eq(a.m[5].v.type, JSON_BOOL);
	for (size_t k = 0; k < a.n; k++)
		cr_assert_null(a.m[k].key);
	cr_assert_null(json_get(&a, "k"), "elements have no names");
	json_obj_free(&a);
	json_obj_free(&o);

	cr_assert_eq(json_parse_array(" [ ] ", 5, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.n, 0);
	json_obj_free(&a);

	static const char *const bad[][2] = {
		{ "{}", "a JSON array" },      { "[1,]", "a value" },
		{ "[1 2]", "',' or ']'" },     { "[1]x", "nothing after the array" },
		{ "[\"a\":1]", "',' or ']'" }, { "[", "a value" },
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		err[0] = '\0';
		cr_assert_eq(json_parse_array(bad[k][0], strlen(bad[k][0]), &a, err, sizeof(err)),
		             -EINVAL, "accepted %s", bad[k][0]);
		cr_assert(strstr(err, bad[k][1]), "%s: '%s' lacks '%s'", bad[k][0], err, bad[k][1]);
		json_obj_free(&a);
	}
	/* one over the bound */
	char many[4 * JSON_MAX_MEMBERS] = "[";
	for (int k = 0; k < JSON_MAX_MEMBERS + 1; k++)
		strcat(many, k ? ",1" : "1");
	strcat(many, "]");
	cr_assert_eq(json_parse_array(many, strlen(many), &a, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "more than 256 elements"), "%s", err);
	json_obj_free(&a);
}

Test(json, string_escapes)
{
	struct json_obj o;
	ok("{\"k\\u0041\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\\ud83d\\ude00\xc3\xa9\"}", &o);
	cr_assert_str_eq(o.m[0].key, "kA");
	const char *want = "\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9";
	cr_assert_str_eq(o.m[0].v.str, want);
	cr_assert_eq(o.m[0].v.str_len, strlen(want));
	json_obj_free(&o);
}

Test(json, bad_strings)
{
	REFUSED("{\"a\":\"x\ny\"}", "control character 0x0a");
	REFUSED("{\"a\":\"\\x\"}", "expected an escape");
	REFUSED("{\"a\":\"\\u12\"}", "four hex digits");
	REFUSED("{\"a\":\"\\u12g4\"}", "four hex digits");
	REFUSED("{\"a\":\"\\u0000\"}", "\\u0000");
	REFUSED("{\"a\":\"\\udc00\"}", "lone low surrogate");
	REFUSED("{\"a\":\"\\ud800\"}", "not followed by a low one");
	REFUSED("{\"a\":\"\\ud800\\u0041\"}", "not a low one");
	REFUSED("{\"a\":\"abc", "unterminated string");
	REFUSED("{\"a\":\"abc\\", "unterminated string");
	/* invalid UTF-8: a lone continuation byte, an overlong '/', a surrogate, past U+10FFFF,
	 * a truncated sequence, 0xff */
	REFUSED("{\"a\":\"\x80\"}", "invalid UTF-8");
	REFUSED("{\"a\":\"\xc0\xaf\"}", "invalid UTF-8");
	REFUSED("{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8");
	REFUSED("{\"a\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8");
	REFUSED("{\"a\":\"\xe2\x82\"}", "invalid UTF-8");
	REFUSED("{\"a\":\"\xff\"}", "invalid UTF-8");
	/* a raw NUL inside a string */
	refused("{\"a\":\"x\0y\"}", 10, "control character 0x00");
}

Test(json, numbers)
{
	const char *good[] = { "0",   "-0",  "7",    "-12",      "1.0",
		               "0.5", "1e3", "1E+3", "-2.5e-10", "18446744073709551615" };
	for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
		char doc[64];
		struct json_obj o;
		snprintf(doc, sizeof(doc), "{\"n\":%s}", good[k]);
		ok(doc, &o);
		cr_assert_eq(json_get(&o, "n")->raw_len, strlen(good[k]));
		json_obj_free(&o);
	}
	REFUSED("{\"n\":01}", "leading zero");
	REFUSED("{\"n\":-}", "expected a digit");
	REFUSED("{\"n\":+1}", "expected a value");
	REFUSED("{\"n\":.5}", "expected a value");
	REFUSED("{\"n\":1.}", "after the decimal point");
	REFUSED("{\"n\":1e}", "in the exponent");
	REFUSED("{\"n\":1e+}", "in the exponent");
	REFUSED("{\"n\":0x10}", "expected ',' or '}'");
	REFUSED("{\"n\":NaN}", "expected a value");
	REFUSED("{\"n\":Infinity}", "expected a value");
}

Test(json, integer_ranges)
{
	struct json_obj o;
	uint64_t u;
	int64_t i;
	ok("{\"max\":18446744073709551615,\"over\":18446744073709551616,\"neg\":-1,\"mz\":-0,"
	   "\"imin\":-9223372036854775808,\"ilow\":-9223372036854775809,"
	   "\"imax\":9223372036854775807,\"ihigh\":9223372036854775808,\"s\":\"1\"}",
	   &o);
	cr_assert_eq(json_number_u64(json_get(&o, "max"), &u), 0);
	cr_assert_eq(u, UINT64_MAX);
	cr_assert_eq(json_number_u64(json_get(&o, "over"), &u), -ERANGE);
	cr_assert_eq(json_number_u64(json_get(&o, "neg"), &u), -ERANGE);
	cr_assert_eq(json_number_u64(json_get(&o, "mz"), &u), 0);
	cr_assert_eq(u, 0);
	cr_assert_eq(json_number_i64(json_get(&o, "imin"), &i), 0);
	cr_assert_eq(i, INT64_MIN);
	cr_assert_eq(json_number_i64(json_get(&o, "ilow"), &i), -ERANGE);
	cr_assert_eq(json_number_i64(json_get(&o, "imax"), &i), 0);
	cr_assert_eq(i, INT64_MAX);
	cr_assert_eq(json_number_i64(json_get(&o, "ihigh"), &i), -ERANGE);
	cr_assert_eq(json_number_u64(json_get(&o, "s"), &u), -EINVAL);
	json_obj_free(&o);
}

Test(json, structure)
{
	REFUSED("", "expected a JSON object");
	REFUSED("   ", "expected a JSON object");
	REFUSED("[1]", "expected a JSON object");
	REFUSED("\"s\"", "expected a JSON object");
	REFUSED("{", "expected a member name");
	REFUSED("{\"a\"}", "expected ':'");
	REFUSED("{\"a\":}", "expected a value");
	REFUSED("{\"a\":1,}", "expected a member name");
	REFUSED("{\"a\":1 \"b\":2}", "expected ',' or '}'");
	REFUSED("{a:1}", "expected a member name");
	REFUSED("{'a':1}", "expected a member name");
	REFUSED("{\"a\":1}x", "nothing after the object");
	REFUSED("{\"a\":1}{}", "nothing after the object");
	REFUSED("{\"a\":1}\n{\"b\":2}", "nothing after the object");
	REFUSED("{\"a\":1,\"a\":2}", "appears twice");
	REFUSED("{\"a\":tru}", "expected a value");
	REFUSED("{\"a\":nul}", "expected a value");
	REFUSED("{\"a\":[1,]}", "expected a value");
	REFUSED("{\"a\":[1 2]}", "expected ',' or ']'");
	REFUSED("{\"a\":{\"b\"}}", "expected ':'");
	REFUSED("{\"a\":{1:2}}", "expected a member name");
	REFUSED("{\"a\":[\"\\q\"]}", "expected an escape");
	refused("{\"a\":1}\0", 8, "nothing after the object");
	/* the error says where */
	REFUSED("{\"a\":1 x}", "at byte 7");
}

Test(json, member_count_bound)
{
	char doc[16 * JSON_MAX_MEMBERS];
	size_t n = 0;
	struct json_obj o;
	n += (size_t)snprintf(doc + n, sizeof(doc) - n, "{");
	for (int k = 0; k < JSON_MAX_MEMBERS; k++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%s\"m%d\":%d", k ? "," : "", k, k);
	snprintf(doc + n, sizeof(doc) - n, "}");
	ok(doc, &o);
	cr_assert_eq(o.n, JSON_MAX_MEMBERS);
	json_obj_free(&o);
	snprintf(doc + n, sizeof(doc) - n, ",\"one_more\":1}");
	REFUSED(doc, "more than 256 members");
}

/* {"a": then @p levels - 1 nested arrays */
static char *nested(int levels, char open, char close)
{
	size_t len = 6 + 2 * (size_t)levels + 2;
	char *s = malloc(len);
	cr_assert_not_null(s);
	size_t n = 0;
	memcpy(s, "{\"a\":", 5);
	n = 5;
	for (int k = 1; k < levels; k++)
		s[n++] = open;
	for (int k = 1; k < levels; k++)
		s[n++] = close;
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

Test(json, depth_bound)
{
	struct json_obj o;
	char *s = nested(JSON_MAX_DEPTH, '[', ']');
	ok(s, &o);
	json_obj_free(&o);
	free(s);
	s = nested(JSON_MAX_DEPTH + 1, '[', ']');
	REFUSED(s, "nested deeper than 16 levels");
	free(s);
	/* a million opening brackets: refused at the bound, no stack exhaustion */
	size_t big = 1000000;
	s = malloc(big + 6);
	cr_assert_not_null(s);
	memcpy(s, "{\"a\":", 5);
	memset(s + 5, '[', big);
	s[big + 5] = '\0';
	REFUSED(s, "nested deeper");
	memset(s + 5, '{', big);
	REFUSED(s, "expected a member name");
	free(s);
}

Test(json, every_truncation_is_refused)
{
	const char *doc = "{\"cmd\":\"snapshot\",\"path\":\"/tmp/a\\\"b\\u00e9\",\"stop\":true,"
	                  "\"x\":[1,-2.5e3,{\"y\":null}],\"n\":false}";
	size_t len = strlen(doc);
	for (size_t k = 0; k < len; k++) {
		struct json_obj o;
		char err[128];
		char *copy = malloc(k ? k : 1); /* exactly k bytes: ASan catches any overread */
		memcpy(copy, doc, k);
		cr_assert_eq(json_parse_object(copy, k, &o, err, sizeof(err)), -EINVAL,
		             "prefix of %zu bytes accepted", k);
		json_obj_free(&o);
		free(copy);
	}
	struct json_obj o;
	ok(doc, &o);
	json_obj_free(&o);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

Test(json, random_bytes_and_mutations_never_crash)
{
	const char *seed = "{\"cmd\":\"status\",\"id\":\"\\ud83d\\ude00\",\"o\":{\"a\":[1,2]}}";
	size_t slen = strlen(seed);
	unsigned accepted = 0;
	for (int it = 0; it < 200000; it++) {
		unsigned char buf[96];
		size_t len;
		if (it & 1) {
			len = next_rand() % sizeof(buf);
			for (size_t k = 0; k < len; k++)
				buf[k] = (unsigned char)next_rand();
		} else {
			len = slen;
			memcpy(buf, seed, slen);
			for (int m = 1 + next_rand() % 3; m > 0; m--)
				buf[next_rand() % len] = (unsigned char)next_rand();
		}
		unsigned char *copy = malloc(len ? len : 1);
		memcpy(copy, buf, len);
		struct json_obj o;
		char err[128];
		int r = json_parse_object((const char *)copy, len, &o, err, sizeof(err));
		cr_assert(r == 0 || r == -EINVAL);
		if (r == 0) {
			accepted++;
			for (size_t k = 0; k < o.n; k++) {
				const struct json_value *v = &o.m[k].v;
				cr_assert(v->raw >= (const char *)copy &&
				          v->raw + v->raw_len <= (const char *)copy + len);
				if (v->type == JSON_STRING)
					cr_assert_eq(strlen(v->str), v->str_len);
			}
		} else {
			cr_assert(err[0], "an error without a message");
		}
		json_obj_free(&o);
		free(copy);
	}
	cr_assert_gt(accepted, 0, "no mutation survived: the seed itself is refused?");
}

/* Writes a string member, reads the document back, compares. */
static void roundtrip(const char *s, size_t n, const char *want_text)
{
	struct jsonw w;
	char *text;
	size_t len;
	jsonw_init(&w, 1 << 20);
	jsonw_obj_begin(&w, NULL);
	jsonw_strn(&w, "v", s, n);
	jsonw_obj_end(&w);
	cr_assert_eq(jsonw_finish(&w, NULL, &text, &len), 0);
	if (want_text)
		cr_assert_str_eq(text, want_text);
	struct json_obj o;
	char err[128];
	int r = json_parse_object(text, len, &o, err, sizeof(err));
	if (memchr(s, '\0', n)) /* valid JSON, but the reader's strings are C strings */
		cr_assert(r == -EINVAL && strstr(err, "\\u0000"), "%s", err);
	else
		cr_assert_eq(r, 0, "%s: %s", text, err);
	json_obj_free(&o);
	free(text);
}

Test(jsonw, escapes_everything_that_needs_it)
{
	roundtrip("a\"b\\c/d", 7, "{\"v\":\"a\\\"b\\\\c/d\"}");
	roundtrip("\n\r\t\b\f\x01\x1f\x7f", 8, "{\"v\":\"\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\"}");
	roundtrip("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
	          "{\"v\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}");
	/* bytes that are not UTF-8 become U+FFFD; a NUL in a counted string is escaped */
	roundtrip("a\xff"
	          "b\xc0\xaf\xe2\x82",
	          7, "{\"v\":\"a\\ufffdb\\ufffd\\ufffd\\ufffd\\ufffd\"}");
	roundtrip("x\0y", 3, "{\"v\":\"x\\u0000y\"}");
	roundtrip("", 0, "{\"v\":\"\"}");
}

Test(jsonw, random_strings_roundtrip)
{
	for (int it = 0; it < 20000; it++) {
		char s[64];
		size_t n = next_rand() % sizeof(s);
		for (size_t k = 0; k < n; k++)
			s[k] = (char)(next_rand() % 255 +
			              1); /* no NUL: the reader refuses \u0000 */
		struct jsonw w;
		char *text;
		size_t len;
		jsonw_init(&w, 4096);
		jsonw_obj_begin(&w, NULL);
		jsonw_strn(&w, "v", s, n);
		jsonw_obj_end(&w);
		cr_assert_eq(jsonw_finish(&w, NULL, &text, &len), 0);
		struct json_obj o;
		char err[128];
		cr_assert_eq(json_parse_object(text, len, &o, err, sizeof(err)), 0, "%s", err);
		/* valid UTF-8 comes back unchanged; the rest as U+FFFD */
		const struct json_value *v = json_get(&o, "v");
		size_t i = 0, j = 0;
		while (i < n) {
			uint32_t cp;
			size_t k = json_utf8_decode((const unsigned char *)s + i, n - i, &cp);
			if (k) {
				cr_assert(j + k <= v->str_len && memcmp(v->str + j, s + i, k) == 0);
				i += k, j += k;
			} else {
				cr_assert(j + 3 <= v->str_len &&
				          memcmp(v->str + j, "\xef\xbf\xbd", 3) == 0);
				i++, j += 3;
			}
		}
		cr_assert_eq(j, v->str_len);
		json_obj_free(&o);
		free(text);
	}
}

Test(jsonw, structure_and_types)
{
	struct jsonw w;
	char *text;
	size_t len;
	jsonw_init(&w, 4096);
	jsonw_obj_begin(&w, NULL);
	jsonw_bool(&w, "ok", true);
	jsonw_u64(&w, "u", UINT64_MAX);
	jsonw_i64(&w, "i", INT64_MIN);
	jsonw_null(&w, "n");
	jsonw_str(&w, "s", NULL);
	jsonw_arr_begin(&w, "a");
	jsonw_u64(&w, NULL, 1);
	jsonw_obj_begin(&w, NULL);
	jsonw_bool(&w, "f", false);
	jsonw_obj_end(&w);
	jsonw_arr_begin(&w, NULL);
	jsonw_arr_end(&w);
	jsonw_arr_end(&w);
	jsonw_raw(&w, "id", "\"x\"", 3);
	jsonw_obj_end(&w);
	cr_assert_eq(jsonw_finish(&w, "\n", &text, &len), 0);
	cr_assert_str_eq(text, "{\"ok\":true,\"u\":18446744073709551615,\"i\":-9223372036854775808,"
	                       "\"n\":null,\"s\":null,\"a\":[1,{\"f\":false},[]],\"id\":\"x\"}\n");
	cr_assert_eq(len, strlen(text));
	free(text);
}

Test(jsonw, misuse_and_size_bound)
{
	struct jsonw w;
	char *text = NULL;
	size_t len;
	/* a member without a name */
	jsonw_init(&w, 4096);
	jsonw_obj_begin(&w, NULL);
	jsonw_u64(&w, NULL, 1);
	jsonw_obj_end(&w);
	cr_assert_eq(jsonw_finish(&w, NULL, &text, &len), -EINVAL);
	/* unbalanced */
	jsonw_init(&w, 4096);
	jsonw_obj_begin(&w, NULL);
	cr_assert_eq(jsonw_finish(&w, NULL, &text, &len), -EINVAL);
	/* nothing */
	jsonw_init(&w, 4096);
	cr_assert_eq(jsonw_finish(&w, NULL, &text, &len), -EINVAL);
	/* closing the wrong kind */
	jsonw_init(&w, 4096);
	jsonw_arr_begin(&w, NULL);
	jsonw_obj_end(&w);
	cr_assert_eq(jsonw_finish(&w, NULL, &text, &len), -EINVAL);
	/* over the bound: sticky, nothing handed back */
	jsonw_init(&w, 64);
	jsonw_obj_begin(&w, NULL);
	for (int k = 0; k < 100; k++)
		jsonw_str(&w, k % 2 ? "a" : "b", "0123456789");
	jsonw_obj_end(&w);
	cr_assert_eq(jsonw_finish(&w, NULL, &text, &len), -E2BIG);
	cr_assert_null(w.buf);
	/* too deep */
	jsonw_init(&w, 4096);
	for (int k = 0; k <= JSON_MAX_DEPTH; k++)
		jsonw_arr_begin(&w, NULL);
	cr_assert_eq(jsonw_finish(&w, NULL, &text, &len), -EINVAL);
}
