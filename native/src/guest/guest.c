/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest library: open a device region (file or PCI BAR2), handshake with the backend, drive the
 * rings, and hand out arena buffers. The host is the device: its header is checked before use, but
 * this side trusts the backend the way a driver trusts its hardware.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "synth/guest.h"
#include "guest_pvt.h"
#include "synth/layout.h"
#include "synth/ring_pvt.h"
#include "synth/clock_pvt.h"

#define DEFAULT_TIMEOUT_MS 5000
#define SPIN_NS 200000ull
#define MAX_NAP_NS 1000000ull

struct extent {
    uint32_t off;
    uint32_t len;
};

struct synth_queue {
    struct synth_dev *dev;
    struct synth_ring sq; /* guest produces */
    struct synth_ring cq; /* guest consumes */
    uint8_t *arena;
    uint64_t arena_size;
    uint32_t inflight;
    int broken;          /* the device wrote an impossible consumer index */
    /* Arena allocator: free extents sorted by offset (guest-local memory). */
    struct extent *free;
    uint32_t nfree;
    uint32_t cap;
};

struct synth_dev {
    int fd;
    uint8_t *base;
    uint64_t map_size;
    struct synth_dev_header *hdr;
    struct synth_layout layout;
    uint16_t dev_class;
    uint64_t features;
    uint32_t epoch;
    int32_t timeout_ms;
    struct synth_queue queues[];
};


static void nap(uint64_t ns)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};
    nanosleep(&ts, NULL);
}

/* ---- arena allocator ---- */

static int alloc_reset(struct synth_queue *q)
{
    q->nfree = 0;
    if (!q->free) {
        q->cap = 16;
        q->free = malloc(q->cap * sizeof(*q->free));
        if (!q->free)
            return -ENOMEM;
    }
    q->free[0].off = 0;
    q->free[0].len = (uint32_t)q->arena_size;
    q->nfree = 1;
    return 0;
}

int64_t synth_buf_alloc(struct synth_queue *q, uint32_t size)
{
    uint64_t need64 = ((uint64_t)size + SYNTH_BUF_ALIGN - 1) & ~(uint64_t)(SYNTH_BUF_ALIGN - 1);
    uint32_t i, need;

    if (size == 0 || size > q->arena_size)
        return -EINVAL;
    if (need64 > q->arena_size)
        return -ENOMEM;
    need = (uint32_t)need64;
    for (i = 0; i < q->nfree; i++) {
        struct extent *e = &q->free[i];
        if (e->len >= need) {
            uint32_t off = e->off;
            e->off += need;
            e->len -= need;
            if (e->len == 0) {
                memmove(e, e + 1, (q->nfree - i - 1) * sizeof(*e));
                q->nfree--;
            }
            return off;
        }
    }
    return -ENOMEM;
}

