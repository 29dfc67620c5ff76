/*
 * virtio-blk: one request never holds a reset for long (issue 18, finding 6). A WRITE_ZEROES
 * without UNMAP may cover 16 segments of 2 GiB; served on the I/O thread in chunks, it ends
 * early when the driver resets the device, and the reset returns after one chunk instead of
 * after 32 GiB. The image is sparse: what was written shows in its allocated blocks.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <endian.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk-driver.h"

TestSuite(blk_cancel, .init = blk_setup, .fini = blk_teardown, .timeout = 60);

#define SEGS 16
#define SEG_SECTORS (1u << 22) /* 2 GiB: the device's max_write_zeroes_sectors */
#define IMAGE_SIZE ((uint64_t)SEGS * SEG_SECTORS * 512)

static uint64_t allocated(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

Test(blk_cancel, reset_ends_a_32_gib_write_zeroes_early)
{
	const char *img = tmp_path("big.img");
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)IMAGE_SIZE), 0);
	close(fd);
	fake_ioeventfd_accept(true);
	create_up("big.img", NULL);
	kick_fd = fake_ioeventfd_fd(base + VIRTIO_MMIO_QUEUE_NOTIFY);
	cr_assert_geq(kick_fd, 0, "no ioeventfd: %s", fake_log());
	cr_assert_eq(rd(0x130), SEG_SECTORS, "max_write_zeroes_sectors");

	/* 16 segments { le64 sector; le32 num_sectors; le32 flags = 0 (no unmap) } */
	for (unsigned i = 0; i < SEGS; i++) {
		uint64_t sector = htole64((uint64_t)i * SEG_SECTORS);
		uint32_t num = htole32(SEG_SECTORS), flags = 0;

		memcpy(ram + TDATA(0) + 16 * i, &sector, 8);
		memcpy(ram + TDATA(0) + 16 * i + 8, &num, 4);
		memcpy(ram + TDATA(0) + 16 * i + 12, &flags, 4);
	}
	uint16_t before = used_now();
	tput(0, T_WRITE_ZEROES, 0, 16 * SEGS, false);
	tpublish();
	tkick();
	/* the request is under way: the image fills */
	for (int i = 0; i < 2000 && allocated(img) < (16u << 20); i++)
		sleep_us(5000);
	cr_assert_geq(allocated(img), 16u << 20, "the write did not start: %s", fake_log());

	wr(VIRTIO_MMIO_STATUS, 0); /* returns once the request in hand has ended */
	uint64_t done = allocated(img);
	cr_assert_lt(done, IMAGE_SIZE / 4,
	             "the reset waited for %llu MiB of zeroes: the request was not cut short",
	             (unsigned long long)(done >> 20));
	/* (the request cut short may be completed with IOERR before the reset: the driver
	 * reset the device and throws the ring away) */
	(void)before;
	/* and the device works after the reset */
	memset(ram + AVAIL, 0, 0x1000); /* fresh rings, as a driver sets them up */
	memset(ram + USED, 0, 0x1000);
	driver_up();
	avail_idx = 0;
	tput(0, T_FLUSH, 0, 0, false);
	tpublish();
	tkick();
	cr_assert(wait_used(1, TIMEOUT_MS), "no request served after the reset");
	cr_assert_eq(ram[STATUS], S_OK);
}
