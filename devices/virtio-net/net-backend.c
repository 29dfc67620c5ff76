/*
 * virtio-net's host side: a TAP device (frames with a virtio_net_hdr, the kernel's offloads),
 * passt (started here, reached over a UNIX socket in a private folder) or a UNIX stream
 * socket the user names (connect to it, or listen for one peer). On a stream each frame is
 * preceded by its length, 4 bytes big-endian: passt's framing (QEMU's -netdev stream).
 *
 * Every host fd is non-blocking: the I/O thread never waits on the host. The link is up
 * while the host side is there; a peer that leaves takes it down (VIRTIO_NET_S_LINK_UP
 * cleared, a configuration interrupt), and with listen = on the next peer brings it back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

extern char **environ;

#define PASST_WAIT_MS 5000 /* for passt's socket to appear */

/* ---- configuration -------------------------------------------------------------------- */

/* A program on PATH (or a path with a slash), executable: a malloc'd path or NULL. */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *found = NULL;

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? strdup(name) : NULL;
	copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		char *p;

		if (asprintf(&p, "%s/%s", d, name) < 0)
			break;
		if (access(p, X_OK) == 0)
			found = p;
		else
			free(p);
	}
	free(copy);
	return found;
}

static int add_arg(struct net *n, unsigned *argc, const char *fmt, const char *a, const char *b)
{
	char **v = realloc(n->passt_argv, (*argc + 2) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	n->passt_argv = v;
	if (asprintf(&v[*argc], fmt, a, b) < 0)
		return -ENOMEM;
	v[++*argc] = NULL;
	return 0;
}

/* forward = tcp:HOSTPORT:GUESTPORT (or udp): passt's -t/-u HOSTPORT:GUESTPORT. */
static int passt_forwards(struct net *n, unsigned *argc)
{
	const struct smol_host *h = n->host;
	const char *spec;
	int bad = 0;

	for (unsigned i = 0; h->cfg_str_at(n->dev, "forward", i, &spec) == 0; i++) {
		unsigned long hp, gp;
		char proto[4], end;

		if (sscanf(spec, "%3[a-z]:%lu:%lu%c", proto, &hp, &gp, &end) != 3 ||
		    (strcmp(proto, "tcp") && strcmp(proto, "udp")) || !hp || hp > 65535 || !gp ||
		    gp > 65535) {
			h->cfg_error(
			        n->dev, "forward",
			        "'%s': expected tcp:HOSTPORT:GUESTPORT or udp:HOSTPORT:GUESTPORT",
			        spec);
			bad = -EINVAL;
			continue;
		}
		char ports[16];

		snprintf(ports, sizeof(ports), "%lu:%lu", hp, gp);
		if (add_arg(n, argc, "%s", proto[0] == 't' ? "-t" : "-u", NULL) ||
		    add_arg(n, argc, "%s", ports, NULL))
			return -ENOMEM;
	}
	return bad;
}

static int configure_passt(struct net *n, const char *exe_cfg, bool check_only)
{
	const struct smol_host *h = n->host;
	unsigned argc = 0;

	n->passt_exe = find_program(exe_cfg ? exe_cfg : "passt");
	if (!n->passt_exe) {
		if (exe_cfg)
			h->cfg_error(n->dev, "passt", "'%s' is not an executable program", exe_cfg);
		else
			h->cfg_error(
			        n->dev, "backend",
			        "passt is not on PATH: install the package passt (apt-get install "
			        "passt), or name the program with passt = /path/to/passt");
		return -EINVAL;
	}
	/* the socket's folder comes at start: -s is filled in then */
	if (add_arg(n, &argc, "%s", n->passt_exe, NULL) || add_arg(n, &argc, "%s", "-f", NULL) ||
	    add_arg(n, &argc, "%s", "-q", NULL) || add_arg(n, &argc, "%s", "-1", NULL) ||
	    add_arg(n, &argc, "%s", "-s", NULL) || add_arg(n, &argc, "%s", "", NULL) ||
	    add_arg(n, &argc, "%s", "-m", NULL) || add_arg(n, &argc, "%s", "", NULL))
		return -ENOMEM;
	(void)check_only;
	return passt_forwards(n, &argc);
}

int net_backend_configure(struct net *n, const char *kind, bool check_only)
{
	const struct smol_host *h = n->host;
	const char *tap = NULL, *sock = NULL, *passt = NULL, *spec;
	int listen = 0, bad = 0;

	bad |= h->cfg_str(n->dev, "tap", NULL, &tap);
	bad |= h->cfg_str(n->dev, "socket", NULL, &sock);
	bad |= h->cfg_bool(n->dev, "listen", 0, &listen);
	bad |= h->cfg_str(n->dev, "passt", NULL, &passt);
	if (bad)
		return -EINVAL;
	if (!strcmp(kind, "tap"))
		n->kind = NET_TAP;
	else if (!strcmp(kind, "passt"))
		n->kind = NET_PASST;
	else if (!strcmp(kind, "socket"))
		n->kind = NET_SOCKET;
	else {
		h->cfg_error(n->dev, "backend", "'%s' is none of tap, passt, socket", kind);
		return -EINVAL;
	}
	static const char *const names[] = { "tap", "passt", "socket" };
	const struct {
		const char *key;
		bool set;
		enum net_kind kind;
	} only[] = {
		{ "tap", tap != NULL, NET_TAP },
		{ "socket", sock != NULL, NET_SOCKET },
		{ "listen", listen != 0, NET_SOCKET },
		{ "passt", passt != NULL, NET_PASST },
		{ "forward", h->cfg_str_at(n->dev, "forward", 0, &spec) == 0, NET_PASST },
	};
	for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
		if (only[i].set && n->kind != only[i].kind) {
			h->cfg_error(n->dev, only[i].key, "only for backend = %s",
			             names[only[i].kind]);
			bad = -EINVAL;
		}
	}
	if (bad)
		return bad;
	n->stream = n->kind != NET_TAP;
	switch (n->kind) {
	case NET_TAP:
		if (!tap || !*tap || strlen(tap) >= IFNAMSIZ || strchr(tap, '/')) {
			h->cfg_error(n->dev, "tap",
			             tap ? "'%s' is not an interface name (1 to %d "
			                   "characters, no '/')"
			                 : "required with backend = tap%s",
			             tap ? tap : "", IFNAMSIZ - 1);
			return -EINVAL;
		}
		snprintf(n->tap_name, sizeof(n->tap_name), "%s", tap);
		return 0;
	case NET_SOCKET:
		if (!sock || strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			h->cfg_error(n->dev, "socket",
			             sock ? "'%s' is longer than a UNIX socket path may be"
			                  : "required with backend = socket%s",
			             sock ? sock : "");
			return -EINVAL;
		}
		n->listen = listen;
		n->sock_path = h->cfg_path(n->dev, sock);
		return n->sock_path ? 0 : -ENOMEM;
	case NET_PASST: return configure_passt(n, passt, check_only);
	}
	return -EINVAL;
}

