/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_synth: the vdev (probe, remove; the devargs, the claim and the open are synth_pmd.c's). The
 * device operations (configure, queue pairs, sessions, stats, info) are in crypto_synth_ops.c, the
 * data path in crypto_synth_rxtx.c.
 *
 * --vdev crypto_synth0,region=/dev/shm/<device>   a region file (on the host: tests, tools)
 * --vdev crypto_synth0,pci=0000:00:05.0           an ivshmem device (in a VM)
 * optional: socket_id=<int>
 */
#include <errno.h>
#include <string.h>

#include <bus_vdev_driver.h>

#include "crypto_synth_pvt.h"

RTE_LOG_REGISTER(cs_logtype, pmd.crypto.synth, INFO);

uint8_t cs_driver_id;

static const struct spmd_id cs_id = {
    .drv = "crypto_synth",
    .logtype = &cs_logtype,
    .example = "/dev/shm/crypto0",
    .holders = "a DPDK application or the OpenSSL provider",
};

static const struct spmd_want cs_want = {
    .dev_class = SYNTH_CLASS_CRYPTO,
    .features = SYNTH_CRYPTO_F_SESSIONS | SYNTH_CRYPTO_F_OUT_OF_PLACE,
    .what = "a crypto device with sessions and out-of-place operations",
};

/* ---- vdev ---- */

static int cs_probe(struct rte_vdev_device *vdev)
{
    const char *name = rte_vdev_device_name(vdev);
    struct rte_cryptodev_pmd_init_params ip = {.private_data_size = sizeof(struct cs_dev),
                                               .socket_id = (int)rte_socket_id(),
                                               .max_nb_queue_pairs = SYNTH_MAX_QUEUES};
    struct synth_dev_info info;
    struct spmd_dev opened;
    struct rte_cryptodev *dev;
    struct cs_dev *d;
    int rc;

    rc = spmd_open(&cs_id, vdev, &cs_want, &ip.socket_id, &opened, &info);
    if (rc < 0)
        return rc;
    dev = rte_cryptodev_pmd_create(name, &vdev->device, &ip);
    if (!dev) {
        spmd_release(&opened);
        return -EFAULT;
    }
    d = dev->data->dev_private;
    memset(d, 0, sizeof(*d));
    spmd_adopt(&d->base, &opened);
    d->base.shared_ctl = info.num_queues == 1;
    d->base.nqp = d->base.shared_ctl ? 1 : (uint16_t)(info.num_queues - 1);
    d->base.ctl = synth_dev_queue(d->base.dev, info.num_queues - 1u);
    d->alg_mask = info.crypto_alg_mask;
    /* The cipher-then-auth chain needs the tag over exactly the range DPDK names (ABI 1.2). */
    if (!(info.features_accepted & SYNTH_CRYPTO_F_MAC_NO_IV))
        d->alg_mask &= ~(1u << SYNTH_ALG_AES256_CBC_HMAC_SHA256);
    d->max_sessions = info.crypto_max_sessions;
    d->max_aad = ((const struct synth_crypto_cfg *)synth_dev_class_cfg(d->base.dev))->max_aad_len;
    cs_fill_caps(d);
    dev->driver_id = cs_driver_id;
    dev->dev_ops = &cs_ops;
    dev->enqueue_burst = cs_enqueue_burst;
    dev->dequeue_burst = cs_dequeue_burst;
    dev->feature_flags = RTE_CRYPTODEV_FF_SYMMETRIC_CRYPTO | RTE_CRYPTODEV_FF_IN_PLACE_SGL |
                         RTE_CRYPTODEV_FF_OOP_SGL_IN_SGL_OUT | RTE_CRYPTODEV_FF_OOP_SGL_IN_LB_OUT |
                         RTE_CRYPTODEV_FF_OOP_LB_IN_SGL_OUT | RTE_CRYPTODEV_FF_OOP_LB_IN_LB_OUT;
    rte_cryptodev_pmd_probing_finish(dev);
    CS_LOG(INFO, "%s: %s, %u queue pair%s, backend %s", name, d->base.spec, d->base.nqp,
           d->base.nqp == 1 ? "" : "s", info.backend);
    return 0;
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
    spmd_release(dev->data->dev_private);
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
