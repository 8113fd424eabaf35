#include "vmm/x86/emulate.h"

#include <linux/kvm.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/x86/cpu.h"

#define RFLAGS_CF (1ull << 0)
#define RFLAGS_PF (1ull << 2)
#define RFLAGS_AF (1ull << 4)
#define RFLAGS_ZF (1ull << 6)
#define RFLAGS_SF (1ull << 7)
#define RFLAGS_OF (1ull << 11)
#define RFLAGS_AC (1ull << 18)

#define CR0_PE (1ull << 0)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_LA57 (1ull << 12)
#define EFER_LMA (1ull << 10)

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000FFFFFFFFFF000ull

enum { VEC_BP = 3, VEC_UD = 6, VEC_NM = 7, VEC_SS = 12, VEC_GP = 13, VEC_PF = 14 };

/* --- decoding -------------------------------------------------------------- */

enum { SEG_NONE = -1, SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS };
enum { REG_RSP = 4, REG_RBP = 5 };

struct insn {
	const uint8_t *b;
	size_t n;
	bool long_mode;
	unsigned pos;          /* bytes decoded so far */
	uint8_t rex;
	bool p66, pf2, pf3, lock, addr_override;
	int seg;
	bool vex, evex;
	unsigned map;          /* 0: one-byte opcodes, 1: 0F, 2: 0F 38, 3: 0F 3A */
	uint8_t op;
	/* ModRM: ext is the /digit; reg and rm carry REX's extensions */
	uint8_t mod, ext, reg, rm;
	/* the memory operand (mod != 3) */
	bool addr16;           /* 16-bit addressing: length only, never emulated */
	int base, index;       /* -1: none */
	unsigned scale;
	int64_t disp;
	bool rip_rel;
};

/* Prefixes and the opcode (not what follows it).  0, or -1 if cut short. */
static int decode_opcode(struct insn *d, const uint8_t *b, size_t n, bool long_mode)
{
	memset(d, 0, sizeof(*d));
	d->b = b;
	d->n = n < EMULATE_INSN_MAX ? n : EMULATE_INSN_MAX;
	d->long_mode = long_mode;
	d->seg = SEG_NONE;
	for (;; d->pos++) {
		if (d->pos >= d->n)
			return -1;
		switch (b[d->pos]) {
		case 0xF0: d->lock = true; continue;
		case 0xF2: d->pf2 = true; d->pf3 = false; continue;
		case 0xF3: d->pf3 = true; d->pf2 = false; continue;
		case 0x66: d->p66 = true; continue;
		case 0x67: d->addr_override = true; continue;
		case 0x26: d->seg = SEG_ES; continue;
		case 0x2E: d->seg = SEG_CS; continue;
		case 0x36: d->seg = SEG_SS; continue;
		case 0x3E: d->seg = SEG_DS; continue;
		case 0x64: d->seg = SEG_FS; continue;
		case 0x65: d->seg = SEG_GS; continue;
		}
		break;
	}
	/* REX comes last, right before the opcode */
	while (long_mode && (b[d->pos] & 0xF0) == 0x40) {
		d->rex = b[d->pos++];
		if (d->pos >= d->n)
			return -1;
	}
	/* outside 64-bit mode C4, C5 and 62 are LES, LDS and BOUND unless ModRM says 11 */
	if ((b[d->pos] == 0xC4 || b[d->pos] == 0xC5 || b[d->pos] == 0x62) &&
	    (long_mode || (d->pos + 1 < d->n && b[d->pos + 1] >= 0xC0))) {
		/* the payload names the opcode map; REX's bits in it are inverted */
		unsigned payload = b[d->pos] == 0xC5 ? 1 : b[d->pos] == 0xC4 ? 2 : 3;

		d->vex = b[d->pos] != 0x62;
		d->evex = !d->vex;
		if (d->pos + payload + 1 >= d->n)
			return -1;
		if (b[d->pos] == 0xC5) {
			d->map = 1;
			d->rex = b[d->pos + 1] & 0x80 ? 0 : 4;
		} else {
			d->map = b[d->pos + 1] & (d->vex ? 0x1F : 0x07);
			d->rex = (~b[d->pos + 1] >> 5) & 7;
		}
		d->pos += 1 + payload;
		d->op = b[d->pos++];
		return 0;
	}
	if (b[d->pos] == 0x0F) {
		if (++d->pos >= d->n)
			return -1;
		d->map = 1;
		if (b[d->pos] == 0x38 || b[d->pos] == 0x3A) {
			d->map = b[d->pos] == 0x38 ? 2 : 3;
			if (++d->pos >= d->n)
				return -1;
		}
	}
	d->op = b[d->pos++];
	return 0;
}

static int take(struct insn *d, unsigned len, int64_t *v)
{
	int64_t x = 0;

	if (d->pos + len > d->n)
		return -1;
	for (unsigned i = 0; i < len; i++)
		x |= (int64_t)d->b[d->pos + i] << (8 * i);
	if (len && len < 8)
		x = (int64_t)((uint64_t)x << (64 - 8 * len)) >> (64 - 8 * len);
	d->pos += len;
	*v = x;
	return 0;
}

