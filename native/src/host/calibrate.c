/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Capacity calibration of a plugin (see synth/calibrate.h): the plugin's own burst function on
 * host buffers, timed with CLOCK_MONOTONIC. Nothing here touches shared memory or a device.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "synth/calibrate.h"
#include "synth/compress_host.h"
#include "synth/device_core.h"
#include "synth/plugin.h"
#include "synth/clock_pvt.h"


/* Deterministic, semi-compressible input: words from a small vocabulary with numbers between. */
static void fill_text(uint8_t *buf, uint32_t size)
{
    static const char *const words[] = {"synthetic ", "device ", "packet ", "gateway ", "session ",
                                        "tunnel ", "payload ", "header ", "counter ", "vnf "};
    uint32_t x = 2463534242u, i = 0;

    while (i < size) {
        const char *w;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        w = words[x % 10u];
        for (; *w && i < size; w++)
            buf[i++] = (uint8_t)*w;
        if (i < size)
            buf[i++] = (uint8_t)('0' + (x >> 8) % 10u);
    }
}

struct alg_shape {
    uint16_t key_len;
    uint8_t iv_len;
    uint8_t tag_len;
    uint32_t block;
};

static int crypto_shape(uint32_t alg, struct alg_shape *s)
{
    switch (alg) {
    case SYNTH_ALG_AES128_GCM:
        *s = (struct alg_shape){16, 12, 16, 1};
        return 0;
    case SYNTH_ALG_AES256_GCM:
    case SYNTH_ALG_CHACHA20_POLY1305:
        *s = (struct alg_shape){32, 12, 16, 1};
        return 0;
    case SYNTH_ALG_AES256_CBC_HMAC_SHA256:
        *s = (struct alg_shape){64, 16, 16, 16};
        return 0;
    case SYNTH_ALG_HMAC_SHA256:
        *s = (struct alg_shape){32, 0, 32, 1};
        return 0;
    default:
        return -ENOTSUP;
    }
}

static void finish(struct synth_calib_result *out, uint64_t ns)
{
    out->ns = ns ? ns : 1;
    out->gbps = (double)out->bytes * 8.0 / (double)out->ns;
    out->ops_per_s = (double)out->ops * 1e9 / (double)out->ns;
    out->latency_us = out->ops ? (double)out->ns / 1e3 / (double)out->ops : 0.0;
}

/* Count a timed step of ops and bytes; returns the time now (and keeps the longest step). */
static uint64_t account(struct synth_calib_result *out, uint64_t ops, uint64_t bytes, uint64_t *prev)
{
    uint64_t t = synthi_now_ns();
    out->ops += ops;
    out->bytes += bytes;
    if (t - *prev > out->burst_ns_max)
        out->burst_ns_max = t - *prev;
    *prev = t;
    return t;
}

static int calib_crypto(const struct synth_plugin *p, uint32_t alg, uint32_t size, uint64_t budget_ns,
                        struct synth_calib_result *out)
{
    struct synth_crypto_session_params sp;
    struct synth_crypto_op *ops = NULL;
    struct alg_shape shape;
    uint8_t *data = NULL, *aad = NULL, *tags = NULL;
    void *sess = NULL;
    uint64_t t0, t, prev;
    int rc;

