/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crypto plugin over intel-ipsec-mb: AES-GCM, ChaCha20-Poly1305 and, where the CPU has SHA-NI,
 * AES-256-CBC + HMAC-SHA-256, on the widest code path the CPU has (SSE, AVX2, AVX-512/VAES).
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
 * AES-CBC + HMAC exists only as jobs, and runs on a manager of the SSE code path: with SHA-NI, its
 * HMAC-SHA-256 hashes one buffer at a time on the SHA instructions, while the AVX2 path hashes 8
 * lanes side by side and a lone job pays for all 8 (measured, one job per flush at 1488 bytes:
 * ~8x the SSE path's time, several times OpenSSL's). Without SHA-NI the plugin leaves the algorithm
 * to others. A burst runs in two rounds: first the encryptions and the MACs of the decryptions,
 * then the MACs of the encryptions (over the fresh ciphertext) and the decryptions whose tag
 * verified, so that no ciphertext is decrypted before its tag is checked. A job hashes one
 * contiguous buffer, and the MAC covers AAD || IV || C, which lie apart in the arena: they are
 * gathered into the thread's scratch memory (no copy when the arena holds AAD and C back to back
 * and the MAC leaves the IV out). The library cannot resume SHA-256 from a state of our choosing,
 * so a MAC input longer than a job (and the empty one, which it refuses) is hashed through
 * OpenSSL's SHA-256 from pads keyed at session creation.
 *
 * A job manager holds a queue, so it serves one thread at a time: each thread that runs jobs gets
 * managers of its own on its first such burst (freed when the thread exits), so no burst ever
 * waits for another. A burst can end without returning: the worker's fault guard jumps out of the
 * plugin when a region is cut under it. The managers then still hold jobs that point into that
 * region, so a burst that finds its thread's managers marked busy starts them over (init) instead
 * of flushing them. The direct calls are stateless and use probe's manager only as a function table.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* explicit_bzero */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_COMPAT_IMB_API_053 /* the library's old names (SHA1, ...) clash with OpenSSL's */
#include <intel-ipsec-mb.h>

#include "hmac_pvt.h"
#include "synth/plugin.h"

#define CHUNK 64u                /* ops per round of jobs (the data path's largest burst) */
#define JOB_MAX_LEN (32u << 10)  /* longest job input we submit */
#define SCRATCH_LEN (128u << 10) /* per thread: the gathered MAC inputs of one round (>= JOB_MAX_LEN) */
#define CHACHA_TAG_LEN 16u
#define HMAC_BLOCK 64u
#define HMAC_LEN 32u

struct imb_sess {
    struct gcm_key_data gcm; /* first: 64-byte aligned by the allocation */
    uint8_t chacha[32] __attribute__((aligned(16)));
    uint8_t enc_keys[16 * 15] __attribute__((aligned(16))); /* AES-256 round keys */
    uint8_t dec_keys[16 * 15] __attribute__((aligned(16)));
    uint8_t ipad[HMAC_LEN] __attribute__((aligned(16))); /* SHA-256 states after K ^ ipad, K ^ opad */
    uint8_t opad[HMAC_LEN] __attribute__((aligned(16)));
    struct synthi_hmac256 mac; /* the same pads for OpenSSL, for MAC inputs no job takes */
    uint32_t alg;
    uint32_t tag_len;
    uint32_t mac_iv_len; /* CBC-HMAC: IV bytes the MAC covers (16, or 0 with MAC_NO_IV) */
};

struct mb_slot {
    IMB_MGR *mgr;                  /* the widest code path: ChaCha20-Poly1305 jobs */
    IMB_MGR *sse;                  /* the SSE code path: AES-CBC + HMAC jobs (SHA-NI) */
    uint8_t *scratch;              /* SCRATCH_LEN bytes */
    int in_burst;                  /* set while a burst uses it: still set = that burst was cut short */
    uint8_t tags[CHUNK][HMAC_LEN]; /* per op of the round: the tag its job computed */
};

