/*
 * plugin-demo: drives the two example plugins built out of tree against the installed SDK
 * (plugins/example-counter in C, plugins/example-fnv in C++) and checks what they answer.
 * Exit codes: 0 all good; 30 counter magic wrong; 31 counter value wrong; 32 counter step
 * wrong; 40 FNV count wrong; 41 FNV hash wrong; 42 FNV reset did not reset.
 */
#include "guest.h"

#define COUNTER_PORT 0x510
#define FNV_PORT 0x520

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	uint32_t magic = inl(COUNTER_PORT + 4);
	printf("plugin-demo: example-counter magic 0x%08x\n", magic);
	if (magic != 0x4c4f4d53)
		return 30;
	outl(COUNTER_PORT, 1000);
	uint32_t a = inl(COUNTER_PORT), b = inl(COUNTER_PORT), c = inl(COUNTER_PORT);
	printf("plugin-demo: example-counter counts %u %u %u\n", a, b, c);
	if (a != 1000)
		return 31;
	if (b - a != 7 || c - b != 7) /* configs/plugins.ini sets step = 7 */
		return 32;

	const char *text = "smolvm plugins, built out of tree";
	outb(FNV_PORT + 8, 0);
	for (const char *p = text; *p; p++)
		outb(FNV_PORT, (uint8_t)*p);
	uint32_t count = inl(FNV_PORT + 12), hash = inl(FNV_PORT + 4);
	printf("plugin-demo: example-fnv hashed %u bytes: 0x%08x (expected 0x%08x)\n", count, hash,
	       fnv1a(text));
	if (count != strlen(text))
		return 40;
	if (hash != fnv1a(text))
		return 41;
	outb(FNV_PORT + 8, 0);
	if (inl(FNV_PORT + 12) != 0 || inl(FNV_PORT + 4) != fnv1a(""))
		return 42;
	printf("plugin-demo: PASS\n");
	return 0;
}
