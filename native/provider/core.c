/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every part of the provider shares: the algorithms, the fallback reasons and their
 * counting, and the default provider's ciphers that the fallbacks use.
 */
#include <stdio.h>

#include <openssl/provider.h>

#include "prov.h"

const char *const sp_reason_names[SP_R_COUNT] = {
    [SP_R_NO_DEVICE] = "no-device", [SP_R_RESET] = "reset",             [SP_R_RING_FULL] = "ring-full",
    [SP_R_TIMEOUT] = "timeout",     [SP_R_UNSUPPORTED] = "unsupported", [SP_R_BUSY] = "busy",
};

const struct sp_alg sp_algs[SP_ALG_COUNT] = {
    [SP_AES128_GCM] = {"AES-128-GCM", SYNTH_ALG_AES128_GCM, 16, EVP_CIPH_GCM_MODE},
    [SP_AES256_GCM] = {"AES-256-GCM", SYNTH_ALG_AES256_GCM, 32, EVP_CIPH_GCM_MODE},
    [SP_CHACHA20_POLY1305] = {"ChaCha20-Poly1305", SYNTH_ALG_CHACHA20_POLY1305, 32, 0},
};

void sp_fallback(struct sp_prov *p, enum sp_reason r)
{
    __atomic_fetch_add(&p->fallbacks[r], 1, __ATOMIC_RELAXED);
    if (p->log && !(__atomic_fetch_or(&p->logged, 1u << r, __ATOMIC_RELAXED) & (1u << r)))
        fprintf(stderr, "synth: falling back to the default provider (%s); counted from now on\n",
                sp_reason_names[r]);
}

/* Our own library context with only the default provider: a fallback never comes back here. */
EVP_CIPHER *sp_sw_cipher(struct sp_prov *p, enum sp_alg_id alg)
{
    EVP_CIPHER *c = __atomic_load_n(&p->sw[alg], __ATOMIC_ACQUIRE);

    if (c)
        return c;
    pthread_mutex_lock(&p->open_lock);
    if (!p->sw_libctx) {
        p->sw_libctx = OSSL_LIB_CTX_new();
        if (p->sw_libctx && (p->sw_default = OSSL_PROVIDER_load(p->sw_libctx, "default")))
            for (int i = 0; i < SP_ALG_COUNT; i++)
                __atomic_store_n(&p->sw[i], EVP_CIPHER_fetch(p->sw_libctx, sp_algs[i].name, "provider=default"),
                                 __ATOMIC_RELEASE);
    }
    c = p->sw[alg];
    pthread_mutex_unlock(&p->open_lock);
    return c;
}

