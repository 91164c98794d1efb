/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider's device: opened on first use (and again at most once a second while it is
 * missing), one queue per thread while there are enough (threads beyond that share queues, each
 * queue under its own lock), one synchronous AEAD operation at a time per queue.
 *
 * An operation the device does not finish within timeout_ms is left in flight: its arena buffer
 * stays allocated until its completion arrives (the cookie names the buffer), and while a queue
 * has such operations the next ones do not wait for the device at all. When the ring or the arena
 * is full, the operation runs in software. A device that needs a reset is reset here, holding
 * every queue's lock; a reset forgets every session and every buffer, which the epoch tells
 * contexts. Operations run in place in the arena: the device writes its output over the input
 * lines it has just read, so no other lines cross between the two cores.
 */
#include <errno.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "prov.h"
#include "synth/guest.h"

#define BUF_ALIGN SYNTH_BUF_ALIGN
#define TAG_AT 16u               /* per op in the arena: the IV (12 bytes) at 0, the tag at TAG_AT, */
#define HDR 32u                  /* the AAD at HDR and the data right after it: a small op in two lines */
#define RETRIES 8u
#define REOPEN_NS 1000000000ull  /* a missing device is looked for again after a second */
#define REFUSED_NS 100000000ull  /* a refused session is asked for again after 100 ms */

struct sp_slot {
    pthread_mutex_t lock;
    struct synth_queue *q;
    uint32_t stale;              /* operations left in flight by a timeout */
} __attribute__((aligned(64)));

/* A device session kept for the contexts to come: found by its key, shared, evicted when idle the
 * longest. An application that makes a context per operation then pays one round trip, not three
 * (create, the operation, destroy). */
#define CACHE_ENTRIES 64u

struct sp_cached {
    uint8_t key[32];
    uint16_t alg;     /* enum sp_alg_id */
    uint8_t taglen;
    uint8_t live;
    uint32_t id;
    uint32_t epoch;
    uint32_t refs;    /* contexts using it */
    uint64_t last;    /* when it was last let go */
};

struct sp_dev {
    struct synth_dev *dev;
    pthread_mutex_t cache_lock;
    uint64_t cache_tick;
    struct sp_cached cache[CACHE_ENTRIES];
    int lock_fd;                 /* the claim (an OFD lock), or -1 */
    unsigned fork_gen;           /* the process generation that opened it */
    uint32_t epoch;              /* bumped by each reset (under every slot's lock) */
    unsigned nq;
    uint32_t alg_mask;
    uint32_t max_aad;
    uint64_t arena_size;
    struct sp_slot slots[];
};

static atomic_uint next_thread;
static unsigned fork_gen; /* bumped in each forked child */

static void in_child(void) { __atomic_fetch_add(&fork_gen, 1, __ATOMIC_RELAXED); }

void sp_dev_init_once(void) { pthread_atfork(NULL, NULL, in_child); }

/*
 * A forked child must not drive its parent's device (both would produce into the same rings), nor
 * close it (that would tell the backend the parent is gone). It lets the mapping go and claims a
 * device of its own, which its parent's claim (inherited, but a new open is needed) keeps from
 * being the same one.
 */
static void forked(struct sp_prov *p, struct sp_dev *d)
{
    pthread_mutex_lock(&p->open_lock);
    if (p->dev == d) {
        __atomic_store_n(&p->dev, NULL, __ATOMIC_RELEASE);
        p->next_open_ns = 0;
        if (d->lock_fd >= 0)
            close(d->lock_fd); /* the parent's claim stays: it is the parent's open file too */
        /* d and its mapping stay allocated: the child's memory, never used again */
    }
    pthread_mutex_unlock(&p->open_lock);
}

static __thread unsigned thread_no; /* 1-based; 0: not yet numbered */

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* The coarse clock (a few ns, ticks of a few ms): enough to look for a missing device once a second. */
static uint64_t coarse_ns(void) { return clock_ns(CLOCK_MONOTONIC_COARSE); }

static uint32_t round_up(size_t n) { return (uint32_t)((n + BUF_ALIGN - 1) & ~(size_t)(BUF_ALIGN - 1)); }

