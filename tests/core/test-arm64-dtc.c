/* dtc's checks on the arm64 device tree: `dtc -I dtb -O dts` decompiles the blobs of several
 * machines (1 and 4 vCPUs, with and without an initrd, a PL011 and two virtio-mmio devices)
 * and must print nothing on stderr: dtc checks node names against unit addresses, phandles,
 * interrupt specifiers, clocks. A control blob with a known fault proves a warning is seen.
 * dtc comes from Debian's device-tree-compiler (scripts/deps); without it the test fails. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <libfdt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arm64-fdt-fixture.h"

extern char **environ;

static char dir[4096];

static void setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/test-arm64-dtc.XXXXXX", t && *t ? t : "/tmp");
	cr_assert(mkdtemp(dir), "mkdtemp %s: %m", dir);
}

static void teardown(void)
{
	static const char *const files[] = { "in.dtb", "out.dts", "err" };
	char p[4200];
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert(f, "open %s: %m", path);
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

/* Runs dtc on @p blob; returns what it wrote on stderr (empty when it had nothing to say) and
 * leaves its .dts in @p dts. */
static const char *dtc(const void *blob, size_t len, char *dts, size_t dts_len)
{
	char in[4200], out[4200], errp[4200];
	snprintf(in, sizeof(in), "%s/in.dtb", dir);
	snprintf(out, sizeof(out), "%s/out.dts", dir);
	snprintf(errp, sizeof(errp), "%s/err", dir);
	FILE *f = fopen(in, "w");
	cr_assert(f && fwrite(blob, 1, len, f) == len && fclose(f) == 0, "write %s: %m", in);

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char *argv[] = { "dtc", "-I", "dtb", "-O", "dts", "-o", out, in, NULL };
	pid_t pid;
	int rc = posix_spawnp(&pid, "dtc", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(rc, 0,
	             "cannot run dtc: %s (install Debian's device-tree-compiler: scripts/deps)",
	             strerror(rc));
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	const char *e = slurp(errp);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dtc failed (status 0x%x): %s", st, e);
	static char errbuf[1 << 16];
	snprintf(errbuf, sizeof(errbuf), "%s", e);
	snprintf(dts, dts_len, "%s", slurp(out));
	return errbuf;
}

static uint8_t blob[64 * 1024];
static char dts[1 << 16];

TestSuite(arm64_dtc, .init = setup, .fini = teardown);

Test(arm64_dtc, machines_without_warnings)
{
	static const struct {
		unsigned cpus;
		bool initrd;
	} machines[] = { { 1, false }, { 1, true }, { 4, false }, { 4, true }, { 20, true } };
	for (unsigned i = 0; i < sizeof(machines) / sizeof(machines[0]); i++) {
		struct virt v;
		char err[256];
		size_t len;
		virt_init(&v, machines[i].cpus, machines[i].initrd);
		cr_assert_eq(a64_dt_build(&v.m, blob, sizeof(blob), &len, err, sizeof(err)), 0,
		             "%s", err);
		const char *warnings = dtc(blob, len, dts, sizeof(dts));
		cr_assert_str_empty(warnings, "%u vCPUs%s: dtc says:\n%s", machines[i].cpus,
		                    machines[i].initrd ? " with initrd" : "", warnings);
		/* what dtc read is the machine */
		/* dtc writes a string list as "a\0b" (1.6) or "a", "b" */
		cr_assert(strstr(dts, "compatible = \"arm,pl011\\0arm,primecell\";") ||
		                  strstr(dts, "compatible = \"arm,pl011\", \"arm,primecell\";"),
		          "%s", dts);
		cr_assert(strstr(dts, "clock-names = \"uartclk\\0apb_pclk\";") ||
		                  strstr(dts, "clock-names = \"uartclk\", \"apb_pclk\";"),
		          "%s", dts);
		cr_assert(strstr(dts, "stdout-path = \"/pl011@9000000\";"), "%s", dts);
		cr_assert_eq(strstr(dts, "linux,initrd-start") != NULL, machines[i].initrd);
		char cpu[32];
		snprintf(cpu, sizeof(cpu), "cpu@%x {", a64_dt_mpidr(machines[i].cpus - 1));
		cr_assert(strstr(dts, cpu), "no %s in\n%s", cpu, dts);
	}
}

/* The control: a node with a unit address but no reg, and interrupts of 2 cells for a parent of
 * 3; dtc must warn about both, or the test above proves nothing. */
Test(arm64_dtc, control_blob_warns)
{
	fdt32_t irq[2] = { cpu_to_fdt32(0), cpu_to_fdt32(5) };

	cr_assert_eq(fdt_create(blob, sizeof(blob)), 0);
	cr_assert_eq(fdt_finish_reservemap(blob), 0);
	cr_assert_eq(fdt_begin_node(blob, ""), 0);
	cr_assert_eq(fdt_property_u32(blob, "#address-cells", 2), 0);
	cr_assert_eq(fdt_property_u32(blob, "#size-cells", 2), 0);
	cr_assert_eq(fdt_property_u32(blob, "interrupt-parent", 1), 0);
	cr_assert_eq(fdt_begin_node(blob, "intc"), 0);
	cr_assert_eq(fdt_property_u32(blob, "#interrupt-cells", 3), 0);
	cr_assert_eq(fdt_property_u32(blob, "#address-cells", 0), 0);
	cr_assert_eq(fdt_property(blob, "interrupt-controller", "", 0), 0);
	cr_assert_eq(fdt_property_u32(blob, "phandle", 1), 0);
	cr_assert_eq(fdt_end_node(blob), 0);
	cr_assert_eq(fdt_begin_node(blob, "serial@1000"), 0);
	cr_assert_eq(fdt_property(blob, "interrupts", irq, sizeof(irq)), 0);
	cr_assert_eq(fdt_end_node(blob), 0);
	cr_assert_eq(fdt_end_node(blob), 0);
	cr_assert_eq(fdt_finish(blob), 0);
	const char *warnings = dtc(blob, fdt_totalsize(blob), dts, sizeof(dts));
	cr_assert(strstr(warnings, "Warning (unit_address_vs_reg): /serial@1000"),
	          "dtc did not warn about serial@1000 without reg: %s", warnings);
	cr_assert(strstr(warnings, "Warning (interrupts_property): /serial@1000"),
	          "dtc did not warn about 2 interrupt cells for 3: %s", warnings);
}
