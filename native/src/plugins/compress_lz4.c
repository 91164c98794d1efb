/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression plugin over liblz4's frame API (LZ4F): LZ4 frames with 64 KiB linked blocks and a
 * content checksum (one-shot frames also record their content size), levels -16..9.
 *
 * LZ4F allocates its buffers when a frame begins, sized for that frame, and grows them only: each
 * context takes them at create by beginning the largest frame it will meet (compression: an HC
 * level; decompression: the header of a frame with 4 MiB linked blocks, the format's largest), so
 * no op allocates. LZ4F_compressUpdate writes only into a buffer of LZ4F_compressBound bytes, so a
 * compression stream compresses into its own staging buffer, 64 KiB of input at a time, and copies
 * out what dst can take; the rest waits there for the next op.
 *
 * DECODES_IN_PLACE (lz4 1.9): LZ4F reads the frame header's fields into locals before its checksum
 * and uses those; a block size is read once and bounded by the frame's block size before use (the
 * second read of the header word only picks the compressed or stored branch for that size); the
 * block decoder (LZ4_decompress_safe*) reads each token, length byte and offset once, and what it
 * reads twice (the 16- and 32-byte wild copies) is only copied into the output. The content
 * checksum covers the output. So input that changes meanwhile decodes like some fixed input.
 */
#define LZ4F_STATIC_LINKING_ONLY
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lz4hc.h>
#include <lz4frame.h>

#include "synth/plugin.h"

#define MIN_LEVEL (-16)
/*
 * Levels 10-12 are lz4's optimal parser, which liblz4 (built with LZ4HC_HEAPMODE, as Debian's is)
 * allocates its match table for on every call: the per-op path must not allocate, so the device
 * serves lz4 up to level 9, the best HC level that does not.
 */
#define MAX_LEVEL 9
#define STEP (64u * 1024u) /* input per LZ4F_compressUpdate: one block */
#define DISCARD 32768u

struct lctx {
    uint32_t dir;
    uint32_t oneshot;
    LZ4F_cctx *c;
    LZ4F_dctx *d;
    LZ4F_preferences_t prefs;
    uint8_t *stage;       /* compression stream: output not yet handed out */
    size_t stage_cap;
    size_t stage_pos;
    size_t stage_len;
    int ended;            /* compression stream: LZ4F_compressEnd done */
    uint8_t *discard;     /* one-shot decompression: output past dst is counted here */
};

static int lz4_probe(char *why, size_t why_len)
{
    if (LZ4_versionNumber() < LZ4_VERSION_NUMBER / 100 * 100) {
        snprintf(why, why_len, "lz4 %s is older than %s, which the plugin was built against",
                 LZ4_versionString(), LZ4_VERSION_STRING);
        return -ENOTSUP;
    }
    snprintf(why, why_len, "lz4 %s (frame format)", LZ4_versionString());
    return 0;
}

static uint32_t lz4_alg_mask(void) { return 1u << SYNTH_CALG_LZ4; }

static int lz4_levels(uint32_t alg, int32_t *min, int32_t *max, int32_t *dflt)
{
    if (alg != SYNTH_CALG_LZ4)
        return -ENOTSUP;
    *min = MIN_LEVEL;
    *max = MAX_LEVEL;
    *dflt = 1; /* lz4's fast mode, the same as LZ4F's own default 0 */
    return 0;
}

static void set_prefs(LZ4F_preferences_t *p, int level, unsigned long long content_size, unsigned auto_flush)
{
    memset(p, 0, sizeof(*p));
    p->frameInfo.blockSizeID = LZ4F_max64KB;
    p->frameInfo.blockMode = LZ4F_blockLinked;
    p->frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    p->frameInfo.frameType = LZ4F_frame;
    p->frameInfo.contentSize = content_size;
    p->compressionLevel = level;
    p->autoFlush = auto_flush;
}

static size_t stage_cap(void)
{
    LZ4F_preferences_t p;
    set_prefs(&p, MAX_LEVEL, 0, 0);
    return LZ4F_compressBound(STEP, &p) + LZ4F_HEADER_SIZE_MAX;
}

static size_t lz4_ctx_size(const struct synth_comp_ctx_params *p)
{
    size_t n = sizeof(struct lctx);
    if (p->direction == SYNTH_COMP_DIR_COMPRESS) /* HC state, 64 KiB block + 128 KiB history */
        return n + sizeof(LZ4_streamHC_t) + 3 * STEP + (p->oneshot ? 0 : stage_cap()) + 4096;
    /* tmpIn and tmpOut of a 4 MiB linked block */
    return n + 2 * (4u << 20) + 128u * 1024u + (p->oneshot ? DISCARD : 0) + 4096;
}