static int open_one(struct sp_prov *p, const char *spec, struct synth_dev **out, int *lock_fd)
{
    struct synth_open_opts o = {.features = 0, .timeout_ms = p->timeout_ms};
    int rc;

    *lock_fd = synth_dev_claim(spec); /* auto skips the devices other processes hold */
    if (*lock_fd == -EBUSY)
        return -EBUSY;
    if (*lock_fd < 0)
        *lock_fd = -1; /* a file that cannot be locked: the device is used unclaimed */
    rc = strchr(spec, '/') ? synth_dev_open_path(spec, &o, out) : synth_dev_open_pci(spec, &o, out);
    if (rc < 0 && *lock_fd >= 0) {
        close(*lock_fd);
        *lock_fd = -1;
    }
    return rc;
}

/* "auto": the first crypto device on the PCI bus that no other process holds. */
static int open_auto(struct sp_prov *p, struct synth_dev **out, int *lock_fd, char *name, size_t name_len)
{
    char bdfs[16][16];
    int n = synth_pci_scan_class(bdfs, 16, SYNTH_CLASS_CRYPTO), rc = -ENODEV; /* others are not even opened */

    for (int i = 0; i < n && i < 16; i++) {
        struct synth_dev *d;
        struct synth_dev_info info;
        int r = open_one(p, bdfs[i], &d, lock_fd);
        if (r < 0) {
            if (r == -EBUSY)
                rc = -EBUSY;
            continue;
        }
        synth_dev_get_info(d, &info);
        if (info.dev_class == SYNTH_CLASS_CRYPTO) {
            snprintf(name, name_len, "%s", bdfs[i]);
            *out = d;
            return 0;
        }
        synth_dev_close(d);
        if (*lock_fd >= 0)
            close(*lock_fd);
    }
    return n < 0 ? n : rc;
}

static struct sp_dev *dev_open(struct sp_prov *p)
{
    struct synth_dev *d = NULL;
    struct synth_dev_info info;
    struct sp_dev *sd;
    char name[sizeof(p->dev_name)];
    int rc, lock_fd = -1;

    if (!strcmp(p->device, "none"))
        return NULL;
    if (!strcmp(p->device, "auto") || !p->device[0]) {
        rc = open_auto(p, &d, &lock_fd, name, sizeof(name));
    } else {
        snprintf(name, sizeof(name), "%s", p->device);
        rc = open_one(p, p->device, &d, &lock_fd);
    }
    if (rc < 0) {
        if (p->log)
            fprintf(stderr, "synth: no crypto device (%s: %s); the default provider does the work\n", p->device,
                    rc == -EBUSY ? "held by another process" : strerror(-rc));
        return NULL;
    }
    synth_dev_get_info(d, &info);
    if (info.dev_class != SYNTH_CLASS_CRYPTO || !info.num_queues ||
        !(info.features_accepted & SYNTH_CRYPTO_F_SESSIONS) || !(info.features_accepted & SYNTH_CRYPTO_F_OUT_OF_PLACE)) {
        if (p->log)
            fprintf(stderr, "synth: %s is not a crypto device this provider can use\n", name);
        goto fail;
    }
    sd = calloc(1, sizeof(*sd) + info.num_queues * sizeof(struct sp_slot));
    if (!sd)
        goto fail;
    sd->dev = d;
    pthread_mutex_init(&sd->cache_lock, NULL);
    sd->lock_fd = lock_fd;
    sd->fork_gen = fork_gen;
    sd->nq = info.num_queues;
    sd->alg_mask = info.crypto_alg_mask;
    sd->arena_size = info.arena_size;
    sd->max_aad = ((const struct synth_crypto_cfg *)synth_dev_class_cfg(d))->max_aad_len;
    for (unsigned i = 0; i < sd->nq; i++) {
        pthread_mutex_init(&sd->slots[i].lock, NULL);
        sd->slots[i].q = synth_dev_queue(d, i);
    }
    snprintf(p->dev_name, sizeof(p->dev_name), "%s", name);
    if (p->log)
        fprintf(stderr, "synth: using crypto device %s (%u queue%s, backend %s)\n", name, sd->nq,
                sd->nq == 1 ? "" : "s", info.backend);
    return sd;
fail:
    synth_dev_close(d);
    if (lock_fd >= 0)
        close(lock_fd);
    return NULL;
}

