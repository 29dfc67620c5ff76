/* config.h: INI machine descriptions (parsed with inih), with line numbers for every key. */
#ifndef SMOLVM_CONFIG_H
#define SMOLVM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

/** One key = value line. */
struct cfg_kv {
	char *key;
	char *value;
	int line; /**< line in the INI file; 0 for a --set override */
	char *origin; /**< for overrides: the --set argument */
	char *base; /**< a --set of an earlier run (restored): its folder, which a relative path
	               in the value is resolved against; NULL otherwise */
	bool used; /**< somebody asked for this key */
};

/** Section kinds. */
enum cfg_kind { CFG_MACHINE, CFG_BOOT, CFG_DEVICE, CFG_SNAPSHOT };

/** One [section]. */
struct cfg_section {
	enum cfg_kind kind;
	char *name; /**< "machine", "boot", or the device's name */
	int line;
	struct cfg_kv *kv;
	size_t n_kv, cap_kv;
};

/** A parsed machine file. */
struct cfg {
	char *path; /**< as given */
	char *dir; /**< folder that relative paths are resolved against */
	struct cfg_section *sec;
	size_t n_sec, cap_sec;
	/* device sections by name (open addressing, indexes into sec + 1; 0: empty): tens of
	 * thousands of devices must not cost a scan each */
	uint32_t *dev_index;
	size_t dev_index_cap;
	int errors; /**< errors reported so far */
};

/**
 * Parses @p path. Reports every problem as "path:line: what" on stderr.
 * @return 0, -ENOENT/-EIO when the file cannot be read, -EINVAL on syntax errors
 */
int cfg_load(struct cfg **out, const char *path);
/** Parses INI text from memory (for tests); @p name is used in messages and paths. */
int cfg_load_string(struct cfg **out, const char *name, const char *text);
void cfg_free(struct cfg *c);

/** Applies a `--set section.key=value` (device sections: `device.NAME.key` or `NAME.key`). */
int cfg_override(struct cfg *c, const char *assignment);

/** Adds a section or a key (for cfg_deserialize and tests); never fails (exits when out of
 * memory, as the parser does). */
struct cfg_section *cfg_add_section(struct cfg *c, enum cfg_kind kind, const char *name, int line);
struct cfg_kv *cfg_add_kv(struct cfg_section *s, const char *key, const char *value, int line);
/** An empty machine description named @p path (paths relative to @p dir); NULL: no memory. */
struct cfg *cfg_new_empty(const char *path, const char *dir);

/**
 * The whole description as text that cfg_deserialize() turns back into the same sections and
 * keys, with their lines, the folder relative paths are resolved against, and where each
 * --set came from (config-snap.c). malloc'd; NULL when out of memory.
 */
char *cfg_serialize(const struct cfg *c);
/** Parses cfg_serialize()'s text. 0, or -EINVAL with @p err saying what is wrong. */
int cfg_deserialize(struct cfg **out, const char *text, size_t len, char *err, size_t errlen);

/** Finds a section by kind and name (NULL name: the first of that kind). */
struct cfg_section *cfg_section(struct cfg *c, enum cfg_kind kind, const char *name);
/** Finds a key in a section and marks it used; NULL when absent. */
struct cfg_kv *cfg_get(struct cfg_section *s, const char *key);
/** The @p index-th (from 0) occurrence of a key a device may repeat, marked used; NULL past
 * the last. */
struct cfg_kv *cfg_get_at(struct cfg_section *s, const char *key, unsigned index);

/** Reports "path:line: message" for a key (or the section when kv is NULL); counts errors. */
void cfg_error(struct cfg *c, const struct cfg_section *s, const struct cfg_kv *kv, const char *fmt,
               ...) SMOL_PRINTF(4, 5);

/** Resolves @p path against the INI file's folder (absolute paths unchanged); malloc'd. */
char *cfg_resolve_path(const struct cfg *c, const char *path);

/**
 * Resolves the path in a key's value: relative to the INI file's folder, or to the current
 * directory for a --set override.
 */
char *cfg_resolve_kv_path(const struct cfg *c, const struct cfg_kv *kv);

/* Value parsers: 0 on success, -EINVAL on a malformed value. */
int cfg_parse_u64(const char *s, uint64_t *out);
int cfg_parse_size(const char *s, uint64_t *out);
int cfg_parse_bool(const char *s, int *out);

/* Typed lookups with defaults that report malformed values (return -EINVAL). */
int cfg_get_u64(struct cfg *c, struct cfg_section *s, const char *key, uint64_t def, uint64_t *out);
int cfg_get_size(struct cfg *c, struct cfg_section *s, const char *key, uint64_t def,
                 uint64_t *out);
int cfg_get_str(struct cfg *c, struct cfg_section *s, const char *key, const char *def,
                const char **out);
int cfg_get_bool(struct cfg *c, struct cfg_section *s, const char *key, int def, int *out);

/** Reports every key nobody asked for as unknown; returns how many. */
int cfg_report_unused(struct cfg *c, struct cfg_section *s, const char *what);

#endif
