/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crypto plugin over OpenSSL 3 EVP. Each session keeps its keyed cipher contexts, so an operation
 * only sets the IV and runs: no allocation and no key schedule on the per-op path.
 *
 * HMAC-SHA-256 is computed here from two SHA-256 states keyed at session creation (RFC 2104: the
 * inner and outer pads absorbed once), copied by value for each operation: EVP_MAC_init and
 * EVP_MAC_CTX_dup allocate on every call in OpenSSL 3 (the provider duplicates its digest
 * contexts), and the per-op path must not. The low-level SHA-256 functions are deprecated in 3.0
 * but present, and they run the same accelerated code (SHA-NI, AVX2) as EVP.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "synth/plugin.h"

struct ossl_sess {
    uint32_t alg;
    uint32_t tag_len;
    uint32_t mac_iv_len;     /* CBC-HMAC: IV bytes the MAC covers (16, or 0 with MAC_NO_IV) */
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
    SHA256_CTX inner, outer; /* HMAC: the key's pads absorbed, copied for every operation */
};

static int ossl_probe(char *why, size_t why_len)
{
    if (OpenSSL_version_num() < 0x30000000L) {
        snprintf(why, why_len, "OpenSSL %s is older than 3.0", OpenSSL_version(OPENSSL_VERSION));
        return -ENOTSUP;
    }
    snprintf(why, why_len, "%s", OpenSSL_version(OPENSSL_VERSION));
    return 0;
}

static uint32_t ossl_alg_mask(void)
{
    return (1u << SYNTH_ALG_AES128_GCM) | (1u << SYNTH_ALG_AES256_GCM) |
           (1u << SYNTH_ALG_CHACHA20_POLY1305) | (1u << SYNTH_ALG_AES256_CBC_HMAC_SHA256) |
           (1u << SYNTH_ALG_HMAC_SHA256);
}

static void ossl_session_destroy(void *sp)
{
    struct ossl_sess *s = sp;
    if (!s)
        return;
    EVP_CIPHER_CTX_free(s->enc); /* cleanses the key schedule */
    EVP_CIPHER_CTX_free(s->dec);
    OPENSSL_cleanse(s, sizeof(*s)); /* the HMAC states are key material too */
    free(s);
}

static int cipher_pair(struct ossl_sess *s, const EVP_CIPHER *c, const uint8_t *key, int padding)
{
    s->enc = EVP_CIPHER_CTX_new();
    s->dec = EVP_CIPHER_CTX_new();
    if (!s->enc || !s->dec)
        return -ENOMEM;
    if (!EVP_EncryptInit_ex(s->enc, c, NULL, key, NULL) || !EVP_DecryptInit_ex(s->dec, c, NULL, key, NULL))
        return -EINVAL;
    if (!padding) {
        EVP_CIPHER_CTX_set_padding(s->enc, 0);
        EVP_CIPHER_CTX_set_padding(s->dec, 0);
    }
    return 0;
}

