/* snapfile-int.h: what the .smolmachine writer (snapfile.c) and reader (snapfile-read.c) share:
 * the layout of format 1, byte by byte, and little-endian helpers. Not for other files.
 *
 * Every integer is little-endian. Offsets are from the start of the file.
 *
 * Header (256 bytes), then the section table (80 bytes per section):
 *   0   8  magic "SMOLMACH"
 *   8   4  format version (1)
 *   12  4  header size: 256 + 80 * section count (the table included)
 *   16  8  header checksum: XXH3_64bits of bytes [0, header size) read with these 8 as zero
 *   24  4  section count (at most SF_MAX_SECTIONS)
 *   28  4  arch (enum smol_arch)
 *   32  8  guest RAM size in bytes (a multiple of 4096; 0 when there is no memory section)
 *   40  8  creation time, ns since the Unix epoch (CLOCK_REALTIME)
 *   48  32 smolvm version, NUL-terminated, zero-filled
 *   80  32 backend name, NUL-terminated, zero-filled
 *   112 88 struct smol_x86_cpu_info: struct_size u32, vendor 12 bytes, signature u32,
 *          n_words u32 (<= 16), words 16 x u32 (all zero for another arch)
 *   200 56 reserved, zero
 * The first 24 bytes (magic, version, header size, header checksum) keep this meaning in every
 * format version, so any reader tells a damaged header from one of a newer format.
 *
 * Section table entry (80 bytes):
 *   0  4  type (enum snap_section_type)
 *   4  4  flags, zero
 *   8  8  offset of the section's bytes
 *   16 8  length
 *   24 8  checksum (below)
 *   32 48 name, NUL-terminated, zero-filled
 *
 * Sections follow the table in table order with no gaps but alignment: a section starts at the
 * end of the previous one (of the table for the first) rounded up to 16 bytes, 4096 for memory.
 * The padding bytes are zero. A section's checksum is XXH3_64bits of its bytes and the padding
 * after it (up to the next section's offset). The memory section, if any, is last and the file
 * ends with it; it is preceded (anywhere) by one SNAP_SEC_MEMORY_SUMS section:
 *   0  4  chunk size (a power of two, 4096 to 1 GiB; smolvm writes 2 MiB)
 *   4  4  reserved, zero
 *   8  8  chunk count: RAM size / chunk size, rounded up
 *   16 8n the chunks' hashes
 * A chunk's hash is XXH3_64bits over, for each page (4096 bytes) of the chunk that is not all
 * zeros, in order: its offset in guest RAM (u64) then its 4096 bytes. A chunk of zeros has the
 * hash of nothing (XXH3_64bits of 0 bytes), so pages of zeros (holes in the file) are neither
 * written, read nor hashed. The memory section's checksum is XXH3_64bits of the sums section's
 * bytes (padding excluded). */
#ifndef SMOLVM_SNAPFILE_INT_H
#define SMOLVM_SNAPFILE_INT_H

#include <stdint.h>
#include <string.h>

#include "le.h"
#include "snapfile.h"

#define SF_HDR_FIXED 256u
#define SF_ENTRY_SIZE 80u
#define SF_MAX_SECTIONS 4096u
/** Largest header size any format version may have (a bound for reading a newer header). */
#define SF_HEADER_MAX (1u << 20)
/** Largest non-memory section, and the largest total of them. */
#define SF_SECTION_MAX (64u << 20)
#define SF_SMALL_TOTAL_MAX (256u << 20)
#define SF_PAGE 4096u
#define SF_ALIGN 16u
#define SF_CHUNK (2u << 20)
#define SF_CHUNK_MIN SF_PAGE
#define SF_CHUNK_MAX (1u << 30)
/** Largest guest RAM: 16 TiB (8 Mi chunks of 2 MiB, a 64 MiB sums section). */
#define SF_RAM_MAX (1ull << 44)
#define SF_SUMS_HDR 16u

/* Header field offsets. */
#define SF_OFF_VERSION 8
#define SF_OFF_HSIZE 12
#define SF_OFF_HSUM 16
#define SF_OFF_NSEC 24
#define SF_OFF_ARCH 28
#define SF_OFF_RAM 32
#define SF_OFF_CREATED 40
#define SF_OFF_SMOLVM 48
#define SF_OFF_BACKEND 80
#define SF_OFF_CPU 112
#define SF_CPU_SIZE 88
#define SF_OFF_RESERVED 200

#define sf_put32(p, v) le_put(p, v, 4)
#define sf_put64(p, v) le_put(p, v, 8)
#define sf_get32(p) ((uint32_t)le_get(p, 4))
#define sf_get64(p) le_get(p, 8)

static inline uint64_t sf_align(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/** The alignment of a section of @p type in the file. */
static inline uint64_t sf_sec_align(uint32_t type)
{
	return type == SNAP_SEC_MEMORY ? SF_PAGE : SF_ALIGN;
}

/** True when the 4096 bytes at @p p are all zero. */
static inline int sf_page_is_zero(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof(w));
	/* p[i] == p[i + 8] for every i, and the first 8 are zero: all are */
	return w == 0 && memcmp(p, p + 8, SF_PAGE - 8) == 0;
}

/** XXH3_64bits of the header area @p h of @p size bytes, after zeroing its checksum field. */
uint64_t sf_header_sum(uint8_t *h, size_t size);

/** "section 'device com1'" for messages. */
void sf_sec_label(char *buf, size_t len, uint32_t type, const char *name);

/** Fills @p err with "@p path: " and the message. */
void sf_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#endif
