/* method-call.h: calling a device's exported method (struct smol_method, ABI 1.6) with
 * arguments given as text, through libffi: each argument parsed by the signature's letter and
 * range-checked before any call, the result formatted as text. */
#ifndef SMOLVM_METHOD_CALL_H
#define SMOLVM_METHOD_CALL_H

#include <stddef.h>

#include <smolvm/sdk.h>

/* Bytes of each string-out ('S') buffer a method gets (its len includes the NUL). */
#define METHOD_OUT_MAX 4096

/* What a call gave back: the return value as text ("" for v) and each string-out parameter. */
struct method_result {
	char value[64];
	unsigned n_out;
	char out[SMOL_METHOD_MAX_ARGS][METHOD_OUT_MAX];
};

/* The number of arguments a caller gives @p m: one per parameter letter but 'S' (the core
 * provides string-out buffers). -1 if its signature does not parse (the loader refused it). */
int method_n_user_args(const struct smol_method *m);

/* Calls @p m on @p state with @p args (@p n of them, text), after parsing every one by its
 * letter: b/B h/H i/u l/L integers (decimal, or 0x hex; in range for the width), d a finite
 * double, s the text itself. Nothing is called when an argument is wrong: -EINVAL with @p why
 * naming the argument ("argument 2 (u): '-1' is not an unsigned 32-bit integer"). The caller
 * holds whatever lock serialises the device. 0 with @p res filled. */
int method_call(const struct smol_method *m, void *state, const char *const *args, unsigned n,
                struct method_result *res, char *why, size_t why_len);

#endif
