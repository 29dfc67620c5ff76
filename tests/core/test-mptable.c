/* The MP table for machines without ACPI (core/arch/x86/mptable.c): structure, checksums, entries.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "mptable.h"

static uint8_t buf[4096];

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static const struct mptable_machine two = {
	.n_vcpus = 2,
	.lapic_base = 0xfee00000,
	.ioapic_base = 0xfec00000,
	.ioapic_id = 2,
	.n_ioapic_pins = 24,
};

Test(mptable, floating_pointer_and_header)
{
	memset(buf, 0xcc, sizeof(buf));
	int n = mptable_build(&two, buf, sizeof(buf), MPTABLE_GPA);
	cr_assert_gt(n, 0);
	cr_assert_eq(buf[n], 0xcc, "nothing written past the returned size");
	cr_assert_eq(memcmp(buf, "_MP_", 4), 0);
	cr_assert_eq(get32(buf + 4), MPTABLE_GPA + 16, "the configuration table's address");
	cr_assert_eq(buf[8], 1, "length in 16-byte units");
	cr_assert_eq(buf[9], 4, "spec revision 1.4");
	cr_assert_eq(sum(buf, 16), 0, "floating pointer checksum");
	cr_assert_eq(buf[11], 0, "a configuration table follows (no default configuration)");
	const uint8_t *h = buf + 16;
	cr_assert_eq(memcmp(h, "PCMP", 4), 0);
	uint16_t len = (uint16_t)(h[4] | h[5] << 8);
	cr_assert_eq(16 + len, n);
	cr_assert_eq(sum(h, len), 0, "configuration table checksum");
	cr_assert_eq(get32(h + 36), 0xfee00000);
}

Test(mptable, entries)
{
	int n = mptable_build(&two, buf, sizeof(buf), MPTABLE_GPA);
	cr_assert_gt(n, 0);
	const uint8_t *h = buf + 16, *e = h + 44, *end = buf + n;
	int count = h[34] | h[35] << 8, seen = 0, cpus = 0, ioapics = 0, bus = 0, lint = 0;
	int pin_of_isa[16];
	memset(pin_of_isa, -1, sizeof(pin_of_isa));
	while (e < end) {
		seen++;
		switch (e[0]) {
		case 0:
			cr_assert_eq(e[1], cpus, "local APIC id = vCPU index");
			cr_assert(e[3] & 1, "enabled");
			cr_assert_eq(!!(e[3] & 2), cpus == 0, "vCPU 0 is the boot processor");
			cpus++;
			e += 20;
			continue;
		case 1:
			cr_assert_eq(memcmp(e + 2, "ISA   ", 6), 0);
			bus++;
			break;
		case 2:
			cr_assert_eq(e[1], 2);
			cr_assert_eq(get32(e + 4), 0xfec00000);
			cr_assert(e[3] & 1);
			ioapics++;
			break;
		case 3:
			cr_assert_eq(e[6], 2, "to the I/O APIC");
			cr_assert_lt(e[5], 16);
			pin_of_isa[e[5]] = e[7];
			break;
		case 4:
			cr_assert_eq(e[6], 0xff, "every local APIC");
			cr_assert_eq(e[7], e[1] == 3 ? 0 : 1, "ExtINT on LINT0, NMI on LINT1");
			lint++;
			break;
		default: cr_assert_fail("unknown entry type %u", e[0]);
		}
		e += 8;
	}
	cr_assert_eq(e, end, "entries end exactly at the table's end");
	cr_assert_eq(seen, count);
	cr_assert_eq(cpus, 2);
	cr_assert_eq(bus, 1);
	cr_assert_eq(ioapics, 1);
	cr_assert_eq(lint, 2);
	cr_assert_eq(pin_of_isa[0], 2, "the PIT's IRQ 0 arrives on pin 2");
	cr_assert_eq(pin_of_isa[2], -1, "IRQ 2 is the cascade");
	for (int i = 1; i < 16; i++)
		if (i != 2)
			cr_assert_eq(pin_of_isa[i], i, "ISA IRQ %d", i);
}

Test(mptable, refusals)
{
	memset(buf, 0xcc, sizeof(buf));
	cr_assert_eq(mptable_build(&two, buf, 64, MPTABLE_GPA), -ENOSPC);
	cr_assert_eq(buf[0], 0xcc, "nothing written when it does not fit");
	struct mptable_machine m = two;
	m.ioapic_id = 1; /* the second vCPU's local APIC id */
	cr_assert_eq(mptable_build(&m, buf, sizeof(buf), MPTABLE_GPA), -EINVAL);
	m = two;
	m.n_vcpus = 0;
	cr_assert_eq(mptable_build(&m, buf, sizeof(buf), MPTABLE_GPA), -EINVAL);
	cr_assert_eq(mptable_build(&two, buf, sizeof(buf), MPTABLE_GPA + 8), -EINVAL);
}

Test(mptable, many_cpus_fit_the_reserved_area)
{
	static uint8_t big[MPTABLE_MAX_SIZE];
	struct mptable_machine m = two;
	m.n_vcpus = 64;
	m.ioapic_id = 64;
	int n = mptable_build(&m, big, sizeof(big), MPTABLE_GPA);
	cr_assert_gt(n, 0);
	cr_assert_eq(sum(big + 16, (size_t)n - 16), 0);
}
