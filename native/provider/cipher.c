/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider's cipher contexts: the calls libcrypto makes for an AEAD cipher (init, AAD as
 * update(NULL), update, final, the tag and IV parameters) and libssl's TLS 1.2 GCM record path
 * (tlsaad, tlsivfixed, tlsivgen, tlsivinv, then one update over the whole record).
 *
 * A message goes to the device in one operation, at its first data update: encrypt always,
 * decrypt when the tag is already known (TLS 1.3 and most AEAD users set it first). What the
 * device cannot do goes to the default provider, with results identical to it:
 *   - decrypt without the tag before the data (the plaintext must come out before the tag
 *     is known), an IV that is not 12 bytes, a tag length the device does not serve, TLS 1.2
 *     ChaCha20-Poly1305 records;
 *   - a second data update in one message: encrypt takes the first part back from the arena
 *     buffer it kept (sp_hold) and goes on in software; decrypt, whose device operation checked
 *     the tag over the first part only, has already gone to software when that check failed;
 *   - any device failure (sp_dev_aead's reasons).
 * A decrypt that fails on the device is done again in software, so that its plaintext comes out
 * of update and the failure out of final, as with the default provider.
 */
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/proverr.h>
#include <openssl/rand.h>

#include "prov.h"

#define IV_MAX 128
#define TLS_AAD_LEN 13
#define TLS_EXPLICIT_IV 8
#define TLS_FIXED_IV 4
#define TAG_LEN 16

enum sp_state { ST_FRESH, ST_DONE, ST_SW };

struct sp_ctx {
    struct sp_prov *p;
    enum sp_alg_id alg;
    int enc;
    int key_set;
    uint8_t key[32];
    size_t ivlen;
    int iv_set;
    uint8_t iv[IV_MAX];
    uint8_t *aad;
    size_t aad_len, aad_cap;
    uint8_t tag[TAG_LEN];
    size_t tag_len;
    int tag_set;
    enum sp_state st;
    int sw_only;          /* the whole context runs in the default provider */
    EVP_CIPHER_CTX *sw;
    int sw_keyed;         /* sw holds this key, for this direction (keying costs more than a small op) */
    struct sp_sess sess;
    struct sp_hold hold;
    uint8_t tls_aad[TLS_AAD_LEN];
    int tls_aad_set;
    int iv_gen;           /* TLS 1.2: fixed IV set, invocation field counting */
};

/* ---- the software side ---- */

static EVP_CIPHER_CTX *sw_ctx(struct sp_ctx *c)
{
    EVP_CIPHER *cipher = sp_sw_cipher(c->p, c->alg);
    if (!cipher)
        return NULL;
    if (!c->sw && !(c->sw = EVP_CIPHER_CTX_new()))
        return NULL;
    if (EVP_CIPHER_CTX_get0_cipher(c->sw) != cipher && !EVP_CipherInit_ex2(c->sw, cipher, NULL, NULL, c->enc, NULL))
        return NULL;
    return c->sw;
}

static int sw_set_ivlen(EVP_CIPHER_CTX *sw, size_t ivlen)
{
    OSSL_PARAM p[] = {OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, &ivlen), OSSL_PARAM_END};
    return EVP_CIPHER_CTX_set_params(sw, p);
}

/* A new message in the software context: keyed once, then only the IV each time. */
static EVP_CIPHER_CTX *sw_message(struct sp_ctx *c)
{
    EVP_CIPHER_CTX *sw = sw_ctx(c);

    if (!sw)
        return NULL;
    if (!c->sw_keyed) {
        if (!EVP_CipherInit_ex2(sw, NULL, NULL, NULL, c->enc, NULL) || (c->ivlen != 12 && !sw_set_ivlen(sw, c->ivlen)))
            return NULL;
        if (!EVP_CipherInit_ex2(sw, NULL, c->key_set ? c->key : NULL, c->iv_set ? c->iv : NULL, c->enc, NULL))
            return NULL;
        c->sw_keyed = c->key_set;
    } else if (!EVP_CipherInit_ex2(sw, NULL, NULL, c->iv_set ? c->iv : NULL, c->enc, NULL)) {
        return NULL;
    }
    return sw;
}

