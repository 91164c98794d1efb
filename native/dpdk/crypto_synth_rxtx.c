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

void cs_lose(struct spmd_qp *qp, struct spmd_slot *s)
{
    struct rte_crypto_op *op = s->op;

    if (op) {
        op->status = RTE_CRYPTO_OP_STATUS_ERROR;
        qp->stats.dequeue_err_count++; /* it comes back from dequeue with an error status */
    }
}

static int cs_finish(struct spmd_qp *qp, void *arg, uint8_t status)
{
    struct rte_crypto_op *op = arg;

    if (spmd_done_full(qp))
        return -1;
    op->status = status;
    spmd_done_put(qp, op);
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
static int cs_prepare(struct spmd_qp *qp, void *arg, uint32_t *slot_out)
{
    struct rte_crypto_op *op = arg;
    struct cs_dev *d = cs_qp_dev(qp);
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
    if (synth_dev_needs_reset(d->base.dev) || qp->epoch != __atomic_load_n(&d->base.epoch, __ATOMIC_ACQUIRE))
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
    if (!sym->m_src || (uint64_t)off + len > spmd_chain_len(sym->m_src) ||
        (dst != sym->m_src && (uint64_t)off + len > spmd_chain_len(dst)))
        return RTE_CRYPTO_OP_STATUS_INVALID_ARGS;
    aad_sz = r.aad_len; /* the data follows the AAD with no gap */
    if ((uint64_t)CS_HDR + aad_sz + spmd_round(len) > d->base.arena_size || len > UINT32_MAX / 2)
        return RTE_CRYPTO_OP_STATUS_INVALID_ARGS;
    total = CS_HDR + aad_sz + spmd_round(len);
    if (!qp->nfree)
        return -ENOSPC;
    boff = synth_buf_alloc(qp->q, total);
    if (boff < 0)
        return -ENOSPC;
    idx = qp->free[--qp->nfree];
    slot = cs_qp_slot(qp, idx);
    a = synth_buf_ptr(qp->q, (uint32_t)boff);
    memcpy(a, rte_crypto_op_ctod_offset(op, uint8_t *, s->iv_offset), s->params.iv_len);
    if (!s->enc)
        memcpy(a + CS_TAG_OFF, r.digest, s->tag_len);
    if (r.aad)
        memcpy(a + CS_HDR, r.aad, r.aad_len);
    if ((!r.aad && spmd_mbuf_copy(sym->m_src, r.aad_at, r.aad_len, a + CS_HDR, 0, NULL, NULL) < 0) ||
        spmd_mbuf_copy(sym->m_src, off, len, a + CS_HDR + aad_sz, 0, NULL, NULL) < 0) {
        synth_buf_free(qp->q, (uint32_t)boff, total);
        qp->free[qp->nfree++] = idx;
        return RTE_CRYPTO_OP_STATUS_INVALID_ARGS;
    }
    slot->s.op = op;
    slot->digest = s->enc ? r.digest : NULL;
    slot->s.buf_off = (uint32_t)boff;
    slot->s.buf_size = total;
    slot->data_off = (uint32_t)boff + CS_HDR + aad_sz;
    slot->out_off = off;
    slot->out_len = len;
    slot->s.tries = 0;
    slot->tag_len = s->tag_len;
    slot->s.busy = 1;
    synth_crypto_desc(&slot->s.desc, s->enc ? SYNTH_OP_CRYPTO_ENCRYPT : SYNTH_OP_CRYPTO_DECRYPT, s->id,
                      slot->data_off, slot->data_off, len, (uint32_t)boff + CS_HDR, r.aad_len, (uint32_t)boff,
                      (uint32_t)boff + CS_TAG_OFF, idx);
    *slot_out = idx;
    return 0;
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
    default: /* DEVICE_ERROR, NO_RESOURCES, QUOTA, RETRY after SPMD_RETRIES, ... */
        return RTE_CRYPTO_OP_STATUS_ERROR;
    }
}

/* One completion: 1 if its op is finished (into *out), 0 if it was submitted again or is unknown. */
static int cs_complete(struct spmd_qp *qp, const struct synth_cpl *c, void **out)
{
    struct cs_slot *slot = (struct cs_slot *)spmd_cpl_slot(qp, c);
    struct rte_crypto_op *op;
    struct cs_sess *s;
    uint8_t st;

    if (!slot)
        return 0;
    op = slot->s.op;
    st = cs_status(c->status);
    if (st == RTE_CRYPTO_OP_STATUS_SUCCESS) {
        const uint8_t *a = synth_buf_ptr(qp->q, slot->s.buf_off);
        struct rte_mbuf *dst = op->sym->m_dst ? op->sym->m_dst : op->sym->m_src;

        spmd_mbuf_copy(dst, slot->out_off, slot->out_len, (uint8_t *)synth_buf_ptr(qp->q, slot->data_off), 1, NULL,
                       NULL);
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
    spmd_slot_put(qp, (uint32_t)c->cookie);
    *out = op;
    return 1;
}

static const struct spmd_rxtx cs_rxtx = {
    .prepare = cs_prepare,
    .finish = cs_finish,
    .unslot = spmd_slot_put,
    .complete = cs_complete,
    .lose = cs_lose,
    .error = RTE_CRYPTO_OP_STATUS_ERROR,
};

uint16_t cs_enqueue_burst(void *qp, struct rte_crypto_op **ops, uint16_t nb_ops)
{
    return spmd_enqueue(qp, (void **)ops, nb_ops, &cs_rxtx);
}

uint16_t cs_dequeue_burst(void *qp, struct rte_crypto_op **ops, uint16_t nb_ops)
{
    return spmd_dequeue(qp, (void **)ops, nb_ops, &cs_rxtx);
}
