/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt-synth device ABI: the shared-memory layout of a synthetic device region.
 *
 * This header is the contract between a guest driver and the host backend. Everything in it
 * lives in memory that both sides can write, so every size and offset the other side depends on
 * is pinned with SYNTH_STATIC_ASSERT (below). All multi-byte fields are little-endian; every field
 * has a fixed width and explicit padding. docs/device-abi.md is the prose specification of the same
 * layout.
 *
 * Region (one file per device, size a power of two, mapped as ivshmem BAR2 in the guest):
 *
 *   0                      header page (struct synth_dev_header, SYNTH_HEADER_SIZE bytes)
 *   queue[i].sq_off        submission ring: struct synth_ring_core + ring_entries descriptors
 *   queue[i].cq_off        completion ring: struct synth_ring_core + ring_entries completions
 *   queue[i].arena_off     data arena of queue i (arena_size bytes), addressed by offset + length
 *
 * Ownership: fields marked [host] are written only by the backend, [guest] only by the driver.
 * The backend never trusts anything it reads from the region; it keeps its own copy of the layout.
 */
#ifndef SYNTH_DEVICE_CORE_H
#define SYNTH_DEVICE_CORE_H

#include <stddef.h>
#include <stdint.h>

/*
 * A compile-time check of the layout, in C11 (_Static_assert) and in C++11 (static_assert) alike,
 * so that C++ programs include these headers as they are.
 */
#ifdef __cplusplus
#define SYNTH_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define SYNTH_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* "SYNTHDEV" read as a little-endian 64-bit word. */
#define SYNTH_MAGIC 0x56454448544e5953ULL

#define SYNTH_ABI_MAJOR 1
#define SYNTH_ABI_MINOR 2

#define SYNTH_HEADER_SIZE 4096u
#define SYNTH_PAGE_SIZE 4096u
#define SYNTH_CACHELINE 64u

#define SYNTH_MAX_QUEUES 64u
#define SYNTH_MIN_RING_ENTRIES 8u
#define SYNTH_MAX_RING_ENTRIES 4096u
#define SYNTH_MIN_REGION_SIZE (64u * 1024u)
#define SYNTH_MAX_REGION_SIZE (1ULL << 32)

/* Device classes (header.dev_class). */
#define SYNTH_CLASS_CRYPTO 1u
#define SYNTH_CLASS_COMPRESS 2u
#define SYNTH_CLASS_PACKET 3u

/*
 * Feature bits (header.features_offered [host], header.features_accepted [guest]).
 * Bits 0..31 are generic, bits 32..63 belong to the device class.
 */
#define SYNTH_F_RING_V1 (1ULL << 0)    /* the ring format of this header; always offered */
#define SYNTH_F_GENERATION (1ULL << 1) /* backend bumps header.generation on every attach */
#define SYNTH_F_NOP (1ULL << 2)        /* SYNTH_OP_NOP is served (ping, latency probe) */

/* Driver status bits (header.drv_status [guest]), in the order a driver sets them. */
#define SYNTH_DRV_ACKNOWLEDGE 0x1u
#define SYNTH_DRV_DRIVER 0x2u
#define SYNTH_DRV_FEATURES_OK 0x4u
#define SYNTH_DRV_DRIVER_OK 0x8u

/* Device status bits (header.dev_status [host]). */
#define SYNTH_DEV_READY 0x1u       /* backend attached and serving this region */
#define SYNTH_DEV_NEEDS_RESET 0x2u /* backend stopped serving: driver must reset (new epoch) */
#define SYNTH_DEV_FAILED 0x4u      /* backend gave up on this device for good */

/* Reasons for NEEDS_RESET / FAILED (header.dev_error [host]). */
#define SYNTH_DEVERR_NONE 0u
#define SYNTH_DEVERR_FEATURES 1u   /* accepted features not a subset of offered ones */
#define SYNTH_DEVERR_SQ_INDEX 2u   /* reserved (descriptors are published by seq, prod is not read) */
#define SYNTH_DEVERR_CQ_INDEX 3u   /* completion consumer index impossible (prod - cons > entries) */
#define SYNTH_DEVERR_BACKEND 4u    /* backend internal failure for this device */
#define SYNTH_DEVERR_REGION 5u     /* host only: the region file shrank under the backend */

