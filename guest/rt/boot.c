/*
 * Boot information: turns what the loader handed over (a Linux zero page on
 * smolvm's 64-bit entry, a struct hvm_start_info on the PVH entry) into one
 * struct boot_info, then runs the payload.
 *
 * Only the first 4 GiB are mapped (identity), so every address taken from
 * the boot data is range-checked before it is dereferenced, and the command
 * line is copied into a private, always NUL-terminated buffer.
 */
#include "guest.h"

/* struct boot_params (Linux "zero page") offsets, see Documentation/arch/x86/zero-page.rst */
#define ZP_SIZE 4096
#define ZP_EXT_CMD_LINE_PTR 0x0c8 /* u32: high 32 bits of the command line address */
#define ZP_E820_ENTRIES 0x1e8 /* u8 */
#define ZP_CMD_LINE_PTR 0x228 /* u32 */
#define ZP_CMDLINE_SIZE 0x238 /* u32 */
#define ZP_E820_TABLE 0x2d0 /* 128 x { u64 addr; u64 size; u32 type; } packed */
#define ZP_E820_ENTRY_SIZE 20
#define ZP_E820_MAX 128

/* struct hvm_start_info (Xen public/arch-x86/hvm/start_info.h) */
#define PVH_MAGIC 0x336ec578u
struct pvh_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};
struct pvh_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#define MAPPED_LIMIT (4ull << 30) /* identity-mapped by both entries */

static struct boot_info g_boot;
static char g_cmdline[BOOT_CMDLINE_MAX];

/* Is [addr, addr+len) non-NULL and inside the identity-mapped 4 GiB? */
static bool phys_ok(uint64_t addr, uint64_t len)
{
	return addr != 0 && addr < MAPPED_LIMIT && len <= MAPPED_LIMIT - addr;
}

static const void *phys(uint64_t addr)
{
	return (const void *)(uintptr_t)addr;
}

/* Fixed-size copies: __builtin_memcpy lets gcc inline them despite -ffreestanding. */
static uint32_t rd32(const uint8_t *p, size_t off)
{
	uint32_t v;
	__builtin_memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *p, size_t off)
{
	uint64_t v;
	__builtin_memcpy(&v, p + off, sizeof(v));
	return v;
}

/* Copy at most max_len characters of the string at paddr into g_cmdline. */
static void copy_cmdline(uint64_t paddr, uint64_t max_len)
{
	g_cmdline[0] = '\0';
	g_boot.cmdline = g_cmdline;
	if (paddr == 0)
		return;
	if (!phys_ok(paddr, 1)) {
		g_boot.warning = "command line above 4 GiB ignored";
		return;
	}
	if (max_len == 0 || max_len > BOOT_CMDLINE_MAX - 1)
		max_len = BOOT_CMDLINE_MAX - 1;
	if (max_len > MAPPED_LIMIT - paddr)
		max_len = MAPPED_LIMIT - paddr;

	const char *src = phys(paddr);
	size_t n = 0;
	while (n < max_len && src[n]) {
		g_cmdline[n] = src[n];
		n++;
	}
	g_cmdline[n] = '\0';
	g_boot.cmdline_truncated = n == max_len && (n == MAPPED_LIMIT - paddr || src[n] != '\0');
}

/* Empty entries describe nothing and are dropped (qboot's PVH map ends with one). */
static void add_mem(uint64_t addr, uint64_t size, uint32_t type)
{
	if (size == 0)
		return;
	if (g_boot.nr_mem >= BOOT_MAX_MEM) {
		g_boot.warning = "memory map truncated";
		return;
	}
	struct boot_mem *m = &g_boot.mem[g_boot.nr_mem++];
	m->addr = addr;
	m->size = size;
	m->type = type;
}

static void parse_zero_page(uint64_t paddr)
{
	g_boot.entry = "linux-zero-page";
	copy_cmdline(0, 0);
	if (!phys_ok(paddr, ZP_SIZE)) {
		g_boot.warning = "zero page address invalid";
		return;
	}
	const uint8_t *zp = phys(paddr);

	uint64_t cmd = rd32(zp, ZP_CMD_LINE_PTR) | (uint64_t)rd32(zp, ZP_EXT_CMD_LINE_PTR) << 32;
	copy_cmdline(cmd, rd32(zp, ZP_CMDLINE_SIZE));

	unsigned n = zp[ZP_E820_ENTRIES];
	if (n > ZP_E820_MAX) {
		g_boot.warning = "zero page e820_entries > 128, clamped";
		n = ZP_E820_MAX;
	}
	for (unsigned i = 0; i < n; i++) {
		size_t off = ZP_E820_TABLE + (size_t)i * ZP_E820_ENTRY_SIZE;
		add_mem(rd64(zp, off), rd64(zp, off + 8), rd32(zp, off + 16));
	}
}

