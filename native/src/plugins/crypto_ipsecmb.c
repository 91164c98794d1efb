/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crypto plugin over intel-ipsec-mb: AES-GCM and ChaCha20-Poly1305, on the widest code path the
 * CPU has (SSE, AVX2, AVX-512/VAES).
 *
 * AES-GCM goes through the library's direct GCM functions: keys expanded once per session, an
 * operation is one call with a context on the stack. ChaCha20-Poly1305 goes through the job API:
 * a burst submits one job per operation and flushes once. Measured (AVX2, intel-ipsec-mb 1.3, 8
 * bytes of AAD), a ChaCha job beats the direct INIT / UPDATE / FINALIZE calls at every size, one
 * op per burst as well as 64: 0.52 us against 0.63-0.85 us per op at 64 bytes, 0.90 against 1.08
 * at 256, 3.0 against 3.2 at 1488 (OpenSSL: 1.1, 1.8, 3.6); for GCM the direct call is the faster
 * one. An op whose AAD and data together exceed JOB_MAX_LEN takes the direct ChaCha calls: at that
 * size the job saves a few percent at most, and no job gets a length beyond what we tested.
 *
 * A job manager holds a queue, so it serves one thread at a time: each thread that runs ChaCha jobs
 * gets a manager of its own on its first such burst (freed when the thread exits), so no burst ever
 * waits for another. A burst can end without returning: the worker's fault guard jumps out of the
 * plugin when a region is cut under it. The manager then still holds jobs that point into that
 * region, so a burst that finds its thread's manager marked busy starts it over (init) instead of
 * flushing them. The direct calls are stateless and use probe's manager only as a function table.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <intel-ipsec-mb.h>

#include "synth/plugin.h"

#define CHUNK 64u               /* ops per round of jobs (the data path's largest burst) */
#define JOB_MAX_LEN (32u << 10) /* longest AAD + data we hand to one job */
#define CHACHA_TAG_LEN 16u

struct imb_sess {
    struct gcm_key_data gcm; /* first: 64-byte aligned by the allocation */
    uint8_t chacha[32] __attribute__((aligned(16)));
    uint32_t alg;
    uint32_t tag_len;
};

struct mb_slot {
    IMB_MGR *mgr;
    int in_burst;                        /* set while a burst uses it: still set = that burst was cut short */
    uint8_t tags[CHUNK][CHACHA_TAG_LEN]; /* per op of the round: the tag its job computed */
};

static IMB_MGR *mgr; /* set up once by probe: the function table for the direct calls */
static __thread struct mb_slot *thread_slot; /* this thread's job manager, from its first ChaCha burst */
static pthread_key_t slot_key;               /* frees a thread's slot when the thread exits */
static pthread_once_t slot_key_once = PTHREAD_ONCE_INIT;
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

static void slot_free(void *p)
{
    struct mb_slot *slot = p;

    free_mb_mgr(slot->mgr);
    free(slot);
}

static void slot_key_create(void) { (void)pthread_key_create(&slot_key, slot_free); }

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
    pthread_once(&slot_key_once, slot_key_create);
    snprintf(why, why_len, "intel-ipsec-mb %s, %s code path", IMB_VERSION_STR, arch_name(mgr_arch));
    return 0;
}

static uint32_t imb_alg_mask(void)
{
    return (1u << SYNTH_ALG_AES128_GCM) | (1u << SYNTH_ALG_AES256_GCM) | (1u << SYNTH_ALG_CHACHA20_POLY1305);
}

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
    if (!(imb_alg_mask() & (1u << p->alg)))
        return -ENOTSUP;
    if (p->alg == SYNTH_ALG_CHACHA20_POLY1305 && (p->key_len != 32 || p->tag_len != CHACHA_TAG_LEN))
        return -EINVAL;
    if (posix_memalign((void **)&s, 64, sizeof(*s)) != 0)
        return -ENOMEM;
    memset(s, 0, sizeof(*s));
    s->alg = p->alg;
    s->tag_len = p->tag_len;
    if (p->alg == SYNTH_ALG_AES128_GCM)
        IMB_AES128_GCM_PRE(mgr, p->key, &s->gcm);
    else if (p->alg == SYNTH_ALG_AES256_GCM)
        IMB_AES256_GCM_PRE(mgr, p->key, &s->gcm);
    else
        memcpy(s->chacha, p->key, sizeof(s->chacha));
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

