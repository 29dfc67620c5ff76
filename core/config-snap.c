/* config-snap.c: a machine description as text for a snapshot (cfg_serialize), and back
 * (cfg_deserialize). Not INI: values are kept byte for byte (an INI reader would cut a ';'
 * or join lines), with each key's line in the original file, so a restored machine's errors
 * still say file:line, and with the folders relative paths were resolved against.
 *
 *   smolvm-machine 1
 *   path<TAB>/abs/app.ini          the INI file as given (for messages)
 *   dir<TAB>/abs                   folder of the INI file (relative paths in it)
 *   cwd<TAB>/abs/cwd               the saving run's folder (relative paths in its --set values)
 *   section<TAB>KIND<TAB>NAME<TAB>LINE      KIND: machine, boot, snapshot, device
 *   key<TAB>KEY<TAB>VALUE<TAB>LINE          LINE 0: a --set
 *
 * Fields escape '\\' as "\\\\", tab as "\\t", newline as "\\n", other control bytes as
 * "\\xHH". */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERIAL_MAGIC "smolvm-machine 1"

static const char *kind_name(enum cfg_kind k)
{
	switch (k) {
	case CFG_MACHINE: return "machine";
	case CFG_BOOT: return "boot";
	case CFG_SNAPSHOT: return "snapshot";
	default: return "device";
	}
}

static void put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\\')
			fputs("\\\\", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
}

static void put_fields(FILE *f, int n, ...)
{
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		if (i)
			fputc('\t', f);
		put_escaped(f, va_arg(ap, const char *));
	}
	va_end(ap);
	fputc('\n', f);
}

char *cfg_serialize(const struct cfg *c)
{
	char *buf = NULL, cwd[PATH_MAX], line[16];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	char *dir = realpath(c->dir ? c->dir : ".", NULL);
	fprintf(f, "%s\n", SERIAL_MAGIC);
	put_fields(f, 2, "path", c->path);
	put_fields(f, 2, "dir", dir ? dir : c->dir ? c->dir : ".");
	put_fields(f, 2, "cwd", getcwd(cwd, sizeof(cwd)) ? cwd : ".");
	free(dir);
	for (size_t i = 0; i < c->n_sec; i++) {
		const struct cfg_section *s = &c->sec[i];
		snprintf(line, sizeof(line), "%d", s->line);
		put_fields(f, 4, "section", kind_name(s->kind), s->name, line);
		for (size_t j = 0; j < s->n_kv; j++) {
			snprintf(line, sizeof(line), "%d", s->kv[j].line);
			put_fields(f, 4, "key", s->kv[j].key, s->kv[j].value, line);
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Splits one line into at most @p max unescaped fields (in place). -1 on a bad escape. */
static int split_fields(char *line, char **field, int max)
{
	int n = 0;
	char *out = line;
	field[n++] = out;
	for (char *p = line; *p; p++) {
		if (*p == '\t') {
			*out++ = 0;
			if (n == max)
				return -1;
			field[n++] = out;
		} else if (*p == '\\') {
			p++;
			if (*p == '\\')
				*out++ = '\\';
			else if (*p == 't')
				*out++ = '\t';
			else if (*p == 'n')
				*out++ = '\n';
			else if (*p == 'x' && p[1] && p[2]) {
				char hex[3] = { p[1], p[2], 0 }, *end;
				unsigned long v = strtoul(hex, &end, 16);
				if (*end || v == 0)
					return -1;
				*out++ = (char)v;
				p += 2;
			} else
				return -1;
		} else {
			*out++ = *p;
		}
	}
	*out = 0;
	return n;
}

static int parse_line_no(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > INT_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

int cfg_deserialize(struct cfg **out, const char *text, size_t len, char *err, size_t errlen)
{
	char *copy = NULL, *save = NULL, *path = NULL, *dir = NULL, *cwd = NULL;
	struct cfg *c = NULL;
	struct cfg_section *cur = NULL;
	int lineno = 0, r = -EINVAL;

	if (memchr(text, 0, len)) {
		snprintf(err, errlen, "the machine description holds a NUL byte");
		return -EINVAL;
	}
	copy = strndup(text, len);
	if (!copy)
		return -ENOMEM;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *f[4];
		int n, at;
		lineno++;
		if (lineno == 1) {
			if (strcmp(l, SERIAL_MAGIC) != 0) {
				snprintf(err, errlen, "the machine description is not '%s'",
				         SERIAL_MAGIC);
				goto out;
			}
			continue;
		}
		n = split_fields(l, f, 4);
		if (n < 0)
			goto bad;
		if (n == 2 && !c && strcmp(f[0], "path") == 0 && !path) {
			path = strdup(f[1]);
		} else if (n == 2 && !c && strcmp(f[0], "dir") == 0 && !dir) {
			dir = strdup(f[1]);
		} else if (n == 2 && !c && strcmp(f[0], "cwd") == 0 && !cwd) {
			cwd = strdup(f[1]);
		} else if (n == 4 && strcmp(f[0], "section") == 0) {
			enum cfg_kind k;
			if (!c && (!path || !dir || !cwd || !(c = cfg_new_empty(path, dir))))
				goto bad;
			if (strcmp(f[1], "machine") == 0)
				k = CFG_MACHINE;
			else if (strcmp(f[1], "boot") == 0)
				k = CFG_BOOT;
			else if (strcmp(f[1], "snapshot") == 0)
				k = CFG_SNAPSHOT;
			else if (strcmp(f[1], "device") == 0)
				k = CFG_DEVICE;
			else
				goto bad;
			if (!f[2][0] || parse_line_no(f[3], &at) < 0 ||
			    cfg_section(c, k, k == CFG_DEVICE ? f[2] : NULL))
				goto bad;
			cur = cfg_add_section(c, k, f[2], at);
		} else if (n == 4 && strcmp(f[0], "key") == 0 && cur) {
			if (!f[1][0] || parse_line_no(f[3], &at) < 0)
				goto bad;
			/* a device may take a key several times (smol_host::cfg_str_at:
			 * virtio-net's forward), as in the INI; other sections hold each key once
			 */
			for (size_t i = 0; cur->kind != CFG_DEVICE && i < cur->n_kv; i++)
				if (strcmp(cur->kv[i].key, f[1]) == 0)
					goto bad;
			struct cfg_kv *kv = cfg_add_kv(cur, f[1], f[2], at);
			if (at == 0) {
				kv->base = strdup(cwd);
				if (asprintf(&kv->origin, "%s.%s=%s (a --set of the saved run)",
				             cur->name, f[1], f[2]) < 0)
					kv->origin = NULL;
			}
		} else {
			goto bad;
		}
	}
	if (!c) {
		snprintf(err, errlen, "the machine description has no sections");
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
	goto out;
bad:
	snprintf(err, errlen, "the machine description is malformed at its line %d", lineno);
out:
	if (c)
		cfg_free(c);
	free(copy);
	free(path);
	free(dir);
	free(cwd);
	return r;
}
