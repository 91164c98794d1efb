/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: a hostile guest drives a compression device (one-shot ops and streams) served
 * by the compression plugins; see fuzz.h for the input format and the oracle.
 *
 *   setup[0]   bits 0..2: the plugin (0 and 5..7: the class's choice, 1 zlib, 2 isal, 3 zstd,
 *              4 lz4); bit 3: 2 streams (else 8); bit 4: streams end after 16 KiB of output;
 *              bit 5: zstd window 2^23 (else 2^12). Chunks are 4 KiB (the smallest the host takes).
 *   DESC       class arguments: a:u8 [u32 if a >= 0xf0] level:u8 (arg[0]: algorithm, or the flush
 *              mode of a STREAM op; arg[1]: the level, signed)
 *   CREATE     q:u8 off:u16 alg:u8 dir:u8 level:u8 [flags:u32 reserved:u32 if dir & 0x80]:
 *              stream parameters and the STREAM_CREATE naming them
 *   FRAME      q:u8 off:u16 alg:u8 level:u8 len:u16 given:u16 bytes[given] flip:u8 [dst of a DECOMPRESS if
 *              alg & 0x80]: one real frame of the algorithm, made by its library from len bytes (the
 *              first `given` from the input, the rest a pattern), at off (one byte flipped if flip),
 *              optionally followed by a DECOMPRESS of it
 */
#include <string.h>

#include <lz4frame.h>
#include <zlib.h>
#include <zstd.h>

#include "fuzz.h"
#include "synth/compress_host.h"

static const uint16_t opcodes[] = {
    SYNTH_OP_COMP_COMPRESS, SYNTH_OP_COMP_DECOMPRESS, SYNTH_OP_COMP_STREAM, SYNTH_OP_COMP_STREAM,
    SYNTH_OP_COMP_STREAM_CREATE, SYNTH_OP_COMP_STREAM_DESTROY, SYNTH_OP_NOP,
};

static int params(struct fz_harness *h, uint8_t s, struct synth_hdev_params *p)
{
    static const char *const pins[] = {NULL, "zlib", "isal", "zstd", "lz4", NULL, NULL, NULL};
    struct synth_comp_host_params *hp = (struct synth_comp_host_params *)(void *)h->scratch;

    _Static_assert(sizeof(*hp) <= sizeof(h->scratch), "host params fit the scratch area");
    memset(hp, 0, sizeof(*hp));
    if (pins[s & 7u]) {
        p->plugin = synth_plugin_find(pins[s & 7u]);
        if (!p->plugin)
            return -1;
    }
    hp->max_streams = (s & 8u) ? 2 : 8;
    hp->max_chunk = SYNTH_COMP_MIN_MAX_CHUNK;
    hp->max_stream_output = (s & 16u) ? 16384 : 0;
    hp->max_stream_memory = 64ull << 20;
    hp->zstd_window_log = (s & 32u) ? 23 : 12;
    p->class_params = hp;
    p->class_params_size = sizeof(*hp);
    return 0;
}

static void args(struct fz_harness *h, struct fz_in *in, struct synth_desc *d)
{
    uint8_t a = fz_u8(in);

    (void)h;
    if (a >= 0xf0u)
        d->arg[0] = fz_u32(in);
    else
        d->arg[0] = d->opcode == SYNTH_OP_COMP_STREAM ? a % 4u : a % (SYNTH_CALG_MAX + 1u);
    d->arg[1] = (uint32_t)(int32_t)(int8_t)fz_u8(in);
}

static void create(struct fz_harness *h, struct fz_in *in)
{
    struct synth_comp_stream_params sp;
    struct synth_desc d;
    uint32_t qi = fz_u8(in) % h->layout.num_queues, off = fz_u16(in) % h->q[qi].arena_size;
    uint8_t alg = fz_u8(in), dir = fz_u8(in), level = fz_u8(in);

    memset(&sp, 0, sizeof(sp));
    sp.alg = alg >= 0xf0u ? alg : (uint16_t)(1u + alg % (SYNTH_CALG_MAX - 1u));
    sp.direction = dir & 1u;
    sp.level = sp.direction == SYNTH_COMP_DIR_COMPRESS ? (int8_t)level : 0;
    if (dir & 0x80u) {
        sp.flags = fz_u32(in);
        sp.reserved = fz_u32(in);
    }
    if (off + sizeof(sp) > h->q[qi].arena_size)
        off = (uint32_t)(h->q[qi].arena_size - sizeof(sp));
    memcpy(h->q[qi].arena + off, &sp, sizeof(sp));
    memset(&d, 0, sizeof(d));
    d.opcode = SYNTH_OP_COMP_STREAM_CREATE;
    d.src_off = off;
    d.src_len = sizeof(sp);
    fz_submit(h, qi, &d);
}

