/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control path the synthetic-device PMDs share (synth_pmd.h): devargs, claim and open at
 * probe, release, configure's queue-pair check, the reset at start, queue pairs, stats.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_kvargs.h>
#include <rte_malloc.h>

#include "synth_pmd.h"

static const char *const spmd_valid_args[] = {"region", "pci", "socket_id", NULL};

void spmd_log(const struct spmd_id *id, uint32_t level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rte_log(level, (uint32_t)*id->logtype, "%s: %s\n", id->drv, msg);
}

/* ---- probe ---- */

static int spmd_kv_str(const char *key __rte_unused, const char *value, void *opaque)
{
    char *out = opaque;
    if (!value || !*value || strlen(value) >= sizeof(((struct spmd_dev *)0)->spec))
        return -EINVAL;
    snprintf(out, sizeof(((struct spmd_dev *)0)->spec), "%s", value);
    return 0;
}

static int spmd_kv_int(const char *key __rte_unused, const char *value, void *opaque)
{
    char *end;
    long v = strtol(value ? value : "", &end, 10);
    if (!value || !*value || *end || v < 0 || v > 1024)
        return -EINVAL;
    *(int *)opaque = (int)v;
    return 0;
}

int spmd_open(const struct spmd_id *id, struct rte_vdev_device *vdev, const struct spmd_want *w, int *socket_id,
              struct spmd_dev *out, struct synth_dev_info *info)
{
    const char *name = rte_vdev_device_name(vdev), *args = rte_vdev_device_args(vdev);
    struct synth_open_opts o = {.features = 0, .timeout_ms = SPMD_TIMEOUT_MS};
    struct rte_kvargs *kv;
    char region[sizeof(out->spec)] = "", pci[sizeof(out->spec)] = "";
    const char *spec;
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    out->id = id;
    out->lock_fd = -1;
    if (!name)
        return -EINVAL;
    kv = rte_kvargs_parse(args ? args : "", spmd_valid_args);
    if (!kv) {
        spmd_log(id, RTE_LOG_ERR, "%s: bad devargs '%s' (expected region=PATH or pci=BDF, optional socket_id=N)",
                 name, args ? args : "");
        return -EINVAL;
    }
    if (rte_kvargs_process(kv, "region", spmd_kv_str, region) < 0 ||
        rte_kvargs_process(kv, "pci", spmd_kv_str, pci) < 0 ||
        rte_kvargs_process(kv, "socket_id", spmd_kv_int, socket_id) < 0 || !*region == !*pci) {
        spmd_log(id, RTE_LOG_ERR, "%s: give exactly one of region=PATH (e.g. %s) or pci=BDF (e.g. 0000:00:05.0)",
                 name, id->example);
        goto out;
    }
    spec = *region ? region : pci;
    snprintf(out->spec, sizeof(out->spec), "%s", spec);
    out->lock_fd = synth_dev_claim(spec); /* the claim every driver of a synthetic device takes */
    if (out->lock_fd == -EBUSY) {
        out->lock_fd = -1;
        spmd_log(id, RTE_LOG_ERR, "%s: %s is held by another process (%s)", name, spec, id->holders);
        rc = -EBUSY;
        goto out;
    }
    if (out->lock_fd < 0)
        out->lock_fd = -1; /* a file that cannot be locked: the device is used unclaimed */
    rc = *region ? synth_dev_open_path(region, &o, &out->dev) : synth_dev_open_pci(pci, &o, &out->dev);
    if (rc < 0) {
        out->dev = NULL;
        spmd_log(id, RTE_LOG_ERR, "%s: cannot open %s: %s (is a backend serving this device?)", name, spec,
                 strerror(-rc));
        goto out;
    }
    synth_dev_get_info(out->dev, info);
    if (info->dev_class != w->dev_class || !info->num_queues ||
        (info->features_accepted & w->features) != w->features) {
        spmd_log(id, RTE_LOG_ERR, "%s: %s is not %s", name, spec, w->what);
        rc = -ENODEV;
        goto out;
    }
    out->ring_entries = info->ring_entries;
    out->arena_size = info->arena_size;
    rc = 0;
out:
    if (rc < 0)
        spmd_release(out);
    rte_kvargs_free(kv);
    return rc;
}

void spmd_adopt(struct spmd_dev *d, struct spmd_dev *from)
{
    *d = *from;
    pthread_mutex_init(&d->ctl_lock, NULL);
    from->dev = NULL;
    from->lock_fd = -1;
}

void spmd_release(struct spmd_dev *d)
{
    if (d->dev) {
        synth_dev_close(d->dev);
        d->dev = NULL;
    }
    if (d->lock_fd >= 0) {
        close(d->lock_fd);
        d->lock_fd = -1;
    }
}

