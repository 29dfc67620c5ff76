/* plugin-map.h: a loaded plugin's own segments, to check the pointers of its descriptor. */
#ifndef SMOLVM_PLUGIN_MAP_H
#define SMOLVM_PLUGIN_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLUGIN_MAP_MAX_SEGS 16

struct plugin_seg {
	uintptr_t start, end; /**< [start, end): p_vaddr .. p_vaddr + p_memsz, relocated */
	uint32_t flags; /**< PF_R, PF_W, PF_X */
};

/** The PT_LOAD segments of one loaded object. */
struct plugin_map {
	struct plugin_seg seg[PLUGIN_MAP_MAX_SEGS];
	unsigned n;
};

/** Fills @p pm for the object dlopen returned as @p handle. 0, -ENOENT, -E2BIG. */
int plugin_map_find(void *handle, struct plugin_map *pm);

/** [p, p + len) lies inside one readable segment. */
bool plugin_map_readable(const struct plugin_map *pm, const void *p, size_t len);

/** @p fn lies inside an executable segment. */
bool plugin_map_code(const struct plugin_map *pm, uintptr_t fn);

/** @p s starts in a readable segment and its NUL comes before that segment ends. */
bool plugin_map_string(const struct plugin_map *pm, const char *s);

#endif
