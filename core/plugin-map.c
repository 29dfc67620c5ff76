/* plugin-map.c: where a loaded plugin lies in memory (its PT_LOAD segments, found through
 * dlinfo and dl_iterate_phdr), so that the pointers its descriptor holds are checked before the
 * loader follows them: data inside a readable segment, code inside an executable one, strings
 * NUL-terminated inside the segment they start in. */
#define _GNU_SOURCE
#include "plugin-map.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <string.h>

struct find {
	const struct link_map *lm;
	struct plugin_map *pm;
	int found;
};

static int find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct find *f = arg;
	(void)size;
	if (info->dlpi_addr != f->lm->l_addr || !info->dlpi_name || !f->lm->l_name ||
	    strcmp(info->dlpi_name, f->lm->l_name) != 0)
		return 0;
	struct plugin_map *pm = f->pm;
	pm->n = 0;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
			continue;
		if (pm->n == PLUGIN_MAP_MAX_SEGS) {
			f->found = -E2BIG;
			return 1;
		}
		pm->seg[pm->n].start = info->dlpi_addr + ph->p_vaddr;
		pm->seg[pm->n].end = pm->seg[pm->n].start + ph->p_memsz;
		pm->seg[pm->n].flags = ph->p_flags;
		pm->n++;
	}
	f->found = 1;
	return 1;
}

int plugin_map_find(void *handle, struct plugin_map *pm)
{
	struct link_map *lm = NULL;
	if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
		return -ENOENT;
	struct find f = { .lm = lm, .pm = pm, .found = 0 };
	dl_iterate_phdr(find_cb, &f);
	if (f.found < 0)
		return f.found;
	return f.found ? 0 : -ENOENT;
}

/* The segment with all of [p, p + len) and every flag of @p flags, or NULL. */
static const struct plugin_seg *seg_of(const struct plugin_map *pm, uintptr_t p, size_t len,
                                       uint32_t flags)
{
	for (unsigned i = 0; i < pm->n; i++) {
		const struct plugin_seg *s = &pm->seg[i];
		if (p >= s->start && p < s->end && len <= s->end - p && (s->flags & flags) == flags)
			return s;
	}
	return NULL;
}

bool plugin_map_readable(const struct plugin_map *pm, const void *p, size_t len)
{
	return seg_of(pm, (uintptr_t)p, len ? len : 1, PF_R) != NULL;
}

bool plugin_map_code(const struct plugin_map *pm, uintptr_t fn)
{
	return seg_of(pm, fn, 1, PF_X) != NULL;
}

bool plugin_map_string(const struct plugin_map *pm, const char *s)
{
	const struct plugin_seg *seg = seg_of(pm, (uintptr_t)s, 1, PF_R);
	return seg && memchr(s, 0, seg->end - (uintptr_t)s) != NULL;
}
