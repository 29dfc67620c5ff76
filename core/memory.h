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

/** Creates the memfd and maps it (after the arch laid RAM out: struct arch_ops). 0 or -errno. */
int mem_alloc(struct guest_mem *m);
void mem_free(struct guest_mem *m);

/**
 * Host pointer to guest-physical [gpa, gpa+len), or NULL when the range is not entirely
 * inside one RAM region (overflow included). len 0 is treated as 1.
 */
void *mem_gpa_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/** The end of the first RAM region (x86: the top of RAM below 4 GiB). */
uint64_t mem_low_top(const struct guest_mem *m);

#endif
