/* SPDX-License-Identifier: Apache-2.0 */
/*
 * provider-kat: the differential run against the default provider. Each conversation, drawn from
 * the seed and its number, is either AEAD messages on one context pair (reused with a new IV or
 * key, or copied; some tampered with) or TLS 1.2 records (provider_kat_tls.c); every call's
 * result, the tag and the whole arena must be the default provider's. --threads N shares the
 * conversations among N threads, each with its own arenas and totals.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "provider_kat.h"

static const char *const init_names[] = {"", " split", " reuse", " rekey"};

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
    pk_hex(e, sizeof(e), exp + k, n);
    pk_hex(g, sizeof(g), got + k, n);
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

    pk_arena_expect(r->a_test, fillb, m, in, NULL);
    pk_arena_expect(r->a_ref, fillb, m, in, NULL);
    pk_counters_read(r, &before);
    pk_run_msg(&c->t, r->test[c->alg], m, r->a_test, &tt);
    pk_check_op(r, cas, c->alg, pk_device_shaped(m), !expect_ok, &before);
    pk_run_msg(&c->rf, r->ref[c->alg], m, r->a_ref, &tr);
    r->diff_ops++;
    pk_describe_trace(a, sizeof(a), &tt);
    pk_describe_trace(b, sizeof(b), &tr);
    if (tr.ok != expect_ok) {
        pk_fail(r, cas, "the default provider itself %s (%s): the test is wrong", tr.ok ? "succeeded" : "failed", b);
        ok = 0;
    } else if (!pk_trace_equal(&tt, &tr)) {
        pk_fail(r, cas, "calls differ: got %s, the default provider %s", a, b);
        ok = 0;
    } else if (memcmp(r->a_test, r->a_ref, ARENA)) {
        arena_diff(why, sizeof(why), m, r->a_ref, r->a_test);
        pk_fail(r, cas, "%s", why);
        ok = 0;
    } else if (m->enc && tt.ok && memcmp(tt.tag, tr.tag, m->tag_len)) {
        pk_describe_diff(why, sizeof(why), tr.tag, tt.tag, m->tag_len);
        pk_fail(r, cas, "tag %s", why);
        ok = 0;
    }
    return ok;
}

/* One message of a conversation: encrypt, decrypt, or decrypt something tampered with. */
static int diff_aead(struct pk_run *r, uint64_t *s, struct pk_conv *c, const char *iter)
{
    static __thread uint8_t pt[MAX_MSG], ct[MAX_MSG + TAG];
    uint8_t iv[12], aad[MAX_AAD], tag[TAG];
    struct pk_msg m = {.alg = c->alg};
    size_t roll = pk_below(s, 10);
    enum { ENC, DEC, TAMPER } kind = roll < 4 ? ENC : roll < 7 ? DEC : TAMPER;
    char cas[200];
    const char *what = "";
    int expect_ok = 1;

    m.enc = kind == ENC;
    if (!c->started) {
        pk_fill(s, c->key, sizeof(c->key));
        m.init = pk_chance(s, 30) ? INIT_SPLIT : INIT_FULL;
        c->started = 1;
    } else if (pk_chance(s, 25)) {
        pk_fill(s, c->key, sizeof(c->key));
        m.init = INIT_REUSE_KEY;
    } else {
        m.init = pk_chance(s, 15) ? INIT_REUSE_KEY : INIT_REUSE;
    }
    m.key = c->key;
    pk_fill(s, iv, sizeof(iv));
    m.iv = iv;
    m.len = pk_draw_len(s);
    m.aad_len = pk_draw_aad(s);
    pk_fill(s, aad, m.aad_len);
    m.aad = aad;
    m.n_aad = m.aad_len || pk_chance(s, 20) ? pk_cut(s, m.aad_len, m.aad_cut, 35) : 0;
    m.n_data = m.len || pk_chance(s, 50) ? pk_cut(s, m.len, m.data_cut, 15) : 0;
    m.tag_len = pk_draw_taglen(s, c->alg);
    m.tag_at = pk_chance(s, 50) ? TAG_AT_INIT : pk_chance(s, 40) ? TAG_AFTER_AAD : TAG_AFTER_DATA;
    m.by_params = pk_chance(s, 30);
    m.dup = pk_chance(s, 5);
    pk_place(s, &m);
    pk_fill(s, pt, m.len);
    if (!m.enc) {
        if (!pk_ref_seal(r, c->alg, 1, c->key, iv, aad, m.aad_len, pt, m.len, ct, tag, TAG)) {
            pk_fail(r, iter, "the default provider could not encrypt");
            return 0;
        }
        m.tag = tag;
        if (kind == TAMPER) {
            /* a short tag may still match a changed message: then only the tag itself is changed */
            unsigned how = m.tag_len < 8 ? 2 : (unsigned)pk_below(s, 3);
            expect_ok = 0;
            if (how == 0 && m.len) {
                ct[pk_below(s, m.len)] ^= (uint8_t)(1u << pk_below(s, 8));
                what = " ct-flipped";
            } else if (how == 1 && m.aad_len) {
                aad[pk_below(s, m.aad_len)] ^= (uint8_t)(1u << pk_below(s, 8));
                what = " aad-flipped";
            } else {
                tag[pk_below(s, m.tag_len)] ^= (uint8_t)(1u << pk_below(s, 8));
                what = " tag-flipped";
            }
        }
    }
    snprintf(cas, sizeof(cas), "%s %s %s len=%zu/%u aad=%zu/%u tag=%zu%s%s%s%s in=%zu out=%zu%s", iter,
             pk_alg_labels[c->alg], m.enc ? "encrypt" : pk_tag_at_names[m.tag_at], m.len, m.n_data, m.aad_len, m.n_aad,
             m.tag_len, what, m.by_params ? " params" : "", m.dup ? " dup" : "",
             init_names[m.init],
             m.in_off, m.out_off, m.in_off == m.out_off ? " in-place" : "");
    if (r->o.verbose)
        fprintf(stderr, "diff: %s\n", cas);
    return diff_msg(r, c, &m, m.enc ? pt : ct, cas, expect_ok);
}

static void diff_iteration(struct pk_run *r, unsigned long i)
{
    uint64_t s = r->o.seed ^ (0xd1b54a32d192ed03ull * (i + 1));
    struct pk_conv c = {.alg = (enum pk_alg)pk_below(&s, PK_ALG_COUNT)};
    char iter[64];
    unsigned long before = r->failures;

    pk_rnd(&s);
    snprintf(iter, sizeof(iter), "diff#%lu", i);
    if (pk_chance(&s, 10)) {
        if (c.alg == PK_CHACHA20_POLY1305)
            pk_diff_tls12_chacha(r, &s, iter);
        else
            pk_diff_tls12(r, &s, c.alg, iter);
    } else {
        unsigned n = 1 + (unsigned)pk_below(&s, 4);
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
int pk_differential(struct pk_run *r)
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
