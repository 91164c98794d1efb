/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression class: streams. A stream is a plugin context plus a buffer of max_chunk bytes for
 * input the output buffer could not take yet, both allocated at STREAM_CREATE and charged to the
 * device's stream memory budget. A STREAM op either hands a new chunk (only when the last
 * completion did not say MORE) or drains what is pending; the host caps the stream's total output
 * at max_stream_output. A stream that fails (BAD_DATA, LIMIT, DEVICE_ERROR) stays failed: every
 * later op on it gets the same status until the driver destroys it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "compress_pvt.h"

int synthi_comp_streams_init(struct comp_dev *c)
{
    uint16_t gen0 = 0;
    uint32_t i;

    c->streams = calloc(c->max_streams ? c->max_streams : 1, sizeof(*c->streams));
    if (!c->streams)
        return -ENOMEM;
    /* Random first generation per device: ids from before a backend restart stay unknown. */
    if (getrandom(&gen0, sizeof(gen0), GRND_NONBLOCK) != sizeof(gen0))
        gen0 = (uint16_t)(time(NULL) ^ (uintptr_t)c);
    if (gen0 == 0)
        gen0 = 1;
    for (i = 0; i < c->max_streams; i++)
        c->streams[i].gen = gen0;
    return 0;
}

static struct comp_stream *lookup(struct comp_dev *c, uint32_t id)
{
    uint32_t idx = id & 0xffffu;
    struct comp_stream *s;

    if (idx >= c->max_streams)
        return NULL;
    s = &c->streams[idx];
    if (!s->active || s->gen != (uint16_t)(id >> 16))
        return NULL;
    return s;
}

uint16_t synthi_comp_stream_open(struct comp_dev *c, struct comp_stream *s, const struct synth_plugin *pl,
                                 uint8_t alg, uint8_t dir, int32_t level)
{
    struct synth_comp_ctx_params cp;
    size_t mem;
    int rc;

    memset(&cp, 0, sizeof(cp));
    cp.alg = alg;
    cp.direction = dir;
    cp.level = level;
    cp.max_src = c->max_chunk;
    cp.window_log = c->window_log;
    mem = pl->comp_ctx_size(&cp) + c->max_chunk;
    if (mem > c->mem_budget - c->mem_used)
        return SYNTH_ST_NO_RESOURCES;
    s->buf = malloc(c->max_chunk);
    if (!s->buf)
        return SYNTH_ST_NO_RESOURCES;
    rc = pl->comp_ctx_create(&cp, &s->ctx);
    if (rc < 0) {
        free(s->buf);
        s->buf = NULL;
        s->ctx = NULL;
        return rc == -ENOTSUP ? SYNTH_ST_NOT_SUPPORTED : rc == -EINVAL ? SYNTH_ST_INVALID : SYNTH_ST_NO_RESOURCES;
    }
    s->pl = pl;
    s->mem = mem;
    s->level = level;
    s->alg = alg;
    s->dir = dir;
    c->mem_used += mem;
    return SYNTH_ST_OK;
}

void synthi_comp_stream_close(struct comp_dev *c, struct comp_stream *s, uint16_t gen)
{
    s->pl->comp_ctx_destroy(s->ctx);
    free(s->buf);
    free(s->hist);
    c->mem_used -= s->mem;
    c->hist_used -= s->hist_cap;
    memset(s, 0, sizeof(*s));
    s->gen = gen;
}

static void release(struct comp_dev *c, struct comp_stream *s)
{
    synthi_comp_stream_close(c, s, synthi_comp_next_gen(s->gen));
    __atomic_store_n(&c->nstreams, c->nstreams - 1, __ATOMIC_RELAXED);
}

void synthi_comp_streams_reset(struct comp_dev *c)
{
    uint32_t i;
    for (i = 0; c->streams && i < c->max_streams; i++)
        if (c->streams[i].active)
            release(c, &c->streams[i]);
}

void synthi_comp_streams_fini(struct comp_dev *c)
{
    synthi_comp_streams_reset(c);
    free(c->streams);
    c->streams = NULL;
}

