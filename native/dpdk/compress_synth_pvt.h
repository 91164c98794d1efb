/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compress_synth: the DPDK compressdev poll-mode driver over a synthetic compression device
 * (docs/dpdk.md). Private to the driver: its device, slot, transform and stream structures (the
 * rest is synth_pmd.h).
 *
 * Threading: DPDK's: a queue pair is used by one thread at a time. Streams are created and
 * destroyed through a control queue of the device that no queue pair uses, under ctl_lock, so
 * that they never wait behind (or mix with) traffic. A device with one queue (or without streams)
 * has no control queue: its queue pair 0 then also carries the streams, which can be created only
 * while that queue pair has nothing in flight (else -EBUSY).
 */
#ifndef COMPRESS_SYNTH_PVT_H
#define COMPRESS_SYNTH_PVT_H

#include <pthread.h>
#include <stdint.h>

#include <rte_compressdev_pmd.h>

#include "synth/guest.h"
#include "synth_pmd.h"

#define CZ_WINDOW 15u      /* the device's deflate uses a 32 KiB window */

extern int cz_logtype;
#define CZ_LOG(level, fmt, ...) \
    rte_log(RTE_LOG_##level, cz_logtype, "compress_synth: " fmt "\n", ##__VA_ARGS__)

/* What a private xform or a stream was made from, checked. */
struct cz_xform {
    uint8_t compress;          /* 1: compress, 0: decompress */
    uint8_t chksum;            /* enum rte_comp_checksum_type */
    uint16_t pad;
    int32_t level;             /* the device's level (0: its default) */
};

/* A stream (rte_compressdev_stream_create): a device stream and what the PMD keeps about it. */
struct cz_stream {
    struct cz_xform x;
    uint32_t id;               /* device stream id */
    uint32_t epoch;            /* the device epoch it was created in: a reset loses it */
    uint32_t flush;            /* SYNTH_FLUSH_* of the last chunk fed (drains keep it) */
    uint8_t pending;           /* the device holds output (MORE): drain before new input */
    uint8_t ended;             /* END seen */
    uint8_t busy;              /* an op of this stream is in flight */
    uint8_t pad;
    uint32_t crc;              /* checksums of the uncompressed data so far */
    uint32_t adler;
};

enum cz_step { CZ_ONESHOT, CZ_FEED, CZ_DRAIN };

/* One operation on the device (s.op: a struct rte_comp_op) and where it stands. */
struct cz_slot {
    struct spmd_slot s;
    struct cz_stream *st;      /* stateful ops */
    uint32_t src_off;          /* arena offset of the input (one chunk) */
    uint32_t dst_off;          /* arena offset of the output */
    uint32_t dst_cap;          /* room for output in the arena */
    uint32_t produced;         /* output written so far at dst_off */
    uint32_t consumed;         /* input handed to the device so far */
    uint32_t chunk;            /* input of the op in flight */
    uint8_t step;              /* enum cz_step of the op in flight */
};

struct cz_dev {
    struct spmd_dev base;      /* ctl: where streams are created and destroyed (NULL: no streams) */
    struct synth_comp_cfg cfg; /* the device's configuration block, read at probe */
    struct rte_compressdev_capabilities caps[2];
};

/* The queue pairs are struct spmd_qp (their done FIFO holds struct rte_comp_op); their device and
 * slots are these. */
static inline struct cz_dev *cz_qp_dev(const struct spmd_qp *qp) { return (struct cz_dev *)qp->d; }
static inline struct cz_slot *cz_qp_slot(const struct spmd_qp *qp, uint32_t idx)
{
    return (struct cz_slot *)spmd_slot(qp, idx);
}

extern struct rte_compressdev_ops cz_ops;

/* The capability list from the device's configuration, into d->caps. */
void cz_fill_caps(struct cz_dev *d, int streams);

uint16_t cz_enqueue_burst(void *qp, struct rte_comp_op **ops, uint16_t nb_ops);
uint16_t cz_dequeue_burst(void *qp, struct rte_comp_op **ops, uint16_t nb_ops);

/* A slot a device reset took: its op fails, its stream is free again (spmd_qp_restart). */
void cz_lose(struct spmd_qp *qp, struct spmd_slot *s);

#endif /* COMPRESS_SYNTH_PVT_H */
