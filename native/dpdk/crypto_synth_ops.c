/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_synth device operations: capabilities from the device's alg_mask, configure, start (the
 * reset), queue pairs, stats, info, and sessions (checked here, then created on the device's
 * control queue).
 */
#include <errno.h>
#include <string.h>

#include "crypto_synth_pvt.h"

/* ---- capabilities ---- */

static struct rte_cryptodev_capabilities cs_aead_cap(enum rte_crypto_aead_algorithm algo, uint16_t kmin,
                                                     uint16_t kmax, uint16_t dmin, uint16_t dmax,
                                                     uint16_t max_aad)
{
    struct rte_cryptodev_capabilities c;

    memset(&c, 0, sizeof(c));
    c.op = RTE_CRYPTO_OP_TYPE_SYMMETRIC;
    c.sym.xform_type = RTE_CRYPTO_SYM_XFORM_AEAD;
    c.sym.aead.algo = algo;
    c.sym.aead.block_size = algo == RTE_CRYPTO_AEAD_AES_GCM ? 16 : 64;
    c.sym.aead.key_size.min = kmin;
    c.sym.aead.key_size.max = kmax;
    c.sym.aead.key_size.increment = kmax > kmin ? kmax - kmin : 0;
    c.sym.aead.digest_size.min = dmin;
    c.sym.aead.digest_size.max = dmax;
    c.sym.aead.digest_size.increment = dmax > dmin ? 4 : 0;
    c.sym.aead.aad_size.min = 0;
    c.sym.aead.aad_size.max = max_aad;
    c.sym.aead.aad_size.increment = 1;
    c.sym.aead.iv_size.min = CS_IV_LEN;
    c.sym.aead.iv_size.max = CS_IV_LEN;
    c.sym.aead.iv_size.increment = 0;
    return c;
}

static void cs_range(struct rte_crypto_param_range *r, uint16_t min, uint16_t max, uint16_t inc)
{
    r->min = min;
    r->max = max;
    r->increment = inc;
}

/* The two halves of the AES-256-CBC + HMAC-SHA-256 chain, each a capability of its own. */
static void cs_chain_caps(struct rte_cryptodev_capabilities *cipher, struct rte_cryptodev_capabilities *auth)
{
    memset(cipher, 0, sizeof(*cipher));
    cipher->op = RTE_CRYPTO_OP_TYPE_SYMMETRIC;
    cipher->sym.xform_type = RTE_CRYPTO_SYM_XFORM_CIPHER;
    cipher->sym.cipher.algo = RTE_CRYPTO_CIPHER_AES_CBC;
    cipher->sym.cipher.block_size = 16;
    cs_range(&cipher->sym.cipher.key_size, 32, 32, 0);
    cs_range(&cipher->sym.cipher.iv_size, CS_CBC_IV_LEN, CS_CBC_IV_LEN, 0);
    memset(auth, 0, sizeof(*auth));
    auth->op = RTE_CRYPTO_OP_TYPE_SYMMETRIC;
    auth->sym.xform_type = RTE_CRYPTO_SYM_XFORM_AUTH;
    auth->sym.auth.algo = RTE_CRYPTO_AUTH_SHA256_HMAC;
    auth->sym.auth.block_size = 64;
    cs_range(&auth->sym.auth.key_size, 1, CS_HMAC_KEY_MAX, 1);
    cs_range(&auth->sym.auth.digest_size, 12, 32, 1);
}

/* What the device's alg_mask serves: the AEADs (GCM tags of 8, 12 or 16 bytes) and, when the
 * device authenticates exactly the range DPDK names (MAC_NO_IV), the CBC + HMAC chain. */
void cs_fill_caps(struct cs_dev *d)
{
    unsigned n = 0;
    int g128 = !!(d->alg_mask & (1u << SYNTH_ALG_AES128_GCM));
    int g256 = !!(d->alg_mask & (1u << SYNTH_ALG_AES256_GCM));
    uint16_t aad = d->max_aad > UINT16_MAX ? UINT16_MAX : (uint16_t)d->max_aad;

    if (g128 || g256)
        d->caps[n++] = cs_aead_cap(RTE_CRYPTO_AEAD_AES_GCM, g128 ? 16 : 32, g256 ? 32 : 16, 8, 16, aad);
    if (d->alg_mask & (1u << SYNTH_ALG_CHACHA20_POLY1305))
        d->caps[n++] = cs_aead_cap(RTE_CRYPTO_AEAD_CHACHA20_POLY1305, 32, 32, 16, 16, aad);
    if (d->alg_mask & (1u << SYNTH_ALG_AES256_CBC_HMAC_SHA256)) {
        cs_chain_caps(&d->caps[n], &d->caps[n + 1]);
        n += 2;
    }
    memset(&d->caps[n], 0, sizeof(d->caps[n]));
    d->caps[n].op = RTE_CRYPTO_OP_TYPE_UNDEFINED; /* RTE_CRYPTODEV_END_OF_CAPABILITIES_LIST */
}

