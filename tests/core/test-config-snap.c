/* Unit tests of machine descriptions as text for snapshots (core/config-snap.c): every section
 * and key comes back byte for byte with its line, relative paths resolve where they did, and
 * malformed text is refused without a crash. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static struct cfg *round_trip(const struct cfg *c)
{
	char err[256] = "";
	char *text = cfg_serialize(c);
	cr_assert_not_null(text);
	struct cfg *back = NULL;
	cr_assert_eq(cfg_deserialize(&back, text, strlen(text), err, sizeof(err)), 0, "%s\n%s", err,
	             text);
	free(text);
	return back;
}

Test(config_snap, every_section_key_and_line_comes_back)
{
	struct cfg *c = NULL;
	cr_assert_eq(cfg_load_string(&c, "/srv/vm/t.ini",
	                             "[machine]\nmemory = 256M\nvcpus = 2\n"
	                             "[boot]\nkernel = k\ncmdline = a=1 b=2\n"
	                             "[snapshot]\npath = app.smolmachine\nthen = continue\n"
	                             "[device com1]\ntype = uart-16550\noutput = log.txt\n"
	                             "[device disk0]\ntype = virtio-blk\npath = d.img\n"),
	             0);
	cr_assert_eq(cfg_override(c, "com1.input=in.txt"), 0);
	struct cfg *b = round_trip(c);
	cr_assert_str_eq(b->path, "/srv/vm/t.ini");
	cr_assert_eq(b->n_sec, c->n_sec);
	for (size_t i = 0; i < c->n_sec; i++) {
		const struct cfg_section *x = &c->sec[i], *y = &b->sec[i];
		cr_assert_eq(x->kind, y->kind);
		cr_assert_str_eq(x->name, y->name);
		cr_assert_eq(x->line, y->line);
		cr_assert_eq(x->n_kv, y->n_kv, "section %s", x->name);
		for (size_t j = 0; j < x->n_kv; j++) {
			cr_assert_str_eq(x->kv[j].key, y->kv[j].key);
			cr_assert_str_eq(x->kv[j].value, y->kv[j].value);
			cr_assert_eq(x->kv[j].line, y->kv[j].line, "%s", x->kv[j].key);
		}
	}
	cr_assert_not_null(cfg_section(b, CFG_SNAPSHOT, NULL));
	cfg_free(c);
	cfg_free(b);
}

/* A device may repeat a key (virtio-net's forward, read with cfg_str_at): the description of
 * such a machine comes back from its snapshot with every occurrence, in order. Found by
 * fuzz/fuzz-config: the restore refused it as malformed. */
Test(config_snap, a_device_key_given_twice_comes_back)
{
	struct cfg *c = NULL;
	cr_assert_eq(cfg_load_string(&c, "/srv/vm/t.ini",
	                             "[boot]\nkernel = k\n"
	                             "[device net0]\ntype = virtio-net\nbackend = passt\n"
	                             "forward = tcp:8080:80\nforward = udp:5353:53\n"),
	             0);
	struct cfg *b = round_trip(c);
	struct cfg_section *s = cfg_section(b, CFG_DEVICE, "net0");
	cr_assert_not_null(s);
	struct cfg_kv *one = cfg_get_at(s, "forward", 0), *two = cfg_get_at(s, "forward", 1);
	cr_assert(one && two);
	cr_assert_str_eq(one->value, "tcp:8080:80");
	cr_assert_str_eq(two->value, "udp:5353:53");
	cr_assert_null(cfg_get_at(s, "forward", 2));
	/* the other sections still hold a key once */
	char err[256];
	struct cfg *x = NULL;
	const char *dup = "smolvm-machine 1\npath\tt.ini\ndir\t/srv\ncwd\t/srv\n"
	                  "section\tboot\tboot\t1\nkey\tkernel\tk\t2\nkey\tkernel\tj\t3\n";
	cr_assert_eq(cfg_deserialize(&x, dup, strlen(dup), err, sizeof(err)), -EINVAL);
	cfg_free(c);
	cfg_free(b);
}

Test(config_snap, values_come_back_byte_for_byte)
{
	static const char *values[] = {
		"semi ; colon # hash",
		"tab\there",
		"new\nline",
		"back\\slash \\t not a tab",
		"\x01\x1f\x7f controls",
		"utf-8 \xc3\xa9\xe2\x82\xac",
		" leading and trailing ",
		"=equals=",
		"",
	};
	struct cfg *c = cfg_new_empty("t.ini", "/srv");
	struct cfg_section *s = cfg_add_section(c, CFG_BOOT, "boot", 3);
	char key[16];
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		cfg_add_kv(s, key, values[i], (int)i + 4);
	}
	struct cfg *b = round_trip(c);
	struct cfg_section *t = cfg_section(b, CFG_BOOT, NULL);
	cr_assert_not_null(t);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		struct cfg_kv *kv = cfg_get(t, key);
		cr_assert_not_null(kv, "%s", key);
		cr_assert_str_eq(kv->value, values[i], "%s", key);
	}
	cfg_free(c);
	cfg_free(b);
}

