/* Unit tests of the plugin loader (core/plugin.c) against the fixtures in tests/fixtures, and
 * of plugins built for an older ABI minor (1.2) loaded, created and destroyed by this core. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "json.h"
#include "device.h"
#include "machine.h"
#include "snapshot.h"
#include "plugin.h"
#include "plugin-elf.h"

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

/* "ABI 1.N" of this core, for messages. */
static const char *core_abi(const char *fmt)
{
	static char buf[128];
	snprintf(buf, sizeof(buf), fmt, SMOL_ABI_MAJOR, SMOL_ABI_MINOR);
	return buf;
}

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

/* A device exporting methods of every signature letter (ABI 1.6) loads, its table as built. */
Test(loader, methods_accepted)
{
	struct plugin *p = NULL;
	cr_assert_eq(plugin_open_file(fixture("fixture-methods"), SMOL_KIND_DEVICE, &p, err,
	                              sizeof(err)),
	             0, "%s", err);
	const struct smol_device_ops *ops = p->desc->ops;
	cr_assert_eq(ops->n_methods, 5);
	cr_assert_str_eq(ops->methods[0].name, "add");
	cr_assert_str_eq(ops->methods[1].signature, "d(bBhHlLds)");
	int32_t (*add)(void *, int32_t, uint32_t) =
	        (int32_t(*)(void *, int32_t, uint32_t))ops->methods[0].fn;
	cr_assert_eq(add(NULL, -5, 7), 2);
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
	assert_has(err, core_abi("speaks ABI %u.%u"));
}

Test(loader, newer_minor_refused)
{
	struct plugin *p = NULL;
	cr_assert_lt(
	        plugin_open_file(fixture("fixture-minor"), SMOL_KIND_DEVICE, &p, err, sizeof(err)),
	        0);
	assert_has(err, "fixture-minor.so");
	assert_has(err, core_abi("ABI 1.99, newer than this smolvm's %u.%u"));
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
	assert_has(err, "/etc/hostname: not an ELF file");
}

/* ---- plugins refused before any of their code runs (issue 18) ------------------------ */

static char marker[] = "/tmp/test-loader-marker-XXXXXX";

/* A fresh path for the fixtures' constructors to leave their mark in (they append to it). */
static void marker_init(void)
{
	int fd = mkstemp(marker);
	cr_assert(fd >= 0);
	close(fd);
	unlink(marker);
	setenv("SMOLVM_FIXTURE_MARKER", marker, 1);
}

/* @p name is refused with @p why (after "PATH: "), no plugin returned, no mark left. */
static void refused(const char *name, const char *why)
{
	struct plugin *p = NULL;
	char want[4200];
	marker_init();
	int r = plugin_open_file(fixture(name), 0, &p, err, sizeof(err));
	cr_assert_eq(r, -ENOEXEC, "%s: %d (%s)", name, r, err);
	cr_assert_null(p);
	snprintf(want, sizeof(want), "%s: %s", path, why);
	assert_has(err, want);
	cr_assert_neq(access(marker, F_OK), 0, "%s: its code ran inside dlopen (%s exists)", name,
	              marker);
}

Test(loader, constructor_refused_before_dlopen)
{
	refused("fixture-ctor",
	        "has 2 constructors in .init_array (only the toolchain's "
	        "frame_dummy may be there): plugin code must not run inside dlopen");
}

Test(loader, lone_constructor_refused_by_name)
{
	refused("fixture-ctor-only", "has a constructor 'fx_constructor' (only the toolchain's "
	                             "frame_dummy may be there)");
}

/* The same, stripped: nothing names it, but it came without crtbeginS.o and crti.o. */
Test(loader, lone_constructor_of_stripped_plugin_refused)
{
	refused("fixture-ctor-stripped", "has a constructor in .init_array without the "
	                                 "toolchain's __do_global_dtors_aux in .fini_array and "
	                                 "_init beside it");
}

Test(loader, init_function_refused)
{
	refused("fixture-init", "has a DT_INIT function at 0x");
	assert_has(err, "not _init at the start of .init");
}

Test(loader, ifunc_resolver_refused)
{
	refused("fixture-ifunc", "has an IFUNC resolver (an IRELATIVE relocation at 0x");
}