static void lz4_ctx_destroy(void *cp)
{
    struct lctx *l = cp;
    if (!l)
        return;
    LZ4F_freeCompressionContext(l->c);
    LZ4F_freeDecompressionContext(l->d);
    free(l);
}

/* Begin a frame with the largest buffers this context will need, so that none is allocated later. */
static int warm_up(struct lctx *l)
{
    LZ4F_preferences_t p;
    uint8_t hdr[LZ4F_HEADER_SIZE_MAX], none[1];
    size_t n, src_len, dst_len = 0;
    LZ4F_cctx *c = l->c;
    int ok;

    if (!c && LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION)))
        return -ENOMEM;
    set_prefs(&p, MAX_LEVEL, 0, 0);
    if (l->d)
        p.frameInfo.blockSizeID = LZ4F_max4MB;
    n = LZ4F_compressBegin(c, hdr, sizeof(hdr), &p);
    ok = !LZ4F_isError(n);
    if (ok && l->d) {
        src_len = n;
        ok = !LZ4F_isError(LZ4F_decompress(l->d, none, &dst_len, hdr, &src_len, NULL));
        LZ4F_resetDecompressionContext(l->d);
    }
    if (c != l->c)
        LZ4F_freeCompressionContext(c);
    return ok ? 0 : -ENOMEM;
}

static int lz4_ctx_create(const struct synth_comp_ctx_params *p, void **out)
{
    size_t extra = p->direction == SYNTH_COMP_DIR_COMPRESS ? (p->oneshot ? 0 : stage_cap())
                                                            : (p->oneshot ? DISCARD : 0);
    struct lctx *l;
    size_t n;

    if (p->alg != SYNTH_CALG_LZ4 || p->direction > SYNTH_COMP_DIR_DECOMPRESS)
        return -ENOTSUP;
    if (p->direction == SYNTH_COMP_DIR_COMPRESS && !p->oneshot && (p->level < MIN_LEVEL || p->level > MAX_LEVEL))
        return -EINVAL;
    l = calloc(1, sizeof(*l) + extra);
    if (!l)
        return -ENOMEM;
    l->dir = p->direction;
    l->oneshot = p->oneshot;
    if (p->direction == SYNTH_COMP_DIR_COMPRESS) {
        if (LZ4F_isError(LZ4F_createCompressionContext(&l->c, LZ4F_VERSION)) || warm_up(l) < 0)
            goto fail;
        if (!p->oneshot) {
            /* The stream's frame begins now: its header is the first output the stream hands out. */
            l->stage = (uint8_t *)(l + 1);
            l->stage_cap = extra;
            set_prefs(&l->prefs, p->level, 0, 0);
            n = LZ4F_compressBegin(l->c, l->stage, l->stage_cap, &l->prefs);
            if (LZ4F_isError(n))
                goto fail;
            l->stage_len = n;
        }
    } else {
        if (LZ4F_isError(LZ4F_createDecompressionContext(&l->d, LZ4F_VERSION)) || warm_up(l) < 0)
            goto fail;
        l->discard = p->oneshot ? (uint8_t *)(l + 1) : NULL;
    }
    *out = l;
    return 0;
fail:
    lz4_ctx_destroy(l);
    return -ENOMEM;
}

/* Decode from src into dst; stops at the frame's end. Returns OK, BAD_DATA; *r as LZ4F_decompress. */
static uint32_t decode(struct lctx *l, const uint8_t *src, size_t *src_len, uint8_t *dst, size_t *dst_len,
                       size_t *r)
{
    LZ4F_decompressOptions_t opt = {0};

    *r = LZ4F_decompress(l->d, dst, dst_len, src, src_len, &opt);
    return LZ4F_isError(*r) ? SYNTH_ST_BAD_DATA : SYNTH_ST_OK;
}

static uint32_t decompress_oneshot(struct lctx *l, struct synth_comp_io *io)
{
    size_t in = 0, sn, dn, r = 1;
    uint64_t extra = 0;
    int progress;

    LZ4F_resetDecompressionContext(l->d);
    io->produced = 0;
    while (r != 0 && in < io->src_len) {
        sn = io->src_len - in;
        if (io->produced < io->dst_len) {
            dn = io->dst_len - io->produced;
            if (decode(l, io->src + in, &sn, io->dst + io->produced, &dn, &r) != SYNTH_ST_OK)
                return SYNTH_ST_BAD_DATA;
            io->produced += dn;
        } else { /* dst is full: count the rest */
            dn = DISCARD;
            if (decode(l, io->src + in, &sn, l->discard, &dn, &r) != SYNTH_ST_OK)
                return SYNTH_ST_BAD_DATA;
            extra += dn;
            if (io->produced + extra > io->limit)
                return SYNTH_ST_LIMIT;
        }
        in += sn;
        progress = sn || dn;
        if (!progress)
            break;
    }
    io->consumed = in;
    if (r != 0)
        return SYNTH_ST_BAD_DATA; /* truncated */
    if (in != io->src_len)
        return SYNTH_ST_BAD_DATA; /* bytes after the frame */
    if (extra) {
        io->needed = io->produced + extra;
        return SYNTH_ST_NO_SPACE;
    }
    return SYNTH_ST_OK;
}