/* ModRM, SIB and displacement.  0; -1 without a ModRM byte; -2 if cut short after it. */
static int decode_modrm(struct insn *d)
{
	uint8_t m;
	unsigned disp = 0;

	if (d->pos >= d->n)
		return -1;
	m = d->b[d->pos++];
	d->mod = m >> 6;
	d->ext = (m >> 3) & 7;
	d->reg = d->ext | (d->rex & 4 ? 8 : 0);
	d->rm = (m & 7) | (d->rex & 1 ? 8 : 0);
	d->base = d->index = -1;
	d->scale = 1;
	if (d->mod == 3)
		return 0;
	d->addr16 = !d->long_mode && d->addr_override;
	if (d->addr16) {
		disp = d->mod == 1 ? 1 : d->mod == 2 || (d->mod == 0 && (m & 7) == 6) ? 2 : 0;
		return take(d, disp, &d->disp) ? -2 : 0;
	}
	if ((m & 7) == 4) {
		uint8_t sib;

		if (d->pos >= d->n)
			return -2;
		sib = d->b[d->pos++];
		d->scale = 1u << (sib >> 6);
		d->index = ((sib >> 3) & 7) | (d->rex & 2 ? 8 : 0);
		if (d->index == REG_RSP)
			d->index = -1;
		d->base = (sib & 7) | (d->rex & 1 ? 8 : 0);
		if ((sib & 7) == 5 && d->mod == 0) {
			d->base = -1;
			disp = 4;
		}
	} else if ((m & 7) == 5 && d->mod == 0) {
		d->rip_rel = d->long_mode;
		disp = 4;
	} else {
		d->base = d->rm;
	}
	if (d->mod == 1)
		disp = 1;
	else if (d->mod == 2)
		disp = 4;
	return take(d, disp, &d->disp) ? -2 : 0;
}

/* --- names ------------------------------------------------------------------ */

enum { P_NONE, P_66, P_F3, P_F2, P_ANY };
enum { M_ANY, M_MEM, M_REG };
#define NO_MODRM (-2)
#define ANY (-1)

/* One instruction a guest kernel may use and an emulator may lack. */
struct insn_kind {
	uint8_t map, op;
	int8_t ext;        /* ModRM /digit, ANY, or NO_MODRM */
	uint8_t mod;       /* M_ANY, M_MEM, M_REG */
	int8_t rm;         /* with M_REG: the rm bits, or ANY */
	uint8_t prefix;    /* the mandatory prefix */
	uint8_t imm;       /* immediate bytes */
	const char *name, *hint;
};

#define H_XSAVE "a Linux guest avoids it with noxsave"
#define H_FSGS "a Linux guest avoids it with nofsgsbase"