/*
 * Generic opcodes (synth_desc.opcode). Class opcodes start at 0x10 and are defined in the class
 * headers (crypto_core.h, ...).
 */
#define SYNTH_OP_NOP 0x00u

/* Per-operation completion status (synth_cpl.status). 0 is success; the rest are errors. */
#define SYNTH_ST_OK 0u
#define SYNTH_ST_INVALID 1u        /* malformed descriptor: bad offset, length, flag or size */
#define SYNTH_ST_AUTH_FAILED 2u    /* tag or MAC verification failed; output zeroed */
#define SYNTH_ST_NO_SESSION 3u     /* session id unknown to this device */
#define SYNTH_ST_NOT_SUPPORTED 4u  /* opcode, algorithm or parameter not served by this device */
#define SYNTH_ST_NO_SPACE 5u       /* destination too small; cpl.result holds the size needed */
#define SYNTH_ST_NO_RESOURCES 6u   /* session table or similar resource exhausted */
#define SYNTH_ST_RETRY 7u          /* not executed (e.g. the backend restarted): submit again */
#define SYNTH_ST_BAD_DATA 8u       /* input data corrupt (e.g. compressed stream) */
#define SYNTH_ST_DEVICE_ERROR 9u   /* backend or plugin failure */
#define SYNTH_ST_LIMIT 10u         /* a per-device limit was reached (stream output, frame size) */
#define SYNTH_ST_QUOTA 11u         /* not executed: the device's quota is spent; submit again later */
#define SYNTH_ST_MAX 12u

/*
 * Header page. Host-written and guest-written words live on separate cache lines.
 */
struct synth_queue_info {
    uint64_t sq_off;     /* [host] offset of the submission ring (struct synth_ring_core) */
    uint64_t cq_off;     /* [host] offset of the completion ring */
    uint64_t arena_off;  /* [host] offset of this queue's data arena */
    uint64_t arena_size; /* [host] arena size in bytes (multiple of SYNTH_PAGE_SIZE) */
};

struct synth_dev_header {
    /* Line 0: identity and layout, written once by the host when the region is laid out. */
    uint64_t magic;            /*   0 [host] SYNTH_MAGIC */
    uint16_t abi_major;        /*   8 [host] SYNTH_ABI_MAJOR */
    uint16_t abi_minor;        /*  10 [host] SYNTH_ABI_MINOR */
    uint16_t dev_class;        /*  12 [host] SYNTH_CLASS_* */
    uint16_t num_queues;       /*  14 [host] 1..SYNTH_MAX_QUEUES */
    uint64_t region_size;      /*  16 [host] total size, a power of two */
    uint64_t features_offered; /*  24 [host] SYNTH_F_* | class features */
    uint32_t header_size;      /*  32 [host] SYNTH_HEADER_SIZE */
    uint32_t queue_table_off;  /*  36 [host] offset of struct synth_queue_info[num_queues] */
    uint32_t ring_entries;     /*  40 [host] entries per ring, power of two */
    uint16_t desc_size;        /*  44 [host] sizeof(struct synth_desc) */
    uint16_t cpl_size;         /*  46 [host] sizeof(struct synth_cpl) */
    uint32_t class_cfg_off;    /*  48 [host] offset of the class configuration block */
    uint32_t class_cfg_size;   /*  52 [host] its size */
    uint8_t pad0[8];           /*  56 */

    /* Line 1: names, informational (NUL-terminated, for tools and logs). */
    char device_name[32]; /*  64 [host] the <shmem name=...> of this device */
    char backend[32];     /*  96 [host] plugin serving the device, e.g. "openssl" */

    /* Line 2: host status. */
    uint32_t dev_status;  /* 128 [host] SYNTH_DEV_* */
    uint32_t dev_error;   /* 132 [host] SYNTH_DEVERR_* when NEEDS_RESET or FAILED */
    uint32_t generation;  /* 136 [host] bumped on every backend attach */
    uint32_t acked_epoch; /* 140 [host] last drv_epoch the backend has acted on */
    uint64_t heartbeat;   /* 144 [host] increases while a backend polls this device */
    uint8_t pad2[40];     /* 152 */