static struct sp_dev *dev_get(struct sp_prov *p)
{
    struct sp_dev *d = __atomic_load_n(&p->dev, __ATOMIC_ACQUIRE);
    uint64_t now;

    if (d && d->fork_gen == __atomic_load_n(&fork_gen, __ATOMIC_RELAXED))
        return d;
    if (d)
        forked(p, d);
    now = coarse_ns();
    if (now < __atomic_load_n(&p->next_open_ns, __ATOMIC_RELAXED))
        return NULL;
    pthread_mutex_lock(&p->open_lock);
    d = p->dev;
    if (!d && now >= p->next_open_ns) {
        d = dev_open(p);
        if (d)
            __atomic_store_n(&p->dev, d, __ATOMIC_RELEASE);
        else
            __atomic_store_n(&p->next_open_ns, now + REOPEN_NS, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&p->open_lock);
    return d;
}

const char *sp_dev_name(struct sp_prov *p) { return __atomic_load_n(&p->dev, __ATOMIC_ACQUIRE) ? p->dev_name : ""; }

static struct sp_slot *my_slot(struct sp_dev *d, unsigned *idx)
{
    if (!thread_no)
        thread_no = atomic_fetch_add(&next_thread, 1) + 1;
    *idx = (thread_no - 1) % d->nq;
    return &d->slots[*idx];
}

/* The completion's buffer: the cookie is (offset << 32 | size). */
static void free_by_cookie(struct synth_queue *q, uint64_t cookie)
{
    synth_buf_free(q, (uint32_t)(cookie >> 32), (uint32_t)cookie);
}

/* Take completions that are ready; free those of operations abandoned earlier. Returns 1 if
 * `mine` was among them (its completion copied to *c). */
static int reap(struct sp_slot *s, uint64_t mine, struct synth_cpl *c)
{
    struct synth_cpl cpl[16];
    unsigned n;
    int found = 0;

    while ((n = synth_q_poll_burst(s->q, cpl, 16)) > 0) {
        for (unsigned i = 0; i < n; i++) {
            if (mine && cpl[i].cookie == mine) {
                *c = cpl[i];
                found = 1;
            } else {
                free_by_cookie(s->q, cpl[i].cookie);
                if (s->stale)
                    s->stale--;
            }
        }
        if (found)
            break;
    }
    return found;
}

/* Reset the device if it still needs it (another thread may have done it). */
static void dev_reset(struct sp_prov *p, struct sp_dev *d)
{
    for (unsigned i = 0; i < d->nq; i++)
        pthread_mutex_lock(&d->slots[i].lock);
    if (synth_dev_needs_reset(d->dev)) {
        int rc = synth_dev_reset(d->dev);
        __atomic_fetch_add(&d->epoch, 1, __ATOMIC_RELEASE);
        for (unsigned i = 0; i < d->nq; i++)
            d->slots[i].stale = 0;
        if (p->log)
            fprintf(stderr, "synth: device %s reset (%s)\n", p->dev_name, rc < 0 ? strerror(-rc) : "ok");
    }
    for (unsigned i = d->nq; i-- > 0;)
        pthread_mutex_unlock(&d->slots[i].lock);
}

/* Submit d and wait for its completion, up to wait_ms (0: only what is already there). The
 * clock is read only when completions of abandoned operations came in between. */
static int run(struct sp_dev *d, struct sp_slot *s, struct synth_desc *desc, struct synth_cpl *c, int wait_ms)
{
    uint64_t start = 0;
    int left = wait_ms;

    if (synth_q_submit_burst(s->q, desc, 1) != 1)
        return synth_dev_needs_reset(d->dev) ? -(1 + SP_R_RESET) : -(1 + SP_R_RING_FULL);
    while (left > 0) {
        int rc = synth_q_wait(s->q, left);
        if (rc == -EIO)
            return -(1 + SP_R_RESET);
        if (reap(s, desc->cookie, c))
            return 0;
        if (rc == -ETIMEDOUT)
            break;
        if (!start)
            start = now_ns();
        left = wait_ms - (int)((now_ns() - start) / 1000000u);
    }
    if (reap(s, desc->cookie, c))
        return 0;
    s->stale++;
    return -(1 + SP_R_TIMEOUT);
}

static int sess_create(struct sp_dev *d, struct sp_slot *s, const struct sp_op *op,
                       uint8_t taglen)
{
    struct synth_crypto_session_params sp;
    const struct sp_alg *a = &sp_algs[op->alg];
    uint32_t id;
    int rc;

    if (op->sess->refused_ns && now_ns() < op->sess->refused_ns)
        return -(1 + SP_R_BUSY);
    memset(&sp, 0, sizeof(sp));
    sp.alg = a->synth_alg;
    sp.key_len = a->keylen;
    sp.iv_len = 12;
    sp.tag_len = taglen;
    memcpy(sp.key, op->key, a->keylen);
    rc = synth_crypto_session_create(s->q, &sp, &id);
    OPENSSL_cleanse(sp.key, sizeof(sp.key));
    if (rc == -EIO)
        return -(1 + SP_R_RESET);
    if (rc == -EBUSY || rc == -ETIMEDOUT)
        return -(1 + SP_R_TIMEOUT);
    if (rc == -ENOMEM)
        return -(1 + SP_R_RING_FULL);
    if (rc != 0) {
        op->sess->refused_ns = now_ns() + REFUSED_NS;
        return rc == SYNTH_ST_NOT_SUPPORTED || rc == SYNTH_ST_INVALID ? -(1 + SP_R_UNSUPPORTED) : -(1 + SP_R_BUSY);
    }
    op->sess->id = id;
    op->sess->epoch = d->epoch;
    op->sess->taglen = taglen;
    op->sess->live = 1;
    op->sess->cached = 0;
    op->sess->refused_ns = 0;
    return 0;
}

/* Let a context's session go: back to the cache, or destroyed when it is not in it. Slot lock held. */
static void sess_put(struct sp_dev *d, struct sp_slot *s, struct sp_sess *ss)
{
    if (!ss->live)
        return;
    ss->live = 0;
    if (ss->epoch != d->epoch)
        return; /* gone with a reset */
    if (ss->cached) {
        pthread_mutex_lock(&d->cache_lock);
        for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
            struct sp_cached *e = &d->cache[i];
            if (e->live && e->id == ss->id && e->epoch == ss->epoch) {
                if (e->refs)
                    e->refs--;
                e->last = ++d->cache_tick;
                break;
            }
        }
        pthread_mutex_unlock(&d->cache_lock);
        return;
    }
    if (!s->stale && !synth_dev_needs_reset(d->dev))
        synth_crypto_session_destroy(s->q, ss->id);
}

