/*
 * The virtio-net table of smolvm-bench. Debian's kernel and the busybox test guest
 * (build/linux-guest) under two runners, interleaved, N times each, each runner on a TAP
 * (tap0, host side 10.0.2.1/24, guest 10.0.2.15/24) in a network namespace of its own that
 * this table makes (ip netns add) and removes:
 *   smolvm  build/smolvm run configs/linux.ini with --set overrides (256 MiB, 1 vCPU, the
 *           script on the command line) and `[device net0] type = virtio-net, backend = tap`
 *   qemu    QEMU microvm (ACPI on: Debian's kernel finds virtio-mmio through LNRO0005 only;
 *           modern virtio-mmio) with virtio-net-device on a tap netdev, vhost=off (the nest
 *           may have no vhost-net), booting the same vmlinux (PVH entry), initrd and command
 *           line
 * both started with `ip netns exec NS`. One boot per run; the guest's script brings eth0 up,
 * waits for the host side to answer a ping, then:
 *   guest->host  dd if=/dev/zero | busybox nc to port 7001: a sink in this process (its
 *                listening socket made in the namespace) counts NET_MIB MiB and takes the
 *                time from the first byte's arrival to the last's (the bytes after the first
 *                read over that time)
 *   host->guest  the guest's nc connects to port 7002 (its output to /dev/null, its input a
 *                FIFO it also holds open for writing: no end of input, so it never
 *                half-closes); a source in this process
 *                sends NET_MIB MiB and shuts its side: the time from the accept to the guest
 *                closing (busybox nc closes once it has read the end of the stream)
 *   latency      ping -c NET_PINGS -i 0.2 to the host side: the median of the replies' times
 *                and busybox's average
 * Per row, the median over the runs and the ratio smolvm/QEMU (higher is better for MB/s,
 * lower for round trips). Needs root (namespaces, TAP): otherwise the table is skipped.
 */
#define _GNU_SOURCE
#include "net.h"
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QEMU "/usr/bin/qemu-system-x86_64"
#define MAX_RUNS 200
#define NET_MIB 16
#define NET_BYTES ((uint64_t)NET_MIB << 20)
#define NET_PINGS 20
#define SINK_PORT 7001
#define SOURCE_PORT 7002
#define NROWS 4
#define RUN_TIMEOUT_S 900

/* The guest's script (guest/linux/init runs it, then powers off). */
#define GUEST_SCRIPT                                                                               \
	"ip link set eth0 up\n"                                                                    \
	"ip addr add 10.0.2.15/24 dev eth0\n"                                                      \
	"i=0\n"                                                                                    \
	"until ping -c 1 -W 1 10.0.2.1 >/dev/null 2>&1; do\n"                                      \
	"  i=$((i + 1)); [ $i -gt 60 ] && { echo net-bench: no reply from 10.0.2.1; exit 1; }\n"   \
	"done\n"                                                                                   \
	"dd if=/dev/zero bs=65536 count=%d 2>/dev/null | nc 10.0.2.1 %d || exit 2\n"               \
	"mkfifo /tmp/in && exec 3<>/tmp/in\n"                                                      \
	"nc 10.0.2.1 %d <&3 >/dev/null || exit 3\n"                                                \
	"exec 3>&-\n"                                                                              \
	"ping -c %d -i 0.2 10.0.2.1\n"

static const char *const row_name[NROWS] = { "guest-to-host MB/s", "host-to-guest MB/s",
	                                     "ping median ms", "ping average ms" };
static const char *const row_key[NROWS] = { "guest_to_host_mb_s", "host_to_guest_mb_s",
	                                    "ping_median_ms", "ping_avg_ms" };

