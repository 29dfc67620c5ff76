/* snapfile-read.c: reading a .smolmachine file (the format is in snapfile-int.h). Every value
 * read is checked before use: the file may be damaged or hostile. snapfile_open() reads and
 * verifies all but the memory pages (a few small reads, whatever the RAM size);
 * snapfile_check() then hashes the memory's data extents chunk by chunk, skipping holes. */
#define _GNU_SOURCE
#include "snapfile-int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/** How much memory snapfile_check() reads at once. */
#define SF_READ_BUF (1u << 20)

struct rsec {
	uint32_t type;
	char name[SNAPFILE_NAME_MAX];
	uint64_t off, len, sum;
	const uint8_t *data; /* inside snap_reader::area; NULL for memory */
};

struct snap_reader {
	char *path;
	int fd;
	uint64_t fsize;
	struct snap_info info;
	uint32_t n;
	struct rsec *secs;
	uint8_t *area; /* the file's bytes from the end of the table to memory (or the end) */
	uint64_t area_off;
	struct rsec *mem; /* the memory section, or NULL */
	uint32_t chunk_size;
	uint64_t n_chunks;
	const uint8_t *chunk_sums;
};

/* Reads up to @p len bytes at @p off: how many (short only at the end of the file), or -errno. */
static int64_t pread_all(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint8_t *p = buf;
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	return (int64_t)done;
}

static bool all_zero(const uint8_t *p, uint64_t len, uint64_t *at)
{
	for (uint64_t i = 0; i < len; i++) {
		if (p[i]) {
			*at = i;
			return false;
		}
	}
	return true;
}

static const char *label(const struct rsec *s, char *buf, size_t len)
{
	sf_sec_label(buf, len, s->type, s->name);
	return buf;
}

/* The fixed header: its checksum, then every field. @p h holds @p hsize bytes. */
static int parse_header(struct snap_reader *r, uint8_t *h, uint32_t hsize, char *err, size_t errlen)
{
	const char *p = r->path;
	uint64_t stored = sf_get64(h + SF_OFF_HSUM);
	if (sf_header_sum(h, hsize) != stored) {
		sf_err(err, errlen, p, "header: checksum mismatch (damaged file)");
		return -EINVAL;
	}
	struct snap_info *in = &r->info;
	in->format_version = sf_get32(h + SF_OFF_VERSION);
	if (in->format_version > SNAPFILE_VERSION) {
		sf_err(err, errlen, p,
		       "written by a newer smolvm: format %u, this smolvm reads up "
		       "to %u",
		       in->format_version, SNAPFILE_VERSION);
		return -ENOTSUP;
	}
	uint64_t at;
	r->n = sf_get32(h + SF_OFF_NSEC);
	in->arch = sf_get32(h + SF_OFF_ARCH);
	in->ram_size = sf_get64(h + SF_OFF_RAM);
	in->created_ns = sf_get64(h + SF_OFF_CREATED);
	const uint8_t *c = h + SF_OFF_CPU;
	in->cpu.struct_size = sf_get32(c);
	memcpy(in->cpu.vendor, c + 4, 12);
	in->cpu.signature = sf_get32(c + 16);
	in->cpu.n_words = sf_get32(c + 20);
	for (int i = 0; i < 16; i++)
		in->cpu.words[i] = sf_get32(c + 24 + 4 * i);
	memcpy(in->smolvm_version, h + SF_OFF_SMOLVM, 32);
	memcpy(in->backend, h + SF_OFF_BACKEND, 32);
	const char *bad = NULL;
	if (in->format_version == 0)
		bad = "format version 0";
	else if (r->n > SF_MAX_SECTIONS)
		bad = "more sections than the limit of 4096";
	else if (hsize != SF_HDR_FIXED + SF_ENTRY_SIZE * r->n)
		bad = "its size does not match its section count";
	else if (in->arch != SMOL_ARCH_X86_64 && in->arch != SMOL_ARCH_AARCH64)
		bad = "unknown arch";
	else if (in->ram_size % SF_PAGE || in->ram_size > SF_RAM_MAX)
		bad = "RAM size not a multiple of 4096 or over 16 TiB";
	else if (!memchr(in->smolvm_version, 0, 32) || !memchr(in->backend, 0, 32))
		bad = "smolvm version or backend name not NUL-terminated";
	else if (in->cpu.n_words > 16)
		bad = "CPU feature word count over 16";
	else if (!all_zero(h + SF_OFF_RESERVED, SF_HDR_FIXED - SF_OFF_RESERVED, &at))
		bad = "reserved bytes not zero";
	if (bad) {
		sf_err(err, errlen, p, "header: %s", bad);
		return -EINVAL;
	}
	return 0;
}

