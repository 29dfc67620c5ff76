/* snapfile.c: writing a .smolmachine file (the format is in snapfile-int.h). Small sections are
 * kept in memory until snapfile_commit(); guest RAM goes straight to the temporary file at its
 * final offset, only its non-zero pages, in large writes; snapfile_commit() then writes the
 * header, the table and the small sections in one write, sets the file's size (the holes),
 * fsyncs, renames and fsyncs the folder. */
#define _GNU_SOURCE
#include "snapfile-int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/** Largest single write of memory. */
#define SF_RUN_MAX (16u << 20)

struct wsec {
	uint32_t type;
	char name[SNAPFILE_NAME_MAX];
	uint8_t *data; /* owned, except the sums section's (w->sums) */
	uint64_t len;
	uint64_t off;
};

struct snap_writer {
	char *path; /* the target, for messages */
	char *base; /* its name in its folder */
	char tmp[300]; /* the temporary file's name in the folder */
	int dirfd;
	int fd;
	struct snap_info info;
	struct wsec *secs; /* the small sections, then (once memory is added) sums and memory */
	uint32_t n, cap;
	uint64_t small_total;
	bool laid_out; /* offsets fixed: memory added, or committing */
	bool has_mem;
	bool broken; /* writing memory failed: commit refuses */
	uint8_t *sums;
	uint64_t sums_len;
	uint64_t size; /* of the whole file */
};

void sf_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	int n = snprintf(err, errlen, "%s: ", path);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

void sf_sec_label(char *buf, size_t len, uint32_t type, const char *name)
{
	static const char *const names[] = { [SNAP_SEC_MACHINE] = "machine",
		                             [SNAP_SEC_CORE] = "core",
		                             [SNAP_SEC_VM] = "vm",
		                             [SNAP_SEC_VCPU] = "vcpu",
		                             [SNAP_SEC_DEVICE] = "device",
		                             [SNAP_SEC_MEMORY] = "memory",
		                             [SNAP_SEC_MEMORY_SUMS] = "memory checksums" };
	const char *t = type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "?";
	snprintf(buf, len, "section '%s%s%s'", t, name[0] ? " " : "", name);
}

uint64_t sf_header_sum(uint8_t *h, size_t size)
{
	memset(h + SF_OFF_HSUM, 0, 8);
	return XXH3_64bits(h, size);
}

static int pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len > SF_RUN_MAX ? SF_RUN_MAX : len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int str_ok(const char *s, size_t max)
{
	return memchr(s, 0, max) != NULL;
}

int snapfile_create(struct snap_writer **wp, const char *path, const struct snap_info *info,
                    char *err, size_t errlen)
{
	*wp = NULL;
	if (!str_ok(info->smolvm_version, sizeof(info->smolvm_version)) ||
	    !str_ok(info->backend, sizeof(info->backend))) {
		sf_err(err, errlen, path, "smolvm version or backend name not NUL-terminated");
		return -EINVAL;
	}
	if (info->arch != SMOL_ARCH_X86_64 && info->arch != SMOL_ARCH_AARCH64) {
		sf_err(err, errlen, path, "unknown arch %u", info->arch);
		return -EINVAL;
	}
	if (info->ram_size % SF_PAGE || info->ram_size > SF_RAM_MAX ||
	    info->cpu.n_words > sizeof(info->cpu.words) / sizeof(info->cpu.words[0])) {
		sf_err(err, errlen, path, "RAM size 0x%llx or CPU word count %u out of range",
		       (unsigned long long)info->ram_size, info->cpu.n_words);
		return -EINVAL;
	}
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		sf_err(err, errlen, path, "not a file name");
		return -EINVAL;
	}
	struct snap_writer *w = calloc(1, sizeof(*w));
	int ret = -ENOMEM;
	if (!w || !(w->path = strdup(path)) || !(w->base = strdup(base))) {
		sf_err(err, errlen, path, "out of memory");
		goto err;
	}
	w->fd = -1;
	w->info = *info;
	w->info.format_version = SNAPFILE_VERSION;
	if (!w->info.created_ns) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		w->info.created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
	if (!dir) {
		sf_err(err, errlen, path, "out of memory");
		goto err;
	}
	w->dirfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = -errno;
	if (w->dirfd < 0) {
		sf_err(err, errlen, path, "cannot open its folder %s: %s", *dir ? dir : "/",
		       strerror(-ret));
		free(dir);
		goto err;
	}
	free(dir);
	for (int tries = 0; tries < 16 && w->fd < 0; tries++) {
		uint32_t rnd;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint32_t)rand();
		snprintf(w->tmp, sizeof(w->tmp), ".%.200s.tmp.%d.%08x", base, (int)getpid(), rnd);
		w->fd = openat(w->dirfd, w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		ret = -errno;
		if (w->fd < 0 && errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		sf_err(err, errlen, path, "cannot create the temporary file %s: %s", w->tmp,
		       strerror(-ret));
		close(w->dirfd);
		goto err;
	}
	*wp = w;
	return 0;
err:
	if (w) {
		free(w->path);
		free(w->base);
	}
	free(w);
	return ret;
}