static const struct insn_kind kinds[] = {
	{ 0, 0xCC, NO_MODRM, M_ANY, ANY, P_ANY, 0, "INT3", NULL },
	{ 0, 0xCD, NO_MODRM, M_ANY, ANY, P_ANY, 1, "INT n", NULL },
	{ 0, 0xCF, NO_MODRM, M_ANY, ANY, P_ANY, 0, "IRET", NULL },
	{ 0, 0xF4, NO_MODRM, M_ANY, ANY, P_ANY, 0, "HLT", NULL },
	{ 0, 0x9B, NO_MODRM, M_ANY, ANY, P_ANY, 0, "FWAIT", NULL },
	{ 1, 0x00, 0, M_ANY, ANY, P_ANY, 0, "SLDT", NULL },
	{ 1, 0x00, 1, M_ANY, ANY, P_ANY, 0, "STR", NULL },
	{ 1, 0x00, 2, M_ANY, ANY, P_ANY, 0, "LLDT", NULL },
	{ 1, 0x00, 3, M_ANY, ANY, P_ANY, 0, "LTR", NULL },
	{ 1, 0x00, 4, M_ANY, ANY, P_ANY, 0, "VERR", NULL },
	{ 1, 0x00, 5, M_ANY, ANY, P_ANY, 0, "VERW", NULL },
	{ 1, 0x01, 0, M_MEM, ANY, P_ANY, 0, "SGDT", NULL },
	{ 1, 0x01, 1, M_MEM, ANY, P_ANY, 0, "SIDT", NULL },
	{ 1, 0x01, 2, M_MEM, ANY, P_ANY, 0, "LGDT", NULL },
	{ 1, 0x01, 3, M_MEM, ANY, P_ANY, 0, "LIDT", NULL },
	{ 1, 0x01, 7, M_MEM, ANY, P_ANY, 0, "INVLPG", NULL },
	{ 1, 0x01, 1, M_REG, 0, P_NONE, 0, "MONITOR", NULL },
	{ 1, 0x01, 1, M_REG, 1, P_NONE, 0, "MWAIT", NULL },
	{ 1, 0x01, 1, M_REG, 2, P_NONE, 0, "CLAC", NULL },
	{ 1, 0x01, 1, M_REG, 3, P_NONE, 0, "STAC", NULL },
	{ 1, 0x01, 2, M_REG, 0, P_NONE, 0, "XGETBV", H_XSAVE },
	{ 1, 0x01, 2, M_REG, 1, P_NONE, 0, "XSETBV", H_XSAVE },
	{ 1, 0x01, 5, M_REG, 6, P_NONE, 0, "RDPKRU", NULL },
	{ 1, 0x01, 5, M_REG, 7, P_NONE, 0, "WRPKRU", NULL },
	{ 1, 0x01, 7, M_REG, 0, P_NONE, 0, "SWAPGS", NULL },
	{ 1, 0x01, 7, M_REG, 1, P_NONE, 0, "RDTSCP", NULL },
	{ 1, 0x01, 7, M_REG, 4, P_NONE, 0, "CLZERO", NULL },
	{ 1, 0x02, ANY, M_ANY, ANY, P_ANY, 0, "LAR", NULL },
	{ 1, 0x03, ANY, M_ANY, ANY, P_ANY, 0, "LSL", NULL },
	{ 1, 0x05, NO_MODRM, M_ANY, ANY, P_ANY, 0, "SYSCALL", NULL },
	{ 1, 0x06, NO_MODRM, M_ANY, ANY, P_ANY, 0, "CLTS", NULL },
	{ 1, 0x07, NO_MODRM, M_ANY, ANY, P_ANY, 0, "SYSRET", NULL },
	{ 1, 0x08, NO_MODRM, M_ANY, ANY, P_ANY, 0, "INVD", NULL },
	{ 1, 0x09, NO_MODRM, M_ANY, ANY, P_ANY, 0, "WBINVD", NULL },
	{ 1, 0x0B, NO_MODRM, M_ANY, ANY, P_ANY, 0, "UD2", NULL },
	{ 1, 0xB9, ANY, M_ANY, ANY, P_ANY, 0, "UD1", NULL },
	{ 1, 0xFF, ANY, M_ANY, ANY, P_ANY, 0, "UD0", NULL },
	{ 1, 0x0D, ANY, M_MEM, ANY, P_ANY, 0, "PREFETCHW", NULL },
	{ 1, 0x18, ANY, M_MEM, ANY, P_ANY, 0, "PREFETCH", NULL },
	{ 1, 0x30, NO_MODRM, M_ANY, ANY, P_ANY, 0, "WRMSR", NULL },
	{ 1, 0x31, NO_MODRM, M_ANY, ANY, P_ANY, 0, "RDTSC", NULL },
	{ 1, 0x32, NO_MODRM, M_ANY, ANY, P_ANY, 0, "RDMSR", NULL },
	{ 1, 0x33, NO_MODRM, M_ANY, ANY, P_ANY, 0, "RDPMC", NULL },
	{ 1, 0x34, NO_MODRM, M_ANY, ANY, P_ANY, 0, "SYSENTER", NULL },
	{ 1, 0x35, NO_MODRM, M_ANY, ANY, P_ANY, 0, "SYSEXIT", NULL },
	{ 1, 0x77, NO_MODRM, M_ANY, ANY, P_NONE, 0, "EMMS", NULL },
	{ 1, 0xA2, NO_MODRM, M_ANY, ANY, P_ANY, 0, "CPUID", NULL },
	{ 1, 0xAE, 0, M_MEM, ANY, P_NONE, 0, "FXSAVE", NULL },
	{ 1, 0xAE, 1, M_MEM, ANY, P_NONE, 0, "FXRSTOR", NULL },
	{ 1, 0xAE, 2, M_MEM, ANY, P_NONE, 0, "LDMXCSR", NULL },
	{ 1, 0xAE, 3, M_MEM, ANY, P_NONE, 0, "STMXCSR", NULL },
	{ 1, 0xAE, 4, M_MEM, ANY, P_NONE, 0, "XSAVE", H_XSAVE },
	{ 1, 0xAE, 5, M_MEM, ANY, P_NONE, 0, "XRSTOR", H_XSAVE },
	{ 1, 0xAE, 6, M_MEM, ANY, P_NONE, 0, "XSAVEOPT", H_XSAVE },
	{ 1, 0xAE, 7, M_MEM, ANY, P_NONE, 0, "CLFLUSH", NULL },
	{ 1, 0xAE, 6, M_MEM, ANY, P_66, 0, "CLWB", NULL },
	{ 1, 0xAE, 7, M_MEM, ANY, P_66, 0, "CLFLUSHOPT", NULL },
	{ 1, 0xAE, 5, M_REG, ANY, P_NONE, 0, "LFENCE", NULL },
	{ 1, 0xAE, 6, M_REG, ANY, P_NONE, 0, "MFENCE", NULL },
	{ 1, 0xAE, 7, M_REG, ANY, P_NONE, 0, "SFENCE", NULL },
	{ 1, 0xAE, 0, M_REG, ANY, P_F3, 0, "RDFSBASE", H_FSGS },
	{ 1, 0xAE, 1, M_REG, ANY, P_F3, 0, "RDGSBASE", H_FSGS },
	{ 1, 0xAE, 2, M_REG, ANY, P_F3, 0, "WRFSBASE", H_FSGS },
	{ 1, 0xAE, 3, M_REG, ANY, P_F3, 0, "WRGSBASE", H_FSGS },
	{ 1, 0xB8, ANY, M_ANY, ANY, P_F3, 0, "POPCNT", NULL },
	{ 1, 0xBC, ANY, M_ANY, ANY, P_F3, 0, "TZCNT", NULL },
	{ 1, 0xBD, ANY, M_ANY, ANY, P_F3, 0, "LZCNT", NULL },
	{ 1, 0xC7, 1, M_MEM, ANY, P_ANY, 0, "CMPXCHG8B/16B", NULL },
	{ 1, 0xC7, 3, M_MEM, ANY, P_NONE, 0, "XRSTORS", H_XSAVE },
	{ 1, 0xC7, 4, M_MEM, ANY, P_NONE, 0, "XSAVEC", H_XSAVE },
	{ 1, 0xC7, 5, M_MEM, ANY, P_NONE, 0, "XSAVES", H_XSAVE },
	{ 1, 0xC7, 6, M_REG, ANY, P_NONE, 0, "RDRAND", NULL },
	{ 1, 0xC7, 7, M_REG, ANY, P_NONE, 0, "RDSEED", NULL },
	{ 1, 0xC7, 7, M_REG, ANY, P_F3, 0, "RDPID", NULL },
	{ 2, 0xF0, ANY, M_ANY, ANY, P_F2, 0, "CRC32", NULL },
	{ 2, 0xF1, ANY, M_ANY, ANY, P_F2, 0, "CRC32", NULL },
	{ 2, 0xF0, ANY, M_MEM, ANY, P_NONE, 0, "MOVBE", NULL },
	{ 2, 0xF1, ANY, M_MEM, ANY, P_NONE, 0, "MOVBE", NULL },
	{ 2, 0xF0, ANY, M_MEM, ANY, P_66, 0, "MOVBE", NULL },
	{ 2, 0xF1, ANY, M_MEM, ANY, P_66, 0, "MOVBE", NULL },
	{ 2, 0x82, ANY, M_MEM, ANY, P_66, 0, "INVPCID", NULL },
};

static bool kind_matches(const struct insn_kind *k, const struct insn *d, unsigned prefix)
{
	if (k->map != d->map || k->op != d->op)
		return false;
	if (k->prefix != P_ANY && k->prefix != prefix)
		return false;
	if (k->ext == NO_MODRM)
		return true;
	if (k->ext != ANY && k->ext != d->ext)
		return false;
	if (k->mod == M_MEM && d->mod == 3)
		return false;
	if (k->mod == M_REG && (d->mod != 3 || (k->rm != ANY && k->rm != (d->rm & 7))))
		return false;
	return true;
}