/* passt went away (or is told to): waits up to @wait_ms for it, and says how it ended when
 * that was not by our SIGTERM. */
static void passt_reap(struct net *n, int wait_ms)
{
	int status = 0;

	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(n->passt_pid, &status, WNOHANG);

		if (r == n->passt_pid)
			break;
		if (r < 0 && errno == ECHILD) {
			n->passt_pid = 0; /* not ours any more: never signal that pid */
			return;
		}
		if (r < 0 || waited >= wait_ms)
			return;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	n->passt_pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
		return;
	if (WIFSIGNALED(status))
		n->host->log(n->dev, SMOL_LOG_ERROR, "passt was killed by signal %d (%s)%s",
		             WTERMSIG(status), strsignal(WTERMSIG(status)),
		             WTERMSIG(status) == SIGSYS
		                     ? ": its seccomp filter refused a system call"
		                     : "");
	else
		n->host->log(n->dev, SMOL_LOG_ERROR, "passt exited with status %d",
		             WEXITSTATUS(status));
}

/* ---- the link ------------------------------------------------------------------------- */

void net_link_attach(struct net *n, int fd)
{
	n->fd = fd;
	n->tx_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (n->tx_fd < 0) /* polled for room through the same fd then: works, less precisely */
		n->host->log(n->dev, SMOL_LOG_WARN, "cannot dup the host fd: %s", strerror(errno));
	n->link_up = true;
	n->rx_len = n->rx_off = 0;
	n->rx_held = false;
	(void)virtio_worker_watch_io(&n->w, NET_RX, n->fd, SMOL_FD_IN);
	net_link_changed(n);
	n->host->log(n->dev, SMOL_LOG_INFO, "link up");
}

