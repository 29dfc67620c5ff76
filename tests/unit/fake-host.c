/*
 * A fake struct smol_host for device unit tests (see fake-host.h).
 */
#define _GNU_SOURCE
#include "fake-host.h"

#ifndef FAKE_HOST_NO_CRITERION
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#define FAKE_HOST_LEAK_CHECK 1
#endif
#else
/* Built into the libFuzzer targets (fuzz/) and the plain threaded driver (test-threads.c): no
 * Criterion; a broken assumption says which and aborts (a crash, to a fuzzer). */
#include <stdio.h>
#include <stdlib.h>
#define cr_assert(cond, ...)                                                                       \
	((cond) ? (void)0                                                                          \
	        : (fprintf(stderr, "fake host: %s:%d: check failed: %s\n", __FILE__, __LINE__,     \
	                   #cond),                                                                 \
	           abort()))
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEVS 16
#define MAX_KEYS 32
#define MAX_MAPS 32
#define MAX_WATCHES 16
#define MAX_ERRORS 32
#define MAX_PLUGINS 8
#define MAX_IOEVENTS 16

struct smol_dev {
	char name[32];
	struct {
		char key[64], value[256];
		bool read;
	} cfg[MAX_KEYS];
	unsigned n_cfg;
	const struct smol_device_ops *ops;
	void *state;
	bool created;
	unsigned leaked_watches;
	pthread_mutex_t lock; /* the core's per-device lock: handlers, reset and destroy */
};

struct map {
	struct smol_dev *dev;
	bool pio;
	uint64_t base, len;
	const struct smol_io_ops *ops;
	void *opaque;
};

struct watch {
	struct smol_dev *dev;
	int fd;
	uint32_t events;
	smol_fd_fn cb;
	void *opaque;
};

struct ioevent {
	struct smol_dev *dev;
	uint64_t addr, datamatch;
	uint32_t len, flags;
	int fd;
};

static struct {
	struct smol_dev devs[MAX_DEVS];
	unsigned n_devs;
	struct map maps[MAX_MAPS];
	unsigned n_maps;
	struct watch watches[MAX_WATCHES];
	unsigned n_watches;
	bool ioeventfd_accept;
	struct ioevent ioevents[MAX_IOEVENTS];
	unsigned n_ioevents;
	struct smol_dev *irq_owner[FAKE_IRQ_LINES];
	int irq_level[FAKE_IRQ_LINES];
	unsigned irq_rises[FAKE_IRQ_LINES];
	unsigned irq_misuse;
	unsigned snapshot_requests;
	struct {
		char key[64], msg[256];
	} errors[MAX_ERRORS];
	unsigned n_errors;
	void *plugins[MAX_PLUGINS];
	unsigned n_plugins;
	uint8_t *ram;
	char cfg_dir[4096];
	unsigned exit_requests;
	int exit_status;
	char *log;
	size_t log_len, log_cap;
	char *log_copy; /* what fake_log() last returned */
	FILE *log_file;
	/* fake_gpa_hold() */
	bool hold;
	uint64_t hold_gpa, hold_len;
	unsigned held;
	uint64_t gpa_calls;
} fh;

/*
 * Devices may call the host table from threads of their own (an I/O thread: log, gpa_ptr,
 * irq_set, irq_pulse, request_exit), as they may in the core: what those calls record, and
 * what the test reads of it, is under fake_lock. Recursive: irq_owned() logs. The rest of
 * the fake (config, maps, watches) is for create(), destroy() and the test's own thread.
 */
static pthread_mutex_t fake_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;

/* ---- log: kept in memory and in a per-test file the runner prints on failure ---------- */

static void log_append(const char *fmt, ...) SMOL_PRINTF(1, 2);

static void log_append(const char *fmt, ...)
{
	va_list ap;
	char line[1024];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	pthread_mutex_lock(&fake_lock);
	/* Grown by doubling: a test that logs 20,000 lines must not copy the log each time
	 * (under ASan, every realloc moves the block). */
	if (fh.log_len + (size_t)n + 1 > fh.log_cap) {
		size_t cap = fh.log_cap ? fh.log_cap : 4096;
		while (cap < fh.log_len + (size_t)n + 1)
			cap *= 2;
		char *grown = realloc(fh.log, cap);
		if (grown) {
			fh.log = grown;
			fh.log_cap = cap;
		}
	}
	if (fh.log_len + (size_t)n + 1 <= fh.log_cap) {
		memcpy(fh.log + fh.log_len, line, (size_t)n + 1);
		fh.log_len += (size_t)n;
	}
	if (fh.log_file) {
		fputs(line, fh.log_file);
		fflush(fh.log_file);
	}
	pthread_mutex_unlock(&fake_lock);
}

#ifndef FAKE_HOST_NO_CRITERION
static void log_file_path(char *buf, size_t len, const struct criterion_test *t)
{
	const char *dir = getenv("FAKE_HOST_LOGDIR");

	snprintf(buf, len, "%s/%s.%s.log", dir ? dir : "", t->category, t->name);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	char dir[] = "/tmp/fake-host-XXXXXX";

	(void)set;
	if (mkdtemp(dir))
		setenv("FAKE_HOST_LOGDIR", dir, 1);
}

static void print_log(struct criterion_test_stats *stats)
{
	char path[4096], buf[4096];
	size_t n;
	FILE *f;

	log_file_path(path, sizeof(path), stats->test);
	f = fopen(path, "r");
	if (!f)
		return;
	if (stats->test_status == CR_STATUS_FAILED || stats->crashed) {
		fprintf(stderr, "---- fake host log of %s::%s\n", stats->test->category,
		        stats->test->name);
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, stderr);
		fprintf(stderr, "---- end of log\n");
	}
	fclose(f);
	unlink(path);
}