/* The section table: each entry, the layout, the sizes against the file's. */
static int parse_table(struct snap_reader *r, const uint8_t *h, char *err, size_t errlen)
{
	const char *p = r->path;
	char lb[96], lb2[96];
	r->secs = calloc(r->n ? r->n : 1, sizeof(*r->secs));
	if (!r->secs) {
		sf_err(err, errlen, p, "out of memory for %u sections", r->n);
		return -ENOMEM;
	}
	uint64_t pos = SF_HDR_FIXED + (uint64_t)SF_ENTRY_SIZE * r->n, small = 0;
	struct rsec *sums = NULL;
	for (uint32_t i = 0; i < r->n; i++) {
		const uint8_t *e = h + SF_HDR_FIXED + SF_ENTRY_SIZE * i;
		struct rsec *s = &r->secs[i];
		s->type = sf_get32(e);
		s->off = sf_get64(e + 8);
		s->len = sf_get64(e + 16);
		s->sum = sf_get64(e + 24);
		const uint8_t *name = e + 32;
		const uint8_t *nul = memchr(name, 0, SNAPFILE_NAME_MAX);
		uint64_t at;
		if (!nul || !all_zero(nul, (uint64_t)(name + SNAPFILE_NAME_MAX - nul), &at)) {
			sf_err(err, errlen, p, "section table entry %u: name not NUL-terminated",
			       i);
			return -EINVAL;
		}
		memcpy(s->name, name, SNAPFILE_NAME_MAX);
		label(s, lb, sizeof(lb));
		if (s->type < SNAP_SEC_MACHINE || s->type > SNAP_SEC_MEMORY_SUMS) {
			/* refused, not skipped: it may hold state the machine needs */
			sf_err(err, errlen, p, "section table entry %u: unknown type %u", i,
			       s->type);
			return -EINVAL;
		}
		if (sf_get32(e + 4)) {
			sf_err(err, errlen, p, "%s: unknown flags 0x%x", lb, sf_get32(e + 4));
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (r->secs[j].type == s->type && !strcmp(r->secs[j].name, s->name)) {
				sf_err(err, errlen, p, "%s: appears twice", lb);
				return -EINVAL;
			}
		}
		bool special = s->type == SNAP_SEC_MEMORY || s->type == SNAP_SEC_MEMORY_SUMS;
		if (special && s->name[0]) {
			sf_err(err, errlen, p, "%s: has a name", lb);
			return -EINVAL;
		}
		if (r->mem) {
			sf_err(err, errlen, p, "%s: after the memory section, which must be last",
			       lb);
			return -EINVAL;
		}
		if (s->type == SNAP_SEC_MEMORY) {
			if (s->len != r->info.ram_size || !sums) {
				sf_err(err, errlen, p,
				       "%s: 0x%" PRIx64 " bytes, the header says 0x%" PRIx64 "%s",
				       lb, s->len, r->info.ram_size,
				       sums ? "" : ", or no memory checksums before it");
				return -EINVAL;
			}
			r->mem = s;
		} else if (s->len > SF_SECTION_MAX || (small += s->len) > SF_SMALL_TOTAL_MAX) {
			sf_err(err, errlen, p,
			       "%s: 0x%" PRIx64 " bytes, over the limit of %u MiB%s", lb, s->len,
			       SF_SECTION_MAX >> 20, s->len > SF_SECTION_MAX ? "" : " in all");
			return -EINVAL;
		}
		if (s->type == SNAP_SEC_MEMORY_SUMS)
			sums = s;
		/* pos and every length are bounded: no overflow */
		uint64_t want = sf_align(pos, sf_sec_align(s->type));
		if (s->off != want) {
			if (i == 0)
				snprintf(lb2, sizeof(lb2), "the section table");
			else
				label(&r->secs[i - 1], lb2, sizeof(lb2));
			sf_err(err, errlen, p,
			       "%s at offset 0x%" PRIx64 ": %s %s, which ends at 0x%" PRIx64
			       " (expected at 0x%" PRIx64 ")",
			       lb, s->off, s->off < pos ? "overlaps" : "leaves a gap after", lb2,
			       pos, want);
			return -EINVAL;
		}
		pos = s->off + s->len;
	}
	if (!!r->mem != !!r->info.ram_size || !!sums != !!r->mem) {
		sf_err(err, errlen, p, "header: RAM size 0x%" PRIx64 " but %s memory section",
		       r->info.ram_size, r->mem ? "a" : "no");
		return -EINVAL;
	}
	if (pos > r->fsize) {
		/* name the first section the file does not hold with its padding */
		for (uint32_t i = 0; i < r->n; i++) {
			struct rsec *s = &r->secs[i];
			uint64_t end = i + 1 < r->n ? r->secs[i + 1].off : s->off + s->len;
			if (end > r->fsize) {
				sf_err(err, errlen, p,
				       "truncated: %s needs the file up to 0x%" PRIx64
				       ", it ends at 0x%" PRIx64,
				       label(s, lb, sizeof(lb)), end, r->fsize);
				return -EINVAL;
			}
		}
	}
	if (pos != r->fsize) {
		sf_err(err, errlen, p,
		       "0x%" PRIx64 " bytes after the last section, which ends at 0x%" PRIx64,
		       r->fsize - pos, pos);
		return -EINVAL;
	}
	return 0;
}

