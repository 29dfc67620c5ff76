/* config.c: INI machine descriptions. inih parses; a line-counting reader gives each key and
 * section its line number, so every error can say file:line. */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct parse_state {
	struct cfg *c;
	int line; /* line the reader last returned */
	struct cfg_section *cur;
	bool cur_bad; /* current section was rejected: ignore its keys */
	bool indented; /* the line the reader last returned starts with blanks */
	struct cfg_kv *last; /* key of the previous handler call, for continuation lines */
	/* for string input */
	const char *text;
	size_t pos;
	FILE *f;
};

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		fprintf(stderr, "smolvm: out of memory\n");
		exit(1);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "smolvm: out of memory\n");
		exit(1);
	}
	return p;
}

void cfg_error(struct cfg *c, const struct cfg_section *s, const struct cfg_kv *kv, const char *fmt,
               ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->errors++;
	/* values from the INI end up in the message: no terminal escape reaches the terminal */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (kv && kv->line == 0)
		fprintf(stderr, "--set %s: %s\n", kv->origin ? kv->origin : kv->key, msg);
	else
		fprintf(stderr, "%s:%d: %s\n", c->path, kv ? kv->line : s ? s->line : 0, msg);
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

/* Puts section @i (a device) into the name index, growing it to stay under half full. */
static void dev_index_put(struct cfg *c, size_t i)
{
	if (2 * (c->n_sec + 1) > c->dev_index_cap) {
		size_t cap = c->dev_index_cap ? 2 * c->dev_index_cap : 64;
		while (2 * (c->n_sec + 1) > cap)
			cap *= 2;
		free(c->dev_index);
		c->dev_index = calloc(cap, sizeof(*c->dev_index));
		if (!c->dev_index) {
			fprintf(stderr, "smolvm: out of memory\n");
			exit(1);
		}
		c->dev_index_cap = cap;
		for (size_t k = 0; k < c->n_sec; k++)
			if (c->sec[k].kind == CFG_DEVICE && k != i)
				dev_index_put(c, k);
	}
	size_t mask = c->dev_index_cap - 1, h = name_hash(c->sec[i].name) & mask;
	while (c->dev_index[h])
		h = (h + 1) & mask;
	c->dev_index[h] = (uint32_t)(i + 1);
}

static struct cfg_section *dev_index_get(const struct cfg *c, const char *name)
{
	if (!c->dev_index_cap)
		return NULL;
	size_t mask = c->dev_index_cap - 1, h = name_hash(name) & mask;
	for (; c->dev_index[h]; h = (h + 1) & mask)
		if (strcmp(c->sec[c->dev_index[h] - 1].name, name) == 0)
			return &c->sec[c->dev_index[h] - 1];
	return NULL;
}

struct cfg_section *cfg_add_section(struct cfg *c, enum cfg_kind kind, const char *name, int line)
{
	if (c->n_sec == c->cap_sec) {
		c->cap_sec = c->cap_sec ? c->cap_sec * 2 : 8;
		c->sec = xrealloc(c->sec, c->cap_sec * sizeof(*c->sec));
	}
	struct cfg_section *s = &c->sec[c->n_sec++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->name = xstrdup(name);
	s->line = line;
	if (kind == CFG_DEVICE)
		dev_index_put(c, c->n_sec - 1);
	return s;
}

struct cfg_kv *cfg_add_kv(struct cfg_section *s, const char *key, const char *value, int line)
{
	if (s->n_kv == s->cap_kv) {
		s->cap_kv = s->cap_kv ? s->cap_kv * 2 : 8;
		s->kv = xrealloc(s->kv, s->cap_kv * sizeof(*s->kv));
	}
	struct cfg_kv *kv = &s->kv[s->n_kv++];
	memset(kv, 0, sizeof(*kv));
	kv->key = xstrdup(key);
	kv->value = xstrdup(value);
	kv->line = line;
	return kv;
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

/* A section header seen by the reader: "[...]" after trimming. */
static void begin_section(struct parse_state *ps, const char *hdr)
{
	struct cfg *c = ps->c;
	struct cfg_section tmp = { .line = ps->line };
	char name[256];

	ps->cur = NULL;
	ps->cur_bad = true;
	ps->last = NULL;
	if (strlen(hdr) >= sizeof(name)) {
		cfg_error(c, &tmp, NULL, "section name too long");
		return;
	}
	if (strcmp(hdr, "machine") == 0 || strcmp(hdr, "boot") == 0 ||
	    strcmp(hdr, "snapshot") == 0) {
		enum cfg_kind k = hdr[0] == 'm'   ? CFG_MACHINE
		                  : hdr[0] == 'b' ? CFG_BOOT
		                                  : CFG_SNAPSHOT;
		struct cfg_section *old = cfg_section(c, k, NULL);
		if (old) {
			cfg_error(c, &tmp, NULL, "duplicate section [%s] (first at line %d)", hdr,
			          old->line);
			return;
		}
		ps->cur = cfg_add_section(c, k, hdr, ps->line);
	} else if (strncmp(hdr, "device", 6) == 0 && (hdr[6] == ' ' || hdr[6] == '\t')) {
		const char *n = hdr + 6;
		while (*n == ' ' || *n == '\t')
			n++;
		snprintf(name, sizeof(name), "%s", n);
		size_t len = strlen(name);
		while (len && isspace((unsigned char)name[len - 1]))
			name[--len] = 0;
		if (!valid_name(name)) {
			cfg_error(
			        c, &tmp, NULL,
			        "bad device name '%s' in [%s]: use letters, digits, '-', '_', '.'",
			        name, hdr);
			return;
		}
		struct cfg_section *old = cfg_section(c, CFG_DEVICE, name);
		if (old) {
			cfg_error(c, &tmp, NULL, "duplicate device name '%s' (first at line %d)",
			          name, old->line);
			return;
		}
		ps->cur = cfg_add_section(c, CFG_DEVICE, name, ps->line);
	} else if (strcmp(hdr, "device") == 0) {
		cfg_error(c, &tmp, NULL, "[device] needs a name: [device NAME]");
		return;
	} else {
		cfg_error(c, &tmp, NULL,
		          "unknown section [%s] (expected [machine], [boot], [snapshot] or "
		          "[device NAME])",
		          hdr);
		return;
	}
	ps->cur_bad = false;
}

/* The next byte of the input, or EOF. */
static int next_byte(struct parse_state *ps)
{
	if (ps->f)
		return getc(ps->f);
	return ps->text[ps->pos] ? (unsigned char)ps->text[ps->pos++] : EOF;
}

/* A line the reader refuses: reported, given to inih as an empty line. */
static char *refuse_line(struct parse_state *ps, char *str, const char *what)
{
	struct cfg_section tmp = { .line = ps->line };

	cfg_error(ps->c, &tmp, NULL, "%s", what);
	str[0] = '\n';
	str[1] = 0;
	return str;
}

/*
 * inih reader: returns one line at a time and notes section headers with their line. A line
 * is read whole, byte by byte, whatever it holds: a NUL byte in it is an error (C strings
 * would end the value there, silently), and so is a line longer than inih's buffer (the rest
 * must not be parsed as a line of its own). A UTF-8 byte order mark before the first line is
 * skipped.
 */
static char *reader(char *str, int num, void *stream)
{
	struct parse_state *ps = stream;
	bool nul = false, too_long = false;
	size_t i = 0;
	int ch;

	for (;;) {
		ch = next_byte(ps);
		if (ch == EOF)
			break;
		if (ch == '\n') {
			str[i++] = '\n';
			break;
		}
		if (ch == 0)
			nul = true;
		else if (i + 2 < (size_t)num)
			str[i++] = (char)ch;
		else
			too_long = true;
	}
	if (ps->f && ferror(ps->f))
		return NULL;
	if (i == 0 && ch == EOF && !nul && !too_long)
		return NULL;
	str[i] = 0;
	ps->line++;
	if (ps->line == 1 && i >= 3 && memcmp(str, "\xef\xbb\xbf", 3) == 0)
		memmove(str, str + 3, i - 2);
	if (nul)
		return refuse_line(ps, str, "a NUL byte in the line: an INI file is text");
	if (too_long) {
		char msg[96];

		snprintf(msg, sizeof(msg),
		         "line longer than %d characters: continue a long value on indented lines",
		         num - 2);
		return refuse_line(ps, str, msg);
	}
	ps->indented = str[0] == ' ' || str[0] == '\t';
	const char *p = str;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '[') {
		const char *end = strchr(p, ']');
		if (end) {
			char hdr[512];
			size_t n = (size_t)(end - p - 1);
			if (n >= sizeof(hdr))
				n = sizeof(hdr) - 1;
			memcpy(hdr, p + 1, n);
			hdr[n] = 0;
			/* trim */
			char *h = hdr;
			while (isspace((unsigned char)*h))
				h++;
			size_t len = strlen(h);
			while (len && isspace((unsigned char)h[len - 1]))
				h[--len] = 0;
			begin_section(ps, h);
		}
	}
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	struct cfg *c = ps->c;
	struct cfg_section tmp = { .line = ps->line };

	(void)section;
	if (!ps->cur) {
		if (!ps->cur_bad)
			cfg_error(c, &tmp, NULL, "key '%s' outside any section", name);
		return 1;
	}
	if (ps->indented && ps->last && strcmp(ps->last->key, name) == 0 &&
	    ps->last == &ps->cur->kv[ps->cur->n_kv - 1]) {
		/* an indented continuation line: inih hands us the same key again */
		char *joined;
		if (asprintf(&joined, "%s %s", ps->last->value, value) < 0)
			return 0;
		free(ps->last->value);
		ps->last->value = joined;
		return 1;
	}
	ps->last = NULL;
	if (!*name) {
		/* "= value": no key (found by fuzz/fuzz-config: the key '' went on to a snapshot's
		 * description, which refuses it) */
		cfg_error(c, &tmp, NULL, "missing key name before '=' in [%s%s]",
		          ps->cur->kind == CFG_DEVICE ? "device " : "", ps->cur->name);
		return 1;
	}
	if (!*value) {
		cfg_error(c, &tmp, NULL, "missing value for '%s' in [%s%s]", name,
		          ps->cur->kind == CFG_DEVICE ? "device " : "", ps->cur->name);
		return 1;
	}
	/* a device may take a key several times (smol_host::cfg_str_at); a repeat of any other
	 * key is reported once the device has asked for its keys (cfg_report_unused) */
	for (size_t i = 0; ps->cur->kind != CFG_DEVICE && i < ps->cur->n_kv; i++) {
		if (strcmp(ps->cur->kv[i].key, name) == 0) {
			cfg_error(c, &tmp, NULL, "duplicate key '%s' (first at line %d)", name,
			          ps->cur->kv[i].line);
			return 1;
		}
	}
	ps->last = cfg_add_kv(ps->cur, name, value, ps->line);
	return 1;
}

static int finish_parse(struct cfg *c, struct parse_state *ps, int r)
{
	if (r > 0) {
		struct cfg_section tmp = { .line = r };
		cfg_error(c, &tmp, NULL,
		          "syntax error (expected [section], key = value or a comment)");
	} else if (r < 0) {
		return -EIO;
	}
	(void)ps;
	return c->errors ? -EINVAL : 0;
}

static struct cfg *cfg_new(const char *path)
{
	struct cfg *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->path = xstrdup(path);
	char *slash = strrchr(c->path, '/');
	if (slash) {
		c->dir = xstrdup(c->path);
		c->dir[slash - c->path] = 0;
		if (!c->dir[0]) {
			free(c->dir);
			c->dir = xstrdup("/");
		}
	} else {
		c->dir = xstrdup(".");
	}
	return c;
}

struct cfg *cfg_new_empty(const char *path, const char *dir)
{
	struct cfg *c = cfg_new(path);
	if (c && dir) {
		free(c->dir);
		c->dir = xstrdup(dir);
	}
	return c;
}

int cfg_load(struct cfg **out, const char *path)
{
	struct cfg *c;
	/* O_NONBLOCK: a FIFO must not hang us; only a regular file is an INI */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	FILE *f = NULL;
	if (fd < 0 || fstat(fd, &st)) {
		int e = errno;
		fprintf(stderr, "%s: cannot open: %s\n", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "%s: not a machine description: %s, not a regular file\n", path,
		        S_ISDIR(st.st_mode)    ? "a directory"
		        : S_ISFIFO(st.st_mode) ? "a FIFO"
		        : S_ISCHR(st.st_mode)  ? "a character device"
		                               : "a special file");
		close(fd);
		return -EINVAL;
	}
	f = fdopen(fd, "r");
	if (!f) {
		int e = errno;
		fprintf(stderr, "%s: cannot open: %s\n", path, strerror(e));
		close(fd);
		return -e;
	}
	c = cfg_new(path);
	if (!c) {
		fclose(f);
		return -ENOMEM;
	}
	struct parse_state ps = { .c = c, .f = f };
	int r = ini_parse_stream(reader, &ps, handler, &ps);
	fclose(f);
	r = finish_parse(c, &ps, r);
	if (r < 0) {
		if (r == -EIO)
			fprintf(stderr, "%s: read error\n", path);
		cfg_free(c);
		return r;
	}
	*out = c;
	return 0;
}

int cfg_load_string(struct cfg **out, const char *name, const char *text)
{
	struct cfg *c = cfg_new(name);
	if (!c)
		return -ENOMEM;
	struct parse_state ps = { .c = c, .text = text };
	int r = finish_parse(c, &ps, ini_parse_stream(reader, &ps, handler, &ps));
	if (r < 0) {
		cfg_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_sec; i++) {
		struct cfg_section *s = &c->sec[i];
		for (size_t j = 0; j < s->n_kv; j++) {
			free(s->kv[j].key);
			free(s->kv[j].value);
			free(s->kv[j].origin);
			free(s->kv[j].base);
		}
		free(s->kv);
		free(s->name);
	}
	free(c->sec);
	free(c->dev_index);
	free(c->path);
	free(c->dir);
	free(c);
}

struct cfg_section *cfg_section(struct cfg *c, enum cfg_kind kind, const char *name)
{
	if (kind == CFG_DEVICE && name)
		return dev_index_get(c, name);
	for (size_t i = 0; i < c->n_sec; i++)
		if (c->sec[i].kind == kind && (!name || strcmp(c->sec[i].name, name) == 0))
			return &c->sec[i];
	return NULL;
}

static const struct cfg_kv *cfg_first(const struct cfg_section *s, const char *key)
{
	for (size_t i = 0; i < s->n_kv; i++)
		if (strcmp(s->kv[i].key, key) == 0)
			return &s->kv[i];
	return NULL;
}

struct cfg_kv *cfg_get_at(struct cfg_section *s, const char *key, unsigned index)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_kv; i++) {
		if (strcmp(s->kv[i].key, key) == 0 && index-- == 0) {
			s->kv[i].used = true;
			return &s->kv[i];
		}
	}
	return NULL;
}

