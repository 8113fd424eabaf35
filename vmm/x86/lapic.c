#include "vmm/x86/lapic.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define NR_LVT 7
enum { LVT_CMCI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR };

/* Writable bits of each LVT entry (delivery status and remote IRR are read-only). */
static const uint32_t lvt_mask[NR_LVT] = {
	[LVT_CMCI] = 0x107FF,
	[LVT_TIMER] = 0x700FF,
	[LVT_THERMAL] = 0x107FF,
	[LVT_PERF] = 0x107FF,
	[LVT_LINT0] = 0x1A7FF,
	[LVT_LINT1] = 0x1A7FF,
	[LVT_ERROR] = 0x100FF,
};

struct lapic {
	pthread_mutex_t lock;
	struct lapic_env env;
	unsigned cpu;

	uint64_t base;        /* IA32_APIC_BASE */
	uint32_t initial_id;  /* from CPUID; the ID in x2APIC mode */
	uint32_t id;
	uint32_t tpr, ldr, dfr, svr;
	uint32_t isr[8], irr[8], tmr[8];
	uint32_t esr, esr_pending;
	uint32_t icr_lo, icr_hi;
	uint32_t lvt[NR_LVT];
	uint32_t tmict, tdcr;

	/* timer: counting since start_ns with period_ns, next expiry at deadline_ns */
	uint64_t start_ns, period_ns, deadline_ns;

	bool nmi_pending, init_pending;
	int sipi_vector; /* -1: none */
};

static bool x2apic_locked(const struct lapic *l)
{
	return l->base & LAPIC_BASE_EXTD;
}

static void dest_locked(const struct lapic *l, struct apic_dest_state *d)
{
	bool x2 = x2apic_locked(l);

	*d = (struct apic_dest_state){
		.id = l->id, .ldr = l->ldr, .dfr = x2 ? 0 : l->dfr, .x2apic = x2,
	};
}

static int lvt_index(unsigned off)
{
	if (off == LAPIC_LVT_CMCI)
		return LVT_CMCI;
	if (off >= LAPIC_LVT_TIMER && off <= LAPIC_LVT_ERROR)
		return LVT_TIMER + (off - LAPIC_LVT_TIMER) / 0x10;
	return -1;
}

static int highest_bit(const uint32_t *v)
{
	for (int i = 7; i >= 0; i--)
		if (v[i])
			return i * 32 + 31 - __builtin_clz(v[i]);
	return -1;
}

static bool test_bit(const uint32_t *v, unsigned bit)
{
	return v[bit / 32] & (1u << (bit % 32));
}

static void set_bit(uint32_t *v, unsigned bit)
{
	v[bit / 32] |= 1u << (bit % 32);
}

static void clear_bit(uint32_t *v, unsigned bit)
{
	v[bit / 32] &= ~(1u << (bit % 32));
}

static uint32_t ppr(const struct lapic *l)
{
	int isrv = highest_bit(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xF0;

	return (l->tpr & 0xF0) >= isr_class ? l->tpr & 0xFF : isr_class;
}

static int pending_locked(const struct lapic *l)
{
	int irrv = highest_bit(l->irr);

	if (irrv < 0 || !(l->svr & LAPIC_SVR_ENABLE))
		return -1;
	if (((uint32_t)irrv & 0xF0) <= (ppr(l) & 0xF0))
		return -1;
	return irrv;
}

static uint64_t timer_divider(const struct lapic *l)
{
	unsigned v = (l->tdcr & 3) | ((l->tdcr >> 1) & 4);

	return v == 7 ? 1 : 2u << v;
}

static void timer_arm(struct lapic *l, uint64_t deadline)
{
	l->deadline_ns = deadline;
	if (l->env.timer_arm)
		l->env.timer_arm(l->env.opaque, deadline);
}

/* Set IRR for vector; returns whether the vCPU should be kicked. */
static bool raise_locked(struct lapic *l, uint8_t vector, bool level)
{
	if (vector < 16) {
		l->esr_pending |= LAPIC_ESR_RECV_ILLEGAL;
		return false;
	}
	if (!(l->svr & LAPIC_SVR_ENABLE))
		return false;
	if (level)
		set_bit(l->tmr, vector);
	else
		clear_bit(l->tmr, vector);
	if (test_bit(l->irr, vector))
		return false;
	set_bit(l->irr, vector);
	return true;
}

/* An LVT entry fires (timer, error): fixed delivery to this LAPIC. */
static bool lvt_fire_locked(struct lapic *l, int lvt)
{
	uint32_t v = l->lvt[lvt];

	if (v & LAPIC_LVT_MASKED)
		return false;
	return raise_locked(l, v & 0xFF, false);
}

static bool error_locked(struct lapic *l, uint32_t bits)
{
	l->esr_pending |= bits;
	return lvt_fire_locked(l, LVT_ERROR);
}

static void reset_locked(struct lapic *l)
{
	l->tpr = 0;
	l->ldr = x2apic_locked(l) ? apic_x2apic_ldr(l->id) : 0;
	l->dfr = 0xFFFFFFFFu;
	l->svr = 0xFF;
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->tmr, 0, sizeof(l->tmr));
	l->esr = l->esr_pending = 0;
	l->icr_lo = l->icr_hi = 0;
	for (int i = 0; i < NR_LVT; i++)
		l->lvt[i] = LAPIC_LVT_MASKED;
	l->tmict = l->tdcr = 0;
	l->start_ns = l->period_ns = 0;
	l->nmi_pending = false;
	if (l->deadline_ns)
		timer_arm(l, 0);
}

