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
	        "                          ends (status 0) and the guest never runs again\n");
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
	} else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "pause") == 0 ||
	           strcmp(cmd, "resume") == 0) {
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
	} else {
		const char *state = str_of(o, "state");
		printf("%s\n", state ? state : "ok");
	}
}

int ctl_main(int argc, char **argv)
{
	int status = CTL_REFUSED, fd;
	char *line, *reply = NULL, err[256];
	size_t len;
	struct json_obj o = { 0 };

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		ctl_usage();
		return CTL_USAGE;
	}
	if (!(line = build_request(argc, argv))) {
		ctl_usage();
		return CTL_USAGE;
	}
	if ((fd = ctl_connect(argv[0])) < 0) {
		free(line);
		return CTL_USAGE;
	}
	int r = send_all(fd, line, strlen(line));
	if (r < 0) {
		fprintf(stderr, "smolvm: ctl: %s: sending the request: %s\n", argv[0],
		        strerror(-r));
		goto out;
	}
	if (!(reply = read_reply(fd, argv[0], &len)))
		goto out;
	if (json_parse_object(reply, len, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "smolvm: ctl: %s: the machine's reply is not valid: %s\n", argv[0],
		        err);
		goto out;
	}
	const char *msg = str_of(&o, "error");
	const struct json_value *ok = json_get(&o, "ok");
	if (msg) {
		fprintf(stderr, "smolvm: ctl: %s: %s: %s\n", argv[0], argv[1], msg);
	} else if (!ok || ok->type != JSON_BOOL || !ok->b) {
		fprintf(stderr,
		        "smolvm: ctl: %s: the machine's reply has neither \"ok\" nor "
		        "\"error\"\n",
		        argv[0]);
	} else {
		print_reply(argv[1], &o);
		status = CTL_OK;
	}
out:
	fflush(stdout);
	json_obj_free(&o);
	free(reply);
	free(line);
	close(fd);
	return status;
}
