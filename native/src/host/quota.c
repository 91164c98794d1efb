/* SPDX-License-Identifier: Apache-2.0 */
/* A device's quotas: its ops, bytes and in-flight limits, as token buckets. */
#include "host_pvt.h"
#include "synth/clock_pvt.h"

/*
 * Quotas: token buckets refilled from the clock, holding about 1 ms of credit (and at least one
 * burst), so that a device at its rate still takes small bites of the worker. A device out of
 * tokens is skipped for the pass: its work waits in its own ring. The byte budget bounds the
 * burst too, through the device's average op size. Returns how many descriptors the device may
 * take per queue now (0: skip it). The quota itself may change under us (synth_hdev_set_quota):
 * it is read once per call.
 */
uint32_t synthi_quota_allow(struct synth_hdev *d, uint32_t burst)
{
    struct synth_quota qt;
    uint64_t now, dt;

    qt.ops_per_s = __atomic_load_n(&d->quota.ops_per_s, __ATOMIC_RELAXED);
    qt.bytes_per_s = __atomic_load_n(&d->quota.bytes_per_s, __ATOMIC_RELAXED);
    qt.inflight = __atomic_load_n(&d->quota.inflight, __ATOMIC_RELAXED);
    if (qt.inflight && qt.inflight < burst)
        burst = qt.inflight;
    if (!qt.ops_per_s && !qt.bytes_per_s)
        return burst;
    now = synthi_now_ns();
    dt = d->tokens_at ? now - d->tokens_at : 0;
    d->tokens_at = now;
    if (qt.ops_per_s) {
        double cap = (double)qt.ops_per_s / 1000.0 > burst ? (double)qt.ops_per_s / 1000.0 : burst;
        d->ops_tokens += (double)qt.ops_per_s * (double)dt / 1e9;
        if (d->ops_tokens > cap)
            d->ops_tokens = cap;
    }
    if (qt.bytes_per_s) {
        double one = d->avg_op_bytes > 1.0 ? d->avg_op_bytes : 1.0;
        double cap = (double)qt.bytes_per_s / 1000.0 > one ? (double)qt.bytes_per_s / 1000.0 : one;
        d->bytes_tokens += (double)qt.bytes_per_s * (double)dt / 1e9;
        if (d->bytes_tokens > cap)
            d->bytes_tokens = cap;
    }
    if ((qt.ops_per_s && d->ops_tokens < 1.0) || (qt.bytes_per_s && d->bytes_tokens <= 0.0)) {
        SYNTH_STAT_ADD(d->stats.throttled, 1);
        return 0;
    }
    if (qt.ops_per_s && d->ops_tokens < (double)burst)
        burst = (uint32_t)d->ops_tokens;
    if (qt.bytes_per_s && d->avg_op_bytes > 0.0) {
        double fit = d->bytes_tokens / d->avg_op_bytes;
        if (fit < (double)burst)
            burst = fit >= 1.0 ? (uint32_t)fit : 1;
    }
    return burst;
}

void synthi_quota_charge(struct synth_hdev *d, unsigned ops, uint64_t bytes)
{
    if (ops) /* running average of bytes per op (for the byte budget's burst bound) */
        d->avg_op_bytes = d->avg_op_bytes * 0.875 + ((double)bytes / ops) * 0.125;
    /* The quota may change under us (synth_hdev_set_quota, another thread): load it as it stores. */
    if (__atomic_load_n(&d->quota.ops_per_s, __ATOMIC_RELAXED))
        d->ops_tokens -= (double)ops;
    if (__atomic_load_n(&d->quota.bytes_per_s, __ATOMIC_RELAXED))
        d->bytes_tokens -= (double)bytes;
}

void synth_hdev_set_quota(struct synth_hdev *d, const struct synth_quota *q)
{
    __atomic_store_n(&d->quota.ops_per_s, q->ops_per_s, __ATOMIC_RELAXED);
    __atomic_store_n(&d->quota.bytes_per_s, q->bytes_per_s, __ATOMIC_RELAXED);
    __atomic_store_n(&d->quota.inflight, q->inflight, __ATOMIC_RELAXED);
}
