/*
 * A small virtio-mmio driver for the virtio-blk unit tests (test-virtio-blk.c and
 * test-virtio-blk-snap.c), through the fake host: the handshake, requests on a 16-entry
 * queue in the fake guest RAM, image files in a temporary folder.
 *
 * Synchronous requests (the handler serves them) and the I/O thread's way: the fake host
 * accepts the ioeventfd, the disk serves its queue on a thread of its own, a QueueNotify
 * write (or a write to the eventfd) only wakes it, and completion is awaited by polling the
 * used index. Indices the two sides share are read and written with atomics, as a driver
 * does, so that ThreadSanitizer (-Db_sanitize=thread) sees the ring's own ordering. Request
 * @slot (0..4) uses descriptors 3 * slot.., a header at HDR + 32 * slot, data at
 * DATA + 64 KiB * slot and its status byte at STATUS + slot.
 */
#ifndef SMOLVM_TEST_BLK_DRIVER_H
#define SMOLVM_TEST_BLK_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake-host.h"
#include "virtio.h"

#define BASE FAKE_MMIO_AUTO_BASE
#define IRQ 5
#define QSIZE 16
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define HDR 0x10000
#define DATA 0x100000
#define STATUS 0x20000
#define DISK_SIZE (1u << 20)

#define F_SEG_MAX 2
#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define F_DISCARD 13
#define F_WRITE_ZEROES 14
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define TSLOTS 5
#define TDATA(slot) (DATA + 0x10000ull * (slot))
#define TIMEOUT_MS 5000

extern const struct smol_plugin_desc *plugin;
extern struct smol_dev *dev; /* the device create_dev() or create_up() made last */
extern uint16_t avail_idx; /* the driver's next avail index */
extern uint64_t base; /* MMIO base rd() and wr() use */
extern uint8_t *ram;
extern int kick_fd; /* the ioeventfd on QueueNotify (create_threaded) */

/* Criterion .init and .fini: fresh fake host, the plugin loaded, a temporary folder. */
void blk_setup(void);
void blk_teardown(void);

char *tmp_path(const char *name);
/* An image of DISK_SIZE bytes: byte i is (i / 512 + i) & 0xff, fully allocated. */
void make_image(const char *name);
void read_image(const char *name, uint64_t off, void *buf, size_t len);

/* Creates a disk from key/value pairs ending in NULL. */
int create_dev(const char *name, ...);
uint32_t rd(uint64_t off);
void wr(uint64_t off, uint32_t v);
uint64_t device_features(void);
/* What Linux's virtio_mmio + virtio_blk do, accepting every feature offered. */
void driver_up(void);
/* Creates "vda" on @image (more key/value pairs ending in NULL) and brings the driver up. */
void create_up(const char *image, ...);
/* The same with the fake host taking the ioeventfd: the disk serves on its I/O thread. */
void create_threaded(void);

void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
uint16_t get16(uint64_t gpa);
void fill(uint8_t *p, size_t len, uint8_t seed);

uint16_t used_now(void);
/* Chain @slot into the avail ring (not yet published). */
void tput(unsigned slot, uint32_t type, uint64_t sector, uint32_t len, bool in);
/* Makes what tput() queued visible (used_event: interrupt on the next completion). */
void tpublish(void);
/* Writes the kick eventfd (the ioeventfd's, or the self-kick's without the thread). */
void tkick(void);
void sleep_us(long us);
/* Until the used index reaches @target (wrapping), at most @ms milliseconds. */
bool wait_used(uint16_t target, int ms);
uint32_t used_len(uint16_t i);
/*
 * Four FLUSH requests sharing one 32-byte header buffer, published and kicked, with the I/O
 * thread held inside the first (fake_gpa_hold(HDR, 16)), its transport lock released.
 */
void four_flushes_held(void);

#endif
