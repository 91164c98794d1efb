/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest selftest, crypto class:
 *   "kat"          known-answer tests (NIST CAVP GCM, RFC 8439, RFC 4231) of each algorithm the
 *                  device serves: encrypt, decrypt back, and a flipped tag must fail;
 *   "crypto"       each algorithm on the host's inputs (synth.key, iv, aad, data), printing the
 *                  ciphertext and tag for the host to check;
 *   "crypto-burst" synth.burst AES-GCM operations submitted as one burst, IV counter i in the
 *                  last 4 bytes of the IV, each ciphertext and tag printed.
 * Which prefix of synth.key each algorithm takes is in docs/guest.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg.h"

#include "kat_vectors.h" /* native/tests/: shared with afalg-kat */

#define MAX_DATA 4096u

static const struct kat kats[] = {
    SYNTH_KAT_AEAD
    /* RFC 4231 test case 2: tag = HMAC(key, aad || data) with an empty aad */
    {"rfc4231-2", SYNTH_ALG_HMAC_SHA256, "4a656665", "", "", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
     "", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
};

static const char *const alg_names[] = {"", "aes-128-gcm", "aes-256-gcm", "chacha20-poly1305",
                                        "aes-256-cbc-hmac-sha256", "hmac-sha256"};

/* One operation's inputs and outputs, in local memory. */
struct op {
    uint32_t alg;
    const uint8_t *key, *iv, *aad, *data;
    size_t key_len, iv_len, aad_len, len, tag_len;
    uint8_t out[MAX_DATA], tag[32];
    int enc, dec, tamper; /* statuses: 0 ok, > 0 SYNTH_ST_*, < 0 -errno */
    int roundtrip;        /* decrypt gave the plaintext back */
};

static size_t unhex(const char *h, uint8_t *out, size_t max)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned v = 0;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n < max ? n : max;
}

static int is_hmac(uint32_t alg) { return alg == SYNTH_ALG_HMAC_SHA256; }

/* Encrypt, decrypt back, then decrypt with a flipped tag: three synchronous ops in place. */
static void run(struct synth_queue *q, struct op *o)
{
    struct synth_crypto_session_params sp = {.alg = (uint16_t)o->alg, .key_len = (uint16_t)o->key_len,
                                             .iv_len = (uint8_t)o->iv_len, .tag_len = (uint8_t)o->tag_len};
    int64_t data = -1, aad = -1, iv = -1, tag = -1;
    uint32_t sid, dlen = o->len ? (uint32_t)o->len : 1;
    uint8_t *dp;

    o->enc = o->dec = o->tamper = -1;
    o->roundtrip = 0;
    memcpy(sp.key, o->key, o->key_len);
    o->enc = synth_crypto_session_create(q, &sp, &sid);
    memset(sp.key, 0, sizeof(sp.key));
    if (o->enc != 0)
        return;
    data = synth_buf_alloc(q, dlen);
    aad = synth_buf_alloc(q, 64);
    iv = synth_buf_alloc(q, 16);
    tag = synth_buf_alloc(q, 32);
    if (data < 0 || aad < 0 || iv < 0 || tag < 0) {
        o->enc = -12; /* ENOMEM */
        goto out;
    }
    dp = synth_buf_ptr(q, (uint32_t)data);
    memcpy(dp, o->data, o->len);
    memcpy(synth_buf_ptr(q, (uint32_t)aad), o->aad, o->aad_len);
    memcpy(synth_buf_ptr(q, (uint32_t)iv), o->iv, o->iv_len);
    o->enc = synth_crypto_op(q, SYNTH_OP_CRYPTO_ENCRYPT, sid, (uint32_t)data, (uint32_t)data, (uint32_t)o->len,
                             (uint32_t)aad, (uint32_t)o->aad_len, (uint32_t)iv, (uint32_t)tag);
    if (o->enc != 0)
        goto out;
    memcpy(o->out, is_hmac(o->alg) ? o->data : dp, o->len);
    memcpy(o->tag, synth_buf_ptr(q, (uint32_t)tag), o->tag_len);
    o->dec = synth_crypto_op(q, SYNTH_OP_CRYPTO_DECRYPT, sid, (uint32_t)data, (uint32_t)data, (uint32_t)o->len,
                             (uint32_t)aad, (uint32_t)o->aad_len, (uint32_t)iv, (uint32_t)tag);
    o->roundtrip = o->dec == 0 && memcmp(dp, o->data, o->len) == 0;
    memcpy(dp, o->out, o->len);
    ((uint8_t *)synth_buf_ptr(q, (uint32_t)tag))[0] ^= 1;
    o->tamper = synth_crypto_op(q, SYNTH_OP_CRYPTO_DECRYPT, sid, (uint32_t)data, (uint32_t)data, (uint32_t)o->len,
                                (uint32_t)aad, (uint32_t)o->aad_len, (uint32_t)iv, (uint32_t)tag);
out:
    if (tag >= 0)
        synth_buf_free(q, (uint32_t)tag, 32);
    if (iv >= 0)
        synth_buf_free(q, (uint32_t)iv, 16);
    if (aad >= 0)
        synth_buf_free(q, (uint32_t)aad, 64);
    if (data >= 0)
        synth_buf_free(q, (uint32_t)data, dlen);
    synth_crypto_session_destroy(q, sid);
}

