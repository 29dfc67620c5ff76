/*
 * seccomp-policy.c: what each kind of smolvm thread may ask of the kernel once the guest runs,
 * built into a classic BPF program with libseccomp (seccomp.c installs it in each thread).
 *
 * Everything that needs more (loading plugins, opening files, making the VM, its RAM, vCPUs,
 * eventfds, threads, passt) happens before: the filters cover only the running machine and
 * its end (snapshots, the control socket, the teardown). ioctl is limited to the request
 * types smolvm uses: KVM (0xAE), terminals and TAP ('T', 0x54), block devices (0x12).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "seccomp-filter.h"

/* Every thread: memory (malloc), locks, time, signals, logging to stderr, leaving. */
static const char *const common_calls[] = {
	"read",
	"write",
	"readv",
	"writev",
	"pread64",
	"pwrite64",
	"close",
	"lseek",
	"fstat",
	"newfstatat",
	"fcntl",
	"futex",
	"mmap",
	"munmap",
	"mprotect",
	"madvise",
	"brk",
	"mremap",
	"rt_sigreturn",
	"rt_sigprocmask",
	"sigaltstack",
	"clock_gettime",
	"clock_nanosleep",
	"nanosleep",
	"gettimeofday",
	"getpid",
	"gettid",
	"sched_yield",
	"sched_getaffinity",
	"restart_syscall",
	"getrandom",
	"exit",
	"exit_group",
	"set_robust_list",
	"rseq",
	NULL,
};

/* vCPU threads: KVM_RUN and the device models' MMIO and port handlers, which may reset a
 * queue, pulse an irq (KVM_IRQ_LINE or an irqfd write), tell a TAP its offloads, flush a disk
 * (a device without an I/O thread), wake the event loop, and add or remove an fd watch (a
 * UART whose output is full, or whose input has room again: epoll_ctl). */
static const char *const vcpu_calls[] = {
	"ioctl",    "tgkill",   "fsync",     "fdatasync", "preadv", "pwritev",
	"preadv2",  "pwritev2", "fallocate", "poll",      "ppoll",  "sendto",
	"recvfrom", "sendmsg",  "recvmsg",   "epoll_ctl", NULL,
};

/* Device I/O threads (virtio's workers, and any thread a plugin started before the run):
 * disk and network I/O on fds opened at setup, waiting on them, irqs, passt's exit. */
static const char *const device_calls[] = {
	"ioctl",       "tgkill",   "fsync",     "fdatasync", "preadv",   "pwritev",
	"preadv2",     "pwritev2", "fallocate", "poll",      "ppoll",    "epoll_wait",
	"epoll_pwait", "select",   "pselect6",  "sendto",    "recvfrom", "sendmsg",
	"recvmsg",     "wait4",    "epoll_ctl", NULL,
};

/* The main thread: the event loop, the control socket (its timer drops clients that stall),
 * the terminal, pausing (kicking the
 * vCPUs), snapshots (a new file: written, fsynced, renamed), ending the run (joining threads,
 * stopping passt, removing its folder and a TAP, unloading plugins). */
static const char *const main_calls[] = {
	"ioctl",       "tgkill",    "kill",       "wait4",    "fsync",
	"fdatasync",   "preadv",    "pwritev",    "preadv2",  "pwritev2",
	"fallocate",   "ftruncate", "poll",       "ppoll",    "epoll_wait",
	"epoll_pwait", "epoll_ctl", "accept",     "accept4",  "sendto",
	"recvfrom",    "sendmsg",   "recvmsg",    "shutdown", "getsockopt",
	"openat",      "open",      "statx",      "rename",   "renameat",
	"renameat2",   "unlink",    "unlinkat",   "rmdir",    "dup",
	"dup2",        "dup3",      "umask",      "fchmod",   "rt_sigaction",
	"prctl",       "readlink",  "readlinkat", "getcwd",   "timerfd_settime",
	NULL,
};

/* ioctl request types (bits 8-15 of the request) each kind may use. */
static const unsigned ioctl_types_vcpu[] = { 0xAE, 0x54, 0 };
static const unsigned ioctl_types_device[] = { 0xAE, 0x54, 0x12, 0 };
static const unsigned ioctl_types_main[] = { 0xAE, 0x54, 0x12, 0 };

static const char *const *kind_calls(enum sc_kind k)
{
	return k == SC_VCPU ? vcpu_calls : k == SC_DEVICE ? device_calls : main_calls;
}

static const unsigned *kind_ioctl_types(enum sc_kind k)
{
	return k == SC_VCPU     ? ioctl_types_vcpu
	       : k == SC_DEVICE ? ioctl_types_device
	                        : ioctl_types_main;
}

const char *seccomp_kind_name(enum sc_kind k)
{
	return k == SC_VCPU ? "vCPU" : k == SC_DEVICE ? "device I/O" : "main";
}

/* Is @name one of the words of @list (separated by spaces, tabs or commas)? */
static bool in_words(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		size_t w = strcspn(p, " \t,");
		if (w == n && strncmp(p, name, n) == 0)
			return true;
		p += w;
		p += strspn(p, " \t,");
	}
	return false;
}

