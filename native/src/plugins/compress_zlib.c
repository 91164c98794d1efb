/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression plugin over zlib: deflate in its three framings (raw, zlib, gzip), levels 1..9.
 *
 * Each context owns one z_stream whose memory comes from a bump arena allocated with the context,
 * sized for what zlib asks (deflate: window, prev, head and pending buffers of windowBits 15 and
 * memLevel 8; inflate: its state and 32 KiB window), so zlib never calls malloc once the context
 * exists: a one-shot op is deflateReset (+ deflateParams when the level changes) or inflateReset,
 * then one call. The gzip header is never handed to the application (no inflateGetHeader), the
 * path of CVE-2022-37434, and probe() refuses zlib older than 1.2.13, which fixed it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "synth/plugin.h"

#define WBITS 15
#define MEM_LEVEL 8
#define DISCARD 32768u
/* What zlib 1.2.x allocates (state structs are ~6 and ~7 KiB), with room to spare. */
#define DEFLATE_ARENA ((4u << WBITS) + (1u << (MEM_LEVEL + 9)) + 65536u)
#define INFLATE_ARENA ((1u << WBITS) + 65536u)

struct zctx {
    z_stream s;
    uint32_t alg;
    uint32_t dir;
    int level;          /* compression: level the deflate state is set to */
    size_t arena_size;
    size_t arena_used;
    uint8_t *discard;   /* one-shot decompression: where output past dst is counted */
    uint8_t *arena;
};

static voidpf arena_alloc(voidpf opaque, uInt items, uInt size)
{
    struct zctx *z = opaque;
    size_t n = (size_t)items * size, at = (z->arena_used + 63u) & ~(size_t)63u;

    if (items && n / items != size)
        return Z_NULL;
    if (at > z->arena_size || n > z->arena_size - at)
        return Z_NULL; /* zlib reports Z_MEM_ERROR */
    z->arena_used = at + n;
    return z->arena + at;
}

static void arena_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    (void)p; /* released with the context */
}

static int zlib_probe(char *why, size_t why_len)
{
    unsigned a = 0, b = 0, c = 0;

    if (sscanf(zlibVersion(), "%u.%u.%u", &a, &b, &c) < 2 || a != 1 ||
        (b < 2 || (b == 2 && c < 13))) {
        snprintf(why, why_len, "zlib %s is older than 1.2.13 (CVE-2022-37434)", zlibVersion());
        return -ENOTSUP;
    }
    snprintf(why, why_len, "zlib %s", zlibVersion());
    return 0;
}

static uint32_t zlib_alg_mask(void)
{
    return (1u << SYNTH_CALG_DEFLATE) | (1u << SYNTH_CALG_ZLIB) | (1u << SYNTH_CALG_GZIP);
}

static int zlib_levels(uint32_t alg, int32_t *min, int32_t *max, int32_t *dflt)
{
    if (!(zlib_alg_mask() & (1u << alg)))
        return -ENOTSUP;
    *min = 1;
    *max = 9;
    *dflt = 6;
    return 0;
}

static int wbits(uint32_t alg)
{
    return alg == SYNTH_CALG_DEFLATE ? -WBITS : alg == SYNTH_CALG_GZIP ? WBITS + 16 : WBITS;
}

static size_t zlib_ctx_size(const struct synth_comp_ctx_params *p)
{
    size_t n = sizeof(struct zctx) + 64;
    if (p->direction == SYNTH_COMP_DIR_COMPRESS)
        return n + DEFLATE_ARENA;
    return n + INFLATE_ARENA + (p->oneshot ? DISCARD : 0);
}

static void zlib_ctx_destroy(void *cp)
{
    struct zctx *z = cp;
    if (!z)
        return;
    if (z->s.state)
        (z->dir == SYNTH_COMP_DIR_COMPRESS) ? deflateEnd(&z->s) : inflateEnd(&z->s);
    free(z);
}

