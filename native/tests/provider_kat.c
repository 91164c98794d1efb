/* SPDX-License-Identifier: Apache-2.0 */
/*
 * provider-kat: known-answer and differential tests of an OpenSSL 3 provider's AEAD ciphers
 * (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), through EVP as applications and libssl use them.
 * Built for the `synth` provider (native/provider, docs/openssl.md); with --provider default it
 * checks itself: its vectors and its use of the API.
 *
 * OpenSSL reads its configuration as usual (OPENSSL_CONF), which must activate the provider under
 * test and `default`. Every cipher is fetched with "provider=<name>" and must come from it.
 *
 *  1. Known answers (provider_vectors.h, and any CAVP GCM file given with --rsp): encrypt gives
 *     the exact ciphertext and tag; decrypt gives the plaintext, or fails for a wrong tag, with
 *     the tag set before the data (as TLS 1.3 does), after the AAD, and after the data.
 *  2. Differential against the default provider: a PRNG (splitmix64, --seed) draws conversations
 *     on one context pair: messages of 0..20000 bytes, AAD of 0..300 bytes fed in pieces, tag
 *     lengths, buffer offsets, in place or not, contexts reused (new IV, new key, other direction)
 *     or copied, tampered ciphertext, tag or AAD; and TLS 1.2 records as libssl makes them (GCM
 *     with the provider's own explicit IVs, ChaCha20-Poly1305). Each call's result and output
 *     length, the tag, and the whole buffer (input, output and what lies around them) must be
 *     what the default provider gives. --threads N runs the conversations on N threads.
 *  3. The provider's counters (provider parameters synth-ops, synth-fallbacks, synth-fallback-*),
 *     read around every operation. An operation of the shape a device serves (one data update,
 *     12-byte IV, for decrypt the tag known before the data and a tag length NIST SP 800-38D
 *     allows, 4, 8 or 12..16 bytes for GCM, 16 for ChaCha20-Poly1305) is a "device" operation;
 *     the others may be done in software by design.
 *       --expect-device    each device operation is done by the device (synth-ops +1, no fallback),
 *                          no fallback of any reason but "unsupported" happens, synth-ops > 0
 *       --expect-fallback  each device operation falls back for "no-device" (synth-ops stays 0)
 *       --unserved ALGS    with --expect-device: the device does not serve these algorithms, so
 *                          their device operations fall back for "unsupported"
 *
 * Exit status: 0 all passed, 1 a check failed (each failure is printed with its case), 2 usage or
 * setup error. Reproduce one differential case with --seed S --only I.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "provider_vectors.h"

#define MAX_MSG 20000u
#define MAX_AAD 300u
#define MAX_CUTS 6u
#define MAX_STEPS 40u
#define SLACK 64u                                   /* room around each buffer in the arena */
#define ARENA (2u * (MAX_MSG + 16u + SLACK) + 2u * SLACK)
#define MAX_PRINTED 40ul                            /* failures printed in full */
#define TLS_HDR 13
#define TLS_EIV 8
#define TLS_FIXED 4
#define TAG 16u

static const char *const alg_names[PK_ALG_COUNT] = {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"};
static const char *const alg_labels[PK_ALG_COUNT] = {"aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"};
static const size_t key_lens[PK_ALG_COUNT] = {16, 32, 32};

/* ---- the provider's counters ---- */

enum pk_counter { C_OPS, C_FALLBACKS, C_NO_DEVICE, C_RESET, C_RING_FULL, C_TIMEOUT, C_UNSUPPORTED, C_BUSY, C_COUNT };

static const char *const counter_names[C_COUNT] = {
    "synth-ops", "synth-fallbacks", "synth-fallback-no-device", "synth-fallback-reset",
    "synth-fallback-ring-full", "synth-fallback-timeout", "synth-fallback-unsupported", "synth-fallback-busy",
};

struct pk_counters {
    uint64_t v[C_COUNT];
    unsigned have; /* bit per counter the provider answered */
};

/* ---- options and the run's state ---- */

struct pk_opts {
    const char *provider;
    unsigned long iterations;
    uint64_t seed;
    long only;                 /* -1: every iteration */
    int json, verbose;
    int expect_device, expect_fallback;
    unsigned unserved;         /* bit per pk_alg */
    const char *rsp[16];
    unsigned nrsp;
    unsigned threads;          /* the differential's threads */
    int no_kat, no_diff;
};

struct pk_run {
    struct pk_opts o;
    EVP_CIPHER *test[PK_ALG_COUNT], *ref[PK_ALG_COUNT];
    OSSL_PROVIDER *prov;
    int counters;              /* the provider has synth-ops */
    int threaded;              /* others run too: the counters move under us, only totals are checked */
    unsigned long kat_cases, kat_failures, diff_ops, diff_failures, failures;
    unsigned long dev_ops, other_ops;
    unsigned long dev_served;  /* device operations of algorithms the device serves */
    unsigned long dev_rejects; /* those of them that must fail authentication */
    uint64_t other_fallbacks;  /* fallbacks counted during operations of other shapes */
    uint8_t *a_test, *a_ref;   /* the two arenas */
};

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* One failed check, named by its case. */
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long printed;
static int print_all; /* the verdict on the counters is printed whatever came before */

static void fail(struct pk_run *r, const char *cas, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->failures++;
    pthread_mutex_lock(&print_lock);
    if (++printed > MAX_PRINTED && !print_all) {
        if (printed == MAX_PRINTED + 1)
            fprintf(stderr, "provider-kat: more failures; only the first %lu are printed\n", MAX_PRINTED);
        pthread_mutex_unlock(&print_lock);
        return;
    }
    if (r->o.json) {
        printf("{\"event\": \"fail\", \"case\": ");
        json_str(stdout, cas);
        printf(", \"error\": ");
        json_str(stdout, msg);
        printf("}\n");
    } else {
        printf("FAIL %s: %s\n", cas, msg);
    }
    fflush(stdout);
    pthread_mutex_unlock(&print_lock);
}

static void hex(char *buf, size_t size, const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i < n && 2 * i + 3 < size; i++)
        snprintf(buf + 2 * i, 3, "%02x", p[i]);
    buf[2 * i] = 0;
}

/* "at byte K of N: expected .. got .." (up to 24 bytes from the first difference). */
static void describe_diff(char *buf, size_t size, const uint8_t *exp, const uint8_t *got, size_t n)
{
    char e[64], g[64];
    size_t k = 0, m;

    while (k < n && exp[k] == got[k])
        k++;
    m = n - k < 24 ? n - k : 24;
    hex(e, sizeof(e), exp + k, m);
    hex(g, sizeof(g), got + k, m);
    snprintf(buf, size, "at byte %zu of %zu: expected %s, got %s", k, n, e, g);
}

static size_t unhex(const char *h, uint8_t *out, size_t max)
{
    size_t n = strlen(h) / 2;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
    return n;
}

static int counters_read(struct pk_run *r, struct pk_counters *c)
{
    OSSL_PARAM p[C_COUNT + 1];

    memset(c, 0, sizeof(*c));
    if (!r->counters)
        return 0;
    for (int i = 0; i < C_COUNT; i++)
        p[i] = OSSL_PARAM_construct_uint64(counter_names[i], &c->v[i]);
    p[C_COUNT] = OSSL_PARAM_construct_end();
    if (!OSSL_PROVIDER_get_params(r->prov, p))
        return 0;
    for (int i = 0; i < C_COUNT; i++)
        if (OSSL_PARAM_modified(&p[i]))
            c->have |= 1u << i;
    return 1;
}

static const char *device_name(struct pk_run *r)
{
    static char name[256];
    char *s = NULL;
    OSSL_PARAM p[] = {OSSL_PARAM_utf8_ptr("synth-device", &s, 0), OSSL_PARAM_END};

    name[0] = 0;
    if (r->counters && OSSL_PROVIDER_get_params(r->prov, p) && OSSL_PARAM_modified(&p[0]) && s)
        snprintf(name, sizeof(name), "%s", s);
    return name;
}

/* "ops +1, fallbacks +1 (unsupported +1)" */
static void describe_delta(char *buf, size_t size, const struct pk_counters *b, const struct pk_counters *a)
{
    int n = snprintf(buf, size, "synth-ops +%" PRIu64 ", fallbacks +%" PRIu64, a->v[C_OPS] - b->v[C_OPS],
                     a->v[C_FALLBACKS] - b->v[C_FALLBACKS]);
    for (int i = C_NO_DEVICE; i < C_COUNT && n > 0 && (size_t)n < size; i++)
        if (a->v[i] != b->v[i])
            n += snprintf(buf + n, size - (size_t)n, " (%s +%" PRIu64 ")", counter_names[i] + 15,
                          a->v[i] - b->v[i]);
}