/* The message so far (key, IV, AAD, and for decrypt the tag) into the software context. */
static int sw_begin(struct sp_ctx *c)
{
    EVP_CIPHER_CTX *sw = sw_message(c);
    int l;

    if (!sw)
        return 0;
    if (c->aad_len && !EVP_CipherUpdate(sw, NULL, &l, c->aad, (int)c->aad_len))
        return 0;
    if (!c->enc && c->tag_set && !EVP_CIPHER_CTX_ctrl(sw, EVP_CTRL_AEAD_SET_TAG, (int)c->tag_len, c->tag))
        return 0;
    c->st = ST_SW;
    return 1;
}

/* From now on the whole context runs in software (what the device never serves). */
static int to_sw_only(struct sp_ctx *c)
{
    if (c->sw_only)
        return 1;
    if (!sw_begin(c))
        return 0;
    c->sw_only = 1;
    return 1;
}

static int sw_update(struct sp_ctx *c, uint8_t *out, size_t *outl, const uint8_t *in, size_t inl)
{
    int l = 0;
    if (inl > INT32_MAX || !EVP_CipherUpdate(c->sw, out, &l, in, (int)inl))
        return 0;
    *outl = (size_t)l;
    return 1;
}

/* ---- init, free, dup ---- */

static void *newctx(void *provctx, enum sp_alg_id alg)
{
    struct sp_ctx *c = OPENSSL_zalloc(sizeof(*c));
    if (!c)
        return NULL;
    c->p = provctx;
    c->alg = alg;
    c->ivlen = 12;
    return c;
}

static void freectx(void *vctx)
{
    struct sp_ctx *c = vctx;
    if (!c)
        return;
    sp_hold_release(c->p, &c->hold);
    sp_dev_sess_drop(c->p, &c->sess);
    EVP_CIPHER_CTX_free(c->sw);
    OPENSSL_clear_free(c->aad, c->aad_cap);
    OPENSSL_clear_free(c, sizeof(*c));
}

static void *dupctx(void *vctx)
{
    struct sp_ctx *c = vctx, *d = OPENSSL_memdup(c, sizeof(*c));
    if (!d)
        return NULL;
    d->sess.live = 0;
    d->hold.live = 0;
    d->aad = NULL;
    d->sw = NULL;
    if (c->aad_cap && !(d->aad = OPENSSL_memdup(c->aad, c->aad_cap)))
        goto fail;
    if (c->sw && (!(d->sw = EVP_CIPHER_CTX_new()) || !EVP_CIPHER_CTX_copy(d->sw, c->sw)))
        goto fail;
    if (c->hold.live && c->st == ST_DONE) /* the copy cannot share the kept input */
        d->st = ST_FRESH;
    return d;
fail:
    freectx(d);
    return NULL;
}

static int set_ctx_params(void *vctx, const OSSL_PARAM params[]);

static int init(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv, size_t ivlen,
                const OSSL_PARAM params[], int enc)
{
    struct sp_ctx *c = vctx;

    sp_hold_release(c->p, &c->hold);
    if (c->enc != enc) {
        sp_dev_sess_drop(c->p, &c->sess);
        c->sw_keyed = 0;
    }
    c->enc = enc;
    c->st = ST_FRESH;
    c->aad_len = 0;
    c->tag_set = 0;
    c->tls_aad_set = 0;
    if (iv) {
        if (ivlen == 0 || ivlen > IV_MAX) {
            ERR_raise(ERR_LIB_PROV, PROV_R_INVALID_IV_LENGTH);
            return 0;
        }
        c->ivlen = ivlen;
        memcpy(c->iv, iv, ivlen);
        c->iv_set = 1;
    }
    if (key) {
        if (keylen != sp_algs[c->alg].keylen) {
            ERR_raise(ERR_LIB_PROV, PROV_R_INVALID_KEY_LENGTH);
            return 0;
        }
        if (!c->key_set || memcmp(c->key, key, keylen)) {
            sp_dev_sess_drop(c->p, &c->sess);
            c->sw_keyed = 0;
        }
        memcpy(c->key, key, keylen);
        c->key_set = 1;
        c->iv_gen = 0;
    }
    if (c->sw_only && !EVP_CipherInit_ex2(c->sw, NULL, key, iv, enc, NULL))
        return 0;
    return set_ctx_params(c, params);
}

