/* method-sig.h: exported methods' signatures (struct smol_method, ABI 1.6) and the checks the
 * loader makes on a device's method table before any machine starts. */
#ifndef SMOLVM_METHOD_SIG_H
#define SMOLVM_METHOD_SIG_H

#include <stdbool.h>
#include <stddef.h>

#include <smolvm/sdk.h>

/* A parsed signature: the return letter and the parameter letters after the state. */
struct method_sig {
	char ret; /* one of "bBhHiulLdv" */
	unsigned n_args; /* letters in args (an 'S' is one letter, two C parameters) */
	char args[SMOL_METHOD_MAX_ARGS + 1]; /* NUL-terminated */
};

/* Parses @p sig ("R(P...)"). 0, or -1 with @p why (a phrase naming the fault) filled. */
int method_sig_parse(const char *sig, struct method_sig *out, char *why, size_t why_len);

/* Whether @p name is a method name: [a-z][a-z0-9_]{0,30}. */
bool method_name_ok(const char *name);

/* Whether @p c is a parameter letter, and a return letter. */
bool method_arg_letter(char c);
bool method_ret_letter(char c);

struct plugin_map;

/* The checks of a device's method table (ABI 1.6), every pointer inside the plugin's own
 * mapping @p pm: at most SMOL_METHODS_MAX entries, each with a valid unique name, a function in
 * the plugin's code, a signature method_sig_parse() accepts and a one-line help. 0, or -1 with
 * @p why saying which method and what is wrong ("method 'x': ..."). */
int method_table_check(const struct plugin_map *pm, const struct smol_method *m, uint32_t n,
                       char *why, size_t why_len);
#endif