ReportHook(POST_TEST)(struct criterion_test_stats *stats)
{
	print_log(stats);
}

ReportHook(TEST_CRASH)(struct criterion_test_stats *stats)
{
	print_log(stats);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	const char *dir = getenv("FAKE_HOST_LOGDIR");

	(void)stats;
	if (dir)
		rmdir(dir);
}

#endif

#ifndef FAKE_HOST_NO_CRITERION
static uint8_t *ram_alloc(void)
{
	return calloc(1, FAKE_RAM_SIZE);
}

static void ram_free(uint8_t *ram)
{
	free(ram);
}
#else
/* A machine per input in one mapping: the fuzzers (FAKE_HOST_FUZZ, 2 MiB) clear it; the plain
 * C tests give their 16 MiB back to the kernel (zero pages on the next touch). */
static uint8_t *fuzz_ram;

static uint8_t *ram_alloc(void)
{
	if (!fuzz_ram) {
		void *p = mmap(NULL, FAKE_RAM_SIZE, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		fuzz_ram = p == MAP_FAILED ? NULL : p;
	}
	return fuzz_ram;
}

static void ram_free(uint8_t *ram)
{
#ifdef FAKE_HOST_FUZZ
	if (ram)
		memset(ram, 0, FAKE_RAM_SIZE);
#else
	if (ram)
		(void)madvise(ram, FAKE_RAM_SIZE, MADV_DONTNEED);
#endif
}
#endif

/* ---- machine ------------------------------------------------------------------------- */

void fake_host_init(void)
{
	char path[4096];

	memset(&fh, 0, sizeof(fh));
	strcpy(fh.cfg_dir, ".");
	fh.ram = ram_alloc();
	cr_assert(fh.ram, "cannot allocate the fake guest RAM");
#ifndef FAKE_HOST_NO_CRITERION
	if (getenv("FAKE_HOST_LOGDIR") && criterion_current_test) {
		log_file_path(path, sizeof(path), criterion_current_test);
		fh.log_file = fopen(path, "w");
	}
#else
	(void)path;
#endif
}

void fake_host_fini(void)
{
	for (unsigned i = 0; i < fh.n_devs; i++)
		fake_dev_destroy(&fh.devs[i]);
	for (unsigned i = 0; i < fh.n_plugins; i++)
		dlclose(fh.plugins[i]);
	ram_free(fh.ram);
	free(fh.log);
	free(fh.log_copy);
	if (fh.log_file)
		fclose(fh.log_file);
	memset(&fh, 0, sizeof(fh));
#ifdef FAKE_HOST_LEAK_CHECK
	/* Criterion's workers end with _exit(): LeakSanitizer's check at exit never runs there.
	 * Here, after the devices and plugins are gone, each test's leaks (the device's and the
	 * test's own) are found; the report is on stderr. */
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks (above)");
#endif
}

const struct smol_plugin_desc *fake_plugin_open(const char *path)
{
	const struct smol_plugin_desc *p;
	void *h;

	if (fh.n_plugins == MAX_PLUGINS)
		return NULL;
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		log_append("fake: dlopen %s: %s\n", path, dlerror());
		return NULL;
	}
	fh.plugins[fh.n_plugins++] = h;
	p = dlsym(h, SMOL_PLUGIN_SYMBOL);
	if (!p || p->abi_major != SMOL_ABI_MAJOR || p->abi_minor > SMOL_ABI_MINOR ||
	    p->struct_size < sizeof(*p) || !p->ops || !p->name) {
		log_append("fake: %s: no usable %s descriptor\n", path, SMOL_PLUGIN_SYMBOL);
		return NULL;
	}
	return p;
}

/* ---- devices ------------------------------------------------------------------------- */

struct smol_dev *fake_dev_new(const char *name)
{
	struct smol_dev *d;

	cr_assert(fh.n_devs < MAX_DEVS, "too many fake devices");
	d = &fh.devs[fh.n_devs++];
	snprintf(d->name, sizeof(d->name), "%s", name);
	pthread_mutex_init(&d->lock, NULL);
	return d;
}

int fake_dev_create(struct smol_dev *dev, const struct smol_plugin_desc *p, uint32_t flags)
{
	const struct smol_device_ops *ops = p->ops;
	void *state = NULL;
	int ret;

	cr_assert(p->kind == SMOL_KIND_DEVICE && ops->create && ops->destroy);
	dev->ops = ops;
	ret = ops->create(&fake_host, dev, flags, &state);
	dev->state = state;
	dev->created = true;
	if (ret) {
		log_append("fake: %s: create failed: %s\n", dev->name, strerror(-ret));
		fake_dev_destroy(dev);
	}
	return ret;
}

