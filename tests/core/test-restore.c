/* `smolvm run FILE.smolmachine` refusals that come before any VM exists, through the real
 * executable (SMOLVM): snapshots written with the core's own writer (core/snapfile.h) but for
 * another arch, another backend, another RAM size, or with a machine description that does
 * not parse. Each must exit 2 with a message that says what is wrong. (Refusals that need a VM
 * -- CPU features, device states -- are in the kvm suite: tests/kvm/snap-test.) */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "snapfile.h"

static char dir[] = "/dev/shm/smolvm-restore.XXXXXX";
static char path[256], errpath[256];

static void setup(void)
{
	if (!mkdtemp(dir)) {
		strcpy(dir, "/tmp/smolvm-restore.XXXXXX");
		cr_assert_not_null(mkdtemp(dir));
	}
	snprintf(path, sizeof(path), "%s/t.smolmachine", dir);
	snprintf(errpath, sizeof(errpath), "%s/err", dir);
}

static void teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* A snapshot of a one-vCPU machine with no devices, described by @p ini, as @p info says. */
static void write_snapshot(struct snap_info *info, const char *machine_text)
{
	struct snap_writer *w;
	char err[512];
	static uint8_t ram[1 << 21];
	cr_assert_eq(snapfile_create(&w, path, info, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(snapfile_add(w, SNAP_SEC_MACHINE, "", machine_text, strlen(machine_text), err,
	                          sizeof(err)),
	             0, "%s", err);
	uint8_t core[4] = { 1, 0, 0, 0 };
	cr_assert_eq(snapfile_add(w, SNAP_SEC_CORE, "", core, sizeof(core), err, sizeof(err)), 0);
	cr_assert_eq(snapfile_add_memory(w, ram, info->ram_size, -1, err, sizeof(err)), 0, "%s",
	             err);
	cr_assert_eq(snapfile_commit(w, err, sizeof(err)), 0, "%s", err);
}

static char *machine_text(const char *memory)
{
	struct cfg *c = NULL;
	char ini[256];
	snprintf(ini, sizeof(ini), "[machine]\nmemory = %s\n[boot]\nkernel = /nonexistent\n",
	         memory);
	cr_assert_eq(cfg_load_string(&c, "/srv/app.ini", ini), 0);
	char *t = cfg_serialize(c);
	cfg_free(c);
	return t;
}

static struct snap_info base_info(void)
{
	struct snap_info i;
	memset(&i, 0, sizeof(i));
	i.format_version = SNAPFILE_VERSION;
	i.arch = SMOL_ARCH_X86_64;
	snprintf(i.smolvm_version, sizeof(i.smolvm_version), "test");
	snprintf(i.backend, sizeof(i.backend), "kvm");
	i.cpu.struct_size = sizeof(i.cpu);
	i.ram_size = 2u << 20;
	return i;
}

/* The snapshot of a machine with @p memory of RAM, its header as @p i says. */
static void snapshot_with(struct snap_info i, const char *memory)
{
	char *t = machine_text(memory);
	write_snapshot(&i, t);
	free(t);
}

/* Runs `smolvm run FILE` and returns its status; its stderr is in errpath. */
static int run_restore(const char *extra)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' run %s '%s' > /dev/null 2> '%s' < /dev/null",
	         getenv("SMOLVM"), extra, path, errpath);
	int st = system(cmd);
	cr_assert(WIFEXITED(st), "smolvm did not exit normally");
	return WEXITSTATUS(st);
}

static void assert_stderr_has(const char *needle)
{
	char buf[4096] = "";
	FILE *f = fopen(errpath, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	cr_assert(strstr(buf, needle), "stderr lacks '%s':\n%s", needle, buf);
}

TestSuite(restore, .init = setup, .fini = teardown);

Test(restore, another_arch)
{
	struct snap_info i = base_info();
	i.arch = SMOL_ARCH_AARCH64;
	snapshot_with(i, "2M");
	cr_assert_eq(run_restore(""), 2);
	assert_stderr_has("the snapshot's machine is not an x86_64 machine (arch tag 2)");
}

Test(restore, another_backend)
{
	struct snap_info i = base_info();
	snprintf(i.backend, sizeof(i.backend), "hvf");
	snapshot_with(i, "2M");
	cr_assert_eq(run_restore(""), 2);
	assert_stderr_has("saved by the 'hvf' backend; this machine uses 'kvm'");
}

Test(restore, ram_size_differs_from_the_description)
{
	struct snap_info i = base_info();
	snapshot_with(i, "4M");
	cr_assert_eq(run_restore(""), 2);
	assert_stderr_has("the snapshot holds 2097152 bytes of RAM; the machine has 4194304");
}

Test(restore, machine_description_that_does_not_parse)
{
	struct snap_info i = base_info();
	write_snapshot(&i, "[machine]\nmemory = 2M\n");
	cr_assert_eq(run_restore(""), 2);
	assert_stderr_has("the machine description is not 'smolvm-machine 1'");
}

Test(restore, set_of_a_machine_key)
{
	struct snap_info i = base_info();
	snapshot_with(i, "2M");
	cr_assert_eq(run_restore("--set machine.vcpus=2"), 2);
	assert_stderr_has("a restore may only change a device's input, output or path");
}

Test(restore, check_accepts_the_same_file)
{
	struct snap_info i = base_info();
	snapshot_with(i, "2M");
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' check '%s' > '%s' 2>&1", getenv("SMOLVM"), path, errpath);
	cr_assert_eq(system(cmd), 0);
	assert_stderr_has(": ok");
}
