/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression device class: which plugin serves each algorithm and level, the per-device one-shot
 * contexts and buffers, descriptor validation and the one-shot ops. Streams are in
 * compress_stream.c.
 *
 * Everything an op needs is allocated when the device is laid out (one-shot contexts, a private
 * copy buffer for compressed input, a scratch buffer for compressing into a short destination) or
 * at STREAM_CREATE (a stream's context and input buffer): ops themselves never allocate. Compressed
 * input is copied to host memory before it is decoded, so a decoder never parses bytes the guest
 * can change under it, unless the plugin has SYNTH_COMP_CAP_DECODES_IN_PLACE (its decoder reads
 * each byte it acts on once: lz4). Plain input is compressed in place (a guest racing its own input
 * only spoils its own output). Output is written only into the checked destination range, never
 * more than dst_len bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compress_pvt.h"
#include "synth/clock_pvt.h"

#define HEARTBEAT_NS 1000000ull

/* The algorithm's default level (compress_core.h), used when a plugin of the device has it. */
static int32_t alg_default_level(uint32_t alg)
{
    return alg == SYNTH_CALG_ZSTD ? 3 : alg == SYNTH_CALG_LZ4 ? 1 : 6;
}

/* A plugin's status, made safe to report. */
static uint16_t plugin_status(uint32_t st)
{
    return st < SYNTH_ST_MAX ? (uint16_t)st : SYNTH_ST_DEVICE_ERROR;
}

static uint16_t op_compress(struct comp_dev *c, struct synth_hqueue *q, const struct synth_desc *d,
                            uint32_t *result, uint64_t *bytes_in, uint64_t *bytes_out)
{
    struct synth_comp_io io;
    struct comp_alg *a;
    int32_t level = (int32_t)d->arg[1];
    uint8_t *src, *dst;
    unsigned idx = 0;
    uint16_t st;
    int direct;

    st = synthi_comp_pick(c, d->arg[0], &level, &idx);
    if (st != SYNTH_ST_OK)
        return st;
    if (d->src_len > c->max_chunk)
        return SYNTH_ST_LIMIT;
    st = synthi_comp_buffers(q, d, &src, &dst);
    if (st != SYNTH_ST_OK)
        return st;
    a = &c->alg[d->arg[0]];
    /* Below the bound, compress into scratch: the exact size is then known even if it won't fit. */
    direct = d->dst_len >= SYNTH_COMP_BOUND(d->src_len);
    memset(&io, 0, sizeof(io));
    io.src = src;
    io.src_len = d->src_len;
    io.dst = direct ? dst : c->scratch;
    io.dst_len = direct ? d->dst_len : c->scratch_len;
    st = plugin_status(a->pl[idx]->comp_oneshot(a->cctx[idx], level, &io));
    if (st == SYNTH_ST_NO_SPACE || (st == SYNTH_ST_OK && io.produced > io.dst_len))
        return SYNTH_ST_DEVICE_ERROR; /* the bound was not enough: a plugin bug */
    if (st != SYNTH_ST_OK)
        return st;
    if (!direct) {
        if (io.produced > d->dst_len) {
            *result = (uint32_t)io.produced; /* <= SYNTH_COMP_BOUND(max_chunk) < 2^32 */
            return SYNTH_ST_NO_SPACE;
        }
        memcpy(dst, c->scratch, io.produced);
    }
    *result = (uint32_t)io.produced;
    *bytes_in += d->src_len;
    *bytes_out += io.produced;
    return SYNTH_ST_OK;
}

static uint16_t op_decompress(struct comp_dev *c, struct synth_hqueue *q, const struct synth_desc *d,
                              uint32_t *result, uint64_t *bytes_in, uint64_t *bytes_out)
{
    struct synth_comp_io io;
    struct comp_alg *a;
    uint8_t *src, *dst;
    uint16_t st;

    if (d->arg[0] == 0 || d->arg[0] >= SYNTH_CALG_MAX)
        return SYNTH_ST_INVALID;
    if (!(c->alg_mask & (1u << d->arg[0])))
        return SYNTH_ST_NOT_SUPPORTED;
    if (d->src_len > c->max_chunk)
        return SYNTH_ST_LIMIT;
    st = synthi_comp_buffers(q, d, &src, &dst);
    if (st != SYNTH_ST_OK)
        return st;
    a = &c->alg[d->arg[0]];
    memset(&io, 0, sizeof(io));
    io.src = src;
    if (!(a->pl[0]->comp_caps & SYNTH_COMP_CAP_DECODES_IN_PLACE)) {
        memcpy(c->inbuf, src, d->src_len); /* decode a private copy, read once from the arena */
        io.src = c->inbuf;
    }
    io.src_len = d->src_len;
    io.dst = dst;
    io.dst_len = d->dst_len;
    io.limit = c->max_count < UINT32_MAX ? c->max_count : UINT32_MAX;
    st = plugin_status(a->pl[0]->comp_oneshot(a->dctx, 0, &io));
    if (st == SYNTH_ST_OK) {
        if (io.produced > d->dst_len)
            return SYNTH_ST_DEVICE_ERROR;
        *result = (uint32_t)io.produced;
        *bytes_in += d->src_len;
        *bytes_out += io.produced;
    } else if (st == SYNTH_ST_NO_SPACE) {
        if (io.needed <= d->dst_len || io.needed > io.limit)
            return SYNTH_ST_DEVICE_ERROR;
        *result = (uint32_t)io.needed;
    }
    return st;
}

/* ---- device setup ---- */

static int load_params(const struct synth_hdev_params *p, struct synth_comp_host_params *hp)
{
    memset(hp, 0, sizeof(*hp));
    if (p->class_params) {
        if (p->class_params_size != sizeof(*hp))
            return -EINVAL;
        memcpy(hp, p->class_params, sizeof(*hp));
    }
    if (!hp->max_streams)
        hp->max_streams = SYNTH_COMP_DEF_MAX_STREAMS;
    if (!hp->max_chunk)
        hp->max_chunk = SYNTH_COMP_DEF_MAX_CHUNK;
    if (!hp->max_stream_output)
        hp->max_stream_output = SYNTH_COMP_DEF_MAX_OUTPUT;
    if (!hp->max_stream_memory)
        hp->max_stream_memory = SYNTH_COMP_DEF_STREAM_MEMORY;
    if (!hp->zstd_window_log)
        hp->zstd_window_log = SYNTH_COMP_DEF_WINDOW_LOG;
    if (hp->max_streams > SYNTH_COMP_MAX_MAX_STREAMS || hp->max_chunk < SYNTH_COMP_MIN_MAX_CHUNK ||
        hp->max_chunk > SYNTH_COMP_MAX_MAX_CHUNK || hp->zstd_window_log < SYNTH_COMP_MIN_WINDOW_LOG ||
        hp->zstd_window_log > SYNTH_COMP_MAX_WINDOW_LOG || hp->reserved)
        return -EINVAL;
    return 0;
}

/* Add a plugin to the comma-separated list of those serving the device, once. */
/*
 * Serve alg with pin or with the catalog's candidates (best first). A device pin serves what that
 * plugin serves (required = 0); a per-algorithm pin must serve its algorithm (required = 1).
 */
static int setup_alg(struct comp_dev *c, uint32_t alg, const struct synth_plugin *pin, int required)
{
    struct comp_alg *a = &c->alg[alg];
    struct synth_comp_ctx_params cp;
    int32_t dflt = 0, want = alg_default_level(alg), lo = INT32_MAX, hi = INT32_MIN, pd;
    unsigned i, n;
    int rc, has_default = 0;

    if (pin) {
        if (!synth_plugin_comp_select(alg, SYNTH_COMP_DIR_DECOMPRESS, 0, pin))
            return required ? -ENOTSUP : 0;
        a->pl[0] = pin;
        n = 1;
    } else {
        n = synth_plugin_comp_candidates(alg, a->pl, COMP_MAX_CANDIDATES);
        if (n > COMP_MAX_CANDIDATES)
            n = COMP_MAX_CANDIDATES;
    }
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        if (a->pl[i]->comp_levels(alg, &a->lo[i], &a->hi[i], &pd) < 0)
            return -ENOTSUP;
        if (i == 0)
            dflt = pd;
        if (want >= a->lo[i] && want <= a->hi[i])
            has_default = 1;
        lo = a->lo[i] < lo ? a->lo[i] : lo;
        hi = a->hi[i] > hi ? a->hi[i] : hi;
    }
    a->n = n;
    a->levels.min = (int16_t)lo;
    a->levels.max = (int16_t)hi;
    a->levels.dflt = (int16_t)(has_default ? want : dflt);

    memset(&cp, 0, sizeof(cp));
    cp.alg = alg;
    cp.oneshot = 1;
    cp.max_src = c->max_chunk;
    cp.window_log = c->window_log;
    cp.direction = SYNTH_COMP_DIR_DECOMPRESS;
    rc = a->pl[0]->comp_ctx_create(&cp, &a->dctx);
    for (i = 0; rc == 0 && i < n; i++) {
        cp.direction = SYNTH_COMP_DIR_COMPRESS;
        cp.level = a->lo[i];
        rc = a->pl[i]->comp_ctx_create(&cp, &a->cctx[i]);
    }
    if (rc < 0)
        return rc;
    for (i = 0; i < n; i++)
        synthi_name_list_add(c->plugin_names, sizeof(c->plugin_names), a->pl[i]->name);
    c->alg_mask |= 1u << alg;
    return 0;
}

