/*
 * The assertions the tests' device drivers (blk-driver.c, net-driver.c) use: Criterion's
 * (its tests), or, built with -DTEST_PLAIN, the same names without Criterion for the plain-C
 * driver of the threaded scenarios (test-threads.c, which runs where Criterion's runner
 * cannot start: under ThreadSanitizer). A failed check there prints where it is, what it
 * checked, both values of a comparison, the message, the scenario and the fake host's log,
 * and ends the process with status 1 (check_failed(), in test-threads.c).
 */
#ifndef SMOLVM_TEST_CHECK_H
#define SMOLVM_TEST_CHECK_H

#ifndef TEST_PLAIN
#include <criterion/criterion.h>
#else
#include <smolvm/sdk.h>

/* @expr: the check's text; @have_values: @a and @b are a comparison's operands; @fmt and
 * what follows: the check's message (it starts with a blank: " " and the caller's). */
_Noreturn void check_failed(const char *file, int line, const char *expr, int have_values,
                            long long a, long long b, const char *fmt, ...) SMOL_PRINTF(7, 8);

#define cr_assert(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			check_failed(__FILE__, __LINE__, #cond, 0, 0, 0, " " __VA_ARGS__);         \
	} while (0)
#define cr_assert_not(cond, ...)                                                                   \
	do {                                                                                       \
		if (cond)                                                                          \
			check_failed(__FILE__, __LINE__, "!(" #cond ")", 0, 0, 0,                  \
			             " " __VA_ARGS__);                                             \
	} while (0)
/* @x is evaluated once (it may be a call: write(), rd()); @y once, and again on failure
 * only, for the message (a constant in the drivers, or a plain value). */
#define check_cmp_(x, op, y, ...)                                                                  \
	do {                                                                                       \
		__typeof__(x) x_ = (x);                                                            \
		if (!(x_ op(y)))                                                                   \
			check_failed(__FILE__, __LINE__, #x " " #op " " #y, 1, (long long)x_,      \
			             (long long)(y), " " __VA_ARGS__);                             \
	} while (0)
#define cr_assert_eq(x, y, ...) check_cmp_(x, ==, y, __VA_ARGS__)
#define cr_assert_neq(x, y, ...) check_cmp_(x, !=, y, __VA_ARGS__)
#define cr_assert_lt(x, y, ...) check_cmp_(x, <, y, __VA_ARGS__)
#define cr_assert_leq(x, y, ...) check_cmp_(x, <=, y, __VA_ARGS__)
#define cr_assert_gt(x, y, ...) check_cmp_(x, >, y, __VA_ARGS__)
#define cr_assert_geq(x, y, ...) check_cmp_(x, >=, y, __VA_ARGS__)
#endif

#endif
