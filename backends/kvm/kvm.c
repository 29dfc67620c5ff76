/* kvm.c: the arch-neutral part of the KVM backend (kvm.so): /dev/kvm and its API version, RAM
 * slots from the core's memfd mapping, one kvm_run per vCPU, the run loop with exits
 * normalised into smol_exit, kicks through immediate_exit and a signal, ioeventfd and irqfd.
 * Each arch (x86.c, arm64.c) creates its VM, its interrupt controllers and its vCPUs' state on
 * top, and exports the ops table. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"

/* The signal vcpu_kick sends to interrupt KVM_RUN. */
#define KICK_SIGNAL SIGUSR1

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN with EINTR */
}

void kvm_kick_install(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL); /* no SA_RESTART: KVM_RUN returns EINTR */
}

void kvm_kick_remove(void)
{
	/* the handler lives in this plugin, which the core may unload next */
	signal(KICK_SIGNAL, SIG_IGN);
}

int kvm_vm_open(const struct smol_backend_host *host, const struct smol_vm_config *cfg,
                const struct kvm_need *need, size_t n_need, struct smol_vm **out)
{
	struct smol_vm *vm = calloc(1, sizeof(*vm));
	int e;

	if (!vm)
		return -ENOMEM;
	vm->host = host;
	vm->vm_fd = -1;
	vm->n_vcpus = cfg->n_vcpus;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "hardware virtualization is not available: /dev/kvm: %s",
		    strerror(e));
		free(vm);
		return -e;
	}
	int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		LOG(vm, SMOL_LOG_ERROR, "/dev/kvm speaks KVM API %d, smolvm needs %d", api,
		    KVM_API_VERSION);
		e = EINVAL;
		goto err;
	}
	for (size_t i = 0; i < n_need; i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0) {
			LOG(vm, SMOL_LOG_ERROR, "/dev/kvm lacks %s", need[i].name);
			e = ENOTSUP;
			goto err;
		}
	}
	int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus > 0 && cfg->n_vcpus > (uint32_t)max_vcpus) {
		LOG(vm, SMOL_LOG_ERROR, "KVM allows at most %d vCPUs, the machine asks for %u",
		    max_vcpus, cfg->n_vcpus);
		e = EINVAL;
		goto err;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(e));
		goto err;
	}
	*out = vm;
	return 0;
err:
	close(vm->kvm_fd);
	free(vm);
	return -e;
}

void kvm_vm_close(struct smol_vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	close(vm->kvm_fd);
	free(vm);
}

int kvm_mem_add(struct smol_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_SET_USER_MEMORY_REGION slot %u at 0x%llx: %s", slot,
		    (unsigned long long)gpa, strerror(e));
		return -e;
	}
	return 0;
}

int kvm_vcpu_new(struct smol_vm *vm, uint32_t index, struct smol_vcpu **out)
{
	struct smol_vcpu *v = calloc(1, sizeof(*v));
	int e;
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->index = index;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_CREATE_VCPU %u: %s", index, strerror(e));
		free(v);
		return -e;
	}
	v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "mmap of vCPU %u's kvm_run: %s", index, strerror(e));
		close(v->fd);
		free(v);
		return -e;
	}
	*out = v;
	return 0;
}

void kvm_vcpu_destroy(struct smol_vcpu *v)
{
	if (!v)
		return;
	munmap(v->run, (size_t)v->vm->run_size);
	close(v->fd);
	free(v);
}

int kvm_vcpu_run(struct smol_vcpu *v, struct smol_exit *e)
{
	struct kvm_run *run = v->run;

	if (!v->thread_known) {
		v->thread = pthread_self();
		__atomic_store_n(&v->thread_known, 1, __ATOMIC_RELEASE);
		/* the kick signal must reach this thread */
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, KICK_SIGNAL);
		pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	}
	if (ioctl(v->fd, KVM_RUN, 0) < 0) {
		int err = errno;
		if (err == EINTR || err == EAGAIN) {
			run->immediate_exit = 0;
			e->reason = SMOL_EXIT_INTR;
			return 0;
		}
		return -err;
	}
	e->code = run->exit_reason;
	switch (run->exit_reason) {
	case KVM_EXIT_IO: /* x86 only */
		e->reason = SMOL_EXIT_PIO;
		e->u.pio.port = run->io.port;
		e->u.pio.size = run->io.size;
		e->u.pio.is_write = run->io.direction == KVM_EXIT_IO_OUT;
		e->u.pio.count = run->io.count;
		e->u.pio.data = (uint8_t *)run + run->io.data_offset;
		/* never let a count point the data past the kvm_run page */
		if (run->io.data_offset >= (uint64_t)v->vm->run_size ||
		    (uint64_t)run->io.count * run->io.size >
		            (uint64_t)v->vm->run_size - run->io.data_offset)
			e->u.pio.count = 0;
		break;
	case KVM_EXIT_MMIO:
		e->reason = SMOL_EXIT_MMIO;
		e->u.mmio.gpa = run->mmio.phys_addr;
		e->u.mmio.size = (uint8_t)(run->mmio.len > 8 ? 8 : run->mmio.len);
		e->u.mmio.is_write = run->mmio.is_write;
		e->u.mmio.data = run->mmio.data;
		break;
	case KVM_EXIT_HLT: e->reason = SMOL_EXIT_HLT; break;
	case KVM_EXIT_SHUTDOWN: e->reason = SMOL_EXIT_SHUTDOWN; break;
	case KVM_EXIT_SYSTEM_EVENT:
		/* x86: the ACPI sleep/reset paths; arm64: PSCI SYSTEM_OFF and SYSTEM_RESET */
		e->reason = SMOL_EXIT_SYSTEM_EVENT;
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN: e->u.system_event.type = SMOL_EVENT_SHUTDOWN; break;
		case KVM_SYSTEM_EVENT_RESET: e->u.system_event.type = SMOL_EVENT_RESET; break;
		default: e->u.system_event.type = SMOL_EVENT_CRASH; break;
		}
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		e->reason = SMOL_EXIT_INTERNAL_ERROR;
		e->code = run->internal.suberror;
		break;
	case KVM_EXIT_INTR: e->reason = SMOL_EXIT_INTR; break;
	case KVM_EXIT_FAIL_ENTRY:
		e->reason = SMOL_EXIT_INTERNAL_ERROR;
		e->code = (uint32_t)run->fail_entry.hardware_entry_failure_reason;
		break;
	default: e->reason = SMOL_EXIT_UNKNOWN; break;
	}
	return 0;
}

void kvm_vcpu_kick(struct smol_vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&v->thread_known, __ATOMIC_ACQUIRE))
		pthread_kill(v->thread, KICK_SIGNAL);
}

int kvm_ioeventfd(struct smol_vm *vm, uint64_t addr, uint32_t len, int is_pio, uint32_t flags,
                  uint64_t datamatch, int fd)
{
	struct kvm_ioeventfd io = {
		.datamatch = datamatch,
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = (is_pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
		         ((flags & SMOL_IOEVENT_DATAMATCH) ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0),
	};
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_IOEVENTFD at 0x%llx: %s", (unsigned long long)addr,
		    strerror(e));
		return -e;
	}
	return 0;
}

int kvm_irqfd(struct smol_vm *vm, uint32_t gsi, int fd)
{
	struct kvm_irqfd q = { .fd = (uint32_t)fd, .gsi = gsi };
	if (ioctl(vm->vm_fd, KVM_IRQFD, &q) < 0) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_IRQFD for GSI %u: %s", gsi, strerror(e));
		return -e;
	}
	return 0;
}