static int op_ok(const struct op *o)
{
    return o->enc == 0 && o->roundtrip && o->tamper == (int)SYNTH_ST_AUTH_FAILED;
}

static void report_statuses(struct jw *w, const struct op *o)
{
    jw_str(w, "encrypt", sg_status(o->enc));
    jw_str(w, "decrypt", o->enc ? "not run" : o->roundtrip ? "ok" : sg_status(o->dec ? o->dec : -5));
    jw_str(w, "tampered_tag", o->enc ? "not run" : sg_status(o->tamper));
}

static void kat_tests(struct sg_dev *d, struct synth_queue *q, unsigned *pass, unsigned *fail)
{
    static struct op o;
    uint8_t key[64], iv[16], aad[64], pt[256], ct[256], tag[32];
    struct jw w = {0};

    for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
        const struct kat *k = &kats[i];
        if (!(d->info.crypto_alg_mask & (1u << k->alg)))
            continue;
        memset(&o, 0, sizeof(o));
        o.alg = k->alg;
        o.key = key;
        o.key_len = unhex(k->key, key, sizeof(key));
        o.iv = iv;
        o.iv_len = unhex(k->iv, iv, sizeof(iv));
        o.aad = aad;
        o.aad_len = unhex(k->aad, aad, sizeof(aad));
        o.data = pt;
        o.len = unhex(k->pt, pt, sizeof(pt));
        unhex(k->ct, ct, sizeof(ct));
        o.tag_len = unhex(k->tag, tag, sizeof(tag));
        run(q, &o);
        int ok = op_ok(&o) && !memcmp(o.tag, tag, o.tag_len) && (is_hmac(k->alg) || !memcmp(o.out, ct, o.len));
        jw_begin(&w, "kat");
        jw_str(&w, "dev", d->where);
        jw_str(&w, "class", "crypto");
        jw_str(&w, "name", k->name);
        jw_str(&w, "alg", alg_names[k->alg]);
        report_statuses(&w, &o);
        jw_str(&w, "result", ok ? "pass" : "fail");
        jw_end(&w);
        ok ? (*pass)++ : (*fail)++;
    }
    free(w.buf);
}

/* Key, IV and tag sizes of each algorithm, on the host's inputs (docs/guest.md). */
static int shape(uint32_t alg, const struct sg_params *p, struct op *o)
{
    o->alg = alg;
    o->key = p->key.p;
    o->iv = p->iv.p;
    o->aad = p->aad.p;
    o->aad_len = p->aad.len;
    o->data = p->data.p;
    o->len = p->data.len;
    o->tag_len = 16;
    o->iv_len = 12;
    switch (alg) {
    case SYNTH_ALG_AES128_GCM:
        o->key_len = 16;
        break;
    case SYNTH_ALG_AES256_GCM:
    case SYNTH_ALG_CHACHA20_POLY1305:
        o->key_len = 32;
        break;
    case SYNTH_ALG_AES256_CBC_HMAC_SHA256:
        o->key_len = p->key.len;
        o->iv_len = 16;
        o->len -= o->len % 16;
        break;
    case SYNTH_ALG_HMAC_SHA256:
        o->key_len = p->key.len;
        o->iv_len = 0;
        o->tag_len = 32;
        break;
    default:
        return -1;
    }
    return p->key.len >= o->key_len && p->key.len >= (alg == SYNTH_ALG_AES256_CBC_HMAC_SHA256 ? 33u : 1u) ? 0 : -1;
}

static void host_tests(struct sg_dev *d, struct synth_queue *q, const struct sg_params *p, unsigned *pass,
                       unsigned *fail)
{
    static struct op o;
    struct jw w = {0};

    for (uint32_t alg = 1; alg < SYNTH_ALG_MAX; alg++) {
        if (!(d->info.crypto_alg_mask & (1u << alg)))
            continue;
        memset(&o, 0, sizeof(o));
        jw_begin(&w, "crypto");
        jw_str(&w, "dev", d->where);
        jw_str(&w, "alg", alg_names[alg]);
        if (shape(alg, p, &o) < 0) {
            jw_str(&w, "error", "synth.key is too short for this algorithm");
            jw_str(&w, "result", "fail");
            jw_end(&w);
            (*fail)++;
            continue;
        }
        run(q, &o);
        jw_uint(&w, "key_len", o.key_len);
        jw_uint(&w, "iv_len", o.iv_len);
        jw_uint(&w, "aad_len", o.aad_len);
        jw_uint(&w, "data_len", o.len);
        if (!is_hmac(alg))
            jw_hex(&w, "ciphertext", o.out, o.enc == 0 ? o.len : 0);
        jw_hex(&w, "tag", o.tag, o.enc == 0 ? o.tag_len : 0);
        report_statuses(&w, &o);
        jw_str(&w, "result", op_ok(&o) ? "pass" : "fail");
        jw_end(&w);
        op_ok(&o) ? (*pass)++ : (*fail)++;
    }
    free(w.buf);
}

