/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crypto plugin over intel-ipsec-mb: AES-GCM, ChaCha20-Poly1305 and AES-256-CBC + HMAC-SHA-256,
 * on the widest code path the CPU has (SSE, AVX2, AVX-512/VAES; SHA-NI for the HMAC).
 *
 * Two ways into the library. The direct AEAD functions (one call per operation, a context on the
 * stack) serve AES-GCM and ChaCha20-Poly1305 where they are the faster way (direct_min_len).
 * Everything else goes through the job API: a burst submits one job per operation and flushes
 * once, so that the multi-buffer code (CBC encryption and HMAC-SHA-256 on several lanes at once)
 * works on many operations together. AES-CBC + HMAC runs in two rounds per burst: first the
 * encryptions and the MACs of the decryptions, then the MACs of the encryptions (over the fresh
 * ciphertext) and the decryptions whose tag verified, so that no ciphertext is decrypted before
 * its tag is checked.
 *
 * A job manager holds a queue, so it serves one thread at a time: probe allocates a small pool of
 * them, and a burst takes one for its duration (the data path runs a device on one worker, and
 * calibration may run another plugin call at the same time). Each manager comes with scratch
 * memory for the MAC's input: a job hashes one contiguous buffer (of at most JOB_MAX_LEN bytes),
 * and the MAC covers AAD || IV || C, which lie apart in the arena, so the three are copied next to
 * each other there
 * (no copy when the arena already holds AAD and C back to back with MAC_NO_IV). The library has
 * no way to resume SHA-256 from a state of our choosing, so an input longer than a job takes (and
 * the empty one, which it refuses as a job) is hashed through OpenSSL's SHA-256 instead, from pads
 * keyed at session creation; ops that large spend their time hashing, not in per-op overhead.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_COMPAT_IMB_API_053 /* the library's old names (SHA1, ...) clash with OpenSSL's */
#include <intel-ipsec-mb.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "synth/plugin.h"

#define NSLOTS 8u               /* job managers: bursts that may run at once */
#define CHUNK 64u               /* ops per round of jobs (the data path's largest burst) */
#define SCRATCH_LEN (128u << 10) /* per manager: MAC inputs of one round, gathered (>= JOB_MAX_LEN) */
#define JOB_MAX_LEN (32u << 10) /* longest job input we submit: the library's lanes count in 16 bits */
#define HMAC_BLOCK 64u
#define HMAC_LEN 32u

struct imb_sess {
    struct gcm_key_data gcm;  /* first: 64-byte aligned by the allocation */
    uint8_t enc_keys[16 * 15] __attribute__((aligned(16))); /* AES-256 round keys */
    uint8_t dec_keys[16 * 15] __attribute__((aligned(16)));
    struct chacha20_poly1305_key { uint8_t k[32]; } chacha __attribute__((aligned(16)));
    uint8_t ipad[HMAC_LEN] __attribute__((aligned(16))); /* SHA-256 states after K ^ ipad, K ^ opad */
    uint8_t opad[HMAC_LEN] __attribute__((aligned(16)));
    SHA256_CTX inner, outer;  /* the same pads for OpenSSL, for MAC inputs beyond the scratch */
    uint32_t alg;
    uint32_t tag_len;
    uint32_t mac_iv_len;      /* CBC-HMAC: IV bytes the MAC covers (16, or 0 with MAC_NO_IV) */
};

struct mb_slot {
    IMB_MGR *mgr;
    uint8_t *scratch;            /* SCRATCH_LEN bytes */
    int busy;                    /* taken by a burst (atomic) */
    uint8_t tags[CHUNK][HMAC_LEN]; /* per op of the round: the tag a job computed */
};

static struct mb_slot pool[NSLOTS];
static IMB_MGR *mgr;      /* pool[0].mgr: the function table for the direct calls, which are stateless */
static IMB_ARCH mgr_arch;

