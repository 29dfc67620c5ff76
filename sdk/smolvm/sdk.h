/**
 * @file sdk.h
 * @brief smolvm plugin SDK: the one public header, the versioned plugin ABI.
 *
 * A plugin is a shared object that exports exactly one data symbol, the const descriptor
 * #smol_plugin (see SMOL_PLUGIN()). The loader reads the descriptor's version fields and
 * refuses a plugin with another major version or a newer minor version before calling any
 * of its code. Ops tables are const and never written by the core. Plugins never link
 * against symbols of the executable: everything the core offers arrives through the
 * const tables passed to create().
 *
 * Two kinds of plugins:
 *  - device plugins (#SMOL_KIND_DEVICE, ops: struct smol_device_ops): device models, given
 *    a struct smol_host table to map MMIO/PIO ranges, drive IRQ lines, reach guest memory,
 *    watch fds and read their INI section;
 *  - backend plugins (#SMOL_KIND_BACKEND, ops: struct smol_backend_ops): hypervisors
 *    (kvm.so, hvf.dylib), given a struct smol_backend_host table.
 *
 * Errors cross the ABI as 0 or a negative errno. Plugins never call exit() or abort() and
 * never print to stderr themselves: they log through the host table.
 *
 * Threading: the core serialises every callback into one device instance (MMIO/PIO
 * handlers, fd callbacks, reset, destroy) with a per-device lock, so a device model needs
 * no locking of its own unless it starts threads. Host functions may be called from inside
 * any callback. A thread the device starts itself (say, an I/O thread woken by an
 * ioeventfd) runs outside that lock and may call log, gpa_ptr, irq_set, irq_pulse,
 * request_exit and request_reset, and write its irqfd; nothing else (no fd_watch, map_*,
 * irq_claim, cfg_* or desc_*). destroy() must stop and join such a thread before it
 * returns: guest RAM goes away after it.
 *
 * ABI changelog (bump the minor for additions at the end of a struct, the major for anything
 * else; the loader accepts plugins with minor <= the core's):
 *  - 1.0 (smolvm 0.1): descriptor, device ops (create, destroy, reset; save, load, describe
 *    and methods reserved), host table (log, config getters and config errors, MMIO/PIO
 *    mapping, IRQ claim/set/pulse, checked guest memory, fd watches, run control), backend
 *    ops (VM, memory slots, vCPUs, normalised exits, IRQ lines, x86 boot state).
 *  - 1.1 (smolvm 0.2): device ops describe() is live; host table request_reset() and the
 *    description helpers desc_device/desc_io/desc_mmio/desc_irq/desc_cmdline (the core
 *    turns descriptions into ACPI DSDT devices, or kernel command-line words without ACPI).
 *  - 1.2 (smolvm 0.3): host table ioeventfd() and irqfd() (queue notifications and interrupts
 *    without a vCPU exit or a core round-trip), irq_claim(SMOL_IRQ_AUTO); backend ops
 *    ioeventfd and irqfd.
 *  - 1.3 (smolvm 0.4): snapshots. Device ops save() and load() are live, with the host
 *    table's snap_* stream functions (each device writes its own state version); device ops
 *    pause() and resume() (reserved[0], reserved[1] before) for devices that run threads;
 *    host table request_snapshot(); backend ops vm_cpu_info, vm_save, vm_load, vcpu_save,
 *    vcpu_load and vcpu_was_paused (arch-tagged state blobs, enum smol_arch). The layout of
 *    every public struct is pinned with _Static_assert for the whole 1.x line, and
 *    SMOL_TARGET_ABI_MINOR lets a plugin be built for an older core.
 *  - 1.4 (smolvm 0.5): host table dev_name() and machine_name(), for names and identifiers
 *    that stay the same from run to run (virtio-net's default MAC address), and
 *    cfg_str_at() for a key the user may repeat (virtio-net's port forwards).
 *  - 1.5 (smolvm 0.6): arm64 machines. Host table desc_compatible(), desc_clock() and
 *    desc_console(): a device describes itself for a device tree (the core writes one node
 *    per described device; ACPI machines ignore them); desc_mmio() takes addresses above
 *    4 GiB on arm64; interrupt lines are GIC SPIs there (line N is SPI N, INTID 32 + N).
 *    Backend ops vcpu_set_boot() (an arch-tagged entry state: struct smol_arm64_boot) and
 *    vm_ready() (once every vCPU exists: arm64's GICv3 at struct smol_arm64_platform's
 *    addresses).
 *  - 1.6 (smolvm 0.7): exported methods. Device ops methods/n_methods are live (struct
 *    smol_method: a name, a function, a signature string, a line of help); the loader checks
 *    every method before any machine starts and refuses the plugin naming the method.
 *    Device op stats(): the device's own counters for `smolvm ctl SOCK stats`.
 *
 * Building for an older core: define SMOL_TARGET_ABI_MINOR (say 2) before including this
 * header. The descriptor then says 1.2, so a 1.2 core loads the plugin, and the fields of later
 * minor versions keep their reserved names, so code that would use them does not compile.
 * Layouts never change with it.
 */
#ifndef SMOLVM_SDK_H
#define SMOLVM_SDK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI major version: plugins built for another major are refused. */
#define SMOL_ABI_MAJOR 1
/** ABI minor version: plugins built for a newer minor than the core's are refused. */
#define SMOL_ABI_MINOR 6

/** The minor version a plugin is built for (see the changelog): SMOL_ABI_MINOR by default. */
#ifndef SMOL_TARGET_ABI_MINOR
#define SMOL_TARGET_ABI_MINOR SMOL_ABI_MINOR
#endif
#if SMOL_TARGET_ABI_MINOR > SMOL_ABI_MINOR || SMOL_TARGET_ABI_MINOR < 0
#error "SMOL_TARGET_ABI_MINOR must be between 0 and SMOL_ABI_MINOR"
#endif

/** Name of the one data symbol every plugin exports. */
#define SMOL_PLUGIN_SYMBOL "smol_plugin"

#if defined(__GNUC__) || defined(__clang__)
/** Marks the descriptor as the plugin's only exported symbol (build with hidden visibility). */
#define SMOL_EXPORT __attribute__((visibility("default")))
/** Results that must be checked (0 or a negative errno). */
#define SMOL_MUST_CHECK __attribute__((warn_unused_result))
/** printf-style format checking for logging functions. */
#define SMOL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SMOL_EXPORT
#define SMOL_MUST_CHECK
#define SMOL_PRINTF(fmt, args)
#endif

/** What a plugin provides. */
enum smol_plugin_kind {
	SMOL_KIND_BACKEND = 1, /**< a hypervisor backend: ops is a struct smol_backend_ops */
	SMOL_KIND_DEVICE = 2, /**< a device model: ops is a struct smol_device_ops */
};

/**
 * The plugin descriptor, exported as the const data symbol #SMOL_PLUGIN_SYMBOL.
 * The first three fields are read before anything else and never move.
 */
struct smol_plugin_desc {
	uint32_t abi_major; /**< SMOL_ABI_MAJOR the plugin was built with */
	uint32_t abi_minor; /**< SMOL_ABI_MINOR the plugin was built with */
	uint32_t struct_size; /**< sizeof(struct smol_plugin_desc) as the plugin saw it */
	uint32_t kind; /**< enum smol_plugin_kind */
	const char *name; /**< the name an INI file uses (`type = NAME`, `backend = NAME`) */
	const char *description; /**< one line for `smolvm plugins` */
	const void *ops; /**< const struct smol_device_ops or smol_backend_ops, by kind */
};

