/* machine.c: from a parsed INI to a validated machine (machine_configure), and from there to a
 * running guest (machine_run). Nothing touches a hypervisor before the whole machine, devices
 * included, has been validated. */
#define _GNU_SOURCE
#include "machine.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "describe.h"
#include "device.h"
#include "log.h"
#include "notify.h"
#include "seccomp-filter.h"
#include "signals.h"
#include "snapshot.h"
#include "vcpu.h"

#define DEFAULT_MEMORY (256ull << 20)
#define MIN_MEMORY (2ull << 20)
#define MAX_MEMORY (1ull << 40)

/* ---- run control ---------------------------------------------------------------------- */

/* The first request to end the run decides its status, and whether it was the guest's reboot:
 * a reset that loses the race to a signal, a power-off or an error never restarts anything. */
static void request_end(struct machine *m, int status, bool reset)
{
	int expected = 0;
	if (__atomic_compare_exchange_n(&m->exit_reported, &expected, 1, false, __ATOMIC_SEQ_CST,
	                                __ATOMIC_SEQ_CST)) {
		m->exit_status = status;
		__atomic_store_n(&m->reset_requested, reset, __ATOMIC_SEQ_CST);
	}
	__atomic_store_n(&m->stopping, 1, __ATOMIC_SEQ_CST);
	if (m->loop.wakefd >= 0)
		evloop_wake(&m->loop);
}

void machine_request_exit(struct machine *m, int status)
{
	request_end(m, status, false);
}

void machine_request_reset(struct machine *m)
{
	request_end(m, STATUS_REBOOT, true);
}

bool machine_stopping(const struct machine *m)
{
	return __atomic_load_n(&m->stopping, __ATOMIC_SEQ_CST);
}

int machine_irq_set(struct machine *m, uint32_t line, int level)
{
	int r = 0;
	pthread_mutex_lock(&m->irq_lock);
	if (m->irq_level[line] != level) {
		m->irq_level[line] = level;
		if (m->vm)
			r = m->be->irq_line(m->vm, line, level);
	}
	pthread_mutex_unlock(&m->irq_lock);
	return r;
}

/* ---- configuration ------------------------------------------------------------------ */

/* A file named in the INI must exist and be a readable regular file. */
static char *check_file(struct machine *m, struct cfg_section *s, struct cfg_kv *kv,
                        const char *what)
{
	char *path = cfg_resolve_kv_path(m->cfg, kv);
	struct stat st;
	int fd;
	if (!path)
		return NULL;
	/* opened, not stat()ed: a FIFO must not make the open wait (O_NONBLOCK), and what is
	 * checked is the file that was opened */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cfg_error(m->cfg, s, kv, "%s '%s': %s", what, path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		cfg_error(m->cfg, s, kv, "%s '%s': %s", what, path,
		          S_ISDIR(st.st_mode)    ? "a directory, not a regular file"
		          : S_ISFIFO(st.st_mode) ? "a FIFO, not a regular file"
		                                 : "not a regular file");
	} else {
		close(fd);
		return path;
	}
	if (fd >= 0)
		close(fd);
	free(path);
	return NULL;
}

/* [machine] name (devices derive identifiers from it: a default MAC address): letters,
 * digits, '.', '_' and '-'; by default the INI file's name without its folder and ".ini". */
