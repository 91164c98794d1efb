/* SPDX-License-Identifier: Apache-2.0 */
/*
 * provider_bench: the hot loop of bench/provider (which compiles and drives this program).
 *
 *   provider_bench evp ALG SIZE SECONDS CPU PROPQ     throughput of the op, back to back
 *   provider_bench evp-lat ALG SIZE N CPU PROPQ       latency of single ops, each timed alone
 *
 * ALG is a cipher name as the default provider spells it (AES-256-GCM, AES-128-GCM,
 * ChaCha20-Poly1305), PROPQ the property query it is fetched with ("provider=synth",
 * "provider=default"). The configuration comes from OPENSSL_CONF, as for any application.
 *
 * The loop is the one of `openssl speed -aead -evp ALG`, with the tag read back as an application
 * does: one context keyed once; per op EVP_CipherInit_ex with only the IV, the AAD (13 bytes, as
 * openssl speed), the payload (in place), final, get the 16-byte tag. Every op has a fresh IV
 * (a 4-byte salt and an 8-byte counter), as AEAD requires.
 *
 * Before and after the timed window, a few ops of the fetched cipher are compared with the
 * default provider's, and decrypted again (a flipped tag must be refused), so a broken
 * implementation fails the run instead of looking fast. When the cipher comes from the synth
 * provider, its counters (synth-ops, synth-fallbacks and the fallbacks per reason) are read
 * before the timed window and after it: the figures say how many timed ops the device did.
 *
 * Prints one JSON line on stdout; any failure prints a message on stderr and exits 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
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

#include "bench_util.h"

#define MAX_SIZE (1u << 20)
#define AAD_LEN 13u  /* openssl speed -aead's */
#define IV_LEN 12u
#define TAG_LEN 16u
#define CHECK_OPS 3u
#define WARMUP_NS 50000000ull /* 0.05 s, not counted */

static const uint8_t KEY[32] = {
    0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
    0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
};

static void die_ssl(const char *what) __attribute__((noreturn));
static void die_ssl(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "no OpenSSL error queued";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    die("%s failed: %s", what, buf);
}

/* ---- the provider's counters ---- */

#define N_COUNTERS 7
static const char *const COUNTERS[N_COUNTERS] = {
    "synth-ops", "synth-fallbacks", "synth-fallback-no-device", "synth-fallback-reset",
    "synth-fallback-ring-full", "synth-fallback-timeout", "synth-fallback-unsupported",
};

struct counters {
    uint64_t v[N_COUNTERS];
    int known[N_COUNTERS];
    char device[256];
};

/* The device's name: a UTF8 pointer (as the provider hands it) or, failing that, a string. */
static void read_device_name(const OSSL_PROVIDER *prov, char *out, size_t len)
{
    const char *ptr = NULL;
    OSSL_PARAM params[2];

    out[0] = 0;
    params[0] = OSSL_PARAM_construct_utf8_ptr("synth-device", (char **)&ptr, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (OSSL_PROVIDER_get_params(prov, params) && OSSL_PARAM_modified(&params[0]) && ptr) {
        snprintf(out, len, "%s", ptr);
        return;
    }
    params[0] = OSSL_PARAM_construct_utf8_string("synth-device", out, len);
    if (!OSSL_PROVIDER_get_params(prov, params) || !OSSL_PARAM_modified(&params[0]))
        out[0] = 0;
    ERR_clear_error();
}

static void read_counters(const OSSL_PROVIDER *prov, struct counters *c)
{
    OSSL_PARAM params[N_COUNTERS + 1];
    int i;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < N_COUNTERS; i++)
        params[i] = OSSL_PARAM_construct_uint64(COUNTERS[i], &c->v[i]);
    params[N_COUNTERS] = OSSL_PARAM_construct_end();
    if (!OSSL_PROVIDER_get_params(prov, params))
        die_ssl("OSSL_PROVIDER_get_params (synth counters)");
    for (i = 0; i < N_COUNTERS; i++)
        c->known[i] = OSSL_PARAM_modified(&params[i]);
    if (!c->known[0] || !c->known[1])
        die("the synth provider does not report synth-ops / synth-fallbacks");
    read_device_name(prov, c->device, sizeof(c->device));
}