/*
 * What the counters must show after one operation of the provider under test: `device` says
 * whether it had the shape a device serves. Only the modes that ask for it check anything.
 */
static void check_op(struct pk_run *r, const char *cas, enum pk_alg alg, int device, int reject,
                     const struct pk_counters *b)
{
    struct pk_counters a;
    uint64_t d[C_COUNT];
    char why[256];

    if (device) {
        r->dev_ops++;
        if (!(r->o.unserved & 1u << alg)) {
            r->dev_served++;
            r->dev_rejects += reject != 0;
        }
    } else {
        r->other_ops++;
    }
    if (!r->counters || r->threaded || !counters_read(r, &a))
        return;
    for (int i = 0; i < C_COUNT; i++)
        d[i] = a.v[i] - b->v[i];
    if (!device)
        r->other_fallbacks += d[C_FALLBACKS];
    describe_delta(why, sizeof(why), b, &a);
    if (r->o.expect_device) {
        if (d[C_NO_DEVICE] || d[C_RESET] || d[C_RING_FULL] || d[C_TIMEOUT] || d[C_BUSY])
            fail(r, cas, "a fallback with the device serving: %s", why);
        else if (device && (r->o.unserved & 1u << alg) && (d[C_OPS] || d[C_UNSUPPORTED] != 1 || d[C_FALLBACKS] != 1))
            fail(r, cas, "%s is not served by the device, expected one unsupported fallback: %s", alg_labels[alg], why);
        else if (device && !(r->o.unserved & 1u << alg) && (d[C_OPS] != 1 || d[C_FALLBACKS]))
            fail(r, cas, "a device operation not done by the device (expected synth-ops +1, no fallback): %s", why);
    } else if (r->o.expect_fallback) {
        if (d[C_OPS])
            fail(r, cas, "synth-ops moved with no device: %s", why);
        else if (device && (d[C_NO_DEVICE] != 1 || d[C_FALLBACKS] != 1))
            fail(r, cas, "expected one no-device fallback: %s", why);
    }
}

/* ---- one AEAD message through EVP ---- */

enum pk_init { INIT_FULL, INIT_SPLIT, INIT_REUSE, INIT_REUSE_KEY };
enum pk_tag_at { TAG_AT_INIT, TAG_AFTER_AAD, TAG_AFTER_DATA };
static const char *const tag_at_names[] = {"tag-first", "tag-after-aad", "tag-after-data"};
static const char *const init_names[] = {"", " split", " reuse", " rekey"};

struct pk_msg {
    enum pk_alg alg;
    int enc;
    enum pk_init init;
    const uint8_t *key, *iv;       /* 12-byte IV */
    const uint8_t *aad;
    size_t aad_len;
    size_t aad_cut[MAX_CUTS];      /* the AAD's pieces, one update(NULL) each */
    unsigned n_aad;
    size_t len;                    /* the input is in the arena at in_off */
    size_t data_cut[MAX_CUTS];     /* the data's pieces, one update each (none: no update call) */
    unsigned n_data;
    const uint8_t *tag;            /* decrypt: the tag to check */
    size_t tag_len;                /* decrypt: its length; encrypt: how much of the tag to read */
    enum pk_tag_at tag_at;
    int by_params;                 /* tags through OSSL_PARAMs rather than EVP_CIPHER_CTX_ctrl */
    int dup;                       /* go on with a copy of the context after the AAD */
    size_t in_off, out_off;        /* equal: in place */
};

struct pk_step {
    char what; /* I init, i IV init, P lengths, T set tag, A AAD, D copy, U update, F final, G get tag */
    int rc;
    long val;
};

struct pk_trace {
    unsigned n;
    struct pk_step s[MAX_STEPS];
    uint8_t tag[TAG];
    size_t out_len;
    int ok; /* every call succeeded */
};

static int step(struct pk_trace *t, char what, int rc, long val)
{
    if (t->n < MAX_STEPS)
        t->s[t->n++] = (struct pk_step){what, rc, val};
    return rc > 0;
}

static int taglen_served(enum pk_alg alg, size_t n)
{
    if (alg == PK_CHACHA20_POLY1305)
        return n == 16;
    return (n >= 12 && n <= 16) || n == 8 || n == 4;
}

/* Has the message the shape a device serves (see the top of the file)? */
static int device_shaped(const struct pk_msg *m)
{
    unsigned nonempty = 0;
    for (unsigned i = 0; i < m->n_data; i++)
        nonempty += m->data_cut[i] > 0;
    if (nonempty > 1)
        return 0;
    if (!m->enc && ((m->tag_at == TAG_AFTER_DATA && nonempty) || !taglen_served(m->alg, m->tag_len)))
        return 0;
    return 1;
}

static int set_tag(EVP_CIPHER_CTX *ctx, const struct pk_msg *m, struct pk_trace *t)
{
    int rc;
    if (m->by_params) {
        OSSL_PARAM p[] = {OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)m->tag, m->tag_len),
                          OSSL_PARAM_END};
        rc = EVP_CIPHER_CTX_set_params(ctx, p);
    } else {
        rc = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)m->tag_len, (void *)m->tag);
    }
    return step(t, 'T', rc, 0) && step(t, 'P', 1, EVP_CIPHER_CTX_get_tag_length(ctx));
}

/*
 * Run m on *ctxp (a context of `cipher`; replaced by its copy when m->dup), input and output in
 * `arena`. Every call goes into the trace; the first that fails ends the message.
 */
static void run_msg(EVP_CIPHER_CTX **ctxp, EVP_CIPHER *cipher, const struct pk_msg *m, uint8_t *arena,
                    struct pk_trace *t)
{
    EVP_CIPHER_CTX *ctx = *ctxp;
    const uint8_t *in = arena + m->in_off;
    uint8_t *out = arena + m->out_off;
    size_t pos = 0, outpos = 0;
    int l, rc;

    memset(t, 0, sizeof(*t));
    switch (m->init) {
    case INIT_FULL:
        rc = EVP_CipherInit_ex2(ctx, cipher, m->key, m->iv, m->enc, NULL);
        break;
    case INIT_SPLIT: /* key, then IV, as libssl does */
        rc = EVP_CipherInit_ex2(ctx, cipher, m->key, NULL, m->enc, NULL);
        if (!step(t, 'I', rc, 0))
            return;
        rc = EVP_CipherInit_ex2(ctx, NULL, NULL, m->iv, m->enc, NULL);
        break;
    case INIT_REUSE: /* a new IV on the same key, as TLS 1.3 does for each record */
        rc = EVP_CipherInit_ex2(ctx, NULL, NULL, m->iv, m->enc, NULL);
        break;
    default:
        rc = EVP_CipherInit_ex2(ctx, NULL, m->key, m->iv, m->enc, NULL);
        break;
    }
    if (!step(t, 'i', rc, 0) || !step(t, 'P', 1, EVP_CIPHER_CTX_get_iv_length(ctx)) ||
        !step(t, 'P', 1, EVP_CIPHER_CTX_get_key_length(ctx)))
        return;
    if (!m->enc && m->tag_at == TAG_AT_INIT && !set_tag(ctx, m, t))
        return;
    for (unsigned i = 0, apos = 0; i < m->n_aad; apos += (unsigned)m->aad_cut[i], i++) {
        l = -1;
        if (!step(t, 'A', EVP_CipherUpdate(ctx, NULL, &l, m->aad + apos, (int)m->aad_cut[i]), l))
            return;
    }
    if (m->dup) {
        EVP_CIPHER_CTX *d = EVP_CIPHER_CTX_new();
        if (!step(t, 'D', d && EVP_CIPHER_CTX_copy(d, ctx), 0)) {
            EVP_CIPHER_CTX_free(d);
            return;
        }
        EVP_CIPHER_CTX_free(ctx);
        *ctxp = ctx = d;
    }
    if (!m->enc && m->tag_at == TAG_AFTER_AAD && !set_tag(ctx, m, t))
        return;
    for (unsigned i = 0; i < m->n_data; pos += m->data_cut[i], i++) {
        l = -1;
        if (!step(t, 'U', EVP_CipherUpdate(ctx, out + outpos, &l, in + pos, (int)m->data_cut[i]), l))
            return;
        outpos += l > 0 ? (size_t)l : 0;
    }
    if (!m->enc && m->tag_at == TAG_AFTER_DATA && !set_tag(ctx, m, t))
        return;
    l = -1;
    rc = EVP_CipherFinal_ex(ctx, out + outpos, &l);
    outpos += rc > 0 && l > 0 ? (size_t)l : 0;
    t->out_len = outpos;
    if (!step(t, 'F', rc, l))
        return;
    if (m->enc) {
        if (m->by_params) {
            OSSL_PARAM p[] = {OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, t->tag, m->tag_len), OSSL_PARAM_END};
            rc = EVP_CIPHER_CTX_get_params(ctx, p);
        } else {
            rc = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)m->tag_len, t->tag);
        }
        if (!step(t, 'G', rc, 0))
            return;
    }
    t->ok = 1;
}