static int hmac_ctx(struct ossl_sess *s, const uint8_t *key, size_t key_len)
{
    uint8_t k[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK];
    int ok;
    size_t i;

    if (key_len > sizeof(k))
        SHA256(key, key_len, k); /* a key longer than a block is hashed first */
    else
        memcpy(k, key, key_len);
    for (i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x36;
    ok = SHA256_Init(&s->inner) && SHA256_Update(&s->inner, pad, sizeof(pad));
    for (i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x5c;
    ok = ok && SHA256_Init(&s->outer) && SHA256_Update(&s->outer, pad, sizeof(pad));
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    return ok ? 0 : -EINVAL;
}

static int ossl_session_create(const struct synth_crypto_session_params *p, void **out)
{
    struct ossl_sess *s = calloc(1, sizeof(*s));
    int rc;

    if (!s)
        return -ENOMEM;
    s->alg = p->alg;
    s->tag_len = p->tag_len;
    s->mac_iv_len = (p->flags & SYNTH_CRYPTO_SF_MAC_NO_IV) ? 0 : 16;
    switch (p->alg) {
    case SYNTH_ALG_AES128_GCM:
        rc = cipher_pair(s, EVP_aes_128_gcm(), p->key, 1);
        break;
    case SYNTH_ALG_AES256_GCM:
        rc = cipher_pair(s, EVP_aes_256_gcm(), p->key, 1);
        break;
    case SYNTH_ALG_CHACHA20_POLY1305:
        rc = cipher_pair(s, EVP_chacha20_poly1305(), p->key, 1);
        break;
    case SYNTH_ALG_AES256_CBC_HMAC_SHA256:
        rc = cipher_pair(s, EVP_aes_256_cbc(), p->key, 0);
        if (rc == 0)
            rc = hmac_ctx(s, p->key + 32, (size_t)p->key_len - 32);
        break;
    case SYNTH_ALG_HMAC_SHA256:
        rc = hmac_ctx(s, p->key, p->key_len);
        break;
    default:
        rc = -ENOTSUP;
    }
    if (rc < 0) {
        ossl_session_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

static uint32_t aead_encrypt(struct ossl_sess *s, struct synth_crypto_op *op)
{
    int n = 0, fin = 0;

    if (!EVP_EncryptInit_ex(s->enc, NULL, NULL, NULL, op->iv) ||
        (op->aad_len && !EVP_EncryptUpdate(s->enc, NULL, &n, op->aad, (int)op->aad_len)) ||
        (op->len && !EVP_EncryptUpdate(s->enc, op->dst, &n, op->src, (int)op->len)) ||
        !EVP_EncryptFinal_ex(s->enc, op->dst + n, &fin) ||
        !EVP_CIPHER_CTX_ctrl(s->enc, EVP_CTRL_AEAD_GET_TAG, (int)s->tag_len, op->tag_out))
        return SYNTH_ST_DEVICE_ERROR;
    return SYNTH_ST_OK;
}

static uint32_t aead_decrypt(struct ossl_sess *s, struct synth_crypto_op *op)
{
    int n = 0, fin = 0;

    if (!EVP_DecryptInit_ex(s->dec, NULL, NULL, NULL, op->iv) ||
        (op->aad_len && !EVP_DecryptUpdate(s->dec, NULL, &n, op->aad, (int)op->aad_len)) ||
        (op->len && !EVP_DecryptUpdate(s->dec, op->dst, &n, op->src, (int)op->len)) ||
        !EVP_CIPHER_CTX_ctrl(s->dec, EVP_CTRL_AEAD_SET_TAG, (int)s->tag_len, op->tag))
        return SYNTH_ST_DEVICE_ERROR;
    if (EVP_DecryptFinal_ex(s->dec, op->dst + n, &fin) <= 0) {
        OPENSSL_cleanse(op->dst, op->len);
        return SYNTH_ST_AUTH_FAILED;
    }
    return SYNTH_ST_OK;
}

/* HMAC-SHA-256 over aad || iv || data into mac[32]. */
static int hmac3(struct ossl_sess *s, const uint8_t *aad, size_t aad_len, const uint8_t *iv,
                 size_t iv_len, const uint8_t *data, size_t len, uint8_t mac[32])
{
    SHA256_CTX c = s->inner;
    uint8_t inner[SHA256_DIGEST_LENGTH];
    int ok = (!aad_len || SHA256_Update(&c, aad, aad_len)) && (!iv_len || SHA256_Update(&c, iv, iv_len)) &&
             (!len || SHA256_Update(&c, data, len)) && SHA256_Final(inner, &c);

    c = s->outer;
    ok = ok && SHA256_Update(&c, inner, sizeof(inner)) && SHA256_Final(mac, &c);
    OPENSSL_cleanse(&c, sizeof(c));
    OPENSSL_cleanse(inner, sizeof(inner));
    return ok;
}

static uint32_t cbc_hmac_encrypt(struct ossl_sess *s, struct synth_crypto_op *op)
{
    uint8_t mac[32];
    int n = 0, fin = 0;

    if (!EVP_EncryptInit_ex(s->enc, NULL, NULL, NULL, op->iv) ||
        (op->len && !EVP_EncryptUpdate(s->enc, op->dst, &n, op->src, (int)op->len)) ||
        !EVP_EncryptFinal_ex(s->enc, op->dst + n, &fin) ||
        !hmac3(s, op->aad, op->aad_len, op->iv, s->mac_iv_len, op->dst, op->len, mac))
        return SYNTH_ST_DEVICE_ERROR;
    memcpy(op->tag_out, mac, s->tag_len);
    return SYNTH_ST_OK;
}

static uint32_t cbc_hmac_decrypt(struct ossl_sess *s, struct synth_crypto_op *op)
{
    uint8_t mac[32];
    int n = 0, fin = 0;

    if (!hmac3(s, op->aad, op->aad_len, op->iv, s->mac_iv_len, op->src, op->len, mac))
        return SYNTH_ST_DEVICE_ERROR;
    if (CRYPTO_memcmp(mac, op->tag, s->tag_len) != 0) {
        OPENSSL_cleanse(op->dst, op->len);
        return SYNTH_ST_AUTH_FAILED;
    }
    if (!EVP_DecryptInit_ex(s->dec, NULL, NULL, NULL, op->iv) ||
        (op->len && !EVP_DecryptUpdate(s->dec, op->dst, &n, op->src, (int)op->len)) ||
        !EVP_DecryptFinal_ex(s->dec, op->dst + n, &fin))
        return SYNTH_ST_DEVICE_ERROR;
    return SYNTH_ST_OK;
}

static uint32_t hmac_only(struct ossl_sess *s, struct synth_crypto_op *op)
{
    uint8_t mac[32];

    if (!hmac3(s, op->aad, op->aad_len, NULL, 0, op->src, op->len, mac))
        return SYNTH_ST_DEVICE_ERROR;
    if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT) {
        memcpy(op->tag_out, mac, s->tag_len);
        return SYNTH_ST_OK;
    }
    return CRYPTO_memcmp(mac, op->tag, s->tag_len) == 0 ? SYNTH_ST_OK : SYNTH_ST_AUTH_FAILED;
}

static void ossl_crypto_burst(struct synth_crypto_op *ops, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        struct synth_crypto_op *op = &ops[i];
        struct ossl_sess *s = op->sess;
        int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;

        switch (s->alg) {
        case SYNTH_ALG_AES128_GCM:
        case SYNTH_ALG_AES256_GCM:
        case SYNTH_ALG_CHACHA20_POLY1305:
            op->status = enc ? aead_encrypt(s, op) : aead_decrypt(s, op);
            break;
        case SYNTH_ALG_AES256_CBC_HMAC_SHA256:
            op->status = enc ? cbc_hmac_encrypt(s, op) : cbc_hmac_decrypt(s, op);
            break;
        case SYNTH_ALG_HMAC_SHA256:
            op->status = hmac_only(s, op);
            break;
        default:
            op->status = SYNTH_ST_NOT_SUPPORTED;
        }
    }
}

static const struct synth_plugin openssl_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_CRYPTO,
    .name = "openssl",
    .description = "OpenSSL 3 EVP (AES-GCM, ChaCha20-Poly1305, AES-CBC + HMAC-SHA-256)",
    .priority = 10,
    .crypto_caps = SYNTH_CRYPTO_CAP_MAC_NO_IV,
    .probe = ossl_probe,
    .alg_mask = ossl_alg_mask,
    .session_create = ossl_session_create,
    .session_destroy = ossl_session_destroy,
    .crypto_burst = ossl_crypto_burst,
    .cpu_features = "", /* OpenSSL picks its code path at run time (AES-NI, AVX...) */
};

const struct synth_plugin *synth_plugin_openssl(void) { return &openssl_plugin; }