static uint32_t lz4_oneshot(void *cp, int32_t level, struct synth_comp_io *io)
{
    struct lctx *l = cp;
    LZ4F_preferences_t p;
    size_t r;

    if (l->dir == SYNTH_COMP_DIR_DECOMPRESS)
        return decompress_oneshot(l, io);
    if (level < MIN_LEVEL || level > MAX_LEVEL)
        return SYNTH_ST_NOT_SUPPORTED;
    set_prefs(&p, level, io->src_len, 1);
    r = LZ4F_compressFrame_usingCDict(l->c, io->dst, io->dst_len, io->src, io->src_len, NULL, &p);
    if (LZ4F_isError(r))
        return LZ4F_getErrorCode(r) == LZ4F_ERROR_dstMaxSize_tooSmall ? SYNTH_ST_NO_SPACE : SYNTH_ST_DEVICE_ERROR;
    io->consumed = io->src_len;
    io->produced = r;
    return SYNTH_ST_OK;
}

static uint32_t compress_stream(struct lctx *l, uint32_t flush, struct synth_comp_io *io)
{
    int flushed = 0;
    size_t r, n;

    io->consumed = io->produced = 0;
    for (;;) {
        if (l->stage_pos < l->stage_len) {
            n = l->stage_len - l->stage_pos;
            if (n > io->dst_len - io->produced)
                n = io->dst_len - io->produced;
            memcpy(io->dst + io->produced, l->stage + l->stage_pos, n);
            io->produced += n;
            l->stage_pos += n;
            if (l->stage_pos < l->stage_len)
                break; /* dst is full */
        }
        l->stage_pos = l->stage_len = 0;
        if (io->consumed < io->src_len) {
            n = io->src_len - io->consumed;
            if (n > STEP)
                n = STEP;
            r = LZ4F_compressUpdate(l->c, l->stage, l->stage_cap, io->src + io->consumed, n, NULL);
            io->consumed += n;
        } else if (flush == SYNTH_FLUSH_SYNC && !flushed) {
            r = LZ4F_flush(l->c, l->stage, l->stage_cap, NULL);
            flushed = 1;
        } else if (flush == SYNTH_FLUSH_FINISH && !l->ended) {
            r = LZ4F_compressEnd(l->c, l->stage, l->stage_cap, NULL);
            l->ended = 1;
        } else {
            break;
        }
        if (LZ4F_isError(r))
            return SYNTH_ST_DEVICE_ERROR;
        l->stage_len = r;
    }
    io->flags = 0;
    if (l->ended && l->stage_pos == l->stage_len)
        io->flags |= SYNTH_COMP_IO_END;
    else if (l->stage_pos < l->stage_len || flush == SYNTH_FLUSH_FINISH ||
             (flush == SYNTH_FLUSH_SYNC && !flushed))
        io->flags |= SYNTH_COMP_IO_PENDING;
    return SYNTH_ST_OK;
}

static uint32_t lz4_stream(void *cp, uint32_t flush, struct synth_comp_io *io)
{
    struct lctx *l = cp;
    size_t sn = io->src_len, dn = io->dst_len, r;

    if (l->dir == SYNTH_COMP_DIR_COMPRESS)
        return compress_stream(l, flush, io);
    io->flags = 0;
    if (decode(l, io->src, &sn, io->dst, &dn, &r) != SYNTH_ST_OK)
        return SYNTH_ST_BAD_DATA;
    io->consumed = sn;
    io->produced = dn;
    if (r == 0)
        io->flags |= SYNTH_COMP_IO_END;
    else if (dn == io->dst_len)
        io->flags |= SYNTH_COMP_IO_PENDING;
    return SYNTH_ST_OK;
}

static const struct synth_plugin lz4_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_COMPRESS,
    .name = "lz4",
    .description = "liblz4 frame format (content checksum, levels -16..12: fast and HC)",
    .priority = 10,
    .probe = lz4_probe,
    .alg_mask = lz4_alg_mask,
    .comp_levels = lz4_levels,
    .comp_ctx_size = lz4_ctx_size,
    .comp_ctx_create = lz4_ctx_create,
    .comp_ctx_destroy = lz4_ctx_destroy,
    .comp_oneshot = lz4_oneshot,
    .comp_stream = lz4_stream,
    .cpu_features = "", /* the library picks its code path at run time */
    .comp_caps = SYNTH_COMP_CAP_DECODES_IN_PLACE,
};

const struct synth_plugin *synth_plugin_lz4(void) { return &lz4_plugin; }