static void parse_pvh(uint64_t paddr)
{
	g_boot.entry = "pvh";
	copy_cmdline(0, 0);
	if (!phys_ok(paddr, sizeof(struct pvh_start_info))) {
		g_boot.warning = "hvm_start_info address invalid";
		return;
	}
	struct pvh_start_info si;
	__builtin_memcpy(&si, phys(paddr), sizeof(si));
	if (si.magic != PVH_MAGIC) {
		g_boot.warning = "hvm_start_info magic mismatch";
		return;
	}
	copy_cmdline(si.cmdline_paddr, 0);
	g_boot.rsdp_paddr = si.rsdp_paddr;
	if (si.version < 1 || si.memmap_entries == 0)
		return;

	uint32_t n = si.memmap_entries;
	if (n > BOOT_MAX_MEM) {
		g_boot.warning = "PVH memory map truncated";
		n = BOOT_MAX_MEM;
	}
	if (!phys_ok(si.memmap_paddr, (uint64_t)n * sizeof(struct pvh_memmap_entry))) {
		g_boot.warning = "PVH memmap address invalid";
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct pvh_memmap_entry e;
		__builtin_memcpy(&e, (const uint8_t *)phys(si.memmap_paddr) + (size_t)i * sizeof(e),
		                 sizeof(e));
		add_mem(e.addr, e.size, e.type);
	}
}

void guest_boot(uint32_t kind, uint64_t info_paddr)
{
	uart_init();

	g_boot.kind = kind == BOOT_KIND_PVH ? BOOT_KIND_PVH : BOOT_KIND_LINUX;
	g_boot.info_paddr = info_paddr;
	if (g_boot.kind == BOOT_KIND_PVH)
		parse_pvh(info_paddr);
	else
		parse_zero_page(info_paddr);

	int rc = guest_main(&g_boot);
	guest_exit((uint8_t)rc);
}

const struct boot_info *guest_boot_info(void)
{
	return &g_boot;
}

const char *guest_cmdline(void)
{
	return g_boot.cmdline ? g_boot.cmdline : "";
}

const char *guest_mem_type_name(uint32_t type)
{
	switch (type) {
	case E820_RAM: return "usable";
	case E820_RESERVED: return "reserved";
	case E820_ACPI: return "ACPI data";
	case E820_NVS: return "ACPI NVS";
	case E820_UNUSABLE: return "unusable";
	case E820_PMEM: return "persistent";
	default: return "unknown";
	}
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

const char *guest_cmdline_word(const char **pos, size_t *len)
{
	const char *p = *pos;

	while (is_space(*p))
		p++;
	const char *word = p;
	while (*p && !is_space(*p))
		p++;
	*pos = p;
	*len = (size_t)(p - word);
	return *len ? word : NULL;
}

int guest_cmdline_get(const char *key, char *buf, size_t size)
{
	const char *p = guest_cmdline(), *word;
	size_t klen = strlen(key), wlen;

	while ((word = guest_cmdline_word(&p, &wlen))) {
		if (klen == 0 || wlen < klen || strncmp(word, key, klen) != 0)
			continue;
		if (wlen == klen) { /* bare key */
			if (buf && size)
				buf[0] = '\0';
			return 0;
		}
		if (word[klen] != '=')
			continue;
		const char *val = word + klen + 1;
		size_t vlen = wlen - klen - 1;
		if (buf && size) {
			size_t n = vlen < size - 1 ? vlen : size - 1;
			memcpy(buf, val, n);
			buf[n] = '\0';
		}
		return (int)vlen;
	}
	return -1;
}

bool guest_cmdline_has(const char *key)
{
	return guest_cmdline_get(key, NULL, 0) >= 0;
}

uint64_t guest_cmdline_u64(const char *key, uint64_t dflt)
{
	char val[32];
	uint64_t v = 0;
	if (guest_cmdline_get(key, val, sizeof(val)) <= 0)
		return dflt;
	for (const char *s = val; *s; s++) {
		if (*s < '0' || *s > '9')
			return dflt;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	return v;
}