static void configure_machine_name(struct machine *m, struct cfg_section *s)
{
	struct cfg *c = m->cfg;
	const char *name = NULL, *base = strrchr(c->path, '/');
	size_t len;

	cfg_get_str(c, s, "name", NULL, &name);
	if (name) {
		len = strlen(name);
		if (len == 0 || len > MACHINE_NAME_MAX ||
		    strspn(name,
		           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
		            len)
			cfg_error(c, s, cfg_get(s, "name"),
			          "name '%s': 1 to %d letters, digits, '.', '_' or '-'", name,
			          MACHINE_NAME_MAX);
	} else {
		name = base ? base + 1 : c->path;
		len = strlen(name);
		if (len > 4 && strcmp(name + len - 4, ".ini") == 0)
			len -= 4;
	}
	free(m->name);
	m->name = strndup(name, len);
	if (!m->name) {
		log_err("out of memory");
		exit(STATUS_ERROR);
	}
}

static int configure_machine_section(struct machine *m)
{
	struct cfg *c = m->cfg;
	struct cfg_section *s = cfg_section(c, CFG_MACHINE, NULL);
	uint64_t v;
	const char *plugin_path = NULL;

	cfg_get_str(c, s, "arch", "x86_64", &m->arch);
	m->arch_ops = arch_find(m->arch);
	if (!m->arch_ops)
		cfg_error(c, s, cfg_get(s, "arch"), "arch '%s' is not supported (supported: %s)",
		          m->arch, arch_names());
	else
		m->n_irqs = m->arch_ops->n_irqs;
	cfg_get_str(c, s, "backend", "kvm", &m->backend_name);
	if (cfg_get_size(c, s, "memory", DEFAULT_MEMORY, &m->ram_size) == 0 &&
	    (m->ram_size < MIN_MEMORY || m->ram_size > MAX_MEMORY || (m->ram_size & 0xfff)))
		cfg_error(c, s, cfg_get(s, "memory"),
		          "memory %llu bytes: must be a multiple of 4 KiB between 2 MiB and 1 TiB",
		          (unsigned long long)m->ram_size);
	if (cfg_get_u64(c, s, "vcpus", 1, &v) == 0) {
		if (v < 1 || v > MACHINE_MAX_VCPUS)
			cfg_error(c, s, cfg_get(s, "vcpus"), "vcpus %llu: must be 1 to %d",
			          (unsigned long long)v, MACHINE_MAX_VCPUS);
		m->n_vcpus = (uint32_t)v;
	}
	configure_machine_name(m, s);
	cfg_get_str(c, s, "plugin_path", NULL, &plugin_path);
	char *resolved = NULL;
	if (plugin_path) {
		/* each colon-separated entry is relative to the INI file */
		char *copy = strdup(plugin_path), *save = NULL;
		for (char *t = strtok_r(copy, ":", &save); t && copy;
		     t = strtok_r(NULL, ":", &save)) {
			char *p = cfg_resolve_path(c, t), *joined;
			if (!p || asprintf(&joined, "%s%s%s", resolved ? resolved : "",
			                   resolved ? ":" : "", p) < 0) {
				log_err("out of memory");
				exit(STATUS_ERROR);
			}
			free(resolved);
			free(p);
			resolved = joined;
		}
		free(copy);
	}
	plugin_path_init(&m->pp, resolved);
	free(resolved);
	const char *on_reboot = "exit";
	cfg_get_str(c, s, "on_reboot", "exit", &on_reboot);
	if (strcmp(on_reboot, "exit") == 0)
		m->on_reboot = ON_REBOOT_EXIT;
	else if (strcmp(on_reboot, "restart") == 0)
		m->on_reboot = ON_REBOOT_RESTART;
	else
		cfg_error(c, s, cfg_get(s, "on_reboot"), "on_reboot '%s': must be exit or restart",
		          on_reboot);
	if (m->arch_ops)
		m->arch_ops->configure(m);
	seccomp_configure(m);
	if (s)
		cfg_report_unused(c, s, "[machine]");
	return 0;
}

static void configure_boot_section(struct machine *m)
{
	struct cfg *c = m->cfg;
	struct cfg_section *s = cfg_section(c, CFG_BOOT, NULL);
	struct cfg_kv *kv;

	if (m->restoring) {
		/* the payload is in the snapshot's RAM: the kernel need not exist any more */
		cfg_get_str(c, s, "cmdline", "", &m->cmdline);
		cfg_get(s, "kernel");
		cfg_get(s, "initrd");
		return;
	}

	if (!s || !(kv = cfg_get(s, "kernel"))) {
		struct cfg_section top = { .line = s ? s->line : 1 };
		cfg_error(c, s ? s : &top, NULL, "no kernel: add [boot] kernel = PATH");
	} else {
		m->kernel_path = check_file(m, s, kv, "kernel");
	}
	if ((kv = cfg_get(s, "initrd")))
		m->initrd_path = check_file(m, s, kv, "initrd");
	cfg_get_str(c, s, "cmdline", "", &m->cmdline);
	if (s)
		cfg_report_unused(c, s, "[boot]");
}

/* [snapshot] path = FILE (relative to the INI), then = stop | continue */
static void configure_snapshot_section(struct machine *m)
{
	struct cfg *c = m->cfg;
	struct cfg_section *s = cfg_section(c, CFG_SNAPSHOT, NULL);
	struct cfg_kv *kv;
	const char *then;

	if (!s)
		return;
	if (!(kv = cfg_get(s, "path")))
		cfg_error(c, s, NULL, "[snapshot] needs a path (path = FILE.smolmachine)");
	else if (!(m->snap_path = cfg_resolve_kv_path(c, kv)))
		cfg_error(c, s, kv, "out of memory");
	cfg_get_str(c, s, "then", "stop", &then);
	if (strcmp(then, "stop") == 0)
		m->snap_then_stop = true;
	else if (strcmp(then, "continue") != 0)
		cfg_error(c, s, cfg_get(s, "then"),
		          "then '%s': expected stop (the run ends once the snapshot is written) or "
		          "continue",
		          then);
	cfg_report_unused(c, s, "[snapshot]");
}

int machine_configure(struct machine *m, struct cfg *cfg, bool check_only, bool restoring)
{
	char err[2048];

	memset(m, 0, sizeof(*m));
	m->mem.fd = -1;
	m->cfg = cfg;
	m->check_only = check_only;
	m->restoring = restoring;
	m->loop.epfd = m->loop.wakefd = -1;
	pthread_mutex_init(&m->irq_lock, NULL);
	pthread_mutex_init(&m->run_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->run_cond, &ca);
	pthread_condattr_destroy(&ca);
	bus_init(&m->mmio, "mmio", 1ull << 52);
	bus_init(&m->pio, "pio", 0x10000);

	configure_machine_section(m);
	configure_boot_section(m);
	configure_snapshot_section(m);
	if (cfg->errors)
		return -EINVAL;

	m->arch_ops->mem_layout(&m->mem, m->ram_size);

	struct cfg_section *ms = cfg_section(cfg, CFG_MACHINE, NULL);
	if (plugin_find(&m->pp, m->backend_name, SMOL_KIND_BACKEND, &m->backend, err, sizeof(err)) <
	    0) {
		struct cfg_section top = { .line = 1 };
		cfg_error(cfg, ms ? ms : &top, ms ? cfg_get(ms, "backend") : NULL, "%s", err);
		return -EINVAL;
	}
	m->be = m->backend->desc->ops;

	int r = evloop_init(&m->loop);
	if (r < 0) {
		log_err("cannot create the event loop: %s", strerror(-r));
		return r;
	}
	if (dev_create_all(m) < 0 || cfg->errors)
		return -EINVAL;
	if (describe_all(m) < 0 || cfg->errors)
		return -EINVAL;
	return 0;
}

void machine_print_layout(const struct machine *m, const struct arch_boot *boot)
{
	printf("machine %s: arch %s, backend %s (%s), %u vCPU%s, %llu MiB RAM\n", m->cfg->path,
	       m->arch, m->backend_name, m->backend->path, m->n_vcpus, m->n_vcpus == 1 ? "" : "s",
	       (unsigned long long)(m->ram_size >> 20));
	printf("boot: kernel %s\n", m->kernel_path);
	if (m->initrd_path)
		printf("      initrd %s\n", m->initrd_path);
	printf("      cmdline \"%s\"\n", m->cmdline);
	if (m->snap_path)
		printf("snapshot: on request to %s, then %s\n", m->snap_path,
		       m->snap_then_stop ? "stop" : "continue");
	printf("memory map:\n");
	for (int i = 0; i < m->mem.n_regions; i++)
		printf("  0x%010llx-0x%010llx  RAM (%llu MiB)\n",
		       (unsigned long long)m->mem.region[i].gpa,
		       (unsigned long long)(m->mem.region[i].gpa + m->mem.region[i].size - 1),
		       (unsigned long long)(m->mem.region[i].size >> 20));
	for (size_t i = 0; i < m->mmio.n; i++) {
		const struct bus_range *r = &m->mmio.r[i];
		printf("  0x%010llx-0x%010llx  %s%s\n", (unsigned long long)r->base,
		       (unsigned long long)(r->base + r->len - 1), r->dev ? "device " : "",
		       r->owner);
	}
	printf("devices:\n");
	for (size_t i = 0; i < m->n_devs; i++) {
		const struct smol_dev *d = m->devs[i];
		printf("  %-12s %-14s %s\n", d->name, d->plugin->desc->name, d->plugin->path);
		for (int j = 0; j < d->n_ranges; j++)
			printf("  %12s %s 0x%llx-0x%llx\n", "",
			       d->ranges[j].pio ? "ports" : "mmio ",
			       (unsigned long long)d->ranges[j].base,
			       (unsigned long long)(d->ranges[j].base + d->ranges[j].len - 1));
		for (int j = 0; j < d->n_irqs; j++)
			printf("  %12s irq   %u\n", "", d->irqs[j]);
	}
	m->arch_ops->print_layout(m, boot);
}

/* ---- running ----------------------------------------------------------------------- */

static void backend_log(enum smol_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg((int)level, NULL, fmt, ap);
	va_end(ap);
}

static const struct smol_backend_host backend_host = {
	.abi_major = SMOL_ABI_MAJOR,
	.abi_minor = SMOL_ABI_MINOR,
	.struct_size = sizeof(struct smol_backend_host),
	.log = backend_log,
};

int machine_load_payload(struct machine *m, struct arch_boot *boot)
{
	int r = mem_alloc(&m->mem);
	if (r < 0) {
		log_err("cannot allocate %llu MiB of guest RAM: %s",
		        (unsigned long long)(m->ram_size >> 20), strerror(-r));
		return r == -EINVAL ? -ENOMEM : r;
	}
	return m->arch_ops->load_payload(m, boot) < 0 ? -EINVAL : 0;
}

int machine_write_acpi(struct machine *m, const char *dir)
{
	if (!m->arch_ops->write_acpi) {
		log_err("%s: an %s machine has no ACPI tables", m->cfg->path, m->arch);
		return -EINVAL;
	}
	return m->arch_ops->write_acpi(m, dir);
}

int machine_write_dtb(struct machine *m, const char *out)
{
	if (!m->arch_ops->write_dtb) {
		log_err("%s: an %s machine has no device tree", m->cfg->path, m->arch);
		return -EINVAL;
	}
	return m->arch_ops->write_dtb(m, out);
}

static void on_signal(void *opaque, int fd, uint32_t events)
{
	struct machine *m = opaque;
	int sig;
	(void)fd;
	(void)events;
	while ((sig = signals_take()) > 0) {
		if (m->signalled)
			continue;
		log_info("%s: stopping the guest", strsignal(sig));
		/* a signal always wins over a reboot that raced it: no restart after SIGTERM */
		__atomic_store_n(&m->signalled, sig, __ATOMIC_SEQ_CST);
		machine_request_exit(m, 128 + sig);
	}
}

/* Kicks every vCPU until its thread is back: one kick can be lost to a thread that is in a
 * device handler (say, a write to a stalled pipe that retries on EINTR). A thread that does
 * not come back within 10 s is reported and the process leaves without tearing down. */
static void stop_vcpus(struct machine *m)
{
	/* parked vCPUs (a pause, a snapshot with then = stop) wait for stopping */
	pthread_mutex_lock(&m->run_lock);
	pthread_cond_broadcast(&m->run_cond);
	pthread_mutex_unlock(&m->run_lock);
	for (uint32_t i = 0; i < m->n_vcpus; i++) {
		struct vcpu *v = &m->vcpus[i];
		if (!v->started)
			continue;
		for (int tries = 0;; tries++) {
			struct timespec ts;
			m->be->vcpu_kick(v->bv);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_timedjoin_np(v->thread, NULL, &ts) == 0)
				break;
			if (tries == 100) {
				log_err("vCPU %u does not stop (blocked in a device?): leaving "
				        "without "
				        "cleanup",
				        i);
				_exit(m->exit_status ? m->exit_status : STATUS_ERROR);
			}
		}
		v->started = false;
	}
}