static void print_counters(const char *name, const struct counters *c)
{
    int i;
    printf(", \"%s\": {", name);
    for (i = 0; i < N_COUNTERS; i++)
        if (c->known[i])
            printf("%s\"%s\": %llu", i ? ", " : "", COUNTERS[i], (unsigned long long)c->v[i]);
    /* a device name is a path or a PCI address: nothing to escape but quotes and backslashes */
    printf(", \"synth-device\": \"");
    for (const char *p = c->device; *p; p++)
        printf((*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
    printf("\"}");
}

/* ---- the op ---- */

static void fill_iv(uint8_t *iv, uint64_t seq)
{
    iv[0] = 0xca; iv[1] = 0xfe; iv[2] = 0xba; iv[3] = 0xbe;
    memcpy(iv + 4, &seq, 8);
}

static void fill_aad(uint8_t *aad, uint64_t seq)
{
    /* a TLS record header's shape: 8-byte sequence number, type, version, length */
    memcpy(aad, &seq, 8);
    aad[8] = 0x17; aad[9] = 0x03; aad[10] = 0x03; aad[11] = 0x40; aad[12] = 0x00;
}

static void fill_payload(uint8_t *p, uint32_t size, uint32_t salt)
{
    for (uint32_t i = 0; i < size; i++)
        p[i] = (uint8_t)(i * 31u + salt * 7u + 1u);
}

/* A context of cipher, keyed once for encryption (enc 1) or decryption (enc 0). */
static EVP_CIPHER_CTX *keyed_ctx(const EVP_CIPHER *cipher, int enc)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        die("EVP_CIPHER_CTX_new failed");
    if (!EVP_CipherInit_ex(ctx, cipher, NULL, KEY, NULL, enc))
        die_ssl("EVP_CipherInit_ex (key)");
    if (EVP_CIPHER_CTX_get_iv_length(ctx) != (int)IV_LEN)
        die("%s has a %d-byte IV, expected %u", EVP_CIPHER_get0_name(cipher), EVP_CIPHER_CTX_get_iv_length(ctx),
            IV_LEN);
    return ctx;
}

/* One op of the timed loop: IV, AAD, payload in place, final, tag. 0 or -1. */
static inline int aead_encrypt(EVP_CIPHER_CTX *ctx, const uint8_t *iv, const uint8_t *aad, uint8_t *buf,
                               uint32_t len, uint8_t *tag)
{
    int n = 0, f = 0;
    if (!EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) ||
        !EVP_CipherUpdate(ctx, NULL, &n, aad, (int)AAD_LEN) ||
        !EVP_CipherUpdate(ctx, buf, &n, buf, (int)len) ||
        !EVP_CipherFinal_ex(ctx, buf + n, &f) ||
        !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag))
        return -1;
    return (uint32_t)(n + f) == len ? 0 : -1;
}

/* Decrypt in place and verify tag: 1 verified, 0 refused, dies on any other failure. */
static int aead_decrypt(EVP_CIPHER_CTX *ctx, const uint8_t *iv, const uint8_t *aad, uint8_t *buf, uint32_t len,
                        const uint8_t *tag)
{
    int n = 0, f = 0;
    if (!EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) ||
        !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)tag) ||
        !EVP_CipherUpdate(ctx, NULL, &n, aad, (int)AAD_LEN) ||
        !EVP_CipherUpdate(ctx, buf, &n, buf, (int)len))
        die_ssl("decrypt");
    if (!EVP_CipherFinal_ex(ctx, buf + n, &f)) {
        ERR_clear_error();
        return 0;
    }
    if ((uint32_t)(n + f) != len)
        die("decrypt returned %d bytes, expected %u", n + f, len);
    return 1;
}

/*
 * CHECK_OPS ops through the benchmark's context (reused, IV-only re-init) against fresh default
 * provider contexts; then each decrypted by the tested cipher, once with its tag, once with the
 * tag flipped.
 */
