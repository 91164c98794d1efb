/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt-synth device ABI, crypto class (SYNTH_CLASS_CRYPTO): opcodes, algorithms, the session
 * parameter block and the class configuration block. Shared by guest and host; see
 * docs/device-abi.md, section "Crypto class".
 */
#ifndef SYNTH_CRYPTO_CORE_H
#define SYNTH_CRYPTO_CORE_H

#include "synth/device_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opcodes. */
#define SYNTH_OP_CRYPTO_SESSION_CREATE 0x10u  /* src = struct synth_crypto_session_params */
#define SYNTH_OP_CRYPTO_SESSION_DESTROY 0x11u /* session = id to destroy */
#define SYNTH_OP_CRYPTO_ENCRYPT 0x12u         /* src -> dst, tag written */
#define SYNTH_OP_CRYPTO_DECRYPT 0x13u         /* src -> dst after the tag verifies */

/* Algorithms (synth_crypto_session_params.alg). */
#define SYNTH_ALG_AES128_GCM 1u
#define SYNTH_ALG_AES256_GCM 2u
#define SYNTH_ALG_CHACHA20_POLY1305 3u
#define SYNTH_ALG_AES256_CBC_HMAC_SHA256 4u /* encrypt-then-MAC, as IPsec ESP */
#define SYNTH_ALG_HMAC_SHA256 5u            /* authentication only */
#define SYNTH_ALG_MAX 6u

#define SYNTH_CRYPTO_MAX_KEY 256u
#define SYNTH_CRYPTO_MAX_IV 16u
#define SYNTH_CRYPTO_MAX_TAG 32u

/* Class feature bits (high half of the feature word). */
#define SYNTH_CRYPTO_F_SESSIONS (1ULL << 32)    /* session create/destroy ops */
#define SYNTH_CRYPTO_F_OUT_OF_PLACE (1ULL << 33) /* dst may differ from src */
#define SYNTH_CRYPTO_F_IV_GEN (1ULL << 34)       /* sessions with SYNTH_CRYPTO_SF_IV_GEN */
#define SYNTH_CRYPTO_F_MAC_NO_IV (1ULL << 35)    /* (1.2) sessions with SYNTH_CRYPTO_SF_MAC_NO_IV */

/*
 * Session flags (synth_crypto_session_params.flags).
 * IV_GEN (AES-GCM and ChaCha20-Poly1305 only): the device chooses the IV of every ENCRYPT: a
 * 4-byte salt drawn at session creation followed by a 64-bit big-endian counter starting at 1,
 * written to iv_off before the operation runs. The counter is recorded before each use where a
 * restarted backend finds it, so no (key, IV) pair is ever used twice, restarts included.
 * DECRYPT takes the IV from iv_off as usual (the sender's).
 */
#define SYNTH_CRYPTO_SF_IV_GEN 0x1u
/*
 * MAC_NO_IV (AES256_CBC_HMAC_SHA256 only, ABI 1.2): the tag is HMAC-SHA-256(K_mac, AAD || C),
 * without the IV between them, so that the authenticated range is exactly what the driver names
 * (a DPDK cipher-then-auth chain: the bytes before the cipher range, then the ciphertext). A
 * driver that wants the IV authenticated puts it at the end of the AAD (IPsec ESP: SPI ||
 * sequence number || IV).
 */
#define SYNTH_CRYPTO_SF_MAC_NO_IV 0x2u

/*
 * Session parameters, written by the guest into its arena and named by the src_off/src_len of a
 * SESSION_CREATE descriptor (src_len must equal sizeof this struct). The backend copies the block,
 * then zeroes the key bytes in the arena so that the key does not stay in shared memory.
 *
 *   alg                       key_len            iv_len  tag_len
 *   AES128_GCM                16                 12      16, 15, 14, 13, 12, 8, 4
 *   AES256_GCM                32                 12      16, 15, 14, 13, 12, 8, 4
 *   CHACHA20_POLY1305         32                 12      16
 *   AES256_CBC_HMAC_SHA256    32 + mac key 1..224 16      12..32  (key = AES key || HMAC key)
 *   HMAC_SHA256               1..256             0       4..32
 *
 * flags: SYNTH_CRYPTO_SF_* (others must be 0); each needs its feature bit accepted.
 */
struct synth_crypto_session_params {
    uint16_t alg;     /* 0 SYNTH_ALG_* */
    uint16_t key_len; /* 2 bytes used in key[] */
    uint8_t iv_len;   /* 4 */
    uint8_t tag_len;  /* 5 */
    uint16_t flags;   /* 6 SYNTH_CRYPTO_SF_* */
    uint8_t key[SYNTH_CRYPTO_MAX_KEY]; /* 8 */
};

SYNTH_STATIC_ASSERT(sizeof(struct synth_crypto_session_params) == 264, "session params are 264 bytes");
SYNTH_STATIC_ASSERT(offsetof(struct synth_crypto_session_params, key) == 8, "key at 8");

/* Class configuration block (header.class_cfg) of a crypto device. */
struct synth_crypto_cfg {
    uint32_t max_sessions; /* 0 sessions the device holds at once */
    uint32_t alg_mask;     /* 4 bit (1 << SYNTH_ALG_*) set for each algorithm served */
    uint32_t max_aad_len;  /* 8 longest AAD accepted */
    uint32_t reserved[13]; /* 12 */
};

SYNTH_STATIC_ASSERT(sizeof(struct synth_crypto_cfg) == 64, "crypto cfg is 64 bytes");
SYNTH_STATIC_ASSERT(sizeof(struct synth_crypto_cfg) <= SYNTH_CLASS_CFG_SIZE, "fits the cfg block");

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_CRYPTO_CORE_H */
