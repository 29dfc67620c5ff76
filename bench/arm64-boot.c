/*
 * smolvm-bench-arm64: `make bench`'s arm64 table, built by the aarch64 build (make build-arm64)
 * and run in the arm64 nest (or on an arm64 host with KVM). Debian's stock arm64 kernel and the
 * busybox test initramfs (BUILD/linux-guest, scripts/linux-guest-arm64), 1 vCPU, 256 MiB, under
 * two runners, interleaved, N times each:
 *   qemu-virt  QEMU's `virt` machine (GICv3, KVM, -cpu host), its PL011 on stdio: the arm64
 *              QEMU 10 that bench/arm64-qemu unpacks, run through the dynamic loader with its
 *              libraries
 *   smolvm     BUILD/smolvm run, a PL011 at QEMU virt's address
 * Measured: the time from fork to the init's first line ("smolvm-guest: init started") and the
 * peak RSS; the init then powers off. Prints the table and writes JSON.
 *
 * usage: smolvm-bench-arm64 BUILD [--boot-runs N] [--qemu DIR] [--json FILE]
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

#define INIT_LINE "smolvm-guest: init started"
#define LDSO "/lib/ld-linux-aarch64.so.1"

static int usage(void)
{
	fprintf(stderr,
	        "usage: smolvm-bench-arm64 BUILD [--boot-runs N] [--qemu DIR] [--json FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *build = NULL, *qemu_dir = NULL, *json = NULL;
	int runs = 5;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--boot-runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--qemu") && i + 1 < argc)
			qemu_dir = argv[++i];
		else if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (argv[i][0] != '-' && !build)
			build = argv[i];
		else
			return usage();
	}
	if (!build || runs < 1 || runs > MAX_RUNS)
		return usage();

	char smolvm[4096], image[4096], initrd[4096], cmdline[512];
	char ini[] = "/tmp/smolvm-bench-arm64-XXXXXX.ini";
	snprintf(smolvm, sizeof(smolvm), "%s/smolvm", build);
	snprintf(image, sizeof(image), "%s/linux-guest/Image", build);
	snprintf(initrd, sizeof(initrd), "%s/linux-guest/initrd.gz", build);
	char *image_abs = realpath(image, NULL), *initrd_abs = realpath(initrd, NULL);
	if (!image_abs || !initrd_abs || access(smolvm, X_OK) != 0) {
		fprintf(stderr,
		        "smolvm-bench-arm64: %s, %s or %s is missing (make build-arm64 "
		        "linux-guest-arm64)\n",
		        smolvm, image, initrd);
		return 1;
	}
	char *script = bench_b64("true");
	if (!script)
		return 1;
	snprintf(cmdline, sizeof(cmdline), "console=ttyAMA0 panic=-1 quiet smolvm.script=%s",
	         script);
	free(script);
	int fd = mkstemps(ini, 4);
	if (fd < 0) {
		perror("smolvm-bench-arm64: mkstemps");
		return 1;
	}
	dprintf(fd,
	        "[machine]\narch = aarch64\nbackend = kvm\nmemory = 256M\nvcpus = 1\n"
	        "[boot]\nkernel = %s\ninitrd = %s\ncmdline = %s\n"
	        "[device serial0]\ntype = pl011\nbase = 0x9000000\nirq = 1\ninput = none\n",
	        image_abs, initrd_abs, cmdline);
	close(fd);

	char qemu_bin[4096] = "", qemu_lib[4096] = "", qemu_data[4096] = "";
	if (qemu_dir) {
		snprintf(qemu_bin, sizeof(qemu_bin), "%s/usr/bin/qemu-system-aarch64", qemu_dir);
		snprintf(qemu_lib, sizeof(qemu_lib), "%s/lib", qemu_dir);
		snprintf(qemu_data, sizeof(qemu_data), "%s/usr/share/qemu", qemu_dir);
	}
	bool have_qemu = qemu_dir && access(qemu_bin, X_OK) == 0 && access(LDSO, X_OK) == 0;
	struct runner rs[2] = {
		{ .name = "qemu-virt",
		  .argv = { LDSO,          "--library-path",
		            qemu_lib,      qemu_bin,
		            "-L",          qemu_data,
		            "-M",          "virt,gic-version=3",
		            "-accel",      "kvm",
		            "-cpu",        "host",
		            "-m",          "256M",
		            "-smp",        "1",
		            "-nodefaults", "-no-user-config",
		            "-display",    "none",
		            "-no-reboot",  "-serial",
		            "stdio",       "-kernel",
		            image_abs,     "-initrd",
		            initrd_abs,    "-append",
		            cmdline,       NULL },
		  .ok_status = 0,
		  .expect = INIT_LINE,
		  .time_to_line = 1 },
		{ .name = "smolvm",
		  .argv = { smolvm, "run", ini, NULL },
		  .ok_status = 0,
		  .expect = INIT_LINE,
		  .time_to_line = 1 },
	};
	int first = have_qemu ? 0 : 1;
	for (int i = 0; i < runs; i++)
		for (int k = first; k < 2; k++)
			bench_run_once(&rs[k]);
	unlink(ini);

	const char *where = getenv("NEST_INSIDE") ? "the arm64 test nest (arm64 KVM under QEMU TCG)"
	                                          : "this host's KVM";
	printf("arm64 Linux boot: Debian's arm64 kernel (Image) + the busybox test initramfs, "
	       "1 vCPU, 256 MiB,\nfork to the init's first line, %d runs each, in %s\n",
	       runs, where);
	if (!have_qemu)
		printf("qemu-virt      not run: no arm64 QEMU (bench/arm64-qemu: %s)\n",
		       qemu_dir ? qemu_bin : "no --qemu");
	FILE *j = json ? fopen(json, "w") : NULL;
	if (j)
		fprintf(j, "{\n  \"where\": \"%s\",\n  \"boot_runs\": %d,\n  \"tables\": {\n",
		        getenv("NEST_INSIDE") ? "nest" : "host", runs);
	int bad = bench_report("linux_boot_arm64", rs + first, 2 - first, 0,
	                       "fork to init's first line", j, true);
	if (j) {
		fprintf(j, "  }\n}\n");
		fclose(j);
		printf("wrote %s\n", json);
	}
	free(image_abs);
	free(initrd_abs);
	return bad;
}