static int zlib_ctx_create(const struct synth_comp_ctx_params *p, void **out)
{
    size_t arena = p->direction == SYNTH_COMP_DIR_COMPRESS ? DEFLATE_ARENA : INFLATE_ARENA;
    size_t discard = p->direction == SYNTH_COMP_DIR_DECOMPRESS && p->oneshot ? DISCARD : 0;
    struct zctx *z;
    int rc;

    if (!(zlib_alg_mask() & (1u << p->alg)) || p->direction > SYNTH_COMP_DIR_DECOMPRESS)
        return -ENOTSUP;
    if (p->direction == SYNTH_COMP_DIR_COMPRESS && !p->oneshot && (p->level < 1 || p->level > 9))
        return -EINVAL;
    z = calloc(1, sizeof(*z) + 64 + arena + discard);
    if (!z)
        return -ENOMEM;
    z->alg = p->alg;
    z->dir = p->direction;
    z->arena = (uint8_t *)(((uintptr_t)(z + 1) + 63u) & ~(uintptr_t)63u);
    z->arena_size = arena;
    z->discard = discard ? z->arena + arena : NULL;
    z->s.zalloc = arena_alloc;
    z->s.zfree = arena_free;
    z->s.opaque = z;
    if (p->direction == SYNTH_COMP_DIR_COMPRESS) {
        z->level = p->oneshot ? 6 : p->level;
        rc = deflateInit2(&z->s, z->level, Z_DEFLATED, wbits(p->alg), MEM_LEVEL, Z_DEFAULT_STRATEGY);
    } else {
        /* inflate takes its window from the arena on first need, once (inflateReset keeps it). */
        rc = inflateInit2(&z->s, wbits(p->alg));
    }
    if (rc != Z_OK) {
        z->s.state = NULL;
        free(z);
        return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    }
    *out = z;
    return 0;
}

/* Continue a one-shot decompression whose dst is full: count the rest of the output. */
static uint32_t count_rest(struct zctx *z, struct synth_comp_io *io)
{
    uint64_t total = io->produced;
    int rc;

    for (;;) {
        z->s.next_out = z->discard;
        z->s.avail_out = DISCARD;
        rc = inflate(&z->s, Z_NO_FLUSH);
        total += DISCARD - z->s.avail_out;
        if (total > io->limit)
            return SYNTH_ST_LIMIT;
        if (rc == Z_STREAM_END) {
            if (z->s.avail_in)
                return SYNTH_ST_BAD_DATA; /* bytes after the frame */
            if (total == io->produced)
                return SYNTH_ST_OK; /* it fit exactly: only the trailer was left */
            io->needed = total;
            return SYNTH_ST_NO_SPACE;
        }
        if (rc == Z_MEM_ERROR)
            return SYNTH_ST_DEVICE_ERROR;
        if (rc != Z_OK || z->s.avail_out == DISCARD)
            return SYNTH_ST_BAD_DATA; /* corrupt, or truncated (no progress) */
    }
}

