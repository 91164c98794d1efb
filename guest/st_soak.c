/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest soak: a continuous workload that the host can check op by op, meant to run while the
 * VM is migrated or saved and restored. At start, on each crypto device, one AES-256-GCM session
 * whose IVs the device chooses (IV_GEN) and one ChaCha20-Poly1305 session whose IVs are a counter
 * (guest-chosen); on each compression device, one zstd compression stream. They are never
 * re-created: an op that fails on them is printed as failed. Then rounds k = 0, 1, ... until
 * synth.soak_ms has passed (0: until SIGTERM/SIGINT), each doing on every crypto device a GCM seal,
 * the open of its result and a ChaCha20 seal, and on every compression device one chunk through
 * the stream (SYNC flush, so each chunk's output is complete). Every op prints one "soak" line;
 * a "tick" line comes every ~50 ms of guest time between ops. Messages, AAD, keys, IVs and chunks
 * are those of docs/guest.md ("The soak"); libvirt_synth/testbed/soak.py is the host's checker.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg.h"
#include "synth/clock_pvt.h"

#define TICK_NS 50000000ull /* a tick line every 50 ms of guest time */
#define MAX_FAILURES 16u    /* failed ops after which the soak stops */
#define MAX_RETRIES 8u      /* RETRY / QUOTA completions resubmitted per op */
#define MSG_MAX 256u        /* crypto messages: 32..256 bytes */
#define CHUNK_MAX 512u      /* stream chunks: 256..512 bytes */
#define PIECE 2048u         /* arena buffer each piece of stream output lands in */
#define OUT_MAX 4096u       /* one chunk's output, all pieces */

enum { KIND_GCM = 1, KIND_CHACHA = 2, KIND_ZSTD = 3 };

struct crypto_dev {
    struct sg_dev *d;
    struct synth_queue *q;
    unsigned index;               /* among the crypto devices: keys are synth.key XOR index */
    int gcm_ok, chacha_ok;        /* the session exists */
    uint32_t gcm, chacha;         /* session ids */
    int64_t data, aad, iv, tag;   /* arena buffers */
};

struct comp_dev {
    struct sg_dev *d;
    struct synth_queue *q;
    int ok;
    uint32_t stream;
    int64_t in, out;
};

struct soak {
    const struct sg_params *p;
    const struct sg_soak_opts *o;
    struct jw w;
    uint64_t lines, ops, failed, t0, next_tick;
};

/* ---- inputs ---- */

void sg_soak_defaults(struct sg_soak_opts *o)
{
    o->ms = 10000;
    o->gap_ms = 0;
    o->timeout_ms = 10000;
}

int sg_soak_set(struct sg_soak_opts *o, const char *name, const char *value)
{
    const struct sg_u32_param nums[] = {{"soak_ms", &o->ms, 0, UINT32_MAX}, {"soak_gap_ms", &o->gap_ms, 0, 60000},
                                        {"soak_timeout_ms", &o->timeout_ms, 1, 600000}};
    return sg_param_u32(nums, sizeof(nums) / sizeof(nums[0]), name, value);
}

static int set_opts(void *ctx, const char *name, const char *value) { return sg_soak_set(ctx, name, value); }

int sg_soak_file(struct sg_soak_opts *o, const char *path) { return sg_params_each(path, "synth.soak_", set_opts, o); }

/* ---- what both sides compute (docs/guest.md, "The soak") ---- */

static uint64_t text_seed(uint64_t seed, unsigned kind, uint64_t k) { return seed + ((uint64_t)kind << 40) + k; }

static uint32_t msg_len(unsigned kind, uint64_t k)
{
    return 32u + (uint32_t)((k * (kind == KIND_GCM ? 37u : 53u)) % 225u);
}

static uint32_t chunk_len(uint64_t k) { return 256u + (uint32_t)((k * 61u) % 257u); }

static void be64(uint8_t *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* AAD of op k: "SOAK" || be32(kind) || be64(k). */
static void make_aad(unsigned kind, uint64_t k, uint8_t aad[16])
{
    memcpy(aad, "SOAK", 4);
    aad[4] = aad[5] = aad[6] = 0;
    aad[7] = (uint8_t)kind;
    be64(aad + 8, k);
}

/* ---- lines ---- */

static void line_begin(struct soak *s, const char *op)
{
    jw_begin(&s->w, "soak");
    jw_uint(&s->w, "n", s->lines++);
    jw_str(&s->w, "op", op);
}

/* Status of an op, time and duration, then the line goes out. */
static void line_end(struct soak *s, const char *status, unsigned retries, uint64_t t_start)
{
    uint64_t t = synthi_now_ns();
    jw_str(&s->w, "status", status);
    if (retries)
        jw_uint(&s->w, "retries", retries);
    jw_uint(&s->w, "t", t);
    jw_uint(&s->w, "dur", t - t_start);
    jw_end(&s->w);
    s->ops++;
    if (strcmp(status, "ok"))
        s->failed++;
}

static void tick(struct soak *s)
{
    uint64_t t = synthi_now_ns();
    if (t < s->next_tick)
        return;
    jw_begin(&s->w, "soak");
    jw_uint(&s->w, "n", s->lines++);
    jw_str(&s->w, "op", "tick");
    jw_uint(&s->w, "t", t);
    jw_end(&s->w);
    s->next_tick = t + TICK_NS;
}

static void session_line(struct soak *s, struct sg_dev *d, unsigned index, const char *kind, uint32_t id,
                         const char *status)
{
    jw_begin(&s->w, "soak-session");
    jw_str(&s->w, "dev", d->where);
    jw_uint(&s->w, "index", index);
    jw_str(&s->w, "kind", kind);
    if (!strcmp(status, "ok"))
        jw_uint(&s->w, "id", id);
    jw_str(&s->w, "status", status);
    jw_end(&s->w);
    if (strcmp(status, "ok") && strcmp(status, "not served"))
        s->failed++;
}

/* ---- ops ---- */

/*
 * Before an op touches its arena buffers: the late completion of an op that timed out is waited
 * for once more (the device may still be writing those buffers), so the queue is free again.
 * Returns 0, or -EBUSY (still in flight: the op is not run).
 */
static int settle(struct soak *s, struct synth_queue *q)
{
    struct synth_cpl late;
    if (!synth_q_inflight(q))
        return 0;
    if (synth_q_wait(q, (int)s->o->timeout_ms) == 0 && synth_q_poll_burst(q, &late, 1) == 1)
        return 0;
    return -EBUSY;
}

/*
 * One op, synchronously, with the soak's timeout (after settle()). RETRY and QUOTA completions (not executed) are
 * submitted again, up to MAX_RETRIES times, counted in *retries. Returns 0 (*c holds the
 * completion), a positive SYNTH_ST_*, or a negative errno (-ETIMEDOUT, -EIO, -EBUSY).
 */
static int exec1(struct soak *s, struct sg_dev *d, struct synth_queue *q, const struct synth_desc *desc,
                 struct synth_cpl *c, unsigned *retries)
{
    for (;;) {
        int rc;
        if (synth_q_submit_burst(q, desc, 1) != 1)
            return synth_dev_needs_reset(d->dev) ? -EIO : -EBUSY;
        rc = synth_q_wait(q, (int)s->o->timeout_ms);
        if (rc < 0)
            return rc;
        if (synth_q_poll_burst(q, c, 1) != 1)
            return -EIO;
        if ((c->status == SYNTH_ST_RETRY || c->status == SYNTH_ST_QUOTA) && *retries < MAX_RETRIES) {
            (*retries)++;
            if (c->status == SYNTH_ST_QUOTA)
                sg_nap_ns(1000000);
            continue;
        }
        return (int)c->status;
    }
}

static int crypto_exec(struct soak *s, struct crypto_dev *c, uint16_t opcode, uint32_t sid, uint32_t len,
                       uint64_t k, unsigned *retries)
{
    struct synth_desc desc;
    struct synth_cpl cpl;
    synth_crypto_desc(&desc, opcode, sid, (uint32_t)c->data, (uint32_t)c->data, len, (uint32_t)c->aad, 16,
                      (uint32_t)c->iv, (uint32_t)c->tag, k);
    return exec1(s, c->d, c->q, &desc, &cpl, retries);
}

/* AES-256-GCM seal (the device picks the IV), then the open of what came back. */
static void gcm_round(struct soak *s, struct crypto_dev *c, uint64_t k)
{
    uint32_t len = msg_len(KIND_GCM, k);
    uint8_t msg[MSG_MAX], iv[12];
    uint8_t *data = synth_buf_ptr(c->q, (uint32_t)c->data), *ivp = synth_buf_ptr(c->q, (uint32_t)c->iv);
    unsigned retries = 0;
    uint64_t t;
    int rc;

    sg_text(text_seed(s->p->seed, KIND_GCM, k), msg, len);
    t = synthi_now_ns();
    rc = settle(s, c->q);
    if (rc == 0) {
        memcpy(data, msg, len);
        make_aad(KIND_GCM, k, synth_buf_ptr(c->q, (uint32_t)c->aad));
        memset(ivp, 0, 12); /* a device counter starts at 1: an IV it wrote is never all zero */
        rc = crypto_exec(s, c, SYNTH_OP_CRYPTO_ENCRYPT, c->gcm, len, k, &retries);
        memcpy(iv, ivp, 12);
    }
    line_begin(s, "gcm-seal");
    jw_uint(&s->w, "k", k);
    jw_str(&s->w, "dev", c->d->where);
    jw_uint(&s->w, "id", c->gcm);
    jw_uint(&s->w, "len", len);
    if (rc == 0) {
        jw_hex(&s->w, "iv", iv, 12);
        jw_hex(&s->w, "tag", synth_buf_ptr(c->q, (uint32_t)c->tag), 16);
    }
    line_end(s, sg_status(rc), retries, t);
    tick(s);

    int seal_rc = rc;
    retries = 0;
    t = synthi_now_ns();
    if (seal_rc == 0) {
        memcpy(ivp, iv, 12);
        rc = crypto_exec(s, c, SYNTH_OP_CRYPTO_DECRYPT, c->gcm, len, k, &retries);
    }
    line_begin(s, "gcm-open");
    jw_uint(&s->w, "k", k);
    jw_str(&s->w, "dev", c->d->where);
    jw_uint(&s->w, "id", c->gcm);
    jw_uint(&s->w, "len", len);
    line_end(s, seal_rc ? "not run" : rc ? sg_status(rc) : memcmp(data, msg, len) ? "wrong plaintext" : "ok",
             retries, t);
    tick(s);
}

/* ChaCha20-Poly1305 seal with IV synth.iv[0:4] || be64(k). */
static void chacha_round(struct soak *s, struct crypto_dev *c, uint64_t k)
{
    uint32_t len = msg_len(KIND_CHACHA, k);
    uint8_t iv[12];
    unsigned retries = 0;
    uint64_t t;
    int rc;

    memcpy(iv, s->p->iv.p, 4);
    be64(iv + 4, k);
    t = synthi_now_ns();
    rc = settle(s, c->q);
    if (rc == 0) {
        sg_text(text_seed(s->p->seed, KIND_CHACHA, k), synth_buf_ptr(c->q, (uint32_t)c->data), len);
        make_aad(KIND_CHACHA, k, synth_buf_ptr(c->q, (uint32_t)c->aad));
        memcpy(synth_buf_ptr(c->q, (uint32_t)c->iv), iv, 12);
        rc = crypto_exec(s, c, SYNTH_OP_CRYPTO_ENCRYPT, c->chacha, len, k, &retries);
    }
    line_begin(s, "chacha-seal");
    jw_uint(&s->w, "k", k);
    jw_str(&s->w, "dev", c->d->where);
    jw_uint(&s->w, "id", c->chacha);
    jw_uint(&s->w, "len", len);
    jw_hex(&s->w, "iv", iv, 12);
    if (rc == 0)
        jw_hex(&s->w, "tag", synth_buf_ptr(c->q, (uint32_t)c->tag), 16);
    line_end(s, sg_status(rc), retries, t);
    tick(s);
}

/* One STREAM op and its drain: every piece of output into out (OUT_MAX bytes). */
static int stream_feed(struct soak *s, struct comp_dev *z, uint32_t flush, uint32_t len, uint8_t *out,
                       uint32_t *out_len, uint16_t *flags, unsigned *retries)
{
    struct synth_desc desc;
    struct synth_cpl cpl;
    uint32_t src_len = len;
    int rc;

    *out_len = 0;
    do {
        synth_comp_stream_desc(&desc, z->stream, flush, (uint32_t)z->in, src_len, (uint32_t)z->out, PIECE, 0);
        rc = exec1(s, z->d, z->q, &desc, &cpl, retries);
        if (rc != 0)
            return rc;
        if (cpl.result > PIECE || *out_len + cpl.result > OUT_MAX)
            return -EOVERFLOW;
        memcpy(out + *out_len, synth_buf_ptr(z->q, (uint32_t)z->out), cpl.result);
        *out_len += cpl.result;
        *flags = cpl.flags;
        src_len = 0; /* drains carry no input */
    } while (cpl.flags & SYNTH_CPL_F_MORE);
    return 0;
}

/* Chunk k of the text through the stream, flushed; or (finish) the end of the frame after k chunks. */
static void zstd_round(struct soak *s, struct comp_dev *z, uint64_t k, int finish)
{
    static uint8_t out[OUT_MAX];
    uint32_t len = finish ? 0 : chunk_len(k), n = 0;
    unsigned retries = 0;
    uint16_t flags = 0;
    uint64_t t;
    int rc;

    t = synthi_now_ns();
    rc = settle(s, z->q);
    if (rc == 0 && !finish)
        sg_text(text_seed(s->p->seed, KIND_ZSTD, k), synth_buf_ptr(z->q, (uint32_t)z->in), len);
    if (rc == 0)
        rc = stream_feed(s, z, finish ? SYNTH_FLUSH_FINISH : SYNTH_FLUSH_SYNC, len, out, &n, &flags, &retries);
    line_begin(s, finish ? "zstd-end" : "zstd");
    jw_uint(&s->w, "k", k);
    jw_str(&s->w, "dev", z->d->where);
    jw_uint(&s->w, "id", z->stream);
    jw_uint(&s->w, "len", len);
    if (rc == 0)
        jw_hex(&s->w, "out", out, n);
    line_end(s, rc ? sg_status(rc) : finish && !(flags & SYNTH_CPL_F_END) ? "no end of stream" : "ok", retries, t);
    tick(s);
}

/* ---- setup ---- */

static void crypto_setup(struct soak *s, struct crypto_dev *c)
{
    struct synth_crypto_session_params sp;
    const char *kinds[2] = {"aes-256-gcm", "chacha20-poly1305"};
    uint32_t algs[2] = {SYNTH_ALG_AES256_GCM, SYNTH_ALG_CHACHA20_POLY1305};

    c->q = synth_dev_queue(c->d->dev, 0);
    c->data = synth_buf_alloc(c->q, MSG_MAX);
    c->aad = synth_buf_alloc(c->q, SYNTH_BUF_ALIGN);
    c->iv = synth_buf_alloc(c->q, SYNTH_BUF_ALIGN);
    c->tag = synth_buf_alloc(c->q, SYNTH_BUF_ALIGN);
    for (int i = 0; i < 2; i++) {
        uint32_t id = 0;
        int rc, *ok = i ? &c->chacha_ok : &c->gcm_ok;
        if (!(c->d->info.crypto_alg_mask & (1u << algs[i]))) {
            session_line(s, c->d, c->index, kinds[i], 0, "not served");
            continue;
        }
        if (c->data < 0 || c->aad < 0 || c->iv < 0 || c->tag < 0) {
            session_line(s, c->d, c->index, kinds[i], 0, sg_status(-ENOMEM));
            continue;
        }
        if (s->p->key.len < 64 || s->p->iv.len < 4) {
            session_line(s, c->d, c->index, kinds[i], 0, "synth.key is shorter than 64 bytes");
            continue;
        }
        memset(&sp, 0, sizeof(sp));
        sp.alg = (uint16_t)algs[i];
        sp.key_len = 32;
        sp.iv_len = 12;
        sp.tag_len = 16;
        sp.flags = i ? 0 : SYNTH_CRYPTO_SF_IV_GEN;
        for (unsigned b = 0; b < 32; b++)
            sp.key[b] = (uint8_t)(s->p->key.p[32u * (unsigned)i + b] ^ c->index);
        rc = synth_crypto_session_create(c->q, &sp, &id);
        memset(sp.key, 0, sizeof(sp.key));
        session_line(s, c->d, c->index, kinds[i], id, sg_status(rc));
        if (rc == 0) {
            *ok = 1;
            *(i ? &c->chacha : &c->gcm) = id;
        }
    }
}

static void comp_setup(struct soak *s, struct comp_dev *z)
{
    struct synth_comp_stream_params sp = {.alg = SYNTH_CALG_ZSTD, .direction = SYNTH_COMP_DIR_COMPRESS};
    struct synth_comp_cfg cfg;
    uint32_t id = 0;
    int rc;

    z->q = synth_dev_queue(z->d->dev, 0);
    if (synth_comp_get_cfg(z->d->dev, &cfg) < 0 || !(cfg.alg_mask & (1u << SYNTH_CALG_ZSTD)) ||
        !(z->d->info.features_accepted & SYNTH_COMP_F_STREAMS)) {
        session_line(s, z->d, 0, "zstd-stream", 0, "not served");
        return;
    }
    z->in = synth_buf_alloc(z->q, CHUNK_MAX);
    z->out = synth_buf_alloc(z->q, PIECE);
    if (z->in < 0 || z->out < 0) {
        session_line(s, z->d, 0, "zstd-stream", 0, sg_status(-ENOMEM));
        return;
    }
    rc = synth_comp_stream_create(z->q, &sp, &id);
    session_line(s, z->d, 0, "zstd-stream", id, sg_status(rc));
    if (rc == 0) {
        z->ok = 1;
        z->stream = id;
    }
}

static void gap(struct soak *s, uint64_t ns)
{
    uint64_t end = synthi_now_ns() + ns;
    for (uint64_t t = synthi_now_ns(); t < end && !sg_quit; t = synthi_now_ns()) {
        uint64_t step = end - t < TICK_NS / 5 ? end - t : TICK_NS / 5;
        sg_nap_ns(step);
        tick(s);
    }
}

int sg_soak(struct sg_dev *devs, unsigned n, const struct sg_params *p, const struct sg_soak_opts *o)
{
    static struct crypto_dev cdev[SG_MAX_DEVS];
    static struct comp_dev zdev[SG_MAX_DEVS];
    struct soak s = {.p = p, .o = o};
    unsigned nc = 0, nz = 0, live = 0;
    uint64_t rounds = 0, end_ns = (uint64_t)o->ms * 1000000ull;

    sg_quit_on_signals();
    s.t0 = synthi_now_ns();
    jw_begin(&s.w, "soak-start");
    jw_uint(&s.w, "seed", p->seed);
    jw_uint(&s.w, "soak_ms", o->ms);
    jw_uint(&s.w, "gap_ms", o->gap_ms);
    jw_uint(&s.w, "timeout_ms", o->timeout_ms);
    jw_uint(&s.w, "t", s.t0);
    jw_end(&s.w);
    for (unsigned i = 0; i < n; i++) {
        if (devs[i].info.dev_class == SYNTH_CLASS_CRYPTO) {
            cdev[nc].d = &devs[i];
            cdev[nc].index = nc;
            crypto_setup(&s, &cdev[nc]);
            live += cdev[nc].gcm_ok + cdev[nc].chacha_ok;
            nc++;
        } else if (devs[i].info.dev_class == SYNTH_CLASS_COMPRESS) {
            zdev[nz].d = &devs[i];
            comp_setup(&s, &zdev[nz]);
            live += zdev[nz].ok;
            nz++;
        }
    }
    if (!live) {
        jw_begin(&s.w, "error");
        jw_str(&s.w, "what", "nothing to soak: no AES-256-GCM, ChaCha20-Poly1305 or zstd stream could be set up");
        jw_end(&s.w);
        s.failed++;
    }
    s.next_tick = synthi_now_ns();
    tick(&s);
    while (live && !sg_quit && s.failed < MAX_FAILURES) {
        for (unsigned i = 0; i < nc; i++) {
            if (cdev[i].gcm_ok)
                gcm_round(&s, &cdev[i], rounds);
            if (cdev[i].chacha_ok)
                chacha_round(&s, &cdev[i], rounds);
        }
        for (unsigned i = 0; i < nz; i++)
            if (zdev[i].ok)
                zstd_round(&s, &zdev[i], rounds, 0);
        rounds++;
        if (end_ns && synthi_now_ns() - s.t0 >= end_ns)
            break;
        if (o->gap_ms)
            gap(&s, (uint64_t)o->gap_ms * 1000000ull);
    }
    for (unsigned i = 0; i < nz; i++) {
        if (!zdev[i].ok)
            continue;
        zstd_round(&s, &zdev[i], rounds, 1); /* the end of the frame: FINISH */
        synth_comp_stream_destroy(zdev[i].q, zdev[i].stream);
    }
    for (unsigned i = 0; i < nc; i++) {
        if (cdev[i].gcm_ok)
            synth_crypto_session_destroy(cdev[i].q, cdev[i].gcm);
        if (cdev[i].chacha_ok)
            synth_crypto_session_destroy(cdev[i].q, cdev[i].chacha);
    }
    jw_begin(&s.w, "summary");
    jw_str(&s.w, "command", "soak");
    jw_uint(&s.w, "devices", nc + nz);
    jw_uint(&s.w, "rounds", rounds);
    jw_uint(&s.w, "ops", s.ops);
    jw_uint(&s.w, "lines", s.lines);
    jw_uint(&s.w, "failed", s.failed);
    jw_uint(&s.w, "elapsed_ms", (synthi_now_ns() - s.t0) / 1000000ull);
    jw_end(&s.w);
    free(s.w.buf);
    return s.failed ? 1 : 0;
}
