/* plugin-elf.c: a plugin file read before dlopen, so that loading it runs none of its code.
 * dlopen runs an object's DT_INIT function and its DT_INIT_ARRAY entries (DT_FINI and
 * DT_FINI_ARRAY at dlclose) and, while relocating, its IFUNC resolvers: all before the loader
 * could read a version field. The file is untrusted input: every offset, size and count is
 * checked against the buffer before it is read; addresses are translated to file bytes through
 * PT_LOAD segments as ld.so sees them (never through section offsets the loader ignores).
 *
 * What the toolchain puts into every shared object, and is tolerated (gcc and clang on
 * Debian 12, x86-64 and aarch64; seen in every plugin this tree builds):
 *  - .init_array: one entry, crtbeginS.o's frame_dummy (register_tm_clones: calls
 *    _ITM_registerTMCloneTable when something defines it, which no plugin may);
 *  - .fini_array: one entry, crtbeginS.o's __do_global_dtors_aux (__cxa_finalize, the TM
 *    clone table);
 *  - DT_INIT: _init from crti.o/crtn.o, the start of .init (calls __gmon_start__ if defined);
 *  - DT_FINI: _fini, the start of .fini.
 * A constructor of the plugin's own (__attribute__((constructor)), a C++ global with a dynamic
 * initialiser, -Wl,-init=f) adds an entry or changes where DT_INIT points. The rule: at most
 * one entry in each array, none in a preinit array; each entry a RELATIVE relocation (or the
 * in-place address) inside an executable PT_LOAD; with a .symtab (unstripped: meson's default)
 * every such address must carry the toolchain's symbol name; without one (stripped), any
 * name .dynsym gives the address must be it, DT_INIT/DT_FINI must be where .init/.fini start,
 * and an .init_array entry must come with what crtbeginS.o and crti.o bring along with
 * frame_dummy (one .fini_array entry, a DT_INIT). Trade-off: a stripped plugin that imitates
 * all of that (a hidden constructor in frame_dummy's place, linked with -nostartfiles plus a
 * destructor and -Wl,-init pointing into a .init of its own) passes; telling it apart would
 * mean matching machine code that changes with every compiler release. This check keeps honest
 * mistakes and unrelated files from running code inside `smolvm plugins`, `check` and `run`; it is
 * not a sandbox for a plugin built to deceive (that plugin runs inside smolvm anyway once loaded).
 * Libraries a plugin names in DT_NEEDED are loaded, constructors and all, like any system library.
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "le.h"
#include "plugin-elf.h"

#define U(x) ((unsigned long long)(x))
#define MAX_PHNUM 128
#define EHDR_SIZE 64
#define PHDR_SIZE 56
#define SHDR_SIZE 64
#define SYM_SIZE 24
#define N_TAGS (DT_PREINIT_ARRAYSZ + 1) /* the dynamic tags read here are all below */
#define TAG(t) (1ull << (t))
#define WANTED_TAGS                                                                                \
	(TAG(DT_INIT) | TAG(DT_FINI) | TAG(DT_INIT_ARRAY) | TAG(DT_INIT_ARRAYSZ) |                 \
	 TAG(DT_FINI_ARRAY) | TAG(DT_FINI_ARRAYSZ) | TAG(DT_PREINIT_ARRAY) |                       \
	 TAG(DT_PREINIT_ARRAYSZ) | TAG(DT_RELA) | TAG(DT_RELASZ) | TAG(DT_RELAENT) | TAG(DT_REL) | \
	 TAG(DT_RELSZ) | TAG(DT_RELENT) | TAG(DT_JMPREL) | TAG(DT_PLTRELSZ) | TAG(DT_PLTREL))

struct phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, filesz, memsz;
};

struct shdr {
	uint32_t name, type, link;
	uint64_t addr, offset, size, entsize;
};

struct img {
	const uint8_t *b;
	size_t len;
	uint16_t machine;
	uint64_t phoff, shoff;
	unsigned phnum, shnum, shstrndx;
	bool has_symtab;
	struct {
		bool set;
		uint64_t v;
	} d[N_TAGS];
	char *why;
	size_t whylen;
};