struct lapic *lapic_create(unsigned cpu, uint32_t apic_id, bool bsp, const struct lapic_env *env)
{
	struct lapic *l = calloc(1, sizeof(*l));

	if (!l)
		die("out of memory creating the LAPIC of vCPU %u", cpu);
	pthread_mutex_init(&l->lock, NULL);
	l->env = *env;
	l->cpu = cpu;
	l->base = APIC_DEFAULT_BASE | LAPIC_BASE_ENABLE | (bsp ? LAPIC_BASE_BSP : 0);
	l->initial_id = apic_id;
	l->id = apic_id & 0xFF;
	l->sipi_vector = -1;
	reset_locked(l);
	return l;
}

void lapic_destroy(struct lapic *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static void notify_dest(struct lapic *l, const struct apic_dest_state *d)
{
	if (l->env.dest_changed)
		l->env.dest_changed(l->env.opaque, d);
}

void lapic_reset(struct lapic *l)
{
	struct apic_dest_state d;

	pthread_mutex_lock(&l->lock);
	reset_locked(l);
	dest_locked(l, &d);
	pthread_mutex_unlock(&l->lock);
	notify_dest(l, &d);
}

static uint32_t current_count(struct lapic *l)
{
	uint64_t now, left;

	if (!l->deadline_ns || !l->period_ns)
		return 0;
	now = l->env.now(l->env.opaque);
	if (now >= l->deadline_ns) {
		if (!(l->lvt[LVT_TIMER] & LAPIC_LVT_PERIODIC))
			return 0;
		/* expired but not yet processed: where the next period is now */
		left = l->period_ns - (now - l->deadline_ns) % l->period_ns;
	} else {
		left = l->deadline_ns - now;
	}
	left /= timer_divider(l);
	return left > l->tmict ? l->tmict : (uint32_t)left;
}

static void timer_start(struct lapic *l)
{
	uint64_t now = l->env.now(l->env.opaque);

	if (!l->tmict) {
		l->period_ns = 0;
		timer_arm(l, 0);
		return;
	}
	l->period_ns = (uint64_t)l->tmict * timer_divider(l);
	if ((l->lvt[LVT_TIMER] & LAPIC_LVT_PERIODIC) && l->period_ns < LAPIC_TIMER_MIN_PERIOD_NS)
		l->period_ns = LAPIC_TIMER_MIN_PERIOD_NS;
	l->start_ns = now;
	timer_arm(l, now + l->period_ns);
}

static uint32_t read_locked(struct lapic *l, unsigned off)
{
	uint32_t v = 0;
	int lvt;

	switch (off) {
	case LAPIC_ID:
		v = x2apic_locked(l) ? l->id : l->id << 24;
		break;
	case LAPIC_VERSION:
		v = LAPIC_VERSION_VALUE;
		break;
	case LAPIC_TPR:
		v = l->tpr;
		break;
	case LAPIC_APR:
	case LAPIC_RRD:
		v = 0;
		break;
	case LAPIC_PPR:
		v = ppr(l);
		break;
	case LAPIC_LDR:
		v = l->ldr;
		break;
	case LAPIC_DFR:
		v = l->dfr;
		break;
	case LAPIC_SVR:
		v = l->svr;
		break;
	case LAPIC_ISR ... LAPIC_ISR + 0x70:
		v = l->isr[(off - LAPIC_ISR) / 0x10];
		break;
	case LAPIC_TMR ... LAPIC_TMR + 0x70:
		v = l->tmr[(off - LAPIC_TMR) / 0x10];
		break;
	case LAPIC_IRR ... LAPIC_IRR + 0x70:
		v = l->irr[(off - LAPIC_IRR) / 0x10];
		break;
	case LAPIC_ESR:
		v = l->esr;
		break;
	case LAPIC_ICR_LO:
		v = l->icr_lo & ~LAPIC_ICR_PENDING; /* delivery is immediate: always idle */
		break;
	case LAPIC_ICR_HI:
		v = l->icr_hi;
		break;
	case LAPIC_TMICT:
		v = l->tmict;
		break;
	case LAPIC_TMCCT:
		v = current_count(l);
		break;
	case LAPIC_TDCR:
		v = l->tdcr;
		break;
	default:
		lvt = lvt_index(off);
		if (lvt >= 0)
			v = l->lvt[lvt];
		break;
	}
	return v;
}

uint32_t lapic_read(struct lapic *l, unsigned off)
{
	uint32_t v;

	pthread_mutex_lock(&l->lock);
	v = read_locked(l, off);
	pthread_mutex_unlock(&l->lock);
	return v;
}

/* Decode an ICR write into a message; false if nothing is to be sent. */
static bool icr_decode(struct lapic *l, struct apic_msg *m, bool *kick)
{
	uint32_t lo = l->icr_lo;

	*m = (struct apic_msg){
		.vector = lo & 0xFF,
		.mode = (lo >> 8) & 7,
		.logical = lo & (1u << 11),
		.assert = lo & (1u << 14),
		.level = lo & (1u << 15),
		.shorthand = (lo >> 18) & 3,
		.x2apic = x2apic_locked(l),
		.dest = x2apic_locked(l) ? l->icr_hi : l->icr_hi >> 24,
		.src_cpu = l->cpu,
	};
	switch (m->mode) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		if (m->vector < 16) {
			*kick |= error_locked(l, LAPIC_ESR_SEND_ILLEGAL);
			return false;
		}
		return true;
	case APIC_DM_INIT:
		/* The level de-assert of the INIT-deassert sequence does nothing on xAPICs. */
		return m->assert || !m->level;
	case APIC_DM_NMI:
	case APIC_DM_SIPI:
		return true;
	default:
		return false; /* SMI, ExtINT: nothing to emulate */
	}
}

