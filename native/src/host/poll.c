/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Serving a device: take its guest's descriptors, have its class process them, complete them,
 * and count what that cost; one pass over every queue of a device at a time.
 */
#include <errno.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "host_pvt.h"

#if defined(__x86_64__) || defined(__i386__)
int synthi_have_prefetchw;

/* PREFETCHW: CPUID 0x80000001, ECX bit 8 (AMD since the K6-2, Intel since Broadwell). */
__attribute__((constructor)) static void detect_prefetchw(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid(0x80000001u, &a, &b, &c, &d))
        synthi_have_prefetchw = (c >> 8) & 1u;
}
#endif

uint32_t synthi_hdev_take(struct synth_hdev *d, struct synth_hqueue *q, struct synth_desc *in, uint32_t n)
{
    struct synth_vault_queue *vq;
    uint32_t start = q->sq.local, got, i;

    if (!d->has_vault)
        return synthi_sq_dequeue_burst(&q->sq, in, n);
    /* Peek first: the vault must name every taken descriptor before we release its slot. */
    vq = synthi_vault_queue(&d->vault, (uint32_t)(q - d->queues));
    got = synthi_sq_dequeue_burst_noreserve(&q->sq, in, n);
    if (got == 0)
        return 0;
    for (i = 0; i < got; i++)
        vq->cookies[(start + i) & q->sq.mask] = in[i].cookie;
    __atomic_store_n(&vq->taken, start + got, __ATOMIC_RELEASE);
    synthi_store_release_u32(&q->sq.core->cons, q->sq.local);
    return got;
}

/*
 * A full burst means the guest is streaming: while this burst is processed, bring over for writing
 * the completion entries it will fill, except the first line, which the guest is polling: taking
 * that one from it early would only make both sides fetch it twice. A single op (latency) takes
 * none of this.
 */
void synthi_hq_prefetch_cq(struct synth_hqueue *q, uint32_t n)
{
    uint32_t i, per_line = 64u / q->cq.esz;

    if (n > q->cq.size)
        n = q->cq.size;
    for (i = 1; i < n; i++)
        if (((q->cq.local + i) & (per_line - 1)) == 0)
            synthi_prefetch_w(synthi_ring_slot(&q->cq, q->cq.local + i));
}

static unsigned poll_queue(struct synth_hdev *d, struct synth_hqueue *q, uint32_t burst)
{
    struct synth_desc in[SYNTH_MAX_BURST];
    struct synth_cpl out[SYNTH_MAX_BURST];
    int64_t room, put;
    uint64_t t0;
    uint32_t got;
    unsigned i;

    /* Take no more than the completion ring can hold, so completions never wait. */
    room = synthi_ring_sp_free_count_want(&q->cq, burst);
    if (room < 0) {
        synthi_hdev_mark_broken(d, SYNTH_DEVERR_CQ_INDEX);
        return 0;
    }
    if ((uint64_t)room < burst)
        burst = (uint32_t)room;
    if (burst == 0)
        return 0;
    got = synthi_hdev_take(d, q, in, burst);
    if (got == 0)
        return 0;
    if (d->ops->prefetch) /* first, so that the lines are on their way while we do the rest */
        d->ops->prefetch(q, in, got);
    for (i = 0; i < got; i++) /* in case a peer's region fault cuts this pass short */
        q->inhand_cookie[i] = in[i].cookie;
    q->inhand = got;
    q->streaming = got == burst;
    if (q->streaming)
        synthi_hq_prefetch_cq(q, got);
    t0 = synthi_ticks();
    d->ops->process(d, q, in, out, got);
    put = synthi_cq_enqueue_burst(&q->cq, out, got);
    q->inhand = 0;
    if (put != (int64_t)got) {
        synthi_hdev_mark_broken(d, SYNTH_DEVERR_CQ_INDEX);
        return got;
    }
    t0 = synthi_ticks_ns(synthi_ticks() - t0);
    i = synthi_lat_bucket(t0); /* SYNTH_STAT_ADD names its field twice: no side effects in it */
    SYNTH_STAT_ADD(d->stats.lat_hist[i], got);
    SYNTH_STAT_ADD(d->stats.busy_ns, t0);
    SYNTH_STAT_ADD(d->stats.lat_sum_ns, t0 * got);
    SYNTH_STAT_ADD(d->stats.ops, (uint64_t)got);
    SYNTH_STAT_ADD(q->stats.ops, (uint64_t)got);
    for (i = 0; i < got; i++) {
        uint32_t st = out[i].status < SYNTH_ST_MAX ? out[i].status : SYNTH_ST_DEVICE_ERROR;
        SYNTH_STAT_ADD(d->stats.status[st], 1);
        SYNTH_STAT_ADD(q->stats.status[st], 1);
    }
    return got;
}

int synth_hdev_get_queue_stats(const struct synth_hdev *d, uint32_t qi, struct synth_hqueue_stats *st)
{
    const uint64_t *src;
    uint64_t *dst = (uint64_t *)st;
    size_t i;

    if (qi >= d->layout.num_queues)
        return -EINVAL;
    src = (const uint64_t *)&d->queues[qi].stats;
    for (i = 0; i < sizeof(*st) / 8; i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    return 0;
}

unsigned synthi_hdev_poll_queue_generic(struct synth_hdev *d, struct synth_hqueue *q, uint32_t burst)
{
    return poll_queue(d, q, burst);
}

unsigned synthi_hdev_poll_burst(struct synth_hdev *d, uint32_t burst)
{
    uint32_t epoch;
    unsigned i, n = 0;
    uint64_t work0;

    if (d->faulted)
        return 0;
    epoch = synthi_load_acquire_u32(&d->hdr->drv_epoch);
    if ((d->resetting || epoch != d->acked_epoch) && !synthi_driver_reset_step(d))
        return 0; /* resetting: one queue's rings per pass */
    if (!d->active || d->broken)
        return 0;
    burst = synthi_quota_allow(d, burst);
    if (burst == 0)
        return 0;
    work0 = d->work_bytes;
    for (i = 0; i < d->layout.num_queues && !d->broken; i++)
        n += d->ops->poll_queue ? d->ops->poll_queue(d, &d->queues[i], i, burst)
                                : poll_queue(d, &d->queues[i], burst);
    if (d->ops->poll_device && !d->broken)
        n += d->ops->poll_device(d);
    synthi_quota_charge(d, n, d->work_bytes - work0);
    return n;
}

/*
 * What a parked worker's devices are watched with (worker.c): would a pass over d find something
 * to do? It reads what a pass reads first, and only that: the driver's epoch, and per queue the
 * seq word of the next SQ entry and, when that entry is published, the CQ's room; and what its
 * class's pending hook says. A device whose class polls outside sources (poll_queue, poll_device)
 * can be watched only where its watchable hook says so (synthi_hdev_watchable).
 */
int synthi_hdev_pending(struct synth_hdev *d)
{
    unsigned i;

    if (d->faulted)
        return 0;
    if (d->resetting || synthi_load_acquire_u32(&d->hdr->drv_epoch) != d->acked_epoch)
        return 1;
    if (d->ops->pending && d->ops->pending(d))
        return 1;
    if (!d->active || d->broken)
        return 0;
    for (i = 0; i < d->layout.num_queues; i++) {
        struct synth_hqueue *q = &d->queues[i];
        /* room < 0: an impossible CQ index, which the pass marks broken */
        if (synthi_hq_peek(q, 0) && synthi_ring_sp_free_count_want(&q->cq, 1) != 0)
            return 1;
    }
    return 0;
}
