/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet device class, receive side: the host-private FIFO of posted buffers of each channel, in
 * posting order. RECV descriptors are copied once and judged when taken (with completion-ring room
 * reserved for each), so that delivering a frame is one copy into the oldest posted buffer and one
 * completion, with nothing left to check.
 */
#include <string.h>

#include "packet_pvt.h"

/* SYNTH_CPL_F_PHASE if ring index idx of cq is on an odd lap (synth_cpl_phase as a flag). */
static inline uint32_t cpl_phase_flag(const struct synth_ring *cq, uint32_t idx)
{
    return (idx & cq->size) ? 0u : SYNTH_CPL_F_PHASE;
}

static struct synth_hqueue *rx_queue(struct pkt_dev *pd, const struct pkt_chan *ch)
{
    return &pd->dev->queues[synth_pkt_rxq(ch->idx)];
}

/*
 * Complete the head of ch's receive FIFO. Room in the completion ring was reserved when the
 * descriptor was taken (rx_take), so this always has a slot; the producer index is stored once per
 * burst by synthi_pkt_rx_commit.
 */
static void rx_complete_head(struct pkt_dev *pd, struct pkt_chan *ch, uint16_t status, uint32_t result)
{
    struct synth_hqueue *q = rx_queue(pd, ch);
    struct synth_ring *cq = &q->cq;
    const struct pkt_rx_entry *e = &ch->rx[ch->rx_head & ch->rx_mask];
    uint32_t idx = cq->local, st = status < SYNTH_ST_MAX ? status : SYNTH_ST_DEVICE_ERROR;
    struct synth_cpl *c = (struct synth_cpl *)synthi_ring_slot(cq, idx);
    uint32_t flags = cpl_phase_flag(cq, idx);

    c->cookie = e->cookie;
    c->result = result;
    synthi_store_release_u32(synthi_cpl_word(c), (uint32_t)status | (flags << 16));
    cq->local = idx + 1;
    ch->rx_head++;
    ch->cq_dirty = 1;
    SYNTH_STAT_ADD(pd->dev->stats.ops, 1);
    SYNTH_STAT_ADD(pd->dev->stats.status[st], 1);
    SYNTH_STAT_ADD(q->stats.ops, 1);
    SYNTH_STAT_ADD(q->stats.status[st], 1);
}

/* Complete the head buffer e with OK and result len: a frame delivered (counted in ch->uncounted). */
static inline void rx_complete_ok(struct pkt_dev *pd, struct pkt_chan *ch, const struct pkt_rx_entry *e, uint32_t len)
{
    struct synth_ring *cq = &rx_queue(pd, ch)->cq;
    uint32_t idx = cq->local;
    struct synth_cpl *c = (struct synth_cpl *)synthi_ring_slot(cq, idx);
    uint32_t flags = cpl_phase_flag(cq, idx);

    c->cookie = e->cookie;
    c->result = len;
    synthi_store_release_u32(synthi_cpl_word(c), (uint32_t)SYNTH_ST_OK | (flags << 16));
    cq->local = idx + 1;
    ch->rx_head++;
    ch->cq_dirty = 1;
    ch->uncounted++;
    ch->uncounted_bytes += len;
}

void synthi_pkt_rx_count(struct pkt_dev *pd, struct pkt_chan *ch)
{
    struct synth_hqueue *q = rx_queue(pd, ch);
    uint32_t n = ch->uncounted;
    uint64_t bytes = ch->uncounted_bytes;

    if (!n)
        return;
    ch->uncounted = 0;
    ch->uncounted_bytes = 0;
    SYNTH_STAT_ADD(pd->dev->stats.ops, n);
    SYNTH_STAT_ADD(pd->dev->stats.status[SYNTH_ST_OK], n);
    SYNTH_STAT_ADD(q->stats.ops, n);
    SYNTH_STAT_ADD(q->stats.status[SYNTH_ST_OK], n);
    SYNTH_STAT_ADD(pd->dev->stats.bytes_out, bytes);
    PKT_INC(pd, rx_frames, n);
    PKT_INC(pd, rx_bytes, bytes);
}