/* What a register write sets going, done once the lock is dropped. */
struct effects {
	struct apic_msg msg;
	bool send, kick, dest;
	int eoi_vector;
	struct apic_dest_state d;
};

static void write_locked(struct lapic *l, unsigned off, uint32_t val, struct effects *fx)
{
	bool send = false, kick = false, dest = false;
	int eoi_vector = -1;
	int lvt;

	switch (off) {
	case LAPIC_ID:
		l->id = val >> 24;
		dest = true;
		break;
	case LAPIC_TPR:
		l->tpr = val & 0xFF;
		kick = pending_locked(l) >= 0;
		break;
	case LAPIC_EOI: {
		int v = highest_bit(l->isr);

		if (v < 0)
			break;
		clear_bit(l->isr, v);
		if (test_bit(l->tmr, v))
			eoi_vector = v;
		kick = pending_locked(l) >= 0;
		break;
	}
	case LAPIC_LDR:
		l->ldr = val & 0xFF000000u;
		dest = true;
		break;
	case LAPIC_DFR:
		l->dfr = val | 0x0FFFFFFFu;
		dest = true;
		break;
	case LAPIC_SVR:
		l->svr = val & 0x13FF;
		if (!(l->svr & LAPIC_SVR_ENABLE)) {
			for (int i = 0; i < NR_LVT; i++)
				l->lvt[i] |= LAPIC_LVT_MASKED;
		}
		kick = pending_locked(l) >= 0;
		break;
	case LAPIC_ESR:
		/* a write latches the errors seen since the previous one */
		l->esr = l->esr_pending;
		l->esr_pending = 0;
		break;
	case LAPIC_ICR_HI:
		l->icr_hi = val & 0xFF000000u;
		break;
	case LAPIC_ICR_LO:
		l->icr_lo = val & 0x000CDFFFu;
		send = icr_decode(l, &fx->msg, &kick);
		break;
	case LAPIC_TMICT:
		l->tmict = val;
		timer_start(l);
		break;
	case LAPIC_TDCR: {
		uint32_t left = current_count(l);

		l->tdcr = val & 0xB;
		if (l->deadline_ns && left) {
			/* keep counting down from where it is, at the new rate */
			uint64_t now = l->env.now(l->env.opaque);

			timer_arm(l, now + (uint64_t)left * timer_divider(l));
			l->period_ns = (uint64_t)l->tmict * timer_divider(l);
		}
		break;
	}
	case LAPIC_ID + 0x10 ... LAPIC_TPR - 0x10:
	case LAPIC_APR:
	case LAPIC_PPR:
	case LAPIC_RRD:
	case LAPIC_ISR ... LAPIC_IRR + 0x70:
	case LAPIC_TMCCT:
		break; /* read-only */
	default:
		lvt = lvt_index(off);
		if (lvt < 0) {
			kick = error_locked(l, LAPIC_ESR_ILLEGAL_REG);
			break;
		}
		val &= lvt_mask[lvt];
		if (!(l->svr & LAPIC_SVR_ENABLE))
			val |= LAPIC_LVT_MASKED;
		if (lvt == LVT_TIMER &&
		    ((val ^ l->lvt[LVT_TIMER]) & LAPIC_LVT_PERIODIC) && l->deadline_ns) {
			/* a mode change restarts nothing; the period stays the same */
			l->lvt[lvt] = val;
			break;
		}
		l->lvt[lvt] = val;
		break;
	}
	fx->send |= send;
	fx->kick |= kick;
	fx->dest |= dest;
	if (eoi_vector >= 0)
		fx->eoi_vector = eoi_vector;
	if (dest)
		dest_locked(l, &fx->d);
}

