/* plugin.c: the plugin loader. A plugin is checked before any of its code runs: its file
 * before dlopen (a regular file whose ELF has no constructors, destructors or IFUNC resolvers
 * of its own: plugin-elf.c), then its descriptor's data alone (symbol size, version, kind,
 * name, ops table), every pointer it holds checked to lie inside the plugin's own loaded
 * segments (plugin-map.c) before the loader follows it. */
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
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin-elf.h"
#include "method-sig.h"
#include "plugin-map.h"

#ifndef SMOLVM_PLUGIN_DIR
#define SMOLVM_PLUGIN_DIR "/usr/local/lib/smolvm"
#endif

static struct plugin *loaded;

/* abi_major, abi_minor and struct_size: read before anything else, in every ABI. */
#define DESC_VERSION_SIZE (offsetof(struct smol_plugin_desc, struct_size) + sizeof(uint32_t))

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

/* Reads @p file before dlopen: a regular file (opened without blocking: a FIFO named x.so is
 * refused, not waited on) whose ELF says loading it runs none of its code (plugin-elf.c).
 * dlopen then opens the path again: a file replaced in between is not what was checked. The
 * plugin folders are trusted not to change under smolvm (whoever can write there can put any
 * code in a plugin's ops); dlopen of /proc/self/fd/N would close the gap but names the object
 * by a path that glibc later matches to a different file reusing that fd number. */
static int precheck_file(const char *file, char *err, size_t errlen)
{
	int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot open: %s", file, strerror(e));
		return -e;
	}
	struct stat st;
	int r = -ENOEXEC;
	if (fstat(fd, &st) != 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot stat: %s", file, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", file);
		goto out;
	}
	char why[256];
	if (st.st_size <= 0 || (uint64_t)st.st_size > SIZE_MAX) {
		r = plugin_elf_check(NULL, 0, why, sizeof(why));
	} else {
		/* a plugin that shrinks under us would fault dlopen as much as this (SIGBUS) */
		void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			r = -errno;
			snprintf(err, errlen, "%s: cannot map: %s", file, strerror(-r));
			goto out;
		}
		r = plugin_elf_check(map, (size_t)st.st_size, why, sizeof(why));
		munmap(map, (size_t)st.st_size);
	}
	if (r < 0)
		snprintf(err, errlen, "%s: %s", file, why);
out:
	close(fd);
	return r;
}

/* The descriptor's own bytes, before any field is read: the symbol lies inside the plugin's
 * readable segments, for as many bytes as its size (dladdr1), which holds at least the version
 * fields (the whole descriptor is checked for once the version is known). */
static int check_desc_symbol(const char *file, const struct plugin_map *pm, const void *d,
                             size_t *size, char *err, size_t errlen)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!plugin_map_readable(pm, d, 1)) {
		snprintf(err, errlen,
		         "%s: its '%s' symbol (%p) lies outside the plugin's own loaded segments",
		         file, SMOL_PLUGIN_SYMBOL, d);
		return -ENOEXEC;
	}
	if (!dladdr1(d, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || info.dli_saddr != d ||
	    !info.dli_sname || strcmp(info.dli_sname, SMOL_PLUGIN_SYMBOL) != 0) {
		snprintf(err, errlen, "%s: its '%s' symbol has no size the loader can look up",
		         file, SMOL_PLUGIN_SYMBOL);
		return -ENOEXEC;
	}
	*size = sym->st_size;
	if (*size < DESC_VERSION_SIZE || !plugin_map_readable(pm, d, *size)) {
		snprintf(err, errlen,
		         "%s: its '%s' symbol is %zu byte%s%s, too small for a plugin descriptor "
		         "(%zu bytes in ABI %u.x)",
		         file, SMOL_PLUGIN_SYMBOL, *size, *size == 1 ? "" : "s",
		         *size < DESC_VERSION_SIZE ? "" : " running past its segment",
		         sizeof(struct smol_plugin_desc), SMOL_ABI_MAJOR);
		return -ENOEXEC;
	}
	return 0;
}

