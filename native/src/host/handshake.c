/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's half of the handshake in a region's header: what the device is (its [host] fields),
 * its status and error words, the heartbeat, and driver resets (a new epoch: the rings zeroed, the
 * handshake checked and acknowledged). Section 4 of docs/device-abi.md.
 */
#include <string.h>

#include "host_pvt.h"
#include "synth/clock_pvt.h"

static void host_store_u32(uint32_t *p, uint32_t v) { synthi_store_release_u32(p, v); }

/* Zero queue i's rings and indices, and its in-flight record in the vault (section 4.3 of the ABI). */
static void reset_queue(struct synth_hdev *d, uint32_t i)
{
    struct synth_hqueue *q = &d->queues[i];

    q->sq.local = q->sq.peer = 0;
    q->cq.local = q->cq.peer = 0;
    synthi_ring_clear(&q->sq);
    synthi_ring_clear(&q->cq);
    if (d->has_vault)
        memset(synthi_vault_queue(&d->vault, i), 0, d->vault.queue_stride);
    host_store_u32(&q->sq.core->prod, 0);
    host_store_u32(&q->sq.core->cons, 0);
    host_store_u32(&q->cq.core->prod, 0);
    host_store_u32(&q->cq.core->cons, 0);
}

void synthi_set_status(struct synth_hdev *d, uint32_t status, uint32_t err)
{
    if (!d->faulted) {
        host_store_u32(&d->hdr->dev_error, err);
        host_store_u32(&d->hdr->dev_status, status);
    }
    SYNTH_STAT_SET(d->stats.dev_status, status);
    SYNTH_STAT_SET(d->stats.dev_error, err);
}

void synthi_hdev_abort_inhand(struct synth_hdev *d)
{
    struct synth_cpl out[SYNTH_MAX_BURST];
    uint32_t qi, i;

    if (d->faulted)
        return;
    for (qi = 0; qi < d->layout.num_queues; qi++) {
        struct synth_hqueue *q = &d->queues[qi];
        uint32_t n = q->inhand;
        if (n == 0)
            continue;
        q->inhand = 0;
        for (i = 0; i < n; i++) {
            memset(&out[i], 0, sizeof(out[i]));
            out[i].cookie = q->inhand_cookie[i];
            out[i].status = SYNTH_ST_RETRY;
        }
        if (synthi_cq_enqueue_burst(&q->cq, out, n) != (int64_t)n) { /* room was checked before the take */
            synthi_hdev_mark_broken(d, SYNTH_DEVERR_CQ_INDEX);
            continue;
        }
        SYNTH_STAT_ADD(d->stats.ops, (uint64_t)n);
        SYNTH_STAT_ADD(q->stats.ops, (uint64_t)n);
        SYNTH_STAT_ADD(d->stats.status[SYNTH_ST_RETRY], n);
        SYNTH_STAT_ADD(q->stats.status[SYNTH_ST_RETRY], n);
    }
}

void synthi_hdev_region_fault(struct synth_hdev *d)
{
    d->faulted = 1;
    d->broken = 1;
    d->active = 0;
    SYNTH_STAT_SET(d->stats.active, 0);
    SYNTH_STAT_SET(d->stats.dev_status, SYNTH_DEV_NEEDS_RESET);
    SYNTH_STAT_SET(d->stats.dev_error, SYNTH_DEVERR_REGION);
    SYNTH_STAT_ADD(d->stats.ring_errors, 1);
}

void synthi_hdev_mark_broken(struct synth_hdev *d, uint32_t err)
{
    d->broken = 1;
    synthi_set_status(d, SYNTH_DEV_READY | SYNTH_DEV_NEEDS_RESET, err);
    SYNTH_STAT_ADD(d->stats.ring_errors, 1);
    SYNTH_STAT_SET(d->stats.active, 0);
}

void synthi_hdev_heartbeat(struct synth_hdev *d, uint64_t now_ns)
{
    if (!d->faulted)
        __atomic_store_n(&d->hdr->heartbeat, now_ns, __ATOMIC_RELAXED);
}

/*
 * What the header says the device is: magic, ABI version, layout and queue table, class, offered
 * features, names. All [host] fields, written from the host's own copy, never read back: a driver
 * that scribbled on them gets them back with its next reset, and so does the next driver to open
 * the region (a guest rebooted after its kernel corrupted the header finds a device it can use).
 */
void synthi_publish_identity(struct synth_hdev *d)
{
    struct synth_dev_header *h = d->hdr;

    synth_layout_write_header(&d->layout, h);
    h->dev_class = (uint16_t)d->ops->dev_class;
    h->features_offered = d->features_offered;
    synthi_copy_name(h->device_name, sizeof(h->device_name), d->name);
    if (d->cls)
        synthi_copy_name(h->backend, sizeof(h->backend), d->ops->plugin_name(d));
}