struct cfg_kv *cfg_get(struct cfg_section *s, const char *key)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_kv; i++) {
		if (strcmp(s->kv[i].key, key) == 0) {
			s->kv[i].used = true;
			return &s->kv[i];
		}
	}
	return NULL;
}

int cfg_override(struct cfg *c, const char *assignment)
{
	const char *eq = strchr(assignment, '=');
	const char *dot = strchr(assignment, '.');
	char sec[256], key[256];
	enum cfg_kind kind;

	if (!eq || !dot || dot > eq || dot == assignment || eq == dot + 1) {
		fprintf(stderr, "--set %s: expected section.key=value (e.g. machine.memory=512M)\n",
		        assignment);
		return -EINVAL;
	}
	size_t sl = (size_t)(dot - assignment);
	if (sl >= sizeof(sec)) {
		fprintf(stderr, "--set %s: section name too long\n", assignment);
		return -EINVAL;
	}
	memcpy(sec, assignment, sl);
	sec[sl] = 0;
	const char *k = dot + 1;
	bool explicit_device = false;
	if (strcmp(sec, "device") == 0) {
		explicit_device = true;
		/* device.NAME.key=value: the key is after the last dot before '=' */
		const char *kd = NULL;
		for (const char *p = k; p < eq; p++)
			if (*p == '.')
				kd = p;
		if (!kd) {
			fprintf(stderr, "--set %s: expected device.NAME.key=value\n", assignment);
			return -EINVAL;
		}
		size_t nl = (size_t)(kd - k);
		if (nl >= sizeof(sec)) {
			fprintf(stderr, "--set %s: device name too long\n", assignment);
			return -EINVAL;
		}
		memcpy(sec, k, nl);
		sec[nl] = 0;
		k = kd + 1;
		kind = CFG_DEVICE;
		if (!valid_name(sec)) {
			fprintf(stderr,
			        "--set %s: bad device name '%s': use letters, digits, '-', '_', "
			        "'.'\n",
			        assignment, sec);
			return -EINVAL;
		}
	} else if (strcmp(sec, "machine") == 0) {
		kind = CFG_MACHINE;
	} else if (strcmp(sec, "boot") == 0) {
		kind = CFG_BOOT;
	} else if (strcmp(sec, "snapshot") == 0) {
		kind = CFG_SNAPSHOT;
	} else {
		kind = CFG_DEVICE; /* NAME.key=value */
	}
	size_t kl = (size_t)(eq - k);
	if (kl == 0 || kl >= sizeof(key)) {
		fprintf(stderr, "--set %s: bad key\n", assignment);
		return -EINVAL;
	}
	memcpy(key, k, kl);
	key[kl] = 0;
	if (!eq[1]) {
		fprintf(stderr, "--set %s: missing value\n", assignment);
		return -EINVAL;
	}

	struct cfg_section *s = cfg_section(c, kind, kind == CFG_DEVICE ? sec : NULL);
	if (!s) {
		/* device.NAME.type=PLUGIN adds a device; any other key needs one to exist */
		if (kind == CFG_DEVICE && !(explicit_device && strcmp(key, "type") == 0)) {
			fprintf(stderr,
			        "--set %s: %s has no [device %s] (add one with "
			        "--set device.%s.type=PLUGIN first)\n",
			        assignment, c->path, sec, sec);
			return -EINVAL;
		}
		s = cfg_add_section(c, kind, sec, 0);
	}
	for (size_t i = 0; i < s->n_kv; i++) {
		if (strcmp(s->kv[i].key, key) == 0) {
			free(s->kv[i].value);
			s->kv[i].value = xstrdup(eq + 1);
			s->kv[i].line = 0;
			free(s->kv[i].origin);
			s->kv[i].origin = xstrdup(assignment);
			free(s->kv[i].base);
			s->kv[i].base = NULL;
			return 0;
		}
	}
	struct cfg_kv *kv = cfg_add_kv(s, key, eq + 1, 0);
	kv->origin = xstrdup(assignment);
	return 0;
}