void synth_buf_free(struct synth_queue *q, uint32_t off, uint32_t size)
{
    uint64_t len64 = ((uint64_t)size + SYNTH_BUF_ALIGN - 1) & ~(uint64_t)(SYNTH_BUF_ALIGN - 1);
    uint32_t len = (uint32_t)len64, lo = 0, hi = q->nfree;

    if (size == 0 || len64 > q->arena_size || !synth_range_ok(q->arena_size, off, len))
        return;
    while (lo < hi) { /* first extent after off */
        uint32_t mid = (lo + hi) / 2;
        if (q->free[mid].off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && q->free[lo - 1].off + q->free[lo - 1].len == off) {
        q->free[lo - 1].len += len;
        if (lo < q->nfree && off + len == q->free[lo].off) {
            q->free[lo - 1].len += q->free[lo].len;
            memmove(&q->free[lo], &q->free[lo + 1], (q->nfree - lo - 1) * sizeof(*q->free));
            q->nfree--;
        }
        return;
    }
    if (lo < q->nfree && off + len == q->free[lo].off) {
        q->free[lo].off = off;
        q->free[lo].len += len;
        return;
    }
    if (q->nfree == q->cap) {
        struct extent *n = realloc(q->free, q->cap * 2 * sizeof(*n));
        if (!n)
            return; /* the buffer leaks rather than corrupting the list */
        q->free = n;
        q->cap *= 2;
    }
    memmove(&q->free[lo + 1], &q->free[lo], (q->nfree - lo) * sizeof(*q->free));
    q->free[lo].off = off;
    q->free[lo].len = len;
    q->nfree++;
}

void *synth_buf_ptr(struct synth_queue *q, uint32_t off)
{
    return off < q->arena_size ? q->arena + off : NULL;
}

uint64_t synth_q_arena_size(const struct synth_queue *q) { return q->arena_size; }
void *synth_q_arena(struct synth_queue *q) { return q->arena; }

/* ---- open, handshake, close ---- */

static uint64_t known_features(uint16_t dev_class)
{
    uint64_t f = SYNTH_F_RING_V1 | SYNTH_F_GENERATION | SYNTH_F_NOP;
    if (dev_class == SYNTH_CLASS_CRYPTO)
        f |= SYNTH_CRYPTO_F_SESSIONS | SYNTH_CRYPTO_F_OUT_OF_PLACE | SYNTH_CRYPTO_F_IV_GEN | SYNTH_CRYPTO_F_MAC_NO_IV;
    else if (dev_class == SYNTH_CLASS_COMPRESS)
        f |= SYNTH_COMP_F_STREAMS;
    return f;
}

static int handshake(struct synth_dev *dev, uint32_t drv_status)
{
    struct synth_dev_header *h = dev->hdr;
    uint64_t start = synthi_now_ns(), deadline = start + (uint64_t)dev->timeout_ms * 1000000ull, t, wait = 1000;
    uint32_t i, st;

    dev->epoch = synthi_load_relaxed_u32(&h->drv_epoch) + 1;
    if (dev->epoch == synthi_load_relaxed_u32(&h->acked_epoch))
        dev->epoch++;
    __atomic_store_n(&h->features_accepted, dev->features, __ATOMIC_RELAXED);
    synthi_store_release_u32(&h->drv_status, drv_status);
    synthi_store_release_u32(&h->drv_epoch, dev->epoch);

    for (i = 0; i < dev->layout.num_queues; i++) {
        struct synth_queue *q = &dev->queues[i];
        q->sq.local = q->sq.peer = 0;
        q->cq.local = q->cq.peer = 0;
        q->inflight = 0;
        q->broken = 0;
    }
    if (!drv_status)
        return 0;
    while (synthi_load_acquire_u32(&h->acked_epoch) != dev->epoch) {
        t = synthi_now_ns();
        if (t > deadline)
            return -ETIMEDOUT;
        nap(wait);
        if (wait < MAX_NAP_NS)
            wait *= 2;
    }
    st = synthi_load_acquire_u32(&h->dev_status);
    if (st & SYNTH_DEV_FAILED)
        return -EIO;
    if (st & SYNTH_DEV_NEEDS_RESET)
        return synthi_load_relaxed_u32(&h->dev_error) == SYNTH_DEVERR_FEATURES ? -ENOTSUP : -EIO;
    return 0;
}

static int open_mapping(int fd, uint64_t map_size, const struct synth_open_opts *opts,
                        struct synth_dev **out)
{
    struct synth_dev_header copy;
    struct synth_layout layout;
    struct synth_dev *dev;
    uint8_t *base;
    uint32_t i;
    int rc;

    if (map_size < SYNTH_HEADER_SIZE)
        return -EPROTO;
    base = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return -errno;
    memcpy(&copy, base, sizeof(copy));
    rc = synth_layout_check(&copy, map_size, &layout);
    if (rc < 0) {
        munmap(base, map_size);
        return rc;
    }
    dev = calloc(1, sizeof(*dev) + layout.num_queues * sizeof(struct synth_queue));
    if (!dev) {
        munmap(base, map_size);
        return -ENOMEM;
    }
    dev->fd = fd;
    dev->base = base;
    dev->map_size = map_size;
    dev->hdr = (struct synth_dev_header *)base;
    dev->layout = layout;
    dev->dev_class = copy.dev_class;
    dev->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    dev->features = (opts && opts->features ? opts->features : known_features(copy.dev_class)) &
                    copy.features_offered;
    for (i = 0; i < layout.num_queues; i++) {
        struct synth_queue *q = &dev->queues[i];
        const struct synth_queue_info *qi = &layout.queues[i];
        q->dev = dev;
        synthi_ring_init(&q->sq, base + qi->sq_off, layout.ring_entries, sizeof(struct synth_desc));
        synthi_ring_init(&q->cq, base + qi->cq_off, layout.ring_entries, sizeof(struct synth_cpl));
        q->arena = base + qi->arena_off;
        q->arena_size = qi->arena_size;
        if (alloc_reset(q) < 0) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    rc = handshake(dev, SYNTH_DRV_ACKNOWLEDGE | SYNTH_DRV_DRIVER | SYNTH_DRV_FEATURES_OK | SYNTH_DRV_DRIVER_OK);
    if (rc < 0)
        goto fail;
    *out = dev;
    return 0;

fail:
    for (i = 0; i < layout.num_queues; i++)
        free(dev->queues[i].free);
    munmap(base, map_size);
    free(dev);
    return rc;
}

int synth_dev_open_path(const char *path, const struct synth_open_opts *opts, struct synth_dev **out)
{
    struct stat st;
    int fd, rc;

    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rc = open_mapping(fd, (uint64_t)st.st_size, opts, out);
    if (rc < 0)
        close(fd);
    return rc;
}

static int read_hex_file(const char *dir, const char *name, unsigned long *val)
{
    char path[512], buf[32];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = 0;
    *val = strtoul(buf, NULL, 0);
    return 0;
}

static const char *pci_root(void)
{
    const char *r = getenv("LIBVIRT_SYNTH_SYSFS");
    return r && *r ? r : "/sys";
}

static int pci_open_bar(const char *bdf, int *fd_out, uint64_t *size_out)
{
    char dir[384], path[448];
    unsigned long vendor = 0, device = 0, enabled = 1;
    struct stat st;
    int fd;

    if (strchr(bdf, '/') || strlen(bdf) > 32)
        return -EINVAL;
    snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s", pci_root(), bdf);
    if (read_hex_file(dir, "vendor", &vendor) < 0 || read_hex_file(dir, "device", &device) < 0)
        return -ENODEV;
    if (vendor != SYNTH_PCI_VENDOR || device != SYNTH_PCI_DEVICE)
        return -ENODEV;
    if (read_hex_file(dir, "enable", &enabled) == 0 && !enabled) {
        snprintf(path, sizeof(path), "%s/enable", dir);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (write(fd, "1", 1) < 0) { /* mapping below reports the failure */
            }
            close(fd);
        }
    }
    snprintf(path, sizeof(path), "%s/resource2", dir);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || st.st_size <= 0) {
        close(fd);
        return -ENODEV;
    }
    *fd_out = fd;
    *size_out = (uint64_t)st.st_size;
    return 0;
}

