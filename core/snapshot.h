/* snapshot.h: the snapshot engine's core side: saving a paused machine into a .smolmachine file
 * and restoring one (snapshot.c), the device streams behind the host table's snap_* functions,
 * and the machine lifecycle around them (lifecycle.c). */
#ifndef SMOLVM_SNAPSHOT_H
#define SMOLVM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

struct machine;
struct smol_dev;
struct snap_reader;

/** The state version of the core's own section (SNAP_SEC_CORE). */
#define SNAP_CORE_VERSION 1

/** A backend op of ABI 1.3 or later that machine @p m's backend provides (as DEV_HAS_OP_1_3). */
#define BACKEND_HAS_OP(m, field) BACKEND_OP_SINCE(m, 3, field)

/** Tells every vCPU's guest it was stopped (vcpu_was_paused), where the backend can. */
void machine_tell_paused(struct machine *m);

/** True when the backend offers every snapshot op (ABI 1.3). */
bool snapshot_backend_ok(const struct machine *m);

/**
 * Writes a snapshot of the running machine to @p path; with @p stop the run then ends with
 * status 0 and the guest runs no further. 0 or a negative errno with @p err filled in.
 */
int snapshot_take(struct machine *m, const char *path, bool stop, char *err, size_t errlen);

/**
 * Builds the VM of a configured machine from an open snapshot (instead of machine_boot):
 * RAM mapped from the file, vCPUs and every device loaded, the guest told of its new
 * generation. -1 when ready to run, else the status to exit with (STATUS_CONFIG: the file
 * does not fit this machine or host; STATUS_ERROR: a runtime failure), after saying why.
 */
int snapshot_restore(struct machine *m, struct snap_reader *sr);

/** Serves a snapshot-port's request, if one came (machine_run calls it after every event). */
void snapshot_serve_request(struct machine *m);
/** smol_host::request_snapshot. */
void machine_request_snapshot(struct machine *m, struct smol_dev *dev);

/* The host table's device streams (ABI 1.3). */
void snap_host_set_version(struct smol_snap_writer *w, uint32_t version);
int snap_host_write(struct smol_snap_writer *w, const void *data, size_t len);
uint32_t snap_host_version(struct smol_snap_reader *r);
int snap_host_read(struct smol_snap_reader *r, void *data, size_t len);
size_t snap_host_remaining(struct smol_snap_reader *r);

/** Lets vCPUs go that a snapshot request parked, unless a machine_pause() holds them. */
void machine_release_request(struct machine *m);
/** The run ends while paused (a snapshot with stop): lets the vCPUs leave, devices stay
 * paused. Only once machine_stopping() is true. */
void machine_end_paused(struct machine *m);

/* The control socket of `smolvm run --control SOCK` (control-machine.c). */
int control_start(struct machine *m);
void control_stop(struct machine *m);
struct jsonw;
/* Writes the machine's counters (`ctl stats`) as members of the open object @p w. */
void machine_stats(struct machine *m, struct jsonw *w);

#endif
