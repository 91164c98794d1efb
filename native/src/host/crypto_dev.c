/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crypto device class: per-device session table, descriptor validation and dispatch to the
 * device's plugin. Parameter sizes are checked here, once, for every plugin.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "host_pvt.h"

#define MAX_SESSIONS 65535u
#define MAX_AAD 65535u
#define MAX_OP_LEN (1u << 30)

struct crypto_slot {
    void *psess;
    const struct synth_plugin *plugin;
    uint64_t iv_next;   /* IV_GEN: next counter value */
    uint16_t gen;       /* bumped on every destroy, so stale ids stay unknown */
    uint8_t active;
    uint8_t alg;
    uint8_t iv_len;
    uint8_t tag_len;
    uint16_t sflags;    /* SYNTH_CRYPTO_SF_* */
    uint8_t salt[4];
};

/*
 * A session as the vault keeps it (host-only file): enough to re-create it, under the same id,
 * in a restarted backend. `active` is written last on create and first on destroy.
 */
struct vault_session {
    uint8_t active;
    uint8_t pad0;
    uint16_t gen;
    uint16_t sflags;
    uint8_t salt[4];
    uint8_t pad1[6];
    uint64_t iv_next;   /* IV_GEN: recorded before the counter value below it is used */
    struct synth_crypto_session_params params;
};

struct vault_crypto {
    uint64_t magic;
    uint16_t gen0;
    uint8_t pad[6];
    struct vault_session slots[];
};

#define VAULT_CRYPTO_MAGIC 0x5353455352505943ULL /* "CYPRSESS" */

struct crypto_dev {
    const struct synth_plugin *by_alg[SYNTH_ALG_MAX];
    char names[64];     /* serving plugins, for the header and tools */
    uint32_t max_sessions;
    uint32_t nsessions;
    uint32_t free_hint;
    struct crypto_slot *slots;
    struct vault_crypto *vault;  /* NULL: sessions do not outlive this process */
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
    if ((p->flags & ~(SYNTH_CRYPTO_SF_IV_GEN | SYNTH_CRYPTO_SF_MAC_NO_IV)) || p->key_len > SYNTH_CRYPTO_MAX_KEY)
        return 0;
    if ((p->flags & SYNTH_CRYPTO_SF_MAC_NO_IV) && p->alg != SYNTH_ALG_AES256_CBC_HMAC_SHA256)
        return 0;
    if ((p->flags & SYNTH_CRYPTO_SF_IV_GEN) && p->alg != SYNTH_ALG_AES128_GCM &&
        p->alg != SYNTH_ALG_AES256_GCM && p->alg != SYNTH_ALG_CHACHA20_POLY1305)
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
    uint32_t idx = (uint32_t)(s - c->slots);

    if (c->vault) {
        struct vault_session *v = &c->vault->slots[idx];
        __atomic_store_n(&v->active, 0, __ATOMIC_RELEASE);
        wipe((uint8_t *)&v->params, sizeof(v->params));
    }
    s->plugin->session_destroy(s->psess);
    s->psess = NULL;
    s->plugin = NULL;
    /* Tools list the sessions from another thread (crypto_list_sessions): what it reads, it
     * reads atomically, so what it reads is stored so too. */
    __atomic_store_n(&s->active, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&s->gen, (uint16_t)(s->gen + 1) ? (uint16_t)(s->gen + 1) : 1, __ATOMIC_RELAXED);
    if (c->vault)
        c->vault->slots[idx].gen = s->gen;
    __atomic_store_n(&c->nsessions, c->nsessions - 1, __ATOMIC_RELAXED);
}

/* Set up slot idx for validated parameters; the vault record is written by the caller. */
static uint32_t slot_open(struct crypto_dev *c, uint32_t idx, const struct synth_crypto_session_params *p)
{
    struct crypto_slot *s = &c->slots[idx];
    const struct synth_plugin *pl = c->by_alg[p->alg];
    int rc;

    if (!pl || ((p->flags & SYNTH_CRYPTO_SF_MAC_NO_IV) && !(pl->crypto_caps & SYNTH_CRYPTO_CAP_MAC_NO_IV)))
        return SYNTH_ST_NOT_SUPPORTED;
    rc = pl->session_create(p, &s->psess);
    if (rc < 0)
        return rc == -ENOTSUP ? SYNTH_ST_NOT_SUPPORTED : rc == -EINVAL ? SYNTH_ST_INVALID : SYNTH_ST_NO_RESOURCES;
    s->plugin = pl;
    __atomic_store_n(&s->alg, (uint8_t)p->alg, __ATOMIC_RELAXED);
    s->iv_len = p->iv_len;
    s->tag_len = p->tag_len;
    __atomic_store_n(&s->sflags, p->flags, __ATOMIC_RELAXED);
    __atomic_store_n(&s->active, 1, __ATOMIC_RELEASE); /* last: a lister that sees it sees the rest */
    __atomic_store_n(&c->nsessions, c->nsessions + 1, __ATOMIC_RELAXED);
    return SYNTH_ST_OK;
}

