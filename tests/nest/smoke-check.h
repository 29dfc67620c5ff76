/* smoke-check.h: what the KVM smoke programs (kvm-smoke.c, kvm-smoke-arm64.c) share: a check
 * that counts failures, a monotonic clock and an ioctl that says which one failed. Define
 * SMOKE_NAME (the program's name, for messages) before including it. */
#ifndef SMOLVM_SMOKE_CHECK_H
#define SMOLVM_SMOKE_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

static int failures;

static void check(int ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int xioctl(int fd, unsigned long req, void *arg, const char *name)
{
	int r = ioctl(fd, req, arg);
	if (r < 0)
		fprintf(stderr, SMOKE_NAME ": %s: %s\n", name, strerror(errno));
	return r;
}

#endif
