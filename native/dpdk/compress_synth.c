/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compress_synth: the vdev (probe, remove; the devargs, the claim and the open are synth_pmd.c's).
 * The device operations (configure, queue pairs, transforms, streams, stats, info) are in
 * compress_synth_ops.c, the data path in compress_synth_rxtx.c.
 *
 * --vdev compress_synth0,region=/dev/shm/<device>   a region file (on the host: tests, tools)
 * --vdev compress_synth0,pci=0000:00:05.0           an ivshmem device (in a VM)
 * optional: socket_id=<int>
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bus_vdev_driver.h>

#include "compress_synth_pvt.h"

RTE_LOG_REGISTER(cz_logtype, pmd.compress.synth, INFO);

static const struct spmd_id cz_id = {
    .drv = "compress_synth",
    .logtype = &cz_logtype,
    .example = "/dev/shm/comp0",
    .holders = "a DPDK application or another driver",
};

static const struct spmd_want cz_want = {
    .dev_class = SYNTH_CLASS_COMPRESS,
    .features = 0,
    .what = "a compression device",
};

static int cz_probe(struct rte_vdev_device *vdev)
{
    const char *name = rte_vdev_device_name(vdev);
    struct rte_compressdev_pmd_init_params ip = {.socket_id = (int)rte_socket_id()};
    struct synth_dev_info info;
    struct synth_comp_cfg cfg;
    struct spmd_dev opened;
    struct rte_compressdev *dev;
    struct cz_dev *d;
    int rc, streams;

    rc = spmd_open(&cz_id, vdev, &cz_want, &ip.socket_id, &opened, &info);
    if (rc < 0)
        return rc;
    rc = -ENODEV;
    if (synth_comp_get_cfg(opened.dev, &cfg) < 0) { /* cannot fail once the class is checked */
        CZ_LOG(ERR, "%s: %s has no compression configuration", name, opened.spec);
        goto out;
    }
    if (!(cfg.alg_mask & (1u << SYNTH_CALG_DEFLATE)) || cfg.max_chunk < 4096) {
        CZ_LOG(ERR, "%s: %s does not serve raw deflate (its algorithms: mask 0x%x)", name, opened.spec, cfg.alg_mask);
        goto out;
    }
    snprintf(ip.name, sizeof(ip.name), "%s", name);
    dev = rte_compressdev_pmd_create(name, &vdev->device, sizeof(struct cz_dev), &ip);
    if (!dev) {
        rc = -EFAULT;
        goto out;
    }
    d = dev->data->dev_private;
    memset(d, 0, sizeof(*d));
    spmd_adopt(&d->base, &opened);
    d->cfg = cfg;
    streams = !!(info.features_accepted & SYNTH_COMP_F_STREAMS);
    /* With streams and more than one queue, the last queue is the control queue. */
    d->base.shared_ctl = streams && info.num_queues == 1;
    d->base.nqp = streams && !d->base.shared_ctl ? (uint16_t)(info.num_queues - 1) : info.num_queues;
    d->base.ctl = streams ? synth_dev_queue(d->base.dev, info.num_queues - 1u) : NULL;
    cz_fill_caps(d, streams);
    dev->dev_ops = &cz_ops;
    dev->enqueue_burst = cz_enqueue_burst;
    dev->dequeue_burst = cz_dequeue_burst;
    dev->feature_flags = RTE_COMPDEV_FF_HW_ACCELERATED;
    CZ_LOG(INFO, "%s: %s, %u queue pair%s, %s, max chunk %u, backend %s", name, d->base.spec, d->base.nqp,
           d->base.nqp == 1 ? "" : "s", streams ? "streams" : "no streams", cfg.max_chunk, info.backend);
    rc = 0;
out:
    spmd_release(&opened);
    return rc;
}

static int cz_remove(struct rte_vdev_device *vdev)
{
    const char *name = rte_vdev_device_name(vdev);
    struct rte_compressdev *dev;

    if (!name)
        return -EINVAL;
    dev = rte_compressdev_pmd_get_named_dev(name);
    if (!dev)
        return -ENODEV;
    spmd_release(dev->data->dev_private);
    return rte_compressdev_pmd_destroy(dev);
}

static struct rte_vdev_driver cz_vdev_drv = {
    .probe = cz_probe,
    .remove = cz_remove,
};

RTE_PMD_REGISTER_VDEV(compress_synth, cz_vdev_drv);
RTE_PMD_REGISTER_PARAM_STRING(compress_synth, "region=<path> pci=<bdf> socket_id=<int>");