/**
 * Defines the plugin descriptor. Use once per plugin, at file scope:
 * @code
 * SMOL_PLUGIN(SMOL_KIND_DEVICE, "my-device", "what it is", &my_ops);
 * @endcode
 */
#ifdef __cplusplus
#define SMOL_PLUGIN(kind_, name_, desc_, ops_)                                                     \
	extern "C" SMOL_EXPORT const struct smol_plugin_desc smol_plugin;                          \
	const struct smol_plugin_desc smol_plugin = { SMOL_ABI_MAJOR,                              \
		                                      SMOL_TARGET_ABI_MINOR,                       \
		                                      sizeof(struct smol_plugin_desc),             \
		                                      (kind_),                                     \
		                                      (name_),                                     \
		                                      (desc_),                                     \
		                                      (ops_) }
#else
#define SMOL_PLUGIN(kind_, name_, desc_, ops_)                                                     \
	SMOL_EXPORT const struct smol_plugin_desc smol_plugin = { SMOL_ABI_MAJOR,                  \
		                                                  SMOL_TARGET_ABI_MINOR,           \
		                                                  sizeof(struct smol_plugin_desc), \
		                                                  (kind_),                         \
		                                                  (name_),                         \
		                                                  (desc_),                         \
		                                                  (ops_) }
#endif

/* ------------------------------------------------------------------------------------ */
/* Device plugins                                                                        */
/* ------------------------------------------------------------------------------------ */

/** Opaque handle of one device instance, owned by the core; passed back to host calls. */
struct smol_dev;

/** Log levels for smol_host::log. */
enum smol_log_level {
	SMOL_LOG_ERROR = 0, /**< something failed */
	SMOL_LOG_WARN = 1, /**< something is odd but the device goes on */
	SMOL_LOG_INFO = 2, /**< shown by default */
	SMOL_LOG_DEBUG = 3, /**< shown with `smolvm -v` */
};

/**
 * Handlers of an MMIO or PIO range. @p offset is relative to the range's base, @p size is
 * 1, 2, 4 or 8 bytes. Either handler may be NULL: reads then return all ones and writes are
 * ignored.
 */
struct smol_io_ops {
	/** Guest read of @p size bytes at @p offset; return the value (low @p size bytes used). */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	/** Guest write of @p value (@p size bytes) at @p offset. */
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

/** Pass to smol_host::irq_claim to have the core choose a free line (ABI 1.2). */
#define SMOL_IRQ_AUTO UINT32_MAX

/** Pass as the base of smol_host::map_mmio to have the core choose a free window. */
#define SMOL_ADDR_AUTO UINT64_MAX

/** Events for smol_host::fd_watch (as in poll(2)). */
enum smol_fd_events {
	SMOL_FD_IN = 1u << 0, /**< readable */
	SMOL_FD_OUT = 1u << 1, /**< writable */
	SMOL_FD_HUP = 1u << 2, /**< hung up or error (always reported) */
};

/** Callback of an fd watch, run on the core's event-loop thread. */
typedef void (*smol_fd_fn)(void *opaque, int fd, uint32_t events);

/** Flags for smol_device_ops::create. */
enum smol_create_flags {
	/**
	 * `smolvm check`: validate the configuration and map ranges and IRQ lines, but open no
	 * output files, start no threads, change nothing outside the process.
	 */
	SMOL_CREATE_CHECK_ONLY = 1u << 0,
};

struct smol_describe; /**< a description being built (ABI 1.1, see smol_host::desc_device) */
struct smol_snap_writer; /**< a device's state being saved (ABI 1.3, smol_host::snap_write) */
struct smol_snap_reader; /**< a device's state being loaded (ABI 1.3, smol_host::snap_read) */

/**
 * The core's services for a device plugin (core -> plugin direction). Passed to create();
 * valid until destroy() returns. Every function takes the device's own handle.
 */
struct smol_host {
	uint32_t abi_major; /**< the core's SMOL_ABI_MAJOR */
	uint32_t abi_minor; /**< the core's SMOL_ABI_MINOR: slots past it are absent */
	uint32_t struct_size; /**< sizeof(struct smol_host) in the core */

	/** Logs a message prefixed with the device's name. */
	void (*log)(struct smol_dev *dev, enum smol_log_level level, const char *fmt, ...)
	        SMOL_PRINTF(3, 4);

	/**
	 * Config getters for the device's INI section. Each returns 0 and the value, or
	 * @p def with 0 when the key is absent, or -EINVAL (after reporting `file:line: ...`)
	 * when the value is malformed. A key no getter asked for is an unknown key: the core
	 * reports it after create() returns. Strings stay valid until destroy().
	 */
	SMOL_MUST_CHECK int (*cfg_str)(struct smol_dev *dev, const char *key, const char *def,
	                               const char **out);
	/** Unsigned integer: decimal, 0x hex, 0o octal or 0b binary. */
	SMOL_MUST_CHECK int (*cfg_u64)(struct smol_dev *dev, const char *key, uint64_t def,
	                               uint64_t *out);
	/** Boolean: on/off, yes/no, true/false, 1/0. */
	SMOL_MUST_CHECK int (*cfg_bool)(struct smol_dev *dev, const char *key, int def, int *out);
	/** Size in bytes, with an optional K, M, G or T suffix (powers of 1024). */
	SMOL_MUST_CHECK int (*cfg_size)(struct smol_dev *dev, const char *key, uint64_t def,
	                                uint64_t *out);
	/**
	 * Reports a configuration error about @p key (NULL: the section itself); the core
	 * prefixes the INI file and line. Return -EINVAL from create() afterwards.
	 */
	void (*cfg_error)(struct smol_dev *dev, const char *key, const char *fmt, ...)
	        SMOL_PRINTF(3, 4);
	/** Resolves a path from the INI (relative to the INI file's folder); caller frees. */
	char *(*cfg_path)(struct smol_dev *dev, const char *path);

	/**
	 * Maps [base, base+len) of guest-physical MMIO space to @p ops. Only from create():
	 * ranges are frozen once the machine runs (-EBUSY). Handlers only ever see accesses that
	 * lie wholly inside the range (offset + size <= len); others are treated as unmapped. @p
	 * base may be SMOL_ADDR_AUTO; the chosen base is returned in @p out_base (may be NULL).
	 * Fails with -EEXIST on an overlap, which the core reports with both devices' names.
	 */
	SMOL_MUST_CHECK int (*map_mmio)(struct smol_dev *dev, uint64_t base, uint64_t len,
	                                const struct smol_io_ops *ops, void *opaque,
	                                uint64_t *out_base);
	/** Maps I/O ports [port, port+len) to @p ops (x86). -EEXIST on an overlap. */
	SMOL_MUST_CHECK int (*map_pio)(struct smol_dev *dev, uint16_t port, uint16_t len,
	                               const struct smol_io_ops *ops, void *opaque);

