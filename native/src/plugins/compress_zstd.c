/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression plugin over libzstd: Zstandard frames, levels -5..19, with a content checksum.
 *
 * Every context is a static zstd context (ZSTD_initStatic*) in one workspace allocated at create
 * and sized with zstd's own estimators, so zstd never allocates on an op: a one-shot compression
 * context is sized for the largest level at the device's longest input, a stream for its level and
 * the window cap, a decompression stream for the window cap (ZSTD_d_windowLogMax; a frame that
 * needs a larger window fails with LIMIT). One-shot decompression needs no window buffer (dst is
 * the history) but checks the frame's window against the cap as well, so that a frame the device
 * accepts one way it accepts the other way too. These are zstd's "static linking only" functions:
 * probe() insists on the zstd major.minor the plugin was built against.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "synth/plugin.h"

#define MIN_LEVEL (-5)
#define MAX_LEVEL 19

/* A decompression stream's walk over its frame's block headers, as the bytes arrive (blocks_ok). */
enum { WALK_HEADER, WALK_BLOCK_HEADER, WALK_SKIP, WALK_DONE };

struct zwalk {
    uint8_t buf[ZSTD_FRAMEHEADERSIZE_MAX];
    uint32_t have;
    uint32_t stage;
    uint64_t skip;       /* bytes to pass over: a block's data, a skippable frame, the checksum */
    uint64_t max;        /* the frame's largest block */
    int last;            /* the block being passed over is the frame's last */
    int checksum;
};

struct zsctx {
    struct zwalk walk;
    uint32_t dir;
    uint32_t oneshot;
    uint32_t window_log;
    uint32_t reserved;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    size_t ws_size;
    void *ws; /* 8-byte aligned workspace, after the struct */
};

static int zstd_probe(char *why, size_t why_len)
{
    unsigned v = ZSTD_versionNumber();
    if (v / 100 != ZSTD_VERSION_NUMBER / 100) {
        snprintf(why, why_len, "zstd %s differs from %s, which the plugin was built against (static API)",
                 ZSTD_versionString(), ZSTD_VERSION_STRING);
        return -ENOTSUP;
    }
    snprintf(why, why_len, "zstd %s", ZSTD_versionString());
    return 0;
}

static uint32_t zstd_alg_mask(void) { return 1u << SYNTH_CALG_ZSTD; }

static int zstd_levels(uint32_t alg, int32_t *min, int32_t *max, int32_t *dflt)
{
    if (alg != SYNTH_CALG_ZSTD)
        return -ENOTSUP;
    *min = MIN_LEVEL;
    *max = MAX_LEVEL;
    *dflt = ZSTD_CLEVEL_DEFAULT;
    return 0;
}

/* Compression parameters of level for inputs of at most src bytes (0: unknown), window capped. */
static ZSTD_compressionParameters cparams(int level, unsigned long long src, uint32_t window_log)
{
    ZSTD_compressionParameters cp = ZSTD_getCParams(level, src ? src : ZSTD_CONTENTSIZE_UNKNOWN, 0);
    if (cp.windowLog > window_log)
        cp.windowLog = window_log;
    return ZSTD_adjustCParams(cp, src ? src : ZSTD_CONTENTSIZE_UNKNOWN, 0);
}

static size_t workspace(const struct synth_comp_ctx_params *p)
{
    size_t n = 0, m;
    int l;

    if (p->direction == SYNTH_COMP_DIR_DECOMPRESS)
        return p->oneshot ? ZSTD_estimateDCtxSize() : ZSTD_estimateDStreamSize((size_t)1 << p->window_log);
    if (!p->oneshot)
        return ZSTD_estimateCStreamSize_usingCParams(cparams(p->level, 0, p->window_log));
    for (l = MIN_LEVEL; l <= MAX_LEVEL; l++) {
        m = ZSTD_estimateCCtxSize_usingCParams(cparams(l, p->max_src ? p->max_src : 1, p->window_log));
        if (m > n)
            n = m;
    }
    return n;
}

