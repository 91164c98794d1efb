/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression plugin over ISA-L igzip: deflate in its three framings, the fastest deflate here.
 *
 * Levels: igzip has levels 0..3. Descriptor levels 1, 2 and 3 are igzip's 1, 2 and 3; descriptor
 * level -1 is igzip's level 0 (its fastest, the "negative levels are fast modes" convention of
 * zstd), since level 0 in a descriptor means "default". The plugin's own default is 2 (python-isal's
 * too); a device that has zlib as well uses zlib's default 6, which igzip lacks.
 *
 * One-shot compression is isal_deflate_stateless, which never expands data by more than stored
 * blocks do; streams use the stateful isal_deflate. Decompression of every framing is the stateful
 * isal_inflate with the framing's checksum verified (gzip: CRC-32 and ISIZE; zlib: Adler-32). A
 * context allocates its state and the level buffer at create; igzip itself never allocates.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l.h>

#include "synth/plugin.h"

#define DISCARD 32768u

struct ictx {
    union {                      /* first: the allocation is 64-byte aligned */
        struct isal_zstream z;   /* compression */
        struct inflate_state st; /* decompression */
    };
    uint32_t alg;
    uint32_t dir;
    uint32_t level;              /* streams: igzip level */
    uint32_t level_buf_size;
    uint8_t *level_buf;
    uint8_t *discard;            /* one-shot decompression: output past dst is counted here */
    uint8_t hdr[4];              /* decompression: the framing's first bytes, checked as zlib does */
    uint32_t hdr_len;
};

static int isal_probe(char *why, size_t why_len)
{
    snprintf(why, why_len, "ISA-L igzip %d.%d.%d", ISAL_MAJOR_VERSION, ISAL_MINOR_VERSION, ISAL_PATCH_VERSION);
    return 0;
}

static uint32_t isal_alg_mask(void)
{
    return (1u << SYNTH_CALG_DEFLATE) | (1u << SYNTH_CALG_ZLIB) | (1u << SYNTH_CALG_GZIP);
}

static int isal_levels(uint32_t alg, int32_t *min, int32_t *max, int32_t *dflt)
{
    if (!(isal_alg_mask() & (1u << alg)))
        return -ENOTSUP;
    *min = -1;
    *max = 3;
    *dflt = 2;
    return 0;
}

/* Descriptor level -> igzip level, or -1 if none (0 is resolved by the class before this). */
static int igzip_level(int32_t level)
{
    if (level == -1)
        return 0;
    return level >= 1 && level <= 3 ? level : -1;
}

static uint32_t level_buf_size(int lvl)
{
    switch (lvl) {
    case 1:
        return ISAL_DEF_LVL1_DEFAULT;
    case 2:
        return ISAL_DEF_LVL2_DEFAULT;
    case 3:
        return ISAL_DEF_LVL3_DEFAULT;
    default:
        return 0;
    }
}

static uint32_t max_level_buf(void)
{
    uint32_t m = ISAL_DEF_LVL1_DEFAULT;
    if (ISAL_DEF_LVL2_DEFAULT > m)
        m = ISAL_DEF_LVL2_DEFAULT;
    if (ISAL_DEF_LVL3_DEFAULT > m)
        m = ISAL_DEF_LVL3_DEFAULT;
    return m;
}

static uint16_t gzip_flag(uint32_t alg)
{
    return alg == SYNTH_CALG_GZIP ? IGZIP_GZIP : alg == SYNTH_CALG_ZLIB ? IGZIP_ZLIB : IGZIP_DEFLATE;
}

static uint32_t crc_flag(uint32_t alg)
{
    return alg == SYNTH_CALG_GZIP ? ISAL_GZIP : alg == SYNTH_CALG_ZLIB ? ISAL_ZLIB : ISAL_DEFLATE;
}

static size_t ctx_bytes(const struct synth_comp_ctx_params *p, uint32_t *lbuf, uint32_t *discard)
{
    *lbuf = 0;
    *discard = 0;
    if (p->direction == SYNTH_COMP_DIR_COMPRESS)
        *lbuf = p->oneshot ? max_level_buf() : level_buf_size(igzip_level(p->level));
    else if (p->oneshot)
        *discard = DISCARD;
    return sizeof(struct ictx) + *lbuf + *discard;
}

static size_t isal_ctx_size(const struct synth_comp_ctx_params *p)
{
    uint32_t l, d;
    return ctx_bytes(p, &l, &d);
}

static void isal_ctx_destroy(void *cp) { free(cp); }

