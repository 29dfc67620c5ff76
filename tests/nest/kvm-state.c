/*
 * kvm-state: the KVM backend's snapshot ops (ABI 1.3) on a real KVM, through kvm.so's ops
 * table as the core calls it. Usage: kvm-state PATH/kvm.so (run it in tests/nest/run).
 *
 * For 1 and then 2 vCPUs: runs the guest of kvm-state-guest.S (a TSC-deadline timer on vCPU 0,
 * a periodic LAPIC timer on vCPU 1, kvmclock on, reporting a sequence number, its tick count
 * and rdtsc through port writes) until each vCPU counted TICKS_BEFORE ticks; stops it with a
 * kick (a pending port exit completes first), saves the VM and every vCPU, copies RAM and
 * destroys everything; a second later builds a fresh VM on the copy, checks that corrupt
 * blobs are refused, loads the state, tells the vCPUs they were paused and runs again.
 * Checks: the guest goes on exactly where it stopped (the next port write and sequence
 * number, the registers as vcpu_dump shows them), its timers keep ticking, its TSC does not go
 * back, its kvmclock moved on by the wall time between save and load, it sees the
 * PVCLOCK_GUEST_STOPPED flag, and vm_cpu_info describes this host's CPU.
 * Exit status 0 when every check passed, 1 otherwise.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm-state.h"

#define LOAD 0x1000u
#define GDT (LOAD + 0x40)
#define BSP_ENTRY (LOAD + 0x100)
#define TICKS 0x4000u
#define NCPUS 0x4100u
#define PVCLOCK 0x5000u
#define PVSNAP 0x6000u /* each report's copy of the pvclock area, 64 bytes per CPU */
#define RAM_SIZE (4u << 20)
#define TICKS_BEFORE 10 /* timer ticks each vCPU counts before the save */
#define TICKS_AFTER 10 /* and after the restore */
#define SLEEP_NS 1000000000ull /* between save and load */
#define WAIT_S 30 /* for the ticks */
#define PVCLOCK_GUEST_STOPPED 2
#define MAX_CPUS 2

extern const uint8_t kvm_state_guest[], kvm_state_guest_end[];

const struct smol_backend_ops *ops;
int errors_logged;
static int failures;

void check(int ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s: ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	if (!ok)
		failures++;
}

