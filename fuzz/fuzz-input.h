/*
 * fuzz-input.h: reading a libFuzzer input as a stream of small fields. Past the end every
 * read gives zeros and in_left() is 0, so a target's loop ends there.
 */
#ifndef SMOLVM_FUZZ_INPUT_H
#define SMOLVM_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct in {
	const uint8_t *p;
	size_t n;
};

static inline size_t in_left(const struct in *in)
{
	return in->n;
}

static inline uint8_t in_u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* @bytes (at most 8) little-endian bytes. */
static inline uint64_t in_le(struct in *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)in_u8(in) << (8 * i);
	return v;
}

/* Up to @len bytes into @dst; the count copied. */
static inline size_t in_bytes(struct in *in, void *dst, size_t len)
{
	if (len > in->n)
		len = in->n;
	memcpy(dst, in->p, len);
	in->p += len;
	in->n -= len;
	return len;
}

#endif