static int trace_equal(const struct pk_trace *a, const struct pk_trace *b)
{
    if (a->n != b->n)
        return 0;
    for (unsigned i = 0; i < a->n; i++)
        if (a->s[i].what != b->s[i].what || a->s[i].rc != b->s[i].rc || a->s[i].val != b->s[i].val)
            return 0;
    return 1;
}

static void describe_trace(char *buf, size_t size, const struct pk_trace *t)
{
    int n = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < t->n && n >= 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%c=%d/%ld", i ? " " : "", t->s[i].what, t->s[i].rc, t->s[i].val);
}

/* ---- known answers ---- */

struct pk_kat {
    const char *name;
    enum pk_alg alg;
    uint8_t key[32], iv[12], aad[1024], tag[TAG];
    uint8_t *pt, *ct;
    size_t aad_len, len, tag_len;
    int fail;
};

/* The arena as it must be: the fill, the input at in_off, `out` (or nothing) at out_off. */
static void arena_expect(uint8_t *a, uint8_t fill, const struct pk_msg *m, const uint8_t *in, const uint8_t *out)
{
    memset(a, fill, ARENA);
    memcpy(a + m->in_off, in, m->len);
    if (out)
        memcpy(a + m->out_off, out, m->len);
}

static void kat_one(struct pk_run *r, const struct pk_kat *k, int enc, enum pk_tag_at at, int in_place)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    struct pk_msg m = {
        .alg = k->alg, .enc = enc, .init = INIT_FULL, .key = k->key, .iv = k->iv, .aad = k->aad,
        .aad_len = k->aad_len, .n_aad = k->aad_len ? 1 : 0, .len = k->len, .n_data = 1, .tag = k->tag,
        .tag_len = k->tag_len, .tag_at = at, .in_off = SLACK + 3,
        .out_off = in_place ? SLACK + 3 : 2 * SLACK + k->len + 5,
    };
    const uint8_t *in = enc ? k->pt : k->ct, *want = enc ? k->ct : k->pt;
    struct pk_counters before;
    struct pk_trace t;
    char cas[160], why[512];
    uint8_t *expect = r->a_ref;

    m.aad_cut[0] = k->aad_len;
    m.data_cut[0] = k->len;
    snprintf(cas, sizeof(cas), "%s %s %s%s", k->name, alg_labels[k->alg],
             enc ? "encrypt" : tag_at_names[at], in_place ? " in-place" : "");
    if (r->o.verbose)
        fprintf(stderr, "kat: %s\n", cas);
    r->kat_cases++;
    arena_expect(r->a_test, 0xa5, &m, in, NULL);
    counters_read(r, &before);
    run_msg(&ctx, r->test[k->alg], &m, r->a_test, &t);
    check_op(r, cas, k->alg, device_shaped(&m), !enc && k->fail, &before);
    describe_trace(why, sizeof(why), &t);
    if (!enc && k->fail) {
        if (t.ok)
            fail(r, cas, "a wrong tag was accepted (%s)", why);
        else if (t.n == 0 || t.s[t.n - 1].what != 'F')
            fail(r, cas, "failed before final, not at it (%s)", why);
        /* the plaintext it gave is not checked: the arena around it must be untouched */
        memcpy(expect, r->a_test, ARENA);
        memset(expect, 0xa5, m.out_off);
        memcpy(expect + m.in_off, in, m.len);
        memset(expect + m.out_off + m.len, 0xa5, ARENA - m.out_off - m.len);
        if (!in_place && memcmp(expect, r->a_test, ARENA))
            fail(r, cas, "wrote outside its output buffer");
    } else if (!t.ok) {
        fail(r, cas, "failed (%s)", why);
    } else {
        arena_expect(expect, 0xa5, &m, in, want);
        if (t.out_len != k->len) {
            fail(r, cas, "gave %zu bytes, expected %zu (%s)", t.out_len, k->len, why);
        } else if (memcmp(expect + m.out_off, r->a_test + m.out_off, k->len)) {
            describe_diff(why, sizeof(why), want, r->a_test + m.out_off, k->len);
            fail(r, cas, "%s %s", enc ? "ciphertext" : "plaintext", why);
        } else if (memcmp(expect, r->a_test, ARENA)) {
            fail(r, cas, "wrote outside its output buffer, or into its input");
        } else if (enc && memcmp(t.tag, k->tag, k->tag_len)) {
            describe_diff(why, sizeof(why), k->tag, t.tag, k->tag_len);
            fail(r, cas, "tag %s", why);
        }
    }
    EVP_CIPHER_CTX_free(ctx);
}

static void kat_vector(struct pk_run *r, const struct pk_kat *k)
{
    unsigned long before = r->failures;
    if (!k->fail)
        kat_one(r, k, 1, TAG_AT_INIT, 0);
    kat_one(r, k, 0, TAG_AT_INIT, 0);
    kat_one(r, k, 0, TAG_AT_INIT, 1);
    kat_one(r, k, 0, TAG_AFTER_AAD, 0);
    kat_one(r, k, 0, TAG_AFTER_DATA, 0);
    r->kat_failures += r->failures - before;
}

static int kat_builtin(struct pk_run *r)
{
    for (size_t i = 0; i < sizeof(pk_vectors) / sizeof(pk_vectors[0]); i++) {
        const struct pk_vec *v = &pk_vectors[i];
        struct pk_kat k = {.name = v->name, .alg = v->alg, .fail = v->fail};
        size_t n = strlen(v->pt) / 2;

        k.pt = malloc(n + 1);
        k.ct = malloc(n + 1);
        if (!k.pt || !k.ct) {
            free(k.pt);
            free(k.ct);
            return -ENOMEM;
        }
        unhex(v->key, k.key, sizeof(k.key));
        unhex(v->iv, k.iv, sizeof(k.iv));
        k.aad_len = unhex(v->aad, k.aad, sizeof(k.aad));
        k.len = unhex(v->pt, k.pt, n);
        unhex(v->ct, k.ct, n);
        k.tag_len = unhex(v->tag, k.tag, sizeof(k.tag));
        kat_vector(r, &k);
        free(k.pt);
        free(k.ct);
    }
    return 0;
}

static void rsp_field(char *line, const char *name, char **val)
{
    size_t n = strlen(name);
    if (!strncmp(line, name, n) && (line[n] == ' ' || line[n] == '=')) {
        char *v = strchr(line, '=');
        v = v ? v + 1 : line + n;
        while (*v == ' ')
            v++;
        free(*val);
        *val = strdup(v);
    }
}