struct net_runner {
	const char *name, *key;
	char ns[64];
	int sink_l, source_l; /* listening sockets in the namespace */
	char *argv[48];
	double v[NROWS][MAX_RUNS];
	int n, failures;
	char last_error[400];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *ip_path(void)
{
	static const char *const paths[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* Output and status of a short command: 0, or -1 with what failed in @err. */
static int run_cmd(char *const argv[], char *err, size_t errlen)
{
	int fd;
	pid_t pid = bench_spawn(argv, 30, &fd);
	if (pid < 0) {
		snprintf(err, errlen, "%s: cannot start it: %s", argv[0], strerror(errno));
		return -1;
	}
	char out[512];
	size_t len = 0;
	ssize_t k;
	while ((k = read(fd, out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)k;
	out[len] = 0;
	while (len && out[len - 1] == '\n')
		out[--len] = 0;
	close(fd);
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		char cmd[200] = "";
		for (int i = 0; argv[i] && strlen(cmd) < sizeof(cmd) - 40; i++)
			snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s", i ? " " : "",
			         argv[i]);
		snprintf(err, errlen, "'%s' failed: %.200s", cmd, len ? out : "(no output)");
		return -1;
	}
	return 0;
}

/* A listening TCP socket on @port inside namespace @ns (this process stays where it was). */
static int listen_in(const char *ns, int port, char *err, size_t errlen)
{
	char path[128];
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int there = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || there < 0) {
		snprintf(err, errlen, "open %s: %s", self < 0 ? "/proc/self/ns/net" : path,
		         strerror(errno));
		if (self >= 0)
			close(self);
		return -1;
	}
	int s = -1;
	if (setns(there, CLONE_NEWNET) < 0) {
		snprintf(err, errlen, "setns into %s: %s", ns, strerror(errno));
		goto out;
	}
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0) {
		snprintf(err, errlen, "a TCP socket on port %d in %s: %s", port, ns,
		         strerror(errno));
		if (s >= 0)
			close(s);
		s = -1;
	}
	if (setns(self, CLONE_NEWNET) < 0) {
		/* the rest of the bench would run in the wrong namespace */
		fprintf(stderr, "smolvm-bench: setns back out of %s: %s\n", ns, strerror(errno));
		exit(1);
	}
out:
	close(self);
	close(there);
	return s;
}

/* The runner's namespace: lo up, tap0 with 10.0.2.1/24, up; the two listening sockets. */
static int ns_setup(struct net_runner *r, const char *ip, char *err, size_t errlen)
{
	char *ns = r->ns;
	char *const cmds[][10] = {
		{ (char *)ip, "netns", "add", ns, NULL },
		{ (char *)ip, "-n", ns, "link", "set", "lo", "up", NULL },
		{ (char *)ip, "-n", ns, "tuntap", "add", "tap0", "mode", "tap", NULL },
		{ (char *)ip, "-n", ns, "addr", "add", "10.0.2.1/24", "dev", "tap0", NULL },
		{ (char *)ip, "-n", ns, "link", "set", "tap0", "up", NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (run_cmd(cmds[i], err, errlen) < 0)
			return -1;
	r->sink_l = listen_in(ns, SINK_PORT, err, errlen);
	if (r->sink_l < 0)
		return -1;
	r->source_l = listen_in(ns, SOURCE_PORT, err, errlen);
	return r->source_l < 0 ? -1 : 0;
}

static void ns_remove(struct net_runner *r, const char *ip)
{
	char err[256];
	char *const argv[] = { (char *)ip, "netns", "del", r->ns, NULL };
	if (r->sink_l >= 0)
		close(r->sink_l);
	if (r->source_l >= 0)
		close(r->source_l);
	r->sink_l = r->source_l = -1;
	if (run_cmd(argv, err, sizeof(err)) < 0)
		printf("virtio-net: could not remove namespace %s: %s\n", r->ns, err);
}

/* Connections a failed run left in a listener's backlog go. */
static void drain(int l)
{
	int c;
	while ((c = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(c);
}

static void fail(struct net_runner *r, const char *why, const char *out, size_t len)
{
	char tail[241];
	size_t from = len > 240 ? len - 240 : 0, k = 0;
	for (size_t i = from; i < len; i++)
		if (out[i] != '\r')
			tail[k++] = out[i] == '\n' || !out[i] ? '|' : out[i];
	tail[k] = 0;
	r->failures++;
	snprintf(r->last_error, sizeof(r->last_error), "%s, output: ...%s", why, tail);
}

/* The two transfers of a run, served from the event loop. */
struct xfer {
	int sink, source; /* connections, -1: none (yet, or any more) */
	uint64_t sunk, first, sent;
	double t_first, t_last, t_accept, t_closed;
	bool sink_done, source_done;
	char error[160];
};

static void sink_read(struct xfer *x)
{
	static uint8_t buf[1 << 18];
	ssize_t k = read(x->sink, buf, sizeof(buf));
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	double t = now_s();
	if (k > 0) {
		if (!x->sunk) {
			x->t_first = t;
			x->first = (uint64_t)k;
		}
		x->sunk += (uint64_t)k;
		if (x->sunk < NET_BYTES)
			return;
		x->t_last = t;
	}
	if (x->sunk != NET_BYTES && !x->error[0])
		snprintf(x->error, sizeof(x->error), "guest->host: %llu of %llu bytes arrived (%s)",
		         (unsigned long long)x->sunk, (unsigned long long)NET_BYTES,
		         k < 0 ? strerror(errno) : "then the end of the stream");
	close(x->sink);
	x->sink = -1;
	x->sink_done = true;
}

static void source_io(struct xfer *x, short revents)
{
	static const uint8_t zeros[1 << 18];
	if (x->sent < NET_BYTES && (revents & POLLOUT)) {
		uint64_t want = NET_BYTES - x->sent;
		ssize_t k = send(x->source, zeros, want < sizeof(zeros) ? want : sizeof(zeros),
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			x->sent += (uint64_t)k;
			if (x->sent == NET_BYTES)
				shutdown(x->source, SHUT_WR);
			return;
		}
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			return;
	} else if (revents & (POLLIN | POLLHUP | POLLERR)) {
		char b[512];
		ssize_t k = read(x->source, b, sizeof(b));
		if (k > 0 || (k < 0 && (errno == EAGAIN || errno == EINTR)))
			return; /* the guest sends nothing; ignore */
		if (k == 0 && x->sent == NET_BYTES) {
			x->t_closed = now_s();
			close(x->source);
			x->source = -1;
			x->source_done = true;
			return;
		}
	}
	if (!x->error[0])
		snprintf(x->error, sizeof(x->error),
		         "host->guest: the connection ended after %llu of %llu bytes sent (%s)",
		         (unsigned long long)x->sent, (unsigned long long)NET_BYTES,
		         errno ? strerror(errno) : "closed by the guest");
	close(x->source);
	x->source = -1;
	x->source_done = true;
}

/* The median and average of the ping replies in the guest's output: 0, or -1. */
static int parse_ping(char *out, double *median, double *avg, int *replies)
{
	static double t[NET_PINGS * 2];
	int n = 0;
	bool have_avg = false;
	for (char *line = out, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *p = strstr(line, "time=");
		double mn, av, mx;
		if (strstr(line, "bytes from 10.0.2.1") && p && n < NET_PINGS * 2 &&
		    sscanf(p, "time=%lf", &t[n]) == 1)
			n++;
		else if (sscanf(line, "round-trip min/avg/max = %lf/%lf/%lf", &mn, &av, &mx) == 3) {
			*avg = av;
			have_avg = true;
		}
	}
	*replies = n;
	if (n < NET_PINGS / 2 || !have_avg)
		return -1;
	*median = bench_median(t, n);
	return 0;
}

/* One boot: both transfers and the pings. */
static void run_one(struct net_runner *r)
{
	static char out[1 << 18];
	size_t len = 0;
	struct xfer x = { .sink = -1, .source = -1 };
	int fd;

	drain(r->sink_l);
	drain(r->source_l);
	pid_t pid = bench_spawn(r->argv, RUN_TIMEOUT_S, &fd);
	if (pid < 0) {
		r->failures++;
		snprintf(r->last_error, sizeof(r->last_error), "cannot start %s: %s", r->argv[0],
		         strerror(errno));
		return;
	}
	for (bool console = true; console;) {
		struct pollfd p[5];
		int np = 0, ic, is = -1, io = -1, ils = -1, ilo = -1;
		p[ic = np++] = (struct pollfd){ fd, POLLIN, 0 };
		if (x.sink >= 0)
			p[is = np++] = (struct pollfd){ x.sink, POLLIN, 0 };
		else if (!x.sink_done)
			p[ils = np++] = (struct pollfd){ r->sink_l, POLLIN, 0 };
		if (x.source >= 0)
			p[io = np++] = (struct pollfd){
				x.source, x.sent < NET_BYTES ? POLLOUT | POLLIN : POLLIN, 0
			};
		else if (!x.source_done)
			p[ilo = np++] = (struct pollfd){ r->source_l, POLLIN, 0 };
		if (poll(p, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[ic].revents) {
			ssize_t k = read(fd, out + len, sizeof(out) - 1 - len);
			if (k <= 0) {
				console = false;
			} else {
				len += (size_t)k;
				if (len >
				    sizeof(out) - 8192) { /* keep the tail: the pings are last */
					memmove(out, out + len - 16384, 16384);
					len = 16384;
				}
			}
		}
		if (is >= 0 && p[is].revents)
			sink_read(&x);
		if (io >= 0 && p[io].revents) {
			errno = 0;
			source_io(&x, p[io].revents);
		}
		if (ils >= 0 && p[ils].revents)
			x.sink = accept4(r->sink_l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (ilo >= 0 && p[ilo].revents) {
			x.source = accept4(r->source_l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			x.t_accept = now_s();
		}
	}
	out[len] = 0;
	close(fd);
	if (x.sink >= 0)
		close(x.sink);
	if (x.source >= 0)
		close(x.source);
	int status;
	if (waitpid(pid, &status, 0) < 0) {
		r->failures++;
		return;
	}
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	char why[240];
	double med = 0, avg = 0;
	int replies = 0;
	if (code != 0)
		snprintf(why, sizeof(why), "status %d%s%s", code, x.error[0] ? "; " : "", x.error);
	else if (!strstr(out, "smolvm-guest: script exited 0"))
		snprintf(why, sizeof(why), "the guest's script failed%s%s", x.error[0] ? "; " : "",
		         x.error);
	else if (x.error[0] || !x.sink_done || !x.source_done)
		snprintf(why, sizeof(why), "%s",
		         x.error[0] ? x.error : "a transfer did not happen");
	else
		why[0] = 0;
	if (why[0]) {
		fail(r, why, out, len);
		return;
	}
	char *copy = strdup(out);
	int pr = copy ? parse_ping(copy, &med, &avg, &replies) : -1;
	free(copy);
	if (pr < 0) {
		snprintf(why, sizeof(why), "%d ping replies of %d, or no summary", replies,
		         NET_PINGS);
		fail(r, why, out, len);
		return;
	}
	double g2h = x.t_last - x.t_first, h2g = x.t_closed - x.t_accept;
	if (g2h <= 0 || h2g <= 0) {
		fail(r, "a transfer took no measurable time", out, len);
		return;
	}
	r->v[0][r->n] = (double)(NET_BYTES - x.first) / g2h / 1e6;
	r->v[1][r->n] = (double)NET_BYTES / h2g / 1e6;
	r->v[2][r->n] = med;
	r->v[3][r->n] = avg;
	r->n++;
}

static void skipped(const char *why, FILE *j, bool last)
{
	printf("\nvirtio-net: skipped: %s\n", why);
	if (j)
		fprintf(j, "    \"virtio_net\": {\"skipped\": \"%s\"}%s\n", why, last ? "" : ",");
}

static void report(struct net_runner *rs, int nr, int runs, const char *where, double wall_s,
                   FILE *j, bool last)
{
	printf("\nvirtio-net: Debian's kernel + busybox, 1 vCPU, 256 MiB, on a TAP in a network "
	       "namespace each: %d MiB\nper direction over TCP (busybox nc; timed on the host "
	       "side), %d pings -i 0.2 from the guest;\nsmolvm (TAP with vnet_hdr) and QEMU "
	       "microvm (virtio-net-device, vhost=off); medians of %d runs each,\nin %s "
	       "(the table took %.0f s)\n",
	       NET_MIB, NET_PINGS, runs, where, wall_s);
	printf("%-20s %12s %12s %12s\n", "row", "smolvm", "qemu", "smolvm/qemu");
	double med[2][NROWS];
	for (int x = 0; x < nr; x++)
		for (int k = 0; k < NROWS; k++)
			med[x][k] = bench_median(rs[x].v[k], rs[x].n);
	bool both = nr == 2 && rs[0].n && rs[1].n;
	for (int k = 0; k < NROWS; k++) {
		char c[2][16] = { "-", "-" }, ratio[16] = "-";
		for (int x = 0; x < nr; x++)
			if (rs[x].n)
				snprintf(c[x], 16, k < 2 ? "%.2f" : "%.3f", med[x][k]);
		if (both && med[1][k] > 0)
			snprintf(ratio, sizeof(ratio), "%.2fx", med[0][k] / med[1][k]);
		printf("%-20s %12s %12s %12s\n", row_name[k], c[0], c[1], ratio);
	}
	for (int x = 0; x < nr; x++)
		if (rs[x].failures)
			printf("%s: %d ok, %d failed; last failure: %s\n", rs[x].name, rs[x].n,
			       rs[x].failures, rs[x].last_error);
	if (nr < 2)
		printf("qemu-microvm   not run: " QEMU " is missing\n");
	if (!j)
		return;
	fprintf(j,
	        "    \"virtio_net\": {\n      \"runs\": %d, \"mib_per_direction\": %d, \"pings\": "
	        "%d, \"wall_s\": %.1f,\n      \"runners\": {",
	        runs, NET_MIB, NET_PINGS, wall_s);
	for (int x = 0; x < nr; x++)
		fprintf(j, "%s\"%s\": {\"ok_runs\": %d, \"failures\": %d}", x ? ", " : "",
		        rs[x].key, rs[x].n, rs[x].failures);
	fprintf(j, "},\n      \"rows\": [\n");
	for (int k = 0; k < NROWS; k++) {
		fprintf(j, "        {\"row\": \"%s\"", row_key[k]);
		for (int x = 0; x < nr; x++)
			if (rs[x].n)
				fprintf(j, ", \"%s\": %.3f", rs[x].key, med[x][k]);
		if (both && med[1][k] > 0)
			fprintf(j, ", \"smolvm_vs_qemu\": %.3f", med[0][k] / med[1][k]);
		fprintf(j, "}%s\n", k + 1 < NROWS ? "," : "");
	}
	fprintf(j, "      ]\n    }%s\n", last ? "" : ",");
}

int net_bench(const char *build, const char *src, int runs, const char *where, FILE *j, bool last)
{
	const char *ip = ip_path();
	double t0 = now_s();
	if (geteuid() != 0) {
		skipped("needs root for network namespaces and TAP devices", j, last);
		return 0;
	}
	if (!ip) {
		skipped("ip (iproute2) is missing: scripts/deps installs it", j, last);
		return 0;
	}
	if (access("/dev/net/tun", R_OK | W_OK) != 0) {
		skipped("/dev/net/tun is missing (the tun module)", j, last);
		return 0;
	}
	char smolvm[4096], vmlinux[4096], initrd[4096], ini[4096], cmdline[2048], script[1024];
	snprintf(smolvm, sizeof(smolvm), "%s/smolvm", build);
	snprintf(vmlinux, sizeof(vmlinux), "%s/linux-guest/vmlinux", build);
	snprintf(initrd, sizeof(initrd), "%s/linux-guest/initrd.gz", build);
	snprintf(ini, sizeof(ini), "%s/configs/linux.ini", src);
	if (access(vmlinux, R_OK) || access(initrd, R_OK) || access(ini, R_OK)) {
		printf("\nvirtio-net: not run: %s, %s or %s is missing (make linux-guest)\n",
		       vmlinux, initrd, ini);
		if (j)
			fprintf(j, "    \"virtio_net\": null%s\n", last ? "" : ",");
		return 1;
	}
	snprintf(script, sizeof(script), GUEST_SCRIPT, NET_MIB * 16, SINK_PORT, SOURCE_PORT,
	         NET_PINGS);
	char *s64 = bench_b64(script);
	if (!s64)
		return 1;
	snprintf(cmdline, sizeof(cmdline), "console=ttyS0 panic=-1 quiet smolvm.script=%s", s64);
	free(s64);
	char o_kernel[4200], o_initrd[4200], o_cmdline[2100];
	snprintf(o_kernel, sizeof(o_kernel), "boot.kernel=%s", vmlinux);
	snprintf(o_initrd, sizeof(o_initrd), "boot.initrd=%s", initrd);
	snprintf(o_cmdline, sizeof(o_cmdline), "boot.cmdline=%s", cmdline);

	static struct net_runner rs[2] = {
		{ .name = "smolvm", .key = "smolvm", .sink_l = -1, .source_l = -1 },
		{ .name = "qemu-microvm", .key = "qemu", .sink_l = -1, .source_l = -1 },
	};
	int nr = access(QEMU, X_OK) == 0 ? 2 : 1;
	for (int x = 0; x < nr; x++)
		snprintf(rs[x].ns, sizeof(rs[x].ns), "smolvm-bench-%d-%s", (int)getpid(),
		         rs[x].key);
	char *sargv[] = { (char *)ip, "netns",
		          "exec",     rs[0].ns,
		          smolvm,     "run",
		          "--set",    "machine.memory=256M",
		          "--set",    "machine.vcpus=1",
		          "--set",    o_kernel,
		          "--set",    o_initrd,
		          "--set",    o_cmdline,
		          "--set",    "device.net0.type=virtio-net",
		          "--set",    "net0.backend=tap",
		          "--set",    "net0.tap=tap0",
		          ini,        NULL };
	char *qargv[] = { (char *)ip,
		          "netns",
		          "exec",
		          rs[1].ns,
		          QEMU,
		          "-M",
		          "microvm,acpi=on,x-option-roms=off,rtc=off",
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
		          "-no-reboot",
		          "-serial",
		          "stdio",
		          "-global",
		          "virtio-mmio.force-legacy=false",
		          "-netdev",
		          "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off",
		          "-device",
		          "virtio-net-device,netdev=n0",
		          "-kernel",
		          vmlinux,
		          "-initrd",
		          initrd,
		          "-append",
		          cmdline,
		          NULL };
	memcpy(rs[0].argv, sargv, sizeof(sargv));
	memcpy(rs[1].argv, qargv, sizeof(qargv));

	char err[400];
	int bad = 0, made = 0;
	for (; made < nr; made++)
		if (ns_setup(&rs[made], ip, err, sizeof(err)) < 0) {
			printf("\nvirtio-net: not run: namespace %s: %s\n", rs[made].ns, err);
			made++; /* `ip netns add` may have made it */
			bad = 1;
			break;
		}
	if (!bad)
		for (int i = 0; i < runs; i++)
			for (int x = 0; x < nr; x++)
				run_one(&rs[x]);
	for (int x = 0; x < made; x++)
		ns_remove(&rs[x], ip);
	if (bad) {
		if (j)
			fprintf(j, "    \"virtio_net\": null%s\n", last ? "" : ",");
		return 1;
	}
	report(rs, nr, runs, where, now_s() - t0, j, last);
	for (int x = 0; x < nr; x++)
		bad |= !rs[x].n;
	return bad;
}