/* A decryption whose tag did not verify: nothing of the output remains. */
static void auth_failed(struct synth_crypto_op *op)
{
    wipe(op->dst, op->len);
    op->status = SYNTH_ST_AUTH_FAILED;
}

static void check_or_fail(struct synth_crypto_op *op, const uint8_t *tag, uint32_t tag_len)
{
    if (ct_diff(tag, op->tag, tag_len))
        auth_failed(op);
    else
        op->status = SYNTH_ST_OK;
}

/* ---- the direct calls: one op, one call, a context on the stack ---- */

static void gcm_direct(struct imb_sess *s, struct synth_crypto_op *op)
{
    struct gcm_context_data ctx;
    uint8_t tag[16];
    int aes128 = s->alg == SYNTH_ALG_AES128_GCM;

    if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT) {
        if (aes128)
            IMB_AES128_GCM_ENC(mgr, &s->gcm, &ctx, op->dst, op->src, op->len, op->iv, op->aad, op->aad_len, tag,
                               s->tag_len);
        else
            IMB_AES256_GCM_ENC(mgr, &s->gcm, &ctx, op->dst, op->src, op->len, op->iv, op->aad, op->aad_len, tag,
                               s->tag_len);
        memcpy(op->tag_out, tag, s->tag_len);
        op->status = SYNTH_ST_OK;
    } else {
        if (aes128)
            IMB_AES128_GCM_DEC(mgr, &s->gcm, &ctx, op->dst, op->src, op->len, op->iv, op->aad, op->aad_len, tag,
                               s->tag_len);
        else
            IMB_AES256_GCM_DEC(mgr, &s->gcm, &ctx, op->dst, op->src, op->len, op->iv, op->aad, op->aad_len, tag,
                               s->tag_len);
        check_or_fail(op, tag, s->tag_len);
    }
    wipe((uint8_t *)&ctx, sizeof(ctx));
    wipe(tag, sizeof(tag));
}

static void chacha_direct(struct imb_sess *s, struct synth_crypto_op *op)
{
    struct chacha20_poly1305_context_data ctx;
    uint8_t tag[CHACHA_TAG_LEN];

    IMB_CHACHA20_POLY1305_INIT(mgr, s->chacha, &ctx, op->iv, op->aad, op->aad_len);
    if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT) {
        IMB_CHACHA20_POLY1305_ENC_UPDATE(mgr, s->chacha, &ctx, op->dst, op->src, op->len);
        IMB_CHACHA20_POLY1305_ENC_FINALIZE(mgr, &ctx, tag, sizeof(tag));
        memcpy(op->tag_out, tag, sizeof(tag));
        op->status = SYNTH_ST_OK;
    } else {
        IMB_CHACHA20_POLY1305_DEC_UPDATE(mgr, s->chacha, &ctx, op->dst, op->src, op->len);
        IMB_CHACHA20_POLY1305_DEC_FINALIZE(mgr, &ctx, tag, sizeof(tag));
        check_or_fail(op, tag, sizeof(tag));
    }
    wipe((uint8_t *)&ctx, sizeof(ctx));
    wipe(tag, sizeof(tag));
}

/* ---- ChaCha20-Poly1305 jobs: a round submits up to CHUNK of them and flushes once ---- */

struct round {
    struct mb_slot *slot;
    struct synth_crypto_op *ops; /* the chunk; an op's index in it names its tags[] entry */
};

static void job_done(struct round *r, IMB_JOB *job)
{
    struct synth_crypto_op *op = job->user_data;
    const uint8_t *tag = r->slot->tags[op - r->ops];

    if (job->status != IMB_STATUS_COMPLETED) {
        op->status = SYNTH_ST_DEVICE_ERROR;
        if (op->opcode == SYNTH_OP_CRYPTO_DECRYPT)
            wipe(op->dst, op->len);
    } else if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT) {
        memcpy(op->tag_out, tag, CHACHA_TAG_LEN);
        op->status = SYNTH_ST_OK;
    } else {
        check_or_fail(op, tag, CHACHA_TAG_LEN);
    }
}

