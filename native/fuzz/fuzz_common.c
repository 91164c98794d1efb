/* SPDX-License-Identifier: Apache-2.0 */
/* The hostile guest and the oracle shared by the three harnesses (see fuzz.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "synth/ring_pvt.h"

uint8_t fz_u8(struct fz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

uint16_t fz_u16(struct fz_in *in)
{
    uint16_t lo = fz_u8(in);
    return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

uint32_t fz_u32(struct fz_in *in)
{
    uint32_t lo = fz_u16(in);
    return lo | (uint32_t)fz_u16(in) << 16;
}

void fz_fill(struct fz_in *in, uint8_t *dst, size_t n, size_t given)
{
    size_t k = given < n ? given : n, i;

    if (k > in->n)
        k = in->n;

    memcpy(dst, in->p, k);
    in->p += k;
    in->n -= k;
    for (i = k; i < n; i++)
        dst[i] = (uint8_t)(i * 131u + 7u);
}

void fz_fail(const struct fz_harness *h, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\n==fuzz== %s device: invariant violated: ", h->cls->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

uint32_t fz_id(const struct fz_harness *h, uint8_t idx)
{
    return h->nids ? h->ids[idx % h->nids] : 0;
}

/* Offsets and lengths: 0xfff0.. are the edges (the arena's size and around, the top of u32). */
static uint32_t edge(uint64_t arena, uint16_t v)
{
    static const int64_t rel[8] = {0, -1, 1, -16, 16, -4096, 4096, -64};

    if (v >= 0xfff8u)
        return (uint32_t)(0xffffffffu - (uint32_t)(v - 0xfff8u) * 0x1000u);
    return (uint32_t)((int64_t)arena + rel[v & 7u]);
}

uint32_t fz_off(struct fz_harness *h, struct fz_in *in, uint32_t qi)
{
    uint16_t v = fz_u16(in);
    uint64_t a = h->q[qi].arena_size;

    h->last_off = v >= 0xfff0u ? edge(a, v) : (uint32_t)(v % a);
    return h->last_off;
}

/* 0xffe0..0xffef: a range from the last offset to 8 bytes short of the arena's end .. 7 past it. */
uint32_t fz_len(struct fz_harness *h, struct fz_in *in, uint32_t qi)
{
    uint16_t v = fz_u16(in);
    uint64_t a = h->q[qi].arena_size;

    if (v >= 0xfff0u)
        return edge(a, v);
    if (v >= 0xffe0u)
        return (uint32_t)(a - h->last_off + (uint32_t)(v - 0xffe8u));
    return (uint32_t)(v % (a + 1));
}

static void allow(struct fz_harness *h, uint64_t off, uint64_t len)
{
    if (off >= h->size)
        return;
    if (len > h->size - off)
        len = h->size - off;
    memset(h->allowed + off, 1, len);
}

void fz_allow_arena(struct fz_harness *h, uint32_t qi, uint64_t off, uint64_t len)
{
    const struct fz_queue *q = &h->q[qi];

    if (off >= q->arena_size)
        return;
    if (len > q->arena_size - off)
        len = q->arena_size - off;
    allow(h, q->arena_off + off, len);
}

static uint32_t load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static void store_u32(uint8_t *p, uint32_t v) { synthi_store_release_u32((uint32_t *)(void *)p, v); }

int fz_submit(struct fz_harness *h, uint32_t qi, struct synth_desc *d)
{
    struct fz_queue *q = &h->q[qi];
    struct synth_desc *e;

    if (q->prod - q->host_cons >= h->cls->ring_entries)
        return -1;
    d->cookie = h->next_cookie++;
    e = &q->sq[q->prod & (h->cls->ring_entries - 1)];
    memcpy(e, d, offsetof(struct synth_desc, seq));
    store_u32((uint8_t *)&e->seq, synth_ring_seq(q->prod));
    q->prod++;
    store_u32(q->sq_core, q->prod);
    return 0;
}

/* ---- the guest's commands ---- */

