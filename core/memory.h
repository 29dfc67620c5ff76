/* memory.h: guest RAM (one memfd, mapped once) and the checked guest-physical accessor. */
#ifndef SMOLVM_MEMORY_H
#define SMOLVM_MEMORY_H

#include <stdint.h>

/** One contiguous RAM range in guest-physical space, backed by part of the memfd. */
struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t fd_offset; /**< offset into the memfd (and into host mapping) */
};

#define MEM_MAX_REGIONS 4

/** Guest RAM. */
struct guest_mem {
	int fd; /**< memfd holding all of RAM (shareable by snapshots later) */
	uint8_t *host; /**< mapping of the whole memfd */
	uint64_t size; /**< bytes of RAM */
	struct mem_region region[MEM_MAX_REGIONS];
	int n_regions;
};

/** x86 layout: RAM below the 32-bit MMIO hole, the rest above 4 GiB. */
#define X86_MMIO_HOLE_START 0xC0000000ull /**< 3 GiB */
#define X86_HIGH_RAM_START 0x100000000ull /**< 4 GiB */

/** Computes the x86 layout for @p size bytes of RAM, without allocating. */
void mem_layout_x86(struct guest_mem *m, uint64_t size);
/** Creates the memfd and maps it (after mem_layout_x86). 0 or -errno. */
int mem_alloc(struct guest_mem *m);
void mem_free(struct guest_mem *m);

/**
 * Host pointer to guest-physical [gpa, gpa+len), or NULL when the range is not entirely
 * inside one RAM region (overflow included). len 0 is treated as 1.
 */
void *mem_gpa_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/** End of RAM below 4 GiB (the top of the first region). */
uint64_t mem_low_top(const struct guest_mem *m);

#endif
