/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host data path internals shared by the device files (device.c, handshake.c, poll.c, quota.c,
 * tick.c), worker.c and the class files.
 */
#ifndef SYNTH_HOST_PVT_H
#define SYNTH_HOST_PVT_H

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#include "synth/host.h"
#include "synth/layout.h"
#include "synth/ring_pvt.h"
#include "synth/clock_pvt.h"
#include "vault_pvt.h"
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

struct synth_hqueue {
    struct synth_ring sq;   /* host consumes */
    struct synth_ring cq;   /* host produces */
    uint8_t *arena;
    uint64_t arena_size;
    uint32_t streaming;     /* the last take was a full burst: the guest is likely to have more */
    uint32_t inhand;        /* descriptors taken by the generic poll and not completed yet */
    uint64_t inhand_cookie[SYNTH_MAX_BURST];
    struct synth_hqueue_stats stats;
};

struct synth_hdev;

/* What a device class plugs into the generic data path. */
struct synth_class_ops {
    uint32_t dev_class;
    uint64_t features;  /* class feature bits offered */
    int (*init)(struct synth_hdev *d, const struct synth_hdev_params *p);
    void (*fini)(struct synth_hdev *d);
    /* Driver reset: drop per-driver state (sessions). */
    void (*reset)(struct synth_hdev *d);
    /* Complete n descriptors (already copied to local memory) into n completions. */
    void (*process)(struct synth_hdev *d, struct synth_hqueue *q, const struct synth_desc *in,
                    struct synth_cpl *out, unsigned n);
    const char *(*plugin_name)(const struct synth_hdev *d);
    uint32_t (*sessions)(const struct synth_hdev *d);
    /*
     * Optional. Replaces the generic poll of queue qi (dequeue up to the completion ring's room,
     * process, complete in order) for classes whose completions wait for outside events (packet
     * receive buffers wait for frames). Returns the work done.
     */
    unsigned (*poll_queue)(struct synth_hdev *d, struct synth_hqueue *q, uint32_t qi, uint32_t burst);
    /*
     * Optional. Start fetching the guest lines that n just taken descriptors refer to (hints only:
     * the descriptors are not validated yet).
     */
    void (*prefetch)(const struct synth_hqueue *q, const struct synth_desc *in, unsigned n);
    /* Optional. Called once per poll pass after the queues (outside sources: a TAP, a wire). */
    unsigned (*poll_device)(struct synth_hdev *d);
    /*
     * Optional, for a class with poll_queue or poll_device: can a watcher tell whether d has work
     * from its rings and `pending` (below) alone, now? Without it, such a class never can.
     */
    int (*watchable)(const struct synth_hdev *d);
    /* Optional. Work a watcher would not see in the rings (in synthi_hdev_pending's frame): 1 if some. */
    int (*pending)(struct synth_hdev *d);
    /* Optional. Snapshot of live sessions (see synth_hdev_sessions). */
    unsigned (*list_sessions)(const struct synth_hdev *d, struct synth_session_info *out, unsigned max);
    /* Optional. Bytes of vault class area this device needs (sessions to keep across restarts). */
    uint64_t (*vault_size)(const struct synth_hdev_params *p);
    /* Optional. State that moves with the device to another backend (see synth_hdev_export_streams). */
    int64_t (*export_state)(const struct synth_hdev *d, uint8_t *buf, uint64_t cap);
    int (*import_state)(struct synth_hdev *d, const uint8_t *buf, uint64_t len);
};

struct synth_hdev {
    /*
     * What every poll pass and every watcher look reads first, together in the first line: behind
     * the path they sat 6 KiB in, on two lines of another page, and perf annotate of the watcher
     * in bench/scale put most of its time per device on the first of those reads.
     */
    struct synth_dev_header *hdr;     /* shared: write-only for host fields, read guest fields once */
    const struct synth_class_ops *ops;
    void *cls;                        /* class state */
    uint32_t acked_epoch;
    uint32_t generation;
    int active;                       /* a driver completed the handshake */
    int broken;                       /* NEEDS_RESET until the next driver epoch */
    int faulted;                      /* the region faulted (file truncated): never touched again */
    int resetting;                    /* a driver reset in progress (driver_reset_step) */
    struct synth_worker *_Atomic owner;
    uint64_t features_offered;
    uint64_t features;                /* accepted by the current driver */
    struct synth_layout layout;       /* host-local: the only layout the data path uses (counts first) */
    uint8_t *base;
    int fd;
    uint32_t reset_next;              /* the next queue it cleans */
    int64_t reset_budget;             /* ns of worker time left for reset work (driver_reset_step) */
    uint64_t reset_budget_at;         /* when it was last filled */
    uint64_t reset_done_at;           /* when the last reset completed (0: never) */
    int reset_free;                   /* this reset is not paid from the budget (RESET_FREE_EVERY_NS) */
    int attaching;                    /* init() runs for a re-attach, not a fresh region */
    int has_vault;
    struct synth_quota quota;
    double ops_tokens, bytes_tokens;  /* token buckets of the quota */
    double avg_op_bytes;              /* running average, to bound a burst by the byte budget */
    uint64_t tokens_at;               /* when they were last refilled (ns) */
    uint64_t work_bytes;              /* bytes of work done, whatever the ops' status: what the
                                       * byte quota charges (serving thread only) */
    struct synth_hdev_stats stats;    /* written by the serving thread, read with relaxed loads */
    struct synth_hqueue queues[SYNTH_MAX_QUEUES];
    /* Cold: the control plane's. */
    char path[PATH_MAX];
    char name[32];
    struct synth_vault vault;         /* host-only persistent state (sessions, in-flight cookies) */
    char vault_path[PATH_MAX];
};