	/**
	 * Claims interrupt line @p line (a GSI on x86), only from create(). -EINVAL for a line
	 * that does not exist, -EBUSY if another device holds it or the core keeps it: the core
	 * reports every refusal itself, with file and line (the device need not). ABI 1.2: with
	 * SMOL_IRQ_AUTO the core picks the first free line from the arch's first (x86: 5, arm64:
	 * 16) up and returns it (>= 0). A line is an I/O APIC pin (GSI) on x86, a GIC SPI on
	 * arm64.
	 */
	SMOL_MUST_CHECK int (*irq_claim)(struct smol_dev *dev, uint32_t line);
	/** Sets a claimed line's level (1 asserted, 0 deasserted). */
	int (*irq_set)(struct smol_dev *dev, uint32_t line, int level);
	/** Pulses a claimed line: an edge (assert then deassert). */
	int (*irq_pulse)(struct smol_dev *dev, uint32_t line);

	/**
	 * Checked guest memory: a host pointer to guest-physical [gpa, gpa+len), or NULL when
	 * the range is not entirely inside guest RAM (overflow included). Use it for every
	 * address the guest hands the device, and fail the request on NULL.
	 */
	void *(*gpa_ptr)(struct smol_dev *dev, uint64_t gpa, uint64_t len);

	/** Watches @p fd on the core's event loop; @p cb runs with the device lock held. */
	SMOL_MUST_CHECK int (*fd_watch)(struct smol_dev *dev, int fd, uint32_t events,
	                                smol_fd_fn cb, void *opaque);
	/** Stops watching @p fd. */
	int (*fd_unwatch)(struct smol_dev *dev, int fd);

	/**
	 * Ends the run: `smolvm run` stops the vCPUs and exits with @p status (0-255).
	 * For exit devices, a guest's reset request, a console's escape key.
	 */
	void (*request_exit)(struct smol_dev *dev, int status);

	/* ---- ABI 1.1: check abi_minor >= 1 before calling these ------------------------ */

	/**
	 * Asks for a machine reset (a guest's reboot request). The run ends with
	 * SMOL_STATUS_REBOOT, or restarts the machine, as `[machine] on_reboot` says.
	 */
	void (*request_reset)(struct smol_dev *dev);

	/**
	 * Description helpers, valid only inside describe() and on its @p d. A description is
	 * a list of guest-visible devices: desc_device() starts one, named by its ACPI hardware
	 * ID: an EISA id, 3 uppercase letters and 4 hex digits ("PNP0501"), or an ACPI id, 4
	 * uppercase letters or digits and 4 hex digits ("LNRO0005"); desc_io() (1-255 ports),
	 * desc_mmio() and desc_irq() add resources to it, in order, up to 4 of each kind. The
	 * core turns them into ACPI DSDT devices. 0, -EINVAL for a bad argument or a resource
	 * before any device, -ENOSPC past the limits.
	 */
	SMOL_MUST_CHECK int (*desc_device)(struct smol_describe *d, const char *hid);
	/** Adds ports [port, port+len). */
	SMOL_MUST_CHECK int (*desc_io)(struct smol_describe *d, uint16_t port, uint16_t len);
	/** Adds guest-physical MMIO [base, base+len) (below 4 GiB on x86, where ACPI says it). */
	SMOL_MUST_CHECK int (*desc_mmio)(struct smol_describe *d, uint64_t base, uint64_t len);
	/** Adds interrupt line @p line (a GSI on x86, an SPI on arm64) with enum smol_irq_flags. */
	SMOL_MUST_CHECK int (*desc_irq)(struct smol_describe *d, uint32_t line, uint32_t flags);
	/**
	 * Kernel command-line words for a machine without ACPI (`[machine] acpi = off`), e.g.
	 * "virtio_mmio.device=512@0xd0000000:5". Ignored when ACPI or a device tree describes the
	 * machine.
	 */
	SMOL_MUST_CHECK int (*desc_cmdline)(struct smol_describe *d, const char *words);

	/* ---- ABI 1.2: check abi_minor >= 2 before calling these ------------------------ */

	/**
	 * Asks the backend to signal eventfd @p fd, instead of exiting to this device's MMIO
	 * handler, when the guest writes @p len bytes (1, 2, 4 or 8) at guest-physical @p addr
	 * inside one of the device's own MMIO ranges; with SMOL_IOEVENT_DATAMATCH only writes of
	 * @p datamatch. The device watches @p fd with fd_watch() and does the work on the event
	 * loop's thread, or on a thread of its own (see Threading above). Only from create().
	 * -ENOTSUP when the backend cannot (the writes then reach the MMIO handler as before:
	 * handle them there too), -EINVAL for a bad range.
	 */
	SMOL_MUST_CHECK int (*ioeventfd)(struct smol_dev *dev, uint64_t addr, uint32_t len,
	                                 uint32_t flags, uint64_t datamatch, int fd);
	/**
	 * Makes each write to eventfd @p fd pulse (an edge) claimed line @p line, in the backend
	 * when it can, else in the core's event loop: either way, write 1 to @p fd to interrupt.
	 * Only from create(). -EINVAL when the device did not claim @p line.
	 */
	SMOL_MUST_CHECK int (*irqfd)(struct smol_dev *dev, uint32_t line, int fd);

	/** Reserved for later minor versions (timers). */
	void (*reserved[4])(void);

	/* ---- ABI 1.3: check abi_minor >= 3 before calling these ------------------------ */
#if SMOL_TARGET_ABI_MINOR >= 3
	/**
	 * Snapshot streams. Inside save(): snap_set_version() declares the version of the state
	 * this save() writes (1 when never called; call it first), snap_write() appends bytes (0,
	 * or a negative errno to return from save()). Inside load(): snap_version() is the version
	 * the saving device declared, snap_read() reads exactly @p len bytes (-EBADMSG when fewer
	 * are left: return it), snap_remaining() says how many bytes are left (load() must read
	 * them all; the core refuses a state with bytes left over). Values are the device's own
	 * business: write fixed-width fields in a fixed byte order (the in-tree devices use
	 * little-endian), never raw structs whose layout a compiler may change.
	 */
	void (*snap_set_version)(struct smol_snap_writer *w, uint32_t version);
	SMOL_MUST_CHECK int (*snap_write)(struct smol_snap_writer *w, const void *data, size_t len);
	uint32_t (*snap_version)(struct smol_snap_reader *r);
	SMOL_MUST_CHECK int (*snap_read)(struct smol_snap_reader *r, void *data, size_t len);
	size_t (*snap_remaining)(struct smol_snap_reader *r);
	/**
	 * Asks for a snapshot as the machine's [snapshot] section says (a snapshot-port device).
	 * Callable from an MMIO/PIO handler: the core pauses every vCPU once the handler has
	 * returned, so the vCPU that asked resumes, now and in every restore, at the instruction
	 * after its access. Without a [snapshot] section it is logged and ignored.
	 */
	void (*request_snapshot)(struct smol_dev *dev);
#else
	void (*reserved_1_3[6])(void);
#endif

	/* ---- ABI 1.4: check abi_minor >= 4 before calling these ------------------------ */
#if SMOL_TARGET_ABI_MINOR >= 4
	/** The device's name: NAME of its `[device NAME]` section. Valid until destroy(). */
	const char *(*dev_name)(struct smol_dev *dev);
	/**
	 * The machine's name: `[machine] name`, else the INI file's name without its folder and
	 * a ".ini" ending. The same in every run of that file, and in a restore of its snapshot.
	 * Valid until destroy().
	 */
	const char *(*machine_name)(struct smol_dev *dev);
	/**
	 * A key the device lets the user repeat (port forwards): its @p index-th value (from 0,
	 * in file order) in @p out and 0, or -ENOENT past the last. Any other key may appear
	 * once in a device's section: the core reports a repeated one, with both lines.
	 */
	SMOL_MUST_CHECK int (*cfg_str_at)(struct smol_dev *dev, const char *key, unsigned index,
	                                  const char **out);
#else
	void (*reserved_1_4[3])(void);
#endif