static int einit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv, size_t ivlen,
                 const OSSL_PARAM params[])
{
    return init(vctx, key, keylen, iv, ivlen, params, 1);
}

static int dinit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv, size_t ivlen,
                 const OSSL_PARAM params[])
{
    return init(vctx, key, keylen, iv, ivlen, params, 0);
}

/* ---- one message on the device ---- */

static int tag_len_served(const struct sp_ctx *c, size_t len)
{
    if (c->alg == SP_CHACHA20_POLY1305)
        return len == 16;
    return (len >= 12 && len <= 16) || len == 8 || len == 4;
}

/* Device operation, or (reason) software: 1 done, 0 failed (the application's error). */
static int message(struct sp_ctx *c, uint8_t *out, const uint8_t *in, size_t len, const uint8_t *aad,
                   size_t aad_len, uint8_t *tag, size_t tag_len, struct sp_hold *hold, int *auth_failed)
{
    struct sp_op op = {
        .alg = c->alg, .enc = c->enc, .key = c->key, .iv = c->iv, .aad = aad, .aad_len = aad_len,
        .in = in, .out = out, .len = len, .tag = tag, .tag_len = tag_len, .sess = &c->sess, .hold = hold,
    };
    int rc = sp_dev_aead(c->p, &op);

    *auth_failed = rc == SP_AUTH_FAILED;
    if (rc >= 0)
        return 1;
    sp_fallback(c->p, (enum sp_reason)(-rc - 1));
    return 0;
}

static int aad_add(struct sp_ctx *c, const uint8_t *aad, size_t len)
{
    if (!len)
        return 1;
    if (c->aad_len + len > c->aad_cap) {
        size_t cap = c->aad_cap ? c->aad_cap : 64;
        uint8_t *n;
        while (cap < c->aad_len + len)
            cap *= 2;
        n = OPENSSL_clear_realloc(c->aad, c->aad_cap, cap);
        if (!n)
            return 0;
        c->aad = n;
        c->aad_cap = cap;
    }
    memcpy(c->aad + c->aad_len, aad, len);
    c->aad_len += len;
    return 1;
}

/* A second data update in an encrypted message: the device's output for the first part is still
 * in the arena; its plaintext is that output run through the keystream again (both algorithms
 * encrypt as a stream cipher), and goes into software to continue from there. */
static int resume_in_software(struct sp_ctx *c)
{
    const uint8_t *held = sp_hold_data(c->p, &c->hold);
    size_t n = c->hold.len, l;
    uint8_t *first = held ? OPENSSL_malloc(n ? n : 1) : NULL, *scratch = NULL;
    EVP_CIPHER_CTX *ks = NULL;
    int ok = 0, il;

    if (!first)
        goto done;
    memcpy(first, held, n);
    if (!sp_hold_data(c->p, &c->hold)) /* reset while we copied */
        goto done;
    sp_fallback(c->p, SP_R_UNSUPPORTED);
    ks = EVP_CIPHER_CTX_new();
    scratch = OPENSSL_malloc(n ? n : 1);
    ok = ks && scratch && EVP_CipherInit_ex2(ks, sp_sw_cipher(c->p, c->alg), c->key, c->iv, 0, NULL) &&
         EVP_CipherUpdate(ks, first, &il, first, (int)n) && sw_begin(c) && sw_update(c, scratch, &l, first, n);
done:
    sp_hold_release(c->p, &c->hold);
    EVP_CIPHER_CTX_free(ks);
    OPENSSL_clear_free(first, n);
    OPENSSL_free(scratch);
    return ok;
}

