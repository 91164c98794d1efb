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
 *
 * This file holds main: the options, the set up, the verdict on the counters and the summary;
 * provider_kat.h lists the others.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "provider_kat.h"

static const char *const alg_names[PK_ALG_COUNT] = {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"};

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
        r->counters = pk_counters_read(r, &c) && (c.have & 1u << C_OPS);
    }
    return 0;
}

/* The cipher's constants as libssl reads them: flags, mode, lengths. */
static void check_constants(struct pk_run *r)
{
    for (int a = 0; a < PK_ALG_COUNT; a++) {
        const EVP_CIPHER *t = r->test[a], *f = r->ref[a];
        char cas[64];
        snprintf(cas, sizeof(cas), "constants %s", pk_alg_labels[a]);
        if (EVP_CIPHER_get_flags(t) != EVP_CIPHER_get_flags(f) || EVP_CIPHER_get_mode(t) != EVP_CIPHER_get_mode(f) ||
            EVP_CIPHER_get_key_length(t) != EVP_CIPHER_get_key_length(f) ||
            EVP_CIPHER_get_iv_length(t) != EVP_CIPHER_get_iv_length(f) ||
            EVP_CIPHER_get_block_size(t) != EVP_CIPHER_get_block_size(f) ||
            EVP_CIPHER_get_nid(t) != EVP_CIPHER_get_nid(f))
            pk_fail(r, cas, "flags %#lx mode %d key %d iv %d block %d nid %d; the default provider's: flags %#lx "
                            "mode %d key %d iv %d block %d nid %d",
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
                snprintf(cas, sizeof(cas), "tls1.2 %s %s fixed IV of length %d", pk_alg_labels[a],
                         enc ? "encrypt" : "decrypt", lens[k]);
                if ((rc[0] > 0) != (rc[1] > 0))
                    pk_fail(r, cas, "EVP_CTRL_GCM_SET_IV_FIXED gave %d, the default provider %d", rc[0], rc[1]);
            }
}

static void final_checks(struct pk_run *r, const struct pk_counters *c)
{
    pk_fail_print_all();
    if ((r->o.expect_device || r->o.expect_fallback) && !r->counters) {
        pk_fail(r, "counters", "provider %s has no synth-ops parameter", r->o.provider);
        return;
    }
    if (r->o.expect_device) {
        const char *dev = pk_device_name(r);
        if (!c->v[C_OPS])
            pk_fail(r, "counters", "synth-ops is 0: the device did nothing");
        else if (c->v[C_OPS] < r->dev_served)
            pk_fail(r, "counters", "synth-ops = %" PRIu64 " but %lu operations were the device's to do", c->v[C_OPS],
                    r->dev_served);
        if (!dev[0])
            pk_fail(r, "counters", "synth-device is empty: no device in use");
        for (int i = C_NO_DEVICE; i < C_COUNT; i++)
            if (i != C_UNSUPPORTED && c->v[i])
                pk_fail(r, "counters", "%s = %" PRIu64 ", expected 0", pk_counter_names[i], c->v[i]);
    }
    if (r->o.expect_fallback) {
        if (c->v[C_OPS])
            pk_fail(r, "counters", "synth-ops = %" PRIu64 " with no device, expected 0", c->v[C_OPS]);
        if (!c->v[C_NO_DEVICE])
            pk_fail(r, "counters", "synth-fallback-no-device is 0: nothing fell back for want of a device");
    }
}

static void summary(struct pk_run *r, const struct pk_counters *c)
{
    const char *dev = pk_device_name(r);
    int pass = r->failures == 0;

    if (r->o.json) {
        printf("{\"event\": \"summary\", \"result\": \"%s\", \"provider\": ", pass ? "pass" : "fail");
        pk_json_str(stdout, r->o.provider);
        printf(", \"device\": ");
        pk_json_str(stdout, dev);
        printf(", \"seed\": %" PRIu64 ", \"iterations\": %lu, \"kat\": {\"cases\": %lu, \"failures\": %lu}, "
               "\"differential\": {\"ops\": %lu, \"failures\": %lu}, \"threads\": %u, \"device_ops\": %lu, "
               "\"device_served\": %lu, \"device_rejects\": %lu, \"other_ops\": %lu, \"other_fallbacks\": %" PRIu64 ", "
               "\"failures\": %lu, \"counters\": {",
               r->o.seed, r->o.iterations, r->kat_cases, r->kat_failures, r->diff_ops, r->diff_failures,
               r->o.threads ? r->o.threads : 1, r->dev_ops, r->dev_served, r->dev_rejects, r->other_ops,
               r->other_fallbacks, r->failures);
        for (int i = 0, first = 1; i < C_COUNT; i++)
            if (c->have & 1u << i) {
                printf("%s\"%s\": %" PRIu64, first ? "" : ", ", pk_counter_names[i], c->v[i]);
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
                printf(" %s %" PRIu64 "%s", pk_counter_names[i], c->v[i], i + 1 < C_COUNT ? "," : "");
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
                while (k < PK_ALG_COUNT && strcasecmp(tok, pk_alg_labels[k]))
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
        if (pk_kat_builtin(&r) < 0)
            goto cleanup;
        for (unsigned i = 0; i < r.o.nrsp; i++)
            if (pk_kat_rsp(&r, r.o.rsp[i]) < 0)
                goto cleanup;
    }
    if (!r.o.no_diff && pk_differential(&r) < 0)
        goto cleanup;
    pk_counters_read(&r, &c);
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
