/* kvm-smoke-arm64.h: the guest physical layout shared by kvm-smoke-arm64.c and its guest code
 * (kvm-smoke-arm64-guest.S). Addresses follow QEMU's virt machine: RAM at 1 GiB, the GICv3
 * distributor at 0x08000000, its redistributors at 0x080a0000, device MMIO at 0x09000000. */
#ifndef KVM_SMOKE_ARM64_H
#define KVM_SMOKE_ARM64_H

#define SMOKE_RAM_BASE 0x40000000
#define SMOKE_RAM_SIZE 0x10000
#define SMOKE_GICD_BASE 0x08000000
#define SMOKE_GICR_BASE 0x080a0000
/* Stores here exit to userspace (no memory slot, no ioeventfd). */
#define SMOKE_MMIO_DATA 0x09000000
/* Stores here fire an ioeventfd instead of exiting (0x09000000 + 0x100). */
#define SMOKE_MMIO_EVENT_OFF 0x100
/* The guest stores 0, 1, 2... to SMOKE_MMIO_DATA this many times (fits a movz). */
#define SMOKE_N_WRITES 1000
/* PSCI 0.2 SYSTEM_OFF, the function ID in x0 of an hvc #0 (SMC32 calling convention). */
#define SMOKE_PSCI_SYSTEM_OFF 0x84000008

#endif