static void host_log(enum smol_log_level level, const char *fmt, ...)
{
	static const char *const name[] = { "error", "warn", "info", "debug" };
	va_list ap;
	errors_logged += level == SMOL_LOG_ERROR;
	va_start(ap, fmt);
	printf("  kvm.so %s: ", level <= SMOL_LOG_DEBUG ? name[level] : "?");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static const struct smol_backend_host host = {
	.abi_major = SMOL_ABI_MAJOR,
	.abi_minor = SMOL_ABI_MINOR,
	.struct_size = sizeof(struct smol_backend_host),
	.log = host_log,
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the guest's kvmclock --------------------------------------------------------------- */

static struct pvclock read_pvclock_at(const uint8_t *p)
{
	struct pvclock pv;
	memcpy(&pv.version, p, 4);
	memcpy(&pv.tsc_timestamp, p + 8, 8);
	memcpy(&pv.system_time, p + 16, 8);
	memcpy(&pv.mul, p + 24, 4);
	memcpy(&pv.shift, p + 28, 1);
	memcpy(&pv.flags, p + 29, 1);
	return pv;
}

/* The guest's kvmclock (ns) at its TSC @p tsc, as a guest computes it from its pvclock area. */
static int64_t kvmclock_at(const struct pvclock *pv, uint64_t tsc)
{
	int neg = tsc < pv->tsc_timestamp;
	uint64_t d = neg ? pv->tsc_timestamp - tsc : tsc - pv->tsc_timestamp;
	d = pv->shift < 0 ? d >> -pv->shift : d << pv->shift;
	uint64_t ns = (uint64_t)(((unsigned __int128)d * pv->mul) >> 32);
	return (int64_t)pv->system_time + (neg ? -(int64_t)ns : (int64_t)ns);
}

static struct pvclock read_pvclock(const uint8_t *ram, uint32_t cpu)
{
	return read_pvclock_at(ram + PVCLOCK + 64 * cpu);
}

/* ---- one vCPU's thread and what its guest reported ------------------------------------- */

static int report(struct cpu *c, uint16_t port, uint32_t val)
{
	if (c->next_port && port != c->next_port) {
		snprintf(c->error, sizeof(c->error), "wrote port 0x%x where 0x%x comes next", port,
		         c->next_port);
		return 0;
	}
	if (c->restored && !c->have_first && !c->first_port)
		c->first_port = port;
	switch (port) {
	case 0x10:
		if (c->rounds && val != c->seq + 1) {
			snprintf(c->error, sizeof(c->error), "sequence %u after %u", val, c->seq);
			return 0;
		}
		c->seq = val;
		break;
	case 0x11:
		if (val < c->ticks) {
			snprintf(c->error, sizeof(c->error), "ticks went back from %u to %u",
			         c->ticks, val);
			return 0;
		}
		c->ticks = val;
		break;
	case 0x12:
		c->tsc_lo = val;
		c->fresh_tsc = c->restored;
		break;
	case 0x13: {
		uint64_t tsc = (uint64_t)val << 32 | c->tsc_lo;
		if (tsc < c->tsc) {
			snprintf(c->error, sizeof(c->error), "TSC went back from %llu to %llu",
			         (unsigned long long)c->tsc, (unsigned long long)tsc);
			return 0;
		}
		c->tsc = tsc;
		c->rounds++;
		c->last_seq = c->seq;
		c->last_tsc = tsc;
		/* the pvclock area as the guest read it around that rdtsc (the copy stays put until
		 * the guest's next round, and the vCPU is stopped here) */
		c->last_pv = read_pvclock_at(c->ram + PVSNAP + 64 * c->index);
		__atomic_store_n(&c->last_ticks, c->ticks, __ATOMIC_RELEASE);
		if (c->restored && !c->have_first) {
			c->have_first = 1;
			c->first_ticks = c->ticks;
			c->first_seq = c->seq;
			c->first_tsc = tsc;
		}
		if (c->fresh_tsc && !c->have_clock) {
			c->have_clock = 1;
			c->clock_tsc = tsc;
			c->clock_pv = c->last_pv;
		}
		break;
	}
	default: snprintf(c->error, sizeof(c->error), "wrote unexpected port 0x%x", port); return 0;
	}
	c->next_port = port == 0x13 ? 0x10 : port + 1u;
	return 1;
}

static void *run_cpu(void *arg)
{
	struct cpu *c = arg;
	struct smol_exit e;
	for (;;) {
		int r = ops->vcpu_run(c->v, &e);
		if (r < 0) {
			snprintf(c->error, sizeof(c->error), "vcpu_run: %s", strerror(-r));
			break;
		}
		if (e.reason == SMOL_EXIT_INTR) {
			if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
				break;
			continue;
		}
		if (e.reason != SMOL_EXIT_PIO || !e.u.pio.is_write || e.u.pio.size != 4 ||
		    e.u.pio.count != 1) {
			char dump[1024] = "";
			if (ops->vcpu_dump(c->v, dump, sizeof(dump)) < 0)
				dump[0] = '\0';
			snprintf(c->error, sizeof(c->error), "exit reason %u (code %u)\n%.150s",
			         e.reason, e.code, dump);
			break;
		}
		uint32_t val;
		memcpy(&val, e.u.pio.data, 4);
		if (!report(c, e.u.pio.port, val))
			break;
	}
	__atomic_store_n(&c->stop, 2, __ATOMIC_RELEASE); /* 2: the thread ended */
	return NULL;
}

static void start_cpus(struct cpu *cs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		cs[i].stop = 0;
		if (pthread_create(&cs[i].thread, NULL, run_cpu, &cs[i]) != 0) {
			perror("kvm-state: pthread_create");
			exit(1);
		}
	}
}

/* Stops every vCPU as the core does: a sticky flag, then a kick; a pending port exit completes
 * in the vcpu_run the kick ends. */
static void stop_cpus(struct cpu *cs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		__atomic_store_n(&cs[i].stop, 1, __ATOMIC_RELEASE);
		ops->vcpu_kick(cs[i].v);
	}
	for (uint32_t i = 0; i < n; i++)
		pthread_join(cs[i].thread, NULL);
}

