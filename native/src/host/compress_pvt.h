/* SPDX-License-Identifier: Apache-2.0 */
/* Compression class internals shared by compress_dev.c (device, one-shot ops) and compress_stream.c. */
#ifndef SYNTH_COMPRESS_PVT_H
#define SYNTH_COMPRESS_PVT_H

#include "host_pvt.h"
#include "synth/compress_core.h"
#include "synth/compress_host.h"

#define COMP_MAX_CANDIDATES 4u

/* How the device serves one algorithm. */
struct comp_alg {
    unsigned n;                                      /* compression plugins, best first */
    const struct synth_plugin *pl[COMP_MAX_CANDIDATES];
    int32_t lo[COMP_MAX_CANDIDATES];                 /* their level ranges */
    int32_t hi[COMP_MAX_CANDIDATES];
    void *cctx[COMP_MAX_CANDIDATES];                 /* one-shot compression contexts */
    void *dctx;                                      /* one-shot decompression context, of pl[0] */
    struct synth_comp_levels levels;                 /* as advertised in the cfg block */
};

enum comp_stream_state { STREAM_OPEN = 0, STREAM_ENDED, STREAM_DEAD };

struct comp_stream {
    void *ctx;                      /* plugin context */
    const struct synth_plugin *pl;
    uint8_t *buf;                   /* input not consumed yet (max_chunk bytes) */
    uint32_t pos;                   /* [pos, len) of buf is pending */
    uint32_t len;
    uint64_t total_out;
    size_t mem;                     /* charged to the device's stream memory */
    uint16_t gen;                   /* bumped on every destroy, so stale ids stay unknown */
    uint8_t active;
    uint8_t alg;
    uint8_t dir;
    uint8_t flush;                  /* strongest flush asked since output was last complete */
    uint8_t more;                   /* the last completion said MORE */
    uint8_t state;                  /* enum comp_stream_state */
    uint16_t dead_status;           /* STREAM_DEAD: the status every later op gets */
    int32_t level;                  /* as created (compression) */
    /* Every chunk handed to the stream since it was created, so that another backend can re-create
     * its plugin context by replaying them (a migration): records of struct comp_feed + the bytes.
     * NULL with hist_over set once it outgrew COMP_HISTORY_MAX: the stream can no longer move. */
    uint8_t *hist;
    size_t hist_len;
    size_t hist_cap;
    uint8_t hist_over;
};

/* One chunk in a stream's history. */
struct comp_feed {
    uint32_t len;
    uint8_t flush;
    uint8_t pad[3];
    uint64_t out_before;            /* the stream's total output when the chunk came */
};

#define COMP_HISTORY_MAX (16u << 20)        /* bytes of history per stream beyond which it cannot move */
#define COMP_HISTORY_DEVICE_MAX (64u << 20) /* and for all the streams of a device */

struct comp_dev {
    struct comp_alg alg[SYNTH_CALG_MAX];
    uint32_t alg_mask;
    uint32_t max_streams;
    uint32_t max_chunk;
    uint32_t window_log;
    uint64_t max_output;
    uint64_t max_count;             /* one-shot DECOMPRESS: decoded at most to count NO_SPACE */
    uint64_t mem_budget;            /* for streams */
    uint64_t mem_used;
    uint64_t hist_used;             /* stream histories (compress_stream.c), apart from mem_budget */
    uint8_t *inbuf;                 /* one-shot DECOMPRESS: private copy of the input */
    uint8_t *scratch;               /* one-shot COMPRESS into a dst below the bound */
    size_t scratch_len;
    struct comp_stream *streams;
    uint32_t nstreams;
    uint32_t free_hint;
    uint64_t last_beat;             /* when comp_process last wrote the heartbeat (ns) */
    char plugin_names[32];          /* header.backend: the plugins serving, e.g. "isal,zlib,zstd,lz4" */
};

static inline struct comp_dev *synthi_comp_dev(const struct synth_hdev *d) { return (struct comp_dev *)d->cls; }

/* Resolve level 0 and find the compression plugin for (alg, level): SYNTH_ST_OK or an error. */
static inline uint16_t synthi_comp_pick(const struct comp_dev *c, uint32_t alg, int32_t *level, unsigned *idx)
{
    const struct comp_alg *a;
    unsigned i;

    if (alg == 0 || alg >= SYNTH_CALG_MAX)
        return SYNTH_ST_INVALID;
    if (!(c->alg_mask & (1u << alg)))
        return SYNTH_ST_NOT_SUPPORTED;
    a = &c->alg[alg];
    if (*level == 0)
        *level = a->levels.dflt;
    for (i = 0; i < a->n; i++) {
        if (*level >= a->lo[i] && *level <= a->hi[i]) {
            *idx = i;
            return SYNTH_ST_OK;
        }
    }
    return SYNTH_ST_NOT_SUPPORTED;
}

/* Source and destination ranges of a descriptor: SYNTH_ST_OK, or INVALID (outside, overlapping). */
static inline uint16_t synthi_comp_buffers(const struct synth_hqueue *q, const struct synth_desc *d, uint8_t **src,
                                    uint8_t **dst)
{
    *src = synthi_arena_ptr(q, d->src_off, d->src_len);
    *dst = synthi_arena_ptr(q, d->dst_off, d->dst_len);
    if (!*src || !*dst)
        return SYNTH_ST_INVALID;
    /* Output never overwrites input: the ranges must not share a byte (empty ranges share none). */
    if (d->src_len && d->dst_len && (uint64_t)d->src_off < (uint64_t)d->dst_off + d->dst_len &&
        (uint64_t)d->dst_off < (uint64_t)d->src_off + d->src_len)
        return SYNTH_ST_INVALID;
    return SYNTH_ST_OK;
}

/* A slot's next generation: never 0, so that an id is never 0. */
static inline uint16_t synthi_comp_next_gen(uint16_t gen) { return (uint16_t)(gen + 1) ? (uint16_t)(gen + 1) : 1; }

/* compress_stream.c */
/* Set up slot s for a stream of pl (its context and input buffer, charged to the device's stream
 * memory; not active yet): SYNTH_ST_OK, or the status to answer. */
uint16_t synthi_comp_stream_open(struct comp_dev *c, struct comp_stream *s, const struct synth_plugin *pl,
                                 uint8_t alg, uint8_t dir, int32_t level);
/* Free a stream's context, buffers and memory; the slot is left empty with generation gen. */
void synthi_comp_stream_close(struct comp_dev *c, struct comp_stream *s, uint16_t gen);
int synthi_comp_streams_init(struct comp_dev *c);
void synthi_comp_streams_reset(struct comp_dev *c);
void synthi_comp_streams_fini(struct comp_dev *c);
uint16_t synthi_comp_stream_create(struct comp_dev *c, struct synth_hqueue *q, const struct synth_desc *d,
                            uint32_t *result);
uint16_t synthi_comp_stream_destroy(struct comp_dev *c, const struct synth_desc *d);
uint16_t synthi_comp_stream_op(struct comp_dev *c, struct synth_hqueue *q, const struct synth_desc *d,
                        struct synth_cpl *cpl, uint64_t *bytes_in, uint64_t *bytes_out);

/* compress_move.c */
int64_t synthi_comp_streams_export(const struct comp_dev *c, uint8_t *buf, uint64_t cap);
int synthi_comp_streams_import(struct comp_dev *c, const uint8_t *buf, uint64_t len);

#endif /* SYNTH_COMPRESS_PVT_H */
