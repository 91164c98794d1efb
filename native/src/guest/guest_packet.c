/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest library, packet class: a channel's buffer pools and the receive/transmit bursts, built on
 * the queue API of guest.c. Buffer numbers travel as descriptor cookies, so a completion names its
 * buffer; each buffer's state is tracked here so that a completion the library does not expect is
 * ignored instead of corrupting the pools.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "synth/guest.h"
#include "synth/ring_pvt.h"
#include "synth/clock_pvt.h"

#define POLL_CHUNK 64u
#define SPIN_NS 200000ull
#define MAX_NAP_NS 1000000ull

enum { TX_FREE, TX_CALLER, TX_DEVICE };
enum { RX_POSTED, RX_READY, RX_CALLER, RX_REPOST };

struct rx_ready {
    uint32_t id;
    uint32_t len;
};

struct synth_pkt_chan {
    struct synth_dev *dev;
    struct synth_queue *txq, *rxq;
    uint8_t *tx_pool, *rx_pool;  /* first buffer of each pool */
    uint32_t tx_base, rx_base;   /* their arena offsets */
    uint32_t buf_size, max_frame;
    uint32_t n_tx, n_rx;
    uint32_t *tx_free;           /* stack of free transmit buffers */
    uint32_t tx_nfree;
    uint8_t *tx_state, *rx_state;
    struct rx_ready *ready;      /* FIFO of received frames, n_rx slots */
    uint32_t ready_head, ready_count;
    uint32_t *repost;            /* receive buffers to post again */
    uint32_t n_repost;
    uint32_t rx_posted;
    struct synth_pkt_chan_stats st;
};