static void cmd_desc(struct fz_harness *h, struct fz_in *in)
{
    const struct fz_class *cls = h->cls;
    uint32_t qi = fz_u8(in) % h->layout.num_queues, bad = 0, back = 0, idx;
    struct fz_queue *q = &h->q[qi];
    struct synth_desc d, *e;
    uint8_t op = fz_u8(in), mode;

    memset(&d, 0, sizeof(d));
    d.opcode = op >= 0xf0u ? fz_u16(in) : cls->opcodes[op % cls->nopcodes];
    mode = fz_u8(in);
    if (mode & 1u)
        d.flags = fz_u16(in);
    d.session = (mode & 2u) ? fz_u32(in) : fz_id(h, fz_u8(in));
    if (mode & 4u)
        bad = 1u + fz_u8(in) % 4u;
    if (mode & 8u)
        back = 1u + fz_u8(in) % cls->ring_entries;
    d.src_off = fz_off(h, in, qi);
    d.src_len = fz_len(h, in, qi);
    d.dst_off = fz_off(h, in, qi);
    d.dst_len = fz_len(h, in, qi);
    d.aad_off = fz_off(h, in, qi);
    d.aad_len = fz_len(h, in, qi);
    d.iv_off = fz_off(h, in, qi);
    d.tag_off = fz_off(h, in, qi);
    if (mode & 16u) /* output as long as the input, ending -8..+7 bytes from the arena's end */
        d.dst_off = (uint32_t)(q->arena_size - d.src_len) + (uint32_t)(fz_u8(in) % 16u) - 8u;
    if (cls->args)
        cls->args(h, in, &d);
    if (!bad && !back) {
        fz_submit(h, qi, &d);
        return;
    }
    /* Hostile: a wrong sequence word, or a slot published already written over. */
    idx = back ? q->prod - back : q->prod;
    d.cookie = h->next_cookie++;
    e = &q->sq[idx & (cls->ring_entries - 1)];
    memcpy(e, &d, offsetof(struct synth_desc, seq));
    switch (bad) {
    case 0:
        store_u32((uint8_t *)&e->seq, synth_ring_seq(idx));
        break;
    case 1:
        store_u32((uint8_t *)&e->seq, 0);
        break;
    case 2:
        store_u32((uint8_t *)&e->seq, synth_ring_seq(idx + cls->ring_entries));
        break;
    case 3:
        store_u32((uint8_t *)&e->seq, synth_ring_seq(idx + 1));
        break;
    default:
        store_u32((uint8_t *)&e->seq, synth_ring_seq(idx - cls->ring_entries));
    }
}

static void cmd_data(struct fz_harness *h, struct fz_in *in)
{
    uint32_t qi = fz_u8(in) % h->layout.num_queues;
    struct fz_queue *q = &h->q[qi];
    uint32_t off = fz_u16(in) % q->arena_size, len = fz_u16(in);

    if (len > q->arena_size - off)
        len = (uint32_t)(q->arena_size - off);
    fz_fill(in, q->arena + off, len, len);
}

static void consume(struct fz_harness *h, uint32_t qi, uint32_t n)
{
    struct fz_queue *q = &h->q[qi];
    uint32_t avail = q->host_prod - q->cons;

    q->cons += n < avail ? n : avail;
    store_u32(q->cq_core + 128, q->cons);
}

static void cmd_ring(struct fz_harness *h, struct fz_in *in)
{
    uint8_t which = fz_u8(in);
    uint32_t qi = which % h->layout.num_queues, word = (which / h->layout.num_queues) % 4u;
    uint32_t v = fz_u32(in);
    struct fz_queue *q = &h->q[qi];

    /* Small values are offsets from the index the word should hold; others are taken as they are. */
    switch (word) {
    case 0: /* SQ prod (guest's; the host does not read it) */
        store_u32(q->sq_core, v < 0x100u ? q->prod + v - 0x80u : v);
        break;
    case 1: /* SQ cons (host's) */
        store_u32(q->sq_core + 128, v < 0x100u ? q->host_cons + v - 0x80u : v);
        break;
    case 2: /* CQ prod (host's) */
        store_u32(q->cq_core, v < 0x100u ? q->host_prod + v - 0x80u : v);
        break;
    default: /* CQ cons (guest's): the host checks it */
        store_u32(q->cq_core + 128, v < 0x100u ? q->cons + v - 0x80u : v);
        h->hostile = 1;
    }
}