char *cfg_resolve_path(const struct cfg *c, const char *path)
{
	char *out;
	if (path[0] == '/' || !c->dir)
		return xstrdup(path);
	if (asprintf(&out, "%s/%s", c->dir, path) < 0)
		return NULL;
	return out;
}

char *cfg_resolve_kv_path(const struct cfg *c, const struct cfg_kv *kv)
{
	if (kv->line == 0 && kv->base && kv->value[0] != '/') {
		char *out; /* a restored run's --set: relative to that run's folder */
		return asprintf(&out, "%s/%s", kv->base, kv->value) < 0 ? NULL : out;
	}
	if (kv->line == 0)
		return xstrdup(kv->value); /* --set: as typed, relative to the current directory */
	return cfg_resolve_path(c, kv->value);
}

int cfg_parse_u64(const char *s, uint64_t *out)
{
	int base = 10;
	const char *p = s;
	uint64_t v = 0;

	while (isspace((unsigned char)*p))
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	} else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
		base = 8;
		p += 2;
	} else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
		base = 2;
		p += 2;
	}
	if (!*p)
		return -EINVAL;
	bool digits = false;
	for (; *p; p++) {
		int d;
		if (*p == '_' && digits)
			continue; /* a separator between digits: 1_000_000 */
		if (isdigit((unsigned char)*p))
			d = *p - '0';
		else if (isalpha((unsigned char)*p))
			d = tolower((unsigned char)*p) - 'a' + 10;
		else
			break;
		if (d >= base)
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -EINVAL; /* overflow */
		v = v * (uint64_t)base + (uint64_t)d;
		digits = true;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p || !digits)
		return -EINVAL;
	*out = v;
	return 0;
}

