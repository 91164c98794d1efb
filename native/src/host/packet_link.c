/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet device links: virtual wires between channels, TAP interfaces, and the counters. The
 * control calls (wire, tap, unlink) run while no worker serves the devices they change; the data
 * path parts (TAP reads) run on the serving thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "packet_pvt.h"

#define TAP_DRAIN_MAX 4096u /* a TAP queues 1000 frames by default (txqueuelen) */

static int served(const struct synth_hdev *d)
{
    return atomic_load_explicit(&((struct synth_hdev *)d)->owner, memory_order_acquire) != NULL;
}

static int wire_alive(struct pkt_wire *w)
{
    int alive;
    pthread_mutex_lock(&w->lock);
    alive = w->alive;
    pthread_mutex_unlock(&w->lock);
    return alive;
}

/*
 * The control calls here run on the daemon's control thread: each write to a region (the link
 * word a driver reads) goes through a fault frame for that region, so that a region truncated
 * under us costs its device, never the process.
 */
struct link_word {
    uint32_t chan;
    uint8_t value;
};

static int write_link_word(struct synth_hdev *d, void *arg)
{
    const struct link_word *lw = arg;
    __atomic_store_n(&synthi_pkt_of(d)->cfg->link[lw->chan], lw->value, __ATOMIC_RELAXED);
    return 0;
}

static void publish_link_guarded(struct pkt_dev *pd, uint32_t chan)
{
    struct link_word lw = {chan, (uint8_t)pd->chan[chan].link};
    (void)synthi_region_call(pd->dev, write_link_word, &lw);
}

void synthi_pkt_link_drop(struct pkt_dev *pd, uint32_t chan)
{
    struct pkt_chan *ch = &pd->chan[chan];
    struct pkt_wire *w = atomic_load_explicit(&ch->wire, memory_order_acquire);

    if (w) {
        int mine = 0, i;
        pthread_mutex_lock(&w->lock);
        for (i = 0; i < 2; i++) {
            if (w->end[i] == pd->dev && w->chan[i] == chan) {
                mine++;
            } else if (w->alive && !w->end[i]->faulted) {
                /*
                 * The other end lives on: tell its driver it has no link any more. If a worker
                 * serves it, that worker writes the word on its next pass: its region is only ever
                 * touched from there while it is served (a region truncated meanwhile then costs
                 * that device alone, never this thread).
                 */
                struct pkt_dev *other = synthi_pkt_of(w->end[i]);
                if (served(w->end[i])) {
                    atomic_store_explicit(&other->chan[w->chan[i]].link_gone, 1, memory_order_release);
                } else {
                    struct link_word lw = {w->chan[i], (uint8_t)SYNTH_PKT_LINK_NONE};
                    (void)synthi_region_call(w->end[i], write_link_word, &lw);
                }
            }
        }
        w->alive = 0;
        pthread_mutex_unlock(&w->lock);
        atomic_store_explicit(&ch->wire, NULL, memory_order_release);
        if (atomic_fetch_sub(&w->refs, mine) == mine) {
            pthread_mutex_destroy(&w->lock);
            free(w);
        }
    }
    if (ch->tap_fd >= 0) {
        close(ch->tap_fd);
        ch->tap_fd = -1;
    }
    memset(ch->ifname, 0, sizeof(ch->ifname));
    ch->link = SYNTH_PKT_LINK_NONE;
    publish_link_guarded(pd, chan);
}

/* Checks shared by the control calls: 0 if channel chan of d may get a new link. */
static int check_free(struct synth_hdev *d, uint32_t chan, struct pkt_dev **out)
{
    struct pkt_dev *pd = synthi_pkt_dev(d);
    struct pkt_wire *w;

    if (!pd || chan >= pd->channels)
        return -EINVAL;
    if (served(d))
        return -EBUSY;
    if (pd->chan[chan].link == SYNTH_PKT_LINK_WIRE) {
        w = atomic_load_explicit(&pd->chan[chan].wire, memory_order_acquire);
        if (w && wire_alive(w))
            return -EBUSY;
        synthi_pkt_link_drop(pd, chan); /* the other end is gone: the channel is free again */
    } else if (pd->chan[chan].link != SYNTH_PKT_LINK_NONE) {
        return -EBUSY;
    }
    *out = pd;
    return 0;
}

int synth_pkt_wire(struct synth_hdev *a, uint32_t chan_a, struct synth_hdev *b, uint32_t chan_b)
{
    struct pkt_dev *pa, *pb;
    struct pkt_wire *w;
    int rc;

    if (!synthi_pkt_dev(a) || !synthi_pkt_dev(b))
        return -EINVAL;
    if (chan_a >= synthi_pkt_dev(a)->channels || chan_b >= synthi_pkt_dev(b)->channels)
        return -EINVAL;
    if ((rc = check_free(a, chan_a, &pa)) < 0 || (rc = check_free(b, chan_b, &pb)) < 0)
        return rc;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    pthread_mutex_init(&w->lock, NULL);
    w->alive = 1;
    atomic_init(&w->refs, 2);
    w->end[0] = a;
    w->chan[0] = chan_a;
    w->end[1] = b;
    w->chan[1] = chan_b;
    pa->chan[chan_a].link = SYNTH_PKT_LINK_WIRE;
    pb->chan[chan_b].link = SYNTH_PKT_LINK_WIRE;
    atomic_store_explicit(&pa->chan[chan_a].wire, w, memory_order_release);
    atomic_store_explicit(&pb->chan[chan_b].wire, w, memory_order_release);
    publish_link_guarded(pa, chan_a);
    publish_link_guarded(pb, chan_b);
    return 0;
}