int synth_pkt_dev_counters(const struct synth_dev *dev, struct synth_pkt_cfg *out)
{
    struct synth_dev_info info;
    const uint64_t *src;
    uint64_t *dst = (uint64_t *)(void *)out;
    size_t i;

    synth_dev_get_info(dev, &info);
    if (info.dev_class != SYNTH_CLASS_PACKET)
        return -EINVAL;
    src = (const uint64_t *)synth_dev_class_cfg(dev);
    _Static_assert(sizeof(*out) % 8 == 0, "the configuration block is 64-bit words");
    for (i = 0; i < sizeof(*out) / 8; i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    return 0;
}

/* Post the receive buffers waiting in the repost list, as many as the ring takes. */
static void rx_flush_repost(struct synth_pkt_chan *ch)
{
    struct synth_desc d[POLL_CHUNK];
    uint32_t done = 0;

    while (done < ch->n_repost) {
        uint32_t k, n = ch->n_repost - done < POLL_CHUNK ? ch->n_repost - done : POLL_CHUNK, sent;
        memset(d, 0, n * sizeof(d[0]));
        for (k = 0; k < n; k++) {
            uint32_t id = ch->repost[done + k];
            d[k].cookie = id;
            d[k].opcode = SYNTH_OP_PKT_RECV;
            d[k].dst_off = ch->rx_base + id * ch->buf_size;
            d[k].dst_len = ch->buf_size;
        }
        sent = synth_q_submit_burst(ch->rxq, d, n);
        for (k = 0; k < sent; k++)
            ch->rx_state[ch->repost[done + k]] = RX_POSTED;
        ch->rx_posted += sent;
        done += sent;
        if (sent < n)
            break;
    }
    if (done) {
        memmove(ch->repost, ch->repost + done, (ch->n_repost - done) * sizeof(*ch->repost));
        ch->n_repost -= done;
    }
}

/* Take the receive completions that arrived: frames to the ready FIFO, the rest posted again. */
static void rx_poll_cpl(struct synth_pkt_chan *ch)
{
    struct synth_cpl c[POLL_CHUNK];
    uint32_t got, i;

    do {
        got = synth_q_poll_burst(ch->rxq, c, POLL_CHUNK);
        for (i = 0; i < got; i++) {
            uint64_t id = c[i].cookie;
            if (id >= ch->n_rx || ch->rx_state[id] != RX_POSTED)
                continue; /* not a buffer we posted: ignore it */
            ch->rx_posted--;
            if (c[i].status == SYNTH_ST_OK && c[i].result >= SYNTH_PKT_MIN_FRAME && c[i].result <= ch->buf_size) {
                struct rx_ready *r = &ch->ready[(ch->ready_head + ch->ready_count) % ch->n_rx];
                r->id = (uint32_t)id;
                r->len = c[i].result;
                ch->ready_count++;
                ch->rx_state[id] = RX_READY;
            } else {
                ch->st.rx_dropped++;
                ch->rx_state[id] = RX_REPOST;
                ch->repost[ch->n_repost++] = (uint32_t)id;
            }
        }
    } while (got == POLL_CHUNK);
    if (ch->n_repost)
        rx_flush_repost(ch);
}

unsigned synth_pkt_are_there_packets(struct synth_pkt_chan *ch)
{
    rx_poll_cpl(ch);
    return ch->ready_count;
}

unsigned synth_pkt_give_me_packets(struct synth_pkt_chan *ch, struct synth_pkt *pkts, unsigned n)
{
    unsigned i;

    rx_poll_cpl(ch);
    if (n > ch->ready_count)
        n = ch->ready_count;
    for (i = 0; i < n; i++) {
        const struct rx_ready *r = &ch->ready[ch->ready_head];
        pkts[i].data = ch->rx_pool + (size_t)r->id * ch->buf_size;
        pkts[i].len = r->len;
        pkts[i].cap = ch->buf_size;
        pkts[i].id = r->id;
        pkts[i].reserved = 0;
        ch->rx_state[r->id] = RX_CALLER;
        ch->ready_head = ch->ready_head + 1 == ch->n_rx ? 0 : ch->ready_head + 1;
    }
    ch->ready_count -= n;
    ch->st.rx_frames += n;
    return n;
}

void synth_pkt_rx_free(struct synth_pkt_chan *ch, const struct synth_pkt *pkts, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        uint32_t id = pkts[i].id;
        if (id >= ch->n_rx || ch->rx_state[id] != RX_CALLER ||
            pkts[i].data != ch->rx_pool + (size_t)id * ch->buf_size)
            continue;
        ch->rx_state[id] = RX_REPOST;
        ch->repost[ch->n_repost++] = id;
    }
    rx_flush_repost(ch);
}

unsigned synth_pkt_tx_reclaim(struct synth_pkt_chan *ch)
{
    struct synth_cpl c[POLL_CHUNK];
    unsigned total = 0;
    uint32_t got, i;

    do {
        got = synth_q_poll_burst(ch->txq, c, POLL_CHUNK);
        for (i = 0; i < got; i++) {
            uint64_t id = c[i].cookie;
            if (id >= ch->n_tx || ch->tx_state[id] != TX_DEVICE)
                continue;
            ch->tx_state[id] = TX_FREE;
            ch->tx_free[ch->tx_nfree++] = (uint32_t)id;
            if (c[i].status == SYNTH_ST_OK)
                ch->st.tx_ok++;
            else
                ch->st.tx_dropped++;
        }
        total += got;
    } while (got == POLL_CHUNK);
    return total;
}

unsigned synth_pkt_tx_alloc(struct synth_pkt_chan *ch, struct synth_pkt *pkts, unsigned n)
{
    unsigned i;

    if (ch->tx_nfree < n)
        synth_pkt_tx_reclaim(ch);
    if (n > ch->tx_nfree)
        n = ch->tx_nfree;
    for (i = 0; i < n; i++) {
        uint32_t id = ch->tx_free[--ch->tx_nfree];
        pkts[i].data = ch->tx_pool + (size_t)id * ch->buf_size;
        pkts[i].len = 0;
        pkts[i].cap = ch->buf_size;
        pkts[i].id = id;
        pkts[i].reserved = 0;
        ch->tx_state[id] = TX_CALLER;
    }
    return n;
}