/* ---- device operations ---- */

static int cs_configure(struct rte_cryptodev *dev, struct rte_cryptodev_config *cfg)
{
    struct cs_dev *d = dev->data->dev_private;

    return spmd_configure(&d->base, cfg->nb_queue_pairs);
}

/* Reset the device if it needs it; every queue pair starts again empty. */
static int cs_start(struct rte_cryptodev *dev)
{
    struct cs_dev *d = dev->data->dev_private;

    return spmd_start(&d->base, dev->data->queue_pairs, dev->data->nb_queue_pairs, cs_lose);
}

static void cs_stop(struct rte_cryptodev *dev __rte_unused) {}

static int cs_qp_release(struct rte_cryptodev *dev, uint16_t qp_id)
{
    spmd_qp_free(&dev->data->queue_pairs[qp_id]);
    return 0;
}

static int cs_close(struct rte_cryptodev *dev)
{
    struct cs_dev *d = dev->data->dev_private;

    spmd_close(&d->base, dev->data->queue_pairs, dev->data->nb_queue_pairs);
    return 0;
}

static void cs_stats_get(struct rte_cryptodev *dev, struct rte_cryptodev_stats *st)
{
    struct spmd_stats sum;

    spmd_stats_sum(dev->data->queue_pairs, dev->data->nb_queue_pairs, &sum);
    SPMD_STATS_ADD(st, &sum);
}

static void cs_stats_reset(struct rte_cryptodev *dev)
{
    spmd_stats_reset(dev->data->queue_pairs, dev->data->nb_queue_pairs);
}

static void cs_info_get(struct rte_cryptodev *dev, struct rte_cryptodev_info *info)
{
    struct cs_dev *d = dev->data->dev_private;

    if (!info)
        return;
    info->driver_id = cs_driver_id;
    info->feature_flags = dev->feature_flags;
    info->capabilities = d->caps;
    info->max_nb_queue_pairs = d->base.nqp;
    info->sym.max_nb_sessions = d->max_sessions;
    info->min_mbuf_headroom_req = 0;
    info->min_mbuf_tailroom_req = 0;
}

static int cs_qp_setup(struct rte_cryptodev *dev, uint16_t qp_id, const struct rte_cryptodev_qp_conf *conf,
                       int socket_id)
{
    struct cs_dev *d = dev->data->dev_private;
    struct spmd_qp *qp;

    if (qp_id >= d->base.nqp || !d->base.dev)
        return -EINVAL;
    if (conf->nb_descriptors > d->base.ring_entries)
        CS_LOG(INFO, "queue pair %u: %u descriptors asked for, the device ring holds %u", qp_id,
               conf->nb_descriptors, d->base.ring_entries);
    cs_qp_release(dev, qp_id);
    qp = spmd_qp_create(&d->base, qp_id, sizeof(struct cs_slot), socket_id);
    if (!qp)
        return -ENOMEM;
    dev->data->queue_pairs[qp_id] = qp;
    return 0;
}

static unsigned cs_sess_size(struct rte_cryptodev *dev __rte_unused) { return sizeof(struct cs_sess); }

/* A device session for p through the control queue, under ctl_lock: 0, or a negative errno. */
static int cs_dev_sess_create_locked(struct cs_dev *d, const struct synth_crypto_session_params *p, uint32_t *id)
{
    struct synth_crypto_session_params tmp;
    int rc;

    if (d->base.shared_ctl && synth_q_inflight(d->base.ctl))
        return -EBUSY;
    tmp = *p; /* the library's scratch copy is wiped by the backend; this one by us */
    rc = synth_crypto_session_create(d->base.ctl, &tmp, id);
    memset(&tmp, 0, sizeof(tmp));
    switch (rc) {
    case 0:
        return 0;
    case SYNTH_ST_NOT_SUPPORTED:
        return -ENOTSUP;
    case SYNTH_ST_INVALID:
        return -EINVAL;
    case SYNTH_ST_NO_RESOURCES:
        return -ENOSPC;
    default:
        return rc < 0 ? rc : -EIO;
    }
}

/* Queue pairs on several threads may find the same session stale after a reset: the first one
 * creates it again, the others see it done. */
