/*
 * vmm/x86/emulate.c: the instructions gvm completes for a guest where KVM's
 * emulator gives up, and the page-table walk it reads their operands
 * through.  Everything it decodes is the guest's: the instruction bytes,
 * the registers, the descriptor tables and page tables in guest RAM.
 *
 * The input is the registers (struct emulate_regs, as bytes), then 15
 * instruction bytes, then guest memory: virtual addresses below its length
 * read and write it, addresses with bit 47 set are not RAM, others fault.
 * The same bytes are a guest RAM for a page-table walk whose CR3 and
 * address come from the registers.  Checked beyond the sanitizers: an
 * instruction is no longer than the bytes given, a fault leaves the
 * registers as they were (emulate.h), and a name's length fits too.
 */
#include <string.h>

#include "tests/fuzz/lib/fuzz.h"
#include "vmm/x86/emulate.h"

struct mem {
	uint8_t *bytes;
	size_t len;
	uint32_t mxcsr;
};

static int access_mem(struct mem *m, uint64_t va, unsigned len, struct emulate_event *ev,
		      bool write)
{
	if (va >> 47 & 1)
		return EMULATE_UNREACHABLE;
	if (va < m->len && len <= m->len - va)
		return 0;
	*ev = (struct emulate_event){ .vector = 14, .fault = true, .has_error_code = true,
				      .error_code = write ? EMULATE_PF_WRITE : 0, .cr2 = va };
	return EMULATE_FAULT;
}

static int mem_read(void *opaque, uint64_t va, void *buf, unsigned len, struct emulate_event *ev)
{
	struct mem *m = opaque;
	int rc = access_mem(m, va, len, ev, false);

	if (!rc)
		memcpy(buf, m->bytes + va, len);
	return rc;
}

static int mem_write(void *opaque, uint64_t va, const void *buf, unsigned len,
		     struct emulate_event *ev)
{
	struct mem *m = opaque;
	int rc = access_mem(m, va, len, ev, true);

	if (!rc)
		memcpy(m->bytes + va, buf, len);
	return rc;
}

static int get_mxcsr(void *opaque, uint32_t *v)
{
	*v = ((struct mem *)opaque)->mxcsr;
	return 0;
}

static int set_mxcsr(void *opaque, uint32_t v)
{
	((struct mem *)opaque)->mxcsr = v;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t head = sizeof(struct emulate_regs) + EMULATE_INSN_MAX;
	struct mem m = { .mxcsr = 0x1f80 };
	struct emulate_env env = {
		.opaque = &m, .read = mem_read, .write = mem_write,
		.get_mxcsr = get_mxcsr, .set_mxcsr = set_mxcsr, .mxcsr_mask = 0xffff,
	};
	struct emulate_regs r, before;
	struct emulate_event ev = { .vector = -1 };
	const uint8_t *insn = data + sizeof(r);
	unsigned len, name_len;
	const char *hint;

	if (size < head)
		return 0;
	memcpy(&r, data, sizeof(r));
	/* A bool holds 0 or 1: the decoder's input is the guest's state, not any byte. */
	r.ldt_usable = data[offsetof(struct emulate_regs, ldt_usable)] & 1;
	before = r;
	m.len = size - head;
	m.bytes = malloc(m.len ? m.len : 1);
	FUZZ_CHECK(m.bytes);
	memcpy(m.bytes, data + head, m.len);

	len = emulate_insn(insn, EMULATE_INSN_MAX, &r, r.gpr[0] & 1 ? &env : NULL, &ev);
	FUZZ_CHECK(len <= EMULATE_INSN_MAX);
	if (len && ev.vector >= 0 && ev.fault)
		FUZZ_CHECK(!memcmp(&r, &before, sizeof(r)));
	for (int mode = 0; mode < 2; mode++)
		if (emulate_insn_name(insn, EMULATE_INSN_MAX, mode, &name_len, &hint))
			FUZZ_CHECK(name_len <= EMULATE_INSN_MAX);

	{
		struct guest_ram ram = { .base = m.bytes, .size = m.len };
		struct emulate_paging p = {
			.cr0 = before.cr0, .cr3 = before.gpr[1], .cr4 = before.cr4,
			.efer = before.gpr[2],
		};
		uint64_t pa;
		uint32_t pf;

		emulate_walk(&ram, &p, before.gpr[3], before.gpr[4] & 3, &pa, &pf);
		emulate_translate(&ram, before.gpr[1], before.gpr[3], &pa);
	}
	free(m.bytes);
	return 0;
}