static void session_create(struct crypto_dev *c, struct synth_hqueue *q, const struct synth_desc *d,
                           uint64_t features, struct synth_cpl *out)
{
    struct synth_crypto_session_params p;
    uint8_t *src = synthi_arena_ptr(q, d->src_off, d->src_len);
    uint32_t i, idx = 0;

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
    if (((p.flags & SYNTH_CRYPTO_SF_IV_GEN) && !(features & SYNTH_CRYPTO_F_IV_GEN)) ||
        ((p.flags & SYNTH_CRYPTO_SF_MAC_NO_IV) && !(features & SYNTH_CRYPTO_F_MAC_NO_IV))) {
        out->status = SYNTH_ST_NOT_SUPPORTED; /* held to what the driver accepted */
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
    out->status = (uint16_t)slot_open(c, idx, &p);
    if (out->status != SYNTH_ST_OK)
        goto done;
    if (p.flags & SYNTH_CRYPTO_SF_IV_GEN) {
        struct crypto_slot *s = &c->slots[idx];
        if (getrandom(s->salt, sizeof(s->salt), GRND_NONBLOCK) != (ssize_t)sizeof(s->salt)) {
            uint32_t t = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)s;
            memcpy(s->salt, &t, sizeof(t));
        }
        s->iv_next = 1;
    }
    if (c->vault) {
        struct vault_session *v = &c->vault->slots[idx];
        v->gen = c->slots[idx].gen;
        v->sflags = p.flags;
        memcpy(v->salt, c->slots[idx].salt, sizeof(v->salt));
        v->iv_next = c->slots[idx].iv_next;
        memcpy(&v->params, &p, sizeof(p));
        __atomic_store_n(&v->active, 1, __ATOMIC_RELEASE);
    }
    c->free_hint = (idx + 1) % c->max_sessions;
    out->result = ((uint32_t)c->slots[idx].gen << 16) | idx;
done:
    wipe((uint8_t *)&p, sizeof(p));
}

/*
 * IV_GEN: the next IV of a session, salt || big-endian counter. The counter is recorded in the
 * vault before the value is used, so a backend that dies right after never hands it out again.
 */
static void next_iv(struct crypto_dev *c, struct crypto_slot *s, uint8_t iv[12])
{
    uint64_t n = s->iv_next++;
    if (c->vault)
        __atomic_store_n(&c->vault->slots[s - c->slots].iv_next, s->iv_next, __ATOMIC_RELEASE);
    memcpy(iv, s->salt, 4);
    for (int i = 0; i < 8; i++)
        iv[4 + i] = (uint8_t)(n >> (56 - 8 * i));
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
    op->plugin = s->plugin;
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
    op->src = synthi_arena_ptr(q, d->src_off, d->src_len);
    op->aad = synthi_arena_ptr(q, d->aad_off, d->aad_len);
    tag = synthi_arena_ptr(q, d->tag_off, s->tag_len);
    if (s->iv_len)
        iv = synthi_arena_ptr(q, d->iv_off, s->iv_len);
    if (!op->src || !op->aad || !tag || (s->iv_len && !iv))
        return SYNTH_ST_INVALID;
    if (auth_only) {
        op->dst = NULL;
    } else {
        if (d->dst_len < d->src_len) {
            *result = d->src_len;
            return SYNTH_ST_NO_SPACE;
        }
        op->dst = synthi_arena_ptr(q, d->dst_off, d->src_len);
        if (!op->dst)
            return SYNTH_ST_INVALID;
        /* In place, or apart: never a partial overlap. */
        if (op->dst != op->src && d->src_len &&
            d->dst_off < d->src_off + d->src_len && d->src_off < d->dst_off + d->src_len)
            return SYNTH_ST_INVALID;
        if (s->alg == SYNTH_ALG_AES256_CBC_HMAC_SHA256 && (d->src_len % 16) != 0)
            return SYNTH_ST_INVALID;
    }
    if (iv && d->opcode == SYNTH_OP_CRYPTO_ENCRYPT && (s->sflags & SYNTH_CRYPTO_SF_IV_GEN)) {
        next_iv(c, s, op->iv);
        memcpy((uint8_t *)iv, op->iv, 12); /* the guest puts it in its packet */
    } else if (iv && s->iv_len == 12) {
        memcpy(op->iv, iv, 12); /* the common case, as two moves */
    } else if (iv) {
        memcpy(op->iv, iv, s->iv_len);
    }
    if (d->opcode == SYNTH_OP_CRYPTO_DECRYPT) {
        memcpy(op->tag, tag, s->tag_len);
        op->tag_out = NULL;
    } else {
        op->tag_out = (uint8_t *)tag;
    }
    return SYNTH_ST_OK;
}