int synth_dev_claim(const char *device)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    char path[512];
    int fd, rc;

    if (strchr(device, '/'))
        snprintf(path, sizeof(path), "%s", device);
    else
        snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/resource2", pci_root(), device);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return fd;
    rc = errno;
    close(fd);
    return rc == EAGAIN || rc == EACCES ? -EBUSY : -rc;
}

int synth_dev_open_pci(const char *bdf, const struct synth_open_opts *opts, struct synth_dev **out)
{
    uint64_t size;
    int fd, rc;

    rc = pci_open_bar(bdf, &fd, &size);
    if (rc < 0)
        return rc;
    rc = open_mapping(fd, size, opts, out);
    if (rc < 0)
        close(fd);
    return rc;
}

int synth_pci_scan(char (*bdfs)[16], unsigned max) { return synth_pci_scan_class(bdfs, max, 0); }

int synth_pci_scan_class(char (*bdfs)[16], unsigned max, uint16_t dev_class)
{
    char dir[320];
    struct dirent *de;
    unsigned found = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/bus/pci/devices", pci_root());
    d = opendir(dir);
    if (!d)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        uint64_t size;
        uint64_t magic = 0;
        uint16_t cls = 0;
        void *p;
        int fd;

        if (de->d_name[0] == '.' || strlen(de->d_name) >= 16)
            continue;
        if (pci_open_bar(de->d_name, &fd, &size) < 0)
            continue;
        p = mmap(NULL, SYNTH_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            memcpy(&magic, p, sizeof(magic));
            memcpy(&cls, (const uint8_t *)p + offsetof(struct synth_dev_header, dev_class), sizeof(cls));
            munmap(p, SYNTH_PAGE_SIZE);
        }
        close(fd);
        if (magic != SYNTH_MAGIC || (dev_class && cls != dev_class))
            continue;
        if (found < max)
            snprintf(bdfs[found], 16, "%s", de->d_name);
        found++;
    }
    closedir(d);
    return (int)found;
}

void synth_dev_close(struct synth_dev *dev)
{
    uint32_t i;
    if (!dev)
        return;
    handshake(dev, 0); /* tell the backend this driver is gone; no wait */
    for (i = 0; i < dev->layout.num_queues; i++)
        free(dev->queues[i].free);
    munmap(dev->base, dev->map_size);
    close(dev->fd);
    free(dev);
}

