/* describe.h: what devices tell the guest about themselves (ABI 1.1 describe()): ACPI device
 * descriptions for the DSDT, and kernel command-line words for machines without ACPI. */
#ifndef SMOLVM_DESCRIBE_H
#define SMOLVM_DESCRIBE_H

#include <smolvm/sdk.h>

struct machine;

/** The host table's description helpers (smol_host::desc_*). */
int describe_device(struct smol_describe *d, const char *hid);
int describe_io(struct smol_describe *d, uint16_t port, uint16_t len);
int describe_mmio(struct smol_describe *d, uint64_t base, uint64_t len);
int describe_irq(struct smol_describe *d, uint32_t line, uint32_t flags);
int describe_cmdline(struct smol_describe *d, const char *words);

/**
 * Calls every device's describe() and collects the results in m->descs and, for a machine
 * without ACPI, the command-line words into m->cmdline. Reports a device whose description
 * fails or names a resource it does not own, with file and line. 0 or -EINVAL.
 */
int describe_all(struct machine *m);

/** Frees what describe_all() collected. */
void describe_free(struct machine *m);

#endif