/* A NIST CAVP GCM file (gcmEncryptExtIV*.rsp, gcmDecrypt*.rsp): its cases with a 96-bit IV. */
static int kat_rsp(struct pk_run *r, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[8192], stem[128], name[160];
    char *key = NULL, *iv = NULL, *pt = NULL, *ct = NULL, *aad = NULL, *tag = NULL;
    const char *base = strrchr(path, '/');
    int idx = -1, fail = 0, more = 1, rc = 0;
    unsigned long ran = 0;

    if (!f) {
        rc = -errno;
        fprintf(stderr, "provider-kat: %s: %s\n", path, strerror(-rc));
        return rc;
    }
    snprintf(stem, sizeof(stem), "%s", base ? base + 1 : path);
    if (strlen(stem) > 4 && !strcmp(stem + strlen(stem) - 4, ".rsp"))
        stem[strlen(stem) - 4] = 0;
    while (more) {
        more = fgets(line, sizeof(line), f) != NULL;
        line[strcspn(line, "\r\n")] = 0;
        if (!more || !strncmp(line, "Count", 5)) {
            size_t kl = key ? strlen(key) / 2 : 0, n = pt ? strlen(pt) / 2 : ct ? strlen(ct) / 2 : 0;
            if (idx >= 0 && iv && strlen(iv) == 24 && (kl == 16 || kl == 32) && tag && strlen(tag) / 2 <= TAG &&
                n <= MAX_MSG && strlen(aad ? aad : "") / 2 <= sizeof(((struct pk_kat *)0)->aad)) {
                struct pk_kat k = {.name = name, .alg = kl == 16 ? PK_AES128_GCM : PK_AES256_GCM, .fail = fail};
                k.pt = calloc(1, n + 1);
                k.ct = calloc(1, n + 1);
                if (!k.pt || !k.ct) {
                    free(k.pt);
                    free(k.ct);
                    rc = -ENOMEM;
                    break;
                }
                snprintf(name, sizeof(name), "%s#%d", stem, idx);
                unhex(key, k.key, sizeof(k.key));
                unhex(iv, k.iv, sizeof(k.iv));
                k.aad_len = unhex(aad ? aad : "", k.aad, sizeof(k.aad));
                k.len = n;
                unhex(pt ? pt : "", k.pt, n);
                unhex(ct ? ct : "", k.ct, n);
                k.tag_len = unhex(tag, k.tag, sizeof(k.tag));
                kat_vector(r, &k);
                ran++;
                free(k.pt);
                free(k.ct);
            }
            idx++;
            fail = 0;
            free(key), free(iv), free(pt), free(ct), free(aad), free(tag);
            key = iv = pt = ct = aad = tag = NULL;
            continue;
        }
        if (!strcmp(line, "FAIL"))
            fail = 1;
        rsp_field(line, "Key", &key);
        rsp_field(line, "IV", &iv);
        rsp_field(line, "PT", &pt);
        rsp_field(line, "CT", &ct);
        rsp_field(line, "AAD", &aad);
        rsp_field(line, "Tag", &tag);
    }
    free(key), free(iv), free(pt), free(ct), free(aad), free(tag);
    fclose(f);
    if (!rc && !ran) {
        fprintf(stderr, "provider-kat: %s: no GCM case with a 96-bit IV in it\n", path);
        return -EINVAL;
    }
    return rc;
}

/* ---- the differential run ---- */

static uint64_t rnd(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t below(uint64_t *s, size_t n) { return n ? (size_t)(rnd(s) % n) : 0; }
static int chance(uint64_t *s, unsigned pct) { return below(s, 100) < pct; }

static void fill(uint64_t *s, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd(s);
}

static size_t draw_len(uint64_t *s)
{
    switch (below(s, 8)) {
    case 0:
        return below(s, 3); /* 0, 1, 2 */
    case 1:
        return below(s, 18);
    case 2: /* around a block or a cache line */
        return 16 * (1 + below(s, 20)) + below(s, 3) - 1;
    case 3:
    case 4:
    case 5:
        return below(s, 2049);
    default:
        return below(s, MAX_MSG + 1);
    }
}

static size_t draw_aad(uint64_t *s)
{
    switch (below(s, 6)) {
    case 0:
        return 0;
    case 1:
        return 13; /* TLS 1.2's */
    case 2:
        return 1 + below(s, 20);
    default:
        return below(s, MAX_AAD + 1);
    }
}

/* Cut n into pieces (some may be empty): one most of the time. */
static unsigned cut(uint64_t *s, size_t n, size_t *cuts, unsigned pct_many)
{
    unsigned k = chance(s, pct_many) ? 2 + (unsigned)below(s, MAX_CUTS - 1) : 1;
    size_t left = n;
    for (unsigned i = 0; i + 1 < k; i++) {
        cuts[i] = below(s, 4) == 0 ? 0 : below(s, left + 1);
        left -= cuts[i];
    }
    cuts[k - 1] = left;
    return k;
}

static size_t draw_taglen(uint64_t *s, enum pk_alg alg)
{
    static const size_t gcm[] = {4, 8, 12, 13, 14, 15};
    unsigned p = (unsigned)below(s, 100);
    if (alg == PK_CHACHA20_POLY1305)
        return p < 90 ? 16 : 1 + below(s, 16);
    return p < 70 ? 16 : p < 90 ? gcm[below(s, 6)] : 1 + below(s, 16);
}

/* The reference AEAD, one shot, by the default provider: ct and the full tag. */
static int ref_seal(struct pk_run *r, enum pk_alg alg, int enc, const uint8_t *key, const uint8_t *iv,
                    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag,
                    size_t tag_len)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l, ok = ctx && EVP_CipherInit_ex2(ctx, r->ref[alg], key, iv, enc, NULL) &&
                (!aad_len || EVP_CipherUpdate(ctx, NULL, &l, aad, (int)aad_len)) &&
                (!len || EVP_CipherUpdate(ctx, out, &l, in, (int)len)) &&
                (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)tag_len, tag)) &&
                EVP_CipherFinal_ex(ctx, out + len, &l) &&
                (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, tag));
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

/* First difference between the arenas, named by where it is. */
static void arena_diff(char *buf, size_t size, const struct pk_msg *m, const uint8_t *exp, const uint8_t *got)
{
    size_t k = 0, n;
    const char *where = "around the buffers";
    char e[64], g[64];

    while (k < ARENA && exp[k] == got[k])
        k++;
    if (k >= m->out_off && k < m->out_off + m->len)
        where = "output";
    else if (k >= m->in_off && k < m->in_off + m->len)
        where = "input";
    n = ARENA - k < 24 ? ARENA - k : 24;
    hex(e, sizeof(e), exp + k, n);
    hex(g, sizeof(g), got + k, n);
    snprintf(buf, size, "buffer differs in the %s at arena offset %zu (output at %zu, input at %zu): the default "
             "provider's %s, got %s", where, k, m->out_off, m->in_off, e, g);
}

struct pk_conv {
    enum pk_alg alg;
    EVP_CIPHER_CTX *t, *rf;
    uint8_t key[32];
    int started;
};

/* One message on both providers' contexts; compares everything. Returns 0 if it differed. */
static int diff_msg(struct pk_run *r, struct pk_conv *c, struct pk_msg *m, const uint8_t *in, const char *cas,
                    int expect_ok)
{
    struct pk_trace tt, tr;
    struct pk_counters before;
    char why[600], a[300], b[300];
    uint8_t fillb = (uint8_t)(0x5a ^ m->len ^ m->aad_len);
    int ok = 1;

    arena_expect(r->a_test, fillb, m, in, NULL);
    arena_expect(r->a_ref, fillb, m, in, NULL);
    counters_read(r, &before);
    run_msg(&c->t, r->test[c->alg], m, r->a_test, &tt);
    check_op(r, cas, c->alg, device_shaped(m), !expect_ok, &before);
    run_msg(&c->rf, r->ref[c->alg], m, r->a_ref, &tr);
    r->diff_ops++;
    describe_trace(a, sizeof(a), &tt);
    describe_trace(b, sizeof(b), &tr);
    if (tr.ok != expect_ok) {
        fail(r, cas, "the default provider itself %s (%s): the test is wrong", tr.ok ? "succeeded" : "failed", b);
        ok = 0;
    } else if (!trace_equal(&tt, &tr)) {
        fail(r, cas, "calls differ: got %s, the default provider %s", a, b);
        ok = 0;
    } else if (memcmp(r->a_test, r->a_ref, ARENA)) {
        arena_diff(why, sizeof(why), m, r->a_ref, r->a_test);
        fail(r, cas, "%s", why);
        ok = 0;
    } else if (m->enc && tt.ok && memcmp(tt.tag, tr.tag, m->tag_len)) {
        describe_diff(why, sizeof(why), tr.tag, tt.tag, m->tag_len);
        fail(r, cas, "tag %s", why);
        ok = 0;
    }
    return ok;
}

/* Place the buffers: out of place (either order) or in place, at odd offsets now and then. */
static void place(uint64_t *s, struct pk_msg *m)
{
    size_t a = below(s, 4) ? below(s, 16) : below(s, SLACK), b = below(s, 4) ? below(s, 16) : below(s, SLACK);
    switch (below(s, 3)) {
    case 0:
        m->in_off = m->out_off = SLACK + a;
        break;
    case 1:
        m->in_off = SLACK + a;
        m->out_off = m->in_off + m->len + 16 + b;
        break;
    default:
        m->out_off = SLACK + a;
        m->in_off = m->out_off + m->len + 16 + b;
        break;
    }
}