static void apply(struct lapic *l, const struct effects *fx)
{
	if (fx->dest)
		notify_dest(l, &fx->d);
	if (fx->send)
		l->env.send(l->env.opaque, &fx->msg);
	if (fx->eoi_vector >= 0 && l->env.eoi)
		l->env.eoi(l->env.opaque, (uint8_t)fx->eoi_vector);
	if (fx->kick)
		l->env.kick(l->env.opaque);
}

void lapic_write(struct lapic *l, unsigned off, uint32_t val)
{
	struct effects fx = { .eoi_vector = -1 };

	pthread_mutex_lock(&l->lock);
	write_locked(l, off, val, &fx);
	pthread_mutex_unlock(&l->lock);
	apply(l, &fx);
}

void lapic_access(struct lapic *l, struct io_access *a)
{
	struct effects fx = { .eoi_vector = -1 };
	unsigned off = a->off & 0xFF0;
	uint32_t v = 0;

	pthread_mutex_lock(&l->lock);
	/* In x2APIC mode (or disabled) the page is not the APIC's: reads see 0. */
	if ((l->base & LAPIC_BASE_ENABLE) && !x2apic_locked(l)) {
		/* The registers are 32 bits wide on 16-byte boundaries; others read as 0. */
		if (a->off & 0xF || a->len != 4) {
			if (!a->write && (a->off & 0xF) < 4)
				v = read_locked(l, off) >> (8 * (a->off & 3));
		} else if (a->write) {
			write_locked(l, off, (uint32_t)io_data_get(a), &fx);
		} else {
			v = read_locked(l, off);
		}
	}
	pthread_mutex_unlock(&l->lock);
	if (a->write)
		apply(l, &fx);
	else
		io_data_set(a, v);
}

void lapic_accept(struct lapic *l, const struct apic_msg *m)
{
	bool kick = false;

	pthread_mutex_lock(&l->lock);
	if (!(l->base & LAPIC_BASE_ENABLE)) { /* a disabled APIC takes nothing */
		pthread_mutex_unlock(&l->lock);
		return;
	}
	switch (m->mode) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		kick = raise_locked(l, m->vector, m->level);
		if (!kick && m->vector < 16)
			kick = lvt_fire_locked(l, LVT_ERROR);
		break;
	case APIC_DM_NMI:
		l->nmi_pending = true;
		kick = true;
		break;
	case APIC_DM_INIT:
		if (m->assert || !m->level) {
			l->init_pending = true;
			l->sipi_vector = -1;
			kick = true;
		}
		break;
	case APIC_DM_SIPI:
		l->sipi_vector = m->vector;
		kick = true;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&l->lock);
	if (kick)
		l->env.kick(l->env.opaque);
}