static struct wsec *push(struct snap_writer *w, uint32_t type, const char *name)
{
	if (w->n == w->cap) {
		uint32_t cap = w->cap ? w->cap * 2 : 16;
		struct wsec *s = realloc(w->secs, cap * sizeof(*s));
		if (!s)
			return NULL;
		w->secs = s;
		w->cap = cap;
	}
	struct wsec *s = &w->secs[w->n++];
	memset(s, 0, sizeof(*s));
	s->type = type;
	strcpy(s->name, name);
	return s;
}

int snapfile_add(struct snap_writer *w, uint32_t type, const char *name, const void *data,
                 size_t len, char *err, size_t errlen)
{
	char label[96];
	sf_sec_label(label, sizeof(label), type, name);
	if (w->laid_out) {
		sf_err(err, errlen, w->path, "%s added after the memory section", label);
		return -EINVAL;
	}
	if (type < SNAP_SEC_MACHINE || type > SNAP_SEC_DEVICE) {
		sf_err(err, errlen, w->path, "%s: type %u cannot be added with snapfile_add", label,
		       type);
		return -EINVAL;
	}
	if (strlen(name) >= SNAPFILE_NAME_MAX) {
		sf_err(err, errlen, w->path, "%s: name longer than %u bytes", label,
		       SNAPFILE_NAME_MAX - 1);
		return -ENAMETOOLONG;
	}
	for (uint32_t i = 0; i < w->n; i++) {
		if (w->secs[i].type == type && !strcmp(w->secs[i].name, name)) {
			sf_err(err, errlen, w->path, "%s added twice", label);
			return -EEXIST;
		}
	}
	if (len > SF_SECTION_MAX || w->small_total + len > SF_SMALL_TOTAL_MAX ||
	    w->n + 3 > SF_MAX_SECTIONS) {
		sf_err(err, errlen, w->path,
		       "%s: %zu bytes: over the limits (%u MiB a section, %u MiB in all, %u "
		       "sections)",
		       label, len, SF_SECTION_MAX >> 20, SF_SMALL_TOTAL_MAX >> 20, SF_MAX_SECTIONS);
		return -E2BIG;
	}
	uint8_t *copy = malloc(len ? len : 1);
	struct wsec *s = copy ? push(w, type, name) : NULL;
	if (!s) {
		free(copy);
		sf_err(err, errlen, w->path, "%s: out of memory", label);
		return -ENOMEM;
	}
	if (len)
		memcpy(copy, data, len);
	s->data = copy;
	s->len = len;
	w->small_total += len;
	return 0;
}

/* Fixes every section's offset and the file's size. */
static void layout(struct snap_writer *w)
{
	uint64_t off = SF_HDR_FIXED + (uint64_t)SF_ENTRY_SIZE * w->n;
	for (uint32_t i = 0; i < w->n; i++) {
		off = sf_align(off, sf_sec_align(w->secs[i].type));
		w->secs[i].off = off;
		off += w->secs[i].len;
	}
	w->size = off;
	w->laid_out = true;
}

/* Memory being written: the run of non-zero pages not yet written, the chunk being hashed. */
struct memw {
	struct snap_writer *w;
	const uint8_t *ram;
	uint64_t mem_off;
	uint64_t run_start, run_len;
	XXH3_state_t *st;
	uint64_t chunk; /* the chunk @c st hashes, when @c chunk_open */
	bool chunk_open;
};

static int flush_run(struct memw *m)
{
	int ret = 0;
	if (m->run_len)
		ret = pwrite_all(m->w->fd, m->ram + m->run_start, m->run_len,
		                 m->mem_off + m->run_start);
	m->run_len = 0;
	return ret;
}

static void close_chunk(struct memw *m)
{
	if (m->chunk_open)
		sf_put64(m->w->sums + SF_SUMS_HDR + 8 * m->chunk, XXH3_64bits_digest(m->st));
	m->chunk_open = false;
}

