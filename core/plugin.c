/* plugin.c: the plugin loader. A plugin is checked from its descriptor's data alone (version,
 * size, kind, ops table) before any of its functions is called: plugins are built without
 * constructors, so dlopen itself runs none of their code. */
#define _GNU_SOURCE
#include "plugin.h"

#include <dirent.h>
#include <stdbool.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SMOLVM_PLUGIN_DIR
#define SMOLVM_PLUGIN_DIR "/usr/local/lib/smolvm"
#endif

static struct plugin *loaded;

const char *plugin_kind_name(uint32_t kind)
{
	switch (kind) {
	case SMOL_KIND_BACKEND: return "backend";
	case SMOL_KIND_DEVICE: return "device";
	default: return "unknown";
	}
}

static void path_add(struct plugin_path *pp, const char *dir)
{
	if (!dir || !*dir)
		return;
	for (int i = 0; i < pp->n; i++)
		if (strcmp(pp->dirs[i], dir) == 0)
			return;
	char **d = realloc(pp->dirs, (size_t)(pp->n + 1) * sizeof(*d));
	char *copy = strdup(dir);
	if (!d || !copy) {
		free(copy);
		if (d)
			pp->dirs = d;
		return;
	}
	pp->dirs = d;
	pp->dirs[pp->n++] = copy;
}

static void path_add_list(struct plugin_path *pp, const char *list)
{
	if (!list)
		return;
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		return;
	for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
		path_add(pp, tok);
	free(copy);
}

/* The build tree: when the executable sits next to build.ninja, its plugins are in
 * backends/NAME/NAME.so, devices/NAME/NAME.so and plugins/NAME/NAME.so below it. Each group is
 * one path entry ending in BUILD_GROUP ("/\*"): plugin_find looks straight at GROUP/NAME/NAME.so,
 * so nothing is listed or probed per subfolder (a restore's start-up pays no folder scans). */
#define BUILD_GROUP "/*"

static bool is_group(const char *dir)
{
	size_t n = strlen(dir);
	return n >= 2 && strcmp(dir + n - 2, BUILD_GROUP) == 0;
}

static void path_add_build_tree(struct plugin_path *pp)
{
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = 0;
	snprintf(probe, sizeof(probe), "%s/build.ninja", exe);
	if (access(probe, F_OK) != 0)
		return;
	static const char *const groups[] = { "backends", "devices", "plugins" };
	for (size_t g = 0; g < 3; g++) {
		snprintf(probe, sizeof(probe), "%s/%s" BUILD_GROUP, exe, groups[g]);
		path_add(pp, probe);
	}
}

void plugin_path_init(struct plugin_path *pp, const char *ini_dirs)
{
	pp->dirs = NULL;
	pp->n = 0;
	path_add_list(pp, ini_dirs);
	path_add_list(pp, getenv("SMOLVM_PLUGIN_PATH"));
	path_add_build_tree(pp);
	path_add(pp, SMOLVM_PLUGIN_DIR);
}

void plugin_path_free(struct plugin_path *pp)
{
	for (int i = 0; i < pp->n; i++)
		free(pp->dirs[i]);
	free(pp->dirs);
	pp->dirs = NULL;
	pp->n = 0;
}

/* The smallest ops tables the core accepts, frozen at ABI 1.0 (never "the current header"): a
 * 1.0 device table reaches at least its required create and destroy, a 1.0 backend table at
 * least irq_line, the last op it requires. Later ops are read only when struct_size holds
 * them (DEV_HAS_OP, BACKEND_HAS_OP). */
#define DEVICE_OPS_MIN_SIZE_1_0 (offsetof(struct smol_device_ops, destroy) + sizeof(void *))
#define BACKEND_OPS_MIN_SIZE_1_0 (offsetof(struct smol_backend_ops, irq_line) + sizeof(void *))

