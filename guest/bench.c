/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest bench: a short throughput run (synth.bench_ms) per device, one "bench" line each:
 *   crypto    AES-GCM (256 if served) on 1 KiB buffers, 32 ops in flight
 *   compress  one-shot compression of 64 KiB of text, with lz4 if served (else the first algorithm)
 *   packet    64-byte frames sent in bursts of 32 on channel 0 (delivered or dropped, as linked)
 * Figures under TCG say little about the host; they show that the path sustains load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg.h"
#include "synth/clock_pvt.h"

#define INFLIGHT 32u
#define CRYPTO_LEN 1024u
#define COMP_LEN (64u << 10)


struct run {
    const char *what;
    uint64_t ops, bytes, errors, ns;
};

static void bench_crypto(struct sg_dev *d, uint64_t budget_ns, struct run *r)
{
    int aes256 = !!(d->info.crypto_alg_mask & (1u << SYNTH_ALG_AES256_GCM));
    struct synth_crypto_session_params sp = {.alg = aes256 ? SYNTH_ALG_AES256_GCM : SYNTH_ALG_AES128_GCM,
                                             .key_len = aes256 ? 32 : 16, .iv_len = 12, .tag_len = 16};
    struct synth_queue *q = synth_dev_queue(d->dev, 0);
    struct synth_desc desc[INFLIGHT];
    struct synth_cpl cpl[INFLIGHT];
    uint32_t sid, slot = CRYPTO_LEN + 64;
    int64_t base;

    r->what = aes256 ? "aes-256-gcm 1KiB" : "aes-128-gcm 1KiB";
    if (!(d->info.crypto_alg_mask & (3u << SYNTH_ALG_AES128_GCM)) || synth_crypto_session_create(q, &sp, &sid))
        return;
    base = synth_buf_alloc(q, slot * INFLIGHT);
    if (base < 0)
        goto out;
    for (uint32_t i = 0; i < INFLIGHT; i++) {
        uint32_t off = (uint32_t)base + slot * i;
        memset(synth_buf_ptr(q, off), (int)i, slot);
        synth_crypto_desc(&desc[i], SYNTH_OP_CRYPTO_ENCRYPT, sid, off, off, CRYPTO_LEN, 0, 0, off + CRYPTO_LEN,
                          off + CRYPTO_LEN + 16, i);
    }
    uint64_t t0 = synthi_now_ns(), free_slots = INFLIGHT;
    uint32_t next = 0;
    while (synthi_now_ns() - t0 < budget_ns || synth_q_inflight(q)) {
        if (synthi_now_ns() - t0 < budget_ns && free_slots) {
            /* resubmit the slots whose completions came back (cookie = slot) */
            unsigned k = synth_q_submit_burst(q, &desc[next], (unsigned)(free_slots < INFLIGHT - next ? free_slots
                                                                                                : INFLIGHT - next));
            next = (next + k) % INFLIGHT;
            free_slots -= k;
        }
        if (synth_q_wait(q, 5000) < 0)
            break;
        unsigned got = synth_q_poll_burst(q, cpl, INFLIGHT);
        for (unsigned i = 0; i < got; i++) {
            r->ops++;
            r->errors += cpl[i].status != SYNTH_ST_OK;
        }
        free_slots += got;
    }
    r->ns = synthi_now_ns() - t0;
    r->bytes = r->ops * CRYPTO_LEN;
    synth_buf_free(q, (uint32_t)base, slot * INFLIGHT);
out:
    synth_crypto_session_destroy(q, sid);
}