/* Reads the small sections and verifies their padding and checksums, and the chunk table. */
static int verify_small(struct snap_reader *r, char *err, size_t errlen)
{
	const char *p = r->path;
	char lb[96];
	r->area_off = SF_HDR_FIXED + (uint64_t)SF_ENTRY_SIZE * r->n;
	uint64_t end = r->mem ? r->mem->off : r->fsize;
	r->area = malloc(end > r->area_off ? end - r->area_off : 1);
	if (!r->area) {
		sf_err(err, errlen, p, "out of memory for its sections");
		return -ENOMEM;
	}
	int64_t got = pread_all(r->fd, r->area, end - r->area_off, r->area_off);
	if (got < 0 || (uint64_t)got != end - r->area_off) {
		sf_err(err, errlen, p, "reading its sections: %s",
		       got < 0 ? strerror((int)-got) : "file shrank while read");
		return got < 0 ? (int)got : -EIO;
	}
	const struct rsec *sums = NULL;
	for (uint32_t i = 0; i < r->n; i++) {
		struct rsec *s = &r->secs[i];
		if (s == r->mem)
			break;
		s->data = r->area + (s->off - r->area_off);
		uint64_t next = i + 1 < r->n ? r->secs[i + 1].off : s->off + s->len, at;
		if (!all_zero(s->data + s->len, next - s->off - s->len, &at)) {
			sf_err(err, errlen, p,
			       "padding after %s: non-zero byte at offset 0x%" PRIx64,
			       label(s, lb, sizeof(lb)), s->off + s->len + at);
			return -EINVAL;
		}
		if (XXH3_64bits(s->data, next - s->off) != s->sum) {
			sf_err(err, errlen, p, "%s: checksum mismatch", label(s, lb, sizeof(lb)));
			return -EINVAL;
		}
		if (s->type == SNAP_SEC_MEMORY_SUMS)
			sums = s;
	}
	if (!r->mem)
		return 0;
	uint32_t cs = sums->len >= SF_SUMS_HDR ? sf_get32(sums->data) : 0;
	uint64_t n = sums->len >= SF_SUMS_HDR ? sf_get64(sums->data + 8) : 0;
	if (cs < SF_CHUNK_MIN || cs > SF_CHUNK_MAX || (cs & (cs - 1)) || sf_get32(sums->data + 4) ||
	    n != (r->info.ram_size + cs - 1) / cs || sums->len != SF_SUMS_HDR + 8 * n) {
		sf_err(err, errlen, p, "%s: malformed (chunk size %u, %" PRIu64 " chunks)",
		       label(sums, lb, sizeof(lb)), cs, n);
		return -EINVAL;
	}
	if (XXH3_64bits(sums->data, sums->len) != r->mem->sum) {
		sf_err(err, errlen, p, "section 'memory': checksum of its chunk table mismatch");
		return -EINVAL;
	}
	r->chunk_size = cs;
	r->n_chunks = n;
	r->chunk_sums = sums->data + SF_SUMS_HDR;
	return 0;
}

