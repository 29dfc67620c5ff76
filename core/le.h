/* le.h: little-endian fields in byte buffers, whatever the host's byte order (ACPI tables, AML,
 * the .smolmachine file and what the core puts in it). */
#ifndef SMOLVM_LE_H
#define SMOLVM_LE_H

#include <stdint.h>

/* Writes the low @p n bytes of @p v at @p p, least significant first. */
static inline void le_put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads an @p n-byte field at @p p. */
static inline uint64_t le_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#endif