static int fail(struct img *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct img *m, const char *fmt, ...)
{
	if (m->why && m->whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(m->why, m->whylen, fmt, ap);
		va_end(ap);
	}
	return -ENOEXEC;
}

static bool in_file(const struct img *m, uint64_t off, uint64_t n)
{
	return off <= m->len && n <= m->len - off;
}

static struct phdr get_phdr(const struct img *m, unsigned i)
{
	const uint8_t *p = m->b + m->phoff + (uint64_t)i * PHDR_SIZE;
	return (struct phdr){ .type = (uint32_t)le_get(p, 4),
		              .flags = (uint32_t)le_get(p + 4, 4),
		              .offset = le_get(p + 8, 8),
		              .vaddr = le_get(p + 16, 8),
		              .filesz = le_get(p + 32, 8),
		              .memsz = le_get(p + 40, 8) };
}

static struct shdr get_shdr(const struct img *m, unsigned i)
{
	const uint8_t *p = m->b + m->shoff + (uint64_t)i * SHDR_SIZE;
	return (struct shdr){ .name = (uint32_t)le_get(p, 4),
		              .type = (uint32_t)le_get(p + 4, 4),
		              .addr = le_get(p + 16, 8),
		              .offset = le_get(p + 24, 8),
		              .size = le_get(p + 32, 8),
		              .link = (uint32_t)le_get(p + 40, 4),
		              .entsize = le_get(p + 56, 8) };
}

/* The file offset of the @p n bytes at @p vaddr, when one PT_LOAD holds all of them in the
 * file (not in its zero-filled tail). */
static bool vaddr_to_off(const struct img *m, uint64_t vaddr, uint64_t n, uint64_t *off)
{
	for (unsigned i = 0; i < m->phnum; i++) {
		struct phdr ph = get_phdr(m, i);
		if (ph.type != PT_LOAD || vaddr < ph.vaddr)
			continue;
		uint64_t rel = vaddr - ph.vaddr;
		if (rel > ph.filesz || n > ph.filesz - rel)
			continue;
		*off = ph.offset + rel;
		return true;
	}
	return false;
}

static bool vaddr_is_code(const struct img *m, uint64_t vaddr)
{
	for (unsigned i = 0; i < m->phnum; i++) {
		struct phdr ph = get_phdr(m, i);
		if (ph.type == PT_LOAD && (ph.flags & PF_X) && vaddr >= ph.vaddr &&
		    vaddr - ph.vaddr < ph.memsz)
			return true;
	}
	return false;
}

static int parse_header(struct img *m)
{
	const uint8_t *b = m->b;
	if (m->len < EHDR_SIZE || memcmp(b, ELFMAG, SELFMAG) != 0)
		return fail(m, "not an ELF file");
	if (b[EI_CLASS] != ELFCLASS64 || b[EI_DATA] != ELFDATA2LSB || b[EI_VERSION] != EV_CURRENT)
		return fail(m,
		            "not a 64-bit little-endian ELF file (class %u, data %u, version %u)",
		            b[EI_CLASS], b[EI_DATA], b[EI_VERSION]);
	uint16_t type = (uint16_t)le_get(b + 16, 2);
	m->machine = (uint16_t)le_get(b + 18, 2);
	if (type != ET_DYN)
		return fail(m, "not a shared object (ELF type %u)", type);
	if (m->machine != EM_X86_64 && m->machine != EM_AARCH64)
		return fail(m, "built for machine %u, neither x86-64 nor aarch64", m->machine);
	m->phoff = le_get(b + 32, 8);
	m->shoff = le_get(b + 40, 8);
	uint16_t phentsize = (uint16_t)le_get(b + 54, 2), shentsize = (uint16_t)le_get(b + 58, 2);
	m->phnum = (unsigned)le_get(b + 56, 2);
	m->shnum = (unsigned)le_get(b + 60, 2);
	m->shstrndx = (unsigned)le_get(b + 62, 2);
	if (phentsize != PHDR_SIZE || m->phnum == 0 || m->phnum > MAX_PHNUM ||
	    !in_file(m, m->phoff, (uint64_t)m->phnum * PHDR_SIZE))
		return fail(m, "malformed program headers (%u of %u bytes at 0x%llx)", m->phnum,
		            phentsize, U(m->phoff));
	if (m->shoff == 0 || m->shnum == 0) {
		m->shnum = 0; /* no section headers (or extended numbering): no names to check */
	} else if (shentsize != SHDR_SIZE ||
	           !in_file(m, m->shoff, (uint64_t)m->shnum * SHDR_SIZE)) {
		return fail(m, "malformed section headers (%u of %u bytes at 0x%llx)", m->shnum,
		            shentsize, U(m->shoff));
	}
	return 0;
}

