/*
 * The virtio-blk table of smolvm-bench. Three runners, interleaved, N times each, on the same
 * 256 MiB raw image on a tmpfs (/dev/shm; in the nest that is the nest's own tmpfs, not the 9p
 * share), created once and prefilled so reads hit real data:
 *   smolvm  build/smolvm run: guest/blk-bench on one virtio-blk disk (cache = writeback),
 *           acpi = off so the device names itself with a virtio_mmio.device= word
 *   qemu    QEMU microvm booting the same payload (PVH entry) with virtio-blk-device on the
 *           same image (modern virtio-mmio, cache=writeback)
 *   raw     the ceiling: pread/pwrite on the same file from this process, the same rows with
 *           the same sizes, counts and offsets (guest/blk-bench.c), one call at a time, into
 *           or out of as many buffers as the guest has requests in flight (one at depth 1,
 *           32 at depth 32, used in turn: the guest's 32 requests each have their own
 *           buffer, and under TCG one hot buffer alone is 10-20% faster than 32)
 * blk-bench runs each row at queue depth 1 and again at depth 32: a synchronous loop is the
 * ceiling for both, as smolvm serves the queue on one thread.
 * Per row: the median MB/s and req/s of each runner, and ratios smolvm/QEMU and smolvm/raw.
 */
#define _GNU_SOURCE
#include "blk.h"
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QEMU "/usr/bin/qemu-system-x86_64"
#define MAX_RUNS 200
#define NROWS 8
#define DEPTH 32 /* blk-bench's deeper queue (its default) */
#define IMG_MIB 256
#define RANGE_MIB 64
#define REQUESTS 2000 /* blk-bench's default: per 4 KiB row; the 64 KiB rows do a quarter */
#define CMDLINE "console=ttyS0 blk-bench.range=64 blk-bench.depth=32"

/* In blk-bench's order: the four rows at depth 1, then again at DEPTH. */
static const struct {
	const char *name;
	bool write, random;
	uint32_t size;
	unsigned depth;
} rows[NROWS] = {
	{ "seqwrite-64k-qd1", true, false, 65536, 1 },
	{ "seqread-64k-qd1", false, false, 65536, 1 },
	{ "randwrite-4k-qd1", true, true, 4096, 1 },
	{ "randread-4k-qd1", false, true, 4096, 1 },
	{ "seqwrite-64k-qd32", true, false, 65536, DEPTH },
	{ "seqread-64k-qd32", false, false, 65536, DEPTH },
	{ "randwrite-4k-qd32", true, true, 4096, DEPTH },
	{ "randread-4k-qd32", false, true, 4096, DEPTH },
};

struct blk_runner {
	const char *name;
	char *argv[40]; /* argv[0] NULL: the in-process raw runner */
	int ok_status;
	double mbps[NROWS][MAX_RUNS], rps[NROWS][MAX_RUNS];
	int n, failures;
	char last_error[400];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The tail of @p out on one line, for an error message. */
static void fail(struct blk_runner *r, int code, const char *why, const char *out, size_t len)
{
	char tail[181];
	size_t from = len > 180 ? len - 180 : 0, k = 0;
	for (size_t i = from; i < len; i++)
		if (out[i] != '\r')
			tail[k++] = out[i] == '\n' ? '|' : out[i];
	tail[k] = 0;
	r->failures++;
	snprintf(r->last_error, sizeof(r->last_error), "status %d, %s, output: ...%s", code, why,
	         tail);
}

/* One guest run: output on a pipe, the rows parsed from it. */
static void run_guest(struct blk_runner *r)
{
	int fd;
	pid_t pid = bench_spawn(r->argv, 600, &fd);
	if (pid < 0) {
		r->failures++;
		return;
	}
	static char out[1 << 16];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, out + len, sizeof(out) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > sizeof(out) - 4096) { /* far more than blk-bench prints: keep the tail */
			memmove(out, out + len - 4096, 4096);
			len = 4096;
		}
	}
	out[len] = 0;
	close(fd);
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0) {
		r->failures++;
		return;
	}
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (code != r->ok_status) {
		fail(r, code, "wrong exit status", out, len);
		return;
	}
	double mbps[NROWS], rps[NROWS];
	bool got[NROWS] = { false }, done = false;
	for (char *line = out, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char name[32];
		unsigned long long req;
		double s, rq, mb;
		if (strncmp(line, "blk-bench: done", 15) == 0)
			done = true;
		if (sscanf(line, "blk-bench: %31s %llu req %lf s %lf req/s %lf MB/s", name, &req,
		           &s, &rq, &mb) != 5)
			continue;
		for (int k = 0; k < NROWS; k++)
			if (strcmp(name, rows[k].name) == 0) {
				mbps[k] = mb;
				rps[k] = rq;
				got[k] = true;
			}
	}
	for (int k = 0; k < NROWS; k++)
		done = done && got[k];
	if (!done) {
		/* the lines were cut at the newlines above: put them back for the message */
		for (size_t i = 0; i < len; i++)
			if (!out[i])
				out[i] = '\n';
		fail(r, code, "no complete set of rows (cycles only: TSC frequency unknown?)", out,
		     len);
		return;
	}
	for (int k = 0; k < NROWS; k++) {
		r->mbps[k][r->n] = mbps[k];
		r->rps[k][r->n] = rps[k];
	}
	r->n++;
}