/* Waits until each vCPU's tick count reached target[i]; 0 on a thread's error or timeout. */
static int wait_ticks(struct cpu *cs, uint32_t n, const uint32_t *target)
{
	for (int ms = 0; ms < WAIT_S * 1000; ms += 10) {
		uint32_t reached = 0;
		for (uint32_t i = 0; i < n; i++) {
			if (__atomic_load_n(&cs[i].stop, __ATOMIC_ACQUIRE) == 2)
				return 0;
			reached +=
			        __atomic_load_n(&cs[i].last_ticks, __ATOMIC_ACQUIRE) >= target[i];
		}
		if (reached == n)
			return 1;
		usleep(10000);
	}
	return 0;
}

/* ---- guest memory ----------------------------------------------------------------------- */

static uint8_t *new_ram(int *fd)
{
	*fd = memfd_create("kvm-state-ram", MFD_CLOEXEC);
	if (*fd < 0 || ftruncate(*fd, RAM_SIZE) < 0) {
		perror("kvm-state: memfd");
		exit(1);
	}
	uint8_t *p = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (p == MAP_FAILED) {
		perror("kvm-state: mmap");
		exit(1);
	}
	return p;
}

/* ---- the machine ------------------------------------------------------------------------ */

struct machine {
	struct smol_vm *vm;
	uint8_t *ram;
	int ram_fd;
	uint32_t n;
};

static int make_machine(struct machine *m, uint32_t n, struct cpu *cs)
{
	struct smol_vm_config cfg = { .struct_size = sizeof(cfg),
		                      .n_vcpus = n,
		                      .ram_size = RAM_SIZE };
	m->n = n;
	int r = ops->vm_create(&host, &cfg, &m->vm);
	if (r < 0) {
		printf("FAIL: vm_create: %s\n", strerror(-r));
		return 0;
	}
	if ((r = ops->mem_add(m->vm, 0, 0, RAM_SIZE, m->ram)) < 0) {
		printf("FAIL: mem_add: %s\n", strerror(-r));
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		cs[i].index = i;
		cs[i].ram = m->ram;
		if ((r = ops->vcpu_create(m->vm, i, &cs[i].v)) < 0) {
			printf("FAIL: vcpu_create %u: %s\n", i, strerror(-r));
			return 0;
		}
	}
	return 1;
}

static void destroy_machine(struct machine *m, struct cpu *cs)
{
	for (uint32_t i = 0; i < m->n; i++)
		ops->vcpu_destroy(cs[i].v);
	ops->vm_destroy(m->vm);
	munmap(m->ram, RAM_SIZE);
	close(m->ram_fd);
}

/* A state blob: size query first (-ENOSPC with the size), then the real thing. */
static struct blob save_vm(struct machine *m)
{
	struct blob b = { NULL, 0 };
	int r = ops->vm_save(m->vm, SMOL_ARCH_X86_64, NULL, 0, &b.len);
	check(r == -ENOSPC && b.len > 16, "vm_save size query: -ENOSPC and %zu bytes", b.len);
	b.p = malloc(b.len);
	size_t len = 0;
	r = b.p ? ops->vm_save(m->vm, SMOL_ARCH_X86_64, b.p, b.len, &len) : -ENOMEM;
	check(r == 0 && len == b.len, "vm_save: %zu bytes (%s)", len, strerror(-r));
	return b;
}

static struct blob save_vcpu(struct cpu *c)
{
	struct blob b = { NULL, 0 };
	int r = ops->vcpu_save(c->v, SMOL_ARCH_X86_64, NULL, 0, &b.len);
	check(r == -ENOSPC && b.len > 16, "vCPU %u: vcpu_save size query: -ENOSPC and %zu bytes",
	      c->index, b.len);
	b.p = malloc(b.len);
	size_t len = 0;
	uint8_t *small = malloc(b.len);
	r = ops->vcpu_save(c->v, SMOL_ARCH_X86_64, small, b.len - 1, &len);
	check(r == -ENOSPC && len == b.len, "vCPU %u: vcpu_save into a byte too few: -ENOSPC",
	      c->index);
	free(small);
	r = b.p ? ops->vcpu_save(c->v, SMOL_ARCH_X86_64, b.p, b.len, &len) : -ENOMEM;
	check(r == 0 && len == b.len, "vCPU %u: vcpu_save: %zu bytes (%s)", c->index, len,
	      strerror(-r));
	return b;
}

