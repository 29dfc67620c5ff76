/* Unit tests of the plugin loader (core/plugin.c) against the fixtures in tests/fixtures. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

static char path[4096];
static char err[2048];

static const char *fixture(const char *name)
{
	const char *dir = getenv("FIXTURE_DIR");
	cr_assert_not_null(dir, "FIXTURE_DIR not set");
	snprintf(path, sizeof(path), "%s/%s.so", dir, name);
	return path;
}

#define assert_has(hay, needle)                                                                    \
	cr_assert(strstr((hay), (needle)), "expected \"%s\" in: %s", (needle), (hay))

Test(loader, good_plugin)
{
	struct plugin *p = NULL;
	cr_assert_eq(
	        plugin_open_file(fixture("fixture-good"), SMOL_KIND_DEVICE, &p, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_str_eq(p->desc->name, "fixture-good");
	cr_assert_eq(p->desc->abi_major, SMOL_ABI_MAJOR);
	cr_assert_eq(p->desc->kind, SMOL_KIND_DEVICE);
	plugin_close(p);
}

Test(loader, wrong_major_refused_by_name)
{
	struct plugin *p = NULL;
	cr_assert_lt(
	        plugin_open_file(fixture("fixture-major"), SMOL_KIND_DEVICE, &p, err, sizeof(err)),
	        0);
	cr_assert_null(p);
	assert_has(err, "fixture-major.so");
	assert_has(err, "ABI 2.0");
	assert_has(err, "speaks ABI 1.2");
}

Test(loader, newer_minor_refused)
{
	struct plugin *p = NULL;
	cr_assert_lt(
	        plugin_open_file(fixture("fixture-minor"), SMOL_KIND_DEVICE, &p, err, sizeof(err)),
	        0);
	assert_has(err, "fixture-minor.so");
	assert_has(err, "ABI 1.99, newer than this smolvm's 1.2");
}

Test(loader, no_descriptor)
{
	struct plugin *p = NULL;
	cr_assert_lt(plugin_open_file(fixture("fixture-nodesc"), 0, &p, err, sizeof(err)), 0);
	assert_has(err, "fixture-nodesc.so: not a smolvm plugin: no 'smol_plugin' descriptor");
}

Test(loader, missing_required_op)
{
	struct plugin *p = NULL;
	cr_assert_lt(
	        plugin_open_file(fixture("fixture-noop"), SMOL_KIND_DEVICE, &p, err, sizeof(err)),
	        0);
	assert_has(err, "lacks the required op destroy");
}

Test(loader, kind_mismatch)
{
	struct plugin *p = NULL;
	cr_assert_lt(
	        plugin_open_file(fixture("fixture-good"), SMOL_KIND_BACKEND, &p, err, sizeof(err)),
	        0);
	assert_has(err, "is a device plugin ('fixture-good'), but a backend plugin was asked for");
}

Test(loader, not_a_shared_object)
{
	struct plugin *p = NULL;
	cr_assert_lt(plugin_open_file("/etc/hostname", 0, &p, err, sizeof(err)), 0);
	assert_has(err, "/etc/hostname: cannot load");
}

Test(loader, search_path_order)
{
	struct plugin_path pp;
	struct plugin *p;
	setenv("SMOLVM_PLUGIN_PATH", "/nonexistent:", 1);
	char ini_dirs[4200];
	snprintf(ini_dirs, sizeof(ini_dirs), "/also-missing:%s", getenv("FIXTURE_DIR"));
	plugin_path_init(&pp, ini_dirs);
	cr_assert_str_eq(pp.dirs[0], "/also-missing"); /* INI paths first */
	cr_assert_str_eq(pp.dirs[2], "/nonexistent"); /* then SMOLVM_PLUGIN_PATH */
	cr_assert_eq(plugin_find(&pp, "fixture-good", SMOL_KIND_DEVICE, &p, err, sizeof(err)), 0,
	             "%s", err);
	struct plugin *again;
	cr_assert_eq(plugin_find(&pp, "fixture-good", SMOL_KIND_DEVICE, &again, err, sizeof(err)),
	             0);
	cr_assert_eq(p, again); /* loaded once */
	cr_assert_eq(plugin_find(&pp, "nothing-here", SMOL_KIND_DEVICE, &p, err, sizeof(err)),
	             -ENOENT);
	assert_has(err, "no device plugin 'nothing-here' (nothing-here.so) in the plugin path:");
	assert_has(err, "/also-missing");
	cr_assert_eq(plugin_find(&pp, "../etc", SMOL_KIND_DEVICE, &p, err, sizeof(err)), -EINVAL);
	plugin_close_all();
	plugin_path_free(&pp);
}
