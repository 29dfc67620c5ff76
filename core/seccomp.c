/*
 * seccomp.c: each thread of a running machine gets the seccomp filter of its kind before the
 * guest runs one instruction ([machine] seccomp = on, the default; seccomp-policy.c says
 * what each kind may do).
 *
 * Filters belong to threads, and a thread inherits its creator's: so no filter is loaded
 * with SECCOMP_FILTER_FLAG_TSYNC (that would give every thread the same one), and the main
 * thread loads its own last. The order, in machine_run:
 *
 *   1. seccomp_prepare (main): the three BPF programs are built, the syscall names for the
 *      report looked up, the SIGSYS handler installed: nothing after this allocates in a
 *      thread that is about to be filtered.
 *   2. the vCPU threads start (unfiltered main creates them: they inherit nothing); each one
 *      loads the vCPU filter first thing (seccomp_vcpu_enter) and waits at a gate.
 *   3. seccomp_lock_down (main): every other thread of the process (the devices' I/O
 *      threads, started by plugins during setup: found in /proc/self/task) is sent
 *      SC_SIGNAL, whose handler loads the device filter in that thread; main waits for each.
 *      Then main loads its own filter and opens the gate: the guest runs.
 *
 * A thread started later inherits its creator's filter (stacked filters are ANDed). With
 * [machine] on_reboot = restart the main thread stays unfiltered: the next boot sets the
 * whole machine up again on it (opens files, makes a VM, starts threads and passt).
 *
 * A forbidden call raises SIGSYS (SCMP_ACT_TRAP); the handler reports the thread's kind and
 * name and the call, and the process exits with status 159 (128 + SIGSYS, what a shell
 * shows for a death by SIGSYS). seccomp = log lets every call through and has the kernel log
 * the ones outside the policy (dmesg, audit type 1326): how to find what a plugin needs.
 */
#define _GNU_SOURCE
#include "seccomp-filter.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "machine.h"
#include "vcpu.h"

#define SC_SIGNAL (SIGRTMAX - 1) /* asks a device thread to load its filter */
#define SC_STATUS 159 /* the exit status after a forbidden call */
#define SC_MAX_NR 512 /* syscall numbers named in the report */
#define SC_MAX_DEV 256 /* device threads */
#define SC_WAIT_MS                                                                                 \
	10000 /* for one thread to load its filter (2 s was too short in a loaded nest) */

struct sc_thread {
	pid_t tid;
	char name[16];
	volatile sig_atomic_t done;
	volatile int result; /* 0 or -errno */
};

static struct {
	bool active; /* filters apply to this run */
	struct sock_fprog prog[3];
	char *names[SC_MAX_NR];
	bool named;
	pid_t pid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned entered; /* vCPU threads past their filter */
	bool gate_open;
	pid_t vcpu_tid[MACHINE_MAX_VCPUS];
	struct sc_thread dev[SC_MAX_DEV];
	unsigned n_dev;
	sem_t ack;
} sc = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* what the SIGSYS handler says about this thread */
static __thread struct {
	const char *kind;
	char name[16];
} me;

/* ---- configuration ---------------------------------------------------------------------- */

void seccomp_configure(struct machine *m)
{
	struct cfg *c = m->cfg;
	struct cfg_section *s = cfg_section(c, CFG_MACHINE, NULL);
	/* A sanitizer's runtime makes calls no policy here knows (LeakSanitizer clones a thread
	 * at exit, ThreadSanitizer keeps a background thread): sanitized builds default to off */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	const char *mode = "off", *allow = NULL;
#else
	const char *mode = "on", *allow = NULL;
#endif
	char err[160];

	m->seccomp = SECCOMP_OFF;
	m->seccomp_allow = NULL;
	if (s)
		cfg_get_str(c, s, "seccomp", mode, &mode);
	if (!strcmp(mode, "on"))
		m->seccomp = SECCOMP_ON;
	else if (!strcmp(mode, "off"))
		m->seccomp = SECCOMP_OFF;
	else if (!strcmp(mode, "log"))
		m->seccomp = SECCOMP_LOG;
	else
		cfg_error(c, s, cfg_get(s, "seccomp"), "seccomp '%s': must be on, off or log",
		          mode);
	if (s)
		cfg_get_str(c, s, "seccomp_allow", NULL, &allow);
	if (allow && seccomp_check_allow(allow, err, sizeof(err)) < 0)
		cfg_error(c, s, cfg_get(s, "seccomp_allow"), "seccomp_allow: %s", err);
	m->seccomp_allow = allow;
}