static void comp_free(struct comp_dev *c)
{
    uint32_t alg;
    unsigned i;

    synthi_comp_streams_fini(c);
    for (alg = 1; alg < SYNTH_CALG_MAX; alg++) {
        struct comp_alg *a = &c->alg[alg];
        if (a->dctx)
            a->pl[0]->comp_ctx_destroy(a->dctx);
        for (i = 0; i < a->n; i++)
            if (a->cctx[i])
                a->pl[i]->comp_ctx_destroy(a->cctx[i]);
    }
    free(c->inbuf);
    free(c->scratch);
    free(c);
}

static int comp_init(struct synth_hdev *d, const struct synth_hdev_params *p)
{
    struct synth_comp_host_params hp;
    struct synth_comp_cfg cfg;
    struct comp_dev *c;
    uint32_t alg;
    int rc;

    rc = load_params(p, &hp);
    if (rc < 0)
        return rc;
    if (p->plugin && (p->plugin->dev_class != SYNTH_CLASS_COMPRESS || p->plugin->abi_version < 2))
        return -ENOTSUP;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->max_streams = hp.max_streams;
    c->max_chunk = hp.max_chunk;
    c->window_log = hp.zstd_window_log;
    c->max_output = hp.max_stream_output;
    c->max_count = (uint64_t)SYNTH_COMP_COUNT_FACTOR * c->max_chunk;
    if (c->max_count > c->max_output)
        c->max_count = c->max_output;
    c->mem_budget = hp.max_stream_memory;
    c->scratch_len = SYNTH_COMP_BOUND(c->max_chunk);
    c->inbuf = malloc(c->max_chunk);
    c->scratch = malloc(c->scratch_len);
    rc = !c->inbuf || !c->scratch ? -ENOMEM : synthi_comp_streams_init(c);
    /* As for crypto devices: the device's pin first, else the algorithm's pin, else the best. */
    for (alg = 1; rc == 0 && alg < SYNTH_CALG_MAX; alg++)
        rc = setup_alg(c, alg, p->plugin ? p->plugin : hp.plugin[alg], !p->plugin && hp.plugin[alg]);
    if (rc == 0 && c->alg_mask == 0)
        rc = -ENOTSUP; /* no usable plugin, or the pin serves nothing */
    if (rc < 0) {
        comp_free(c);
        return rc;
    }
    d->cls = c;

    memset(&cfg, 0, sizeof(cfg));
    cfg.alg_mask = c->alg_mask;
    cfg.max_streams = c->max_streams;
    cfg.max_chunk = c->max_chunk;
    cfg.zstd_window_log = c->window_log;
    cfg.max_stream_output = c->max_output;
    cfg.max_count = c->max_count;
    for (alg = 1; alg < SYNTH_CALG_MAX; alg++)
        cfg.levels[alg] = c->alg[alg].levels;
    memcpy(d->hdr->class_cfg, &cfg, sizeof(cfg));
    return 0;
}