void fake_dev_destroy(struct smol_dev *dev)
{
	unsigned i, j;

	if (!dev->created)
		return;
	pthread_mutex_lock(&dev->lock); /* as the core: under the device's lock */
	if (dev->state)
		dev->ops->destroy(dev->state);
	dev->state = NULL;
	dev->created = false;
	pthread_mutex_unlock(&dev->lock);
	for (i = j = 0; i < fh.n_maps; i++)
		if (fh.maps[i].dev != dev)
			fh.maps[j++] = fh.maps[i];
	fh.n_maps = j;
	for (i = j = 0; i < fh.n_ioevents; i++)
		if (fh.ioevents[i].dev != dev)
			fh.ioevents[j++] = fh.ioevents[i];
	fh.n_ioevents = j;
	for (i = j = 0; i < fh.n_watches; i++)
		if (fh.watches[i].dev != dev)
			fh.watches[j++] = fh.watches[i];
		else
			dev->leaked_watches++;
	fh.n_watches = j;
	for (i = 0; i < FAKE_IRQ_LINES; i++)
		if (fh.irq_owner[i] == dev)
			fh.irq_owner[i] = NULL;
}

void fake_dev_reset(struct smol_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	if (dev->state && dev->ops->reset)
		dev->ops->reset(dev->state);
	pthread_mutex_unlock(&dev->lock);
}

void fake_dev_stats(struct smol_dev *dev, void (*put)(void *ctx, const char *name, uint64_t v),
                    void *ctx)
{
	pthread_mutex_lock(&dev->lock);
	if (dev->state && dev->ops->stats)
		dev->ops->stats(dev->state, put, ctx);
	pthread_mutex_unlock(&dev->lock);
}

void *fake_dev_state(struct smol_dev *dev)
{
	return dev->state;
}

unsigned fake_dev_leaked_watches(struct smol_dev *dev)
{
	return dev->leaked_watches;
}

/* ---- configuration ------------------------------------------------------------------- */

void fake_cfg_set(struct smol_dev *dev, const char *key, const char *value)
{
	unsigned i;

	for (i = 0; i < dev->n_cfg && strcmp(dev->cfg[i].key, key); i++)
		;
	cr_assert(i < MAX_KEYS, "too many config keys");
	if (i == dev->n_cfg)
		dev->n_cfg++;
	snprintf(dev->cfg[i].key, sizeof(dev->cfg[i].key), "%s", key);
	snprintf(dev->cfg[i].value, sizeof(dev->cfg[i].value), "%s", value);
	dev->cfg[i].read = false;
}

void fake_cfg_dir(const char *dir)
{
	snprintf(fh.cfg_dir, sizeof(fh.cfg_dir), "%s", dir);
}

bool fake_cfg_was_read(struct smol_dev *dev, const char *key)
{
	for (unsigned i = 0; i < dev->n_cfg; i++)
		if (!strcmp(dev->cfg[i].key, key))
			return dev->cfg[i].read;
	return false;
}

const char *fake_cfg_unread(struct smol_dev *dev)
{
	for (unsigned i = 0; i < dev->n_cfg; i++)
		if (!dev->cfg[i].read)
			return dev->cfg[i].key;
	return NULL;
}

unsigned fake_cfg_errors(void)
{
	return fh.n_errors;
}

const char *fake_cfg_error_key(unsigned i)
{
	return i < fh.n_errors ? fh.errors[i].key : NULL;
}

const char *fake_cfg_error_msg(unsigned i)
{
	return i < fh.n_errors ? fh.errors[i].msg : NULL;
}

bool fake_cfg_error_about(const char *key)
{
	for (unsigned i = 0; i < fh.n_errors; i++)
		if (!strcmp(fh.errors[i].key, key))
			return true;
	return false;
}

static void record_error(struct smol_dev *dev, const char *key, const char *msg)
{
	log_append("[%s] config error: %s: %s\n", dev->name, key ? key : "(section)", msg);
	if (fh.n_errors == MAX_ERRORS)
		return;
	snprintf(fh.errors[fh.n_errors].key, sizeof(fh.errors[0].key), "%s", key ? key : "");
	snprintf(fh.errors[fh.n_errors].msg, sizeof(fh.errors[0].msg), "%s", msg);
	fh.n_errors++;
}

static const char *cfg_lookup(struct smol_dev *dev, const char *key)
{
	for (unsigned i = 0; i < dev->n_cfg; i++) {
		if (!strcmp(dev->cfg[i].key, key)) {
			dev->cfg[i].read = true;
			return dev->cfg[i].value;
		}
	}
	return NULL;
}

static int parse_u64(const char *s, uint64_t *out, const char **end)
{
	int base = 10;
	uint64_t v = 0;
	const char *p = s;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		base = 16, p += 2;
	else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
		base = 8, p += 2;
	else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
		base = 2, p += 2;
	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		if (d >= base)
			break;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -ERANGE;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (p == s || (base != 10 && p == s + 2))
		return -EINVAL;
	*out = v;
	*end = p;
	return 0;
}

static int fake_cfg_str(struct smol_dev *dev, const char *key, const char *def, const char **out)
{
	const char *v = cfg_lookup(dev, key);

	*out = v ? v : def;
	return 0;
}