static int tx_pkt_ok(const struct synth_pkt_chan *ch, const struct synth_pkt *p)
{
    return p->id < ch->n_tx && ch->tx_state[p->id] == TX_CALLER &&
           p->data == ch->tx_pool + (size_t)p->id * ch->buf_size && p->len >= 1 && p->len <= ch->buf_size;
}

unsigned synth_pkt_send_packets(struct synth_pkt_chan *ch, struct synth_pkt *pkts, unsigned n)
{
    struct synth_desc d[POLL_CHUNK];
    unsigned done = 0;

    while (done < n) {
        unsigned k, m = 0, sent;
        while (m < POLL_CHUNK && done + m < n && tx_pkt_ok(ch, &pkts[done + m])) {
            const struct synth_pkt *p = &pkts[done + m];
            memset(&d[m], 0, sizeof(d[m]));
            d[m].cookie = p->id;
            d[m].opcode = SYNTH_OP_PKT_SEND;
            d[m].src_off = ch->tx_base + p->id * ch->buf_size;
            d[m].src_len = p->len;
            m++;
        }
        if (m == 0)
            break;
        sent = synth_q_submit_burst(ch->txq, d, m);
        for (k = 0; k < sent; k++)
            ch->tx_state[pkts[done + k].id] = TX_DEVICE;
        done += sent;
        if (sent < m)
            break;
    }
    ch->st.tx_sent += done;
    return done;
}

void synth_pkt_tx_free(struct synth_pkt_chan *ch, const struct synth_pkt *pkts, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        uint32_t id = pkts[i].id;
        if (id >= ch->n_tx || ch->tx_state[id] != TX_CALLER || pkts[i].data != ch->tx_pool + (size_t)id * ch->buf_size)
            continue;
        ch->tx_state[id] = TX_FREE;
        ch->tx_free[ch->tx_nfree++] = id;
    }
}

int synth_pkt_wait_rx(struct synth_pkt_chan *ch, int timeout_ms)
{
    uint64_t start = 0, t, nap = 1000;
    unsigned spins = 0;

    for (;;) {
        if (synth_pkt_are_there_packets(ch))
            return 0;
        if ((++spins & 255) != 0) {
            synthi_cpu_relax();
            continue;
        }
        if (synth_dev_needs_reset(ch->dev))
            return -EIO;
        t = synthi_now_ns();
        if (!start)
            start = t;
        if (t - start > (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull)
            return -ETIMEDOUT;
        if (t - start > SPIN_NS) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)nap};
            nanosleep(&ts, NULL);
            if (nap < MAX_NAP_NS)
                nap *= 2;
        }
    }
}

void synth_pkt_chan_get_stats(const struct synth_pkt_chan *ch, struct synth_pkt_chan_stats *st)
{
    *st = ch->st;
    st->tx_free = ch->tx_nfree;
    st->rx_posted = ch->rx_posted;
    st->rx_ready = ch->ready_count;
    st->buf_size = ch->buf_size;
    st->max_frame = ch->max_frame;
}

/*
 * Allocate a pool of buffers of bsz bytes in q's arena: `want` of them, or if want is 0, as many as
 * the ring and the arena's free space allow. Returns 0 with *count and *off set, -EINVAL, -ENOMEM.
 */
static int pool_alloc(struct synth_queue *q, uint32_t ring, uint32_t bsz, uint32_t want, uint32_t *count,
                      uint32_t *off)
{
    uint64_t fit = synth_q_arena_size(q) / bsz;
    uint32_t n;
    int64_t o;

    if (want > ring)
        return -EINVAL;
    if (want > fit)
        return -ENOMEM;
    n = want ? want : (fit < ring ? (uint32_t)fit : ring);
    while (n > 0) {
        o = synth_buf_alloc(q, n * bsz); /* n * bsz <= arena size < 2^32 */
        if (o >= 0) {
            *count = n;
            *off = (uint32_t)o;
            return 0;
        }
        if (want)
            break;
        n -= n / 8 ? n / 8 : 1; /* the arena is partly used: try a smaller pool */
    }
    return -ENOMEM;
}