int seccomp_check_allow(const char *list, char *err, size_t n)
{
	for (const char *p = list; p && *p;) {
		p += strspn(p, " \t,");
		size_t w = strcspn(p, " \t,");
		if (!w)
			break;
		char name[64];
		if (w >= sizeof(name)) {
			snprintf(err, n, "'%.*s...' is not a system call", 20, p);
			return -EINVAL;
		}
		memcpy(name, p, w);
		name[w] = 0;
		if (seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR) {
			snprintf(err, n, "'%s' is not a system call of this architecture", name);
			return -EINVAL;
		}
		p += w;
	}
	return 0;
}

static int allow(scmp_filter_ctx ctx, const char *name, char *err, size_t n)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture (open, rename, ...: their *at forms are) */
	int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	if (r < 0 && r != -EEXIST)
		snprintf(err, n, "cannot allow %s: %s", name, strerror(-r));
	return r == -EEXIST ? 0 : r;
}

/* ioctl for the kind's request types only, unless the INI allows all of it. */
static int allow_ioctl(scmp_filter_ctx ctx, enum sc_kind k, const char *extra, char *err, size_t n)
{
	if (in_words(extra, "ioctl"))
		return allow(ctx, "ioctl", err, n);
	for (const unsigned *t = kind_ioctl_types(k); *t; t++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, (*t) << 8));
		if (r < 0) {
			snprintf(err, n, "cannot allow ioctl type 0x%x: %s", *t, strerror(-r));
			return r;
		}
	}
	return 0;
}

/* tgkill only within this process (a kick to a vCPU, abort's own signal). */
static int allow_tgkill(scmp_filter_ctx ctx, char *err, size_t n)
{
	/* spelled out: SCMP_A0() leaves datum_b to the compiler (clang warns) */
	const struct scmp_arg_cmp own = {
		.arg = 0, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)getpid(), .datum_b = 0
	};
	int r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &own);
	if (r < 0)
		snprintf(err, n, "cannot allow tgkill: %s", strerror(-r));
	return r;
}

static int add_rules(scmp_filter_ctx ctx, enum sc_kind k, const char *extra, char *err, size_t n)
{
	int r;
	for (const char *const *c = common_calls; *c; c++)
		if ((r = allow(ctx, *c, err, n)) < 0)
			return r;
	for (const char *const *c = kind_calls(k); *c; c++) {
		if (!strcmp(*c, "ioctl"))
			r = allow_ioctl(ctx, k, extra, err, n);
		else if (!strcmp(*c, "tgkill") && !in_words(extra, "tgkill"))
			r = allow_tgkill(ctx, err, n);
		else
			r = allow(ctx, *c, err, n);
		if (r < 0)
			return r;
	}
	for (const char *p = extra; p && *p;) {
		p += strspn(p, " \t,");
		size_t w = strcspn(p, " \t,");
		char name[64];
		if (!w || w >= sizeof(name))
			break; /* seccomp_check_allow refused such a list at setup */
		memcpy(name, p, w);
		name[w] = 0;
		p += w;
		/* ioctl and tgkill without conditions come in place of the conditional ones */
		if (strcmp(name, "ioctl") && strcmp(name, "tgkill") &&
		    (r = allow(ctx, name, err, n)) < 0)
			return r;
		if (!strcmp(name, "tgkill") && (r = allow(ctx, name, err, n)) < 0)
			return r;
	}
	return 0;
}

int seccomp_build(enum sc_kind k, const char *extra, bool log_only, struct sock_fprog *out,
                  char *err, size_t n)
{
	int r, fd = -1;
	scmp_filter_ctx ctx = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_TRAP);

	memset(out, 0, sizeof(*out));
	if (!ctx) {
		snprintf(err, n, "seccomp_init failed");
		return -ENOMEM;
	}
	/* a call through another architecture's entry (int 0x80) is refused the same way;
	 * no-new-privileges is set by seccomp.c itself, in each thread */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, log_only ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	if (!r)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r < 0) {
		snprintf(err, n, "cannot set the filter's attributes: %s", strerror(-r));
		goto out;
	}
	if ((r = add_rules(ctx, k, extra, err, n)) < 0)
		goto out;
	/* libseccomp 2.5 exports to an fd only */
	fd = memfd_create("smolvm-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, n, "memfd_create: %s", strerror(errno));
		goto out;
	}
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0) {
		snprintf(err, n, "cannot export the filter: %s", strerror(-r));
		goto out;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % sizeof(struct sock_filter) ||
	    size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		r = -EINVAL;
		snprintf(err, n, "the exported filter has %lld bytes", (long long)size);
		goto out;
	}
	out->filter = malloc((size_t)size);
	if (!out->filter) {
		r = -ENOMEM;
		snprintf(err, n, "out of memory");
		goto out;
	}
	if (pread(fd, out->filter, (size_t)size, 0) != size) {
		r = -EIO;
		snprintf(err, n, "cannot read the exported filter back");
		free(out->filter);
		out->filter = NULL;
		goto out;
	}
	out->len = (unsigned short)(size / sizeof(struct sock_filter));
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return r;
}

char *seccomp_name_of(int nr)
{
	return seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
}
