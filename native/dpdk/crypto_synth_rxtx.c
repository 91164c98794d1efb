/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_synth data path: enqueue copies each op's data (and its IV, AAD and, to decrypt, the
 * expected digest) into an arena buffer of the queue and submits a descriptor; dequeue takes
 * completions, copies the output (and, encrypting, the digest) back into the op's mbufs and sets
 * the op's status. A descriptor's cookie is its slot in the queue pair, which names the op.
 *
 * Ops the device cannot take (bad parameters, a device that needs a reset) are not refused to the
 * application: they finish with an error status and come back from the next dequeue. An op is left
 * with the application (enqueue returns fewer) only when the ring or the arena is full.
 */
#include <errno.h>
#include <string.h>

#include <rte_mbuf.h>

#include "crypto_synth_pvt.h"

static inline uint32_t cs_round(uint32_t n) { return (n + SYNTH_BUF_ALIGN - 1) & ~(SYNTH_BUF_ALIGN - 1); }

void cs_qp_restart(struct cs_dev *d, struct cs_qp *qp)
{
    /* In-flight ops are lost with the reset: they finish with an error. */
    for (uint32_t i = 0; i < qp->nslots; i++) {
        struct cs_slot *s = &qp->slots[i];
        if (s->busy && s->op) {
            s->op->status = RTE_CRYPTO_OP_STATUS_ERROR;
            qp->done[qp->done_tail++ & qp->done_mask] = s->op;
        }
        memset(s, 0, sizeof(*s));
    }
    qp->nfree = qp->nslots;
    for (uint32_t i = 0; i < qp->nslots; i++)
        qp->free[i] = qp->nslots - 1 - i;
    qp->epoch = __atomic_load_n(&d->epoch, __ATOMIC_ACQUIRE);
}

/* Copy len bytes at offset off of the mbuf chain m to/from buf. 0, or -1 if the chain is shorter. */
static int cs_mbuf_copy(struct rte_mbuf *m, uint32_t off, uint32_t len, uint8_t *buf, int to_mbuf)
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
        buf += n;
        len -= n;
        off = 0;
        m = m->next;
    }
    return 0;
}

/* Bytes in the chain's segments. Not pkt_len: some applications (crypto-perf) build chains by hand
 * and set only each segment's data_len. */
static inline uint64_t cs_chain_len(const struct rte_mbuf *m)
{
    uint64_t n = 0;

    for (; m; m = m->next)
        n += m->data_len;
    return n;
}

static inline int cs_done_push(struct cs_qp *qp, struct rte_crypto_op *op, uint8_t status)
{
    if (qp->done_tail - qp->done_head > qp->done_mask)
        return -1;
    op->status = status;
    qp->done[qp->done_tail++ & qp->done_mask] = op;
    return 0;
}

/* What one op asks of the device, whichever kind of session it has. */
struct cs_req {
    uint32_t off, len;        /* the data (cipher) range in the mbufs */
    uint32_t aad_len;
    const uint8_t *aad;       /* in host memory (AEAD), or NULL: in m_src at aad_at (chain) */
    uint32_t aad_at;
    uint8_t *digest;
};

/* The op's ranges: 0, or RTE_CRYPTO_OP_STATUS_INVALID_ARGS. A chain authenticates auth.data, which
 * must end where cipher.data ends: the bytes before the cipher range are the device's AAD. */
static int cs_request(const struct cs_dev *d, const struct cs_sess *s, const struct rte_crypto_sym_op *sym,
                      struct cs_req *r)
{
    memset(r, 0, sizeof(*r));
    if (!s->chain) {
        r->off = sym->aead.data.offset;
        r->len = sym->aead.data.length;
        r->aad_len = s->aad_len;
        r->aad = sym->aead.aad.data;
        r->digest = sym->aead.digest.data;
        return (s->aad_len && !r->aad) || !r->digest ? RTE_CRYPTO_OP_STATUS_INVALID_ARGS : 0;
    }
    r->off = sym->cipher.data.offset;
    r->len = sym->cipher.data.length;
    r->digest = sym->auth.digest.data;
    if (!r->digest || (r->len % 16) != 0 || sym->auth.data.offset > r->off ||
        (uint64_t)sym->auth.data.offset + sym->auth.data.length != (uint64_t)r->off + r->len ||
        r->off - sym->auth.data.offset > d->max_aad)
        return RTE_CRYPTO_OP_STATUS_INVALID_ARGS;
    r->aad_at = sym->auth.data.offset;
    r->aad_len = r->off - r->aad_at;
    return 0;
}

/* Check op, fill its arena buffer and descriptor. 0, -ENOSPC (ring or arena full: leave it with the
 * application), or a positive RTE_CRYPTO_OP_STATUS_* to finish it with. */