int machine_create_vm(struct machine *m)
{
	int r;
	struct smol_vm_config vc = { .struct_size = sizeof(vc),
		                     .n_vcpus = m->n_vcpus,
		                     .ram_size = m->ram_size };
	r = m->be->vm_create(&backend_host, &vc, &m->vm);
	if (r < 0)
		return STATUS_ERROR; /* the backend said why */
	for (int i = 0; i < m->mem.n_regions; i++) {
		const struct mem_region *rg = &m->mem.region[i];
		r = m->be->mem_add(m->vm, (uint32_t)i, rg->gpa, rg->size,
		                   m->mem.host + rg->fd_offset);
		if (r < 0) {
			log_err("cannot map guest RAM at 0x%llx: %s", (unsigned long long)rg->gpa,
			        strerror(-r));
			return STATUS_ERROR;
		}
	}
	m->vcpus = calloc(m->n_vcpus, sizeof(*m->vcpus));
	if (!m->vcpus)
		return STATUS_ERROR;
	for (uint32_t i = 0; i < m->n_vcpus; i++) {
		m->vcpus[i].m = m;
		m->vcpus[i].index = i;
		r = m->be->vcpu_create(m->vm, i, &m->vcpus[i].bv);
		if (r < 0) {
			log_err("cannot create vCPU %u: %s", i, strerror(-r));
			return STATUS_ERROR;
		}
	}
	/* what needs every vCPU (arm64: the GIC), before any state is set */
	if (m->arch_ops->vm_ready)
		r = m->arch_ops->vm_ready(m);
	else if (BACKEND_OP_SINCE(m, 5, vm_ready))
		r = m->be->vm_ready(m->vm, m->arch_ops->tag, NULL, 0);
	if (r < 0) {
		log_err("the backend could not finish the VM: %s", strerror(-r));
		return STATUS_ERROR;
	}
	return 0;
}