static int fake_cfg_str_at(struct smol_dev *dev, const char *key, unsigned index, const char **out)
{
	for (unsigned i = 0; i < dev->n_cfg; i++) {
		if (!strcmp(dev->cfg[i].key, key) && index-- == 0) {
			dev->cfg[i].read = true;
			*out = dev->cfg[i].value;
			return 0;
		}
	}
	*out = NULL;
	return -ENOENT;
}

static int fake_cfg_u64(struct smol_dev *dev, const char *key, uint64_t def, uint64_t *out)
{
	const char *v = cfg_lookup(dev, key), *end;

	*out = def;
	if (!v)
		return 0;
	if (parse_u64(v, out, &end) || *end) {
		*out = def;
		record_error(dev, key, "not an unsigned integer");
		return -EINVAL;
	}
	return 0;
}

static int fake_cfg_bool(struct smol_dev *dev, const char *key, int def, int *out)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };
	const char *v = cfg_lookup(dev, key);

	*out = def;
	if (!v)
		return 0;
	for (unsigned i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]))
			return *out = 1, 0;
		if (!strcasecmp(v, no[i]))
			return *out = 0, 0;
	}
	record_error(dev, key, "not a boolean");
	return -EINVAL;
}

static int fake_cfg_size(struct smol_dev *dev, const char *key, uint64_t def, uint64_t *out)
{
	const char *v = cfg_lookup(dev, key), *end;
	unsigned shift = 0;
	uint64_t n;

	*out = def;
	if (!v)
		return 0;
	if (parse_u64(v, &n, &end))
		goto bad;
	if (*end) {
		const char *units = "KMGT", *u = strchr(units, *end);

		if (!u || end[1])
			goto bad;
		shift = 10 * (unsigned)(u - units + 1);
	}
	if (shift && n > (UINT64_MAX >> shift))
		goto bad;
	*out = n << shift;
	return 0;
bad:
	record_error(dev, key, "not a size");
	return -EINVAL;
}

static void fake_cfg_error(struct smol_dev *dev, const char *key, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	record_error(dev, key, msg);
}

static char *fake_cfg_path(struct smol_dev *dev, const char *path)
{
	char *out;

	(void)dev;
	if (path[0] == '/')
		return strdup(path);
	if (asprintf(&out, "%s/%s", fh.cfg_dir, path) < 0)
		return NULL;
	return out;
}

/* ---- logging ------------------------------------------------------------------------- */

static void fake_log_fn(struct smol_dev *dev, enum smol_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_append("[%s] %s: %s\n", dev->name, (unsigned)level < 4 ? names[level] : "?", msg);
}

const char *fake_log(void)
{
	char *copy;

	/* a copy: a device thread may be growing the log meanwhile */
	pthread_mutex_lock(&fake_lock);
	copy = strdup(fh.log ? fh.log : "");
	if (copy) {
		free(fh.log_copy);
		fh.log_copy = copy;
	}
	pthread_mutex_unlock(&fake_lock);
	return fh.log_copy ? fh.log_copy : "";
}

bool fake_log_contains(const char *needle)
{
	bool found;

	pthread_mutex_lock(&fake_lock);
	found = fh.log && strstr(fh.log, needle) != NULL;
	pthread_mutex_unlock(&fake_lock);
	return found;
}

/* ---- MMIO / PIO ---------------------------------------------------------------------- */

static bool overlaps(bool pio, uint64_t base, uint64_t len)
{
	for (unsigned i = 0; i < fh.n_maps; i++) {
		const struct map *m = &fh.maps[i];

		if (m->pio == pio && base < m->base + m->len && m->base < base + len)
			return true;
	}
	return false;
}

static int add_map(struct smol_dev *dev, bool pio, uint64_t base, uint64_t len,
                   const struct smol_io_ops *ops, void *opaque)
{
	if (!len || !ops)
		return -EINVAL;
	if (overlaps(pio, base, len)) {
		log_append("fake: %s: %s range 0x%" PRIx64 "+0x%" PRIx64 " overlaps\n", dev->name,
		           pio ? "PIO" : "MMIO", base, len);
		return -EEXIST;
	}
	if (fh.n_maps == MAX_MAPS)
		return -ENOSPC;
	fh.maps[fh.n_maps++] = (struct map){ dev, pio, base, len, ops, opaque };
	return 0;
}

static int fake_map_mmio(struct smol_dev *dev, uint64_t base, uint64_t len,
                         const struct smol_io_ops *ops, void *opaque, uint64_t *out_base)
{
	int ret;

	if (!len || len > (1ull << 40))
		return -EINVAL;
	if (base == SMOL_ADDR_AUTO) {
		base = FAKE_MMIO_AUTO_BASE;
		while (overlaps(false, base, len))
			base += (len + 0xfff) & ~0xfffull;
	} else if (base + len < base) {
		return -EINVAL;
	}
	ret = add_map(dev, false, base, len, ops, opaque);
	if (!ret && out_base)
		*out_base = base;
	return ret;
}

static int fake_map_pio(struct smol_dev *dev, uint16_t port, uint16_t len,
                        const struct smol_io_ops *ops, void *opaque)
{
	if ((uint32_t)port + len > 0x10000)
		return -EINVAL;
	return add_map(dev, true, port, len, ops, opaque);
}