/* The device no longer knows this session (NO_SESSION): out of the cache, for every context. */
static void sess_forget(struct sp_dev *d, struct sp_sess *ss)
{
    pthread_mutex_lock(&d->cache_lock);
    for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
        struct sp_cached *e = &d->cache[i];
        if (e->live && e->id == ss->id && e->epoch == ss->epoch) {
            OPENSSL_cleanse(e, sizeof(*e));
            break;
        }
    }
    pthread_mutex_unlock(&d->cache_lock);
    ss->live = 0;
}

/* A session for this context's key and tag length: its own, one from the cache, or a new one
 * (which then goes into the cache, in a free entry or the idle one let go the longest ago). */
static int sess_get(struct sp_dev *d, struct sp_slot *s, const struct sp_op *op, uint8_t taglen)
{
    struct sp_sess *ss = op->sess;
    size_t keylen = sp_algs[op->alg].keylen;
    struct sp_cached *victim = NULL;
    uint32_t evict = 0;
    int rc, evicting = 0;

    sess_put(d, s, ss);
    pthread_mutex_lock(&d->cache_lock);
    for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
        struct sp_cached *e = &d->cache[i];
        if (e->live && e->epoch == d->epoch && e->alg == op->alg && e->taglen == taglen &&
            !CRYPTO_memcmp(e->key, op->key, keylen)) {
            e->refs++;
            ss->id = e->id;
            ss->epoch = e->epoch;
            ss->taglen = taglen;
            ss->live = ss->cached = 1;
            pthread_mutex_unlock(&d->cache_lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&d->cache_lock);
    rc = sess_create(d, s, op, taglen);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&d->cache_lock);
    for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
        struct sp_cached *e = &d->cache[i];
        if (!e->live || e->epoch != d->epoch) {
            victim = e;
            break;
        }
        if (!e->refs && (!victim || e->last < victim->last))
            victim = e;
    }
    if (victim) {
        if (victim->live && victim->epoch == d->epoch) {
            evicting = 1;
            evict = victim->id;
        }
        OPENSSL_cleanse(victim, sizeof(*victim));
        memcpy(victim->key, op->key, keylen);
        victim->alg = (uint16_t)op->alg;
        victim->taglen = taglen;
        victim->id = ss->id;
        victim->epoch = ss->epoch;
        victim->refs = 1;
        victim->live = 1;
        ss->cached = 1;
    }
    pthread_mutex_unlock(&d->cache_lock);
    if (evicting)
        synth_crypto_session_destroy(s->q, evict);
    return 0;
}

