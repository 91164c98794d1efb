/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host side of packet devices (SYNTH_CLASS_PACKET): device parameters, links and counters.
 *
 * A device's shape (max_frame) comes with its creation parameters (struct synth_pkt_host_params
 * as synth_hdev_params.class_params). Its topology is set afterwards by explicit calls: a channel
 * is wired to a channel of another packet device (or another channel of the same one), attached
 * to a Linux TAP interface, or left unlinked (frames sent are dropped and counted).
 *
 * Threading. A wire lets the worker serving one end write into the other end's receive queue, so
 * both ends MUST be served by the same worker thread: link devices while no worker serves them,
 * then add them to one worker. The data path checks it on every burst: if the two ends are owned
 * by different workers, frames are dropped and counted (tx_no_link), never delivered. Devices that
 * no worker owns (synth_hdev_poll) must be polled from one thread if they are wired together.
 * Destroying one end of a wire is safe while the other end is served: the survivor drops and
 * counts what it sends from then on.
 */
#ifndef SYNTH_HOST_PACKET_H
#define SYNTH_HOST_PACKET_H

#include <stdint.h>

#include "synth/host.h"
#include "synth/packet_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Class parameters of a packet device (synth_hdev_params.class_params; NULL: defaults). */
struct synth_pkt_host_params {
    uint32_t max_frame;   /* longest frame, SYNTH_PKT_MIN_FRAME..SYNTH_PKT_MAX_FRAME (0: the maximum) */
    uint32_t reserved[3]; /* must be 0 */
};

/* Host counters of a packet device; tx_drops and rx_drops are also split by reason. */
struct synth_pkt_stats {
    uint64_t tx_frames;     /* SEND completed OK (delivered to the peer, or taken by the TAP) */
    uint64_t tx_bytes;
    uint64_t rx_frames;     /* frames delivered into a posted buffer */
    uint64_t rx_bytes;
    uint64_t tx_drops;      /* SEND completed with another status: the sum of the tx_* below */
    uint64_t tx_bad;        /*   INVALID (flags, outside the arena) or LIMIT (frame length) */
    uint64_t tx_no_link;    /*   no link, the peer end is gone, or it is served by another worker */
    uint64_t tx_peer_full;  /*   the peer had no driver, no buffer posted or too short a buffer */
    uint64_t tx_tap_error;  /*   the TAP refused the frame (interface down, kernel short of memory) */
    uint64_t rx_drops;      /* frames for this device not delivered: the sum of the rx_* below */
    uint64_t rx_no_buffer;  /*   no driver, or no buffer posted */
    uint64_t rx_too_long;   /*   longer than the oldest posted buffer (which completes NO_SPACE) */
    uint64_t rx_bad_frame;  /*   shorter than min_frame or longer than this device's max_frame */
    uint64_t rx_bad_desc;   /* RECV descriptors completed INVALID or NOT_SUPPORTED (not drops) */
    uint64_t tap_read_errors; /* reads from a TAP that failed with something else than EAGAIN */
    uint32_t channels;
    uint32_t max_frame;
};

/* What a channel is linked to. */
struct synth_pkt_link_info {
    uint32_t link;        /* SYNTH_PKT_LINK_* */
    uint32_t peer_chan;   /* wire: the channel at the other end */
    int32_t peer_alive;   /* wire: 1 while the other end exists */
    int32_t tap_fd;       /* TAP: the file descriptor, else -1 */
    char ifname[16];      /* TAP: the interface name */
    char peer_name[32];   /* wire: the other device's name */
};

/*
 * Connect channel chan_a of device a and channel chan_b of device b with a virtual wire: what one
 * end sends arrives in the other end's receive buffers. a and b may be the same device (two of
 * its channels, or one channel looped back to itself when chan_a == chan_b).
 * Returns 0, -EINVAL (not packet devices, channel out of range), -EBUSY (a device is served by a
 * worker, or one of the channels already has a link: unlink it first), -ENOMEM.
 */
int synth_pkt_wire(struct synth_hdev *a, uint32_t chan_a, struct synth_hdev *b, uint32_t chan_b);

/*
 * Attach channel chan of device d to the TAP interface ifname: frames the driver sends are written
 * to the TAP, frames the kernel sends on the interface reach the driver's receive buffers. The
 * interface is created if it does not exist (a persistent TAP made by `ip tuntap add mode tap
 * user ...` is attached to), in the network namespace of the calling thread. Bringing it up and
 * its MTU (up to max_frame - 14) are the caller's business. Opens /dev/net/tun with IFF_TAP |
 * IFF_NO_PI, non-blocking.
 * Returns 0, -EINVAL (not a packet device, channel out of range, bad name), -EBUSY (served by a
 * worker, or the channel already has a link), -ENOMEM, or the errno of open(/dev/net/tun) or
 * ioctl(TUNSETIFF) (-EPERM without CAP_NET_ADMIN, -EBUSY if another process holds the TAP).
 */
int synth_pkt_tap(struct synth_hdev *d, uint32_t chan, const char *ifname);

/*
 * Remove the link of channel chan (a TAP is closed; the other end of a wire drops and counts what
 * it sends from then on). A channel without a link is left as it is.
 * Returns 0, -EINVAL (not a packet device, channel out of range), -EBUSY (served by a worker).
 */
int synth_pkt_unlink(struct synth_hdev *d, uint32_t chan);

/* Describe the link of channel chan. Returns 0 or -EINVAL. Safe while a worker serves d. */
int synth_pkt_get_link(const struct synth_hdev *d, uint32_t chan, struct synth_pkt_link_info *out);

/* Copy the device's packet counters. Returns 0 or -EINVAL. Safe while a worker serves d. */
int synth_pkt_get_stats(const struct synth_hdev *d, struct synth_pkt_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_HOST_PACKET_H */
