/* vm-state.c: what the guest is shown of its CPU (vm_cpu_info), and the VM-wide state as a
 * versioned blob (vm_save, vm_load): both 8259 PICs, the I/O APIC, the PIT and the KVM clock.
 *
 * The blob (blob.h framing, magic "KVVM", version 1), sections in this order:
 *   INFO  vCPU count u32
 *   PIC0  the master 8259 (KVM_GET_IRQCHIP 0): last_irr irr imr isr priority_add irq_base
 *   PIC1  read_reg_select poll special_mask init_state auto_eoi rotate_on_auto_eoi
 *         special_fully_nested_mode init4 elcr elcr_mask, u8 each; PIC1 the slave, alike
 *   IOAP  base_address u64, ioregsel id irr u32, 24 redirection entries u64
 *   PIT2  flags u32, 3 channels x (count u32, latched_count u16, count_latched status_latched
 *         status read_state write_state write_latch rw_mode mode bcd gate u8, count_load_time
 *         s64)
 *   CLCK  kvmclock ns u64, KVM_GET_CLOCK flags u32, CLOCK_REALTIME ns u64 (KVM's own when
 *         flags has KVM_CLOCK_REALTIME, else read right after KVM_GET_CLOCK), host TSC u64
 *
 * vm_load sets the irqchips, the PIT and the clock; the clock moves on by the CLOCK_REALTIME
 * time that passed since the save (KVM_CLOCK_REALTIME does it in the kernel where offered), so
 * the guest's wall clock is the host's time now.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "blob.h"
#include "cpuid.h"
#include "kvm.h"

_Static_assert(KVM_CPU_WORDS == SMOL_X86_CPU_WORDS, "cpuid.c's words are sdk.h's");

#define VM_MAGIC BLOB_TAG('K', 'V', 'V', 'M')
#define VM_VERSION 1
#define TAG_CLCK BLOB_TAG('C', 'L', 'C', 'K')

int kvm_vm_cpu_info(struct smol_vm *vm, uint32_t arch, void *info, size_t len)
{
	if (arch != SMOL_ARCH_X86_64)
		return -ENOTSUP;
	if (!info || len < sizeof(struct smol_x86_cpu_info))
		return -EINVAL;
	struct kvm_cpuid2 *c = vm->given ? vm->given : kvm_host_cpuid(vm, 0, -1);
	if (!c)
		return -ENOMEM;
	struct smol_x86_cpu_info *ci = info;
	memset(ci, 0, sizeof(*ci));
	ci->struct_size = sizeof(*ci);
	ci->n_words = SMOL_X86_CPU_WORDS;
	kvm_cpuid_info(c, ci->vendor, &ci->signature, ci->words);
	if (c != vm->given)
		free(c);
	return 0;
}

struct vmstate {
	uint32_t n_vcpus;
	struct kvm_irqchip chip[3]; /* PIC master, PIC slave, IOAPIC */
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	uint64_t realtime; /* CLOCK_REALTIME ns at KVM_GET_CLOCK */
};

