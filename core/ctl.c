/* ctl.c: `smolvm ctl SOCK COMMAND [ARGS]`, the control socket's client: one request, one
 * reply, an exit status (0 done, 1 the machine refused or failed, 2 bad usage or no machine
 * at SOCK). */
#include "control.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { CTL_OK = 0, CTL_REFUSED = 1, CTL_USAGE = 2 };

static void ctl_usage(void)
{
	fprintf(stderr,
	        "usage: smolvm ctl SOCK COMMAND\n"
	        "  status                  the machine's state, vCPUs, memory, uptime\n"
	        "  pause                   stop the guest's vCPUs (and devices' threads)\n"
	        "  resume                  let a paused guest run again\n"
	        "  snapshot FILE [--stop]  write the machine to FILE; with --stop the run then\n"
	        "                          ends (status 0) and the guest never runs again\n"
	        "  devices                 every device: type, MMIO and port ranges, IRQs\n"
	        "  methods                 every method devices export: signature and help\n"
	        "  call DEV.METHOD [ARG...]\n"
	        "                          call a device's method (arguments as its signature\n"
	        "                          says); prints the value, then each string out\n"
	        "  stats [--json]          exits per vCPU, accesses and counters per device\n"
	        "A COMMAND followed by --json prints the machine's reply as it came (one JSON\n"
	        "line; README, \"The control socket\").\n");
}

/* FILE as an absolute path (relative ones are relative to our working directory). */
static int absolute(const char *file, char *out, size_t len)
{
	char cwd[PATH_MAX];
	int n;
	if (file[0] == '/') {
		n = snprintf(out, len, "%s", file);
	} else {
		if (!getcwd(cwd, sizeof(cwd))) {
			fprintf(stderr, "smolvm: ctl: cannot resolve '%s': getcwd: %s\n", file,
			        strerror(errno));
			return -1;
		}
		n = snprintf(out, len, "%s/%s", strcmp(cwd, "/") ? cwd : "", file);
	}
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "smolvm: ctl: '%s': the path is too long\n", file);
		return -1;
	}
	return 0;
}

/* The request line of `call DEV.METHOD ARG...`; NULL after printing why. */
static char *build_call(int argc, char **argv)
{
	struct jsonw w;
	char *line;
	size_t len;
	const char *target = argc > 2 ? argv[2] : "";
	const char *dot = strrchr(target, '.');
	if (!dot || dot == target || !dot[1]) {
		fprintf(stderr, "smolvm: ctl: call needs DEV.METHOD ('%s' is not)\n", target);
		return NULL;
	}
	jsonw_init(&w, CONTROL_LINE_MAX);
	jsonw_obj_begin(&w, NULL);
	jsonw_str(&w, "cmd", "call");
	jsonw_strn(&w, "device", target, (size_t)(dot - target));
	jsonw_str(&w, "method", dot + 1);
	jsonw_arr_begin(&w, "args");
	for (int i = 3; i < argc; i++)
		jsonw_str(&w, NULL, argv[i]);
	jsonw_arr_end(&w);
	jsonw_obj_end(&w);
	if (jsonw_finish(&w, "\n", &line, &len) < 0) {
		fprintf(stderr, "smolvm: ctl: call: the request is too long\n");
		return NULL;
	}
	return line;
}