/* The operation on slot s, under its lock and the device's read lock. */
static int aead_locked(struct sp_prov *p, struct sp_dev *d, struct sp_slot *s, unsigned slot,
                       const struct sp_op *op)
{
    uint8_t taglen = op->enc ? 16 : (uint8_t)op->tag_len;
    uint32_t aad_sz = (uint32_t)op->aad_len; /* the data follows the AAD with no gap */
    uint64_t total = (uint64_t)HDR + aad_sz + round_up(op->len);
    struct synth_desc desc;
    struct synth_cpl c;
    uint8_t *a;
    int64_t off;
    int rc;

    if (synth_dev_needs_reset(d->dev))
        return -(1 + SP_R_RESET);
    if (s->stale)
        reap(s, 0, &c);
    if (s->stale && synth_q_inflight(s->q) == 0)
        s->stale = 0;
    if (total > d->arena_size)
        return -(1 + SP_R_UNSUPPORTED);
    if (!op->sess->live || op->sess->epoch != d->epoch || op->sess->taglen != taglen) {
        rc = sess_get(d, s, op, taglen);
        if (rc < 0)
            return rc;
    }
    off = synth_buf_alloc(s->q, (uint32_t)total);
    if (off < 0)
        return -(1 + SP_R_RING_FULL);
    a = synth_buf_ptr(s->q, (uint32_t)off);
    memcpy(a, op->iv, 12);
    if (!op->enc)
        memcpy(a + TAG_AT, op->tag, taglen);
    if (op->aad_len)
        memcpy(a + HDR, op->aad, op->aad_len);
    if (op->len)
        memcpy(a + HDR + aad_sz, op->in, op->len);
    synth_crypto_desc(&desc, op->enc ? SYNTH_OP_CRYPTO_ENCRYPT : SYNTH_OP_CRYPTO_DECRYPT, op->sess->id,
                      (uint32_t)off + HDR + aad_sz, (uint32_t)off + HDR + aad_sz, (uint32_t)op->len,
                      (uint32_t)off + HDR, (uint32_t)op->aad_len, (uint32_t)off, (uint32_t)off + TAG_AT,
                      (uint64_t)off << 32 | (uint32_t)total);
    for (unsigned tries = 0;; tries++) {
        /* Behind on earlier operations: submit, but only take what is already done. */
        rc = run(d, s, &desc, &c, s->stale ? 0 : p->timeout_ms);
        if (rc < 0) {
            if (rc != -(1 + SP_R_TIMEOUT))
                synth_buf_free(s->q, (uint32_t)off, (uint32_t)total);
            return rc; /* a timed-out buffer stays until its completion comes */
        }
        if (c.status == SYNTH_ST_RETRY && tries < RETRIES)
            continue;
        if (c.status == SYNTH_ST_NO_SESSION && tries < 1) {
            sess_forget(d, op->sess);
            rc = sess_get(d, s, op, taglen);
            if (rc < 0)
                break;
            desc.session = op->sess->id;
            continue;
        }
        break;
    }
    if (rc == 0) {
        switch (c.status) {
        case SYNTH_ST_OK:
            if (op->len)
                memcpy(op->out, a + HDR + aad_sz, op->len);
            if (op->enc)
                memcpy(op->tag, a + TAG_AT, 16);
            break;
        case SYNTH_ST_AUTH_FAILED:
            rc = SP_AUTH_FAILED;
            break;
        case SYNTH_ST_NOT_SUPPORTED:
        case SYNTH_ST_INVALID:
        case SYNTH_ST_NO_SPACE:
            rc = -(1 + SP_R_UNSUPPORTED);
            break;
        case SYNTH_ST_NO_SESSION:
            sess_forget(d, op->sess);
            rc = -(1 + SP_R_BUSY);
            break;
        default: /* QUOTA, RETRY after RETRIES, DEVICE_ERROR, NO_RESOURCES */
            rc = -(1 + SP_R_BUSY);
            break;
        }
    }
    if (rc >= 0 && op->hold && op->enc) {
        /* keep the buffer: the output stays at its offset until sp_hold_release */
        op->hold->live = 1;
        op->hold->slot = slot;
        op->hold->epoch = d->epoch;
        op->hold->off = (uint32_t)off;
        op->hold->size = (uint32_t)total;
        op->hold->src = (uint32_t)off + HDR + aad_sz;
        op->hold->len = (uint32_t)op->len;
    } else {
        synth_buf_free(s->q, (uint32_t)off, (uint32_t)total);
    }
    return rc;
}

