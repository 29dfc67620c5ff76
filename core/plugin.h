/* plugin.h: finding, opening and checking plugins before any of their code runs. */
#ifndef SMOLVM_PLUGIN_H
#define SMOLVM_PLUGIN_H

#include <smolvm/sdk.h>

/** A loaded, checked plugin. */
struct plugin {
	char *path; /**< the file it came from */
	void *handle; /**< dlopen handle */
	const struct smol_plugin_desc *desc;
	struct plugin *next;
};

/** Plugin search path: INI paths, SMOLVM_PLUGIN_PATH, the build tree, the installed dir. */
struct plugin_path {
	char **dirs;
	int n;
};

/**
 * Builds the search path. @p ini_dirs is the INI's `plugin_path` (colon-separated, already
 * resolved against the INI folder; may be NULL). The build tree is found from
 * /proc/self/exe.
 */
void plugin_path_init(struct plugin_path *pp, const char *ini_dirs);
void plugin_path_free(struct plugin_path *pp);

/**
 * Opens @p file and checks its descriptor: present, ABI major equal, minor not newer,
 * struct_size sane, kind as expected (@p want_kind, 0 for any), required ops present.
 * Writes a message naming the file and versions into @p err on failure.
 * @return 0 or a negative errno
 */
int plugin_open_file(const char *file, uint32_t want_kind, struct plugin **out, char *err,
                     size_t errlen);

/**
 * Finds the plugin called @p name (file NAME.so in the search path) of kind @p want_kind.
 * Plugins stay loaded until plugin_close_all(); a second request returns the same one.
 */
int plugin_find(const struct plugin_path *pp, const char *name, uint32_t want_kind,
                struct plugin **out, char *err, size_t errlen);

/** Lists every plugin in the search path on stdout (`smolvm plugins`). Returns 0. */
int plugin_list(const struct plugin_path *pp);

/** Unloads every plugin opened by plugin_find(). */
void plugin_close_all(void);
void plugin_close(struct plugin *p);

/** "device" / "backend" */
const char *plugin_kind_name(uint32_t kind);

#endif
