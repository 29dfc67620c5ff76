/* snapfile.h: the .smolmachine file: a header, checksummed sections, and guest RAM as a sparse,
 * page-aligned memory section that a restore maps MAP_PRIVATE (pages come in on demand and stay
 * shared between clones). Knows nothing of machines: the core (snapshot.c) decides what goes in
 * each section. The format, byte by byte, is in README ("The .smolmachine file") and in
 * snapfile-int.h; checksums are XXH3_64bits (libxxhash). A section of a type this build does not
 * know is refused, not skipped (it may hold state the machine needs): new types come with a new
 * format version.
 *
 * Writing: snapfile_create() opens a temporary file beside the target; sections are added
 * (memory last); snapfile_commit() writes the header, fsyncs, renames it over the target and
 * fsyncs the folder, so a crash while saving leaves the previous file. snapfile_abort() removes
 * the temporary file.
 *
 * Reading: snapfile_open() verifies the header, every section but memory (each one's checksum)
 * and the memory section's extent, and keeps the small sections in memory; a restore then maps
 * memory with snapfile_map_memory(). snapfile_check() reads and verifies every byte.
 *
 * Errors are reported into @p err as one line naming the file and, for a damaged file, the
 * section ("app.smolmachine: section 'device com1': checksum mismatch"). */
#ifndef SMOLVM_SNAPFILE_H
#define SMOLVM_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <smolvm/sdk.h>

/** The first 8 bytes of every .smolmachine file. */
#define SNAPFILE_MAGIC "SMOLMACH"
/** The format version this build writes; it reads this one and every older one it knows. */
#define SNAPFILE_VERSION 1
/** Longest section name, NUL included. */
#define SNAPFILE_NAME_MAX 48

/** What a section holds. */
enum snap_section_type {
	SNAP_SEC_MACHINE = 1, /**< the resolved machine description (INI text), name "" */
	SNAP_SEC_CORE = 2, /**< the core's own state (IRQ levels, run state), name "" */
	SNAP_SEC_VM = 3, /**< the backend's VM blob, name "" */
	SNAP_SEC_VCPU = 4, /**< a backend vCPU blob, name "0", "1", ... */
	SNAP_SEC_DEVICE = 5, /**< a device's state, name: the INI device name */
	SNAP_SEC_MEMORY = 6, /**< guest RAM, name "" (added with snapfile_add_memory) */
	/** The memory section's per-chunk checksums, name "" (written by snapfile_add_memory). */
	SNAP_SEC_MEMORY_SUMS = 7,
};

/** What the header says besides the sections. */
struct snap_info {
	uint32_t format_version; /**< SNAPFILE_VERSION when written */
	uint32_t arch; /**< enum smol_arch */
	char smolvm_version[32]; /**< the smolvm that wrote it, NUL-terminated */
	char backend[32]; /**< the backend plugin's name, NUL-terminated */
	struct smol_x86_cpu_info cpu; /**< SMOL_ARCH_X86_64: what the guest was shown */
	uint64_t ram_size; /**< bytes of guest RAM in the memory section */
	uint64_t created_ns; /**< CLOCK_REALTIME when written */
};

struct snap_writer;
struct snap_reader;

/**
 * Starts writing @p path (through a temporary file .NAME.tmp.PID.RANDOM in the same folder, mode
 * 0600). @p info's format_version is ignored; a created_ns of 0 becomes the time now.
 * 0, or a negative errno with @p err filled in.
 */
int snapfile_create(struct snap_writer **w, const char *path, const struct snap_info *info,
                    char *err, size_t errlen);
/** Adds a section (copied). Not after the memory section. 0 or a negative errno (@p err). */
int snapfile_add(struct snap_writer *w, uint32_t type, const char *name, const void *data,
                 size_t len, char *err, size_t errlen);
/**
 * Adds guest RAM: @p size bytes at @p ram (the host mapping of all of RAM, in guest_mem order),
 * pages of zeros left as holes. @p memfd, when not -1, is the memfd behind @p ram: only its
 * data extents (SEEK_DATA) are read, so untouched RAM costs nothing. @p size must be the
 * info's ram_size (a multiple of 4096); a snapshot whose ram_size is 0 has no memory. Also
 * adds the SNAP_SEC_MEMORY_SUMS section. 0 or a negative errno; after an error, only
 * snapfile_abort() (snapfile_commit() refuses).
 */
int snapfile_add_memory(struct snap_writer *w, const uint8_t *ram, uint64_t size, int memfd,
                        char *err, size_t errlen);
/**
 * Writes the header, fsyncs, renames over the target, fsyncs the folder; frees @p w, and on
 * failure removes the temporary file (the target is untouched unless the folder's fsync failed).
 */
int snapfile_commit(struct snap_writer *w, char *err, size_t errlen);
/** Removes the temporary file and frees @p w. */
void snapfile_abort(struct snap_writer *w);

/** True when @p path starts with SNAPFILE_MAGIC (how `smolvm run` tells a snapshot). */
int snapfile_is_snapshot(const char *path);

/**
 * Opens and verifies @p path as a restore needs: the header, every non-memory section and
 * the memory section's extent. 0, -EINVAL (not a snapshot, corrupt, truncated), -ENOTSUP (a
 * newer format), another negative errno (I/O); @p err says which and why.
 */
int snapfile_open(struct snap_reader **r, const char *path, char *err, size_t errlen);
const struct snap_info *snapfile_info(const struct snap_reader *r);
/**
 * Section (@p type, @p name): 0 with its bytes (valid until snapfile_close), -ENOENT when the
 * file has none. Not for the memory section.
 */
int snapfile_section(const struct snap_reader *r, uint32_t type, const char *name,
                     const void **data, size_t *len);
/** Calls @p fn for every section of @p type, in file order (devices, vCPUs). */
void snapfile_each(const struct snap_reader *r, uint32_t type,
                   void (*fn)(void *opaque, const char *name, const void *data, size_t len),
                   void *opaque);
/**
 * Maps the memory section MAP_PRIVATE (PROT_READ|PROT_WRITE, MAP_NORESERVE): *@p host is the
 * mapping of snapfile_info()->ram_size bytes, to munmap() when done. The file's fd is kept
 * only by the mapping. 0 or a negative errno (@p err).
 */
int snapfile_map_memory(struct snap_reader *r, void **host, char *err, size_t errlen);
void snapfile_close(struct snap_reader *r);

/**
 * `smolvm check FILE.smolmachine`: reads and verifies every byte of @p path (header, every
 * section, padding, memory holes included) and prints a summary of its sections to @p out (the
 * caller says whether it is ok). 0, or -EINVAL after naming in @p err the first section that is
 * wrong (-ENOTSUP for a newer format, another negative errno for I/O, as snapfile_open).
 */
int snapfile_check(const char *path, FILE *out, char *err, size_t errlen);

#endif