Test(loader, one_byte_descriptor_symbol_refused)
{
	refused("fixture-tiny", "its 'smol_plugin' symbol is 1 byte, too small for a plugin "
	                        "descriptor (40 bytes in ABI 1.x)");
}

Test(loader, garbage_name_pointer_refused)
{
	refused("fixture-badname", "descriptor's name (0x10) is not a string inside the plugin's "
	                           "own loaded segments");
}

Test(loader, garbage_ops_pointer_refused)
{
	refused("fixture-badops", "device plugin 'fixture-badops': its ops table (0x18) lies "
	                          "outside the plugin's own loaded segments");
}

Test(loader, ops_pointer_into_other_objects_data_refused)
{
	refused("fixture-libcops", "device plugin 'fixture-libcops': its ops table (0x");
	assert_has(err, ") lies outside the plugin's own loaded segments");
}

/* The machine's `ctl stats` members as JSON text (freed by the caller). */
static char *stats_text(struct machine *m)
{
	struct jsonw w;
	char *text;
	size_t len;
	jsonw_init(&w, 1 << 20);
	jsonw_obj_begin(&w, NULL);
	machine_stats(m, &w);
	jsonw_obj_end(&w);
	cr_assert_eq(jsonw_finish(&w, "", &text, &len), 0);
	return text;
}

Test(loader, op_outside_plugin_code_refused)
{
	refused("fixture-badop", "device plugin 'fixture-badop': its op destroy (0x40) lies "
	                         "outside the plugin's code");
}

Test(loader, stats_op_outside_plugin_code_refused)
{
	refused("fixture-badstats", "device plugin 'fixture-badstats': its op stats (0x40) lies "
	                            "outside the plugin's code");
}

/* Exported methods the core could not call (ABI 1.6): refused naming the method. */
Test(loader, method_letter_refused)
{
	refused("fixture-method-letter", "device plugin 'fixture-method-letter': method 'add': "
	                                 "signature 'i(iq)' has 'q' at character 4");
}

Test(loader, method_many_refused)
{
	refused("fixture-method-many", "device plugin 'fixture-method-many': method 'many': "
	                               "signature 'v(iiiiiiiii)' has more than 8");
}

Test(loader, method_twice_refused)
{
	refused("fixture-method-twice", "device plugin 'fixture-method-twice': method 'add': "
	                                "exported twice (entries 0 and 2)");
}

Test(loader, method_name_refused)
{
	refused("fixture-method-name",
	        "device plugin 'fixture-method-name': method 0: name 'Add-Two' is not");
}

Test(loader, method_fn_refused)
{
	refused("fixture-method-fn", "device plugin 'fixture-method-fn': method 'add': its "
	                             "function (0x40) is not in the plugin's code");
}

Test(loader, method_help_refused)
{
	refused("fixture-method-help", "device plugin 'fixture-method-help': method 'add': its "
	                               "help is more than one line");
}

/* Something else named x.so: opened without blocking, refused at once. */
Test(loader, fifo_refused_without_blocking, .timeout = 10)
{
	char dir[] = "/tmp/test-loader-fifo-XXXXXX", fifo[64];
	struct plugin *p = NULL;
	cr_assert_not_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/x.so", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_lt(plugin_open_file(fifo, 0, &p, err, sizeof(err)), 0);
	unlink(fifo);
	char want[128];
	snprintf(want, sizeof(want), "%s: not a regular file", fifo);
	assert_has(err, want);
	cr_assert_lt(plugin_open_file(dir, 0, &p, err, sizeof(err)), 0);
	assert_has(err, "not a regular file");
	rmdir(dir);
}

/* The checker on the bytes of a good plugin: accepted whole, refused (never a crash) cut
 * short at any length or with any one byte of its headers changed. */
