/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt-synth device ABI, packet class (SYNTH_CLASS_PACKET). See docs/device-abi.md, section
 * "Packet class", and docs/packets.md.
 *
 * A packet device has channels; channel c uses queue pair 2c to transmit and 2c + 1 to receive
 * (so num_queues is even):
 *
 *   TX queue: the driver submits SEND descriptors naming one frame in the TX queue's arena
 *             (src_off, src_len). The host completes each one once the frame has left (OK: it is
 *             in the peer's receive buffer, or the TAP took it) or was dropped (any other status;
 *             the frame is counted in tx_drops).
 *   RX queue: the driver posts empty buffers with RECV descriptors (dst_off, dst_len) in the RX
 *             queue's arena. The host holds them in posting order; when a frame arrives it copies
 *             it into the oldest posted buffer and completes that descriptor with OK and
 *             result = frame length. With no buffer posted the frame is dropped and counted in
 *             rx_drops.
 *
 * Frames of one channel are delivered in order. Where they go is host configuration, not the
 * driver's business: a virtual wire to a channel of another packet device (or of the same one), or
 * a Linux TAP interface (SYNTH_PKT_LINK_*, shown per channel in the configuration block).
 *
 * SEND status: OK; INVALID (flags set, frame outside the arena); LIMIT (src_len < min_frame or >
 * max_frame); NO_RESOURCES (not delivered: no link, the peer has no driver or no buffer posted, or
 * its buffer was too short, or the TAP refused it); NOT_SUPPORTED (any opcode but SEND and NOP).
 * RECV status: OK with result = frame length; NO_SPACE with result = length of the frame that did
 * not fit (the frame is dropped, the buffer is given back); INVALID (flags set, buffer outside the
 * arena, dst_len < min_frame); NOT_SUPPORTED (any opcode but RECV and NOP).
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
#define SYNTH_PKT_MAX_CHANNELS (SYNTH_MAX_QUEUES / 2u)

/* Queues of channel c. */
static inline uint32_t synth_pkt_txq(uint32_t chan) { return 2u * chan; }
static inline uint32_t synth_pkt_rxq(uint32_t chan) { return 2u * chan + 1u; }

/* Link of a channel (synth_pkt_cfg.link[c]). */
#define SYNTH_PKT_LINK_NONE 0u /* frames sent are dropped and counted */
#define SYNTH_PKT_LINK_WIRE 1u /* virtual wire to a channel of a packet device */
#define SYNTH_PKT_LINK_TAP 2u  /* a Linux TAP interface */

/*
 * Class configuration block (header.class_cfg) of a packet device. Every field is written by the
 * host only; the host never reads it back. Counters cover all channels, start at 0 when a backend
 * lays the region out or attaches to it, and are refreshed after every burst that changes them
 * (aligned 64-bit stores: a 32-bit driver reading the halves separately may see a torn value).
 */
struct synth_pkt_cfg {
    uint32_t channels;     /*   0 num_queues / 2 */
    uint32_t max_frame;    /*   4 longest frame sent or delivered, <= SYNTH_PKT_MAX_FRAME */
    uint32_t min_frame;    /*   8 shortest frame, SYNTH_PKT_MIN_FRAME */
    uint32_t reserved0;    /*  12 */
    uint64_t tx_frames;    /*  16 SEND descriptors completed OK */
    uint64_t rx_frames;    /*  24 frames delivered into a posted buffer */
    uint64_t tx_drops;     /*  32 SEND descriptors completed with any other status */
    uint64_t rx_drops;     /*  40 frames for this device not delivered: no buffer or no driver,
                            *     longer than the buffer (NO_SPACE), outside min..max_frame */
    uint64_t tx_bytes;     /*  48 bytes of the frames counted in tx_frames */
    uint64_t rx_bytes;     /*  56 bytes of the frames counted in rx_frames */
    uint8_t link[SYNTH_PKT_MAX_CHANNELS]; /* 64 SYNTH_PKT_LINK_* of channel c (c < channels) */
    uint8_t reserved[32];  /*  96 */
};

SYNTH_STATIC_ASSERT(sizeof(struct synth_pkt_cfg) == 128, "packet cfg is 128 bytes");
SYNTH_STATIC_ASSERT(offsetof(struct synth_pkt_cfg, tx_frames) == 16, "tx_frames");
SYNTH_STATIC_ASSERT(offsetof(struct synth_pkt_cfg, rx_drops) == 40, "rx_drops");
SYNTH_STATIC_ASSERT(offsetof(struct synth_pkt_cfg, rx_bytes) == 56, "rx_bytes");
SYNTH_STATIC_ASSERT(offsetof(struct synth_pkt_cfg, link) == 64, "link");
SYNTH_STATIC_ASSERT(sizeof(struct synth_pkt_cfg) <= SYNTH_CLASS_CFG_SIZE, "fits the cfg block");

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_PACKET_CORE_H */
