/* machine.h: a machine: its configuration, memory, buses, devices, backend and vCPUs. */
#ifndef SMOLVM_MACHINE_H
#define SMOLVM_MACHINE_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

#include "arch.h"
#include "bus.h"
#include "config.h"
#include "evloop.h"
#include "memory.h"
#include "plugin.h"

/** An op of ABI 1.@p minor or later that machine @p m's backend provides: its plugin says
 * that minor or later, its ops table (of its own struct_size) holds @p field, and it is set.
 * Slots past a shorter table are never read. */
#define BACKEND_OP_SINCE(m, minor, field)                                                          \
	((m)->backend->desc->abi_minor >= (minor) &&                                               \
	 (m)->be->struct_size >=                                                                   \
	         offsetof(struct smol_backend_ops, field) + sizeof((m)->be->field) &&              \
	 (m)->be->field)

#define MACHINE_MAX_VCPUS 64
#define MACHINE_NAME_MAX 64 /* [machine] name */

/** Exit statuses of `smolvm run` other than a guest-chosen one. */
enum {
	STATUS_OK = 0, /**< the guest powered off or reset */
	STATUS_ERROR = 1, /**< runtime failure: backend error, triple fault, internal error */
	STATUS_CONFIG = 2, /**< usage or configuration error: nothing ran */
	STATUS_REBOOT = SMOL_STATUS_REBOOT, /**< the guest rebooted (on_reboot = exit) */
};

/** [machine] on_reboot */
enum { ON_REBOOT_EXIT, ON_REBOOT_RESTART };

struct vcpu;
struct acpi_dev_desc;
struct dt_desc;
struct notify_ioevent;
struct notify_irqfd;

struct machine {
	struct cfg *cfg;
	struct plugin_path pp;
	bool check_only;

	/* [machine] */
	const char *arch;
	const struct arch_ops *arch_ops; /**< the arch's platform (core/arch/<arch>/) */
	uint32_t n_irqs; /**< lines 0 to n_irqs - 1 a device may claim (the arch's) */
	const char *backend_name;
	char *name; /**< [machine] name, else the INI file's name without ".ini" */
	uint64_t ram_size;
	uint32_t n_vcpus;
	bool acpi; /**< [machine] acpi: the core builds ACPI tables */
	int on_reboot; /**< [machine] on_reboot */
	int seccomp; /**< [machine] seccomp: SECCOMP_ON, _OFF, _LOG (seccomp-filter.h) */
	const char *seccomp_allow; /**< [machine] seccomp_allow: more system calls */
	/* [boot] */
	char *kernel_path;
	char *initrd_path;
	const char *cmdline; /**< [boot] cmdline, plus what devices add (cmdline_buf) */
	char *cmdline_buf;
	char *cmdline_extra; /**< words devices add on a machine without ACPI */

	/* what the devices describe (describe.c) and where the ACPI tables are */
	struct acpi_dev_desc *descs;
	struct dt_desc *dt_descs; /**< the same devices' device-tree parts (ABI 1.5) */
	size_t n_descs;
	/** Guest-physical address of the ACPI RSDP for the zero page and hvm_start_info (0: no
	 * ACPI tables). Set before boot_prepare. */
	uint64_t acpi_rsdp_gpa;

	struct guest_mem mem;
	struct bus mmio, pio;

	struct smol_dev **devs;
	size_t n_devs;
	/* ioeventfds and irqfds the devices registered (notify.c) */
	struct notify_ioevent *ioevents;
	size_t n_ioevents;
	struct notify_irqfd *irqfds;
	size_t n_irqfds;
	struct smol_dev *irq_owner[ARCH_MAX_IRQS];
	const char *irq_reserved[ARCH_MAX_IRQS]; /**< lines the core keeps, with why */
	int irq_level[ARCH_MAX_IRQS];
	pthread_mutex_t irq_lock;

	struct plugin *backend;
	const struct smol_backend_ops *be;
	struct smol_vm *vm;
	struct vcpu *vcpus;