static void check(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *tested, const EVP_CIPHER *ref, uint32_t size,
                  uint64_t seq0)
{
    uint8_t *a = malloc(size), *b = malloc(size), *pt = malloc(size);
    uint8_t iv[IV_LEN], aad[AAD_LEN], tag_a[TAG_LEN], tag_b[TAG_LEN];
    EVP_CIPHER_CTX *dec = keyed_ctx(tested, 0);

    if (!a || !b || !pt)
        die("out of memory");
    for (uint32_t i = 0; i < CHECK_OPS; i++) {
        EVP_CIPHER_CTX *rctx = keyed_ctx(ref, 1);
        fill_iv(iv, seq0 + i);
        fill_aad(aad, seq0 + i);
        fill_payload(pt, size, (uint32_t)(seq0 + i));
        memcpy(a, pt, size);
        memcpy(b, pt, size);
        if (aead_encrypt(ctx, iv, aad, a, size, tag_a) < 0)
            die_ssl("encrypt (check op)");
        if (aead_encrypt(rctx, iv, aad, b, size, tag_b) < 0)
            die_ssl("encrypt (default provider, check op)");
        EVP_CIPHER_CTX_free(rctx);
        if (memcmp(a, b, size))
            die("the ciphertext differs from the default provider's (size %u)", size);
        if (memcmp(tag_a, tag_b, TAG_LEN))
            die("the tag differs from the default provider's (size %u)", size);
        if (aead_decrypt(dec, iv, aad, a, size, tag_a) != 1)
            die("decrypting our own ciphertext was refused (size %u)", size);
        if (memcmp(a, pt, size))
            die("decrypting our own ciphertext gave other plaintext (size %u)", size);
        memcpy(a, b, size);
        tag_b[i % TAG_LEN] ^= 0x01;
        if (aead_decrypt(dec, iv, aad, a, size, tag_b) != 0)
            die("a flipped tag was accepted (size %u)", size);
    }
    EVP_CIPHER_CTX_free(dec);
    free(pt);
    free(b);
    free(a);
}

/* A run of one mode: the cipher fetched as asked, its reference, a keyed context, the buffer. */
struct run {
    const char *alg, *propq, *pname;
    uint32_t size;
    EVP_CIPHER *cipher, *ref;
    EVP_CIPHER_CTX *ctx;
    const OSSL_PROVIDER *prov;
    int synth;
    uint8_t *buf;
    uint64_t seq;
    struct counters c1, c2; /* around the measured window (synth only) */
};

static void run_open(struct run *r, const char *alg, const char *size, const char *cpu, const char *propq)
{
    memset(r, 0, sizeof(*r));
    r->alg = alg;
    r->propq = propq;
    r->size = (uint32_t)parse_long(size, "size", 1, MAX_SIZE);
    pin((int)parse_long(cpu, "cpu", -1, CPU_SETSIZE - 1));
    r->cipher = EVP_CIPHER_fetch(NULL, alg, propq);
    if (!r->cipher)
        die_ssl("EVP_CIPHER_fetch with the benchmark's property query (is OPENSSL_CONF right?)");
    r->ref = EVP_CIPHER_fetch(NULL, alg, "provider=default");
    if (!r->ref)
        die_ssl("EVP_CIPHER_fetch from the default provider");
    r->prov = EVP_CIPHER_get0_provider(r->cipher);
    r->pname = OSSL_PROVIDER_get0_name(r->prov);
    r->synth = !strcmp(r->pname, "synth");
    if (strstr(propq, "provider=synth") && !r->synth)
        die("asked for %s from the synth provider, got it from %s", alg, r->pname);
    r->buf = aligned_alloc(64, (r->size + 63u) & ~63u);
    if (!r->buf)
        die("out of memory");
    fill_payload(r->buf, r->size, 0);
    r->ctx = keyed_ctx(r->cipher, 1);
    check(r->ctx, r->cipher, r->ref, r->size, 1u << 30);
    r->seq = 1;
}

static inline void run_op(struct run *r)
{
    uint8_t iv[IV_LEN], aad[AAD_LEN], tag[TAG_LEN];
    fill_iv(iv, r->seq);
    fill_aad(aad, r->seq++);
    if (aead_encrypt(r->ctx, iv, aad, r->buf, r->size, tag) < 0)
        die_ssl("encrypt");
}

static void run_window(struct run *r, int end)
{
    if (r->synth)
        read_counters(r->prov, end ? &r->c2 : &r->c1);
}

