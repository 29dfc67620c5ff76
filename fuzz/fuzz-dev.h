/*
 * fuzz-dev.h: what the device targets share. A device plugin's sources are compiled into the
 * target (its descriptor is the `smol_plugin` symbol) and driven through the fake host of the
 * unit tests (tests/unit/fake-host.h), as the core would drive it.
 *
 * A restore is done as the core does it: the state saved from the device, a new device
 * created from the same configuration, load() into it. The state the new device saves must be
 * the one it loaded. A restore may also load a copy with bytes changed by the input: load()
 * must then refuse it or leave a device that works.
 */
#ifndef SMOLVM_FUZZ_DEV_H
#define SMOLVM_FUZZ_DEV_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake-host.h"
#include "fuzz-input.h"

extern const struct smol_plugin_desc smol_plugin;

/* The device's configuration: key/value pairs set on every device the target creates. */
struct fuzz_cfg {
	const char *name;
	const char *kv[16]; /* key, value, ..., NULL */
};

/*
 * Optional, set by the target: is @again (what the restored device saves) the @saved state,
 * both @len bytes? For a device whose load() tells the guest what changed on the host side
 * meanwhile (a network link); NULL: byte for byte.
 */
static bool (*fuzz_same_state)(const uint8_t *saved, const uint8_t *again, size_t len);

/* A virtio-mmio register access the input asks for: a 9-bit offset (then the value, for a
 * write) in the window at @p base of @p window bytes; one running past it is skipped, as the
 * core's bus does. */
static inline void fuzz_mmio_op(struct in *in, uint64_t base, uint64_t window, unsigned width,
                                bool write)
{
	uint64_t off = in_le(in, 2) & 0x1ff;
	uint64_t v = write ? in_le(in, width) : 0;

	if (off + width > window)
		return;
	if (write)
		fake_mmio_write(base + off, width, v);
	else
		(void)fake_mmio_read(base + off, width);
}

static inline struct smol_dev *fuzz_dev_create(const struct fuzz_cfg *c)
{
	struct smol_dev *d = fake_dev_new(c->name);

	for (unsigned i = 0; c->kv[i]; i += 2)
		fake_cfg_set(d, c->kv[i], c->kv[i + 1]);
	if (fake_dev_create(d, &smol_plugin, 0) != 0) {
		fprintf(stderr, "fuzz: cannot create the device: %s\n", fake_log());
		abort();
	}
	return d;
}

/*
 * Saves @d, destroys it, creates a new one and loads the state into it, changed by the input
 * when @mutate; the new device (NULL when there is no room for one). The fake host keeps a
 * slot per device ever created: @budget counts what is left.
 */
static inline struct smol_dev *fuzz_dev_restore(struct smol_dev *d, const struct fuzz_cfg *c,
                                                struct in *in, bool mutate, unsigned *budget)
{
	uint8_t *buf, *again;
	size_t len, again_len;
	uint32_t version, again_version;

	if (!*budget)
		return d;
	fake_dev_pause(d);
	if (fake_dev_save(d, &buf, &len, &version) != 0) {
		fprintf(stderr, "fuzz: save failed: %s\n", fake_log());
		abort();
	}
	fake_dev_destroy(d);
	(*budget)--;
	d = fuzz_dev_create(c);
	fake_dev_pause(d);
	if (mutate && len) {
		unsigned n = in_u8(in) % 4 + 1;
		for (unsigned i = 0; i < n; i++) {
			size_t at = (size_t)in_le(in, 2) % len;
			buf[at] ^= in_u8(in);
		}
		if (in_u8(in) & 1)
			len -= (size_t)in_u8(in) % len; /* truncated too */
		/* an exact-size copy: a read past the end is an ASan report */
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			abort();
		memcpy(copy, buf, len);
		free(buf);
		buf = copy;
	}
	int r = fake_dev_load(d, buf, len, version);
	if (r != 0 && !mutate) {
		fprintf(stderr, "fuzz: the device refused its own state (%d): %s\n", r, fake_log());
		abort();
	}
	if (r != 0) {
		/* the core refuses the restore: start again from a fresh device */
		fake_dev_destroy(d);
		free(buf);
		if (!*budget)
			return NULL;
		(*budget)--;
		d = fuzz_dev_create(c);
		return d;
	}
	if (!mutate) {
		if (fake_dev_save(d, &again, &again_len, &again_version) != 0 || again_len != len ||
		    again_version != version ||
		    (fuzz_same_state ? !fuzz_same_state(buf, again, len)
		                     : memcmp(again, buf, len) != 0)) {
			fprintf(stderr,
			        "fuzz: the restored device saves another state (%zu bytes, version "
			        "%u; %zu bytes, version %u saved)\n",
			        again_len, again_version, len, version);
			for (size_t i = 0; i < len && i < again_len; i++)
				if (again[i] != buf[i])
					fprintf(stderr, "fuzz: byte %zu: 0x%02x, 0x%02x saved\n", i,
					        again[i], buf[i]);
			abort();
		}
		free(again);
	}
	free(buf);
	fake_dev_resume(d);
	return d;
}

#endif