static void check_cpu_info(struct smol_vm *vm, struct smol_x86_cpu_info *out)
{
	struct smol_x86_cpu_info ci;
	memset(&ci, 0xee, sizeof(ci));
	int r = ops->vm_cpu_info(vm, SMOL_ARCH_X86_64, &ci, sizeof(ci));
	unsigned a, b, c, d;
	__cpuid(0, a, b, c, d);
	char vendor[12];
	memcpy(vendor, &b, 4), memcpy(vendor + 4, &d, 4), memcpy(vendor + 8, &c, 4);
	__cpuid(1, a, b, c, d);
	check(r == 0 && ci.struct_size == sizeof(ci) && ci.n_words == SMOL_X86_CPU_WORDS,
	      "vm_cpu_info: %d, struct_size %u, %u words", r, ci.struct_size, ci.n_words);
	check(memcmp(ci.vendor, vendor, 12) == 0 && ci.signature == a,
	      "vm_cpu_info: vendor %.12s, signature 0x%x (this CPU: %.12s, 0x%x)", ci.vendor,
	      ci.signature, vendor, a);
	check(!(ci.words[0] & (1u << 31)) && !(ci.words[0] & (1u << 27)) &&
	              (ci.words[0] & (1u << 24)) && (ci.words[1] & 0x31) == 0x31,
	      "vm_cpu_info: 1.ecx 0x%08x (TSC deadline, no hypervisor or OSXSAVE bit), 1.edx "
	      "0x%08x (FPU, TSC, MSR)",
	      ci.words[0], ci.words[1]);
	check(ci.words[12] == 0 && ci.words[15] == 0, "vm_cpu_info: unused words are zero");
	check(ops->vm_cpu_info(vm, SMOL_ARCH_AARCH64, &ci, sizeof(ci)) == -ENOTSUP &&
	              ops->vm_cpu_info(vm, SMOL_ARCH_X86_64, &ci, sizeof(ci) - 1) == -EINVAL,
	      "vm_cpu_info: -ENOTSUP for aarch64, -EINVAL for a short buffer");
	if (out)
		*out = ci;
}

static const char *dump(struct cpu *c, char *buf, size_t len)
{
	if (ops->vcpu_dump(c->v, buf, len) < 0)
		snprintf(buf, len, "(no dump)");
	return buf;
}