static void cmd_header(struct fz_harness *h, struct fz_in *in)
{
    uint32_t off = (fz_u16(in) % SYNTH_HEADER_SIZE) & ~3u, v = fz_u32(in);

    store_u32(h->base + off, v);
    if (off >= offsetof(struct synth_dev_header, drv_status) && off < offsetof(struct synth_dev_header, class_cfg))
        h->hostile = 1; /* the driver's own words: the host acts on them */
}

static int poll(struct fz_harness *h, int keep);

/* A driver reset as the guest library does it: status, features, then a new epoch. */
static void cmd_reset(struct fz_harness *h, struct fz_in *in)
{
    struct synth_dev_header *hdr = (struct synth_dev_header *)(void *)h->base;
    uint8_t st = fz_u8(in), f = fz_u8(in);
    uint32_t drv = SYNTH_DRV_ACKNOWLEDGE | SYNTH_DRV_DRIVER | SYNTH_DRV_FEATURES_OK | SYNTH_DRV_DRIVER_OK;
    uint64_t feat = SYNTH_F_RING_V1;
    unsigned i;

    if ((st & 3u) == 1u)
        drv &= ~SYNTH_DRV_DRIVER_OK; /* a driver that stops: the device goes idle */
    else if ((st & 3u) == 2u)
        drv = st >> 2;
    if (f & 1u)
        feat |= SYNTH_F_NOP;
    for (i = 0; i < 3; i++)
        if (f & (2u << i))
            feat |= h->cls->features[i];
    if (f & 0x40u)
        feat &= ~SYNTH_F_RING_V1;
    if (f & 0x80u)
        feat |= 1ull << (8u + (f & 7u)); /* a generic bit nobody offers */
    __atomic_store_n(&hdr->features_accepted, feat, __ATOMIC_RELAXED);
    store_u32((uint8_t *)&hdr->drv_status, drv);
    store_u32((uint8_t *)&hdr->drv_epoch, h->epoch + 1);
    /* As the guest library: wait for the host to acknowledge (it may pace resets over time). */
    for (i = 0; !poll(h, 0); i++) {
        if (i == 100000)
            fz_fail(h, "a driver reset is not acknowledged after %u polls", i);
        usleep(10);
    }
}

/* ---- the oracle ---- */

static void reset_guest(struct fz_harness *h)
{
    uint32_t i;

    for (i = 0; i < h->layout.num_queues; i++) {
        struct fz_queue *q = &h->q[i];
        q->prod = q->cons = q->host_cons = q->host_prod = 0;
        q->fifo_head = q->fifo_tail = 0;
    }
    h->nids = 0;
}

static const char *where(const struct fz_harness *h, uint64_t off, char *buf, size_t n)
{
    uint32_t i;

    if (off < SYNTH_HEADER_SIZE) {
        snprintf(buf, n, "header byte %llu", (unsigned long long)off);
        return buf;
    }
    for (i = 0; i < h->layout.num_queues; i++) {
        const struct fz_queue *q = &h->q[i];
        if (off >= q->sq_off && off < q->sq_off + h->layout.sq_bytes)
            snprintf(buf, n, "queue %u SQ byte %llu", i, (unsigned long long)(off - q->sq_off));
        else if (off >= q->cq_off && off < q->cq_off + h->layout.cq_bytes)
            snprintf(buf, n, "queue %u CQ byte %llu", i, (unsigned long long)(off - q->cq_off));
        else if (off >= q->arena_off && off < q->arena_off + q->arena_size)
            snprintf(buf, n, "queue %u arena byte %llu", i, (unsigned long long)(off - q->arena_off));
        else
            continue;
        return buf;
    }
    snprintf(buf, n, "region byte %llu (no queue's)", (unsigned long long)off);
    return buf;
}