/* Run validated ops [from, k) and write their completions. */
/* Run ops [from, k); returns the bytes of those that completed OK, and adds the bytes of all of
 * them (an authentication failure costs the plugin as much as a success) to *work. */
static uint64_t run_ops(struct crypto_dev *c, struct synth_cpl *out, unsigned from, unsigned k, uint64_t *work)
{
    uint64_t bytes = 0;
    unsigned i;

    /* One call per run of consecutive ops served by the same plugin. */
    for (i = from; i < k;) {
        unsigned j = i + 1;
        while (j < k && c->ops[j].plugin == c->ops[i].plugin)
            j++;
        c->ops[i].plugin->crypto_burst(&c->ops[i], j - i);
        i = j;
    }
    for (i = from; i < k; i++) {
        struct synth_cpl *cpl = &out[c->op_desc[i]];
        cpl->status = (uint16_t)c->ops[i].status;
        cpl->result = c->ops[i].status == SYNTH_ST_OK ? c->ops[i].len : 0;
        if (cpl->status == SYNTH_ST_OK)
            bytes += c->ops[i].len;
        *work += c->ops[i].len;
    }
    return bytes;
}

/* Start fetching the line of an op's IV and the line of its AAD (usually the same one). */
static inline void prefetch_op_lines(const struct synth_hqueue *q, const struct synth_desc *d)
{
    uint32_t op = __atomic_load_n(&d->opcode, __ATOMIC_RELAXED);
    uint64_t iv = __atomic_load_n(&d->iv_off, __ATOMIC_RELAXED);
    uint64_t aad = __atomic_load_n(&d->aad_off, __ATOMIC_RELAXED);

    if (op != SYNTH_OP_CRYPTO_ENCRYPT && op != SYNTH_OP_CRYPTO_DECRYPT)
        return;
    if (iv < q->arena_size)
        __builtin_prefetch(q->arena + iv);
    if (aad < q->arena_size && (aad >> 6) != (iv >> 6))
        __builtin_prefetch(q->arena + aad);
}

/*
 * The guest has just written each op's IV and AAD, so those lines sit in its core's cache: start
 * fetching all of them as soon as the descriptors are taken, so that the misses overlap each other
 * and the rest of the setup (when the guest streams, the previous burst has fetched them already:
 * see crypto_process).
 */
static void crypto_prefetch(const struct synth_hqueue *q, const struct synth_desc *in, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++)
        prefetch_op_lines(q, &in[i]);
}