static int cs_prepare(struct cs_qp *qp, struct rte_crypto_op *op, uint32_t *slot_out)
{
    struct cs_dev *d = qp->d;
    struct rte_crypto_sym_op *sym = op->sym;
    struct cs_sess *s;
    struct rte_mbuf *dst;
    struct cs_slot *slot;
    struct cs_req r;
    uint32_t len, off, aad_sz, total, idx;
    uint8_t *a;
    int64_t boff;
    int rc;

    if (op->type != RTE_CRYPTO_OP_TYPE_SYMMETRIC || op->sess_type != RTE_CRYPTO_OP_WITH_SESSION || !sym->session)
        return RTE_CRYPTO_OP_STATUS_INVALID_SESSION;
    if (synth_dev_needs_reset(d->dev) || qp->epoch != __atomic_load_n(&d->epoch, __ATOMIC_ACQUIRE))
        return RTE_CRYPTO_OP_STATUS_ERROR;
    s = CRYPTODEV_GET_SYM_SESS_PRIV(sym->session);
    if (!s->live || s->epoch != qp->epoch) {
        if (cs_sess_refresh(d, s) < 0)
            return RTE_CRYPTO_OP_STATUS_INVALID_SESSION;
    }
    rc = cs_request(d, s, sym, &r);
    if (rc)
        return rc;
    len = r.len;
    off = r.off;
    dst = sym->m_dst ? sym->m_dst : sym->m_src;
    if (!sym->m_src || (uint64_t)off + len > cs_chain_len(sym->m_src) ||
        (dst != sym->m_src && (uint64_t)off + len > cs_chain_len(dst)))
        return RTE_CRYPTO_OP_STATUS_INVALID_ARGS;
    aad_sz = cs_round(r.aad_len);
    if ((uint64_t)CS_HDR + aad_sz + cs_round(len) > d->arena_size || len > UINT32_MAX / 2)
        return RTE_CRYPTO_OP_STATUS_INVALID_ARGS;
    total = CS_HDR + aad_sz + cs_round(len);
    if (!qp->nfree)
        return -ENOSPC;
    boff = synth_buf_alloc(qp->q, total);
    if (boff < 0)
        return -ENOSPC;
    idx = qp->free[--qp->nfree];
    slot = &qp->slots[idx];
    a = synth_buf_ptr(qp->q, (uint32_t)boff);
    memcpy(a, rte_crypto_op_ctod_offset(op, uint8_t *, s->iv_offset), s->params.iv_len);
    if (!s->enc)
        memcpy(a + CS_TAG_OFF, r.digest, s->tag_len);
    if (r.aad)
        memcpy(a + CS_HDR, r.aad, r.aad_len);
    if ((!r.aad && cs_mbuf_copy(sym->m_src, r.aad_at, r.aad_len, a + CS_HDR, 0) < 0) ||
        cs_mbuf_copy(sym->m_src, off, len, a + CS_HDR + aad_sz, 0) < 0) {
        synth_buf_free(qp->q, (uint32_t)boff, total);
        qp->free[qp->nfree++] = idx;
        return RTE_CRYPTO_OP_STATUS_INVALID_ARGS;
    }
    slot->op = op;
    slot->digest = s->enc ? r.digest : NULL;
    slot->buf_off = (uint32_t)boff;
    slot->buf_size = total;
    slot->data_off = (uint32_t)boff + CS_HDR + aad_sz;
    slot->out_off = off;
    slot->out_len = len;
    slot->tries = 0;
    slot->tag_len = s->tag_len;
    slot->busy = 1;
    synth_crypto_desc(&slot->desc, s->enc ? SYNTH_OP_CRYPTO_ENCRYPT : SYNTH_OP_CRYPTO_DECRYPT, s->id,
                      slot->data_off, slot->data_off, len, (uint32_t)boff + CS_HDR, r.aad_len, (uint32_t)boff,
                      (uint32_t)boff + CS_TAG_OFF, idx);
    *slot_out = idx;
    return 0;
}

static void cs_slot_free(struct cs_qp *qp, uint32_t idx)
{
    struct cs_slot *s = &qp->slots[idx];

    synth_buf_free(qp->q, s->buf_off, s->buf_size);
    s->busy = 0;
    s->op = NULL;
    qp->free[qp->nfree++] = idx;
}

