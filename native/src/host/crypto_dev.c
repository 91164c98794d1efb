/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crypto device class: per-device session table, descriptor validation and dispatch to the
 * device's plugin. Parameter sizes are checked here, once, for every plugin.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "host_pvt.h"

#define DEFAULT_MAX_SESSIONS 1024u
#define MAX_SESSIONS 65535u
#define MAX_AAD 65535u
#define MAX_OP_LEN (1u << 30)

struct crypto_slot {
    void *psess;
    uint16_t gen;   /* bumped on every destroy, so stale ids stay unknown */
    uint8_t active;
    uint8_t alg;
    uint8_t iv_len;
    uint8_t tag_len;
    uint8_t pad[2];
};

struct crypto_dev {
    const struct synth_plugin *plugin;
    uint32_t max_sessions;
    uint32_t nsessions;
    uint32_t free_hint;
    struct crypto_slot *slots;
    struct synth_crypto_op ops[SYNTH_MAX_BURST];
    uint16_t op_desc[SYNTH_MAX_BURST];
};

static inline struct crypto_dev *cdev(const struct synth_hdev *d) { return (struct crypto_dev *)d->cls; }

static void wipe(volatile uint8_t *p, size_t n)
{
    while (n--)
        *p++ = 0;
}

/* Check sizes against the table in crypto_core.h. */
static int params_ok(const struct synth_crypto_session_params *p)
{
    if (p->flags != 0 || p->key_len > SYNTH_CRYPTO_MAX_KEY)
        return 0;
    switch (p->alg) {
    case SYNTH_ALG_AES128_GCM:
    case SYNTH_ALG_AES256_GCM:
        /* NIST SP 800-38D: 128, 120, 112, 104, 96 bits; 64 and 32 for special uses. */
        return p->key_len == (p->alg == SYNTH_ALG_AES128_GCM ? 16 : 32) && p->iv_len == 12 &&
               (p->tag_len == 4 || p->tag_len == 8 || (p->tag_len >= 12 && p->tag_len <= 16));
    case SYNTH_ALG_CHACHA20_POLY1305:
        return p->key_len == 32 && p->iv_len == 12 && p->tag_len == 16;
    case SYNTH_ALG_AES256_CBC_HMAC_SHA256:
        return p->key_len > 32 && p->iv_len == 16 && p->tag_len >= 12 && p->tag_len <= 32;
    case SYNTH_ALG_HMAC_SHA256:
        return p->key_len >= 1 && p->iv_len == 0 && p->tag_len >= 4 && p->tag_len <= 32;
    default:
        return 0;
    }
}

static struct crypto_slot *lookup(struct crypto_dev *c, uint32_t id)
{
    uint32_t idx = id & 0xffffu;
    struct crypto_slot *s;
    if (idx >= c->max_sessions)
        return NULL;
    s = &c->slots[idx];
    if (!s->active || s->gen != (uint16_t)(id >> 16))
        return NULL;
    return s;
}

static void slot_release(struct crypto_dev *c, struct crypto_slot *s)
{
    c->plugin->session_destroy(s->psess);
    s->psess = NULL;
    s->active = 0;
    s->gen = (uint16_t)(s->gen + 1) ? (uint16_t)(s->gen + 1) : 1;
    c->nsessions--;
}

static void session_create(struct crypto_dev *c, struct synth_hqueue *q, const struct synth_desc *d,
                           struct synth_cpl *out)
{
    struct synth_crypto_session_params p;
    uint8_t *src = synth_arena_ptr(q, d->src_off, d->src_len);
    uint32_t i, idx;
    int rc;

    if (!src || d->src_len != sizeof(p)) {
        out->status = SYNTH_ST_INVALID;
        return;
    }
    memcpy(&p, src, sizeof(p));
    /* The key must not stay in shared memory. */
    wipe(src + offsetof(struct synth_crypto_session_params, key), SYNTH_CRYPTO_MAX_KEY);
    if (!params_ok(&p)) {
        out->status = SYNTH_ST_INVALID;
        goto done;
    }
    if (!(c->plugin->alg_mask() & (1u << p.alg))) {
        out->status = SYNTH_ST_NOT_SUPPORTED;
        goto done;
    }
    if (c->nsessions >= c->max_sessions) {
        out->status = SYNTH_ST_NO_RESOURCES;
        goto done;
    }
    for (i = 0; i < c->max_sessions; i++) {
        idx = (c->free_hint + i) % c->max_sessions;
        if (!c->slots[idx].active)
            break;
    }
    rc = c->plugin->session_create(&p, &c->slots[idx].psess);
    if (rc < 0) {
        out->status = rc == -ENOTSUP ? SYNTH_ST_NOT_SUPPORTED
                      : rc == -EINVAL ? SYNTH_ST_INVALID : SYNTH_ST_NO_RESOURCES;
        goto done;
    }
    c->slots[idx].active = 1;
    c->slots[idx].alg = (uint8_t)p.alg;
    c->slots[idx].iv_len = p.iv_len;
    c->slots[idx].tag_len = p.tag_len;
    c->nsessions++;
    c->free_hint = (idx + 1) % c->max_sessions;
    out->status = SYNTH_ST_OK;
    out->result = ((uint32_t)c->slots[idx].gen << 16) | idx;
done:
    wipe((uint8_t *)&p, sizeof(p));
}