int sp_dev_aead(struct sp_prov *p, const struct sp_op *op)
{
    struct sp_dev *d = dev_get(p);
    struct sp_slot *s;
    unsigned slot;
    int rc;

    if (!d)
        return -(1 + SP_R_NO_DEVICE);
    if (!(d->alg_mask & (1u << sp_algs[op->alg].synth_alg)) || op->aad_len > d->max_aad ||
        op->len > UINT32_MAX / 4)
        return -(1 + SP_R_UNSUPPORTED);
    s = my_slot(d, &slot);
    pthread_mutex_lock(&s->lock);
    rc = aead_locked(p, d, s, slot, op);
    pthread_mutex_unlock(&s->lock);
    if (rc == -(1 + SP_R_RESET))
        dev_reset(p, d);
    else if (rc >= 0)
        __atomic_fetch_add(&p->ops, 1, __ATOMIC_RELAXED);
    return rc;
}

void sp_dev_sess_drop(struct sp_prov *p, struct sp_sess *s)
{
    struct sp_dev *d = __atomic_load_n(&p->dev, __ATOMIC_ACQUIRE);
    unsigned slot;

    if (d && s->live) {
        struct sp_slot *sl = my_slot(d, &slot);
        pthread_mutex_lock(&sl->lock);
        sess_put(d, sl, s);
        pthread_mutex_unlock(&sl->lock);
    }
    s->live = 0;
}

const uint8_t *sp_hold_data(struct sp_prov *p, const struct sp_hold *h)
{
    struct sp_dev *d = __atomic_load_n(&p->dev, __ATOMIC_ACQUIRE);
    if (!d || !h->live || h->epoch != __atomic_load_n(&d->epoch, __ATOMIC_ACQUIRE))
        return NULL;
    return synth_buf_ptr(d->slots[h->slot].q, h->src);
}

void sp_hold_release(struct sp_prov *p, struct sp_hold *h)
{
    struct sp_dev *d = __atomic_load_n(&p->dev, __ATOMIC_ACQUIRE);

    if (!h->live)
        return;
    h->live = 0;
    if (!d)
        return;
    pthread_mutex_lock(&d->slots[h->slot].lock);
    if (h->epoch == d->epoch)
        synth_buf_free(d->slots[h->slot].q, h->off, h->size);
    pthread_mutex_unlock(&d->slots[h->slot].lock);
}

void sp_dev_close(struct sp_prov *p)
{
    struct sp_dev *d = p->dev;
    if (!d)
        return;
    p->dev = NULL;
    if (d->fork_gen == fork_gen) /* a forked child's copy is not its own to close */
        synth_dev_close(d->dev);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    for (unsigned i = 0; i < d->nq; i++)
        pthread_mutex_destroy(&d->slots[i].lock);
    OPENSSL_cleanse(d->cache, sizeof(d->cache));
    pthread_mutex_destroy(&d->cache_lock);
    free(d);
}