/* One message of a conversation: encrypt, decrypt, or decrypt something tampered with. */
static int diff_aead(struct pk_run *r, uint64_t *s, struct pk_conv *c, const char *iter)
{
    static __thread uint8_t pt[MAX_MSG], ct[MAX_MSG + TAG];
    uint8_t iv[12], aad[MAX_AAD], tag[TAG];
    struct pk_msg m = {.alg = c->alg};
    size_t roll = below(s, 10);
    enum { ENC, DEC, TAMPER } kind = roll < 4 ? ENC : roll < 7 ? DEC : TAMPER;
    char cas[200];
    const char *what = "";
    int expect_ok = 1;

    m.enc = kind == ENC;
    if (!c->started) {
        fill(s, c->key, sizeof(c->key));
        m.init = chance(s, 30) ? INIT_SPLIT : INIT_FULL;
        c->started = 1;
    } else if (chance(s, 25)) {
        fill(s, c->key, sizeof(c->key));
        m.init = INIT_REUSE_KEY;
    } else {
        m.init = chance(s, 15) ? INIT_REUSE_KEY : INIT_REUSE;
    }
    m.key = c->key;
    fill(s, iv, sizeof(iv));
    m.iv = iv;
    m.len = draw_len(s);
    m.aad_len = draw_aad(s);
    fill(s, aad, m.aad_len);
    m.aad = aad;
    m.n_aad = m.aad_len || chance(s, 20) ? cut(s, m.aad_len, m.aad_cut, 35) : 0;
    m.n_data = m.len || chance(s, 50) ? cut(s, m.len, m.data_cut, 15) : 0;
    m.tag_len = draw_taglen(s, c->alg);
    m.tag_at = chance(s, 50) ? TAG_AT_INIT : chance(s, 40) ? TAG_AFTER_AAD : TAG_AFTER_DATA;
    m.by_params = chance(s, 30);
    m.dup = chance(s, 5);
    place(s, &m);
    fill(s, pt, m.len);
    if (!m.enc) {
        if (!ref_seal(r, c->alg, 1, c->key, iv, aad, m.aad_len, pt, m.len, ct, tag, TAG)) {
            fail(r, iter, "the default provider could not encrypt");
            return 0;
        }
        m.tag = tag;
        if (kind == TAMPER) {
            /* a short tag may still match a changed message: then only the tag itself is changed */
            unsigned how = m.tag_len < 8 ? 2 : (unsigned)below(s, 3);
            expect_ok = 0;
            if (how == 0 && m.len) {
                ct[below(s, m.len)] ^= (uint8_t)(1u << below(s, 8));
                what = " ct-flipped";
            } else if (how == 1 && m.aad_len) {
                aad[below(s, m.aad_len)] ^= (uint8_t)(1u << below(s, 8));
                what = " aad-flipped";
            } else {
                tag[below(s, m.tag_len)] ^= (uint8_t)(1u << below(s, 8));
                what = " tag-flipped";
            }
        }
    }
    snprintf(cas, sizeof(cas), "%s %s %s len=%zu/%u aad=%zu/%u tag=%zu%s%s%s%s in=%zu out=%zu%s", iter,
             alg_labels[c->alg], m.enc ? "encrypt" : tag_at_names[m.tag_at], m.len, m.n_data, m.aad_len, m.n_aad,
             m.tag_len, what, m.by_params ? " params" : "", m.dup ? " dup" : "",
             init_names[m.init],
             m.in_off, m.out_off, m.in_off == m.out_off ? " in-place" : "");
    if (r->o.verbose)
        fprintf(stderr, "diff: %s\n", cas);
    return diff_msg(r, c, &m, m.enc ? pt : ct, cas, expect_ok);
}

/*
 * TLS 1.2 GCM records, as libssl sends them: a 4-byte fixed IV, then per record the 13-byte AAD
 * (parameter tlsaad) and one EVP_Cipher over explicit IV || payload || tag, in place. The
 * explicit IVs are the provider's own (random, then counting), so each record is checked against
 * the default provider's AEAD under the IV it carries, and both providers decrypt each other's.
 */
static void diff_tls12(struct pk_run *r, uint64_t *s, enum pk_alg alg, const char *iter)
{
    enum { NREC = 4 };
    static __thread uint8_t recs[2][NREC][TLS_EIV + 16384 + TAG], pt[NREC][16384];
    uint8_t key[32], fixed[TLS_FIXED], hdr[NREC][TLS_HDR], ref_ct[16384 + TAG], tag[TAG], iv[12];
    size_t plen[NREC];
    unsigned nrec = 1 + (unsigned)below(s, NREC);
    EVP_CIPHER *ciph[2] = {r->test[alg], r->ref[alg]};
    char cas[200];

    fill(s, key, key_lens[alg]);
    fill(s, fixed, sizeof(fixed));
    for (unsigned i = 0; i < nrec; i++) {
        plen[i] = chance(s, 80) ? below(s, 2049) : below(s, 16385);
        fill(s, pt[i], plen[i]);
        fill(s, hdr[i], 8); /* the sequence number */
        hdr[i][8] = 23;
        hdr[i][9] = 3;
        hdr[i][10] = 3;
    }
    for (int p = 0; p < 2; p++) { /* p: 0 the provider under test, 1 the default provider */
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int ok = ctx && EVP_CipherInit_ex(ctx, ciph[p], NULL, key, NULL, 1) &&
                 EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, TLS_FIXED, fixed) > 0;
        snprintf(cas, sizeof(cas), "%s %s tls1.2 encrypt (%s)", iter, alg_labels[alg], p ? "default" : "tested");
        if (!ok)
            fail(r, cas, "set up failed");
        for (unsigned i = 0; ok && i < nrec; i++) {
            size_t len = TLS_EIV + plen[i] + TAG;
            uint8_t h[TLS_HDR], *rec = recs[p][i];
            struct pk_counters before;
            int n, pad;

            snprintf(cas, sizeof(cas), "%s %s tls1.2 encrypt record %u len=%zu (%s)", iter, alg_labels[alg], i,
                     plen[i], p ? "default" : "tested");
            memcpy(h, hdr[i], TLS_HDR);
            h[11] = (uint8_t)((TLS_EIV + plen[i]) >> 8);
            h[12] = (uint8_t)(TLS_EIV + plen[i]);
            memset(rec, 0xee, len);
            memcpy(rec + TLS_EIV, pt[i], plen[i]);
            counters_read(r, &before);
            pad = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_TLS1_AAD, TLS_HDR, h);
            n = pad == TAG ? EVP_Cipher(ctx, rec, rec, (unsigned)len) : -2;
            if (!p)
                check_op(r, cas, alg, 1, 0, &before);
            r->diff_ops++;
            if (pad != TAG || n != (int)len) {
                fail(r, cas, "tlsaad gave %d (expected %u), EVP_Cipher %d (expected %zu)", pad, TAG, n, len);
                ok = 0;
                break;
            }
            if (i) { /* the invocation field counts up, big-endian */
                uint8_t next[TLS_EIV];
                memcpy(next, recs[p][i - 1], TLS_EIV);
                for (int j = TLS_EIV - 1; j >= 0 && ++next[j] == 0; j--)
                    ;
                if (memcmp(rec, next, TLS_EIV))
                    fail(r, cas, "the explicit IV did not count up from the previous record's");
            }
            memcpy(iv, fixed, TLS_FIXED);
            memcpy(iv + TLS_FIXED, rec, TLS_EIV);
            h[11] = (uint8_t)(plen[i] >> 8);
            h[12] = (uint8_t)plen[i];
            if (!ref_seal(r, alg, 1, key, iv, h, TLS_HDR, pt[i], plen[i], ref_ct, tag, TAG)) {
                fail(r, cas, "the default provider could not encrypt");
                ok = 0;
            } else if (memcmp(rec + TLS_EIV, ref_ct, plen[i]) || memcmp(rec + TLS_EIV + plen[i], tag, TAG)) {
                char why[300];
                memcpy(ref_ct + plen[i], tag, TAG);
                describe_diff(why, sizeof(why), ref_ct, rec + TLS_EIV, plen[i] + TAG);
                fail(r, cas, "record is not the AEAD of its payload under its IV: %s", why);
            }
        }
        EVP_CIPHER_CTX_free(ctx);
        if (!ok)
            return;
    }
    /* Both providers decrypt both sets of records, each also with one bit flipped: the same results. */
    for (int from = 0; from < 2; from++) {
        EVP_CIPHER_CTX *ctx[2] = {EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_new()};
        int ok = 1;
        for (int p = 0; p < 2; p++)
            ok = ok && ctx[p] && EVP_CipherInit_ex(ctx[p], ciph[p], NULL, key, NULL, 0) &&
                 EVP_CIPHER_CTX_ctrl(ctx[p], EVP_CTRL_GCM_SET_IV_FIXED, TLS_FIXED, fixed) > 0;
        if (!ok) {
            snprintf(cas, sizeof(cas), "%s %s tls1.2 decrypt", iter, alg_labels[alg]);
            fail(r, cas, "set up failed");
        }
        for (unsigned i = 0; ok && i < 2 * nrec; i++) {
            static __thread uint8_t rec[2][TLS_EIV + 16384 + TAG];
            unsigned ri = i / 2, bad = i % 2;
            size_t len = TLS_EIV + plen[ri] + TAG, flip = below(s, len);
            uint8_t bit = (uint8_t)(1u << below(s, 8)), h[TLS_HDR];
            int n[2], pad[2];

            snprintf(cas, sizeof(cas), "%s %s tls1.2 decrypt record %u len=%zu%s from the %s provider", iter,
                     alg_labels[alg], ri, plen[ri], bad ? " tampered" : "", from ? "default" : "tested");
            memcpy(h, hdr[ri], TLS_HDR);
            h[11] = (uint8_t)(len >> 8);
            h[12] = (uint8_t)len;
            for (int p = 0; p < 2; p++) {
                struct pk_counters before;
                memcpy(rec[p], recs[from][ri], len);
                if (bad)
                    rec[p][flip] ^= bit;
                counters_read(r, &before);
                pad[p] = EVP_CIPHER_CTX_ctrl(ctx[p], EVP_CTRL_AEAD_TLS1_AAD, TLS_HDR, h);
                n[p] = pad[p] > 0 ? EVP_Cipher(ctx[p], rec[p], rec[p], (unsigned)len) : -2;
                if (!p)
                    check_op(r, cas, alg, 1, (int)bad, &before);
            }
            r->diff_ops++;
            if (pad[1] != TAG || (bad ? n[1] >= 0 : n[1] < 0) || (!bad && memcmp(rec[1] + TLS_EIV, pt[ri], plen[ri])))
                fail(r, cas, "the default provider itself gave tlsaad %d, EVP_Cipher %d: the test is wrong", pad[1],
                     n[1]);
            else if (pad[0] != pad[1] || n[0] != n[1])
                fail(r, cas, "tlsaad gave %d, EVP_Cipher %d; the default provider %d and %d", pad[0], n[0], pad[1],
                     n[1]);
            else if (!bad && memcmp(rec[0] + TLS_EIV, pt[ri], plen[ri]))
                fail(r, cas, "payload differs from what was sent");
        }
        EVP_CIPHER_CTX_free(ctx[0]);
        EVP_CIPHER_CTX_free(ctx[1]);
    }
}

