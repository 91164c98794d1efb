/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AES-256-GCM op of the crypto benchmarks (crypto_bench.c, noisy_bench.c) and the guest side
 * of a crypto device they drive: one ESP-like slot per op in the arena, 128-byte aligned,
 *
 *   slot + 0    AAD (8 bytes: SPI and sequence number)
 *   slot + 16   IV (12 bytes)
 *   slot + 128  payload, encrypted in place
 *   slot + 128 + size   tag (16 bytes)
 *
 * The guest writes the header for every op while the device writes payload and tag: the header
 * has a 128-byte block (an adjacent-line prefetch pair) of its own, else each header write would
 * pull a line the device is writing over to the guest's core and back (docs/device-abi.md, 4.4).
 *
 * The same op through intel-ipsec-mb's direct GCM API (key expanded once, one call per op with a
 * context on the stack, as the ipsec-mb plugin does it) is here too when BENCH_IPSECMB is defined
 * (link -lIPSec_MB then); without it the benchmarks need OpenSSL alone.
 *
 * Include after bench_util.h and synth/guest.h.
 */
#ifndef SYNTH_BENCH_GCM_H
#define SYNTH_BENCH_GCM_H

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define SLOT_HDR 128u
#define AAD_OFF 0u
#define AAD_LEN 8u
#define IV_OFF 16u
#define IV_LEN 12u
#define TAG_LEN 16u

static const uint8_t KEY[32] = {
    0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
    0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
};

static inline uint32_t slot_size(uint32_t size) { return (SLOT_HDR + size + TAG_LEN + 127u) & ~127u; }

/*
 * Per-op header: AAD = SPI || 32-bit sequence (big-endian, as on the wire); IV = salt || 64-bit
 * counter. The salt carries the SPI, so runs with different SPIs under one key (the flooder and the
 * probe of bench/noisy) never share an IV.
 */
static inline void fill_hdr(uint8_t *slot, uint64_t seq, uint8_t spi)
{
    uint8_t *aad = slot + AAD_OFF, *iv = slot + IV_OFF;
    uint32_t s32 = (uint32_t)seq;
    aad[0] = 0x00; aad[1] = 0x00; aad[2] = 0x10; aad[3] = spi;
    aad[4] = (uint8_t)(s32 >> 24); aad[5] = (uint8_t)(s32 >> 16); aad[6] = (uint8_t)(s32 >> 8); aad[7] = (uint8_t)s32;
    iv[0] = 0xca; iv[1] = 0xfe; iv[2] = 0x10; iv[3] = spi;
    memcpy(iv + 4, &seq, 8);
}

static inline void fill_payload(uint8_t *p, uint32_t size, uint32_t salt)
{
    uint32_t i;
    for (i = 0; i < size; i++)
        p[i] = (uint8_t)(i * 31u + salt * 7u + 1u);
}

static inline EVP_CIPHER_CTX *gcm_ctx(const uint8_t *key)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        die("EVP_CIPHER_CTX_new failed");
    if (!EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, NULL))
        die("EVP_EncryptInit_ex (key) failed");
    return ctx;
}

/* The per-op sequence of a VNF with a keyed context: set IV, AAD, data, final, tag. 0 or -1. */
static inline int gcm_encrypt(EVP_CIPHER_CTX *ctx, const uint8_t *iv, const uint8_t *aad, uint32_t aad_len,
                              const uint8_t *in, uint8_t *out, uint32_t len, uint8_t *tag)
{
    int n = 0, f = 0;
    if (!EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) ||
        (aad_len && !EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len)) ||
        (len && !EVP_EncryptUpdate(ctx, out, &n, in, (int)len)) ||
        !EVP_EncryptFinal_ex(ctx, out + n, &f) ||
        !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag))
        return -1;
    return 0;
}

/* Reference result of one op: encrypt a copy of the slot's plaintext in process, fresh context. */
static inline void reference_op(const uint8_t *slot, uint32_t size, uint8_t *ct, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = gcm_ctx(KEY);
    if (gcm_encrypt(ctx, slot + IV_OFF, slot + AAD_OFF, AAD_LEN, slot + SLOT_HDR, ct, size, tag) < 0)
        die("reference EVP encrypt failed");
    EVP_CIPHER_CTX_free(ctx);
}

#ifdef BENCH_IPSECMB
#include <intel-ipsec-mb.h>

/* intel-ipsec-mb's function table for this CPU and a key expanded for AES-256-GCM. */
struct imb_gcm {
    IMB_MGR *mgr;
    IMB_ARCH arch;
    struct gcm_key_data *key;
};

static inline const char *imb_arch_name(IMB_ARCH a)
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

