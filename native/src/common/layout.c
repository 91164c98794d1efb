/* SPDX-License-Identifier: Apache-2.0 */
/* Region layout: computed by the host, checked by the guest. */
#include <errno.h>
#include <string.h>

#include "synth/layout.h"

static uint64_t page_align(uint64_t x)
{
    return (x + SYNTH_PAGE_SIZE - 1) & ~(uint64_t)(SYNTH_PAGE_SIZE - 1);
}

static int ring_entries_ok(uint32_t n)
{
    return synth_is_pow2_u64(n) && n >= SYNTH_MIN_RING_ENTRIES && n <= SYNTH_MAX_RING_ENTRIES;
}

int synth_layout_compute(uint64_t region_size, uint32_t num_queues, uint32_t ring_entries,
                         struct synth_layout *out)
{
    uint64_t rings, left, arena;
    uint32_t i;

    if (!synth_is_pow2_u64(region_size) || region_size < SYNTH_MIN_REGION_SIZE ||
        region_size > SYNTH_MAX_REGION_SIZE)
        return -EINVAL;
    if (num_queues == 0 || num_queues > SYNTH_MAX_QUEUES || !ring_entries_ok(ring_entries))
        return -EINVAL;

    memset(out, 0, sizeof(*out));
    out->region_size = region_size;
    out->num_queues = num_queues;
    out->ring_entries = ring_entries;
    out->sq_bytes = page_align(SYNTH_RING_ENTRIES_OFF + (uint64_t)ring_entries * sizeof(struct synth_desc));
    out->cq_bytes = page_align(SYNTH_RING_ENTRIES_OFF + (uint64_t)ring_entries * sizeof(struct synth_cpl));

    rings = SYNTH_HEADER_SIZE + (uint64_t)num_queues * (out->sq_bytes + out->cq_bytes);
    if (rings >= region_size)
        return -ENOSPC;
    left = region_size - rings;
    arena = (left / num_queues) & ~(uint64_t)(SYNTH_PAGE_SIZE - 1);
    if (arena < SYNTH_PAGE_SIZE)
        return -ENOSPC;
    /* Arena offsets in descriptors are 32-bit. */
    if (arena > UINT32_MAX)
        arena = (uint64_t)UINT32_MAX + 1 - SYNTH_PAGE_SIZE;

    for (i = 0; i < num_queues; i++) {
        struct synth_queue_info *q = &out->queues[i];
        q->sq_off = SYNTH_HEADER_SIZE + (uint64_t)i * (out->sq_bytes + out->cq_bytes);
        q->cq_off = q->sq_off + out->sq_bytes;
        q->arena_off = rings + (uint64_t)i * arena;
        q->arena_size = arena;
    }
    return 0;
}

void synth_layout_write_header(const struct synth_layout *l, struct synth_dev_header *hdr)
{
    hdr->magic = SYNTH_MAGIC;
    hdr->abi_major = SYNTH_ABI_MAJOR;
    hdr->abi_minor = SYNTH_ABI_MINOR;
    hdr->num_queues = (uint16_t)l->num_queues;
    hdr->region_size = l->region_size;
    hdr->header_size = SYNTH_HEADER_SIZE;
    hdr->queue_table_off = SYNTH_QUEUE_TABLE_OFF;
    hdr->ring_entries = l->ring_entries;
    hdr->desc_size = sizeof(struct synth_desc);
    hdr->cpl_size = sizeof(struct synth_cpl);
    hdr->class_cfg_off = SYNTH_CLASS_CFG_OFF;
    hdr->class_cfg_size = SYNTH_CLASS_CFG_SIZE;
    memcpy(hdr->queues, l->queues, sizeof(l->queues[0]) * l->num_queues);
}

/* 1 if [a, a + alen) and [b, b + blen) intersect. */
static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

int synth_layout_check(const struct synth_dev_header *hdr, uint64_t mapped_size,
                       struct synth_layout *out)
{
    uint64_t sq_bytes, cq_bytes;
    uint32_t i, j, nq;

    if (hdr->magic != SYNTH_MAGIC)
        return -EPROTO;
    if (hdr->abi_major != SYNTH_ABI_MAJOR)
        return -EPROTONOSUPPORT;
    nq = hdr->num_queues;
    if (hdr->header_size != SYNTH_HEADER_SIZE || hdr->queue_table_off != SYNTH_QUEUE_TABLE_OFF ||
        hdr->desc_size != sizeof(struct synth_desc) || hdr->cpl_size != sizeof(struct synth_cpl) ||
        !synth_is_pow2_u64(hdr->region_size) || hdr->region_size > mapped_size ||
        nq == 0 || nq > SYNTH_MAX_QUEUES || !ring_entries_ok(hdr->ring_entries) ||
        hdr->class_cfg_off != SYNTH_CLASS_CFG_OFF || hdr->class_cfg_size != SYNTH_CLASS_CFG_SIZE)
        return -EINVAL;

    sq_bytes = SYNTH_RING_ENTRIES_OFF + (uint64_t)hdr->ring_entries * sizeof(struct synth_desc);
    cq_bytes = SYNTH_RING_ENTRIES_OFF + (uint64_t)hdr->ring_entries * sizeof(struct synth_cpl);

    memset(out, 0, sizeof(*out));
    out->region_size = hdr->region_size;
    out->num_queues = nq;
    out->ring_entries = hdr->ring_entries;
    out->sq_bytes = page_align(sq_bytes);
    out->cq_bytes = page_align(cq_bytes);
    for (i = 0; i < nq; i++) {
        const struct synth_queue_info *q = &hdr->queues[i];
        if (q->sq_off < SYNTH_HEADER_SIZE || q->cq_off < SYNTH_HEADER_SIZE ||
            q->arena_off < SYNTH_HEADER_SIZE || (q->sq_off % SYNTH_CACHELINE) ||
            (q->cq_off % SYNTH_CACHELINE) || !synth_range_ok(hdr->region_size, q->sq_off, sq_bytes) ||
            !synth_range_ok(hdr->region_size, q->cq_off, cq_bytes) ||
            !synth_range_ok(hdr->region_size, q->arena_off, q->arena_size) ||
            q->arena_size == 0 || q->arena_size > UINT32_MAX ||
            overlaps(q->sq_off, sq_bytes, q->cq_off, cq_bytes) ||
            overlaps(q->sq_off, sq_bytes, q->arena_off, q->arena_size) ||
            overlaps(q->cq_off, cq_bytes, q->arena_off, q->arena_size))
            return -EINVAL;
        for (j = 0; j < i; j++) {
            const struct synth_queue_info *p = &hdr->queues[j];
            /* No part of queue i may overlap any part of queue j. */
            const uint64_t qo[3] = {q->sq_off, q->cq_off, q->arena_off};
            const uint64_t ql[3] = {sq_bytes, cq_bytes, q->arena_size};
            const uint64_t po[3] = {p->sq_off, p->cq_off, p->arena_off};
            const uint64_t pl[3] = {sq_bytes, cq_bytes, p->arena_size};
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    if (overlaps(qo[a], ql[a], po[b], pl[b]))
                        return -EINVAL;
        }
        out->queues[i] = *q;
    }
    return 0;
}