static size_t zstd_ctx_size(const struct synth_comp_ctx_params *p) { return sizeof(struct zsctx) + 8 + workspace(p); }

static void zstd_ctx_destroy(void *cp) { free(cp); /* static contexts live in the workspace */ }

/* Set the frame parameters of a compression context: level, window cap, checksum. */
static int set_cparams(ZSTD_CCtx *c, int level, unsigned long long src, uint32_t window_log)
{
    ZSTD_compressionParameters dflt = ZSTD_getCParams(level, src ? src : ZSTD_CONTENTSIZE_UNKNOWN, 0);

    if (ZSTD_isError(ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)))
        return -1;
    if (dflt.windowLog > window_log && ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, (int)window_log)))
        return -1;
    return 0;
}

static int zstd_ctx_create(const struct synth_comp_ctx_params *p, void **out)
{
    size_t ws = workspace(p);
    struct zsctx *z;

    if (p->alg != SYNTH_CALG_ZSTD || p->direction > SYNTH_COMP_DIR_DECOMPRESS)
        return -ENOTSUP;
    if (p->window_log < ZSTD_WINDOWLOG_MIN || p->window_log > ZSTD_WINDOWLOG_MAX_32)
        return -EINVAL;
    if (p->direction == SYNTH_COMP_DIR_COMPRESS && !p->oneshot && (p->level < MIN_LEVEL || p->level > MAX_LEVEL))
        return -EINVAL;
    z = calloc(1, sizeof(*z) + 8 + ws);
    if (!z)
        return -ENOMEM;
    z->dir = p->direction;
    z->oneshot = p->oneshot;
    z->window_log = p->window_log;
    z->ws_size = ws;
    z->ws = (void *)(((uintptr_t)(z + 1) + 7u) & ~(uintptr_t)7u);
    if (p->direction == SYNTH_COMP_DIR_COMPRESS) {
        z->cctx = ZSTD_initStaticCCtx(z->ws, ws);
        if (!z->cctx || (!p->oneshot && set_cparams(z->cctx, p->level, 0, p->window_log) < 0))
            goto fail;
    } else {
        z->dctx = p->oneshot ? ZSTD_initStaticDCtx(z->ws, ws) : ZSTD_initStaticDStream(z->ws, ws);
        if (!z->dctx || ZSTD_isError(ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax, (int)p->window_log)))
            goto fail;
    }
    *out = z;
    return 0;
fail:
    free(z);
    return -EINVAL;
}

static uint32_t dstatus(size_t err)
{
    switch (ZSTD_getErrorCode(err)) {
    case ZSTD_error_frameParameter_windowTooLarge:
    case ZSTD_error_memory_allocation: /* a static context too small for the frame: its window */
        return SYNTH_ST_LIMIT;
    case ZSTD_error_dstSize_tooSmall:
        return SYNTH_ST_NO_SPACE;
    default:
        return SYNTH_ST_BAD_DATA;
    }
}

/*
 * Every block of a frame holds at most min(window size, 128 KiB) bytes (RFC 8878, 3.1.1.2.3). zstd
 * 1.5.4 does not check it for raw and RLE blocks, where the reference decoder refuses them (and
 * NO_SPACE's bound of blocks x 128 KiB would then not suffice): walk the block headers first.
 */
static int blocks_ok(const uint8_t *src, size_t len, const ZSTD_frameHeader *fh)
{
    unsigned long long max = fh->windowSize < ZSTD_BLOCKSIZE_MAX ? fh->windowSize : ZSTD_BLOCKSIZE_MAX;
    size_t pos = fh->headerSize;

    if (fh->frameType != ZSTD_frame)
        return 1;
    for (;;) {
        uint32_t bh, type, size;
        if (len - pos < 3)
            return 0;
        bh = (uint32_t)src[pos] | (uint32_t)src[pos + 1] << 8 | (uint32_t)src[pos + 2] << 16;
        pos += 3;
        type = (bh >> 1) & 3;
        size = bh >> 3;
        if (size > max)
            return 0;
        pos += type == 1 ? 1 : size; /* RLE: one byte, repeated size times */
        if (pos > len)
            return 0;
        if (bh & 1)
            return 1;
    }
}

