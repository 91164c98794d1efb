/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harnesses of the host data path: a hostile guest in the fuzzer's hands, and an oracle.
 *
 * Each input lays out a fresh device region (synth_hdev_create, no worker: synth_hdev_poll on this
 * thread), plays a guest driver that follows the fuzzer's program, and after every poll checks
 * what the host did against what the ABI lets it do:
 *
 *   writes   a snapshot of the whole region is taken before the poll; afterwards every byte that
 *            changed must lie in a place the host owns: the header's host status line and class
 *            configuration block (identity and queue table too when the poll acted on a driver
 *            reset), the SQ consumer index, the CQ producer index and the completion slots of the
 *            completions it wrote (whole rings on a reset), and in the arenas only the ranges the
 *            descriptors it took name as output (crypto: dst, tag, generated IV, the key bytes of
 *            session parameters; compression: dst; packets: posted receive buffers);
 *   takes    only published descriptors (their seq matched), never more than a ring holds;
 *   answers  completion i of a queue answers the i-th descriptor taken from it (same cookie),
 *            with the phase bit of its lap, a status below SYNTH_ST_MAX and only defined flags;
 *            every descriptor taken is answered in the same poll (packet RECV: when a frame
 *            fills it, in posting order);
 *   health   the device does not ask for a reset (NEEDS_RESET) unless the guest broke the
 *            protocol (impossible CQ consumer index, features not offered, scribbled guest words).
 *
 * A violation aborts with a message: libFuzzer saves the input as a crash file. With
 * SYNTH_FUZZ_TRACE=1 in the environment, every poll and completion is printed. Memory errors and
 * undefined behaviour are ASan's and UBSan's; leaks are LSan's (the device is destroyed after each
 * input).
 *
 * Input: two setup bytes, then commands until the input ends (at most FZ_MAX_STEPS). Every read
 * past the end yields 0, so any byte string is a program. All integers are little-endian.
 *
 *   setup[0]   class-specific (which plugin serves the device, packet topology)
 *   setup[1]   features the driver accepts: bit 0 NOP, bits 1..3 the class's feature bits
 *              (crypto SESSIONS, OUT_OF_PLACE, IV_GEN; compression STREAMS), bit 7 one not offered
 *
 *   command byte c, then its arguments:
 *   c <  96   DESC    q:u8 op:u8 [u16 if op >= 0xf0] mode:u8 [flags:u16 if mode&1]
 *                     [session: u32 if mode&2, else u8 index into the ids the device returned]
 *                     [bad seq kind:u8 if mode&4] [slot back:u8 if mode&8]
 *                     src(off,len) dst(off,len) aad(off,len) iv_off tag_off [end:u8 if mode&16],
 *                     then class arguments (offsets and lengths: u16 each, see fz_off/fz_len;
 *                     mode&8 rewrites a slot already published instead of appending one; mode&16
 *                     moves dst_off so that src_len bytes of output end end % 16 - 8 bytes from the
 *                     arena's end)
 *   c < 128   CREATE  class-specific: a well-formed session / stream / receive buffer set-up
 *   c < 160   DATA    q:u8 off:u16 len:u16 bytes[len]: guest bytes into an arena
 *   c < 176   FRAME   class-specific data (compression: a real frame made by the library)
 *   c < 208   POLL    keep:u8: synth_hdev_poll and the checks; then the guest takes every
 *                     completion, unless bit 0 of keep says to leave them in the ring
 *   c < 216   CONSUME q:u8 n:u8: the guest takes n completions of queue q (all there are, at most)
 *   c < 224   RESET   status:u8 features:u8: a driver reset (new epoch) and a poll
 *   c < 240   RING    which:u8 value:u32: write a ring index word (guest or host owned)
 *   otherwise HEADER  off:u16 value:u32: write a 32-bit word of the header page
 */
#ifndef SYNTH_FUZZ_H
#define SYNTH_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "synth/host.h"
#include "synth/layout.h"

#define FZ_MAX_STEPS 512u
#define FZ_MAX_IDS 32u
#define FZ_FIFO 64u /* > ring entries: descriptors taken and not answered yet, per queue */

/* The fuzzer's bytes, read front to back; 0 once they are used up. */
struct fz_in {
    const uint8_t *p;
    size_t n;
};

uint8_t fz_u8(struct fz_in *in);
uint16_t fz_u16(struct fz_in *in);
uint32_t fz_u32(struct fz_in *in);

/* A descriptor taken by the host and not answered yet. */
struct fz_pending {
    uint64_t cookie;
    uint16_t opcode;
    uint32_t out_off; /* the output range it names (packet RECV), for the write oracle */
    uint32_t out_len;
};

struct fz_queue {
    uint8_t *sq_core, *cq_core;
    struct synth_desc *sq;
    struct synth_cpl *cq;
    uint8_t *arena;
    uint64_t sq_off, cq_off, arena_off, arena_size;
    uint32_t prod;      /* guest: next SQ index to publish */
    uint32_t cons;      /* guest: CQ index consumed up to */
    uint32_t host_cons; /* SQ consumer index as the host last stored it */
    uint32_t host_prod; /* CQ producer index: completions the host wrote */
    uint64_t host_ops;  /* the host's count of completions on this queue */
    struct fz_pending fifo[FZ_FIFO];
    uint32_t fifo_head, fifo_tail;
};

struct fz_harness;

/* What a class adds to the generic guest and oracle. */
struct fz_class {
    const char *name;
    uint32_t dev_class;
    uint64_t region_size;
    uint32_t num_queues;
    uint32_t ring_entries;
    const uint16_t *opcodes; /* opcodes the DESC command picks from */
    unsigned nopcodes;
    uint64_t features[3];    /* class feature bits that setup[1] bits 1..3 accept */
    /* Fill *p (and whatever it points to, in h->scratch) for setup byte s. 0 or -1 to skip. */
    int (*params)(struct fz_harness *h, uint8_t s, struct synth_hdev_params *p);
    /* After create, before the driver's handshake (packet wires). 0 or -1 to skip the input. */
    int (*setup)(struct fz_harness *h, uint8_t s);
    /* Class arguments of a DESC (arg[], and anything else the class reads). */
    void (*args)(struct fz_harness *h, struct fz_in *in, struct synth_desc *d);
    void (*create)(struct fz_harness *h, struct fz_in *in);
    void (*frame)(struct fz_harness *h, struct fz_in *in); /* NULL: as DATA */
    /* Mark the bytes of queue qi's arena that taken descriptor d may have the host write. */
    void (*outputs)(struct fz_harness *h, uint32_t qi, const struct synth_desc *d);
    /* Check one completion against the descriptor it answers (opcode, cookie already matched). */
    void (*answer)(struct fz_harness *h, uint32_t qi, const struct fz_pending *p, const struct synth_cpl *c);
    /* Descriptors of this opcode on this queue may stay unanswered across polls (packet RECV). */
    int (*held)(uint32_t qi, uint16_t opcode);
};

struct fz_harness {
    const struct fz_class *cls;
    struct synth_hdev *dev;
    struct synth_layout layout;
    uint8_t *base;             /* the region as the guest maps it */
    uint64_t size;
    uint8_t *snap;             /* the region before the current poll */
    uint8_t *allowed;          /* bytes the host may write during the current poll */
    struct fz_queue q[SYNTH_MAX_QUEUES];
    uint64_t features;         /* accepted by the driver */
    uint64_t offered;
    uint32_t epoch;            /* the driver's epoch as the host last acknowledged it */
    uint32_t acked;
    int resetting;             /* a new epoch is published and not acknowledged yet */
    uint64_t next_cookie;
    int hostile;               /* the guest broke the protocol since the last reset */
    int trace;                 /* SYNTH_FUZZ_TRACE set: print every completion (reproducing a crash) */
    uint32_t last_off;         /* fz_off's last value: lengths relative to it (fz_len) */
    uint32_t ids[FZ_MAX_IDS];  /* session / stream ids the device returned, in order */
    unsigned nids;
    _Alignas(16) uint8_t scratch[4096]; /* class parameters that outlive params() */
};

/* Run one fuzzer input against a fresh device of class cls. */
int fz_run(const struct fz_class *cls, const uint8_t *data, size_t size);

/* A violated invariant: print it and abort (libFuzzer keeps the input). */
__attribute__((noreturn, format(printf, 2, 3))) void fz_fail(const struct fz_harness *h, const char *fmt, ...);

/* Allow host writes to [off, off + len) of queue qi's arena (clipped to the arena). */
void fz_allow_arena(struct fz_harness *h, uint32_t qi, uint64_t off, uint64_t len);

/*
 * An arena offset / length for queue qi, from a u16: v % the arena's size (lengths: % size + 1);
 * 0xfff0..0xfff7 the size and around it (+0, -1, +1, -16, +16, -4096, +4096, -64), 0xfff8.. the top
 * of the u32 range; lengths 0xffe0..0xffef run from the offset read last to 8 bytes short of the
 * arena's end .. 7 bytes past it.
 */
uint32_t fz_off(struct fz_harness *h, struct fz_in *in, uint32_t qi);
uint32_t fz_len(struct fz_harness *h, struct fz_in *in, uint32_t qi);

/* Publish descriptor d (cookie and seq filled in here) on queue qi: 0, or -1 if the ring is full. */
int fz_submit(struct fz_harness *h, uint32_t qi, struct synth_desc *d);

/* n bytes for the guest to write: the first `given` from the input (while it lasts), then a pattern. */
void fz_fill(struct fz_in *in, uint8_t *dst, size_t n, size_t given);

/* The session / stream id the device returned, by index byte (0 if there is none yet). */
uint32_t fz_id(const struct fz_harness *h, uint8_t idx);

#endif /* SYNTH_FUZZ_H */
