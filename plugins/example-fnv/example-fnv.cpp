/*
 * example-fnv: a custom device written in C++17 against the installed smolvm SDK only.
 * Build it out of tree:  make -C plugins/example-fnv   (uses pkg-config smolvm-sdk)
 *
 * It hashes what the guest writes (32-bit FNV-1a). Guest interface, 16 I/O ports at `port`
 * (default 0x520):
 *   +0  (8-bit)   write: one byte into the hash
 *   +4  (32-bit)  read: the hash so far
 *   +8  (any)     write: start over
 *   +12 (32-bit)  read: how many bytes were hashed
 * Keys: port (default 0x520).
 *
 * Snapshots (SDK 1.3): the state is the hash and the count of bytes hashed, written field by
 * field at fixed width, little-endian (never the object's bytes: its layout is the compiler's).
 *   version 1:  u32 hash, u32 count
 *
 * C++ rules at the ABI: the entry points are plain functions with C linkage types, nothing
 * throws across them (new is nothrow), and no static object with a constructor exists, so
 * dlopen runs no plugin code before the loader has checked the descriptor.
 */
#include <cerrno>
#include <cstdint>
#include <new>

#include <smolvm/sdk.h>

namespace
{

class Fnv1a
{
      public:
	void reset() noexcept
	{
		hash_ = kOffsetBasis;
		count_ = 0;
	}
	void feed(std::uint8_t byte) noexcept
	{
		hash_ = (hash_ ^ byte) * kPrime;
		++count_;
	}
	std::uint32_t hash() const noexcept
	{
		return hash_;
	}
	std::uint32_t count() const noexcept
	{
		return count_;
	}
	void restore(std::uint32_t hash, std::uint32_t count) noexcept
	{
		hash_ = hash;
		count_ = count;
	}

      private:
	static constexpr std::uint32_t kOffsetBasis = 2166136261u;
	static constexpr std::uint32_t kPrime = 16777619u;
	std::uint32_t hash_ = kOffsetBasis;
	std::uint32_t count_ = 0;
};

struct FnvDevice {
	const smol_host *host = nullptr;
	smol_dev *dev = nullptr;
	Fnv1a fnv;
};

std::uint64_t fnv_read(void *opaque, std::uint64_t offset, unsigned)
{
	auto *d = static_cast<FnvDevice *>(opaque);
	switch (offset) {
	case 4: return d->fnv.hash();
	case 12: return d->fnv.count();
	default: return 0;
	}
}

void fnv_write(void *opaque, std::uint64_t offset, unsigned, std::uint64_t value)
{
	auto *d = static_cast<FnvDevice *>(opaque);
	if (offset == 0)
		d->fnv.feed(static_cast<std::uint8_t>(value));
	else if (offset == 8)
		d->fnv.reset();
}

const smol_io_ops fnv_io = { fnv_read, fnv_write };

constexpr std::uint32_t kStateVersion = 1;

int fnv_create(const smol_host *host, smol_dev *dev, std::uint32_t, void **state)
{
	std::uint64_t port = 0;
	if (host->cfg_u64(dev, "port", 0x520, &port) < 0)
		return -EINVAL;
	if (port > 0xfff0) {
		host->cfg_error(dev, "port", "0x%llx leaves no room for 16 ports",
		                static_cast<unsigned long long>(port));
		return -EINVAL;
	}
	auto *d = new (std::nothrow) FnvDevice;
	if (!d)
		return -ENOMEM;
	d->host = host;
	d->dev = dev;
	*state = d;
	return host->map_pio(dev, static_cast<std::uint16_t>(port), 16, &fnv_io, d);
}

void fnv_reset(void *state)
{
	static_cast<FnvDevice *>(state)->fnv.reset();
}

void fnv_destroy(void *state)
{
	delete static_cast<FnvDevice *>(state);
}

int put_le32(const FnvDevice *d, smol_snap_writer *w, std::uint32_t v)
{
	const std::uint8_t b[4] = { static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
		                    static_cast<std::uint8_t>(v >> 16),
		                    static_cast<std::uint8_t>(v >> 24) };
	return d->host->snap_write(w, b, sizeof(b));
}

int get_le32(const FnvDevice *d, smol_snap_reader *r, std::uint32_t *v)
{
	std::uint8_t b[4];
	int ret = d->host->snap_read(r, b, sizeof(b));
	if (ret)
		return ret;
	*v = std::uint32_t{ b[0] } | std::uint32_t{ b[1] } << 8 | std::uint32_t{ b[2] } << 16 |
	     std::uint32_t{ b[3] } << 24;
	return 0;
}

int fnv_save(void *state, smol_snap_writer *w)
{
	const auto *d = static_cast<FnvDevice *>(state);
	d->host->snap_set_version(w, kStateVersion);
	int ret = put_le32(d, w, d->fnv.hash());
	return ret ? ret : put_le32(d, w, d->fnv.count());
}

int fnv_load(void *state, smol_snap_reader *r)
{
	auto *d = static_cast<FnvDevice *>(state);
	std::uint32_t version = d->host->snap_version(r), hash = 0, count = 0;
	if (version > kStateVersion) {
		d->host->log(d->dev, SMOL_LOG_ERROR,
		             "state version %u is newer than this plugin's %u: upgrade the plugin",
		             version, kStateVersion);
		return -ENOTSUP;
	}
	if (version < 1) {
		d->host->log(d->dev, SMOL_LOG_ERROR, "state version %u does not exist", version);
		return -EINVAL;
	}
	int ret = get_le32(d, r, &hash);
	if (ret == 0)
		ret = get_le32(d, r, &count);
	if (ret) {
		d->host->log(d->dev, SMOL_LOG_ERROR, "state: truncated");
		return ret;
	}
	d->fnv.restore(hash, count); /* any hash and count are valid */
	return 0;
}

const smol_device_ops fnv_ops = {
	sizeof(smol_device_ops),
	fnv_create,
	fnv_destroy,
	fnv_reset,
	fnv_save,
	fnv_load,
	nullptr, // describe
	nullptr, // methods
	0,
	nullptr, // pause: no threads
	nullptr, // resume
	nullptr, // stats
	{},
};

} // namespace

SMOL_PLUGIN(SMOL_KIND_DEVICE, "example-fnv", "example custom device in C++: FNV-1a hasher",
            &fnv_ops);
