# smolvm: a thin wrapper around meson. Every target first installs missing Debian packages.
BUILD ?= build
MESON_OPTS ?= --werror

.PHONY: all deps build build-arm64 linux-guest-arm64 test test-sanitize demo bench install nest-kit linux-guest nest-stress clean fuzz

all: build

deps:
	@scripts/deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

# The aarch64 cross build (cross/aarch64-linux-gnu.ini; libfdt-dev:arm64 from
# scripts/arm64-sysroot, which prints its cross file): smolvm and devices/*/*.so laid out as in
# $(BUILD), and the arm64 nest's KVM smoke (tests/nest/kvm-smoke-arm64). Its programs run in
# the arm64 test nest: NEST_ARCH=arm64 tests/nest/run $(ARM64_BUILD)/tests/nest/kvm-smoke-arm64
ARM64_BUILD ?= build-arm64

$(ARM64_BUILD)/build.ninja:
	meson setup $(ARM64_BUILD) $(MESON_OPTS) --cross-file cross/aarch64-linux-gnu.ini \
	    --cross-file "$$(scripts/arm64-sysroot)"

build-arm64: deps $(ARM64_BUILD)/build.ninja
	@scripts/arm64-sysroot >/dev/null
	meson compile -C $(ARM64_BUILD)

# The test nest's kit (kernel + initramfs), built once from Debian's packages and cached.
nest-kit: deps
	@tests/nest/mkkit >/dev/null

# Debian's kernel and a busybox initramfs for Linux guests (configs/linux.ini), cached.
linux-guest: build nest-kit
	@scripts/linux-guest $(BUILD) >/dev/null

# Debian's arm64 kernel and a busybox initramfs for arm64 Linux guests (tests/nest/arm64-linux,
# configs/virt-arm64.ini), from the arm64 nest kit, cached.
linux-guest-arm64: build-arm64
	@scripts/linux-guest-arm64 $(ARM64_BUILD) >/dev/null

test: build nest-kit linux-guest build-arm64 linux-guest-arm64
	@BUILD=$(BUILD) ARM64_BUILD=$(ARM64_BUILD) scripts/test

# Only the sanitizer builds and the unprivileged run that `make test` includes: the host suite
# under ASan+UBSan (as nobody when root) and the threaded host test under TSan, in
# $(BUILD)-asan and $(BUILD)-tsan (scripts/test-sanitize). Status 0 when both passed.
test-sanitize: deps
	@BUILD=$(BUILD) scripts/test-sanitize

demo: build nest-kit
	@scripts/demo $(BUILD)

# Boot-to-exit of one payload under the raw-ioctl floor, smolvm and QEMU microvm, and Debian's
# kernel to its init under smolvm and QEMU microvm, virtio-blk, and snapshots (snapshot time and
# size, restore beside the floor and QEMU's migration restore, idle clone memory, clones/s at
# 128 MiB, 512 MiB and 2 GiB), and virtio-net (TCP both ways and ping under Debian's kernel, each
# VMM on a TAP in a network namespace of its own: needs root, else skipped), side by side in one
# run (in the nest where there is no hardware virtualization; a failed nest, status 125, is
# retried once). RUNS, BOOT_RUNS, BLK_RUNS, SNAP_RUNS, SNAP_CLONES, NET_RUNS change the counts
# (0 leaves a table out). Then the arm64 table (bench/arm64-boot.c): Debian's arm64 kernel to its
# init under smolvm's aarch64 build and QEMU's virt machine (the arm64 QEMU that bench/arm64-qemu
# unpacks), in the arm64 nest; ARM64_BOOT_RUNS (default 5, 0 leaves it out).
# JSON: build/bench.json and build/bench-arm64.json.
bench: build nest-kit linux-guest build-arm64 linux-guest-arm64
	@bench() { tests/nest/run $(BUILD)/bench/smolvm-bench $(BUILD) --runs $(or $(RUNS),20) \
	    --boot-runs $(or $(BOOT_RUNS),5) --blk-runs $(or $(BLK_RUNS),3) \
	    --snap-runs $(or $(SNAP_RUNS),5) --snap-clones $(or $(SNAP_CLONES),20) \
	    --net-runs $(or $(NET_RUNS),3) --json $(BUILD)/bench.json; }; \
	bench; rc=$$?; if [ $$rc = 125 ]; then \
	    echo "bench: the nest itself failed (status 125, above); retrying once"; bench; rc=$$?; fi; \
	[ "$(or $(ARM64_BOOT_RUNS),5)" = 0 ] && exit $$rc; \
	q=$$(bench/arm64-qemu) || q=""; \
	arm() { NEST_ARCH=arm64 tests/nest/run $(ARM64_BUILD)/bench/smolvm-bench-arm64 $(ARM64_BUILD) \
	    --boot-runs $(or $(ARM64_BOOT_RUNS),5) $${q:+--qemu "$$q"} --json $(BUILD)/bench-arm64.json; }; \
	arm; arc=$$?; if [ $$arc = 125 ]; then \
	    echo "bench: the arm64 nest itself failed (status 125, above); retrying once"; arm; arc=$$?; fi; \
	[ $$rc = 0 ] && rc=$$arc; exit $$rc

# Boots Debian's kernel with 2 vCPUs under QEMU microvm inside the nest, N times in a row.
# (with MTTCG: a 2-vCPU Linux guest is too slow in a single-threaded nest)
nest-stress: build nest-kit
	tests/nest/stress $(or $(N),20)

# libFuzzer targets (fuzz/, ASan + UBSan, clang), each run for FUZZ_TIME seconds over its seed
# corpus (fuzz/corpus/NAME, copied: the corpus that grows lives in $(FUZZ_BUILD)/fuzz-corpus).
# Per target: runs, exec/s, coverage, and "no crash" or the reproducer's path. FUZZ_TARGETS
# picks some.
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 60
FUZZ_TARGETS ?= $(patsubst fuzz/fuzz-%.c,%,$(wildcard fuzz/fuzz-*.c))

$(FUZZ_BUILD)/build.ninja:
	CC=clang CXX=clang++ meson setup $(FUZZ_BUILD) -Dfuzz=true --werror

fuzz: deps $(FUZZ_BUILD)/build.ninja
	meson compile -C $(FUZZ_BUILD) $(addprefix fuzz/fuzz-,$(FUZZ_TARGETS))
	@fail=0; for t in $(FUZZ_TARGETS); do \
	    fuzz/run --time $(FUZZ_TIME) $(FUZZ_BUILD)/fuzz/fuzz-$$t $$t || fail=1; done; exit $$fail

install: build
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD) $(ARM64_BUILD)
