/*
 * Peer authentication with munge.  A claim names the VM (the Slurm job id,
 * or a random id for `gvm run`), who sends it and to whom; munged signs it
 * together with the sender's uid.  A receiver accepts a credential only if
 * munged verifies it, its uid is the receiver's own, and the claim is for
 * this VM and this receiver.  munged refuses a credential decoded twice; and
 * a claim answers a fresh challenge of its receiver's, sent on the same
 * connection, so a credential read off the network is worth nothing on any
 * other connection, even presented before the real one arrives.
 */
#ifndef GVM_COMMON_AUTH_H
#define GVM_COMMON_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AUTH_ERR_MAX 256
#define AUTH_NONCE_LEN 16

struct auth_claim {
	uint64_t vm_id;
	uint32_t from;     /* sender's rank */
	uint32_t to;       /* receiver's rank */
	uint32_t channel;
	uint32_t nr_nodes;
	uint8_t challenge[AUTH_NONCE_LEN]; /* the receiver's, which this claim answers */
	uint8_t nonce[AUTH_NONCE_LEN];     /* ours, for the receiver's answer to carry */
	uint32_t flags;                    /* AUTH_SEALED */
	uint32_t reserved;                 /* zero */
	/* With AUTH_SEALED: our half of the connection's keys (common/seal.h). */
	uint8_t secret[AUTH_NONCE_LEN];
};

/* The sender runs with --integrity: every frame after the handshake is sealed. */
#define AUTH_SEALED 0x1u

/* A fresh random challenge.  Returns 0, or -1 with the reason in err. */
int auth_nonce(uint8_t nonce[AUTH_NONCE_LEN], char *err);

/*
 * Encode a credential for claim.  munge_socket NULL means munge's default
 * socket.  A claim that carries a secret (AUTH_SEALED) is encrypted with
 * AES-128 whatever munged's default.  On success *cred is a malloc'ed
 * NUL-terminated string.
 */
int auth_encode(const char *munge_socket, const struct auth_claim *claim, char **cred,
		char *err);

/*
 * Decode cred and check it: valid, signed for uid `uid`, a claim of the
 * right size, and encrypted if it carries a secret.  Fills *claim; the
 * caller checks its fields against what it expects.  Returns 0, or -1 with
 * the reason in err.
 */
int auth_decode(const char *munge_socket, const char *cred, uid_t uid,
		struct auth_claim *claim, char *err);

/*
 * What auth_decode does with what munged verified: len bytes at buf, signed
 * by cred_uid, are a claim if the uid is `uid` and the size a claim's.
 * Fills *claim.  Returns 0, or -1 with the reason in err.  Apart so that
 * tests/fuzz/mesh-hello.c reaches it without munged.
 */
int auth_claim_parse(const void *buf, int len, uid_t cred_uid, uid_t uid,
		     struct auth_claim *claim, char *err);

#endif