/*
 * From this many bytes on, an AEAD op takes a job; below it, the direct call. Measured in bursts
 * of 64 at 64, 256 and 1488 bytes (AVX2 + SHA-NI, intel-ipsec-mb 1.3): for AES-GCM the direct
 * call is 2-12% faster at every size (the job API adds bookkeeping and runs GCM jobs one at a
 * time on this code path); for ChaCha20-Poly1305 the job is 5-20% faster at every size (one call
 * instead of init, update and finalize). CBC + HMAC exists only as jobs: submitted as a burst and
 * flushed once, they take a fifth to a tenth of the time of a flush per op.
 */
static uint32_t direct_min_len[SYNTH_ALG_MAX] = {
    [SYNTH_ALG_AES128_GCM] = UINT32_MAX,
    [SYNTH_ALG_AES256_GCM] = UINT32_MAX,
    [SYNTH_ALG_CHACHA20_POLY1305] = 0,
};

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

static void pool_free(void)
{
    for (unsigned i = 0; i < NSLOTS; i++) {
        if (pool[i].mgr)
            free_mb_mgr(pool[i].mgr);
        free(pool[i].scratch);
        pool[i].mgr = NULL;
        pool[i].scratch = NULL;
    }
    mgr = NULL;
}

static int imb_probe(char *why, size_t why_len)
{
    if (mgr)
        return 0;
    for (unsigned i = 0; i < NSLOTS; i++) {
        IMB_ARCH arch;

        pool[i].mgr = alloc_mb_mgr(0);
        pool[i].scratch = malloc(SCRATCH_LEN);
        if (!pool[i].mgr || !pool[i].scratch) {
            pool_free();
            snprintf(why, why_len, "intel-ipsec-mb: cannot allocate %u job managers", NSLOTS);
            return -ENOMEM;
        }
        init_mb_mgr_auto(pool[i].mgr, &arch);
        if (imb_get_errno(pool[i].mgr) != 0 || arch == IMB_ARCH_NONE || arch == IMB_ARCH_NOAESNI) {
            pool_free();
            snprintf(why, why_len, "intel-ipsec-mb %s: no AES-NI code path for this CPU", IMB_VERSION_STR);
            return -ENOTSUP;
        }
        mgr_arch = arch;
    }
    mgr = pool[0].mgr;
    snprintf(why, why_len, "intel-ipsec-mb %s, %s code path%s", IMB_VERSION_STR, arch_name(mgr_arch),
             (mgr->features & IMB_FEATURE_SHANI) ? " with SHA-NI" : "");
    return 0;
}