/* Builds the request line for argv[1..]; NULL after printing why. */
static char *build_request(int argc, char **argv)
{
	const char *cmd = argv[1];
	const char *file = NULL;
	bool stop = false;
	char path[PATH_MAX];
	struct jsonw w;
	char *line;
	size_t len;

	if (strcmp(cmd, "snapshot") == 0) {
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--stop") == 0) {
				stop = true;
			} else if (argv[i][0] == '-' && argv[i][1]) {
				fprintf(stderr, "smolvm: ctl: snapshot: unknown option '%s'\n",
				        argv[i]);
				return NULL;
			} else if (file) {
				fprintf(stderr, "smolvm: ctl: snapshot: one FILE ('%s' and '%s')\n",
				        file, argv[i]);
				return NULL;
			} else {
				file = argv[i];
			}
		}
		if (!file || !file[0]) {
			fprintf(stderr, "smolvm: ctl: snapshot needs a FILE\n");
			return NULL;
		}
		if (absolute(file, path, sizeof(path)) < 0)
			return NULL;
	} else if (strcmp(cmd, "call") == 0) {
		return build_call(argc, argv);
	} else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "pause") == 0 ||
	           strcmp(cmd, "resume") == 0 || strcmp(cmd, "devices") == 0 ||
	           strcmp(cmd, "methods") == 0 || strcmp(cmd, "stats") == 0) {
		if (argc > 2) {
			fprintf(stderr, "smolvm: ctl: %s takes no arguments ('%s')\n", cmd,
			        argv[2]);
			return NULL;
		}
	} else {
		fprintf(stderr, "smolvm: ctl: unknown command '%s'\n", cmd);
		return NULL;
	}
	jsonw_init(&w, CONTROL_LINE_MAX);
	jsonw_obj_begin(&w, NULL);
	jsonw_str(&w, "cmd", cmd);
	if (file) {
		jsonw_str(&w, "path", path);
		jsonw_bool(&w, "stop", stop);
	}
	jsonw_obj_end(&w);
	if (jsonw_finish(&w, "\n", &line, &len) < 0) {
		fprintf(stderr, "smolvm: ctl: %s: the request is too long\n", cmd);
		return NULL;
	}
	return line;
}

