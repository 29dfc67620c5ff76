/*
 * TSC frequency for timeouts and benchmarks: the hypervisor timing leaf
 * (CPUID 0x40000010, EAX = TSC kHz), else CPUID 0x15 (TSC/crystal ratio),
 * else a 50 ms count of PIT channel 2 (gate via port 0x61, OUT2 polled),
 * else 50 ms of PIT channel 0 counted down through latched reads.
 */
#include "virtio.h"

#define PIT_HZ 1193182u
#define PIT_CAL_MS 50u

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
	                 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
	                 : "a"(leaf), "c"(sub));
}

static uint64_t from_hypervisor_leaf(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[2] & (1u << 31))) /* no hypervisor present bit */
		return 0;
	cpuid(0x40000000, 0, r);
	if (r[0] < 0x40000010)
		return 0;
	cpuid(0x40000010, 0, r);
	return r[0];
}

static uint64_t from_leaf_15(void)
{
	uint32_t r[4];
	cpuid(0, 0, r);
	if (r[0] < 0x15)
		return 0;
	cpuid(0x15, 0, r);
	if (r[0] == 0 || r[1] == 0 || r[2] == 0) /* ratio or crystal unknown */
		return 0;
	return (uint64_t)r[2] * r[1] / r[0] / 1000;
}

static uint64_t from_pit(void)
{
	uint16_t count = (uint16_t)(PIT_HZ * PIT_CAL_MS / 1000);
	uint8_t gate = inb(0x61);
	if (gate == 0xff) /* nothing decodes port 0x61 */
		return 0;
	outb(0x61, (uint8_t)((gate & ~0x02) | 0x01)); /* gate 2 on, speaker off */
	outb(0x43, 0xb0); /* channel 2, lobyte/hibyte, mode 0, binary */
	outb(0x42, (uint8_t)count);
	outb(0x42, (uint8_t)(count >> 8));
	uint64_t t0 = rdtsc();
	bool done = false;
	/* bounded by polls and by ~1 s of TSC, so a missing PIT costs little */
	for (unsigned i = 0; i < 2000000u && rdtsc() - t0 < 4000000000ull; i++) {
		if (inb(0x61) & 0x20) { /* OUT2 high: count reached zero */
			done = true;
			break;
		}
	}
	uint64_t t1 = rdtsc();
	outb(0x61, gate);
	if (!done || t1 <= t0)
		return 0;
	return (t1 - t0) / PIT_CAL_MS;
}

static uint16_t pit0_read(void)
{
	outb(0x43, 0x00); /* latch channel 0 */
	uint8_t lo = inb(0x40);
	uint8_t hi = inb(0x40);
	return (uint16_t)(hi << 8 | lo);
}

/* Without port 0x61 (QEMU microvm has no speaker port): count channel 0 down. */
static uint64_t from_pit0(void)
{
	const uint32_t want = PIT_HZ * PIT_CAL_MS / 1000;
	outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 (rate generator) */
	outb(0x40, 0x00);
	outb(0x40, 0x00); /* count 65536: wraps every 55 ms */
	uint16_t prev = pit0_read();
	uint32_t elapsed = 0;
	uint64_t t0 = rdtsc(), t1 = t0;
	for (unsigned i = 0; i < 2000000u && t1 - t0 < 4000000000ull; i++) {
		uint16_t cur = pit0_read();
		elapsed += (uint16_t)(prev - cur);
		prev = cur;
		t1 = rdtsc();
		if (elapsed >= want)
			break;
	}
	if (elapsed < want || t1 <= t0)
		return 0;
	return (t1 - t0) * PIT_HZ / elapsed / 1000;
}

uint64_t tsc_khz(const char **source)
{
	static uint64_t khz;
	static const char *src;
	if (!src) {
		src = "cpuid 0x40000010";
		khz = from_hypervisor_leaf();
		if (!khz) {
			src = "cpuid 0x15";
			khz = from_leaf_15();
		}
		if (!khz) {
			src = "pit";
			khz = from_pit();
		}
		if (!khz) {
			src = "pit channel 0";
			khz = from_pit0();
		}
		if (!khz)
			src = "unknown";
	}
	if (source)
		*source = src;
	return khz;
}

uint64_t tsc_to_us(uint64_t cycles)
{
	uint64_t khz = tsc_khz(NULL);
	if (!khz)
		khz = 4000000;
	return cycles / khz * 1000 + cycles % khz * 1000 / khz;
}
