/* control.h: the control socket of a running machine (`smolvm run --control SOCK`) and its
 * client (`smolvm ctl SOCK COMMAND`). The protocol is line-delimited JSON on a UNIX stream
 * socket, one request and one reply per line (README, "The control socket"):
 *
 *   {"cmd":"status"}                          -> {"ok":true,"state":"running",...}
 *   {"cmd":"pause"} / {"cmd":"resume"}        -> {"ok":true,"state":"paused"}
 *   {"cmd":"snapshot","path":"/abs/x.smolmachine","stop":false}
 *                                             -> {"ok":true,"path":...,"bytes":N,"ms":T}
 *   anything wrong                            -> {"error":"what was wrong"}
 *
 * The server runs on the machine's event loop (the thread that may pause and snapshot). A
 * client that sends garbage, an overlong line or disconnects mid-request costs the machine
 * nothing: it gets an error reply or is dropped. */
#ifndef SMOLVM_CONTROL_H
#define SMOLVM_CONTROL_H

struct machine;
struct control;

/**
 * Binds @p path (a UNIX socket, mode 0600; an existing socket file nobody listens on is
 * replaced, any other file is an error) and serves it on @p m's event loop until
 * control_close(). 0, or a negative errno after logging why.
 */
int control_open(struct machine *m, const char *path, struct control **out);
/** Stops serving, closes every client and removes the socket file. NULL is fine. */
void control_close(struct control *c);

/**
 * `smolvm ctl SOCK COMMAND [ARGS]`: argv[0] is SOCK. Commands: status, pause, resume,
 * snapshot FILE [--stop]. Prints the reply's meaning on stdout (errors on stderr) and returns
 * the exit status: 0 done, 1 the machine refused or failed (its message printed), 2 bad usage
 * or no machine at SOCK.
 */
int ctl_main(int argc, char **argv);

#endif