uint16_t synthi_comp_stream_create(struct comp_dev *c, struct synth_hqueue *q, const struct synth_desc *d,
                            uint32_t *result)
{
    struct synth_comp_stream_params p;
    const struct synth_plugin *pl;
    const uint8_t *src = synthi_arena_ptr(q, d->src_off, d->src_len);
    struct comp_stream *s = NULL;
    int32_t level = 0;
    unsigned which = 0; /* the algorithm's plugin that serves the level */
    uint32_t i, idx;
    uint16_t st;

    if (!src || d->src_len != sizeof(p))
        return SYNTH_ST_INVALID;
    memcpy(&p, src, sizeof(p));
    if (p.flags || p.reserved || p.direction > SYNTH_COMP_DIR_DECOMPRESS || p.alg == 0 || p.alg >= SYNTH_CALG_MAX)
        return SYNTH_ST_INVALID;
    if (p.direction == SYNTH_COMP_DIR_DECOMPRESS && p.level != 0)
        return SYNTH_ST_INVALID;
    if (p.direction == SYNTH_COMP_DIR_COMPRESS) {
        level = p.level;
        st = synthi_comp_pick(c, p.alg, &level, &which);
        if (st != SYNTH_ST_OK)
            return st;
    } else if (!(c->alg_mask & (1u << p.alg))) {
        return SYNTH_ST_NOT_SUPPORTED;
    }
    pl = c->alg[p.alg].pl[which]; /* decompression: the algorithm's best plugin */
    if (c->nstreams >= c->max_streams)
        return SYNTH_ST_NO_RESOURCES;
    for (i = 0; i < c->max_streams; i++) {
        idx = (c->free_hint + i) % c->max_streams;
        if (!c->streams[idx].active) {
            s = &c->streams[idx];
            break;
        }
    }
    if (!s)
        return SYNTH_ST_NO_RESOURCES;
    st = synthi_comp_stream_open(c, s, pl, (uint8_t)p.alg, (uint8_t)p.direction, level);
    if (st != SYNTH_ST_OK)
        return st;
    s->active = 1;
    __atomic_store_n(&c->nstreams, c->nstreams + 1, __ATOMIC_RELAXED);
    c->free_hint = (idx + 1) % c->max_streams;
    *result = ((uint32_t)s->gen << 16) | idx;
    return SYNTH_ST_OK;
}

uint16_t synthi_comp_stream_destroy(struct comp_dev *c, const struct synth_desc *d)
{
    struct comp_stream *s = lookup(c, d->session);
    if (!s)
        return SYNTH_ST_NO_SESSION;
    release(c, s);
    return SYNTH_ST_OK;
}

static void forget(struct comp_dev *c, struct comp_stream *s)
{
    c->hist_used -= s->hist_cap;
    free(s->hist);
    s->hist = NULL;
    s->hist_len = s->hist_cap = 0;
    s->hist_over = 1;
}

/* Keep a new chunk in the stream's history (before the plugin may overwrite it in place). A
 * stream whose history outgrows COMP_HISTORY_MAX, or the device's COMP_HISTORY_DEVICE_MAX for all
 * its streams, works on, but can no longer move. */
static void remember(struct comp_dev *c, struct comp_stream *s, const uint8_t *src, uint32_t len, uint32_t flush)
{
    struct comp_feed f = {.len = len, .flush = (uint8_t)flush, .out_before = s->total_out};
    size_t need = s->hist_len + sizeof(f) + len;

    if (s->hist_over)
        return;
    if (need > COMP_HISTORY_MAX) {
        forget(c, s);
        return;
    }
    if (need > s->hist_cap) {
        size_t cap = s->hist_cap ? s->hist_cap : 4096;
        uint8_t *h;
        while (cap < need)
            cap *= 2;
        if (cap - s->hist_cap > COMP_HISTORY_DEVICE_MAX - c->hist_used) {
            forget(c, s);
            return;
        }
        h = realloc(s->hist, cap);
        if (!h) {
            forget(c, s);
            return;
        }
        c->hist_used += cap - s->hist_cap;
        s->hist = h;
        s->hist_cap = cap;
    }
    memcpy(s->hist + s->hist_len, &f, sizeof(f));
    memcpy(s->hist + s->hist_len + sizeof(f), src, len);
    s->hist_len = need;
}

static uint16_t fail(struct comp_stream *s, uint16_t st)
{
    s->state = STREAM_DEAD;
    s->dead_status = st;
    s->more = 0;
    s->pos = s->len = 0;
    return st;
}

