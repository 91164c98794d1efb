/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the DPDK poll-mode drivers over a synthetic device (crypto_synth, compress_synth;
 * docs/dpdk.md) share: the probe (devargs, claim, open, class check), the device's and the queue
 * pairs' bookkeeping (slots, the FIFO of ops finished without the device, stats, the reset), and
 * the data path's loops and mbuf copies, as inline templates each PMD fills with its callbacks.
 *
 * Each PMD links its own copy of synth_pmd.c; its version script keeps every spmd_* symbol inside
 * the .so, so the two PMDs loaded in one process never see each other's.
 *
 * A PMD's device private data starts with a struct spmd_dev and its slot with a struct spmd_slot:
 * the shared code sees only those. Its queue pairs are struct spmd_qp.
 */
#ifndef SYNTH_PMD_H
#define SYNTH_PMD_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <bus_vdev_driver.h>
#include <rte_common.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include "synth/guest.h"

#define SPMD_RETRIES 8u    /* RETRY / QUOTA completions submitted again before the op fails */
#define SPMD_TIMEOUT_MS 5000
#define SPMD_CPL_BURST 32u /* completions polled at once */

/* Who is speaking: the driver's name (the prefix of its log lines) and the words of its messages. */
struct spmd_id {
    const char *drv;           /* "crypto_synth" */
    int *logtype;
    const char *example;       /* a region file to name in the devargs message: "/dev/shm/crypto0" */
    const char *holders;       /* who else may hold the device: "a DPDK application or ..." */
};

/* What the probe requires of the device: its class, feature bits it must have accepted, and how
 * to say what it is not ("a compression device"). */
struct spmd_want {
    uint32_t dev_class;
    uint64_t features;
    const char *what;
};

struct spmd_dev {
    const struct spmd_id *id;
    struct synth_dev *dev;
    char spec[256];            /* region path or PCI address */
    int lock_fd;               /* the claim (an OFD lock on the region or BAR file), or -1 */
    pthread_mutex_t ctl_lock;
    struct synth_queue *ctl;   /* the control queue (sessions, streams), or NULL */
    uint16_t nqp;              /* queue pairs offered */
    uint16_t shared_ctl;       /* 1: ctl is queue pair 0's queue */
    uint32_t epoch;            /* bumped by each device reset */
    uint32_t ring_entries;
    uint64_t arena_size;
};

/* The counters of rte_cryptodev_stats and rte_compressdev_stats. */
struct spmd_stats {
    uint64_t enqueued_count;
    uint64_t dequeued_count;
    uint64_t enqueue_err_count;
    uint64_t dequeue_err_count;
};

/* Add the counters of src to a PMD's stats structure (the same four names). */
#define SPMD_STATS_ADD(dst, src)                          \
    do {                                                  \
        (dst)->enqueued_count += (src)->enqueued_count;   \
        (dst)->dequeued_count += (src)->dequeued_count;   \
        (dst)->enqueue_err_count += (src)->enqueue_err_count; \
        (dst)->dequeue_err_count += (src)->dequeue_err_count; \
    } while (0)

/* One operation on the device: the DPDK op, its arena buffer, its descriptor (kept for RETRY). */
struct spmd_slot {
    void *op;
    uint32_t buf_off;
    uint32_t buf_size;
    uint16_t tries;
    uint8_t busy;
    uint8_t pad;
    struct synth_desc desc;
};

struct spmd_qp {
    struct spmd_dev *d;
    struct synth_queue *q;
    uint16_t id;
    uint32_t nslots;           /* the device ring's entries */
    uint32_t nfree;
    uint32_t *free;            /* stack of free slot indices */
    void *slots;               /* nslots of slot_size bytes, each starting with a struct spmd_slot */
    size_t slot_size;
    /* Ops finished without the device (refused, or failed by a reset), returned by dequeue first. */
    void **done;
    uint32_t done_mask;
    uint32_t done_head, done_tail;
    uint32_t epoch;            /* the device epoch this queue's state belongs to */
    struct spmd_stats stats;
};

/* ---- control path (synth_pmd.c) ---- */

/* A line in the driver's log: "<drv>: <message>". */
void spmd_log(const struct spmd_id *id, uint32_t level, const char *fmt, ...) __rte_format_printf(3, 4);

/*
 * The probe up to the device's own checks: parse the devargs (region= or pci=, socket_id=), claim
 * the device, open it and check it is what w asks for. On success *out holds the open device and
 * its claim (spmd_adopt moves them into the PMD's private data; spmd_release lets them go) and
 * *info its description. -EINVAL (bad devargs), -EBUSY (another process holds the device), the
 * guest library's errno for a device that cannot be opened, -ENODEV (not what w asks for); each
 * logged with what to do.
 */
