/*
 * A local APIC, emulated in user space: one per vCPU.  In xAPIC mode it is
 * reached by MMIO at 0xFEE00000 (every access exits to the VMM, since the VM
 * has no in-kernel irqchip); in x2APIC mode by the MSRs 0x800-0x8FF, which
 * the vCPU thread hands over (lapic_msr_read/write).  IA32_APIC_BASE
 * (lapic_base, lapic_set_base) switches between the modes as the SDM
 * allows (volume 3, 11.12.5).
 *
 * The LAPIC is a state machine.  It does not inject anything itself: it tells
 * its vCPU through env->kick that something is pending, and the vCPU thread
 * takes it (lapic_ack_interrupt, lapic_take_nmi, lapic_take_start) when
 * it can deliver it.  Messages it sends (ICR writes)
 * leave through env->send; EOIs of level-triggered vectors through env->eoi.
 *
 * Threads: lapic_accept and the lapic_take_* / ack functions may be called
 * from any thread; register access, lapic_reset and lapic_timer_expired only
 * from the vCPU's own thread.  Callbacks are made without the LAPIC's lock
 * held, except timer_arm.
 *
 * The timer counts at 1 GHz before the divider (the bus clock KVM also
 * presents), one-shot or periodic; there is no TSC-deadline mode.
 */
#ifndef GVM_VMM_X86_LAPIC_H
#define GVM_VMM_X86_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/iobus.h"
#include "vmm/x86/apic.h"

/* Register offsets */
#define LAPIC_ID 0x020
#define LAPIC_VERSION 0x030
#define LAPIC_TPR 0x080
#define LAPIC_APR 0x090
#define LAPIC_PPR 0x0A0
#define LAPIC_EOI 0x0B0
#define LAPIC_RRD 0x0C0
#define LAPIC_LDR 0x0D0
#define LAPIC_DFR 0x0E0
#define LAPIC_SVR 0x0F0
#define LAPIC_ISR 0x100
#define LAPIC_TMR 0x180
#define LAPIC_IRR 0x200
#define LAPIC_ESR 0x280
#define LAPIC_LVT_CMCI 0x2F0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_THERMAL 0x330
#define LAPIC_LVT_PERF 0x340
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TMICT 0x380
#define LAPIC_TMCCT 0x390
#define LAPIC_TDCR 0x3E0

#define LAPIC_VERSION_VALUE 0x00050014 /* version 0x14, 6 LVT entries */

/* x2APIC: register at offset off is MSR 0x800 + off / 16. */
#define LAPIC_X2APIC_MSR_FIRST 0x800
#define LAPIC_X2APIC_MSR_LAST 0x8FF
#define LAPIC_X2APIC_SELF_IPI 0x3F0 /* x2APIC only: MSR 0x83F */

/* IA32_APIC_BASE (MSR 0x1B) */
#define LAPIC_BASE_BSP (1ull << 8)
#define LAPIC_BASE_EXTD (1ull << 10) /* x2APIC mode */
#define LAPIC_BASE_ENABLE (1ull << 11)

#define LAPIC_SVR_ENABLE (1u << 8)
#define LAPIC_LVT_MASKED (1u << 16)
#define LAPIC_LVT_PERIODIC (1u << 17)
#define LAPIC_ICR_PENDING (1u << 12)

#define LAPIC_ESR_SEND_ILLEGAL (1u << 5)
#define LAPIC_ESR_RECV_ILLEGAL (1u << 6)
#define LAPIC_ESR_ILLEGAL_REG (1u << 7)

/* Shortest periodic timer period, so a guest cannot make the VMM spin. */
#define LAPIC_TIMER_MIN_PERIOD_NS 20000

struct lapic_env {
	void *opaque;
	void (*send)(void *opaque, const struct apic_msg *m);
	void (*eoi)(void *opaque, uint8_t vector);   /* EOI of a level-triggered vector */
	void (*kick)(void *opaque);                   /* something became pending */
	void (*timer_arm)(void *opaque, uint64_t deadline_ns); /* 0: disarm */
	void (*dest_changed)(void *opaque, const struct apic_dest_state *d);
	uint64_t (*now)(void *opaque);                /* monotonic ns */
};

struct lapic;

/*
 * Power-on state: xAPIC mode, enabled, at the default base (BSP flag as
 * given), with apic_id as its initial (x2APIC) ID and the low 8 bits of it
 * as its xAPIC ID.  cpu is the vCPU index put in the messages it sends.
 */
struct lapic *lapic_create(unsigned cpu, uint32_t apic_id, bool bsp, const struct lapic_env *env);
void lapic_destroy(struct lapic *l);

/* INIT: every register to its power-on value except the APIC ID and the mode. */
void lapic_reset(struct lapic *l);

/* xAPIC register access by offset in the register page (either mode). */
uint32_t lapic_read(struct lapic *l, unsigned off);
void lapic_write(struct lapic *l, unsigned off, uint32_t val);

/* An MMIO access to the register page (io_access.off within the page). */
void lapic_access(struct lapic *l, struct io_access *a);

/* IA32_APIC_BASE.  A write the SDM makes #GP returns -1 and changes nothing. */
uint64_t lapic_base(struct lapic *l);
int lapic_set_base(struct lapic *l, uint64_t val);
bool lapic_x2apic(struct lapic *l);

/*
 * RDMSR/WRMSR of an x2APIC MSR (0x800-0x8FF).  -1 where the SDM makes the
 * access #GP: not in x2APIC mode, no such register, a write to a read-only
 * one or a read of a write-only one, reserved bits set.
 */
int lapic_msr_read(struct lapic *l, uint32_t msr, uint64_t *val);
int lapic_msr_write(struct lapic *l, uint32_t msr, uint64_t val);

/* A message for this LAPIC (already routed here). */
void lapic_accept(struct lapic *l, const struct apic_msg *m);

/* Highest-priority vector deliverable now (above PPR), or -1. */
int lapic_pending_interrupt(struct lapic *l);

/* Take that vector for injection: it moves from IRR to ISR.  -1: none. */
int lapic_ack_interrupt(struct lapic *l);

/* The injection of an acknowledged vector failed: back from ISR to IRR. */
void lapic_unack_interrupt(struct lapic *l, uint8_t vector);

bool lapic_take_nmi(struct lapic *l);
/*
 * A pending INIT (the return) and SIPI (*sipi: its vector, or -1), taken at
 * one instant: a SIPI seen with an INIT came after it (an INIT cancels an
 * earlier one).  Taken apart, an INIT and a SIPI arriving between the two
 * takes would start the CPU, then reset it with its SIPI gone.
 */
bool lapic_take_start(struct lapic *l, int *sipi);

/* Does LINT0 pass an 8259 (ExtINT) interrupt through? */
bool lapic_accepts_extint(struct lapic *l);

/* The timer deadline (monotonic ns) passed: raise it, re-arm if periodic. */
void lapic_timer_expired(struct lapic *l);

/* Current deadline, 0 if the timer is stopped. */
uint64_t lapic_timer_deadline(struct lapic *l);

/* The APIC ID: 8 bits in xAPIC mode, 32 in x2APIC mode. */
uint32_t lapic_id(struct lapic *l);

#endif
