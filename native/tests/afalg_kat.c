/* SPDX-License-Identifier: Apache-2.0 */
/*
 * afalg-kat: known-answer tests of the AF_ALG crypto plugin, built from the plugin's own source
 * (native/src/plugins/crypto_afalg.c) into one static program, so that it can run where the
 * kernel has AF_ALG: inside the end-to-end test VM (Debian's kernel, algif_aead loaded), since the
 * hosts this project is tested on have none.
 *
 *   afalg-kat            run every vector; prints one line per test, then a summary
 *
 * Then the limits that keep the plugin from blocking or starving the daemon (crypto_afalg.c): AAD
 * of 65535 bytes (the device's max_aad_len; the tag is printed for the host to check against its
 * own AES-GCM), an operation too large for the socket (NOT_SUPPORTED, at once, no hang), one of
 * 128 KiB (served), and the descriptor budget (sessions past half of RLIMIT_NOFILE: -ENOSPC).
 *
 * Exit status: 0 all passed, 1 a test failed, 77 the plugin is unavailable (the reason printed).
 * Vectors: NIST CAVP GCM (gcmEncryptExtIV128/256, 96-bit IV cases kept under tests/data/vectors)
 * and RFC 8439 section 2.8.2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "synth/plugin.h"

#include "kat_vectors.h"
#include "kat_hex.h"

static const struct kat kats[] = {SYNTH_KAT_AEAD};

static int run(const struct synth_plugin *pl, const struct kat *k, int tamper)
{
    struct synth_crypto_session_params p = {0};
    struct synth_crypto_op op = {0};
    uint8_t aad[64], pt[256], ct[256], tag[16], out[256], outtag[16];
    size_t aad_len = kat_unhex(k->aad, aad, sizeof(aad)), len = kat_unhex(k->pt, pt, sizeof(pt));
    void *sess = NULL;
    int ok;

    kat_unhex(k->ct, ct, sizeof(ct));
    kat_unhex(k->tag, tag, sizeof(tag));
    p.alg = (uint16_t)k->alg;
    p.key_len = (uint16_t)kat_unhex(k->key, p.key, sizeof(p.key));
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
    kat_unhex(k->iv, op.iv, sizeof(op.iv));
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

/* One AES-256-GCM op of len bytes with aad_len bytes of AAD (both a fixed pattern): its status. */
static uint32_t big_op(const struct synth_plugin *pl, void *sess, uint32_t opcode, uint8_t *buf, size_t len,
                       const uint8_t *aad, size_t aad_len, uint8_t *tag)
{
    struct synth_crypto_op op = {0};

    op.sess = sess;
    op.plugin = pl;
    op.alg = SYNTH_ALG_AES256_GCM;
    op.opcode = opcode;
    op.src = op.dst = buf;
    op.len = (uint32_t)len;
    op.aad = aad;
    op.aad_len = (uint32_t)aad_len;
    op.iv_len = 12;
    op.tag_len = 16;
    memset(op.iv, 0x24, 12);
    op.tag_out = tag;
    memcpy(op.tag, tag, 16);
    pl->crypto_burst(&op, 1);
    return op.status;
}

static void *gcm256(const struct synth_plugin *pl)
{
    struct synth_crypto_session_params p = {0};
    void *sess = NULL;

    p.alg = SYNTH_ALG_AES256_GCM;
    p.key_len = 32;
    for (int i = 0; i < 32; i++)
        p.key[i] = (uint8_t)i;
    p.iv_len = 12;
    p.tag_len = 16;
    return pl->session_create(&p, &sess) < 0 ? NULL : sess;
}

static int report(const char *name, int ok, int *pass, int *total)
{
    printf("afalg-kat: %s: %s\n", name, ok ? "PASS" : "FAIL");
    *pass += ok;
    (*total)++;
    return ok;
}

static void limits(const struct synth_plugin *pl, int *pass, int *total)
{
    static uint8_t aad[65535], buf[1 << 20];
    uint8_t tag[16] = {0};
    void *sess = gcm256(pl), *many[64];
    size_t i, n;
    uint32_t st;
    int ok;

    if (!sess) {
        report("limits-session", 0, pass, total);
        return;
    }
    for (i = 0; i < sizeof(aad); i++)
        aad[i] = (uint8_t)(i * 7);
    for (i = 0; i < 1000; i++)
        buf[i] = (uint8_t)i;
    st = big_op(pl, sess, SYNTH_OP_CRYPTO_ENCRYPT, buf, 1000, aad, sizeof(aad), tag);
    printf("afalg-kat: aad-65535 tag=");
    for (i = 0; i < 16; i++)
        printf("%02x", tag[i]);
    printf("\n");
    ok = st == SYNTH_ST_OK && big_op(pl, sess, SYNTH_OP_CRYPTO_DECRYPT, buf, 1000, aad, sizeof(aad), tag) == SYNTH_ST_OK;
    for (i = 0; ok && i < 1000; i++)
        ok = buf[i] == (uint8_t)i;
    aad[40000] ^= 1; /* the whole AAD is authenticated */
    ok = ok && big_op(pl, sess, SYNTH_OP_CRYPTO_DECRYPT, buf, 1000, aad, sizeof(aad), tag) == SYNTH_ST_AUTH_FAILED;
    report("aad-65535", ok, pass, total);
    report("op-too-big-for-the-socket", big_op(pl, sess, SYNTH_OP_CRYPTO_ENCRYPT, buf, sizeof(buf), NULL, 0, tag) ==
           SYNTH_ST_NOT_SUPPORTED, pass, total);
    ok = big_op(pl, sess, SYNTH_OP_CRYPTO_ENCRYPT, buf, 128 << 10, NULL, 0, tag) == SYNTH_ST_OK &&
         big_op(pl, sess, SYNTH_OP_CRYPTO_DECRYPT, buf, 128 << 10, NULL, 0, tag) == SYNTH_ST_OK;
    report("op-of-128-KiB", ok, pass, total);
    pl->session_destroy(sess);
    /* The budget main() set: RLIMIT_NOFILE 64, so 32 descriptors, 16 sessions. */
    for (n = 0; n < sizeof(many) / sizeof(many[0]) && (many[n] = gcm256(pl)) != NULL; n++)
        ;
    ok = n == 16;
    while (n)
        pl->session_destroy(many[--n]);
    sess = gcm256(pl);
    ok = ok && sess != NULL;
    if (sess)
        pl->session_destroy(sess);
    report("descriptor-budget", ok, pass, total);
}

int main(void)
{
    const struct synth_plugin *pl = synth_plugin_afalg();
    struct rlimit rl = {64, 64};
    char why[160] = "";
    int pass = 0, total = 0;

    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) { /* before the probe: it reads the limit */
        printf("afalg-kat: setrlimit: %s\n", strerror(errno));
        return 1;
    }
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
    if (pl->alg_mask() & (1u << SYNTH_ALG_AES256_GCM))
        limits(pl, &pass, &total);
    printf("afalg-kat: %d/%d passed\n", pass, total);
    return pass == total && total > 0 ? 0 : 1;
}