	/* ---- ABI 1.5: check abi_minor >= 5 before calling these ------------------------ */
#if SMOL_TARGET_ABI_MINOR >= 5
	/**
	 * Device-tree descriptions (arm64 machines), inside describe() after desc_device(): a
	 * compatible string of the device being described, most specific first ("arm,pl011",
	 * then "arm,primecell"), up to 4 of at most 63 bytes each. A described device without
	 * one is left out of a device tree (with a warning). ACPI machines ignore it.
	 */
	SMOL_MUST_CHECK int (*desc_compatible)(struct smol_describe *d, const char *compatible);
	/**
	 * A clock input of the device being described, @p name as its binding says ("uartclk",
	 * "apb_pclk"), running at @p hz: a fixed-rate clock in a device tree. Up to 2.
	 */
	SMOL_MUST_CHECK int (*desc_clock)(struct smol_describe *d, const char *name, uint32_t hz);
	/**
	 * The device being described is a console: the first one a machine describes is where
	 * the kernel writes (a device tree's /chosen stdout-path).
	 */
	SMOL_MUST_CHECK int (*desc_console)(struct smol_describe *d);
#else
	void (*reserved_1_5[3])(void);
#endif
};

/** Flags for smol_host::ioeventfd. */
enum smol_ioevent_flags {
	SMOL_IOEVENT_DATAMATCH = 1u << 0, /**< only writes of the given value */
};

/** How a described interrupt line is signalled (smol_host::desc_irq). */
enum smol_irq_flags {
	SMOL_IRQ_EDGE = 0, /**< edge-triggered, active high (ISA style) */
	SMOL_IRQ_LEVEL = 1u << 0, /**< level-triggered */
	SMOL_IRQ_ACTIVE_LOW = 1u << 1, /**< active low */
};

/** `smolvm run`'s exit status after a guest reboot with `on_reboot = exit`. */
#define SMOL_STATUS_REBOOT 3

#if SMOL_TARGET_ABI_MINOR >= 6
/** Most parameters a method takes after the device's state (an `S` counts as one). */
#define SMOL_METHOD_MAX_ARGS 8
/** Longest method name: lower-case letters, digits and '_', starting with a letter. */
#define SMOL_METHOD_NAME_MAX 31
/** Most methods one device exports. */
#define SMOL_METHODS_MAX 64

/**
 * One method a device exports (ABI 1.6), called by the control plane (`smolvm ctl SOCK call
 * DEV.NAME ARGS...`) through libffi on the core's event-loop thread, under the device's lock
 * (serialised with its MMIO/PIO handlers, as every callback is).
 *
 * The function's first parameter is always the device's state (`void *`, what create() set);
 * the signature gives the return type and the parameters after it, as `R(P...)`, one letter
 * each:
 *   b B   int8_t, uint8_t        h H   int16_t, uint16_t
 *   i u   int32_t, uint32_t      l L   int64_t, uint64_t
 *   d     double
 *   s     const char *: a string in (NUL-terminated, UTF-8; parameters only)
 *   S     char *buf, size_t len: a string out, two C parameters (parameters only): the
 *         method writes at most len bytes including a NUL; the caller prints it
 *   v     void (the return only)
 * Example: `i(ud)` is `int32_t f(void *state, uint32_t, double)`; `v(S)` is `void f(void
 * *state, char *buf, size_t len)`. At most SMOL_METHOD_MAX_ARGS parameters. The loader
 * refuses a plugin with a method it cannot call: a name that is not [a-z][a-z0-9_]{0,30} or
 * that another method of the device has, a NULL or foreign function, a signature with an
 * unknown letter, a misplaced `s`/`S`/`v`, or too many parameters, a help that is missing or
 * longer than one line.
 */
struct smol_method {
	const char *name; /**< unique within the device, [a-z][a-z0-9_]{0,30} */
	void (*fn)(void); /**< the function, cast: (void (*)(void))my_method */
	const char *signature; /**< "R(P...)", see above */
	const char *help; /**< one line, no newline, for `smolvm ctl SOCK methods` */
};

/** Longest counter name a device's stats() reports. */
#define SMOL_STAT_NAME_MAX 47
/** Most counters one stats() call reports (the rest are dropped with a warning; messages
 * say 128: change them with it). */
#define SMOL_STATS_MAX 128
/**
 * What a device's stats() calls once per counter (ABI 1.6): @p name is [a-z0-9_.]{1,47}
 * (dots group: "q0.requests"), unique within the call; @p value a count since the device was
 * created (or a current level, the name says which). Pass @p ctx back as given.
 */
typedef void smol_stat_fn(void *ctx, const char *name, uint64_t value);
#else
struct smol_method; /**< reserved: exported methods (ABI 1.6) */
#endif

/** Operations of a device plugin (plugin -> core direction). */
struct smol_device_ops {
	uint32_t struct_size; /**< sizeof(struct smol_device_ops) as the plugin saw it */

	/**
	 * Required. Creates one instance: reads the config, maps ranges, claims IRQ lines.
	 * @param host  the core's services, valid until destroy
	 * @param dev   this instance's handle for host calls
	 * @param flags enum smol_create_flags
	 * @param state receives the instance's private state, passed to every other op
	 * @return 0, or a negative errno after logging or cfg_error() saying why
	 */
	SMOL_MUST_CHECK int (*create)(const struct smol_host *host, struct smol_dev *dev,
	                              uint32_t flags, void **state);
	/** Required. Frees the instance (also after a failed create() that set *state). */
	void (*destroy)(void *state);
	/** Optional. Puts the device in its power-on state (machine reset). */
	void (*reset)(void *state);

