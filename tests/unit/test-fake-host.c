/*
 * Tests of the fake host itself: device tests trust it, so its checks must hold.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake-host.h"

static const struct smol_host *h = &fake_host;
static struct smol_dev *d;

static void setup(void)
{
	fake_host_init();
	d = fake_dev_new("dut");
}

TestSuite(fake_host, .init = setup, .fini = fake_host_fini);

Test(fake_host, gpa_ptr_is_checked)
{
	const uint64_t size = FAKE_RAM_SIZE;

	cr_assert_eq(h->gpa_ptr(d, 0, 1), fake_ram());
	cr_assert_eq(h->gpa_ptr(d, 0, size), fake_ram());
	cr_assert_eq(h->gpa_ptr(d, size - 1, 1), fake_ram() + size - 1);
	cr_assert_eq(h->gpa_ptr(d, size - 16, 16), fake_ram() + size - 16);
	cr_assert_null(h->gpa_ptr(d, size - 16, 17));
	cr_assert_null(h->gpa_ptr(d, size, 1));
	cr_assert_null(h->gpa_ptr(d, 0, size + 1));
	cr_assert_null(h->gpa_ptr(d, size, 0));
	cr_assert_null(h->gpa_ptr(d, 16, UINT64_MAX), "gpa + len overflows");
	cr_assert_null(h->gpa_ptr(d, UINT64_MAX, 2), "gpa + len overflows");
	cr_assert_null(h->gpa_ptr(d, UINT64_MAX - 15, 16));
}

Test(fake_host, config_getters)
{
	const char *s;
	uint64_t v;
	int b;

	fake_cfg_set(d, "hex", "0x3F8");
	fake_cfg_set(d, "oct", "0o17");
	fake_cfg_set(d, "bin", "0b101");
	fake_cfg_set(d, "dec", "18446744073709551615");
	fake_cfg_set(d, "big", "18446744073709551616");
	fake_cfg_set(d, "bad", "12abc");
	fake_cfg_set(d, "bool", "Yes");
	fake_cfg_set(d, "size", "64M");
	fake_cfg_set(d, "name", "value");
	cr_assert_eq(h->cfg_u64(d, "hex", 0, &v), 0);
	cr_assert_eq(v, 0x3f8);
	cr_assert_eq(h->cfg_u64(d, "oct", 0, &v), 0);
	cr_assert_eq(v, 15);
	cr_assert_eq(h->cfg_u64(d, "bin", 0, &v), 0);
	cr_assert_eq(v, 5);
	cr_assert_eq(h->cfg_u64(d, "dec", 0, &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(h->cfg_u64(d, "absent", 42, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(fake_cfg_errors(), 0);
	cr_assert_eq(h->cfg_u64(d, "big", 0, &v), -EINVAL);
	cr_assert_eq(h->cfg_u64(d, "bad", 0, &v), -EINVAL);
	cr_assert(fake_cfg_error_about("big") && fake_cfg_error_about("bad"));
	cr_assert_eq(h->cfg_bool(d, "bool", 0, &b), 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(h->cfg_size(d, "size", 0, &v), 0);
	cr_assert_eq(v, 64ull << 20);
	cr_assert_eq(h->cfg_str(d, "name", "def", &s), 0);
	cr_assert_str_eq(s, "value");
	cr_assert_null(fake_cfg_unread(d));
	fake_cfg_set(d, "later", "1");
	cr_assert_str_eq(fake_cfg_unread(d), "later");
}

static uint64_t last_off;
static unsigned last_size;

static uint64_t io_read(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque;
	last_off = off;
	last_size = size;
	return 0x1122334455667788ull;
}

static const struct smol_io_ops io_ops = { .read = io_read };

Test(fake_host, bus_ranges)
{
	uint64_t base;

	cr_assert_eq(h->map_pio(d, 0x60, 5, &io_ops, NULL), 0);
	cr_assert_eq(h->map_pio(d, 0x64, 1, &io_ops, NULL), -EEXIST);
	cr_assert_eq(h->map_pio(d, 0xfffe, 4, &io_ops, NULL), -EINVAL);
	cr_assert_eq(fake_pio_read(0x62, 2), 0x7788);
	cr_assert_eq(last_off, 2);
	cr_assert_eq(last_size, 2);
	cr_assert_eq(fake_pio_read(0x70, 4), 0xffffffff, "unmapped reads all ones");
	cr_assert_eq(h->map_mmio(d, SMOL_ADDR_AUTO, 0x200, &io_ops, NULL, &base), 0);
	cr_assert_eq(base, FAKE_MMIO_AUTO_BASE);
	cr_assert_eq(h->map_mmio(d, SMOL_ADDR_AUTO, 0x200, &io_ops, NULL, &base), 0);
	cr_assert_geq(base, FAKE_MMIO_AUTO_BASE + 0x200);
	cr_assert_eq(fake_mmio_read(base + 8, 8), 0x1122334455667788ull);
	cr_assert_eq(h->map_mmio(d, UINT64_MAX - 0xf, 0x20, &io_ops, NULL, NULL), -EINVAL);
	cr_assert_eq(fake_maps(), 3);
}

Test(fake_host, irq_lines)
{
	struct smol_dev *other = fake_dev_new("other");

	cr_assert_eq(h->irq_claim(d, 5), 0);
	cr_assert_eq(h->irq_claim(other, 5), -EBUSY);
	cr_assert_eq(h->irq_set(d, 5, 1), 0);
	cr_assert_eq(h->irq_set(d, 5, 1), 0);
	cr_assert_eq(fake_irq_rises(5), 1, "a level held is one edge");
	cr_assert_eq(h->irq_set(d, 5, 0), 0);
	cr_assert_eq(h->irq_pulse(d, 5), 0);
	cr_assert_eq(fake_irq_rises(5), 2);
	cr_assert_eq(fake_irq_level(5), 0);
	cr_assert_eq(fake_irq_misuse(), 0);
	cr_assert_eq(h->irq_set(other, 5, 1), -EINVAL);
	cr_assert_eq(fake_irq_misuse(), 1);
}

static int fired;

static void on_fd(void *opaque, int fd, uint32_t events)
{
	(void)opaque;
	(void)fd;
	fired += (int)events;
}

Test(fake_host, fd_watches_exit_and_log)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(h->fd_watch(d, p[0], SMOL_FD_IN, on_fd, NULL), 0);
	cr_assert_eq(h->fd_watch(d, p[0], SMOL_FD_IN, on_fd, NULL), -EEXIST);
	cr_assert_eq(fake_fd_fire_ready(p[0], 0), -ETIMEDOUT);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(fake_fd_fire_ready(p[0], 1000), 0);
	cr_assert_eq(fired, SMOL_FD_IN);
	cr_assert_eq(h->fd_unwatch(d, p[0]), 0);
	cr_assert_eq(fake_fd_fire(p[0], SMOL_FD_IN), -ENOENT);
	h->request_exit(d, 3);
	cr_assert_eq(fake_exit_requests(), 1);
	cr_assert_eq(fake_exit_status(), 3);
	h->log(d, SMOL_LOG_WARN, "hello %d", 42);
	cr_assert(fake_log_contains("[dut] warn: hello 42"));
	close(p[0]);
	close(p[1]);
}

static unsigned writes;

static void io_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	(void)opaque, (void)off, (void)size, (void)value;
	writes++;
}

static const struct smol_io_ops wio_ops = { .write = io_write };

Test(fake_host, ioeventfds_refused_unless_accepted)
{
	struct smol_dev *other = fake_dev_new("other");
	int fd = eventfd(0, EFD_NONBLOCK);
	uint64_t base, n = 0;

	cr_assert_geq(fd, 0);
	cr_assert_eq(h->map_mmio(d, SMOL_ADDR_AUTO, 0x200, &wio_ops, NULL, &base), 0);
	cr_assert_eq(h->ioeventfd(d, base + 0x50, 4, SMOL_IOEVENT_DATAMATCH, 0, fd), -ENOTSUP);
	fake_ioeventfd_accept(true);
	cr_assert_eq(h->ioeventfd(other, base + 0x50, 4, 0, 0, fd), -EINVAL, "not its range");
	cr_assert_eq(h->ioeventfd(d, base + 0x1fe, 4, 0, 0, fd), -EINVAL, "past its range");
	cr_assert_eq(h->ioeventfd(d, base + 0x50, 3, 0, 0, fd), -EINVAL);
	cr_assert_eq(h->ioeventfd(d, base + 0x50, 4, SMOL_IOEVENT_DATAMATCH, 0, fd), 0);
	cr_assert_eq(fake_ioeventfd_fd(base + 0x50), fd);
	cr_assert_eq(fake_ioeventfd_fd(base + 0x54), -1);
	/* a matching write signals the eventfd instead of reaching the handler */
	fake_mmio_write(base + 0x50, 4, 0);
	fake_mmio_write(base + 0x50, 4, 0);
	cr_assert_eq(writes, 0);
	cr_assert_eq(read(fd, &n, sizeof(n)), (ssize_t)sizeof(n));
	cr_assert_eq(n, 2);
	/* another value, or another width, does reach it */
	fake_mmio_write(base + 0x50, 4, 1);
	fake_mmio_write(base + 0x50, 2, 0);
	cr_assert_eq(writes, 2);
	cr_assert_eq(read(fd, &n, sizeof(n)), -1, "nothing more signalled");
	close(fd);
}

static void *gpa_lookup(void *opaque)
{
	(void)opaque;
	return h->gpa_ptr(d, 0x1000, 16);
}

Test(fake_host, gpa_hold_blocks_that_range_only)
{
	pthread_t t;
	void *p;

	fake_gpa_hold(0x1000, 16);
	cr_assert_eq(h->gpa_ptr(d, 0x1000, 32), fake_ram() + 0x1000, "another length passes");
	cr_assert_eq(h->gpa_ptr(d, 0x1010, 16), fake_ram() + 0x1010);
	cr_assert_eq(fake_gpa_held(), 0);
	cr_assert_eq(pthread_create(&t, NULL, gpa_lookup, NULL), 0);
	cr_assert(fake_gpa_wait_held(5000));
	cr_assert_eq(fake_gpa_held(), 1);
	fake_gpa_release();
	cr_assert_eq(pthread_join(t, &p), 0);
	cr_assert_eq(p, fake_ram() + 0x1000);
	cr_assert_eq(fake_gpa_held(), 0);
	cr_assert_not(fake_gpa_wait_held(10));
}