/* Feed the walk n more bytes of the stream's frame: 0, or -1 if a block is larger than the frame allows. */
static int walk(struct zwalk *w, const uint8_t *p, size_t n)
{
    ZSTD_frameHeader fh;
    size_t r, k;

    while (n) {
        switch (w->stage) {
        case WALK_HEADER:
            w->buf[w->have++] = *p++;
            n--;
            r = ZSTD_getFrameHeader(&fh, w->buf, w->have);
            if (ZSTD_isError(r))
                return -1;
            if (r == 0) {
                w->have = 0;
                w->stage = WALK_SKIP;
                w->last = 1;
                w->checksum = 0;
                if (fh.frameType == ZSTD_skippableFrame) {
                    w->skip = fh.frameContentSize;
                } else {
                    w->max = fh.windowSize < ZSTD_BLOCKSIZE_MAX ? fh.windowSize : ZSTD_BLOCKSIZE_MAX;
                    w->checksum = (int)fh.checksumFlag;
                    w->stage = WALK_BLOCK_HEADER;
                }
            } else if (w->have == sizeof(w->buf)) {
                return -1;
            }
            break;
        case WALK_BLOCK_HEADER:
            w->buf[w->have++] = *p++;
            n--;
            if (w->have == 3) {
                uint32_t bh = (uint32_t)w->buf[0] | (uint32_t)w->buf[1] << 8 | (uint32_t)w->buf[2] << 16;
                if ((bh >> 3) > w->max)
                    return -1;
                w->have = 0;
                w->skip = ((bh >> 1) & 3) == 1 ? 1 : bh >> 3;
                w->last = (int)(bh & 1);
                w->stage = WALK_SKIP;
            }
            break;
        case WALK_SKIP:
            k = n < w->skip ? n : (size_t)w->skip;
            p += k;
            n -= k;
            w->skip -= k;
            break;
        default:
            return 0; /* after the frame: the decoder's business */
        }
        if (w->stage == WALK_SKIP && w->skip == 0) {
            if (!w->last) {
                w->stage = WALK_BLOCK_HEADER;
            } else if (w->checksum) {
                w->checksum = 0;
                w->skip = 4;
            } else {
                w->stage = WALK_DONE;
            }
        }
    }
    return 0;
}

static uint32_t decompress_oneshot(struct zsctx *z, struct synth_comp_io *io)
{
    ZSTD_frameHeader fh;
    unsigned long long bound;
    size_t r, csize;

    r = ZSTD_getFrameHeader(&fh, io->src, io->src_len);
    if (r != 0) /* an error, or more bytes needed for the header: truncated */
        return SYNTH_ST_BAD_DATA;
    if (fh.frameType == ZSTD_frame && fh.windowSize > (1ULL << z->window_log))
        return SYNTH_ST_LIMIT;
    csize = ZSTD_findFrameCompressedSize(io->src, io->src_len);
    if (ZSTD_isError(csize) || csize != io->src_len || !blocks_ok(io->src, io->src_len, &fh))
        return SYNTH_ST_BAD_DATA; /* truncated or corrupt block headers, or bytes after the frame */
    r = ZSTD_decompressDCtx(z->dctx, io->dst, io->dst_len, io->src, io->src_len);
    if (!ZSTD_isError(r)) {
        io->consumed = io->src_len;
        io->produced = r;
        return SYNTH_ST_OK;
    }
    if (dstatus(r) != SYNTH_ST_NO_SPACE)
        return dstatus(r);
    /* The declared content size, or the most the frame's blocks can hold: enough either way. */
    bound = ZSTD_decompressBound(io->src, io->src_len);
    if (bound == ZSTD_CONTENTSIZE_ERROR || bound <= io->dst_len)
        return SYNTH_ST_BAD_DATA; /* the frame declares less than it holds */
    if (bound > io->limit)
        return SYNTH_ST_LIMIT;
    io->needed = bound;
    return SYNTH_ST_NO_SPACE;
}

