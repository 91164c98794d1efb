/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host side of one device region: lay it out or attach to it, act on driver resets, and poll its
 * queues. Everything read from the region is read once, copied, then validated.
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
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "host_pvt.h"
#include "synth/clock_pvt.h"

static void clock_init(void);

static const struct synth_class_ops *class_ops(uint32_t dev_class)
{
    switch (dev_class) {
    case SYNTH_CLASS_CRYPTO:
        return &synth_crypto_class;
    case SYNTH_CLASS_COMPRESS:
        return &synth_compress_class;
    case SYNTH_CLASS_PACKET:
        return &synth_packet_class;
    default:
        return NULL;
    }
}

static void host_store_u32(uint32_t *p, uint32_t v) { synth_store_release_u32(p, v); }

static void bind_queues(struct synth_hdev *d)
{
    uint32_t i;
    for (i = 0; i < d->layout.num_queues; i++) {
        const struct synth_queue_info *qi = &d->layout.queues[i];
        struct synth_hqueue *q = &d->queues[i];
        synth_ring_init(&q->sq, d->base + qi->sq_off, d->layout.ring_entries, sizeof(struct synth_desc));
        synth_ring_init(&q->cq, d->base + qi->cq_off, d->layout.ring_entries, sizeof(struct synth_cpl));
        q->arena = d->base + qi->arena_off;
        q->arena_size = qi->arena_size;
    }
}

/* Zero the shared ring indices and our local copies (driver reset). */
/* Zero queue i's rings and indices, and its in-flight record in the vault (section 4.3 of the ABI). */
static void reset_queue(struct synth_hdev *d, uint32_t i)
{
    struct synth_hqueue *q = &d->queues[i];

    q->sq.local = q->sq.peer = 0;
    q->cq.local = q->cq.peer = 0;
    synth_ring_clear(&q->sq);
    synth_ring_clear(&q->cq);
    if (d->has_vault)
        memset(synth_vault_queue(&d->vault, i), 0, d->vault.queue_stride);
    host_store_u32(&q->sq.core->prod, 0);
    host_store_u32(&q->sq.core->cons, 0);
    host_store_u32(&q->cq.core->prod, 0);
    host_store_u32(&q->cq.core->cons, 0);
}

static void set_status(struct synth_hdev *d, uint32_t status, uint32_t err)
{
    if (!d->faulted) {
        host_store_u32(&d->hdr->dev_error, err);
        host_store_u32(&d->hdr->dev_status, status);
    }
    SYNTH_STAT_SET(d->stats.dev_status, status);
    SYNTH_STAT_SET(d->stats.dev_error, err);
}

void synth_hdev_abort_inhand(struct synth_hdev *d)
{
    struct synth_cpl out[SYNTH_MAX_BURST];
    uint32_t qi, i;

    if (d->faulted)
        return;
    for (qi = 0; qi < d->layout.num_queues; qi++) {
        struct synth_hqueue *q = &d->queues[qi];
        uint32_t n = q->inhand;
        if (n == 0)
            continue;
        q->inhand = 0;
        for (i = 0; i < n; i++) {
            memset(&out[i], 0, sizeof(out[i]));
            out[i].cookie = q->inhand_cookie[i];
            out[i].status = SYNTH_ST_RETRY;
        }
        if (synth_cq_enqueue_burst(&q->cq, out, n) != (int64_t)n) { /* room was checked before the take */
            synth_hdev_mark_broken(d, SYNTH_DEVERR_CQ_INDEX);
            continue;
        }
        SYNTH_STAT_ADD(d->stats.ops, (uint64_t)n);
        SYNTH_STAT_ADD(q->stats.ops, (uint64_t)n);
        SYNTH_STAT_ADD(d->stats.status[SYNTH_ST_RETRY], n);
        SYNTH_STAT_ADD(q->stats.status[SYNTH_ST_RETRY], n);
    }
}

void synth_hdev_region_fault(struct synth_hdev *d)
{
    d->faulted = 1;
    d->broken = 1;
    d->active = 0;
    SYNTH_STAT_SET(d->stats.active, 0);
    SYNTH_STAT_SET(d->stats.dev_status, SYNTH_DEV_NEEDS_RESET);
    SYNTH_STAT_SET(d->stats.dev_error, SYNTH_DEVERR_REGION);
    SYNTH_STAT_ADD(d->stats.ring_errors, 1);
}

