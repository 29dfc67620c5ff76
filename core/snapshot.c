/* snapshot.c: a paused machine into a .smolmachine file (snapshot_take), and a configured
 * machine out of one (snapshot_restore). The file's layout is snapfile.c's business; this file
 * decides what goes in: the machine description, the core's own state (IRQ line levels), the
 * backend's VM and vCPU blobs, one section per device, and guest RAM.
 *
 * A device section: u16 length of the plugin's name, the name (no NUL), u32 the state version
 * the device declared, u32 zero, then the device's own bytes. The core section: u32
 * SNAP_CORE_VERSION, u32 vCPUs, u64 RAM bytes, u32 number of IRQ lines, one byte per line (its
 * level). All little-endian. */
#define _GNU_SOURCE
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device.h"
#include "le.h"
#include "log.h"
#include "machine.h"
#include "notify.h"
#include "snapfile.h"
#include "vcpu.h"

#ifndef SMOLVM_VERSION
#define SMOLVM_VERSION "0.0.0"
#endif

/* Largest state the core accepts from one device or backend blob. */
#define SNAP_BLOB_MAX (64u << 20)

bool snapshot_backend_ok(const struct machine *m)
{
	return BACKEND_HAS_OP(m, vm_cpu_info) && BACKEND_HAS_OP(m, vm_save) &&
	       BACKEND_HAS_OP(m, vm_load) && BACKEND_HAS_OP(m, vcpu_save) &&
	       BACKEND_HAS_OP(m, vcpu_load);
}

static bool dev_has_pause_resume(const struct smol_dev *d)
{
	return DEV_HAS_OP_1_3(d, pause) && DEV_HAS_OP_1_3(d, resume);
}

/* ---- device streams (the host table's snap_* functions) ------------------------------ */

struct smol_snap_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t version;
	int error;
};

struct smol_snap_reader {
	const uint8_t *buf;
	size_t len, pos;
	uint32_t version;
};

void snap_host_set_version(struct smol_snap_writer *w, uint32_t version)
{
	w->version = version;
}

int snap_host_write(struct smol_snap_writer *w, const void *data, size_t len)
{
	if (w->error)
		return w->error;
	if (len > SNAP_BLOB_MAX - w->len) {
		w->error = -EFBIG;
		return w->error;
	}
	if (w->len + len > w->cap) {
		size_t cap = w->cap ? w->cap : 1024;
		while (cap < w->len + len)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			w->error = -ENOMEM;
			return w->error;
		}
		w->buf = b;
		w->cap = cap;
	}
	if (len)
		memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

uint32_t snap_host_version(struct smol_snap_reader *r)
{
	return r->version;
}

int snap_host_read(struct smol_snap_reader *r, void *data, size_t len)
{
	if (len > r->len - r->pos)
		return -EBADMSG;
	if (len)
		memcpy(data, r->buf + r->pos, len);
	r->pos += len;
	return 0;
}

size_t snap_host_remaining(struct smol_snap_reader *r)
{
	return r->len - r->pos;
}

/* ---- saving -------------------------------------------------------------------------- */

/* A backend blob, grown until it fits. 0 with a malloc'd buffer, or a negative errno. */
static int get_blob(struct machine *m, struct smol_vcpu *v, uint8_t **out, size_t *out_len)
{
	size_t cap = 16384, len = 0;
	for (int tries = 0; tries < 4; tries++) {
		uint8_t *buf = malloc(cap);
		if (!buf)
			return -ENOMEM;
		uint32_t arch = m->arch_ops->tag;
		int r = v ? m->be->vcpu_save(v, arch, buf, cap, &len)
		          : m->be->vm_save(m->vm, arch, buf, cap, &len);
		if (r == 0 && len <= cap) {
			*out = buf;
			*out_len = len;
			return 0;
		}
		free(buf);
		if (r != -ENOSPC)
			return r < 0 ? r : -EIO;
		if (len <= cap || len > SNAP_BLOB_MAX)
			return -EFBIG;
		cap = len;
	}
	return -EAGAIN;
}