/* PT_LOAD segments in ascending, non-overlapping order (as ld.so requires), then the one
 * PT_DYNAMIC's tags, read through the segment that maps it. */
static int parse_dynamic(struct img *m)
{
	uint64_t end = 0, dyn_vaddr = 0, dyn_size = 0;
	unsigned n_load = 0, n_dyn = 0;
	for (unsigned i = 0; i < m->phnum; i++) {
		struct phdr ph = get_phdr(m, i);
		if (ph.type == PT_DYNAMIC) {
			n_dyn++;
			dyn_vaddr = ph.vaddr;
			dyn_size = ph.filesz;
		}
		if (ph.type != PT_LOAD)
			continue;
		if (ph.filesz > ph.memsz || !in_file(m, ph.offset, ph.filesz) ||
		    ph.memsz > UINT64_MAX - ph.vaddr || (n_load && ph.vaddr < end))
			return fail(m, "malformed PT_LOAD segment %u (0x%llx bytes at 0x%llx)", i,
			            U(ph.memsz), U(ph.vaddr));
		end = ph.vaddr + ph.memsz;
		n_load++;
	}
	if (n_load == 0 || n_dyn != 1)
		return fail(m, "not a loadable shared object (%u PT_LOAD, %u PT_DYNAMIC segments)",
		            n_load, n_dyn);
	uint64_t off;
	if (dyn_size % 16 || !vaddr_to_off(m, dyn_vaddr, dyn_size, &off))
		return fail(m, "malformed dynamic section (0x%llx bytes at 0x%llx)", U(dyn_size),
		            U(dyn_vaddr));
	for (uint64_t at = 0; at < dyn_size; at += 16) {
		uint64_t tag = le_get(m->b + off + at, 8), val = le_get(m->b + off + at + 8, 8);
		if (tag == DT_NULL)
			break;
		if (tag >= N_TAGS || !((WANTED_TAGS >> tag) & 1))
			continue; /* DT_NEEDED and the like may repeat */
		if (m->d[tag].set)
			return fail(m, "malformed dynamic section: tag %llu appears twice", U(tag));
		m->d[tag].set = true;
		m->d[tag].v = val;
	}
	return 0;
}

/* ---- symbols -------------------------------------------------------------------------- */

/* The NUL-terminated string at @p at in section @p sec, or NULL. */
static const char *sec_string(const struct img *m, unsigned sec, uint64_t at)
{
	if (sec >= m->shnum)
		return NULL;
	struct shdr sh = get_shdr(m, sec);
	if (sh.type != SHT_STRTAB || !in_file(m, sh.offset, sh.size) || at >= sh.size)
		return NULL;
	const char *s = (const char *)m->b + sh.offset + at;
	return memchr(s, 0, sh.size - at) ? s : NULL;
}

/* The address of the section called @p name: 1 found, 0 not there. */
static int sec_addr(const struct img *m, const char *name, uint64_t *addr)
{
	for (unsigned i = 0; i < m->shnum; i++) {
		struct shdr sh = get_shdr(m, i);
		const char *s = sec_string(m, m->shstrndx, sh.name);
		if (s && strcmp(s, name) == 0) {
			*addr = sh.addr;
			return 1;
		}
	}
	return 0;
}