	/**
	 * Optional (ABI 1.3; reserved and NULL before). Writes the device's whole state through
	 * smol_host::snap_set_version and snap_write. Called on the core's event-loop thread
	 * under the device's lock, with every vCPU stopped and every device paused (pause()), so
	 * nothing changes the state meanwhile. 0 or a negative errno (the snapshot fails, the
	 * machine goes on). A machine with a device without save() cannot be snapshotted: the
	 * request is refused naming the device. Host-side things (open files, fds, threads) are
	 * not state: they come from the configuration when the restored device is created.
	 */
	int (*save)(void *state, struct smol_snap_writer *w);
	/**
	 * Optional (ABI 1.3; reserved and NULL before). Restores what save() wrote, into a device
	 * just made by create() from the same configuration (or one a restore may change: a
	 * UART's output, a disk's path), instead of a reset, before any vCPU runs; on the
	 * event-loop thread under the device's lock. Accept every older state version the device
	 * knows; refuse a newer one (-ENOTSUP) and state that does not fit the device as
	 * configured now (-EINVAL: a disk of another size), after logging why. Do not re-drive the
	 * levels of IRQ lines: the core restores them; but an edge the device raised that the
	 * guest has not acknowledged yet may have been in flight when the state was saved (an
	 * irqfd's injection): raise it again. A device with work waiting in restored state (a
	 * queue with requests) starts on it by itself, once resume() is called if it has one (the
	 * core pauses such devices before load() and resumes them when the whole machine is
	 * restored). 0 or a negative errno (the restore is refused before the guest runs).
	 */
	int (*load)(void *state, struct smol_snap_reader *r);
	/**
	 * Optional (ABI 1.1; NULL in 1.0 plugins). Describes the device to the guest through
	 * the host's desc_* helpers. Called once after every device was created (also for
	 * `smolvm check`), before the guest boots. 0 or a negative errno (a config error).
	 */
	int (*describe)(void *state, struct smol_describe *d);
	/**
	 * Optional (ABI 1.6; reserved and ignored before): the methods the device exports
	 * (struct smol_method), n_methods of them (at most SMOL_METHODS_MAX), or NULL.
	 */
	const struct smol_method *methods;
	/** Number of entries in methods. */
	uint32_t n_methods;

#if SMOL_TARGET_ABI_MINOR >= 3
	/**
	 * Optional (ABI 1.3). For devices that run threads: finish the request in hand, take no
	 * new one and return once the device's threads touch neither guest memory nor the state
	 * (they may keep waiting). Called on the event-loop thread under the device's lock, after
	 * every vCPU stopped, before save(). Work that arrives meanwhile (an ioeventfd) waits.
	 */
	void (*pause)(void *state);
	/** Optional (ABI 1.3). Undoes pause(): the threads take work again. Same thread and lock.
	 */
	void (*resume)(void *state);
#if SMOL_TARGET_ABI_MINOR >= 6
	/**
	 * Optional (ABI 1.6). Reports the device's counters (requests, bytes, interrupts, ...)
	 * for `smolvm ctl SOCK stats`: put(ctx, name, value) once per counter. Called on the
	 * event-loop thread under the device's lock; counters a device thread updates should be
	 * read atomically. The core counts MMIO/PIO accesses itself.
	 */
	void (*stats)(void *state, smol_stat_fn *put, void *ctx);
	/** Reserved for later minor versions: leave zero. */
	void (*reserved[5])(void);
#else
	/** Reserved for later minor versions: leave zero. */
	void (*reserved[6])(void);
#endif
#else
	/** Reserved for later minor versions: leave zero. */
	void (*reserved[8])(void);
#endif
};

/* ------------------------------------------------------------------------------------ */
/* Backend plugins                                                                       */
/* ------------------------------------------------------------------------------------ */

struct smol_vm; /**< a backend's VM, opaque to the core */
struct smol_vcpu; /**< a backend's vCPU, opaque to the core */

/** Why smol_backend_ops::vcpu_run returned. */
enum smol_exit_reason {
	SMOL_EXIT_PIO = 1, /**< port I/O: exit->pio */
	SMOL_EXIT_MMIO = 2, /**< MMIO outside RAM: exit->mmio */
	SMOL_EXIT_HLT = 3, /**< the vCPU halted (only without an in-kernel irqchip) */
	SMOL_EXIT_SHUTDOWN = 4, /**< triple fault or shutdown */
	SMOL_EXIT_SYSTEM_EVENT = 5, /**< exit->system_event: reset, shutdown, crash */
	SMOL_EXIT_INTERNAL_ERROR = 6, /**< the hypervisor could not go on: exit->code */
	SMOL_EXIT_INTR = 7, /**< interrupted by vcpu_kick or a signal */
	SMOL_EXIT_UNKNOWN = 8, /**< anything else: exit->code is the raw reason */
};

/** System events (exit->system_event.type). */
enum smol_system_event {
	SMOL_EVENT_SHUTDOWN = 1, /**< the guest powered off */
	SMOL_EVENT_RESET = 2, /**< the guest asked for a reset */
	SMOL_EVENT_CRASH = 3, /**< the guest reported a crash */
};

/**
 * A normalised vCPU exit. For PIO and MMIO, @c data points at the backend's buffer: for a
 * write it holds the bytes written; for a read the core fills it before the next vcpu_run.
 */
struct smol_exit {
	uint32_t reason; /**< enum smol_exit_reason */
	uint32_t code; /**< raw hypervisor reason or suberror, for messages */
	union {
		/** Port I/O. @c count > 1 for string instructions: @c data holds count items. */
		struct {
			uint16_t port;
			uint8_t size; /**< 1, 2 or 4 */
			uint8_t is_write; /**< 1 for OUT */
			uint32_t count;
			uint8_t *data;
		} pio;
		/** Memory-mapped I/O. */
		struct {
			uint64_t gpa;
			uint8_t size; /**< 1, 2, 4 or 8 */
			uint8_t is_write;
			uint8_t *data;
		} mmio;
		/** System event. */
		struct {
			uint32_t type; /**< enum smol_system_event */
		} system_event;
	} u;
};

/**
 * An aarch64 boot CPU's entry state (ABI 1.5, smol_backend_ops::vcpu_set_boot with
 * SMOL_ARCH_AARCH64), as Linux's arm64 booting.rst asks: the backend starts the vCPU at @c pc
 * in EL1h with DAIF masked, the MMU and data cache off, and x0-x3 set; every other vCPU
 * stays off until the guest starts it through PSCI CPU_ON.
 */
struct smol_arm64_boot {
	uint64_t pc; /**< the kernel image's entry (its first byte) */
	uint64_t x[4]; /**< x0 the device tree's guest-physical address; x1-x3 0 */
};

/**
 * An aarch64 machine's interrupt controller (ABI 1.5, smol_backend_ops::vm_ready with
 * SMOL_ARCH_AARCH64): a GICv3 whose distributor and redistributors the core placed.
 */
struct smol_arm64_platform {
	uint32_t struct_size; /**< sizeof(struct smol_arm64_platform) in the core */
	uint32_t n_irqs; /**< interrupt lines devices may use: SPIs 0 to n_irqs - 1 */
	uint64_t gicd_base; /**< the distributor: 64 KiB */
	uint64_t gicr_base; /**< the redistributors: 128 KiB per vCPU, one region */
	uint64_t gicr_size; /**< bytes of the redistributor region */
};

/** Initial x86 register state a loader asks for (smol_backend_ops::vcpu_set_x86_boot). */
struct smol_x86_boot {
	uint64_t rip, rsp, rsi, rbx, rflags;
	uint64_t cr0, cr3, cr4, efer;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint16_t cs_selector; /**< selector of the code segment in the GDT */
	uint16_t ds_selector; /**< selector used for ds, es, fs, gs, ss */
	uint8_t long_mode; /**< 1: cs is a 64-bit code segment; 0: 32-bit flat protected mode */
	uint8_t pad[1];
};

/** Architecture tags of arch-specific data crossing the ABI (ABI 1.3). */
enum smol_arch {
	SMOL_ARCH_X86_64 = 1,
	SMOL_ARCH_AARCH64 = 2,
};

/**
 * What an x86 guest was shown of its CPU (smol_backend_ops::vm_cpu_info, ABI 1.3): stored in
 * a snapshot's header, and compared with the new host's before a restore, which is refused
 * when the vendor differs or the saved guest saw a feature this host cannot offer.
 */
struct smol_x86_cpu_info {
	uint32_t struct_size; /**< sizeof(struct smol_x86_cpu_info) */
	char vendor[12]; /**< CPUID 0: ebx, edx, ecx ("AuthenticAMD"), not NUL-terminated */
	uint32_t signature; /**< CPUID 1 eax: family, model, stepping (informational) */
	uint32_t n_words; /**< how many of @c words are valid (SMOL_X86_CPU_WORDS) */
	/**
	 * Feature words: CPUID 1 ecx, 1 edx, 7.0 ebx, 7.0 ecx, 7.0 edx, 0x80000001 ecx,
	 * 0x80000001 edx, 0xd.1 eax, 0xd.0 eax (XCR0 bits, low), 0xd.0 edx (XCR0 bits, high),
	 * 0x80000007 edx, 0x80000008 ebx; bits the kernel adds for its own use (APIC ID,
	 * hypervisor bit, OSXSAVE) left out.
	 */
	uint32_t words[16];
};
#define SMOL_X86_CPU_WORDS 12

/** The core's services for a backend plugin. */
struct smol_backend_host {
	uint32_t abi_major; /**< the core's SMOL_ABI_MAJOR */
	uint32_t abi_minor; /**< the core's SMOL_ABI_MINOR */
	uint32_t struct_size; /**< sizeof(struct smol_backend_host) in the core */
	/** Logs a message prefixed with the backend's name. */
	void (*log)(enum smol_log_level level, const char *fmt, ...) SMOL_PRINTF(2, 3);
	/** Reserved for later minor versions. */
	void (*reserved[7])(void);
};

/** What the core asks of a new VM. */
struct smol_vm_config {
	uint32_t struct_size; /**< sizeof(struct smol_vm_config) in the core */
	uint32_t n_vcpus;
	uint64_t ram_size; /**< bytes of guest RAM (informational: slots come via mem_add) */
	uint32_t flags; /**< reserved, 0 */
};

/**
 * Operations of a backend plugin.
 *
 * Threads: vm_create, vm_destroy, mem_add, vcpu_create, vcpu_destroy, irq_line's first calls,
 * ioeventfd, irqfd and every snapshot op (vm_cpu_info, vm_save, vm_load, vcpu_save,
 * vcpu_load, vcpu_was_paused) run on the core's main thread (the event loop's), never while
 * the vCPU concerned is inside vcpu_run. vcpu_set_x86_boot too, before the vCPU first runs.
 * vcpu_run runs on the vCPU's own thread, the same thread for the vCPU's whole life; vcpu_dump
 * on it or on the main thread once it stopped. vcpu_kick and irq_line may be called from any
 * thread at any time. (A hypervisor that binds a vCPU to the thread that created it, as
 * macOS's does, cannot be driven this way in 1.x: vCPUs are created and their state saved
 * from the main thread. An hvf backend needs a later minor version that moves vcpu_create and
 * the vCPU state ops onto the vCPU's thread.)
 */
struct smol_backend_ops {
	uint32_t struct_size; /**< sizeof(struct smol_backend_ops) as the plugin saw it */

