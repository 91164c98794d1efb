/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An external crypto plugin, built and loaded by the tests: AES-GCM over OpenSSL's EVP in a
 * shared object of its own, loaded with dlopen from the daemon's plugin directory. Its priority is
 * above the built-ins', so once loaded it serves AES-GCM.
 *
 * Built with -DHANG_FILE='"PATH"', an ENCRYPT whose AAD starts with "HANG" blocks its worker until
 * PATH exists: a plugin that hangs, for the tests of the daemon's watchdog.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "synth/plugin.h"

struct sess {
    EVP_CIPHER_CTX *enc, *dec;
    uint32_t tag_len;
};

static int probe(char *why, size_t n)
{
    snprintf(why, n, "test plugin over %s", OpenSSL_version(OPENSSL_VERSION));
    return 0;
}

static uint32_t alg_mask(void) { return (1u << SYNTH_ALG_AES128_GCM) | (1u << SYNTH_ALG_AES256_GCM); }

static void destroy(void *p)
{
    struct sess *s = p;
    if (!s)
        return;
    EVP_CIPHER_CTX_free(s->enc);
    EVP_CIPHER_CTX_free(s->dec);
    free(s);
}

static int create(const struct synth_crypto_session_params *p, void **out)
{
    const EVP_CIPHER *c = p->alg == SYNTH_ALG_AES128_GCM ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
    struct sess *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->tag_len = p->tag_len;
    s->enc = EVP_CIPHER_CTX_new();
    s->dec = EVP_CIPHER_CTX_new();
    if (!s->enc || !s->dec || !EVP_EncryptInit_ex(s->enc, c, NULL, p->key, NULL) ||
        !EVP_DecryptInit_ex(s->dec, c, NULL, p->key, NULL)) {
        destroy(s);
        return -EINVAL;
    }
    *out = s;
    return 0;
}

#ifdef HANG_FILE
#include <time.h>
#include <unistd.h>
static void maybe_hang(const struct synth_crypto_op *op)
{
    struct timespec ms = {0, 10000000};
    if (op->aad_len < 4 || memcmp(op->aad, "HANG", 4))
        return;
    while (access(HANG_FILE, F_OK) != 0)
        nanosleep(&ms, NULL);
}
#else
static void maybe_hang(const struct synth_crypto_op *op) { (void)op; }
#endif

static void burst(struct synth_crypto_op *ops, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct synth_crypto_op *op = &ops[i];
        struct sess *s = op->sess;
        int l = 0, f = 0;
        uint8_t tag[16];
        if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT)
            maybe_hang(op);
        if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT) {
            int ok = EVP_EncryptInit_ex(s->enc, NULL, NULL, NULL, op->iv) &&
                     (!op->aad_len || EVP_EncryptUpdate(s->enc, NULL, &l, op->aad, (int)op->aad_len)) &&
                     (!op->len || EVP_EncryptUpdate(s->enc, op->dst, &l, op->src, (int)op->len)) &&
                     EVP_EncryptFinal_ex(s->enc, op->dst + l, &f) &&
                     EVP_CIPHER_CTX_ctrl(s->enc, EVP_CTRL_AEAD_GET_TAG, (int)s->tag_len, tag);
            if (ok)
                memcpy(op->tag_out, tag, s->tag_len);
            op->status = ok ? SYNTH_ST_OK : SYNTH_ST_DEVICE_ERROR;
        } else {
            int ok = EVP_DecryptInit_ex(s->dec, NULL, NULL, NULL, op->iv) &&
                     (!op->aad_len || EVP_DecryptUpdate(s->dec, NULL, &l, op->aad, (int)op->aad_len)) &&
                     (!op->len || EVP_DecryptUpdate(s->dec, op->dst, &l, op->src, (int)op->len)) &&
                     EVP_CIPHER_CTX_ctrl(s->dec, EVP_CTRL_AEAD_SET_TAG, (int)s->tag_len, op->tag);
            if (!ok) {
                op->status = SYNTH_ST_DEVICE_ERROR;
            } else if (EVP_DecryptFinal_ex(s->dec, op->dst + l, &f) <= 0) {
                OPENSSL_cleanse(op->dst, op->len);
                op->status = SYNTH_ST_AUTH_FAILED;
            } else {
                op->status = SYNTH_ST_OK;
            }
        }
    }
}

static const struct synth_plugin table = {
    .abi_version = PLUGIN_ABI, /* the build sets it: the real one, or a wrong one for a test */
    .dev_class = SYNTH_CLASS_CRYPTO,
    .name = PLUGIN_NAME,
    .description = "test: external AES-GCM plugin",
    .priority = 30,
    .probe = probe,
    .alg_mask = alg_mask,
    .session_create = create,
    .session_destroy = destroy,
    .crypto_burst = burst,
    .cpu_features = "",
};

const struct synth_plugin *synth_plugin_entry(void) { return &table; }