/* Copies a name from the file into @p out, '?' for anything not printable. */
static void copy_name(char *out, size_t outlen, const char *s)
{
	size_t i = 0;
	for (; s[i] && i + 1 < outlen; i++)
		out[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = 0;
}

struct symscan {
	uint64_t addr; /* names of defined functions at addr ... */
	const char *expect; /* ... compared with this one */
	bool found_expected;
	char other[64]; /* another name found there ("" none) */
	char bad[160]; /* a symbol no plugin may define ("" none) */
};

static const char *const forbidden_defs[] = { "__gmon_start__", "_ITM_registerTMCloneTable",
	                                      "_ITM_deregisterTMCloneTable" };

/* Reads every symbol of the tables of type @p shtype (SHT_SYMTAB, SHT_DYNSYM). */
static int scan_syms(struct img *m, uint32_t shtype, struct symscan *sc)
{
	for (unsigned i = 0; i < m->shnum; i++) {
		struct shdr sh = get_shdr(m, i);
		if (sh.type != shtype)
			continue;
		if (sh.entsize != SYM_SIZE || sh.size % SYM_SIZE || !in_file(m, sh.offset, sh.size))
			return fail(m, "malformed symbol table (section %u)", i);
		for (uint64_t at = 0; at < sh.size; at += SYM_SIZE) {
			const uint8_t *p = m->b + sh.offset + at;
			uint32_t name = (uint32_t)le_get(p, 4);
			unsigned type = ELF64_ST_TYPE(p[4]);
			uint16_t shndx = (uint16_t)le_get(p + 6, 2);
			uint64_t value = le_get(p + 8, 8);
			if (shndx == SHN_UNDEF)
				continue;
			const char *s = sec_string(m, sh.link, name);
			if (type == STT_GNU_IFUNC) {
				copy_name(sc->other, sizeof(sc->other), s ? s : "?");
				snprintf(sc->bad, sizeof(sc->bad),
				         "an IFUNC symbol '%s' (its resolver runs inside dlopen)",
				         sc->other);
				sc->other[0] = 0;
				return 0;
			}
			for (size_t f = 0;
			     s && f < sizeof(forbidden_defs) / sizeof(*forbidden_defs); f++)
				if (strcmp(s, forbidden_defs[f]) == 0) {
					snprintf(sc->bad, sizeof(sc->bad),
					         "a definition of %s (called inside dlopen)", s);
					return 0;
				}
			if (!s || !*s || value != sc->addr || !sc->expect ||
			    (type != STT_FUNC && type != STT_NOTYPE))
				continue;
			size_t el = strlen(sc->expect);
			if (el && sc->expect[el - 1] == '*' ? strncmp(s, sc->expect, el - 1) == 0
			                                    : strcmp(s, sc->expect) == 0)
				sc->found_expected = true;
			else if (!sc->other[0])
				copy_name(sc->other, sizeof(sc->other), s);
		}
	}
	return 0;
}

/* The function at @p addr (which @p what calls at load or unload) must be the toolchain's
 * @p expect; NULL @p expect: only the forbidden definitions are looked for. */
static int check_named(struct img *m, uint64_t addr, const char *expect, const char *what)
{
	struct symscan sc = { .addr = addr, .expect = expect };
	int r = scan_syms(m, SHT_DYNSYM, &sc);
	if (r == 0 && !sc.bad[0])
		r = scan_syms(m, SHT_SYMTAB, &sc);
	if (r < 0)
		return r;
	if (sc.bad[0])
		return fail(m, "has %s", sc.bad);
	if (!expect || sc.found_expected)
		return 0;
	if (sc.other[0])
		return fail(m,
		            "has a %s '%s' (only the toolchain's %s may be there): plugin code "
		            "must not run inside dlopen",
		            what, sc.other, expect);
	if (m->has_symtab)
		return fail(m,
		            "has a %s at 0x%llx that is not the toolchain's %s: plugin code must "
		            "not run inside dlopen",
		            what, U(addr), expect);
	return 0; /* stripped: nothing names it (see the top of this file) */
}

/* ---- relocations ---------------------------------------------------------------------- */

struct reltab {
	uint64_t off, size, ent;
	bool rela;
};

static int rel_tables(struct img *m, struct reltab t[3], unsigned *n)
{
	static const struct {
		int addr, size, ent;
		bool rela;
	} kinds[] = { { DT_RELA, DT_RELASZ, DT_RELAENT, true },
		      { DT_REL, DT_RELSZ, DT_RELENT, false },
		      { DT_JMPREL, DT_PLTRELSZ, -1, false } };
	*n = 0;
	for (unsigned k = 0; k < 3; k++) {
		if (!m->d[kinds[k].addr].set)
			continue;
		bool rela = kinds[k].rela;
		if (kinds[k].ent < 0) {
			if (!m->d[DT_PLTREL].set ||
			    (m->d[DT_PLTREL].v != DT_RELA && m->d[DT_PLTREL].v != DT_REL))
				return fail(m, "malformed dynamic section: DT_JMPREL without a "
				               "valid DT_PLTREL");
			rela = m->d[DT_PLTREL].v == DT_RELA;
		}
		uint64_t ent = rela ? 24 : 16, size = m->d[kinds[k].size].v;
		if ((kinds[k].ent >= 0 && m->d[kinds[k].ent].set && m->d[kinds[k].ent].v != ent) ||
		    size % ent || !vaddr_to_off(m, m->d[kinds[k].addr].v, size, &t[*n].off))
			return fail(m, "malformed relocation table at 0x%llx (0x%llx bytes)",
			            U(m->d[kinds[k].addr].v), U(size));
		t[*n].size = size;
		t[*n].ent = ent;
		t[*n].rela = rela;
		(*n)++;
	}
	return 0;
}

static uint32_t r_relative(const struct img *m)
{
	return m->machine == EM_X86_64 ? R_X86_64_RELATIVE : R_AARCH64_RELATIVE;
}

static uint32_t r_irelative(const struct img *m)
{
	return m->machine == EM_X86_64 ? R_X86_64_IRELATIVE : R_AARCH64_IRELATIVE;
}

/* No IFUNC resolver runs while relocating. */
static int check_relocs(struct img *m, const struct reltab *t, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		for (uint64_t at = 0; at < t[k].size; at += t[k].ent)
			if (ELF64_R_TYPE(le_get(m->b + t[k].off + at + 8, 8)) == r_irelative(m))
				return fail(m,
				            "has an IFUNC resolver (an IRELATIVE relocation at "
				            "0x%llx): plugin code must not run inside dlopen",
				            U(le_get(m->b + t[k].off + at, 8)));
	return 0;
}

/* Where the address stored at @p slot points once relocated. */
static int slot_target(struct img *m, const struct reltab *t, unsigned n, uint64_t slot,
                       const char *what, uint64_t *target)
{
	uint64_t off;
	if (!vaddr_to_off(m, slot, 8, &off))
		return fail(m, "has a %s entry at 0x%llx outside the file's loaded bytes", what,
		            U(slot));
	*target = le_get(m->b + off, 8); /* in place: REL, RELR, or no relocation */
	for (unsigned k = 0; k < n; k++)
		for (uint64_t at = 0; at < t[k].size; at += t[k].ent) {
			const uint8_t *r = m->b + t[k].off + at;
			if (le_get(r, 8) != slot)
				continue;
			uint32_t type = (uint32_t)ELF64_R_TYPE(le_get(r + 8, 8));
			if (type != r_relative(m))
				return fail(m,
				            "has a %s entry bound to a symbol at load (relocation "
				            "type %u): plugin code must not run inside dlopen",
				            what, type);
			if (t[k].rela)
				*target = le_get(r + 16, 8);
		}
	return 0;
}

/* A sanitized build's plugins (meson -Db_sanitize, SMOLVM_SANITIZED) get a module constructor
 * and destructor per object file that register it with the sanitizer's runtime: gcc names
 * them _sub_I_00099_N and _sub_D_00099_N, clang asan.module_ctor/dtor. Such a build tolerates
 * them besides the toolchain's entry; a normal build never does. */
#ifdef SMOLVM_SANITIZED
/* Does a function named @p pattern (a trailing '*': a prefix) sit at @p addr? */
static bool named_as(struct img *m, uint64_t addr, const char *pattern)
{
	struct symscan sc = { .addr = addr, .expect = pattern };
	if (scan_syms(m, SHT_DYNSYM, &sc) < 0 || scan_syms(m, SHT_SYMTAB, &sc) < 0)
		return false;
	return sc.found_expected && !sc.bad[0];
}
#endif

/* Is the function at @p target the sanitizer's entry of the array @p tag? */
static bool sanitizer_entry(struct img *m, uint64_t target, int tag)
{
#ifdef SMOLVM_SANITIZED
	bool init = tag == DT_INIT_ARRAY;
	return named_as(m, target, init ? "_sub_I_00099_*" : "_sub_D_00099_*") ||
	       named_as(m, target, init ? "asan.module_ctor" : "asan.module_dtor");
#else
	(void)m, (void)target, (void)tag;
	return false;
#endif
}

/* How many of the array's @p count entries are the sanitizer's (0 in a normal build). */
static uint64_t sanitizer_entries(struct img *m, const struct reltab *t, unsigned n, int tag,
                                  uint64_t count)
{
	uint64_t found = 0;
#ifdef SMOLVM_SANITIZED
	for (uint64_t i = 0; i < count; i++) {
		uint64_t target = 0;
		if (slot_target(m, t, n, m->d[tag].v + 8 * i, "", &target) == 0 &&
		    sanitizer_entry(m, target, tag))
			found++;
	}
	if (m->why && m->whylen)
		m->why[0] = 0;
#else
	(void)m, (void)t, (void)n, (void)tag, (void)count;
#endif
	return found;
}

/* The one entry an init or fini array may hold: the toolchain's @p expect. */
static int check_entry(struct img *m, uint64_t target, const char *what, const char *section,
                       const char *expect)
{
	if (!vaddr_is_code(m, target))
		return fail(m, "has a %s in %s at 0x%llx, outside the file's code", what, section,
		            U(target));
	return check_named(m, target, expect, what);
}

/* check_array() in a sanitized build with the sanitizer's entries: the others, as there. */
static int check_sanitized_array(struct img *m, const struct reltab *t, unsigned n, int tag,
                                 uint64_t count, const char *what, const char *section,
                                 const char *expect)
{
	uint64_t others = 0, other = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t target = 0;
		int r = slot_target(m, t, n, m->d[tag].v + 8 * i, section, &target);
		if (r < 0)
			return r;
		if (sanitizer_entry(m, target, tag))
			continue;
		others++;
		other = target;
	}
	if (others > 1)
		return fail(m,
		            "has %llu %ss in %s (only the toolchain's %s may be there): plugin "
		            "code must not run inside dlopen",
		            U(others), what, section, expect);
	return others ? check_entry(m, other, what, section, expect) : 0;
}

