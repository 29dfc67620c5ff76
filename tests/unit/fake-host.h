/*
 * A fake struct smol_host for Criterion unit tests of device plugins: no core, no KVM.
 *
 * The test sets config keys, creates devices from a dlopen'ed plugin, then drives them
 * through their mapped PIO/MMIO handlers and looks at what the fake recorded: IRQ levels
 * and rising edges, config errors, fd watches (fired by hand), exit requests, the log.
 *
 *   fake_host_init();                            // in .init: fresh state, 16 MiB of RAM
 *   const struct smol_plugin_desc *p = fake_plugin_open(path);
 *   struct smol_dev *d = fake_dev_new("com1");
 *   fake_cfg_set(d, "port", "0x3f8");
 *   cr_assert_eq(fake_dev_create(d, p, 0), 0);
 *   fake_pio_write(0x3f8, 1, 'A');
 *   fake_host_fini();                            // in .fini: destroys devices, closes plugins
 *
 * A test's log goes to a file; the runner prints it when the test fails or crashes.
 * One machine per process (Criterion forks per test): the state is global.
 *
 * Threads: as in the core, handlers, reset and destroy run under the device's own lock, and
 * a device may call log, gpa_ptr, irq_set, irq_pulse and request_exit from a thread of its
 * own (an I/O thread); what those record is read safely from the test's threads. Everything
 * else (config, maps, watches, ioeventfd registration) is for create() and the test's main
 * thread.
 */
#ifndef SMOLVM_TESTS_FAKE_HOST_H
#define SMOLVM_TESTS_FAKE_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

#define FAKE_RAM_BASE 0x0ull
#ifdef FAKE_HOST_FUZZ
/* A fuzzer makes a machine per input and clears its RAM each time: 2 MiB hold every layout
 * the targets use, and clearing them costs less than giving 16 MiB back to the kernel and
 * faulting them in again. */
#define FAKE_RAM_SIZE (2ull << 20)
#else
#define FAKE_RAM_SIZE (16ull << 20)
#endif
#define FAKE_IRQ_LINES 64
#define FAKE_MMIO_AUTO_BASE 0xd0000000ull

extern const struct smol_host fake_host;

void fake_host_init(void);
void fake_host_fini(void);

/* Plugins: dlopen()ed, checked like the loader does; NULL (and a log line) on failure. */
const struct smol_plugin_desc *fake_plugin_open(const char *path);

/* Devices. */
struct smol_dev *fake_dev_new(const char *name);
/* Calls ops->create; on failure destroys a state it set, as the core does. */
int fake_dev_create(struct smol_dev *dev, const struct smol_plugin_desc *p, uint32_t flags);
void fake_dev_destroy(struct smol_dev *dev); /* also unmaps, unclaims, drops watches */
void fake_dev_reset(struct smol_dev *dev);
/* Calls the device's stats() op (ABI 1.6) under its lock, as `smolvm ctl stats` does. */
void fake_dev_stats(struct smol_dev *dev, void (*put)(void *ctx, const char *name, uint64_t v),
                    void *ctx);
void *fake_dev_state(struct smol_dev *dev);
unsigned fake_dev_leaked_watches(struct smol_dev *dev); /* watches left at destroy */

/*
 * Runs the device's describe() (ABI 1.1) and returns what it described, one line per call:
 * "device HID", "io PORT LEN", "mmio 0xBASE 0xLEN", "irq LINE FLAGS", "cmdline WORDS"; NULL
 * when describe() failed or is absent. Valid until the next call.
 */
const char *fake_dev_describe(struct smol_dev *dev);

/* Configuration of a device's section. */
void fake_cfg_set(struct smol_dev *dev, const char *key, const char *value);
void fake_cfg_dir(const char *dir); /* folder cfg_path resolves against (default ".") */
bool fake_cfg_was_read(struct smol_dev *dev, const char *key);
const char *fake_cfg_unread(struct smol_dev *dev); /* first key never read, or NULL */
unsigned fake_cfg_errors(void);
const char *fake_cfg_error_key(unsigned i); /* "" for a section error */
const char *fake_cfg_error_msg(unsigned i);
bool fake_cfg_error_about(const char *key); /* any cfg_error (or malformed value) for key */