int synth_dev_reset(struct synth_dev *dev)
{
    uint32_t i;
    for (i = 0; i < dev->layout.num_queues; i++)
        if (alloc_reset(&dev->queues[i]) < 0)
            return -ENOMEM;
    return handshake(dev, SYNTH_DRV_ACKNOWLEDGE | SYNTH_DRV_DRIVER | SYNTH_DRV_FEATURES_OK | SYNTH_DRV_DRIVER_OK);
}

int synth_dev_needs_reset(const struct synth_dev *dev)
{
    return (synthi_load_acquire_u32(&dev->hdr->dev_status) & (SYNTH_DEV_NEEDS_RESET | SYNTH_DEV_FAILED)) != 0;
}

void synth_dev_get_info(const struct synth_dev *dev, struct synth_dev_info *info)
{
    const struct synth_dev_header *h = dev->hdr;
    memset(info, 0, sizeof(*info));
    info->dev_class = dev->dev_class;
    info->abi_major = h->abi_major;
    info->abi_minor = h->abi_minor;
    info->num_queues = (uint16_t)dev->layout.num_queues;
    info->ring_entries = dev->layout.ring_entries;
    info->generation = synthi_load_acquire_u32(&h->generation);
    info->region_size = dev->layout.region_size;
    info->arena_size = dev->layout.queues[0].arena_size;
    info->features_offered = h->features_offered;
    info->features_accepted = dev->features;
    info->dev_status = synthi_load_acquire_u32(&h->dev_status);
    info->dev_error = synthi_load_relaxed_u32(&h->dev_error);
    memcpy(info->name, h->device_name, sizeof(info->name) - 1);
    memcpy(info->backend, h->backend, sizeof(info->backend) - 1);
    if (dev->dev_class == SYNTH_CLASS_CRYPTO) {
        struct synth_crypto_cfg cfg;
        memcpy(&cfg, h->class_cfg, sizeof(cfg));
        info->crypto_alg_mask = cfg.alg_mask;
        info->crypto_max_sessions = cfg.max_sessions;
    }
}

const void *synth_dev_class_cfg(const struct synth_dev *dev) { return dev->hdr->class_cfg; }

struct synth_queue *synth_dev_queue(struct synth_dev *dev, unsigned idx)
{
    return idx < dev->layout.num_queues ? &dev->queues[idx] : NULL;
}

/* ---- rings ---- */

unsigned synth_q_submit_burst(struct synth_queue *q, const struct synth_desc *d, unsigned n)
{
    int64_t got = synthi_sq_enqueue_burst(&q->sq, d, n);
    if (got < 0)
        q->broken = 1;
    if (got <= 0)
        return 0;
    q->inflight += (uint32_t)got;
    return (unsigned)got;
}

unsigned synth_q_poll_burst(struct synth_queue *q, struct synth_cpl *c, unsigned n)
{
    uint32_t got = synthi_cq_dequeue_burst(&q->cq, c, n);
    q->inflight -= got < q->inflight ? got : q->inflight;
    return got;
}

unsigned synth_q_inflight(const struct synth_queue *q) { return q->inflight; }

int synth_q_wait(struct synth_queue *q, int timeout_ms)
{
    uint64_t start = 0, t, wait = 1000;
    unsigned spins = 0;

    if (timeout_ms <= 0)
        timeout_ms = q->dev->timeout_ms;
    for (;;) {
        if (synthi_cq_ready(&q->cq))
            return 0;
        if ((++spins & 255) != 0) {
            synthi_cpu_relax();
            continue;
        }
        if (synth_dev_needs_reset(q->dev))
            return -EIO;
        t = synthi_now_ns();
        if (!start)
            start = t;
        if (t - start > (uint64_t)timeout_ms * 1000000ull)
            return -ETIMEDOUT;
        if (t - start > SPIN_NS) {
            nap(wait);
            if (wait < MAX_NAP_NS)
                wait *= 2;
        }
    }
}

static int exec_once(struct synth_queue *q, const struct synth_desc *d, struct synth_cpl *c, int timeout_ms)
{
    int rc;
    if (q->inflight) /* busy, unless the device is past serving it anyway */
        return q->broken || synth_dev_needs_reset(q->dev) ? -EIO : -EBUSY;
    if (synth_q_submit_burst(q, d, 1) != 1)
        return q->broken || synth_dev_needs_reset(q->dev) ? -EIO : -EBUSY;
    rc = synth_q_wait(q, timeout_ms);
    if (rc < 0)
        return rc;
    return synth_q_poll_burst(q, c, 1) == 1 ? 0 : -EIO;
}