    if (!(p->alg_mask() & (1u << alg)) || crypto_shape(alg, &shape) < 0)
        return -ENOTSUP;
    size -= size % shape.block;
    if (size == 0)
        return -EINVAL;
    memset(&sp, 0, sizeof(sp));
    sp.alg = (uint16_t)alg;
    sp.key_len = shape.key_len;
    sp.iv_len = shape.iv_len;
    sp.tag_len = shape.tag_len;
    for (unsigned i = 0; i < shape.key_len; i++)
        sp.key[i] = (uint8_t)(0x40 + i);
    rc = -ENOMEM;
    data = malloc((size_t)size * SYNTH_CALIB_BURST);
    aad = calloc(1, 16);
    tags = calloc(SYNTH_CALIB_BURST, SYNTH_CRYPTO_MAX_TAG);
    ops = calloc(SYNTH_CALIB_BURST, sizeof(*ops));
    if (!data || !aad || !tags || !ops)
        goto out;
    fill_text(data, size * SYNTH_CALIB_BURST);
    rc = p->session_create(&sp, &sess);
    if (rc < 0)
        goto out;
    t0 = prev = synthi_now_ns();
    do {
        for (unsigned i = 0; i < SYNTH_CALIB_BURST; i++) {
            struct synth_crypto_op *op = &ops[i];
            memset(op, 0, sizeof(*op));
            op->sess = sess;
            op->plugin = p;
            op->opcode = SYNTH_OP_CRYPTO_ENCRYPT;
            op->alg = alg;
            op->src = op->dst = data + (size_t)i * size; /* in place, as the data path mostly is */
            op->len = size;
            op->aad = aad;
            op->aad_len = 16;
            op->tag_out = tags + (size_t)i * SYNTH_CRYPTO_MAX_TAG;
            op->iv_len = shape.iv_len;
            op->tag_len = shape.tag_len;
            op->iv[0] = (uint8_t)out->ops;
        }
        p->crypto_burst(ops, SYNTH_CALIB_BURST);
        for (unsigned i = 0; i < SYNTH_CALIB_BURST; i++) {
            if (ops[i].status != SYNTH_ST_OK) {
                rc = -EIO;
                goto out;
            }
        }
        t = account(out, SYNTH_CALIB_BURST, (uint64_t)size * SYNTH_CALIB_BURST, &prev);
    } while (t - t0 < budget_ns);
    finish(out, t - t0);
    rc = 0;
out:
    if (sess)
        p->session_destroy(sess);
    free(ops);
    free(tags);
    free(aad);
    free(data);
    return rc;
}

static int calib_compress(const struct synth_plugin *p, uint32_t alg, uint32_t size, uint64_t budget_ns,
                          struct synth_calib_result *out)
{
    struct synth_comp_ctx_params cp;
    uint8_t *src = NULL, *dst = NULL;
    size_t dst_len = (size_t)SYNTH_COMP_BOUND(size);
    int32_t lo, hi, dflt;
    void *ctx = NULL;
    uint64_t t0, t, prev;
    int rc;

    if (p->abi_version < 2 || !p->comp_levels || !p->comp_ctx_create || !p->comp_oneshot)
        return -ENOTSUP;
    if (!(p->alg_mask() & (1u << alg)) || p->comp_levels(alg, &lo, &hi, &dflt) < 0)
        return -ENOTSUP;
    memset(&cp, 0, sizeof(cp));
    cp.alg = alg;
    cp.direction = SYNTH_COMP_DIR_COMPRESS;
    cp.level = dflt;
    cp.oneshot = 1;
    cp.max_src = size;
    cp.window_log = SYNTH_COMP_DEF_WINDOW_LOG;
    rc = -ENOMEM;
    src = malloc(size);
    dst = malloc(dst_len);
    if (!src || !dst)
        goto out;
    fill_text(src, size);
    rc = p->comp_ctx_create(&cp, &ctx);
    if (rc < 0)
        goto out;
    out->level = dflt;
    t0 = prev = synthi_now_ns();
    do {
        struct synth_comp_io io;
        memset(&io, 0, sizeof(io));
        io.src = src;
        io.src_len = size;
        io.dst = dst;
        io.dst_len = dst_len;
        if (p->comp_oneshot(ctx, dflt, &io) != SYNTH_ST_OK || io.produced == 0) {
            rc = -EIO;
            goto out;
        }
        t = account(out, 1, size, &prev);
    } while (t - t0 < budget_ns);
    finish(out, t - t0);
    rc = 0;
out:
    if (ctx)
        p->comp_ctx_destroy(ctx);
    free(dst);
    free(src);
    return rc;
}

int synth_calibrate(const char *plugin, uint32_t alg, uint32_t size, uint32_t millis,
                    struct synth_calib_result *out)
{
    const struct synth_plugin *p;
    char why[160];

    if (!plugin || !out || size == 0 || size > SYNTH_CALIB_MAX_SIZE || millis == 0 ||
        millis > SYNTH_CALIB_MAX_MILLIS)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    p = synth_plugin_find(plugin);
    if (!p)
        return -ENOENT;
    if (synth_plugin_probe(p, why, sizeof(why)) < 0)
        return -ENODEV;
    out->dev_class = p->dev_class;
    if (p->dev_class == SYNTH_CLASS_CRYPTO)
        return calib_crypto(p, alg, size, (uint64_t)millis * 1000000ull, out);
    if (p->dev_class == SYNTH_CLASS_COMPRESS)
        return calib_compress(p, alg, size, (uint64_t)millis * 1000000ull, out);
    return -ENOTSUP;
}
