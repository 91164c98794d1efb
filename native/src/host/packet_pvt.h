/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet class internals shared by packet_dev.c (class hooks, transmit), packet_rx.c (receive)
 * and packet_link.c (wires, TAPs, counters).
 *
 * State of a packet device lives in struct pkt_dev (d->cls) and is touched only by the thread that
 * serves the device, except for the link fields that the control calls set while no worker serves
 * it, and the `alive` flag of a wire, which either end clears under the wire's lock.
 */
#ifndef SYNTH_PACKET_PVT_H
#define SYNTH_PACKET_PVT_H

#include <pthread.h>

#include "host_pvt.h"
#include "synth/host_packet.h"

/* A TAP read goes to the posted buffer first, the rest of a longer frame to a scratch area. */
#define PKT_SCRATCH_SIZE (65536u + 256u)
/* RX entry status meaning "a posted buffer waiting for a frame". */
#define PKT_RX_PENDING 0xffffu

/*
 * One RECV descriptor the host has taken, in host memory: a buffer waiting for a frame, or a
 * descriptor already judged (INVALID, NOP, ...) that completes once it reaches the head, so that
 * completions keep the posting order.
 */
struct pkt_rx_entry {
    uint64_t cookie;
    uint32_t off;     /* dst_off, checked against the arena */
    uint16_t cap;     /* min(dst_len, max_frame) */
    uint16_t status;  /* PKT_RX_PENDING, or the SYNTH_ST_* to complete with */
};

_Static_assert(sizeof(struct pkt_rx_entry) == 16, "rx entries are 16 bytes");

/*
 * A virtual wire: both ends hold a reference. `alive` is cleared (under `lock`) by the first end
 * to be destroyed or unlinked; a sender delivers only while holding `lock` and seeing `alive`, so
 * once the clearing end has dropped the lock, nobody reaches it through the wire any more.
 */
struct pkt_wire {
    pthread_mutex_t lock;
    int alive;
    _Atomic int refs;
    struct synth_hdev *end[2];
    uint32_t chan[2];
};

struct pkt_counters {
    uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes;
    uint64_t tx_bad, tx_no_link, tx_peer_full, tx_tap_error;
    uint64_t rx_no_buffer, rx_too_long, rx_bad_frame, rx_bad_desc, tap_read_errors;
};

struct pkt_chan {
    uint32_t idx;
    uint32_t link;                   /* SYNTH_PKT_LINK_* */
    struct pkt_wire *_Atomic wire;   /* LINK_WIRE */
    int tap_fd;                      /* LINK_TAP, else -1 */
    char ifname[16];
    /* Receive FIFO: entries [head, tail) in posting order, ring_entries slots. */
    struct pkt_rx_entry *rx;
    uint32_t rx_head, rx_tail, rx_mask;
    uint32_t cq_dirty;               /* completions written since the last store of CQ prod */
    /*
     * Frames delivered (OK completions written) not yet added to the statistics: counted here per
     * frame (two stores, where the statistics take seven), added once per burst by
     * synthi_pkt_rx_commit, or by the next one (every pass polls the RX queue) if a region fault
     * cut the burst short.
     */
    uint32_t uncounted;
    uint64_t uncounted_bytes;
    _Atomic int link_gone;           /* the wire's other end went: tell the driver (worker does) */
};

struct pkt_dev {
    struct synth_hdev *dev;
    uint32_t channels;
    uint32_t max_frame;
    uint32_t burst;                  /* of the last queue poll: bounds the TAP reads per pass */
    int counters_dirty;
    struct pkt_counters cnt;         /* host-private; mirrored into the header's synth_pkt_cfg */
    struct synth_pkt_cfg *cfg;       /* in the region: written, never read */
    uint8_t *scratch;                /* PKT_SCRATCH_SIZE bytes once a TAP is attached */
    struct pkt_rx_entry *rx_mem;
    struct pkt_chan chan[SYNTH_PKT_MAX_CHANNELS];
};

static inline struct pkt_dev *synthi_pkt_of(const struct synth_hdev *d) { return (struct pkt_dev *)d->cls; }