void synthi_pkt_rx_commit(struct pkt_dev *pd, struct pkt_chan *ch)
{
    struct synth_ring *cq;

    synthi_pkt_rx_count(pd, ch);
    if (!ch->cq_dirty)
        return;
    cq = &rx_queue(pd, ch)->cq;
    synthi_store_release_u32(&cq->core->prod, cq->local);
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

struct pkt_rx_entry *synthi_pkt_rx_head(struct pkt_dev *pd, struct pkt_chan *ch)
{
    rx_flush_refused(pd, ch);
    if (ch->rx_head == ch->rx_tail && !pd->dev->broken) {
        /* Buffers the driver has published but this queue's poll has not taken yet count too. */
        rx_take(pd, rx_queue(pd, ch), ch, SYNTH_MAX_BURST);
        rx_flush_refused(pd, ch);
    }
    return ch->rx_head != ch->rx_tail ? &ch->rx[ch->rx_head & ch->rx_mask] : NULL;
}

void synthi_pkt_rx_fill_head(struct pkt_dev *pd, struct pkt_chan *ch, uint32_t len)
{
    const struct pkt_rx_entry *e = &ch->rx[ch->rx_head & ch->rx_mask];

    if (len > e->cap) {
        rx_complete_head(pd, ch, SYNTH_ST_NO_SPACE, len);
        PKT_INC(pd, rx_too_long, 1);
        return;
    }
    rx_complete_ok(pd, ch, e, len);
}

/*
 * How far ahead of the copy deliver_burst prefetches: the frame's lines (read) and its buffer's
 * lines (for writing), PKT_PREFETCH_LINES of them in flight, at least one frame ahead.
 */
#define PKT_PREFETCH_LINES 16u

/* Prefetch frame f and, if it is posted, the buffer k places behind the head of ch's FIFO. */
static inline void prefetch_ahead(const struct synth_hqueue *q, const struct pkt_chan *ch, uint32_t k,
                                  const struct pkt_frame *f)
{
    const struct pkt_rx_entry *e = &ch->rx[(ch->rx_head + k) & ch->rx_mask];
    uint32_t o;

    for (o = 0; o < f->len; o += 64u)
        __builtin_prefetch(f->p + o);
    if (k >= ch->rx_tail - ch->rx_head || e->status != PKT_RX_PENDING)
        return;
    for (o = 0; o < f->len && o < e->cap; o += 64u)
        synthi_prefetch_w(q->arena + e->off + o);
}

unsigned synthi_pkt_rx_deliver_burst(struct pkt_dev *pd, struct pkt_chan *ch, const struct pkt_frame *f, unsigned n,
                                     uint16_t *st)
{
    struct synth_hdev *d = pd->dev;
    struct synth_hqueue *q = rx_queue(pd, ch);
    uint64_t bad = 0, no_buffer = 0;
    unsigned i, ok = 0, ahead, lines;

    /*
     * Frame i + ahead will most likely go into the buffer `ahead` places behind the head when frame
     * i is copied: bring both over while the copies before it run.
     */
    lines = (f[0].len + 63u) / 64u;
    ahead = PKT_PREFETCH_LINES / lines ? PKT_PREFETCH_LINES / lines : 1u;
    for (i = 0; i < n && i < ahead; i++)
        prefetch_ahead(q, ch, i, &f[i]);
    for (i = 0; i < n; i++) {
        uint32_t len = f[i].len;
        const struct pkt_rx_entry *e;

        st[i] = SYNTH_ST_NO_RESOURCES;
        if (!d->active || d->broken) {
            no_buffer += n - i;
            for (; i < n; i++)
                st[i] = SYNTH_ST_NO_RESOURCES;
            break;
        }
        if (len > pd->max_frame) {
            bad++; /* the buffer stays posted */
            continue;
        }
        e = &ch->rx[ch->rx_head & ch->rx_mask];
        if (ch->rx_head == ch->rx_tail || e->status != PKT_RX_PENDING) {
            e = synthi_pkt_rx_head(pd, ch); /* refused ones first; what the driver posted since */
            if (!e) {
                no_buffer++;
                continue;
            }
        }
        if (i + ahead < n)
            prefetch_ahead(q, ch, ahead, &f[i + ahead]);
        if (len > e->cap) {
            synthi_pkt_rx_fill_head(pd, ch, len); /* NO_SPACE, counted there */
            continue;
        }
        memcpy(q->arena + e->off, f[i].p, len);
        rx_complete_ok(pd, ch, e, len);
        st[i] = SYNTH_ST_OK;
        ok++;
    }
    if (bad)
        PKT_INC(pd, rx_bad_frame, bad);
    if (no_buffer)
        PKT_INC(pd, rx_no_buffer, no_buffer);
    return ok;
}

void synthi_pkt_rx_reserve(struct pkt_dev *pd, struct pkt_chan *ch, unsigned n)
{
    uint32_t held = ch->rx_tail - ch->rx_head;

    if (held < n && !pd->dev->broken && pd->dev->active)
        rx_take(pd, rx_queue(pd, ch), ch, SYNTH_MAX_BURST);
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
    room = synthi_ring_sp_free_count_want(&q->cq, want);
    if (room < 0) {
        synthi_hdev_mark_broken(pd->dev, SYNTH_DEVERR_CQ_INDEX);
        return 0;
    }
    if ((uint64_t)room <= held)
        return 0;
    take = (uint32_t)room - held;
    if (take > burst)
        take = burst;
    got = synthi_hdev_take(pd->dev, q, in, take);
    for (i = 0; i < got; i++)
        rx_judge(pd, q, &in[i], &ch->rx[(ch->rx_tail + i) & ch->rx_mask]);
    ch->rx_tail += got;
    return got;
}

unsigned synthi_pkt_rx_poll(struct pkt_dev *pd, struct synth_hqueue *q, struct pkt_chan *ch, uint32_t burst)
{
    unsigned n = rx_take(pd, q, ch, burst);
    n += rx_flush_refused(pd, ch);
    synthi_pkt_rx_commit(pd, ch);
    return n;
}

void synthi_pkt_rx_prefetch(struct pkt_dev *pd, struct pkt_chan *ch, unsigned n)
{
    struct synth_hqueue *q = rx_queue(pd, ch);
    uint32_t i;

    for (i = 0; i < n; i += 4) /* four 16-byte completions per line */
        synthi_prefetch_w(synthi_ring_slot(&q->cq, q->cq.local + i));
}