int cfg_parse_size(const char *s, uint64_t *out)
{
	char buf[64];
	size_t n = strlen(s);
	unsigned shift = 0;

	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	/* optional "iB"/"B" after the unit: 512M, 512MiB, 512MB all mean 512 * 2^20 */
	if (n >= 3 && (strcmp(buf + n - 2, "iB") == 0)) {
		n -= 2;
		buf[n] = 0;
	} else if (n >= 2 && (buf[n - 1] == 'B' || buf[n - 1] == 'b') &&
	           strchr("KkMmGgTt", buf[n - 2])) {
		buf[--n] = 0;
	}
	switch (buf[n - 1]) {
	case 'K':
	case 'k': shift = 10; break;
	case 'M':
	case 'm': shift = 20; break;
	case 'G':
	case 'g': shift = 30; break;
	case 'T':
	case 't': shift = 40; break;
	default: break;
	}
	if (shift)
		buf[--n] = 0;
	uint64_t v;
	if (n == 0 || cfg_parse_u64(buf, &v) < 0)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int cfg_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "on", "yes", "true" };
	static const char *const no[] = { "0", "off", "no", "false" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

int cfg_get_u64(struct cfg *c, struct cfg_section *s, const char *key, uint64_t def, uint64_t *out)
{
	struct cfg_kv *kv = cfg_get(s, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	if (cfg_parse_u64(kv->value, out) < 0) {
		cfg_error(c, s, kv, "bad number for '%s': '%s'", key, kv->value);
		return -EINVAL;
	}
	return 0;
}

int cfg_get_bool(struct cfg *c, struct cfg_section *s, const char *key, int def, int *out)
{
	struct cfg_kv *kv = cfg_get(s, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	if (cfg_parse_bool(kv->value, out) < 0) {
		cfg_error(c, s, kv, "bad boolean for '%s': '%s' (on/off, yes/no, true/false, 1/0)",
		          key, kv->value);
		return -EINVAL;
	}
	return 0;
}

int cfg_get_size(struct cfg *c, struct cfg_section *s, const char *key, uint64_t def, uint64_t *out)
{
	struct cfg_kv *kv = cfg_get(s, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	if (cfg_parse_size(kv->value, out) < 0) {
		cfg_error(c, s, kv, "bad size for '%s': '%s' (e.g. 512M, 2G, 0x100000)", key,
		          kv->value);
		return -EINVAL;
	}
	return 0;
}

int cfg_get_str(struct cfg *c, struct cfg_section *s, const char *key, const char *def,
                const char **out)
{
	(void)c;
	struct cfg_kv *kv = cfg_get(s, key);
	*out = kv ? kv->value : def;
	return 0;
}

int cfg_report_unused(struct cfg *c, struct cfg_section *s, const char *what)
{
	int n = 0;
	for (size_t i = 0; i < s->n_kv; i++) {
		if (s->kv[i].used)
			continue;
		const struct cfg_kv *first = cfg_first(s, s->kv[i].key);
		if (first != &s->kv[i])
			cfg_error(c, s, &s->kv[i], "duplicate key '%s' (first at line %d)",
			          s->kv[i].key, first->line);
		else
			cfg_error(c, s, &s->kv[i], "unknown key '%s' for %s", s->kv[i].key, what);
		n++;
	}
	return n;
}