static void push(struct fz_harness *h, uint32_t qi, const struct synth_desc *d)
{
    struct fz_queue *q = &h->q[qi];
    struct fz_pending *p;

    if (q->fifo_tail - q->fifo_head >= FZ_FIFO)
        fz_fail(h, "queue %u: %u descriptors taken and not answered", qi, q->fifo_tail - q->fifo_head);
    p = &q->fifo[q->fifo_tail++ % FZ_FIFO];
    p->cookie = d->cookie;
    p->opcode = d->opcode;
    p->out_off = d->dst_off;
    p->out_len = d->dst_len;
}

/*
 * Before the poll: the host-owned index words get a value no store of the host can produce, so
 * that "it changed" means "the host stored it" even after the guest scribbled on them.
 */
static void poison_host_words(struct fz_harness *h)
{
    uint32_t i;

    for (i = 0; i < h->layout.num_queues; i++) {
        struct fz_queue *q = &h->q[i];
        if (load_u32(q->sq_core + 128) != q->host_cons)
            store_u32(q->sq_core + 128, q->host_cons ^ 0x80000000u);
        if (load_u32(q->cq_core) != q->host_prod)
            store_u32(q->cq_core, q->host_prod ^ 0x80000000u);
    }
}

/* What the host took from queue qi during the poll: checked, queued for answers, outputs allowed. */
static void account_takes(struct fz_harness *h, uint32_t qi)
{
    struct fz_queue *q = &h->q[qi];
    const uint8_t *cons_word = q->sq_core + 128;
    uint32_t entries = h->cls->ring_entries, now, idx;

    if (load_u32(cons_word) == load_u32(h->snap + q->sq_off + 128))
        return; /* not stored: nothing taken */
    now = load_u32(cons_word);
    if (now - q->host_cons > entries || now == q->host_cons)
        fz_fail(h, "queue %u: SQ cons moved from %u to %u (ring of %u)", qi, q->host_cons, now, entries);
    for (idx = q->host_cons; idx != now; idx++) {
        const struct synth_desc *d =
            (const struct synth_desc *)(const void *)(h->snap + (q->sq_off + SYNTH_RING_ENTRIES_OFF) +
                                                      (size_t)(idx & (entries - 1)) * sizeof(struct synth_desc));
        if (d->seq != synth_ring_seq(idx))
            fz_fail(h, "queue %u: took index %u, whose seq %u does not publish it", qi, idx, d->seq);
        push(h, qi, d);
        h->cls->outputs(h, qi, d);
    }
    q->host_cons = now;
}

/* Outputs of descriptors taken in earlier polls and still held (posted receive buffers). */
static void allow_held(struct fz_harness *h, uint32_t qi)
{
    struct fz_queue *q = &h->q[qi];
    uint32_t i;

    for (i = q->fifo_head; i != q->fifo_tail; i++)
        fz_allow_arena(h, qi, q->fifo[i % FZ_FIFO].out_off, q->fifo[i % FZ_FIFO].out_len);
}

