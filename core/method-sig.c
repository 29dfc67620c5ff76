/* method-sig.c: see method-sig.h. */
#include "method-sig.h"
#include "plugin-map.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool method_arg_letter(char c)
{
	return c && strchr("bBhHiulLdsS", c) != NULL;
}

bool method_ret_letter(char c)
{
	return c && strchr("bBhHiulLdv", c) != NULL;
}

bool method_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SMOL_METHOD_NAME_MAX || name[0] < 'a' || name[0] > 'z')
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* The letter @p c as the message shows it: printable, else its code. */
static void show(char c, char *buf, size_t len)
{
	if (c > ' ' && c < 0x7f)
		snprintf(buf, len, "'%c'", c);
	else
		snprintf(buf, len, "byte 0x%02x", (unsigned char)c);
}

int method_sig_parse(const char *sig, struct method_sig *out, char *why, size_t why_len)
{
	char c[16];
	memset(out, 0, sizeof(*out));
	if (!sig[0] || sig[1] != '(') {
		snprintf(why, why_len,
		         "is not R(P...): a return letter, then the parameters in ()");
		return -1;
	}
	if (!method_ret_letter(sig[0])) {
		show(sig[0], c, sizeof(c));
		snprintf(why, why_len, "returns %s, which is not one of bBhHiulLd or v%s", c,
		         sig[0] == 's' || sig[0] == 'S'
		                 ? " (strings come back through an S parameter)"
		                 : "");
		return -1;
	}
	out->ret = sig[0];
	const char *p = sig + 2;
	for (; *p && *p != ')'; p++) {
		if (!method_arg_letter(*p)) {
			show(*p, c, sizeof(c));
			snprintf(why, why_len,
			         "has %s at character %zu, which is not a parameter letter%s", c,
			         (size_t)(p - sig) + 1,
			         *p == 'v' ? " (v is for the return only)" : "");
			return -1;
		}
		if (out->n_args == SMOL_METHOD_MAX_ARGS) {
			snprintf(why, why_len, "has more than %d parameters", SMOL_METHOD_MAX_ARGS);
			return -1;
		}
		out->args[out->n_args++] = *p;
	}
	if (*p != ')') {
		snprintf(why, why_len, "has no closing ')'");
		return -1;
	}
	if (p[1]) {
		snprintf(why, why_len, "goes on after its closing ')'");
		return -1;
	}
	return 0;
}

int method_table_check(const struct plugin_map *pm, const struct smol_method *m, uint32_t n,
                       char *why, size_t why_len)
{
	if (n > SMOL_METHODS_MAX) {
		snprintf(why, why_len, "exports %u methods, more than %d", n, SMOL_METHODS_MAX);
		return -1;
	}
	if (n && !plugin_map_readable(pm, m, (size_t)n * sizeof(*m))) {
		snprintf(why, why_len,
		         "its method table (%p, %u entries) lies outside the plugin's own loaded "
		         "segments",
		         (const void *)m, n);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct smol_method *x = &m[i];
		if (!x->name || !plugin_map_string(pm, x->name)) {
			snprintf(why, why_len,
			         "method %u: its name (%p) is not a string inside the plugin's own "
			         "loaded segments",
			         i, (const void *)x->name);
			return -1;
		}
		if (!method_name_ok(x->name)) {
			snprintf(why, why_len,
			         "method %u: name '%.40s' is not [a-z][a-z0-9_]{0,30}", i, x->name);
			return -1;
		}
		for (uint32_t k = 0; k < i; k++) {
			if (strcmp(m[k].name, x->name) == 0) {
				snprintf(why, why_len,
				         "method '%s': exported twice (entries %u and %u)", x->name,
				         k, i);
				return -1;
			}
		}
		if (!x->fn || !plugin_map_code(pm, (uintptr_t)x->fn)) {
			snprintf(why, why_len,
			         "method '%s': its function (%p) is not in the plugin's code",
			         x->name, (void *)(uintptr_t)x->fn);
			return -1;
		}
		if (!x->signature || !plugin_map_string(pm, x->signature)) {
			snprintf(why, why_len,
			         "method '%s': its signature (%p) is not a string inside the "
			         "plugin's "
			         "own loaded segments",
			         x->name, (const void *)x->signature);
			return -1;
		}
		struct method_sig sig;
		char what[160];
		if (method_sig_parse(x->signature, &sig, what, sizeof(what)) < 0) {
			snprintf(why, why_len, "method '%s': signature '%.40s' %s", x->name,
			         x->signature, what);
			return -1;
		}
		if (!x->help || !plugin_map_string(pm, x->help) || !x->help[0] ||
		    strchr(x->help, '\n')) {
			snprintf(why, why_len, "method '%s': its help is %s", x->name,
			         !x->help || !plugin_map_string(pm, x->help)
			                 ? "not a string inside the plugin's own loaded segments"
			         : !x->help[0] ? "empty"
			                       : "more than one line");
			return -1;
		}
	}
	return 0;
}
