/* control.h: the control socket of a running machine (`smolvm run --control SOCK`) and its
 * client (`smolvm ctl SOCK COMMAND`). The protocol is line-delimited JSON on a UNIX stream
 * socket, one request and one reply per line (README, "The control socket"):
 *
 *   {"cmd":"status"}                          -> {"ok":true,"state":"running",...}
 *   {"cmd":"pause"} / {"cmd":"resume"}        -> {"ok":true,"state":"paused"}
 *   {"cmd":"snapshot","path":"/abs/x.smolmachine","stop":false}
 *                                             -> {"ok":true,"path":...,"bytes":N,"ms":T}
 *   {"cmd":"devices"}                         -> {"ok":true,"devices":[{"name":...},...]}
 *   {"cmd":"methods"}                         -> {"ok":true,"devices":[{"name":...,
 *                                                 "methods":[{"name","signature","help"}]}]}
 *   {"cmd":"call","device":"D","method":"M","args":["1",2.5]}
 *                                             -> {"ok":true,"value":V,"out":["..."]}
 *   {"cmd":"stats"}                           -> {"ok":true,"vcpus":[...],"devices":[...]}
 *   anything wrong                            -> {"error":"what was wrong"}
 *
 * Every request may carry an "id" (a string or an integer), copied into its reply. Unknown
 * members are an error (a newer client's option is never silently ignored).
 *
 * The server runs on an event loop (the machine's: the thread that may pause and snapshot)
 * and reaches the machine only through struct control_ops, so it is tested without one. A
 * client that sends garbage, an overlong line or disconnects mid-request costs the machine
 * nothing: it gets an error reply or is dropped. */
#ifndef SMOLVM_CONTROL_H
#define SMOLVM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

#include "json.h"
#include "method-call.h"

struct evloop;
struct control;

/** Version of the protocol, in every status reply ("protocol"); new commands and new reply
 * members do not change it, a changed meaning does. */
#define CONTROL_PROTOCOL 1
/** The longest request line (newline excluded); a longer one gets an error and the
 * connection is closed. */
#define CONTROL_LINE_MAX 65536
/** Clients served at once; one more gets {"error":"too many clients"} and is closed. */
#define CONTROL_MAX_CLIENTS 32
/** The largest reply. */
#define CONTROL_REPLY_MAX (1u << 20)

/** What a status request reports (filled by control_ops::status). */
struct control_status {
	bool paused;
	uint32_t vcpus;
	uint64_t memory; /**< guest RAM, bytes */
	uint64_t uptime_ms;
	const char *arch; /**< NULL: not reported */
	const char *backend; /**< NULL: not reported */
};

/** One device as `devices` and `methods` report it (filled by control_ops::device; the
 * pointers live as long as the machine). */
struct control_device {
	const char *name; /**< NAME of its [device NAME] */
	const char *type; /**< its plugin's name */
	const char *plugin; /**< the plugin's file */
	unsigned n_ranges;
	struct {
		uint64_t base, len;
		bool pio;
	} ranges[16];
	unsigned n_irqs;
	uint32_t irqs[8];
	const struct smol_method *methods; /**< checked by the loader (method_table_check) */
	uint32_t n_methods;
};

/**
 * What the server asks of the machine; every call is made on the event loop's thread and
 * may take as long as it needs (the reply waits for it). Failing calls return a negative
 * errno and may put a message in @p err (otherwise strerror is used).
 */