static uint32_t zlib_oneshot(void *cp, int32_t level, struct synth_comp_io *io)
{
    struct zctx *z = cp;
    uint32_t st;
    int rc;

    if (io->src_len > UINT32_MAX || io->dst_len > UINT32_MAX)
        return SYNTH_ST_DEVICE_ERROR;
    z->s.next_in = (Bytef *)(uintptr_t)io->src;
    z->s.avail_in = (uInt)io->src_len;
    z->s.next_out = io->dst;
    z->s.avail_out = (uInt)io->dst_len;
    if (z->dir == SYNTH_COMP_DIR_COMPRESS) {
        deflateReset(&z->s);
        /* After a reset deflateParams only records the level: nothing is flushed. */
        if (level != z->level && deflateParams(&z->s, level, Z_DEFAULT_STRATEGY) != Z_OK)
            return SYNTH_ST_DEVICE_ERROR;
        z->level = level;
        rc = deflate(&z->s, Z_FINISH);
        io->consumed = io->src_len - z->s.avail_in;
        io->produced = io->dst_len - z->s.avail_out;
        return rc == Z_STREAM_END ? SYNTH_ST_OK : rc == Z_OK || rc == Z_BUF_ERROR ? SYNTH_ST_NO_SPACE
                                                                                  : SYNTH_ST_DEVICE_ERROR;
    }
    inflateReset(&z->s);
    rc = inflate(&z->s, Z_FINISH);
    io->produced = io->dst_len - z->s.avail_out;
    io->consumed = io->src_len - z->s.avail_in;
    if (rc == Z_STREAM_END)
        return z->s.avail_in ? SYNTH_ST_BAD_DATA : SYNTH_ST_OK;
    if (rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR)
        return SYNTH_ST_DEVICE_ERROR;
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || z->s.avail_out != 0)
        return SYNTH_ST_BAD_DATA; /* corrupt, needs a dictionary, or truncated */
    st = count_rest(z, io);
    if (st != SYNTH_ST_NO_SPACE)
        io->produced = st == SYNTH_ST_OK ? io->produced : 0;
    return st;
}

static uint32_t zlib_stream(void *cp, uint32_t flush, struct synth_comp_io *io)
{
    struct zctx *z = cp;
    unsigned pending = 0;
    int bits = 0, rc;

    if (io->src_len > UINT32_MAX || io->dst_len > UINT32_MAX)
        return SYNTH_ST_DEVICE_ERROR;
    z->s.next_in = (Bytef *)(uintptr_t)io->src;
    z->s.avail_in = (uInt)io->src_len;
    z->s.next_out = io->dst;
    z->s.avail_out = (uInt)io->dst_len;
    io->flags = 0;
    if (z->dir == SYNTH_COMP_DIR_COMPRESS) {
        int zf = flush == SYNTH_FLUSH_FINISH ? Z_FINISH : flush == SYNTH_FLUSH_SYNC ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        rc = deflate(&z->s, zf);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) /* BUF_ERROR: nothing to do */
            return SYNTH_ST_DEVICE_ERROR;
        if (rc == Z_STREAM_END)
            io->flags |= SYNTH_COMP_IO_END;
        else if (z->s.avail_out == 0 &&
                 (zf != Z_NO_FLUSH || (deflatePending(&z->s, &pending, &bits) == Z_OK && (pending || bits))))
            io->flags |= SYNTH_COMP_IO_PENDING;
    } else {
        rc = inflate(&z->s, Z_NO_FLUSH);
        if (rc == Z_STREAM_END)
            io->flags |= SYNTH_COMP_IO_END;
        else if (rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR)
            return SYNTH_ST_DEVICE_ERROR;
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return SYNTH_ST_BAD_DATA; /* Z_DATA_ERROR, Z_NEED_DICT */
        else if (z->s.avail_out == 0)
            io->flags |= SYNTH_COMP_IO_PENDING;
    }
    io->consumed = io->src_len - z->s.avail_in;
    io->produced = io->dst_len - z->s.avail_out;
    return SYNTH_ST_OK;
}

static const struct synth_plugin zlib_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_COMPRESS,
    .name = "zlib",
    .description = "zlib (deflate, zlib and gzip framings, levels 1-9)",
    .priority = 10,
    .probe = zlib_probe,
    .alg_mask = zlib_alg_mask,
    .comp_levels = zlib_levels,
    .comp_ctx_size = zlib_ctx_size,
    .comp_ctx_create = zlib_ctx_create,
    .comp_ctx_destroy = zlib_ctx_destroy,
    .comp_oneshot = zlib_oneshot,
    .comp_stream = zlib_stream,
    .cpu_features = "", /* the library picks its code path at run time */
};

const struct synth_plugin *synth_plugin_zlib(void) { return &zlib_plugin; }