int spmd_open(const struct spmd_id *id, struct rte_vdev_device *vdev, const struct spmd_want *w, int *socket_id,
              struct spmd_dev *out, struct synth_dev_info *info);
/* Move what spmd_open opened into d (zeroed by the caller), leaving *from empty. */
void spmd_adopt(struct spmd_dev *d, struct spmd_dev *from);
/* Close the device (the backend drops its sessions or streams) and let the claim go. */
void spmd_release(struct spmd_dev *d);

/* 0, or -EINVAL (logged) if nb_qp is more queue pairs than the device offers. */
int spmd_configure(const struct spmd_dev *d, uint16_t nb_qp);
/* Reset the device if it needs it; every queue pair of qps then starts again (spmd_qp_restart with
 * lose). 0, or the reset's negative errno. */
int spmd_start(struct spmd_dev *d, void **qps, uint16_t nb_qp, void (*lose)(struct spmd_qp *qp, struct spmd_slot *s));

/* A queue pair on the device's queue qp_id, with a slot of slot_size bytes (starting with a struct
 * spmd_slot) per ring entry, every slot free. NULL if out of memory. */
struct spmd_qp *spmd_qp_create(struct spmd_dev *d, uint16_t qp_id, size_t slot_size, int socket_id);
/* Free *qp (may be NULL) and set it to NULL. */
void spmd_qp_free(void **qp);
/* Free every queue pair of qps, then close the device. */
void spmd_close(struct spmd_dev *d, void **qps, uint16_t nb_qp);
/* The queue pair's state after a device reset: the ops in flight are lost with it; each busy slot
 * goes to lose (which gives its op an error status and forgets what the PMD keeps beside it), its
 * op to the done FIFO; then every slot is free and zeroed, in the device's current epoch. */
void spmd_qp_restart(struct spmd_qp *qp, void (*lose)(struct spmd_qp *qp, struct spmd_slot *s));

void spmd_stats_sum(void *const *qps, uint16_t nb_qp, struct spmd_stats *out);
void spmd_stats_reset(void *const *qps, uint16_t nb_qp);

/* ---- data path (inline) ---- */

static inline uint32_t spmd_round(uint32_t n) { return (n + SYNTH_BUF_ALIGN - 1) & ~(SYNTH_BUF_ALIGN - 1); }

static inline struct spmd_slot *spmd_slot(const struct spmd_qp *qp, uint32_t idx)
{
    return (struct spmd_slot *)((char *)qp->slots + (size_t)idx * qp->slot_size);
}

/* Give slot idx back: its arena buffer freed, its index on the free stack. */
static inline void spmd_slot_put(struct spmd_qp *qp, uint32_t idx)
{
    struct spmd_slot *s = spmd_slot(qp, idx);

    synth_buf_free(qp->q, s->buf_off, s->buf_size);
    s->busy = 0;
    s->op = NULL;
    qp->free[qp->nfree++] = idx;
}

static inline int spmd_done_full(const struct spmd_qp *qp) { return qp->done_tail - qp->done_head > qp->done_mask; }

static inline void spmd_done_put(struct spmd_qp *qp, void *op) { qp->done[qp->done_tail++ & qp->done_mask] = op; }

/* Finished ops into ops[n..nb_ops): the new n. */
static inline uint16_t spmd_done_take(struct spmd_qp *qp, void **ops, uint16_t n, uint16_t nb_ops)
{
    while (n < nb_ops && qp->done_head != qp->done_tail)
        ops[n++] = qp->done[qp->done_head++ & qp->done_mask];
    return n;
}

/* Bytes in the chain's segments. Not pkt_len: some applications (crypto-perf) build chains by hand
 * and set only each segment's data_len. */
static inline uint64_t spmd_chain_len(const struct rte_mbuf *m)
{
    uint64_t n = 0;

    for (; m; m = m->next)
        n += m->data_len;
    return n;
}

/* Copy len bytes at offset off of the mbuf chain m to/from buf, handing each piece of the mbuf's
 * bytes to seen (if not NULL) as it passes. 0, or -1 if the chain is shorter. */
static __rte_always_inline int spmd_mbuf_copy(struct rte_mbuf *m, uint32_t off, uint32_t len, uint8_t *buf,
                                              int to_mbuf, void (*seen)(void *arg, const uint8_t *p, uint32_t n),
                                              void *arg)
{
    while (m && off >= m->data_len) {
        off -= m->data_len;
        m = m->next;
    }
    while (len) {
        uint32_t n;
        uint8_t *p;
        if (!m)
            return -1;
        n = RTE_MIN(len, (uint32_t)m->data_len - off);
        p = rte_pktmbuf_mtod_offset(m, uint8_t *, off);
        if (to_mbuf)
            memcpy(p, buf, n);
        else
            memcpy(buf, p, n);
        if (seen)
            seen(arg, p, n);
        buf += n;
        len -= n;
        off = 0;
        m = m->next;
    }
    return 0;
}

