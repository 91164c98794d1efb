/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AES-256-GCM op of the crypto benchmarks (crypto_bench.c, noisy_bench.c) and the guest side
 * of a crypto device they drive: one ESP-like slot per op in the arena, 128-byte aligned,
 *
 *   slot + 0    AAD (8 bytes: SPI and sequence number)
 *   slot + 16   IV (12 bytes)
 *   slot + 128  payload, encrypted in place
 *   slot + 128 + size   tag (16 bytes)
 *
 * The guest writes the header for every op while the device writes payload and tag: the header
 * has a 128-byte block (an adjacent-line prefetch pair) of its own, else each header write would
 * pull a line the device is writing over to the guest's core and back (docs/device-abi.md, 4.4).
 *
 * Include after bench_util.h and synth/guest.h.
 */
#ifndef SYNTH_BENCH_GCM_H
#define SYNTH_BENCH_GCM_H

#include <openssl/crypto.h>

#define SLOT_HDR 128u
#define AAD_OFF 0u
#define AAD_LEN 8u
#define IV_OFF 16u
#define IV_LEN 12u
#define TAG_LEN 16u

static const uint8_t KEY[32] = {
    0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
    0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
};

static inline uint32_t slot_size(uint32_t size) { return (SLOT_HDR + size + TAG_LEN + 127u) & ~127u; }

/* An open crypto device, its queue 0 and (optionally) an AES-256-GCM session keyed with KEY. */
struct gdev {
    struct synth_dev *dev;
    struct synth_queue *q;
    struct synth_dev_info info;
    uint32_t sess;
};

static inline const char *errstr(int rc) { return rc < 0 ? strerror(-rc) : synth_status_str((uint32_t)rc); }

static inline void gdev_open(struct gdev *g, const char *path, int want_session)
{
    struct synth_crypto_session_params p;
    int rc;

    memset(g, 0, sizeof(*g));
    rc = synth_dev_open_path(path, NULL, &g->dev);
    if (rc < 0)
        die("synth_dev_open_path(%s): %s", path, strerror(-rc));
    synth_dev_get_info(g->dev, &g->info);
    if (g->info.dev_class != SYNTH_CLASS_CRYPTO)
        die("%s is not a crypto device (class %u)", path, g->info.dev_class);
    if (!(g->info.crypto_alg_mask & (1u << SYNTH_ALG_AES256_GCM)))
        die("%s does not serve AES-256-GCM (algorithm mask 0x%x)", path, g->info.crypto_alg_mask);
    g->q = synth_dev_queue(g->dev, 0);
    if (!g->q)
        die("device %s has no queue 0", path);
    if (!want_session)
        return;
    memset(&p, 0, sizeof(p));
    p.alg = SYNTH_ALG_AES256_GCM;
    p.key_len = sizeof(KEY);
    p.iv_len = IV_LEN;
    p.tag_len = TAG_LEN;
    memcpy(p.key, KEY, sizeof(KEY));
    rc = synth_crypto_session_create(g->q, &p, &g->sess);
    OPENSSL_cleanse(&p, sizeof(p));
    if (rc != 0)
        die("synth_crypto_session_create: %s", errstr(rc));
}

static inline void gdev_close(struct gdev *g)
{
    int rc = synth_crypto_session_destroy(g->q, g->sess);
    if (rc != 0)
        die("synth_crypto_session_destroy: %s", errstr(rc));
    synth_dev_close(g->dev);
}

static inline uint32_t gdev_alloc(struct gdev *g, uint32_t size)
{
    int64_t off = synth_buf_alloc(g->q, size);
    if (off < 0)
        die("synth_buf_alloc(%u): %s (arena %llu bytes)", size, strerror((int)-off),
            (unsigned long long)synth_q_arena_size(g->q));
    return (uint32_t)off;
}

/* The encrypt descriptor of the slot at arena offset off. */
static inline void slot_desc(struct synth_desc *d, uint32_t sess, uint32_t off, uint32_t size, uint64_t cookie)
{
    synth_crypto_desc(d, SYNTH_OP_CRYPTO_ENCRYPT, sess, off + SLOT_HDR, off + SLOT_HDR, size, off + AAD_OFF,
                      AAD_LEN, off + IV_OFF, off + SLOT_HDR + size, cookie);
}

#endif /* SYNTH_BENCH_GCM_H */
