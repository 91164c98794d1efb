/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Capacity calibration of packet I/O (see synth/calibrate.h): two packet devices joined by a
 * virtual wire, both guests driven from the calling thread, and only the host's poll passes timed.
 * A worker thread serves the two devices while the guests open them (the handshake needs a host
 * that answers); then the devices are taken back and polled here, one thread for both ends of the
 * wire, as host_packet.h requires of devices no worker owns.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "synth/calibrate.h"
#include "synth/guest.h"
#include "synth/guest_packet.h"
#include "synth/host.h"
#include "synth/host_packet.h"
#include "synth/clock_pvt.h"

#define REGION_SIZE (4u << 20)


struct end {
    char path[PATH_MAX];
    struct synth_hdev *host;
    struct synth_dev *guest;
    struct synth_pkt_chan *chan;
};

static int make_end(struct end *e, const char *dir, const char *name)
{
    struct synth_hdev_params p;

    if ((size_t)snprintf(e->path, sizeof(e->path), "%s/%s", dir, name) >= sizeof(e->path))
        return -ENAMETOOLONG;
    memset(&p, 0, sizeof(p));
    p.path = e->path;
    p.name = name;
    p.dev_class = SYNTH_CLASS_PACKET;
    p.num_queues = 2; /* one channel: a TX and an RX queue pair */
    p.region_size = REGION_SIZE;
    p.ring_entries = 256;
    p.uid = -1;
    p.gid = -1;
    return synth_hdev_create(&p, &e->host);
}

static void drop_end(struct end *e)
{
    if (e->chan)
        synth_pkt_chan_close(e->chan);
    if (e->guest)
        synth_dev_close(e->guest);
    if (e->host)
        synth_hdev_destroy(e->host, 1);
}

/* The timed loop: send bursts from a, take them at b, give everything back; time the host only. */
static int run(struct end *a, struct end *b, uint32_t size, uint64_t budget_ns, struct synth_calib_result *out)
{
    struct synth_pkt tx[SYNTH_CALIB_BURST], rx[SYNTH_CALIB_BURST];
    uint64_t host_ns = 0, start = synthi_now_ns(), t0, step;
    unsigned n, k, got;

    do {
        n = synth_pkt_tx_alloc(a->chan, tx, SYNTH_CALIB_BURST);
        for (k = 0; k < n; k++)
            tx[k].len = size;
        k = synth_pkt_send_packets(a->chan, tx, n);
        if (k < n)
            synth_pkt_tx_free(a->chan, tx + k, n - k);
        t0 = synthi_now_ns();
        synth_hdev_poll(a->host); /* takes the frames, delivers them into b's posted buffers */
        synth_hdev_poll(b->host); /* takes b's reposted buffers */
        step = synthi_now_ns() - t0;
        host_ns += step;
        if (step > out->burst_ns_max)
            out->burst_ns_max = step;
        got = synth_pkt_give_me_packets(b->chan, rx, SYNTH_CALIB_BURST);
        for (k = 0; k < got; k++)
            if (rx[k].len != size)
                return -EIO;
        out->ops += got;
        out->bytes += (uint64_t)got * size;
        synth_pkt_rx_free(b->chan, rx, got);
        synth_pkt_tx_reclaim(a->chan);
    } while (synthi_now_ns() - start < budget_ns);
    if (out->ops == 0)
        return -EIO;
    out->ns = host_ns ? host_ns : 1;
    out->gbps = (double)out->bytes * 8.0 / (double)out->ns;
    out->ops_per_s = (double)out->ops * 1e9 / (double)out->ns;
    out->latency_us = (double)out->ns / 1e3 / (double)out->ops;
    return 0;
}

int synth_calibrate_packet(const char *dir, uint32_t size, uint32_t millis, struct synth_calib_result *out)
{
    struct synth_worker_params wp = {.cpu = -1};
    struct synth_worker *w = NULL;
    struct end a, b;
    int rc;

    if (!dir || !out || size < SYNTH_PKT_MIN_FRAME || size > SYNTH_PKT_MAX_FRAME || millis == 0 ||
        millis > SYNTH_CALIB_MAX_MILLIS)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    out->dev_class = SYNTH_CLASS_PACKET;
    if ((rc = make_end(&a, dir, "calibrate-packet-a")) < 0 || (rc = make_end(&b, dir, "calibrate-packet-b")) < 0 ||
        (rc = synth_pkt_wire(a.host, 0, b.host, 0)) < 0 || (rc = synth_worker_create(&wp, &w)) < 0 ||
        (rc = synth_worker_add(w, a.host)) < 0 || (rc = synth_worker_add(w, b.host)) < 0)
        goto out;
    if ((rc = synth_dev_open_path(a.path, NULL, &a.guest)) < 0 || (rc = synth_dev_open_path(b.path, NULL, &b.guest)) < 0 ||
        (rc = synth_pkt_chan_open(a.guest, 0, NULL, &a.chan)) < 0 ||
        (rc = synth_pkt_chan_open(b.guest, 0, NULL, &b.chan)) < 0)
        goto out;
    synth_worker_remove(w, a.host);
    synth_worker_remove(w, b.host);
    rc = run(&a, &b, size, (uint64_t)millis * 1000000ull, out);
out:
    if (w) {
        synth_worker_destroy(w); /* before the devices: it may still serve them */
    }
    drop_end(&a);
    drop_end(&b);
    return rc;
}