static uint32_t zstd_oneshot(void *cp, int32_t level, struct synth_comp_io *io)
{
    struct zsctx *z = cp;
    size_t r;

    if (z->dir == SYNTH_COMP_DIR_DECOMPRESS)
        return decompress_oneshot(z, io);
    if (level < MIN_LEVEL || level > MAX_LEVEL)
        return SYNTH_ST_NOT_SUPPORTED;
    if (set_cparams(z->cctx, level, io->src_len, z->window_log) < 0)
        return SYNTH_ST_DEVICE_ERROR;
    r = ZSTD_compress2(z->cctx, io->dst, io->dst_len, io->src, io->src_len);
    if (ZSTD_isError(r))
        return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ? SYNTH_ST_NO_SPACE : SYNTH_ST_DEVICE_ERROR;
    io->consumed = io->src_len;
    io->produced = r;
    return SYNTH_ST_OK;
}

static uint32_t zstd_stream(void *cp, uint32_t flush, struct synth_comp_io *io)
{
    struct zsctx *z = cp;
    ZSTD_inBuffer in = {io->src, io->src_len, 0};
    ZSTD_outBuffer out = {io->dst, io->dst_len, 0};
    ZSTD_EndDirective mode;
    size_t r;

    io->flags = 0;
    if (z->dir == SYNTH_COMP_DIR_COMPRESS) {
        mode = flush == SYNTH_FLUSH_FINISH ? ZSTD_e_end : flush == SYNTH_FLUSH_SYNC ? ZSTD_e_flush : ZSTD_e_continue;
        r = ZSTD_compressStream2(z->cctx, &out, &in, mode);
        if (ZSTD_isError(r))
            return SYNTH_ST_DEVICE_ERROR;
        io->consumed = in.pos;
        io->produced = out.pos;
        if (mode == ZSTD_e_end && r == 0)
            io->flags |= SYNTH_COMP_IO_END;
        else if (mode == ZSTD_e_continue ? out.pos == out.size : r != 0)
            io->flags |= SYNTH_COMP_IO_PENDING; /* for flush and end, r is what is left to write */
        return SYNTH_ST_OK;
    }
    r = ZSTD_decompressStream(z->dctx, &out, &in);
    if (ZSTD_isError(r))
        return dstatus(r) == SYNTH_ST_NO_SPACE ? SYNTH_ST_BAD_DATA : dstatus(r);
    if (walk(&z->walk, io->src, in.pos) < 0) /* each byte the decoder took, once */
        return SYNTH_ST_BAD_DATA;
    io->consumed = in.pos;
    io->produced = out.pos;
    if (r == 0)
        io->flags |= SYNTH_COMP_IO_END; /* the frame is decoded and all of it written out */
    else if (out.pos == out.size)
        io->flags |= SYNTH_COMP_IO_PENDING;
    return SYNTH_ST_OK;
}

static const struct synth_plugin zstd_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_COMPRESS,
    .name = "zstd",
    .description = "libzstd (Zstandard frames with checksum, levels -5..19, window capped)",
    .priority = 10,
    .probe = zstd_probe,
    .alg_mask = zstd_alg_mask,
    .comp_levels = zstd_levels,
    .comp_ctx_size = zstd_ctx_size,
    .comp_ctx_create = zstd_ctx_create,
    .comp_ctx_destroy = zstd_ctx_destroy,
    .comp_oneshot = zstd_oneshot,
    .comp_stream = zstd_stream,
    .cpu_features = "", /* the library picks its code path at run time */
};

const struct synth_plugin *synth_plugin_zstd(void) { return &zstd_plugin; }