/* Compress src into dst with the reference library of alg: the frame's size, or 0. */
static size_t make_frame(uint32_t alg, int level, const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    if (alg == SYNTH_CALG_ZSTD) {
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        size_t r = 0;
        if (cc && !ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level % 20)) &&
            !ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)))
            r = ZSTD_compress2(cc, dst, cap, src, n);
        ZSTD_freeCCtx(cc);
        return ZSTD_isError(r) ? 0 : r;
    }
    if (alg == SYNTH_CALG_LZ4) {
        LZ4F_preferences_t pr;
        size_t r;
        memset(&pr, 0, sizeof(pr));
        pr.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
        pr.compressionLevel = level % 13;
        if (LZ4F_compressFrameBound(n, &pr) > cap)
            return 0;
        r = LZ4F_compressFrame(dst, cap, src, n, &pr);
        return LZ4F_isError(r) ? 0 : r;
    } else {
        /* deflate family: raw, zlib, gzip framing */
        z_stream z;
        int bits = alg == SYNTH_CALG_DEFLATE ? -15 : alg == SYNTH_CALG_ZLIB ? 15 : 31;
        size_t r = 0;
        memset(&z, 0, sizeof(z));
        if (deflateInit2(&z, 1 + (level & 0x7fffffff) % 9, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return 0;
        z.next_in = (Bytef *)(uintptr_t)src;
        z.avail_in = (uInt)n;
        z.next_out = dst;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_FINISH) == Z_STREAM_END)
            r = z.total_out;
        deflateEnd(&z);
        return r;
    }
}

static void frame(struct fz_harness *h, struct fz_in *in)
{
    static uint8_t plain[SYNTH_COMP_MIN_MAX_CHUNK];
    uint32_t qi = fz_u8(in) % h->layout.num_queues;
    struct fz_queue *q = &h->q[qi];
    uint32_t off = fz_u16(in) % q->arena_size;
    uint8_t alg = fz_u8(in), level = fz_u8(in), flip;
    size_t n = fz_u16(in) % (sizeof(plain) + 1), len;
    uint32_t a = 1u + (alg & 0x7fu) % (SYNTH_CALG_MAX - 1u);

    fz_fill(in, plain, n, fz_u16(in));
    len = make_frame(a, level, plain, n, q->arena + off, q->arena_size - off);
    flip = fz_u8(in);
    if (len && flip)
        q->arena[off + (flip * 7u) % len] ^= 0x5au;
    if (alg & 0x80u) {
        struct synth_desc d;
        memset(&d, 0, sizeof(d));
        d.opcode = SYNTH_OP_COMP_DECOMPRESS;
        d.src_off = off;
        d.src_len = (uint32_t)len;
        d.dst_off = fz_off(h, in, qi);
        d.dst_len = fz_len(h, in, qi);
        d.arg[0] = a;
        fz_submit(h, qi, &d);
    }
}

static void outputs(struct fz_harness *h, uint32_t qi, const struct synth_desc *d)
{
    if (d->opcode == SYNTH_OP_COMP_COMPRESS || d->opcode == SYNTH_OP_COMP_DECOMPRESS ||
        d->opcode == SYNTH_OP_COMP_STREAM)
        fz_allow_arena(h, qi, d->dst_off, d->dst_len);
}

static void answer(struct fz_harness *h, uint32_t qi, const struct fz_pending *p, const struct synth_cpl *c)
{
    uint16_t fl = c->flags & (uint16_t)~SYNTH_CPL_F_PHASE;

    if (fl && (p->opcode != SYNTH_OP_COMP_STREAM || fl == (SYNTH_CPL_F_MORE | SYNTH_CPL_F_END)))
        fz_fail(h, "queue %u: flags %#x on a completion of opcode %#x", qi, fl, p->opcode);
    if (c->status == SYNTH_ST_OK && c->result > p->out_len &&
        (p->opcode == SYNTH_OP_COMP_COMPRESS || p->opcode == SYNTH_OP_COMP_DECOMPRESS ||
         p->opcode == SYNTH_OP_COMP_STREAM))
        fz_fail(h, "queue %u: %u bytes written into a destination of %u", qi, c->result, p->out_len);
    if (p->opcode == SYNTH_OP_COMP_STREAM_CREATE && c->status == SYNTH_ST_OK && h->nids < FZ_MAX_IDS)
        h->ids[h->nids++] = c->result;
}

static const struct fz_class compression = {
    .name = "compress",
    .dev_class = SYNTH_CLASS_COMPRESS,
    .region_size = 64u << 10,
    .num_queues = 2,
    .ring_entries = 8,
    .opcodes = opcodes,
    .nopcodes = sizeof(opcodes) / sizeof(opcodes[0]),
    .features = {SYNTH_COMP_F_STREAMS, 0, 0},
    .params = params,
    .args = args,
    .create = create,
    .frame = frame,
    .outputs = outputs,
    .answer = answer,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_run(&compression, data, size); }
