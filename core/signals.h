/* signals.h: SIGINT, SIGTERM and SIGHUP, answered from main()'s first line (signals.c). */
#ifndef SMOLVM_SIGNALS_H
#define SMOLVM_SIGNALS_H

#include <signal.h>

/** The signals that stop smolvm: SIGINT, SIGTERM, SIGHUP. */
void signals_stop_set(sigset_t *set);
/** main(): saves the terminal and installs the handler; until signals_serve_start() a stop
 * signal puts the terminal back and leaves with 128 + N at once. */
int signals_init(void);
/** A machine runs: stop signals are written to a pipe; returns its reading end for the event
 * loop (or -errno). The third signal of the run still leaves at once. */
int signals_serve_start(void);
/** The signal number the pipe holds next, or 0. */
int signals_take(void);
/** The run is over: stop signals leave at once again. */
void signals_serve_stop(void);
/** Blocks the stop signals in the calling thread (around a pthread_create, whose thread
 * inherits the mask); signals_restore_thread() puts @p old back. */
int signals_block_thread(sigset_t *old);
void signals_restore_thread(const sigset_t *old);

#endif