static int add_core_section(struct machine *m, struct snap_writer *w, char *err, size_t errlen)
{
	uint8_t buf[4 + 4 + 8 + 4 + ARCH_MAX_IRQS];
	le_put(buf, SNAP_CORE_VERSION, 4);
	le_put(buf + 4, m->n_vcpus, 4);
	le_put(buf + 8, m->ram_size, 8);
	le_put(buf + 16, m->n_irqs, 4);
	pthread_mutex_lock(&m->irq_lock);
	for (uint32_t i = 0; i < m->n_irqs; i++)
		buf[20 + i] = (uint8_t)m->irq_level[i];
	pthread_mutex_unlock(&m->irq_lock);
	return snapfile_add(w, SNAP_SEC_CORE, "", buf, 20 + (size_t)m->n_irqs, err, errlen);
}

static int add_device_section(struct smol_dev *d, struct snap_writer *w, char *err, size_t errlen)
{
	struct smol_snap_writer sw = { .version = 1 };
	const char *plugin = d->plugin->desc->name;
	size_t nlen = strlen(plugin);
	uint8_t hdr[2 + 255 + 8];
	int r;

	if (nlen > 255) {
		snprintf(err, errlen, "%s: plugin name too long", d->label);
		return -EINVAL;
	}
	dev_lock(d);
	r = d->ops->save(d->state, &sw);
	dev_unlock(d);
	if (r == 0 && sw.error)
		r = sw.error;
	if (r < 0) {
		snprintf(err, errlen, "%s: save failed: %s", d->label, strerror(-r));
		free(sw.buf);
		return r;
	}
	le_put(hdr, nlen, 2);
	memcpy(hdr + 2, plugin, nlen);
	le_put(hdr + 2 + nlen, sw.version, 4);
	le_put(hdr + 6 + nlen, 0, 4);
	size_t hlen = 10 + nlen;
	uint8_t *sec = malloc(hlen + sw.len);
	if (!sec) {
		free(sw.buf);
		return -ENOMEM;
	}
	memcpy(sec, hdr, hlen);
	if (sw.len)
		memcpy(sec + hlen, sw.buf, sw.len);
	free(sw.buf);
	r = snapfile_add(w, SNAP_SEC_DEVICE, d->name, sec, hlen + sw.len, err, errlen);
	free(sec);
	return r;
}

/* Everything but memory, then memory, into an open writer. The machine is paused. */
static int write_sections(struct machine *m, struct snap_writer *w, char *err, size_t errlen)
{
	uint8_t *blob;
	size_t len;
	int r;

	char *text = cfg_serialize(m->cfg);
	if (!text)
		return -ENOMEM;
	r = snapfile_add(w, SNAP_SEC_MACHINE, "", text, strlen(text), err, errlen);
	free(text);
	if (r < 0)
		return r;
	if ((r = add_core_section(m, w, err, errlen)) < 0)
		return r;
	if ((r = get_blob(m, NULL, &blob, &len)) < 0) {
		snprintf(err, errlen, "the backend could not save the VM's state: %s",
		         strerror(-r));
		return r;
	}
	r = snapfile_add(w, SNAP_SEC_VM, "", blob, len, err, errlen);
	free(blob);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < m->n_vcpus; i++) {
		char name[16];
		if ((r = get_blob(m, m->vcpus[i].bv, &blob, &len)) < 0) {
			snprintf(err, errlen, "the backend could not save vCPU %u: %s", i,
			         strerror(-r));
			return r;
		}
		snprintf(name, sizeof(name), "%u", i);
		r = snapfile_add(w, SNAP_SEC_VCPU, name, blob, len, err, errlen);
		free(blob);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < m->n_devs; i++)
		if ((r = add_device_section(m->devs[i], w, err, errlen)) < 0)
			return r;
	return snapfile_add_memory(w, m->mem.host, m->mem.size, m->mem.fd, err, errlen);
}

