/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsynth, compression class: one-shot compress and decompress of arena buffers, and streams.
 * Included by synth/guest.h. Threading and return values as in guest.h: functions return 0 or a
 * negative errno, and the synchronous helpers may also return a positive SYNTH_ST_*, the device's
 * verdict on the operation.
 *
 * A stream, as a driver runs it (see docs/compression.md):
 *
 *   synth_comp_stream_create(q, &params, &id);
 *   for each chunk of at most cfg.max_chunk bytes (the last one with SYNTH_FLUSH_FINISH):
 *       synth_comp_stream_feed(q, id, flush, chunk_off, chunk_len, out_off, out_len, sink, arg, &flags);
 *   synth_comp_stream_destroy(q, id);
 *
 * synth_comp_stream_feed hands the chunk over, then drains with empty ops while the host says
 * MORE, passing each piece of output to sink. A compression stream is complete once FINISH has
 * returned with SYNTH_CPL_F_END in flags; a decompression stream once END comes back.
 */
#ifndef SYNTH_GUEST_COMPRESS_H
#define SYNTH_GUEST_COMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "synth/compress_core.h"
#include "synth/guest.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The device's compression configuration: 0, or -ENODEV (not a compression device). */
int synth_comp_get_cfg(const struct synth_dev *dev, struct synth_comp_cfg *cfg);

/* Fill a COMPRESS (level: 0 for the default) or DECOMPRESS descriptor over arena offsets. */
static inline void synth_comp_desc(struct synth_desc *d, uint16_t opcode, uint32_t alg, int32_t level,
                                   uint32_t src_off, uint32_t src_len, uint32_t dst_off, uint32_t dst_len,
                                   uint64_t cookie)
{
    memset(d, 0, sizeof(*d));
    d->cookie = cookie;
    d->opcode = opcode;
    d->src_off = src_off;
    d->src_len = src_len;
    d->dst_off = dst_off;
    d->dst_len = dst_len;
    d->arg[0] = alg;
    d->arg[1] = (uint32_t)level;
}

/* Fill a STREAM descriptor: src may be empty (a drain); flush is SYNTH_FLUSH_*. */
static inline void synth_comp_stream_desc(struct synth_desc *d, uint32_t stream, uint32_t flush,
                                          uint32_t src_off, uint32_t src_len, uint32_t dst_off,
                                          uint32_t dst_len, uint64_t cookie)
{
    memset(d, 0, sizeof(*d));
    d->cookie = cookie;
    d->opcode = SYNTH_OP_COMP_STREAM;
    d->session = stream;
    d->src_off = src_off;
    d->src_len = src_len;
    d->dst_off = dst_off;
    d->dst_len = dst_len;
    d->arg[0] = flush;
}

/*
 * Synchronous one-shot ops on arena buffers. Return 0 with *out_len = bytes written at dst_off;
 * SYNTH_ST_NO_SPACE with *out_len = bytes needed (decompression: 0 when unknown, and for zstd
 * frames without a content size a bound that suffices); another positive SYNTH_ST_* (INVALID,
 * NOT_SUPPORTED, BAD_DATA, LIMIT, ...); or a negative errno (-EBUSY, -ETIMEDOUT, -EIO).
 */
int synth_comp_compress(struct synth_queue *q, uint32_t alg, int32_t level, uint32_t src_off, uint32_t src_len,
                        uint32_t dst_off, uint32_t dst_len, uint32_t *out_len);
int synth_comp_decompress(struct synth_queue *q, uint32_t alg, uint32_t src_off, uint32_t src_len,
                          uint32_t dst_off, uint32_t dst_len, uint32_t *out_len);

/*
 * Create a stream (the parameters go through a scratch arena buffer). Returns 0 with *id set, a
 * positive SYNTH_ST_* (INVALID, NOT_SUPPORTED, NO_RESOURCES), or a negative errno.
 */
int synth_comp_stream_create(struct synth_queue *q, const struct synth_comp_stream_params *p, uint32_t *id);
/* Destroy a stream: 0, SYNTH_ST_NO_SESSION, or a negative errno. */
int synth_comp_stream_destroy(struct synth_queue *q, uint32_t id);

/*
 * One synchronous STREAM op. Returns 0 with *out_len (bytes written at dst_off) and *flags
 * (SYNTH_CPL_F_MORE, SYNTH_CPL_F_END); a positive SYNTH_ST_*; or a negative errno.
 */
int synth_comp_stream_op(struct synth_queue *q, uint32_t id, uint32_t flush, uint32_t src_off, uint32_t src_len,
                         uint32_t dst_off, uint32_t dst_len, uint32_t *out_len, uint16_t *flags);

/* Receives each piece of a stream's output (in the arena, valid until the call returns): 0 to go on. */
typedef int (*synth_comp_sink_fn)(void *arg, const void *data, size_t len);

/*
 * Hand one chunk to a stream and drain its output through sink, using the arena buffer at dst_off
 * (dst_len bytes) for each piece. Returns 0 once MORE is clear, with *flags as the last completion
 * had them (SYNTH_CPL_F_END: the stream ended); a positive SYNTH_ST_*; a negative errno; or the
 * sink's non-zero return value, negated if it was positive... returned as is when negative.
 */
int synth_comp_stream_feed(struct synth_queue *q, uint32_t id, uint32_t flush, uint32_t src_off, uint32_t src_len,
                           uint32_t dst_off, uint32_t dst_len, synth_comp_sink_fn sink, void *arg, uint16_t *flags);

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_GUEST_COMPRESS_H */