int lapic_pending_interrupt(struct lapic *l)
{
	int v;

	pthread_mutex_lock(&l->lock);
	v = pending_locked(l);
	pthread_mutex_unlock(&l->lock);
	return v;
}

int lapic_ack_interrupt(struct lapic *l)
{
	int v;

	pthread_mutex_lock(&l->lock);
	v = pending_locked(l);
	if (v >= 0) {
		clear_bit(l->irr, v);
		set_bit(l->isr, v);
	}
	pthread_mutex_unlock(&l->lock);
	return v;
}

void lapic_unack_interrupt(struct lapic *l, uint8_t vector)
{
	pthread_mutex_lock(&l->lock);
	if (test_bit(l->isr, vector)) {
		clear_bit(l->isr, vector);
		set_bit(l->irr, vector);
	}
	pthread_mutex_unlock(&l->lock);
}

bool lapic_take_nmi(struct lapic *l)
{
	bool r;

	pthread_mutex_lock(&l->lock);
	r = l->nmi_pending;
	l->nmi_pending = false;
	pthread_mutex_unlock(&l->lock);
	return r;
}

bool lapic_take_start(struct lapic *l, int *sipi)
{
	bool init;

	pthread_mutex_lock(&l->lock);
	init = l->init_pending;
	*sipi = l->sipi_vector;
	l->init_pending = false;
	l->sipi_vector = -1;
	pthread_mutex_unlock(&l->lock);
	return init;
}

bool lapic_accepts_extint(struct lapic *l)
{
	uint32_t v;

	pthread_mutex_lock(&l->lock);
	v = l->lvt[LVT_LINT0];
	pthread_mutex_unlock(&l->lock);
	return !(v & LAPIC_LVT_MASKED) && ((v >> 8) & 7) == APIC_DM_EXTINT;
}

void lapic_timer_expired(struct lapic *l)
{
	bool kick = false;
	uint64_t now = l->env.now(l->env.opaque);

	pthread_mutex_lock(&l->lock);
	if (l->deadline_ns && now >= l->deadline_ns) {
		kick = lvt_fire_locked(l, LVT_TIMER);
		if ((l->lvt[LVT_TIMER] & LAPIC_LVT_PERIODIC) && l->period_ns) {
			/*
			 * A TDCR write or a switch from one-shot can leave a period
			 * that timer_start never clamped: clamp it here, where a
			 * short one would make the VMM spin.
			 */
			if (l->period_ns < LAPIC_TIMER_MIN_PERIOD_NS)
				l->period_ns = LAPIC_TIMER_MIN_PERIOD_NS;
			/* missed periods coalesce into this one interrupt */
			uint64_t n = (now - l->deadline_ns) / l->period_ns + 1;

			timer_arm(l, l->deadline_ns + n * l->period_ns);
		} else {
			timer_arm(l, 0);
		}
	}
	pthread_mutex_unlock(&l->lock);
	if (kick)
		l->env.kick(l->env.opaque);
}

uint64_t lapic_timer_deadline(struct lapic *l)
{
	uint64_t d;

	pthread_mutex_lock(&l->lock);
	d = l->deadline_ns;
	pthread_mutex_unlock(&l->lock);
	return d;
}

uint32_t lapic_id(struct lapic *l)
{
	uint32_t id;

	pthread_mutex_lock(&l->lock);
	id = l->id;
	pthread_mutex_unlock(&l->lock);
	return id;
}

/* --- IA32_APIC_BASE and the x2APIC MSRs ------------------------------------ */

/* Bits a write may set: BSP is read-only, bits 7:0 and 9 are reserved. */
#define BASE_WRITABLE (0x000FFFFFFFFFF000ull | LAPIC_BASE_EXTD | LAPIC_BASE_ENABLE)

uint64_t lapic_base(struct lapic *l)
{
	uint64_t b;

	pthread_mutex_lock(&l->lock);
	b = l->base;
	pthread_mutex_unlock(&l->lock);
	return b;
}

bool lapic_x2apic(struct lapic *l)
{
	return lapic_base(l) & LAPIC_BASE_EXTD;
}