/* Counters written by the serving thread only; `field` is evaluated twice (keep it side-effect free). */
#define SYNTH_STAT_ADD(field, v) \
    __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)
#define SYNTH_STAT_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

extern const struct synth_class_ops synthi_crypto_class;
extern const struct synth_class_ops synthi_compress_class;
extern const struct synth_class_ops synthi_packet_class;

/*
 * Take up to n published descriptors of queue q into in (local memory) and release their slots;
 * with a vault, first record each one's cookie and the taken index there, so that a backend that
 * dies with them in hand is answered with RETRY by the next. Every class's poll takes this way.
 */
uint32_t synthi_hdev_take(struct synth_hdev *d, struct synth_hqueue *q, struct synth_desc *in, uint32_t n);

/* After taking a full burst of n: prefetch, for writing, the completion lines it will fill. */
void synthi_hq_prefetch_cq(struct synth_hqueue *q, uint32_t n);

/*
 * The i-th descriptor the guest has published past those taken, read in place (it may still
 * change under us), or NULL. Only for hints such as prefetching: never trust it.
 */
static inline const struct synth_desc *synthi_hq_peek(const struct synth_hqueue *q, uint32_t i)
{
    const struct synth_desc *e = (const struct synth_desc *)synthi_ring_slot(&q->sq, q->sq.local + i);
    return synthi_load_relaxed_u32(&e->seq) == synth_ring_seq(q->sq.local + i) ? e : NULL;
}

/* Make the generic poll of one queue available to classes that wrap it. */
unsigned synthi_hdev_poll_queue_generic(struct synth_hdev *d, struct synth_hqueue *q, uint32_t burst);

/* Mark the device NEEDS_RESET with reason err (SYNTH_DEVERR_*). */
void synthi_hdev_mark_broken(struct synth_hdev *d, uint32_t err);

/* Does addr lie in d's region? */
static inline int synthi_hdev_owns(const struct synth_hdev *d, const void *addr)
{
    const uint8_t *p = (const uint8_t *)addr;
    return d->base && p >= d->base && p < d->base + d->layout.region_size;
}

/*
 * The region of d faulted (SIGBUS: its file was truncated under us). Mark it abandoned without
 * touching the region again: poll passes skip it, its header is never written, destroy only unmaps.
 */
void synthi_hdev_region_fault(struct synth_hdev *d);

/*
 * Run fn(d, arg) with d's region guarded, on any thread: a SIGBUS on d's region (its file was
 * truncated under us) ends fn where it was, marks d abandoned (synthi_hdev_region_fault) and
 * returns -EFAULT; otherwise fn's return value. -EFAULT at once if d is abandoned already. Every
 * touch of a region outside a worker's own poll of that device goes through this; calls nest (a
 * fault on an outer call's region unwinds the inner ones). fn must leave nothing half-done that
 * host memory depends on: it may stop at any access to the region.
 */
int synthi_region_call(struct synth_hdev *d, int (*fn)(struct synth_hdev *, void *), void *arg);

/*
 * Around a lock held while touching regions (a packet wire's): if a region fault jumps out in
 * between, the lock is given back. At most one per worker loop or synthi_region_call frame.
 */
void synthi_fault_hold(pthread_mutex_t *m);
void synthi_fault_release(void);

/*
 * After a region fault of another device (a wire peer) cut a pass over d short: complete with
 * RETRY the descriptors d had taken and not completed, so that its guest does not wait for them.
 */
void synthi_hdev_abort_inhand(struct synth_hdev *d);

/*
 * Can a watcher tell from d's rings whether d has work (synthi_hdev_pending)? Not for a class that
 * polls outside sources (a TAP) or whose posted descriptors wait for outside events, unless its
 * watchable hook says that, for d as it is linked now, they do not.
 */
static inline int synthi_hdev_watchable(const struct synth_hdev *d)
{
    if (d->ops->watchable)
        return d->ops->watchable(d);
    return !d->ops->poll_queue && !d->ops->poll_device;
}

