/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Region layout: where the rings and arenas of a device region go. The host computes the layout
 * once when it lays a region out and keeps that copy; a guest driver checks the layout it reads
 * from the header page with synth_layout_check() before touching any ring.
 */
#ifndef SYNTH_LAYOUT_H
#define SYNTH_LAYOUT_H

#include <stdint.h>

#include "synth/device_core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct synth_layout {
    uint64_t region_size;
    uint32_t num_queues;
    uint32_t ring_entries;
    uint64_t sq_bytes; /* bytes of one submission ring, page aligned */
    uint64_t cq_bytes; /* bytes of one completion ring, page aligned */
    struct synth_queue_info queues[SYNTH_MAX_QUEUES];
};

/*
 * Compute the layout of a region of region_size bytes with num_queues queue pairs of ring_entries
 * entries each; arenas share what is left, equally, in whole pages.
 * Returns 0, -EINVAL (size not a power of two or out of range, ring size not a power of two or out
 * of range, queue count out of range) or -ENOSPC (no room for at least one arena page per queue).
 */
int synth_layout_compute(uint64_t region_size, uint32_t num_queues, uint32_t ring_entries,
                         struct synth_layout *out);

/*
 * Check a header copied out of a mapped region of mapped_size bytes and, if it is a well-formed
 * device of this ABI major version, fill *out from it.
 * Returns 0, -EPROTO (bad magic), -EPROTONOSUPPORT (other ABI major), or -EINVAL (inconsistent
 * layout: sizes, offsets outside the region, overlapping rings or arenas).
 */
int synth_layout_check(const struct synth_dev_header *hdr, uint64_t mapped_size,
                       struct synth_layout *out);

/* Write the identity, layout and queue table of *l into a zeroed header. */
void synth_layout_write_header(const struct synth_layout *l, struct synth_dev_header *hdr);

/* 1 if x is a power of two (and not 0). */
static inline int synth_is_pow2_u64(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* 1 if [off, off + len) lies inside [0, size); overflow safe. */
static inline int synth_range_ok(uint64_t size, uint64_t off, uint64_t len)
{
    return off <= size && len <= size - off;
}

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_LAYOUT_H */