void net_link_down(struct net *n, const char *why)
{
	if (n->fd < 0)
		return;
	(void)virtio_worker_watch_io(&n->w, NET_RX, -1, 0);
	(void)virtio_worker_watch_io(&n->w, NET_TX, -1, 0);
	close(n->fd);
	if (n->tx_fd >= 0)
		close(n->tx_fd);
	n->fd = n->tx_fd = -1;
	n->link_up = false;
	net_rx_discard(n);
	net_tx_discard(n);
	net_link_changed(n);
	n->host->log(n->dev, n->listen ? SMOL_LOG_INFO : SMOL_LOG_WARN, "link down: %s%s", why,
	             n->listen ? "; waiting for the next peer" : "");
	if (n->passt_pid > 0)
		passt_reap(n, 0); /* under the worker lock: only if it is gone already */
}

/* ---- TAP ------------------------------------------------------------------------------ */

void net_tap_offloads(struct net *n)
{
	unsigned want = 0;

	if (n->kind != NET_TAP || n->fd < 0)
		return;
	if ((n->vm.status & VIRTIO_STATUS_DRIVER_OK) && net_has(n, VIRTIO_NET_F_GUEST_CSUM)) {
		want = TUN_F_CSUM;
		if (net_has(n, VIRTIO_NET_F_GUEST_TSO4))
			want |= TUN_F_TSO4;
		if (net_has(n, VIRTIO_NET_F_GUEST_TSO6))
			want |= TUN_F_TSO6;
		if (net_has(n, VIRTIO_NET_F_GUEST_ECN) && (want & (TUN_F_TSO4 | TUN_F_TSO6)))
			want |= TUN_F_TSO_ECN;
	}
	if (want == n->tun_offloads)
		return;
	if (ioctl(n->fd, TUNSETOFFLOAD, want) == 0)
		n->tun_offloads = want;
	else
		n->host->log(n->dev, SMOL_LOG_WARN, "TAP %s: TUNSETOFFLOAD 0x%x: %s", n->tap_name,
		             want, strerror(errno));
}

static int tap_open(struct net *n)
{
	const struct smol_host *h = n->host;
	bool existed = if_nametoindex(n->tap_name) != 0;
	struct ifreq ifr = { 0 };
	int hdr = NET_HDR, fd;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		h->cfg_error(n->dev, "tap", "cannot open /dev/net/tun: %s", strerror(errno));
		return -EINVAL;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", n->tap_name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr)) {
		int e = errno;

		h->cfg_error(
		        n->dev, "tap", "cannot attach to TAP %s: %s%s", n->tap_name, strerror(e),
		        e == EPERM   ? existed ? " (is it a TAP owned by another user, or "
		                                 "attached elsewhere?)"
		                               : " (create it first: ip tuntap add NAME mode tap "
		                                 "user USER; or run as root)"
		        : e == EBUSY ? " (attached to another program?)"
		                     : "");
		close(fd);
		return -EINVAL;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) || ioctl(fd, TUNSETOFFLOAD, 0)) {
		h->cfg_error(n->dev, "tap", "TAP %s: cannot set its virtio-net header: %s",
		             n->tap_name, strerror(errno));
		close(fd);
		return -EINVAL;
	}
	if (!existed) {
		/* made here: it goes with us; bring it up, the addresses are the user's */
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
			ifr.ifr_flags |= IFF_UP;
			(void)ioctl(s, SIOCSIFFLAGS, &ifr);
		}
		if (s >= 0)
			close(s);
		h->log(n->dev, SMOL_LOG_INFO, "created TAP %s (removed when the machine ends)",
		       n->tap_name);
	}
	n->vnet_hdr = true;
	virtio_worker_lock(&n->w);
	net_link_attach(n, fd);
	virtio_worker_unlock(&n->w);
	return 0;
}