/* Opcodes on MMX/XMM registers: 0F 10-17, 28-2F, 50-7F, C2-C6, D0-FF; all of 0F 38 and 0F 3A. */
static bool is_vector_op(const struct insn *d)
{
	uint8_t op = d->op;

	if (d->map >= 2)
		return true;
	if (d->map != 1)
		return false;
	return (op >= 0x10 && op <= 0x17) || (op >= 0x28 && op <= 0x2F) ||
	       (op >= 0x50 && op <= 0x7F) || (op >= 0xC2 && op <= 0xC6 && op != 0xC3) || op >= 0xD0;
}

static unsigned vector_imm(const struct insn *d)
{
	if (d->map == 3)
		return 1;
	return d->map == 1 && ((d->op >= 0x70 && d->op <= 0x73) || d->op == 0xC2 ||
			       (d->op >= 0xC4 && d->op <= 0xC6));
}

const char *emulate_insn_name(const uint8_t *insn, size_t n, bool long_mode, unsigned *len,
			      const char **hint)
{
	struct insn d;
	unsigned prefix;
	int64_t imm;

	*len = 0;
	*hint = NULL;
	if (decode_opcode(&d, insn, n, long_mode))
		return NULL;
	if (d.vex || d.evex) {
		/* all take ModRM but VZEROUPPER/VZEROALL; maps 1-3 as in is_vector_op */
		if ((d.map == 1 && d.op == 0x77) ||
		    (!decode_modrm(&d) && !take(&d, vector_imm(&d), &imm)))
			*len = d.pos;
		return d.vex ? "a VEX-encoded (AVX) instruction"
			     : "an EVEX-encoded (AVX-512) instruction";
	}
	/* the last of 66, F3, F2 decides; F3 and F2 override 66 */
	prefix = d.pf3 ? P_F3 : d.pf2 ? P_F2 : d.p66 ? P_66 : P_NONE;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct insn_kind *k = &kinds[i];
		struct insn m = d;
		int rc = 0;

		if (k->map != d.map || k->op != d.op)
			continue;
		if (k->ext != NO_MODRM && (rc = decode_modrm(&m)) == -1)
			return NULL;
		if (!kind_matches(k, &m, prefix))
			continue;
		if (!rc && !take(&m, k->imm, &imm))
			*len = m.pos;
		*hint = k->hint;
		return k->name;
	}
	if (d.map == 0 && d.op >= 0xD8 && d.op <= 0xDF) {
		if (!decode_modrm(&d))
			*len = d.pos;
		return "an x87 FPU instruction";
	}
	if (is_vector_op(&d)) {
		if (!decode_modrm(&d) && !take(&d, vector_imm(&d), &imm))
			*len = d.pos;
		return d.p66 || d.pf2 || d.pf3 || d.map >= 2 ? "an SSE instruction"
							     : "an SSE or MMX instruction";
	}
	return NULL;
}

/* --- the instructions ------------------------------------------------------- */

static void set_exception(struct emulate_event *ev, int vector, bool has_error, uint32_t error)
{
	ev->vector = vector;
	ev->fault = vector != VEC_BP;
	ev->has_error_code = has_error;
	ev->error_code = error;
}

static bool canonical(uint64_t la)
{
	return (uint64_t)((int64_t)(la << 16) >> 16) == la;
}

/* The memory operand's linear address in 64-bit mode; raises #GP/#SS if not canonical. */
static int operand_address(const struct insn *d, const struct emulate_regs *r, uint64_t *la,
			   struct emulate_event *ev)
{
	uint64_t ea = (uint64_t)d->disp;
	int seg = d->seg;

	if (d->rip_rel)
		ea += r->rip + d->pos;
	if (d->base >= 0)
		ea += r->gpr[d->base];
	if (d->index >= 0)
		ea += r->gpr[d->index] * d->scale;
	if (d->addr_override)
		ea &= 0xFFFFFFFFull;
	if (seg == SEG_NONE && (d->base == REG_RSP || d->base == REG_RBP))
		seg = SEG_SS;
	/* 64-bit mode: only FS and GS have a base */
	*la = ea + (seg == SEG_FS ? r->fs_base : seg == SEG_GS ? r->gs_base : 0);
	if (!canonical(*la)) {
		set_exception(ev, seg == SEG_SS ? VEC_SS : VEC_GP, true, 0);
		return -1;
	}
	return 0;
}

