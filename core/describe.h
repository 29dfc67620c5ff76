/* describe.h: what devices tell the guest about themselves (ABI 1.1 describe()): ACPI device
 * descriptions for the DSDT, kernel command-line words for machines without ACPI, and (ABI 1.5)
 * compatible strings, clocks and the console for a device tree. */
#ifndef SMOLVM_DESCRIBE_H
#define SMOLVM_DESCRIBE_H

#include <smolvm/sdk.h>

#include <stdbool.h>

struct machine;

#define DESC_MAX_COMPAT 4
#define DESC_COMPAT_LEN 64 /**< with the NUL */
#define DESC_MAX_CLOCKS 2
#define DESC_CLOCK_NAME_LEN 32 /**< with the NUL */

/**
 * What a device says of itself for a device tree (ABI 1.5), beside its ACPI description:
 * m->dt_descs[i] and m->descs[i] describe the same device (ranges and lines are in descs).
 */
struct dt_desc {
	const struct smol_dev *dev;
	char compatible[DESC_MAX_COMPAT][DESC_COMPAT_LEN];
	uint32_t n_compatible;
	struct {
		char name[DESC_CLOCK_NAME_LEN];
		uint32_t hz;
	} clock[DESC_MAX_CLOCKS];
	uint32_t n_clock;
	bool console;
};

/** The host table's description helpers (smol_host::desc_*). */
int describe_device(struct smol_describe *d, const char *hid);
int describe_io(struct smol_describe *d, uint16_t port, uint16_t len);
int describe_mmio(struct smol_describe *d, uint64_t base, uint64_t len);
int describe_irq(struct smol_describe *d, uint32_t line, uint32_t flags);
int describe_cmdline(struct smol_describe *d, const char *words);
int describe_compatible(struct smol_describe *d, const char *compatible);
int describe_clock(struct smol_describe *d, const char *name, uint32_t hz);
int describe_console(struct smol_describe *d);

/**
 * Calls every device's describe() and collects the results in m->descs and, for a machine
 * without ACPI, the command-line words into m->cmdline. Reports a device whose description
 * fails or names a resource it does not own, with file and line. 0 or -EINVAL.
 */
int describe_all(struct machine *m);

/** Frees what describe_all() collected. */
void describe_free(struct machine *m);

#endif
