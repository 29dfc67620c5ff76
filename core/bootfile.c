/* bootfile.c: reading a payload file ([boot] kernel, initrd) for any arch's loaders. */
#include "bootfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int boot_read_file(const char *path, struct boot_file *f)
{
	struct stat st;
	/* O_NONBLOCK: a FIFO put in the kernel's place fails below instead of waiting for a
	 * writer; the file is only used through this fd, so what was checked is what is read */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	f->path = path;
	f->data = NULL;
	f->size = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	if (st.st_size > (off_t)2 << 30) {
		close(fd);
		return -EFBIG;
	}
	f->size = (size_t)st.st_size;
	f->data = malloc(f->size ? f->size : 1);
	if (!f->data) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < f->size) {
		ssize_t n = read(fd, f->data + got, f->size - got);
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			boot_file_free(f);
			return -e;
		}
		got += (size_t)n;
	}
	close(fd);
	return 0;
}

void boot_file_free(struct boot_file *f)
{
	free(f->data);
	f->data = NULL;
	f->size = 0;
}
