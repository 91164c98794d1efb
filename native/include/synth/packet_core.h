/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt-synth device ABI, packet class (SYNTH_CLASS_PACKET). See docs/device-abi.md, section
 * "Packet class".
 *
 * A packet device has channels; channel c uses queue pair 2c to transmit and 2c + 1 to receive
 * (so num_queues is even):
 *
 *   TX queue: the driver submits SEND descriptors naming a frame in the arena (src_off, src_len);
 *             the completion says the frame left (OK) or was dropped (status, and a drop counter).
 *   RX queue: the driver posts empty buffers with RECV descriptors (dst_off, dst_len); when a frame
 *             arrives the host copies it into the oldest posted buffer and completes that
 *             descriptor with result = frame length. With no buffer posted the frame is dropped
 *             and counted.
 *
 * Frames of one channel are delivered in order. Where they go is host configuration: a virtual
 * wire to a channel of another packet device (or of the same one), or a Linux TAP interface.
 */
#ifndef SYNTH_PACKET_CORE_H
#define SYNTH_PACKET_CORE_H

#include "synth/device_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SYNTH_OP_PKT_SEND 0x30u /* TX queue: src_off/src_len = one frame */
#define SYNTH_OP_PKT_RECV 0x31u /* RX queue: dst_off/dst_len = an empty buffer */

#define SYNTH_PKT_MIN_FRAME 14u   /* an Ethernet header */
#define SYNTH_PKT_MAX_FRAME 9216u /* jumbo frames: 9000-byte MTU plus headers */

/* Host-written counters and configuration (header.class_cfg) of a packet device. */
struct synth_pkt_cfg {
    uint32_t channels;    /*  0 num_queues / 2 */
    uint32_t max_frame;   /*  4 longest frame accepted or delivered */
    uint32_t link;        /*  8 SYNTH_PKT_LINK_* */
    uint32_t reserved0;   /* 12 */
    uint64_t tx_frames;   /* 16 frames sent (all channels) */
    uint64_t rx_frames;   /* 24 frames received */
    uint64_t tx_drops;    /* 32 frames the host could not deliver (peer full, TAP busy, bad frame) */
    uint64_t rx_drops;    /* 40 frames that arrived with no buffer posted, or too long for it */
    uint64_t reserved[2]; /* 48 */
};

#define SYNTH_PKT_LINK_NONE 0u /* frames sent are dropped and counted */
#define SYNTH_PKT_LINK_WIRE 1u /* virtual wire to another channel */
#define SYNTH_PKT_LINK_TAP 2u  /* a Linux TAP interface */

_Static_assert(sizeof(struct synth_pkt_cfg) == 64, "packet cfg is 64 bytes");
_Static_assert(sizeof(struct synth_pkt_cfg) <= SYNTH_CLASS_CFG_SIZE, "fits the cfg block");

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_PACKET_CORE_H */
