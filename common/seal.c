#include "common/seal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One direction: its own key, and the number of frames it has carried. */
struct seal_dir {
	EVP_CIPHER_CTX *ctx;
	uint64_t frames;
};

struct seal {
	struct seal_dir tx, rx;
};

/*
 * A direction's key: SHA-256 of a label naming the direction (the
 * connector's frames or the acceptor's), both ends' secrets, the VM and the
 * channel; its first 16 bytes.  The secrets are fresh random bytes per
 * connection, so no two connections or directions share a key.
 */
static int seal_key(uint8_t key[16], char dir, const uint8_t *connector, const uint8_t *acceptor,
		    uint64_t vm_id, unsigned channel)
{
	uint8_t msg[32 + 2 * SEAL_SECRET_LEN + 12], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, off = 0;
	uint32_t ch = channel;

	memcpy(msg, "giantvm link integrity key v1 ", 30);
	off = 30;
	msg[off++] = (uint8_t)dir;
	msg[off++] = 0;
	memcpy(msg + off, connector, SEAL_SECRET_LEN);
	off += SEAL_SECRET_LEN;
	memcpy(msg + off, acceptor, SEAL_SECRET_LEN);
	off += SEAL_SECRET_LEN;
	memcpy(msg + off, &vm_id, 8);
	off += 8;
	memcpy(msg + off, &ch, 4);
	off += 4;
	if (!EVP_Digest(msg, off, md, &mdlen, EVP_sha256(), NULL) || mdlen < 16)
		return -1;
	memcpy(key, md, 16);
	return 0;
}

static int seal_dir_init(struct seal_dir *d, const uint8_t key[16], bool encrypt)
{
	d->ctx = EVP_CIPHER_CTX_new();
	if (!d->ctx)
		return -1;
	return (encrypt ? EVP_EncryptInit_ex(d->ctx, EVP_aes_128_gcm(), NULL, key, NULL)
			: EVP_DecryptInit_ex(d->ctx, EVP_aes_128_gcm(), NULL, key, NULL)) == 1
		       ? 0
		       : -1;
}

struct seal *seal_new(const uint8_t mine[SEAL_SECRET_LEN], const uint8_t theirs[SEAL_SECRET_LEN],
		      bool connector, uint64_t vm_id, unsigned channel, char *err)
{
	const uint8_t *c = connector ? mine : theirs, *a = connector ? theirs : mine;
	uint8_t kc[16], ka[16];
	struct seal *s = calloc(1, sizeof(*s));
	int bad;

	if (!s) {
		snprintf(err, SEAL_ERR_MAX, "integrity: out of memory");
		return NULL;
	}
	bad = seal_key(kc, 'c', c, a, vm_id, channel) || seal_key(ka, 'a', c, a, vm_id, channel) ||
	      seal_dir_init(&s->tx, connector ? kc : ka, true) ||
	      seal_dir_init(&s->rx, connector ? ka : kc, false);
	memset(kc, 0, sizeof(kc));
	memset(ka, 0, sizeof(ka));
	if (bad) {
		snprintf(err, SEAL_ERR_MAX, "integrity: OpenSSL's libcrypto cannot set up "
			 "AES-128-GCM (a FIPS or minimal build?)");
		seal_free(s);
		return NULL;
	}
	return s;
}

void seal_free(struct seal *s)
{
	if (!s)
		return;
	EVP_CIPHER_CTX_free(s->tx.ctx);
	EVP_CIPHER_CTX_free(s->rx.ctx);
	free(s);
}

/* The nonce of a direction's next frame: its number, never reused under one key. */
static int seal_start(struct seal_dir *d, bool encrypt, const struct wire_hdr *h,
		      const void *payload)
{
	uint8_t iv[12] = { 0 };
	int n;

	memcpy(iv + 4, &d->frames, 8);
	d->frames++;
	if ((encrypt ? EVP_EncryptInit_ex(d->ctx, NULL, NULL, NULL, iv)
		     : EVP_DecryptInit_ex(d->ctx, NULL, NULL, NULL, iv)) != 1)
		return -1;
	/* Header and payload as additional data only: checked, left in clear. */
	if (EVP_CipherUpdate(d->ctx, NULL, &n, (const void *)h, sizeof(*h)) != 1)
		return -1;
	if (h->len && EVP_CipherUpdate(d->ctx, NULL, &n, payload, (int)h->len) != 1)
		return -1;
	return 0;
}

int seal_tag(struct seal *s, const struct wire_hdr *h, const void *payload,
	     uint8_t tag[SEAL_TAG_LEN])
{
	uint8_t none[16];
	int n;

	if (seal_start(&s->tx, true, h, payload) ||
	    EVP_EncryptFinal_ex(s->tx.ctx, none, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->tx.ctx, EVP_CTRL_AEAD_GET_TAG, SEAL_TAG_LEN, tag) != 1)
		return -1;
	return 0;
}

int seal_check(struct seal *s, const struct wire_hdr *h, const void *payload,
	       const uint8_t tag[SEAL_TAG_LEN])
{
	uint8_t none[16];
	int n;

	if (seal_start(&s->rx, false, h, payload) ||
	    EVP_CIPHER_CTX_ctrl(s->rx.ctx, EVP_CTRL_AEAD_SET_TAG, SEAL_TAG_LEN, (void *)tag) != 1 ||
	    EVP_DecryptFinal_ex(s->rx.ctx, none, &n) != 1)
		return -1;
	return 0;
}
