/* Exported methods' signatures and names (core/method-sig.c, ABI 1.6): what the loader accepts
 * and, for each fault, the phrase it refuses the plugin with. The loader's use of it, on real
 * plugins, is tests/configs/check-bad-plugins (tests/fixtures: fixture-method-*). */
#include <criterion/criterion.h>
#include <string.h>

#include "method-sig.h"

static void parses(const char *sig, char ret, const char *args)
{
	struct method_sig s;
	char why[160] = "";
	cr_assert_eq(method_sig_parse(sig, &s, why, sizeof(why)), 0, "'%s' refused: %s", sig, why);
	cr_assert_eq(s.ret, ret, "'%s': return '%c', wanted '%c'", sig, s.ret, ret);
	cr_assert_str_eq(s.args, args, "'%s': parameters", sig);
	cr_assert_eq(s.n_args, strlen(args), "'%s': parameter count", sig);
}

static void refused(const char *sig, const char *phrase)
{
	struct method_sig s;
	char why[160] = "";
	cr_assert_eq(method_sig_parse(sig, &s, why, sizeof(why)), -1, "'%s' accepted", sig);
	cr_assert(strstr(why, phrase), "'%s': the reason '%s' lacks '%s'", sig, why, phrase);
}

Test(method_sig, every_letter_where_it_belongs)
{
	parses("i(ud)", 'i', "ud");
	parses("v()", 'v', "");
	parses("d(bBhHiulL)", 'd', "bBhHiulL");
	parses("v(sS)", 'v', "sS");
	parses("L(S)", 'L', "S");
	for (const char *r = "bBhHiulLdv"; *r; r++) {
		char sig[] = { *r, '(', ')', 0 };
		parses(sig, *r, "");
	}
	parses("i(iiiiiiii)", 'i', "iiiiiiii"); /* SMOL_METHOD_MAX_ARGS */
}

Test(method_sig, faults_named)
{
	refused("", "is not R(P...)");
	refused("i", "is not R(P...)");
	refused("iu)", "is not R(P...)");
	refused("q()", "returns 'q', which is not one of");
	refused("s()", "strings come back through an S parameter");
	refused("S(i)", "strings come back through an S parameter");
	refused("i(iq)", "has 'q' at character 4, which is not a parameter letter");
	refused("i(v)", "v is for the return only");
	refused("i(i\x01)", "byte 0x01");
	refused("v(iiiiiiiii)", "more than 8 parameters");
	refused("i(iu", "no closing ')'");
	refused("i(iu)x", "goes on after its closing ')'");
	refused("i(i)(u)", "goes on after its closing ')'");
}

Test(method_sig, names)
{
	cr_assert(method_name_ok("set_temperature"));
	cr_assert(method_name_ok("a"));
	cr_assert(method_name_ok("x2_y"));
	cr_assert(method_name_ok("abcdefghijklmnopqrstuvwxyz01234")); /* 31 */
	cr_assert(!method_name_ok("abcdefghijklmnopqrstuvwxyz012345")); /* 32 */
	cr_assert(!method_name_ok(""));
	cr_assert(!method_name_ok("_x"));
	cr_assert(!method_name_ok("9x"));
	cr_assert(!method_name_ok("Set"));
	cr_assert(!method_name_ok("a-b"));
	cr_assert(!method_name_ok("a.b"));
	cr_assert(!method_name_ok("a b"));
}