/* An op the core may call (of @p minor and later): offset and name. */
struct op_field {
	size_t off;
	const char *name;
	uint32_t minor;
};
#define DEV_OP(f, m)                                                                               \
	{                                                                                          \
		offsetof(struct smol_device_ops, f), #f, m                                         \
	}
#define BE_OP(f, m)                                                                                \
	{                                                                                          \
		offsetof(struct smol_backend_ops, f), #f, m                                        \
	}
static const struct op_field device_op_fields[] = {
	DEV_OP(create, 0),   DEV_OP(destroy, 0), DEV_OP(reset, 0),
	DEV_OP(describe, 0), DEV_OP(save, 3),    DEV_OP(load, 3),
	DEV_OP(pause, 3),    DEV_OP(resume, 3),  DEV_OP(stats, 6),
};
static const struct op_field backend_op_fields[] = {
	BE_OP(vm_create, 0),     BE_OP(vm_destroy, 0),        BE_OP(mem_add, 0),
	BE_OP(vcpu_create, 0),   BE_OP(vcpu_destroy, 0),      BE_OP(vcpu_run, 0),
	BE_OP(vcpu_kick, 0),     BE_OP(vcpu_set_x86_boot, 0), BE_OP(vcpu_dump, 0),
	BE_OP(irq_line, 0),      BE_OP(ioeventfd, 0),         BE_OP(irqfd, 0),
	BE_OP(vm_cpu_info, 3),   BE_OP(vm_save, 3),           BE_OP(vm_load, 3),
	BE_OP(vcpu_save, 3),     BE_OP(vcpu_load, 3),         BE_OP(vcpu_was_paused, 3),
	BE_OP(vcpu_set_boot, 5), BE_OP(vm_ready, 5),
};

/* The ops table: inside the plugin's readable segments for as much of it as the core reads,
 * and every op the core may call NULL or inside the plugin's code. */
static int check_ops(const char *file, const struct plugin_map *pm,
                     const struct smol_plugin_desc *d, char *err, size_t errlen)
{
	const char *kind = plugin_kind_name(d->kind);
	bool dev = d->kind == SMOL_KIND_DEVICE;
	size_t full = dev ? sizeof(struct smol_device_ops) : sizeof(struct smol_backend_ops);
	if (!plugin_map_readable(pm, d->ops, sizeof(uint32_t))) {
		snprintf(err, errlen,
		         "%s: %s plugin '%s': its ops table (%p) lies outside the plugin's own "
		         "loaded segments",
		         file, kind, d->name, d->ops);
		return -ENOEXEC;
	}
	uint32_t size = *(const uint32_t *)d->ops;
	size_t seen = size < full ? size : full;
	if (!plugin_map_readable(pm, d->ops, seen)) {
		snprintf(
		        err, errlen,
		        "%s: %s plugin '%s': its ops table (struct_size %u) runs past the plugin's "
		        "loaded segment",
		        file, kind, d->name, size);
		return -ENOEXEC;
	}
	const struct op_field *f = dev ? device_op_fields : backend_op_fields;
	size_t n = dev ? sizeof(device_op_fields) / sizeof(*f)
	               : sizeof(backend_op_fields) / sizeof(*f);
	for (size_t i = 0; i < n; i++) {
		uintptr_t fn;
		if (f[i].off + sizeof(fn) > seen || d->abi_minor < f[i].minor)
			continue;
		memcpy(&fn, (const char *)d->ops + f[i].off, sizeof(fn));
		if (fn && !plugin_map_code(pm, fn)) {
			snprintf(err, errlen,
			         "%s: %s plugin '%s': its op %s (%#lx) lies outside the plugin's "
			         "code",
			         file, kind, d->name, f[i].name, (unsigned long)fn);
			return -ENOEXEC;
		}
	}
	return 0;
}

