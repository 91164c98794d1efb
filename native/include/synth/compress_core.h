/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt-synth device ABI, compression class (SYNTH_CLASS_COMPRESS): opcodes, algorithms, the
 * stream parameter block and the class configuration block. See docs/device-abi.md, section
 * "Compression class".
 *
 * One-shot ops take a whole buffer and produce a whole buffer. Streams keep compressor state on
 * the host across ops: each STREAM op hands the host one chunk of input; the host consumes all of
 * it (keeping what the output buffer could not take yet), writes what output it can, and sets
 * SYNTH_CPL_F_MORE when output is still pending: the driver then submits STREAM ops with no input
 * until MORE is clear. SYNTH_CPL_F_END marks the end of a compressed stream (decompression) or of
 * the finished output (compression with FLUSH_FINISH).
 */
#ifndef SYNTH_COMPRESS_CORE_H
#define SYNTH_COMPRESS_CORE_H

#include "synth/device_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opcodes. */
#define SYNTH_OP_COMP_COMPRESS 0x20u        /* one-shot: src -> dst; arg[0] = alg, arg[1] = level */
#define SYNTH_OP_COMP_DECOMPRESS 0x21u      /* one-shot: src (exactly one stream) -> dst; arg[0] = alg */
#define SYNTH_OP_COMP_STREAM_CREATE 0x22u   /* src = struct synth_comp_stream_params; result = id */
#define SYNTH_OP_COMP_STREAM_DESTROY 0x23u  /* session = stream id */
#define SYNTH_OP_COMP_STREAM 0x24u          /* session = stream id; src chunk -> dst; arg[0] = flush */

/* Algorithms (arg[0] of one-shot ops, synth_comp_stream_params.alg). */
#define SYNTH_CALG_DEFLATE 1u /* raw deflate, RFC 1951 */
#define SYNTH_CALG_ZLIB 2u    /* zlib framing, RFC 1950 */
#define SYNTH_CALG_GZIP 3u    /* gzip framing, RFC 1952 (one member) */
#define SYNTH_CALG_ZSTD 4u    /* Zstandard frame, RFC 8878 */
#define SYNTH_CALG_LZ4 5u     /* LZ4 frame format */
#define SYNTH_CALG_MAX 6u

/* Flush modes (arg[0] of STREAM ops on a compression stream). */
#define SYNTH_FLUSH_NONE 0u   /* the host may keep output back for better compression */
#define SYNTH_FLUSH_SYNC 1u   /* all input so far becomes decodable output */
#define SYNTH_FLUSH_FINISH 2u /* end the stream; no input may follow */

/* Stream directions. */
#define SYNTH_COMP_DIR_COMPRESS 0u
#define SYNTH_COMP_DIR_DECOMPRESS 1u

/*
 * Level 0 in a descriptor or stream means "the algorithm's default" (zlib 6, zstd 3, lz4 0).
 * Otherwise levels are the library's own: deflate family 1..9, zstd 1..19 (negative: fast
 * modes down to -5), lz4 1..12.
 */
#define SYNTH_COMP_LEVEL_DEFAULT 0

/* Stream parameters, named by src_off/src_len of a STREAM_CREATE (src_len == sizeof). */
struct synth_comp_stream_params {
    uint16_t alg;       /* 0 SYNTH_CALG_* */
    uint16_t direction; /* 2 SYNTH_COMP_DIR_* */
    int32_t level;      /* 4 compression level (compression streams) */
    uint32_t flags;     /* 8 must be 0 */
    uint32_t reserved;  /* 12 must be 0 */
};

_Static_assert(sizeof(struct synth_comp_stream_params) == 16, "stream params are 16 bytes");

/* Class configuration block (header.class_cfg) of a compression device. */
struct synth_comp_cfg {
    uint32_t alg_mask;          /*  0 bit (1 << SYNTH_CALG_*) for each algorithm served */
    uint32_t max_streams;       /*  4 streams the device holds at once */
    uint32_t max_chunk;         /*  8 longest input of one op */
    uint32_t zstd_window_log;   /* 12 largest zstd window accepted when decompressing (log2 bytes) */
    uint64_t max_stream_output; /* 16 total output one stream may produce, then SYNTH_ST_LIMIT */
    uint32_t reserved[10];      /* 24 */
};

_Static_assert(sizeof(struct synth_comp_cfg) == 64, "compress cfg is 64 bytes");
_Static_assert(sizeof(struct synth_comp_cfg) <= SYNTH_CLASS_CFG_SIZE, "fits the cfg block");

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_COMPRESS_CORE_H */