static int data(struct sp_ctx *c, uint8_t *out, size_t *outl, const uint8_t *in, size_t inl)
{
    int auth_failed;

    if (c->st == ST_DONE) {
        if (!c->enc || !resume_in_software(c))
            return 0; /* decrypt: the tag already matched a shorter message */
    }
    if (c->st == ST_FRESH) {
        if (!c->key_set || !c->iv_set)
            return 0;
        if ((c->enc || (c->tag_set && tag_len_served(c, c->tag_len))) && c->ivlen == 12) {
            if (message(c, out, in, inl, c->aad, c->aad_len, c->tag, c->enc ? TAG_LEN : c->tag_len, &c->hold,
                        &auth_failed) &&
                !auth_failed) {
                c->st = ST_DONE;
                *outl = inl;
                return 1;
            }
        } else {
            sp_fallback(c->p, SP_R_UNSUPPORTED);
        }
        if (!sw_begin(c))
            return 0;
    }
    return sw_update(c, out, outl, in, inl);
}

/* ---- TLS 1.2 GCM records: explicit IV || payload || tag, in place ---- */

static void ctr64_inc(uint8_t *p)
{
    for (int i = 7; i >= 0 && ++p[i] == 0; i--)
        ;
}

static int sw_oneshot(struct sp_ctx *c, uint8_t *out, const uint8_t *in, size_t len, uint8_t *tag)
{
    EVP_CIPHER_CTX *sw = sw_message(c);
    int l;

    if (!sw || !EVP_CipherUpdate(sw, NULL, &l, c->tls_aad, TLS_AAD_LEN) ||
        (len && !EVP_CipherUpdate(sw, out, &l, in, (int)len)) ||
        (!c->enc && !EVP_CIPHER_CTX_ctrl(sw, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag)) ||
        !EVP_CipherFinal_ex(sw, out + len, &l))
        return 0;
    return !c->enc || EVP_CIPHER_CTX_ctrl(sw, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag);
}

static int tls_record(struct sp_ctx *c, uint8_t *out, size_t *outl, const uint8_t *in, size_t len)
{
    size_t plen;
    uint8_t *tag;
    int ok, auth_failed = 0;

    c->tls_aad_set = 0;
    if (out != in || len < TLS_EXPLICIT_IV + TAG_LEN || !c->iv_gen || !c->key_set || len > INT32_MAX)
        return 0;
    plen = len - TLS_EXPLICIT_IV - TAG_LEN;
    if (c->enc) {
        memcpy(out, c->iv + TLS_FIXED_IV, TLS_EXPLICIT_IV);
    } else {
        memcpy(c->iv + TLS_FIXED_IV, in, TLS_EXPLICIT_IV);
    }
    tag = out + TLS_EXPLICIT_IV + plen;
    ok = message(c, out + TLS_EXPLICIT_IV, in + TLS_EXPLICIT_IV, plen, c->tls_aad, TLS_AAD_LEN, tag, TAG_LEN,
                 NULL, &auth_failed);
    if (!ok)
        ok = sw_oneshot(c, out + TLS_EXPLICIT_IV, in + TLS_EXPLICIT_IV, plen, tag);
    else if (auth_failed)
        ok = 0;
    if (c->enc)
        ctr64_inc(c->iv + TLS_FIXED_IV);
    if (!ok) {
        OPENSSL_cleanse(out, len);
        return 0;
    }
    *outl = c->enc ? len : plen;
    return 1;
}

/* ---- update, final, cipher ---- */

static int update(void *vctx, unsigned char *out, size_t *outl, size_t outsize, const unsigned char *in,
                  size_t inl)
{
    struct sp_ctx *c = vctx;

    *outl = 0;
    if (c->sw_only)
        return sw_update(c, out, outl, in, inl);
    if (c->tls_aad_set)
        return outsize >= inl && tls_record(c, out, outl, in, inl);
    if (!in && inl) /* nothing to read */
        return 0;
    if (!out) { /* AAD */
        if (c->st == ST_SW)
            return sw_update(c, NULL, outl, in, inl);
        if (c->st == ST_DONE || !aad_add(c, in, inl))
            return 0;
        *outl = inl;
        return 1;
    }
    if (outsize < inl) {
        ERR_raise(ERR_LIB_PROV, PROV_R_OUTPUT_BUFFER_TOO_SMALL);
        return 0;
    }
    return inl ? data(c, out, outl, in, inl) : 1;
}