/*
 * A new driver epoch. Its cost is bounded, in each pass and over time: a device of 64 queues of
 * 4096 entries has 21 MB of rings to zero, and a driver that changes its epoch in a loop would
 * otherwise take its worker from every other device the worker serves. So a reset starts (sessions
 * and class state go, the queues stop being served), then zeroes queues RESET_SLICE bytes of rings
 * per pass, paid from a budget of worker time that fills at 1/RESET_SHARE of the wall clock up to
 * RESET_BURST_NS (a device that has not reset for a while resets at full speed; one that resets in
 * a loop gets a thousandth of its worker), and only once every queue is clean checks the driver's
 * handshake and acknowledges; the device serves nothing meanwhile. A device of a few queues of a
 * few hundred entries resets within its first pass. One reset every RESET_FREE_EVERY_NS is not
 * paid from the budget at all (still one slice per pass, so its neighbours' latency is the same):
 * the first open of a large device must not wait for the budget on a host whose memory is slow to
 * touch, and a loop of resets gets one such reset every ten seconds (at most about half a percent
 * of its worker for the largest device). Returns 1 once the reset is complete (the device may be
 * served in this pass), else 0.
 */
#define RESET_SLICE (64u * 1024u)
#define RESET_SHARE 1000u
#define RESET_BURST_NS 20000000ull
#define RESET_FREE_EVERY_NS 10000000000ull

int synthi_driver_reset_step(struct synth_hdev *d)
{
    struct synth_dev_header *h = d->hdr;
    uint32_t drv, epoch;
    uint64_t feat, t0, t1, bytes = 0;

    if (!d->resetting) {
        d->ops->reset(d);
        d->active = 0;
        d->features = 0;
        SYNTH_STAT_SET(d->stats.active, 0);
        d->resetting = 1;
        d->reset_next = 0;
        d->reset_free = d->reset_done_at == 0 || synthi_now_ns() - d->reset_done_at >= RESET_FREE_EVERY_NS;
    }
    if (d->reset_next < d->layout.num_queues) {
        t0 = synthi_now_ns();
        d->reset_budget += (int64_t)((t0 - d->reset_budget_at) / RESET_SHARE);
        if (d->reset_budget_at == 0 || d->reset_budget > (int64_t)RESET_BURST_NS)
            d->reset_budget = (int64_t)RESET_BURST_NS;
        d->reset_budget_at = t0;
        if (d->reset_budget <= 0 && !d->reset_free)
            return 0; /* its share of the worker is spent: later */
        while (d->reset_next < d->layout.num_queues && bytes < RESET_SLICE) {
            bytes += (uint64_t)d->layout.ring_entries * (sizeof(struct synth_desc) + sizeof(struct synth_cpl));
            reset_queue(d, d->reset_next++);
        }
        t1 = synthi_now_ns();
        if (!d->reset_free)
            d->reset_budget -= (int64_t)(t1 - t0);
        SYNTH_STAT_ADD(d->stats.busy_ns, t1 - t0); /* the worker's time for this device */
        if (d->reset_next < d->layout.num_queues)
            return 0;
    }
    /* Clean: the handshake as the driver left it by now (its latest epoch). */
    epoch = synthi_load_acquire_u32(&h->drv_epoch);
    drv = synthi_load_relaxed_u32(&h->drv_status);
    feat = __atomic_load_n(&h->features_accepted, __ATOMIC_RELAXED);
    d->resetting = 0;
    d->reset_free = 0;
    d->reset_done_at = synthi_now_ns();
    synthi_publish_identity(d);
    d->broken = 0;
    if (drv & SYNTH_DRV_DRIVER_OK) {
        if ((feat & ~d->features_offered) || !(feat & SYNTH_F_RING_V1)) {
            d->broken = 1;
            synthi_set_status(d, SYNTH_DEV_READY | SYNTH_DEV_NEEDS_RESET, SYNTH_DEVERR_FEATURES);
        } else {
            d->active = 1;
            d->features = feat;
            synthi_set_status(d, SYNTH_DEV_READY, SYNTH_DEVERR_NONE);
        }
    } else {
        synthi_set_status(d, SYNTH_DEV_READY, SYNTH_DEVERR_NONE);
    }
    SYNTH_STAT_SET(d->stats.active, (uint32_t)d->active);
    SYNTH_STAT_ADD(d->stats.resets, 1);
    d->acked_epoch = epoch;
    host_store_u32(&h->acked_epoch, epoch);
    return 1;
}
