/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet device class: class hooks, life cycle and the transmit side. TX queues go through the
 * generic queue poll, whose `process` hands each checked frame to the channel's link (a wire into
 * the peer's receive FIFO, a TAP, or nowhere). RX queues have their own poll (packet_rx.c): RECV
 * descriptors are copied once into a host-private FIFO, in posting order, and completed when a
 * frame fills them (or at once, in order, when they were refused). Nothing is allocated per frame;
 * a frame is copied once, from the sender's arena (or the TAP) straight into the receiver's posted
 * buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "packet_pvt.h"

static void store_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

void synthi_pkt_publish(struct pkt_dev *pd)
{
    struct synth_pkt_cfg *cfg = pd->cfg;
    const struct pkt_counters *c = &pd->cnt;

    if (!pd->counters_dirty)
        return;
    pd->counters_dirty = 0;
    store_u64(&cfg->tx_frames, c->tx_frames);
    store_u64(&cfg->tx_bytes, c->tx_bytes);
    store_u64(&cfg->tx_drops, c->tx_bad + c->tx_no_link + c->tx_peer_full + c->tx_tap_error);
    store_u64(&cfg->rx_frames, c->rx_frames);
    store_u64(&cfg->rx_bytes, c->rx_bytes);
    store_u64(&cfg->rx_drops, c->rx_no_buffer + c->rx_too_long + c->rx_bad_frame);
}

/* ---- transmit side ---- */

/*
 * Lock ch's wire and return it with the receiving end in *ppd / *pch, if frames may go there now:
 * the wire is alive and both ends are served by this thread. Otherwise return NULL, nothing locked.
 */
static struct pkt_wire *wire_lock(struct pkt_dev *pd, struct pkt_chan *ch, struct pkt_dev **ppd,
                                  struct pkt_chan **pch)
{
    struct pkt_wire *w = atomic_load_explicit(&ch->wire, memory_order_acquire);
    struct synth_hdev *d = pd->dev;
    unsigned me;

    if (!w)
        return NULL;
    pthread_mutex_lock(&w->lock);
    me = (w->end[0] == d && w->chan[0] == ch->idx) ? 0 : 1;
    /*
     * Only the thread serving both ends may touch the peer's receive queue. During a worker's pass
     * none of its devices can be removed from it, so an equal owner stays equal until we unlock.
     */
    if (!w->alive || atomic_load_explicit(&w->end[1 - me]->owner, memory_order_acquire) !=
                         atomic_load_explicit(&d->owner, memory_order_relaxed)) {
        pthread_mutex_unlock(&w->lock);
        return NULL;
    }
    *ppd = synthi_pkt_of(w->end[1 - me]);
    *pch = &(*ppd)->chan[w->chan[1 - me]];
    synthi_fault_hold(&w->lock); /* both regions are touched with it held */
    return w;
}

/* Send the checked frames of a burst over ch's wire. */
static void tx_wire(struct pkt_dev *pd, struct pkt_chan *ch, const struct pkt_frame *f, unsigned nf,
                    struct synth_cpl *out)
{
    struct pkt_dev *ppd;
    struct pkt_chan *pch;
    struct pkt_wire *w = wire_lock(pd, ch, &ppd, &pch);
    uint16_t st[SYNTH_MAX_BURST];
    uint64_t bytes = 0;
    unsigned i, ok;

    if (!w) {
        for (i = 0; i < nf; i++)
            out[f[i].slot].status = SYNTH_ST_NO_RESOURCES;
        PKT_INC(pd, tx_no_link, nf);
        return;
    }
    /*
     * The frames were just written on the sender's CPU, the posted buffers and the completion slots
     * were last read on the receiver's: take the buffers the receiver has posted, then start all those
     * transfers ahead of the copies instead of stalling on them one frame at a time.
     */
    synthi_pkt_rx_reserve(ppd, pch, nf);
    synthi_pkt_rx_prefetch(ppd, pch, nf);
    ok = synthi_pkt_rx_deliver_burst(ppd, pch, f, nf, st);
    for (i = 0; i < nf; i++) {
        out[f[i].slot].status = st[i];
        if (st[i] == SYNTH_ST_OK)
            bytes += f[i].len;
    }
    if (ok) {
        PKT_INC(pd, tx_frames, ok);
        PKT_INC(pd, tx_bytes, bytes);
    }
    if (ok < nf)
        PKT_INC(pd, tx_peer_full, nf - ok);
    synthi_pkt_rx_commit(ppd, pch);
    if (ppd != pd)
        synthi_pkt_publish(ppd);
    synthi_fault_release();
    pthread_mutex_unlock(&w->lock);
}

static void tx_tap(struct pkt_dev *pd, struct pkt_chan *ch, const struct pkt_frame *f, unsigned nf,
                   struct synth_cpl *out)
{
    unsigned i;
    for (i = 0; i < nf; i++) {
        ssize_t n = write(ch->tap_fd, f[i].p, f[i].len);
        if (n == (ssize_t)f[i].len) {
            PKT_INC(pd, tx_frames, 1);
            PKT_INC(pd, tx_bytes, f[i].len);
        } else {
            out[f[i].slot].status = SYNTH_ST_NO_RESOURCES;
            PKT_INC(pd, tx_tap_error, 1);
        }
    }
}