uint16_t cs_enqueue_burst(void *arg, struct rte_crypto_op **ops, uint16_t nb_ops)
{
    struct cs_qp *qp = arg;
    uint16_t i;

    for (i = 0; i < nb_ops; i++) {
        uint32_t idx;
        int rc = cs_prepare(qp, ops[i], &idx);

        if (rc == -ENOSPC)
            break;
        if (rc > 0) {
            if (cs_done_push(qp, ops[i], (uint8_t)rc) < 0)
                break;
            qp->stats.enqueue_err_count++;
            continue;
        }
        if (synth_q_submit_burst(qp->q, &qp->slots[idx].desc, 1) != 1) {
            cs_slot_free(qp, idx);
            if (!synth_dev_needs_reset(qp->d->dev))
                break;
            if (cs_done_push(qp, ops[i], RTE_CRYPTO_OP_STATUS_ERROR) < 0)
                break;
            qp->stats.enqueue_err_count++;
        }
    }
    qp->stats.enqueued_count += i;
    return i;
}

static uint8_t cs_status(uint16_t st)
{
    switch (st) {
    case SYNTH_ST_OK:
        return RTE_CRYPTO_OP_STATUS_SUCCESS;
    case SYNTH_ST_AUTH_FAILED:
        return RTE_CRYPTO_OP_STATUS_AUTH_FAILED;
    case SYNTH_ST_NO_SESSION:
        return RTE_CRYPTO_OP_STATUS_INVALID_SESSION;
    case SYNTH_ST_INVALID:
    case SYNTH_ST_NOT_SUPPORTED:
    case SYNTH_ST_NO_SPACE:
        return RTE_CRYPTO_OP_STATUS_INVALID_ARGS;
    default: /* DEVICE_ERROR, NO_RESOURCES, QUOTA, RETRY after CS_RETRIES, ... */
        return RTE_CRYPTO_OP_STATUS_ERROR;
    }
}

/* One completion: 1 if its op is finished (into *out), 0 if it was submitted again or is unknown. */
static int cs_complete(struct cs_qp *qp, const struct synth_cpl *c, struct rte_crypto_op **out)
{
    struct cs_slot *slot;
    struct rte_crypto_op *op;
    struct cs_sess *s;
    uint8_t st;

    if (c->cookie >= qp->nslots || !qp->slots[c->cookie].busy) {
        CS_LOG(ERR, "queue pair %u: completion for unknown cookie %" PRIu64, qp->id, c->cookie);
        return 0;
    }
    slot = &qp->slots[c->cookie];
    op = slot->op;
    if ((c->status == SYNTH_ST_RETRY || c->status == SYNTH_ST_QUOTA) && slot->tries < CS_RETRIES) {
        slot->tries++;
        if (synth_q_submit_burst(qp->q, &slot->desc, 1) == 1)
            return 0;
    }
    st = cs_status(c->status);
    if (st == RTE_CRYPTO_OP_STATUS_SUCCESS) {
        const uint8_t *a = synth_buf_ptr(qp->q, slot->buf_off);
        struct rte_mbuf *dst = op->sym->m_dst ? op->sym->m_dst : op->sym->m_src;

        cs_mbuf_copy(dst, slot->out_off, slot->out_len, (uint8_t *)synth_buf_ptr(qp->q, slot->data_off), 1);
        if (slot->digest)
            memcpy(slot->digest, a + CS_TAG_OFF, slot->tag_len);
    } else {
        if (c->status == SYNTH_ST_NO_SESSION) {
            s = CRYPTODEV_GET_SYM_SESS_PRIV(op->sym->session);
            s->live = 0; /* created again by the next op (a backend restarted without its vault) */
        }
        qp->stats.dequeue_err_count++;
    }
    op->status = st;
    cs_slot_free(qp, (uint32_t)c->cookie);
    *out = op;
    return 1;
}

uint16_t cs_dequeue_burst(void *arg, struct rte_crypto_op **ops, uint16_t nb_ops)
{
    struct cs_qp *qp = arg;
    struct synth_cpl cpl[32];
    uint16_t n = 0;

    while (n < nb_ops && qp->done_head != qp->done_tail)
        ops[n++] = qp->done[qp->done_head++ & qp->done_mask];
    while (n < nb_ops) {
        unsigned want = RTE_MIN((unsigned)(nb_ops - n), 32u), got = synth_q_poll_burst(qp->q, cpl, want);
        for (unsigned i = 0; i < got; i++)
            n += (uint16_t)cs_complete(qp, &cpl[i], &ops[n]);
        if (got < want)
            break;
    }
    /* A device that needs a reset completes nothing more: what is in flight fails now. */
    if (n == 0 && qp->nfree != qp->nslots && synth_dev_needs_reset(qp->d->dev)) {
        cs_qp_restart(qp->d, qp);
        while (n < nb_ops && qp->done_head != qp->done_tail)
            ops[n++] = qp->done[qp->done_head++ & qp->done_mask];
    }
    qp->stats.dequeued_count += n;
    return n;
}