/* The packet device behind d, or NULL if d is not one. */
static inline struct pkt_dev *synthi_pkt_dev(const struct synth_hdev *d)
{
    return d && d->ops->dev_class == SYNTH_CLASS_PACKET ? synthi_pkt_of(d) : NULL;
}

/* Counter update by the serving thread (read concurrently by synth_pkt_get_stats). */
#define PKT_INC(pd, field, v)                               \
    do {                                                    \
        SYNTH_STAT_ADD((pd)->cnt.field, (v));               \
        (pd)->counters_dirty = 1;                           \
    } while (0)

/* Copy the counters into the header's synth_pkt_cfg if they changed. */
void synthi_pkt_publish(struct pkt_dev *pd);

/* A frame of a SEND burst, checked (inside the sender's arena, min_frame..max_frame bytes). */
struct pkt_frame {
    const uint8_t *p;
    uint32_t len;
    uint32_t slot; /* index of its descriptor in the burst */
};

/*
 * Deliver the n frames of a burst, in order, to channel ch of pd: each is copied into the oldest
 * posted buffer, which completes. st[i] is the SEND status of frame i: OK, or NO_RESOURCES when it
 * was dropped (and counted at the receiver). Returns how many were delivered. The caller stores the
 * receiver's CQ prod afterwards with synthi_pkt_rx_commit: one store for the burst.
 */
unsigned synthi_pkt_rx_deliver_burst(struct pkt_dev *pd, struct pkt_chan *ch, const struct pkt_frame *f, unsigned n,
                                     uint16_t *st);
/*
 * Make sure ch holds up to n posted buffers, taking RECV descriptors the driver has published if it
 * holds fewer (so that they can be prefetched before the frames arrive).
 */
void synthi_pkt_rx_reserve(struct pkt_dev *pd, struct pkt_chan *ch, unsigned n);
/*
 * The oldest posted buffer of ch (after completing the refused descriptors ahead of it), or NULL if
 * none is posted.
 */
struct pkt_rx_entry *synthi_pkt_rx_head(struct pkt_dev *pd, struct pkt_chan *ch);
/*
 * A frame of len bytes (len <= max_frame) is in the head buffer: complete it with OK, or with
 * NO_SPACE (result = len, counted as a drop) if the buffer is too short.
 */
void synthi_pkt_rx_fill_head(struct pkt_dev *pd, struct pkt_chan *ch, uint32_t len);
/*
 * Poll the RX queue q of channel ch: take new RECV descriptors (no more than the completion ring
 * has room for, counting those already held), complete refused ones that reached the head.
 */
unsigned synthi_pkt_rx_poll(struct pkt_dev *pd, struct synth_hqueue *q, struct pkt_chan *ch, uint32_t burst);
/* Prefetch, for writing, the completion slots that the next n frames for ch will fill. */
void synthi_pkt_rx_prefetch(struct pkt_dev *pd, struct pkt_chan *ch, unsigned n);

/* Add the frames delivered to ch since the last call to the statistics. */
void synthi_pkt_rx_count(struct pkt_dev *pd, struct pkt_chan *ch);
/*
 * End of a burst that may have completed buffers of ch: count the frames delivered, store the CQ
 * producer index of ch's receive queue if completions were written.
 */
void synthi_pkt_rx_commit(struct pkt_dev *pd, struct pkt_chan *ch);
/* Read what the TAP of ch has, up to max frames, into posted buffers. Returns frames read. */
unsigned synthi_pkt_tap_poll(struct pkt_dev *pd, struct pkt_chan *ch, unsigned max);
/* Read and drop everything queued on ch's TAP (a driver reset), counting the drops. */
void synthi_pkt_tap_drain(struct pkt_dev *pd, struct pkt_chan *ch);
/* Drop a channel's link (destroy, unlink): clears a wire's `alive`, closes a TAP. */
void synthi_pkt_link_drop(struct pkt_dev *pd, uint32_t chan);

#endif /* SYNTH_PACKET_PVT_H */