/* `process` of the generic poll, for TX queues: check each SEND, then hand the frames to the link. */
static void pkt_process(struct synth_hdev *d, struct synth_hqueue *q, const struct synth_desc *in,
                        struct synth_cpl *out, unsigned n)
{
    struct pkt_dev *pd = synthi_pkt_of(d);
    uint32_t qi = (uint32_t)(q - d->queues);
    struct pkt_chan *ch = &pd->chan[qi / 2];
    struct pkt_frame f[SYNTH_MAX_BURST];
    uint64_t bytes = 0;
    unsigned i, nf = 0;

    for (i = 0; i < n; i++) {
        const struct synth_desc *desc = &in[i];
        struct synth_cpl *cpl = &out[i];

        cpl->cookie = desc->cookie;
        cpl->status = SYNTH_ST_OK;
        cpl->flags = 0;
        cpl->result = 0;
        if (desc->flags != 0) {
            cpl->status = SYNTH_ST_INVALID;
        } else if (desc->opcode == SYNTH_OP_NOP) {
            if (!(d->features & SYNTH_F_NOP))
                cpl->status = SYNTH_ST_NOT_SUPPORTED;
            continue;
        } else if (desc->opcode != SYNTH_OP_PKT_SEND || (qi & 1u)) {
            cpl->status = SYNTH_ST_NOT_SUPPORTED;
            continue;
        } else if (!(f[nf].p = synthi_arena_ptr(q, desc->src_off, desc->src_len))) {
            cpl->status = SYNTH_ST_INVALID;
        } else if (desc->src_len < SYNTH_PKT_MIN_FRAME || desc->src_len > pd->max_frame) {
            cpl->status = SYNTH_ST_LIMIT;
        } else {
            f[nf].len = desc->src_len;
            f[nf].slot = i;
            cpl->result = desc->src_len;
            bytes += desc->src_len;
            nf++;
            continue;
        }
        if (desc->opcode == SYNTH_OP_PKT_SEND)
            PKT_INC(pd, tx_bad, 1);
    }
    if (nf) {
        switch (ch->link) {
        case SYNTH_PKT_LINK_WIRE:
            tx_wire(pd, ch, f, nf, out);
            break;
        case SYNTH_PKT_LINK_TAP:
            tx_tap(pd, ch, f, nf, out);
            break;
        default:
            for (i = 0; i < nf; i++)
                out[f[i].slot].status = SYNTH_ST_NO_RESOURCES;
            PKT_INC(pd, tx_no_link, nf);
        }
        for (i = 0; i < nf; i++) {
            if (out[f[i].slot].status != SYNTH_ST_OK) {
                bytes -= f[i].len;
                out[f[i].slot].result = 0;
            }
        }
        SYNTH_STAT_ADD(d->stats.bytes_in, bytes);
        d->work_bytes += bytes;
    }
    synthi_pkt_publish(pd);
}

/*
 * The generic poll's prefetch hook, right after it takes a burst: for a burst of SENDs, the
 * completion lines the burst will fill, for writing (the sender last read them), all but the first,
 * which the sender is polling (as synthi_hq_prefetch_cq, which asks for them shared).
 */
static void pkt_prefetch(const struct synth_hqueue *q, const struct synth_desc *in, unsigned n)
{
    uint32_t i, per_line = 64u / q->cq.esz;

    (void)in;
    for (i = 1; i < n; i++)
        if (((q->cq.local + i) & (per_line - 1)) == 0)
            synthi_prefetch_w(synthi_ring_slot(&q->cq, q->cq.local + i));
}

static unsigned pkt_poll_queue(struct synth_hdev *d, struct synth_hqueue *q, uint32_t qi, uint32_t burst)
{
    struct pkt_dev *pd = synthi_pkt_of(d);

    pd->burst = burst;
    if (qi & 1u) {
        unsigned n = synthi_pkt_rx_poll(pd, q, &pd->chan[qi / 2], burst);
        synthi_pkt_publish(pd);
        return n;
    }
    return synthi_hdev_poll_queue_generic(d, q, burst);
}

static unsigned pkt_poll_device(struct synth_hdev *d)
{
    struct pkt_dev *pd = synthi_pkt_of(d);
    unsigned c, n = 0;

    for (c = 0; c < pd->channels; c++) {
        if (pd->chan[c].link == SYNTH_PKT_LINK_TAP)
            n += synthi_pkt_tap_poll(pd, &pd->chan[c], pd->burst);
        else if (atomic_load_explicit(&pd->chan[c].link_gone, memory_order_relaxed) &&
                 atomic_exchange_explicit(&pd->chan[c].link_gone, 0, memory_order_acquire))
            __atomic_store_n(&pd->cfg->link[c], (uint8_t)SYNTH_PKT_LINK_NONE, __ATOMIC_RELAXED);
    }
    synthi_pkt_publish(pd);
    return n;
}