int cs_sess_refresh(struct cs_dev *d, struct cs_sess *s)
{
    uint32_t epoch;
    int rc = 0;

    pthread_mutex_lock(&d->base.ctl_lock);
    epoch = __atomic_load_n(&d->base.epoch, __ATOMIC_ACQUIRE);
    if (!s->live || s->epoch != epoch) {
        uint32_t id;
        rc = cs_dev_sess_create_locked(d, &s->params, &id);
        if (rc == 0)
            s->id = id;
        s->epoch = epoch;
        __atomic_store_n(&s->live, rc == 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&d->base.ctl_lock);
    return rc;
}

static const char *cs_algo_name(enum rte_crypto_aead_algorithm a)
{
    return a == RTE_CRYPTO_AEAD_AES_GCM ? "aes-gcm" : a == RTE_CRYPTO_AEAD_CHACHA20_POLY1305 ? "chacha20-poly1305" : "?";
}

/*
 * A cipher-then-auth (encrypt, generate) or auth-then-cipher (verify, decrypt) chain of AES-256-CBC
 * and HMAC-SHA-256 as one device session with MAC_NO_IV: the tag over the op's auth range, which
 * must end with its cipher range (the bytes before it are the device's AAD).
 */
static int cs_parse_chain(const struct cs_dev *d, const struct rte_crypto_sym_xform *x, struct cs_sess *s)
{
    const struct rte_crypto_sym_xform *xc = x->type == RTE_CRYPTO_SYM_XFORM_CIPHER ? x : x->next;
    const struct rte_crypto_sym_xform *xa = x->type == RTE_CRYPTO_SYM_XFORM_AUTH ? x : x->next;
    const struct rte_crypto_cipher_xform *c;
    const struct rte_crypto_auth_xform *a;
    int enc;

    if (!xc || !xa || xc == xa || xc->type != RTE_CRYPTO_SYM_XFORM_CIPHER || xa->type != RTE_CRYPTO_SYM_XFORM_AUTH ||
        x->next->next) {
        CS_LOG(ERR, "only a single AEAD transform or a cipher + auth chain is supported");
        return -ENOTSUP;
    }
    c = &xc->cipher;
    a = &xa->auth;
    if (c->algo != RTE_CRYPTO_CIPHER_AES_CBC || a->algo != RTE_CRYPTO_AUTH_SHA256_HMAC) {
        CS_LOG(ERR, "cipher %d with auth %d is not supported: the chain is AES-CBC with SHA256-HMAC", (int)c->algo,
               (int)a->algo);
        return -ENOTSUP;
    }
    enc = c->op == RTE_CRYPTO_CIPHER_OP_ENCRYPT;
    if (enc != (x == xc) || enc != (a->op == RTE_CRYPTO_AUTH_OP_GENERATE)) {
        CS_LOG(ERR, "the chain is cipher encrypt then auth generate, or auth verify then cipher decrypt");
        return -ENOTSUP;
    }
    if (!(d->alg_mask & (1u << SYNTH_ALG_AES256_CBC_HMAC_SHA256))) {
        CS_LOG(ERR, "the device does not serve AES-256-CBC + HMAC-SHA-256 with the tag over the auth range");
        return -ENOTSUP;
    }
    if (c->key.length != 32 || c->iv.length != CS_CBC_IV_LEN || !a->key.length || a->key.length > CS_HMAC_KEY_MAX ||
        a->digest_length < 12 || a->digest_length > 32) {
        CS_LOG(ERR, "bad parameters: cipher key %u (must be 32), iv %u (must be 16), auth key %u (1..%u), digest %u "
               "(12..32)", c->key.length, c->iv.length, a->key.length, CS_HMAC_KEY_MAX, a->digest_length);
        return -EINVAL;
    }
    memset(s, 0, sizeof(*s));
    s->chain = 1;
    s->iv_offset = c->iv.offset;
    s->enc = (uint8_t)enc;
    s->tag_len = (uint8_t)a->digest_length;
    s->params.alg = SYNTH_ALG_AES256_CBC_HMAC_SHA256;
    s->params.key_len = (uint16_t)(32 + a->key.length);
    s->params.iv_len = CS_CBC_IV_LEN;
    s->params.tag_len = s->tag_len;
    s->params.flags = SYNTH_CRYPTO_SF_MAC_NO_IV;
    memcpy(s->params.key, c->key.data, 32);
    memcpy(s->params.key + 32, a->key.data, a->key.length);
    return 0;
}

/* The xform as device session parameters: 0, -ENOTSUP (not a transform this device serves) or -EINVAL. */
static int cs_parse_xform(const struct cs_dev *d, const struct rte_crypto_sym_xform *x, struct cs_sess *s)
{
    const struct rte_crypto_aead_xform *a = &x->aead;
    uint16_t alg;

    if (x->type != RTE_CRYPTO_SYM_XFORM_AEAD && x->next)
        return cs_parse_chain(d, x, s);
    if (x->type != RTE_CRYPTO_SYM_XFORM_AEAD || x->next) {
        CS_LOG(ERR, "only a single AEAD transform or a cipher + auth chain is supported");
        return -ENOTSUP;
    }
    if (a->algo == RTE_CRYPTO_AEAD_AES_GCM && a->key.length == 16)
        alg = SYNTH_ALG_AES128_GCM;
    else if (a->algo == RTE_CRYPTO_AEAD_AES_GCM && a->key.length == 32)
        alg = SYNTH_ALG_AES256_GCM;
    else if (a->algo == RTE_CRYPTO_AEAD_CHACHA20_POLY1305 && a->key.length == 32)
        alg = SYNTH_ALG_CHACHA20_POLY1305;
    else if (a->algo == RTE_CRYPTO_AEAD_AES_GCM || a->algo == RTE_CRYPTO_AEAD_CHACHA20_POLY1305) {
        CS_LOG(ERR, "key length %u is not valid for %s", a->key.length, cs_algo_name(a->algo));
        return -EINVAL;
    } else {
        CS_LOG(ERR, "AEAD algorithm %d is not supported", (int)a->algo);
        return -ENOTSUP;
    }
    if (!(d->alg_mask & (1u << alg))) {
        CS_LOG(ERR, "the device does not serve %s with a %u-byte key", cs_algo_name(a->algo),
               a->key.length);
        return -ENOTSUP;
    }
    if (a->iv.length != CS_IV_LEN || a->aad_length > d->max_aad ||
        (alg == SYNTH_ALG_CHACHA20_POLY1305 ? a->digest_length != 16
                                            : a->digest_length != 16 && a->digest_length != 12 && a->digest_length != 8)) {
        CS_LOG(ERR, "bad parameters: iv %u (must be 12), aad %u (at most %u), digest %u", a->iv.length, a->aad_length,
               d->max_aad, a->digest_length);
        return -EINVAL;
    }
    memset(s, 0, sizeof(*s));
    s->iv_offset = a->iv.offset;
    s->aad_len = a->aad_length;
    s->enc = a->op == RTE_CRYPTO_AEAD_OP_ENCRYPT;
    s->tag_len = (uint8_t)a->digest_length;
    s->params.alg = alg;
    s->params.key_len = a->key.length;
    s->params.iv_len = CS_IV_LEN;
    s->params.tag_len = s->tag_len;
    memcpy(s->params.key, a->key.data, a->key.length);
    return 0;
}

static int cs_sess_configure(struct rte_cryptodev *dev, struct rte_crypto_sym_xform *x,
                             struct rte_cryptodev_sym_session *sess)
{
    struct cs_dev *d = dev->data->dev_private;
    struct cs_sess *s = CRYPTODEV_GET_SYM_SESS_PRIV(sess);
    int rc;

    if (!x || !d->base.dev)
        return -EINVAL;
    rc = cs_parse_xform(d, x, s); /* s->live = 0 */
    if (rc < 0)
        return rc;
    rc = cs_sess_refresh(d, s);
    if (rc < 0) {
        CS_LOG(ERR, "the device refused the session: %s", strerror(-rc));
        memset(s, 0, sizeof(*s));
    }
    return rc;
}

static void cs_sess_clear(struct rte_cryptodev *dev, struct rte_cryptodev_sym_session *sess)
{
    struct cs_dev *d = dev->data->dev_private;
    struct cs_sess *s = CRYPTODEV_GET_SYM_SESS_PRIV(sess);

    pthread_mutex_lock(&d->base.ctl_lock);
    if (d->base.dev && s->live && s->epoch == d->base.epoch && !synth_dev_needs_reset(d->base.dev) &&
        !(d->base.shared_ctl && synth_q_inflight(d->base.ctl)))
        synth_crypto_session_destroy(d->base.ctl, s->id);
    pthread_mutex_unlock(&d->base.ctl_lock);
    memset(s, 0, sizeof(*s)); /* the key */
}

struct rte_cryptodev_ops cs_ops = {
    .dev_configure = cs_configure,
    .dev_start = cs_start,
    .dev_stop = cs_stop,
    .dev_close = cs_close,
    .stats_get = cs_stats_get,
    .stats_reset = cs_stats_reset,
    .dev_infos_get = cs_info_get,
    .queue_pair_setup = cs_qp_setup,
    .queue_pair_release = cs_qp_release,
    .sym_session_get_size = cs_sess_size,
    .sym_session_configure = cs_sess_configure,
    .sym_session_clear = cs_sess_clear,
};
