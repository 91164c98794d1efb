/* SPDX-License-Identifier: Apache-2.0 */
/*
 * afalg-kat: known-answer tests of the AF_ALG crypto plugin, built from the plugin's own source
 * (native/src/plugins/crypto_afalg.c) into one static program, so that it can run where the
 * kernel has AF_ALG: inside the end-to-end test VM (Debian's kernel, algif_aead loaded), since the
 * hosts this project is tested on have none.
 *
 *   afalg-kat            run every vector; prints one line per test, then a summary
 *
 * Exit status: 0 all passed, 1 a test failed, 77 the plugin is unavailable (the reason printed).
 * Vectors: NIST CAVP GCM (gcmEncryptExtIV128/256, 96-bit IV cases kept under tests/data/vectors)
 * and RFC 8439 section 2.8.2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/plugin.h"

#include "kat_vectors.h"

static const struct kat kats[] = {SYNTH_KAT_AEAD};

static size_t unhex(const char *h, uint8_t *out, size_t max)
{
    size_t n = strlen(h) / 2;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
    return n;
}

static int run(const struct synth_plugin *pl, const struct kat *k, int tamper)
{
    struct synth_crypto_session_params p = {0};
    struct synth_crypto_op op = {0};
    uint8_t aad[64], pt[256], ct[256], tag[16], out[256], outtag[16];
    size_t aad_len = unhex(k->aad, aad, sizeof(aad)), len = unhex(k->pt, pt, sizeof(pt));
    void *sess = NULL;
    int ok;

    unhex(k->ct, ct, sizeof(ct));
    unhex(k->tag, tag, sizeof(tag));
    p.alg = (uint16_t)k->alg;
    p.key_len = (uint16_t)unhex(k->key, p.key, sizeof(p.key));
    p.iv_len = 12;
    p.tag_len = 16;
    if (pl->session_create(&p, &sess) < 0)
        return 0;
    op.sess = sess;
    op.plugin = pl;
    op.alg = k->alg;
    op.len = (uint32_t)len;
    op.aad = aad;
    op.aad_len = (uint32_t)aad_len;
    op.iv_len = 12;
    op.tag_len = 16;
    unhex(k->iv, op.iv, sizeof(op.iv));
    if (!tamper) {
        op.opcode = SYNTH_OP_CRYPTO_ENCRYPT;
        op.src = pt;
        op.dst = out;
        op.tag_out = outtag;
        pl->crypto_burst(&op, 1);
        ok = op.status == SYNTH_ST_OK && !memcmp(out, ct, len) && !memcmp(outtag, tag, 16);
        if (ok) { /* and back */
            op.opcode = SYNTH_OP_CRYPTO_DECRYPT;
            op.src = ct;
            memcpy(op.tag, tag, 16);
            pl->crypto_burst(&op, 1);
            ok = op.status == SYNTH_ST_OK && !memcmp(out, pt, len);
        }
    } else {
        op.opcode = SYNTH_OP_CRYPTO_DECRYPT;
        op.src = ct;
        op.dst = out;
        memcpy(op.tag, tag, 16);
        op.tag[0] ^= 1;
        pl->crypto_burst(&op, 1);
        ok = op.status == SYNTH_ST_AUTH_FAILED;
    }
    pl->session_destroy(sess);
    return ok;
}

int main(void)
{
    const struct synth_plugin *pl = synth_plugin_afalg();
    char why[160] = "";
    int pass = 0, total = 0;

    if (pl->probe(why, sizeof(why)) < 0) {
        printf("afalg-kat: unavailable: %s\n", why);
        return 77;
    }
    printf("afalg-kat: plugin %s: %s\n", pl->name, why);
    for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
        for (int tamper = 0; tamper < 2; tamper++) {
            int ok;
            if (!(pl->alg_mask() & (1u << kats[i].alg))) {
                printf("afalg-kat: %s%s: SKIP (algorithm not in this kernel)\n", kats[i].name, tamper ? "-bad-tag" : "");
                continue;
            }
            ok = run(pl, &kats[i], tamper);
            total++;
            pass += ok;
            printf("afalg-kat: %s%s: %s\n", kats[i].name, tamper ? "-bad-tag" : "", ok ? "PASS" : "FAIL");
        }
    }
    printf("afalg-kat: %d/%d passed\n", pass, total);
    return pass == total && total > 0 ? 0 : 1;
}