/* POPCNT r, r (F3 0F B8 /r, mod 3): the memory form is left to the guest's failure. */
static unsigned popcnt(struct insn *d, struct emulate_regs *r)
{
	unsigned size = d->rex & 8 ? 8 : d->p66 ? 2 : 4;
	uint64_t src, count;

	if (!d->pf3 || d->lock || decode_modrm(d) || d->mod != 3)
		return 0;
	src = r->gpr[d->rm];
	if (size < 8)
		src &= (1ull << (8 * size)) - 1;
	count = __builtin_popcountll(src);
	if (size == 2)
		r->gpr[d->reg] = (r->gpr[d->reg] & ~0xFFFFull) | count;
	else
		r->gpr[d->reg] = count; /* a 32-bit write clears the upper half */
	r->rflags &= ~(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
	if (!src)
		r->rflags |= RFLAGS_ZF;
	return d->pos;
}

/* LDMXCSR m32 (0F AE /2), STMXCSR m32 (0F AE /3), with the CPU's checks in its order. */
static unsigned mxcsr_insn(struct insn *d, struct emulate_regs *r, const struct emulate_env *env,
			   struct emulate_event *ev)
{
	uint64_t la;
	uint32_t v;
	int rc;

	if (!env || decode_modrm(d) || d->mod == 3 || (d->ext != 2 && d->ext != 3) || d->p66 ||
	    d->pf2 || d->pf3)
		return 0;
	if (d->lock || (r->cr0 & CR0_EM) || !(r->cr4 & CR4_OSFXSR)) {
		set_exception(ev, VEC_UD, false, 0);
		return d->pos;
	}
	if (r->cr0 & CR0_TS) {
		set_exception(ev, VEC_NM, false, 0);
		return d->pos;
	}
	if (operand_address(d, r, &la, ev))
		return d->pos;
	if (d->ext == 2) {
		rc = env->read(env->opaque, la, &v, 4, ev);
		if (rc == EMULATE_FAULT)
			return d->pos;
		if (rc)
			return 0;
		if (v & ~env->mxcsr_mask) {
			set_exception(ev, VEC_GP, true, 0);
			return d->pos;
		}
		return env->set_mxcsr(env->opaque, v) ? 0 : d->pos;
	}
	if (env->get_mxcsr(env->opaque, &v))
		return 0;
	rc = env->write(env->opaque, la, &v, 4, ev);
	return rc == 0 || rc == EMULATE_FAULT ? d->pos : 0;
}

#define DESC_S (1ull << 44)
#define DESC_TYPE(d) (((d) >> 40) & 0xF)
#define DESC_DPL(d) ((unsigned)((d) >> 45) & 3)
#define TYPE_CODE 0x8
#define TYPE_CONFORMING 0x4 /* code; for data, expand-down */
#define TYPE_RW 0x2         /* readable code, writable data */

/*
 * The descriptor selector sel names, for LSL, VERR and VERW: 1 and *desc;
 * 0 if there is none (null, past the table, no LDT); EMULATE_FAULT or
 * EMULATE_UNREACHABLE reading it.
 */
static int read_descriptor(const struct emulate_regs *r, const struct emulate_env *env,
			   uint16_t sel, uint64_t *desc, struct emulate_event *ev)
{
	bool ldt = sel & 4;
	uint64_t base = ldt ? r->ldt_base : r->gdt_base;
	uint32_t table_limit = ldt ? r->ldt_limit : r->gdt_limit;
	int rc;

	if ((!ldt && !(sel & ~3u)) || (ldt && !r->ldt_usable) || (sel & ~7u) + 7u > table_limit)
		return 0;
	rc = env->read(env->opaque, base + (sel & ~7u), desc, 8, ev);
	return rc ? rc : 1;
}

/* Conforming code segments are exempt from the privilege check. */
static bool privileged_enough(const struct emulate_regs *r, uint64_t desc, uint16_t sel)
{
	if ((desc & DESC_S) && (DESC_TYPE(desc) & (TYPE_CODE | TYPE_CONFORMING)) ==
				       (TYPE_CODE | TYPE_CONFORMING))
		return true;
	return DESC_DPL(desc) >= r->cpl && DESC_DPL(desc) >= (sel & 3u);
}

/*
 * The limit LSL gives for descriptor desc: 1 and *limit, or 0 where the
 * CPU refuses (ZF clear).  64-bit mode: code and data segments, and among
 * system descriptors the LDT and 64-bit TSSs only.
 */
static int lsl_limit(const struct emulate_regs *r, uint64_t desc, uint16_t sel, uint64_t *limit)
{
	unsigned type = DESC_TYPE(desc);

	if (!(desc & DESC_S) && type != 2 && type != 9 && type != 0xB)
		return 0;
	if (!privileged_enough(r, desc, sel))
		return 0;
	*limit = (desc & 0xFFFF) | ((desc >> 32) & 0xF0000);
	if (desc & (1ull << 55))
		*limit = *limit << 12 | 0xFFF;
	return 1;
}

/* VERR/VERW: may CPL read (write) the segment sel names? */
static bool verify(const struct emulate_regs *r, uint64_t desc, uint16_t sel, bool write)
{
	unsigned type = DESC_TYPE(desc);

	if (!(desc & DESC_S))
		return false;
	/* writable: data with W; readable: data, or code with R */
	if (write && ((type & TYPE_CODE) || !(type & TYPE_RW)))
		return false;
	if (!write && (type & TYPE_CODE) && !(type & TYPE_RW))
		return false;
	return privileged_enough(r, desc, sel);
}

/* The r/m16 selector operand of LSL, VERR and VERW: 0, or what to return. */
static int selector_operand(struct insn *d, const struct emulate_regs *r,
			    const struct emulate_env *env, uint16_t *sel, struct emulate_event *ev)
{
	uint64_t la;
	int rc;

	if (d->mod == 3) {
		*sel = (uint16_t)r->gpr[d->rm];
		return 0;
	}
	if (operand_address(d, r, &la, ev))
		return (int)d->pos;
	rc = env->read(env->opaque, la, sel, 2, ev);
	if (rc)
		return rc == EMULATE_FAULT ? (int)d->pos : -1;
	return 0;
}

/*
 * The selector operand of LSL, VERR and VERW and its descriptor: whether the
 * descriptor was found (in *desc), or -1 with *done what the caller returns
 * (0: not emulated, d->pos: an exception raised).
 */
static int selector_descriptor(struct insn *d, struct emulate_regs *r,
			       const struct emulate_env *env, uint16_t *sel, uint64_t *desc,
			       struct emulate_event *ev, unsigned *done)
{
	int rc;

	if (d->lock) {
		set_exception(ev, VEC_UD, false, 0);
		*done = d->pos;
		return -1;
	}
	rc = selector_operand(d, r, env, sel, ev);
	if (rc) {
		*done = rc < 0 ? 0 : (unsigned)rc;
		return -1;
	}
	rc = read_descriptor(r, env, *sel, desc, ev);
	if (rc < 0) {
		*done = rc == EMULATE_FAULT ? d->pos : 0;
		return -1;
	}
	return rc != 0;
}

/*
 * VERR, VERW r/m16 (0F 00 /4, /5): only ZF changes.  The CPU buffers
 * Linux's VERW clears against MDS are the host's to clear on its own
 * transitions.
 */
static unsigned verr_verw(struct insn *d, struct emulate_regs *r, const struct emulate_env *env,
			  struct emulate_event *ev)
{
	uint64_t desc = 0;
	uint16_t sel;
	unsigned done;
	int found;

	if (!env || decode_modrm(d) || (d->ext != 4 && d->ext != 5) || d->pf2 || d->pf3)
		return 0;
	found = selector_descriptor(d, r, env, &sel, &desc, ev, &done);
	if (found < 0)
		return done;
	if (found && verify(r, desc, sel, d->ext == 5))
		r->rflags |= RFLAGS_ZF;
	else
		r->rflags &= ~RFLAGS_ZF;
	return d->pos;
}

/* LSL r, r/m16 (0F 03 /r): only ZF and the destination change, and that only on success. */
static unsigned lsl(struct insn *d, struct emulate_regs *r, const struct emulate_env *env,
		    struct emulate_event *ev)
{
	unsigned size = d->rex & 8 ? 8 : d->p66 ? 2 : 4;
	uint64_t limit = 0, desc = 0;
	uint16_t sel;
	unsigned done;
	int found;

	if (!env || decode_modrm(d) || d->pf2 || d->pf3)
		return 0;
	found = selector_descriptor(d, r, env, &sel, &desc, ev, &done);
	if (found < 0)
		return done;
	if (!found || !lsl_limit(r, desc, sel, &limit)) {
		r->rflags &= ~RFLAGS_ZF;
		return d->pos;
	}
	r->rflags |= RFLAGS_ZF;
	if (size == 2)
		r->gpr[d->reg] = (r->gpr[d->reg] & ~0xFFFFull) | (limit & 0xFFFF);
	else
		r->gpr[d->reg] = limit; /* 32 bits of limit, zero-extended either way */
	return d->pos;
}

unsigned emulate_insn(const uint8_t *insn, size_t n, struct emulate_regs *r,
		      const struct emulate_env *env, struct emulate_event *ev)
{
	struct insn d;

	*ev = (struct emulate_event){ .vector = -1 };
	if (n >= 1 && insn[0] == 0xCC) {
		set_exception(ev, VEC_BP, false, 0);
		return 1;
	}
	if (n >= 1 && insn[0] == 0x9B)
		return 1;
	if (n >= 3 && insn[0] == 0x0F && insn[1] == 0x01 && (insn[2] == 0xCA || insn[2] == 0xCB)) {
		if (insn[2] == 0xCA)
			r->rflags &= ~RFLAGS_AC;
		else
			r->rflags |= RFLAGS_AC;
		return 3;
	}
	if (decode_opcode(&d, insn, n, true) || d.vex || d.evex || d.map != 1)
		return 0;
	if (d.op == 0xB8)
		return popcnt(&d, r);
	if (d.op == 0xAE)
		return mxcsr_insn(&d, r, env, ev);
	if (d.op == 0x03)
		return lsl(&d, r, env, ev);
	if (d.op == 0x00)
		return verr_verw(&d, r, env, ev);
	return 0;
}

/* --- page walks ------------------------------------------------------------- */

static void set_bits(uint64_t *entry, uint64_t bits)
{
	/* another vCPU may be updating the same entry */
	if ((*entry & bits) != bits)
		__atomic_fetch_or(entry, bits, __ATOMIC_SEQ_CST);
}

int emulate_walk(const struct guest_ram *ram, const struct emulate_paging *p, uint64_t va,
		 unsigned flags, uint64_t *pa, uint32_t *pf)
{
	bool write = flags & EMULATE_WALK_WRITE, set_ad = flags & EMULATE_WALK_SET_AD;
	bool writable = true, pae = p->cr4 & CR4_PAE, lm = p->efer & EFER_LMA;
	unsigned levels = lm ? 4 : pae ? 3 : 2;
	unsigned bits = pae ? 9 : 10, esize = pae ? 8 : 4;
	uint64_t table, entry = 0;
	void *e = NULL;
	int level;

	*pf = write ? EMULATE_PF_WRITE : 0;
	if (!(p->cr0 & CR0_PG)) {
		*pa = va & 0xFFFFFFFFull;
		return 0;
	}
	if (lm && (p->cr4 & CR4_LA57))
		return EMULATE_UNREACHABLE;
	if (!lm)
		va &= 0xFFFFFFFFull;
	table = lm ? p->cr3 & PTE_ADDR : pae ? p->cr3 & 0xFFFFFFE0ull : p->cr3 & 0xFFFFF000ull;
	for (level = levels - 1; level >= 0; level--) {
		unsigned shift = 12 + bits * level;
		/* PAE's top level is 4 entries wide, at a 32-byte aligned address */
		uint64_t index = (va >> shift) & (pae && !lm && level == 2 ? 3 : (1u << bits) - 1);

		e = guest_ram_ptr(ram, table + esize * index, esize);
		if (!e)
			return EMULATE_UNREACHABLE;
		entry = esize == 8 ? *(uint64_t *)e : *(uint32_t *)e;
		if (!(entry & PTE_P))
			return EMULATE_FAULT;
		/* PAE's PDPTEs have no access rights */
		if (!(pae && !lm && level == 2)) {
			writable = writable && (entry & PTE_RW);
			if (set_ad && esize == 8)
				set_bits(e, PTE_A);
		}
		table = entry & (esize == 8 ? PTE_ADDR : 0xFFFFF000ull);
		/* 1 GiB and 2 MiB pages (4-level, PAE), 4 MiB pages (32-bit with PSE) */
		if ((entry & PTE_PS) && (level == 1 || (level == 2 && lm)) &&
		    (pae || (p->cr4 & CR4_PSE)))
			break;
	}
	if (write && !writable && (p->cr0 & CR0_WP)) {
		*pf |= EMULATE_PF_PRESENT;
		return EMULATE_FAULT;
	}
	if (write && set_ad && esize == 8)
		set_bits(e, PTE_D);
	if (level < 0) {
		*pa = table | (va & 0xFFF);
	} else {
		uint64_t mask = (1ull << (12 + bits * level)) - 1;

		*pa = (table & ~mask) | (va & mask);
	}
	return 0;
}

int emulate_translate(const struct guest_ram *ram, uint64_t cr3, uint64_t va, uint64_t *pa)
{
	const struct emulate_paging p = { .cr0 = CR0_PG | CR0_PE, .cr3 = cr3, .cr4 = CR4_PAE,
					  .efer = EFER_LMA };
	uint32_t pf;

	return emulate_walk(ram, &p, va, 0, pa, &pf) ? -1 : 0;
}

/* --- the vCPU ---------------------------------------------------------------- */

/* KVM's register order differs from the instruction encoding's. */
static void regs_in(const struct kvm_regs *k, const struct kvm_sregs *s, struct emulate_regs *r)
{
	const uint64_t g[16] = { k->rax, k->rcx, k->rdx, k->rbx, k->rsp, k->rbp, k->rsi, k->rdi,
				 k->r8,  k->r9,  k->r10, k->r11, k->r12, k->r13, k->r14, k->r15 };

	memcpy(r->gpr, g, sizeof(g));
	r->rflags = k->rflags;
	r->rip = k->rip;
	r->fs_base = s->fs.base;
	r->gs_base = s->gs.base;
	r->cr0 = s->cr0;
	r->cr4 = s->cr4;
	r->cpl = s->cs.selector & 3;
	r->gdt_base = s->gdt.base;
	r->gdt_limit = s->gdt.limit;
	r->ldt_base = s->ldt.base;
	r->ldt_limit = s->ldt.limit;
	r->ldt_usable = !s->ldt.unusable && s->ldt.present;
}

static void regs_out(const struct emulate_regs *r, struct kvm_regs *k)
{
	__u64 *g[16] = { &k->rax, &k->rcx, &k->rdx, &k->rbx, &k->rsp, &k->rbp, &k->rsi, &k->rdi,
			 &k->r8,  &k->r9,  &k->r10, &k->r11, &k->r12, &k->r13, &k->r14, &k->r15 };

	for (int i = 0; i < 16; i++)
		*g[i] = r->gpr[i];
	k->rflags = r->rflags;
}

struct vcpu_mem {
	const struct guest_ram *ram;
	struct emulate_paging paging;
	int fd;
};

/*
 * len bytes at va, over at most two pages: both translated (and checked)
 * before any byte moves, as the CPU does not half-complete an access.
 */
static int vcpu_access(struct vcpu_mem *m, uint64_t va, uint8_t *buf, unsigned len, bool write,
		       struct emulate_event *ev)
{
	unsigned first = 4096 - (va & 4095) < len ? 4096 - (va & 4095) : len;
	unsigned part[2] = { first, len - first };
	uint8_t *host[2] = { NULL, NULL };

	for (int i = 0; i < 2 && part[i]; i++) {
		uint64_t addr = va + (i ? first : 0), pa;
		unsigned flags = EMULATE_WALK_SET_AD | (write ? EMULATE_WALK_WRITE : 0);
		uint32_t pf;
		int rc = emulate_walk(m->ram, &m->paging, addr, flags, &pa, &pf);

		if (rc == EMULATE_FAULT) {
			set_exception(ev, VEC_PF, true, pf);
			ev->cr2 = addr;
			return EMULATE_FAULT;
		}
		if (rc || !(host[i] = guest_ram_ptr(m->ram, pa, part[i])))
			return EMULATE_UNREACHABLE;
	}
	for (int i = 0; i < 2 && part[i]; i++) {
		if (write)
			memcpy(host[i], buf + (i ? first : 0), part[i]);
		else
			memcpy(buf + (i ? first : 0), host[i], part[i]);
	}
	return 0;
}

static int vcpu_read(void *opaque, uint64_t va, void *buf, unsigned len,
		     struct emulate_event *ev)
{
	return vcpu_access(opaque, va, buf, len, false, ev);
}

static int vcpu_write(void *opaque, uint64_t va, const void *buf, unsigned len,
		      struct emulate_event *ev)
{
	uint8_t tmp[16];

	if (len > sizeof(tmp))
		return EMULATE_UNREACHABLE;
	memcpy(tmp, buf, len);
	return vcpu_access(opaque, va, tmp, len, true, ev);
}

/*
 * MXCSR through KVM_GET/SET_XSAVE: KVM_SET_FPU ignores kvm_fpu.mxcsr, and
 * KVM_SET_XSAVE takes it only while FP, SSE or AVX state is marked in use.
 */
#define XSAVE_MXCSR 6                /* region[] index: legacy area byte 24 */
#define XSAVE_XSTATE_BV (512 / 4)    /* the XSAVE header's first word */
#define XSTATE_SSE (1u << 1)

static int vcpu_get_mxcsr(void *opaque, uint32_t *v)
{
	struct vcpu_mem *m = opaque;
	struct kvm_xsave x;

	if (ioctl(m->fd, KVM_GET_XSAVE, &x))
		return -1;
	*v = x.region[XSAVE_MXCSR];
	return 0;
}

static int vcpu_set_mxcsr(void *opaque, uint32_t v)
{
	struct vcpu_mem *m = opaque;
	struct kvm_xsave x;

	if (ioctl(m->fd, KVM_GET_XSAVE, &x))
		return -1;
	x.region[XSAVE_MXCSR] = v;
	/* the XMM registers in the buffer are as KVM gave them: marking them in use keeps them */
	x.region[XSAVE_XSTATE_BV] |= XSTATE_SSE;
	return ioctl(m->fd, KVM_SET_XSAVE, &x) ? -1 : 0;
}

/*
 * The MXCSR bits this CPU implements, from FXSAVE's MXCSR_MASK (0 there
 * means the original 0xFFBF).  The guest runs on the same CPU, and KVM
 * checks MXCSR values against the same mask.
 */
static uint32_t host_mxcsr_mask(void)
{
	static _Atomic uint32_t mask;
	uint32_t m = atomic_load_explicit(&mask, memory_order_relaxed);

	if (!m) {
		uint8_t area[512] __attribute__((aligned(16)));

		memset(area, 0, sizeof(area));
		__asm__ volatile("fxsave %0" : "=m"(area));
		memcpy(&m, area + 28, 4);
		if (!m)
			m = 0xFFBF;
		atomic_store_explicit(&mask, m, memory_order_relaxed);
	}
	return m;
}

/* Up to EMULATE_INSN_MAX bytes at linear address la (stops at an unmapped page). */
static size_t fetch(const struct guest_ram *ram, const struct emulate_paging *p, uint64_t la,
		    uint8_t *insn)
{
	size_t n = 0;

	while (n < EMULATE_INSN_MAX) {
		uint64_t pa;
		uint32_t pf;
		const uint8_t *b;

		if (emulate_walk(ram, p, la + n, 0, &pa, &pf) || !(b = guest_ram_ptr(ram, pa, 1)))
			break;
		insn[n++] = *b;
	}
	return n;
}

static int inject(int fd, struct kvm_sregs *s, const struct emulate_event *ev)
{
	struct kvm_vcpu_events e;

	if (ev->vector == VEC_PF) {
		/* without KVM_CAP_EXCEPTION_PAYLOAD, CR2 is ours to set before the delivery */
		s->cr2 = ev->cr2;
		if (ioctl(fd, KVM_SET_SREGS, s))
			return -1;
	}
	if (ioctl(fd, KVM_GET_VCPU_EVENTS, &e))
		return -1;
	e.exception.injected = 1;
	e.exception.nr = ev->vector;
	e.exception.has_error_code = ev->has_error_code;
	e.exception.error_code = ev->error_code;
	e.exception.pending = 0;
	e.flags = 0;
	return ioctl(fd, KVM_SET_VCPU_EVENTS, &e) ? -1 : 0;
}

int emulate_fixup(const struct guest_ram *ram, int fd)
{
	uint8_t insn[EMULATE_INSN_MAX];
	struct kvm_regs k;
	struct kvm_sregs s;
	struct emulate_regs r;
	struct emulate_event ev;
	struct vcpu_mem m = { .ram = ram, .fd = fd };
	struct emulate_env env = {
		.opaque = &m,
		.read = vcpu_read,
		.write = vcpu_write,
		.get_mxcsr = vcpu_get_mxcsr,
		.set_mxcsr = vcpu_set_mxcsr,
		.mxcsr_mask = host_mxcsr_mask(),
	};
	size_t n;
	unsigned len;

	if (ioctl(fd, KVM_GET_REGS, &k) || ioctl(fd, KVM_GET_SREGS, &s))
		return -1;
	/* 64-bit kernel code, 4-level paging: where the emulator runs */
	if (!(s.efer & EFER_LMA) || !(s.cr0 & CR0_PG) || (s.cr4 & CR4_LA57) || !s.cs.l ||
	    (s.cs.selector & 3))
		return -1;
	m.paging = (struct emulate_paging){ .cr0 = s.cr0, .cr3 = s.cr3, .cr4 = s.cr4,
					    .efer = s.efer };
	n = fetch(ram, &m.paging, k.rip, insn);
	regs_in(&k, &s, &r);
	len = emulate_insn(insn, n, &r, &env, &ev);
	if (!len)
		return -1;
	if (ev.vector >= 0 && ev.fault)
		return inject(fd, &s, &ev);
	regs_out(&r, &k);
	k.rip += len;
	if (ioctl(fd, KVM_SET_REGS, &k))
		return -1;
	return ev.vector >= 0 ? inject(fd, &s, &ev) : 0;
}

void emulate_describe(const struct guest_ram *ram, int fd, char *buf, size_t size)
{
	uint8_t insn[EMULATE_INSN_MAX];
	char bytes[3 * EMULATE_INSN_MAX + 1] = "", mode[CPU_MODE_MAX];
	struct kvm_regs k;
	struct kvm_sregs s;
	struct emulate_paging p;
	const char *name, *hint;
	bool lm64;
	uint64_t la;
	size_t n;
	unsigned len;

	if (ioctl(fd, KVM_GET_REGS, &k) || ioctl(fd, KVM_GET_SREGS, &s)) {
		snprintf(buf, size, "the instruction (KVM would not give the registers)");
		return;
	}
	lm64 = (s.efer & EFER_LMA) && s.cs.l;
	p = (struct emulate_paging){ .cr0 = s.cr0, .cr3 = s.cr3, .cr4 = s.cr4, .efer = s.efer };
	/* outside 64-bit mode, CS's base counts and addresses wrap at 4 GiB */
	la = lm64 ? k.rip : (s.cs.base + k.rip) & 0xFFFFFFFFull;
	n = fetch(ram, &p, la, insn);
	name = emulate_insn_name(insn, n, lm64, &len, &hint);
	if (!len)
		len = n;
	for (unsigned i = 0, off = 0; i < len; i++)
		off += snprintf(bytes + off, sizeof(bytes) - off, "%s%02x", i ? " " : "", insn[i]);
	cpu_mode_name(&s, k.rflags, mode);
	if (!n)
		snprintf(buf, size, "the instruction at rip 0x%llx in %s (not readable in RAM)",
			 (unsigned long long)k.rip, mode);
	else
		snprintf(buf, size, "%s (%s) at rip 0x%llx in %s%s%s",
			 name ? name : "the instruction", bytes, (unsigned long long)k.rip, mode,
			 hint ? "; " : "", hint ? hint : "");
}