static void check_answers(struct fz_harness *h, uint32_t qi, const struct synth_hqueue_stats *st)
{
    struct fz_queue *q = &h->q[qi];
    uint32_t entries = h->cls->ring_entries, n, i;
    uint64_t more = st->ops - q->host_ops;

    if (more > entries)
        fz_fail(h, "queue %u: %llu completions in one poll (ring of %u)", qi, (unsigned long long)more, entries);
    n = (uint32_t)more;
    if (n && load_u32(q->cq_core) != q->host_prod + n)
        fz_fail(h, "queue %u: CQ prod %u after %u completions from %u", qi, load_u32(q->cq_core), n, q->host_prod);
    for (i = 0; i < n; i++) {
        uint32_t idx = q->host_prod + i;
        const struct synth_cpl *c = &q->cq[idx & (entries - 1)];
        uint32_t w = load_u32((const uint8_t *)c + 8);
        uint16_t status = (uint16_t)w, flags = (uint16_t)(w >> 16);
        struct fz_pending *p;

        if (((flags & SYNTH_CPL_F_PHASE) ? 1u : 0u) != synth_cpl_phase(idx, entries))
            fz_fail(h, "queue %u: completion %u has the phase of another lap", qi, idx);
        if (q->fifo_head == q->fifo_tail)
            fz_fail(h, "queue %u: completion %u (cookie %llu) answers no descriptor taken", qi, idx,
                    (unsigned long long)c->cookie);
        p = &q->fifo[q->fifo_head++ % FZ_FIFO];
        if (c->cookie != p->cookie)
            fz_fail(h, "queue %u: completion %u has cookie %llu, the descriptor it answers %llu", qi, idx,
                    (unsigned long long)c->cookie, (unsigned long long)p->cookie);
        if (status >= SYNTH_ST_MAX)
            fz_fail(h, "queue %u: completion %u has status %u", qi, idx, status);
        if (flags & ~(SYNTH_CPL_F_PHASE | SYNTH_CPL_F_MORE | SYNTH_CPL_F_END))
            fz_fail(h, "queue %u: completion %u has undefined flags %#x", qi, idx, flags);
        if (h->trace)
            fprintf(stderr, "  q%u cookie %llu opcode %#x -> status %u result %u flags %#x\n", qi,
                    (unsigned long long)c->cookie, p->opcode, status, c->result, flags & ~SYNTH_CPL_F_PHASE);
        if (h->cls->answer)
            h->cls->answer(h, qi, p, c);
    }
    q->host_prod += n;
    q->host_ops = st->ops;
}

/* The bytes a driver reset may rewrite: identity, queue table, every ring. */
static void allow_reset(struct fz_harness *h)
{
    uint32_t qi;

    allow(h, 0, offsetof(struct synth_dev_header, dev_status));
    allow(h, SYNTH_QUEUE_TABLE_OFF, SYNTH_HEADER_SIZE - SYNTH_QUEUE_TABLE_OFF);
    for (qi = 0; qi < h->layout.num_queues; qi++) {
        allow(h, h->q[qi].sq_off, h->layout.sq_bytes);
        allow(h, h->q[qi].cq_off, h->layout.cq_bytes);
    }
}

/* The host acted on a driver reset: check the handshake's outcome; the guest starts again at 0. */
static void after_reset(struct fz_harness *h, const struct synth_hdev_stats *st)
{
    const struct synth_dev_header *hdr = (const struct synth_dev_header *)(const void *)h->base;
    uint64_t f = __atomic_load_n(&hdr->features_accepted, __ATOMIC_RELAXED);
    uint32_t drv = load_u32(h->base + offsetof(struct synth_dev_header, drv_status));
    int bad = (drv & SYNTH_DRV_DRIVER_OK) && ((f & ~h->offered) || !(f & SYNTH_F_RING_V1));

    h->acked = load_u32(h->base + offsetof(struct synth_dev_header, acked_epoch));
    h->epoch = load_u32(h->base + offsetof(struct synth_dev_header, drv_epoch));
    if (h->acked != h->epoch)
        fz_fail(h, "reset acknowledged epoch %u, the driver's is %u", h->acked, h->epoch);
    if (!!(st->dev_status & SYNTH_DEV_NEEDS_RESET) != bad)
        fz_fail(h, "a reset with status %#x and features %#llx (offered %#llx) left dev_status %#x", drv,
                (unsigned long long)f, (unsigned long long)h->offered, st->dev_status);
    if (!!st->active != (!bad && (drv & SYNTH_DRV_DRIVER_OK)))
        fz_fail(h, "a reset with status %#x left the device %s", drv, st->active ? "active" : "idle");
    reset_guest(h);
    h->hostile = bad;
    h->resetting = 0;
}