/* An init or fini array: at most one entry, the toolchain's. */
static int check_array(struct img *m, const struct reltab *t, unsigned n, int tag, int sztag,
                       const char *what, const char *section, const char *expect)
{
	if (!m->d[tag].set)
		return 0;
	if (!m->d[sztag].set || m->d[sztag].v % 8)
		return fail(m, "malformed dynamic section: %s without a valid size", section);
	uint64_t count = m->d[sztag].v / 8;
	uint64_t sanitizer = count > 1 ? sanitizer_entries(m, t, n, tag, count) : 0;
	if (sanitizer)
		return check_sanitized_array(m, t, n, tag, count, what, section, expect);
	if (count > 1)
		return fail(m,
		            "has %llu %ss in %s (only the toolchain's %s may be there): plugin "
		            "code must not run inside dlopen",
		            U(count), what, section, expect);
	if (count == 0)
		return 0;
	uint64_t target = 0;
	int r = slot_target(m, t, n, m->d[tag].v, section, &target);
	return r < 0 ? r : check_entry(m, target, what, section, expect);
}

static uint64_t array_count(const struct img *m, int tag, int sztag)
{
	return m->d[tag].set ? m->d[sztag].v / 8 : 0;
}

/* frame_dummy comes from crtbeginS.o, linked in with crti.o: a file with an .init_array entry
 * also has their __do_global_dtors_aux in .fini_array and _init as DT_INIT, or the entry is
 * someone else's (a lone constructor linked with -nostartfiles, which only this tells apart
 * in a stripped file). */