static void crypto_process(struct synth_hdev *d, struct synth_hqueue *q, const struct synth_desc *in,
                           struct synth_cpl *out, unsigned n)
{
    struct crypto_dev *c = cdev(d);
    unsigned i, k = 0;
    uint64_t bytes = 0;

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
            bytes += run_ops(c, out, 0, k, &d->work_bytes);
            k = 0;
            if (desc->opcode == SYNTH_OP_CRYPTO_SESSION_CREATE) {
                session_create(c, q, desc, d->features, cpl);
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
    /*
     * A guest that streams writes its next burst when the previous one completes, that is while
     * this one starts: halfway through this one it is in the ring, and its IV and AAD lines can
     * come over while the second half computes.
     */
    if (q->streaming && k > 1) {
        bytes += run_ops(c, out, 0, k / 2, &d->work_bytes);
        for (i = 0; i < n; i++) {
            const struct synth_desc *next = synthi_hq_peek(q, i);
            if (!next)
                break;
            prefetch_op_lines(q, next);
        }
        bytes += run_ops(c, out, k / 2, k, &d->work_bytes);
    } else {
        bytes += run_ops(c, out, 0, k, &d->work_bytes);
    }
    SYNTH_STAT_ADD(d->stats.bytes_in, bytes);
    SYNTH_STAT_ADD(d->stats.bytes_out, bytes);
}

static int usable(const struct synth_plugin *pl)
{
    char why[160];
    return pl && pl->abi_version == SYNTH_PLUGIN_ABI_VERSION && pl->dev_class == SYNTH_CLASS_CRYPTO &&
           synth_plugin_probe(pl, why, sizeof(why)) == 0;
}

/*
 * Which plugin serves each algorithm: the device's pin if it has one (it serves what that plugin
 * serves), else the class parameters' pin for the algorithm, else the available plugin of
 * highest priority that serves it.
 */
static int choose_plugins(struct crypto_dev *c, const struct synth_hdev_params *p)
{
    const struct synth_crypto_host_params *hp = NULL;
    uint32_t alg, i;

    if (p->class_params && p->class_params_size == sizeof(*hp))
        hp = p->class_params;
    if (p->plugin && !usable(p->plugin))
        return -ENOTSUP;
    for (alg = 1; alg < SYNTH_ALG_MAX; alg++) {
        const struct synth_plugin *best = NULL, *pl;
        if (p->plugin) {
            if (p->plugin->alg_mask() & (1u << alg))
                c->by_alg[alg] = p->plugin;
            continue;
        }
        if (hp && hp->pins[alg]) {
            if (!usable(hp->pins[alg]) || !(hp->pins[alg]->alg_mask() & (1u << alg)))
                return -ENOTSUP;
            c->by_alg[alg] = hp->pins[alg];
            continue;
        }
        for (i = 0; (pl = synth_plugin_builtin(i)) != NULL; i++)
            if (pl->dev_class == SYNTH_CLASS_CRYPTO && usable(pl) && (pl->alg_mask() & (1u << alg)) &&
                (!best || pl->priority > best->priority))
                best = pl;
        c->by_alg[alg] = best;
    }
    /* Names of the serving plugins, best first, for the header ("ipsec-mb,openssl"). */
    for (alg = 1; alg < SYNTH_ALG_MAX; alg++) {
        const struct synth_plugin *pl = c->by_alg[alg];
        if (pl)
            synthi_name_list_add(c->names, sizeof(c->names), pl->name);
    }
    return c->names[0] ? 0 : -ENOTSUP;
}

/* Bring back the vault's sessions under their old ids (a re-attaching backend). */
static void restore_sessions(struct synth_hdev *d, struct crypto_dev *c)
{
    uint32_t i;
    for (i = 0; i < c->max_sessions; i++) {
        struct vault_session *v = &c->vault->slots[i];
        struct crypto_slot *s = &c->slots[i];
        __atomic_store_n(&s->gen, v->gen ? v->gen : c->vault->gen0, __ATOMIC_RELAXED);
        if (!__atomic_load_n(&v->active, __ATOMIC_ACQUIRE))
            continue;
        if (!params_ok(&v->params) || slot_open(c, i, &v->params) != SYNTH_ST_OK) {
            v->active = 0;
            wipe((uint8_t *)&v->params, sizeof(v->params));
            continue;
        }
        memcpy(s->salt, v->salt, sizeof(s->salt));
        s->iv_next = v->iv_next;
        SYNTH_STAT_ADD(d->stats.restored_sessions, 1);
    }
}

static uint64_t crypto_vault_size(const struct synth_hdev_params *p)
{
    uint32_t max = p->max_sessions ? p->max_sessions : SYNTH_DEFAULT_MAX_SESSIONS;
    return sizeof(struct vault_crypto) + (uint64_t)max * sizeof(struct vault_session);
}

static int crypto_init(struct synth_hdev *d, const struct synth_hdev_params *p)
{
    struct crypto_dev *c;
    struct synth_crypto_cfg cfg;
    uint32_t max = p->max_sessions ? p->max_sessions : SYNTH_DEFAULT_MAX_SESSIONS, alg, i;
    uint16_t gen0 = 0;
    int rc;

    if (max > MAX_SESSIONS)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    rc = choose_plugins(c, p);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->slots = calloc(max, sizeof(*c->slots));
    if (!c->slots) {
        free(c);
        return -ENOMEM;
    }
    c->max_sessions = max;
    if (d->has_vault)
        c->vault = synthi_vault_class(&d->vault);
    d->cls = c;
    if (c->vault && d->attaching && c->vault->magic == VAULT_CRYPTO_MAGIC) {
        restore_sessions(d, c);
    } else {
        /*
         * Slot generations start at a random value per device, so that ids a guest kept from before
         * a backend restart without a vault do not silently name the sessions created after it.
         */
        if (getrandom(&gen0, sizeof(gen0), GRND_NONBLOCK) != sizeof(gen0))
            gen0 = (uint16_t)(time(NULL) ^ (uintptr_t)c);
        if (gen0 == 0)
            gen0 = 1;
        for (i = 0; i < max; i++)
            c->slots[i].gen = gen0;
        if (c->vault) {
            memset(c->vault, 0, crypto_vault_size(p));
            c->vault->gen0 = gen0;
            for (i = 0; i < max; i++)
                c->vault->slots[i].gen = gen0;
            __atomic_store_n(&c->vault->magic, VAULT_CRYPTO_MAGIC, __ATOMIC_RELEASE);
        }
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.max_sessions = max;
    for (alg = 1; alg < SYNTH_ALG_MAX; alg++)
        if (c->by_alg[alg])
            cfg.alg_mask |= 1u << alg;
    cfg.max_aad_len = MAX_AAD;
    memcpy(d->hdr->class_cfg, &cfg, sizeof(cfg));
    return 0;
}

/* Driver reset: its sessions go, from memory and from the vault. */
static void crypto_reset(struct synth_hdev *d)
{
    struct crypto_dev *c = cdev(d);
    uint32_t i;
    for (i = 0; i < c->max_sessions; i++)
        if (c->slots[i].active)
            slot_release(c, &c->slots[i]);
}

/* The backend lets go of the device: free the sessions here; the vault keeps them for the next one. */
static void crypto_fini(struct synth_hdev *d)
{
    struct crypto_dev *c = cdev(d);
    uint32_t i;
    if (!c)
        return;
    for (i = 0; i < c->max_sessions; i++)
        if (c->slots[i].active)
            c->slots[i].plugin->session_destroy(c->slots[i].psess);
    wipe((uint8_t *)c->slots, c->max_sessions * sizeof(*c->slots));
    free(c->slots);
    free(c);
    d->cls = NULL;
}

static const char *crypto_plugin_name(const struct synth_hdev *d) { return cdev(d)->names; }

static unsigned crypto_list_sessions(const struct synth_hdev *d, struct synth_session_info *out, unsigned max)
{
    const struct crypto_dev *c = cdev(d);
    unsigned i, n = 0;

    for (i = 0; i < c->max_sessions; i++) {
        const struct crypto_slot *s = &c->slots[i];
        const struct synth_plugin *pl;
        if (!__atomic_load_n(&s->active, __ATOMIC_ACQUIRE))
            continue;
        if (n < max) {
            memset(&out[n], 0, sizeof(out[n]));
            out[n].id = ((uint32_t)__atomic_load_n(&s->gen, __ATOMIC_RELAXED) << 16) | i;
            out[n].alg = __atomic_load_n(&s->alg, __ATOMIC_RELAXED);
            out[n].flags = __atomic_load_n(&s->sflags, __ATOMIC_RELAXED);
            pl = c->by_alg[out[n].alg < SYNTH_ALG_MAX ? out[n].alg : 0];
            snprintf(out[n].plugin, sizeof(out[n].plugin), "%s", pl ? pl->name : "?");
        }
        n++;
    }
    return n;
}

static uint32_t crypto_sessions(const struct synth_hdev *d)
{
    return __atomic_load_n(&cdev(d)->nsessions, __ATOMIC_RELAXED);
}

const struct synth_class_ops synthi_crypto_class = {
    .dev_class = SYNTH_CLASS_CRYPTO,
    .features = SYNTH_CRYPTO_F_SESSIONS | SYNTH_CRYPTO_F_OUT_OF_PLACE | SYNTH_CRYPTO_F_IV_GEN |
                SYNTH_CRYPTO_F_MAC_NO_IV,
    .init = crypto_init,
    .fini = crypto_fini,
    .reset = crypto_reset,
    .process = crypto_process,
    .prefetch = crypto_prefetch,
    .plugin_name = crypto_plugin_name,
    .sessions = crypto_sessions,
    .vault_size = crypto_vault_size,
    .list_sessions = crypto_list_sessions,
};
