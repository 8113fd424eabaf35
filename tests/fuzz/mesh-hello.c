/*
 * The mesh handshake's checks (common/mesh.c, common/auth.c): the header
 * of the acceptor's challenge (mesh_challenge_check), then what munged
 * verified of a HELLO or HELLO_ACK (auth_claim_parse: the signer's uid and
 * the payload) and the claim against this end of the mesh
 * (mesh_claim_check).  munged itself is left out: its signature is what it
 * vouches for, the rest is ours.  Checked beyond the sanitizers, as
 * common/auth.h and common/mesh.h state them: an accepted claim was signed
 * by our uid, is the payload's bytes, is for this VM, this rank and this
 * node count, comes from the rank the header names, a rank < N and a
 * channel < the mesh's channels (so its connection slot is inside the
 * table), a higher rank for an acceptor, the expected rank and channel for
 * a caller, answers our challenge, and asks for integrity (AUTH_SEALED,
 * no other flag) exactly when we run with it.  A refusal says why.
 *
 * Input: nr_nodes - 1, rank, nr_channels - 1 (bit 7: we run with
 * --integrity), want_from (0xff: any higher
 * rank), want_ch (0xff: any), the signer's uid (0: ours), the 40-byte
 * header, then what munged returned (a claim, if the size fits).  The
 * VM id is 7, our uid 1000 and the challenge 16 bytes of 0xa5.
 */
#include <string.h>

#include "common/auth.h"
#include "common/mesh.h"
#include "tests/fuzz/lib/fuzz.h"

#define IN_HDR 6
#define VM_ID 7
#define UID 1000

static const uint8_t challenge[AUTH_NONCE_LEN] = {
	0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
	0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
};

static void check_claim(const struct mesh_config *cfg, unsigned sender, int want_from,
			int want_ch, const struct auth_claim *cl, const uint8_t *payload)
{
	FUZZ_CHECK(!memcmp(cl, payload, sizeof(*cl)));
	FUZZ_CHECK(cl->vm_id == VM_ID && cl->nr_nodes == cfg->nr_nodes && cl->to == cfg->rank);
	FUZZ_CHECK(cl->from == sender && cl->from < cfg->nr_nodes && cl->from != cfg->rank);
	FUZZ_CHECK(cl->channel < cfg->nr_channels);
	FUZZ_CHECK((size_t)cl->from * cfg->nr_channels + cl->channel <
		   (size_t)cfg->nr_nodes * cfg->nr_channels);
	FUZZ_CHECK(want_from < 0 ? cl->from > cfg->rank : cl->from == (unsigned)want_from);
	FUZZ_CHECK(want_ch < 0 || cl->channel == (unsigned)want_ch);
	FUZZ_CHECK(!memcmp(cl->challenge, challenge, AUTH_NONCE_LEN));
	FUZZ_CHECK(cl->flags == (cfg->integrity ? AUTH_SEALED : 0) && cl->reserved == 0);
}

static void seed(const char *dir, const char *name, unsigned rank, int want_from, int want_ch,
		 uint8_t uid, uint16_t type, const struct auth_claim *cl, size_t len)
{
	uint8_t in[IN_HDR + sizeof(struct wire_hdr) + sizeof(*cl)] = {
		3, rank, (cl->flags & AUTH_SEALED ? 0x80 : 0) | 2, want_from < 0 ? 0xff : want_from, want_ch < 0 ? 0xff : want_ch, uid,
	};
	struct wire_hdr h = wire_hdr_make(type, cl->from, len);

	memcpy(in + IN_HDR, &h, sizeof(h));
	memcpy(in + IN_HDR + sizeof(h), cl, len);
	fuzz_seed(dir, name, in, IN_HDR + sizeof(h) + len);
}

/* 4 nodes, 3 channels. */
static void seeds(const char *dir)
{
	struct auth_claim hello = { .vm_id = VM_ID, .from = 3, .to = 1, .channel = 2,
				    .nr_nodes = 4 };
	struct auth_claim ack = { .vm_id = VM_ID, .from = 0, .to = 2, .channel = 1,
				  .nr_nodes = 4 };

	memcpy(hello.challenge, challenge, AUTH_NONCE_LEN);
	memcpy(ack.challenge, challenge, AUTH_NONCE_LEN);
	memset(hello.nonce, 0x3c, AUTH_NONCE_LEN);
	seed(dir, "hello", 1, -1, -1, 0, MESH_HELLO, &hello, sizeof(hello));
	seed(dir, "hello-ack", 2, 0, 1, 0, MESH_HELLO_ACK, &ack, sizeof(ack));
	seed(dir, "other-uid", 1, -1, -1, 1, MESH_HELLO, &hello, sizeof(hello));
	seed(dir, "short", 1, -1, -1, 0, MESH_HELLO, &hello, sizeof(hello) - 1);
	seed(dir, "challenge", 1, -1, -1, 0, MESH_CHALLENGE, &hello, AUTH_NONCE_LEN);
	hello.flags = AUTH_SEALED;
	memset(hello.secret, 0x5e, AUTH_NONCE_LEN);
	seed(dir, "hello-sealed", 1, -1, -1, 0, MESH_HELLO, &hello, sizeof(hello));
}

FUZZ_INIT_SEEDS(seeds)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mesh_config cfg = { .vm_id = VM_ID };
	struct auth_claim cl;
	struct wire_hdr h;
	char err[MESH_ERR_MAX] = "", aerr[AUTH_ERR_MAX] = "";
	const uint8_t *payload = data + IN_HDR + sizeof(h);
	int want_from, want_ch, len;

	if (size < IN_HDR + sizeof(h))
		return 0;
	cfg.nr_nodes = 1 + data[0] % MESH_MAX_NODES;
	cfg.rank = data[1] % cfg.nr_nodes;
	cfg.nr_channels = 1 + data[2] % MESH_MAX_CHANNELS;
	cfg.integrity = data[2] & 0x80;
	want_from = data[3] == 0xff ? -1 : (int)(data[3] % cfg.nr_nodes);
	want_ch = data[4] == 0xff ? -1 : (int)(data[4] % cfg.nr_channels);
	if (want_from == (int)cfg.rank)
		return 0; /* nobody calls itself */
	memcpy(&h, data + IN_HDR, sizeof(h));
	len = (int)(size - IN_HDR - sizeof(h));

	if (mesh_challenge_check(&h, err) == 0)
		FUZZ_CHECK(h.type == MESH_CHALLENGE && h.len == AUTH_NONCE_LEN);
	else
		FUZZ_CHECK(err[0] && memchr(err, '\0', sizeof(err)));

	if (auth_claim_parse(payload, len, UID + data[5], UID, &cl, aerr)) {
		FUZZ_CHECK(aerr[0] && memchr(aerr, '\0', sizeof(aerr)));
		return 0;
	}
	FUZZ_CHECK(data[5] == 0 && len == sizeof(cl));
	err[0] = '\0';
	if (mesh_claim_check(&cfg, h.from, want_from, want_ch, challenge, &cl, err) == 0)
		check_claim(&cfg, h.from, want_from, want_ch, &cl, payload);
	else
		FUZZ_CHECK(err[0] && memchr(err, '\0', sizeof(err)));
	return 0;
}