/* The boot CPU's entry state, through the backend op of its arch. */
static int machine_set_boot(struct machine *m, const struct arch_boot *boot)
{
	switch (boot->arch) {
	case SMOL_ARCH_X86_64: return m->be->vcpu_set_x86_boot(m->vcpus[0].bv, &boot->u.x86);
	case SMOL_ARCH_AARCH64:
		if (!BACKEND_OP_SINCE(m, 5, vcpu_set_boot))
			return -ENOTSUP;
		return m->be->vcpu_set_boot(m->vcpus[0].bv, SMOL_ARCH_AARCH64, &boot->u.arm64,
		                            sizeof(boot->u.arm64));
	default: return -ENOTSUP;
	}
}

int machine_boot(struct machine *m)
{
	struct arch_boot boot;
	int r;

	/* RAM and the payload come first: a bad kernel is reported before any VM exists */
	r = machine_load_payload(m, &boot);
	if (r < 0)
		return r == -EINVAL ? STATUS_CONFIG : STATUS_ERROR;
	r = machine_create_vm(m);
	if (r)
		return r;
	r = machine_set_boot(m, &boot);
	if (r < 0) {
		log_err("cannot set the boot CPU's registers: %s", strerror(-r));
		return STATUS_ERROR;
	}
	r = notify_attach(m);
	if (r < 0)
		return STATUS_ERROR;
	/* levels devices set before the VM existed */
	pthread_mutex_lock(&m->irq_lock);
	for (uint32_t i = 0; i < m->n_irqs; i++)
		if (m->irq_level[i])
			m->be->irq_line(m->vm, i, 1);
	pthread_mutex_unlock(&m->irq_lock);
	return -1;
}