static IMB_MGR *mgr; /* set up once by probe: the function table for the direct calls */
static int have_shani;
static __thread struct mb_slot *thread_slot; /* this thread's job managers, from its first job */
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

    if (slot->mgr)
        free_mb_mgr(slot->mgr);
    if (slot->sse)
        free_mb_mgr(slot->sse);
    free(slot->scratch);
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
    have_shani = (mgr->features & IMB_FEATURE_SHANI) != 0;
    snprintf(why, why_len, "intel-ipsec-mb %s, %s code path, %s", IMB_VERSION_STR, arch_name(mgr_arch),
             have_shani ? "SHA-NI for AES-CBC + HMAC" : "no SHA-NI: AES-CBC + HMAC left to other plugins");
    return 0;
}

static uint32_t imb_alg_mask(void)
{
    return (1u << SYNTH_ALG_AES128_GCM) | (1u << SYNTH_ALG_AES256_GCM) | (1u << SYNTH_ALG_CHACHA20_POLY1305) |
           (have_shani ? 1u << SYNTH_ALG_AES256_CBC_HMAC_SHA256 : 0);
}

/*
 * Zero n bytes the compiler may not drop: explicit_bzero is memset behind a barrier. A volatile
 * byte loop did the same one store at a time, and on 64-byte ops wiping the GCM context and the
 * tag that way was a quarter of the worker's time (perf, bench/dpdk).
 */
static void wipe(void *p, size_t n) { explicit_bzero(p, n); }

static void imb_session_destroy(void *sp)
{
    if (!sp)
        return;
    wipe(sp, sizeof(struct imb_sess));
    free(sp);
}

/* The HMAC-SHA-256 pads of key, as the library's states and as OpenSSL's (RFC 2104). */
static int hmac_pads(struct imb_sess *s, const uint8_t *key, size_t key_len)
{
    uint8_t ipad[HMAC_BLOCK] __attribute__((aligned(16))), opad[HMAC_BLOCK] __attribute__((aligned(16)));
    int rc = synthi_hmac256_key(&s->mac, key, key_len, ipad, opad);

    IMB_SHA256_ONE_BLOCK(mgr, ipad, s->ipad);
    IMB_SHA256_ONE_BLOCK(mgr, opad, s->opad);
    wipe(ipad, sizeof(ipad));
    wipe(opad, sizeof(opad));
    return rc;
}

static int imb_session_create(const struct synth_crypto_session_params *p, void **out)
{
    struct imb_sess *s;
    int rc = 0;

    if (!mgr)
        return -ENOTSUP;
    if (!(imb_alg_mask() & (1u << p->alg)))
        return -ENOTSUP;
    if (p->alg == SYNTH_ALG_CHACHA20_POLY1305 && (p->key_len != 32 || p->tag_len != CHACHA_TAG_LEN))
        return -EINVAL;
    if (p->alg == SYNTH_ALG_AES256_CBC_HMAC_SHA256 && (p->key_len <= 32 || p->tag_len > HMAC_LEN))
        return -EINVAL;
    if (posix_memalign((void **)&s, 64, sizeof(*s)) != 0)
        return -ENOMEM;
    memset(s, 0, sizeof(*s));
    s->alg = p->alg;
    s->tag_len = p->tag_len;
    s->mac_iv_len = (p->flags & SYNTH_CRYPTO_SF_MAC_NO_IV) ? 0 : 16;
    switch (p->alg) {
    case SYNTH_ALG_AES128_GCM:
        IMB_AES128_GCM_PRE(mgr, p->key, &s->gcm);
        break;
    case SYNTH_ALG_AES256_GCM:
        IMB_AES256_GCM_PRE(mgr, p->key, &s->gcm);
        break;
    case SYNTH_ALG_CHACHA20_POLY1305:
        memcpy(s->chacha, p->key, sizeof(s->chacha));
        break;
    default: /* SYNTH_ALG_AES256_CBC_HMAC_SHA256: key = AES key (32) || MAC key */
        IMB_AES_KEYEXP_256(mgr, p->key, s->enc_keys, s->dec_keys);
        rc = hmac_pads(s, p->key + 32, (size_t)p->key_len - 32);
    }
    if (rc < 0) {
        imb_session_destroy(s);
        return rc;
    }
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
    wipe(&ctx, sizeof(ctx));
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
    wipe(&ctx, sizeof(ctx));
    wipe(tag, sizeof(tag));
}

/* ---- jobs: a round submits up to CHUNK of them to one manager and flushes once ---- */