/* ---- the handlers (async-signal-safe: write, exit_group, seccomp, prctl) ----------------- */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (s && *s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, unsigned long v)
{
	char d[24];
	int n = 0;
	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < (int)sizeof(d));
	while (n && at < cap)
		buf[at++] = d[--n];
	return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char buf[512];
	size_t n = 0, cap = sizeof(buf) - 1;
	int nr = si->si_syscall;
	bool native = si->si_arch == AUDIT_ARCH_X86_64;
	const char *name = native && nr >= 0 && nr < SC_MAX_NR ? sc.names[nr] : NULL;

	(void)sig;
	(void)uc;
	n = put(buf, n, cap, "smolvm: seccomp: thread ");
	if (me.kind) {
		n = put(buf, n, cap, me.kind);
		n = put(buf, n, cap, " (");
		n = put(buf, n, cap, me.name);
		n = put(buf, n, cap, ")");
	} else {
		/* started by a filtered thread: it has its creator's filter */
		n = put(buf, n, cap, "started during the run (tid ");
		n = put_num(buf, n, cap, (unsigned long)syscall(SYS_gettid));
		n = put(buf, n, cap, ")");
	}
	n = put(buf, n, cap, " made a forbidden system call: ");
	n = put(buf, n, cap, name ? name : native ? "unknown" : "of another architecture");
	n = put(buf, n, cap, " (nr ");
	n = put_num(buf, n, cap, (unsigned long)(unsigned)nr);
	n = put(buf, n, cap,
	        ")\nsmolvm: seccomp: a plugin that needs it: [machine] "
	        "seccomp_allow = ");
	n = put(buf, n, cap, name ? name : "NAME");
	n = put(buf, n, cap, "; to debug: [machine] seccomp = off (or log)\n");
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* nowhere else to say it */
	}
	syscall(SYS_exit_group, SC_STATUS);
}

static int load(enum sc_kind k)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &sc.prog[k]))
		return -errno;
	return 0;
}

/* SC_SIGNAL, in a device thread that lock_down listed */
static void on_install_signal(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	pid_t tid = (pid_t)syscall(SYS_gettid);

	(void)sig;
	(void)uc;
	if (si->si_code != SI_TKILL || si->si_pid != sc.pid)
		goto out;
	for (unsigned i = 0; i < sc.n_dev; i++) {
		struct sc_thread *t = &sc.dev[i];
		if (t->tid != tid || t->done)
			continue;
		me.kind = seccomp_kind_name(SC_DEVICE);
		memcpy(me.name, t->name, sizeof(me.name));
		t->result = load(SC_DEVICE);
		t->done = 1;
		sem_post(&sc.ack);
		break;
	}
out:
	errno = saved;
}

/* ---- setting up ------------------------------------------------------------------------- */

int seccomp_prepare(struct machine *m)
{
	char err[256];
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };

	sc.active = false;
	sc.entered = 0;
	sc.gate_open = false;
	sc.n_dev = 0;
	memset(sc.vcpu_tid, 0, sizeof(sc.vcpu_tid));
	if (m->seccomp == SECCOMP_OFF) {
		log_debug("seccomp: off ([machine] seccomp = off)");
		return 0;
	}
	for (int k = SC_MAIN; k <= SC_DEVICE; k++) {
		free(sc.prog[k].filter);
		sc.prog[k].filter = NULL;
		if (seccomp_build(k, m->seccomp_allow, m->seccomp == SECCOMP_LOG, &sc.prog[k], err,
		                  sizeof(err)) < 0) {
			log_err("seccomp: cannot build the %s threads' filter: %s",
			        seccomp_kind_name(k), err);
			return -EINVAL;
		}
	}
	for (int nr = 0; nr < SC_MAX_NR && !sc.named; nr++)
		sc.names[nr] = seccomp_name_of(nr);
	sc.named = true;
	sc.pid = getpid();
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) || sem_init(&sc.ack, 0, 0)) {
		log_err("seccomp: cannot install the SIGSYS handler: %s", strerror(errno));
		return -EINVAL;
	}
	sc.active = true;
	return 0;
}

bool seccomp_vcpu_enter(struct vcpu *v)
{
	int r = 0;

	if (!sc.active)
		return true;
	snprintf(me.name, sizeof(me.name), "vcpu%u", v->index);
	me.kind = seccomp_kind_name(SC_VCPU);
	pthread_setname_np(pthread_self(), me.name);
	r = load(SC_VCPU);
	pthread_mutex_lock(&sc.lock);
	if (v->index < MACHINE_MAX_VCPUS)
		sc.vcpu_tid[v->index] = (pid_t)syscall(SYS_gettid);
	sc.entered++;
	pthread_cond_broadcast(&sc.cond);
	while (!sc.gate_open)
		pthread_cond_wait(&sc.cond, &sc.lock);
	pthread_mutex_unlock(&sc.lock);
	if (r < 0) {
		log_err("seccomp: vCPU %u cannot load its filter: %s", v->index, strerror(-r));
		machine_request_exit(v->m, STATUS_ERROR);
		return false;
	}
	return true;
}

/* Waits for @started vCPU threads to have loaded their filter. */
static int wait_vcpus(unsigned started)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&sc.lock);
	while (sc.entered < started && r == 0)
		r = pthread_cond_timedwait(&sc.cond, &sc.lock, &ts);
	r = sc.entered < started ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&sc.lock);
	if (r)
		log_err("seccomp: %u of %u vCPU threads did not start within 10 s",
		        started - sc.entered, started);
	return r;
}