/* ---- stream sockets ------------------------------------------------------------------- */

static int sock_connect(const char *path, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		close(fd);
		return -e;
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK)) {
		int e = errno;

		close(fd);
		return -e;
	}
	*out = fd;
	return 0;
}

/* listen = on: a peer connects (event loop, device lock held). One at a time. */
static void sock_accept(void *opaque, int lfd, uint32_t events)
{
	struct net *n = opaque;
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)events;
	if (fd < 0)
		return;
	virtio_worker_lock(&n->w);
	if (n->fd >= 0) {
		n->host->log(n->dev, SMOL_LOG_WARN,
		             "a second peer on %s refused: one peer at a time", n->sock_path);
		close(fd);
	} else {
		net_link_attach(n, fd);
	}
	virtio_worker_unlock(&n->w);
}

static int sock_listen(struct net *n)
{
	const struct smol_host *h = n->host;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	/* a socket left by an earlier run goes; anything else at the path is the user's */
	if (lstat(n->sock_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(n->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", n->sock_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1)) {
		h->cfg_error(n->dev, "socket", "cannot listen on %s: %s", n->sock_path,
		             strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	n->listen_fd = fd;
	if (h->fd_watch(n->dev, fd, SMOL_FD_IN, sock_accept, n) < 0) {
		h->log(n->dev, SMOL_LOG_ERROR, "cannot watch %s for a peer", n->sock_path);
		return -EINVAL;
	}
	h->log(n->dev, SMOL_LOG_INFO, "waiting for a peer on %s (link down until then)",
	       n->sock_path);
	return 0;
}

/* ---- passt ---------------------------------------------------------------------------- */

static int passt_start(struct net *n)
{
	const struct smol_host *h = n->host;
	const char *base = getenv("XDG_RUNTIME_DIR");
	char tmpl[256];
	unsigned argc = 0;
	int r, fd = -1;

	/* as root, passt binds as nobody, who may not reach root's runtime folder: /tmp */
	if (!base || !*base || geteuid() == 0 || access(base, W_OK) ||
	    strlen(base) > sizeof(((struct sockaddr_un *)0)->sun_path) - 40)
		base = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/smolvm-net.XXXXXX", base);
	if (!mkdtemp(tmpl)) {
		h->log(n->dev, SMOL_LOG_ERROR, "cannot make a folder for passt's socket (%s): %s",
		       tmpl, strerror(errno));
		return -EIO;
	}
	n->run_dir = strdup(tmpl);
	if (!n->run_dir || asprintf(&n->sock_path, "%s/passt.sock", tmpl) < 0)
		return -ENOMEM;
	/* started as root, passt becomes nobody before it makes its socket: the folder is
	 * theirs (nobody else's: mode 0700) */
	if (geteuid() == 0) {
		const struct passwd *pw = getpwnam("nobody");

		if (!pw || chown(tmpl, pw->pw_uid, pw->pw_gid)) {
			h->log(n->dev, SMOL_LOG_ERROR,
			       "cannot give %s to the user nobody, whom passt becomes when started "
			       "as root: %s",
			       tmpl, pw ? strerror(errno) : "no such user");
			return -EIO;
		}
	}
	while (n->passt_argv[argc])
		argc++;
	free(n->passt_argv[5]); /* "-s" "" at 4 and 5, "-m" "" at 6 and 7: configure_passt() */
	n->passt_argv[5] = strdup(n->sock_path);
	free(n->passt_argv[7]);
	/* the MTU passt tells the guest by DHCP: the device's (passt's own is 65520, above
	 * what VIRTIO_NET_F_MTU lets the driver take) */
	if (!n->passt_argv[5] || asprintf(&n->passt_argv[7], "%u", n->mtu) < 0)
		return -ENOMEM;
	/* smolvm blocks the signals its event loop reads, and ignores SIGPIPE: passt gets the
	 * defaults, so the SIGTERM that stops it works */
	posix_spawnattr_t attr;
	sigset_t none, deflt;

	sigemptyset(&none);
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGPIPE);
	sigaddset(&deflt, SIGTERM);
	sigaddset(&deflt, SIGINT);
	sigaddset(&deflt, SIGHUP);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	r = posix_spawn(&n->passt_pid, n->passt_exe, NULL, &attr, n->passt_argv, environ);
	posix_spawnattr_destroy(&attr);
	if (r) {
		n->passt_pid = 0;
		h->log(n->dev, SMOL_LOG_ERROR, "cannot start %s: %s", n->passt_exe, strerror(r));
		return -EIO;
	}
	/* passt makes its socket once it is ready */
	for (int waited = 0;; waited += 10) {
		int status;

		r = sock_connect(n->sock_path, &fd);
		if (r == 0)
			break;
		if (waitpid(n->passt_pid, &status, WNOHANG) == n->passt_pid) {
			n->passt_pid = 0;
			h->log(n->dev, SMOL_LOG_ERROR,
			       "passt (%s) exited with status %d before it "
			       "took a connection (see its messages above)",
			       n->passt_exe,
			       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
			return -EIO;
		}
		if (waited >= PASST_WAIT_MS) {
			h->log(n->dev, SMOL_LOG_ERROR,
			       "passt made no socket at %s within %d ms: %s", n->sock_path,
			       PASST_WAIT_MS, strerror(-r));
			return -EIO;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	h->log(n->dev, SMOL_LOG_DEBUG, "passt (pid %d) on %s", (int)n->passt_pid, n->sock_path);
	virtio_worker_lock(&n->w);
	net_link_attach(n, fd);
	virtio_worker_unlock(&n->w);
	return 0;
}

/* ---- start and stop ------------------------------------------------------------------- */

int net_backend_start(struct net *n)
{
	int r, fd;

	switch (n->kind) {
	case NET_TAP: return tap_open(n);
	case NET_PASST: return passt_start(n) ? -EINVAL : 0;
	case NET_SOCKET:
		if (n->listen)
			return sock_listen(n);
		r = sock_connect(n->sock_path, &fd);
		if (r) {
			n->host->cfg_error(n->dev, "socket", "cannot connect to %s: %s%s",
			                   n->sock_path, strerror(-r),
			                   r == -ENOENT || r == -ECONNREFUSED
			                           ? " (is the peer listening? or listen = on)"
			                           : "");
			return -EINVAL;
		}
		virtio_worker_lock(&n->w);
		net_link_attach(n, fd);
		virtio_worker_unlock(&n->w);
		return 0;
	}
	return -EINVAL;
}

void net_backend_stop(struct net *n)
{
	if (n->fd >= 0)
		close(n->fd);
	if (n->tx_fd >= 0)
		close(n->tx_fd);
	n->fd = n->tx_fd = -1;
	if (n->listen_fd >= 0) {
		(void)n->host->fd_unwatch(n->dev, n->listen_fd);
		close(n->listen_fd);
		unlink(n->sock_path);
	}
	if (n->passt_pid > 0) {
		/* -1: passt leaves when its one client goes; make sure */
		passt_reap(n, 200);
		if (n->passt_pid > 0)
			kill(n->passt_pid, SIGTERM);
		passt_reap(n, 5000);
		if (n->passt_pid > 0) {
			kill(n->passt_pid, SIGKILL);
			passt_reap(n, 5000);
		}
	}
	if (n->run_dir) {
		unlink(n->sock_path);
		rmdir(n->run_dir);
	}
	for (unsigned i = 0; n->passt_argv && n->passt_argv[i]; i++)
		free(n->passt_argv[i]);
	free(n->passt_argv);
	free(n->passt_exe);
	free(n->run_dir);
	free(n->sock_path);
}
