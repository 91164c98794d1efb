/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest selftest, packet class: every packet device sends synth.frames frames on channel 0
 * (frame k of the i-th packet device is sg_frame(synth.seed, i, k): its source MAC ends in i, its
 * destination MAC in i ^ 1), then each device whose channel 0 has a link collects the frames that
 * arrive within synth.wait_ms. One "packet" line per device: what it sent and how the device
 * completed it, the frames it received (hex, for the host to check), the device's own counters.
 * A received frame must be exactly a frame some device sent, in order per sender.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg.h"

#define MAX_PKT_DEVS 8
#define MAX_RX 256
#define FRAME_MAX 512

static const char *const link_names[] = {"none", "wire", "tap"};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct pdev {
    struct sg_dev *d;
    struct synth_pkt_chan *ch;
    struct synth_pkt_cfg before;
    unsigned link;
    int open_rc;
    unsigned sent, received, valid;
    uint8_t *rx[MAX_RX];
    uint32_t rx_len[MAX_RX];
    unsigned next_k[MAX_PKT_DEVS]; /* next frame number expected from each sender */
};

static unsigned send_frames(struct pdev *pd, unsigned idx, const struct sg_params *p)
{
    struct synth_pkt pkts[64];
    unsigned n = synth_pkt_tx_alloc(pd->ch, pkts, p->frames), k;
    for (k = 0; k < n; k++) {
        size_t len = sg_frame_len(idx, k);
        sg_frame(p->seed, idx, k, pkts[k].data, len);
        pkts[k].len = (uint32_t)len;
    }
    k = synth_pkt_send_packets(pd->ch, pkts, n);
    synth_pkt_tx_free(pd->ch, pkts + k, n - k);
    return k;
}

/* Is this frame the next one its sender sent? (sender = last byte of the source MAC) */
static int check_frame(struct pdev *pd, const uint8_t *f, uint32_t len, unsigned n_devs, const struct sg_params *p)
{
    static uint8_t want[FRAME_MAX];
    unsigned src = len >= 14 ? f[11] : MAX_PKT_DEVS, k;
    if (src >= n_devs || src >= MAX_PKT_DEVS)
        return 0;
    k = pd->next_k[src]++;
    if (sg_frame_len(src, k) != len || len > FRAME_MAX)
        return 0;
    sg_frame(p->seed, src, k, want, len);
    return memcmp(want, f, len) == 0;
}

static void receive(struct pdev *pd, unsigned n_devs, const struct sg_params *p)
{
    struct synth_pkt pkts[32];
    uint64_t deadline = now_ms() + p->wait_ms;
    while (pd->received < p->frames && pd->received < MAX_RX) {
        if (synth_pkt_wait_rx(pd->ch, (int)(deadline > now_ms() ? deadline - now_ms() : 0)) < 0)
            break;
        unsigned n = synth_pkt_give_me_packets(pd->ch, pkts, 32);
        for (unsigned i = 0; i < n && pd->received < MAX_RX; i++) {
            pd->rx[pd->received] = malloc(pkts[i].len);
            if (pd->rx[pd->received])
                memcpy(pd->rx[pd->received], pkts[i].data, pkts[i].len);
            pd->rx_len[pd->received] = pkts[i].len;
            pd->valid += check_frame(pd, pkts[i].data, pkts[i].len, n_devs, p);
            pd->received++;
        }
        synth_pkt_rx_free(pd->ch, pkts, n);
    }
}

