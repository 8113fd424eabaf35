#include "common/auth.h"

#include <errno.h>
#include <munge.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static munge_ctx_t auth_ctx(const char *munge_socket, char *err)
{
	munge_ctx_t ctx = munge_ctx_create();

	if (!ctx) {
		snprintf(err, AUTH_ERR_MAX, "munge: cannot create a context (out of memory)");
		return NULL;
	}
	if (munge_socket && munge_ctx_set(ctx, MUNGE_OPT_SOCKET, munge_socket) != EMUNGE_SUCCESS) {
		snprintf(err, AUTH_ERR_MAX, "munge: bad socket path '%s'", munge_socket);
		munge_ctx_destroy(ctx);
		return NULL;
	}
	return ctx;
}

int auth_encode(const char *munge_socket, const struct auth_claim *claim, char **cred,
		char *err)
{
	munge_ctx_t ctx = auth_ctx(munge_socket, err);
	munge_err_t rc;

	if (!ctx)
		return -1;
	/* The secret must not cross the network in clear, whatever munged's default. */
	if ((claim->flags & AUTH_SEALED) &&
	    munge_ctx_set(ctx, MUNGE_OPT_CIPHER_TYPE, MUNGE_CIPHER_AES128) != EMUNGE_SUCCESS) {
		snprintf(err, AUTH_ERR_MAX, "munge: cannot ask for an encrypted credential: %s",
			 munge_ctx_strerror(ctx));
		munge_ctx_destroy(ctx);
		return -1;
	}
	rc = munge_encode(cred, ctx, claim, sizeof(*claim));
	/* munge's own text already says whether munged answered. */
	if (rc != EMUNGE_SUCCESS)
		snprintf(err, AUTH_ERR_MAX, "munge: cannot encode a credential%s%s: %s",
			 munge_socket ? " on " : "", munge_socket ? munge_socket : "",
			 munge_ctx_strerror(ctx));
	munge_ctx_destroy(ctx);
	return rc == EMUNGE_SUCCESS ? 0 : -1;
}

int auth_claim_parse(const void *buf, int len, uid_t cred_uid, uid_t uid,
		     struct auth_claim *claim, char *err)
{
	if (cred_uid != uid) {
		snprintf(err, AUTH_ERR_MAX, "credential of uid %u, expected uid %u",
			 (unsigned)cred_uid, (unsigned)uid);
		return -1;
	}
	if (len != (int)sizeof(*claim)) {
		snprintf(err, AUTH_ERR_MAX, "credential carries %d bytes, not a giantvm claim", len);
		return -1;
	}
	memcpy(claim, buf, sizeof(*claim));
	return 0;
}

int auth_decode(const char *munge_socket, const char *cred, uid_t uid,
		struct auth_claim *claim, char *err)
{
	munge_ctx_t ctx = auth_ctx(munge_socket, err);
	void *buf = NULL;
	int len = 0, ret = -1;
	uid_t cred_uid;
	gid_t cred_gid;
	munge_err_t rc;

	if (!ctx)
		return -1;
	rc = munge_decode(cred, ctx, &buf, &len, &cred_uid, &cred_gid);
	if (rc != EMUNGE_SUCCESS)
		snprintf(err, AUTH_ERR_MAX, "munge credential refused: %s", munge_ctx_strerror(ctx));
	else
		ret = auth_claim_parse(buf, len, cred_uid, uid, claim, err);
	if (ret == 0 && (claim->flags & AUTH_SEALED)) {
		int cipher = MUNGE_CIPHER_NONE;

		if (munge_ctx_get(ctx, MUNGE_OPT_CIPHER_TYPE, &cipher) != EMUNGE_SUCCESS ||
		    cipher == MUNGE_CIPHER_NONE) {
			snprintf(err, AUTH_ERR_MAX, "munge credential carries a link key but was not "
				 "encrypted: refused");
			ret = -1;
		}
	}
	free(buf);
	munge_ctx_destroy(ctx);
	return ret;
}

int auth_nonce(uint8_t nonce[AUTH_NONCE_LEN], char *err)
{
	ssize_t n = getrandom(nonce, AUTH_NONCE_LEN, 0);

	if (n != AUTH_NONCE_LEN) {
		snprintf(err, AUTH_ERR_MAX, "no random bytes for a challenge: %s",
			 n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	return 0;
}