/* ---- device operations ---- */

int spmd_configure(const struct spmd_dev *d, uint16_t nb_qp)
{
    if (nb_qp > d->nqp) {
        spmd_log(d->id, RTE_LOG_ERR, "%u queue pairs asked for, the device offers %u", nb_qp, d->nqp);
        return -EINVAL;
    }
    return 0;
}

int spmd_start(struct spmd_dev *d, void **qps, uint16_t nb_qp, void (*lose)(struct spmd_qp *qp, struct spmd_slot *s))
{
    int rc;

    if (!d->dev)
        return -ENODEV;
    if (!synth_dev_needs_reset(d->dev))
        return 0;
    pthread_mutex_lock(&d->ctl_lock);
    rc = synth_dev_reset(d->dev);
    __atomic_fetch_add(&d->epoch, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&d->ctl_lock);
    for (uint16_t i = 0; i < nb_qp; i++)
        if (qps[i])
            spmd_qp_restart(qps[i], lose);
    spmd_log(d->id, RTE_LOG_INFO, "%s reset: %s", d->spec, rc < 0 ? strerror(-rc) : "ok");
    return rc;
}

/* ---- queue pairs ---- */

/* Every slot free and zeroed, the queue pair in the device's current epoch. */
static void spmd_qp_refill(struct spmd_qp *qp)
{
    memset(qp->slots, 0, qp->nslots * qp->slot_size);
    qp->nfree = qp->nslots;
    for (uint32_t i = 0; i < qp->nslots; i++)
        qp->free[i] = qp->nslots - 1 - i;
    qp->epoch = __atomic_load_n(&qp->d->epoch, __ATOMIC_ACQUIRE);
}

void spmd_qp_restart(struct spmd_qp *qp, void (*lose)(struct spmd_qp *qp, struct spmd_slot *s))
{
    for (uint32_t i = 0; i < qp->nslots; i++) {
        struct spmd_slot *s = spmd_slot(qp, i);
        if (!s->busy)
            continue;
        lose(qp, s);
        if (s->op)
            spmd_done_put(qp, s->op);
    }
    spmd_qp_refill(qp);
}

struct spmd_qp *spmd_qp_create(struct spmd_dev *d, uint16_t qp_id, size_t slot_size, int socket_id)
{
    const char *type = d->id->drv;
    struct spmd_qp *qp;
    uint32_t n = d->ring_entries, ndone = 1;

    while (ndone < 2 * n) /* room for every slot's op and as many refused */
        ndone <<= 1;
    qp = rte_zmalloc_socket(type, sizeof(*qp), RTE_CACHE_LINE_SIZE, socket_id);
    if (!qp)
        return NULL;
    qp->slots = rte_zmalloc_socket(type, n * slot_size, RTE_CACHE_LINE_SIZE, socket_id);
    qp->free = rte_zmalloc_socket(type, n * sizeof(*qp->free), RTE_CACHE_LINE_SIZE, socket_id);
    qp->done = rte_zmalloc_socket(type, ndone * sizeof(*qp->done), RTE_CACHE_LINE_SIZE, socket_id);
    qp->d = d;
    qp->id = qp_id;
    qp->q = synth_dev_queue(d->dev, qp_id);
    qp->nslots = n;
    qp->slot_size = slot_size;
    qp->done_mask = ndone - 1;
    if (!qp->slots || !qp->free || !qp->done || !qp->q) {
        spmd_qp_free((void **)&qp);
        return NULL;
    }
    spmd_qp_refill(qp);
    return qp;
}

void spmd_qp_free(void **p)
{
    struct spmd_qp *qp = *p;

    if (!qp)
        return;
    rte_free(qp->free);
    rte_free(qp->slots);
    rte_free(qp->done);
    rte_free(qp);
    *p = NULL;
}

void spmd_close(struct spmd_dev *d, void **qps, uint16_t nb_qp)
{
    for (uint16_t i = 0; i < nb_qp; i++)
        spmd_qp_free(&qps[i]);
    spmd_release(d);
}

/* ---- stats ---- */

void spmd_stats_sum(void *const *qps, uint16_t nb_qp, struct spmd_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (uint16_t i = 0; i < nb_qp; i++) {
        const struct spmd_qp *qp = qps[i];
        if (qp)
            SPMD_STATS_ADD(out, &qp->stats);
    }
}

void spmd_stats_reset(void *const *qps, uint16_t nb_qp)
{
    for (uint16_t i = 0; i < nb_qp; i++) {
        struct spmd_qp *qp = qps[i];
        if (qp)
            memset(&qp->stats, 0, sizeof(qp->stats));
    }
}