/* What a job does for its op (the low byte of job->user_data2; the op's index in the chunk above it). */
enum job_kind {
    JOB_AEAD,    /* ChaCha20-Poly1305: the tag goes to tag_out, or is checked */
    JOB_CBC_ENC, /* CBC encrypt: its MAC follows in round two */
    JOB_CBC_DEC, /* CBC decrypt, after the tag verified: done */
    JOB_MAC_ENC, /* MAC over the fresh ciphertext: the tag goes to tag_out */
    JOB_MAC_DEC, /* MAC over the received ciphertext: checked, then round two decrypts */
};

struct round {
    IMB_MGR *m;
    struct mb_slot *slot;
    struct synth_crypto_op *ops; /* the chunk; an op's index in it names its tags[] entry */
    size_t used;                 /* scratch bytes taken by MAC jobs in flight */
};

static void job_done(struct round *r, IMB_JOB *job)
{
    struct synth_crypto_op *op = job->user_data;
    unsigned kind = (unsigned)((uintptr_t)job->user_data2 & 0xff);
    const uint8_t *tag = r->slot->tags[(uintptr_t)job->user_data2 >> 8];

    if (job->status != IMB_STATUS_COMPLETED) {
        op->status = SYNTH_ST_DEVICE_ERROR;
        if (op->opcode == SYNTH_OP_CRYPTO_DECRYPT)
            wipe(op->dst, op->len);
        return;
    }
    if (kind == JOB_CBC_ENC || kind == JOB_CBC_DEC)
        op->status = SYNTH_ST_OK;
    else if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT) {
        memcpy(op->tag_out, tag, op->tag_len);
        op->status = SYNTH_ST_OK;
    } else {
        check_or_fail(op, tag, op->tag_len); /* a MAC_DEC that verified: round two decrypts it */
    }
}

static IMB_JOB *job_get(struct round *r, struct synth_crypto_op *op, enum job_kind kind)
{
    IMB_JOB *job = IMB_GET_NEXT_JOB(r->m);

    memset(job, 0, sizeof(*job));
    job->user_data = op;
    job->user_data2 = (void *)(((uintptr_t)(op - r->ops) << 8) | kind);
    job->auth_tag_output = r->slot->tags[op - r->ops];
    return job;
}

/* Submit the job job_get returned (the manager's next one). */
static void job_submit(struct round *r)
{
    for (IMB_JOB *job = IMB_SUBMIT_JOB(r->m); job; job = IMB_GET_COMPLETED_JOB(r->m))
        job_done(r, job);
}

/* Run every job in flight to completion; their scratch is free again. */
static void round_flush(struct round *r)
{
    IMB_JOB *job;

    while ((job = IMB_FLUSH_JOB(r->m)) != NULL)
        job_done(r, job);
    r->used = 0;
}

static void chacha_job(struct round *r, struct imb_sess *s, struct synth_crypto_op *op)
{
    int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;
    IMB_JOB *job = job_get(r, op, JOB_AEAD);

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
    job->auth_tag_output_len_in_bytes = CHACHA_TAG_LEN;
    job_submit(r);
}

static void cbc_piece(struct round *r, struct imb_sess *s, struct synth_crypto_op *op, uint32_t off, uint32_t len,
                      const uint8_t *iv)
{
    int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;
    IMB_JOB *job = job_get(r, op, enc ? JOB_CBC_ENC : JOB_CBC_DEC);

    job->cipher_mode = IMB_CIPHER_CBC;
    job->cipher_direction = enc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
    job->chain_order = enc ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
    job->hash_alg = IMB_AUTH_NULL;
    job->enc_keys = s->enc_keys;
    job->dec_keys = s->dec_keys;
    job->key_len_in_bytes = 32;
    job->src = op->src + off;
    job->dst = op->dst + off;
    job->msg_len_to_cipher_in_bytes = len;
    job->iv = iv;
    job->iv_len_in_bytes = 16;
    job_submit(r);
}

/*
 * The CBC part of an op. Over more than a job takes: pieces of JOB_MAX_LEN, one after the other,
 * each chained to the ciphertext block before it. Encryption goes forwards (that block is fresh
 * output); decryption goes backwards, so that, in place, the block before a piece is still
 * ciphertext.
 */