/* Guest accesses through the mapped handlers (unmapped: reads all ones, writes dropped). */
uint64_t fake_pio_read(uint16_t port, unsigned size);
void fake_pio_write(uint16_t port, unsigned size, uint64_t value);
uint64_t fake_mmio_read(uint64_t addr, unsigned size);
void fake_mmio_write(uint64_t addr, unsigned size, uint64_t value);
bool fake_pio_mapped(uint16_t port);
bool fake_mmio_mapped(uint64_t addr);
unsigned fake_maps(void); /* number of mapped ranges (PIO and MMIO) */

/* IRQ lines. */
bool fake_irq_claimed(uint32_t line);
int fake_irq_level(uint32_t line);
unsigned fake_irq_rises(uint32_t line); /* rising edges, pulses included */
unsigned fake_irq_misuse(void); /* irq_set/pulse on a line the device did not claim */

/* Guest RAM. */
uint8_t *fake_ram(void);
/* gpa_ptr() calls so far, from any thread: a device that spins keeps counting. */
uint64_t fake_gpa_calls(void);

/* fd watches. */
bool fake_fd_watched(int fd);
uint32_t fake_fd_events(int fd);
/* Runs the watch's callback; -ENOENT when @fd is not watched. */
int fake_fd_fire(int fd, uint32_t events);
/* Waits (poll) up to @timeout_ms for @fd to be readable, then fires SMOL_FD_IN. */
int fake_fd_fire_ready(int fd, int timeout_ms);
/*
 * One turn of the event loop: waits up to @timeout_ms for any watched fd to be ready for
 * the events it is watched for, then runs the callback of each ready one once (a watch
 * dropped by an earlier callback of the turn is skipped). The number of callbacks run.
 */
unsigned fake_fd_pump(int timeout_ms);

/*
 * ioeventfds (ABI 1.2): refused with -ENOTSUP unless fake_ioeventfd_accept(true) came first
 * (before create); then they are recorded, and an MMIO write that matches one (address,
 * length, datamatch) writes 1 to its eventfd instead of reaching the handler, as KVM does.
 * fake_ioeventfd_fd() is the fd registered at @addr, -1 for none.
 */
void fake_ioeventfd_accept(bool on);
int fake_ioeventfd_fd(uint64_t addr);

/*
 * Holding a device inside a guest-memory access: after fake_gpa_hold(gpa, len), every
 * gpa_ptr() call for exactly that range blocks (in whichever thread makes it) until
 * fake_gpa_release(). fake_gpa_wait_held() waits up to @timeout_ms for one to be blocked;
 * fake_gpa_held() says how many are.
 */
void fake_gpa_hold(uint64_t gpa, uint64_t len);
void fake_gpa_release(void);
bool fake_gpa_wait_held(int timeout_ms);
unsigned fake_gpa_held(void);

/*
 * Snapshots (ABI 1.3). fake_dev_pause/resume call the device's pause()/resume() under its
 * lock (no-ops when absent). fake_dev_save runs save() under the lock and returns 0 with a
 * malloc'ed copy of the stream in *buf (free it), its length and the declared state version,
 * or save()'s error (-ENOTSUP when the device has no save). fake_dev_load runs load() on
 * @buf with state version @version, and fails with -EBADMSG when load() returned 0 but left
 * bytes unread, as the core does. fake_snapshot_requests counts request_snapshot() calls.
 */
void fake_dev_pause(struct smol_dev *dev);
void fake_dev_resume(struct smol_dev *dev);
int fake_dev_save(struct smol_dev *dev, uint8_t **buf, size_t *len, uint32_t *version);
int fake_dev_load(struct smol_dev *dev, const uint8_t *buf, size_t len, uint32_t version);
unsigned fake_snapshot_requests(void);

/* Run control and log (fake_log: a copy, valid until the next call). */
unsigned fake_exit_requests(void);
int fake_exit_status(void);
const char *fake_log(void);
bool fake_log_contains(const char *needle);

#endif
