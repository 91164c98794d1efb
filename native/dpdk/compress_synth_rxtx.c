/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compress_synth data path. Enqueue copies each op's input (one chunk of at most the device's
 * max_chunk bytes) into an arena buffer of the queue, with room after it for the output, and
 * submits a descriptor; dequeue takes completions, copies the output into the op's destination
 * mbufs and sets the op's status, consumed and produced. A descriptor's cookie is its slot in the
 * queue pair, which names the op.
 *
 * Stateless ops are one COMPRESS or DECOMPRESS each. A stateful op may take several STREAM ops:
 * the drains of output the device still holds from the stream's last op (MORE), then one per chunk
 * of input, each followed by its drains; dequeue submits the next one from the completion of the
 * last, and the op finishes when its input is consumed and nothing is pending (SUCCESS), or when
 * its destination is full (OUT_OF_SPACE_RECOVERABLE: the rest comes with the stream's next op).
 *
 * Checksums (CRC-32, Adler-32) are the PMD's: zlib's, over the uncompressed data as it is copied
 * (input to compress, output of decompress).
 *
 * Ops the device cannot take (bad parameters, a device that needs a reset) are not refused to the
 * application: they finish with an error status and come back from the next dequeue. An op is left
 * with the application (enqueue returns fewer) only when the ring or the arena is full, or when an
 * op of the same stream is still in flight.
 */
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include <rte_mbuf.h>

#include "compress_synth_pvt.h"

void cz_lose(struct spmd_qp *qp, struct spmd_slot *s)
{
    struct cz_slot *slot = (struct cz_slot *)s;
    struct rte_comp_op *op = s->op;

    if (op) {
        op->status = RTE_COMP_OP_STATUS_ERROR;
        op->consumed = op->produced = 0;
        qp->stats.dequeue_err_count++;
    }
    if (slot->st)
        slot->st->busy = 0;
}

/* Running checksums of uncompressed data. */
struct cz_ck {
    uint8_t type;
    uint32_t crc, adler;
};

static void cz_ck_update(void *arg, const uint8_t *p, uint32_t n)
{
    struct cz_ck *ck = arg;

    if (!ck || ck->type == RTE_COMP_CHECKSUM_NONE)
        return;
    if (ck->type != RTE_COMP_CHECKSUM_ADLER32)
        ck->crc = (uint32_t)crc32(ck->crc, p, n);
    if (ck->type != RTE_COMP_CHECKSUM_CRC32)
        ck->adler = (uint32_t)adler32(ck->adler, p, n);
}

static inline uint64_t cz_ck_value(const struct cz_ck *ck)
{
    switch (ck->type) {
    case RTE_COMP_CHECKSUM_CRC32:
        return ck->crc;
    case RTE_COMP_CHECKSUM_ADLER32:
        return ck->adler;
    case RTE_COMP_CHECKSUM_CRC32_ADLER32:
        return (uint64_t)ck->adler << 32 | ck->crc;
    default:
        return 0;
    }
}

/* Copy len bytes at offset off of the mbuf chain m to/from buf, updating ck (if not NULL) over the
 * mbuf's bytes. 0, or -1 if the chain is shorter. */
static inline int cz_mbuf_copy(struct rte_mbuf *m, uint32_t off, uint32_t len, uint8_t *buf, int to_mbuf,
                               struct cz_ck *ck)
{
    return spmd_mbuf_copy(m, off, len, buf, to_mbuf, cz_ck_update, ck);
}

static int cz_finish(struct spmd_qp *qp, void *arg, uint8_t status)
{
    struct rte_comp_op *op = arg;

    if (spmd_done_full(qp))
        return -1;
    op->status = status;
    op->consumed = op->produced = 0;
    spmd_done_put(qp, op);
    return 0;
}

static uint32_t cz_stream_flush(const struct cz_stream *st, enum rte_comp_flush_flag f)
{
    if (f == RTE_COMP_FLUSH_FINAL)
        return SYNTH_FLUSH_FINISH;
    return st->x.compress && f == RTE_COMP_FLUSH_SYNC ? SYNTH_FLUSH_SYNC : SYNTH_FLUSH_NONE;
}

/* Copy the next chunk of a stateful op's input into the slot's buffer and fill its FEED. */
static void cz_feed(struct spmd_qp *qp, struct cz_slot *slot, uint32_t idx)
{
    struct rte_comp_op *op = slot->s.op;
    struct cz_stream *st = slot->st;
    uint32_t rest = op->src.length - slot->consumed;
    struct cz_ck ck = {st->x.chksum, st->crc, st->adler};

    slot->chunk = RTE_MIN(rest, cz_qp_dev(qp)->cfg.max_chunk);
    cz_mbuf_copy(op->m_src, op->src.offset + slot->consumed, slot->chunk, synth_buf_ptr(qp->q, slot->src_off), 0,
                 st->x.compress ? &ck : NULL);
    st->crc = ck.crc;
    st->adler = ck.adler;
    st->flush = slot->chunk == rest ? cz_stream_flush(st, op->flush_flag) : SYNTH_FLUSH_NONE;
    slot->step = CZ_FEED;
    synth_comp_stream_desc(&slot->s.desc, st->id, st->flush, slot->src_off, slot->chunk, slot->dst_off + slot->produced,
                           slot->dst_cap - slot->produced, idx);
}

static void cz_drain(struct cz_slot *slot, uint32_t idx)
{
    slot->step = CZ_DRAIN;
    slot->chunk = 0;
    synth_comp_stream_desc(&slot->s.desc, slot->st->id, slot->st->flush, slot->src_off, 0,
                           slot->dst_off + slot->produced, slot->dst_cap - slot->produced, idx);
}

/* Check op, fill its arena buffer and first descriptor. 0, -ENOSPC (ring or arena full, or the
 * stream busy: leave it with the application), or a positive RTE_COMP_OP_STATUS_* to finish it
 * with. */
static int cz_prepare(struct spmd_qp *qp, void *arg, uint32_t *slot_out)
{
    struct rte_comp_op *op = arg;
    struct cz_dev *d = cz_qp_dev(qp);
    const struct cz_xform *x;
    struct cz_stream *st = NULL;
    struct cz_slot *slot;
    uint64_t src_room, dst_room, src_area, dst_cap;
    uint32_t idx;
    int64_t boff;

    if (op->op_type == RTE_COMP_OP_STATELESS) {
        x = op->private_xform;
        if (!x)
            return RTE_COMP_OP_STATUS_INVALID_ARGS;
    } else if (op->op_type == RTE_COMP_OP_STATEFUL) {
        st = op->stream;
        if (!st)
            return RTE_COMP_OP_STATUS_INVALID_ARGS;
        x = &st->x;
    } else {
        return RTE_COMP_OP_STATUS_INVALID_ARGS;
    }
    if (synth_dev_needs_reset(d->base.dev) || qp->epoch != __atomic_load_n(&d->base.epoch, __ATOMIC_ACQUIRE))
        return RTE_COMP_OP_STATUS_ERROR;
    if (!op->m_src || !op->m_dst)
        return RTE_COMP_OP_STATUS_INVALID_ARGS;
    src_room = spmd_chain_len(op->m_src);
    dst_room = spmd_chain_len(op->m_dst);
    if ((uint64_t)op->src.offset + op->src.length > src_room || op->dst.offset > dst_room)
        return RTE_COMP_OP_STATUS_INVALID_ARGS;
    dst_room -= op->dst.offset;
    if (!st) {
        /* One device op: the whole input at once, ending the deflate stream. */
        if (op->src.length > d->cfg.max_chunk ||
            (x->compress && op->flush_flag != RTE_COMP_FLUSH_FULL && op->flush_flag != RTE_COMP_FLUSH_FINAL))
            return RTE_COMP_OP_STATUS_INVALID_ARGS;
        src_area = op->src.length;
        dst_cap = x->compress ? RTE_MIN(dst_room, synth_comp_bound(op->src.length)) : dst_room;
    } else {
        if (st->epoch != qp->epoch)
            return RTE_COMP_OP_STATUS_ERROR; /* the reset took the stream's state with it */
        if (x->compress && op->flush_flag == RTE_COMP_FLUSH_FULL)
            return RTE_COMP_OP_STATUS_INVALID_ARGS; /* the device has no full flush */
        if (st->busy)
            return -ENOSPC;
        src_area = RTE_MIN(op->src.length, d->cfg.max_chunk);
        dst_cap = dst_room;
    }
    /* The output room goes into the arena as far as the arena (empty) can hold it. */
    src_area = spmd_round((uint32_t)src_area);
    if (src_area + SYNTH_BUF_ALIGN > d->base.arena_size)
        return RTE_COMP_OP_STATUS_INVALID_ARGS;
    dst_cap = RTE_MIN(dst_cap, RTE_MIN(d->base.arena_size - src_area, (uint64_t)UINT32_MAX / 2) &
                                   ~(uint64_t)(SYNTH_BUF_ALIGN - 1));
    if (!dst_cap)
        return RTE_COMP_OP_STATUS_OUT_OF_SPACE_TERMINATED;
    if (!qp->nfree)
        return -ENOSPC;
    boff = synth_buf_alloc(qp->q, (uint32_t)(src_area + spmd_round((uint32_t)dst_cap)));
    if (boff < 0)
        return -ENOSPC;
    idx = qp->free[--qp->nfree];
    slot = cz_qp_slot(qp, idx);
    memset(slot, 0, sizeof(*slot));
    slot->s.op = op;
    slot->st = st;
    slot->s.buf_off = (uint32_t)boff;
    slot->s.buf_size = (uint32_t)(src_area + spmd_round((uint32_t)dst_cap));
    slot->src_off = (uint32_t)boff;
    slot->dst_off = (uint32_t)(boff + src_area);
    slot->dst_cap = (uint32_t)dst_cap;
    slot->s.busy = 1;
    if (!st) {
        struct cz_ck ck = {x->chksum, 0, 1};

        cz_mbuf_copy(op->m_src, op->src.offset, op->src.length, synth_buf_ptr(qp->q, slot->src_off), 0,
                     x->compress ? &ck : NULL);
        op->output_chksum = x->compress ? cz_ck_value(&ck) : 0;
        slot->step = CZ_ONESHOT;
        slot->chunk = op->src.length;
        synth_comp_desc(&slot->s.desc, x->compress ? SYNTH_OP_COMP_COMPRESS : SYNTH_OP_COMP_DECOMPRESS,
                        SYNTH_CALG_DEFLATE, x->level, slot->src_off, op->src.length, slot->dst_off, slot->dst_cap, idx);
    } else {
        st->busy = 1;
        if (st->pending)
            cz_drain(slot, idx);
        else
            cz_feed(qp, slot, idx);
    }
    *slot_out = idx;
    return 0;
}

static void cz_unslot(struct spmd_qp *qp, uint32_t idx)
{
    struct cz_slot *s = cz_qp_slot(qp, idx);

    if (s->st)
        s->st->busy = 0;
    s->st = NULL;
    spmd_slot_put(qp, idx);
}

static uint8_t cz_status(uint16_t st)
{
    switch (st) {
    case SYNTH_ST_OK:
        return RTE_COMP_OP_STATUS_SUCCESS;
    case SYNTH_ST_NO_SPACE:
        return RTE_COMP_OP_STATUS_OUT_OF_SPACE_TERMINATED;
    case SYNTH_ST_INVALID:
    case SYNTH_ST_NOT_SUPPORTED:
        return RTE_COMP_OP_STATUS_INVALID_ARGS;
    default: /* BAD_DATA, LIMIT, NO_SESSION, DEVICE_ERROR, RETRY and QUOTA after SPMD_RETRIES, ... */
        return RTE_COMP_OP_STATUS_ERROR;
    }
}

/* Copy a finished op's output into its destination (checksumming decompressed data). */
static void cz_deliver(struct spmd_qp *qp, struct cz_slot *slot, const struct cz_xform *x)
{
    struct rte_comp_op *op = slot->s.op;
    struct cz_stream *st = slot->st;
    struct cz_ck ck = {x->chksum, st ? st->crc : 0, st ? st->adler : 1};

    cz_mbuf_copy(op->m_dst, op->dst.offset, slot->produced, synth_buf_ptr(qp->q, slot->dst_off), 1,
                 x->compress ? NULL : &ck);
    if (st) {
        st->crc = ck.crc;
        st->adler = ck.adler;
        op->output_chksum = cz_ck_value(&ck);
    } else if (!x->compress) {
        op->output_chksum = cz_ck_value(&ck);
    }
    op->produced = slot->produced;
    op->consumed = slot->consumed;
}

/* A completion of a stateful op: 1 if the op is finished (with *status), 0 if its next device op
 * is submitted. */
static int cz_stream_step(struct spmd_qp *qp, struct cz_slot *slot, const struct synth_cpl *c, uint32_t idx,
                          uint8_t *status)
{
    struct cz_stream *st = slot->st;
    struct rte_comp_op *op = slot->s.op;

    if (c->result > slot->dst_cap - slot->produced) {
        CZ_LOG(ERR, "queue pair %u: the device reports %u bytes written into %u", qp->id, c->result,
               slot->dst_cap - slot->produced);
        *status = RTE_COMP_OP_STATUS_ERROR;
        return 1;
    }
    slot->produced += c->result;
    if (slot->step == CZ_FEED)
        slot->consumed += slot->chunk;
    st->pending = !!(c->flags & SYNTH_CPL_F_MORE);
    if (c->flags & SYNTH_CPL_F_END)
        st->ended = 1;
    if (st->pending && slot->produced < slot->dst_cap)
        cz_drain(slot, idx);
    else if (st->pending)
        return *status = RTE_COMP_OP_STATUS_OUT_OF_SPACE_RECOVERABLE, 1;
    else if (slot->consumed < op->src.length && !st->ended && slot->produced < slot->dst_cap)
        cz_feed(qp, slot, idx);
    else if (slot->consumed < op->src.length && !st->ended)
        return *status = RTE_COMP_OP_STATUS_OUT_OF_SPACE_RECOVERABLE, 1;
    else
        return *status = RTE_COMP_OP_STATUS_SUCCESS, 1;
    slot->s.tries = 0;
    if (synth_q_submit_burst(qp->q, &slot->s.desc, 1) == 1)
        return 0;
    *status = RTE_COMP_OP_STATUS_ERROR;
    return 1;
}

/* One completion: 1 if its op is finished (into *out), 0 if it went on or is unknown. */
static int cz_complete(struct spmd_qp *qp, const struct synth_cpl *c, void **out)
{
    struct cz_slot *slot = (struct cz_slot *)spmd_cpl_slot(qp, c);
    struct rte_comp_op *op;
    const struct cz_xform *x;
    uint32_t idx = (uint32_t)c->cookie;
    uint8_t st;

    if (!slot)
        return 0;
    op = slot->s.op;
    x = slot->st ? &slot->st->x : op->private_xform;
    st = cz_status(c->status);
    if (st == RTE_COMP_OP_STATUS_SUCCESS && slot->st) {
        if (!cz_stream_step(qp, slot, c, idx, &st))
            return 0;
    } else if (st == RTE_COMP_OP_STATUS_SUCCESS) {
        if (c->result > slot->dst_cap) {
            CZ_LOG(ERR, "queue pair %u: the device reports %u bytes written into %u", qp->id, c->result,
                   slot->dst_cap);
            st = RTE_COMP_OP_STATUS_ERROR;
        }
        slot->produced = c->result;
        slot->consumed = op->src.length;
    }
    if (st == RTE_COMP_OP_STATUS_SUCCESS || st == RTE_COMP_OP_STATUS_OUT_OF_SPACE_RECOVERABLE) {
        cz_deliver(qp, slot, x);
    } else {
        op->consumed = op->produced = 0;
        qp->stats.dequeue_err_count++;
    }
    op->status = st;
    cz_unslot(qp, idx);
    *out = op;
    return 1;
}

static const struct spmd_rxtx cz_rxtx = {
    .prepare = cz_prepare,
    .finish = cz_finish,
    .unslot = cz_unslot,
    .complete = cz_complete,
    .lose = cz_lose,
    .error = RTE_COMP_OP_STATUS_ERROR,
};

uint16_t cz_enqueue_burst(void *qp, struct rte_comp_op **ops, uint16_t nb_ops)
{
    return spmd_enqueue(qp, (void **)ops, nb_ops, &cz_rxtx);
}

uint16_t cz_dequeue_burst(void *qp, struct rte_comp_op **ops, uint16_t nb_ops)
{
    return spmd_dequeue(qp, (void **)ops, nb_ops, &cz_rxtx);
}