/* The ops every plugin of a kind must provide. */
static const char *missing_op(const struct smol_plugin_desc *d)
{
	if (d->kind == SMOL_KIND_DEVICE) {
		const struct smol_device_ops *o = d->ops;
		if (o->struct_size < DEVICE_OPS_MIN_SIZE_1_0)
			return "struct_size of its device ops (too small)";
		if (!o->create)
			return "create";
		if (!o->destroy)
			return "destroy";
	} else {
		const struct smol_backend_ops *o = d->ops;
		if (o->struct_size < BACKEND_OPS_MIN_SIZE_1_0)
			return "struct_size of its backend ops (too small)";
		if (!o->vm_create)
			return "vm_create";
		if (!o->vm_destroy)
			return "vm_destroy";
		if (!o->mem_add)
			return "mem_add";
		if (!o->vcpu_create)
			return "vcpu_create";
		if (!o->vcpu_destroy)
			return "vcpu_destroy";
		if (!o->vcpu_run)
			return "vcpu_run";
		if (!o->vcpu_kick)
			return "vcpu_kick";
		if (!o->vcpu_set_x86_boot)
			return "vcpu_set_x86_boot";
		if (!o->irq_line)
			return "irq_line";
	}
	return NULL;
}

int plugin_open_file(const char *file, uint32_t want_kind, struct plugin **out, char *err,
                     size_t errlen)
{
	void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "%s: cannot load: %s", file, dlerror());
		return -ENOEXEC;
	}
	const struct smol_plugin_desc *d = dlsym(h, SMOL_PLUGIN_SYMBOL);
	if (!d) {
		snprintf(err, errlen, "%s: not a smolvm plugin: no '%s' descriptor symbol", file,
		         SMOL_PLUGIN_SYMBOL);
		goto fail;
	}
	if (d->abi_major != SMOL_ABI_MAJOR) {
		snprintf(err, errlen,
		         "%s: built for smolvm plugin ABI %u.%u, this smolvm speaks ABI %u.%u "
		         "(major versions differ): rebuild the plugin against this SDK",
		         file, d->abi_major, d->abi_minor, SMOL_ABI_MAJOR, SMOL_ABI_MINOR);
		goto fail;
	}
	if (d->abi_minor > SMOL_ABI_MINOR) {
		snprintf(err, errlen,
		         "%s: built for smolvm plugin ABI %u.%u, newer than this smolvm's %u.%u: "
		         "upgrade smolvm or build the plugin against an older SDK",
		         file, d->abi_major, d->abi_minor, SMOL_ABI_MAJOR, SMOL_ABI_MINOR);
		goto fail;
	}
	if (d->struct_size < offsetof(struct smol_plugin_desc, ops) + sizeof(void *)) {
		snprintf(err, errlen, "%s: descriptor struct_size %u is too small (ABI %u.%u)",
		         file, d->struct_size, d->abi_major, d->abi_minor);
		goto fail;
	}
	if (d->kind != SMOL_KIND_DEVICE && d->kind != SMOL_KIND_BACKEND) {
		snprintf(err, errlen, "%s: unknown plugin kind %u", file, d->kind);
		goto fail;
	}
	if (want_kind && d->kind != want_kind) {
		snprintf(err, errlen, "%s: is a %s plugin ('%s'), but a %s plugin was asked for",
		         file, plugin_kind_name(d->kind), d->name ? d->name : "?",
		         plugin_kind_name(want_kind));
		goto fail;
	}
	if (!d->name || !d->name[0]) {
		snprintf(err, errlen, "%s: descriptor has no name", file);
		goto fail;
	}
	if (!d->ops) {
		snprintf(err, errlen, "%s: plugin '%s' has no ops table", file, d->name);
		goto fail;
	}
	const char *miss = missing_op(d);
	if (miss) {
		snprintf(err, errlen, "%s: %s plugin '%s' (ABI %u.%u) lacks the required op %s",
		         file, plugin_kind_name(d->kind), d->name, d->abi_major, d->abi_minor,
		         miss);
		goto fail;
	}
	struct plugin *p = calloc(1, sizeof(*p));
	if (!p || !(p->path = strdup(file))) {
		free(p);
		snprintf(err, errlen, "%s: out of memory", file);
		goto fail;
	}
	p->handle = h;
	p->desc = d;
	*out = p;
	return 0;