/* blk-bench's offset generator (guest/blk-bench.c), restarted for every row. */
static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The ceiling: blk-bench's rows as pread/pwrite on the image, timed in process, with a buffer
 * per request in flight as in the guest. */
static void run_raw(struct blk_runner *r, const char *img)
{
	static uint8_t bufs[DEPTH][65536] __attribute__((aligned(4096)));
	for (unsigned b = 0; b < DEPTH; b++)
		for (unsigned i = 0; i < sizeof(bufs[b]); i++)
			bufs[b][i] = (uint8_t)(i * 31 + 7 + b);
	int fd = open(img, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r->failures++;
		snprintf(r->last_error, sizeof(r->last_error), "open the image: %s",
		         strerror(errno));
		return;
	}
	double mbps[NROWS], rps[NROWS];
	for (int k = 0; k < NROWS; k++) {
		uint64_t size = rows[k].size, count = size == 4096 ? REQUESTS : REQUESTS / 4;
		uint64_t slots = ((uint64_t)RANGE_MIB << 20) / size, rng = 0x9e3779b97f4a7c15ull;
		double t0 = now_s();
		for (uint64_t i = 0; i < count; i++) {
			uint64_t slot = rows[k].random ? xorshift(&rng) % slots : i % slots;
			uint8_t *buf = bufs[i % rows[k].depth];
			ssize_t n = rows[k].write ? pwrite(fd, buf, size, (off_t)(slot * size))
			                          : pread(fd, buf, size, (off_t)(slot * size));
			if (n != (ssize_t)size) {
				r->failures++;
				snprintf(r->last_error, sizeof(r->last_error),
				         "%s of the image: %s", rows[k].write ? "pwrite" : "pread",
				         n < 0 ? strerror(errno) : "short");
				close(fd);
				return;
			}
		}
		double s = now_s() - t0;
		rps[k] = count / s;
		mbps[k] = count * size / s / 1e6;
	}
	close(fd);
	for (int k = 0; k < NROWS; k++) {
		r->mbps[k][r->n] = mbps[k];
		r->rps[k][r->n] = rps[k];
	}
	r->n++;
}

/* A 256 MiB image on a tmpfs, every byte written (non-zero) so reads hit real pages. */
static int make_image(char *img, size_t size)
{
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(img, size, "%s/smolvm-bench-blk-XXXXXX", dir);
	int fd = mkstemp(img);
	if (fd < 0)
		return -1;
	static uint8_t chunk[1 << 20];
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 131 + 17);
	for (int m = 0; m < IMG_MIB; m++) {
		chunk[0] = (uint8_t)m;
		if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk)) {
			close(fd);
			unlink(img);
			return -1;
		}
	}
	close(fd);
	return 0;
}