/*
 * TLS 1.2 ChaCha20-Poly1305 records (RFC 7905): a 12-byte fixed IV, the nonce its XOR with the
 * sequence number, payload || tag in place. Deterministic, so compared byte for byte. These are
 * not the device's shape (the IV comes from the AAD).
 */
static void diff_tls12_chacha(struct pk_run *r, uint64_t *s, const char *iter)
{
    enum { NREC = 4 };
    static __thread uint8_t buf[2][16384 + TAG], sent[NREC][16384 + TAG], pt[NREC][16384];
    uint8_t key[32], fixed[12], hdr[TLS_HDR];
    unsigned nrec = 1 + (unsigned)below(s, NREC);
    size_t plen[NREC];
    EVP_CIPHER *ciph[2] = {r->test[PK_CHACHA20_POLY1305], r->ref[PK_CHACHA20_POLY1305]};
    char cas[200];

    fill(s, key, sizeof(key));
    fill(s, fixed, sizeof(fixed));
    fill(s, hdr, 8);
    hdr[8] = 23;
    hdr[9] = 3;
    hdr[10] = 3;
    for (int enc = 1; enc >= 0; enc--) {
        EVP_CIPHER_CTX *ctx[2] = {EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_new()};
        int ok = 1;
        for (int p = 0; p < 2; p++)
            ok = ok && ctx[p] && EVP_CipherInit_ex(ctx[p], ciph[p], NULL, key, NULL, enc) &&
                 EVP_CIPHER_CTX_ctrl(ctx[p], EVP_CTRL_AEAD_SET_IV_FIXED, sizeof(fixed), fixed) > 0;
        if (!ok) {
            snprintf(cas, sizeof(cas), "%s chacha20-poly1305 tls1.2 %s", iter, enc ? "encrypt" : "decrypt");
            fail(r, cas, "set up failed");
        }
        for (unsigned i = 0; ok && i < (enc ? nrec : 2 * nrec); i++) {
            unsigned ri = enc ? i : i / 2, bad = enc ? 0 : i % 2;
            size_t len, flip;
            uint8_t h[TLS_HDR], bit;
            int n[2], pad[2];

            if (enc) {
                plen[ri] = chance(s, 80) ? below(s, 2049) : below(s, 16385);
                fill(s, pt[ri], plen[ri]);
                memcpy(sent[ri], pt[ri], plen[ri]);
                memset(sent[ri] + plen[ri], 0xee, TAG);
            }
            len = plen[ri] + TAG;
            flip = below(s, len);
            bit = (uint8_t)(1u << below(s, 8));
            snprintf(cas, sizeof(cas), "%s chacha20-poly1305 tls1.2 %s record %u len=%zu%s", iter,
                     enc ? "encrypt" : "decrypt", ri, plen[ri], bad ? " tampered" : "");
            memcpy(h, hdr, TLS_HDR);
            h[7] = (uint8_t)(h[7] + ri); /* the sequence number goes on */
            h[11] = (uint8_t)((enc ? plen[ri] : len) >> 8);
            h[12] = (uint8_t)(enc ? plen[ri] : len);
            for (int p = 0; p < 2; p++) {
                struct pk_counters before;
                memcpy(buf[p], sent[ri], len);
                if (bad)
                    buf[p][flip] ^= bit;
                counters_read(r, &before);
                pad[p] = EVP_CIPHER_CTX_ctrl(ctx[p], EVP_CTRL_AEAD_TLS1_AAD, TLS_HDR, h);
                n[p] = pad[p] > 0 ? EVP_Cipher(ctx[p], buf[p], buf[p], (unsigned)len) : -2;
                if (!p)
                    check_op(r, cas, PK_CHACHA20_POLY1305, 0, 0, &before);
            }
            r->diff_ops++;
            if (pad[1] != TAG || (bad ? n[1] >= 0 : n[1] < 0) || (!enc && !bad && memcmp(buf[1], pt[ri], plen[ri])))
                fail(r, cas, "the default provider itself gave tlsaad %d, EVP_Cipher %d: the test is wrong", pad[1],
                     n[1]);
            else if (pad[0] != pad[1] || n[0] != n[1])
                fail(r, cas, "tlsaad gave %d, EVP_Cipher %d; the default provider %d and %d", pad[0], n[0], pad[1],
                     n[1]);
            else if (!bad && memcmp(buf[0], buf[1], enc ? len : plen[ri])) {
                char why[300];
                describe_diff(why, sizeof(why), buf[1], buf[0], enc ? len : plen[ri]);
                fail(r, cas, "%s %s", enc ? "record" : "payload", why);
            }
            if (enc)
                memcpy(sent[ri], buf[1], len); /* what goes on the wire */
        }
        EVP_CIPHER_CTX_free(ctx[0]);
        EVP_CIPHER_CTX_free(ctx[1]);
        if (!ok)
            return;
    }
}

static void diff_iteration(struct pk_run *r, unsigned long i)
{
    uint64_t s = r->o.seed ^ (0xd1b54a32d192ed03ull * (i + 1));
    struct pk_conv c = {.alg = (enum pk_alg)below(&s, PK_ALG_COUNT)};
    char iter[64];
    unsigned long before = r->failures;

    rnd(&s);
    snprintf(iter, sizeof(iter), "diff#%lu", i);
    if (chance(&s, 10)) {
        if (c.alg == PK_CHACHA20_POLY1305)
            diff_tls12_chacha(r, &s, iter);
        else
            diff_tls12(r, &s, c.alg, iter);
    } else {
        unsigned n = 1 + (unsigned)below(&s, 4);
        c.t = EVP_CIPHER_CTX_new();
        c.rf = EVP_CIPHER_CTX_new();
        for (unsigned k = 0; k < n && c.t && c.rf; k++) {
            char name[80];
            snprintf(name, sizeof(name), "%s.%u", iter, k);
            if (!diff_aead(r, &s, &c, name))
                break; /* the contexts no longer agree */
        }
        EVP_CIPHER_CTX_free(c.t);
        EVP_CIPHER_CTX_free(c.rf);
    }
    r->diff_failures += r->failures - before;
}