static int ctl_connect(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!sock[0] || strlen(sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "smolvm: ctl: '%s': a socket path has 1 to %zu bytes\n", sock,
		        sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "smolvm: ctl: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	int e = errno;
	close(fd);
	if (e == ENOENT)
		fprintf(stderr,
		        "smolvm: ctl: %s: no such socket (is a machine running with "
		        "--control %s?)\n",
		        sock, sock);
	else if (e == ECONNREFUSED)
		fprintf(stderr, "smolvm: ctl: %s: nobody is listening (the machine has ended)\n",
		        sock);
	else
		fprintf(stderr, "smolvm: ctl: %s: cannot connect: %s\n", sock, strerror(e));
	return -1;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads the reply line (without its newline) into a malloc'd buffer; NULL after printing
 * why. */
static char *read_reply(int fd, const char *sock, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		char *nl = memchr(buf, '\n', n);
		if (nl) {
			*len = (size_t)(nl - buf);
			return buf;
		}
		if (n == cap) {
			char *b = cap > CONTROL_REPLY_MAX ? NULL : realloc(buf, cap * 2);
			if (!b) {
				fprintf(stderr, "smolvm: ctl: %s: the reply is too long\n", sock);
				break;
			}
			buf = b;
			cap *= 2;
		}
		ssize_t r = recv(fd, buf + n, cap - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr,
			        "smolvm: ctl: %s: the machine closed the connection "
			        "without a reply%s%s\n",
			        sock, r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
			break;
		}
		n += (size_t)r;
	}
	free(buf);
	return NULL;
}

static const char *str_of(const struct json_obj *o, const char *key)
{
	const struct json_value *v = json_get(o, key);
	return v && v->type == JSON_STRING ? v->str : NULL;
}

/* Array member @p key of @p o, parsed once into @p arr (no elements when it is absent or not
 * an array); json_obj_free() it. */
static void array_of(const struct json_obj *o, const char *key, struct json_obj *arr)
{
	const struct json_value *v = json_get(o, key);
	arr->n = 0;
	arr->strings = NULL;
	if (v && v->type == JSON_ARRAY && json_parse_array(v->raw, v->raw_len, arr, NULL, 0) < 0)
		json_obj_free(arr);
}

/* Object member @p key of @p o (or element @p key NULL, index @p k of an array parsed by
 * array_of), parsed into @p out: 0, or -1 (nothing to free) when it is absent or not an
 * object. */
static int object_at(const struct json_obj *o, const char *key, size_t k, struct json_obj *out)
{
	const struct json_value *v = key ? json_get(o, key) : k < o->n ? &o->m[k].v : NULL;
	out->n = 0;
	out->strings = NULL;
	if (!v || v->type != JSON_OBJECT)
		return -1;
	if (json_parse_object(v->raw, v->raw_len, out, NULL, 0) == 0)
		return 0;
	json_obj_free(out);
	return -1;
}

static uint64_t u64_of(const struct json_obj *o, const char *key)
{
	uint64_t n = 0;
	const struct json_value *v = json_get(o, key);
	if (v)
		json_number_u64(v, &n);
	return n;
}

/* "0x3f8+0x8,0x2f8+0x8" for array member @p key (objects with base and size) of @p d */
static void print_ranges(const struct json_obj *d, const char *key)
{
	struct json_obj arr, r;
	unsigned printed = 0;
	array_of(d, key, &arr);
	for (size_t k = 0; k < arr.n; k++) {
		if (object_at(&arr, NULL, k, &r) < 0)
			continue;
		printf("%s0x%llx+0x%llx", printed++ ? "," : "",
		       (unsigned long long)u64_of(&r, "base"),
		       (unsigned long long)u64_of(&r, "size"));
		json_obj_free(&r);
	}
	if (!printed)
		printf("-");
	json_obj_free(&arr);
}

static void print_devices(const struct json_obj *o)
{
	struct json_obj devs, d;
	printf("%-16s %-16s %-24s %-16s %-8s %s\n", "NAME", "TYPE", "MMIO", "PORTS", "IRQS",
	       "METHODS");
	array_of(o, "devices", &devs);
	for (size_t k = 0; k < devs.n; k++) {
		if (object_at(&devs, NULL, k, &d) < 0)
			continue;
		const struct json_value *irqs = json_get(&d, "irqs");
		printf("%-16s %-16s ", str_of(&d, "name"), str_of(&d, "type"));
		print_ranges(&d, "mmio");
		printf(" ");
		print_ranges(&d, "pio");
		printf(" %.*s %llu\n", irqs ? (int)irqs->raw_len : 2, irqs ? irqs->raw : "[]",
		       (unsigned long long)u64_of(&d, "methods"));
		json_obj_free(&d);
	}
	json_obj_free(&devs);
}

static void print_methods(const struct json_obj *o)
{
	struct json_obj devs, d, methods, m;
	array_of(o, "devices", &devs);
	for (size_t k = 0; k < devs.n; k++) {
		if (object_at(&devs, NULL, k, &d) < 0)
			continue;
		printf("%s (%s):\n", str_of(&d, "name"), str_of(&d, "type"));
		array_of(&d, "methods", &methods);
		for (size_t j = 0; j < methods.n; j++) {
			if (object_at(&methods, NULL, j, &m) < 0)
				continue;
			printf("  %s.%-24s %-12s %s\n", str_of(&d, "name"), str_of(&m, "name"),
			       str_of(&m, "signature"), str_of(&m, "help"));
			json_obj_free(&m);
		}
		json_obj_free(&methods);
		json_obj_free(&d);
	}
	if (!devs.n)
		printf("no device exports methods\n");
	json_obj_free(&devs);
}

static void print_call(const struct json_obj *o)
{
	struct json_obj out;
	const struct json_value *v = json_get(o, "value");
	if (v && v->type == JSON_STRING)
		printf("%s\n", v->str);
	else if (v)
		printf("%.*s\n", (int)v->raw_len, v->raw);
	array_of(o, "out", &out);
	for (size_t k = 0; k < out.n; k++)
		if (out.m[k].v.type == JSON_STRING)
			printf("%s\n", out.m[k].v.str);
	json_obj_free(&out);
}

/* " name=value" for each member of @p in but @p skip (raw values) */
static void print_members(const struct json_obj *in, const char *skip)
{
	for (size_t k = 0; k < in->n; k++)
		if (!skip || strcmp(in->m[k].key, skip))
			printf(" %s=%.*s", in->m[k].key, (int)in->m[k].v.raw_len, in->m[k].v.raw);
}

void ctl_print_stats(const struct json_obj *o)
{
	struct json_obj arr, x, in;
	printf("uptime %.1f s, %s\n", (double)u64_of(o, "uptime_ms") / 1000.0,
	       str_of(o, "state") ? str_of(o, "state") : "?");
	array_of(o, "vcpus", &arr);
	for (size_t k = 0; k < arr.n; k++) {
		if (object_at(&arr, NULL, k, &x) < 0)
			continue;
		bool exits = object_at(&x, "exits", 0, &in) == 0;
		printf("vCPU %llu: %llu exits:", (unsigned long long)u64_of(&x, "index"),
		       (unsigned long long)(exits ? u64_of(&in, "total") : 0));
		if (exits)
			print_members(&in, "total");
		printf("\n");
		json_obj_free(&in);
		json_obj_free(&x);
	}
	json_obj_free(&arr);
	array_of(o, "devices", &arr);
	for (size_t k = 0; k < arr.n; k++) {
		if (object_at(&arr, NULL, k, &x) < 0)
			continue;
		printf("%-12s %-14s mmio r/w %llu/%llu  pio r/w %llu/%llu\n", str_of(&x, "name"),
		       str_of(&x, "type"), (unsigned long long)u64_of(&x, "mmio_reads"),
		       (unsigned long long)u64_of(&x, "mmio_writes"),
		       (unsigned long long)u64_of(&x, "pio_reads"),
		       (unsigned long long)u64_of(&x, "pio_writes"));
		if (object_at(&x, "counters", 0, &in) == 0) {
			printf("  ");
			print_members(&in, NULL);
			printf("\n");
			json_obj_free(&in);
		}
		json_obj_free(&x);
	}
	json_obj_free(&arr);
	printf("unhandled:");
	if (object_at(o, "unhandled", 0, &in) == 0) {
		print_members(&in, NULL);
		json_obj_free(&in);
	}
	printf("\n");
}

static void print_reply(const char *cmd, const struct json_obj *o)
{
	const struct json_value *v;
	uint64_t n;
	if (strcmp(cmd, "status") == 0) {
		for (size_t k = 0; k < o->n; k++) {
			const struct json_member *m = &o->m[k];
			if (strcmp(m->key, "ok") == 0)
				continue;
			if (m->v.type == JSON_STRING)
				printf("%s: %s\n", m->key, m->v.str);
			else
				printf("%s: %.*s\n", m->key, (int)m->v.raw_len, m->v.raw);
		}
	} else if (strcmp(cmd, "snapshot") == 0) {
		const char *path = str_of(o, "path");
		printf("snapshot written to %s", path ? path : "?");
		if ((v = json_get(o, "bytes")) && json_number_u64(v, &n) == 0)
			printf(" (%llu bytes", (unsigned long long)n);
		else
			printf(" (");
		if ((v = json_get(o, "ms")) && json_number_u64(v, &n) == 0)
			printf(", %llu ms", (unsigned long long)n);
		printf(")\n");
		if ((v = json_get(o, "stopped")) && v->type == JSON_BOOL && v->b)
			printf("the machine is stopping\n");
	} else if (strcmp(cmd, "devices") == 0) {
		print_devices(o);
	} else if (strcmp(cmd, "methods") == 0) {
		print_methods(o);
	} else if (strcmp(cmd, "call") == 0) {
		print_call(o);
	} else if (strcmp(cmd, "stats") == 0) {
		ctl_print_stats(o);
	} else {
		const char *state = str_of(o, "state");
		printf("%s\n", state ? state : "ok");
	}
}

/* Sends @p line on @p fd and parses the reply into @p o (its text in *reply, freed by the
 * caller). CTL_OK, or CTL_REFUSED after printing why (the machine's error included). */
static int exchange(int fd, const char *sock, const char *cmd, const char *line, char **reply,
                    struct json_obj *o)
{
	char err[256];
	size_t len;
	int r = send_all(fd, line, strlen(line));
	if (r < 0) {
		fprintf(stderr, "smolvm: ctl: %s: sending the request: %s\n", sock, strerror(-r));
		return CTL_REFUSED;
	}
	if (!(*reply = read_reply(fd, sock, &len)))
		return CTL_REFUSED;
	(*reply)[len] = '\0';
	if (json_parse_object(*reply, len, o, err, sizeof(err)) < 0) {
		fprintf(stderr, "smolvm: ctl: %s: the machine's reply is not valid: %s\n", sock,
		        err);
		return CTL_REFUSED;
	}
	const char *msg = str_of(o, "error");
	const struct json_value *ok = json_get(o, "ok");
	if (msg) {
		fprintf(stderr, "smolvm: ctl: %s: %s: %s\n", sock, cmd, msg);
		return CTL_REFUSED;
	}
	if (!ok || ok->type != JSON_BOOL || !ok->b) {
		fprintf(stderr,
		        "smolvm: ctl: %s: the machine's reply has neither \"ok\" nor \"error\"\n",
		        sock);
		return CTL_REFUSED;
	}
	return CTL_OK;
}

int ctl_main(int argc, char **argv)
{
	int status = CTL_REFUSED, fd;
	char *line, *reply = NULL;
	struct json_obj o = { 0 };
	bool raw = false;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		ctl_usage();
		return CTL_USAGE;
	}
	/* COMMAND --json ...: the reply as it came */
	char *args[argc];
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (i == 2 && strcmp(argv[i], "--json") == 0)
			raw = true;
		else
			args[n++] = argv[i];
	}
	if (!(line = build_request(n, args))) {
		ctl_usage();
		return CTL_USAGE;
	}
	if ((fd = ctl_connect(argv[0])) < 0) {
		free(line);
		return CTL_USAGE;
	}
	status = exchange(fd, argv[0], argv[1], line, &reply, &o);
	if (status == CTL_OK) {
		if (raw)
			printf("%s\n", reply);
		else
			print_reply(argv[1], &o);
	}
	fflush(stdout);
	json_obj_free(&o);
	free(reply);
	free(line);
	close(fd);
	return status;
}