/* Set up the manager and expand key. 0, or -1 with the reason in why (no AES-NI code path, ...). */
static inline int imb_gcm_open(struct imb_gcm *g, const uint8_t *key, char *why, size_t why_len)
{
    memset(g, 0, sizeof(*g));
    g->mgr = alloc_mb_mgr(0);
    if (!g->mgr) {
        snprintf(why, why_len, "intel-ipsec-mb %s: cannot allocate a manager", imb_get_version_str());
        return -1;
    }
    init_mb_mgr_auto(g->mgr, &g->arch);
    if (imb_get_errno(g->mgr) != 0 || g->arch == IMB_ARCH_NONE || g->arch == IMB_ARCH_NOAESNI) {
        snprintf(why, why_len, "intel-ipsec-mb %s has no AES-NI code path for this CPU", imb_get_version_str());
        free_mb_mgr(g->mgr);
        g->mgr = NULL;
        return -1;
    }
    g->key = aligned_alloc(64, (sizeof(*g->key) + 63u) & ~(size_t)63u);
    if (!g->key)
        die("out of memory");
    IMB_AES256_GCM_PRE(g->mgr, key, g->key);
    snprintf(why, why_len, "intel-ipsec-mb %s, %s code path", imb_get_version_str(), imb_arch_name(g->arch));
    return 0;
}

static inline void imb_gcm_close(struct imb_gcm *g)
{
    if (g->key) {
        OPENSSL_cleanse(g->key, sizeof(*g->key));
        free(g->key);
    }
    if (g->mgr)
        free_mb_mgr(g->mgr);
    memset(g, 0, sizeof(*g));
}

/* One op: IV, AAD, data (in place when in == out) and the 16-byte tag in a single call. */
static inline void imb_gcm_encrypt(const struct imb_gcm *g, const uint8_t *iv, const uint8_t *aad,
                                   uint32_t aad_len, const uint8_t *in, uint8_t *out, uint32_t len, uint8_t *tag)
{
    struct gcm_context_data ctx;
    IMB_AES256_GCM_ENC(g->mgr, g->key, &ctx, out, in, len, iv, aad, aad_len, tag, TAG_LEN);
}
#endif /* BENCH_IPSECMB */

/* An open crypto device, its queue 0 and (optionally) an AES-256-GCM session keyed with KEY. */
struct gdev {
    struct synth_dev *dev;
    struct synth_queue *q;
    struct synth_dev_info info;
    uint32_t sess;
};

static inline const char *errstr(int rc) { return rc < 0 ? strerror(-rc) : synth_status_str((uint32_t)rc); }

static inline void gdev_open(struct gdev *g, const char *path, int want_session)
{
    struct synth_crypto_session_params p;
    int rc;

    memset(g, 0, sizeof(*g));
    rc = synth_dev_open_path(path, NULL, &g->dev);
    if (rc < 0)
        die("synth_dev_open_path(%s): %s", path, strerror(-rc));
    synth_dev_get_info(g->dev, &g->info);
    if (g->info.dev_class != SYNTH_CLASS_CRYPTO)
        die("%s is not a crypto device (class %u)", path, g->info.dev_class);
    if (!(g->info.crypto_alg_mask & (1u << SYNTH_ALG_AES256_GCM)))
        die("%s does not serve AES-256-GCM (algorithm mask 0x%x)", path, g->info.crypto_alg_mask);
    g->q = synth_dev_queue(g->dev, 0);
    if (!g->q)
        die("device %s has no queue 0", path);
    if (!want_session)
        return;
    memset(&p, 0, sizeof(p));
    p.alg = SYNTH_ALG_AES256_GCM;
    p.key_len = sizeof(KEY);
    p.iv_len = IV_LEN;
    p.tag_len = TAG_LEN;
    memcpy(p.key, KEY, sizeof(KEY));
    rc = synth_crypto_session_create(g->q, &p, &g->sess);
    OPENSSL_cleanse(&p, sizeof(p));
    if (rc != 0)
        die("synth_crypto_session_create: %s", errstr(rc));
}

static inline void gdev_close(struct gdev *g)
{
    int rc = synth_crypto_session_destroy(g->q, g->sess);
    if (rc != 0)
        die("synth_crypto_session_destroy: %s", errstr(rc));
    synth_dev_close(g->dev);
}

static inline uint32_t gdev_alloc(struct gdev *g, uint32_t size)
{
    int64_t off = synth_buf_alloc(g->q, size);
    if (off < 0)
        die("synth_buf_alloc(%u): %s (arena %llu bytes)", size, strerror((int)-off),
            (unsigned long long)synth_q_arena_size(g->q));
    return (uint32_t)off;
}

/* The encrypt descriptor of the slot at arena offset off. */
static inline void slot_desc(struct synth_desc *d, uint32_t sess, uint32_t off, uint32_t size, uint64_t cookie)
{
    synth_crypto_desc(d, SYNTH_OP_CRYPTO_ENCRYPT, sess, off + SLOT_HDR, off + SLOT_HDR, size, off + AAD_OFF,
                      AAD_LEN, off + IV_OFF, off + SLOT_HDR + size, cookie);
}