int snapfile_open(struct snap_reader **rp, const char *path, char *err, size_t errlen)
{
	*rp = NULL;
	uint8_t *h = NULL;
	int ret = -ENOMEM;
	struct snap_reader *r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		sf_err(err, errlen, path, "out of memory");
		free(r);
		return -ENOMEM;
	}
	r->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (r->fd < 0 || fstat(r->fd, &st) < 0) {
		ret = -errno;
		sf_err(err, errlen, path, "cannot open: %s", strerror(-ret));
		goto fail;
	}
	ret = -EINVAL;
	if (!S_ISREG(st.st_mode)) {
		sf_err(err, errlen, path, "not a regular file");
		goto fail;
	}
	r->fsize = (uint64_t)st.st_size;
	uint8_t fixed[SF_HDR_FIXED];
	int64_t got = pread_all(r->fd, fixed, sizeof(fixed), 0);
	if (got < 0) {
		ret = (int)got;
		sf_err(err, errlen, path, "reading its header: %s", strerror(-ret));
		goto fail;
	}
	if (got == 0 || memcmp(fixed, SNAPFILE_MAGIC, got < 8 ? (size_t)got : 8)) {
		sf_err(err, errlen, path, "not a smolvm snapshot (no %s magic)", SNAPFILE_MAGIC);
		goto fail;
	}
	if (got < (int64_t)SF_HDR_FIXED) {
		sf_err(err, errlen, path, "truncated: %" PRId64 " bytes, its header alone needs %u",
		       got, SF_HDR_FIXED);
		goto fail;
	}
	uint32_t hsize = sf_get32(fixed + SF_OFF_HSIZE);
	if (hsize < SF_HDR_FIXED || hsize > SF_HEADER_MAX) {
		sf_err(err, errlen, path, "header: size 0x%x out of range (damaged file)", hsize);
		goto fail;
	}
	if (hsize > r->fsize) {
		sf_err(err, errlen, path,
		       "truncated: its header and section table need 0x%x bytes, the file has "
		       "0x%" PRIx64,
		       hsize, r->fsize);
		goto fail;
	}
	h = malloc(hsize);
	if (!h) {
		ret = -ENOMEM;
		sf_err(err, errlen, path, "out of memory for its header");
		goto fail;
	}
	got = pread_all(r->fd, h, hsize, 0);
	if (got != (int64_t)hsize) {
		ret = got < 0 ? (int)got : -EIO;
		sf_err(err, errlen, path, "reading its header: %s",
		       got < 0 ? strerror(-ret) : "file shrank while read");
		goto fail;
	}
	ret = parse_header(r, h, hsize, err, errlen);
	if (!ret)
		ret = parse_table(r, h, err, errlen);
	if (!ret)
		ret = verify_small(r, err, errlen);
	if (ret)
		goto fail;
	free(h);
	*rp = r;
	return 0;