static void bench_compress(struct sg_dev *d, uint64_t budget_ns, struct run *r)
{
    static const char *const names[] = {"", "deflate", "zlib", "gzip", "zstd", "lz4"};
    struct synth_queue *q = synth_dev_queue(d->dev, 0);
    struct synth_comp_cfg cfg;
    uint32_t alg = 0, bound = (uint32_t)synth_comp_bound(COMP_LEN), n;
    static char what[48];

    if (synth_comp_get_cfg(d->dev, &cfg) < 0)
        return;
    for (uint32_t a = SYNTH_CALG_MAX - 1; a >= 1 && !alg; a--)
        if (cfg.alg_mask & (1u << a))
            alg = a;
    int64_t in = synth_buf_alloc(q, COMP_LEN), out = synth_buf_alloc(q, bound);
    snprintf(what, sizeof(what), "%s compress 64KiB", alg ? names[alg] : "none");
    r->what = what;
    if (alg && in >= 0 && out >= 0) {
        sg_text(7, synth_buf_ptr(q, (uint32_t)in), COMP_LEN);
        uint64_t t0 = synthi_now_ns();
        while (synthi_now_ns() - t0 < budget_ns) {
            int rc = synth_comp_compress(q, alg, 0, (uint32_t)in, COMP_LEN, (uint32_t)out, bound, &n);
            r->ops++;
            r->errors += rc != 0;
            if (rc < 0)
                break;
        }
        r->ns = synthi_now_ns() - t0;
        r->bytes = r->ops * COMP_LEN;
    }
    if (out >= 0)
        synth_buf_free(q, (uint32_t)out, bound);
    if (in >= 0)
        synth_buf_free(q, (uint32_t)in, COMP_LEN);
}

static void bench_packet(struct sg_dev *d, uint64_t budget_ns, struct run *r)
{
    struct synth_pkt_chan_opts opts = {.buf_size = 128};
    struct synth_pkt_chan_stats st;
    struct synth_pkt pkts[32];
    struct synth_pkt_chan *ch;

    r->what = "64B frames sent";
    if (synth_pkt_chan_open(d->dev, 0, &opts, &ch) < 0)
        return;
    uint64_t t0 = synthi_now_ns();
    while (synthi_now_ns() - t0 < budget_ns) {
        unsigned n = synth_pkt_tx_alloc(ch, pkts, 32);
        for (unsigned i = 0; i < n; i++) {
            sg_frame(3, 0, i, pkts[i].data, 64);
            pkts[i].len = 64;
        }
        unsigned k = synth_pkt_send_packets(ch, pkts, n);
        synth_pkt_tx_free(ch, pkts + k, n - k);
        r->ops += k;
        if (!n) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL); /* every buffer is with the device: let it complete some */
        }
    }
    r->ns = synthi_now_ns() - t0;
    for (uint64_t end = synthi_now_ns() + 2000000000ull; synthi_now_ns() < end;) {
        synth_pkt_tx_reclaim(ch);
        synth_pkt_chan_get_stats(ch, &st);
        if (st.tx_ok + st.tx_dropped >= st.tx_sent)
            break;
    }
    r->bytes = r->ops * 64;
    r->errors = 0; /* drops are the link's business here, not errors */
    synth_pkt_chan_close(ch);
}

void sg_bench(struct sg_dev *devs, unsigned n, const struct sg_params *p)
{
    uint64_t budget = (uint64_t)p->bench_ms * 1000000ull;
    struct jw w = {0};

    for (unsigned i = 0; i < n; i++) {
        struct run r = {"none", 0, 0, 0, 0};
        switch (devs[i].info.dev_class) {
        case SYNTH_CLASS_CRYPTO:
            bench_crypto(&devs[i], budget, &r);
            break;
        case SYNTH_CLASS_COMPRESS:
            bench_compress(&devs[i], budget, &r);
            break;
        case SYNTH_CLASS_PACKET:
            bench_packet(&devs[i], budget, &r);
            break;
        default:
            continue;
        }
        double s = r.ns ? (double)r.ns / 1e9 : 0;
        char rate[64];
        jw_begin(&w, "bench");
        jw_str(&w, "dev", devs[i].where);
        jw_str(&w, "class", sg_class_name(devs[i].info.dev_class));
        jw_str(&w, "what", r.what);
        jw_uint(&w, "ops", r.ops);
        jw_uint(&w, "bytes", r.bytes);
        jw_uint(&w, "errors", r.errors);
        jw_uint(&w, "elapsed_us", r.ns / 1000);
        snprintf(rate, sizeof(rate), "%.1f", s > 0 ? (double)r.ops / s : 0.0);
        jw_raw(&w, "ops_per_s", rate);
        snprintf(rate, sizeof(rate), "%.2f", s > 0 ? (double)r.bytes / s / 1e6 : 0.0);
        jw_raw(&w, "mb_per_s", rate);
        jw_end(&w);
    }
    jw_begin(&w, "summary");
    jw_str(&w, "command", "bench");
    jw_uint(&w, "devices", n);
    jw_end(&w);
    free(w.buf);
}