int synth_pkt_tap(struct synth_hdev *d, uint32_t chan, const char *ifname)
{
    struct pkt_dev *pd;
    struct ifreq ifr;
    size_t len = ifname ? strnlen(ifname, IFNAMSIZ) : 0;
    int fd, rc;

    if (len == 0 || len >= IFNAMSIZ || strchr(ifname, '/'))
        return -EINVAL;
    rc = check_free(d, chan, &pd);
    if (rc < 0)
        return rc;
    if (!pd->scratch) {
        pd->scratch = malloc(PKT_SCRATCH_SIZE);
        if (!pd->scratch)
            return -ENOMEM;
    }
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    memcpy(ifr.ifr_name, ifname, len);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    pd->chan[chan].tap_fd = fd;
    memcpy(pd->chan[chan].ifname, ifr.ifr_name, sizeof(pd->chan[chan].ifname) - 1);
    pd->chan[chan].link = SYNTH_PKT_LINK_TAP;
    publish_link_guarded(pd, chan);
    return 0;
}

int synth_pkt_unlink(struct synth_hdev *d, uint32_t chan)
{
    struct pkt_dev *pd = synthi_pkt_dev(d);

    if (!pd || chan >= pd->channels)
        return -EINVAL;
    if (served(d))
        return -EBUSY;
    synthi_pkt_link_drop(pd, chan);
    return 0;
}

int synth_pkt_get_link(const struct synth_hdev *d, uint32_t chan, struct synth_pkt_link_info *out)
{
    struct pkt_dev *pd = synthi_pkt_dev(d);
    const struct pkt_chan *ch;
    struct pkt_wire *w;

    if (!pd || chan >= pd->channels)
        return -EINVAL;
    ch = &pd->chan[chan];
    memset(out, 0, sizeof(*out));
    out->link = ch->link;
    out->tap_fd = ch->tap_fd;
    memcpy(out->ifname, ch->ifname, sizeof(out->ifname));
    w = atomic_load_explicit(&((struct pkt_chan *)ch)->wire, memory_order_acquire);
    if (w) {
        pthread_mutex_lock(&w->lock);
        int me = (w->end[0] == d && w->chan[0] == chan) ? 0 : 1;
        out->peer_chan = w->chan[1 - me];
        out->peer_alive = w->alive;
        if (w->alive)
            memcpy(out->peer_name, w->end[1 - me]->name, sizeof(out->peer_name) - 1);
        pthread_mutex_unlock(&w->lock);
    }
    return 0;
}

static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

int synth_pkt_get_stats(const struct synth_hdev *d, struct synth_pkt_stats *st)
{
    const struct pkt_dev *pd = synthi_pkt_dev(d);
    const struct pkt_counters *c;

    if (!pd)
        return -EINVAL;
    c = &pd->cnt;
    memset(st, 0, sizeof(*st));
    st->tx_frames = ld(&c->tx_frames);
    st->tx_bytes = ld(&c->tx_bytes);
    st->rx_frames = ld(&c->rx_frames);
    st->rx_bytes = ld(&c->rx_bytes);
    st->tx_bad = ld(&c->tx_bad);
    st->tx_no_link = ld(&c->tx_no_link);
    st->tx_peer_full = ld(&c->tx_peer_full);
    st->tx_tap_error = ld(&c->tx_tap_error);
    st->tx_drops = st->tx_bad + st->tx_no_link + st->tx_peer_full + st->tx_tap_error;
    st->rx_no_buffer = ld(&c->rx_no_buffer);
    st->rx_too_long = ld(&c->rx_too_long);
    st->rx_bad_frame = ld(&c->rx_bad_frame);
    st->rx_drops = st->rx_no_buffer + st->rx_too_long + st->rx_bad_frame;
    st->rx_bad_desc = ld(&c->rx_bad_desc);
    st->tap_read_errors = ld(&c->tap_read_errors);
    st->channels = pd->channels;
    st->max_frame = pd->max_frame;
    return 0;
}

/* ---- TAP data path (serving thread) ---- */

unsigned synthi_pkt_tap_poll(struct pkt_dev *pd, struct pkt_chan *ch, unsigned max)
{
    struct synth_hqueue *q = &pd->dev->queues[synth_pkt_rxq(ch->idx)];
    unsigned n;

    for (n = 0; n < max; n++) {
        struct pkt_rx_entry *e = synthi_pkt_rx_head(pd, ch);
        struct iovec iov[2];
        ssize_t r;

        /* Straight into the posted buffer; a longer frame spills into the scratch area. */
        iov[0].iov_base = e ? q->arena + e->off : pd->scratch;
        iov[0].iov_len = e ? e->cap : PKT_SCRATCH_SIZE;
        iov[1].iov_base = pd->scratch;
        iov[1].iov_len = PKT_SCRATCH_SIZE;
        r = readv(ch->tap_fd, iov, e ? 2 : 1);
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                PKT_INC(pd, tap_read_errors, 1);
            break;
        }
        if (!e)
            PKT_INC(pd, rx_no_buffer, 1);
        else if ((size_t)r < SYNTH_PKT_MIN_FRAME || (size_t)r > pd->max_frame)
            PKT_INC(pd, rx_bad_frame, 1); /* the buffer stays posted for the next frame */
        else
            synthi_pkt_rx_fill_head(pd, ch, (uint32_t)r);
    }
    synthi_pkt_rx_commit(pd, ch);
    return n;
}

void synthi_pkt_tap_drain(struct pkt_dev *pd, struct pkt_chan *ch)
{
    unsigned n;
    for (n = 0; n < TAP_DRAIN_MAX; n++) {
        if (read(ch->tap_fd, pd->scratch, PKT_SCRATCH_SIZE) < 0)
            break;
        PKT_INC(pd, rx_no_buffer, 1);
    }
}