static const struct map *find_map(bool pio, uint64_t addr)
{
	for (unsigned i = 0; i < fh.n_maps; i++) {
		const struct map *m = &fh.maps[i];

		if (m->pio == pio && addr >= m->base && addr - m->base < m->len)
			return m;
	}
	return NULL;
}

static uint64_t size_mask(unsigned size)
{
	return size >= 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
}

/* Handlers run under the device's lock, as in the core (bus_access). */
static uint64_t bus_read(bool pio, uint64_t addr, unsigned size)
{
	const struct map *m = find_map(pio, addr);
	uint64_t v;

	if (!m || !m->ops->read)
		return size_mask(size);
	pthread_mutex_lock(&m->dev->lock);
	v = m->ops->read(m->opaque, addr - m->base, size);
	pthread_mutex_unlock(&m->dev->lock);
	return v & size_mask(size);
}

/* An accepted ioeventfd takes a matching write instead of the handler, as KVM's does. */
static bool ioevent_write(uint64_t addr, unsigned size, uint64_t value)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < fh.n_ioevents; i++) {
		const struct ioevent *e = &fh.ioevents[i];

		if (e->addr != addr || e->len != size ||
		    ((e->flags & SMOL_IOEVENT_DATAMATCH) && e->datamatch != value))
			continue;
		if (write(e->fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			log_append("fake: ioeventfd %d: write: %s\n", e->fd, strerror(errno));
		return true;
	}
	return false;
}

static void bus_write(bool pio, uint64_t addr, unsigned size, uint64_t value)
{
	const struct map *m = find_map(pio, addr);

	value &= size_mask(size);
	if (!pio && ioevent_write(addr, size, value))
		return;
	if (m && m->ops->write) {
		pthread_mutex_lock(&m->dev->lock);
		m->ops->write(m->opaque, addr - m->base, size, value);
		pthread_mutex_unlock(&m->dev->lock);
	}
}

uint64_t fake_pio_read(uint16_t port, unsigned size)
{
	return bus_read(true, port, size);
}

void fake_pio_write(uint16_t port, unsigned size, uint64_t value)
{
	bus_write(true, port, size, value);
}

uint64_t fake_mmio_read(uint64_t addr, unsigned size)
{
	return bus_read(false, addr, size);
}

void fake_mmio_write(uint64_t addr, unsigned size, uint64_t value)
{
	bus_write(false, addr, size, value);
}

bool fake_pio_mapped(uint16_t port)
{
	return find_map(true, port) != NULL;
}

bool fake_mmio_mapped(uint64_t addr)
{
	return find_map(false, addr) != NULL;
}

unsigned fake_maps(void)
{
	return fh.n_maps;
}

/* ---- IRQ lines ----------------------------------------------------------------------- */

/* ABI 1.2: by default the fake host has no backend to hand eventfds to (-ENOTSUP): devices
 * fall back to the MMIO handler and irq_pulse, which is what most tests observe. After
 * fake_ioeventfd_accept(true) it takes them, and matching MMIO writes signal the fd. */
static int fake_ioeventfd(struct smol_dev *dev, uint64_t addr, uint32_t len, uint32_t flags,
                          uint64_t datamatch, int fd)
{
	if (!fh.ioeventfd_accept)
		return -ENOTSUP;
	const struct map *m = find_map(false, addr);

	if ((len != 1 && len != 2 && len != 4 && len != 8) || fd < 0 ||
	    (flags & ~(uint32_t)SMOL_IOEVENT_DATAMATCH) || !m || m->dev != dev ||
	    len > m->len - (addr - m->base))
		return -EINVAL;
	if (fh.n_ioevents == MAX_IOEVENTS)
		return -ENOSPC;
	fh.ioevents[fh.n_ioevents++] = (struct ioevent){ dev, addr, datamatch, len, flags, fd };
	return 0;
}

void fake_ioeventfd_accept(bool on)
{
	fh.ioeventfd_accept = on;
}

int fake_ioeventfd_fd(uint64_t addr)
{
	for (unsigned i = 0; i < fh.n_ioevents; i++)
		if (fh.ioevents[i].addr == addr)
			return fh.ioevents[i].fd;
	return -1;
}

static int fake_irqfd(struct smol_dev *dev, uint32_t line, int fd)
{
	(void)dev, (void)line, (void)fd;
	return -ENOTSUP;
}

static int fake_irq_claim(struct smol_dev *dev, uint32_t line)
{
	if (line == SMOL_IRQ_AUTO) { /* as the core: the first free line from 5 up */
		for (uint32_t l = 5; l < FAKE_IRQ_LINES; l++)
			if (!fh.irq_owner[l]) {
				fh.irq_owner[l] = dev;
				return (int)l;
			}
		return -EBUSY;
	}
	/* as the core, which reports a refusal itself, against the irq key */
	if (line >= FAKE_IRQ_LINES) {
		fake_cfg_error(dev, "irq", "IRQ %u does not exist (lines 0-%d)", line,
		               FAKE_IRQ_LINES - 1);
		return -EINVAL;
	}
	if (fh.irq_owner[line] && fh.irq_owner[line] != dev) {
		fake_cfg_error(dev, "irq", "IRQ %u is already used by device '%s'", line,
		               fh.irq_owner[line]->name);
		return -EBUSY;
	}
	fh.irq_owner[line] = dev;
	return 0;
}

static bool irq_owned(struct smol_dev *dev, uint32_t line)
{
	if (line < FAKE_IRQ_LINES && fh.irq_owner[line] == dev)
		return true;
	fh.irq_misuse++;
	log_append("fake: %s: IRQ line %u used but not claimed\n", dev->name, line);
	return false;
}

static int fake_irq_set(struct smol_dev *dev, uint32_t line, int level)
{
	int r = -EINVAL;

	pthread_mutex_lock(&fake_lock);
	if (irq_owned(dev, line)) {
		level = !!level;
		if (level && !fh.irq_level[line])
			fh.irq_rises[line]++;
		fh.irq_level[line] = level;
		r = 0;
	}
	pthread_mutex_unlock(&fake_lock);
	return r;
}

static int fake_irq_pulse(struct smol_dev *dev, uint32_t line)
{
	int r = -EINVAL;

	pthread_mutex_lock(&fake_lock);
	if (irq_owned(dev, line)) {
		if (!fh.irq_level[line])
			fh.irq_rises[line]++;
		fh.irq_level[line] = 0;
		r = 0;
	}
	pthread_mutex_unlock(&fake_lock);
	return r;
}

bool fake_irq_claimed(uint32_t line)
{
	return line < FAKE_IRQ_LINES && fh.irq_owner[line];
}

int fake_irq_level(uint32_t line)
{
	pthread_mutex_lock(&fake_lock);
	int v = line < FAKE_IRQ_LINES ? fh.irq_level[line] : 0;
	pthread_mutex_unlock(&fake_lock);
	return v;
}

unsigned fake_irq_rises(uint32_t line)
{
	pthread_mutex_lock(&fake_lock);
	unsigned v = line < FAKE_IRQ_LINES ? fh.irq_rises[line] : 0;
	pthread_mutex_unlock(&fake_lock);
	return v;
}

unsigned fake_irq_misuse(void)
{
	pthread_mutex_lock(&fake_lock);
	unsigned v = fh.irq_misuse;
	pthread_mutex_unlock(&fake_lock);
	return v;
}

/* ---- guest RAM ----------------------------------------------------------------------- */

static void *fake_gpa_ptr(struct smol_dev *dev, uint64_t gpa, uint64_t len)
{
	uint64_t off = gpa - FAKE_RAM_BASE; /* wraps to a huge offset below the base */

	(void)dev;
	__atomic_add_fetch(&fh.gpa_calls, 1, __ATOMIC_RELAXED);
	if (off >= FAKE_RAM_SIZE || len > FAKE_RAM_SIZE - off)
		return NULL;
	pthread_mutex_lock(&hold_lock);
	if (fh.hold && gpa == fh.hold_gpa && len == fh.hold_len) {
		fh.held++;
		pthread_cond_broadcast(&hold_cond);
		while (fh.hold && gpa == fh.hold_gpa && len == fh.hold_len)
			pthread_cond_wait(&hold_cond, &hold_lock);
		fh.held--;
		pthread_cond_broadcast(&hold_cond);
	}
	pthread_mutex_unlock(&hold_lock);
	return fh.ram + off;
}

void fake_gpa_hold(uint64_t gpa, uint64_t len)
{
	pthread_mutex_lock(&hold_lock);
	fh.hold = true;
	fh.hold_gpa = gpa;
	fh.hold_len = len;
	pthread_mutex_unlock(&hold_lock);
}

void fake_gpa_release(void)
{
	pthread_mutex_lock(&hold_lock);
	fh.hold = false;
	pthread_cond_broadcast(&hold_cond);
	pthread_mutex_unlock(&hold_lock);
}

bool fake_gpa_wait_held(int timeout_ms)
{
	struct timespec ts;
	bool held;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&hold_lock);
	while (!fh.held && pthread_cond_timedwait(&hold_cond, &hold_lock, &ts) == 0)
		;
	held = fh.held != 0;
	pthread_mutex_unlock(&hold_lock);
	return held;
}