static void scenario(uint32_t n)
{
	struct cpu cs[MAX_CPUS];
	struct machine m;
	struct smol_x86_cpu_info info_before, info_after;
	char before[MAX_CPUS][2048], after[2048];
	uint32_t target[MAX_CPUS];
	memset(cs, 0, sizeof(cs));
	printf("--- %u vCPU%s ---\n", n, n > 1 ? "s" : "");

	m.ram = new_ram(&m.ram_fd);
	memcpy(m.ram + LOAD, kvm_state_guest, (size_t)(kvm_state_guest_end - kvm_state_guest));
	memcpy(m.ram + NCPUS, &n, 4);
	if (!make_machine(&m, n, cs)) {
		failures++;
		return;
	}
	struct smol_x86_boot boot = {
		.rip = BSP_ENTRY,
		.rflags = 0x2,
		.cr0 = 0x11, /* PE, ET */
		.gdt_base = GDT,
		.gdt_limit = 23,
		.cs_selector = 0x08,
		.ds_selector = 0x10,
		.long_mode = 0,
	};
	int r = ops->vcpu_set_x86_boot(cs[0].v, &boot);
	check(r == 0, "vcpu_set_x86_boot: %s", strerror(-r));
	check_cpu_info(m.vm, &info_before);

	start_cpus(cs, n);
	for (uint32_t i = 0; i < n; i++)
		target[i] = TICKS_BEFORE;
	int ran = wait_ticks(cs, n, target);
	stop_cpus(cs, n);
	for (uint32_t i = 0; i < n; i++) {
		check(ran && !cs[i].error[0], "vCPU %u: %u ticks in %u rounds before the save%s%s",
		      i, cs[i].last_ticks, cs[i].rounds, cs[i].error[0] ? ": " : "", cs[i].error);
	}
	if (!ran) {
		for (uint32_t i = 0; i < n; i++)
			printf("vCPU %u:\n%s", i, dump(&cs[i], before[i], sizeof(before[i])));
		destroy_machine(&m, cs);
		return;
	}

	struct pvclock pv_before[MAX_CPUS];
	int64_t clock_before[MAX_CPUS];
	for (uint32_t i = 0; i < n; i++) {
		pv_before[i] = read_pvclock(m.ram, i);
		/* each end as the guest saw it: its own pvclock copy with its own rdtsc (KVM
		 * re-anchors the pvclock at entries; where the nest's TSC is unstable,
		 * extrapolating one anchor back over many exits lost up to 0.14 s) */
		clock_before[i] = kvmclock_at(&cs[i].last_pv, cs[i].last_tsc);
		check(pv_before[i].version % 2 == 0 && pv_before[i].mul != 0 &&
		              !(pv_before[i].flags & PVCLOCK_GUEST_STOPPED),
		      "vCPU %u: kvmclock on (mul %u, shift %d), not flagged stopped", i,
		      pv_before[i].mul, pv_before[i].shift);
		dump(&cs[i], before[i], sizeof(before[i]));
	}
	uint64_t t_save = realtime_ns();
	struct blob vmb = save_vm(&m);
	struct blob vcb[MAX_CPUS];
	for (uint32_t i = 0; i < n; i++)
		vcb[i] = save_vcpu(&cs[i]);

	/* the machine goes; its RAM survives as a copy */
	int copy_fd;
	uint8_t *copy = new_ram(&copy_fd);
	memcpy(copy, m.ram, RAM_SIZE);
	destroy_machine(&m, cs);
	struct timespec nap = { .tv_sec = SLEEP_NS / 1000000000ull };
	nanosleep(&nap, NULL);

	m.ram = copy;
	m.ram_fd = copy_fd;
	if (!make_machine(&m, n, cs)) {
		failures++;
		return;
	}
	r = ops->vcpu_was_paused(cs[0].v);
	check(r == 0, "vcpu_was_paused on a vCPU whose guest has no kvmclock yet: %d", r);
	check_corrupt_vm(m.vm, vmb);
	check_corrupt_vcpu(&cs[0], vcb[0]);
	if (n > 1) {
		int e0 = errors_logged;
		r = ops->vcpu_load(cs[0].v, SMOL_ARCH_X86_64, vcb[1].p, vcb[1].len);
		check(r == -EINVAL && errors_logged > e0, "vCPU 1's state refused by vCPU 0: %d",
		      r);
	}

	r = ops->vm_load(m.vm, SMOL_ARCH_X86_64, vmb.p, vmb.len);
	uint64_t t_load = realtime_ns();
	check(r == 0, "vm_load: %s", strerror(-r));
	for (uint32_t i = 0; i < n; i++) {
		r = ops->vcpu_load(cs[i].v, SMOL_ARCH_X86_64, vcb[i].p, vcb[i].len);
		check(r == 0, "vCPU %u: vcpu_load: %s", i, strerror(-r));
		dump(&cs[i], after, sizeof(after));
		check(strcmp(before[i], after) == 0, "vCPU %u: registers as saved:\n%s", i, after);
		if (strcmp(before[i], after) != 0)
			printf("saved:\n%s", before[i]);
		r = ops->vcpu_was_paused(cs[i].v);
		check(r == 0, "vCPU %u: vcpu_was_paused: %s", i, strerror(-r));
	}
	check_cpu_info(m.vm, &info_after);
	check(memcmp(&info_before, &info_after, sizeof(info_after)) == 0,
	      "vm_cpu_info after the restore is the saved guest's");

	uint32_t ticks_saved[MAX_CPUS], seq_saved[MAX_CPUS], port_saved[MAX_CPUS];
	uint64_t tsc_saved[MAX_CPUS];
	for (uint32_t i = 0; i < n; i++) {
		ticks_saved[i] = cs[i].last_ticks;
		seq_saved[i] = cs[i].last_seq;
		tsc_saved[i] = cs[i].last_tsc;
		port_saved[i] = cs[i].next_port;
		target[i] = ticks_saved[i] + TICKS_AFTER;
		cs[i].restored = 1;
	}
	start_cpus(cs, n);
	ran = wait_ticks(cs, n, target);
	stop_cpus(cs, n);
	for (uint32_t i = 0; i < n; i++) {
		struct cpu *c = &cs[i];
		check(ran && !c->error[0] && c->have_first,
		      "vCPU %u: ticks %u at the save, %u after %u rounds since the restore%s%s", i,
		      ticks_saved[i], c->last_ticks, c->rounds, c->error[0] ? ": " : "", c->error);
		if (!c->have_first)
			continue;
		check(c->first_port == port_saved[i] &&
		              (c->first_seq == seq_saved[i] || c->first_seq == seq_saved[i] + 1),
		      "vCPU %u: went on at port 0x%x (0x%x was next), round %u (the last: %u)", i,
		      c->first_port, port_saved[i], c->first_seq, seq_saved[i]);
		check(c->first_ticks >= ticks_saved[i] && c->last_ticks >= target[i],
		      "vCPU %u: its %s timer kept ticking: %u at the save, %u first, %u last", i,
		      i ? "periodic LAPIC" : "TSC-deadline", ticks_saved[i], c->first_ticks,
		      c->last_ticks);
		struct pvclock pv = read_pvclock(m.ram, i);
		int64_t gap_tsc_ns =
		        kvmclock_at(&pv, c->first_tsc) - kvmclock_at(&pv, tsc_saved[i]);
		check(c->first_tsc >= tsc_saved[i],
		      "vCPU %u: TSC %llu at the save, %llu after (not back; %.3f s of TSC went by)",
		      i, (unsigned long long)tsc_saved[i], (unsigned long long)c->first_tsc,
		      (double)gap_tsc_ns / 1e9);
		int64_t moved = kvmclock_at(&c->clock_pv, c->clock_tsc) - clock_before[i];
		int64_t wall = (int64_t)(t_load - t_save);
		check(c->have_clock && wall >= (int64_t)SLEEP_NS && moved >= wall - 50000000 &&
		              moved <= wall + 2000000000,
		      "vCPU %u: kvmclock moved on %.3f s between the guest's last read before the "
		      "save and its first after the load, the wall clock %.3f s between save and "
		      "load",
		      i, (double)moved / 1e9, (double)wall / 1e9);
		check(pv.version % 2 == 0 && (pv.flags & PVCLOCK_GUEST_STOPPED),
		      "vCPU %u: the guest sees PVCLOCK_GUEST_STOPPED (flags 0x%x)", i, pv.flags);
	}
	destroy_machine(&m, cs);
	free(vmb.p);
	for (uint32_t i = 0; i < n; i++)
		free(vcb[i].p);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: kvm-state PATH/kvm.so\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		fprintf(stderr, "kvm-state: %s\n", dlerror());
		return 1;
	}
	const struct smol_plugin_desc *d = dlsym(so, SMOL_PLUGIN_SYMBOL);
	if (!d || d->kind != SMOL_KIND_BACKEND || d->abi_major != SMOL_ABI_MAJOR ||
	    d->abi_minor < 3) {
		fprintf(stderr, "kvm-state: %s is not an ABI 1.3 backend\n", argv[1]);
		return 1;
	}
	ops = d->ops;
	if (ops->struct_size < offsetof(struct smol_backend_ops, reserved) || !ops->vm_save ||
	    !ops->vm_load || !ops->vcpu_save || !ops->vcpu_load || !ops->vm_cpu_info ||
	    !ops->vcpu_was_paused) {
		fprintf(stderr, "kvm-state: %s lacks snapshot ops\n", argv[1]);
		return 1;
	}
	const char *only = getenv("KVM_STATE_ONLY");
	if (!only || atoi(only) == 1)
		scenario(1);
	if (!only || atoi(only) == 2)
		scenario(2);
	printf("kvm-state: %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