int machine_run(struct machine *m)
{
	int r, sfd;

	/* SIGINT/SIGTERM/SIGHUP arrive on the event loop while the machine runs (signals.c) */
	sfd = signals_serve_start();
	if (sfd < 0 || evloop_watch(&m->loop, sfd, SMOL_FD_IN, NULL, on_signal, m) < 0) {
		log_err("cannot serve signals on the event loop");
		signals_serve_stop();
		return STATUS_ERROR;
	}
	if (m->control_path && control_start(m) < 0) {
		evloop_unwatch(&m->loop, sfd, NULL);
		signals_serve_stop();
		return STATUS_CONFIG; /* it said why; nothing ran */
	}

	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	m->started_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	m->running = true;
	if (seccomp_prepare(m) < 0)
		machine_request_exit(m, STATUS_ERROR);
	uint32_t started = 0;
	for (uint32_t i = 0; i < m->n_vcpus && !machine_stopping(m); i++, started++) {
		r = vcpu_start(&m->vcpus[i]);
		if (r < 0) {
			log_err("cannot start vCPU %u's thread: %s", i, strerror(-r));
			machine_request_exit(m, STATUS_ERROR);
			break;
		}
	}
	(void)seccomp_lock_down(m, started); /* the guest runs from here */
	while (!machine_stopping(m)) {
		r = evloop_run_once(&m->loop, -1);
		if (r < 0) {
			log_err("event loop: %s", strerror(-r));
			machine_request_exit(m, STATUS_ERROR);
		}
		snapshot_serve_request(m);
	}
	control_stop(m); /* a --stop reply goes out now, and the socket goes away */
	stop_vcpus(m);
	/* -v: where each vCPU was when the run ended (a hung guest stopped by a signal, say) */
	if (log_level >= SMOL_LOG_DEBUG && m->be->vcpu_dump) {
		for (uint32_t i = 0; i < m->n_vcpus; i++) {
			char buf[4096] = "";
			if (m->vcpus[i].bv &&
			    m->be->vcpu_dump(m->vcpus[i].bv, buf, sizeof(buf)) >= 0)
				log_debug("vCPU %u at the end of the run (%llu exits):\n%s", i,
				          (unsigned long long)m->vcpus[i].exits, buf);
		}
	}
	evloop_unwatch(&m->loop, sfd, NULL);
	signals_serve_stop();
	return m->exit_status;
}

void machine_destroy(struct machine *m)
{
	if (m->vcpus) {
		for (uint32_t i = 0; i < m->n_vcpus; i++)
			if (m->vcpus[i].bv)
				m->be->vcpu_destroy(m->vcpus[i].bv);
		free(m->vcpus);
		m->vcpus = NULL;
	}
	notify_free(m);
	dev_destroy_all(m);
	describe_free(m);
	if (m->vm) {
		m->be->vm_destroy(m->vm);
		m->vm = NULL;
	}
	evloop_free(&m->loop);
	mem_free(&m->mem);
	bus_free(&m->mmio);
	bus_free(&m->pio);
	plugin_path_free(&m->pp);
	free(m->kernel_path);
	free(m->name);
	free(m->initrd_path);
	free(m->snap_path);
	pthread_mutex_destroy(&m->irq_lock);
	pthread_mutex_destroy(&m->run_lock);
	pthread_cond_destroy(&m->run_cond);
}