static void report(struct pdev *pd, const struct sg_params *p, unsigned *pass, unsigned *fail)
{
    struct synth_pkt_chan_stats st = {0};
    struct synth_pkt_cfg after = {0};
    struct jw w = {0};
    char counters[256];
    int ok;

    if (pd->ch) {
        uint64_t deadline = now_ms() + 2000;
        do {
            synth_pkt_tx_reclaim(pd->ch);
            synth_pkt_chan_get_stats(pd->ch, &st);
        } while (st.tx_ok + st.tx_dropped < pd->sent && now_ms() < deadline);
    }
    synth_pkt_dev_counters(pd->d->dev, &after);
    jw_begin(&w, "packet");
    jw_str(&w, "dev", pd->d->where);
    jw_str(&w, "open", sg_status(pd->open_rc));
    jw_str(&w, "link", pd->link < 3 ? link_names[pd->link] : "unknown");
    jw_uint(&w, "sent", pd->sent);
    jw_uint(&w, "tx_ok", st.tx_ok);
    jw_uint(&w, "tx_dropped", st.tx_dropped);
    jw_uint(&w, "received", pd->received);
    jw_uint(&w, "received_valid", pd->valid);
    snprintf(counters, sizeof(counters),
             "{\"tx_frames\":%llu,\"tx_drops\":%llu,\"rx_frames\":%llu,\"rx_drops\":%llu}",
             (unsigned long long)(after.tx_frames - pd->before.tx_frames),
             (unsigned long long)(after.tx_drops - pd->before.tx_drops),
             (unsigned long long)(after.rx_frames - pd->before.rx_frames),
             (unsigned long long)(after.rx_drops - pd->before.rx_drops));
    jw_raw(&w, "dev_counters", counters);
    {
        size_t m = 1, cap = 4;
        for (unsigned i = 0; i < pd->received; i++)
            cap += 2 * pd->rx_len[i] + 4;
        char *arr = malloc(cap);
        if (arr) {
            arr[0] = '[';
            for (unsigned i = 0; i < pd->received; i++) {
                m += (size_t)sprintf(arr + m, "%s\"", i ? "," : "");
                for (uint32_t k = 0; pd->rx[i] && k < pd->rx_len[i]; k++)
                    m += (size_t)sprintf(arr + m, "%02x", pd->rx[i][k]);
                arr[m++] = '"';
            }
            arr[m++] = ']';
            arr[m] = 0;
            jw_raw(&w, "frames", arr);
            free(arr);
        }
    }
    /* Every frame taken and completed; with a link, every frame expected arrived intact; without
     * one, every frame was dropped and counted (docs/packets.md). */
    ok = pd->open_rc == 0 && pd->sent == p->frames && st.tx_ok + st.tx_dropped == pd->sent;
    if (pd->link == SYNTH_PKT_LINK_NONE)
        ok = ok && st.tx_dropped == pd->sent && after.tx_drops - pd->before.tx_drops == pd->sent;
    else if (pd->link == SYNTH_PKT_LINK_WIRE)
        ok = ok && st.tx_ok == pd->sent && pd->received == p->frames && pd->valid == pd->received;
    jw_str(&w, "result", ok ? "pass" : "fail");
    jw_end(&w);
    ok ? (*pass)++ : (*fail)++;
    free(w.buf);
}

void sg_packet_selftest(struct sg_dev *devs, unsigned n, const struct sg_params *p, unsigned *pass,
                        unsigned *fail)
{
    static struct pdev pds[MAX_PKT_DEVS];
    struct synth_pkt_chan_opts opts = {.buf_size = 2048, .rx_bufs = 64, .tx_bufs = 64};
    unsigned np = 0;

    memset(pds, 0, sizeof(pds));
    for (unsigned i = 0; i < n && np < MAX_PKT_DEVS; i++) {
        if (devs[i].info.dev_class != SYNTH_CLASS_PACKET)
            continue;
        struct pdev *pd = &pds[np++];
        pd->d = &devs[i];
        synth_pkt_dev_counters(pd->d->dev, &pd->before);
        pd->link = pd->before.link[0];
        pd->open_rc = synth_pkt_chan_open(pd->d->dev, 0, &opts, &pd->ch);
    }
    for (unsigned i = 0; i < np; i++)
        if (pds[i].open_rc == 0)
            pds[i].sent = send_frames(&pds[i], i, p);
    for (unsigned i = 0; i < np; i++)
        if (pds[i].open_rc == 0 && pds[i].link != SYNTH_PKT_LINK_NONE)
            receive(&pds[i], np, p);
    for (unsigned i = 0; i < np; i++) {
        report(&pds[i], p, pass, fail);
        for (unsigned k = 0; k < pds[i].received; k++)
            free(pds[i].rx[k]);
        if (pds[i].ch)
            synth_pkt_chan_close(pds[i].ch);
    }
}