    /* Line 3: driver status. */
    uint32_t drv_status;        /* 192 [guest] SYNTH_DRV_* */
    uint32_t drv_epoch;         /* 196 [guest] bumped on every driver reset/open/close */
    uint64_t features_accepted; /* 200 [guest] subset of features_offered */
    uint8_t pad3[48];           /* 208 */

    uint8_t class_cfg[768];  /* 256 [host] class configuration block (class_cfg_off) */
    uint8_t reserved[1024];  /* 1024 */
    struct synth_queue_info queues[SYNTH_MAX_QUEUES]; /* 2048 [host] queue table */
};

#define SYNTH_CLASS_CFG_OFF 256u
#define SYNTH_CLASS_CFG_SIZE 768u
#define SYNTH_QUEUE_TABLE_OFF 2048u

SYNTH_STATIC_ASSERT(sizeof(struct synth_queue_info) == 32, "queue info is 32 bytes");
SYNTH_STATIC_ASSERT(sizeof(struct synth_dev_header) == SYNTH_HEADER_SIZE, "header is one page");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, abi_major) == 8, "abi_major");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, dev_class) == 12, "dev_class");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, num_queues) == 14, "num_queues");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, region_size) == 16, "region_size");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, features_offered) == 24, "features_offered");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, header_size) == 32, "header_size");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, queue_table_off) == 36, "queue_table_off");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, ring_entries) == 40, "ring_entries");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, desc_size) == 44, "desc_size");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, cpl_size) == 46, "cpl_size");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, class_cfg_off) == 48, "class_cfg_off");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, device_name) == 64, "device_name");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, backend) == 96, "backend");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, dev_status) == 128, "dev_status");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, dev_error) == 132, "dev_error");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, generation) == 136, "generation");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, acked_epoch) == 140, "acked_epoch");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, heartbeat) == 144, "heartbeat");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, drv_status) == 192, "drv_status");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, drv_epoch) == 196, "drv_epoch");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, features_accepted) == 200, "features_accepted");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, class_cfg) == SYNTH_CLASS_CFG_OFF, "class_cfg");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, queues) == SYNTH_QUEUE_TABLE_OFF, "queue table");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, drv_status) % SYNTH_CACHELINE == 0,
                    "guest-written words start their own cache line");
SYNTH_STATIC_ASSERT(offsetof(struct synth_dev_header, dev_status) % SYNTH_CACHELINE == 0,
                    "host-written words start their own cache line");

/*
 * Ring header. Indices are free-running 32-bit counters; slot = index & (ring_entries - 1).
 * The producer owns `prod`, the consumer owns `cons`. They sit 128 bytes apart so that neither the
 * line nor its adjacent-line prefetch pair is shared. Entries follow at SYNTH_RING_ENTRIES_OFF.
 * Each entry is published by its own sequence word (descriptors: `seq`; completions: the phase
 * bit), so the consumer polls entries, not `prod`; `prod` is still advanced (release) after the
 * entries, for tools and for a backend that re-attaches. The consumer copies entries out, then
 * releases their slots with a release store of `cons`, which the producer reads (acquire) before
 * reusing a slot. A valid ring always satisfies 0 <= prod - cons <= ring_entries (unsigned).
 */
struct synth_ring_core {
    uint32_t prod;       /*   0 producer index */
    uint8_t pad0[124];
    uint32_t cons;       /* 128 consumer index */
    uint8_t pad1[124];
};

#define SYNTH_RING_ENTRIES_OFF 256u
SYNTH_STATIC_ASSERT(sizeof(struct synth_ring_core) == SYNTH_RING_ENTRIES_OFF, "ring core is 256 bytes");
SYNTH_STATIC_ASSERT(offsetof(struct synth_ring_core, cons) == 128, "cons 128 bytes after prod");

/*
 * Submission descriptor (guest -> host), 64 bytes. All *_off fields are offsets into the data arena
 * of the queue the descriptor was submitted on. Meaning of the fields per class and opcode:
 * see crypto_core.h and docs/device-abi.md.
 *
 * `seq` publishes the entry: the producer writes every other field, then stores
 * seq = synth_ring_seq(index) with release semantics; the consumer acquires `seq` and takes the
 * entry only if it equals the value expected for its next index. The consumer therefore polls
 * the entry itself and never needs the producer's index (one cache line crosses cores, not two).
 */