static int isal_ctx_create(const struct synth_comp_ctx_params *p, void **out)
{
    uint32_t lbuf, discard;
    size_t n = ctx_bytes(p, &lbuf, &discard);
    struct ictx *c;

    if (!(isal_alg_mask() & (1u << p->alg)) || p->direction > SYNTH_COMP_DIR_DECOMPRESS)
        return -ENOTSUP;
    if (p->direction == SYNTH_COMP_DIR_COMPRESS && !p->oneshot && igzip_level(p->level) < 0)
        return -EINVAL;
    if (posix_memalign((void **)&c, 64, n) != 0)
        return -ENOMEM;
    memset(c, 0, sizeof(*c));
    c->alg = p->alg;
    c->dir = p->direction;
    c->level_buf_size = lbuf;
    c->level_buf = lbuf ? (uint8_t *)(c + 1) : NULL;
    c->discard = discard ? (uint8_t *)(c + 1) : NULL;
    if (p->direction == SYNTH_COMP_DIR_COMPRESS && !p->oneshot) {
        c->level = (uint32_t)igzip_level(p->level);
        isal_deflate_init(&c->z);
        c->z.level = c->level;
        c->z.level_buf = c->level_buf;
        c->z.level_buf_size = c->level_buf_size;
        c->z.gzip_flag = gzip_flag(p->alg);
    } else if (p->direction == SYNTH_COMP_DIR_DECOMPRESS) {
        isal_inflate_init(&c->st);
        c->st.crc_flag = crc_flag(p->alg);
    }
    *out = c;
    return 0;
}

/*
 * Input the decoder took but did not use, at the end of the frame: igzip reads ahead into its bit
 * buffer, so avail_in alone undercounts what is left after the frame.
 */
static size_t unused_in(const struct inflate_state *st)
{
    return (size_t)st->avail_in + (size_t)(st->read_in_length > 0 ? st->read_in_length / 8 : 0);
}

static uint32_t inflate_status(int rc)
{
    /* ISAL_NEED_DICT (zlib FDICT) is positive: there is no dictionary, so it is bad data too. */
    return rc == ISAL_DECOMP_OK ? SYNTH_ST_OK : SYNTH_ST_BAD_DATA;
}

/*
 * igzip's header parser takes what zlib (the reference) refuses: zlib with CINFO above 7 (a window
 * over 32 KiB) or a header check that fails, gzip with a reserved FLG bit set. Check the framing's
 * first bytes as zlib does, as they arrive (a stream may bring them one at a time).
 */
