/* Unit tests of the INI parser and value parsers (core/config.c). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static struct cfg *parse_ok(const char *text)
{
	struct cfg *c = NULL;
	cr_assert_eq(cfg_load_string(&c, "t.ini", text), 0, "parse failed for:\n%s", text);
	return c;
}

/* Parses text that must fail and returns what went to stderr. */
static char stderr_buf[4096];
static const char *parse_bad(const char *text)
{
	struct cfg *c = NULL;
	fflush(stderr);
	cr_assert_eq(cfg_load_string(&c, "t.ini", text), -EINVAL, "parse succeeded for:\n%s", text);
	fflush(stderr);
	FILE *f = cr_get_redirected_stderr();
	size_t n = fread(stderr_buf, 1, sizeof(stderr_buf) - 1, f);
	stderr_buf[n] = 0;
	return stderr_buf;
}

#define assert_has(hay, needle)                                                                    \
	cr_assert(strstr((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

TestSuite(config, .init = cr_redirect_stderr);

Test(config, sections_keys_and_lines)
{
	struct cfg *c = parse_ok("; comment\n"
	                         "[machine]\n"
	                         "memory = 64M   ; inline comment\n"
	                         "\n"
	                         "[device com1]\n"
	                         "type = uart-16550\n"
	                         "[boot]\n"
	                         "cmdline = a b\n"
	                         "  c d\n");
	struct cfg_section *m = cfg_section(c, CFG_MACHINE, NULL);
	cr_assert_not_null(m);
	cr_assert_eq(m->line, 2);
	struct cfg_kv *kv = cfg_get(m, "memory");
	cr_assert_str_eq(kv->value, "64M");
	cr_assert_eq(kv->line, 3);
	cr_assert(kv->used);
	struct cfg_section *d = cfg_section(c, CFG_DEVICE, "com1");
	cr_assert_not_null(d);
	cr_assert_eq(d->line, 5);
	cr_assert_str_eq(cfg_get(d, "type")->value, "uart-16550");
	/* an indented line continues the value */
	cr_assert_str_eq(cfg_get(cfg_section(c, CFG_BOOT, NULL), "cmdline")->value, "a b c d");
	cr_assert_null(cfg_section(c, CFG_DEVICE, "com2"));
	cfg_free(c);
}

Test(config, unknown_section)
{
	assert_has(parse_bad("[machine]\n[bogus]\nx = 1\n"), "t.ini:2: unknown section [bogus]");
}

Test(config, missing_value)
{
	assert_has(parse_bad("[machine]\nmemory =\n"), "t.ini:2: missing value for 'memory'");
}

Test(config, missing_key_name)
{
	assert_has(parse_bad("[machine]\n= 512M\n"), "t.ini:2: missing key name before '='");
}

Test(config, duplicate_key_and_sections)
{
	assert_has(parse_bad("[machine]\nvcpus = 1\nvcpus = 2\n"),
	           "t.ini:3: duplicate key 'vcpus' (first at line 2)");
}

Test(config, duplicate_machine_section)
{
	assert_has(parse_bad("[machine]\n[machine]\n"), "t.ini:2: duplicate section [machine]");
}

Test(config, duplicate_device)
{
	assert_has(parse_bad("[device a]\ntype = x\n[device a]\ntype = y\n"),
	           "t.ini:3: duplicate device name 'a' (first at line 1)");
}

Test(config, device_names)
{
	assert_has(parse_bad("[device]\n"), "t.ini:1: [device] needs a name");
	assert_has(parse_bad("[device a/b]\n"), "t.ini:1: bad device name 'a/b'");
}

Test(config, syntax_error)
{
	assert_has(parse_bad("[machine]\nnot a key value pair\n"), "t.ini:2: syntax error");
}

Test(config, key_outside_section)
{
	assert_has(parse_bad("memory = 1G\n"), "t.ini:1: key 'memory' outside any section");
}

Test(config, long_line)
{
	char text[600];
	memset(text, 'a', sizeof(text));
	memcpy(text, "[boot]\ncmdline = ", 17);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = 0;
	assert_has(parse_bad(text), "t.ini:2: line longer than");
}

Test(config, every_error_is_reported)
{
	const char *out = parse_bad("[machine]\nmemory =\n[nope]\n[device x]\n[device x]\n");
	assert_has(out, "t.ini:2:");
	assert_has(out, "t.ini:3:");
	assert_has(out, "t.ini:5:");
}

Test(config, overrides)
{
	struct cfg *c = parse_ok("[machine]\nmemory = 64M\n[device com1]\ntype = u\n");
	cr_assert_eq(cfg_override(c, "machine.memory=1G"), 0);
	cr_assert_str_eq(cfg_get(cfg_section(c, CFG_MACHINE, NULL), "memory")->value, "1G");
	cr_assert_eq(cfg_override(c, "device.com1.port=0x2f8"), 0);
	cr_assert_eq(cfg_override(c, "com1.irq=3"), 0);
	struct cfg_section *d = cfg_section(c, CFG_DEVICE, "com1");
	cr_assert_str_eq(cfg_get(d, "port")->value, "0x2f8");
	struct cfg_kv *irq = cfg_get(d, "irq");
	cr_assert_str_eq(irq->value, "3");
	cr_assert_eq(irq->line, 0);
	cr_assert_eq(cfg_override(c, "boot.cmdline=x=y z"), 0); /* value may hold '=' */
	cr_assert_str_eq(cfg_get(cfg_section(c, CFG_BOOT, NULL), "cmdline")->value, "x=y z");
	cr_assert_eq(cfg_override(c, "nodot=1"), -EINVAL);
	cr_assert_eq(cfg_override(c, "machine.memory="), -EINVAL);
	cr_assert_eq(cfg_override(c, "com9.irq=3"), -EINVAL);
	cfg_free(c);
}

Test(config, override_adds_a_device_only_by_its_type)
{
	struct cfg *c = parse_ok("[machine]\nmemory = 64M\n");
	cr_assert_eq(cfg_override(c, "device.disk0.path=a.img"), -EINVAL, "no device yet");
	cr_assert_eq(cfg_override(c, "disk0.type=virtio-blk"), -EINVAL,
	             "only device.NAME.type adds");
	cr_assert_null(cfg_section(c, CFG_DEVICE, "disk0"));
	cr_assert_eq(cfg_override(c, "device.disk0.type=virtio-blk"), 0);
	cr_assert_eq(cfg_override(c, "device.disk0.path=a.img"), 0);
	struct cfg_section *d = cfg_section(c, CFG_DEVICE, "disk0");
	cr_assert_not_null(d);
	cr_assert_str_eq(cfg_get(d, "type")->value, "virtio-blk");
	cr_assert_str_eq(cfg_get(d, "path")->value, "a.img");
	/* a device added on the command line gets a name as good as the INI's */
	cr_assert_eq(cfg_override(c, "device.a b.type=virtio-blk"), -EINVAL);
	cr_assert_eq(cfg_override(c, "device.x\033[2J.type=virtio-blk"), -EINVAL);
	cr_assert_null(cfg_section(c, CFG_DEVICE, "a b"));
	cfg_free(c);
}

Test(config, override_paths_are_relative_to_cwd)
{
	struct cfg *c = parse_ok("[boot]\nkernel = k\n");
	free(c->dir);
	c->dir = strdup("/etc/machines");
	struct cfg_kv *kv = cfg_get(cfg_section(c, CFG_BOOT, NULL), "kernel");
	char *p = cfg_resolve_kv_path(c, kv);
	cr_assert_str_eq(p, "/etc/machines/k");
	free(p);
	cr_assert_eq(cfg_override(c, "boot.kernel=build/k"), 0);
	p = cfg_resolve_kv_path(c, kv);
	cr_assert_str_eq(p, "build/k");
	free(p);
	cfg_free(c);
}

Test(config, parse_u64)
{
	uint64_t v;
	cr_assert_eq(cfg_parse_u64("42", &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(cfg_parse_u64("0x3F8", &v), 0);
	cr_assert_eq(v, 0x3f8);
	cr_assert_eq(cfg_parse_u64("0b101", &v), 0);
	cr_assert_eq(v, 5);
	cr_assert_eq(cfg_parse_u64("0o17", &v), 0);
	cr_assert_eq(v, 15);
	cr_assert_eq(cfg_parse_u64("18446744073709551615", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(cfg_parse_u64("18446744073709551616", &v), -EINVAL);
	cr_assert_eq(cfg_parse_u64("0x", &v), -EINVAL);
	cr_assert_eq(cfg_parse_u64("12a", &v), -EINVAL);
	cr_assert_eq(cfg_parse_u64("-1", &v), -EINVAL);
	cr_assert_eq(cfg_parse_u64("", &v), -EINVAL);
	cr_assert_eq(cfg_parse_u64("0b2", &v), -EINVAL);
	/* separators go between digits only: "_" alone is not 0 */
	cr_assert_eq(cfg_parse_u64("1_000", &v), 0);
	cr_assert_eq(v, 1000);
	cr_assert_eq(cfg_parse_u64("_", &v), -EINVAL);
	cr_assert_eq(cfg_parse_u64("0x_", &v), -EINVAL);
	cr_assert_eq(cfg_parse_u64("_1", &v), -EINVAL);
}

Test(config, parse_size)
{
	uint64_t v;
	cr_assert_eq(cfg_parse_size("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(cfg_parse_size("64K", &v), 0);
	cr_assert_eq(v, 64 << 10);
	cr_assert_eq(cfg_parse_size("512M", &v), 0);
	cr_assert_eq(v, 512ull << 20);
	cr_assert_eq(cfg_parse_size("2G", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(cfg_parse_size("1T", &v), 0);
	cr_assert_eq(v, 1ull << 40);
	cr_assert_eq(cfg_parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(cfg_parse_size("0x100000", &v), 0);
	cr_assert_eq(v, 0x100000);
	cr_assert_eq(cfg_parse_size("12X", &v), -EINVAL);
	cr_assert_eq(cfg_parse_size("M", &v), -EINVAL);
	cr_assert_eq(cfg_parse_size("99999999999999T", &v), -EINVAL); /* overflows */
}

Test(config, parse_bool)
{
	int b;
	const char *yes[] = { "on", "yes", "true", "1", "ON" };
	const char *no[] = { "off", "no", "false", "0", "False" };
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(cfg_parse_bool(yes[i], &b), 0);
		cr_assert_eq(b, 1);
		cr_assert_eq(cfg_parse_bool(no[i], &b), 0);
		cr_assert_eq(b, 0);
	}
	cr_assert_eq(cfg_parse_bool("maybe", &b), -EINVAL);
}

Test(config, unknown_keys_reported)
{
	struct cfg *c = parse_ok("[machine]\nmemory = 1G\nfoo = 1\n");
	struct cfg_section *s = cfg_section(c, CFG_MACHINE, NULL);
	cfg_get(s, "memory");
	cr_assert_eq(cfg_report_unused(c, s, "[machine]"), 1);
	fflush(stderr);
	FILE *f = cr_get_redirected_stderr();
	size_t n = fread(stderr_buf, 1, sizeof(stderr_buf) - 1, f);
	stderr_buf[n] = 0;
	assert_has(stderr_buf, "t.ini:3: unknown key 'foo' for [machine]");
	cfg_free(c);
}

/* ---- files: what the reader refuses ------------------------------------------------------ */

/* Writes @len bytes to a fresh file and parses it with cfg_load(): its status and stderr. */
static int load_bytes(const char *bytes, size_t len, const char **err)
{
	char path[] = "/tmp/smolvm-test-config.XXXXXX";
	struct cfg *c = NULL;
	int fd = mkstemp(path), r;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, bytes, len), (ssize_t)len);
	close(fd);
	fflush(stderr);
	r = cfg_load(&c, path);
	fflush(stderr);
	unlink(path);
	size_t n = fread(stderr_buf, 1, sizeof(stderr_buf) - 1, cr_get_redirected_stderr());
	stderr_buf[n] = 0;
	*err = stderr_buf;
	if (r == 0)
		cfg_free(c);
	return r;
}

Test(config, nul_byte_is_an_error_not_the_end_of_the_value)
{
	static const char text[] = "[boot]\ncmdline = quiet\0 init=/bin/evil\n";
	const char *err;

	cr_assert_eq(load_bytes(text, sizeof(text) - 1, &err), -EINVAL);
	assert_has(err, ":2: a NUL byte in the line");
}

Test(config, long_line_with_a_nul_smuggles_no_key)
{
	/* before: the NUL hid the length, and what followed inih's buffer became a line */
	char text[700];
	const char *err;
	size_t n = 0;

	/* inih's 200-byte buffer: 199 characters end right before "kernel" */
	n += (size_t)sprintf(text, "[boot]\ncmdline = quiet");
	text[n++] = 0;
	memset(text + n, 'a', 183);
	n += 183;
	n += (size_t)sprintf(text + n, "kernel = /evil\n");
	cr_assert_eq(load_bytes(text, n, &err), -EINVAL);
	cr_assert(!strstr(err, "kernel"), "a key was read from the rest of the line:\n%s", err);
}

Test(config, utf8_byte_order_mark_is_skipped)
{
	static const char text[] = "\xef\xbb\xbf[machine]\nmemory = 64M\n";
	struct cfg *c = NULL;
	char path[] = "/tmp/smolvm-test-config.XXXXXX";
	int fd = mkstemp(path);

	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	cr_assert_eq(cfg_load(&c, path), 0);
	unlink(path);
	struct cfg_section *s = cfg_section(c, CFG_MACHINE, NULL);
	cr_assert(s && cfg_get(s, "memory"), "the first section was lost to the BOM");
	cfg_free(c);
}

Test(config, a_directory_or_fifo_is_not_an_ini)
{
	char dir[] = "/tmp/smolvm-test-config.XXXXXX", fifo[64];
	const char *err;
	struct cfg *c = NULL;

	cr_assert(mkdtemp(dir));
	fflush(stderr);
	cr_assert_eq(cfg_load(&c, dir), -EINVAL);
	snprintf(fifo, sizeof(fifo), "%s/f.ini", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	/* a FIFO without a writer: an error at once, not a wait */
	cr_assert_eq(cfg_load(&c, fifo), -EINVAL);
	fflush(stderr);
	size_t n = fread(stderr_buf, 1, sizeof(stderr_buf) - 1, cr_get_redirected_stderr());
	stderr_buf[n] = 0;
	err = stderr_buf;
	assert_has(err, "a directory, not a regular file");
	assert_has(err, "a FIFO, not a regular file");
	unlink(fifo);
	rmdir(dir);
}

Test(config, no_terminal_escape_in_messages)
{
	const char *err = parse_bad("[machine]\nmemory = 1G\n[bo\033]0;pwned\007gus]\n");
	assert_has(err, "unknown section [bo?]");
	cr_assert(!strchr(err, '\033') && !strchr(err, '\007'), "raw escape in:\n%s", err);
}

/* Device sections are found by name through an index that grows: every one of many, the
 * right one, and no phantom (60,000 devices used to take 30 s: a scan per device). */
Test(config, many_devices_found_by_name)
{
	enum { N = 5000 };
	size_t len = 0, cap = (size_t)N * 48;
	char *text = malloc(cap), name[32];

	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(text + len, cap - len, "[device d%d]\ntype = t%d\n", i, i);
	struct cfg *c = parse_ok(text);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		struct cfg_section *s = cfg_section(c, CFG_DEVICE, name);
		cr_assert(s && strcmp(s->name, name) == 0, "device %s not found", name);
		snprintf(name, sizeof(name), "t%d", i);
		cr_assert_str_eq(cfg_get(s, "type")->value, name);
	}
	cr_assert_null(cfg_section(c, CFG_DEVICE, "d5000"));
	cr_assert_null(cfg_section(c, CFG_DEVICE, "d"));
	/* a duplicate is still found and refused */
	assert_has(parse_bad("[device a]\ntype = x\n[device b]\ntype = y\n[device a]\ntype = z\n"),
	           "duplicate device name 'a' (first at line 1)");
	cfg_free(c);
	free(text);
}
