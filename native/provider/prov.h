/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OpenSSL 3 provider `synth` (docs/openssl.md): AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305
 * run on a synthetic crypto device through the guest library. Four parts, each using only those
 * above it:
 *   core.c    the algorithms, the fallback reasons and their counting, the default provider's ciphers;
 *   dev.c     the device: opening it, a queue per thread, one AEAD operation, resets, timeouts;
 *   cipher.c  the cipher contexts that libcrypto and libssl drive, and their software fallback;
 *   prov.c    the provider: configuration, counters, the algorithm table, teardown.
 * Nothing here makes an application fail because of the device: whatever the device cannot do
 * (missing, resetting, full, slow, or asked for what it does not serve) is done by the default
 * provider, in a library context of our own, and counted.
 */
#ifndef SYNTH_PROV_H
#define SYNTH_PROV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/core.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "synth/crypto_core.h"

/* Why an operation ran in software. */
enum sp_reason {
    SP_R_NO_DEVICE,   /* no device configured, found or answering */
    SP_R_RESET,       /* the device needed a reset (the provider reset it) */
    SP_R_RING_FULL,   /* no room in the queue's ring or arena */
    SP_R_TIMEOUT,     /* the device did not complete within timeout_ms */
    SP_R_UNSUPPORTED, /* what the device does not serve: an IV length, tag length, size, usage */
    SP_R_BUSY,        /* the device refused for now: quota, session table full, device error */
    SP_R_COUNT
};

extern const char *const sp_reason_names[SP_R_COUNT];

enum sp_alg_id { SP_AES128_GCM, SP_AES256_GCM, SP_CHACHA20_POLY1305, SP_ALG_COUNT };

struct sp_alg {
    const char *name;     /* the default provider's name for it */
    uint16_t synth_alg;   /* SYNTH_ALG_* */
    uint16_t keylen;
    unsigned mode;        /* EVP_CIPH_*_MODE */
};

extern const struct sp_alg sp_algs[SP_ALG_COUNT];

struct sp_dev;

struct sp_prov {
    char device[256];     /* "auto", a region path or a PCI address */
    int timeout_ms;
    int log;              /* 1: summary and first fallback of each reason on stderr */

    pthread_mutex_t open_lock;
    struct sp_dev *dev;   /* NULL until opened (atomic load) */
    uint64_t next_open_ns;
    char dev_name[256];   /* what was opened */

    OSSL_LIB_CTX *sw_libctx;          /* our own context, the default provider only */
    OSSL_PROVIDER *sw_default;
    EVP_CIPHER *sw[SP_ALG_COUNT];

    uint64_t ops;                     /* operations the device did (atomic) */
    uint64_t fallbacks[SP_R_COUNT];   /* atomic */
    uint32_t logged;                  /* reasons already logged (atomic bits) */
};

/* ---- core.c ---- */

/* Count one software fallback (and say so once per reason if logging). */
void sp_fallback(struct sp_prov *p, enum sp_reason r);
/* The default provider's implementation of alg, or NULL. */
EVP_CIPHER *sp_sw_cipher(struct sp_prov *p, enum sp_alg_id alg);

/* ---- dev.c ---- */

/* A device session as one cipher context holds it. */
struct sp_sess {
    uint32_t id;
    uint32_t epoch;   /* the device's reset epoch it was created in */
    uint8_t taglen;
    uint8_t live;
    uint8_t cached;   /* shared through the device's session cache (dev.c) */
    uint64_t refused_ns; /* the device refused a session: try again after this */
};

/* An arena buffer a context keeps between update and final (its output stays readable). */
struct sp_hold {
    int live;
    unsigned slot;
    uint32_t epoch;
    uint32_t off, size;
    uint32_t src;     /* offset of the data (input, then output: in place) within the arena */
    uint32_t len;
};

struct sp_op {
    enum sp_alg_id alg;
    int enc;
    const uint8_t *key;
    const uint8_t *iv;   /* 12 bytes */
    const uint8_t *aad;
    size_t aad_len;
    const uint8_t *in;
    uint8_t *out;
    size_t len;
    uint8_t *tag;        /* enc: 16 bytes written; dec: tag_len bytes read */
    size_t tag_len;
    struct sp_sess *sess;
    struct sp_hold *hold; /* non-NULL, encrypt: keep the output in the arena (sp_hold_*) */
};

#define SP_AUTH_FAILED 1

/*
 * One AEAD operation on the device. Returns 0 (out, and for enc the tag, written), SP_AUTH_FAILED
 * (dec: the tag did not verify; out untouched), or -(1 + enum sp_reason): not done, do it in
 * software.
 */
int sp_dev_aead(struct sp_prov *p, const struct sp_op *op);
/* Forget a context's session (destroying it on the device when it is still there). */
void sp_dev_sess_drop(struct sp_prov *p, struct sp_sess *s);
/* The held output, or NULL when it is gone (the device was reset since). */
const uint8_t *sp_hold_data(struct sp_prov *p, const struct sp_hold *h);
void sp_hold_release(struct sp_prov *p, struct sp_hold *h);
/* Once per process: forked children notice that they are (pthread_atfork). */
void sp_dev_init_once(void);
/* Close the device (teardown). */
void sp_dev_close(struct sp_prov *p);
/* The device's name for the counters ("" when none is open). */
const char *sp_dev_name(struct sp_prov *p);

/* ---- cipher.c ---- */

extern const OSSL_DISPATCH sp_cipher_functions[SP_ALG_COUNT][24];

#endif /* SYNTH_PROV_H */