void synth_hdev_mark_broken(struct synth_hdev *d, uint32_t err)
{
    d->broken = 1;
    set_status(d, SYNTH_DEV_READY | SYNTH_DEV_NEEDS_RESET, err);
    SYNTH_STAT_ADD(d->stats.ring_errors, 1);
    SYNTH_STAT_SET(d->stats.active, 0);
}

void synth_hdev_heartbeat(struct synth_hdev *d, uint64_t now_ns)
{
    if (!d->faulted)
        __atomic_store_n(&d->hdr->heartbeat, now_ns, __ATOMIC_RELAXED);
}

static void copy_name(char *dst, size_t n, const char *src)
{
    size_t len = src ? strnlen(src, n - 1) : 0;
    memset(dst, 0, n);
    if (len)
        memcpy(dst, src, len);
}

static void free_dev(struct synth_hdev *d)
{
    if (d->has_vault)
        synth_vault_close(&d->vault, 0, NULL);
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
        struct synth_cpl *e = (struct synth_cpl *)synth_ring_slot(r, idx);
        if (synth_cpl_word_phase(synth_load_acquire_u32(synth_cpl_word(e))) != synth_cpl_phase(idx, r->size))
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
    struct synth_vault_queue *vq = d->has_vault && d->vault.restored ? synth_vault_queue(&d->vault, qi) : NULL;
    uint32_t taken = vq ? vq->taken : q->sq.local, idx = q->cq.local, n = taken - idx;
    struct synth_cpl c;

    if (n > d->layout.ring_entries) /* inconsistent: trust the completion ring */
        return;
    for (; idx != taken; idx++) {
        const struct synth_desc *e = (const struct synth_desc *)synth_ring_slot(&q->sq, idx);
        memset(&c, 0, sizeof(c));
        c.cookie = vq ? vq->cookies[idx & q->sq.mask] : e->cookie;
        c.status = SYNTH_ST_RETRY;
        if (synth_cq_enqueue_burst(&q->cq, &c, 1) != 1)
            break;
        SYNTH_STAT_ADD(d->stats.retried, 1);
    }
    q->sq.local = q->sq.peer = taken;
    synth_store_release_u32(&q->sq.core->cons, taken);
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

/*
 * What the header says the device is: magic, ABI version, layout and queue table, class, offered
 * features, names. All [host] fields, written from the host's own copy, never read back: a driver
 * that scribbled on them gets them back with its next reset, and so does the next driver to open
 * the region (a guest rebooted after its kernel corrupted the header finds a device it can use).
 */
static void publish_identity(struct synth_hdev *d)
{
    struct synth_dev_header *h = d->hdr;

    synth_layout_write_header(&d->layout, h);
    h->dev_class = (uint16_t)d->ops->dev_class;
    h->features_offered = d->features_offered;
    copy_name(h->device_name, sizeof(h->device_name), d->name);
    if (d->cls)
        copy_name(h->backend, sizeof(h->backend), d->ops->plugin_name(d));
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
    return synth_region_call(d, setup_region, &a);
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
    publish_identity(d);
    bind_queues(d);

    if (p->vault_path) {
        uint64_t class_size = d->ops->vault_size ? d->ops->vault_size(p) : 0;
        if (strlen(p->vault_path) >= sizeof(d->vault_path))
            return -EINVAL;
        snprintf(d->vault_path, sizeof(d->vault_path), "%s", p->vault_path);
        rc = synth_vault_open(&d->vault, p->vault_path, d->ops->dev_class, d->layout.num_queues,
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
    copy_name(h->backend, sizeof(h->backend), d->ops->plugin_name(d));

    d->generation = gen;
    SYNTH_STAT_SET(d->stats.generation, gen);
    host_store_u32(&h->generation, gen);
    if (fresh) {
        d->acked_epoch = 0;
        host_store_u32(&h->acked_epoch, 0);
    } else {
        /*
         * A restarted backend: the driver that was attached keeps going. Its epoch is taken as
         * acknowledged and its rings are taken over where the guest left them.
         */
        uint32_t i, was = synth_load_relaxed_u32(&h->dev_status);
        d->acked_epoch = synth_load_acquire_u32(&h->drv_epoch);
        d->features = __atomic_load_n(&h->features_accepted, __ATOMIC_ACQUIRE);
        d->active = (synth_load_relaxed_u32(&h->drv_status) & SYNTH_DRV_DRIVER_OK) != 0;
        for (i = 0; i < d->layout.num_queues; i++) {
            struct synth_hqueue *q = &d->queues[i];
            q->cq.peer = synth_load_acquire_u32(&q->cq.core->cons);
            q->cq.local = cq_resume_index(&q->cq, synth_load_acquire_u32(&q->cq.core->prod));
            q->sq.local = q->sq.peer = synth_load_acquire_u32(&q->sq.core->cons);
            if (d->active)
                retry_in_flight(d, q, i);
        }
        host_store_u32(&h->acked_epoch, d->acked_epoch);
        if (d->active && ((d->features & ~d->features_offered) || !(d->features & SYNTH_F_RING_V1))) {
            synth_hdev_mark_broken(d, SYNTH_DEVERR_FEATURES);
            return 0;
        }
        if (was & SYNTH_DEV_NEEDS_RESET) { /* still waiting for its driver to reset */
            /*
             * The reason comes from the region, which its guest can write: keep only a reason a
             * backend gives a driver. REGION, say, is the host's own verdict (its file was cut)
             * and would make a healthy device read "abandoned" to the operator.
             */
            uint32_t err = synth_load_relaxed_u32(&h->dev_error);
            if (err != SYNTH_DEVERR_FEATURES && err != SYNTH_DEVERR_CQ_INDEX)
                err = SYNTH_DEVERR_BACKEND;
            synth_hdev_mark_broken(d, err);
            return 0;
        }
        SYNTH_STAT_SET(d->stats.active, (uint32_t)d->active);
    }
    set_status(d, SYNTH_DEV_READY, SYNTH_DEVERR_NONE);
    return 0;
}

static int prepare(const struct synth_hdev_params *p, struct synth_hdev **out)
{
    struct synth_hdev *d;
    const struct synth_class_ops *ops = class_ops(p->dev_class);
    int rc;

    clock_init();
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
    copy_name(d->name, sizeof(d->name), p->name);
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
    set_status(d, 0, SYNTH_DEVERR_NONE);
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
    if (!d->hdr || synth_region_call(d, quiesce, NULL) < 0) {
        if (d->cls)
            d->ops->fini(d);
    }
    if (unlink_region)
        unlink(d->path);
    if (d->has_vault) {
        synth_vault_close(&d->vault, unlink_region, d->vault_path);
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

/*
 * A new driver epoch. Its cost is bounded, in each pass and over time: a device of 64 queues of
 * 4096 entries has 21 MB of rings to zero, and a driver that changes its epoch in a loop would
 * otherwise take its worker from every other device the worker serves. So a reset starts (sessions
 * and class state go, the queues stop being served), then zeroes queues RESET_SLICE bytes of rings
 * per pass, paid from a budget of worker time that fills at 1/RESET_SHARE of the wall clock up to
 * RESET_BURST_NS (a device that has not reset for a while resets at full speed; one that resets in
 * a loop gets a thousandth of its worker), and only once every queue is clean checks the driver's
 * handshake and acknowledges; the device serves nothing meanwhile. A device of a few queues of a
 * few hundred entries resets within its first pass. Returns 1 once the reset is complete (the
 * device may be served in this pass), else 0.
 */
#define RESET_SLICE (64u * 1024u)
#define RESET_SHARE 1000u
#define RESET_BURST_NS 20000000ull

static int driver_reset_step(struct synth_hdev *d)
{
    struct synth_dev_header *h = d->hdr;
    uint32_t drv, epoch;
    uint64_t feat, t0, t1, bytes = 0;

    if (!d->resetting) {
        d->ops->reset(d);
        d->active = 0;
        d->features = 0;
        SYNTH_STAT_SET(d->stats.active, 0);
        d->resetting = 1;
        d->reset_next = 0;
    }
    if (d->reset_next < d->layout.num_queues) {
        t0 = synth_now_ns();
        d->reset_budget += (int64_t)((t0 - d->reset_budget_at) / RESET_SHARE);
        if (d->reset_budget_at == 0 || d->reset_budget > (int64_t)RESET_BURST_NS)
            d->reset_budget = (int64_t)RESET_BURST_NS;
        d->reset_budget_at = t0;
        if (d->reset_budget <= 0)
            return 0; /* its share of the worker is spent: later */
        while (d->reset_next < d->layout.num_queues && bytes < RESET_SLICE) {
            bytes += (uint64_t)d->layout.ring_entries * (sizeof(struct synth_desc) + sizeof(struct synth_cpl));
            reset_queue(d, d->reset_next++);
        }
        t1 = synth_now_ns();
        d->reset_budget -= (int64_t)(t1 - t0);
        SYNTH_STAT_ADD(d->stats.busy_ns, t1 - t0); /* the worker's time for this device */
        if (d->reset_next < d->layout.num_queues)
            return 0;
    }
    /* Clean: the handshake as the driver left it by now (its latest epoch). */
    epoch = synth_load_acquire_u32(&h->drv_epoch);
    drv = synth_load_relaxed_u32(&h->drv_status);
    feat = __atomic_load_n(&h->features_accepted, __ATOMIC_RELAXED);
    d->resetting = 0;
    publish_identity(d);
    d->broken = 0;
    if (drv & SYNTH_DRV_DRIVER_OK) {
        if ((feat & ~d->features_offered) || !(feat & SYNTH_F_RING_V1)) {
            d->broken = 1;
            set_status(d, SYNTH_DEV_READY | SYNTH_DEV_NEEDS_RESET, SYNTH_DEVERR_FEATURES);
        } else {
            d->active = 1;
            d->features = feat;
            set_status(d, SYNTH_DEV_READY, SYNTH_DEVERR_NONE);
        }
    } else {
        set_status(d, SYNTH_DEV_READY, SYNTH_DEVERR_NONE);
    }
    SYNTH_STAT_SET(d->stats.active, (uint32_t)d->active);
    SYNTH_STAT_ADD(d->stats.resets, 1);
    d->acked_epoch = epoch;
    host_store_u32(&h->acked_epoch, epoch);
    return 1;
}


/*
 * The service time of a burst is read on the way from a guest's submission to its completion, so
 * it comes from the TSC (about 10 ns a read against 25 ns for clock_gettime in a KVM guest) where
 * the kernel itself keeps time with it; its rate is measured once against CLOCK_MONOTONIC.
 * Elsewhere ticks are nanoseconds from clock_gettime. Set up when the first device is.
 */
static double ns_per_tick;

static void clock_init_once(void)
{
#if defined(__x86_64__)
    char src[16] = "";
    uint64_t n0, n1, c0, c1;
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");

    if (f) {
        if (!fgets(src, sizeof(src), f))
            src[0] = 0;
        fclose(f);
    }
    if (strcmp(src, "tsc\n") != 0)
        return;
    n0 = synth_now_ns();
    c0 = __rdtsc();
    do
        n1 = synth_now_ns();
    while (n1 - n0 < 2000000); /* 2 ms: the rate to about 1e-5 */
    c1 = __rdtsc();
    if (c1 > c0)
        ns_per_tick = (double)(n1 - n0) / (double)(c1 - c0);
#endif
}

static void clock_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, clock_init_once);
}

static inline uint64_t ticks(void)
{
#if defined(__x86_64__)
    if (ns_per_tick > 0.0)
        return __rdtsc();
#endif
    return synth_now_ns();
}

static inline uint64_t ticks_ns(uint64_t t) { return ns_per_tick > 0.0 ? (uint64_t)((double)t * ns_per_tick) : t; }

static unsigned lat_bucket(uint64_t ns)
{
    unsigned b = ns ? 63u - (unsigned)__builtin_clzll(ns) : 0;
    return b < SYNTH_LAT_BUCKETS ? b : SYNTH_LAT_BUCKETS - 1;
}

uint32_t synth_hdev_take(struct synth_hdev *d, struct synth_hqueue *q, struct synth_desc *in, uint32_t n)
{
    struct synth_vault_queue *vq;
    uint32_t start = q->sq.local, got, i;

    if (!d->has_vault)
        return synth_sq_dequeue_burst(&q->sq, in, n);
    /* Peek first: the vault must name every taken descriptor before we release its slot. */
    vq = synth_vault_queue(&d->vault, (uint32_t)(q - d->queues));
    got = synth_sq_dequeue_burst_noreserve(&q->sq, in, n);
    if (got == 0)
        return 0;
    for (i = 0; i < got; i++)
        vq->cookies[(start + i) & q->sq.mask] = in[i].cookie;
    __atomic_store_n(&vq->taken, start + got, __ATOMIC_RELEASE);
    synth_store_release_u32(&q->sq.core->cons, q->sq.local);
    return got;
}

/*
 * A full burst means the guest is streaming: while this burst is processed, bring over for writing
 * the completion entries it will fill, except the first line, which the guest is polling: taking
 * that one from it early would only make both sides fetch it twice. A single op (latency) takes
 * none of this.
 */
void synth_hq_prefetch_cq(struct synth_hqueue *q, uint32_t n)
{
    uint32_t i, per_line = 64u / q->cq.esz;

    if (n > q->cq.size)
        n = q->cq.size;
    for (i = 1; i < n; i++)
        if (((q->cq.local + i) & (per_line - 1)) == 0)
            __builtin_prefetch(synth_ring_slot(&q->cq, q->cq.local + i), 1, 3);
}

static unsigned poll_queue(struct synth_hdev *d, struct synth_hqueue *q, uint32_t burst)
{
    struct synth_desc in[SYNTH_MAX_BURST];
    struct synth_cpl out[SYNTH_MAX_BURST];
    int64_t room, put;
    uint64_t t0;
    uint32_t got;
    unsigned i;

    /* Take no more than the completion ring can hold, so completions never wait. */
    room = synth_ring_sp_free_count_want(&q->cq, burst);
    if (room < 0) {
        synth_hdev_mark_broken(d, SYNTH_DEVERR_CQ_INDEX);
        return 0;
    }
    if ((uint64_t)room < burst)
        burst = (uint32_t)room;
    if (burst == 0)
        return 0;
    got = synth_hdev_take(d, q, in, burst);
    if (got == 0)
        return 0;
    if (d->ops->prefetch) /* first, so that the lines are on their way while we do the rest */
        d->ops->prefetch(q, in, got);
    for (i = 0; i < got; i++) /* in case a peer's region fault cuts this pass short */
        q->inhand_cookie[i] = in[i].cookie;
    q->inhand = got;
    q->streaming = got == burst;
    if (q->streaming)
        synth_hq_prefetch_cq(q, got);
    t0 = ticks();
    d->ops->process(d, q, in, out, got);
    put = synth_cq_enqueue_burst(&q->cq, out, got);
    q->inhand = 0;
    if (put != (int64_t)got) {
        synth_hdev_mark_broken(d, SYNTH_DEVERR_CQ_INDEX);
        return got;
    }
    t0 = ticks_ns(ticks() - t0);
    i = lat_bucket(t0); /* SYNTH_STAT_ADD names its field twice: no side effects in it */
    SYNTH_STAT_ADD(d->stats.lat_hist[i], got);
    SYNTH_STAT_ADD(d->stats.busy_ns, t0);
    SYNTH_STAT_ADD(d->stats.ops, (uint64_t)got);
    SYNTH_STAT_ADD(q->stats.ops, (uint64_t)got);
    for (i = 0; i < got; i++) {
        uint32_t st = out[i].status < SYNTH_ST_MAX ? out[i].status : SYNTH_ST_DEVICE_ERROR;
        SYNTH_STAT_ADD(d->stats.status[st], 1);
        SYNTH_STAT_ADD(q->stats.status[st], 1);
    }
    return got;
}

int synth_hdev_get_queue_stats(const struct synth_hdev *d, uint32_t qi, struct synth_hqueue_stats *st)
{
    const uint64_t *src;
    uint64_t *dst = (uint64_t *)st;
    size_t i;

    if (qi >= d->layout.num_queues)
        return -EINVAL;
    src = (const uint64_t *)&d->queues[qi].stats;
    for (i = 0; i < sizeof(*st) / 8; i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    return 0;
}

/*
 * Quotas: token buckets refilled from the clock, holding about 1 ms of credit (and at least one
 * burst), so that a device at its rate still takes small bites of the worker. A device out of
 * tokens is skipped for the pass: its work waits in its own ring. The byte budget bounds the
 * burst too, through the device's average op size. Returns how many descriptors the device may
 * take per queue now (0: skip it). The quota itself may change under us (synth_hdev_set_quota):
 * it is read once per call.
 */
static uint32_t quota_allow(struct synth_hdev *d, uint32_t burst)
{
    struct synth_quota qt;
    uint64_t now, dt;

    qt.ops_per_s = __atomic_load_n(&d->quota.ops_per_s, __ATOMIC_RELAXED);
    qt.bytes_per_s = __atomic_load_n(&d->quota.bytes_per_s, __ATOMIC_RELAXED);
    qt.inflight = __atomic_load_n(&d->quota.inflight, __ATOMIC_RELAXED);
    if (qt.inflight && qt.inflight < burst)
        burst = qt.inflight;
    if (!qt.ops_per_s && !qt.bytes_per_s)
        return burst;
    now = synth_now_ns();
    dt = d->tokens_at ? now - d->tokens_at : 0;
    d->tokens_at = now;
    if (qt.ops_per_s) {
        double cap = (double)qt.ops_per_s / 1000.0 > burst ? (double)qt.ops_per_s / 1000.0 : burst;
        d->ops_tokens += (double)qt.ops_per_s * (double)dt / 1e9;
        if (d->ops_tokens > cap)
            d->ops_tokens = cap;
    }
    if (qt.bytes_per_s) {
        double one = d->avg_op_bytes > 1.0 ? d->avg_op_bytes : 1.0;
        double cap = (double)qt.bytes_per_s / 1000.0 > one ? (double)qt.bytes_per_s / 1000.0 : one;
        d->bytes_tokens += (double)qt.bytes_per_s * (double)dt / 1e9;
        if (d->bytes_tokens > cap)
            d->bytes_tokens = cap;
    }
    if ((qt.ops_per_s && d->ops_tokens < 1.0) || (qt.bytes_per_s && d->bytes_tokens <= 0.0)) {
        SYNTH_STAT_ADD(d->stats.throttled, 1);
        return 0;
    }
    if (qt.ops_per_s && d->ops_tokens < (double)burst)
        burst = (uint32_t)d->ops_tokens;
    if (qt.bytes_per_s && d->avg_op_bytes > 0.0) {
        double fit = d->bytes_tokens / d->avg_op_bytes;
        if (fit < (double)burst)
            burst = fit >= 1.0 ? (uint32_t)fit : 1;
    }
    return burst;
}

static void quota_charge(struct synth_hdev *d, unsigned ops, uint64_t bytes)
{
    if (ops) /* running average of bytes per op (for the byte budget's burst bound) */
        d->avg_op_bytes = d->avg_op_bytes * 0.875 + ((double)bytes / ops) * 0.125;
    /* The quota may change under us (synth_hdev_set_quota, another thread): load it as it stores. */
    if (__atomic_load_n(&d->quota.ops_per_s, __ATOMIC_RELAXED))
        d->ops_tokens -= (double)ops;
    if (__atomic_load_n(&d->quota.bytes_per_s, __ATOMIC_RELAXED))
        d->bytes_tokens -= (double)bytes;
}

void synth_hdev_set_quota(struct synth_hdev *d, const struct synth_quota *q)
{
    __atomic_store_n(&d->quota.ops_per_s, q->ops_per_s, __ATOMIC_RELAXED);
    __atomic_store_n(&d->quota.bytes_per_s, q->bytes_per_s, __ATOMIC_RELAXED);
    __atomic_store_n(&d->quota.inflight, q->inflight, __ATOMIC_RELAXED);
}

unsigned synth_hdev_poll_queue_generic(struct synth_hdev *d, struct synth_hqueue *q, uint32_t burst)
{
    return poll_queue(d, q, burst);
}

unsigned synth_hdev_poll_burst(struct synth_hdev *d, uint32_t burst)
{
    uint32_t epoch;
    unsigned i, n = 0;
    uint64_t work0;

    if (d->faulted)
        return 0;
    epoch = synth_load_acquire_u32(&d->hdr->drv_epoch);
    if ((d->resetting || epoch != d->acked_epoch) && !driver_reset_step(d))
        return 0; /* resetting: one queue's rings per pass */
    if (!d->active || d->broken)
        return 0;
    burst = quota_allow(d, burst);
    if (burst == 0)
        return 0;
    work0 = d->work_bytes;
    for (i = 0; i < d->layout.num_queues && !d->broken; i++)
        n += d->ops->poll_queue ? d->ops->poll_queue(d, &d->queues[i], i, burst)
                                : poll_queue(d, &d->queues[i], burst);
    if (d->ops->poll_device && !d->broken)
        n += d->ops->poll_device(d);
    quota_charge(d, n, d->work_bytes - work0);
    return n;
}

static int poll_once(struct synth_hdev *d, void *arg)
{
    (void)arg;
    return (int)synth_hdev_poll_burst(d, 32);
}

unsigned synth_hdev_poll(struct synth_hdev *d)
{
    int n = synth_region_call(d, poll_once, NULL);
    return n < 0 ? 0 : (unsigned)n;
}