	/* [snapshot] and the lifecycle (snapshot.c) */
	char *snap_path; /**< [snapshot] path, resolved; NULL without the section */
	bool snap_then_stop; /**< [snapshot] then = stop */
	int snap_requested; /**< atomic: a snapshot-port device asked for one */
	unsigned n_snapshots; /**< written in this run */
	bool restoring; /**< the machine comes from a snapshot: no kernel, no boot */
	const char *control_path; /**< `run --control SOCK` */
	struct control *control;
	pthread_mutex_t run_lock; /**< guards the vCPUs' parking */
	pthread_cond_t run_cond; /**< parked vCPUs wait on it; machine_pause waits for them */
	int pause_req; /**< atomic: vCPUs park while it is set */
	unsigned pause_depth; /**< machine_pause() calls not yet resumed (event-loop thread) */
	uint32_t n_parked; /**< vCPUs parked (run_lock) */
	uint64_t started_ns; /**< CLOCK_MONOTONIC when the vCPUs started */

	struct evloop loop;
	bool running; /**< vCPUs exist: the buses and IRQ owners are frozen */
	int stopping; /**< atomic: set once when the run ends */
	int exit_status; /**< the status `smolvm run` exits with */
	int exit_reported;
	int reset_requested; /**< atomic: the run ended because the guest rebooted */
	int signalled; /**< atomic: the stop signal that arrived, if any (never restart then) */
};

/**
 * Reads and validates the whole machine (config, plugins, devices, ranges, IRQs, files)
 * without creating a VM. On failure every problem has been reported as file:line. @p restoring:
 * the machine comes from a snapshot (its kernel is not needed).
 * @return 0 or -EINVAL
 */
int machine_configure(struct machine *m, struct cfg *cfg, bool check_only, bool restoring);
/**
 * Allocates guest RAM and loads the payload (no VM needed): `smolvm check` does this too.
 * @return 0, -EINVAL for a bad kernel/initrd/cmdline (reported), another -errno otherwise
 */
int machine_load_payload(struct machine *m, struct arch_boot *boot);
/** Builds the ACPI tables and writes one file per table into @p dir (`smolvm acpi`; x86). 0,
 * or -EINVAL / -ENOMEM / -EIO after reporting. */
int machine_write_acpi(struct machine *m, const char *dir);
/** Loads the payload and writes the device tree its kernel gets to @p out (`smolvm dtb`;
 * arm64). 0, or -EINVAL / -ENOMEM / -EIO after reporting. */
int machine_write_dtb(struct machine *m, const char *out);
/** Prints the resolved layout and the entry in @p boot (`smolvm check`). */
void machine_print_layout(const struct machine *m, const struct arch_boot *boot);
/**
 * Boots the machine: loads the payload, creates the VM and its vCPUs with the boot state. A
 * status (STATUS_CONFIG for a bad kernel, STATUS_ERROR) or -1 when ready to run.
 */
int machine_boot(struct machine *m);
/** Creates the VM (RAM already in m->mem) and its vCPUs. 0, or a status to exit with. */
int machine_create_vm(struct machine *m);
/** Runs a booted or restored machine until the guest or a device ends the run: the status. */
int machine_run(struct machine *m);
/** Frees everything (devices destroyed, plugins stay loaded until plugin_close_all). */
void machine_destroy(struct machine *m);

/** Ends the run with @p status (the first request wins); callable from any thread. */
void machine_request_exit(struct machine *m, int status);
/** Ends the run because the guest asked for a reset (status STATUS_REBOOT; main restarts the
 * machine when on_reboot = restart). */
void machine_request_reset(struct machine *m);
/** True once the run is ending. */
bool machine_stopping(const struct machine *m);

/* ---- lifecycle (snapshot.c, machine.c): every call below is for the event loop's thread */

/**
 * Stops every vCPU (a sticky flag and a kick; a pending port/MMIO exit is completed first, so
 * a vCPU stops between instructions) and pauses every device that runs threads. Nested calls
 * count: the machine runs again after as many machine_resume() calls. 0, or a negative errno
 * when the machine is not running (or is ending).
 */
int machine_pause(struct machine *m);
/** Undoes one machine_pause(); the last one lets the guest run (the guest is told it was
 * paused). 0, or -EINVAL when it was not paused. */
int machine_resume(struct machine *m);
/** True while machine_pause() holds the machine (a user's pause, or a snapshot in progress). */
bool machine_paused(const struct machine *m);
/** Milliseconds since the machine started running (for status replies). */
uint64_t machine_uptime_ms(const struct machine *m);

/** Sets an IRQ line's level, forwarding to the VM when it exists. */
int machine_irq_set(struct machine *m, uint32_t line, int level);

#endif