int lapic_set_base(struct lapic *l, uint64_t val)
{
	struct apic_dest_state d;
	bool en, x2, was_en, was_x2, changed;

	if (val & ~(BASE_WRITABLE | LAPIC_BASE_BSP))
		return -1;
	en = val & LAPIC_BASE_ENABLE;
	x2 = val & LAPIC_BASE_EXTD;
	pthread_mutex_lock(&l->lock);
	was_en = l->base & LAPIC_BASE_ENABLE;
	was_x2 = x2apic_locked(l);
	/* SDM 11.12.5: no x2APIC while disabled, no way back to xAPIC but through disabled */
	if ((x2 && !en) || (was_x2 && en && !x2) || (!was_en && x2)) {
		pthread_mutex_unlock(&l->lock);
		return -1;
	}
	changed = en != was_en || x2 != was_x2;
	l->base = (val & BASE_WRITABLE) | (l->base & LAPIC_BASE_BSP);
	if (x2 && !was_x2) {
		/* the x2APIC ID is the initial one, whatever the xAPIC ID was made */
		l->id = l->initial_id;
		l->ldr = apic_x2apic_ldr(l->id);
	} else if (!en && was_en) {
		/* disabled: back to the power-on state, the xAPIC ID included */
		l->id = l->initial_id & 0xFF;
		reset_locked(l);
	}
	dest_locked(l, &d);
	pthread_mutex_unlock(&l->lock);
	if (changed)
		notify_dest(l, &d);
	return 0;
}

/*
 * The x2APIC registers, by xAPIC offset: which a RDMSR may read and a
 * WRMSR may write (SDM table 11-6).  Anything else is #GP.
 */
static bool msr_readable(unsigned off)
{
	switch (off) {
	case LAPIC_ID:
	case LAPIC_VERSION:
	case LAPIC_TPR:
	case LAPIC_PPR:
	case LAPIC_LDR:
	case LAPIC_SVR:
	case LAPIC_ISR ... LAPIC_IRR + 0x70:
	case LAPIC_ESR:
	case LAPIC_LVT_CMCI:
	case LAPIC_ICR_LO:
	case LAPIC_LVT_TIMER ... LAPIC_LVT_ERROR:
	case LAPIC_TMICT:
	case LAPIC_TMCCT:
	case LAPIC_TDCR:
		return true;
	default:
		return false;
	}
}

static bool msr_writable(unsigned off)
{
	switch (off) {
	case LAPIC_TPR:
	case LAPIC_EOI:
	case LAPIC_SVR:
	case LAPIC_ESR:
	case LAPIC_LVT_CMCI:
	case LAPIC_ICR_LO:
	case LAPIC_LVT_TIMER ... LAPIC_LVT_ERROR:
	case LAPIC_TMICT:
	case LAPIC_TDCR:
	case LAPIC_X2APIC_SELF_IPI:
		return true;
	default:
		return false;
	}
}

static int msr_offset(struct lapic *l, uint32_t msr, unsigned *off)
{
	if (msr < LAPIC_X2APIC_MSR_FIRST || msr > LAPIC_X2APIC_MSR_LAST || !x2apic_locked(l))
		return -1;
	*off = (msr - LAPIC_X2APIC_MSR_FIRST) << 4;
	return 0;
}

int lapic_msr_read(struct lapic *l, uint32_t msr, uint64_t *val)
{
	unsigned off;
	int rc = -1;

	pthread_mutex_lock(&l->lock);
	if (!msr_offset(l, msr, &off) && msr_readable(off)) {
		*val = read_locked(l, off);
		if (off == LAPIC_ICR_LO)
			*val |= (uint64_t)l->icr_hi << 32;
		rc = 0;
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

int lapic_msr_write(struct lapic *l, uint32_t msr, uint64_t val)
{
	struct effects fx = { .eoi_vector = -1 };
	unsigned off;

	pthread_mutex_lock(&l->lock);
	if (msr_offset(l, msr, &off) || !msr_writable(off) ||
	    (off != LAPIC_ICR_LO && val >> 32) ||
	    ((off == LAPIC_EOI || off == LAPIC_ESR) && val)) {
		pthread_mutex_unlock(&l->lock);
		return -1;
	}
	switch (off) {
	case LAPIC_ICR_LO:
		/* one write: the destination in the high half, no delivery status */
		l->icr_hi = val >> 32;
		write_locked(l, off, (uint32_t)val & ~LAPIC_ICR_PENDING, &fx);
		break;
	case LAPIC_X2APIC_SELF_IPI:
		fx.kick = raise_locked(l, val & 0xFF, false);
		if (!fx.kick && (val & 0xFF) < 16)
			fx.kick = lvt_fire_locked(l, LVT_ERROR);
		break;
	default:
		write_locked(l, off, (uint32_t)val, &fx);
		break;
	}
	pthread_mutex_unlock(&l->lock);
	apply(l, &fx);
	return 0;
}
