/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compress_synth device operations: capabilities from the device's configuration block,
 * configure, start (the reset), queue pairs, stats, info, private xforms (checked here, kept by
 * the PMD) and streams (checked here, then created on the device's control queue).
 */
#include <errno.h>
#include <string.h>

#include <rte_malloc.h>

#include "compress_synth_pvt.h"

/* ---- capabilities ---- */

/* Raw deflate, dynamic Huffman codes (the device's encoders choose their blocks: no fixed-only
 * mode), the three checksums (computed by the PMD with zlib as the data passes through it),
 * chained mbufs both ways, a 32 KiB window; streams if the device has them. */
void cz_fill_caps(struct cz_dev *d, int streams)
{
    struct rte_compressdev_capabilities *c = &d->caps[0];

    memset(d->caps, 0, sizeof(d->caps));
    c->algo = RTE_COMP_ALGO_DEFLATE;
    c->comp_feature_flags = RTE_COMP_FF_HUFFMAN_DYNAMIC | RTE_COMP_FF_SHAREABLE_PRIV_XFORM |
                            RTE_COMP_FF_CRC32_CHECKSUM | RTE_COMP_FF_ADLER32_CHECKSUM |
                            RTE_COMP_FF_CRC32_ADLER32_CHECKSUM | RTE_COMP_FF_OOP_SGL_IN_SGL_OUT |
                            RTE_COMP_FF_OOP_SGL_IN_LB_OUT | RTE_COMP_FF_OOP_LB_IN_SGL_OUT;
    if (streams)
        c->comp_feature_flags |= RTE_COMP_FF_STATEFUL_COMPRESSION | RTE_COMP_FF_STATEFUL_DECOMPRESSION;
    c->window_size.min = CZ_WINDOW;
    c->window_size.max = CZ_WINDOW;
    c->window_size.increment = 0;
    d->caps[1].algo = RTE_COMP_ALGO_UNSPECIFIED; /* RTE_COMP_END_OF_CAPABILITIES_LIST */
}

/* ---- device operations ---- */

static int cz_configure(struct rte_compressdev *dev, struct rte_compressdev_config *cfg)
{
    struct cz_dev *d = dev->data->dev_private;
    int rc = spmd_configure(&d->base, cfg->nb_queue_pairs);

    if (rc < 0)
        return rc;
    if (cfg->max_nb_streams > (d->base.ctl ? d->cfg.max_streams : 0)) {
        CZ_LOG(ERR, "%u streams asked for, the device holds %u at once", cfg->max_nb_streams,
               d->base.ctl ? d->cfg.max_streams : 0);
        return -EINVAL;
    }
    return 0;
}

/* Reset the device if it needs it; every queue pair starts again empty. */
static int cz_start(struct rte_compressdev *dev)
{
    struct cz_dev *d = dev->data->dev_private;

    return spmd_start(&d->base, dev->data->queue_pairs, dev->data->nb_queue_pairs, cz_lose);
}

static void cz_stop(struct rte_compressdev *dev __rte_unused) {}

static int cz_qp_release(struct rte_compressdev *dev, uint16_t qp_id)
{
    spmd_qp_free(&dev->data->queue_pairs[qp_id]);
    return 0;
}

static int cz_close(struct rte_compressdev *dev)
{
    struct cz_dev *d = dev->data->dev_private;

    spmd_close(&d->base, dev->data->queue_pairs, dev->data->nb_queue_pairs);
    return 0;
}

static void cz_stats_get(struct rte_compressdev *dev, struct rte_compressdev_stats *st)
{
    struct spmd_stats sum;

    spmd_stats_sum(dev->data->queue_pairs, dev->data->nb_queue_pairs, &sum);
    SPMD_STATS_ADD(st, &sum);
}

static void cz_stats_reset(struct rte_compressdev *dev)
{
    spmd_stats_reset(dev->data->queue_pairs, dev->data->nb_queue_pairs);
}

static void cz_info_get(struct rte_compressdev *dev, struct rte_compressdev_info *info)
{
    struct cz_dev *d = dev->data->dev_private;

    if (!info)
        return;
    info->feature_flags = dev->feature_flags;
    info->capabilities = d->caps;
    info->max_nb_queue_pairs = d->base.nqp;
}

static int cz_qp_setup(struct rte_compressdev *dev, uint16_t qp_id, uint32_t max_inflight, int socket_id)
{
    struct cz_dev *d = dev->data->dev_private;
    struct spmd_qp *qp;

    if (qp_id >= d->base.nqp || !d->base.dev)
        return -EINVAL;
    if (max_inflight > d->base.ring_entries)
        CZ_LOG(INFO, "queue pair %u: %u ops in flight asked for, the device ring holds %u (enqueue takes "
               "what fits)", qp_id, max_inflight, d->base.ring_entries);
    cz_qp_release(dev, qp_id);
    qp = spmd_qp_create(&d->base, qp_id, sizeof(struct cz_slot), socket_id);
    if (!qp)
        return -ENOMEM;
    dev->data->queue_pairs[qp_id] = qp;
    return 0;
}

/* ---- transforms ---- */

/* The xform as the PMD's parameters: 0, -ENOTSUP (not something the device does) or -EINVAL. */
static int cz_parse_xform(const struct cz_dev *d, const struct rte_comp_xform *xf, struct cz_xform *x)
{
    const struct synth_comp_levels *lv = &d->cfg.levels[SYNTH_CALG_DEFLATE];
    enum rte_comp_checksum_type ck;

    memset(x, 0, sizeof(*x));
    if (xf->type == RTE_COMP_COMPRESS) {
        const struct rte_comp_compress_xform *c = &xf->compress;
        int lo = lv->min < 1 ? 1 : lv->min;

        if (c->algo != RTE_COMP_ALGO_DEFLATE || c->hash_algo != RTE_COMP_HASH_ALGO_NONE) {
            CZ_LOG(ERR, "only deflate without a hash is served (algorithm %d, hash %d)", (int)c->algo,
                   (int)c->hash_algo);
            return -ENOTSUP;
        }
        if (c->deflate.huffman == RTE_COMP_HUFFMAN_FIXED) {
            CZ_LOG(ERR, "fixed Huffman codes are not served: the device's encoders choose their blocks "
                   "(use RTE_COMP_HUFFMAN_DYNAMIC or _DEFAULT)");
            return -ENOTSUP;
        }
        if (c->deflate.huffman != RTE_COMP_HUFFMAN_DEFAULT && c->deflate.huffman != RTE_COMP_HUFFMAN_DYNAMIC) {
            CZ_LOG(ERR, "Huffman type %d is not one of DEFAULT, FIXED, DYNAMIC", (int)c->deflate.huffman);
            return -EINVAL;
        }
        if (c->level == RTE_COMP_LEVEL_NONE) {
            CZ_LOG(ERR, "level 0 (stored blocks) is not served");
            return -ENOTSUP;
        }
        if (c->level != RTE_COMP_LEVEL_PMD_DEFAULT && (c->level < RTE_COMP_LEVEL_MIN || c->level > RTE_COMP_LEVEL_MAX)) {
            CZ_LOG(ERR, "level %d is not -1 (default) or %d..%d", c->level, RTE_COMP_LEVEL_MIN, RTE_COMP_LEVEL_MAX);
            return -EINVAL;
        }
        if (c->window_size && c->window_size != CZ_WINDOW) {
            CZ_LOG(ERR, "window size 2^%u: the device compresses with a 2^%u-byte window only", c->window_size,
                   CZ_WINDOW);
            return -EINVAL;
        }
        x->compress = 1;
        /* Levels 1..9 go into the device's range (a device pinned to ISA-L serves 1..3). */
        x->level = c->level == RTE_COMP_LEVEL_PMD_DEFAULT ? 0 : c->level < lo ? lo : c->level > lv->max ? lv->max : c->level;
        ck = c->chksum;
    } else if (xf->type == RTE_COMP_DECOMPRESS) {
        const struct rte_comp_decompress_xform *c = &xf->decompress;

        if (c->algo != RTE_COMP_ALGO_DEFLATE || c->hash_algo != RTE_COMP_HASH_ALGO_NONE) {
            CZ_LOG(ERR, "only deflate without a hash is served (algorithm %d, hash %d)", (int)c->algo,
                   (int)c->hash_algo);
            return -ENOTSUP;
        }
        if (c->window_size > CZ_WINDOW) {
            CZ_LOG(ERR, "window size 2^%u: deflate windows are at most 2^%u bytes", c->window_size, CZ_WINDOW);
            return -EINVAL;
        }
        ck = c->chksum;
    } else {
        CZ_LOG(ERR, "xform type %d is neither RTE_COMP_COMPRESS nor RTE_COMP_DECOMPRESS", (int)xf->type);
        return -EINVAL;
    }
    if (ck != RTE_COMP_CHECKSUM_NONE && ck != RTE_COMP_CHECKSUM_CRC32 && ck != RTE_COMP_CHECKSUM_ADLER32 &&
        ck != RTE_COMP_CHECKSUM_CRC32_ADLER32) {
        CZ_LOG(ERR, "checksum type %d is not NONE, CRC32, ADLER32 or CRC32_ADLER32", (int)ck);
        return -EINVAL;
    }
    x->chksum = (uint8_t)ck;
    return 0;
}

static int cz_xform_create(struct rte_compressdev *dev, const struct rte_comp_xform *xf, void **out)
{
    struct cz_dev *d = dev->data->dev_private;
    struct cz_xform x, *p;
    int rc;

    if (!xf || !out)
        return -EINVAL;
    rc = cz_parse_xform(d, xf, &x);
    if (rc < 0)
        return rc;
    p = rte_malloc("compress_synth xform", sizeof(*p), 0);
    if (!p)
        return -ENOMEM;
    *p = x;
    *out = p;
    return 0;
}

static int cz_xform_free(struct rte_compressdev *dev __rte_unused, void *p)
{
    rte_free(p);
    return 0;
}

/* ---- streams ---- */

static int cz_stream_create(struct rte_compressdev *dev, const struct rte_comp_xform *xf, void **out)
{
    struct cz_dev *d = dev->data->dev_private;
    struct synth_comp_stream_params p;
    struct cz_stream *s;
    struct cz_xform x;
    uint32_t id;
    int rc;

    if (!xf || !out || !d->base.dev)
        return -EINVAL;
    if (!d->base.ctl) {
        CZ_LOG(ERR, "the device has no streams: stateful operations are not served");
        return -ENOTSUP;
    }
    rc = cz_parse_xform(d, xf, &x);
    if (rc < 0)
        return rc;
    memset(&p, 0, sizeof(p));
    p.alg = SYNTH_CALG_DEFLATE;
    p.direction = x.compress ? SYNTH_COMP_DIR_COMPRESS : SYNTH_COMP_DIR_DECOMPRESS;
    p.level = x.level;
    pthread_mutex_lock(&d->base.ctl_lock);
    if (synth_dev_needs_reset(d->base.dev))
        rc = -EIO;
    else if (d->base.shared_ctl && synth_q_inflight(d->base.ctl))
        rc = -EBUSY;
    else
        rc = synth_comp_stream_create(d->base.ctl, &p, &id);
    pthread_mutex_unlock(&d->base.ctl_lock);
    switch (rc) {
    case 0:
        break;
    case SYNTH_ST_NO_RESOURCES:
        CZ_LOG(ERR, "the device holds no more streams (at most %u at once): free one", d->cfg.max_streams);
        return -ENOSPC;
    case SYNTH_ST_NOT_SUPPORTED:
        return -ENOTSUP;
    case SYNTH_ST_INVALID:
        return -EINVAL;
    default:
        CZ_LOG(ERR, "the device refused the stream: %s",
               rc < 0 ? strerror(-rc) : synth_status_str((uint32_t)rc));
        return rc < 0 ? rc : -EIO;
    }
    s = rte_zmalloc("compress_synth stream", sizeof(*s), 0);
    if (!s) {
        pthread_mutex_lock(&d->base.ctl_lock);
        synth_comp_stream_destroy(d->base.ctl, id);
        pthread_mutex_unlock(&d->base.ctl_lock);
        return -ENOMEM;
    }
    s->x = x;
    s->id = id;
    s->epoch = __atomic_load_n(&d->base.epoch, __ATOMIC_ACQUIRE);
    s->adler = 1;
    *out = s;
    return 0;
}

static int cz_stream_free(struct rte_compressdev *dev, void *p)
{
    struct cz_dev *d = dev->data->dev_private;
    struct cz_stream *s = p;

    if (!s)
        return -EINVAL;
    pthread_mutex_lock(&d->base.ctl_lock);
    if (d->base.dev && d->base.ctl && s->epoch == d->base.epoch && !synth_dev_needs_reset(d->base.dev) &&
        !(d->base.shared_ctl && synth_q_inflight(d->base.ctl)))
        synth_comp_stream_destroy(d->base.ctl, s->id);
    pthread_mutex_unlock(&d->base.ctl_lock);
    rte_free(s);
    return 0;
}

struct rte_compressdev_ops cz_ops = {
    .dev_configure = cz_configure,
    .dev_start = cz_start,
    .dev_stop = cz_stop,
    .dev_close = cz_close,
    .dev_infos_get = cz_info_get,
    .stats_get = cz_stats_get,
    .stats_reset = cz_stats_reset,
    .queue_pair_setup = cz_qp_setup,
    .queue_pair_release = cz_qp_release,
    .stream_create = cz_stream_create,
    .stream_free = cz_stream_free,
    .private_xform_create = cz_xform_create,
    .private_xform_free = cz_xform_free,
};
