/* SPDX-License-Identifier: Apache-2.0 */
/*
 * provider-kat: the differential's TLS 1.2 records, as libssl makes them: the 13-byte AAD through
 * EVP_CTRL_AEAD_TLS1_AAD and one EVP_Cipher in place, for GCM (the provider's own explicit IVs)
 * and for ChaCha20-Poly1305 (RFC 7905), compared with the default provider's, tampered with too.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "provider_kat.h"

#define TLS_HDR 13
#define TLS_EIV 8
#define TLS_FIXED 4

static const size_t key_lens[PK_ALG_COUNT] = {16, 32, 32};

/*
 * TLS 1.2 GCM records, as libssl sends them: a 4-byte fixed IV, then per record the 13-byte AAD
 * (parameter tlsaad) and one EVP_Cipher over explicit IV || payload || tag, in place. The
 * explicit IVs are the provider's own (random, then counting), so each record is checked against
 * the default provider's AEAD under the IV it carries, and both providers decrypt each other's.
 */
void pk_diff_tls12(struct pk_run *r, uint64_t *s, enum pk_alg alg, const char *iter)
{
    enum { NREC = 4 };
    static __thread uint8_t recs[2][NREC][TLS_EIV + 16384 + TAG], pt[NREC][16384];
    uint8_t key[32], fixed[TLS_FIXED], hdr[NREC][TLS_HDR], ref_ct[16384 + TAG], tag[TAG], iv[12];
    size_t plen[NREC];
    unsigned nrec = 1 + (unsigned)pk_below(s, NREC);
    EVP_CIPHER *ciph[2] = {r->test[alg], r->ref[alg]};
    char cas[200];

    pk_fill(s, key, key_lens[alg]);
    pk_fill(s, fixed, sizeof(fixed));
    for (unsigned i = 0; i < nrec; i++) {
        plen[i] = pk_chance(s, 80) ? pk_below(s, 2049) : pk_below(s, 16385);
        pk_fill(s, pt[i], plen[i]);
        pk_fill(s, hdr[i], 8); /* the sequence number */
        hdr[i][8] = 23;
        hdr[i][9] = 3;
        hdr[i][10] = 3;
    }
    for (int p = 0; p < 2; p++) { /* p: 0 the provider under test, 1 the default provider */
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int ok = ctx && EVP_CipherInit_ex(ctx, ciph[p], NULL, key, NULL, 1) &&
                 EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, TLS_FIXED, fixed) > 0;
        snprintf(cas, sizeof(cas), "%s %s tls1.2 encrypt (%s)", iter, pk_alg_labels[alg], p ? "default" : "tested");
        if (!ok)
            pk_fail(r, cas, "set up failed");
        for (unsigned i = 0; ok && i < nrec; i++) {
            size_t len = TLS_EIV + plen[i] + TAG;
            uint8_t h[TLS_HDR], *rec = recs[p][i];
            struct pk_counters before;
            int n, pad;

            snprintf(cas, sizeof(cas), "%s %s tls1.2 encrypt record %u len=%zu (%s)", iter, pk_alg_labels[alg], i,
                     plen[i], p ? "default" : "tested");
            memcpy(h, hdr[i], TLS_HDR);
            h[11] = (uint8_t)((TLS_EIV + plen[i]) >> 8);
            h[12] = (uint8_t)(TLS_EIV + plen[i]);
            memset(rec, 0xee, len);
            memcpy(rec + TLS_EIV, pt[i], plen[i]);
            pk_counters_read(r, &before);
            pad = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_TLS1_AAD, TLS_HDR, h);
            n = pad == TAG ? EVP_Cipher(ctx, rec, rec, (unsigned)len) : -2;
            if (!p)
                pk_check_op(r, cas, alg, 1, 0, &before);
            r->diff_ops++;
            if (pad != TAG || n != (int)len) {
                pk_fail(r, cas, "tlsaad gave %d (expected %u), EVP_Cipher %d (expected %zu)", pad, TAG, n, len);
                ok = 0;
                break;
            }
            if (i) { /* the invocation field counts up, big-endian */
                uint8_t next[TLS_EIV];
                memcpy(next, recs[p][i - 1], TLS_EIV);
                for (int j = TLS_EIV - 1; j >= 0 && ++next[j] == 0; j--)
                    ;
                if (memcmp(rec, next, TLS_EIV))
                    pk_fail(r, cas, "the explicit IV did not count up from the previous record's");
            }
            memcpy(iv, fixed, TLS_FIXED);
            memcpy(iv + TLS_FIXED, rec, TLS_EIV);
            h[11] = (uint8_t)(plen[i] >> 8);
            h[12] = (uint8_t)plen[i];
            if (!pk_ref_seal(r, alg, 1, key, iv, h, TLS_HDR, pt[i], plen[i], ref_ct, tag, TAG)) {
                pk_fail(r, cas, "the default provider could not encrypt");
                ok = 0;
            } else if (memcmp(rec + TLS_EIV, ref_ct, plen[i]) || memcmp(rec + TLS_EIV + plen[i], tag, TAG)) {
                char why[300];
                memcpy(ref_ct + plen[i], tag, TAG);
                pk_describe_diff(why, sizeof(why), ref_ct, rec + TLS_EIV, plen[i] + TAG);
                pk_fail(r, cas, "record is not the AEAD of its payload under its IV: %s", why);
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
            snprintf(cas, sizeof(cas), "%s %s tls1.2 decrypt", iter, pk_alg_labels[alg]);
            pk_fail(r, cas, "set up failed");
        }
        for (unsigned i = 0; ok && i < 2 * nrec; i++) {
            static __thread uint8_t rec[2][TLS_EIV + 16384 + TAG];
            unsigned ri = i / 2, bad = i % 2;
            size_t len = TLS_EIV + plen[ri] + TAG, flip = pk_below(s, len);
            uint8_t bit = (uint8_t)(1u << pk_below(s, 8)), h[TLS_HDR];
            int n[2], pad[2];

            snprintf(cas, sizeof(cas), "%s %s tls1.2 decrypt record %u len=%zu%s from the %s provider", iter,
                     pk_alg_labels[alg], ri, plen[ri], bad ? " tampered" : "", from ? "default" : "tested");
            memcpy(h, hdr[ri], TLS_HDR);
            h[11] = (uint8_t)(len >> 8);
            h[12] = (uint8_t)len;
            for (int p = 0; p < 2; p++) {
                struct pk_counters before;
                memcpy(rec[p], recs[from][ri], len);
                if (bad)
                    rec[p][flip] ^= bit;
                pk_counters_read(r, &before);
                pad[p] = EVP_CIPHER_CTX_ctrl(ctx[p], EVP_CTRL_AEAD_TLS1_AAD, TLS_HDR, h);
                n[p] = pad[p] > 0 ? EVP_Cipher(ctx[p], rec[p], rec[p], (unsigned)len) : -2;
                if (!p)
                    pk_check_op(r, cas, alg, 1, (int)bad, &before);
            }
            r->diff_ops++;
            if (pad[1] != TAG || (bad ? n[1] >= 0 : n[1] < 0) || (!bad && memcmp(rec[1] + TLS_EIV, pt[ri], plen[ri])))
                pk_fail(r, cas, "the default provider itself gave tlsaad %d, EVP_Cipher %d: the test is wrong", pad[1],
                        n[1]);
            else if (pad[0] != pad[1] || n[0] != n[1])
                pk_fail(r, cas, "tlsaad gave %d, EVP_Cipher %d; the default provider %d and %d", pad[0], n[0], pad[1],
                        n[1]);
            else if (!bad && memcmp(rec[0] + TLS_EIV, pt[ri], plen[ri]))
                pk_fail(r, cas, "payload differs from what was sent");
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
void pk_diff_tls12_chacha(struct pk_run *r, uint64_t *s, const char *iter)
{
    enum { NREC = 4 };
    static __thread uint8_t buf[2][16384 + TAG], sent[NREC][16384 + TAG], pt[NREC][16384];
    uint8_t key[32], fixed[12], hdr[TLS_HDR];
    unsigned nrec = 1 + (unsigned)pk_below(s, NREC);
    size_t plen[NREC];
    EVP_CIPHER *ciph[2] = {r->test[PK_CHACHA20_POLY1305], r->ref[PK_CHACHA20_POLY1305]};
    char cas[200];

    pk_fill(s, key, sizeof(key));
    pk_fill(s, fixed, sizeof(fixed));
    pk_fill(s, hdr, 8);
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
            pk_fail(r, cas, "set up failed");
        }
        for (unsigned i = 0; ok && i < (enc ? nrec : 2 * nrec); i++) {
            unsigned ri = enc ? i : i / 2, bad = enc ? 0 : i % 2;
            size_t len, flip;
            uint8_t h[TLS_HDR], bit;
            int n[2], pad[2];

            if (enc) {
                plen[ri] = pk_chance(s, 80) ? pk_below(s, 2049) : pk_below(s, 16385);
                pk_fill(s, pt[ri], plen[ri]);
                memcpy(sent[ri], pt[ri], plen[ri]);
                memset(sent[ri] + plen[ri], 0xee, TAG);
            }
            len = plen[ri] + TAG;
            flip = pk_below(s, len);
            bit = (uint8_t)(1u << pk_below(s, 8));
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
                pk_counters_read(r, &before);
                pad[p] = EVP_CIPHER_CTX_ctrl(ctx[p], EVP_CTRL_AEAD_TLS1_AAD, TLS_HDR, h);
                n[p] = pad[p] > 0 ? EVP_Cipher(ctx[p], buf[p], buf[p], (unsigned)len) : -2;
                if (!p)
                    pk_check_op(r, cas, PK_CHACHA20_POLY1305, 0, 0, &before);
            }
            r->diff_ops++;
            if (pad[1] != TAG || (bad ? n[1] >= 0 : n[1] < 0) || (!enc && !bad && memcmp(buf[1], pt[ri], plen[ri])))
                pk_fail(r, cas, "the default provider itself gave tlsaad %d, EVP_Cipher %d: the test is wrong", pad[1],
                        n[1]);
            else if (pad[0] != pad[1] || n[0] != n[1])
                pk_fail(r, cas, "tlsaad gave %d, EVP_Cipher %d; the default provider %d and %d", pad[0], n[0], pad[1],
                        n[1]);
            else if (!bad && memcmp(buf[0], buf[1], enc ? len : plen[ri])) {
                char why[300];
                pk_describe_diff(why, sizeof(why), buf[1], buf[0], enc ? len : plen[ri]);
                pk_fail(r, cas, "%s %s", enc ? "record" : "payload", why);
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