int blk_bench(const char *build, int runs, const char *where, FILE *j, bool last)
{
	char smolvm[4096], payload[4096], img[256], drive[512];
	char ini[] = "/tmp/smolvm-bench-blk-XXXXXX.ini";
	snprintf(smolvm, sizeof(smolvm), "%s/smolvm", build);
	snprintf(payload, sizeof(payload), "%s/guest/blk-bench", build);
	char *payload_abs = realpath(payload, NULL);
	if (!payload_abs || make_image(img, sizeof(img)) < 0) {
		printf("\nvirtio-blk: not run: %s: %s\n", payload_abs ? "image" : payload,
		       strerror(errno));
		if (j)
			fprintf(j, "    \"virtio_blk\": null%s\n", last ? "" : ",");
		free(payload_abs);
		return 1;
	}
	int ifd = mkstemps(ini, 4);
	if (ifd < 0) {
		unlink(img);
		free(payload_abs);
		return 1;
	}
	dprintf(ifd,
	        "[machine]\nmemory = 256M\nacpi = off\n[boot]\nkernel = %s\ncmdline = " CMDLINE
	        "\n[device com1]\ntype = uart-16550\ninput = none\n"
	        "[device exit]\ntype = debug-exit\n"
	        "[device disk0]\ntype = virtio-blk\npath = %s\ncache = writeback\n",
	        payload_abs, img);
	close(ifd);
	snprintf(drive, sizeof(drive), "id=d0,file=%s,format=raw,if=none,cache=writeback", img);

	static struct blk_runner rs[3] = {
		{ .name = "smolvm", .ok_status = 0 },
		{ .name = "qemu-microvm", .ok_status = 1 /* isa-debug-exit: (0 << 1) | 1 */ },
		{ .name = "raw" },
	};
	char *sargv[] = { smolvm, "run", ini, NULL };
	char *qargv[] = { QEMU,
		          "-M",
		          "microvm,x-option-roms=off,rtc=off,acpi=off",
		          "-accel",
		          "kvm",
		          "-cpu",
		          "host",
		          "-m",
		          "256M",
		          "-smp",
		          "1",
		          "-nodefaults",
		          "-no-user-config",
		          "-display",
		          "none",
		          "-serial",
		          "stdio",
		          "-global",
		          "virtio-mmio.force-legacy=false",
		          "-drive",
		          drive,
		          "-device",
		          "virtio-blk-device,drive=d0",
		          "-device",
		          "isa-debug-exit,iobase=0xf4,iosize=4",
		          "-kernel",
		          payload_abs,
		          "-append",
		          CMDLINE,
		          NULL };
	memcpy(rs[0].argv, sargv, sizeof(sargv));
	memcpy(rs[1].argv, qargv, sizeof(qargv));
	bool have_qemu = access(QEMU, X_OK) == 0;
	if (!have_qemu)
		snprintf(rs[1].last_error, sizeof(rs[1].last_error), QEMU " is missing");

	for (int i = 0; i < runs; i++) {
		run_guest(&rs[0]);
		if (have_qemu)
			run_guest(&rs[1]);
		run_raw(&rs[2], img);
	}
	unlink(ini);
	unlink(img);
	free(payload_abs);

	printf("\nvirtio-blk: guest/blk-bench (polled, queue depth 1 and %d, %d MiB range of a %d "
	       "MiB "
	       "raw image\non a tmpfs, cache=writeback) under smolvm and QEMU microvm, and raw "
	       "pread/pwrite on the same\nfile, one call at a time; medians of %d runs each, in "
	       "%s\n",
	       DEPTH, RANGE_MIB, IMG_MIB, runs, where);
	printf("%-18s %11s %11s %11s %10s %10s %10s %8s %8s\n", "row", "smolvm MB/s", "qemu MB/s",
	       "raw MB/s", "smolvm r/s", "qemu r/s", "raw r/s", "s/qemu", "s/raw");
	double mb[3][NROWS], rq[3][NROWS];
	for (int k = 0; k < NROWS; k++)
		for (int x = 0; x < 3; x++) {
			mb[x][k] = bench_median(rs[x].mbps[k], rs[x].n);
			rq[x][k] = bench_median(rs[x].rps[k], rs[x].n);
		}
	for (int k = 0; k < NROWS; k++) {
		char c[6][16], vq[16] = "-", vr[16] = "-";
		for (int x = 0; x < 3; x++) {
			snprintf(c[x], 16, rs[x].n ? "%.2f" : "-", mb[x][k]);
			snprintf(c[3 + x], 16, rs[x].n ? "%.0f" : "-", rq[x][k]);
		}
		if (rs[0].n && rs[1].n)
			snprintf(vq, sizeof(vq), "%.2fx", mb[0][k] / mb[1][k]);
		if (rs[0].n && rs[2].n)
			snprintf(vr, sizeof(vr), "%.2fx", mb[0][k] / mb[2][k]);
		printf("%-18s %11s %11s %11s %10s %10s %10s %8s %8s\n", rows[k].name, c[0], c[1],
		       c[2], c[3], c[4], c[5], vq, vr);
	}
	int bad = 0;
	for (int x = 0; x < 3; x++) {
		if (x == 1 && !have_qemu) {
			printf("qemu-microvm   not run: " QEMU " is missing\n");
			continue;
		}
		if (!rs[x].n)
			bad = 1;
		if (rs[x].failures)
			printf("%s: %d ok, %d failed; last failure: %s\n", rs[x].name, rs[x].n,
			       rs[x].failures, rs[x].last_error);
	}
	if (!j)
		return bad;
	static const char *const key[3] = { "smolvm", "qemu", "raw" };
	fprintf(j,
	        "    \"virtio_blk\": {\n      \"runs\": %d, \"image_mib\": %d, \"range_mib\": %d, "
	        "\"queue_depths\": [1, %d],\n      \"runners\": {",
	        runs, IMG_MIB, RANGE_MIB, DEPTH);
	for (int x = 0; x < 3; x++)
		fprintf(j, "%s\"%s\": {\"ok_runs\": %d, \"failures\": %d}", x ? ", " : "", key[x],
		        rs[x].n, rs[x].failures);
	fprintf(j, "},\n      \"rows\": [\n");
	for (int k = 0; k < NROWS; k++) {
		fprintf(j, "        {\"row\": \"%s\", \"bytes\": %u, \"queue_depth\": %u",
		        rows[k].name, rows[k].size, rows[k].depth);
		for (int x = 0; x < 3; x++)
			if (rs[x].n)
				fprintf(j, ", \"%s_mb_s\": %.2f, \"%s_req_s\": %.1f", key[x],
				        mb[x][k], key[x], rq[x][k]);
		if (rs[0].n && rs[1].n)
			fprintf(j, ", \"smolvm_vs_qemu\": %.3f", mb[0][k] / mb[1][k]);
		if (rs[0].n && rs[2].n)
			fprintf(j, ", \"smolvm_vs_raw\": %.3f", mb[0][k] / mb[2][k]);
		fprintf(j, "}%s\n", k + 1 < NROWS ? "," : "");
	}
	fprintf(j, "      ]\n    }%s\n", last ? "" : ",");
	return bad;
}
