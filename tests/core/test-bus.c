/* Unit tests of the address spaces (core/bus.c) and checked guest memory (core/memory.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "bus.h"
#include "layout.h"
#include "memory.h"

static uint64_t last_off;
static unsigned last_size;
static uint64_t last_val;
static int writes;

static uint64_t rd(void *opaque, uint64_t off, unsigned size)
{
	(void)size;
	return (uintptr_t)opaque + off;
}

static void wr(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	(void)opaque;
	last_off = off;
	last_size = size;
	last_val = v;
	writes++;
}

static const struct smol_io_ops ops = { .read = rd, .write = wr };

Test(bus, overlaps_are_refused)
{
	struct bus b;
	const struct bus_range *other;
	bus_init(&b, "pio", 0x10000);
	cr_assert_eq(bus_add(&b, 0x3f8, 8, &ops, NULL, NULL, "a", NULL), 0);
	cr_assert_eq(bus_add(&b, 0x3fc, 8, &ops, NULL, NULL, "b", &other), -EEXIST);
	cr_assert_str_eq(other->owner, "a");
	cr_assert_eq(bus_add(&b, 0x3f0, 9, &ops, NULL, NULL, "c", &other), -EEXIST);
	cr_assert_eq(bus_add(&b, 0x3f0, 8, &ops, NULL, NULL, "d", NULL), 0); /* adjacent below */
	cr_assert_eq(bus_add(&b, 0x400, 1, &ops, NULL, NULL, "e", NULL), 0); /* adjacent above */
	cr_assert_eq(bus_add(&b, 0x3f9, 1, &ops, NULL, NULL, "f", &other), -EEXIST);
	cr_assert_eq(bus_add(&b, 0xffff, 2, &ops, NULL, NULL, "g", NULL), -EINVAL); /* past end */
	cr_assert_eq(bus_add(&b, 0x10, 0, &ops, NULL, NULL, "h", NULL), -EINVAL); /* empty */
	cr_assert_eq(b.n, 3);
	/* sorted */
	cr_assert_eq(b.r[0].base, 0x3f0);
	cr_assert_eq(b.r[1].base, 0x3f8);
	cr_assert_eq(b.r[2].base, 0x400);
	bus_free(&b);
}

Test(bus, dispatch)
{
	struct bus b;
	uint8_t data[8];
	bus_init(&b, "mmio", 1ull << 52);
	cr_assert_eq(bus_add(&b, 0x1000, 0x100, &ops, (void *)0x500, NULL, "a", NULL), 0);
	cr_assert_eq(bus_add(&b, 0x3000, 0x100, &ops, (void *)0x900, NULL, "b", NULL), 0);

	cr_assert(bus_access(&b, 0x1010, 4, false, data));
	uint32_t v32;
	memcpy(&v32, data, 4);
	cr_assert_eq(v32, 0x510);
	cr_assert(bus_access(&b, 0x30ff, 1, false, data));
	cr_assert_eq(data[0], (uint8_t)0x9ff);

	uint64_t v = 0x1122334455667788ull;
	memcpy(data, &v, 8);
	cr_assert(bus_access(&b, 0x3008, 8, true, data));
	cr_assert_eq(last_off, 8);
	cr_assert_eq(last_size, 8);
	cr_assert_eq(last_val, v);
	memcpy(data, &v, 8);
	cr_assert(bus_access(&b, 0x3008, 2, true, data));
	cr_assert_eq(last_val, 0x7788);

	/* nothing mapped: reads float high, writes vanish */
	memset(data, 0, sizeof(data));
	cr_assert_not(bus_access(&b, 0x2000, 4, false, data));
	memcpy(&v32, data, 4);
	cr_assert_eq(v32, 0xffffffff);
	int before = writes;
	cr_assert_not(bus_access(&b, 0x1100, 1, true, data)); /* one past a range */
	cr_assert_eq(writes, before);
	cr_assert_eq(b.unhandled, 2);
	bus_free(&b);
}