static int final(void *vctx, unsigned char *out, size_t *outl, size_t outsize)
{
    struct sp_ctx *c = vctx;
    int l = 0;
    (void)outsize;

    *outl = 0;
    if (c->sw_only)
        return EVP_CipherFinal_ex(c->sw, out, &l);
    if (c->st == ST_FRESH) { /* no data: the AAD alone */
        static const uint8_t none[1];
        size_t ignored;
        if (!c->enc && !c->tag_set)
            return 0;
        if (!data(c, (uint8_t *)none, &ignored, none, 0))
            return 0;
    }
    if (c->st == ST_DONE) {
        sp_hold_release(c->p, &c->hold);
        return 1;
    }
    if (!EVP_CipherFinal_ex(c->sw, out, &l))
        return 0;
    *outl = (size_t)l;
    return !c->enc || EVP_CIPHER_CTX_ctrl(c->sw, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, c->tag);
}

/* EVP_Cipher: in == NULL is final, out == NULL AAD; it reports every byte it was given as done
 * (a TLS 1.2 decrypt too: EVP_CipherUpdate is what reports the payload), as the default provider. */
static int cipher(void *vctx, unsigned char *out, size_t *outl, size_t outsize, const unsigned char *in, size_t inl)
{
    struct sp_ctx *c = vctx;

    if (c->sw_only) { /* the default provider's own EVP_Cipher, whose count differs by algorithm */
        int n = inl > INT32_MAX ? -1 : EVP_Cipher(c->sw, out, in, (unsigned int)inl);
        if (n < 0)
            return 0;
        *outl = (size_t)n;
        return 1;
    }
    if (!in)
        return final(vctx, out, outl, outsize);
    if (!update(vctx, out, outl, outsize, in, inl))
        return 0;
    *outl = inl;
    return 1;
}

/* ---- parameters ---- */

static int get_params(OSSL_PARAM params[], enum sp_alg_id alg)
{
    const struct sp_alg *a = &sp_algs[alg];
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_MODE)) && !OSSL_PARAM_set_uint(p, a->mode))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) && !OSSL_PARAM_set_size_t(p, a->keylen))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) && !OSSL_PARAM_set_size_t(p, 12))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_BLOCK_SIZE)) && !OSSL_PARAM_set_size_t(p, 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD)) && !OSSL_PARAM_set_int(p, 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_CUSTOM_IV)) && !OSSL_PARAM_set_int(p, 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_CTS)) && !OSSL_PARAM_set_int(p, 0))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK)) && !OSSL_PARAM_set_int(p, 0))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_HAS_RAND_KEY)) && !OSSL_PARAM_set_int(p, 0))
        return 0;
    return 1;
}

static const OSSL_PARAM *gettable_params(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_uint(OSSL_CIPHER_PARAM_MODE, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_BLOCK_SIZE, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_AEAD, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_CUSTOM_IV, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_CTS, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_HAS_RAND_KEY, NULL),
        OSSL_PARAM_END,
    };
    (void)provctx;
    return t;
}

static const OSSL_PARAM *gettable_ctx_params(void *cctx, void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TAGLEN, NULL),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_IV, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_UPDATED_IV, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD, NULL),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_GET_IV_GEN, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)cctx;
    (void)provctx;
    return t;
}

static const OSSL_PARAM *settable_ctx_params(void *cctx, void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)cctx;
    (void)provctx;
    return t;
}