Test(loader, elf_check_of_cut_and_damaged_files)
{
	static uint8_t buf[1 << 20];
	char why[256];
	FILE *f = fopen(fixture("fixture-good"), "rb");
	cr_assert_not_null(f);
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	cr_assert(len > 1024 && len < sizeof(buf));
	cr_assert_eq(plugin_elf_check(buf, len, why, sizeof(why)), 0, "%s", why);
	for (size_t n = 0; n < len; n++)
		cr_assert_eq(plugin_elf_check(buf, n, why, sizeof(why)), -ENOEXEC, "cut at %zu", n);
	cr_assert_eq(plugin_elf_check(NULL, 0, why, sizeof(why)), -ENOEXEC);
	assert_has(why, "not an ELF file");
	for (size_t at = 0; at < 4096 && at < len; at++) {
		uint8_t old = buf[at];
		for (unsigned v = 0; v < 256; v += 17) {
			buf[at] = (uint8_t)v;
			int r = plugin_elf_check(buf, len, why, sizeof(why));
			cr_assert(r == 0 || r == -ENOEXEC);
		}
		buf[at] = old;
	}
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

/* ---- plugins built for ABI 1.2 ------------------------------------------------------- */

/* A 1.2 device: same table size as 1.3's, so only abi_minor tells the core that the slots 1.3
 * calls save, load, pause and resume are not those ops. The fixture holds traps there. */
Test(loader, abi_1_2_plugin_accepted)
{
	struct plugin *p = NULL;
	cr_assert_eq(
	        plugin_open_file(fixture("fixture-abi12"), SMOL_KIND_DEVICE, &p, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(p->desc->abi_major, 1);
	cr_assert_eq(p->desc->abi_minor, 2, "built against the 1.2 header");
	cr_assert_eq(p->desc->struct_size, sizeof(struct smol_plugin_desc));
	const struct smol_device_ops *ops = p->desc->ops;
	cr_assert_eq(ops->struct_size, sizeof(struct smol_device_ops), "1.2 and 1.3 tables match");
	cr_assert(DEV_HAS_OP(ops, pause) && ops->pause && ops->resume && ops->save && ops->load,
	          "the traps are where a 1.3 core would look: reading by struct_size alone fails");
	plugin_close(p);
}

Test(loader, target_minor_2_descriptor_says_1_2)
{
	struct plugin *p = NULL;
	cr_assert_eq(plugin_open_file(fixture("fixture-target12"), SMOL_KIND_DEVICE, &p, err,
	                              sizeof(err)),
	             0, "%s", err);
	cr_assert_eq(p->desc->abi_major, SMOL_ABI_MAJOR);
	cr_assert_eq(p->desc->abi_minor, 2, "SMOL_TARGET_ABI_MINOR=2");
	const struct smol_device_ops *ops = p->desc->ops;
	cr_assert_eq(ops->struct_size, sizeof(struct smol_device_ops));
	cr_assert(!ops->save && !ops->load && !ops->pause && !ops->resume);
	plugin_close(p);
	cr_assert_eq(
	        plugin_open_file(fixture("fixture-good"), SMOL_KIND_DEVICE, &p, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(p->desc->abi_minor, SMOL_ABI_MINOR, "without a target: this header's");
	plugin_close(p);
}

/* stderr (the core's and the plugins' log) into a file the test reads back. */
static char log_path[] = "/tmp/test-loader-log-XXXXXX";

static void capture_stderr(void)
{
	int fd = mkstemp(log_path);
	cr_assert(fd >= 0);
	fflush(stderr);
	cr_assert(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
}

static const char *captured(void)
{
	static char text[16384];
	fflush(stderr);
	FILE *f = fopen(log_path, "r");
	cr_assert(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	return text;
}

/* A machine with one device NAME of plugin TYPE (a fixture, ports at 0x510), configured through
 * the core with stderr captured. */
static void configure_one(const char *name, const char *type, struct cfg **c, struct machine *m)
{
	const char *dir = getenv("FIXTURE_DIR");
	char ini[8192];
	cr_assert_not_null(dir);
	capture_stderr();
	snprintf(ini, sizeof(ini),
	         "[machine]\n"
	         "plugin_path = %s:%s/../../backends/kvm\n"
	         "[boot]\n"
	         "kernel = %s/fixture-good.so\n"
	         "[device %s]\n"
	         "type = %s\n"
	         "port = 0x510\n",
	         dir, dir, dir, name, type);
	cr_assert_eq(cfg_load_string(c, "fixture.ini", ini), 0);
	cr_assert_eq(machine_configure(m, *c, false, false), 0, "%s", captured());
}

/* Through the core: the 1.2 device is created from an INI section (a port mapped, its handler
 * reached through the bus), reset and destroyed, and none of the traps fires. */
Test(loader, abi_1_2_device_runs_through_the_core)
{
	struct cfg *c = NULL;
	struct machine m;
	configure_one("old", "fixture-abi12", &c, &m);
	cr_assert_eq(m.n_devs, 1);
	cr_assert_eq(m.devs[0]->plugin->desc->abi_minor, 2);
	cr_assert_not_null(m.devs[0]->state);
	const struct bus_range *r = bus_find(&m.pio, 0x511);
	cr_assert(r && r->ops && r->ops->read, "the fixture's ports are mapped");
	cr_assert_eq(r->ops->read(r->opaque, 0x511 - r->base, 1), 0xf1, "its handler runs");
	dev_reset_all(&m);
	cr_assert_not(machine_stopping(&m), "a trap fired: %s", captured());
	/* its slot where 1.3 has save() holds a trap: a snapshot is refused naming it, and the
	 * trap is never called (the core goes by the plugin's minor, not by a non-NULL slot) */
	char err[1024] = "";
	cr_assert_eq(snapshot_take(&m, "/nonexistent/x.smolmachine", false, err, sizeof(err)),
	             -ENOTSUP, "%s", err);
	assert_has(err, "fixture-abi12 device 'old' cannot be saved");
	assert_has(err, "ABI 1.2) has no save()");
	cr_assert_not(machine_stopping(&m), "a trap fired: %s", captured());
	/* nor is its slot where 1.6 has stats(): `ctl stats` shows the core's counts only */
	char *text = stats_text(&m);
	assert_has(text, "\"name\":\"old\",\"type\":\"fixture-abi12\",\"mmio_reads\":0");
	cr_assert_null(strstr(text, "counters"), "%s", text);
	free(text);
	cr_assert_not(machine_stopping(&m), "a trap fired: %s", captured());
	machine_destroy(&m);
	cfg_free(c);
	plugin_close_all();
	const char *log = captured();
	assert_has(log, "fixture create called");
	assert_has(log, "fixture destroy called");
	cr_assert_null(strstr(log, "fixture: the core called"), "%s", log);
	unlink(log_path);
}

Test(loader, device_counters_checked)
{
	struct cfg *c = NULL;
	struct machine m;
	configure_one("m", "fixture-methods", &c, &m);
	char *text = stats_text(&m);
	struct json_obj o, devs, d;
	char err[160];
	cr_assert_eq(json_parse_object(text, strlen(text), &o, err, sizeof(err)), 0, "%s", err);
	const struct json_value *v = json_get(&o, "devices");
	cr_assert_eq(json_parse_array(v->raw, v->raw_len, &devs, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(devs.n, 1);
	v = &devs.m[0].v;
	cr_assert_eq(json_parse_object(v->raw, v->raw_len, &d, err, sizeof(err)), 0, "%s", err);
	v = json_get(&d, "counters");
	cr_assert(v && v->type == JSON_OBJECT, "%s", text);
	/* counted by hand, as text */
	size_t n = 0;
	for (size_t k = 0; k < v->raw_len; k++)
		n += v->raw[k] == ':';
	cr_assert_eq(n, 128, "the good name, the dotted one and 126 of c0..c129: %s", v->raw);
	cr_assert(strstr(v->raw, "\"calls\":0,\"q0.ok_name\":7,\"c0\":0,"), "%s", v->raw);
	cr_assert(strstr(v->raw, "\"c125\":125}"), "%s", v->raw);
	cr_assert_null(strstr(v->raw, "Bad-Name"));
	cr_assert_null(strstr(v->raw, "c126"));
	assert_has(captured(),
	           "fixture-methods device 'm': stats() reported a counter name that is "
	           "not [a-z0-9_.]{1,47}: dropped");
	json_obj_free(&d);
	json_obj_free(&devs);
	json_obj_free(&o);
	free(text);
	machine_destroy(&m);
	cfg_free(c);
	plugin_close_all();
	unlink(log_path);
}
