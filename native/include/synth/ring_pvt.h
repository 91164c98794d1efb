/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Single-producer/single-consumer rings over struct synth_ring_core: private inline helpers used by
 * both the guest library and the host data path. Not part of the public API.
 *
 * Each side keeps its own index in local memory (`local`) and never reads it back from the shared
 * ring, so the other side cannot rewind it. The peer's index is read once per call with an acquire
 * load and checked: a peer index that claims more than `size` entries in flight is reported as -1,
 * and the caller decides what that means (the host marks the device NEEDS_RESET).
 *
 * Memory order follows C11: the producer fills an entry and publishes it with a release store of
 * its sequence word (descriptor `seq`, completion phase bit); the consumer acquires that word,
 * copies the entry out, then releases the slot with a release store of cons, so a producer that
 * acquires cons never overwrites an entry still being read.
 */
#ifndef SYNTH_RING_PVT_H
#define SYNTH_RING_PVT_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "synth/device_core.h"

struct synth_ring {
    struct synth_ring_core *core; /* shared */
    uint8_t *entries;             /* shared, size * esz bytes */
    uint32_t size;                /* entries, power of two */
    uint32_t mask;
    uint32_t esz;                 /* entry size in bytes */
    uint32_t local;               /* our own index: prod for a producer, cons for a consumer */
    uint32_t peer;                /* last peer index read (producer: cons; consumer: prod) */
};

#define SYNTH_ATOMIC_U32(p) ((_Atomic uint32_t *)(void *)(p))

static inline uint32_t synthi_load_acquire_u32(const uint32_t *p)
{
    return atomic_load_explicit(SYNTH_ATOMIC_U32(p), memory_order_acquire);
}

static inline uint32_t synthi_load_relaxed_u32(const uint32_t *p)
{
    return atomic_load_explicit(SYNTH_ATOMIC_U32(p), memory_order_relaxed);
}

static inline void synthi_store_release_u32(uint32_t *p, uint32_t v)
{
    atomic_store_explicit(SYNTH_ATOMIC_U32(p), v, memory_order_release);
}

static inline void synthi_ring_init(struct synth_ring *r, void *core, uint32_t size, uint32_t esz)
{
    r->core = (struct synth_ring_core *)core;
    r->entries = (uint8_t *)core + SYNTH_RING_ENTRIES_OFF;
    r->size = size;
    r->mask = size - 1;
    r->esz = esz;
    r->local = 0;
    r->peer = 0;
}

/*
 * Producer: free slots, or -1 if the consumer's index is impossible. The consumer's index is read
 * from shared memory only when the last value read does not already show `want` free slots: each
 * read of the peer's cache line costs a transfer between cores.
 */
static inline int64_t synthi_ring_sp_free_count_want(struct synth_ring *r, uint32_t want)
{
    uint32_t used = r->local - r->peer;
    if (used <= r->size && r->size - used >= want)
        return (int64_t)(r->size - used);
    r->peer = synthi_load_acquire_u32(&r->core->cons);
    used = r->local - r->peer;
    if (used > r->size)
        return -1;
    return (int64_t)(r->size - used);
}

static inline int64_t synthi_ring_sp_free_count(struct synth_ring *r)
{
    return synthi_ring_sp_free_count_want(r, r->size);
}

static inline void *synthi_ring_slot(const struct synth_ring *r, uint32_t idx)
{
    return r->entries + (size_t)(idx & r->mask) * r->esz;
}

/*
 * Submission ring, producer (guest): enqueue up to n descriptors (burst: partial is normal). Each
 * entry's body is written first, then its seq word with release semantics. Returns the number
 * enqueued, or -1 if the consumer's index is impossible.
 */
static inline int64_t synthi_sq_enqueue_burst(struct synth_ring *r, const struct synth_desc *d, uint32_t n)
{
    int64_t free_slots = synthi_ring_sp_free_count_want(r, n);
    uint32_t i;

    if (free_slots < 0)
        return -1;
    if (n > (uint32_t)free_slots)
        n = (uint32_t)free_slots;
    for (i = 0; i < n; i++) {
        struct synth_desc *e = (struct synth_desc *)synthi_ring_slot(r, r->local + i);
        memcpy(e, &d[i], offsetof(struct synth_desc, seq));
        synthi_store_release_u32(&e->seq, synth_ring_seq(r->local + i));
    }
    if (n) {
        r->local += n;
        synthi_store_release_u32(&r->core->prod, r->local);
    }
    return n;
}