	/** Required. Opens the hypervisor and creates a VM with its interrupt controllers. */
	SMOL_MUST_CHECK int (*vm_create)(const struct smol_backend_host *host,
	                                 const struct smol_vm_config *cfg, struct smol_vm **vm);
	/** Required. Destroys the VM (after every vCPU was destroyed). */
	void (*vm_destroy)(struct smol_vm *vm);
	/** Required. Maps host memory [hva, hva+size) at guest-physical @p gpa as RAM. */
	SMOL_MUST_CHECK int (*mem_add)(struct smol_vm *vm, uint32_t slot, uint64_t gpa,
	                               uint64_t size, void *hva);
	/** Required. Creates vCPU @p index (0 is the boot CPU). */
	SMOL_MUST_CHECK int (*vcpu_create)(struct smol_vm *vm, uint32_t index,
	                                   struct smol_vcpu **vcpu);
	/** Required. Destroys a vCPU that is no longer running. */
	void (*vcpu_destroy)(struct smol_vcpu *vcpu);
	/**
	 * Required. Runs the vCPU on the calling thread until the next exit the core must see.
	 * @return 0 with @p exit filled in, or a negative errno
	 */
	SMOL_MUST_CHECK int (*vcpu_run)(struct smol_vcpu *vcpu, struct smol_exit *exit);
	/**
	 * Required. Makes the vCPU's current or next vcpu_run return SMOL_EXIT_INTR soon; callable
	 * from any thread. Sticky until that return, and precise: a vcpu_run that starts after a
	 * kick first completes the port or MMIO exit the core has just served (an IN's value
	 * reaches the guest's register, the instruction retires) and returns without running any
	 * other guest instruction (KVM: immediate_exit). Pausing and snapshots rely on it.
	 */
	void (*vcpu_kick)(struct smol_vcpu *vcpu);
	/** Required on x86. Sets a boot CPU's registers for a loader's entry state. */
	SMOL_MUST_CHECK int (*vcpu_set_x86_boot)(struct smol_vcpu *vcpu,
	                                         const struct smol_x86_boot *boot);
	/** Writes a human-readable register dump (for crash reports) into @p buf; returns its
	 * length (as snprintf) or a negative errno. */
	int (*vcpu_dump)(struct smol_vcpu *vcpu, char *buf, size_t len);
	/** Required. Sets the level of interrupt line @p gsi of the in-kernel irqchip. */
	int (*irq_line)(struct smol_vm *vm, uint32_t gsi, int level);

	/* ---- ABI 1.2: optional (NULL: the core falls back) ----------------------------- */

	/**
	 * Signals eventfd @p fd on a guest write of @p len bytes at @p addr (MMIO, or a port
	 * when @p is_pio) instead of exiting; with SMOL_IOEVENT_DATAMATCH only for @p datamatch.
	 */
	int (*ioeventfd)(struct smol_vm *vm, uint64_t addr, uint32_t len, int is_pio,
	                 uint32_t flags, uint64_t datamatch, int fd);
	/** Pulses interrupt line @p gsi on each write to eventfd @p fd. */
	int (*irqfd)(struct smol_vm *vm, uint32_t gsi, int fd);

#if SMOL_TARGET_ABI_MINOR >= 3
	/* ---- ABI 1.3: snapshots, optional (all five state ops, or the machine cannot be
	 * snapshotted). State blobs are the backend's own format (with its own version inside),
	 * tagged with enum smol_arch; the core stores them and hands them back unread. A blob
	 * fits the vCPU or VM it came from as configured (same number of vCPUs, same memory). */

	/**
	 * Fills @p info (for SMOL_ARCH_X86_64 a struct smol_x86_cpu_info, @p len its size) with
	 * what this VM's guests are shown of the CPU. 0, -ENOTSUP for another arch, -EINVAL for
	 * a short buffer.
	 */
	int (*vm_cpu_info)(struct smol_vm *vm, uint32_t arch, void *info, size_t len);
	/**
	 * Saves the VM-wide state (interrupt controllers, timers, clocks) into @p buf. 0 and the
	 * size in *@p len; -ENOSPC with the size needed in *@p len when @p cap is too small.
	 * Every vCPU is stopped.
	 */
	int (*vm_save)(struct smol_vm *vm, uint32_t arch, void *buf, size_t cap, size_t *len);
	/**
	 * Loads what vm_save wrote, into a new VM whose RAM is mapped and whose vCPUs exist but
	 * are not loaded yet: the core calls it before vcpu_load. The guest's wall clock becomes
	 * the host's time now (the time the state sat on disk is not lost). 0, -EINVAL (after
	 * logging why) for a blob it cannot use.
	 */
	int (*vm_load)(struct smol_vm *vm, uint32_t arch, const void *buf, size_t len);
	/** Saves a stopped vCPU's whole state; as vm_save. */
	int (*vcpu_save)(struct smol_vcpu *vcpu, uint32_t arch, void *buf, size_t cap, size_t *len);
	/**
	 * Loads what vcpu_save wrote into a new vCPU that never ran (instead of
	 * vcpu_set_x86_boot). 0, -EINVAL (after logging why) for a blob it cannot use, -ENOTSUP
	 * for a CPU feature this host lacks.
	 */
	int (*vcpu_load)(struct smol_vcpu *vcpu, uint32_t arch, const void *buf, size_t len);
	/**
	 * Tells the guest its vCPU was stopped (a pause, a restore), before it runs again, so its
	 * watchdogs do not take the gap for a lockup (x86 KVM: KVM_KVMCLOCK_CTRL). Optional.
	 */
	int (*vcpu_was_paused)(struct smol_vcpu *vcpu);
#if SMOL_TARGET_ABI_MINOR >= 5
	/* ---- ABI 1.5: arm64, optional on x86 ------------------------------------------ */

