/* seccomp-filter.h: a seccomp filter per kind of thread, installed before the guest runs
 * ([machine] seccomp = on, the default). seccomp.c installs; seccomp-policy.c says what each
 * kind may do. */
#ifndef SMOLVM_SECCOMP_FILTER_H
#define SMOLVM_SECCOMP_FILTER_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>

struct machine;
struct vcpu;

enum sc_kind { SC_MAIN, SC_VCPU, SC_DEVICE };

/** [machine] seccomp (on, off, log) and seccomp_allow: read at configure time. */
enum { SECCOMP_ON, SECCOMP_OFF, SECCOMP_LOG };
void seccomp_configure(struct machine *m);

/** On the main thread, before the vCPU threads start: builds the filters and installs the
 * handlers. 0, or a negative errno (said why). Nothing to do with seccomp = off. */
int seccomp_prepare(struct machine *m);

/** First thing on a vCPU thread: installs its filter, then waits until every other thread
 * has its own (seccomp_lock_down). false: it could not; the run is ending. */
bool seccomp_vcpu_enter(struct vcpu *v);

/** On the main thread once the vCPU threads are started (@started of them): filters every
 * other thread the process has (the devices' threads), then the main thread itself, then
 * lets the vCPUs run the guest. Always lets them go; on a failure it said why and asked the
 * run to end. */
int seccomp_lock_down(struct machine *m, unsigned started);

/* seccomp-policy.c */
const char *seccomp_kind_name(enum sc_kind k);
/** Checks an INI seccomp_allow list: every word a system call. 0 or -EINVAL with @err. */
int seccomp_check_allow(const char *list, char *err, size_t n);
/** The BPF program for @k (plus the calls in @extra): *out->filter is malloc'd. */
int seccomp_build(enum sc_kind k, const char *extra, bool log_only, struct sock_fprog *out,
                  char *err, size_t n);
/** A system call's name (malloc'd) or NULL. */
char *seccomp_name_of(int nr);

#endif
