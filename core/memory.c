/* memory.c: guest RAM from one memfd, so that snapshots and clones can share it later. */
#define _GNU_SOURCE
#include "memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int mem_alloc(struct guest_mem *m)
{
	m->fd = memfd_create("smolvm-ram", MFD_CLOEXEC);
	if (m->fd < 0)
		return -errno;
	if (ftruncate(m->fd, (off_t)m->size) < 0)
		goto err;
	m->host = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, m->fd, 0);
	if (m->host == MAP_FAILED) {
		m->host = NULL;
		goto err;
	}
	return 0;
err:;
	int e = -errno;
	close(m->fd);
	m->fd = -1;
	return e;
}

void mem_free(struct guest_mem *m)
{
	if (m->host)
		munmap(m->host, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->host = NULL;
	m->fd = -1;
}

void *mem_gpa_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!m->host)
		return NULL;
	if (len == 0)
		len = 1;
	for (int i = 0; i < m->n_regions; i++) {
		const struct mem_region *r = &m->region[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		if (off >= r->size || len > r->size - off)
			continue;
		return m->host + r->fd_offset + off;
	}
	return NULL;
}

uint64_t mem_low_top(const struct guest_mem *m)
{
	return m->region[0].gpa + m->region[0].size;
}
