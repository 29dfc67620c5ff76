/* A split-ring descriptor as a test's driver writes it into fake guest RAM (virtio 1.2,
 * 2.7.5: le64 addr, le32 len, le16 flags, le16 next), shared by the virtqueue and virtio-blk
 * tests. */
#ifndef SMOLVM_TEST_RING_DESC_H
#define SMOLVM_TEST_RING_DESC_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline void put_desc(uint8_t *p, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);

	flags = htole16(flags);
	next = htole16(next);
	memcpy(p, &a, 8);
	memcpy(p + 8, &l, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

#endif
