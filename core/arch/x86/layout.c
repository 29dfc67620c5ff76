/* layout.c: the x86 guest RAM layout. */
#include "layout.h"

#include <string.h>

#include "memory.h"

void mem_layout_x86(struct guest_mem *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->size = size;
	uint64_t low = size < X86_MMIO_HOLE_START ? size : X86_MMIO_HOLE_START;
	m->region[0] = (struct mem_region){ .gpa = 0, .size = low, .fd_offset = 0 };
	m->n_regions = 1;
	if (size > low) {
		m->region[1] = (struct mem_region){ .gpa = X86_HIGH_RAM_START,
			                            .size = size - low,
			                            .fd_offset = low };
		m->n_regions = 2;
	}
}