/* One synth_hdev_poll and every check. Returns 1 if it completed a driver reset. */
static int poll(struct fz_harness *h, int keep)
{
    struct synth_hdev_stats before, after;
    struct synth_hqueue_stats qs[SYNTH_MAX_QUEUES];
    char buf[96];
    uint64_t i;
    uint32_t qi;
    int reset;

    poison_host_words(h);
    memcpy(h->snap, h->base, h->size);
    /* A new epoch: the host resets, maybe over several polls (rings cleared, identity rewritten). */
    if (load_u32(h->base + offsetof(struct synth_dev_header, drv_epoch)) != h->acked)
        h->resetting = 1;
    synth_hdev_get_stats(h->dev, &before);
    synth_hdev_poll(h->dev);
    synth_hdev_get_stats(h->dev, &after);
    for (qi = 0; qi < h->layout.num_queues; qi++)
        synth_hdev_get_queue_stats(h->dev, qi, &qs[qi]);
    reset = after.resets != before.resets;
    if (reset && !h->resetting)
        fz_fail(h, "the host reset the device with no new driver epoch");

    memset(h->allowed, 0, h->size);
    allow(h, offsetof(struct synth_dev_header, dev_status), 64); /* line 2: host status */
    allow(h, SYNTH_CLASS_CFG_OFF, SYNTH_CLASS_CFG_SIZE);
    if (h->resetting) {
        allow_reset(h);
        for (qi = 0; qi < h->layout.num_queues; qi++)
            if (qs[qi].ops != h->q[qi].host_ops)
                fz_fail(h, "queue %u: completions while the device resets", qi);
    } else {
        for (qi = 0; qi < h->layout.num_queues; qi++) {
            allow(h, h->q[qi].sq_off + 128, 4); /* SQ cons */
            allow(h, h->q[qi].cq_off, 4);       /* CQ prod */
            allow_held(h, qi);
            account_takes(h, qi);
        }
        for (qi = 0; qi < h->layout.num_queues; qi++) {
            uint64_t n = qs[qi].ops - h->q[qi].host_ops, k;
            for (k = 0; k < n && k < h->cls->ring_entries; k++)
                allow(h, h->q[qi].cq_off + SYNTH_RING_ENTRIES_OFF +
                             ((h->q[qi].host_prod + k) & (h->cls->ring_entries - 1)) * sizeof(struct synth_cpl),
                      sizeof(struct synth_cpl));
        }
    }
    for (i = 0; i < h->size; i++)
        if (h->base[i] != h->snap[i] && !h->allowed[i])
            fz_fail(h, "the host wrote %s (%#x -> %#x), which it does not own", where(h, i, buf, sizeof(buf)),
                    h->snap[i], h->base[i]);
    if (h->resetting) {
        if (reset)
            after_reset(h, &after);
        return reset;
    }
    for (qi = 0; qi < h->layout.num_queues; qi++) {
        struct fz_queue *q = &h->q[qi];
        check_answers(h, qi, &qs[qi]);
        if (!(after.dev_status & SYNTH_DEV_NEEDS_RESET) && q->fifo_head != q->fifo_tail &&
            !(h->cls->held && h->cls->held(qi, q->fifo[q->fifo_head % FZ_FIFO].opcode)))
            fz_fail(h, "queue %u: descriptor (cookie %llu) taken and not answered", qi,
                    (unsigned long long)q->fifo[q->fifo_head % FZ_FIFO].cookie);
        if (!keep)
            consume(h, qi, UINT32_MAX);
    }
    if (h->trace)
        fprintf(stderr, "poll: dev_status %#x error %u sessions %u\n", after.dev_status, after.dev_error,
                after.sessions);
    if ((after.dev_status & SYNTH_DEV_NEEDS_RESET) && !h->hostile)
        fz_fail(h, "the device asks for a reset (error %u) from a guest that kept the protocol", after.dev_error);
    return 0;
}

/* ---- one input ---- */

/* Lay the region out, and map it a second time as the guest's QEMU would. */
static int open_device(struct fz_harness *h, const struct synth_hdev_params *p0)
{
    static unsigned seq;
    const char *dir = getenv("SYNTH_FUZZ_DIR");
    struct synth_hdev_params p = *p0;
    char path[256];
    int rc, fd;

    if (!dir)
        dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof(path), "%s/synth-fuzz-%d-%u", dir, (int)getpid(), seq++);
    p.path = path;
    rc = synth_hdev_create(&p, &h->dev);
    if (rc < 0) {
        unlink(path);
        return rc;
    }
    fd = open(path, O_RDWR | O_CLOEXEC);
    unlink(path); /* the two mappings are all that is needed from here on */
    h->base = fd < 0 ? MAP_FAILED : mmap(NULL, h->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    rc = h->base == MAP_FAILED ? -errno : 0;
    if (fd >= 0)
        close(fd);
    if (rc < 0) {
        h->base = NULL;
        synth_hdev_destroy(h->dev, 0);
    }
    return rc;
}