struct synth_desc {
    uint64_t cookie;   /*  0 opaque, echoed in the completion */
    uint16_t opcode;   /*  8 SYNTH_OP_* or class opcode */
    uint16_t flags;    /* 10 class-specific flags */
    uint32_t session;  /* 12 session id (class ops that need one) */
    uint32_t src_off;  /* 16 input */
    uint32_t src_len;  /* 20 */
    uint32_t dst_off;  /* 24 output */
    uint32_t dst_len;  /* 28 output capacity */
    uint32_t aad_off;  /* 32 additional authenticated data */
    uint32_t aad_len;  /* 36 */
    uint32_t iv_off;   /* 40 IV / nonce (length fixed by the session) */
    uint32_t tag_off;  /* 44 tag / ICV (length fixed by the session) */
    uint32_t arg[3];   /* 48 class-specific arguments */
    uint32_t seq;      /* 60 written last: synth_ring_seq(ring index of this entry) */
};

/* The seq value that publishes ring index idx: idx + 1, never 0 (a zeroed slot is never valid). */
static inline uint32_t synth_ring_seq(uint32_t idx) { return idx + 1 ? idx + 1 : 1; }

SYNTH_STATIC_ASSERT(sizeof(struct synth_desc) == 64, "descriptor is 64 bytes");
SYNTH_STATIC_ASSERT(offsetof(struct synth_desc, opcode) == 8, "opcode");
SYNTH_STATIC_ASSERT(offsetof(struct synth_desc, session) == 12, "session");
SYNTH_STATIC_ASSERT(offsetof(struct synth_desc, src_off) == 16, "src_off");
SYNTH_STATIC_ASSERT(offsetof(struct synth_desc, dst_off) == 24, "dst_off");
SYNTH_STATIC_ASSERT(offsetof(struct synth_desc, aad_off) == 32, "aad_off");
SYNTH_STATIC_ASSERT(offsetof(struct synth_desc, iv_off) == 40, "iv_off");
SYNTH_STATIC_ASSERT(offsetof(struct synth_desc, tag_off) == 44, "tag_off");
SYNTH_STATIC_ASSERT(offsetof(struct synth_desc, arg) == 48, "arg");
SYNTH_STATIC_ASSERT(offsetof(struct synth_desc, seq) == 60, "seq");

/* Completion (host -> guest), 16 bytes. */
struct synth_cpl {
    uint64_t cookie; /*  0 copied from the descriptor */
    uint16_t status; /*  8 SYNTH_ST_* */
    uint16_t flags;  /* 10 SYNTH_CPL_F_* */
    uint32_t result; /* 12 op-specific: bytes written, session id, bytes needed (NO_SPACE) */
};

/*
 * Completion flags. SYNTH_CPL_F_PHASE publishes the entry: the host writes cookie and result,
 * then stores the 32-bit word at offset 8 (status | flags << 16) with release semantics. The phase
 * of ring index idx is synth_cpl_phase(idx, ring_entries): 1 on the first lap over the ring, 0 on
 * the second, and so on; the guest takes the entry only if its phase bit matches.
 */
#define SYNTH_CPL_F_MORE 0x1u     /* streams: output still pending; submit again with no input */
#define SYNTH_CPL_F_END 0x2u      /* streams: end of the compressed stream reached / written */
#define SYNTH_CPL_F_PHASE 0x8000u /* lap parity of the entry (see above) */

static inline uint16_t synth_cpl_phase(uint32_t idx, uint32_t ring_entries)
{
    /* ring_entries is a power of two (docs/device-abi.md section 2.1; layouts refuse others), so
     * the lap's parity is the bit ring_entries of idx: no division on every completion. */
    return (uint16_t)((idx & ring_entries) ? 0u : 1u);
}

SYNTH_STATIC_ASSERT(sizeof(struct synth_cpl) == 16, "completion is 16 bytes");
SYNTH_STATIC_ASSERT(offsetof(struct synth_cpl, status) == 8, "status");
SYNTH_STATIC_ASSERT(offsetof(struct synth_cpl, flags) == 10, "flags");
SYNTH_STATIC_ASSERT(offsetof(struct synth_cpl, result) == 12, "result");

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_DEVICE_CORE_H */