static int check_companions(struct img *m, const struct reltab *t, unsigned n)
{
	uint64_t inits = array_count(m, DT_INIT_ARRAY, DT_INIT_ARRAYSZ);
	uint64_t finis = array_count(m, DT_FINI_ARRAY, DT_FINI_ARRAYSZ);
	inits -= sanitizer_entries(m, t, n, DT_INIT_ARRAY, inits);
	finis -= sanitizer_entries(m, t, n, DT_FINI_ARRAY, finis);
	if (inits == 0)
		return 0;
	if (finis != 1 || !m->d[DT_INIT].set)
		return fail(m, "has a constructor in .init_array without the toolchain's "
		               "__do_global_dtors_aux in .fini_array and _init beside it: not "
		               "frame_dummy, plugin code must not run inside dlopen");
	return 0;
}

/* DT_INIT or DT_FINI: the start of .init or .fini, the toolchain's _init or _fini. */
static int check_func(struct img *m, int tag, const char *section, const char *expect)
{
	if (!m->d[tag].set)
		return 0;
	uint64_t addr = m->d[tag].v, sec;
	if (!vaddr_is_code(m, addr))
		return fail(m, "has a %s function at 0x%llx, outside the file's code",
		            tag == DT_INIT ? "DT_INIT" : "DT_FINI", U(addr));
	if (sec_addr(m, section, &sec) && sec != addr)
		return fail(m,
		            "has a %s function at 0x%llx, not %s at the start of %s: plugin "
		            "code must not run inside dlopen",
		            tag == DT_INIT ? "DT_INIT" : "DT_FINI", U(addr), expect, section);
	return check_named(m, addr, expect,
	                   tag == DT_INIT ? "DT_INIT function" : "DT_FINI function");
}