Test(config_snap, relative_paths_resolve_where_they_did)
{
	struct cfg *c = NULL;
	cr_assert_eq(cfg_load_string(&c, "/srv/vm/t.ini",
	                             "[device d]\ntype = virtio-blk\n"
	                             "path = disk.img\n"),
	             0);
	cr_assert_eq(cfg_override(c, "d.serial=rel/x"), 0);
	struct cfg *b = round_trip(c);
	struct cfg_section *s = cfg_section(b, CFG_DEVICE, "d");
	char *p = cfg_resolve_kv_path(b, cfg_get(s, "path"));
	cr_assert_str_eq(p, "/srv/vm/disk.img", "an INI value: the INI's folder");
	free(p);
	struct cfg_kv *kv = cfg_get(s, "serial");
	cr_assert_eq(kv->line, 0);
	char cwd[4096];
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	p = cfg_resolve_kv_path(b, kv);
	char want[4200];
	snprintf(want, sizeof(want), "%s/rel/x", cwd);
	cr_assert_str_eq(p, want, "a --set of the saved run: that run's folder");
	free(p);
	/* a --set at restore time replaces it and is relative to the restoring process */
	cr_assert_eq(cfg_override(b, "d.serial=other"), 0);
	p = cfg_resolve_kv_path(b, cfg_get(s, "serial"));
	cr_assert_str_eq(p, "other");
	free(p);
	cfg_free(c);
	cfg_free(b);
}

Test(config_snap, malformed_text_is_refused)
{
	static const char *bad[] = {
		"",
		"not the magic\n",
		"smolvm-machine 2\npath\tx\ndir\t/\ncwd\t/\nsection\tmachine\tmachine\t1\n",
		"smolvm-machine 1\nsection\tmachine\tmachine\t1\n", /* no path/dir/cwd */
		"smolvm-machine 1\npath\tx\ndir\t/\ncwd\t/\nsection\tmachine\tmachine\t-1\n",
		"smolvm-machine 1\npath\tx\ndir\t/\ncwd\t/\nsection\tnope\tx\t1\n",
		"smolvm-machine 1\npath\tx\ndir\t/\ncwd\t/\nkey\tk\tv\t1\n", /* key before a section
		                                                              */
		"smolvm-machine 1\npath\tx\ndir\t/\ncwd\t/\nsection\tboot\tboot\t1\nkey\tk\tv\t1\n"
		"key\tk\tw\t2\n", /* duplicate key */
		"smolvm-machine 1\npath\tx\ndir\t/\ncwd\t/\nsection\tdevice\td\t1\n"
		"section\tdevice\td\t2\n", /* duplicate device */
		"smolvm-machine "
		"1\npath\tx\ndir\t/\ncwd\t/\nsection\tboot\tboot\t1\nkey\tk\t\\q\t1\n",
		"smolvm-machine "
		"1\npath\tx\ndir\t/\ncwd\t/\nsection\tboot\tboot\t1\nkey\tk\t\\x00\t1\n",
		"smolvm-machine "
		"1\npath\tx\ndir\t/\ncwd\t/\nsection\tboot\tboot\t1\nkey\tk\tv\t1\textra\n",
		"smolvm-machine 1\npath\tx\ndir\t/\ncwd\t/\n", /* no sections */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cfg *c = NULL;
		char err[256] = "";
		cr_assert_eq(cfg_deserialize(&c, bad[i], strlen(bad[i]), err, sizeof(err)), -EINVAL,
		             "case %zu accepted", i);
		cr_assert_null(c);
		cr_assert(err[0], "case %zu: no message", i);
	}
	/* a NUL inside the text */
	struct cfg *c = NULL;
	char err[256];
	cr_assert_eq(cfg_deserialize(&c, "smolvm-machine 1\0x", 18, err, sizeof(err)), -EINVAL);
}

Test(config_snap, random_bytes_never_crash)
{
	unsigned seed = 12345;
	char buf[256];
	const char *base = "smolvm-machine 1\npath\tx\ndir\t/\ncwd\t/\nsection\tboot\tboot\t1\n";
	for (int round = 0; round < 20000; round++) {
		size_t n = strlen(base);
		memcpy(buf, base, n);
		size_t extra = (size_t)(rand_r(&seed) % 100);
		for (size_t i = 0; i < extra; i++) {
			static const char alphabet[] = "\t\n\\xkeysection0123456789abcdef";
			buf[n++] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
		}
		/* and a few bytes of the prefix damaged */
		for (int k = 0; k < 2; k++)
			buf[rand_r(&seed) % n] = (char)(rand_r(&seed) % 255 + 1);
		struct cfg *c = NULL;
		char err[256];
		if (cfg_deserialize(&c, buf, n, err, sizeof(err)) == 0)
			cfg_free(c);
	}
}