/*
 * Would a pass over d find work (1) or not (0)? Reads d's region: call it in a fault frame
 * (synthi_region_call), with d's worker parked and its device list locked.
 */
int synthi_hdev_pending(struct synth_hdev *d);

/* One poll pass over the device's queues with the given burst size. */
unsigned synthi_hdev_poll_burst(struct synth_hdev *d, uint32_t burst);

/* Write the host heartbeat word. */
void synthi_hdev_heartbeat(struct synth_hdev *d, uint64_t now_ns);

/*
 * From inside a long pass over d (slow ops): refresh the heartbeat of every device of d's worker,
 * not just d's, so that a neighbour's guest does not take its device for dead meanwhile.
 */
void synthi_hdev_heartbeat_all(struct synth_hdev *d, uint64_t now_ns);

/* Arena pointer for a checked (off, len) of queue q, or NULL if out of range. */
static inline uint8_t *synthi_arena_ptr(const struct synth_hqueue *q, uint32_t off, uint32_t len)
{
    if (!synth_range_ok(q->arena_size, off, len))
        return NULL;
    return q->arena + off;
}

/* A name into a fixed, zero-padded field of n bytes (at most n - 1 of it). */
static inline void synthi_copy_name(char *dst, size_t n, const char *src)
{
    size_t len = src ? strnlen(src, n - 1) : 0;
    memset(dst, 0, n);
    if (len)
        memcpy(dst, src, len);
}

/* Append name to a comma-separated list ("ipsec-mb,openssl") unless it is one of its items already. */
static inline void synthi_name_list_add(char *list, size_t size, const char *name)
{
    size_t len = strlen(list), n = strlen(name);
    const char *at = list;

    while ((at = strstr(at, name)) != NULL) {
        if ((at == list || at[-1] == ',') && (at[n] == ',' || at[n] == 0))
            return;
        at += n;
    }
    snprintf(list + len, size - len, "%s%s", len ? "," : "", name);
}

/* handshake.c: the header's status and error words (unless the region faulted). */
void synthi_set_status(struct synth_hdev *d, uint32_t status, uint32_t err);

/* handshake.c: write the header's [host] identity fields from the host's own copy. */
void synthi_publish_identity(struct synth_hdev *d);

/*
 * handshake.c: one step of a driver reset (a new epoch), paced by a budget of worker time.
 * Returns 1 once the reset is complete, else 0.
 */
int synthi_driver_reset_step(struct synth_hdev *d);

/* quota.c: how many descriptors d may take per queue in this pass (0: skip it). */
uint32_t synthi_quota_allow(struct synth_hdev *d, uint32_t burst);

/* quota.c: charge a pass's ops and bytes to d's buckets. */
void synthi_quota_charge(struct synth_hdev *d, unsigned ops, uint64_t bytes);

/*
 * tick.c: service times come from the TSC where the kernel itself keeps time with it (about 10 ns
 * a read against 25 ns for clock_gettime in a KVM guest), its rate measured once against
 * CLOCK_MONOTONIC by synthi_tick_init (0: ticks are nanoseconds from clock_gettime).
 */
extern double synthi_ns_per_tick;
void synthi_tick_init(void);

static inline uint64_t synthi_ticks(void)
{
#if defined(__x86_64__)
    if (synthi_ns_per_tick > 0.0)
        return __rdtsc();
#endif
    return synthi_now_ns();
}

static inline uint64_t synthi_ticks_ns(uint64_t t)
{
    return synthi_ns_per_tick > 0.0 ? (uint64_t)((double)t * synthi_ns_per_tick) : t;
}

/* The latency histogram's bucket of a service time: floor(log2(ns)), capped. */
static inline unsigned synthi_lat_bucket(uint64_t ns)
{
    unsigned b = ns ? 63u - (unsigned)__builtin_clzll(ns) : 0;
    return b < SYNTH_LAT_BUCKETS ? b : SYNTH_LAT_BUCKETS - 1;
}

/*
 * Prefetch the line at p for writing. A line the other core has read (a buffer the guest checked, a
 * completion it polled) is shared between the two caches; PREFETCHT0, which is what gcc makes of
 * __builtin_prefetch(p, 1) for the x86-64 baseline, finds it present and does nothing, and the store
 * then waits for the guest's copy to be invalidated. PREFETCHW asks for the line exclusive, so the
 * invalidation happens while the host does other work. Where the CPU lacks it (detected once, at
 * load time), the generic prefetch.
 */
#if defined(__x86_64__) || defined(__i386__)
extern int synthi_have_prefetchw;
static inline void synthi_prefetch_w(const void *p)
{
    if (synthi_have_prefetchw)
        __asm__ volatile("prefetchw %0" : : "m"(*(const volatile char *)p));
    else
        __builtin_prefetch(p, 1, 3);
}
#else
static inline void synthi_prefetch_w(const void *p) { __builtin_prefetch(p, 1, 3); }
#endif

#endif /* SYNTH_HOST_PVT_H */
