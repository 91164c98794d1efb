/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet device class: the data path. TX queues go through the generic queue poll, whose `process`
 * hands each checked frame to the channel's link (a wire into the peer's receive FIFO, a TAP, or
 * nowhere). RX queues have their own poll: RECV descriptors are copied once into a host-private
 * FIFO, in posting order, and completed when a frame fills them (or at once, in order, when they
 * were refused). Nothing is allocated per frame; a frame is copied once, from the sender's arena
 * (or the TAP) straight into the receiver's posted buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "packet_pvt.h"

struct pkt_dev *synth_pkt_dev(const struct synth_hdev *d)
{
    return d && d->ops == &synth_packet_class ? pkt_of(d) : NULL;
}

static void store_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

void synth_pkt_publish(struct pkt_dev *pd)
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

void synth_pkt_publish_link(struct pkt_dev *pd, uint32_t chan)
{
    __atomic_store_n(&pd->cfg->link[chan], (uint8_t)pd->chan[chan].link, __ATOMIC_RELAXED);
}

/* ---- receive side ---- */

static struct synth_hqueue *rx_queue(struct pkt_dev *pd, const struct pkt_chan *ch)
{
    return &pd->dev->queues[synth_pkt_rxq(ch->idx)];
}

/*
 * Complete the head of ch's receive FIFO. Room in the completion ring was reserved when the
 * descriptor was taken (rx_poll), so this always has a slot; the producer index is stored once per
 * burst by synth_pkt_rx_commit.
 */
static void rx_complete_head(struct pkt_dev *pd, struct pkt_chan *ch, uint16_t status, uint32_t result)
{
    struct synth_hqueue *q = rx_queue(pd, ch);
    struct synth_ring *cq = &q->cq;
    const struct pkt_rx_entry *e = &ch->rx[ch->rx_head & ch->rx_mask];
    uint32_t idx = cq->local, st = status < SYNTH_ST_MAX ? status : SYNTH_ST_DEVICE_ERROR;
    struct synth_cpl *c = (struct synth_cpl *)synth_ring_slot(cq, idx);
    uint32_t flags = synth_cpl_phase(idx, cq->size) ? SYNTH_CPL_F_PHASE : 0u;

    c->cookie = e->cookie;
    c->result = result;
    synth_store_release_u32(synth_cpl_word(c), (uint32_t)status | (flags << 16));
    cq->local = idx + 1;
    ch->rx_head++;
    ch->cq_dirty = 1;
    SYNTH_STAT_ADD(pd->dev->stats.ops, 1);
    SYNTH_STAT_ADD(pd->dev->stats.status[st], 1);
    SYNTH_STAT_ADD(q->stats.ops, 1);
    SYNTH_STAT_ADD(q->stats.status[st], 1);
}

void synth_pkt_rx_commit(struct pkt_dev *pd, struct pkt_chan *ch)
{
    struct synth_ring *cq;

    if (!ch->cq_dirty)
        return;
    cq = &rx_queue(pd, ch)->cq;
    synth_store_release_u32(&cq->core->prod, cq->local);
    ch->cq_dirty = 0;
}

/* Complete the refused descriptors at the head of the FIFO. Returns how many. */
static unsigned rx_flush_refused(struct pkt_dev *pd, struct pkt_chan *ch)
{
    unsigned n = 0;
    while (ch->rx_head != ch->rx_tail) {
        uint16_t st = ch->rx[ch->rx_head & ch->rx_mask].status;
        if (st == PKT_RX_PENDING)
            break;
        rx_complete_head(pd, ch, st, 0);
        n++;
    }
    return n;
}

static unsigned rx_take(struct pkt_dev *pd, struct synth_hqueue *q, struct pkt_chan *ch, uint32_t burst);