static bool is_known(pid_t tid, pid_t self)
{
	if (tid == self)
		return true;
	for (unsigned i = 0; i < MACHINE_MAX_VCPUS; i++)
		if (sc.vcpu_tid[i] == tid)
			return true;
	return false;
}

/* The other threads: the devices'. Their names from /proc (a plugin may have set one). */
static int list_device_threads(void)
{
	pid_t self = (pid_t)syscall(SYS_gettid);
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	if (!d) {
		log_err("seccomp: cannot list this process's threads in /proc/self/task: %s (is "
		        "/proc mounted?)",
		        strerror(errno));
		return -errno;
	}
	while ((e = readdir(d))) {
		char path[64];
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid <= 0 || is_known(tid, self))
			continue;
		if (sc.n_dev == SC_MAX_DEV) {
			closedir(d);
			log_err("seccomp: more than %d device threads", SC_MAX_DEV);
			return -E2BIG;
		}
		struct sc_thread *t = &sc.dev[sc.n_dev++];
		*t = (struct sc_thread){ .tid = tid };
		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, t->name, sizeof(t->name) - 1) : -1;
		if (fd >= 0)
			close(fd);
		t->name[n > 0 ? n : 0] = 0;
		t->name[strcspn(t->name, "\n")] = 0;
		if (!t->name[0])
			snprintf(t->name, sizeof(t->name), "tid %d", (int)tid);
	}
	closedir(d);
	return 0;
}

static int filter_device_threads(void)
{
	struct sigaction sa = { .sa_sigaction = on_install_signal,
		                .sa_flags = SA_SIGINFO | SA_RESTART };
	int r = list_device_threads();

	if (r < 0)
		return r;
	sigfillset(&sa.sa_mask);
	if (sc.n_dev && sigaction(SC_SIGNAL, &sa, NULL)) {
		log_err("seccomp: cannot install the handler of signal %d: %s", SC_SIGNAL,
		        strerror(errno));
		return -errno;
	}
	for (unsigned i = 0; i < sc.n_dev && r == 0; i++) {
		struct sc_thread *t = &sc.dev[i];
		struct timespec ts;

		if (syscall(SYS_tgkill, sc.pid, t->tid, SC_SIGNAL)) {
			if (errno == ESRCH) /* it has ended meanwhile */
				continue;
			log_err("seccomp: cannot signal thread %d (%s): %s", (int)t->tid, t->name,
			        strerror(errno));
			r = -errno;
			break;
		}
		/* short waits against the realtime clock (sem_timedwait's), bounded by the
		 * monotonic one: the nest's realtime clock can jump, which ended a single 10 s
		 * wait at once */
		struct timespec start, now;
		clock_gettime(CLOCK_MONOTONIC, &start);
		for (;;) {
			if (t->done)
				break;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((now.tv_sec - start.tv_sec) * 1000 +
			            (now.tv_nsec - start.tv_nsec) / 1000000 >=
			    SC_WAIT_MS)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			(void)sem_timedwait(&sc.ack, &ts);
		}
		if (!t->done) {
			log_err("seccomp: device thread %d (%s) did not load its filter within %d "
			        "s "
			        "(does it block signal %d?); [machine] seccomp = off runs without",
			        (int)t->tid, t->name, SC_WAIT_MS / 1000, SC_SIGNAL);
			r = -ETIMEDOUT;
		} else if (t->result < 0) {
			log_err("seccomp: device thread %d (%s) cannot load its filter: %s",
			        (int)t->tid, t->name, strerror(-t->result));
			r = t->result;
		} else {
			log_debug("seccomp: device thread %d (%s) filtered", (int)t->tid, t->name);
		}
	}
	signal(SC_SIGNAL, SIG_IGN);
	return r;
}

int seccomp_lock_down(struct machine *m, unsigned started)
{
	int r = 0;

	if (!sc.active)
		return 0;
	r = wait_vcpus(started);
	if (!r)
		r = filter_device_threads();
	me.kind = seccomp_kind_name(SC_MAIN);
	snprintf(me.name, sizeof(me.name), "event loop");
	if (!r && m->on_reboot == ON_REBOOT_RESTART)
		log_debug("seccomp: the main thread stays unfiltered: on_reboot = restart sets "
		          "the machine up again on it");
	else if (!r && (r = load(SC_MAIN)) < 0)
		log_err("seccomp: the main thread cannot load its filter: %s", strerror(-r));
	if (!r)
		log_debug("seccomp: %u vCPU and %u device threads and the main thread filtered%s",
		          started, sc.n_dev, m->seccomp == SECCOMP_LOG ? " (log only)" : "");
	else
		machine_request_exit(m, STATUS_ERROR);
	pthread_mutex_lock(&sc.lock);
	sc.gate_open = true;
	pthread_cond_broadcast(&sc.cond);
	pthread_mutex_unlock(&sc.lock);
	return r;
}