int snapshot_take(struct machine *m, const char *path, bool stop, char *err, size_t errlen)
{
	struct snap_info info;
	struct snap_writer *w = NULL;
	struct timespec t0, t1;
	int r;

	if (!snapshot_backend_ok(m)) {
		snprintf(err, errlen, "the %s backend (%s) cannot save a machine (ABI %u.%u)",
		         m->backend_name, m->backend->path, m->backend->desc->abi_major,
		         m->backend->desc->abi_minor);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < m->n_devs; i++) {
		const struct smol_dev *d = m->devs[i];
		if (!DEV_HAS_OP_1_3(d, save)) {
			snprintf(err, errlen,
			         "%s cannot be saved: its plugin (%s, ABI %u.%u) has no save()",
			         d->label, d->plugin->path, d->plugin->desc->abi_major,
			         d->plugin->desc->abi_minor);
			return -ENOTSUP;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = machine_pause(m);
	if (r < 0) {
		snprintf(err, errlen, "the machine could not be paused: %s",
		         r == -EINVAL ? "it is not running" : strerror(-r));
		return r;
	}
	memset(&info, 0, sizeof(info));
	info.format_version = SNAPFILE_VERSION;
	info.arch = m->arch_ops->tag;
	snprintf(info.smolvm_version, sizeof(info.smolvm_version), "%s", SMOLVM_VERSION);
	snprintf(info.backend, sizeof(info.backend), "%s", m->backend->desc->name);
	info.ram_size = m->mem.size;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	info.created_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	r = info.arch == SMOL_ARCH_X86_64
	            ? m->be->vm_cpu_info(m->vm, SMOL_ARCH_X86_64, &info.cpu, sizeof(info.cpu))
	            : 0;
	if (r < 0) {
		snprintf(err, errlen, "the backend could not describe the CPU: %s", strerror(-r));
		goto out;
	}
	r = snapfile_create(&w, path, &info, err, errlen);
	if (r < 0)
		goto out;
	r = write_sections(m, w, err, errlen);
	if (r < 0) {
		snapfile_abort(w);
		goto out;
	}
	r = snapfile_commit(w, err, errlen);
	if (r == 0) {
		/* a guest may ask again and again (then = continue): the first ten are told */
		clock_gettime(CLOCK_MONOTONIC, &t1);
		log_msg(++m->n_snapshots <= 10 ? SMOL_LOG_INFO : SMOL_LOG_DEBUG, NULL,
		        "snapshot written to %s in %.1f ms", path,
		        (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		                (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	}
out:
	if (r == 0 && stop) {
		machine_request_exit(m, STATUS_OK); /* before the vCPUs are let go: they leave */
		machine_end_paused(m);
	} else {
		machine_resume(m);
	}
	return r;
}

void machine_request_snapshot(struct machine *m, struct smol_dev *dev)
{
	if (!m->snap_path) {
		static int warned;
		if (!__atomic_exchange_n(&warned, 1, __ATOMIC_SEQ_CST))
			log_warn("%s asked for a snapshot, but the machine has no [snapshot] "
			         "section: ignored",
			         dev->label);
		return;
	}
	/* The asking vCPU (this thread, inside its port handler) must not run one more guest
	 * instruction: it parks as soon as the handler returns, and the others as they see the
	 * flag or the pause's kick. The event loop then takes the snapshot. */
	__atomic_store_n(&m->snap_requested, 1, __ATOMIC_SEQ_CST); /* first: release_vcpus */
	__atomic_store_n(&m->pause_req, 1, __ATOMIC_SEQ_CST);
	evloop_wake(&m->loop);
}

void snapshot_serve_request(struct machine *m)
{
	char err[1024];
	if (!__atomic_exchange_n(&m->snap_requested, 0, __ATOMIC_SEQ_CST))
		return;
	if (machine_stopping(m)) {
		machine_release_request(m);
		return;
	}
	int r = snapshot_take(m, m->snap_path, m->snap_then_stop, err, sizeof(err));
	if (r < 0) {
		log_err("snapshot to %s failed: %s", m->snap_path, err);
		if (m->snap_then_stop) /* the run was to end with the file: it ends without */
			machine_request_exit(m, STATUS_ERROR);
	}
	machine_release_request(m);
}

/* ---- restoring ----------------------------------------------------------------------- */

static const char *cpu_word_names[SMOL_X86_CPU_WORDS] = {
	"CPUID 1 ecx",     "CPUID 1 edx",          "CPUID 7.0 ebx",        "CPUID 7.0 ecx",
	"CPUID 7.0 edx",   "CPUID 0x80000001 ecx", "CPUID 0x80000001 edx", "CPUID 0xd.1 eax",
	"XCR0 bits (low)", "XCR0 bits (high)",     "CPUID 0x80000007 edx", "CPUID 0x80000008 ebx",
};

/* The saved guest must not have seen a CPU this host cannot show it. */
static int check_cpu(struct machine *m, const struct snap_info *info, const char *file)
{
	struct smol_x86_cpu_info now;
	if (info->arch != SMOL_ARCH_X86_64)
		return 0; /* only x86's CPU is recorded */
	memset(&now, 0, sizeof(now));
	int r = m->be->vm_cpu_info(m->vm, SMOL_ARCH_X86_64, &now, sizeof(now));
	if (r < 0) {
		log_err("%s: the backend cannot describe this host's CPU: %s", file, strerror(-r));
		return STATUS_ERROR;
	}
	if (memcmp(now.vendor, info->cpu.vendor, sizeof(now.vendor)) != 0) {
		log_err("%s: the snapshot's guest ran on a %.12s CPU; this host's is %.12s", file,
		        info->cpu.vendor, now.vendor);
		return STATUS_CONFIG;
	}
	if (info->cpu.n_words < SMOL_X86_CPU_WORDS || now.n_words < SMOL_X86_CPU_WORDS) {
		log_err("%s: the snapshot records %u CPU feature words, this host's backend %u; "
		        "%d are needed to compare them",
		        file, info->cpu.n_words, now.n_words, SMOL_X86_CPU_WORDS);
		return STATUS_CONFIG;
	}
	uint32_t n = SMOL_X86_CPU_WORDS;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t lacking = info->cpu.words[i] & ~now.words[i];
		if (lacking) {
			log_err("%s: the guest was shown CPU features this host lacks: %s bit %d "
			        "(mask 0x%08x)",
			        file, cpu_word_names[i], __builtin_ctz(lacking), lacking);
			return STATUS_CONFIG;
		}
	}
	return 0;
}

static int load_core_section(struct machine *m, struct snap_reader *sr, const char *file)
{
	const uint8_t *p;
	size_t len;
	if (snapfile_section(sr, SNAP_SEC_CORE, "", (const void **)&p, &len) < 0 || len < 20) {
		log_err("%s: the snapshot has no core section", file);
		return STATUS_CONFIG;
	}
	uint32_t version = (uint32_t)le_get(p, 4), n_irqs = (uint32_t)le_get(p + 16, 4);
	if (version != SNAP_CORE_VERSION) {
		log_err("%s: core state version %u; this smolvm reads version %u", file, version,
		        SNAP_CORE_VERSION);
		return STATUS_CONFIG;
	}
	if (le_get(p + 4, 4) != m->n_vcpus || le_get(p + 8, 8) != m->ram_size ||
	    n_irqs != m->n_irqs || len != 20 + (size_t)n_irqs) {
		log_err("%s: the core section does not match the machine it describes (vCPUs, RAM "
		        "or IRQ lines)",
		        file);
		return STATUS_CONFIG;
	}
	/* Lines that were high go high again in the new VM before its interrupt controllers
	 * are loaded (which then overwrite what the edge delivered): the in-kernel line state
	 * and the devices' own view agree again, without a spurious interrupt. */
	pthread_mutex_lock(&m->irq_lock);
	for (uint32_t i = 0; i < m->n_irqs; i++) {
		m->irq_level[i] = p[20 + i] ? 1 : 0;
		if (m->irq_level[i])
			m->be->irq_line(m->vm, i, 1);
	}
	pthread_mutex_unlock(&m->irq_lock);
	return 0;
}

static int load_device(struct smol_dev *d, const uint8_t *p, size_t len, const char *file)
{
	if (len < 2 || len < 10 + (size_t)le_get(p, 2)) {
		log_err("%s: the state of device '%s' is malformed", file, d->name);
		return STATUS_CONFIG;
	}
	size_t nlen = (size_t)le_get(p, 2);
	const char *plugin = d->plugin->desc->name;
	if (nlen != strlen(plugin) || memcmp(p + 2, plugin, nlen) != 0) {
		log_err("%s: device '%s' was a '%.*s' device when saved; the machine now makes it "
		        "a '%s'",
		        file, d->name, (int)nlen, (const char *)(p + 2), plugin);
		return STATUS_CONFIG;
	}
	uint32_t version = (uint32_t)le_get(p + 2 + nlen, 4);
	if (!DEV_HAS_OP_1_3(d, load)) {
		log_err("%s: %s cannot load its saved state: its plugin (%s, ABI %u.%u) has no "
		        "load()",
		        file, d->label, d->plugin->path, d->plugin->desc->abi_major,
		        d->plugin->desc->abi_minor);
		return STATUS_CONFIG;
	}
	struct smol_snap_reader r = { .buf = p + 10 + nlen,
		                      .len = len - 10 - nlen,
		                      .version = version };
	dev_lock(d);
	/* paused until the whole machine is restored: a device that starts on work waiting in
	 * its state (a disk's posted requests) must not touch the image if a later device
	 * refuses the restore */
	if (dev_has_pause_resume(d))
		d->ops->pause(d->state);
	int e = d->ops->load(d->state, &r);
	dev_unlock(d);
	if (e == 0 && r.pos != r.len) {
		log_err("%s: %s left %zu bytes of its state (version %u) unread", file, d->label,
		        r.len - r.pos, version);
		return STATUS_CONFIG;
	}
	if (e < 0) {
		log_err("%s: %s could not load its state (version %u): %s", file, d->label, version,
		        e == -ENOTSUP ? "a version it does not know"
		                      : strerror(e < -4095 ? EINVAL : -e));
		return STATUS_CONFIG;
	}
	return 0;
}

struct extra_check {
	struct machine *m;
	const char *file;
	int status;
};

static void check_known_device(void *opaque, const char *name, const void *data, size_t len)
{
	struct extra_check *x = opaque;
	(void)data;
	(void)len;
	for (size_t i = 0; i < x->m->n_devs; i++)
		if (strcmp(x->m->devs[i]->name, name) == 0)
			return;
	if (!x->status)
		log_err("%s: the snapshot holds device '%s', which the machine no longer has",
		        x->file, name);
	x->status = STATUS_CONFIG;
}

static int load_devices(struct machine *m, struct snap_reader *sr, const char *file)
{
	struct extra_check x = { m, file, 0 };
	snapfile_each(sr, SNAP_SEC_DEVICE, check_known_device, &x);
	if (x.status)
		return x.status;
	for (size_t i = 0; i < m->n_devs; i++) {
		const void *p;
		size_t len;
		if (snapfile_section(sr, SNAP_SEC_DEVICE, m->devs[i]->name, &p, &len) < 0) {
			log_err("%s: the snapshot has no state for device '%s'", file,
			        m->devs[i]->name);
			return STATUS_CONFIG;
		}
		int r = load_device(m->devs[i], p, len, file);
		if (r)
			return r;
	}
	return 0;
}

int snapshot_restore(struct machine *m, struct snap_reader *sr)
{
	const struct snap_info *info = snapfile_info(sr);
	const char *file = m->cfg->path;
	char err[1024];
	const void *blob;
	size_t len;
	void *host;
	int r;

	if (!snapshot_backend_ok(m)) {
		log_err("%s: the %s backend (%s) cannot restore a machine", file, m->backend_name,
		        m->backend->path);
		return STATUS_CONFIG;
	}
	if (info->arch != m->arch_ops->tag) {
		log_err("%s: the snapshot's machine is not an %s machine (arch tag %u)", file,
		        m->arch_ops->name, info->arch);
		return STATUS_CONFIG;
	}
	if (strcmp(info->backend, m->backend->desc->name) != 0) {
		log_err("%s: saved by the '%s' backend; this machine uses '%s'", file,
		        info->backend, m->backend->desc->name);
		return STATUS_CONFIG;
	}
	if (info->ram_size != m->ram_size || m->mem.size != m->ram_size) {
		log_err("%s: the snapshot holds %llu bytes of RAM; the machine has %llu", file,
		        (unsigned long long)info->ram_size, (unsigned long long)m->ram_size);
		return STATUS_CONFIG;
	}
	r = snapfile_map_memory(sr, &host, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return STATUS_ERROR;
	}
	m->mem.host = host;
	m->mem.fd = -1;
	r = machine_create_vm(m);
	if (r)
		return r;
	if ((r = check_cpu(m, info, file)) != 0)
		return r;
	if ((r = load_core_section(m, sr, file)) != 0)
		return r;
	if (snapfile_section(sr, SNAP_SEC_VM, "", &blob, &len) < 0) {
		log_err("%s: the snapshot has no VM section", file);
		return STATUS_CONFIG;
	}
	if ((r = m->be->vm_load(m->vm, m->arch_ops->tag, blob, len)) < 0) {
		log_err("%s: the backend could not load the VM's state: %s", file, strerror(-r));
		return STATUS_CONFIG;
	}
	for (uint32_t i = 0; i < m->n_vcpus; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%u", i);
		if (snapfile_section(sr, SNAP_SEC_VCPU, name, &blob, &len) < 0) {
			log_err("%s: the snapshot has no state for vCPU %u", file, i);
			return STATUS_CONFIG;
		}
		if ((r = m->be->vcpu_load(m->vcpus[i].bv, m->arch_ops->tag, blob, len)) < 0) {
			log_err("%s: the backend could not load vCPU %u: %s", file, i,
			        r == -ENOTSUP ? "this host lacks a CPU feature the guest saw"
			                      : strerror(-r));
			return STATUS_CONFIG;
		}
	}
	if (notify_attach(m) < 0)
		return STATUS_ERROR;
	if ((r = load_devices(m, sr, file)) != 0)
		return r;
	/* x86: a new VM generation ID, and the guest told (Linux reseeds its RNG): after the
	 * LAPICs are loaded, or loading them would drop the interrupt */
	if (m->arch_ops->restored && m->arch_ops->restored(m) < 0)
		log_warn("%s: the guest was not told of its new VM generation ID: clones may share "
		         "random numbers",
		         file);
	for (size_t i = 0; i < m->n_devs; i++) {
		struct smol_dev *d = m->devs[i];
		if (dev_has_pause_resume(d)) {
			dev_lock(d);
			d->ops->resume(d->state);
			dev_unlock(d);
		}
	}
	machine_tell_paused(m);
	log_debug("%s: restored (%u vCPUs, %zu devices, %llu MiB of RAM mapped from the file)",
	          file, m->n_vcpus, m->n_devs, (unsigned long long)(m->ram_size >> 20));
	return -1;
}