unsigned fake_gpa_held(void)
{
	pthread_mutex_lock(&hold_lock);
	unsigned n = fh.held;
	pthread_mutex_unlock(&hold_lock);
	return n;
}

uint8_t *fake_ram(void)
{
	return fh.ram;
}

uint64_t fake_gpa_calls(void)
{
	return __atomic_load_n(&fh.gpa_calls, __ATOMIC_RELAXED);
}

/* ---- fd watches ---------------------------------------------------------------------- */

static struct watch *find_watch(int fd)
{
	for (unsigned i = 0; i < fh.n_watches; i++)
		if (fh.watches[i].fd == fd)
			return &fh.watches[i];
	return NULL;
}

static int fake_fd_watch(struct smol_dev *dev, int fd, uint32_t events, smol_fd_fn cb, void *opaque)
{
	if (fd < 0 || !cb || fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	if (find_watch(fd))
		return -EEXIST;
	if (fh.n_watches == MAX_WATCHES)
		return -ENOSPC;
	fh.watches[fh.n_watches++] = (struct watch){ dev, fd, events, cb, opaque };
	return 0;
}

static int fake_fd_unwatch(struct smol_dev *dev, int fd)
{
	struct watch *w = find_watch(fd);

	if (!w || w->dev != dev)
		return -ENOENT;
	*w = fh.watches[--fh.n_watches];
	return 0;
}

bool fake_fd_watched(int fd)
{
	return find_watch(fd) != NULL;
}

uint32_t fake_fd_events(int fd)
{
	struct watch *w = find_watch(fd);

	return w ? w->events : 0;
}

int fake_fd_fire(int fd, uint32_t events)
{
	struct watch *w = find_watch(fd);

	if (!w)
		return -ENOENT;
	w->cb(w->opaque, fd, events);
	return 0;
}

int fake_fd_fire_ready(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, timeout_ms);

	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	return fake_fd_fire(fd, SMOL_FD_IN | ((p.revents & (POLLHUP | POLLERR)) ? SMOL_FD_HUP : 0));
}

