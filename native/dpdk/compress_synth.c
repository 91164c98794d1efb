/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compress_synth: the vdev (devargs, claim, probe, remove). The device operations (configure,
 * queue pairs, transforms, streams, stats, info) are in compress_synth_ops.c, the data path in
 * compress_synth_rxtx.c.
 *
 * --vdev compress_synth0,region=/dev/shm/<device>   a region file (on the host: tests, tools)
 * --vdev compress_synth0,pci=0000:00:05.0           an ivshmem device (in a VM)
 * optional: socket_id=<int>
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bus_vdev_driver.h>
#include <rte_kvargs.h>

#include "compress_synth_pvt.h"

RTE_LOG_REGISTER(cz_logtype, pmd.compress.synth, INFO);

static const char *const cz_valid_args[] = {"region", "pci", "socket_id", NULL};

static int cz_kv_str(const char *key __rte_unused, const char *value, void *opaque)
{
    char *out = opaque;
    if (!value || !*value || strlen(value) >= sizeof(((struct cz_dev *)0)->spec))
        return -EINVAL;
    snprintf(out, sizeof(((struct cz_dev *)0)->spec), "%s", value);
    return 0;
}

static int cz_kv_int(const char *key __rte_unused, const char *value, void *opaque)
{
    char *end;
    long v = strtol(value ? value : "", &end, 10);
    if (!value || !*value || *end || v < 0 || v > 1024)
        return -EINVAL;
    *(int *)opaque = (int)v;
    return 0;
}

static int cz_probe(struct rte_vdev_device *vdev)
{
    const char *name = rte_vdev_device_name(vdev), *args = rte_vdev_device_args(vdev);
    struct rte_compressdev_pmd_init_params ip = {.socket_id = (int)rte_socket_id()};
    struct synth_open_opts o = {.features = 0, .timeout_ms = CZ_TIMEOUT_MS};
    struct rte_kvargs *kv = NULL;
    struct synth_dev *sd = NULL;
    struct synth_dev_info info;
    struct synth_comp_cfg cfg;
    struct rte_compressdev *dev;
    struct cz_dev *d;
    char region[256] = "", pci[256] = "";
    const char *spec;
    int rc = -EINVAL, lock_fd = -1, streams;

    if (!name)
        return -EINVAL;
    kv = rte_kvargs_parse(args ? args : "", cz_valid_args);
    if (!kv) {
        CZ_LOG(ERR, "%s: bad devargs '%s' (expected region=PATH or pci=BDF, optional socket_id=N)", name,
               args ? args : "");
        return -EINVAL;
    }
    if (rte_kvargs_process(kv, "region", cz_kv_str, region) < 0 || rte_kvargs_process(kv, "pci", cz_kv_str, pci) < 0 ||
        rte_kvargs_process(kv, "socket_id", cz_kv_int, &ip.socket_id) < 0 || !*region == !*pci) {
        CZ_LOG(ERR, "%s: give exactly one of region=PATH (e.g. /dev/shm/comp0) or pci=BDF (e.g. 0000:00:05.0)",
               name);
        goto out;
    }
    spec = *region ? region : pci;
    lock_fd = synth_dev_claim(spec); /* as the OpenSSL provider and crypto_synth do */
    if (lock_fd == -EBUSY) {
        CZ_LOG(ERR, "%s: %s is held by another process (a DPDK application or another driver)", name, spec);
        rc = -EBUSY;
        goto out;
    }
    if (lock_fd < 0)
        lock_fd = -1; /* a file that cannot be locked: the device is used unclaimed */
    rc = *region ? synth_dev_open_path(region, &o, &sd) : synth_dev_open_pci(pci, &o, &sd);
    if (rc < 0) {
        CZ_LOG(ERR, "%s: cannot open %s: %s (is a backend serving this device?)", name, spec, strerror(-rc));
        goto out;
    }
    synth_dev_get_info(sd, &info);
    if (info.dev_class != SYNTH_CLASS_COMPRESS || !info.num_queues || synth_comp_get_cfg(sd, &cfg) < 0) {
        CZ_LOG(ERR, "%s: %s is not a compression device", name, spec);
        rc = -ENODEV;
        goto out;
    }
    if (!(cfg.alg_mask & (1u << SYNTH_CALG_DEFLATE)) || cfg.max_chunk < 4096) {
        CZ_LOG(ERR, "%s: %s does not serve raw deflate (its algorithms: mask 0x%x)", name, spec, cfg.alg_mask);
        rc = -ENODEV;
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
    d->dev = sd;
    d->lock_fd = lock_fd;
    sd = NULL;
    lock_fd = -1;
    snprintf(d->spec, sizeof(d->spec), "%s", spec);
    pthread_mutex_init(&d->ctl_lock, NULL);
    d->cfg = cfg;
    streams = !!(info.features_accepted & SYNTH_COMP_F_STREAMS);
    /* With streams and more than one queue, the last queue is the control queue. */
    d->shared_ctl = streams && info.num_queues == 1;
    d->nqp = streams && !d->shared_ctl ? (uint16_t)(info.num_queues - 1) : info.num_queues;
    d->ctl = streams ? synth_dev_queue(d->dev, info.num_queues - 1u) : NULL;
    d->ring_entries = info.ring_entries;
    d->arena_size = info.arena_size;
    cz_fill_caps(d, streams);
    dev->dev_ops = &cz_ops;
    dev->enqueue_burst = cz_enqueue_burst;
    dev->dequeue_burst = cz_dequeue_burst;
    dev->feature_flags = RTE_COMPDEV_FF_HW_ACCELERATED;
    CZ_LOG(INFO, "%s: %s, %u queue pair%s, %s, max chunk %u, backend %s", name, d->spec, d->nqp,
           d->nqp == 1 ? "" : "s", streams ? "streams" : "no streams", cfg.max_chunk, info.backend);
    rc = 0;
out:
    if (sd)
        synth_dev_close(sd);
    if (lock_fd >= 0)
        close(lock_fd);
    rte_kvargs_free(kv);
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
    cz_release(dev->data->dev_private);
    return rte_compressdev_pmd_destroy(dev);
}

static struct rte_vdev_driver cz_vdev_drv = {
    .probe = cz_probe,
    .remove = cz_remove,
};

RTE_PMD_REGISTER_VDEV(compress_synth, cz_vdev_drv);
RTE_PMD_REGISTER_PARAM_STRING(compress_synth, "region=<path> pci=<bdf> socket_id=<int>");