/* Pages [start, end) of RAM, which may hold data. */
static int add_range(struct memw *m, uint64_t start, uint64_t end)
{
	for (uint64_t off = start; off < end; off += SF_PAGE) {
		const uint8_t *page = m->ram + off;
		if (sf_page_is_zero(page))
			continue;
		uint64_t chunk = off / SF_CHUNK;
		if (!m->chunk_open || chunk != m->chunk) {
			close_chunk(m);
			XXH3_64bits_reset(m->st);
			m->chunk = chunk;
			m->chunk_open = true;
		}
		uint8_t le[8];
		sf_put64(le, off);
		XXH3_64bits_update(m->st, le, sizeof(le));
		XXH3_64bits_update(m->st, page, SF_PAGE);
		if (m->run_len && (m->run_start + m->run_len != off || m->run_len >= SF_RUN_MAX)) {
			int ret = flush_run(m);
			if (ret)
				return ret;
		}
		if (!m->run_len)
			m->run_start = off;
		m->run_len += SF_PAGE;
	}
	return 0;
}

/* Calls add_range() on every data extent of @p memfd inside [0, size), or on all of it. */
static int walk_memfd(struct memw *m, int memfd, uint64_t size)
{
	if (memfd < 0)
		return add_range(m, 0, size);
	uint64_t pos = 0;
	while (pos < size) {
		off_t d = lseek(memfd, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			return 0;
		if (d < 0)
			return -errno;
		off_t h = lseek(memfd, d, SEEK_HOLE);
		if (h < 0)
			return -errno;
		uint64_t start = (uint64_t)d & ~(uint64_t)(SF_PAGE - 1);
		uint64_t end = sf_align((uint64_t)h, SF_PAGE);
		if (start >= size)
			return 0;
		if (end > size)
			end = size;
		if (end <= pos) /* cannot happen; never loop */
			return -EIO;
		int ret = add_range(m, start < pos ? pos : start, end);
		if (ret)
			return ret;
		pos = end;
	}
	return 0;
}

int snapfile_add_memory(struct snap_writer *w, const uint8_t *ram, uint64_t size, int memfd,
                        char *err, size_t errlen)
{
	if (w->laid_out) {
		sf_err(err, errlen, w->path, "memory added twice");
		return -EINVAL;
	}
	if (!size || size != w->info.ram_size) {
		sf_err(err, errlen, w->path,
		       "memory of 0x%llx bytes, but the header says a RAM size of 0x%llx",
		       (unsigned long long)size, (unsigned long long)w->info.ram_size);
		return -EINVAL;
	}
	uint64_t n_chunks = (size + SF_CHUNK - 1) / SF_CHUNK;
	uint8_t *sums = calloc(1, SF_SUMS_HDR + 8 * n_chunks);
	XXH3_state_t *st = XXH3_createState();
	uint32_t n = w->n;
	if (!sums || !st || !push(w, SNAP_SEC_MEMORY_SUMS, "") || !push(w, SNAP_SEC_MEMORY, "")) {
		free(sums);
		XXH3_freeState(st);
		w->n = n;
		sf_err(err, errlen, w->path, "memory: out of memory");
		return -ENOMEM;
	}
	w->sums = sums;
	w->sums_len = SF_SUMS_HDR + 8 * n_chunks;
	w->secs[w->n - 2].len = w->sums_len;
	w->secs[w->n - 1].len = size;
	w->has_mem = true;
	layout(w);
	sf_put32(sums, SF_CHUNK);
	sf_put64(sums + 8, n_chunks);
	uint64_t empty = XXH3_64bits(NULL, 0);
	for (uint64_t i = 0; i < n_chunks; i++)
		sf_put64(sums + SF_SUMS_HDR + 8 * i, empty);

	struct memw m = { .w = w, .ram = ram, .mem_off = w->secs[w->n - 1].off, .st = st };
	int ret = walk_memfd(&m, memfd, size);
	if (!ret)
		ret = flush_run(&m);
	close_chunk(&m);
	XXH3_freeState(st);
	if (ret) {
		w->broken = true;
		sf_err(err, errlen, w->path, "writing memory: %s", strerror(-ret));
	}
	return ret;
}

/* The header, the table, the small sections and their padding: bytes [0, end). */
static void fill_prefix(struct snap_writer *w, uint8_t *buf)
{
	const struct snap_info *in = &w->info;
	memcpy(buf, SNAPFILE_MAGIC, 8);
	sf_put32(buf + SF_OFF_VERSION, SNAPFILE_VERSION);
	uint32_t hsize = SF_HDR_FIXED + SF_ENTRY_SIZE * w->n;
	sf_put32(buf + SF_OFF_HSIZE, hsize);
	sf_put32(buf + SF_OFF_NSEC, w->n);
	sf_put32(buf + SF_OFF_ARCH, in->arch);
	sf_put64(buf + SF_OFF_RAM, in->ram_size);
	sf_put64(buf + SF_OFF_CREATED, in->created_ns);
	strcpy((char *)buf + SF_OFF_SMOLVM, in->smolvm_version);
	strcpy((char *)buf + SF_OFF_BACKEND, in->backend);
	if (in->arch == SMOL_ARCH_X86_64) {
		uint8_t *c = buf + SF_OFF_CPU;
		sf_put32(c, in->cpu.struct_size);
		memcpy(c + 4, in->cpu.vendor, 12);
		sf_put32(c + 16, in->cpu.signature);
		sf_put32(c + 20, in->cpu.n_words);
		for (int i = 0; i < 16; i++)
			sf_put32(c + 24 + 4 * i, in->cpu.words[i]);
	}
	for (uint32_t i = 0; i < w->n; i++) {
		struct wsec *s = &w->secs[i];
		if (s->type == SNAP_SEC_MEMORY)
			break;
		memcpy(buf + s->off, s->type == SNAP_SEC_MEMORY_SUMS ? w->sums : s->data, s->len);
	}
	for (uint32_t i = 0; i < w->n; i++) {
		struct wsec *s = &w->secs[i];
		uint8_t *e = buf + SF_HDR_FIXED + SF_ENTRY_SIZE * i;
		sf_put32(e, s->type);
		sf_put64(e + 8, s->off);
		sf_put64(e + 16, s->len);
		uint64_t next = i + 1 < w->n ? w->secs[i + 1].off : s->off + s->len;
		uint64_t sum = s->type == SNAP_SEC_MEMORY
		                       ? XXH3_64bits(w->sums, w->sums_len)
		                       : XXH3_64bits(buf + s->off, next - s->off);
		sf_put64(e + 24, sum);
		strcpy((char *)e + 32, s->name);
	}
	sf_put64(buf + SF_OFF_HSUM, sf_header_sum(buf, hsize));
}

int snapfile_commit(struct snap_writer *w, char *err, size_t errlen)
{
	int ret = 0;
	const char *what = "";
	if (w->broken) {
		sf_err(err, errlen, w->path, "not committed: writing its memory failed");
		ret = -EIO;
		goto out;
	}
	if (!w->has_mem && w->info.ram_size) {
		sf_err(err, errlen, w->path,
		       "no memory section, but the header says a RAM size of "
		       "0x%llx",
		       (unsigned long long)w->info.ram_size);
		ret = -EINVAL;
		goto out;
	}
	if (!w->laid_out)
		layout(w);
	uint64_t end = w->has_mem ? w->secs[w->n - 1].off : w->size;
	uint8_t *buf = calloc(1, end);
	if (!buf) {
		ret = -ENOMEM;
		what = "building the header";
		goto fail;
	}
	fill_prefix(w, buf);
	ret = pwrite_all(w->fd, buf, end, 0);
	free(buf);
	what = "writing the header and sections";
	if (ret)
		goto fail;
	what = "setting its size";
	if (ftruncate(w->fd, (off_t)w->size) < 0)
		goto fail_errno;
	what = "fsync";
	if (fsync(w->fd) < 0)
		goto fail_errno;
	what = "renaming the temporary file over it";
	if (renameat(w->dirfd, w->tmp, w->dirfd, w->base) < 0)
		goto fail_errno;
	w->tmp[0] = 0; /* renamed: nothing to remove */
	if (fsync(w->dirfd) < 0) {
		ret = -errno;
		sf_err(err, errlen, w->path, "fsync of its folder: %s", strerror(-ret));
	}
	goto out;
fail_errno:
	ret = -errno;
fail:
	sf_err(err, errlen, w->path, "%s: %s", what, strerror(-ret));
out:
	snapfile_abort(w);
	return ret;
}

void snapfile_abort(struct snap_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp[0])
		unlinkat(w->dirfd, w->tmp, 0);
	close(w->dirfd);
	for (uint32_t i = 0; i < w->n; i++)
		free(w->secs[i].data);
	free(w->secs);
	free(w->sums);
	free(w->path);
	free(w->base);
	free(w);
}

int snapfile_is_snapshot(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	char magic[8];
	int yes = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	          pread(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
	          !memcmp(magic, SNAPFILE_MAGIC, sizeof(magic));
	close(fd);
	return yes;
}