/* Validate an encrypt/decrypt descriptor into a plugin op. Returns SYNTH_ST_OK or an error. */
static uint32_t build_op(struct crypto_dev *c, struct synth_hqueue *q, const struct synth_desc *d,
                         struct synth_crypto_op *op, uint32_t *result)
{
    struct crypto_slot *s = lookup(c, d->session);
    const uint8_t *iv = NULL, *tag;
    int auth_only;

    if (!s)
        return SYNTH_ST_NO_SESSION;
    auth_only = s->alg == SYNTH_ALG_HMAC_SHA256;
    op->sess = s->psess;
    op->opcode = d->opcode;
    op->alg = s->alg;
    op->len = d->src_len;
    op->aad_len = d->aad_len;
    op->iv_len = s->iv_len;
    op->tag_len = s->tag_len;
    op->status = SYNTH_ST_OK;
    op->result = 0;
    if (d->src_len > MAX_OP_LEN || d->aad_len > MAX_AAD)
        return SYNTH_ST_INVALID;
    op->src = synth_arena_ptr(q, d->src_off, d->src_len);
    op->aad = synth_arena_ptr(q, d->aad_off, d->aad_len);
    tag = synth_arena_ptr(q, d->tag_off, s->tag_len);
    if (s->iv_len)
        iv = synth_arena_ptr(q, d->iv_off, s->iv_len);
    if (!op->src || !op->aad || !tag || (s->iv_len && !iv))
        return SYNTH_ST_INVALID;
    if (auth_only) {
        op->dst = NULL;
    } else {
        if (d->dst_len < d->src_len) {
            *result = d->src_len;
            return SYNTH_ST_NO_SPACE;
        }
        op->dst = synth_arena_ptr(q, d->dst_off, d->src_len);
        if (!op->dst)
            return SYNTH_ST_INVALID;
        /* In place, or apart: never a partial overlap. */
        if (op->dst != op->src && d->src_len &&
            d->dst_off < d->src_off + d->src_len && d->src_off < d->dst_off + d->src_len)
            return SYNTH_ST_INVALID;
        if (s->alg == SYNTH_ALG_AES256_CBC_HMAC_SHA256 && (d->src_len % 16) != 0)
            return SYNTH_ST_INVALID;
    }
    if (iv)
        memcpy(op->iv, iv, s->iv_len);
    if (d->opcode == SYNTH_OP_CRYPTO_DECRYPT) {
        memcpy(op->tag, tag, s->tag_len);
        op->tag_out = NULL;
    } else {
        op->tag_out = (uint8_t *)tag;
    }
    return SYNTH_ST_OK;
}

/* Run the validated ops gathered so far and write their completions. */
static uint64_t flush_ops(struct crypto_dev *c, struct synth_cpl *out, unsigned k)
{
    uint64_t bytes = 0;
    unsigned i;

    if (k == 0)
        return 0;
    c->plugin->crypto_burst(c->ops, k);
    for (i = 0; i < k; i++) {
        struct synth_cpl *cpl = &out[c->op_desc[i]];
        cpl->status = (uint16_t)c->ops[i].status;
        cpl->result = c->ops[i].status == SYNTH_ST_OK ? c->ops[i].len : 0;
        if (cpl->status == SYNTH_ST_OK)
            bytes += c->ops[i].len;
    }
    return bytes;
}

static void crypto_process(struct synth_hdev *d, struct synth_hqueue *q, const struct synth_desc *in,
                           struct synth_cpl *out, unsigned n)
{
    struct crypto_dev *c = cdev(d);
    unsigned i, k = 0;
    uint64_t bytes = 0;

