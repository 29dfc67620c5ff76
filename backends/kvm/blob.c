/* blob.c: little-endian fields into and out of the KVM backend's state blobs (blob.h). */
#include "blob.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void bw_bytes(struct blob_w *w, const void *p, size_t n)
{
	if (w->pos <= w->cap && n <= w->cap - w->pos && n)
		memcpy(w->buf + w->pos, p, n);
	w->pos += n;
}

static void put_le(struct blob_w *w, uint64_t v, unsigned n)
{
	uint8_t b[8];
	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	bw_bytes(w, b, n);
}

void bw_u8(struct blob_w *w, uint8_t v)
{
	put_le(w, v, 1);
}

void bw_u16(struct blob_w *w, uint16_t v)
{
	put_le(w, v, 2);
}

void bw_u32(struct blob_w *w, uint32_t v)
{
	put_le(w, v, 4);
}

void bw_u64(struct blob_w *w, uint64_t v)
{
	put_le(w, v, 8);
}

/* Stores @p v at @p at, if that part of the blob fits in the buffer. */
static void patch_u32(struct blob_w *w, size_t at, uint32_t v)
{
	if (at + 4 <= w->cap && at + 4 <= w->pos)
		for (unsigned i = 0; i < 4; i++)
			w->buf[at + i] = (uint8_t)(v >> (8 * i));
}

void bw_init(struct blob_w *w, void *buf, size_t cap, uint32_t magic, uint32_t version)
{
	w->buf = buf;
	w->cap = buf ? cap : 0;
	w->pos = 0;
	bw_u32(w, magic);
	bw_u32(w, version);
	bw_u32(w, SMOL_ARCH_X86_64);
	bw_u32(w, 0); /* body length: bw_finish */
}

size_t bw_begin(struct blob_w *w, uint32_t tag)
{
	bw_u32(w, tag);
	size_t at = w->pos;
	bw_u32(w, 0);
	return at;
}

void bw_end(struct blob_w *w, size_t at)
{
	patch_u32(w, at, (uint32_t)(w->pos - at - 4));
}

void bw_finish(struct blob_w *w)
{
	patch_u32(w, 12, (uint32_t)(w->pos - BLOB_HEADER_SIZE));
}

/* ---- reading --------------------------------------------------------------------------- */

/* "CPID", or the tag in hex when it is not four printable letters. */
static const char *tag_str(uint32_t tag, char out[12])
{
	for (unsigned i = 0; i < 4; i++) {
		char c = (char)(tag >> (8 * i));
		if (c < 0x20 || c > 0x7e) {
			snprintf(out, 12, "0x%08x", tag);
			return out;
		}
		out[i] = c;
	}
	out[4] = '\0';
	return out;
}

void br_fail(struct blob_r *r, const char *fmt, ...)
{
	char msg[256], t[12];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->tag)
		r->host->log(SMOL_LOG_ERROR, "%s: section %s: %s", r->what, tag_str(r->tag, t),
		             msg);
	else
		r->host->log(SMOL_LOG_ERROR, "%s: %s", r->what, msg);
	r->bad = true;
}

size_t br_left(const struct blob_r *r)
{
	return r->len - r->pos;
}

void br_bytes(struct blob_r *r, void *out, size_t n)
{
	if (r->bad || n > br_left(r)) {
		if (!r->bad)
			br_fail(r, "%zu bytes long, too short for its fields", r->len);
		memset(out, 0, n);
		return;
	}
	memcpy(out, r->p + r->pos, n);
	r->pos += n;
}

static uint64_t get_le(struct blob_r *r, unsigned n)
{
	uint8_t b[8];
	uint64_t v = 0;
	br_bytes(r, b, n);
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

uint8_t br_u8(struct blob_r *r)
{
	return (uint8_t)get_le(r, 1);
}

uint16_t br_u16(struct blob_r *r)
{
	return (uint16_t)get_le(r, 2);
}

uint32_t br_u32(struct blob_r *r)
{
	return (uint32_t)get_le(r, 4);
}

uint64_t br_u64(struct blob_r *r)
{
	return get_le(r, 8);
}

int br_open(struct blob_r *r, const void *buf, size_t len, uint32_t magic, uint32_t max_version,
            const struct smol_backend_host *host, const char *what)
{
	char t[12];
	memset(r, 0, sizeof(*r));
	r->p = buf;
	r->len = buf ? len : 0;
	r->host = host;
	r->what = what;
	if (r->len < BLOB_HEADER_SIZE) {
		br_fail(r, "%zu bytes, shorter than the %u-byte header", r->len, BLOB_HEADER_SIZE);
		return -EINVAL;
	}
	uint32_t m = br_u32(r), version = br_u32(r), arch = br_u32(r), body = br_u32(r);
	if (m != magic) {
		br_fail(r, "magic %s, expected %s: not this kind of state", tag_str(m, t),
		        tag_str(magic, (char[12]){ 0 }));
		return -EINVAL;
	}
	if (version == 0 || version > max_version) {
		br_fail(r, "version %u, this kvm.so reads versions 1 to %u", version, max_version);
		return version ? -ENOTSUP : -EINVAL;
	}
	if (arch != SMOL_ARCH_X86_64) {
		br_fail(r, "arch tag %u, this is the x86_64 backend (%u)", arch, SMOL_ARCH_X86_64);
		return -EINVAL;
	}
	if (body != r->len - BLOB_HEADER_SIZE) {
		br_fail(r, "the header says %u bytes follow it, %zu do", body,
		        r->len - BLOB_HEADER_SIZE);
		return -EINVAL;
	}
	return (int)version;
}

bool br_section(struct blob_r *r, uint32_t tag, struct blob_r *sec)
{
	char t[12], u[12];
	memset(sec, 0, sizeof(*sec));
	sec->host = r->host;
	sec->what = r->what;
	sec->tag = tag;
	sec->bad = true;
	if (r->bad)
		return false;
	if (br_left(r) < 8) {
		br_fail(r, "ends before section %s", tag_str(tag, t));
		return false;
	}
	uint32_t got = br_u32(r), len = br_u32(r);
	if (got != tag) {
		br_fail(r, "section %s where %s belongs", tag_str(got, t), tag_str(tag, u));
		return false;
	}
	if (len > br_left(r)) {
		br_fail(r, "section %s says %u bytes, %zu are left", tag_str(tag, t), len,
		        br_left(r));
		return false;
	}
	sec->p = r->p + r->pos;
	sec->len = len;
	sec->bad = false;
	r->pos += len;
	return true;
}

bool br_done(struct blob_r *sec)
{
	if (sec->bad)
		return false;
	if (sec->pos != sec->len) {
		br_fail(sec, "%zu bytes left over after its fields", sec->len - sec->pos);
		return false;
	}
	return true;
}

bool br_end(struct blob_r *r)
{
	if (r->bad)
		return false;
	if (r->pos != r->len) {
		br_fail(r, "%zu bytes after the last section", r->len - r->pos);
		return false;
	}
	return true;
}