int plugin_elf_check(const uint8_t *buf, size_t len, char *why, size_t whylen)
{
	struct img m = { .b = buf, .len = buf ? len : 0, .why = why, .whylen = whylen };
	if (why && whylen)
		why[0] = 0;
	int r = parse_header(&m);
	if (r == 0)
		r = parse_dynamic(&m);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < m.shnum; i++)
		if (get_shdr(&m, i).type == SHT_SYMTAB)
			m.has_symtab = true;
	if (m.d[DT_PREINIT_ARRAY].set || (m.d[DT_PREINIT_ARRAYSZ].set && m.d[DT_PREINIT_ARRAYSZ].v))
		return fail(&m, "has a preinit array: plugin code must not run inside dlopen");
	struct reltab t[3];
	unsigned n;
	r = rel_tables(&m, t, &n);
	if (r == 0)
		r = check_relocs(&m, t, n);
	if (r == 0)
		r = check_array(&m, t, n, DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "constructor",
		                ".init_array", "frame_dummy");
	if (r == 0)
		r = check_array(&m, t, n, DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "destructor",
		                ".fini_array", "__do_global_dtors_aux");
	if (r == 0)
		r = check_companions(&m, t, n);
	if (r == 0)
		r = check_func(&m, DT_INIT, ".init", "_init");
	if (r == 0)
		r = check_func(&m, DT_FINI, ".fini", "_fini");
	if (r == 0)
		r = check_named(&m, 0, NULL, NULL); /* IFUNCs, __gmon_start__ and the like */
	return r;
}
