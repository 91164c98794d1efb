/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: a hostile guest drives a packet device of two channels (queues 0 and 2
 * transmit, 1 and 3 receive) whose channels are wired on the host; see fuzz.h for the input format
 * and the oracle. What one channel sends lands in the receive buffers the guest posted, so the
 * write oracle checks the receive side too.
 *
 *   setup[0]   bits 0..3: max_frame (0: the ABI's maximum, else 14 + n * 600); bits 4..5: the
 *              wires (0: channel 0 <-> channel 1, 1: each channel looped back to itself, 2: none,
 *              3: channel 0 looped back, channel 1 unlinked)
 *   CREATE     chan:u8 n:u8, then n times off:u16 len:u16: RECV descriptors posting n buffers
 *   FRAME      chan:u8 off:u16 len:u16 given:u16 bytes[given]: a frame of len bytes (the first
 *              `given` from the input, the rest a pattern) in the transmit arena, and its SEND
 */
#include <string.h>

#include "fuzz.h"
#include "synth/host_packet.h"

static const uint16_t opcodes[] = {SYNTH_OP_PKT_SEND, SYNTH_OP_PKT_RECV, SYNTH_OP_PKT_SEND, SYNTH_OP_PKT_RECV,
                                   SYNTH_OP_NOP};

static int params(struct fz_harness *h, uint8_t s, struct synth_hdev_params *p)
{
    struct synth_pkt_host_params *hp = (struct synth_pkt_host_params *)(void *)h->scratch;

    memset(hp, 0, sizeof(*hp));
    hp->max_frame = (s & 15u) ? SYNTH_PKT_MIN_FRAME + (s & 15u) * 600u : 0;
    if (hp->max_frame > SYNTH_PKT_MAX_FRAME)
        hp->max_frame = SYNTH_PKT_MAX_FRAME;
    p->class_params = hp;
    p->class_params_size = sizeof(*hp);
    return 0;
}

static int setup(struct fz_harness *h, uint8_t s)
{
    int rc = 0;

    switch ((s >> 4) & 3u) {
    case 0:
        rc = synth_pkt_wire(h->dev, 0, h->dev, 1);
        break;
    case 1:
        rc = synth_pkt_wire(h->dev, 0, h->dev, 0);
        if (rc == 0)
            rc = synth_pkt_wire(h->dev, 1, h->dev, 1);
        break;
    case 2:
        break;
    default:
        rc = synth_pkt_wire(h->dev, 0, h->dev, 0);
    }
    if (rc < 0)
        fz_fail(h, "synth_pkt_wire: %d", rc);
    return 0;
}

static void create(struct fz_harness *h, struct fz_in *in)
{
    uint32_t qi = synth_pkt_rxq(fz_u8(in) % 2u), n = 1u + fz_u8(in) % 8u, i;

    for (i = 0; i < n; i++) {
        struct synth_desc d;
        memset(&d, 0, sizeof(d));
        d.opcode = SYNTH_OP_PKT_RECV;
        d.dst_off = fz_off(h, in, qi);
        d.dst_len = fz_len(h, in, qi);
        if (fz_submit(h, qi, &d) < 0)
            break;
    }
}

static void frame(struct fz_harness *h, struct fz_in *in)
{
    uint32_t qi = synth_pkt_txq(fz_u8(in) % 2u);
    struct fz_queue *q = &h->q[qi];
    uint32_t off = fz_u16(in) % q->arena_size, len = fz_u16(in) % (SYNTH_PKT_MAX_FRAME + 64u);
    struct synth_desc d;

    if (len > q->arena_size - off)
        len = (uint32_t)(q->arena_size - off);
    fz_fill(in, q->arena + off, len, fz_u16(in));
    memset(&d, 0, sizeof(d));
    d.opcode = SYNTH_OP_PKT_SEND;
    d.src_off = off;
    d.src_len = len;
    fz_submit(h, qi, &d);
}

static void outputs(struct fz_harness *h, uint32_t qi, const struct synth_desc *d)
{
    if (d->opcode == SYNTH_OP_PKT_RECV)
        fz_allow_arena(h, qi, d->dst_off, d->dst_len);
}

static void answer(struct fz_harness *h, uint32_t qi, const struct fz_pending *p, const struct synth_cpl *c)
{
    if (c->flags & ~SYNTH_CPL_F_PHASE)
        fz_fail(h, "queue %u: packet completion with stream flags %#x", qi, c->flags);
    if (p->opcode == SYNTH_OP_PKT_RECV && c->status == SYNTH_ST_OK &&
        (c->result > p->out_len || c->result < SYNTH_PKT_MIN_FRAME))
        fz_fail(h, "queue %u: a frame of %u bytes in a buffer of %u", qi, c->result, p->out_len);
}

/* Receive queues answer when frames arrive, and in posting order. */
static int held(uint32_t qi, uint16_t opcode)
{
    (void)opcode;
    return qi & 1u;
}

static const struct fz_class packet = {
    .name = "packet",
    .dev_class = SYNTH_CLASS_PACKET,
    .region_size = 128u << 10,
    .num_queues = 4,
    .ring_entries = 8,
    .opcodes = opcodes,
    .nopcodes = sizeof(opcodes) / sizeof(opcodes[0]),
    .features = {0, 0, 0},
    .params = params,
    .setup = setup,
    .create = create,
    .frame = frame,
    .outputs = outputs,
    .answer = answer,
    .held = held,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_run(&packet, data, size); }