fail:
	free(h);
	snapfile_close(r);
	return ret;
}

const struct snap_info *snapfile_info(const struct snap_reader *r)
{
	return &r->info;
}

int snapfile_section(const struct snap_reader *r, uint32_t type, const char *name,
                     const void **data, size_t *len)
{
	for (uint32_t i = 0; i < r->n; i++) {
		const struct rsec *s = &r->secs[i];
		if (s->type == type && type != SNAP_SEC_MEMORY && !strcmp(s->name, name)) {
			*data = s->data;
			*len = s->len;
			return 0;
		}
	}
	return -ENOENT;
}

void snapfile_each(const struct snap_reader *r, uint32_t type,
                   void (*fn)(void *opaque, const char *name, const void *data, size_t len),
                   void *opaque)
{
	for (uint32_t i = 0; i < r->n; i++) {
		const struct rsec *s = &r->secs[i];
		if (s->type == type && type != SNAP_SEC_MEMORY)
			fn(opaque, s->name, s->data, s->len);
	}
}

int snapfile_map_memory(struct snap_reader *r, void **host, char *err, size_t errlen)
{
	*host = NULL;
	if (!r->mem) {
		sf_err(err, errlen, r->path, "no memory section");
		return -ENOENT;
	}
	void *m = mmap(NULL, r->mem->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
	               r->fd, (off_t)r->mem->off);
	if (m == MAP_FAILED) {
		int ret = -errno;
		sf_err(err, errlen, r->path, "mapping its memory (0x%" PRIx64 " bytes): %s",
		       r->mem->len, strerror(-ret));
		return ret;
	}
	*host = m;
	return 0;
}

void snapfile_close(struct snap_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->secs);
	free(r->area);
	free(r->path);
	free(r);
}

/* The next data extent of the memory section at or after RAM offset @p pos, clipped to
 * [pos, end) and widened to pages: 1 and [*d, *h), 0 when none, or -errno. */
static int next_data(const struct snap_reader *r, uint64_t pos, uint64_t end, uint64_t *d,
                     uint64_t *h)
{
	uint64_t base = r->mem->off;
	off_t ds = lseek(r->fd, (off_t)(base + pos), SEEK_DATA);
	if (ds < 0)
		return errno == ENXIO ? 0 : -errno;
	off_t hs = lseek(r->fd, ds, SEEK_HOLE);
	if (hs < 0)
		return -errno;
	uint64_t a = ((uint64_t)ds - base) & ~(uint64_t)(SF_PAGE - 1);
	uint64_t b = sf_align((uint64_t)hs - base, SF_PAGE);
	if (a >= end)
		return 0;
	*d = a < pos ? pos : a;
	*h = b > end ? end : b;
	return *h > *d;
}

/* Verifies every chunk of memory; counts its data bytes in *@p data. */
static int verify_memory(const struct snap_reader *r, uint8_t *buf, char *err, size_t errlen)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st) {
		sf_err(err, errlen, r->path, "out of memory");
		return -ENOMEM;
	}
	int ret = 0;
	uint64_t ram = r->info.ram_size;
	for (uint64_t c = 0; c < r->n_chunks && !ret; c++) {
		uint64_t pos = c * r->chunk_size, cend = pos + r->chunk_size, d, h;
		if (cend > ram)
			cend = ram;
		uint64_t start = pos;
		XXH3_64bits_reset(st);
		while (pos < cend && (ret = next_data(r, pos, cend, &d, &h)) == 1) {
			for (pos = d; pos < h;) {
				uint64_t n = h - pos > SF_READ_BUF ? SF_READ_BUF : h - pos;
				int64_t got = pread_all(r->fd, buf, n, r->mem->off + pos);
				if (got != (int64_t)n) {
					ret = got < 0 ? (int)got : -EIO;
					break;
				}
				for (uint64_t o = 0; o < n; o += SF_PAGE) {
					if (sf_page_is_zero(buf + o))
						continue;
					uint8_t le[8];
					sf_put64(le, pos + o);
					XXH3_64bits_update(st, le, 8);
					XXH3_64bits_update(st, buf + o, SF_PAGE);
				}
				pos += n;
			}
			if (ret < 0)
				break;
		}
		if (ret < 0) {
			sf_err(err, errlen, r->path,
			       "reading memory at guest RAM offset 0x%" PRIx64 ": %s", pos,
			       strerror(-ret));
			break;
		}
		ret = 0;
		if (XXH3_64bits_digest(st) != sf_get64(r->chunk_sums + 8 * c)) {
			sf_err(err, errlen, r->path,
			       "memory at guest RAM offset 0x%" PRIx64 "-0x%" PRIx64
			       " (chunk %" PRIu64 "): checksum mismatch",
			       start, cend - 1, c);
			ret = -EINVAL;
		}
	}
	XXH3_freeState(st);
	return ret;
}

