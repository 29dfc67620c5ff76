/*
 * smolvm-bench: `make bench`. Boots the guest kit's `oneline` payload (prints one line, exits)
 * under three runners, interleaved, N times each, in the same place (the nest here):
 *   floor   bench/floor, the raw-ioctl minimum (kvm-smoke's kind of program)
 *   smolvm  build/smolvm run with a UART and a debug-exit device
 *   qemu    QEMU microvm booting the same file through its PVH entry
 * and reports, per runner, the wall time from fork to exit (median and min), the peak RSS
 * (median of ru_maxrss), and ratios to the floor. Then a boot table: Debian's kernel and the
 * Linux test guest (build/linux-guest) under smolvm and under QEMU microvm with ACPI, the time
 * from fork to the init's first line ("smolvm-guest: init started") and peak RSS, ratios to
 * QEMU. Then the virtio-blk table (bench/blk.c): guest/blk-bench under smolvm and QEMU microvm
 * and raw pread/pwrite on the same image. Then the snapshot table (bench/snap.c): snapshot
 * and restore of guest/snap-bench at three RAM sizes under smolvm, beside the floor and QEMU
 * microvm restoring its migration file. Then the virtio-net table (bench/net.c): TCP both
 * ways and ping under Debian's kernel, smolvm and QEMU microvm each on a TAP in a network
 * namespace of its own. Prints the tables, writes JSON. A count of 0 leaves a table out.
 *
 * usage: smolvm-bench BUILD_DIR [--runs N] [--boot-runs N] [--blk-runs N] [--snap-runs N]
 *                    [--snap-clones N] [--net-runs N] [--json FILE]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blk.h"
#include "net.h"
#include "run.h"
#include "snap-run.h"
#include "snap.h"

#define EXPECT_LINE "oneline: hello from the guest"
#define INIT_LINE "smolvm-guest: init started"

#define QEMU "/usr/bin/qemu-system-x86_64"

int main(int argc, char **argv)
{
	const char *build = NULL, *json = NULL;
	int runs = 10, boot_runs = 5, blk_runs = 3, snap_runs = 5, snap_clones = 20, net_runs = 3;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--boot-runs") == 0 && i + 1 < argc)
			boot_runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--blk-runs") == 0 && i + 1 < argc)
			blk_runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--snap-runs") == 0 && i + 1 < argc)
			snap_runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--snap-clones") == 0 && i + 1 < argc)
			snap_clones = atoi(argv[++i]);
		else if (strcmp(argv[i], "--net-runs") == 0 && i + 1 < argc)
			net_runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			json = argv[++i];
		else
			build = argv[i];
	}
	if (!build || runs < 0 || runs > MAX_RUNS || boot_runs < 0 || boot_runs > MAX_RUNS ||
	    blk_runs < 0 || blk_runs > MAX_RUNS || snap_runs < 0 || snap_runs > MAX_RUNS ||
	    snap_clones < 0 || snap_clones > SNAP_MAX_CLONES || net_runs < 0 ||
	    net_runs > MAX_RUNS) {
		fprintf(stderr,
		        "usage: smolvm-bench BUILD_DIR [--runs 0-%d] [--boot-runs 0-%d] "
		        "[--blk-runs 0-%d] [--snap-runs 0-%d] [--snap-clones 0-%d] "
		        "[--net-runs 0-%d] [--json FILE]\n",
		        MAX_RUNS, MAX_RUNS, MAX_RUNS, MAX_RUNS, SNAP_MAX_CLONES, MAX_RUNS);
		return 2;
	}
	char smolvm[4096], floor_bin[4096], payload[4096], ini[] = "/tmp/smolvm-bench-XXXXXX.ini";
	snprintf(smolvm, sizeof(smolvm), "%s/smolvm", build);
	snprintf(floor_bin, sizeof(floor_bin), "%s/bench/floor", build);
	snprintf(payload, sizeof(payload), "%s/guest/oneline", build);
	if (access(payload, R_OK) != 0) {
		fprintf(stderr, "smolvm-bench: %s: %s\n", payload, strerror(errno));
		return 1;
	}
	int ifd = mkstemps(ini, 4);
	if (ifd < 0)
		return 1;
	dprintf(ifd,
	        "[machine]\nmemory = 128M\n[boot]\nkernel = %s\n"
	        "[device com1]\ntype = uart-16550\ninput = none\n"
	        "[device exit]\ntype = debug-exit\n",
	        realpath(payload, NULL));
	close(ifd);

	struct runner rs[3] = {
		{ .name = "floor",
		  .argv = { floor_bin, payload, "128", NULL },
		  .ok_status = 0,
		  .expect = EXPECT_LINE },
		{ .name = "smolvm",
		  .argv = { smolvm, "run", ini, NULL },
		  .ok_status = 0,
		  .expect = EXPECT_LINE },
		{ .name = "qemu-microvm",
		  .argv = { QEMU,
		            "-M",
		            "microvm,x-option-roms=off,rtc=off",
		            "-accel",
		            "kvm",
		            "-cpu",
		            "host",
		            "-m",
		            "128M",
		            "-smp",
		            "1",
		            "-nodefaults",
		            "-no-user-config",
		            "-display",
		            "none",
		            "-serial",
		            "stdio",
		            "-device",
		            "isa-debug-exit,iobase=0xf4,iosize=4",
		            "-kernel",
		            payload,
		            NULL },
		  .ok_status = 1 /* isa-debug-exit: (0 << 1) | 1 */,
		  .expect = EXPECT_LINE },
	};
	int have_qemu = access(QEMU, X_OK) == 0;
	int nr = have_qemu ? 3 : 2;

	for (int i = 0; i < runs; i++)
		for (int k = 0; k < nr; k++)
			bench_run_once(&rs[k]);
	unlink(ini);

	const char *where = getenv("NEST_INSIDE") ? "the test nest (nested KVM under QEMU TCG)"
	                                          : "this host's KVM";
	FILE *j = json ? fopen(json, "w") : NULL;
	if (j)
		fprintf(j,
		        "{\n  \"where\": \"%s\",\n  \"runs\": %d,\n  \"boot_runs\": %d,\n"
		        "  \"tables\": {\n",
		        getenv("NEST_INSIDE") ? "nest" : "host", runs, boot_runs);
	/* JSON: no comma after the last table */
	bool snap_last = net_runs == 0, blk_last = snap_runs == 0 && snap_last,
	     boot_last = blk_runs == 0 && blk_last;
	int bad = 0;
	if (runs > 0) {
		printf("boot-to-exit of guest/oneline (prints one line, exits), %d runs each, in "
		       "%s\n",
		       runs, where);
		bad = bench_report("boot_to_exit", rs, nr, 0, "fork to exit", j,
		                   boot_runs == 0 && boot_last);
		if (!have_qemu)
			printf("qemu-microvm   not run: " QEMU " is missing\n");
	}

	/* Linux: the same kernel and initrd under smolvm and QEMU microvm (ACPI on both). */
	char vmlinux[4096], initrd[4096], lini[] = "/tmp/smolvm-bench-XXXXXX.ini", cmdline[512];
	snprintf(vmlinux, sizeof(vmlinux), "%s/linux-guest/vmlinux", build);
	snprintf(initrd, sizeof(initrd), "%s/linux-guest/initrd.gz", build);
	if (boot_runs > 0 && (access(vmlinux, R_OK) != 0 || access(initrd, R_OK) != 0)) {
		printf("\nLinux boot: not run: %s or %s is missing (make linux-guest)\n", vmlinux,
		       initrd);
		bad = 1;
		boot_runs = 0;
		if (j)
			fprintf(j, "    \"linux_boot\": []%s\n", boot_last ? "" : ",");
	}
	if (boot_runs > 0) {
		char *script = bench_b64("true");
		if (!script)
			return 1;
		snprintf(cmdline, sizeof(cmdline), "console=ttyS0 panic=-1 quiet smolvm.script=%s",
		         script);
		free(script);
		ifd = mkstemps(lini, 4);
		if (ifd < 0)
			return 1;
		dprintf(ifd,
		        "[machine]\nmemory = 512M\n[boot]\nkernel = %s\ninitrd = %s\ncmdline = %s\n"
		        "[device com1]\ntype = uart-16550\ninput = none\n",
		        realpath(vmlinux, NULL), realpath(initrd, NULL), cmdline);
		close(ifd);
		struct runner ls[2] = {
			{ .name = "qemu-microvm",
			  .argv = { QEMU,
			            "-M",
			            "microvm,acpi=on,x-option-roms=off,rtc=off",
			            "-accel",
			            "kvm",
			            "-cpu",
			            "host",
			            "-m",
			            "512M",
			            "-smp",
			            "1",
			            "-nodefaults",
			            "-no-user-config",
			            "-display",
			            "none",
			            "-no-reboot",
			            "-serial",
			            "stdio",
			            "-kernel",
			            vmlinux,
			            "-initrd",
			            initrd,
			            "-append",
			            cmdline,
			            NULL },
			  .ok_status = 0,
			  .expect = INIT_LINE,
			  .time_to_line = 1 },
			{ .name = "smolvm",
			  .argv = { smolvm, "run", lini, NULL },
			  .ok_status = 0,
			  .expect = INIT_LINE,
			  .time_to_line = 1 },
		};
		int first = have_qemu ? 0 : 1;
		for (int i = 0; i < boot_runs; i++)
			for (int k = first; k < 2; k++)
				bench_run_once(&ls[k]);
		unlink(lini);
		printf("\nLinux boot: Debian's kernel (vmlinux, PVH entry) + the busybox test "
		       "initramfs, 1 vCPU, 512 MiB,\nfork to the init's first line, %d runs each, "
		       "in %s\n",
		       boot_runs, where);
		bad |= bench_report("linux_boot", ls + first, 2 - first, 0,
		                    "fork to init's first line", j, boot_last);
	}
	if (blk_runs > 0)
		bad |= blk_bench(build, blk_runs, where, j, blk_last);
	if (snap_runs > 0)
		bad |= snap_bench(build, snap_runs, snap_clones, where, j, snap_last);
	if (net_runs > 0)
		bad |= net_bench(build, SMOLVM_SOURCE_ROOT, net_runs, where, j, true);
	if (j) {
		fprintf(j, "  }\n}\n");
		fclose(j);
		printf("wrote %s\n", json);
	}
	return bad;
}