struct control_ops {
	void (*status)(void *opaque, struct control_status *st);
	/** Pause the guest (one level: the server never pauses twice without a resume). */
	int (*pause)(void *opaque, char *err, size_t errlen);
	/** Undo one pause. */
	int (*resume)(void *opaque, char *err, size_t errlen);
	/**
	 * Write a snapshot to @p path (absolute), durably, before returning. With @p stop the
	 * guest must not run again: on success the run ends with status 0 (the server replies
	 * first: control_close flushes replies); on failure the machine goes on as before.
	 */
	int (*snapshot)(void *opaque, const char *path, bool stop, char *err, size_t errlen);
	/** The number of devices, and device @p i of them (0 <= i < n_devices). */
	size_t (*n_devices)(void *opaque);
	void (*device)(void *opaque, size_t i, struct control_device *out);
	/**
	 * Calls method @p m (one of device @p i's) with @p n text arguments through method_call,
	 * holding the device's lock (its MMIO/PIO handlers' serialisation). 0 with @p res filled,
	 * or a negative errno with @p err saying why (an argument that does not parse: -EINVAL,
	 * nothing called).
	 */
	int (*call)(void *opaque, size_t i, const struct smol_method *m, const char *const *args,
	            unsigned n, struct method_result *res, char *err, size_t errlen);
	/** Writes the machine's counters as members of the open reply object @p w (README,
	 * "Statistics"). */
	void (*stats)(void *opaque, struct jsonw *w);
};

/**
 * Binds @p path (a UNIX socket, mode 0600; an existing socket file nobody listens on is
 * replaced, any other file is an error) and serves it on @p loop until control_close().
 * @p ops (not copied) and @p opaque outlive the server. 0, or a negative errno after logging
 * why.
 */
int control_open(struct evloop *loop, const char *path, const struct control_ops *ops, void *opaque,
                 struct control **out);
/** Stops serving, sends what replies it can (a bounded wait), closes every client and
 * removes the socket file (if it is still the one it bound). NULL is fine. On the event
 * loop's thread, or once the loop no longer runs. */
void control_close(struct control *c);
/** For tests: how long a reply may stay unwritten and a request line stay incomplete before
 * the client is dropped (defaults: 2000 and 10000 ms). */
void control_set_timeouts(struct control *c, unsigned write_ms, unsigned line_ms);

/* ---- requests: a pure function from bytes to a request (fuzzed, tested on its own) */

enum control_cmd {
	CONTROL_STATUS,
	CONTROL_PAUSE,
	CONTROL_RESUME,
	CONTROL_SNAPSHOT,
	CONTROL_DEVICES,
	CONTROL_METHODS,
	CONTROL_CALL,
	CONTROL_STATS,
};

/** Most arguments a call request carries (SMOL_METHOD_MAX_ARGS), and the longest device or
 * method name it may give. */
#define CONTROL_CALL_MAX_ARGS 8
#define CONTROL_NAME_MAX 255

struct control_req {
	enum control_cmd cmd;
	const char *path; /**< snapshot: absolute, shorter than PATH_MAX */
	bool stop; /**< snapshot */
	const char *device, *method; /**< call */
	const char *args[CONTROL_CALL_MAX_ARGS]; /**< call: each argument as text */
	unsigned n_args;
	const struct json_value *id; /**< NULL or a string/integer to copy into the reply */
	struct json_obj obj; /**< what the pointers above point into */
	struct json_obj args_arr; /**< call: "args" parsed */
	char num_text[CONTROL_CALL_MAX_ARGS][64]; /**< call: numbers' text */
};

/**
 * Parses one request line (@p len bytes, no newline) into @p req. 0, or -EINVAL with @p err
 * saying what is wrong (-ENOMEM). @p req needs control_req_free() in every case, and @p line
 * must outlive it.
 */
int control_parse_request(const char *line, size_t len, struct control_req *req, char *err,
                          size_t errlen);
void control_req_free(struct control_req *req);

/**
 * `smolvm ctl SOCK COMMAND [ARGS]`: argv[0] is SOCK. Commands: status, pause, resume,
 * snapshot FILE [--stop]. Prints the reply's meaning on stdout (errors on stderr) and returns
 * the exit status: 0 done, 1 the machine refused or failed (its message printed), 2 bad usage
 * or no machine at SOCK.
 */
int ctl_main(int argc, char **argv);
/** `smolvm top SOCK [--interval MS] [--count N]`: the stats, refreshed (argv[0] is SOCK). */
int top_main(int argc, char **argv);
/** Prints a stats reply for people (ctl stats, top). */
void ctl_print_stats(const struct json_obj *o);

#endif