struct pk_worker {
    struct pk_run r;
    unsigned k;
    pthread_t th;
};

static void *diff_worker(void *arg)
{
    struct pk_worker *w = arg;
    for (unsigned long i = w->k; i < w->r.o.iterations; i += w->r.o.threads)
        diff_iteration(&w->r, i);
    return NULL;
}

/* The differential's conversations, on --threads threads (each takes every n-th one). */
static int differential(struct pk_run *r)
{
    struct pk_worker *w;
    unsigned n = r->o.threads, started = 0;
    int rc = 0;

    if (r->o.only >= 0) {
        r->o.iterations = 1;
        diff_iteration(r, (unsigned long)r->o.only);
        return 0;
    }
    if (n <= 1) {
        for (unsigned long i = 0; i < r->o.iterations; i++)
            diff_iteration(r, i);
        return 0;
    }
    if (!(w = calloc(n, sizeof(*w))))
        return -ENOMEM;
    for (; started < n; started++) {
        struct pk_run *t = &w[started].r;
        *t = *r;
        t->threaded = 1;
        t->kat_cases = t->kat_failures = t->diff_ops = t->diff_failures = t->failures = 0;
        t->dev_ops = t->other_ops = t->dev_served = t->dev_rejects = 0;
        t->other_fallbacks = 0;
        t->a_test = malloc(ARENA);
        t->a_ref = malloc(ARENA);
        w[started].k = started;
        if (!t->a_test || !t->a_ref || pthread_create(&w[started].th, NULL, diff_worker, &w[started])) {
            free(t->a_test);
            free(t->a_ref);
            rc = -EAGAIN;
            fprintf(stderr, "provider-kat: could not start thread %u\n", started);
            break;
        }
    }
    for (unsigned i = 0; i < started; i++) {
        struct pk_run *t = &w[i].r;
        pthread_join(w[i].th, NULL);
        r->diff_ops += t->diff_ops;
        r->diff_failures += t->diff_failures;
        r->failures += t->failures;
        r->dev_ops += t->dev_ops;
        r->other_ops += t->other_ops;
        r->dev_served += t->dev_served;
        r->dev_rejects += t->dev_rejects;
        free(t->a_test);
        free(t->a_ref);
    }
    free(w);
    return rc;
}

/* ---- set up, the counters' verdict, the summary ---- */

static int fetch(struct pk_run *r)
{
    for (int a = 0; a < PK_ALG_COUNT; a++) {
        char q[96];
        const char *got;
        snprintf(q, sizeof(q), "provider=%s", r->o.provider);
        r->test[a] = EVP_CIPHER_fetch(NULL, alg_names[a], q);
        r->ref[a] = EVP_CIPHER_fetch(NULL, alg_names[a], "provider=default");
        if (!r->test[a] || !r->ref[a]) {
            fprintf(stderr, "provider-kat: no %s with \"%s\"; does OPENSSL_CONF (%s) activate both the %s and "
                            "the default provider?\n", alg_names[a], r->test[a] ? "provider=default" : q,
                    getenv("OPENSSL_CONF") ? getenv("OPENSSL_CONF") : "unset", r->o.provider);
            ERR_print_errors_fp(stderr);
            return -ENOENT;
        }
        got = OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(r->test[a]));
        if (strcmp(got, r->o.provider)) {
            fprintf(stderr, "provider-kat: %s came from provider %s, not %s\n", alg_names[a], got, r->o.provider);
            return -ENOENT;
        }
    }
    r->prov = (OSSL_PROVIDER *)EVP_CIPHER_get0_provider(r->test[0]);
    {
        struct pk_counters c;
        r->counters = 1;
        r->counters = counters_read(r, &c) && (c.have & 1u << C_OPS);
    }
    return 0;
}

/* The cipher's constants as libssl reads them: flags, mode, lengths. */
static void check_constants(struct pk_run *r)
{
    for (int a = 0; a < PK_ALG_COUNT; a++) {
        const EVP_CIPHER *t = r->test[a], *f = r->ref[a];
        char cas[64];
        snprintf(cas, sizeof(cas), "constants %s", alg_labels[a]);
        if (EVP_CIPHER_get_flags(t) != EVP_CIPHER_get_flags(f) || EVP_CIPHER_get_mode(t) != EVP_CIPHER_get_mode(f) ||
            EVP_CIPHER_get_key_length(t) != EVP_CIPHER_get_key_length(f) ||
            EVP_CIPHER_get_iv_length(t) != EVP_CIPHER_get_iv_length(f) ||
            EVP_CIPHER_get_block_size(t) != EVP_CIPHER_get_block_size(f) ||
            EVP_CIPHER_get_nid(t) != EVP_CIPHER_get_nid(f))
            fail(r, cas, "flags %#lx mode %d key %d iv %d block %d nid %d; the default provider's: flags %#lx mode %d "
                         "key %d iv %d block %d nid %d",
                 EVP_CIPHER_get_flags(t), EVP_CIPHER_get_mode(t), EVP_CIPHER_get_key_length(t),
                 EVP_CIPHER_get_iv_length(t), EVP_CIPHER_get_block_size(t), EVP_CIPHER_get_nid(t),
                 EVP_CIPHER_get_flags(f), EVP_CIPHER_get_mode(f), EVP_CIPHER_get_key_length(f),
                 EVP_CIPHER_get_iv_length(f), EVP_CIPHER_get_block_size(f), EVP_CIPHER_get_nid(f));
    }
}

/* EVP_CTRL_GCM_SET_IV_FIXED takes what the default provider takes, in both directions: -1 (the whole
 * IV, as EVP_EncryptInit(3) documents), or a fixed field of 4 bytes or more that leaves 8 or more
 * for the invocation field (with a 12-byte IV: 4 only). */
static void check_tls_iv_fixed(struct pk_run *r)
{
    static const int lens[] = {-1, 0, 3, 4, 5, 8, 12};
    uint8_t key[32] = {0}, iv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

    for (int a = PK_AES128_GCM; a <= PK_AES256_GCM; a++)
        for (int enc = 0; enc < 2; enc++)
            for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
                int rc[2];
                char cas[96];
                for (int p = 0; p < 2; p++) {
                    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
                    rc[p] = ctx && EVP_CipherInit_ex(ctx, p ? r->ref[a] : r->test[a], NULL, key, NULL, enc)
                                ? EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, lens[k], iv)
                                : -99;
                    EVP_CIPHER_CTX_free(ctx);
                }
                snprintf(cas, sizeof(cas), "tls1.2 %s %s fixed IV of length %d", alg_labels[a],
                         enc ? "encrypt" : "decrypt", lens[k]);
                if ((rc[0] > 0) != (rc[1] > 0))
                    fail(r, cas, "EVP_CTRL_GCM_SET_IV_FIXED gave %d, the default provider %d", rc[0], rc[1]);
            }
}

static void final_checks(struct pk_run *r, const struct pk_counters *c)
{
    print_all = 1;
    if ((r->o.expect_device || r->o.expect_fallback) && !r->counters) {
        fail(r, "counters", "provider %s has no synth-ops parameter", r->o.provider);
        return;
    }
    if (r->o.expect_device) {
        const char *dev = device_name(r);
        if (!c->v[C_OPS])
            fail(r, "counters", "synth-ops is 0: the device did nothing");
        else if (c->v[C_OPS] < r->dev_served)
            fail(r, "counters", "synth-ops = %" PRIu64 " but %lu operations were the device's to do", c->v[C_OPS],
                 r->dev_served);
        if (!dev[0])
            fail(r, "counters", "synth-device is empty: no device in use");
        for (int i = C_NO_DEVICE; i < C_COUNT; i++)
            if (i != C_UNSUPPORTED && c->v[i])
                fail(r, "counters", "%s = %" PRIu64 ", expected 0", counter_names[i], c->v[i]);
    }
    if (r->o.expect_fallback) {
        if (c->v[C_OPS])
            fail(r, "counters", "synth-ops = %" PRIu64 " with no device, expected 0", c->v[C_OPS]);
        if (!c->v[C_NO_DEVICE])
            fail(r, "counters", "synth-fallback-no-device is 0: nothing fell back for want of a device");
    }
}

