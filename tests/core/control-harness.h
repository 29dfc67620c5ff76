/* control-harness.h: the control socket test harness (control-harness.c). */
#ifndef SMOLVM_TEST_CONTROL_HARNESS_H
#define SMOLVM_TEST_CONTROL_HARNESS_H

#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>

#include "control.h"
#include "evloop.h"

struct fake {
	pthread_mutex_t lock;
	int status_calls, pause_calls, resume_calls, snapshot_calls, call_calls, stats_calls;
	double value; /**< thermo's, set by its method "set" */
	int set_calls; /**< times "set" ran */
	int depth; /**< pause nesting */
	char path[PATH_MAX];
	bool stop;
	int pause_fail, snapshot_fail; /**< negative errno to return */
	const char *fail_msg; /**< NULL: leave err empty */
};

extern const struct control_ops fake_ops;
extern struct fake fake;
extern struct evloop loop;
extern struct control *srv; /**< NULL when not serving */
extern char dir[64], sock[128]; /**< a fresh directory, and ctl.sock in it */

/** Reads a counter of @p f under its lock. */
int calls(int *field, struct fake *f);
/** The last snapshot's path and stop flag (read under the lock; the path in a static buffer). */
const char *fake_path(void);
bool fake_stop(void);

/** Serves sock on a loop thread; @p write_ms / @p line_ms: 0 keeps the defaults. */
void serve(unsigned write_ms, unsigned line_ms);
/** A fresh directory, an event loop, and serve(0, 0): the suites' init. */
void setup(void);
void stop_serving(void);
/** Stops serving if needed, frees the loop, removes the directory. */
void teardown(void);

struct sockaddr_un;
/** Fills @p sa with the UNIX socket @p path (asserted to fit). */
void sun_set(struct sockaddr_un *sa, const char *path);
int connect_to(const char *path);
void send_bytes(int fd, const char *s, size_t n);
void send_str(int fd, const char *s);
/** One reply line (newline stripped); -1 at EOF, -2 on a timeout or an error. */
int read_line(int fd, char *buf, size_t cap);
void expect_line(int fd, char *buf, size_t cap);
void expect_eof(int fd);
/** One request on a new connection; its reply (a static buffer). */
const char *request(const char *line);
/** A reply parsed (a static object, replaced on the next call). */
const struct json_obj *parsed(const char *reply);
const char *str_member(const struct json_obj *o, const char *key);
uint64_t u64_member(const struct json_obj *o, const char *key);
bool is_ok(const char *reply);
/** Expects an error reply whose message contains @p what. */
void expect_error(const char *reply, const char *what);

#endif