	/**
	 * Sets a boot CPU's entry state, @p boot of @p len bytes tagged @p arch (for
	 * SMOL_ARCH_AARCH64 a struct smol_arm64_boot), before the vCPU first runs. Required on
	 * arm64; x86 machines use vcpu_set_x86_boot. 0, -ENOTSUP for another arch, -EINVAL for a
	 * short or bad state.
	 */
	SMOL_MUST_CHECK int (*vcpu_set_boot)(struct smol_vcpu *vcpu, uint32_t arch,
	                                     const void *boot, size_t len);
	/**
	 * Called once every vCPU exists, before any vCPU's boot or saved state is set and before
	 * the first vcpu_run: finishes what needs every vCPU (arm64: the GICv3 at the addresses
	 * of @p platform, a struct smol_arm64_platform of @p len bytes). Required on arm64; x86
	 * machines call it with SMOL_ARCH_X86_64, NULL and 0 when the backend has it. 0 or a
	 * negative errno (after logging why).
	 */
	SMOL_MUST_CHECK int (*vm_ready)(struct smol_vm *vm, uint32_t arch, const void *platform,
	                                size_t len);
	/** Reserved for later minor versions: zero. */
	void (*reserved[2])(void);
#else
	/** Reserved for later minor versions (arm64): zero. */
	void (*reserved[4])(void);
#endif
#else
	/** Reserved for later minor versions (save/restore, arm64): zero. */
	void (*reserved[10])(void);
#endif
};

#ifdef __cplusplus
} /* extern "C" */
#endif

/*
 * The layout of every public struct, pinned for the whole 1.x line (LP64: 64-bit Linux and
 * macOS). A change that moves a field breaks every plugin already built: it fails here first.
 */
