/* blob.h: the KVM backend's state blobs: little-endian fields written one by one into a
 * caller's buffer, read back with bounds checks, grouped in tagged sections.
 *
 * A blob: a 16-byte header (magic u32, version u32, arch u32 = enum smol_arch, body length
 * u32 = the bytes after the header), then sections, each a tag u32 (four ASCII letters, first
 * letter in the low byte), a length u32 and that many bytes of fields. Every field is
 * little-endian. A reader refuses a blob whose header, section tags or lengths do not add up. */
#ifndef SMOLVM_KVM_BLOB_H
#define SMOLVM_KVM_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

#define BLOB_TAG(a, b, c, d)                                                                       \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define BLOB_HEADER_SIZE 16

/* A writer: counts every byte, stores those that fit in the buffer (size queries). */
struct blob_w {
	uint8_t *buf;
	size_t cap;
	size_t pos;
};

void bw_init(struct blob_w *w, void *buf, size_t cap, uint32_t magic, uint32_t version);
void bw_bytes(struct blob_w *w, const void *p, size_t n);
void bw_u8(struct blob_w *w, uint8_t v);
void bw_u16(struct blob_w *w, uint16_t v);
void bw_u32(struct blob_w *w, uint32_t v);
void bw_u64(struct blob_w *w, uint64_t v);
/* Starts a section; returns where its length goes, for bw_end. */
size_t bw_begin(struct blob_w *w, uint32_t tag);
void bw_end(struct blob_w *w, size_t at);
/* Completes the header. The blob's size is w->pos; it was stored whole if w->pos <= cap. */
void bw_finish(struct blob_w *w);

/* A reader over a blob or one section of it. */
struct blob_r {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool bad; /* read past the end, or a check failed (logged) */
	uint32_t tag; /* the section's tag, 0 for the blob */
	const struct smol_backend_host *host;
	const char *what; /* "vCPU 1 state" */
};

/*
 * Opens a blob: checks the header (@p magic, a version from 1 to @p max_version, arch tag
 * SMOL_ARCH_X86_64, body length = @p len - header) and returns the version, or -EINVAL for a
 * malformed blob, -ENOTSUP for a newer version, each logged naming @p what.
 */
int br_open(struct blob_r *r, const void *buf, size_t len, uint32_t magic, uint32_t max_version,
            const struct smol_backend_host *host, const char *what);
/* The next section, which must be @p tag, as a reader of its body; false (logged) otherwise. */
bool br_section(struct blob_r *r, uint32_t tag, struct blob_r *sec);
/* Whether a section was read exactly to its end, without errors (logged otherwise). */
bool br_done(struct blob_r *sec);
/* Whether the blob has no bytes after its last section (logged otherwise). */
bool br_end(struct blob_r *r);
/* Logs why the blob is refused ("what: section TAG: ...") and marks the reader bad. */
void br_fail(struct blob_r *r, const char *fmt, ...) SMOL_PRINTF(2, 3);

void br_bytes(struct blob_r *r, void *out, size_t n);
uint8_t br_u8(struct blob_r *r);
uint16_t br_u16(struct blob_r *r);
uint32_t br_u32(struct blob_r *r);
uint64_t br_u64(struct blob_r *r);
/* Bytes left in the section. */
size_t br_left(const struct blob_r *r);

#endif
