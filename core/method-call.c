/* method-call.c: see method-call.h. */
#include "method-call.h"

#include <errno.h>
#include <ffi.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method-sig.h"

/* One C parameter's value, whatever its type (libffi reads it through a pointer). */
union arg_value {
	int8_t i8;
	uint8_t u8;
	int16_t i16;
	uint16_t u16;
	int32_t i32;
	uint32_t u32;
	int64_t i64;
	uint64_t u64;
	double d;
	const char *s;
	char *buf;
	size_t len;
};

static ffi_type *ffi_of(char c)
{
	switch (c) {
	case 'b': return &ffi_type_sint8;
	case 'B': return &ffi_type_uint8;
	case 'h': return &ffi_type_sint16;
	case 'H': return &ffi_type_uint16;
	case 'i': return &ffi_type_sint32;
	case 'u': return &ffi_type_uint32;
	case 'l': return &ffi_type_sint64;
	case 'L': return &ffi_type_uint64;
	case 'd': return &ffi_type_double;
	case 'v': return &ffi_type_void;
	default: return &ffi_type_pointer; /* s, and S's buffer */
	}
}

/* The width in bits and signedness of an integer letter; 0 for others. */
static int int_bits(char c, bool *is_signed)
{
	*is_signed = c == 'b' || c == 'h' || c == 'i' || c == 'l';
	switch (c) {
	case 'b':
	case 'B': return 8;
	case 'h':
	case 'H': return 16;
	case 'i':
	case 'u': return 32;
	case 'l':
	case 'L': return 64;
	default: return 0;
	}
}

/* Parses @p text as the letter @p c wants into @p v. 0, or -1 with @p why. */
static int parse_arg(char c, const char *text, union arg_value *v, char *why, size_t why_len)
{
	bool sgn;
	int bits = int_bits(c, &sgn);
	char *end;
	if (bits) {
		errno = 0;
		if (sgn) {
			long long x = strtoll(text, &end, 0);
			long long lo = bits == 64 ? INT64_MIN : -(1ll << (bits - 1));
			long long hi = bits == 64 ? INT64_MAX : (1ll << (bits - 1)) - 1;
			if (!text[0] || *end || errno || x < lo || x > hi)
				goto bad_int;
			if (bits == 8)
				v->i8 = (int8_t)x;
			else if (bits == 16)
				v->i16 = (int16_t)x;
			else if (bits == 32)
				v->i32 = (int32_t)x;
			else
				v->i64 = x;
		} else {
			unsigned long long x = strtoull(text, &end, 0);
			unsigned long long hi = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
			/* strtoull takes "-1" as ULLONG_MAX: a sign is never an unsigned value */
			if (!text[0] || strchr(text, '-') || *end || errno || x > hi)
				goto bad_int;
			if (bits == 8)
				v->u8 = (uint8_t)x;
			else if (bits == 16)
				v->u16 = (uint16_t)x;
			else if (bits == 32)
				v->u32 = (uint32_t)x;
			else
				v->u64 = x;
		}
		return 0;
	bad_int:
		snprintf(why, why_len, "'%.40s' is not %s %d-bit integer", text,
		         sgn ? "a signed" : "an unsigned", bits);
		return -1;
	}
	if (c == 'd') {
		errno = 0;
		double x = strtod(text, &end);
		if (!text[0] || *end || errno == ERANGE || !isfinite(x)) {
			snprintf(why, why_len, "'%.40s' is not a finite number", text);
			return -1;
		}
		v->d = x;
		return 0;
	}
	v->s = text; /* 's' */
	return 0;
}

/* The arguments a caller gives for @p sig: every parameter letter but 'S'. */
static int user_args(const struct method_sig *sig)
{
	int n = 0;
	for (unsigned k = 0; k < sig->n_args; k++)
		n += sig->args[k] != 'S';
	return n;
}

int method_n_user_args(const struct smol_method *m)
{
	struct method_sig sig;
	char why[160];
	if (method_sig_parse(m->signature, &sig, why, sizeof(why)) < 0)
		return -1;
	return user_args(&sig);
}

int method_call(const struct smol_method *m, void *state, const char *const *args, unsigned n,
                struct method_result *res, char *why, size_t why_len)
{
	struct method_sig sig;
	char what[160];
	if (method_sig_parse(m->signature, &sig, what, sizeof(what)) < 0) {
		snprintf(why, why_len, "method '%s': signature %s", m->name, what);
		return -EINVAL;
	}
	int want = user_args(&sig);
	if ((int)n != want) {
		snprintf(why, why_len, "method '%s' (%s) takes %d argument%s, %u given", m->name,
		         m->signature, want, want == 1 ? "" : "s", n);
		return -EINVAL;
	}
	/* C parameters: the state, then one per letter, two for an S */
	ffi_type *types[1 + 2 * SMOL_METHOD_MAX_ARGS];
	void *ptrs[1 + 2 * SMOL_METHOD_MAX_ARGS];
	union arg_value vals[1 + 2 * SMOL_METHOD_MAX_ARGS];
	unsigned np = 0, user = 0;
	memset(res, 0, sizeof(*res));
	vals[np].s = state;
	types[np] = &ffi_type_pointer;
	ptrs[np] = &vals[np];
	np++;
	for (unsigned k = 0; k < sig.n_args; k++) {
		char c = sig.args[k];
		if (c == 'S') {
			char *buf = res->out[res->n_out++];
			vals[np].buf = buf;
			types[np] = &ffi_type_pointer;
			ptrs[np] = &vals[np];
			np++;
			vals[np].len = METHOD_OUT_MAX;
			types[np] = sizeof(size_t) == 8 ? &ffi_type_uint64 : &ffi_type_uint32;
			ptrs[np] = &vals[np];
			np++;
			continue;
		}
		if (parse_arg(c, args[user], &vals[np], what, sizeof(what)) < 0) {
			snprintf(why, why_len, "method '%s': argument %u (%c): %s", m->name,
			         user + 1, c, what);
			return -EINVAL;
		}
		types[np] = ffi_of(c);
		ptrs[np] = &vals[np];
		np++;
		user++;
	}
	ffi_cif cif;
	if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, np, ffi_of(sig.ret), types) != FFI_OK) {
		snprintf(why, why_len, "method '%s': libffi cannot prepare a call of %s", m->name,
		         m->signature);
		return -EINVAL;
	}
	/* integral results come back widened to a whole ffi_arg */
	union {
		ffi_arg a;
		ffi_sarg s;
		double d;
		uint64_t u64;
	} rv = { 0 };
	ffi_call(&cif, m->fn, &rv, ptrs);
	for (unsigned k = 0; k < res->n_out; k++)
		res->out[k][METHOD_OUT_MAX - 1] = 0; /* a method that forgot the NUL */
	switch (sig.ret) {
	case 'v': break;
	case 'b':
	case 'h':
	case 'i': snprintf(res->value, sizeof(res->value), "%" PRId64, (int64_t)rv.s); break;
	case 'B':
	case 'H':
	case 'u':
		snprintf(res->value, sizeof(res->value), "%" PRIu64, (uint64_t)(uint32_t)rv.a);
		break;
	case 'l': snprintf(res->value, sizeof(res->value), "%" PRId64, (int64_t)rv.u64); break;
	case 'L': snprintf(res->value, sizeof(res->value), "%" PRIu64, rv.u64); break;
	case 'd': snprintf(res->value, sizeof(res->value), "%.17g", rv.d); break;
	}
	return 0;
}