struct pkt_rx_entry *synth_pkt_rx_head(struct pkt_dev *pd, struct pkt_chan *ch)
{
    rx_flush_refused(pd, ch);
    if (ch->rx_head == ch->rx_tail && !pd->dev->broken) {
        /* Buffers the driver has published but this queue's poll has not taken yet count too. */
        rx_take(pd, rx_queue(pd, ch), ch, SYNTH_MAX_BURST);
        rx_flush_refused(pd, ch);
    }
    return ch->rx_head != ch->rx_tail ? &ch->rx[ch->rx_head & ch->rx_mask] : NULL;
}

void synth_pkt_rx_fill_head(struct pkt_dev *pd, struct pkt_chan *ch, uint32_t len)
{
    const struct pkt_rx_entry *e = &ch->rx[ch->rx_head & ch->rx_mask];

    if (len > e->cap) {
        rx_complete_head(pd, ch, SYNTH_ST_NO_SPACE, len);
        PKT_INC(pd, rx_too_long, 1);
        return;
    }
    rx_complete_head(pd, ch, SYNTH_ST_OK, len);
    PKT_INC(pd, rx_frames, 1);
    PKT_INC(pd, rx_bytes, len);
    SYNTH_STAT_ADD(pd->dev->stats.bytes_out, len);
}

uint16_t synth_pkt_rx_deliver(struct pkt_dev *pd, struct pkt_chan *ch, const uint8_t *src, uint32_t len)
{
    struct synth_hdev *d = pd->dev;
    struct pkt_rx_entry *e;

    if (!d->active || d->broken) {
        PKT_INC(pd, rx_no_buffer, 1);
        return SYNTH_ST_NO_RESOURCES;
    }
    if (len > pd->max_frame) {
        PKT_INC(pd, rx_bad_frame, 1);
        return SYNTH_ST_NO_RESOURCES;
    }
    e = synth_pkt_rx_head(pd, ch);
    if (!e) {
        PKT_INC(pd, rx_no_buffer, 1);
        return SYNTH_ST_NO_RESOURCES;
    }
    if (len <= e->cap)
        memcpy(rx_queue(pd, ch)->arena + e->off, src, len);
    synth_pkt_rx_fill_head(pd, ch, len);
    return len <= e->cap ? SYNTH_ST_OK : SYNTH_ST_NO_RESOURCES;
}

/* Judge a RECV descriptor (a private copy) into a FIFO entry. */
static void rx_judge(struct pkt_dev *pd, const struct synth_hqueue *q, const struct synth_desc *in,
                     struct pkt_rx_entry *e)
{
    e->cookie = in->cookie;
    e->off = 0;
    e->cap = 0;
    if (in->flags != 0)
        e->status = SYNTH_ST_INVALID;
    else if (in->opcode == SYNTH_OP_NOP)
        e->status = (pd->dev->features & SYNTH_F_NOP) ? SYNTH_ST_OK : SYNTH_ST_NOT_SUPPORTED;
    else if (in->opcode != SYNTH_OP_PKT_RECV)
        e->status = SYNTH_ST_NOT_SUPPORTED;
    else if (in->dst_len < SYNTH_PKT_MIN_FRAME || !synth_range_ok(q->arena_size, in->dst_off, in->dst_len))
        e->status = SYNTH_ST_INVALID;
    else {
        e->status = PKT_RX_PENDING;
        e->off = in->dst_off;
        e->cap = (uint16_t)(in->dst_len < pd->max_frame ? in->dst_len : pd->max_frame);
        return;
    }
    if (e->status != SYNTH_ST_OK)
        PKT_INC(pd, rx_bad_desc, 1);
}

/*
 * Take up to burst new RECV descriptors into the FIFO: no more than the completion ring has room
 * for, counting the ones already held, so that every one of them can complete without waiting.
 */