static void cbc_job(struct round *r, struct imb_sess *s, struct synth_crypto_op *op)
{
    int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;
    uint32_t pieces = (op->len + JOB_MAX_LEN - 1) / JOB_MAX_LEN;

    if (op->len == 0) { /* nothing to cipher: the library refuses an empty CBC job */
        op->status = SYNTH_ST_OK;
        return;
    }
    if (pieces == 1) {
        cbc_piece(r, s, op, 0, op->len, op->iv);
        return;
    }
    for (uint32_t k = 0; k < pieces && op->status == SYNTH_ST_OK; k++) {
        uint32_t off = (enc ? k : pieces - 1 - k) * JOB_MAX_LEN;
        uint32_t len = op->len - off < JOB_MAX_LEN ? op->len - off : JOB_MAX_LEN;

        cbc_piece(r, s, op, off, len, off == 0 ? op->iv : (enc ? op->dst : op->src) + off - 16);
        round_flush(r);
    }
}

/* The MAC of a CBC op over aad || iv || C, C = data (the ciphertext: dst once encrypted, src to decrypt). */
static void mac_job(struct round *r, struct imb_sess *s, struct synth_crypto_op *op, const uint8_t *data)
{
    int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;
    size_t need = (size_t)op->aad_len + s->mac_iv_len + op->len;
    const uint8_t *msg = NULL;
    IMB_JOB *job;

    if (need == 0 || need > JOB_MAX_LEN) {
        /* the library refuses an empty HMAC job, and we give it no long one: OpenSSL below */
    } else if (s->mac_iv_len == 0 && (op->aad_len == 0 || op->aad + op->aad_len == data)) {
        msg = op->aad_len ? op->aad : data; /* already one buffer in the arena */
    } else {
        uint8_t *p;

        if (need > SCRATCH_LEN - r->used)
            round_flush(r);
        p = r->slot->scratch + r->used;
        memcpy(p, op->aad, op->aad_len);
        memcpy(p + op->aad_len, op->iv, s->mac_iv_len);
        memcpy(p + op->aad_len + s->mac_iv_len, data, op->len);
        r->used += (need + 63) & ~(size_t)63;
        msg = p;
    }
    if (!msg) {
        uint8_t *tag = r->slot->tags[op - r->ops];

        if (!synthi_hmac256(&s->mac, op->aad, op->aad_len, op->iv, s->mac_iv_len, data, op->len, tag)) {
            op->status = SYNTH_ST_DEVICE_ERROR;
            if (!enc)
                wipe(op->dst, op->len);
        } else if (enc) {
            memcpy(op->tag_out, tag, s->tag_len);
        } else {
            check_or_fail(op, tag, s->tag_len);
        }
        return;
    }
    job = job_get(r, op, enc ? JOB_MAC_ENC : JOB_MAC_DEC);
    job->cipher_mode = IMB_CIPHER_NULL;
    job->cipher_direction = enc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
    job->chain_order = IMB_ORDER_HASH_CIPHER;
    job->hash_alg = IMB_AUTH_HMAC_SHA_256;
    job->src = msg;
    job->msg_len_to_hash_in_bytes = need;
    job->auth_tag_output_len_in_bytes = HMAC_LEN;
    job->u.HMAC._hashed_auth_key_xor_ipad = s->ipad;
    job->u.HMAC._hashed_auth_key_xor_opad = s->opad;
    job_submit(r);
}

/*
 * This thread's job managers for one burst, or NULL if it cannot have them (ChaCha ops then take
 * the direct calls, CBC ops fail with DEVICE_ERROR). Allocated on the thread's first burst with a
 * job: the only allocation this plugin makes outside session setup.
 */
static struct mb_slot *slot_take(void)
{
    struct mb_slot *slot = thread_slot;

    if (!slot) {
        slot = calloc(1, sizeof(*slot));
        if (!slot)
            return NULL;
        slot->mgr = alloc_mb_mgr(0);
        slot->sse = alloc_mb_mgr(0);
        slot->scratch = malloc(SCRATCH_LEN);
        if (!slot->mgr || !slot->sse || !slot->scratch || pthread_setspecific(slot_key, slot) != 0) {
            slot_free(slot);
            return NULL;
        }
        slot->in_burst = 1; /* initialised below */
        thread_slot = slot;
    }
    if (slot->in_burst) { /* new, or the jobs of a burst that a fault cut short: start over */
        IMB_ARCH arch;

        init_mb_mgr_auto(slot->mgr, &arch);
        init_mb_mgr_sse(slot->sse);
    }
    slot->in_burst = 1;
    return slot;
}