int top_main(int argc, char **argv)
{
	unsigned interval_ms = 1000;
	long count = -1;
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (*end || v < 100 || v > 3600000) {
				fprintf(stderr,
				        "smolvm: top: --interval takes 100 to 3600000 ms\n");
				return CTL_USAGE;
			}
			interval_ms = (unsigned)v;
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			count = strtol(argv[++i], &end, 10);
			if (*end || count < 1) {
				fprintf(stderr, "smolvm: top: --count takes a positive number\n");
				return CTL_USAGE;
			}
		} else {
			fprintf(stderr, "usage: smolvm top SOCK [--interval MS] [--count N]\n"
			                "  the machine's statistics (`smolvm ctl SOCK stats`), "
			                "refreshed every\n"
			                "  MS milliseconds (1000), N times (until interrupted)\n");
			return CTL_USAGE;
		}
	}
	if (argc < 1) {
		fprintf(stderr, "usage: smolvm top SOCK [--interval MS] [--count N]\n");
		return CTL_USAGE;
	}
	int fd = ctl_connect(argv[0]);
	if (fd < 0)
		return CTL_USAGE;
	bool tty = isatty(STDOUT_FILENO);
	int status = CTL_OK;
	for (long k = 0; count < 0 || k < count; k++) {
		char *reply = NULL;
		struct json_obj o = { 0 };
		if (k) {
			struct timespec ts = { interval_ms / 1000,
				               (long)(interval_ms % 1000) * 1000000 };
			nanosleep(&ts, NULL);
		}
		status = exchange(fd, argv[0], "stats", "{\"cmd\":\"stats\"}\n", &reply, &o);
		if (status == CTL_OK) {
			if (tty)
				printf("\033[H\033[2J"); /* home, clear */
			else if (k)
				printf("\n");
			printf("smolvm top %s\n", argv[0]);
			ctl_print_stats(&o);
			fflush(stdout);
		}
		json_obj_free(&o);
		free(reply);
		if (status != CTL_OK)
			break;
	}
	close(fd);
	return status;
}