/* One pass over the caller's parameters (libcrypto asks for one or two per call, every operation). */
static int get_one(struct sp_ctx *c, OSSL_PARAM *p)
{
    const char *k = p->key;

    if (!strcmp(k, OSSL_CIPHER_PARAM_IVLEN))
        return OSSL_PARAM_set_size_t(p, c->ivlen);
    if (!strcmp(k, OSSL_CIPHER_PARAM_KEYLEN))
        return OSSL_PARAM_set_size_t(p, sp_algs[c->alg].keylen);
    if (!strcmp(k, OSSL_CIPHER_PARAM_AEAD_TAG)) {
        if (!c->enc || p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size == 0 || p->data_size > TAG_LEN)
            return 0;
        memcpy(p->data, c->tag, p->data_size);
        p->return_size = p->data_size;
        return 1;
    }
    if (!strcmp(k, OSSL_CIPHER_PARAM_AEAD_TAGLEN))
        return OSSL_PARAM_set_size_t(p, c->tag_set ? c->tag_len : TAG_LEN);
    if (!strcmp(k, OSSL_CIPHER_PARAM_IV) || !strcmp(k, OSSL_CIPHER_PARAM_UPDATED_IV))
        return c->iv_set && p->data_size >= c->ivlen && OSSL_PARAM_set_octet_string(p, c->iv, c->ivlen);
    if (!strcmp(k, OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD))
        return OSSL_PARAM_set_size_t(p, TAG_LEN);
    if (!strcmp(k, OSSL_CIPHER_PARAM_AEAD_TLS1_GET_IV_GEN)) {
        size_t n = p->data_size;
        if (!c->iv_gen || !c->key_set || p->data_type != OSSL_PARAM_OCTET_STRING || n == 0 || n > 12)
            return 0;
        memcpy(p->data, c->iv + 12 - n, n);
        p->return_size = n;
        ctr64_inc(c->iv + TLS_FIXED_IV);
        return 1;
    }
    return 1; /* not ours: left alone, as the default provider does */
}

static int get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    struct sp_ctx *c = vctx;

    if (c->sw_only)
        return EVP_CIPHER_CTX_get_params(c->sw, params);
    for (OSSL_PARAM *p = params; p && p->key; p++)
        if (!get_one(c, p))
            return 0;
    return 1;
}

/* TLS 1.2 AAD: the record length in it becomes the payload's; returns 0 if too short. */
static int tls_aad(struct sp_ctx *c, const OSSL_PARAM *p)
{
    size_t len;

    if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != TLS_AAD_LEN)
        return 0;
    memcpy(c->tls_aad, p->data, TLS_AAD_LEN);
    len = (size_t)c->tls_aad[11] << 8 | c->tls_aad[12];
    if (len < TLS_EXPLICIT_IV + (c->enc ? 0 : TAG_LEN))
        return 0;
    len -= TLS_EXPLICIT_IV + (c->enc ? 0 : TAG_LEN);
    c->tls_aad[11] = (uint8_t)(len >> 8);
    c->tls_aad[12] = (uint8_t)len;
    c->tls_aad_set = 1;
    return 1;
}

/* The fixed part of a TLS 1.2 GCM IV (4 bytes; the 8 after it count records), or the whole IV
 * (length -1, as EVP_CTRL_GCM_SET_IV_FIXED takes it). */
static int tls_iv_fixed(struct sp_ctx *c, const OSSL_PARAM *p)
{
    if (p->data_type != OSSL_PARAM_OCTET_STRING)
        return 0;
    if (p->data_size == (size_t)-1) {
        memcpy(c->iv, p->data, 12);
    } else if (p->data_size == TLS_FIXED_IV) {
        memcpy(c->iv, p->data, TLS_FIXED_IV);
        if (c->enc && RAND_bytes(c->iv + TLS_FIXED_IV, 12 - TLS_FIXED_IV) <= 0)
            return 0;
    } else {
        return 0;
    }
    c->ivlen = 12;
    c->iv_set = 1;
    c->iv_gen = 1;
    return 1;
}

/* What the device never serves: from now on the default provider does the whole context. */
static int delegate(struct sp_ctx *c, const OSSL_PARAM params[])
{
    sp_fallback(c->p, SP_R_UNSUPPORTED);
    return to_sw_only(c) && EVP_CIPHER_CTX_set_params(c->sw, params);
}