static unsigned rx_take(struct pkt_dev *pd, struct synth_hqueue *q, struct pkt_chan *ch, uint32_t burst)
{
    struct synth_desc in[SYNTH_MAX_BURST];
    uint32_t held = ch->rx_tail - ch->rx_head, size = q->cq.size, want, take, got, i;
    int64_t room;

    if (held >= size)
        return 0;
    want = held + burst < size ? held + burst : size;
    room = synth_ring_sp_free_count_want(&q->cq, want);
    if (room < 0) {
        synth_hdev_mark_broken(pd->dev, SYNTH_DEVERR_CQ_INDEX);
        return 0;
    }
    if ((uint64_t)room <= held)
        return 0;
    take = (uint32_t)room - held;
    if (take > burst)
        take = burst;
    if (pd->dev->has_vault) {
        /* As the generic poll does: the vault names every taken descriptor before its slot goes back. */
        struct synth_vault_queue *vq = synth_vault_queue(&pd->dev->vault, (uint32_t)(q - pd->dev->queues));
        uint32_t start = q->sq.local;
        got = synth_sq_dequeue_burst_noreserve(&q->sq, in, take);
        if (got == 0)
            return 0;
        for (i = 0; i < got; i++)
            vq->cookies[(start + i) & q->sq.mask] = in[i].cookie;
        __atomic_store_n(&vq->taken, start + got, __ATOMIC_RELEASE);
        synth_store_release_u32(&q->sq.core->cons, q->sq.local);
    } else {
        got = synth_sq_dequeue_burst(&q->sq, in, take);
    }
    for (i = 0; i < got; i++)
        rx_judge(pd, q, &in[i], &ch->rx[(ch->rx_tail + i) & ch->rx_mask]);
    ch->rx_tail += got;
    return got;
}

/* Poll an RX queue: take new RECV descriptors, complete refused ones that reached the head. */
static unsigned rx_poll(struct pkt_dev *pd, struct synth_hqueue *q, struct pkt_chan *ch, uint32_t burst)
{
    unsigned n = rx_take(pd, q, ch, burst);
    n += rx_flush_refused(pd, ch);
    synth_pkt_rx_commit(pd, ch);
    return n;
}

/* Prefetch, for writing, the next n posted buffers of ch and the completion slots they will use. */
static void rx_prefetch(struct pkt_dev *pd, struct pkt_chan *ch, unsigned n)
{
    const struct synth_hqueue *q = rx_queue(pd, ch);
    uint32_t held = ch->rx_tail - ch->rx_head, i;

    if (n > held)
        n = held;
    for (i = 0; i < n; i++) {
        const struct pkt_rx_entry *e = &ch->rx[(ch->rx_head + i) & ch->rx_mask];
        if (e->status == PKT_RX_PENDING)
            __builtin_prefetch(q->arena + e->off, 1);
    }
    for (i = 0; i < n; i += 4) /* four 16-byte completions per line */
        __builtin_prefetch(synth_ring_slot(&q->cq, q->cq.local + i), 1);
}

/* ---- transmit side ---- */

struct tx_frame {
    const uint8_t *p;
    uint32_t len;
    uint32_t slot; /* index of its descriptor in the burst */
};

/* Send the checked frames of a burst over ch's wire. */
static void tx_wire(struct pkt_dev *pd, struct pkt_chan *ch, const struct tx_frame *f, unsigned nf,
                    struct synth_cpl *out)
{
    struct pkt_wire *w = atomic_load_explicit(&ch->wire, memory_order_acquire);
    struct synth_hdev *d = pd->dev, *peer;
    struct pkt_dev *ppd;
    struct pkt_chan *pch;
    unsigned i, me;

