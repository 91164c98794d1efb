/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_synth: the vdev (devargs, claim, probe, remove). The device operations (configure, queue
 * pairs, sessions, stats, info) are in crypto_synth_ops.c, the data path in crypto_synth_rxtx.c.
 *
 * --vdev crypto_synth0,region=/dev/shm/<device>   a region file (on the host: tests, tools)
 * --vdev crypto_synth0,pci=0000:00:05.0           an ivshmem device (in a VM)
 * optional: socket_id=<int>
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bus_vdev_driver.h>
#include <rte_kvargs.h>

#include "crypto_synth_pvt.h"

RTE_LOG_REGISTER(cs_logtype, pmd.crypto.synth, INFO);

uint8_t cs_driver_id;

static const char *const cs_valid_args[] = {"region", "pci", "socket_id", NULL};

/* ---- vdev ---- */

static int cs_kv_str(const char *key __rte_unused, const char *value, void *opaque)
{
    char *out = opaque;
    if (!value || !*value || strlen(value) >= sizeof(((struct cs_dev *)0)->spec))
        return -EINVAL;
    snprintf(out, sizeof(((struct cs_dev *)0)->spec), "%s", value);
    return 0;
}

static int cs_kv_int(const char *key __rte_unused, const char *value, void *opaque)
{
    char *end;
    long v = strtol(value ? value : "", &end, 10);
    if (!value || !*value || *end || v < 0 || v > 1024)
        return -EINVAL;
    *(int *)opaque = (int)v;
    return 0;
}

