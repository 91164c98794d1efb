/* SPDX-License-Identifier: Apache-2.0 */
/*
 * provider-kat: one AEAD message through EVP as applications and libssl make it (init whole or in
 * two, or reusing the context; AAD and data in pieces; the tag before the data, after the AAD or
 * after the data; by ctrl or by OSSL_PARAM; the context copied midway), each call recorded in a
 * trace; whether it has the shape a device serves; and what the provider's counters must show
 * around one operation. Also the reference: one shot by the default provider.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "provider_kat.h"

const char *const pk_alg_labels[PK_ALG_COUNT] = {"aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"};
const char *const pk_tag_at_names[TAG_AFTER_DATA + 1] = {"tag-first", "tag-after-aad", "tag-after-data"};

/* ---- the provider's counters ---- */

const char *const pk_counter_names[C_COUNT] = {
    "synth-ops", "synth-fallbacks", "synth-fallback-no-device", "synth-fallback-reset",
    "synth-fallback-ring-full", "synth-fallback-timeout", "synth-fallback-unsupported", "synth-fallback-busy",
};

int pk_counters_read(struct pk_run *r, struct pk_counters *c)
{
    OSSL_PARAM p[C_COUNT + 1];

    memset(c, 0, sizeof(*c));
    if (!r->counters)
        return 0;
    for (int i = 0; i < C_COUNT; i++)
        p[i] = OSSL_PARAM_construct_uint64(pk_counter_names[i], &c->v[i]);
    p[C_COUNT] = OSSL_PARAM_construct_end();
    if (!OSSL_PROVIDER_get_params(r->prov, p))
        return 0;
    for (int i = 0; i < C_COUNT; i++)
        if (OSSL_PARAM_modified(&p[i]))
            c->have |= 1u << i;
    return 1;
}

const char *pk_device_name(struct pk_run *r)
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
            n += snprintf(buf + n, size - (size_t)n, " (%s +%" PRIu64 ")", pk_counter_names[i] + 15,
                          a->v[i] - b->v[i]);
}

/*
 * What the counters must show after one operation of the provider under test: `device` says
 * whether it had the shape a device serves. Only the modes that ask for it check anything.
 */
void pk_check_op(struct pk_run *r, const char *cas, enum pk_alg alg, int device, int reject,
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
    if (!r->counters || r->threaded || !pk_counters_read(r, &a))
        return;
    for (int i = 0; i < C_COUNT; i++)
        d[i] = a.v[i] - b->v[i];
    if (!device)
        r->other_fallbacks += d[C_FALLBACKS];
    describe_delta(why, sizeof(why), b, &a);
    if (r->o.expect_device) {
        if (d[C_NO_DEVICE] || d[C_RESET] || d[C_RING_FULL] || d[C_TIMEOUT] || d[C_BUSY])
            pk_fail(r, cas, "a fallback with the device serving: %s", why);
        else if (device && (r->o.unserved & 1u << alg) && (d[C_OPS] || d[C_UNSUPPORTED] != 1 || d[C_FALLBACKS] != 1))
            pk_fail(r, cas, "%s is not served by the device, expected one unsupported fallback: %s",
                    pk_alg_labels[alg], why);
        else if (device && !(r->o.unserved & 1u << alg) && (d[C_OPS] != 1 || d[C_FALLBACKS]))
            pk_fail(r, cas, "a device operation not done by the device (expected synth-ops +1, no fallback): %s", why);
    } else if (r->o.expect_fallback) {
        if (d[C_OPS])
            pk_fail(r, cas, "synth-ops moved with no device: %s", why);
        else if (device && (d[C_NO_DEVICE] != 1 || d[C_FALLBACKS] != 1))
            pk_fail(r, cas, "expected one no-device fallback: %s", why);
    }
}

/* ---- one AEAD message through EVP ---- */

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

/* Has the message the shape a device serves (see the top of provider_kat.c)? */
int pk_device_shaped(const struct pk_msg *m)
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
void pk_run_msg(EVP_CIPHER_CTX **ctxp, EVP_CIPHER *cipher, const struct pk_msg *m, uint8_t *arena,
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

int pk_trace_equal(const struct pk_trace *a, const struct pk_trace *b)
{
    if (a->n != b->n)
        return 0;
    for (unsigned i = 0; i < a->n; i++)
        if (a->s[i].what != b->s[i].what || a->s[i].rc != b->s[i].rc || a->s[i].val != b->s[i].val)
            return 0;
    return 1;
}

void pk_describe_trace(char *buf, size_t size, const struct pk_trace *t)
{
    int n = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < t->n && n >= 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%c=%d/%ld", i ? " " : "", t->s[i].what, t->s[i].rc, t->s[i].val);
}

/* ---- the arena as it must be, the reference ---- */

/* The arena as it must be: the fill, the input at in_off, `out` (or nothing) at out_off. */
void pk_arena_expect(uint8_t *a, uint8_t fill, const struct pk_msg *m, const uint8_t *in, const uint8_t *out)
{
    memset(a, fill, ARENA);
    memcpy(a + m->in_off, in, m->len);
    if (out)
        memcpy(a + m->out_off, out, m->len);
}

/* The reference AEAD, one shot, by the default provider: ct and the full tag. */
int pk_ref_seal(struct pk_run *r, enum pk_alg alg, int enc, const uint8_t *key, const uint8_t *iv,
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