/* synth.burst AES-GCM ops in one burst: each its own data, IV and tag buffers in the arena. */
static void burst_test(struct sg_dev *d, struct synth_queue *q, const struct sg_params *p, unsigned *pass,
                       unsigned *fail)
{
    uint32_t alg = d->info.crypto_alg_mask & (1u << SYNTH_ALG_AES256_GCM) ? SYNTH_ALG_AES256_GCM
                 : d->info.crypto_alg_mask & (1u << SYNTH_ALG_AES128_GCM) ? SYNTH_ALG_AES128_GCM : 0;
    struct synth_crypto_session_params sp = {.alg = (uint16_t)alg, .key_len = alg == SYNTH_ALG_AES256_GCM ? 32 : 16,
                                             .iv_len = 12, .tag_len = 16};
    struct synth_desc descs[64];
    struct synth_cpl cpls[64];
    int64_t base = -1;
    uint32_t n = p->burst, len = (uint32_t)p->data.len, slot = (len + 12 + 16 + 63) & ~63u, sid = 0;
    uint32_t done = 0, sent = 0, bad = 0;
    struct jw w = {0};
    int rc;

    if (!alg || n == 0 || p->key.len < sp.key_len)
        return;
    memcpy(sp.key, p->key.p, sp.key_len);
    rc = synth_crypto_session_create(q, &sp, &sid);
    if (rc == 0)
        base = synth_buf_alloc(q, slot * n + (uint32_t)p->aad.len);
    if (rc == 0 && base >= 0) {
        uint32_t aad = (uint32_t)base + slot * n;
        memcpy(synth_buf_ptr(q, aad), p->aad.p, p->aad.len);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t off = (uint32_t)base + slot * i;
            uint8_t *iv = synth_buf_ptr(q, off + len);
            memcpy(synth_buf_ptr(q, off), p->data.p, len);
            memcpy(iv, p->iv.p, 12);
            iv[8] = (uint8_t)(i >> 24), iv[9] = (uint8_t)(i >> 16), iv[10] = (uint8_t)(i >> 8), iv[11] = (uint8_t)i;
            synth_crypto_desc(&descs[i], SYNTH_OP_CRYPTO_ENCRYPT, sid, off, off, len, aad, (uint32_t)p->aad.len,
                              off + len, off + len + 12, i);
        }
        while (done < n) {
            sent += synth_q_submit_burst(q, descs + sent, n - sent);
            if (synth_q_wait(q, 10000) < 0)
                break;
            uint32_t got = synth_q_poll_burst(q, cpls, 64);
            for (uint32_t i = 0; i < got; i++)
                bad += cpls[i].status != SYNTH_ST_OK;
            done += got;
        }
    }
    jw_begin(&w, "crypto-burst");
    jw_str(&w, "dev", d->where);
    jw_str(&w, "alg", alg_names[alg]);
    jw_uint(&w, "ops", n);
    jw_uint(&w, "completed", done);
    jw_uint(&w, "failed_ops", bad);
    if (base >= 0 && done == n && !bad) {
        char *arr = malloc((size_t)n * (2 * MAX_DATA + 4) + 8);
        for (int which = 0; arr && which < 2; which++) {
            size_t m = 0;
            arr[m++] = '[';
            for (uint32_t i = 0; i < n; i++) {
                const uint8_t *b = synth_buf_ptr(q, (uint32_t)base + slot * i + (which ? len + 12 : 0));
                m += (size_t)sprintf(arr + m, "%s\"", i ? "," : "");
                for (uint32_t k = 0; k < (which ? 16u : len); k++)
                    m += (size_t)sprintf(arr + m, "%02x", b[k]);
                arr[m++] = '"';
            }
            arr[m++] = ']';
            arr[m] = 0;
            jw_raw(&w, which ? "tags" : "ciphertexts", arr);
        }
        free(arr);
    }
    jw_str(&w, "result", rc == 0 && done == n && !bad ? "pass" : "fail");
    jw_end(&w);
    rc == 0 && done == n && !bad ? (*pass)++ : (*fail)++;
    if (base >= 0)
        synth_buf_free(q, (uint32_t)base, slot * n + (uint32_t)p->aad.len);
    if (rc == 0)
        synth_crypto_session_destroy(q, sid);
    free(w.buf);
}

void sg_crypto_selftest(struct sg_dev *d, const struct sg_params *p, unsigned *pass, unsigned *fail)
{
    struct synth_queue *q = synth_dev_queue(d->dev, 0);
    kat_tests(d, q, pass, fail);
    host_tests(d, q, p, pass, fail);
    burst_test(d, q, p, pass, fail);
}
