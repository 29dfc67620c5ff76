/* loader-elf.c: ELF64 x86-64 executables, loaded by their PT_LOAD segments (to p_paddr),
 * every segment bounds-checked against guest RAM and the boot area. An executable with a Xen
 * XEN_ELFNOTE_PHYS32_ENTRY note (Linux vmlinux, the guest kit) boots through PVH at the note's
 * 32-bit entry; others at e_entry in 64-bit mode. */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "boot.h"
#include "machine.h"

static int elf_probe(const struct boot_file *f)
{
	return f->size >= sizeof(Elf64_Ehdr) && memcmp(f->data, ELFMAG, SELFMAG) == 0;
}

#define U(x) ((unsigned long long)(x))

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define ALIGN_UP(x, a) (((uint64_t)(x) + (a)-1) & ~((uint64_t)(a)-1))

/* Scans one PT_NOTE segment for the PVH entry: 1 found (*entry), 0 not there, -EINVAL bad. */
static int elf_note_segment(const struct boot_file *f, unsigned i, const Elf64_Phdr *ph,
                            uint64_t *entry)
{
	if (ph->p_offset > f->size || ph->p_filesz > f->size - ph->p_offset)
		return boot_fail(f, "note segment %u: bytes at 0x%llx run past the file", i,
		                 U(ph->p_offset));
	const uint8_t *p = f->data + ph->p_offset;
	uint64_t end = ph->p_filesz, off = 0, align = ph->p_align == 8 ? 8 : 4;
	while (off < end) {
		Elf64_Nhdr nh;
		if (end - off < sizeof(nh))
			return boot_fail(f, "note segment %u: truncated note header at 0x%llx", i,
			                 U(ph->p_offset + off));
		memcpy(&nh, p + off, sizeof(nh));
		/* the gABI layout: name after the header, descriptor and next note aligned */
		uint64_t name = off + sizeof(nh);
		uint64_t desc = ALIGN_UP(name + nh.n_namesz, align);
		if (desc > end || nh.n_descsz > end - desc)
			return boot_fail(
			        f,
			        "note segment %u: note at 0x%llx (n_namesz %u, n_descsz %u) "
			        "runs past the segment",
			        i, U(ph->p_offset + off), nh.n_namesz, nh.n_descsz);
		if (nh.n_namesz == 4 && memcmp(p + name, "Xen", 4) == 0 &&
		    nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY) {
			uint64_t v = 0;
			if (nh.n_descsz != 4 && nh.n_descsz != 8)
				return boot_fail(
				        f,
				        "PVH note (Xen XEN_ELFNOTE_PHYS32_ENTRY) has n_descsz "
				        "%u, expected 4 or 8",
				        nh.n_descsz);
			memcpy(&v, p + desc, nh.n_descsz); /* little-endian */
			if (v >= (4ull << 30))
				return boot_fail(
				        f,
				        "PVH entry 0x%llx (XEN_ELFNOTE_PHYS32_ENTRY) is not a "
				        "32-bit address",
				        U(v));
			*entry = v;
			return 1;
		}
		off = ALIGN_UP(desc + nh.n_descsz, align);
	}
	return 0;
}

/* The PVH entry from the first XEN_ELFNOTE_PHYS32_ENTRY note: 1 found, 0 none, -EINVAL. */
static int elf_find_pvh_entry(const struct boot_file *f, const Elf64_Ehdr *eh, uint64_t *entry)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, f->data + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_NOTE)
			continue;
		int r = elf_note_segment(f, i, &ph, entry);
		if (r != 0)
			return r;
	}
	return 0;
}