    if (!w) {
        PKT_INC(pd, tx_no_link, nf);
        return;
    }
    pthread_mutex_lock(&w->lock);
    me = (w->end[0] == d && w->chan[0] == ch->idx) ? 0 : 1;
    peer = w->end[1 - me];
    /*
     * Only the thread serving both ends may touch the peer's receive queue. During a worker's pass
     * none of its devices can be removed from it, so an equal owner stays equal until we return.
     */
    if (!w->alive || atomic_load_explicit(&peer->owner, memory_order_acquire) !=
                         atomic_load_explicit(&d->owner, memory_order_relaxed)) {
        pthread_mutex_unlock(&w->lock);
        for (i = 0; i < nf; i++)
            out[f[i].slot].status = SYNTH_ST_NO_RESOURCES;
        PKT_INC(pd, tx_no_link, nf);
        return;
    }
    ppd = pkt_of(peer);
    pch = &ppd->chan[w->chan[1 - me]];
    /*
     * The frames were just written on the sender's CPU, the posted buffers and the completion slots
     * were last touched on the receiver's: start all those transfers at once instead of stalling on
     * them one frame at a time.
     */
    rx_prefetch(ppd, pch, nf);
    for (i = 0; i < nf; i++)
        __builtin_prefetch(f[i].p);
    for (i = 0; i < nf; i++) {
        uint16_t st = synth_pkt_rx_deliver(ppd, pch, f[i].p, f[i].len);
        out[f[i].slot].status = st;
        if (st == SYNTH_ST_OK) {
            PKT_INC(pd, tx_frames, 1);
            PKT_INC(pd, tx_bytes, f[i].len);
        } else {
            PKT_INC(pd, tx_peer_full, 1);
        }
    }
    synth_pkt_rx_commit(ppd, pch);
    if (ppd != pd)
        synth_pkt_publish(ppd);
    pthread_mutex_unlock(&w->lock);
}

static void tx_tap(struct pkt_dev *pd, struct pkt_chan *ch, const struct tx_frame *f, unsigned nf,
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
    struct pkt_dev *pd = pkt_of(d);
    uint32_t qi = (uint32_t)(q - d->queues);
    struct pkt_chan *ch = &pd->chan[qi / 2];
    struct tx_frame f[SYNTH_MAX_BURST];
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
        } else if (!(f[nf].p = synth_arena_ptr(q, desc->src_off, desc->src_len))) {
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
    }
    synth_pkt_publish(pd);
}

static unsigned pkt_poll_queue(struct synth_hdev *d, struct synth_hqueue *q, uint32_t qi, uint32_t burst)
{
    struct pkt_dev *pd = pkt_of(d);

    pd->burst = burst;
    if (qi & 1u) {
        unsigned n = rx_poll(pd, q, &pd->chan[qi / 2], burst);
        synth_pkt_publish(pd);
        return n;
    }
    return synth_hdev_poll_queue_generic(d, q, burst);
}

static unsigned pkt_poll_device(struct synth_hdev *d)
{
    struct pkt_dev *pd = pkt_of(d);
    unsigned c, n = 0;

    for (c = 0; c < pd->channels; c++)
        if (pd->chan[c].link == SYNTH_PKT_LINK_TAP)
            n += synth_pkt_tap_poll(pd, &pd->chan[c], pd->burst);
    synth_pkt_publish(pd);
    return n;
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
    struct pkt_dev *pd = pkt_of(d);
    uint32_t c;

    if (!pd)
        return;
    for (c = 0; c < pd->channels; c++)
        synth_pkt_link_drop(pd, c);
    free(pd->scratch);
    free(pd->rx_mem);
    free(pd);
    d->cls = NULL;
}

/* A driver reset: buffers posted in the old epoch are gone, and so are frames queued for it. */
static void pkt_reset(struct synth_hdev *d)
{
    struct pkt_dev *pd = pkt_of(d);
    uint32_t c;

    for (c = 0; c < pd->channels; c++) {
        struct pkt_chan *ch = &pd->chan[c];
        ch->rx_head = ch->rx_tail = 0;
        ch->cq_dirty = 0;
        if (ch->link == SYNTH_PKT_LINK_TAP)
            synth_pkt_tap_drain(pd, ch);
    }
    synth_pkt_publish(pd);
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

const struct synth_class_ops synth_packet_class = {
    .dev_class = SYNTH_CLASS_PACKET,
    .features = 0,
    .init = pkt_init,
    .fini = pkt_fini,
    .reset = pkt_reset,
    .process = pkt_process,
    .plugin_name = pkt_plugin_name,
    .sessions = pkt_sessions,
    .poll_queue = pkt_poll_queue,
    .poll_device = pkt_poll_device,
};