unsigned fake_fd_pump(int timeout_ms)
{
	struct pollfd p[MAX_WATCHES];
	unsigned n = fh.n_watches, fired = 0;

	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){
			.fd = fh.watches[i].fd,
			.events = (short)(((fh.watches[i].events & SMOL_FD_IN) ? POLLIN : 0) |
			                  ((fh.watches[i].events & SMOL_FD_OUT) ? POLLOUT : 0)),
		};
	if (poll(p, n, timeout_ms) <= 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		struct watch *w = find_watch(p[i].fd);
		uint32_t ev = ((p[i].revents & POLLIN) ? SMOL_FD_IN : 0) |
		              ((p[i].revents & POLLOUT) ? SMOL_FD_OUT : 0) |
		              ((p[i].revents & (POLLHUP | POLLERR)) ? SMOL_FD_HUP : 0);

		if (!p[i].revents || !w)
			continue; /* dropped by an earlier callback */
		struct smol_dev *d = w->dev;

		pthread_mutex_lock(&d->lock); /* as the core: under the device's lock */
		w->cb(w->opaque, p[i].fd, ev);
		pthread_mutex_unlock(&d->lock);
		fired++;
	}
	return fired;
}

/* ---- descriptions (ABI 1.1) ---------------------------------------------------------- */

struct smol_describe {
	char text[1024];
	size_t len;
	bool device;
};

static int desc_add(struct smol_describe *d, bool needs_device, const char *fmt, ...)
        SMOL_PRINTF(3, 4);

static int desc_add(struct smol_describe *d, bool needs_device, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (needs_device && !d->device)
		return -EINVAL;
	va_start(ap, fmt);
	n = vsnprintf(d->text + d->len, sizeof(d->text) - d->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(d->text) - d->len)
		return -ENOSPC;
	d->len += (size_t)n;
	return 0;
}

static int fake_desc_device(struct smol_describe *d, const char *hid)
{
	if (!hid || strlen(hid) < 7 || strlen(hid) > 8)
		return -EINVAL;
	d->device = true;
	return desc_add(d, false, "device %s\n", hid);
}

static int fake_desc_io(struct smol_describe *d, uint16_t port, uint16_t len)
{
	return desc_add(d, true, "io 0x%x %u\n", port, len);
}

static int fake_desc_mmio(struct smol_describe *d, uint64_t base, uint64_t len)
{
	if (!len || base + len > (1ull << 32) || base + len < base)
		return -EINVAL;
	return desc_add(d, true, "mmio 0x%" PRIx64 " 0x%" PRIx64 "\n", base, len);
}

static int fake_desc_irq(struct smol_describe *d, uint32_t line, uint32_t flags)
{
	return desc_add(d, true, "irq %u %u\n", line, flags);
}

static int fake_desc_cmdline(struct smol_describe *d, const char *words)
{
	return desc_add(d, false, "cmdline %s\n", words);
}

static int fake_desc_compatible(struct smol_describe *d, const char *compatible)
{
	if (!compatible || !*compatible || strlen(compatible) > 63)
		return -EINVAL;
	return desc_add(d, true, "compatible %s\n", compatible);
}

static int fake_desc_clock(struct smol_describe *d, const char *name, uint32_t hz)
{
	if (!name || !*name || !hz)
		return -EINVAL;
	return desc_add(d, true, "clock %s %u\n", name, hz);
}

static int fake_desc_console(struct smol_describe *d)
{
	return desc_add(d, true, "console\n");
}

const char *fake_dev_describe(struct smol_dev *dev)
{
	static struct smol_describe d;

	memset(&d, 0, sizeof(d));
	if (!dev->state || !dev->ops->describe || dev->ops->describe(dev->state, &d))
		return NULL;
	return d.text;
}

/* ---- run control --------------------------------------------------------------------- */

static void fake_request_exit(struct smol_dev *dev, int status)
{
	log_append("[%s] exit requested: %d\n", dev->name, status);
	pthread_mutex_lock(&fake_lock);
	fh.exit_requests++;
	fh.exit_status = status;
	pthread_mutex_unlock(&fake_lock);
}

unsigned fake_exit_requests(void)
{
	pthread_mutex_lock(&fake_lock);
	unsigned n = fh.exit_requests;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

int fake_exit_status(void)
{
	pthread_mutex_lock(&fake_lock);
	int v = fh.exit_status;
	pthread_mutex_unlock(&fake_lock);
	return v;
}

/* ---- snapshots (ABI 1.3) ------------------------------------------------------------ */

struct smol_snap_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t version;
	bool failed;
};

struct smol_snap_reader {
	const uint8_t *buf;
	size_t len, pos;
	uint32_t version;
};