static void comp_fini(struct synth_hdev *d)
{
    if (!d->cls)
        return;
    comp_free(synthi_comp_dev(d));
    d->cls = NULL;
}

static void comp_reset(struct synth_hdev *d) { synthi_comp_streams_reset(synthi_comp_dev(d)); }

static int64_t comp_export(const struct synth_hdev *d, uint8_t *buf, uint64_t cap)
{
    return synthi_comp_streams_export(synthi_comp_dev(d), buf, cap);
}

static int comp_import(struct synth_hdev *d, const uint8_t *buf, uint64_t len)
{
    return synthi_comp_streams_import(synthi_comp_dev(d), buf, len);
}


static void comp_process(struct synth_hdev *d, struct synth_hqueue *q, const struct synth_desc *in,
                         struct synth_cpl *out, unsigned n)
{
    struct comp_dev *c = synthi_comp_dev(d);
    uint64_t bytes_in = 0, bytes_out = 0, t;
    unsigned i;

    for (i = 0; i < n; i++) {
        const struct synth_desc *desc = &in[i];
        struct synth_cpl *cpl = &out[i];
        uint16_t st;

        cpl->cookie = desc->cookie;
        cpl->flags = 0;
        cpl->result = 0;
        if (desc->flags != 0) {
            cpl->status = SYNTH_ST_INVALID;
            continue;
        }
        switch (desc->opcode) {
        case SYNTH_OP_NOP:
            st = d->features & SYNTH_F_NOP ? SYNTH_ST_OK : SYNTH_ST_NOT_SUPPORTED;
            break;
        case SYNTH_OP_COMP_COMPRESS:
            st = op_compress(c, q, desc, &cpl->result, &bytes_in, &bytes_out);
            break;
        case SYNTH_OP_COMP_DECOMPRESS:
            st = op_decompress(c, q, desc, &cpl->result, &bytes_in, &bytes_out);
            break;
        case SYNTH_OP_COMP_STREAM_CREATE:
        case SYNTH_OP_COMP_STREAM_DESTROY:
        case SYNTH_OP_COMP_STREAM:
            if (!(d->features & SYNTH_COMP_F_STREAMS))
                st = SYNTH_ST_NOT_SUPPORTED;
            else if (desc->opcode == SYNTH_OP_COMP_STREAM_CREATE)
                st = synthi_comp_stream_create(c, q, desc, &cpl->result);
            else if (desc->opcode == SYNTH_OP_COMP_STREAM_DESTROY)
                st = synthi_comp_stream_destroy(c, desc);
            else
                st = synthi_comp_stream_op(c, q, desc, cpl, &bytes_in, &bytes_out);
            break;
        default:
            st = SYNTH_ST_NOT_SUPPORTED;
        }
        cpl->status = st;
        /*
         * The quota charges the work an op made, whatever its status: the input it read (a
         * corrupt frame is decoded up to where it breaks, a frame too big for dst_len is compressed
         * or decoded whole), and what a NO_SPACE decompression decoded to count.
         */
        if (desc->opcode >= SYNTH_OP_COMP_COMPRESS && desc->opcode <= SYNTH_OP_COMP_STREAM &&
            (st == SYNTH_ST_OK || st == SYNTH_ST_NO_SPACE || st == SYNTH_ST_BAD_DATA || st == SYNTH_ST_DEVICE_ERROR))
            d->work_bytes += desc->src_len + (st == SYNTH_ST_NO_SPACE && desc->opcode == SYNTH_OP_COMP_DECOMPRESS
                                              ? cpl->result : 0);
        if (st != SYNTH_ST_OK && st != SYNTH_ST_NO_SPACE) {
            cpl->result = 0;
            cpl->flags = 0;
        }
        /*
         * One op may take a second (zstd level 19 on a 1 MiB chunk) and a burst many of them: keep
         * the heartbeats of this worker's devices fresh meanwhile, as the worker does between passes.
         */
        if (desc->opcode >= SYNTH_OP_COMP_COMPRESS && desc->opcode <= SYNTH_OP_COMP_STREAM &&
            (t = synthi_now_ns()) - c->last_beat >= HEARTBEAT_NS) {
            synthi_hdev_heartbeat_all(d, t);
            c->last_beat = t;
        }
    }
    SYNTH_STAT_ADD(d->stats.bytes_in, bytes_in);
    SYNTH_STAT_ADD(d->stats.bytes_out, bytes_out);
}

static const char *comp_plugin_name(const struct synth_hdev *d) { return synthi_comp_dev(d)->plugin_names; }

static uint32_t comp_sessions(const struct synth_hdev *d)
{
    return __atomic_load_n(&synthi_comp_dev(d)->nstreams, __ATOMIC_RELAXED);
}

const struct synth_class_ops synthi_compress_class = {
    .dev_class = SYNTH_CLASS_COMPRESS,
    .features = SYNTH_COMP_F_STREAMS,
    .init = comp_init,
    .fini = comp_fini,
    .reset = comp_reset,
    .process = comp_process,
    .plugin_name = comp_plugin_name,
    .sessions = comp_sessions,
    .export_state = comp_export,
    .import_state = comp_import,
};
