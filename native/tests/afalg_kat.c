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

struct kat {
    const char *name;
    uint32_t alg;
    const char *key, *iv, *aad, *pt, *ct, *tag;
};

static const struct kat kats[] = {
    {"nist-gcm-128", SYNTH_ALG_AES128_GCM, "c939cc13397c1d37de6ae0e1cb7c423c", "b3d8cc017cbb89b39e0f67e2",
     "24825602bd12a984e0092d3e448eda5f", "c3b3c41f113a31b73d9a5cd432103069", "93fe7d9e9bfd10348a5606e5cafa7354",
     "0032a1dc85f1c9786925a2e71d8272dd"},
    {"nist-gcm-256", SYNTH_ALG_AES256_GCM, "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
     "ac93a1a6145299bde902f21a", "1e0889016f67601c8ebea4943bc23ad6", "2d71bcfa914e4ac045b2aa60955fad24",
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"},
    {"rfc8439-2.8.2", SYNTH_ALG_CHACHA20_POLY1305, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
     "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7",
     "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a204966204920636f756c6420"
     "6f6666657220796f75206f6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73637265656e20776f756c"
     "642062652069742e",
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e"
     "060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576"
     "d26586cec64b6116",
     "1ae10b594f09e26a7e902ecbd0600691"},
};

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