static void summary(struct pk_run *r, const struct pk_counters *c)
{
    const char *dev = device_name(r);
    int pass = r->failures == 0;

    if (r->o.json) {
        printf("{\"event\": \"summary\", \"result\": \"%s\", \"provider\": ", pass ? "pass" : "fail");
        json_str(stdout, r->o.provider);
        printf(", \"device\": ");
        json_str(stdout, dev);
        printf(", \"seed\": %" PRIu64 ", \"iterations\": %lu, \"kat\": {\"cases\": %lu, \"failures\": %lu}, "
               "\"differential\": {\"ops\": %lu, \"failures\": %lu}, \"threads\": %u, \"device_ops\": %lu, "
               "\"device_served\": %lu, \"device_rejects\": %lu, \"other_ops\": %lu, \"other_fallbacks\": %" PRIu64 ", "
               "\"failures\": %lu, \"counters\": {",
               r->o.seed, r->o.iterations, r->kat_cases, r->kat_failures, r->diff_ops, r->diff_failures,
               r->o.threads ? r->o.threads : 1, r->dev_ops, r->dev_served, r->dev_rejects, r->other_ops,
               r->other_fallbacks, r->failures);
        for (int i = 0, first = 1; i < C_COUNT; i++)
            if (c->have & 1u << i) {
                printf("%s\"%s\": %" PRIu64, first ? "" : ", ", counter_names[i], c->v[i]);
                first = 0;
            }
        printf("}}\n");
        return;
    }
    printf("known answers: %lu cases, %lu failed\n", r->kat_cases, r->kat_failures);
    if (r->o.no_diff)
        printf("differential: skipped\n");
    else
        printf("differential: %lu iterations (seed %" PRIu64 "), %lu operations, %lu failed\n", r->o.iterations,
               r->o.seed, r->diff_ops, r->diff_failures);
    printf("operations of the device's shape: %lu (%lu of served algorithms, %lu of them to be rejected); "
           "others: %lu", r->dev_ops, r->dev_served, r->dev_rejects, r->other_ops);
    if (!r->o.threads || r->o.threads == 1)
        printf(" (%" PRIu64 " fallbacks among them)", r->other_fallbacks);
    printf("\n");
    if (r->counters) {
        printf("%s: device %s:", r->o.provider, dev[0] ? dev : "none");
        for (int i = 0; i < C_COUNT; i++)
            if (c->have & 1u << i)
                printf(" %s %" PRIu64 "%s", counter_names[i], c->v[i], i + 1 < C_COUNT ? "," : "");
        printf("\n");
    }
    printf("%s\n", pass ? "PASS" : "FAIL");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: provider-kat [options]\n"
            "Known-answer and differential tests of a provider's AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305\n"
            "through EVP, against the default provider. OPENSSL_CONF must activate both providers.\n\n"
            "  --provider NAME     the provider under test (default: synth); \"default\" checks the program itself\n"
            "  --iterations N      differential conversations (default: 2000)\n"
            "  --seed N            the differential's seed (default: 1)\n"
            "  --only I            run only differential conversation I (with the same --seed)\n"
            "  --threads N         run the differential on N threads (default: 1); the counters are then\n"
            "                      checked in total, not around each operation\n"
            "  --rsp FILE          also every 96-bit-IV case of this NIST CAVP GCM file (repeatable)\n"
            "  --no-kat, --no-diff skip the known answers, or the differential\n"
            "  --expect-device     every operation of the device's shape is done by the device (synth-ops +1,\n"
            "                      no fallback), no fallback but \"unsupported\" at all, synth-ops > 0\n"
            "  --expect-fallback   no device: every operation of its shape falls back for \"no-device\",\n"
            "                      synth-ops stays 0\n"
            "  --unserved ALGS     comma-separated (aes-128-gcm, aes-256-gcm, chacha20-poly1305): algorithms the\n"
            "                      device does not serve; with --expect-device they fall back for \"unsupported\"\n"
            "  --json              one JSON object a line: each failure, then the summary\n"
            "  --verbose           name each case on stderr\n"
            "  --help              this text\n\n"
            "Exit status: 0 passed, 1 a check failed, 2 usage or setup error.\n");
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 0);
    return !errno && *s && !*end && *s != '-';
}

static int parse_args(int argc, char **argv, struct pk_opts *o)
{
    o->provider = "synth";
    o->iterations = 2000;
    o->seed = 1;
    o->only = -1;
    o->threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--verbose")) {
            o->verbose = 1;
        } else if (!strcmp(a, "--expect-device")) {
            o->expect_device = 1;
        } else if (!strcmp(a, "--expect-fallback")) {
            o->expect_fallback = 1;
        } else if (!strcmp(a, "--no-kat")) {
            o->no_kat = 1;
        } else if (!strcmp(a, "--no-diff")) {
            o->no_diff = 1;
        } else if (v && !strcmp(a, "--provider")) {
            o->provider = v;
            i++;
        } else if (v && !strcmp(a, "--rsp") && o->nrsp < sizeof(o->rsp) / sizeof(o->rsp[0])) {
            o->rsp[o->nrsp++] = v;
            i++;
        } else if (v && (!strcmp(a, "--iterations") || !strcmp(a, "--seed") || !strcmp(a, "--only") ||
                         !strcmp(a, "--threads"))) {
            if (!parse_u64(v, &n) || (a[2] == 't' && (n < 1 || n > 64))) {
                fprintf(stderr, "provider-kat: %s %s: expected a whole number%s\n", a, v, a[2] == 't' ? " 1..64" : "");
                return -EINVAL;
            }
            if (a[2] == 'i')
                o->iterations = (unsigned long)n;
            else if (a[2] == 's')
                o->seed = n;
            else if (a[2] == 't')
                o->threads = (unsigned)n;
            else
                o->only = (long)n;
            i++;
        } else if (v && !strcmp(a, "--unserved")) {
            char buf[128], *tok, *save;
            snprintf(buf, sizeof(buf), "%s", v);
            for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int k = 0;
                while (k < PK_ALG_COUNT && strcasecmp(tok, alg_labels[k]))
                    k++;
                if (k == PK_ALG_COUNT) {
                    fprintf(stderr, "provider-kat: --unserved %s: expected aes-128-gcm, aes-256-gcm or "
                                    "chacha20-poly1305\n", tok);
                    return -EINVAL;
                }
                o->unserved |= 1u << k;
            }
            i++;
        } else {
            fprintf(stderr, "provider-kat: %s: unknown option or missing value (see --help)\n", a);
            return -EINVAL;
        }
    }
    if (o->expect_device && o->expect_fallback) {
        fprintf(stderr, "provider-kat: --expect-device and --expect-fallback exclude each other\n");
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct pk_run r = {0};
    struct pk_counters c;
    int rc = 2;

    if (parse_args(argc, argv, &r.o) < 0)
        return 2;
    if (!OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL)) {
        fprintf(stderr, "provider-kat: OpenSSL could not load its configuration (OPENSSL_CONF=%s)\n",
                getenv("OPENSSL_CONF") ? getenv("OPENSSL_CONF") : "unset");
        ERR_print_errors_fp(stderr);
        return 2;
    }
    r.a_test = malloc(ARENA);
    r.a_ref = malloc(ARENA);
    if (!r.a_test || !r.a_ref || fetch(&r) < 0)
        goto cleanup;
    check_constants(&r);
    check_tls_iv_fixed(&r);
    if (!r.o.no_kat) {
        if (kat_builtin(&r) < 0)
            goto cleanup;
        for (unsigned i = 0; i < r.o.nrsp; i++)
            if (kat_rsp(&r, r.o.rsp[i]) < 0)
                goto cleanup;
    }
    if (!r.o.no_diff && differential(&r) < 0)
        goto cleanup;
    counters_read(&r, &c);
    final_checks(&r, &c);
    summary(&r, &c);
    rc = r.failures ? 1 : 0;
cleanup:
    for (int a = 0; a < PK_ALG_COUNT; a++) {
        EVP_CIPHER_free(r.test[a]);
        EVP_CIPHER_free(r.ref[a]);
    }
    free(r.a_test);
    free(r.a_ref);
    return rc;
}