static void fake_snap_set_version(struct smol_snap_writer *w, uint32_t version)
{
	w->version = version;
}

static int fake_snap_write(struct smol_snap_writer *w, const void *data, size_t len)
{
	if (len > SIZE_MAX / 2 - w->len)
		return -EOVERFLOW;
	if (w->len + len > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + len)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			w->failed = true;
			return -ENOMEM;
		}
		w->buf = b;
		w->cap = cap;
	}
	if (len)
		memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

static uint32_t fake_snap_version(struct smol_snap_reader *r)
{
	return r->version;
}

static int fake_snap_read(struct smol_snap_reader *r, void *data, size_t len)
{
	if (len > r->len - r->pos)
		return -EBADMSG;
	if (len)
		memcpy(data, r->buf + r->pos, len);
	r->pos += len;
	return 0;
}

static size_t fake_snap_remaining(struct smol_snap_reader *r)
{
	return r->len - r->pos;
}

static void fake_request_snapshot(struct smol_dev *dev)
{
	log_append("[%s] snapshot requested\n", dev->name);
	pthread_mutex_lock(&fake_lock);
	fh.snapshot_requests++;
	pthread_mutex_unlock(&fake_lock);
}

static const char *fake_dev_name(struct smol_dev *dev)
{
	return dev->name;
}

/* The fake machine's name ([machine] name in the core). */
static const char *fake_machine_name(struct smol_dev *dev)
{
	(void)dev;
	return "fake-machine";
}

unsigned fake_snapshot_requests(void)
{
	pthread_mutex_lock(&fake_lock);
	unsigned n = fh.snapshot_requests;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

void fake_dev_pause(struct smol_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	if (dev->state && dev->ops->pause)
		dev->ops->pause(dev->state);
	pthread_mutex_unlock(&dev->lock);
}

void fake_dev_resume(struct smol_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	if (dev->state && dev->ops->resume)
		dev->ops->resume(dev->state);
	pthread_mutex_unlock(&dev->lock);
}

int fake_dev_save(struct smol_dev *dev, uint8_t **buf, size_t *len, uint32_t *version)
{
	struct smol_snap_writer w = { .version = 1 };
	int r;
	if (!dev->state || !dev->ops->save)
		return -ENOTSUP;
	pthread_mutex_lock(&dev->lock);
	r = dev->ops->save(dev->state, &w);
	pthread_mutex_unlock(&dev->lock);
	if (r == 0 && w.failed)
		r = -ENOMEM;
	if (r < 0) {
		free(w.buf);
		return r;
	}
	*buf = w.buf ? w.buf : calloc(1, 1);
	*len = w.len;
	*version = w.version;
	log_append("[%s] saved %zu bytes of state version %u\n", dev->name, w.len, w.version);
	return 0;
}

int fake_dev_load(struct smol_dev *dev, const uint8_t *buf, size_t len, uint32_t version)
{
	struct smol_snap_reader r = { .buf = buf, .len = len, .version = version };
	int ret;
	if (!dev->state || !dev->ops->load)
		return -ENOTSUP;
	pthread_mutex_lock(&dev->lock);
	ret = dev->ops->load(dev->state, &r);
	pthread_mutex_unlock(&dev->lock);
	if (ret == 0 && r.pos != r.len) {
		log_append("[%s] load left %zu of %zu bytes unread\n", dev->name, r.len - r.pos,
		           r.len);
		return -EBADMSG;
	}
	return ret;
}

const struct smol_host fake_host = {
	.abi_major = SMOL_ABI_MAJOR,
	.abi_minor = SMOL_ABI_MINOR,
	.struct_size = sizeof(struct smol_host),
	.log = fake_log_fn,
	.cfg_str = fake_cfg_str,
	.cfg_u64 = fake_cfg_u64,
	.cfg_bool = fake_cfg_bool,
	.cfg_size = fake_cfg_size,
	.cfg_error = fake_cfg_error,
	.cfg_path = fake_cfg_path,
	.map_mmio = fake_map_mmio,
	.map_pio = fake_map_pio,
	.irq_claim = fake_irq_claim,
	.irq_set = fake_irq_set,
	.irq_pulse = fake_irq_pulse,
	.gpa_ptr = fake_gpa_ptr,
	.fd_watch = fake_fd_watch,
	.ioeventfd = fake_ioeventfd,
	.irqfd = fake_irqfd,
	.fd_unwatch = fake_fd_unwatch,
	.request_exit = fake_request_exit,
	.desc_device = fake_desc_device,
	.desc_io = fake_desc_io,
	.desc_mmio = fake_desc_mmio,
	.desc_irq = fake_desc_irq,
	.desc_cmdline = fake_desc_cmdline,
	.snap_set_version = fake_snap_set_version,
	.snap_write = fake_snap_write,
	.snap_version = fake_snap_version,
	.snap_read = fake_snap_read,
	.snap_remaining = fake_snap_remaining,
	.request_snapshot = fake_request_snapshot,
	.dev_name = fake_dev_name,
	.machine_name = fake_machine_name,
	.cfg_str_at = fake_cfg_str_at,
	.desc_compatible = fake_desc_compatible,
	.desc_clock = fake_desc_clock,
	.desc_console = fake_desc_console,
};