#ifdef __cplusplus
#define SMOL_STATIC_ASSERT static_assert
#else
#define SMOL_STATIC_ASSERT _Static_assert
#endif
#define SMOL_PIN(type, field, off, size)                                                           \
	SMOL_STATIC_ASSERT(offsetof(type, field) == (off) && sizeof(((type *)0)->field) == (size), \
	                   "ABI layout: " #type "." #field)
#define SMOL_PIN_SIZE(type, size) SMOL_STATIC_ASSERT(sizeof(type) == (size), "ABI size: " #type)
#if UINTPTR_MAX == UINT64_MAX
SMOL_PIN(struct smol_plugin_desc, abi_major, 0, 4);
SMOL_PIN(struct smol_plugin_desc, abi_minor, 4, 4);
SMOL_PIN(struct smol_plugin_desc, struct_size, 8, 4);
SMOL_PIN(struct smol_plugin_desc, kind, 12, 4);
SMOL_PIN(struct smol_plugin_desc, name, 16, 8);
SMOL_PIN(struct smol_plugin_desc, description, 24, 8);
SMOL_PIN(struct smol_plugin_desc, ops, 32, 8);
SMOL_PIN_SIZE(struct smol_plugin_desc, 40);
#if SMOL_TARGET_ABI_MINOR >= 6
SMOL_PIN(struct smol_method, name, 0, 8);
SMOL_PIN(struct smol_method, fn, 8, 8);
SMOL_PIN(struct smol_method, signature, 16, 8);
SMOL_PIN(struct smol_method, help, 24, 8);
SMOL_PIN_SIZE(struct smol_method, 32);
#endif
SMOL_PIN(struct smol_io_ops, read, 0, 8);
SMOL_PIN(struct smol_io_ops, write, 8, 8);
SMOL_PIN_SIZE(struct smol_io_ops, 16);
SMOL_PIN(struct smol_host, abi_major, 0, 4);
SMOL_PIN(struct smol_host, abi_minor, 4, 4);
SMOL_PIN(struct smol_host, struct_size, 8, 4);
SMOL_PIN(struct smol_host, log, 16, 8);
SMOL_PIN(struct smol_host, cfg_str, 24, 8);
SMOL_PIN(struct smol_host, cfg_u64, 32, 8);
SMOL_PIN(struct smol_host, cfg_bool, 40, 8);
SMOL_PIN(struct smol_host, cfg_size, 48, 8);
SMOL_PIN(struct smol_host, cfg_error, 56, 8);
SMOL_PIN(struct smol_host, cfg_path, 64, 8);
SMOL_PIN(struct smol_host, map_mmio, 72, 8);
SMOL_PIN(struct smol_host, map_pio, 80, 8);
SMOL_PIN(struct smol_host, irq_claim, 88, 8);
SMOL_PIN(struct smol_host, irq_set, 96, 8);
SMOL_PIN(struct smol_host, irq_pulse, 104, 8);
SMOL_PIN(struct smol_host, gpa_ptr, 112, 8);
SMOL_PIN(struct smol_host, fd_watch, 120, 8);
SMOL_PIN(struct smol_host, fd_unwatch, 128, 8);
SMOL_PIN(struct smol_host, request_exit, 136, 8);
SMOL_PIN(struct smol_host, request_reset, 144, 8);
SMOL_PIN(struct smol_host, desc_device, 152, 8);
SMOL_PIN(struct smol_host, desc_io, 160, 8);
SMOL_PIN(struct smol_host, desc_mmio, 168, 8);
SMOL_PIN(struct smol_host, desc_irq, 176, 8);
SMOL_PIN(struct smol_host, desc_cmdline, 184, 8);
SMOL_PIN(struct smol_host, ioeventfd, 192, 8);
SMOL_PIN(struct smol_host, irqfd, 200, 8);
SMOL_PIN(struct smol_host, reserved, 208, 32);
SMOL_PIN_SIZE(struct smol_host, 336);
SMOL_PIN(struct smol_device_ops, struct_size, 0, 4);
SMOL_PIN(struct smol_device_ops, create, 8, 8);
SMOL_PIN(struct smol_device_ops, destroy, 16, 8);
SMOL_PIN(struct smol_device_ops, reset, 24, 8);
SMOL_PIN(struct smol_device_ops, save, 32, 8);
SMOL_PIN(struct smol_device_ops, load, 40, 8);
SMOL_PIN(struct smol_device_ops, describe, 48, 8);
SMOL_PIN(struct smol_device_ops, methods, 56, 8);
SMOL_PIN(struct smol_device_ops, n_methods, 64, 4);
SMOL_PIN_SIZE(struct smol_device_ops, 136);
SMOL_PIN(struct smol_exit, reason, 0, 4);
SMOL_PIN(struct smol_exit, code, 4, 4);
SMOL_PIN(struct smol_exit, u.pio.port, 8, 2);
SMOL_PIN(struct smol_exit, u.pio.size, 10, 1);
SMOL_PIN(struct smol_exit, u.pio.is_write, 11, 1);
SMOL_PIN(struct smol_exit, u.pio.count, 12, 4);
SMOL_PIN(struct smol_exit, u.pio.data, 16, 8);
SMOL_PIN(struct smol_exit, u.mmio.gpa, 8, 8);
SMOL_PIN(struct smol_exit, u.mmio.size, 16, 1);
SMOL_PIN(struct smol_exit, u.mmio.is_write, 17, 1);
SMOL_PIN(struct smol_exit, u.mmio.data, 24, 8);
SMOL_PIN(struct smol_exit, u.system_event.type, 8, 4);
SMOL_PIN_SIZE(struct smol_exit, 32);
SMOL_PIN(struct smol_x86_boot, rip, 0, 8);
SMOL_PIN(struct smol_x86_boot, rsp, 8, 8);
SMOL_PIN(struct smol_x86_boot, rsi, 16, 8);
SMOL_PIN(struct smol_x86_boot, rbx, 24, 8);
SMOL_PIN(struct smol_x86_boot, rflags, 32, 8);
SMOL_PIN(struct smol_x86_boot, cr0, 40, 8);
SMOL_PIN(struct smol_x86_boot, cr3, 48, 8);
SMOL_PIN(struct smol_x86_boot, cr4, 56, 8);
SMOL_PIN(struct smol_x86_boot, efer, 64, 8);
SMOL_PIN(struct smol_x86_boot, gdt_base, 72, 8);
SMOL_PIN(struct smol_x86_boot, gdt_limit, 80, 2);
SMOL_PIN(struct smol_x86_boot, cs_selector, 82, 2);
SMOL_PIN(struct smol_x86_boot, ds_selector, 84, 2);
SMOL_PIN(struct smol_x86_boot, long_mode, 86, 1);
SMOL_PIN(struct smol_x86_boot, pad, 87, 1);
SMOL_PIN_SIZE(struct smol_x86_boot, 88);
SMOL_PIN(struct smol_backend_host, abi_major, 0, 4);
SMOL_PIN(struct smol_backend_host, abi_minor, 4, 4);
SMOL_PIN(struct smol_backend_host, struct_size, 8, 4);
SMOL_PIN(struct smol_backend_host, log, 16, 8);
SMOL_PIN(struct smol_backend_host, reserved, 24, 56);
SMOL_PIN_SIZE(struct smol_backend_host, 80);
SMOL_PIN(struct smol_vm_config, struct_size, 0, 4);
SMOL_PIN(struct smol_vm_config, n_vcpus, 4, 4);
SMOL_PIN(struct smol_vm_config, ram_size, 8, 8);
SMOL_PIN(struct smol_vm_config, flags, 16, 4);
SMOL_PIN_SIZE(struct smol_vm_config, 24);
SMOL_PIN(struct smol_backend_ops, struct_size, 0, 4);
SMOL_PIN(struct smol_backend_ops, vm_create, 8, 8);
SMOL_PIN(struct smol_backend_ops, vm_destroy, 16, 8);
SMOL_PIN(struct smol_backend_ops, mem_add, 24, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_create, 32, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_destroy, 40, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_run, 48, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_kick, 56, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_set_x86_boot, 64, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_dump, 72, 8);
SMOL_PIN(struct smol_backend_ops, irq_line, 80, 8);
SMOL_PIN(struct smol_backend_ops, ioeventfd, 88, 8);
SMOL_PIN(struct smol_backend_ops, irqfd, 96, 8);
SMOL_PIN_SIZE(struct smol_backend_ops, 184);
#if SMOL_TARGET_ABI_MINOR >= 3
SMOL_PIN(struct smol_host, snap_set_version, 240, 8);
SMOL_PIN(struct smol_host, snap_write, 248, 8);
SMOL_PIN(struct smol_host, snap_version, 256, 8);
SMOL_PIN(struct smol_host, snap_read, 264, 8);
SMOL_PIN(struct smol_host, snap_remaining, 272, 8);
SMOL_PIN(struct smol_host, request_snapshot, 280, 8);
#if SMOL_TARGET_ABI_MINOR >= 4
SMOL_PIN(struct smol_host, dev_name, 288, 8);
SMOL_PIN(struct smol_host, machine_name, 296, 8);
SMOL_PIN(struct smol_host, cfg_str_at, 304, 8);
#endif
#if SMOL_TARGET_ABI_MINOR >= 5
SMOL_PIN(struct smol_host, desc_compatible, 312, 8);
SMOL_PIN(struct smol_host, desc_clock, 320, 8);
SMOL_PIN(struct smol_host, desc_console, 328, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_set_boot, 152, 8);
SMOL_PIN(struct smol_backend_ops, vm_ready, 160, 8);
SMOL_PIN(struct smol_backend_ops, reserved, 168, 16);
#else
SMOL_PIN(struct smol_host, reserved_1_5, 312, 24);
SMOL_PIN(struct smol_backend_ops, reserved, 152, 32);
#endif
SMOL_PIN(struct smol_arm64_boot, pc, 0, 8);
SMOL_PIN(struct smol_arm64_boot, x, 8, 32);
SMOL_PIN_SIZE(struct smol_arm64_boot, 40);
SMOL_PIN(struct smol_arm64_platform, struct_size, 0, 4);
SMOL_PIN(struct smol_arm64_platform, n_irqs, 4, 4);
SMOL_PIN(struct smol_arm64_platform, gicd_base, 8, 8);
SMOL_PIN(struct smol_arm64_platform, gicr_base, 16, 8);
SMOL_PIN(struct smol_arm64_platform, gicr_size, 24, 8);
SMOL_PIN_SIZE(struct smol_arm64_platform, 32);
SMOL_PIN(struct smol_device_ops, pause, 72, 8);
SMOL_PIN(struct smol_device_ops, resume, 80, 8);
#if SMOL_TARGET_ABI_MINOR >= 6
SMOL_PIN(struct smol_device_ops, stats, 88, 8);
SMOL_PIN(struct smol_device_ops, reserved, 96, 40);
#else
SMOL_PIN(struct smol_device_ops, reserved, 88, 48);
#endif
SMOL_PIN(struct smol_x86_cpu_info, struct_size, 0, 4);
SMOL_PIN(struct smol_x86_cpu_info, vendor, 4, 12);
SMOL_PIN(struct smol_x86_cpu_info, signature, 16, 4);
SMOL_PIN(struct smol_x86_cpu_info, n_words, 20, 4);
SMOL_PIN(struct smol_x86_cpu_info, words, 24, 64);
SMOL_PIN_SIZE(struct smol_x86_cpu_info, 88);
SMOL_PIN(struct smol_backend_ops, vm_cpu_info, 104, 8);
SMOL_PIN(struct smol_backend_ops, vm_save, 112, 8);
SMOL_PIN(struct smol_backend_ops, vm_load, 120, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_save, 128, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_load, 136, 8);
SMOL_PIN(struct smol_backend_ops, vcpu_was_paused, 144, 8);
#else
SMOL_PIN(struct smol_host, reserved_1_3, 240, 48);
SMOL_PIN(struct smol_device_ops, reserved, 72, 64);
SMOL_PIN(struct smol_backend_ops, reserved, 104, 80);
#endif
#endif /* LP64 */

#endif /* SMOLVM_SDK_H */
