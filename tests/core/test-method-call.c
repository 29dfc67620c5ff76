/* Calling exported methods through libffi (core/method-call.c) on a real plugin
 * (tests/fixtures: fixture-methods): every signature letter in and out, string-out buffers,
 * and every argument fault refused before the call (the fixture counts its calls). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "method-call.h"
#include "plugin.h"

static struct plugin *plug;
static const struct smol_device_ops *ops;
static char err[512];

static void open_fixture(void)
{
	char path[4096];
	const char *dir = getenv("FIXTURE_DIR");
	cr_assert_not_null(dir, "FIXTURE_DIR not set");
	snprintf(path, sizeof(path), "%s/fixture-methods.so", dir);
	cr_assert_eq(plugin_open_file(path, SMOL_KIND_DEVICE, &plug, err, sizeof(err)), 0, "%s",
	             err);
	ops = plug->desc->ops;
}

static void close_fixture(void)
{
	plugin_close(plug);
}

TestSuite(method_call, .init = open_fixture, .fini = close_fixture);

static const struct smol_method *method(const char *name)
{
	for (uint32_t k = 0; k < ops->n_methods; k++)
		if (strcmp(ops->methods[k].name, name) == 0)
			return &ops->methods[k];
	cr_assert_fail("the fixture has no method %s", name);
	return NULL;
}

static struct method_result res;

static void call_ok(const char *name, const char *want, unsigned n, const char *const *args)
{
	char why[256] = "";
	cr_assert_eq(method_call(method(name), NULL, args, n, &res, why, sizeof(why)), 0, "%s: %s",
	             name, why);
	cr_assert_str_eq(res.value, want, "%s returned %s, wanted %s", name, res.value, want);
}

/* How many times the fixture's add ran (its method calls, L()). */
static uint64_t calls(void)
{
	struct method_result r;
	char why[256] = "";
	cr_assert_eq(method_call(method("calls"), NULL, NULL, 0, &r, why, sizeof(why)), 0, "%s",
	             why);
	return strtoull(r.value, NULL, 10);
}

static void call_bad(const char *name, const char *phrase, unsigned n, const char *const *args)
{
	char why[256] = "";
	uint64_t before = calls();
	cr_assert_eq(method_call(method(name), NULL, args, n, &res, why, sizeof(why)), -EINVAL,
	             "%s accepted its arguments", name);
	cr_assert(strstr(why, phrase), "%s: '%s' lacks '%s'", name, why, phrase);
	cr_assert_eq(calls(), before, "%s was called despite bad arguments", name);
}

Test(method_call, every_letter)
{
	call_ok("add", "2", 2, (const char *[]){ "-5", "7" });
	call_ok("add", "-2147483648", 2, (const char *[]){ "-2147483648", "0" });
	call_ok("add", "16", 2, (const char *[]){ "0x10", "0" });
	/* -1 + 255 + -300 + 65535 + -5e9 + 1e10 + 0.5 + strlen("four") */
	call_ok("mix", "5000065493.5", 8,
	        (const char *[]){ "-1", "255", "-300", "65535", "-5000000000", "10000000000", "0.5",
	                          "four" });
	call_ok("name", "", 0, NULL);
	cr_assert_eq(res.n_out, 1);
	cr_assert_str_eq(res.out[0], "fixture-methods");
	call_ok("neg", "5", 2, (const char *[]){ "-5", "65535" });
	cr_assert_str_eq(res.out[0], "-5/65535");
	call_ok("neg", "-127", 2, (const char *[]){ "127", "0" });
}

Test(method_call, calls_counted)
{
	uint64_t n = calls();
	call_ok("add", "3", 2, (const char *[]){ "1", "2" });
	cr_assert_eq(calls(), n + 1);
}

Test(method_call, bad_arguments_refused_before_the_call)
{
	call_bad("add", "takes 2 arguments, 1 given", 1, (const char *[]){ "1" });
	call_bad("add", "takes 2 arguments, 3 given", 3, (const char *[]){ "1", "2", "3" });
	call_bad("add", "argument 1 (i): 'x' is not a signed 32-bit integer", 2,
	         (const char *[]){ "x", "1" });
	call_bad("add", "argument 1 (i): '2147483648' is not a signed 32-bit", 2,
	         (const char *[]){ "2147483648", "1" });
	call_bad("add", "argument 2 (u): '-1' is not an unsigned 32-bit integer", 2,
	         (const char *[]){ "1", "-1" });
	call_bad("add", "argument 2 (u): '4294967296' is not an unsigned", 2,
	         (const char *[]){ "1", "4294967296" });
	call_bad("add", "argument 2 (u): '' is not an unsigned", 2, (const char *[]){ "1", "" });
	call_bad("add", "argument 2 (u): '12abc' is not", 2, (const char *[]){ "1", "12abc" });
	call_bad("mix", "argument 1 (b): '128' is not a signed 8-bit", 8,
	         (const char *[]){ "128", "0", "0", "0", "0", "0", "0", "" });
	call_bad("mix", "argument 2 (B): '256' is not an unsigned 8-bit", 8,
	         (const char *[]){ "0", "256", "0", "0", "0", "0", "0", "" });
	call_bad("mix", "argument 3 (h): '-32769' is not a signed 16-bit", 8,
	         (const char *[]){ "0", "0", "-32769", "0", "0", "0", "0", "" });
	call_bad("mix", "argument 6 (L): '18446744073709551616' is not an unsigned 64-bit", 8,
	         (const char *[]){ "0", "0", "0", "0", "0", "18446744073709551616", "0", "" });
	call_bad("mix", "argument 7 (d): 'nan' is not a finite number", 8,
	         (const char *[]){ "0", "0", "0", "0", "0", "0", "nan", "" });
	call_bad("mix", "argument 7 (d): '1e999' is not a finite number", 8,
	         (const char *[]){ "0", "0", "0", "0", "0", "0", "1e999", "" });
	call_bad("name", "takes 0 arguments, 1 given", 1, (const char *[]){ "x" });
}