void synth_pkt_chan_close(struct synth_pkt_chan *ch)
{
    if (!ch)
        return;
    free(ch->tx_free);
    free(ch->tx_state);
    free(ch->rx_state);
    free(ch->ready);
    free(ch->repost);
    free(ch);
}

int synth_pkt_chan_open(struct synth_dev *dev, unsigned chan, const struct synth_pkt_chan_opts *opts,
                        struct synth_pkt_chan **out)
{
    struct synth_pkt_chan_opts o;
    struct synth_dev_info info;
    struct synth_pkt_cfg cfg;
    struct synth_pkt_chan *ch;
    uint32_t i;
    int rc;

    memset(&o, 0, sizeof(o));
    if (opts)
        o = *opts;
    if (synth_pkt_dev_counters(dev, &cfg) < 0)
        return -EINVAL;
    synth_dev_get_info(dev, &info);
    if (info.num_queues % 2u || chan >= info.num_queues / 2u || o.reserved)
        return -EINVAL;
    if (synth_dev_needs_reset(dev))
        return -EIO;
    ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    ch->dev = dev;
    ch->txq = synth_dev_queue(dev, synth_pkt_txq(chan));
    ch->rxq = synth_dev_queue(dev, synth_pkt_rxq(chan));
    ch->max_frame = cfg.max_frame >= SYNTH_PKT_MIN_FRAME && cfg.max_frame <= SYNTH_PKT_MAX_FRAME
                        ? cfg.max_frame : SYNTH_PKT_MAX_FRAME;
    ch->buf_size = o.buf_size ? o.buf_size : (ch->max_frame + 63u) & ~63u;
    rc = -EINVAL;
    if (ch->buf_size < SYNTH_PKT_MIN_FRAME || ch->buf_size > (1u << 24))
        goto fail;
    ch->buf_size = (ch->buf_size + 63u) & ~63u;
    if ((rc = pool_alloc(ch->txq, info.ring_entries, ch->buf_size, o.tx_bufs, &ch->n_tx, &ch->tx_base)) < 0)
        goto fail;
    if ((rc = pool_alloc(ch->rxq, info.ring_entries, ch->buf_size, o.rx_bufs, &ch->n_rx, &ch->rx_base)) < 0) {
        synth_buf_free(ch->txq, ch->tx_base, ch->n_tx * ch->buf_size);
        goto fail;
    }
    rc = -ENOMEM;
    ch->tx_free = calloc(ch->n_tx, sizeof(*ch->tx_free));
    ch->tx_state = calloc(ch->n_tx, 1);
    ch->rx_state = calloc(ch->n_rx, 1);
    ch->ready = calloc(ch->n_rx, sizeof(*ch->ready));
    ch->repost = calloc(ch->n_rx, sizeof(*ch->repost));
    if (!ch->tx_free || !ch->tx_state || !ch->rx_state || !ch->ready || !ch->repost) {
        synth_buf_free(ch->txq, ch->tx_base, ch->n_tx * ch->buf_size);
        synth_buf_free(ch->rxq, ch->rx_base, ch->n_rx * ch->buf_size);
        goto fail;
    }
    ch->tx_pool = (uint8_t *)synth_q_arena(ch->txq) + ch->tx_base;
    ch->rx_pool = (uint8_t *)synth_q_arena(ch->rxq) + ch->rx_base;
    for (i = 0; i < ch->n_tx; i++)
        ch->tx_free[i] = ch->n_tx - 1 - i; /* buffer 0 first */
    ch->tx_nfree = ch->n_tx;
    for (i = 0; i < ch->n_rx; i++) {
        ch->rx_state[i] = RX_REPOST;
        ch->repost[i] = i;
    }
    ch->n_repost = ch->n_rx;
    rx_flush_repost(ch);
    *out = ch;
    return 0;

fail:
    synth_pkt_chan_close(ch);
    return rc;
}