/* Check again, print the common fields of the JSON line (the caller adds its own and the end). */
static void run_close(struct run *r, const char *mode)
{
    check(r->ctx, r->cipher, r->ref, r->size, 2u << 30);
    printf("{\"mode\": \"%s\", \"alg\": \"%s\", \"size\": %u, \"propq\": \"%s\", \"provider\": \"%s\", "
           "\"aad_len\": %u, \"flipped_tags\": %u, \"openssl\": \"%s\", \"checked\": true",
           mode, EVP_CIPHER_get0_name(r->cipher), r->size, r->propq, r->pname, AAD_LEN, 2 * CHECK_OPS,
           OpenSSL_version(OPENSSL_VERSION));
    if (r->synth) {
        print_counters("counters_start", &r->c1);
        print_counters("counters_end", &r->c2);
    }
    EVP_CIPHER_CTX_free(r->ctx);
    EVP_CIPHER_free(r->ref);
    EVP_CIPHER_free(r->cipher);
    free(r->buf);
}

/* ---- evp: throughput ---- */

static int cmd_evp(int argc, char **argv)
{
    struct run r;
    double secs;
    uint64_t ops = 0, t0, t, deadline, warm_end;

    if (argc != 5)
        die("usage: evp ALG SIZE SECONDS CPU PROPQ");
    secs = parse_seconds(argv[2]);
    run_open(&r, argv[0], argv[1], argv[3], argv[4]);

    warm_end = now_ns() + WARMUP_NS;
    do
        run_op(&r);
    while (now_ns() < warm_end);

    run_window(&r, 0);
    t0 = now_ns();
    deadline = t0 + (uint64_t)(secs * 1e9);
    do {
        for (int k = 0; k < 16; k++)
            run_op(&r);
        ops += 16;
        t = now_ns();
    } while (t < deadline);
    run_window(&r, 1);

    run_close(&r, "evp");
    {
        double s = (double)(t - t0) / 1e9;
        printf(", \"ops\": %llu, \"seconds\": %.6f, \"ops_per_s\": %.1f, \"gbps\": %.4f}\n", (unsigned long long)ops,
               s, (double)ops / s, (double)ops * r.size * 8.0 / s / 1e9);
    }
    fflush(stdout);
    return 0;
}

/* ---- evp-lat: single-op latency (the same op, each timed alone) ---- */

static int cmd_evp_lat(int argc, char **argv)
{
    struct run r;
    uint32_t n, i;
    uint64_t *lat, warm_end;

    if (argc != 5)
        die("usage: evp-lat ALG SIZE N CPU PROPQ");
    n = (uint32_t)parse_long(argv[2], "sample count", 100, 100000000);
    lat = malloc((size_t)n * sizeof(*lat));
    if (!lat)
        die("out of memory");
    run_open(&r, argv[0], argv[1], argv[3], argv[4]);

    warm_end = now_ns() + WARMUP_NS;
    do
        run_op(&r);
    while (now_ns() < warm_end);

    run_window(&r, 0);
    for (i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        run_op(&r);
        lat[i] = now_ns() - t0;
    }
    run_window(&r, 1);

    run_close(&r, "evp-lat");
    qsort(lat, n, sizeof(*lat), cmp_u64);
    printf(", \"ops\": %u, \"samples\": %u, \"min_ns\": %llu, \"p50_ns\": %llu, \"p99_ns\": %llu}\n", n, n,
           (unsigned long long)lat[0], (unsigned long long)lat[(uint64_t)n * 50 / 100],
           (unsigned long long)lat[(uint64_t)n * 99 / 100]);
    fflush(stdout);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    prog_name = "provider_bench";
    if (argc < 2) {
        fprintf(stderr, "usage: %s evp|evp-lat ALG SIZE SECONDS|N CPU PROPQ (see the source)\n", argv[0]);
        return 2;
    }
    prog_mode = argv[1];
    if (!strcmp(argv[1], "evp"))
        return cmd_evp(argc - 2, argv + 2);
    if (!strcmp(argv[1], "evp-lat"))
        return cmd_evp_lat(argc - 2, argv + 2);
    die("unknown mode %s", argv[1]);
}