static void slot_give(struct mb_slot *slot, unsigned n)
{
    wipe(slot->tags[0], (size_t)(n < CHUNK ? n : CHUNK) * HMAC_LEN); /* the tags this burst computed */
    slot->in_burst = 0;
}

static void run_chunk(struct mb_slot **slot, struct synth_crypto_op *ops, unsigned n)
{
    struct round rc = {.m = NULL, .slot = NULL, .ops = ops, .used = 0}; /* ChaCha jobs */
    struct round rb = {.m = NULL, .slot = NULL, .ops = ops, .used = 0}; /* CBC + HMAC jobs */
    unsigned i, cbc = 0;

    /* Round one: the AEAD ops, CBC encryptions, MACs of CBC decryptions. */
    for (i = 0; i < n; i++) {
        struct synth_crypto_op *op = &ops[i];
        struct imb_sess *s = op->sess;

        if (s->alg == SYNTH_ALG_AES128_GCM || s->alg == SYNTH_ALG_AES256_GCM) {
            gcm_direct(s, op);
            continue;
        }
        if (s->alg == SYNTH_ALG_CHACHA20_POLY1305 && (uint64_t)op->aad_len + op->len > JOB_MAX_LEN) {
            chacha_direct(s, op);
            continue;
        }
        if (!*slot && !(*slot = slot_take())) {
            if (s->alg == SYNTH_ALG_CHACHA20_POLY1305)
                chacha_direct(s, op);
            else
                op->status = SYNTH_ST_DEVICE_ERROR;
            continue;
        }
        if (s->alg == SYNTH_ALG_CHACHA20_POLY1305) {
            rc.m = (*slot)->mgr;
            rc.slot = *slot;
            chacha_job(&rc, s, op);
            continue;
        }
        rb.m = (*slot)->sse;
        rb.slot = *slot;
        cbc++;
        op->status = SYNTH_ST_OK;
        if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT)
            cbc_job(&rb, s, op);
        else
            mac_job(&rb, s, op, op->src);
    }
    if (rc.m)
        round_flush(&rc);
    if (!cbc)
        return;
    round_flush(&rb);
    /* Round two: MACs of the fresh ciphertexts, decryptions whose tag verified. */
    for (i = 0; i < n; i++) {
        struct synth_crypto_op *op = &ops[i];
        struct imb_sess *s = op->sess;

        if (s->alg != SYNTH_ALG_AES256_CBC_HMAC_SHA256 || op->status != SYNTH_ST_OK)
            continue;
        if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT)
            mac_job(&rb, s, op, op->dst);
        else
            cbc_job(&rb, s, op);
    }
    round_flush(&rb);
}

static void imb_crypto_burst(struct synth_crypto_op *ops, unsigned n)
{
    struct mb_slot *slot = NULL; /* taken by the first job: a GCM-only burst needs none */

    for (unsigned i = 0; i < n; i += CHUNK)
        run_chunk(&slot, &ops[i], n - i < CHUNK ? n - i : CHUNK);
    if (slot)
        slot_give(slot, n);
}

static const struct synth_plugin ipsecmb_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_CRYPTO,
    .name = "ipsec-mb",
    .description = "intel-ipsec-mb (AES-GCM, ChaCha20-Poly1305, AES-CBC + HMAC-SHA-256 with SHA-NI; SSE/AVX2/AVX-512)",
    .priority = 20,
    .crypto_caps = SYNTH_CRYPTO_CAP_MAC_NO_IV,
    .probe = imb_probe,
    .alg_mask = imb_alg_mask,
    .session_create = imb_session_create,
    .session_destroy = imb_session_destroy,
    .crypto_burst = imb_crypto_burst,
    .cpu_features = "aes pclmulqdq sse4_2", /* the SSE path; AVX2 / AVX-512+VAES, SHA-NI when present */
};

const struct synth_plugin *synth_plugin_ipsecmb(void) { return &ipsecmb_plugin; }