static int elf_load(struct machine *m, const struct boot_file *f, struct boot_result *out)
{
	Elf64_Ehdr eh;
	memcpy(&eh, f->data, sizeof(eh));

	if (eh.e_ident[EI_CLASS] != ELFCLASS64)
		return boot_fail(f, "not a 64-bit ELF (EI_CLASS %llu)", U(eh.e_ident[EI_CLASS]));
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return boot_fail(f, "not a little-endian ELF (EI_DATA %llu)",
		                 U(eh.e_ident[EI_DATA]));
	if (eh.e_machine != EM_X86_64)
		return boot_fail(f, "ELF e_machine %llu is not x86-64 (%d)", U(eh.e_machine),
		                 EM_X86_64);
	if (eh.e_type != ET_EXEC)
		return boot_fail(f,
		                 "ELF e_type %llu is not ET_EXEC (%d): link it statically, non-PIE",
		                 U(eh.e_type), ET_EXEC);
	if (eh.e_phentsize != sizeof(Elf64_Phdr))
		return boot_fail(f, "ELF e_phentsize %llu, expected %zu", U(eh.e_phentsize),
		                 sizeof(Elf64_Phdr));
	if (eh.e_phoff > f->size ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > f->size - eh.e_phoff)
		return boot_fail(
		        f, "ELF program headers (e_phoff 0x%llx, e_phnum %llu) run past the file",
		        U(eh.e_phoff), U(eh.e_phnum));

	uint64_t pvh_entry = 0;
	int pvh = elf_find_pvh_entry(f, &eh, &pvh_entry);
	if (pvh < 0)
		return pvh;

	uint64_t lo = UINT64_MAX, hi = 0, entry = UINT64_MAX;
	int loads = 0, pvh_inside = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, f->data + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz)
			return boot_fail(f, "segment %u: p_filesz larger than p_memsz (0x%llx)", i,
			                 U(ph.p_memsz));
		if (ph.p_offset > f->size || ph.p_filesz > f->size - ph.p_offset)
			return boot_fail(f, "segment %u: file bytes at 0x%llx run past the file", i,
			                 U(ph.p_offset));
		if (ph.p_paddr + ph.p_memsz < ph.p_paddr)
			return boot_fail(f, "segment %u: p_paddr 0x%llx + p_memsz overflows", i,
			                 U(ph.p_paddr));
		if (ph.p_paddr + ph.p_memsz > (4ull << 30))
			return boot_fail(
			        f,
			        "segment %u at 0x%llx ends above 4 GiB, outside the identity "
			        "map the entry state provides",
			        i, U(ph.p_paddr));
		if (ph.p_paddr < BOOT_PAYLOAD_MIN)
			return boot_fail(f,
			                 "segment %u at 0x%llx overlaps the boot area below 1 MiB",
			                 i, U(ph.p_paddr));
		uint8_t *dst = mem_gpa_ptr(&m->mem, ph.p_paddr, ph.p_memsz);
		if (!dst) {
			fprintf(stderr,
			        "%s: segment %u (0x%llx-0x%llx) does not fit in guest RAM "
			        "(memory = %llu MiB)\n",
			        f->path, i, (unsigned long long)ph.p_paddr,
			        (unsigned long long)(ph.p_paddr + ph.p_memsz - 1),
			        (unsigned long long)(m->ram_size >> 20));
			return -EINVAL;
		}
		memcpy(dst, f->data + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr < lo)
			lo = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
		/* the entry is a virtual address: translate it through its segment */
		if (eh.e_entry >= ph.p_vaddr && eh.e_entry - ph.p_vaddr < ph.p_memsz)
			entry = ph.p_paddr + (eh.e_entry - ph.p_vaddr);
		/* the PVH entry is physical */
		if (pvh_entry >= ph.p_paddr && pvh_entry - ph.p_paddr < ph.p_memsz)
			pvh_inside = 1;
		loads++;
	}
	if (!loads)
		return boot_fail(f, "no loadable (PT_LOAD) segments");
	if (pvh && !pvh_inside)
		return boot_fail(f,
		                 "PVH entry 0x%llx (XEN_ELFNOTE_PHYS32_ENTRY) is not inside any "
		                 "loadable segment",
		                 U(pvh_entry));
	if (!pvh && entry == UINT64_MAX)
		return boot_fail(f, "entry point 0x%llx is not inside any loadable segment",
		                 U(eh.e_entry));
	out->entry = pvh ? pvh_entry : entry;
	out->entry_kind = pvh ? BOOT_ENTRY_PVH : BOOT_ENTRY_64;
	out->image_lo = lo;
	out->image_hi = hi;
	out->format = pvh ? "ELF64 (PVH)" : "ELF64";
	out->setup_len = 0;
	return 0;
}

const struct boot_loader boot_loader_elf64 = {
	.name = "ELF64",
	.probe = elf_probe,
	.load = elf_load,
};