/* The slot of completion c, or NULL if there is nothing more to do with c: its cookie names no op
 * in flight (logged), or it said RETRY or QUOTA and went to the device again. */
static inline struct spmd_slot *spmd_cpl_slot(struct spmd_qp *qp, const struct synth_cpl *c)
{
    struct spmd_slot *s;

    if (c->cookie >= qp->nslots || !spmd_slot(qp, (uint32_t)c->cookie)->busy) {
        spmd_log(qp->d->id, RTE_LOG_ERR, "queue pair %u: completion for unknown cookie %" PRIu64, qp->id, c->cookie);
        return NULL;
    }
    s = spmd_slot(qp, (uint32_t)c->cookie);
    if ((c->status == SYNTH_ST_RETRY || c->status == SYNTH_ST_QUOTA) && s->tries < SPMD_RETRIES) {
        s->tries++;
        if (synth_q_submit_burst(qp->q, &s->desc, 1) == 1)
            return NULL;
    }
    return s;
}

/*
 * What a PMD's data path does for the loops below:
 * prepare: check op, fill its slot and descriptor. 0 (*idx: the slot), -ENOSPC (ring or arena
 *          full: leave the op with the application), or a positive status to finish it with;
 * finish:  finish op without the device, with status: 0, or -1 if the done FIFO is full;
 * unslot:  give slot idx back (spmd_slot_put and what the PMD keeps beside it);
 * complete: one completion: 1 if its op is finished (into *out), 0 if not (or unknown);
 * lose:    a busy slot the reset took (spmd_qp_restart).
 */
struct spmd_rxtx {
    int (*prepare)(struct spmd_qp *qp, void *op, uint32_t *idx);
    int (*finish)(struct spmd_qp *qp, void *op, uint8_t status);
    void (*unslot)(struct spmd_qp *qp, uint32_t idx);
    int (*complete)(struct spmd_qp *qp, const struct synth_cpl *c, void **out);
    void (*lose)(struct spmd_qp *qp, struct spmd_slot *s);
    uint8_t error;             /* the op status for a device error */
};

/* Enqueue: ops the device cannot take finish with an error status (they come back from the next
 * dequeue); the burst stops only when the ring or the arena is full. */
static __rte_always_inline uint16_t spmd_enqueue(struct spmd_qp *qp, void **ops, uint16_t nb_ops,
                                                 const struct spmd_rxtx *r)
{
    uint16_t i;

    for (i = 0; i < nb_ops; i++) {
        uint32_t idx;
        int rc = r->prepare(qp, ops[i], &idx);

        if (rc == -ENOSPC)
            break;
        if (rc > 0) {
            if (r->finish(qp, ops[i], (uint8_t)rc) < 0)
                break;
            qp->stats.enqueue_err_count++;
            continue;
        }
        if (synth_q_submit_burst(qp->q, &spmd_slot(qp, idx)->desc, 1) != 1) {
            r->unslot(qp, idx);
            if (!synth_dev_needs_reset(qp->d->dev))
                break;
            if (r->finish(qp, ops[i], r->error) < 0)
                break;
            qp->stats.enqueue_err_count++;
        }
    }
    qp->stats.enqueued_count += i;
    return i;
}

/* Dequeue: ops finished without the device first, then completions. */
static __rte_always_inline uint16_t spmd_dequeue(struct spmd_qp *qp, void **ops, uint16_t nb_ops,
                                                 const struct spmd_rxtx *r)
{
    struct synth_cpl cpl[SPMD_CPL_BURST];
    uint16_t n = spmd_done_take(qp, ops, 0, nb_ops);

    while (n < nb_ops) {
        unsigned want = RTE_MIN((unsigned)(nb_ops - n), SPMD_CPL_BURST), got = synth_q_poll_burst(qp->q, cpl, want);
        for (unsigned i = 0; i < got; i++)
            n += (uint16_t)r->complete(qp, &cpl[i], &ops[n]);
        if (got < want)
            break;
    }
    /* A device that needs a reset completes nothing more: what is in flight fails now. */
    if (n == 0 && qp->nfree != qp->nslots && synth_dev_needs_reset(qp->d->dev)) {
        spmd_qp_restart(qp, r->lose);
        n = spmd_done_take(qp, ops, n, nb_ops);
    }
    qp->stats.dequeued_count += n;
    return n;
}

#endif /* SYNTH_PMD_H */