int fz_run(const struct fz_class *cls, const uint8_t *data, size_t size)
{
    static struct fz_harness h;
    static uint8_t *snap, *allowed;
    struct fz_in in = {data, size};
    struct synth_hdev_params p;
    struct synth_dev_header *hdr;
    uint8_t setup = fz_u8(&in), fsel = fz_u8(&in);
    unsigned steps, i;
    int rc;

    memset(&h, 0, sizeof(h));
    h.cls = cls;
    h.trace = getenv("SYNTH_FUZZ_TRACE") != NULL;
    h.size = cls->region_size;
    if (!snap) {
        snap = malloc(cls->region_size);
        allowed = malloc(cls->region_size);
        if (!snap || !allowed)
            abort();
    }
    h.snap = snap;
    h.allowed = allowed;
    memset(&p, 0, sizeof(p));
    p.name = cls->name;
    p.dev_class = cls->dev_class;
    p.num_queues = cls->num_queues;
    p.region_size = cls->region_size;
    p.ring_entries = cls->ring_entries;
    p.uid = p.gid = -1;
    if (cls->params && cls->params(&h, setup, &p) < 0)
        return -1;
    if (synth_layout_compute(p.region_size, p.num_queues, p.ring_entries, &h.layout) < 0)
        abort();
    rc = open_device(&h, &p);
    if (rc == -ENOTSUP)
        return -1; /* that plugin choice serves nothing on this machine */
    if (rc < 0) {
        fprintf(stderr, "laying out the region: %s\n", strerror(-rc));
        abort();
    }
    for (i = 0; i < h.layout.num_queues; i++) {
        struct fz_queue *q = &h.q[i];
        q->sq_off = h.layout.queues[i].sq_off;
        q->cq_off = h.layout.queues[i].cq_off;
        q->arena_off = h.layout.queues[i].arena_off;
        q->arena_size = h.layout.queues[i].arena_size;
        q->sq_core = h.base + q->sq_off;
        q->cq_core = h.base + q->cq_off;
        q->sq = (struct synth_desc *)(void *)(q->sq_core + SYNTH_RING_ENTRIES_OFF);
        q->cq = (struct synth_cpl *)(void *)(q->cq_core + SYNTH_RING_ENTRIES_OFF);
        q->arena = h.base + q->arena_off;
    }
    hdr = (struct synth_dev_header *)(void *)h.base;
    h.offered = hdr->features_offered;
    if (cls->setup && cls->setup(&h, setup) < 0)
        goto out;

    /* The driver's handshake, then the fuzzer's program. */
    {
        uint8_t reset[2] = {0, fsel};
        struct fz_in r = {reset, sizeof(reset)};
        cmd_reset(&h, &r);
    }
    for (steps = 0; in.n && steps < FZ_MAX_STEPS; steps++) {
        uint8_t c = fz_u8(&in);
        if (c < 96)
            cmd_desc(&h, &in);
        else if (c < 128)
            cls->create(&h, &in);
        else if (c < 160)
            cmd_data(&h, &in);
        else if (c < 176)
            (cls->frame ? cls->frame : cmd_data)(&h, &in);
        else if (c < 208)
            poll(&h, fz_u8(&in) & 1u);
        else if (c < 216) {
            uint8_t qn = fz_u8(&in);
            consume(&h, qn % h.layout.num_queues, fz_u8(&in));
        } else if (c < 224)
            cmd_reset(&h, &in);
        else if (c < 240)
            cmd_ring(&h, &in);
        else
            cmd_header(&h, &in);
    }
    poll(&h, 0);
    poll(&h, 0);
out:
    synth_hdev_destroy(h.dev, 0);
    munmap(h.base, h.size);
    return 0;
}