static uint32_t imb_alg_mask(void)
{
    return (1u << SYNTH_ALG_AES128_GCM) | (1u << SYNTH_ALG_AES256_GCM) | (1u << SYNTH_ALG_CHACHA20_POLY1305) |
           (1u << SYNTH_ALG_AES256_CBC_HMAC_SHA256);
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

/* The HMAC-SHA-256 pads of key, as the library's states and as OpenSSL's (RFC 2104). */
static int hmac_pads(struct imb_sess *s, const uint8_t *key, size_t key_len)
{
    uint8_t k[HMAC_BLOCK] __attribute__((aligned(16))) = {0};
    uint8_t pad[HMAC_BLOCK] __attribute__((aligned(16)));
    int ok;
    size_t i;

    if (key_len > HMAC_BLOCK)
        IMB_SHA256(mgr, key, key_len, k); /* a key longer than a block is hashed first */
    else
        memcpy(k, key, key_len);
    for (i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x36;
    IMB_SHA256_ONE_BLOCK(mgr, pad, s->ipad);
    ok = SHA256_Init(&s->inner) && SHA256_Update(&s->inner, pad, sizeof(pad));
    for (i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x5c;
    IMB_SHA256_ONE_BLOCK(mgr, pad, s->opad);
    ok = ok && SHA256_Init(&s->outer) && SHA256_Update(&s->outer, pad, sizeof(pad));
    wipe(k, sizeof(k));
    wipe(pad, sizeof(pad));
    return ok ? 0 : -EINVAL;
}

static int imb_session_create(const struct synth_crypto_session_params *p, void **out)
{
    struct imb_sess *s;
    int rc = 0;

    if (!mgr)
        return -ENOTSUP;
    if (!(imb_alg_mask() & (1u << p->alg)))
        return -ENOTSUP;
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
        memcpy(s->chacha.k, p->key, sizeof(s->chacha.k));
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
    return CRYPTO_memcmp(a, b, n) != 0;
}

/* An AEAD decryption whose tag did not verify: nothing of the output remains. */
static void auth_failed(struct synth_crypto_op *op)
{
    wipe(op->dst, op->len);
    op->status = SYNTH_ST_AUTH_FAILED;
}

/* ---- the direct AEAD calls: one op, one call ---- */

static void gcm_direct(struct imb_sess *s, struct synth_crypto_op *op)
{
    struct gcm_context_data ctx;
    uint8_t tag[16];
    int aes128 = s->alg == SYNTH_ALG_AES128_GCM;

    if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT) {
        if (aes128)
            IMB_AES128_GCM_ENC(mgr, &s->gcm, &ctx, op->dst, op->src, op->len, op->iv, op->aad, op->aad_len,
                               tag, s->tag_len);
        else
            IMB_AES256_GCM_ENC(mgr, &s->gcm, &ctx, op->dst, op->src, op->len, op->iv, op->aad, op->aad_len,
                               tag, s->tag_len);
        memcpy(op->tag_out, tag, s->tag_len);
        op->status = SYNTH_ST_OK;
    } else {
        if (aes128)
            IMB_AES128_GCM_DEC(mgr, &s->gcm, &ctx, op->dst, op->src, op->len, op->iv, op->aad, op->aad_len,
                               tag, s->tag_len);
        else
            IMB_AES256_GCM_DEC(mgr, &s->gcm, &ctx, op->dst, op->src, op->len, op->iv, op->aad, op->aad_len,
                               tag, s->tag_len);
        if (ct_diff(tag, op->tag, s->tag_len))
            auth_failed(op);
        else
            op->status = SYNTH_ST_OK;
    }
    wipe((uint8_t *)&ctx, sizeof(ctx));
}

static void chacha_direct(struct imb_sess *s, struct synth_crypto_op *op)
{
    struct chacha20_poly1305_context_data ctx;
    uint8_t tag[16];

    IMB_CHACHA20_POLY1305_INIT(mgr, s->chacha.k, &ctx, op->iv, op->aad, op->aad_len);
    if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT) {
        IMB_CHACHA20_POLY1305_ENC_UPDATE(mgr, s->chacha.k, &ctx, op->dst, op->src, op->len);
        IMB_CHACHA20_POLY1305_ENC_FINALIZE(mgr, &ctx, tag, sizeof(tag));
        memcpy(op->tag_out, tag, sizeof(tag));
        op->status = SYNTH_ST_OK;
    } else {
        IMB_CHACHA20_POLY1305_DEC_UPDATE(mgr, s->chacha.k, &ctx, op->dst, op->src, op->len);
        IMB_CHACHA20_POLY1305_DEC_FINALIZE(mgr, &ctx, tag, sizeof(tag));
        if (ct_diff(tag, op->tag, sizeof(tag)))
            auth_failed(op);
        else
            op->status = SYNTH_ST_OK;
    }
    wipe((uint8_t *)&ctx, sizeof(ctx));
}

/* ---- jobs ---- */

/* What a job does for its op (job->user_data2). */
enum job_kind {
    JOB_AEAD_ENC,   /* GCM / ChaCha20-Poly1305 encrypt: the tag goes to tag_out */
    JOB_AEAD_DEC,   /* ... decrypt: the tag is checked */
    JOB_CBC_ENC,    /* CBC encrypt: its MAC follows in round two */
    JOB_CBC_DEC,    /* CBC decrypt, after the tag verified: done */
    JOB_MAC_ENC,    /* MAC over the fresh ciphertext: the tag goes to tag_out */
    JOB_MAC_DEC,    /* MAC over the received ciphertext: checked, then round two decrypts */
};

struct round {
    struct mb_slot *slot;
    struct synth_crypto_op *ops; /* the chunk; an op's index in it names its tags[] entry */
    size_t used;                 /* scratch bytes taken by jobs in flight */
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
    switch (kind) {
    case JOB_AEAD_ENC:
    case JOB_MAC_ENC:
        memcpy(op->tag_out, tag, op->tag_len);
        op->status = SYNTH_ST_OK;
        break;
    case JOB_AEAD_DEC:
        if (ct_diff(tag, op->tag, op->tag_len))
            auth_failed(op);
        else
            op->status = SYNTH_ST_OK;
        break;
    case JOB_MAC_DEC:
        if (ct_diff(tag, op->tag, op->tag_len))
            auth_failed(op);
        else
            op->status = SYNTH_ST_OK; /* round two decrypts it */
        break;
    default: /* JOB_CBC_ENC, JOB_CBC_DEC */
        op->status = SYNTH_ST_OK;
    }
}

static IMB_JOB *job_get(struct round *r, struct synth_crypto_op *op, enum job_kind kind)
{
    IMB_JOB *job = IMB_GET_NEXT_JOB(r->slot->mgr);

    memset(job, 0, sizeof(*job));
    job->user_data = op;
    job->user_data2 = (void *)(((uintptr_t)(op - r->ops) << 8) | kind);
    job->auth_tag_output = r->slot->tags[op - r->ops];
    return job;
}

/* Submit the job job_get returned (the manager's next one). */
static void job_submit(struct round *r)
{
    IMB_JOB *job = IMB_SUBMIT_JOB(r->slot->mgr);

    while (job) {
        job_done(r, job);
        job = IMB_GET_COMPLETED_JOB(r->slot->mgr);
    }
}

/* Run every job in flight to completion; their scratch is free again. */
static void round_flush(struct round *r)
{
    IMB_JOB *job;

    while ((job = IMB_FLUSH_JOB(r->slot->mgr)) != NULL)
        job_done(r, job);
    r->used = 0;
}

static void aead_job(struct round *r, struct imb_sess *s, struct synth_crypto_op *op)
{
    int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;
    IMB_JOB *job = job_get(r, op, enc ? JOB_AEAD_ENC : JOB_AEAD_DEC);

    job->cipher_direction = enc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
    job->chain_order = enc ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
    job->src = op->src;
    job->dst = op->dst;
    job->msg_len_to_cipher_in_bytes = op->len;
    job->msg_len_to_hash_in_bytes = op->len;
    job->iv = op->iv;
    job->iv_len_in_bytes = 12;
    if (s->alg == SYNTH_ALG_CHACHA20_POLY1305) {
        job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
        job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
        job->enc_keys = job->dec_keys = s->chacha.k;
        job->key_len_in_bytes = 32;
        job->u.CHACHA20_POLY1305.aad = op->aad;
        job->u.CHACHA20_POLY1305.aad_len_in_bytes = op->aad_len;
        job->auth_tag_output_len_in_bytes = 16;
    } else {
        job->cipher_mode = IMB_CIPHER_GCM;
        job->hash_alg = IMB_AUTH_AES_GMAC;
        job->enc_keys = job->dec_keys = &s->gcm;
        job->key_len_in_bytes = s->alg == SYNTH_ALG_AES128_GCM ? 16 : 32;
        job->u.GCM.aad = op->aad;
        job->u.GCM.aad_len_in_bytes = op->aad_len;
        job->auth_tag_output_len_in_bytes = s->tag_len;
    }
    job_submit(r);
}

static void cbc_chunk(struct round *r, struct imb_sess *s, struct synth_crypto_op *op, uint32_t off, uint32_t len,
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
 * CBC over more than a job takes: chunks of JOB_MAX_LEN, one after the other, each chained to
 * the ciphertext block before it. Encryption goes forwards (that block is fresh output);
 * decryption goes backwards, so that, in place, the block before a chunk is still ciphertext.
 */
static void cbc_long(struct round *r, struct imb_sess *s, struct synth_crypto_op *op)
{
    int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;
    uint32_t chunks = (op->len + JOB_MAX_LEN - 1) / JOB_MAX_LEN;

    for (uint32_t k = 0; k < chunks && op->status == SYNTH_ST_OK; k++) {
        uint32_t off = (enc ? k : chunks - 1 - k) * JOB_MAX_LEN;
        uint32_t len = op->len - off < JOB_MAX_LEN ? op->len - off : JOB_MAX_LEN;

        cbc_chunk(r, s, op, off, len, off == 0 ? op->iv : (enc ? op->dst : op->src) + off - 16);
        round_flush(r);
    }
}

static void cbc_job(struct round *r, struct imb_sess *s, struct synth_crypto_op *op)
{
    if (op->len == 0) /* nothing to cipher: the library refuses an empty CBC job */
        op->status = SYNTH_ST_OK;
    else if (op->len > JOB_MAX_LEN)
        cbc_long(r, s, op);
    else
        cbc_chunk(r, s, op, 0, op->len, op->iv);
}

/* HMAC-SHA-256 over aad || iv || data through OpenSSL: inputs longer than a job, and the empty one. */
static int hmac_openssl(struct imb_sess *s, struct synth_crypto_op *op, const uint8_t *data, uint8_t mac[32])
{
    SHA256_CTX c = s->inner;
    uint8_t inner[SHA256_DIGEST_LENGTH];
    int ok = (!op->aad_len || SHA256_Update(&c, op->aad, op->aad_len)) &&
             (!s->mac_iv_len || SHA256_Update(&c, op->iv, s->mac_iv_len)) &&
             (!op->len || SHA256_Update(&c, data, op->len)) && SHA256_Final(inner, &c);

    c = s->outer;
    ok = ok && SHA256_Update(&c, inner, sizeof(inner)) && SHA256_Final(mac, &c);
    OPENSSL_cleanse(&c, sizeof(c));
    OPENSSL_cleanse(inner, sizeof(inner));
    return ok;
}

/* The MAC of a CBC op over aad || iv || C, C = data (the ciphertext: dst once encrypted, src to decrypt). */
static void mac_job(struct round *r, struct imb_sess *s, struct synth_crypto_op *op, const uint8_t *data)
{
    int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;
    size_t need = (size_t)op->aad_len + s->mac_iv_len + op->len;
    const uint8_t *msg = NULL;
    IMB_JOB *job;

    if (need == 0 || need > JOB_MAX_LEN) {
        /* the library refuses an empty HMAC job, and a long one: below */
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

        if (!hmac_openssl(s, op, data, tag)) {
            op->status = SYNTH_ST_DEVICE_ERROR;
            if (!enc)
                wipe(op->dst, op->len);
        } else if (enc) {
            memcpy(op->tag_out, tag, s->tag_len);
        } else if (ct_diff(tag, op->tag, s->tag_len)) {
            auth_failed(op);
        }
        return;
    }
    job = job_get(r, op, enc ? JOB_MAC_ENC : JOB_MAC_DEC);
    job->cipher_mode = IMB_CIPHER_NULL;
    job->cipher_direction = enc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
    job->chain_order = IMB_ORDER_HASH_CIPHER;
    job->hash_alg = IMB_AUTH_HMAC_SHA_256;
    job->src = msg;
    job->dst = NULL;
    job->msg_len_to_hash_in_bytes = need;
    job->auth_tag_output_len_in_bytes = HMAC_LEN;
    job->u.HMAC._hashed_auth_key_xor_ipad = s->ipad;
    job->u.HMAC._hashed_auth_key_xor_opad = s->opad;
    job_submit(r);
}

/* Take a job manager for one burst: every one is busy only while more bursts than NSLOTS run at once. */
static struct mb_slot *slot_take(void)
{
    for (;;) {
        for (unsigned i = 0; i < NSLOTS; i++)
            if (!__atomic_exchange_n(&pool[i].busy, 1, __ATOMIC_ACQUIRE))
                return &pool[i];
        sched_yield();
    }
}

static void slot_give(struct mb_slot *slot)
{
    __atomic_store_n(&slot->busy, 0, __ATOMIC_RELEASE);
}

static void run_chunk(struct mb_slot *slot, struct synth_crypto_op *ops, unsigned n)
{
    struct round r = {.slot = slot, .ops = ops, .used = 0};
    unsigned i;

    /* Round one: the AEAD ops, CBC encryptions, MACs of CBC decryptions. */
    for (i = 0; i < n; i++) {
        struct synth_crypto_op *op = &ops[i];
        struct imb_sess *s = op->sess;

        op->status = SYNTH_ST_OK;
        switch (s->alg) {
        case SYNTH_ALG_AES128_GCM:
        case SYNTH_ALG_AES256_GCM:
        case SYNTH_ALG_CHACHA20_POLY1305:
            if (op->len >= direct_min_len[s->alg] && (size_t)op->aad_len + op->len <= JOB_MAX_LEN)
                aead_job(&r, s, op);
            else if (s->alg == SYNTH_ALG_CHACHA20_POLY1305)
                chacha_direct(s, op);
            else
                gcm_direct(s, op);
            break;
        case SYNTH_ALG_AES256_CBC_HMAC_SHA256:
            if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT)
                cbc_job(&r, s, op);
            else
                mac_job(&r, s, op, op->src);
            break;
        default:
            op->status = SYNTH_ST_NOT_SUPPORTED;
        }
    }
    round_flush(&r);
    /* Round two: MACs of the fresh ciphertexts, decryptions whose tag verified. */
    for (i = 0; i < n; i++) {
        struct synth_crypto_op *op = &ops[i];
        struct imb_sess *s = op->sess;

        if (s->alg != SYNTH_ALG_AES256_CBC_HMAC_SHA256 || op->status != SYNTH_ST_OK)
            continue;
        if (op->opcode == SYNTH_OP_CRYPTO_ENCRYPT)
            mac_job(&r, s, op, op->dst);
        else
            cbc_job(&r, s, op);
    }
    round_flush(&r);
}

static void imb_crypto_burst(struct synth_crypto_op *ops, unsigned n)
{
    struct mb_slot *slot = slot_take();

    for (unsigned i = 0; i < n; i += CHUNK)
        run_chunk(slot, &ops[i], n - i < CHUNK ? n - i : CHUNK);
    wipe(slot->tags[0], (size_t)(n < CHUNK ? n : CHUNK) * HMAC_LEN); /* the tags this burst computed */
    slot_give(slot);
}

static const struct synth_plugin ipsecmb_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_CRYPTO,
    .name = "ipsec-mb",
    .description = "intel-ipsec-mb (AES-GCM, ChaCha20-Poly1305, AES-CBC + HMAC-SHA-256; SSE/AVX2/AVX-512)",
    .priority = 20,
    .crypto_caps = SYNTH_CRYPTO_CAP_MAC_NO_IV,
    .probe = imb_probe,
    .alg_mask = imb_alg_mask,
    .session_create = imb_session_create,
    .session_destroy = imb_session_destroy,
    .crypto_burst = imb_crypto_burst,
    .cpu_features = "aes pclmulqdq sse4_2", /* the SSE path; AVX2 / AVX-512+VAES and SHA-NI when present */
};

const struct synth_plugin *synth_plugin_ipsecmb(void) { return &ipsecmb_plugin; }
