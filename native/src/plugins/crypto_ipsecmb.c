/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crypto plugin over intel-ipsec-mb: AES-GCM through the library's direct GCM functions, which
 * pick the widest code path the CPU has (SSE, AVX2, AVX-512/VAES). Keys are expanded once per
 * session; an operation is one call with a context on the stack. On small buffers this costs a
 * fraction of an OpenSSL EVP operation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <intel-ipsec-mb.h>

#include "synth/plugin.h"

struct imb_sess {
    struct gcm_key_data key; /* first: 64-byte aligned by the allocation */
    uint32_t alg;
    uint32_t tag_len;
};

static IMB_MGR *mgr;      /* function table, set up once by probe; the GCM calls are stateless */
static IMB_ARCH mgr_arch;

static const char *arch_name(IMB_ARCH a)
{
    switch (a) {
    case IMB_ARCH_SSE:
        return "sse";
    case IMB_ARCH_AVX:
        return "avx";
    case IMB_ARCH_AVX2:
        return "avx2";
    case IMB_ARCH_AVX512:
        return "avx512";
    default:
        return "none";
    }
}

static int imb_probe(char *why, size_t why_len)
{
    if (mgr)
        return 0;
    mgr = alloc_mb_mgr(0);
    if (!mgr) {
        snprintf(why, why_len, "intel-ipsec-mb: cannot allocate a manager");
        return -ENOMEM;
    }
    init_mb_mgr_auto(mgr, &mgr_arch);
    if (imb_get_errno(mgr) != 0 || mgr_arch == IMB_ARCH_NONE || mgr_arch == IMB_ARCH_NOAESNI) {
        snprintf(why, why_len, "intel-ipsec-mb %s: no AES-NI code path for this CPU", IMB_VERSION_STR);
        free_mb_mgr(mgr);
        mgr = NULL;
        return -ENOTSUP;
    }
    snprintf(why, why_len, "intel-ipsec-mb %s, %s code path", IMB_VERSION_STR, arch_name(mgr_arch));
    return 0;
}

static uint32_t imb_alg_mask(void) { return (1u << SYNTH_ALG_AES128_GCM) | (1u << SYNTH_ALG_AES256_GCM); }

static void wipe(volatile uint8_t *p, size_t n)
{
    while (n--)
        *p++ = 0;
}

static void imb_session_destroy(void *sp)
{
    if (!sp)
        return;
    wipe(sp, sizeof(struct imb_sess));
    free(sp);
}

static int imb_session_create(const struct synth_crypto_session_params *p, void **out)
{
    struct imb_sess *s;

    if (!mgr)
        return -ENOTSUP;
    if (p->alg != SYNTH_ALG_AES128_GCM && p->alg != SYNTH_ALG_AES256_GCM)
        return -ENOTSUP;
    if (posix_memalign((void **)&s, 64, sizeof(*s)) != 0)
        return -ENOMEM;
    memset(s, 0, sizeof(*s));
    s->alg = p->alg;
    s->tag_len = p->tag_len;
    if (p->alg == SYNTH_ALG_AES128_GCM)
        IMB_AES128_GCM_PRE(mgr, p->key, &s->key);
    else
        IMB_AES256_GCM_PRE(mgr, p->key, &s->key);
    *out = s;
    return 0;
}

/* Constant-time comparison of n bytes: 0 if equal. */
static int ct_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d != 0;
}

static void imb_crypto_burst(struct synth_crypto_op *ops, unsigned n)
{
    struct gcm_context_data ctx;
    uint8_t tag[16];
    unsigned i;

    for (i = 0; i < n; i++) {
        struct synth_crypto_op *op = &ops[i];
        struct imb_sess *s = op->sess;
        int aes128 = s->alg == SYNTH_ALG_AES128_GCM;

        if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT) {
            if (aes128)
                IMB_AES128_GCM_ENC(mgr, &s->key, &ctx, op->dst, op->src, op->len, op->iv, op->aad,
                                   op->aad_len, tag, s->tag_len);
            else
                IMB_AES256_GCM_ENC(mgr, &s->key, &ctx, op->dst, op->src, op->len, op->iv, op->aad,
                                   op->aad_len, tag, s->tag_len);
            memcpy(op->tag_out, tag, s->tag_len);
            op->status = SYNTH_ST_OK;
        } else {
            if (aes128)
                IMB_AES128_GCM_DEC(mgr, &s->key, &ctx, op->dst, op->src, op->len, op->iv, op->aad,
                                   op->aad_len, tag, s->tag_len);
            else
                IMB_AES256_GCM_DEC(mgr, &s->key, &ctx, op->dst, op->src, op->len, op->iv, op->aad,
                                   op->aad_len, tag, s->tag_len);
            if (ct_diff(tag, op->tag, s->tag_len)) {
                wipe(op->dst, op->len);
                op->status = SYNTH_ST_AUTH_FAILED;
            } else {
                op->status = SYNTH_ST_OK;
            }
        }
    }
    wipe((uint8_t *)&ctx, sizeof(ctx));
}

static const struct synth_plugin ipsecmb_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_CRYPTO,
    .name = "ipsec-mb",
    .description = "intel-ipsec-mb (AES-GCM, SSE/AVX2/AVX-512 code paths)",
    .priority = 20,
    .probe = imb_probe,
    .alg_mask = imb_alg_mask,
    .session_create = imb_session_create,
    .session_destroy = imb_session_destroy,
    .crypto_burst = imb_crypto_burst,
    .cpu_features = "aes pclmulqdq sse4_2", /* the SSE path; AVX2 / AVX-512+VAES when present */
};

const struct synth_plugin *synth_plugin_ipsecmb(void) { return &ipsecmb_plugin; }
