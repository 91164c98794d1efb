/* SPDX-License-Identifier: Apache-2.0 */
/*
 * provider-kat: known answers, from provider_vectors.h and from NIST CAVP GCM files (--rsp).
 * Encrypt gives the exact ciphertext and tag; decrypt gives the plaintext, or fails at final for
 * a wrong tag, with the tag set before the data (as TLS 1.3 does), after the AAD, and after the
 * data; in place or not; nothing is written outside the output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "provider_kat.h"
#include "provider_vectors.h"
#include "kat_hex.h"

struct pk_kat {
    const char *name;
    enum pk_alg alg;
    uint8_t key[32], iv[12], aad[1024], tag[TAG];
    uint8_t *pt, *ct;
    size_t aad_len, len, tag_len;
    int fail;
};

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
    snprintf(cas, sizeof(cas), "%s %s %s%s", k->name, pk_alg_labels[k->alg],
             enc ? "encrypt" : pk_tag_at_names[at], in_place ? " in-place" : "");
    if (r->o.verbose)
        fprintf(stderr, "kat: %s\n", cas);
    r->kat_cases++;
    pk_arena_expect(r->a_test, 0xa5, &m, in, NULL);
    pk_counters_read(r, &before);
    pk_run_msg(&ctx, r->test[k->alg], &m, r->a_test, &t);
    pk_check_op(r, cas, k->alg, pk_device_shaped(&m), !enc && k->fail, &before);
    pk_describe_trace(why, sizeof(why), &t);
    if (!enc && k->fail) {
        if (t.ok)
            pk_fail(r, cas, "a wrong tag was accepted (%s)", why);
        else if (t.n == 0 || t.s[t.n - 1].what != 'F')
            pk_fail(r, cas, "failed before final, not at it (%s)", why);
        /* the plaintext it gave is not checked: the arena around it must be untouched */
        memcpy(expect, r->a_test, ARENA);
        memset(expect, 0xa5, m.out_off);
        memcpy(expect + m.in_off, in, m.len);
        memset(expect + m.out_off + m.len, 0xa5, ARENA - m.out_off - m.len);
        if (!in_place && memcmp(expect, r->a_test, ARENA))
            pk_fail(r, cas, "wrote outside its output buffer");
    } else if (!t.ok) {
        pk_fail(r, cas, "failed (%s)", why);
    } else {
        pk_arena_expect(expect, 0xa5, &m, in, want);
        if (t.out_len != k->len) {
            pk_fail(r, cas, "gave %zu bytes, expected %zu (%s)", t.out_len, k->len, why);
        } else if (memcmp(expect + m.out_off, r->a_test + m.out_off, k->len)) {
            pk_describe_diff(why, sizeof(why), want, r->a_test + m.out_off, k->len);
            pk_fail(r, cas, "%s %s", enc ? "ciphertext" : "plaintext", why);
        } else if (memcmp(expect, r->a_test, ARENA)) {
            pk_fail(r, cas, "wrote outside its output buffer, or into its input");
        } else if (enc && memcmp(t.tag, k->tag, k->tag_len)) {
            pk_describe_diff(why, sizeof(why), k->tag, t.tag, k->tag_len);
            pk_fail(r, cas, "tag %s", why);
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

int pk_kat_builtin(struct pk_run *r)
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
        kat_unhex(v->key, k.key, sizeof(k.key));
        kat_unhex(v->iv, k.iv, sizeof(k.iv));
        k.aad_len = kat_unhex(v->aad, k.aad, sizeof(k.aad));
        k.len = kat_unhex(v->pt, k.pt, n);
        kat_unhex(v->ct, k.ct, n);
        k.tag_len = kat_unhex(v->tag, k.tag, sizeof(k.tag));
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
int pk_kat_rsp(struct pk_run *r, const char *path)
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
                kat_unhex(key, k.key, sizeof(k.key));
                kat_unhex(iv, k.iv, sizeof(k.iv));
                k.aad_len = kat_unhex(aad ? aad : "", k.aad, sizeof(k.aad));
                k.len = n;
                kat_unhex(pt ? pt : "", k.pt, n);
                kat_unhex(ct ? ct : "", k.ct, n);
                k.tag_len = kat_unhex(tag, k.tag, sizeof(k.tag));
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
