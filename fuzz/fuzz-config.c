/*
 * fuzz-config: the INI parser (core/config.c) and `--set` overrides, then what a machine does
 * with the result: typed values, paths, and the description's round trip through a snapshot
 * (cfg_serialize, cfg_deserialize in core/config-snap.c).
 *
 * Input: INI text; after a line "#--set" (a comment to the parser), each further line is one
 * `--set` argument. The INI goes through the file reader (cfg_load, on a memfd, NUL bytes and
 * all) and the string reader (cfg_load_string, which ends at a NUL). The whole input is also
 * handed to cfg_deserialize as a snapshot's description, which must refuse it cleanly.
 *
 * Checked: no sanitizer report, and a parsed description serializes to text that parses back
 * to the same text.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

static int ini_fd = -1;
static char ini_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ini_fd = memfd_create("fuzz.ini", MFD_CLOEXEC);
	if (ini_fd < 0) {
		perror("fuzz-config: memfd_create");
		abort();
	}
	snprintf(ini_path, sizeof(ini_path), "/proc/self/fd/%d", ini_fd);
	return 0;
}

/* Every value through every typed parser, every key through the path resolver. */
static void use_values(struct cfg *c)
{
	for (size_t i = 0; i < c->n_sec; i++) {
		struct cfg_section *s = &c->sec[i];

		for (size_t j = 0; j < s->n_kv; j++) {
			const struct cfg_kv *kv = &s->kv[j];
			uint64_t v;
			int b;

			(void)cfg_parse_u64(kv->value, &v);
			(void)cfg_parse_size(kv->value, &v);
			(void)cfg_parse_bool(kv->value, &b);
			free(cfg_resolve_kv_path(c, kv));
		}
		/* the lookups a machine makes, with their error reports */
		uint64_t u;
		int b;
		const char *str;
		(void)cfg_get_u64(c, s, "vcpus", 1, &u);
		(void)cfg_get_size(c, s, "memory", 128 << 20, &u);
		(void)cfg_get_bool(c, s, "acpi", 1, &b);
		(void)cfg_get_str(c, s, "type", NULL, &str);
		(void)cfg_get_at(s, "path", 1);
		if (s->kind == CFG_DEVICE)
			(void)cfg_section(c, CFG_DEVICE, s->name);
		(void)cfg_report_unused(c, s, "fuzz");
	}
}

/* serialize -> deserialize -> serialize gives the same text. */
static void round_trip(const struct cfg *c)
{
	char err[256];
	struct cfg *back = NULL;
	char *one = cfg_serialize(c);

	if (c->n_sec == 0 || !one) {
		free(one); /* a description without sections is never a snapshot's machine */
		return;
	}
	if (cfg_deserialize(&back, one, strlen(one), err, sizeof(err)) != 0) {
		fprintf(stderr,
		        "fuzz-config: cfg_deserialize refused cfg_serialize's text: %s\n%s\n", err,
		        one);
		abort();
	}
	char *two = cfg_serialize(back);
	if (two && strcmp(one, two) != 0) {
		fprintf(stderr,
		        "fuzz-config: the round trip changed the description:\n%s\n--\n%s\n", one,
		        two);
		abort();
	}
	free(two);
	cfg_free(back);
	free(one);
}

static void apply_sets(struct cfg *c, const char *sets)
{
	char *copy = strdup(sets), *save = NULL;

	if (!copy)
		return;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		(void)cfg_override(c, line);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char marker[] = "\n#--set\n";
	char *text = malloc(size + 1);
	struct cfg *c = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	char *sets = memmem(text, size, marker, sizeof(marker) - 1);
	size_t ini_len = sets ? (size_t)(sets - text) + 1 : size;
	if (sets)
		sets += sizeof(marker) - 1;

	/* the file reader, NUL bytes included */
	if (ftruncate(ini_fd, 0) == 0 && pwrite(ini_fd, text, ini_len, 0) == (ssize_t)ini_len &&
	    cfg_load(&c, ini_path) == 0) {
		if (sets)
			apply_sets(c, sets);
		use_values(c);
		round_trip(c);
		cfg_free(c);
		c = NULL;
	}

	/* the string reader (tests, restored descriptions) */
	char saved = text[ini_len];
	text[ini_len] = 0;
	if (cfg_load_string(&c, "fuzz.ini", text) == 0) {
		round_trip(c);
		cfg_free(c);
		c = NULL;
	}
	text[ini_len] = saved;

	/* a snapshot's description, as read back from a .smolmachine file */
	char err[256];
	if (cfg_deserialize(&c, (const char *)data, size, err, sizeof(err)) == 0) {
		use_values(c);
		round_trip(c);
		cfg_free(c);
	}
	free(text);
	return 0;
}