/*
 * A parked worker's packet device (worker.c): its rings tell all unless a channel has a TAP, which
 * only a read shows. A wire's frames come from its other end's TX ring, on the same worker; a link
 * changes only while the device is not served (check_free), and serving it again wakes the worker.
 * RX buffers are posted on the RX queue's ring, which synthi_hdev_pending reads as any other.
 */
static int pkt_watchable(const struct synth_hdev *d)
{
    const struct pkt_dev *pd = synthi_pkt_of(d);
    uint32_t c;

    for (c = 0; c < pd->channels; c++)
        if (pd->chan[c].link == SYNTH_PKT_LINK_TAP)
            return 0;
    return 1;
}

/* A wire's other end went (packet_link.c): the next pass tells the driver. */
static int pkt_pending(struct synth_hdev *d)
{
    struct pkt_dev *pd = synthi_pkt_of(d);
    uint32_t c;

    for (c = 0; c < pd->channels; c++)
        if (atomic_load_explicit(&pd->chan[c].link_gone, memory_order_relaxed))
            return 1;
    return 0;
}

/* ---- life cycle ---- */

static int pkt_init(struct synth_hdev *d, const struct synth_hdev_params *p)
{
    struct synth_pkt_host_params hp;
    struct pkt_dev *pd;
    uint32_t c, size = d->layout.ring_entries;

    memset(&hp, 0, sizeof(hp));
    if (p->class_params) {
        if (p->class_params_size != sizeof(hp))
            return -EINVAL;
        memcpy(&hp, p->class_params, sizeof(hp));
    } else if (p->class_params_size) {
        return -EINVAL;
    }
    if (hp.reserved[0] || hp.reserved[1] || hp.reserved[2])
        return -EINVAL;
    if (!hp.max_frame)
        hp.max_frame = SYNTH_PKT_MAX_FRAME;
    if (hp.max_frame < SYNTH_PKT_MIN_FRAME || hp.max_frame > SYNTH_PKT_MAX_FRAME)
        return -EINVAL;
    if (d->layout.num_queues % 2u)
        return -EINVAL; /* a channel is a TX queue and an RX queue */

    pd = calloc(1, sizeof(*pd));
    if (!pd)
        return -ENOMEM;
    pd->channels = d->layout.num_queues / 2u;
    pd->rx_mem = calloc((size_t)pd->channels * size, sizeof(*pd->rx_mem));
    if (!pd->rx_mem) {
        free(pd);
        return -ENOMEM;
    }
    pd->dev = d;
    pd->max_frame = hp.max_frame;
    pd->burst = 32;
    for (c = 0; c < pd->channels; c++) {
        struct pkt_chan *ch = &pd->chan[c];
        ch->idx = c;
        ch->link = SYNTH_PKT_LINK_NONE;
        ch->tap_fd = -1;
        ch->rx = pd->rx_mem + (size_t)c * size;
        ch->rx_mask = size - 1;
    }
    pd->cfg = (struct synth_pkt_cfg *)(void *)d->hdr->class_cfg;
    memset(d->hdr->class_cfg, 0, sizeof(d->hdr->class_cfg));
    pd->cfg->channels = pd->channels;
    pd->cfg->max_frame = pd->max_frame;
    pd->cfg->min_frame = SYNTH_PKT_MIN_FRAME;
    d->cls = pd;
    return 0;
}

static void pkt_fini(struct synth_hdev *d)
{
    struct pkt_dev *pd = synthi_pkt_of(d);
    uint32_t c;

    if (!pd)
        return;
    for (c = 0; c < pd->channels; c++)
        synthi_pkt_link_drop(pd, c);
    free(pd->scratch);
    free(pd->rx_mem);
    free(pd);
    d->cls = NULL;
}

/* A driver reset: buffers posted in the old epoch are gone, and so are frames queued for it. */
static void pkt_reset(struct synth_hdev *d)
{
    struct pkt_dev *pd = synthi_pkt_of(d);
    uint32_t c;

    for (c = 0; c < pd->channels; c++) {
        struct pkt_chan *ch = &pd->chan[c];
        synthi_pkt_rx_count(pd, ch);
        ch->rx_head = ch->rx_tail = 0;
        ch->cq_dirty = 0;
        if (ch->link == SYNTH_PKT_LINK_TAP)
            synthi_pkt_tap_drain(pd, ch);
    }
    synthi_pkt_publish(pd);
}

static const char *pkt_plugin_name(const struct synth_hdev *d)
{
    (void)d;
    return "packet";
}

static uint32_t pkt_sessions(const struct synth_hdev *d)
{
    (void)d;
    return 0;
}

const struct synth_class_ops synthi_packet_class = {
    .dev_class = SYNTH_CLASS_PACKET,
    .features = 0,
    .init = pkt_init,
    .fini = pkt_fini,
    .reset = pkt_reset,
    .process = pkt_process,
    .prefetch = pkt_prefetch,
    .plugin_name = pkt_plugin_name,
    .sessions = pkt_sessions,
    .poll_queue = pkt_poll_queue,
    .poll_device = pkt_poll_device,
    .watchable = pkt_watchable,
    .pending = pkt_pending,
};
