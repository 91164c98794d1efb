/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsynth, packet class: the paper's three primitives over a channel of a packet device.
 *
 *   synth_pkt_are_there_packets()  how many received frames are ready (non-blocking)
 *   synth_pkt_give_me_packets()    receive burst: up to n ready frames, zero-copy
 *   synth_pkt_send_packets()       transmit burst: returns how many were taken
 *
 * Burst semantics are DPDK's: every call returns how many packets it handled, and a partial burst
 * is normal (the ring was full, fewer frames had arrived). Packet buffers live in the queues'
 * arenas (zero copy): a channel owns a pool of fixed-size buffers in its TX queue's arena and
 * another in its RX queue's arena. Received frames are handed out in place and given back with
 * synth_pkt_rx_free() (which posts the buffer again); frames to send are written in place into
 * buffers from synth_pkt_tx_alloc(), and a buffer that was taken by send returns to the pool by
 * itself once the device completes it.
 *
 * Threading: a channel uses two queues and is single-threaded, like a queue. Different channels
 * of a device may be used by different threads.
 *
 * A reset of the device (synth_dev_reset) invalidates its channels: close them and open them
 * again. Closing a channel does not give its arena space back (the backend may still hold its
 * receive buffers); a device reset does.
 */
#ifndef SYNTH_GUEST_PACKET_H
#define SYNTH_GUEST_PACKET_H

#include <stdint.h>

#include "synth/packet_core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct synth_dev;
struct synth_pkt_chan;

/* A packet buffer: the frame is at data, in the arena of one of the channel's queues. */
struct synth_pkt {
    uint8_t *data;     /* start of the buffer (the frame) */
    uint32_t len;      /* frame length: set by the device (receive) or by the caller (send) */
    uint32_t cap;      /* buffer capacity */
    uint32_t id;       /* buffer number; owned by the library, leave it as it is */
    uint32_t reserved;
};

struct synth_pkt_chan_opts {
    uint32_t buf_size; /* bytes per buffer (0: the device's max_frame rounded up to 64) */
    uint32_t rx_bufs;  /* receive buffers (0: as many as the ring and the arena allow) */
    uint32_t tx_bufs;  /* transmit buffers (0: as many as the ring and the arena allow) */
    uint32_t reserved; /* 0 */
};

/* What this channel saw (the device's own counters are in synth_pkt_dev_counters). */
struct synth_pkt_chan_stats {
    uint64_t tx_sent;      /* frames taken by send_packets */
    uint64_t tx_ok;        /* completed OK: delivered */
    uint64_t tx_dropped;   /* completed with another status */
    uint64_t rx_frames;    /* frames handed out by give_me_packets */
    uint64_t rx_dropped;   /* receive buffers that completed without a frame (NO_SPACE, RETRY, ...) */
    uint32_t tx_free;      /* transmit buffers in the pool now */
    uint32_t rx_posted;    /* receive buffers given to the device now */
    uint32_t rx_ready;     /* frames ready to be taken */
    uint32_t buf_size;
    uint32_t max_frame;
    uint32_t reserved;
};

/*
 * Open channel chan of a packet device: allocate the buffer pools and post every receive buffer.
 * Returns 0 with *out set, -EINVAL (not a packet device, no such channel, bad options: more
 * buffers than ring entries, buffers shorter than SYNTH_PKT_MIN_FRAME), -ENOMEM (the pools do not
 * fit the arenas, or no memory), -EIO (the device needs a reset).
 */
int synth_pkt_chan_open(struct synth_dev *dev, unsigned chan, const struct synth_pkt_chan_opts *opts,
                        struct synth_pkt_chan **out);
void synth_pkt_chan_close(struct synth_pkt_chan *ch);

/* Receive: the number of frames ready to be taken now. Never blocks. */
unsigned synth_pkt_are_there_packets(struct synth_pkt_chan *ch);

/*
 * Receive burst: up to n ready frames into pkts[] (data, len), oldest first. The buffers are the
 * caller's until synth_pkt_rx_free. Returns how many (0 when none is ready).
 */
unsigned synth_pkt_give_me_packets(struct synth_pkt_chan *ch, struct synth_pkt *pkts, unsigned n);

/* Give received buffers back: they are posted again. Packets not from this channel are ignored. */
void synth_pkt_rx_free(struct synth_pkt_chan *ch, const struct synth_pkt *pkts, unsigned n);

/* Transmit: take up to n free buffers (len 0, cap = buffer size). Returns how many. */
unsigned synth_pkt_tx_alloc(struct synth_pkt_chan *ch, struct synth_pkt *pkts, unsigned n);

/*
 * Transmit burst: send pkts[0..n) (each from synth_pkt_tx_alloc, len set by the caller), in order.
 * Returns how many were taken, k: pkts[0..k) now belong to the device and return to the pool when
 * completed; pkts[k..n) are still the caller's (send them again, or synth_pkt_tx_free them).
 * Stops early at a packet with len outside 1..cap or that is not a free-for-send buffer of this
 * channel.
 */
unsigned synth_pkt_send_packets(struct synth_pkt_chan *ch, struct synth_pkt *pkts, unsigned n);

/* Give unsent transmit buffers back to the pool. */
void synth_pkt_tx_free(struct synth_pkt_chan *ch, const struct synth_pkt *pkts, unsigned n);

/*
 * Take the transmit completions that have arrived (send_packets and tx_alloc do it too). Returns
 * how many; buffers go back to the pool and drops are counted.
 */
unsigned synth_pkt_tx_reclaim(struct synth_pkt_chan *ch);

/*
 * Wait until a received frame is ready, up to timeout_ms (spin, then sleep). Returns 0, -ETIMEDOUT,
 * or -EIO if the device needs a reset.
 */
int synth_pkt_wait_rx(struct synth_pkt_chan *ch, int timeout_ms);

void synth_pkt_chan_get_stats(const struct synth_pkt_chan *ch, struct synth_pkt_chan_stats *st);

/*
 * The device's own counters and configuration (its class configuration block, copied). Returns 0
 * or -EINVAL if dev is not a packet device.
 */
int synth_pkt_dev_counters(const struct synth_dev *dev, struct synth_pkt_cfg *out);

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_GUEST_PACKET_H */
