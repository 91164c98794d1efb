/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt-synth device ABI, compression class (SYNTH_CLASS_COMPRESS): opcodes, algorithms, flush
 * modes, the stream parameter block and the class configuration block. Shared by guest and host;
 * docs/device-abi.md, section "Compression class", is the specification, docs/compression.md the
 * guide.
 *
 * One-shot ops take a whole buffer and produce a whole buffer: COMPRESS writes exactly one
 * complete frame (stream, member), DECOMPRESS reads exactly one. Streams keep (de)compressor state
 * on the host across ops: each STREAM op hands the host one chunk of input (src_len <= max_chunk);
 * the host consumes all of it (keeping in host memory what the output buffer could not take yet),
 * writes what output fits, and sets SYNTH_CPL_F_MORE when output is still pending: the driver then
 * submits STREAM ops with no input until MORE is clear. SYNTH_CPL_F_END marks the end of a
 * compressed stream (decompression) or of the finished output (compression with FLUSH_FINISH).
 * cpl.result is the number of bytes written at dst_off.
 */
#ifndef SYNTH_COMPRESS_CORE_H
#define SYNTH_COMPRESS_CORE_H

#include "synth/device_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Opcodes. Fields an opcode does not name are ignored (drivers write 0).
 *   COMPRESS       src -> dst; arg[0] = alg, arg[1] = level (int32); result = compressed size
 *   DECOMPRESS     src (exactly one frame) -> dst; arg[0] = alg; result = decompressed size
 *   STREAM_CREATE  src = struct synth_comp_stream_params (src_len = 16); result = stream id
 *   STREAM_DESTROY session = stream id
 *   STREAM         session = stream id; src chunk (may be empty) -> dst; arg[0] = flush mode;
 *                  result = bytes written to dst; completion flags MORE and END
 */
#define SYNTH_OP_COMP_COMPRESS 0x20u
#define SYNTH_OP_COMP_DECOMPRESS 0x21u
#define SYNTH_OP_COMP_STREAM_CREATE 0x22u
#define SYNTH_OP_COMP_STREAM_DESTROY 0x23u
#define SYNTH_OP_COMP_STREAM 0x24u

/* Class feature bits (high half of the feature word). */
#define SYNTH_COMP_F_STREAMS (1ULL << 32) /* the three STREAM opcodes */

/* Algorithms (arg[0] of one-shot ops, synth_comp_stream_params.alg). */
#define SYNTH_CALG_DEFLATE 1u /* raw deflate, RFC 1951 */
#define SYNTH_CALG_ZLIB 2u    /* zlib framing, RFC 1950 (no preset dictionary) */
#define SYNTH_CALG_GZIP 3u    /* gzip framing, RFC 1952 (one member) */
#define SYNTH_CALG_ZSTD 4u    /* Zstandard frame, RFC 8878 (one frame; the device writes a checksum) */
#define SYNTH_CALG_LZ4 5u     /* LZ4 frame format (one frame; the device writes a content checksum) */
#define SYNTH_CALG_MAX 6u

/* Flush modes (arg[0] of STREAM ops). Decompression streams take them as well: see below. */
#define SYNTH_FLUSH_NONE 0u   /* the host may keep output back for better compression */
#define SYNTH_FLUSH_SYNC 1u   /* all input so far becomes decodable output (byte-aligned) */
#define SYNTH_FLUSH_FINISH 2u /* end the stream; no input may follow */

/* Stream directions. */
#define SYNTH_COMP_DIR_COMPRESS 0u
#define SYNTH_COMP_DIR_DECOMPRESS 1u

/*
 * Levels. 0 in a descriptor or a stream means the device's default for the algorithm
 * (synth_comp_cfg.levels[alg].dflt: deflate family 6, zstd 3, lz4 1 unless the device is pinned
 * to a plugin that lacks that level). Other levels are the library's own:
 *   deflate, zlib, gzip  1..9 (zlib); -1 and 1..3 are igzip's levels 0 and 1..3 (ISA-L)
 *   zstd                 -5..19 (negative: zstd's fast modes)
 *   lz4                  -16..12 (negative: acceleration 1 - level; 1 and 2 are lz4's fast mode,
 *                        3..12 its HC levels)
 * A device serves the levels in [levels[alg].min, levels[alg].max].
 */
#define SYNTH_COMP_LEVEL_DEFAULT 0

/*
 * Worst-case compressed size of n input bytes for every algorithm and level: a COMPRESS whose
 * dst_len is at least this never completes with NO_SPACE.
 */
#define SYNTH_COMP_BOUND(n) ((uint64_t)(n) + ((uint64_t)(n) >> 7) + 1024u)

static inline uint64_t synth_comp_bound(uint64_t n) { return SYNTH_COMP_BOUND(n); }

/* Stream parameters, named by src_off/src_len of a STREAM_CREATE (src_len == sizeof). */
struct synth_comp_stream_params {
    uint16_t alg;       /* 0 SYNTH_CALG_* */
    uint16_t direction; /* 2 SYNTH_COMP_DIR_* */
    int32_t level;      /* 4 compression streams: level (0: default); decompression streams: 0 */
    uint32_t flags;     /* 8 must be 0 */
    uint32_t reserved;  /* 12 must be 0 */
};

SYNTH_STATIC_ASSERT(sizeof(struct synth_comp_stream_params) == 16, "stream params are 16 bytes");
SYNTH_STATIC_ASSERT(offsetof(struct synth_comp_stream_params, level) == 4, "level at 4");

/* Compression levels a device serves for one algorithm (all zero: the algorithm is not served). */
struct synth_comp_levels {
    int16_t min;       /* 0 lowest level accepted */
    int16_t max;       /* 2 highest level accepted */
    int16_t dflt;      /* 4 what level 0 means */
    uint16_t reserved; /* 6 */
};

SYNTH_STATIC_ASSERT(sizeof(struct synth_comp_levels) == 8, "levels entry is 8 bytes");

/* Class configuration block (header.class_cfg) of a compression device; host-written. */
struct synth_comp_cfg {
    uint32_t alg_mask;          /*   0 bit (1 << SYNTH_CALG_*) for each algorithm served */
    uint32_t max_streams;       /*   4 streams the device holds at once */
    uint32_t max_chunk;         /*   8 longest src_len of any op (longer: LIMIT) */
    uint32_t zstd_window_log;   /*  12 largest zstd window (log2 bytes) decompression accepts and
                                 *     compression uses (larger: LIMIT) */
    uint64_t max_stream_output; /*  16 most bytes one stream may produce in total */
    uint64_t max_count;         /*  24 the most a one-shot DECOMPRESS decodes to count the size it
                                 *     reports with NO_SPACE (larger: LIMIT); ABI 1.1 (0 before:
                                 *     max_stream_output) */
    struct synth_comp_levels levels[8]; /* 32 levels[alg] for 0 < alg < SYNTH_CALG_MAX */
    uint32_t reserved[8];       /*  96 */
};

SYNTH_STATIC_ASSERT(sizeof(struct synth_comp_cfg) == 128, "compress cfg is 128 bytes");
SYNTH_STATIC_ASSERT(offsetof(struct synth_comp_cfg, max_stream_output) == 16, "max_stream_output");
SYNTH_STATIC_ASSERT(offsetof(struct synth_comp_cfg, max_count) == 24, "max_count");
SYNTH_STATIC_ASSERT(offsetof(struct synth_comp_cfg, levels) == 32, "levels");
SYNTH_STATIC_ASSERT(sizeof(struct synth_comp_cfg) <= SYNTH_CLASS_CFG_SIZE, "fits the cfg block");

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_COMPRESS_CORE_H */