    /*
     * The guest has just written each op's IV and AAD, so those lines sit in its core's cache:
     * start fetching all of them now, so the misses overlap instead of adding up one op at a time.
     */
    for (i = 0; i < n; i++) {
        if (in[i].opcode != SYNTH_OP_CRYPTO_ENCRYPT && in[i].opcode != SYNTH_OP_CRYPTO_DECRYPT)
            continue;
        if (in[i].iv_off < q->arena_size)
            __builtin_prefetch(q->arena + in[i].iv_off);
        if (in[i].aad_off < q->arena_size)
            __builtin_prefetch(q->arena + in[i].aad_off);
        if (in[i].src_off < q->arena_size)
            __builtin_prefetch(q->arena + in[i].src_off);
    }
    for (i = 0; i < n; i++) {
        const struct synth_desc *desc = &in[i];
        struct synth_cpl *cpl = &out[i];
        struct crypto_slot *s;

        cpl->cookie = desc->cookie;
        cpl->status = SYNTH_ST_OK;
        cpl->flags = 0;
        cpl->result = 0;
        if (desc->flags != 0) {
            cpl->status = SYNTH_ST_INVALID;
            continue;
        }
        switch (desc->opcode) {
        case SYNTH_OP_NOP:
            if (!(d->features & SYNTH_F_NOP))
                cpl->status = SYNTH_ST_NOT_SUPPORTED;
            break;
        case SYNTH_OP_CRYPTO_SESSION_CREATE:
        case SYNTH_OP_CRYPTO_SESSION_DESTROY:
            if (!(d->features & SYNTH_CRYPTO_F_SESSIONS)) {
                cpl->status = SYNTH_ST_NOT_SUPPORTED;
                break;
            }
            /*
             * Ops gathered so far run first: they may use the session this op destroys, and
             * the slot a destroy frees may be reused by a create later in the same burst.
             */
            bytes += flush_ops(c, out, k);
            k = 0;
            if (desc->opcode == SYNTH_OP_CRYPTO_SESSION_CREATE) {
                session_create(c, q, desc, cpl);
            } else if ((s = lookup(c, desc->session)) != NULL) {
                slot_release(c, s);
            } else {
                cpl->status = SYNTH_ST_NO_SESSION;
            }
            break;
        case SYNTH_OP_CRYPTO_ENCRYPT:
        case SYNTH_OP_CRYPTO_DECRYPT:
            cpl->status = (uint16_t)build_op(c, q, desc, &c->ops[k], &cpl->result);
            if (cpl->status == SYNTH_ST_OK && c->ops[k].dst && c->ops[k].dst != c->ops[k].src &&
                !(d->features & SYNTH_CRYPTO_F_OUT_OF_PLACE))
                cpl->status = SYNTH_ST_NOT_SUPPORTED;
            if (cpl->status == SYNTH_ST_OK)
                c->op_desc[k++] = (uint16_t)i;
            break;
        default:
            cpl->status = SYNTH_ST_NOT_SUPPORTED;
        }
    }
    bytes += flush_ops(c, out, k);
    SYNTH_STAT_ADD(d->stats.bytes_in, bytes);
    SYNTH_STAT_ADD(d->stats.bytes_out, bytes);
}

static int crypto_init(struct synth_hdev *d, const struct synth_hdev_params *p)
{
    struct crypto_dev *c;
    struct synth_crypto_cfg cfg;
    const struct synth_plugin *pl = p->plugin ? p->plugin : synth_plugin_openssl();
    uint32_t max = p->max_sessions ? p->max_sessions : DEFAULT_MAX_SESSIONS;
    uint16_t gen0 = 0;

    char why[160];

    if (pl->abi_version != SYNTH_PLUGIN_ABI_VERSION || pl->dev_class != SYNTH_CLASS_CRYPTO ||
        synth_plugin_probe(pl, why, sizeof(why)) < 0)
        return -ENOTSUP;
    if (max > MAX_SESSIONS)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->slots = calloc(max, sizeof(*c->slots));
    if (!c->slots) {
        free(c);
        return -ENOMEM;
    }
    /*
     * Slot generations start at a random value per device, so that ids a guest kept from before a
     * backend restart do not silently name the sessions created after it.
     */
    if (getrandom(&gen0, sizeof(gen0), GRND_NONBLOCK) != sizeof(gen0))
        gen0 = (uint16_t)(time(NULL) ^ (uintptr_t)c);
    if (gen0 == 0)
        gen0 = 1;
    for (uint32_t i = 0; i < max; i++)
        c->slots[i].gen = gen0;
    c->plugin = pl;
    c->max_sessions = max;
    d->cls = c;

    memset(&cfg, 0, sizeof(cfg));
    cfg.max_sessions = max;
    cfg.alg_mask = pl->alg_mask();
    cfg.max_aad_len = MAX_AAD;
    memcpy(d->hdr->class_cfg, &cfg, sizeof(cfg));
    return 0;
}

static void crypto_reset(struct synth_hdev *d)
{
    struct crypto_dev *c = cdev(d);
    uint32_t i;
    for (i = 0; i < c->max_sessions; i++)
        if (c->slots[i].active)
            slot_release(c, &c->slots[i]);
}

static void crypto_fini(struct synth_hdev *d)
{
    struct crypto_dev *c = cdev(d);
    if (!c)
        return;
    crypto_reset(d);
    free(c->slots);
    free(c);
    d->cls = NULL;
}

static const char *crypto_plugin_name(const struct synth_hdev *d) { return cdev(d)->plugin->name; }

static uint32_t crypto_sessions(const struct synth_hdev *d)
{
    return __atomic_load_n(&cdev(d)->nsessions, __ATOMIC_RELAXED);
}

const struct synth_class_ops synth_crypto_class = {
    .dev_class = SYNTH_CLASS_CRYPTO,
    .features = SYNTH_CRYPTO_F_SESSIONS | SYNTH_CRYPTO_F_OUT_OF_PLACE,
    .init = crypto_init,
    .fini = crypto_fini,
    .reset = crypto_reset,
    .process = crypto_process,
    .plugin_name = crypto_plugin_name,
    .sessions = crypto_sessions,
};