/* One synchronous op on fresh data, compared with in-process EVP. The queue must be idle. */
static inline void device_check(struct gdev *g, uint32_t off, uint32_t size, uint64_t seq, uint8_t spi)
{
    uint8_t *slot = synth_buf_ptr(g->q, off), *ct = malloc(size), tag[TAG_LEN];
    struct synth_desc d;
    struct synth_cpl c;
    int rc;

    if (!slot || !ct)
        die("bad slot or out of memory");
    fill_payload(slot + SLOT_HDR, size, (uint32_t)seq);
    fill_hdr(slot, seq, spi);
    memset(slot + SLOT_HDR + size, 0, TAG_LEN);
    reference_op(slot, size, ct, tag);
    slot_desc(&d, g->sess, off, size, 0xc0ffee);
    rc = synth_q_exec(g->q, &d, &c, 5000);
    if (rc < 0)
        die("synth_q_exec (check op): %s", strerror(-rc));
    if (c.status != SYNTH_ST_OK || c.cookie != 0xc0ffee || c.result != size)
        die("check op: status %u (%s), cookie 0x%llx, result %u (want ok, 0xc0ffee, %u)", c.status,
            synth_status_str(c.status), (unsigned long long)c.cookie, c.result, size);
    if (memcmp(slot + SLOT_HDR, ct, size))
        die("device ciphertext differs from in-process EVP (size %u)", size);
    if (memcmp(slot + SLOT_HDR + size, tag, TAG_LEN))
        die("device tag differs from in-process EVP (size %u)", size);
    free(ct);
}

/*
 * The slots of a pipelined run: burst x bursts buffers allocated once from the queue's arena (the
 * payload stays there: zero copy), a free list, and room for one burst of descriptors and for the
 * completions of every slot.
 */
struct gslots {
    uint32_t n, size, ssz, burst, nfree;
    uint32_t *offs, *freel;
    uint8_t *busy;
    struct synth_desc *d;
    struct synth_cpl *c;
};

static inline void gslots_open(struct gslots *s, struct gdev *g, uint32_t size, uint32_t burst, uint32_t bursts)
{
    uint32_t i;

    memset(s, 0, sizeof(*s));
    s->n = burst * bursts;
    if (s->n > g->info.ring_entries)
        die("%u ops in flight do not fit a ring of %u entries", s->n, g->info.ring_entries);
    s->size = size;
    s->ssz = slot_size(size);
    s->burst = burst;
    s->offs = calloc(s->n, sizeof(*s->offs));
    s->freel = calloc(s->n, sizeof(*s->freel));
    s->busy = calloc(s->n, 1);
    s->d = calloc(burst, sizeof(*s->d));
    s->c = calloc(s->n, sizeof(*s->c));
    if (!s->offs || !s->freel || !s->busy || !s->d || !s->c)
        die("out of memory");
    for (i = 0; i < s->n; i++) {
        uint8_t *p;
        s->offs[i] = gdev_alloc(g, s->ssz);
        p = synth_buf_ptr(g->q, s->offs[i]);
        memset(p, 0, s->ssz);
        fill_payload(p + SLOT_HDR, size, i);
        s->freel[s->nfree++] = i;
    }
}

/*
 * Submit one burst of free slots, each with a fresh header (sequence numbers from *seq); the slots
 * the ring does not take go back to the free list. Returns how many it took. Needs nfree >= burst.
 */
static inline unsigned gslots_submit(struct gslots *s, struct gdev *g, uint64_t *seq, uint8_t spi)
{
    unsigned k, sent;

    for (k = 0; k < s->burst; k++) {
        uint32_t idx = s->freel[--s->nfree];
        fill_hdr(synth_buf_ptr(g->q, s->offs[idx]), (*seq)++, spi);
        slot_desc(&s->d[k], g->sess, s->offs[idx], s->size, idx);
        s->busy[idx] = 1;
    }
    sent = synth_q_submit_burst(g->q, s->d, s->burst);
    for (k = sent; k < s->burst; k++) {
        s->busy[s->d[k].cookie] = 0;
        s->freel[s->nfree++] = (uint32_t)s->d[k].cookie;
    }
    return sent;
}

/* Take the completions that have arrived: each must be OK, for a busy slot, of the full size. */
static inline unsigned gslots_poll(struct gslots *s, struct gdev *g)
{
    unsigned k, got = synth_q_poll_burst(g->q, s->c, s->n);

    for (k = 0; k < got; k++) {
        const struct synth_cpl *c = &s->c[k];
        if (c->status != SYNTH_ST_OK)
            die("completion status %u (%s) for cookie %llu", c->status, synth_status_str(c->status),
                (unsigned long long)c->cookie);
        if (c->cookie >= s->n || !s->busy[c->cookie])
            die("completion with unexpected cookie %llu", (unsigned long long)c->cookie);
        if (c->result != s->size)
            die("completion result %u, expected %u bytes", c->result, s->size);
        s->busy[c->cookie] = 0;
        s->freel[s->nfree++] = (uint32_t)c->cookie;
    }
    return got;
}

static inline void gslots_close(struct gslots *s, struct gdev *g)
{
    uint32_t i;
    for (i = 0; i < s->n; i++)
        synth_buf_free(g->q, s->offs[i], s->ssz);
    free(s->offs);
    free(s->freel);
    free(s->busy);
    free(s->d);
    free(s->c);
}

#endif /* SYNTH_BENCH_GCM_H */