static uint32_t check_header(struct ictx *c, const uint8_t *src, size_t len)
{
    uint32_t need = c->alg == SYNTH_CALG_ZLIB ? 2 : c->alg == SYNTH_CALG_GZIP ? 4 : 0;
    const uint8_t *h = c->hdr;

    if (c->hdr_len >= need)
        return SYNTH_ST_OK;
    while (c->hdr_len < need && len--)
        c->hdr[c->hdr_len++] = *src++;
    if (c->hdr_len < need)
        return SYNTH_ST_OK; /* not all here yet */
    if (c->alg == SYNTH_CALG_ZLIB)
        return (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 && ((uint32_t)h[0] << 8 | h[1]) % 31 == 0
                   ? SYNTH_ST_OK : SYNTH_ST_BAD_DATA;
    return h[0] == 0x1f && h[1] == 0x8b && h[2] == 8 && (h[3] & 0xe0) == 0 ? SYNTH_ST_OK : SYNTH_ST_BAD_DATA;
}

static uint32_t count_rest(struct ictx *c, struct synth_comp_io *io)
{
    uint64_t total = io->produced;
    uint32_t before;
    int rc;

    for (;;) {
        c->st.next_out = c->discard;
        c->st.avail_out = DISCARD;
        before = c->st.avail_in;
        rc = isal_inflate(&c->st);
        total += DISCARD - c->st.avail_out;
        if (rc != ISAL_DECOMP_OK)
            return SYNTH_ST_BAD_DATA;
        if (total > io->limit)
            return SYNTH_ST_LIMIT;
        if (c->st.block_state == ISAL_BLOCK_FINISH) {
            if (unused_in(&c->st))
                return SYNTH_ST_BAD_DATA;
            if (total == io->produced)
                return SYNTH_ST_OK;
            io->needed = total;
            return SYNTH_ST_NO_SPACE;
        }
        if (c->st.avail_out == DISCARD && c->st.avail_in == before)
            return SYNTH_ST_BAD_DATA; /* truncated: no progress */
    }
}

static uint32_t isal_oneshot(void *cp, int32_t level, struct synth_comp_io *io)
{
    struct ictx *c = cp;
    int lvl, rc;

    if (io->src_len > UINT32_MAX || io->dst_len > UINT32_MAX)
        return SYNTH_ST_DEVICE_ERROR;
    if (c->dir == SYNTH_COMP_DIR_COMPRESS) {
        lvl = igzip_level(level);
        if (lvl < 0)
            return SYNTH_ST_NOT_SUPPORTED;
        isal_deflate_stateless_init(&c->z);
        c->z.next_in = (uint8_t *)(uintptr_t)io->src;
        c->z.avail_in = (uint32_t)io->src_len;
        c->z.next_out = io->dst;
        c->z.avail_out = (uint32_t)io->dst_len;
        c->z.level = (uint32_t)lvl;
        c->z.level_buf = lvl ? c->level_buf : NULL;
        c->z.level_buf_size = lvl ? level_buf_size(lvl) : 0;
        c->z.gzip_flag = gzip_flag(c->alg);
        c->z.end_of_stream = 1;
        c->z.flush = NO_FLUSH;
        rc = isal_deflate_stateless(&c->z);
        io->consumed = io->src_len;
        io->produced = c->z.total_out;
        return rc == COMP_OK ? SYNTH_ST_OK : rc == STATELESS_OVERFLOW ? SYNTH_ST_NO_SPACE : SYNTH_ST_DEVICE_ERROR;
    }
    isal_inflate_reset(&c->st);
    c->hdr_len = 0;
    if (check_header(c, io->src, io->src_len) != SYNTH_ST_OK)
        return SYNTH_ST_BAD_DATA;
    c->st.crc_flag = crc_flag(c->alg);
    c->st.next_in = (uint8_t *)(uintptr_t)io->src;
    c->st.avail_in = (uint32_t)io->src_len;
    c->st.next_out = io->dst;
    c->st.avail_out = (uint32_t)io->dst_len;
    rc = isal_inflate(&c->st);
    io->produced = io->dst_len - c->st.avail_out;
    io->consumed = io->src_len - c->st.avail_in;
    if (rc != ISAL_DECOMP_OK)
        return inflate_status(rc);
    if (c->st.block_state == ISAL_BLOCK_FINISH)
        return unused_in(&c->st) ? SYNTH_ST_BAD_DATA : SYNTH_ST_OK;
    if (c->st.avail_out != 0)
        return SYNTH_ST_BAD_DATA; /* truncated */
    return count_rest(c, io);
}

static uint32_t isal_stream(void *cp, uint32_t flush, struct synth_comp_io *io)
{
    struct ictx *c = cp;
    int rc;

    if (io->src_len > UINT32_MAX || io->dst_len > UINT32_MAX)
        return SYNTH_ST_DEVICE_ERROR;
    io->flags = 0;
    if (c->dir == SYNTH_COMP_DIR_COMPRESS) {
        c->z.next_in = (uint8_t *)(uintptr_t)io->src;
        c->z.avail_in = (uint32_t)io->src_len;
        c->z.next_out = io->dst;
        c->z.avail_out = (uint32_t)io->dst_len;
        c->z.flush = flush == SYNTH_FLUSH_SYNC ? SYNC_FLUSH : NO_FLUSH;
        c->z.end_of_stream = flush == SYNTH_FLUSH_FINISH;
        rc = isal_deflate(&c->z);
        if (rc != COMP_OK)
            return SYNTH_ST_DEVICE_ERROR;
        io->consumed = io->src_len - c->z.avail_in;
        io->produced = io->dst_len - c->z.avail_out;
        if (c->z.internal_state.state == ZSTATE_END)
            io->flags |= SYNTH_COMP_IO_END;
        else if (flush == SYNTH_FLUSH_FINISH)
            io->flags |= SYNTH_COMP_IO_PENDING;
        else if (flush == SYNTH_FLUSH_SYNC)
            /* igzip: the flush is complete once output space is left or a new block would start. */
            io->flags |= (c->z.avail_out > 0 || c->z.internal_state.state == ZSTATE_NEW_HDR)
                             ? 0 : SYNTH_COMP_IO_PENDING;
        else if (c->z.avail_out == 0)
            io->flags |= SYNTH_COMP_IO_PENDING;
        return SYNTH_ST_OK;
    }
    if (check_header(c, io->src, io->src_len) != SYNTH_ST_OK)
        return SYNTH_ST_BAD_DATA;
    c->st.next_in = (uint8_t *)(uintptr_t)io->src;
    c->st.avail_in = (uint32_t)io->src_len;
    c->st.next_out = io->dst;
    c->st.avail_out = (uint32_t)io->dst_len;
    rc = isal_inflate(&c->st);
    io->produced = io->dst_len - c->st.avail_out;
    if (rc != ISAL_DECOMP_OK)
        return inflate_status(rc);
    if (c->st.block_state == ISAL_BLOCK_FINISH) {
        size_t unused = unused_in(&c->st);
        io->consumed = io->src_len - (unused < io->src_len ? unused : io->src_len);
        io->flags |= SYNTH_COMP_IO_END;
    } else {
        io->consumed = io->src_len - c->st.avail_in;
        if (c->st.avail_out == 0)
            io->flags |= SYNTH_COMP_IO_PENDING;
    }
    return SYNTH_ST_OK;
}

static const struct synth_plugin isal_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_COMPRESS,
    .name = "isal",
    .description = "ISA-L igzip (deflate, zlib and gzip framings; igzip levels 0-3 as -1, 1-3)",
    .priority = 30,
    .probe = isal_probe,
    .alg_mask = isal_alg_mask,
    .comp_levels = isal_levels,
    .comp_ctx_size = isal_ctx_size,
    .comp_ctx_create = isal_ctx_create,
    .comp_ctx_destroy = isal_ctx_destroy,
    .comp_oneshot = isal_oneshot,
    .comp_stream = isal_stream,
    .cpu_features = "", /* the library picks its code path at run time */
};

const struct synth_plugin *synth_plugin_isal(void) { return &isal_plugin; }