/* A device's exported methods (ABI 1.6 and later; the fields are ignored before): the table
 * and every method in it as method_table_check() wants them. */
static int check_methods(const char *file, const struct plugin_map *pm,
                         const struct smol_plugin_desc *d, char *err, size_t errlen)
{
	const struct smol_device_ops *ops = d->ops;
	if (d->kind != SMOL_KIND_DEVICE || d->abi_minor < 6 ||
	    ops->struct_size < offsetof(struct smol_device_ops, n_methods) + sizeof(uint32_t) ||
	    !ops->methods)
		return 0;
	char why[256];
	if (method_table_check(pm, ops->methods, ops->n_methods, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: device plugin '%s': %s", file, d->name, why);
		return -ENOEXEC;
	}
	return 0;
}

int plugin_open_file(const char *file, uint32_t want_kind, struct plugin **out, char *err,
                     size_t errlen)
{
	int r = precheck_file(file, err, errlen);
	if (r < 0)
		return r == -ENOENT ? r : -ENOEXEC;
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
	struct plugin_map pm;
	if (plugin_map_find(h, &pm) < 0) {
		snprintf(err, errlen, "%s: cannot find its loaded segments (more than %d?)", file,
		         PLUGIN_MAP_MAX_SEGS);
		goto fail;
	}
	size_t sym_size;
	if (check_desc_symbol(file, &pm, d, &sym_size, err, errlen) < 0)
		goto fail;
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
	/* every 1.x minor's descriptor is the same 40 bytes (pinned in sdk.h) */
	if (sym_size < sizeof(struct smol_plugin_desc)) {
		snprintf(err, errlen,
		         "%s: its '%s' symbol is %zu bytes, too small for an ABI %u.%u descriptor "
		         "(%zu bytes)",
		         file, SMOL_PLUGIN_SYMBOL, sym_size, d->abi_major, d->abi_minor,
		         sizeof(struct smol_plugin_desc));
		goto fail;
	}
	if (d->struct_size < offsetof(struct smol_plugin_desc, ops) + sizeof(void *) ||
	    d->struct_size > sym_size) {
		snprintf(err, errlen,
		         "%s: descriptor struct_size %u does not fit (ABI %u.%u, symbol of %zu "
		         "bytes)",
		         file, d->struct_size, d->abi_major, d->abi_minor, sym_size);
		goto fail;
	}
	if (d->kind != SMOL_KIND_DEVICE && d->kind != SMOL_KIND_BACKEND) {
		snprintf(err, errlen, "%s: unknown plugin kind %u", file, d->kind);
		goto fail;
	}
	if (!d->name || !plugin_map_string(&pm, d->name)) {
		snprintf(
		        err, errlen,
		        "%s: descriptor's name (%p) is not a string inside the plugin's own loaded "
		        "segments",
		        file, (const void *)d->name);
		goto fail;
	}
	if (!d->name[0]) {
		snprintf(err, errlen, "%s: descriptor has no name", file);
		goto fail;
	}
	if (d->description && !plugin_map_string(&pm, d->description)) {
		snprintf(
		        err, errlen,
		        "%s: plugin '%s': its description (%p) is not a string inside the plugin's "
		        "own loaded segments",
		        file, d->name, (const void *)d->description);
		goto fail;
	}
	if (want_kind && d->kind != want_kind) {
		snprintf(err, errlen, "%s: is a %s plugin ('%s'), but a %s plugin was asked for",
		         file, plugin_kind_name(d->kind), d->name, plugin_kind_name(want_kind));
		goto fail;
	}
	if (!d->ops) {
		snprintf(err, errlen, "%s: plugin '%s' has no ops table", file, d->name);
		goto fail;
	}
	if (check_ops(file, &pm, d, err, errlen) < 0 ||
	    check_methods(file, &pm, d, err, errlen) < 0)
		goto fail;
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