/* Bytes of the memory section the file holds (not holes). */
static int64_t memory_data(const struct snap_reader *r)
{
	uint64_t pos = 0, total = 0, d, h;
	int ret;
	while ((ret = next_data(r, pos, r->info.ram_size, &d, &h)) == 1) {
		total += h - d;
		pos = h;
	}
	return ret < 0 ? ret : (int64_t)total;
}

static void human(char *buf, size_t len, uint64_t v)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;
	double x = (double)v;
	while (x >= 1024 && u < 4) {
		x /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " bytes", v);
	else
		snprintf(buf, len, "%.*f %s", x == (double)(uint64_t)x ? 0 : 1, x, units[u]);
}

static void summary(const struct snap_reader *r, FILE *out, uint64_t data)
{
	const struct snap_info *in = &r->info;
	char when[64] = "?", a[32], b[32], c[32], lb[96];
	time_t t = (time_t)(in->created_ns / 1000000000u);
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(out, "%s: smolvm snapshot, format %u, written by smolvm %s on %s\n", r->path,
	        in->format_version, in->smolvm_version, when);
	fprintf(out, "  arch %s, backend %s", in->arch == SMOL_ARCH_X86_64 ? "x86_64" : "aarch64",
	        in->backend);
	if (in->arch == SMOL_ARCH_X86_64)
		fprintf(out, ", CPU %.12s (signature 0x%08x, %u feature words)", in->cpu.vendor,
		        in->cpu.signature, in->cpu.n_words);
	human(a, sizeof(a), in->ram_size);
	human(b, sizeof(b), data);
	human(c, sizeof(c), in->ram_size - data);
	fprintf(out, "\n  RAM %s: %s data, %s holes\n", a, b, c);
	fprintf(out, "  %-40s %12s %12s\n", "section", "offset", "bytes");
	for (uint32_t i = 0; i < r->n; i++) {
		const struct rsec *s = &r->secs[i];
		sf_sec_label(lb, sizeof(lb), s->type, s->name);
		fprintf(out, "  %-40s %#12" PRIx64 " %12" PRIu64 "\n", lb + 8, s->off, s->len);
	}
}

int snapfile_check(const char *path, FILE *out, char *err, size_t errlen)
{
	struct snap_reader *r;
	int ret = snapfile_open(&r, path, err, errlen);
	if (ret)
		return ret;
	uint8_t *buf = NULL;
	int64_t data = r->mem ? memory_data(r) : 0;
	if (data < 0) {
		ret = (int)data;
		sf_err(err, errlen, path, "finding its memory's data: %s", strerror(-ret));
		goto out;
	}
	summary(r, out, (uint64_t)data);
	if (r->mem) {
		buf = malloc(SF_READ_BUF);
		ret = buf ? verify_memory(r, buf, err, errlen) : -ENOMEM;
		if (!buf)
			sf_err(err, errlen, path, "out of memory");
	}
out:
	free(buf);
	snapfile_close(r);
	return ret;
}
