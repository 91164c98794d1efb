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
 * Memory order follows C11: the producer fills entries and publishes them with a release store of
 * prod; the consumer acquires prod, copies the entries out, then releases them with a release store
 * of cons, so a producer that acquires cons never overwrites an entry still being read.
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
};

#define SYNTH_ATOMIC_U32(p) ((_Atomic uint32_t *)(void *)(p))

static inline uint32_t synth_load_acquire_u32(const uint32_t *p)
{
    return atomic_load_explicit(SYNTH_ATOMIC_U32(p), memory_order_acquire);
}

static inline uint32_t synth_load_relaxed_u32(const uint32_t *p)
{
    return atomic_load_explicit(SYNTH_ATOMIC_U32(p), memory_order_relaxed);
}

static inline void synth_store_release_u32(uint32_t *p, uint32_t v)
{
    atomic_store_explicit(SYNTH_ATOMIC_U32(p), v, memory_order_release);
}

static inline void synth_ring_init(struct synth_ring *r, void *core, uint32_t size, uint32_t esz)
{
    r->core = (struct synth_ring_core *)core;
    r->entries = (uint8_t *)core + SYNTH_RING_ENTRIES_OFF;
    r->size = size;
    r->mask = size - 1;
    r->esz = esz;
    r->local = 0;
}

/* Copy n entries from `src` into the ring starting at index idx (wrapping). */
static inline void synth_ring_copy_in(struct synth_ring *r, uint32_t idx, const void *src, uint32_t n)
{
    uint32_t slot = idx & r->mask;
    uint32_t first = r->size - slot;
    if (first > n)
        first = n;
    memcpy(r->entries + (size_t)slot * r->esz, src, (size_t)first * r->esz);
    if (n > first)
        memcpy(r->entries, (const uint8_t *)src + (size_t)first * r->esz, (size_t)(n - first) * r->esz);
}

/* Copy n entries out of the ring starting at index idx (wrapping) into `dst`. */
static inline void synth_ring_copy_out(const struct synth_ring *r, uint32_t idx, void *dst, uint32_t n)
{
    uint32_t slot = idx & r->mask;
    uint32_t first = r->size - slot;
    if (first > n)
        first = n;
    memcpy(dst, r->entries + (size_t)slot * r->esz, (size_t)first * r->esz);
    if (n > first)
        memcpy((uint8_t *)dst + (size_t)first * r->esz, r->entries, (size_t)(n - first) * r->esz);
}

/* Producer: free slots, or -1 if the consumer's index is impossible. */
static inline int64_t synth_ring_sp_free_count(const struct synth_ring *r)
{
    uint32_t used = r->local - synth_load_acquire_u32(&r->core->cons);
    if (used > r->size)
        return -1;
    return (int64_t)(r->size - used);
}

/*
 * Producer: enqueue up to n entries from src (burst: partial enqueue is normal).
 * Returns the number enqueued, or -1 if the consumer's index is impossible.
 */
static inline int64_t synth_ring_sp_enqueue_burst(struct synth_ring *r, const void *src, uint32_t n)
{
    int64_t free_slots = synth_ring_sp_free_count(r);
    if (free_slots < 0)
        return -1;
    if (n > (uint32_t)free_slots)
        n = (uint32_t)free_slots;
    if (n == 0)
        return 0;
    synth_ring_copy_in(r, r->local, src, n);
    r->local += n;
    synth_store_release_u32(&r->core->prod, r->local);
    return n;
}

/* Consumer: entries available, or -1 if the producer's index is impossible. */
static inline int64_t synth_ring_sc_avail_count(const struct synth_ring *r)
{
    uint32_t avail = synth_load_acquire_u32(&r->core->prod) - r->local;
    if (avail > r->size)
        return -1;
    return (int64_t)avail;
}

/*
 * Consumer: dequeue up to n entries into dst (burst). The entries are copied to dst before the slots
 * are released. Returns the number dequeued, or -1 if the producer's index is impossible.
 */
static inline int64_t synth_ring_sc_dequeue_burst(struct synth_ring *r, void *dst, uint32_t n)
{
    int64_t avail = synth_ring_sc_avail_count(r);
    if (avail < 0)
        return -1;
    if (n > (uint32_t)avail)
        n = (uint32_t)avail;
    if (n == 0)
        return 0;
    synth_ring_copy_out(r, r->local, dst, n);
    r->local += n;
    synth_store_release_u32(&r->core->cons, r->local);
    return n;
}

static inline void synth_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif /* SYNTH_RING_PVT_H */
