/* bootfile.h: a payload file read whole into memory, through one fd that was checked. */
#ifndef SMOLVM_BOOTFILE_H
#define SMOLVM_BOOTFILE_H

#include <stddef.h>
#include <stdint.h>

/** A file read into memory. */
struct boot_file {
	const char *path;
	uint8_t *data;
	size_t size;
};

/** Reads a whole regular file (up to 2 GiB). 0 or -errno (-EINVAL: not a regular file,
 * -EISDIR, -EFBIG); reports nothing. */
int boot_read_file(const char *path, struct boot_file *f);
void boot_file_free(struct boot_file *f);

#endif