fail:
	dlclose(h);
	return -ENOEXEC;
}

void plugin_close(struct plugin *p)
{
	if (!p)
		return;
	if (p->handle)
		dlclose(p->handle);
	free(p->path);
	free(p);
}

int plugin_find(const struct plugin_path *pp, const char *name, uint32_t want_kind,
                struct plugin **out, char *err, size_t errlen)
{
	for (struct plugin *p = loaded; p; p = p->next) {
		if (strcmp(p->desc->name, name) == 0 && p->desc->kind == want_kind) {
			*out = p;
			return 0;
		}
	}
	if (!*name || strchr(name, '/')) {
		snprintf(err, errlen, "bad plugin name '%s'", name);
		return -EINVAL;
	}
	for (int i = 0; i < pp->n; i++) {
		char file[PATH_MAX];
		if (is_group(pp->dirs[i]))
			snprintf(file, sizeof(file), "%.*s/%s/%s.so", (int)strlen(pp->dirs[i]) - 2,
			         pp->dirs[i], name, name);
		else
			snprintf(file, sizeof(file), "%s/%s.so", pp->dirs[i], name);
		if (access(file, F_OK) != 0)
			continue;
		struct plugin *p;
		int r = plugin_open_file(file, want_kind, &p, err, errlen);
		if (r < 0)
			return r;
		if (strcmp(p->desc->name, name) != 0) {
			snprintf(err, errlen,
			         "%s: file is named '%s.so' but the plugin calls itself '%s'", file,
			         name, p->desc->name);
			plugin_close(p);
			return -EINVAL;
		}
		p->next = loaded;
		loaded = p;
		*out = p;
		return 0;
	}
	size_t n = (size_t)snprintf(err, errlen, "no %s plugin '%s' (%s.so) in the plugin path:",
	                            plugin_kind_name(want_kind), name, name);
	for (int i = 0; i < pp->n && n < errlen; i++)
		n += (size_t)snprintf(err + n, errlen - n, " %s", pp->dirs[i]);
	return -ENOENT;
}

void plugin_close_all(void)
{
	while (loaded) {
		struct plugin *p = loaded;
		loaded = p->next;
		plugin_close(p);
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the plugins of one folder: every NAME.so in it. */
static void list_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0)
			continue;
		char file[PATH_MAX], err[512];
		snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
		struct plugin *p;
		if (plugin_open_file(file, 0, &p, err, sizeof(err)) < 0) {
			printf("%-16.*s %-8s %-5s %-50s refused: %s\n", (int)(len - 3), e->d_name,
			       "-", "-", file, err);
			continue;
		}
		char abi[16];
		snprintf(abi, sizeof(abi), "%u.%u", p->desc->abi_major, p->desc->abi_minor);
		printf("%-16s %-8s %-5s %-50s %s\n", p->desc->name, plugin_kind_name(p->desc->kind),
		       abi, file, p->desc->description ? p->desc->description : "");
		plugin_close(p);
	}
	closedir(d);
}

/* A build-tree group: each subfolder's plugins, subfolders in name order. */
static void list_group(const char *group)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%.*s", (int)strlen(group) - 2, group);
	DIR *d = opendir(dir);
	if (!d)
		return;
	char *names[256];
	size_t k = 0;
	struct dirent *e;
	while ((e = readdir(d)) && k < 256)
		if (e->d_name[0] != '.' && e->d_type == DT_DIR && (names[k] = strdup(e->d_name)))
			k++;
	closedir(d);
	qsort(names, k, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < k; i++) {
		char sub[PATH_MAX + 300];
		snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]);
		list_dir(sub);
		free(names[i]);
	}
}

int plugin_list(const struct plugin_path *pp)
{
	printf("%-16s %-8s %-5s %-50s %s\n", "NAME", "KIND", "ABI", "FILE", "DESCRIPTION");
	for (int i = 0; i < pp->n; i++) {
		if (is_group(pp->dirs[i]))
			list_group(pp->dirs[i]);
		else
			list_dir(pp->dirs[i]);
	}
	return 0;
}