static int vm_io(struct smol_vm *vm, unsigned long req, void *arg, const char *name)
{
	if (ioctl(vm->vm_fd, req, arg) < 0) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "%s: %s", name, strerror(e));
		return -e;
	}
	return 0;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The KVM clock paired with the wall clock. Without KVM_CLOCK_REALTIME (a host whose clocksource
 * is not the TSC, as in the test nest) the pair is read in two steps, and a thread preempted
 * between them pairs the clock with a later wall time: the restored guest would then lose the
 * time it was off the CPU (a restore in the nest found its guest's clock 2 s behind). The wall
 * clock is read on both sides of the KVM clock, and the read is done again (a few times at
 * most) until both sides are close; the midpoint is used.
 */
#define CLOCK_PAIR_NS 1000000ull /* 1 ms */
#define CLOCK_PAIR_TRIES 8

static int get_clock_pair(struct smol_vm *vm, struct kvm_clock_data *clock, uint64_t *realtime)
{
	uint64_t best = UINT64_MAX;
	for (int k = 0; k < CLOCK_PAIR_TRIES && best > CLOCK_PAIR_NS; k++) {
		struct kvm_clock_data c;
		uint64_t t0 = realtime_ns();
		int r = vm_io(vm, KVM_GET_CLOCK, &c, "KVM_GET_CLOCK");
		uint64_t t1 = realtime_ns();
		if (r)
			return r;
		if (c.flags & KVM_CLOCK_REALTIME) { /* the kernel paired them itself */
			*clock = c;
			*realtime = c.realtime;
			return 0;
		}
		if (t1 - t0 < best) {
			best = t1 - t0;
			*clock = c;
			*realtime = t0 + (t1 - t0) / 2;
		}
	}
	return 0;
}

static void put_pic(struct blob_w *w, uint32_t tag, const struct kvm_pic_state *p)
{
	size_t at = bw_begin(w, tag);
	const uint8_t b[16] = { p->last_irr,
		                p->irr,
		                p->imr,
		                p->isr,
		                p->priority_add,
		                p->irq_base,
		                p->read_reg_select,
		                p->poll,
		                p->special_mask,
		                p->init_state,
		                p->auto_eoi,
		                p->rotate_on_auto_eoi,
		                p->special_fully_nested_mode,
		                p->init4,
		                p->elcr,
		                p->elcr_mask };
	bw_bytes(w, b, sizeof(b));
	bw_end(w, at);
}

static void get_pic(struct blob_r *r, uint32_t tag, struct kvm_pic_state *p)
{
	struct blob_r c;
	uint8_t b[16];
	if (!br_section(r, tag, &c))
		return;
	br_bytes(&c, b, sizeof(b));
	p->last_irr = b[0], p->irr = b[1], p->imr = b[2], p->isr = b[3];
	p->priority_add = b[4], p->irq_base = b[5], p->read_reg_select = b[6], p->poll = b[7];
	p->special_mask = b[8], p->init_state = b[9], p->auto_eoi = b[10];
	p->rotate_on_auto_eoi = b[11], p->special_fully_nested_mode = b[12], p->init4 = b[13];
	p->elcr = b[14], p->elcr_mask = b[15];
	if (!br_done(&c))
		r->bad = true;
}

static void put_state(struct blob_w *w, const struct vmstate *s)
{
	size_t at = bw_begin(w, BLOB_TAG('I', 'N', 'F', 'O'));
	bw_u32(w, s->n_vcpus);
	bw_end(w, at);
	put_pic(w, BLOB_TAG('P', 'I', 'C', '0'), &s->chip[0].chip.pic);
	put_pic(w, BLOB_TAG('P', 'I', 'C', '1'), &s->chip[1].chip.pic);

	const struct kvm_ioapic_state *io = &s->chip[2].chip.ioapic;
	at = bw_begin(w, BLOB_TAG('I', 'O', 'A', 'P'));
	bw_u64(w, io->base_address);
	bw_u32(w, io->ioregsel);
	bw_u32(w, io->id);
	bw_u32(w, io->irr);
	for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		bw_u64(w, io->redirtbl[i].bits);
	bw_end(w, at);

	at = bw_begin(w, BLOB_TAG('P', 'I', 'T', '2'));
	bw_u32(w, s->pit.flags);
	for (unsigned i = 0; i < 3; i++) {
		const struct kvm_pit_channel_state *ch = &s->pit.channels[i];
		bw_u32(w, ch->count);
		bw_u16(w, ch->latched_count);
		const uint8_t b[10] = { ch->count_latched, ch->status_latched, ch->status,
			                ch->read_state,    ch->write_state,    ch->write_latch,
			                ch->rw_mode,       ch->mode,           ch->bcd,
			                ch->gate };
		bw_bytes(w, b, sizeof(b));
		bw_u64(w, (uint64_t)ch->count_load_time);
	}
	bw_end(w, at);

	at = bw_begin(w, TAG_CLCK);
	bw_u64(w, s->clock.clock);
	bw_u32(w, s->clock.flags);
	bw_u64(w, s->realtime);
	bw_u64(w, s->clock.host_tsc);
	bw_end(w, at);
}

static int decode(struct smol_vm *vm, const void *buf, size_t len, struct vmstate *s)
{
	struct blob_r r, c;
	int ver = br_open(&r, buf, len, VM_MAGIC, VM_VERSION, vm->host, "VM state");
	if (ver < 0)
		return ver;
	if (!br_section(&r, BLOB_TAG('I', 'N', 'F', 'O'), &c))
		return -EINVAL;
	s->n_vcpus = br_u32(&c);
	if (!br_done(&c))
		return -EINVAL;
	if (s->n_vcpus != vm->n_vcpus) {
		br_fail(&c, "saved from a VM of %u vCPUs, this one has %u", s->n_vcpus,
		        vm->n_vcpus);
		return -EINVAL;
	}
	get_pic(&r, BLOB_TAG('P', 'I', 'C', '0'), &s->chip[0].chip.pic);
	get_pic(&r, BLOB_TAG('P', 'I', 'C', '1'), &s->chip[1].chip.pic);

	struct kvm_ioapic_state *io = &s->chip[2].chip.ioapic;
	if (!br_section(&r, BLOB_TAG('I', 'O', 'A', 'P'), &c))
		return -EINVAL;
	io->base_address = br_u64(&c);
	io->ioregsel = br_u32(&c);
	io->id = br_u32(&c);
	io->irr = br_u32(&c);
	for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		io->redirtbl[i].bits = br_u64(&c);
	if (!br_done(&c) || !br_section(&r, BLOB_TAG('P', 'I', 'T', '2'), &c))
		return -EINVAL;
	s->pit.flags = br_u32(&c);
	for (unsigned i = 0; i < 3; i++) {
		struct kvm_pit_channel_state *ch = &s->pit.channels[i];
		uint8_t b[10];
		ch->count = br_u32(&c);
		ch->latched_count = br_u16(&c);
		br_bytes(&c, b, sizeof(b));
		ch->count_latched = b[0], ch->status_latched = b[1], ch->status = b[2];
		ch->read_state = b[3], ch->write_state = b[4], ch->write_latch = b[5];
		ch->rw_mode = b[6], ch->mode = b[7], ch->bcd = b[8], ch->gate = b[9];
		ch->count_load_time = (int64_t)br_u64(&c);
		if (!c.bad && (ch->count > 0x10000 || ch->rw_mode > 3)) {
			br_fail(&c, "channel %u: count %u, read/write mode %u out of range", i,
			        ch->count, ch->rw_mode);
			return -EINVAL;
		}
	}
	if (!br_done(&c) || !br_section(&r, TAG_CLCK, &c))
		return -EINVAL;
	s->clock.clock = br_u64(&c);
	s->clock.flags = br_u32(&c);
	s->realtime = br_u64(&c);
	s->clock.host_tsc = br_u64(&c);
	if (!br_done(&c) || !br_end(&r))
		return -EINVAL;
	return 0;
}

int kvm_vm_save(struct smol_vm *vm, uint32_t arch, void *buf, size_t cap, size_t *len)
{
	if (arch != SMOL_ARCH_X86_64) {
		LOG(vm, SMOL_LOG_ERROR, "VM state for arch %u asked of the x86_64 backend", arch);
		return -ENOTSUP;
	}
	struct vmstate s;
	int r;
	memset(&s, 0, sizeof(s));
	s.n_vcpus = vm->n_vcpus;
	for (uint32_t i = 0; i < 3; i++) {
		s.chip[i].chip_id = i;
		if ((r = vm_io(vm, KVM_GET_IRQCHIP, &s.chip[i], "KVM_GET_IRQCHIP")))
			return r;
	}
	if ((r = vm_io(vm, KVM_GET_PIT2, &s.pit, "KVM_GET_PIT2")) ||
	    (r = get_clock_pair(vm, &s.clock, &s.realtime)))
		return r;

	struct blob_w w;
	bw_init(&w, buf, cap, VM_MAGIC, VM_VERSION);
	put_state(&w, &s);
	bw_finish(&w);
	*len = w.pos;
	return w.pos > cap || !buf ? -ENOSPC : 0;
}

/* The KVM clock, moved on by the wall-clock time since the save. Without KVM_CLOCK_REALTIME the
 * elapsed time is read here, in user space: a set that came long after that read (this thread
 * preempted in between) is done again with a fresh one, a few times at most. */
static int set_clock(struct smol_vm *vm, const struct vmstate *s)
{
	int caps = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK);
	struct kvm_clock_data d = { .clock = s->clock.clock };
	bool by_kernel =
	        (s->clock.flags & KVM_CLOCK_REALTIME) && caps > 0 && (caps & KVM_CLOCK_REALTIME);
	LOG(vm, SMOL_LOG_DEBUG, "KVM clock: saved at %llu ns, %s",
	    (unsigned long long)s->clock.clock,
	    by_kernel ? "the kernel adds the time since (KVM_CLOCK_REALTIME)"
	              : "moved on by the time since");
	if (by_kernel) {
		d.flags = KVM_CLOCK_REALTIME; /* the kernel adds the time since d.realtime */
		d.realtime = s->realtime;
		return vm_io(vm, KVM_SET_CLOCK, &d, "KVM_SET_CLOCK");
	}
	int r = 0;
	for (int k = 0; k < CLOCK_PAIR_TRIES; k++) {
		uint64_t now = realtime_ns();
		d.clock = s->clock.clock + (now > s->realtime ? now - s->realtime : 0);
		if ((r = vm_io(vm, KVM_SET_CLOCK, &d, "KVM_SET_CLOCK")))
			return r;
		if (realtime_ns() - now <= CLOCK_PAIR_NS)
			break;
	}
	return r;
}

int kvm_vm_load(struct smol_vm *vm, uint32_t arch, const void *buf, size_t len)
{
	if (arch != SMOL_ARCH_X86_64) {
		LOG(vm, SMOL_LOG_ERROR, "VM state for arch %u given to the x86_64 backend", arch);
		return -ENOTSUP;
	}
	struct vmstate s;
	memset(&s, 0, sizeof(s));
	int r = decode(vm, buf, len, &s);
	if (r)
		return r;
	for (uint32_t i = 0; i < 3; i++) {
		s.chip[i].chip_id = i;
		if ((r = vm_io(vm, KVM_SET_IRQCHIP, &s.chip[i], "KVM_SET_IRQCHIP")))
			return r;
	}
	if ((r = vm_io(vm, KVM_SET_PIT2, &s.pit, "KVM_SET_PIT2")))
		return r;
	return set_clock(vm, &s);
}