/*
 * Submission ring, consumer (host): copy up to n published descriptors into out (local memory)
 * and advance our index, without releasing the slots yet (the caller records what it took, then
 * stores cons). Reads only the entries, never the producer's index: an entry counts when its seq
 * equals the one expected for our next index, so nothing the producer writes can make us read
 * past the ring or twice. Returns the number taken.
 */
static inline uint32_t synthi_sq_dequeue_burst_noreserve(struct synth_ring *r, struct synth_desc *out, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        struct synth_desc *e = (struct synth_desc *)synthi_ring_slot(r, r->local + i);
        if (synthi_load_acquire_u32(&e->seq) != synth_ring_seq(r->local + i))
            break;
        memcpy(&out[i], e, sizeof(*e));
    }
    r->local += i;
    return i;
}

/* As above, then release the slots (store cons). */
static inline uint32_t synthi_sq_dequeue_burst(struct synth_ring *r, struct synth_desc *out, uint32_t n)
{
    uint32_t got = synthi_sq_dequeue_burst_noreserve(r, out, n);
    if (got)
        synthi_store_release_u32(&r->core->cons, r->local);
    return got;
}

/* The 32-bit word at offset 8 of a completion: status | flags << 16. */
static inline uint32_t *synthi_cpl_word(struct synth_cpl *c) { return (uint32_t *)(void *)&c->status; }

static inline uint32_t synthi_cpl_word_phase(uint32_t w)
{
    return ((w >> 16) & SYNTH_CPL_F_PHASE) ? 1u : 0u;
}

/*
 * Completion ring, producer (host): enqueue up to n completions, each published by a release
 * store of its status/flags word carrying the lap's phase bit. Returns the number enqueued, or -1
 * if the consumer's index is impossible.
 */
static inline int64_t synthi_cq_enqueue_burst(struct synth_ring *r, const struct synth_cpl *c, uint32_t n)
{
    int64_t free_slots = synthi_ring_sp_free_count_want(r, n);
    uint32_t i;

    if (free_slots < 0)
        return -1;
    if (n > (uint32_t)free_slots)
        n = (uint32_t)free_slots;
    for (i = 0; i < n; i++) {
        uint32_t idx = r->local + i;
        struct synth_cpl *e = (struct synth_cpl *)synthi_ring_slot(r, idx);
        uint32_t flags = (c[i].flags & ~SYNTH_CPL_F_PHASE) & 0xffffu;
        if (synth_cpl_phase(idx, r->size))
            flags |= SYNTH_CPL_F_PHASE;
        e->cookie = c[i].cookie;
        e->result = c[i].result;
        synthi_store_release_u32(synthi_cpl_word(e), (uint32_t)c[i].status | (flags << 16));
    }
    if (n) {
        r->local += n;
        synthi_store_release_u32(&r->core->prod, r->local);
    }
    return n;
}

/* Completion ring, consumer (guest): 1 if the next entry is published. */
static inline int synthi_cq_ready(struct synth_ring *r)
{
    struct synth_cpl *e = (struct synth_cpl *)synthi_ring_slot(r, r->local);
    return synthi_cpl_word_phase(synthi_load_acquire_u32(synthi_cpl_word(e))) == synth_cpl_phase(r->local, r->size);
}

/* Completion ring, consumer (guest): take up to n published completions, release their slots. */
static inline uint32_t synthi_cq_dequeue_burst(struct synth_ring *r, struct synth_cpl *out, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        uint32_t idx = r->local + i;
        struct synth_cpl *e = (struct synth_cpl *)synthi_ring_slot(r, idx);
        uint32_t w = synthi_load_acquire_u32(synthi_cpl_word(e));
        if (synthi_cpl_word_phase(w) != synth_cpl_phase(idx, r->size))
            break;
        out[i].cookie = e->cookie;
        out[i].result = e->result;
        out[i].status = (uint16_t)(w & 0xffffu);
        out[i].flags = (uint16_t)((w >> 16) & ~SYNTH_CPL_F_PHASE);
    }
    if (i) {
        r->local += i;
        synthi_store_release_u32(&r->core->cons, r->local);
    }
    return i;
}

/* Zero every entry of a ring (a reset: stale sequence words must not look published). */
static inline void synthi_ring_clear(struct synth_ring *r)
{
    memset(r->entries, 0, (size_t)r->size * r->esz);
}

static inline void synthi_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif /* SYNTH_RING_PVT_H */