static int cs_probe(struct rte_vdev_device *vdev)
{
    const char *name = rte_vdev_device_name(vdev), *args = rte_vdev_device_args(vdev);
    struct rte_cryptodev_pmd_init_params ip = {.private_data_size = sizeof(struct cs_dev),
                                               .socket_id = (int)rte_socket_id(),
                                               .max_nb_queue_pairs = SYNTH_MAX_QUEUES};
    struct synth_open_opts o = {.features = 0, .timeout_ms = CS_TIMEOUT_MS};
    struct rte_kvargs *kv = NULL;
    struct synth_dev *sd = NULL;
    struct synth_dev_info info;
    struct rte_cryptodev *dev;
    struct cs_dev *d;
    char region[256] = "", pci[256] = "";
    int rc = -EINVAL, lock_fd = -1;

    if (!name)
        return -EINVAL;
    kv = rte_kvargs_parse(args ? args : "", cs_valid_args);
    if (!kv) {
        CS_LOG(ERR, "%s: bad devargs '%s' (expected region=PATH or pci=BDF, optional socket_id=N)", name,
               args ? args : "");
        return -EINVAL;
    }
    if (rte_kvargs_process(kv, "region", cs_kv_str, region) < 0 || rte_kvargs_process(kv, "pci", cs_kv_str, pci) < 0 ||
        rte_kvargs_process(kv, "socket_id", cs_kv_int, &ip.socket_id) < 0 || !*region == !*pci) {
        CS_LOG(ERR, "%s: give exactly one of region=PATH (e.g. /dev/shm/crypto0) or pci=BDF (e.g. 0000:00:05.0)",
               name);
        goto out;
    }
    lock_fd = synth_dev_claim(*region ? region : pci); /* as the OpenSSL provider does */
    if (lock_fd == -EBUSY) {
        CS_LOG(ERR, "%s: %s is held by another process (a DPDK application or the OpenSSL provider)", name,
               *region ? region : pci);
        rc = -EBUSY;
        goto out;
    }
    if (lock_fd < 0)
        lock_fd = -1; /* a file that cannot be locked: the device is used unclaimed */
    rc = *region ? synth_dev_open_path(region, &o, &sd) : synth_dev_open_pci(pci, &o, &sd);
    if (rc < 0) {
        CS_LOG(ERR, "%s: cannot open %s: %s (is a backend serving this device?)", name, *region ? region : pci,
               strerror(-rc));
        goto out;
    }
    synth_dev_get_info(sd, &info);
    if (info.dev_class != SYNTH_CLASS_CRYPTO || !info.num_queues ||
        !(info.features_accepted & SYNTH_CRYPTO_F_SESSIONS) || !(info.features_accepted & SYNTH_CRYPTO_F_OUT_OF_PLACE)) {
        CS_LOG(ERR, "%s: %s is not a crypto device with sessions and out-of-place operations", name,
               *region ? region : pci);
        rc = -ENODEV;
        goto out;
    }
    dev = rte_cryptodev_pmd_create(name, &vdev->device, &ip);
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
    snprintf(d->spec, sizeof(d->spec), "%s", *region ? region : pci);
    pthread_mutex_init(&d->ctl_lock, NULL);
    d->shared_ctl = info.num_queues == 1;
    d->nqp = d->shared_ctl ? 1 : (uint16_t)(info.num_queues - 1);
    d->ctl = synth_dev_queue(d->dev, info.num_queues - 1u);
    d->alg_mask = info.crypto_alg_mask;
    /* The cipher-then-auth chain needs the tag over exactly the range DPDK names (ABI 1.2). */
    if (!(info.features_accepted & SYNTH_CRYPTO_F_MAC_NO_IV))
        d->alg_mask &= ~(1u << SYNTH_ALG_AES256_CBC_HMAC_SHA256);
    d->max_sessions = info.crypto_max_sessions;
    d->max_aad = ((const struct synth_crypto_cfg *)synth_dev_class_cfg(d->dev))->max_aad_len;
    d->ring_entries = info.ring_entries;
    d->arena_size = info.arena_size;
    cs_fill_caps(d);
    dev->driver_id = cs_driver_id;
    dev->dev_ops = &cs_ops;
    dev->enqueue_burst = cs_enqueue_burst;
    dev->dequeue_burst = cs_dequeue_burst;
    dev->feature_flags = RTE_CRYPTODEV_FF_SYMMETRIC_CRYPTO | RTE_CRYPTODEV_FF_IN_PLACE_SGL |
                         RTE_CRYPTODEV_FF_OOP_SGL_IN_SGL_OUT | RTE_CRYPTODEV_FF_OOP_SGL_IN_LB_OUT |
                         RTE_CRYPTODEV_FF_OOP_LB_IN_SGL_OUT | RTE_CRYPTODEV_FF_OOP_LB_IN_LB_OUT;
    rte_cryptodev_pmd_probing_finish(dev);
    CS_LOG(INFO, "%s: %s, %u queue pair%s, backend %s", name, d->spec, d->nqp, d->nqp == 1 ? "" : "s",
           info.backend);
    rc = 0;
out:
    if (sd)
        synth_dev_close(sd);
    if (lock_fd >= 0)
        close(lock_fd);
    rte_kvargs_free(kv);
    return rc;
}

static int cs_remove(struct rte_vdev_device *vdev)
{
    const char *name = rte_vdev_device_name(vdev);
    struct rte_cryptodev *dev;

    if (!name)
        return -EINVAL;
    dev = rte_cryptodev_pmd_get_named_dev(name);
    if (!dev)
        return -ENODEV;
    cs_release(dev->data->dev_private);
    return rte_cryptodev_pmd_destroy(dev);
}

static struct rte_vdev_driver cs_vdev_drv = {
    .probe = cs_probe,
    .remove = cs_remove,
};

static struct cryptodev_driver cs_crypto_drv;

RTE_PMD_REGISTER_VDEV(crypto_synth, cs_vdev_drv);
RTE_PMD_REGISTER_PARAM_STRING(crypto_synth, "region=<path> pci=<bdf> socket_id=<int>");
RTE_PMD_REGISTER_CRYPTO_DRIVER(cs_crypto_drv, cs_vdev_drv.driver, cs_driver_id);