static int set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    struct sp_ctx *c = vctx;
    size_t v;

    if (!params)
        return 1;
    if (c->sw_only)
        return EVP_CIPHER_CTX_set_params(c->sw, params);
    for (const OSSL_PARAM *p = params; p->key; p++) {
        const char *k = p->key;
        if (!strcmp(k, OSSL_CIPHER_PARAM_AEAD_TAG)) {
            if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size == 0 || p->data_size > TAG_LEN ||
                c->enc || !p->data)
                return 0;
            memcpy(c->tag, p->data, p->data_size);
            c->tag_len = p->data_size;
            c->tag_set = 1;
            if (c->st == ST_SW && !EVP_CIPHER_CTX_ctrl(c->sw, EVP_CTRL_AEAD_SET_TAG, (int)c->tag_len, c->tag))
                return 0;
        } else if (!strcmp(k, OSSL_CIPHER_PARAM_IVLEN)) {
            if (!OSSL_PARAM_get_size_t(p, &v) || v == 0 || v > (c->alg == SP_CHACHA20_POLY1305 ? 12 : IV_MAX))
                return 0;
            if (v != 12) {
                c->ivlen = v;
                c->iv_set = 0;
                return delegate(c, params);
            }
        } else if (!strcmp(k, OSSL_CIPHER_PARAM_KEYLEN)) {
            if (!OSSL_PARAM_get_size_t(p, &v) || v != sp_algs[c->alg].keylen)
                return 0;
        } else if (!strncmp(k, "tls", 3) && c->alg == SP_CHACHA20_POLY1305) {
            return delegate(c, params); /* TLS 1.2 ChaCha20-Poly1305 records */
        } else if (!strcmp(k, OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED)) {
            if (!tls_iv_fixed(c, p))
                return 0;
        } else if (!strcmp(k, OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV)) {
            if (p->data_type != OSSL_PARAM_OCTET_STRING || !c->iv_gen || c->enc || p->data_size == 0 ||
                p->data_size > 12 - TLS_FIXED_IV)
                return 0;
            memcpy(c->iv + 12 - p->data_size, p->data, p->data_size);
        } else if (!strcmp(k, OSSL_CIPHER_PARAM_AEAD_TLS1_AAD)) {
            if (!tls_aad(c, p))
                return 0;
        }
    }
    return 1;
}

/* ---- the dispatch tables ---- */

#define ALG(id, fn)                                                                   \
    static void *fn##_newctx(void *provctx) { return newctx(provctx, id); }          \
    static int fn##_get_params(OSSL_PARAM params[]) { return get_params(params, id); }

ALG(SP_AES128_GCM, aes128gcm)
ALG(SP_AES256_GCM, aes256gcm)
ALG(SP_CHACHA20_POLY1305, chacha)

#define F(id, fn) {id, (void (*)(void))(fn)}
#define TABLE(fn)                                                                                   \
    {                                                                                               \
        F(OSSL_FUNC_CIPHER_NEWCTX, fn##_newctx), F(OSSL_FUNC_CIPHER_FREECTX, freectx),              \
            F(OSSL_FUNC_CIPHER_DUPCTX, dupctx), F(OSSL_FUNC_CIPHER_ENCRYPT_INIT, einit),            \
            F(OSSL_FUNC_CIPHER_DECRYPT_INIT, dinit), F(OSSL_FUNC_CIPHER_UPDATE, update),            \
            F(OSSL_FUNC_CIPHER_FINAL, final), F(OSSL_FUNC_CIPHER_CIPHER, cipher),                   \
            F(OSSL_FUNC_CIPHER_GET_PARAMS, fn##_get_params),                                        \
            F(OSSL_FUNC_CIPHER_GET_CTX_PARAMS, get_ctx_params),                                     \
            F(OSSL_FUNC_CIPHER_SET_CTX_PARAMS, set_ctx_params),                                     \
            F(OSSL_FUNC_CIPHER_GETTABLE_PARAMS, gettable_params),                                   \
            F(OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS, gettable_ctx_params),                           \
            F(OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS, settable_ctx_params), {0, NULL},                 \
    }

const OSSL_DISPATCH sp_cipher_functions[SP_ALG_COUNT][24] = {
    [SP_AES128_GCM] = TABLE(aes128gcm),
    [SP_AES256_GCM] = TABLE(aes256gcm),
    [SP_CHACHA20_POLY1305] = TABLE(chacha),
};