/* RETRY: not executed, or its result lost in a backend restart or a move to another host; the
 * same descriptor is submitted again (an IV_GEN ENCRYPT then gets a fresh IV). */
#define EXEC_RETRIES 8

int synth_q_exec(struct synth_queue *q, const struct synth_desc *d, struct synth_cpl *c, int timeout_ms)
{
    for (unsigned tries = 0;; tries++) {
        int rc = exec_once(q, d, c, timeout_ms);
        if (rc < 0 || c->status != SYNTH_ST_RETRY || tries == EXEC_RETRIES)
            return rc;
    }
}

/* ---- class objects (sessions, streams) ---- */

int synthi_q_create_from_params(struct synth_queue *q, uint16_t opcode, const void *params, uint32_t size,
                               uint32_t *id)
{
    struct synth_desc d;
    struct synth_cpl c;
    int64_t off = synth_buf_alloc(q, size);
    int rc;

    if (off < 0)
        return (int)off;
    memset(&d, 0, sizeof(d));
    d.opcode = opcode;
    d.src_off = (uint32_t)off;
    d.src_len = size;
    /* Not synth_q_exec's retry: the backend may have wiped the key before the RETRY, so each
     * attempt copies the parameters again. */
    for (unsigned tries = 0;; tries++) {
        memcpy(q->arena + off, params, size);
        rc = exec_once(q, &d, &c, 0);
        if (rc < 0 || c.status != SYNTH_ST_RETRY || tries == EXEC_RETRIES)
            break;
    }
    /* A crypto backend wipes the key; wipe our copy too, whatever happened. */
    memset(q->arena + off, 0, size);
    synth_buf_free(q, (uint32_t)off, size);
    if (rc < 0)
        return rc;
    if (c.status != SYNTH_ST_OK)
        return (int)c.status;
    *id = c.result;
    return 0;
}

int synthi_q_destroy_by_id(struct synth_queue *q, uint16_t opcode, uint32_t id)
{
    struct synth_desc d;
    struct synth_cpl c;
    int rc;

    memset(&d, 0, sizeof(d));
    d.opcode = opcode;
    d.session = id;
    rc = synth_q_exec(q, &d, &c, 0);
    return rc < 0 ? rc : (int)c.status;
}

/* ---- crypto ---- */

int synth_crypto_session_create(struct synth_queue *q, const struct synth_crypto_session_params *p,
                                uint32_t *id)
{
    return synthi_q_create_from_params(q, SYNTH_OP_CRYPTO_SESSION_CREATE, p, sizeof(*p), id);
}

int synth_crypto_session_destroy(struct synth_queue *q, uint32_t id)
{
    return synthi_q_destroy_by_id(q, SYNTH_OP_CRYPTO_SESSION_DESTROY, id);
}

int synth_crypto_op(struct synth_queue *q, uint16_t opcode, uint32_t session, uint32_t src_off,
                    uint32_t dst_off, uint32_t len, uint32_t aad_off, uint32_t aad_len,
                    uint32_t iv_off, uint32_t tag_off)
{
    struct synth_desc d;
    struct synth_cpl c;
    int rc;

    synth_crypto_desc(&d, opcode, session, src_off, dst_off, len, aad_off, aad_len, iv_off, tag_off, 0);
    rc = synth_q_exec(q, &d, &c, 0);
    return rc < 0 ? rc : (int)c.status;
}

const char *synth_status_str(uint32_t status)
{
    static const char *const names[SYNTH_ST_MAX] = {
        [SYNTH_ST_OK] = "ok",
        [SYNTH_ST_INVALID] = "invalid argument",
        [SYNTH_ST_AUTH_FAILED] = "authentication failed",
        [SYNTH_ST_NO_SESSION] = "unknown session",
        [SYNTH_ST_NOT_SUPPORTED] = "not supported",
        [SYNTH_ST_NO_SPACE] = "output too small",
        [SYNTH_ST_NO_RESOURCES] = "no resources",
        [SYNTH_ST_RETRY] = "retry",
        [SYNTH_ST_BAD_DATA] = "bad data",
        [SYNTH_ST_DEVICE_ERROR] = "device error",
        [SYNTH_ST_LIMIT] = "limit exceeded",
        [SYNTH_ST_QUOTA] = "quota exhausted",
    };
    return status < SYNTH_ST_MAX ? names[status] : "unknown status";
}