uint16_t synthi_comp_stream_op(struct comp_dev *c, struct synth_hqueue *q, const struct synth_desc *d,
                        struct synth_cpl *cpl, uint64_t *bytes_in, uint64_t *bytes_out)
{
    struct comp_stream *s = lookup(c, d->session);
    struct synth_comp_io io;
    uint32_t flush = d->arg[0], eff;
    const uint8_t *in;
    uint8_t *src, *dst;
    size_t in_len, left;
    uint64_t room;
    uint16_t st;
    int in_place = 0;

    if (!s)
        return SYNTH_ST_NO_SESSION;
    if (flush > SYNTH_FLUSH_FINISH)
        return SYNTH_ST_INVALID;
    if (d->src_len > c->max_chunk)
        return SYNTH_ST_LIMIT;
    st = synthi_comp_buffers(q, d, &src, &dst);
    if (st != SYNTH_ST_OK)
        return st;
    if (s->state == STREAM_DEAD)
        return s->dead_status;
    if (s->state == STREAM_ENDED) {
        if (d->src_len)
            return SYNTH_ST_INVALID; /* the driver was told END: no input may follow */
        cpl->flags = SYNTH_CPL_F_END;
        return SYNTH_ST_OK;
    }
    if (d->src_len && s->more)
        return SYNTH_ST_INVALID; /* output is pending: drain it (ops with no input) first */

    if (!d->src_len) {
        in = s->buf + s->pos;
        in_len = s->len - s->pos;
    } else if (s->dir == SYNTH_COMP_DIR_DECOMPRESS && !(s->pl->comp_caps & SYNTH_COMP_CAP_DECODES_IN_PLACE)) {
        memcpy(s->buf, src, d->src_len); /* decode a private copy */
        s->pos = 0;
        s->len = d->src_len;
        in = s->buf;
        in_len = d->src_len;
    } else {
        in = src; /* (de)compress in place; what is not consumed is copied below */
        in_len = d->src_len;
        in_place = 1;
    }
    eff = flush > s->flush ? flush : s->flush;
    if (d->src_len)
        remember(c, s, in, d->src_len, eff); /* what the plugin reads: the private copy, or in place */
    /* Let the plugin write one byte past the stream's limit (within dst): that byte means LIMIT. */
    room = c->max_output - s->total_out;
    memset(&io, 0, sizeof(io));
    io.src = in;
    io.src_len = in_len;
    io.dst = dst;
    io.dst_len = (uint64_t)d->dst_len > room ? (size_t)room + 1 : d->dst_len;
    st = s->pl->comp_stream(s->ctx, s->dir == SYNTH_COMP_DIR_COMPRESS ? eff : SYNTH_FLUSH_NONE, &io);
    st = st < SYNTH_ST_MAX ? st : SYNTH_ST_DEVICE_ERROR;
    if (st == SYNTH_ST_OK && (io.produced > io.dst_len || io.consumed > in_len))
        st = SYNTH_ST_DEVICE_ERROR;
    if (st != SYNTH_ST_OK)
        return fail(s, st);
    s->total_out += io.produced;
    if (s->total_out > c->max_output)
        return fail(s, SYNTH_ST_LIMIT);
    left = in_len - io.consumed;
    if (io.flags & SYNTH_COMP_IO_END) {
        if (left)
            return fail(s, SYNTH_ST_BAD_DATA); /* bytes after the end of the compressed stream */
        s->state = STREAM_ENDED;
        s->more = 0;
        s->pos = s->len = 0;
        cpl->flags = SYNTH_CPL_F_END;
    } else {
        if (in_place && left) { /* a new chunk used in place: keep the rest */
            memcpy(s->buf, src + io.consumed, left);
            s->pos = 0;
            s->len = (uint32_t)left;
        } else if (!in_place) {
            s->pos += (uint32_t)io.consumed;
        }
        if (!left)
            s->pos = s->len = 0;
        s->more = left || (io.flags & SYNTH_COMP_IO_PENDING);
        if (!s->more && eff == SYNTH_FLUSH_FINISH) {
            if (s->dir == SYNTH_COMP_DIR_DECOMPRESS)
                return fail(s, SYNTH_ST_BAD_DATA); /* all input given, and the stream did not end */
            s->more = 1;                           /* FINISH is repeated until END */
        }
        s->flush = (uint8_t)(s->more ? eff : SYNTH_FLUSH_NONE);
        cpl->flags = s->more ? SYNTH_CPL_F_MORE : 0;
    }
    cpl->result = (uint32_t)io.produced;
    *bytes_in += d->src_len;
    *bytes_out += io.produced;
    return SYNTH_ST_OK;
}