Test(bus, find_free_window)
{
	struct bus b;
	uint64_t at;
	bus_init(&b, "mmio", 1ull << 52);
	cr_assert_eq(bus_find_free(&b, 0xd0000000, 0xd0010000, 0x1000, 0x1000, &at), 0);
	cr_assert_eq(at, 0xd0000000);
	cr_assert_eq(bus_add(&b, at, 0x1000, &ops, NULL, NULL, "a", NULL), 0);
	cr_assert_eq(bus_find_free(&b, 0xd0000000, 0xd0010000, 0x1000, 0x1000, &at), 0);
	cr_assert_eq(at, 0xd0001000);
	cr_assert_eq(bus_add(&b, 0xd0002000, 0xe000, &ops, NULL, NULL, "b", NULL), 0);
	cr_assert_eq(bus_find_free(&b, 0xd0000000, 0xd0010000, 0x1000, 0x1000, &at), 0);
	cr_assert_eq(at, 0xd0001000);
	cr_assert_eq(bus_add(&b, at, 0x1000, &ops, NULL, NULL, "c", NULL), 0);
	cr_assert_eq(bus_find_free(&b, 0xd0000000, 0xd0010000, 0x1000, 0x1000, &at), -ENOSPC);
	bus_free(&b);
}

Test(memory, layout_and_checked_access)
{
	struct guest_mem m;
	mem_layout_x86(&m, 64 << 20);
	cr_assert_eq(m.n_regions, 1);
	cr_assert_eq(mem_alloc(&m), 0);
	cr_assert_not_null(mem_gpa_ptr(&m, 0, 64 << 20));
	cr_assert_not_null(mem_gpa_ptr(&m, (64 << 20) - 1, 1));
	cr_assert_null(mem_gpa_ptr(&m, (64 << 20) - 1, 2)); /* runs past the end */
	cr_assert_null(mem_gpa_ptr(&m, 64 << 20, 1));
	cr_assert_null(mem_gpa_ptr(&m, 0x1000, UINT64_MAX)); /* length overflow */
	cr_assert_null(mem_gpa_ptr(&m, UINT64_MAX, 2)); /* address overflow */
	cr_assert_eq((uint8_t *)mem_gpa_ptr(&m, 0x1234, 4), m.host + 0x1234);
	mem_free(&m);
}

Test(memory, above_4g)
{
	struct guest_mem m;
	mem_layout_x86(&m, 4ull << 30); /* 3 GiB low + 1 GiB high */
	cr_assert_eq(m.n_regions, 2);
	cr_assert_eq(m.region[0].size, 3ull << 30);
	cr_assert_eq(m.region[1].gpa, 4ull << 30);
	cr_assert_eq(m.region[1].size, 1ull << 30);
	cr_assert_eq(mem_alloc(&m), 0);
	cr_assert_null(mem_gpa_ptr(&m, 0xC0000000, 1)); /* the MMIO hole */
	cr_assert_null(mem_gpa_ptr(&m, 0xBFFFFFFF, 2)); /* straddles into the hole */
	cr_assert_eq((uint8_t *)mem_gpa_ptr(&m, 4ull << 30, 8), m.host + (3ull << 30));
	cr_assert_null(mem_gpa_ptr(&m, (5ull << 30) - 4, 8));
	mem_free(&m);
}

Test(bus, access_past_the_range_end_is_not_the_devices)
{
	struct bus b;
	uint8_t data[4] = { 1, 2, 3, 4 };
	bus_init(&b, "pio", 0x10000);
	cr_assert_eq(bus_add(&b, 0xf4, 4, &ops, NULL, NULL, "exit", NULL), 0);
	int before = writes;
	cr_assert(bus_access(&b, 0xf4, 4, true, data)); /* fits */
	cr_assert_eq(writes, before + 1);
	cr_assert_not(bus_access(&b, 0xf7, 4, true, data)); /* outl to the last port */
	cr_assert_not(bus_access(&b, 0xf6, 4, false, data));
	cr_assert_eq(data[0], 0xff);
	cr_assert_eq(writes, before + 1);
	cr_assert(bus_access(&b, 0xf7, 1, true, data));
	bus_free(&b);
}
