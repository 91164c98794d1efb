/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_synth: the DPDK cryptodev poll-mode driver over a synthetic crypto device (docs/dpdk.md).
 * Private to the driver: its device, slot and session structures (the rest is synth_pmd.h).
 *
 * Threading: DPDK's: a queue pair is used by one thread at a time. Sessions are created and
 * destroyed through a control queue of the device that no queue pair uses, under ctl_lock, so that
 * they never wait behind (or mix with) traffic. A device with one queue shares it: its sessions
 * can then be created only while its queue pair has nothing in flight (else -EBUSY).
 */
#ifndef CRYPTO_SYNTH_PVT_H
#define CRYPTO_SYNTH_PVT_H

#include <pthread.h>
#include <stdint.h>

#include <cryptodev_pmd.h>

#include "synth/guest.h"
#include "synth_pmd.h"

#define CS_IV_LEN 12u    /* AEAD */
#define CS_CBC_IV_LEN 16u
#define CS_HMAC_KEY_MAX 224u
/*
 * Per op in the arena: the IV (up to 16 bytes) at 0, the tag (up to 32) at 16, the AAD at CS_HDR and
 * the data right after it, so that a small op's IV, tag, AAD and data share one or two cache lines
 * (each line the worker reads is one the PMD wrote on another core), and a MAC over AAD || data reads
 * one contiguous range.
 */
#define CS_TAG_OFF 16u
#define CS_HDR 48u

extern int cs_logtype;
#define CS_LOG(level, fmt, ...) \
    rte_log(RTE_LOG_##level, cs_logtype, "crypto_synth: " fmt "\n", ##__VA_ARGS__)

/* One operation on the device (s.op: a struct rte_crypto_op). */
struct cs_slot {
    struct spmd_slot s;
    uint8_t *digest;     /* ENCRYPT: where the tag goes back to; NULL to decrypt */
    uint32_t data_off;   /* arena offset of the data */
    uint32_t out_off;    /* the data's range in the op's destination mbuf */
    uint32_t out_len;
    uint8_t tag_len;
};

struct cs_dev {
    struct spmd_dev base;      /* ctl: where sessions are created and destroyed */
    uint32_t alg_mask;
    uint32_t max_aad;
    uint32_t max_sessions;
    struct rte_cryptodev_capabilities caps[5];
};

/* The queue pairs are struct spmd_qp (their done FIFO holds struct rte_crypto_op); their device and
 * slots are these. */
static inline struct cs_dev *cs_qp_dev(const struct spmd_qp *qp) { return (struct cs_dev *)qp->d; }
static inline struct cs_slot *cs_qp_slot(const struct spmd_qp *qp, uint32_t idx)
{
    return (struct cs_slot *)spmd_slot(qp, idx);
}

/* Session private data (CRYPTODEV_GET_SYM_SESS_PRIV). */
struct cs_sess {
    uint32_t id;               /* device session id */
    uint32_t epoch;            /* device epoch it was created in */
    uint16_t iv_offset;        /* of the IV in the op */
    uint16_t aad_len;          /* AEAD: the session's AAD length (a chain's varies per op) */
    uint8_t enc;
    uint8_t tag_len;
    uint8_t live;
    uint8_t chain;             /* 1: AES-256-CBC + HMAC-SHA-256 (cipher-then-auth / auth-then-cipher) */
    struct synth_crypto_session_params params; /* kept to create the session again after a reset */
};

extern struct rte_cryptodev_ops cs_ops;
extern uint8_t cs_driver_id;

/* The capability list of what the device's alg_mask serves, into d->caps. */
void cs_fill_caps(struct cs_dev *d);

uint16_t cs_enqueue_burst(void *qp, struct rte_crypto_op **ops, uint16_t nb_ops);
uint16_t cs_dequeue_burst(void *qp, struct rte_crypto_op **ops, uint16_t nb_ops);

/* Create the device session of s again (after a reset): 0 or a negative errno. */
int cs_sess_refresh(struct cs_dev *d, struct cs_sess *s);

/* A slot a device reset took: its op fails (spmd_qp_restart). */
void cs_lose(struct spmd_qp *qp, struct spmd_slot *s);

#endif /* CRYPTO_SYNTH_PVT_H */
