/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The life of one device region on the host: lay it out or attach to it (taking over a dead
 * backend's rings), and let it go. Everything read from the region is read once, copied, then
 * validated.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host_pvt.h"

static const struct synth_class_ops *class_ops(uint32_t dev_class)
{
    switch (dev_class) {
    case SYNTH_CLASS_CRYPTO:
        return &synthi_crypto_class;
    case SYNTH_CLASS_COMPRESS:
        return &synthi_compress_class;
    case SYNTH_CLASS_PACKET:
        return &synthi_packet_class;
    default:
        return NULL;
    }
}

static void bind_queues(struct synth_hdev *d)
{
    uint32_t i;
    for (i = 0; i < d->layout.num_queues; i++) {
        const struct synth_queue_info *qi = &d->layout.queues[i];
        struct synth_hqueue *q = &d->queues[i];
        synthi_ring_init(&q->sq, d->base + qi->sq_off, d->layout.ring_entries, sizeof(struct synth_desc));
        synthi_ring_init(&q->cq, d->base + qi->cq_off, d->layout.ring_entries, sizeof(struct synth_cpl));
        q->arena = d->base + qi->arena_off;
        q->arena_size = qi->arena_size;
    }
}

static void free_dev(struct synth_hdev *d)
{
    if (d->has_vault)
        synthi_vault_close(&d->vault, 0, NULL);
    if (d->base && d->base != MAP_FAILED)
        munmap(d->base, d->layout.region_size);
    if (d->fd >= 0)
        close(d->fd);
    free(d);
}

/*
 * Where a re-attaching backend resumes producing completions: `prod` as the old backend last wrote
 * it, moved past any entries it had already published (it publishes entries before advancing
 * prod, so it may have died in between). Bounded by the ring size.
 */
static uint32_t cq_resume_index(struct synth_ring *r, uint32_t prod)
{
    uint32_t idx = prod, n;
    for (n = 0; n < r->size && idx - r->peer < r->size; n++, idx++) {
        struct synth_cpl *e = (struct synth_cpl *)synthi_ring_slot(r, idx);
        if (synthi_cpl_word_phase(synthi_load_acquire_u32(synthi_cpl_word(e))) != synth_cpl_phase(idx, r->size))
            break;
    }
    return idx;
}

/*
 * A re-attaching backend: descriptors the old one took but did not complete may or may not have
 * run. Complete each with RETRY, in order, so that no guest waits forever and none is run twice.
 * Completion i answers submission i on a queue, so they are [completed, taken). Their cookies come
 * from the vault (the submission slots may hold new descriptors by now).
 */
static void retry_in_flight(struct synth_hdev *d, struct synth_hqueue *q, uint32_t qi)
{
    struct synth_vault_queue *vq = d->has_vault && d->vault.restored ? synthi_vault_queue(&d->vault, qi) : NULL;
    uint32_t taken = vq ? vq->taken : q->sq.local, idx = q->cq.local, n = taken - idx;
    struct synth_cpl c;

    if (n > d->layout.ring_entries) /* inconsistent: trust the completion ring */
        return;
    for (; idx != taken; idx++) {
        const struct synth_desc *e = (const struct synth_desc *)synthi_ring_slot(&q->sq, idx);
        memset(&c, 0, sizeof(c));
        c.cookie = vq ? vq->cookies[idx & q->sq.mask] : e->cookie;
        c.status = SYNTH_ST_RETRY;
        if (synthi_cq_enqueue_burst(&q->cq, &c, 1) != 1)
            break;
        SYNTH_STAT_ADD(d->stats.retried, 1);
    }
    q->sq.local = q->sq.peer = taken;
    synthi_store_release_u32(&q->sq.core->cons, taken);
}

/*
 * One backend per region: an exclusive lock on the open file for as long as the device lives (the
 * kernel drops it when the process dies). QEMU maps the file without locking it, and flock locks
 * do not meet the POSIX record locks other tools take. -EBUSY if another backend holds it.
 */
static int lock_region(int fd)
{
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    return errno == EWOULDBLOCK ? -EBUSY : -errno;
}

/* Common part of create and attach once the file is open and sized. */
struct setup_args {
    const struct synth_hdev_params *p;
    int fresh;
};

static int setup_region(struct synth_hdev *d, void *arg);

/*
 * Map the region, then lay it out (fresh) or take it over, inside a fault frame: the file may be
 * truncated under us at any moment (its QEMU, or a process controlling it), and then this device
 * fails with -EFAULT instead of the process dying of SIGBUS.
 */
static int setup(struct synth_hdev *d, const struct synth_hdev_params *p, int fresh)
{
    struct setup_args a = {p, fresh};

    d->base = mmap(NULL, d->layout.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
    if (d->base == MAP_FAILED) {
        d->base = NULL;
        return -errno;
    }
    d->hdr = (struct synth_dev_header *)d->base;
    return synthi_region_call(d, setup_region, &a);
}

static int setup_region(struct synth_hdev *d, void *arg)
{
    const struct synth_hdev_params *p = ((struct setup_args *)arg)->p;
    int fresh = ((struct setup_args *)arg)->fresh;
    struct synth_dev_header *h = d->hdr;
    uint32_t gen;
    int rc;

    d->features_offered = SYNTH_F_RING_V1 | SYNTH_F_GENERATION | SYNTH_F_NOP | d->ops->features;

    if (fresh) {
        memset(h, 0, SYNTH_HEADER_SIZE);
        gen = p->generation ? p->generation : 1;
    } else {
        if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != SYNTH_MAGIC)
            return -EPROTO; /* not a region: never lay a header over someone's file */
        gen = __atomic_load_n(&h->generation, __ATOMIC_RELAXED) + 1;
        if (gen < p->generation)
            gen = p->generation;
        if (gen == 0)
            gen = 1;
    }
    synthi_publish_identity(d);
    bind_queues(d);

    if (p->vault_path) {
        uint64_t class_size = d->ops->vault_size ? d->ops->vault_size(p) : 0;
        if (strlen(p->vault_path) >= sizeof(d->vault_path))
            return -EINVAL;
        snprintf(d->vault_path, sizeof(d->vault_path), "%s", p->vault_path);
        rc = synthi_vault_open(&d->vault, p->vault_path, d->ops->dev_class, d->layout.num_queues,
                              d->layout.ring_entries, class_size);
        if (rc < 0)
            return rc;
        d->has_vault = 1;
        if (fresh && d->vault.restored) /* left over from an earlier region of that name */
            memset(d->vault.base + d->vault.hdr->class_off, 0, d->vault.size - d->vault.hdr->class_off);
    }
    d->attaching = !fresh;
    d->quota = p->quota;
    rc = d->ops->init(d, p);
    if (rc < 0)
        return rc;
    synthi_copy_name(h->backend, sizeof(h->backend), d->ops->plugin_name(d));

    d->generation = gen;
    SYNTH_STAT_SET(d->stats.generation, gen);
    synthi_store_release_u32(&h->generation, gen);
    if (fresh) {
        d->acked_epoch = 0;
        synthi_store_release_u32(&h->acked_epoch, 0);
    } else {
        /*
         * A restarted backend: the driver that was attached keeps going. Its epoch is taken as
         * acknowledged and its rings are taken over where the guest left them.
         */
        uint32_t i, was = synthi_load_relaxed_u32(&h->dev_status);
        d->acked_epoch = synthi_load_acquire_u32(&h->drv_epoch);
        d->features = __atomic_load_n(&h->features_accepted, __ATOMIC_ACQUIRE);
        d->active = (synthi_load_relaxed_u32(&h->drv_status) & SYNTH_DRV_DRIVER_OK) != 0;
        for (i = 0; i < d->layout.num_queues; i++) {
            struct synth_hqueue *q = &d->queues[i];
            q->cq.peer = synthi_load_acquire_u32(&q->cq.core->cons);
            q->cq.local = cq_resume_index(&q->cq, synthi_load_acquire_u32(&q->cq.core->prod));
            q->sq.local = q->sq.peer = synthi_load_acquire_u32(&q->sq.core->cons);
            if (d->active)
                retry_in_flight(d, q, i);
        }
        synthi_store_release_u32(&h->acked_epoch, d->acked_epoch);
        if (d->active && ((d->features & ~d->features_offered) || !(d->features & SYNTH_F_RING_V1))) {
            synthi_hdev_mark_broken(d, SYNTH_DEVERR_FEATURES);
            return 0;
        }
        if (was & SYNTH_DEV_NEEDS_RESET) { /* still waiting for its driver to reset */
            /*
             * The reason comes from the region, which its guest can write: keep only a reason a
             * backend gives a driver. REGION, say, is the host's own verdict (its file was cut)
             * and would make a healthy device read "abandoned" to the operator.
             */
            uint32_t err = synthi_load_relaxed_u32(&h->dev_error);
            if (err != SYNTH_DEVERR_FEATURES && err != SYNTH_DEVERR_CQ_INDEX)
                err = SYNTH_DEVERR_BACKEND;
            synthi_hdev_mark_broken(d, err);
            return 0;
        }
        SYNTH_STAT_SET(d->stats.active, (uint32_t)d->active);
    }
    synthi_set_status(d, SYNTH_DEV_READY, SYNTH_DEVERR_NONE);
    return 0;
}

static int prepare(const struct synth_hdev_params *p, struct synth_hdev **out)
{
    struct synth_hdev *d;
    const struct synth_class_ops *ops = class_ops(p->dev_class);
    int rc;

    synthi_tick_init();
    if (!p->path || strlen(p->path) >= PATH_MAX)
        return -EINVAL;
    if (!ops)
        return -ENOTSUP;
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->fd = -1;
    d->ops = ops;
    rc = synth_layout_compute(p->region_size, p->num_queues, p->ring_entries, &d->layout);
    if (rc < 0) {
        free(d);
        return rc;
    }
    snprintf(d->path, sizeof(d->path), "%s", p->path);
    synthi_copy_name(d->name, sizeof(d->name), p->name);
    *out = d;
    return 0;
}

int synth_hdev_create(const struct synth_hdev_params *p, struct synth_hdev **out)
{
    struct synth_hdev *d;
    mode_t mode = p->mode ? (mode_t)p->mode : 0600;
    int rc;

    rc = prepare(p, &d);
    if (rc < 0)
        return rc;
    d->fd = open(p->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (d->fd < 0) {
        rc = -errno;
        free_dev(d);
        return rc;
    }
    rc = lock_region(d->fd);
    if (rc < 0)
        goto fail_unlink;
    if (fchmod(d->fd, mode) < 0 || ftruncate(d->fd, (off_t)d->layout.region_size) < 0 ||
        ((p->uid >= 0 || p->gid >= 0) && fchown(d->fd, (uid_t)p->uid, (gid_t)p->gid) < 0)) {
        rc = -errno;
        goto fail_unlink;
    }
    /*
     * Take every block now: a sparse region on a full tmpfs would be served, and the first guest
     * write past the space would kill its QEMU with SIGBUS. Failing here stops the VM's start.
     */
    rc = posix_fallocate(d->fd, 0, (off_t)d->layout.region_size);
    if (rc != 0) {
        rc = -rc;
        goto fail_unlink;
    }
    rc = setup(d, p, 1);
    if (rc < 0)
        goto fail_unlink;
    *out = d;
    return 0;

fail_unlink:
    if (d->cls)
        d->ops->fini(d);
    unlink(p->path);
    free_dev(d);
    return rc;
}

int synth_hdev_attach(const struct synth_hdev_params *p, struct synth_hdev **out)
{
    struct synth_hdev *d;
    struct stat st;
    int rc;

    rc = prepare(p, &d);
    if (rc < 0)
        return rc;
    d->fd = open(p->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (d->fd < 0 || fstat(d->fd, &st) < 0) {
        rc = -errno;
        goto fail;
    }
    rc = lock_region(d->fd);
    if (rc < 0)
        goto fail;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != d->layout.region_size) {
        rc = -EINVAL;
        goto fail;
    }
    rc = setup(d, p, 0);
    if (rc < 0)
        goto fail;
    *out = d;
    return 0;

fail:
    if (d->cls)
        d->ops->fini(d);
    free_dev(d);
    return rc;
}

/* The last words to the region: status cleared, the class's links and state released. */
static int quiesce(struct synth_hdev *d, void *arg)
{
    (void)arg;
    synthi_set_status(d, 0, SYNTH_DEVERR_NONE);
    if (d->cls)
        d->ops->fini(d);
    return 0;
}

void synth_hdev_destroy(struct synth_hdev *d, int unlink_region)
{
    struct synth_worker *w;

    if (!d)
        return;
    /* Still served: a worker would poll freed memory. Take it off first (host.h: destroy stops serving). */
    w = atomic_load_explicit(&d->owner, memory_order_acquire);
    if (w)
        synth_worker_remove(w, d);
    /* A region truncated before or during this: the device is abandoned, and fini runs again
     * with the region untouched (every class write to its own region checks d->faulted). */
    if (!d->hdr || synthi_region_call(d, quiesce, NULL) < 0) {
        if (d->cls)
            d->ops->fini(d);
    }
    if (unlink_region)
        unlink(d->path);
    if (d->has_vault) {
        synthi_vault_close(&d->vault, unlink_region, d->vault_path);
        d->has_vault = 0;
    }
    free_dev(d);
}

void synth_hdev_get_stats(const struct synth_hdev *d, struct synth_hdev_stats *st)
{
    const uint64_t *src = (const uint64_t *)&d->stats;
    uint64_t *dst = (uint64_t *)st;
    size_t i;
    _Static_assert(sizeof(struct synth_hdev_stats) % 8 == 0, "stats are 64-bit words");
    for (i = 0; i < sizeof(*st) / 8; i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    st->sessions = d->ops->sessions(d);
}

const char *synth_hdev_plugin_name(const struct synth_hdev *d) { return d->ops->plugin_name(d); }

unsigned synth_hdev_sessions(const struct synth_hdev *d, struct synth_session_info *out, unsigned max)
{
    return d->ops->list_sessions ? d->ops->list_sessions(d, out, max) : 0;
}

int64_t synth_hdev_export_streams(const struct synth_hdev *d, void *buf, uint64_t cap)
{
    return d->ops->export_state ? d->ops->export_state(d, buf, cap) : 0;
}

int synth_hdev_import_streams(struct synth_hdev *d, const void *buf, uint64_t len)
{
    if (!d->ops->import_state)
        return len ? -EINVAL : 0;
    return d->ops->import_state(d, buf, len);
}
