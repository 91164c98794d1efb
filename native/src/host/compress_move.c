/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression class: streams that move to another backend (a VM's migration). A plugin context
 * cannot be copied, but it is a function of the chunks it was given: the exporting backend hands
 * over each stream's history (compress_stream.c keeps it), and the importing one creates a context
 * of the same plugin and replays the chunks into it, draining and discarding the output. At each
 * chunk the replay must have produced exactly what the stream had produced by then; a stream whose
 * replay differs (another library version behind the plugin's name) or cannot be replayed is not
 * re-created, and its id gives NO_SESSION, as after a restart. Only streams at rest move: one
 * whose last completion said MORE (output waiting for the driver) does not.
 *
 * Both run on the control thread while no worker serves the device; they touch host memory only.
 *
 * Format: struct move_hdr, then per stream struct move_stream and hist_len bytes of history.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress_pvt.h"

#define MOVE_MAGIC 0x52545353u /* "SSTR" */
#define MOVE_VERSION 1u
#define REPLAY_OUT (256u * 1024u)

struct move_hdr {
    uint32_t magic;
    uint32_t version;
    uint32_t count;
    uint32_t max_chunk;
};

struct move_stream {
    uint32_t id;
    uint8_t alg;
    uint8_t dir;
    uint8_t state;
    uint8_t pad;
    int32_t level;
    uint16_t dead_status;
    uint16_t pad2;
    uint32_t pad3;
    uint64_t total_out;
    uint64_t hist_len;
    char plugin[32];
};

static int movable(const struct comp_stream *s)
{
    return s->active && !s->more && (s->state != STREAM_OPEN || !s->hist_over);
}

int64_t synthi_comp_streams_export(const struct comp_dev *c, uint8_t *buf, uint64_t cap)
{
    struct move_hdr h = {.magic = MOVE_MAGIC, .version = MOVE_VERSION, .max_chunk = c->max_chunk};
    uint64_t need = sizeof(h);
    uint32_t i;

    for (i = 0; c->streams && i < c->max_streams; i++) {
        const struct comp_stream *s = &c->streams[i];
        struct move_stream m;
        size_t hist = s->state == STREAM_OPEN ? s->hist_len : 0;

        if (!movable(s))
            continue;
        memset(&m, 0, sizeof(m));
        m.id = ((uint32_t)s->gen << 16) | i;
        m.alg = s->alg;
        m.dir = s->dir;
        m.state = s->state;
        m.level = s->level;
        m.dead_status = s->dead_status;
        m.total_out = s->total_out;
        m.hist_len = hist;
        snprintf(m.plugin, sizeof(m.plugin), "%s", s->pl->name);
        if (buf && need + sizeof(m) + hist <= cap) {
            memcpy(buf + need, &m, sizeof(m));
            if (hist)
                memcpy(buf + need + sizeof(m), s->hist, hist);
        }
        need += sizeof(m) + hist;
        h.count++;
    }
    if (buf && need <= cap)
        memcpy(buf, &h, sizeof(h));
    return (int64_t)need;
}

/* The plugin that served the stream, by name, among those the device has for its algorithm. */
static const struct synth_plugin *find_plugin(const struct comp_dev *c, const struct move_stream *m)
{
    const struct comp_alg *a = &c->alg[m->alg];
    unsigned i;

    for (i = 0; i < a->n && i < COMP_MAX_CANDIDATES; i++)
        if (a->pl[i] && !strncmp(a->pl[i]->name, m->plugin, sizeof(m->plugin)))
            return a->pl[i];
    return NULL;
}

/* Feed the history into a fresh context; 0 if it produced what the stream had produced. */
static int replay(const struct comp_stream *s, const uint8_t *hist, uint64_t len, uint64_t total_out,
                  uint32_t max_chunk, uint8_t *out)
{
    uint64_t off = 0, produced = 0;

    while (off < len) {
        struct comp_feed f;
        const uint8_t *in;
        size_t left;

        if (len - off < sizeof(f))
            return -EINVAL;
        memcpy(&f, hist + off, sizeof(f));
        off += sizeof(f);
        if (f.len > max_chunk || f.len > len - off || f.flush > SYNTH_FLUSH_FINISH || f.out_before != produced)
            return -EINVAL;
        in = hist + off;
        left = f.len;
        off += f.len;
        for (unsigned rounds = 0;; rounds++) {
            struct synth_comp_io io;
            uint16_t st;

            memset(&io, 0, sizeof(io));
            io.src = in;
            io.src_len = left;
            io.dst = out;
            io.dst_len = REPLAY_OUT;
            st = s->pl->comp_stream(s->ctx, s->dir == SYNTH_COMP_DIR_COMPRESS ? f.flush : SYNTH_FLUSH_NONE, &io);
            if (st != SYNTH_ST_OK || io.consumed > left || io.produced > REPLAY_OUT || rounds > (1u << 20))
                return -EINVAL;
            produced += io.produced;
            in += io.consumed;
            left -= io.consumed;
            if (io.flags & SYNTH_COMP_IO_END)
                return left || off != len || produced != total_out ? -EINVAL : 0;
            if (!left && !(io.flags & SYNTH_COMP_IO_PENDING) && f.flush != SYNTH_FLUSH_FINISH)
                break;
            if (!left && !io.produced && !(io.flags & SYNTH_COMP_IO_PENDING))
                return -EINVAL; /* FINISH that never ends */
        }
    }
    return produced == total_out ? 0 : -EINVAL;
}

/* One stream of an import into its slot: 1 re-created, 0 not (its id stays unknown). */
static int import_one(struct comp_dev *c, const struct move_stream *m, const uint8_t *hist, uint8_t *out)
{
    uint32_t idx = m->id & 0xffffu;
    uint16_t gen = (uint16_t)(m->id >> 16);
    const struct synth_plugin *pl;
    struct comp_stream *s;

    if (idx >= c->max_streams || c->streams[idx].active || m->alg == 0 || m->alg >= SYNTH_CALG_MAX ||
        !(c->alg_mask & (1u << m->alg)) || m->dir > SYNTH_COMP_DIR_DECOMPRESS || m->state > STREAM_DEAD || !gen)
        return 0;
    s = &c->streams[idx];
    s->gen = synthi_comp_next_gen(gen); /* if it does not come back, its id stays unknown */
    pl = find_plugin(c, m);
    if (!pl || c->nstreams >= c->max_streams)
        return 0;
    if (synthi_comp_stream_open(c, s, pl, m->alg, m->dir, m->level) != SYNTH_ST_OK)
        return 0;
    if (m->state == STREAM_OPEN && replay(s, hist, m->hist_len, m->total_out, c->max_chunk, out) < 0) {
        synthi_comp_stream_close(c, s, synthi_comp_next_gen(gen));
        return 0;
    }
    if (m->state == STREAM_OPEN && m->hist_len) { /* it keeps its history: it may move again */
        s->hist = m->hist_len <= COMP_HISTORY_DEVICE_MAX - c->hist_used ? malloc(m->hist_len) : NULL;
        if (s->hist) {
            memcpy(s->hist, hist, m->hist_len);
            s->hist_len = s->hist_cap = m->hist_len;
            c->hist_used += m->hist_len;
        } else {
            s->hist_over = 1;
        }
    }
    s->gen = gen;
    s->total_out = m->total_out;
    s->state = m->state;
    s->dead_status = m->dead_status;
    s->active = 1;
    __atomic_store_n(&c->nstreams, c->nstreams + 1, __ATOMIC_RELAXED);
    return 1;
}

int synthi_comp_streams_import(struct comp_dev *c, const uint8_t *buf, uint64_t len)
{
    struct move_hdr h;
    uint64_t off = sizeof(h);
    uint8_t *out;
    int back = 0;

    if (len < sizeof(h))
        return -EINVAL;
    memcpy(&h, buf, sizeof(h));
    if (h.magic != MOVE_MAGIC || h.version != MOVE_VERSION)
        return -EINVAL;
    out = malloc(REPLAY_OUT);
    if (!out)
        return -ENOMEM;
    for (uint32_t i = 0; i < h.count; i++) {
        struct move_stream m;
        if (len - off < sizeof(m)) {
            back = -EINVAL;
            break;
        }
        memcpy(&m, buf + off, sizeof(m));
        off += sizeof(m);
        if (m.hist_len > len - off) {
            back = -EINVAL;
            break;
        }
        m.plugin[sizeof(m.plugin) - 1] = 0;
        back += import_one(c, &m, buf + off, out);
        off += m.hist_len;
    }
    free(out);
    return back;
}