static void chacha_job(struct round *r, struct imb_sess *s, struct synth_crypto_op *op)
{
    IMB_MGR *m = r->slot->mgr;
    IMB_JOB *job = IMB_GET_NEXT_JOB(m);
    int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;

    memset(job, 0, sizeof(*job));
    job->user_data = op;
    job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
    job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
    job->cipher_direction = enc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
    job->chain_order = enc ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
    job->enc_keys = job->dec_keys = s->chacha;
    job->key_len_in_bytes = 32;
    job->src = op->src;
    job->dst = op->dst;
    job->msg_len_to_cipher_in_bytes = op->len;
    job->msg_len_to_hash_in_bytes = op->len;
    job->iv = op->iv;
    job->iv_len_in_bytes = 12;
    job->u.CHACHA20_POLY1305.aad = op->aad;
    job->u.CHACHA20_POLY1305.aad_len_in_bytes = op->aad_len;
    job->auth_tag_output = r->slot->tags[op - r->ops];
    job->auth_tag_output_len_in_bytes = CHACHA_TAG_LEN;
    for (job = IMB_SUBMIT_JOB(m); job; job = IMB_GET_COMPLETED_JOB(m))
        job_done(r, job);
}

/*
 * This thread's job manager for one burst, or NULL if it cannot have one (the ops then take the
 * direct calls). Allocated on the thread's first ChaCha burst, the only allocation this plugin makes
 * outside session setup.
 */
static struct mb_slot *slot_take(void)
{
    struct mb_slot *slot = thread_slot;
    IMB_ARCH arch;

    if (!slot) {
        slot = calloc(1, sizeof(*slot));
        if (!slot)
            return NULL;
        slot->mgr = alloc_mb_mgr(0);
        if (!slot->mgr) {
            free(slot);
            return NULL;
        }
        init_mb_mgr_auto(slot->mgr, &arch);
        if (pthread_setspecific(slot_key, slot) != 0) {
            slot_free(slot);
            return NULL;
        }
        thread_slot = slot;
    } else if (slot->in_burst) {
        init_mb_mgr_auto(slot->mgr, &arch); /* drop the jobs of a burst that a fault cut short */
    }
    slot->in_burst = 1;
    return slot;
}

static void slot_give(struct mb_slot *slot) { slot->in_burst = 0; }

static void run_chunk(struct mb_slot **slot, struct synth_crypto_op *ops, unsigned n)
{
    struct round r = {.slot = NULL, .ops = ops};
    IMB_JOB *job;

    for (unsigned i = 0; i < n; i++) {
        struct synth_crypto_op *op = &ops[i];
        struct imb_sess *s = op->sess;

        if (s->alg != SYNTH_ALG_CHACHA20_POLY1305) {
            gcm_direct(s, op);
        } else if ((uint64_t)op->aad_len + op->len > JOB_MAX_LEN || (!*slot && !(*slot = slot_take()))) {
            chacha_direct(s, op);
        } else {
            r.slot = *slot;
            chacha_job(&r, s, op);
        }
    }
    if (!r.slot)
        return;
    while ((job = IMB_FLUSH_JOB(r.slot->mgr)) != NULL)
        job_done(&r, job);
}

static void imb_crypto_burst(struct synth_crypto_op *ops, unsigned n)
{
    struct mb_slot *slot = NULL; /* taken by the first ChaCha job: a GCM-only burst needs none */

    for (unsigned i = 0; i < n; i += CHUNK)
        run_chunk(&slot, &ops[i], n - i < CHUNK ? n - i : CHUNK);
    if (slot) {
        wipe(slot->tags[0], (size_t)(n < CHUNK ? n : CHUNK) * CHACHA_TAG_LEN); /* this burst's tags */
        slot_give(slot);
    }
}

static const struct synth_plugin ipsecmb_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_CRYPTO,
    .name = "ipsec-mb",
    .description = "intel-ipsec-mb (AES-GCM, ChaCha20-Poly1305; SSE/AVX2/AVX-512 code paths)",
    .priority = 20,
    .probe = imb_probe,
    .alg_mask = imb_alg_mask,
    .session_create = imb_session_create,
    .session_destroy = imb_session_destroy,
    .crypto_burst = imb_crypto_burst,
    .cpu_features = "aes pclmulqdq sse4_2", /* the SSE path; AVX2 / AVX-512+VAES when present */
};

const struct synth_plugin *synth_plugin_ipsecmb(void) { return &ipsecmb_plugin; }
