/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plugin ABI: the versioned table of functions a backend plugin provides. Built-in plugins and
 * external ones (shared objects exporting `synth_plugin_entry`) use the same table. The data path
 * hands a plugin only validated, host-local operations: every pointer already checked to lie inside
 * the device's arena, the IV and the expected tag already copied out of shared memory.
 *
 * Concurrency contract: a device is served by exactly one worker thread at a time, and a session
 * belongs to one device, so session functions and burst calls on one session never run
 * concurrently. Different sessions may be used from different threads at once. The same holds for
 * compression contexts: a context belongs to one device (a stream, or the device's one-shot use).
 *
 * Cut calls: src and dst point into a region that the VM's QEMU owns and may truncate at any
 * moment. The next access to a lost page raises SIGBUS, and the data path then longjmps out of
 * the plugin call in progress (crypto_burst, a compression call) and abandons that device. So a
 * plugin call may end at any instruction that touches the arena: keep no lock, no half-updated
 * structure shared beyond the session or context, and no per-thread state that the next call
 * relies on across such an access (the ipsec-mb plugin resets its per-thread manager when a burst
 * did not end normally). The session or context of a cut call is destroyed later as usual; it
 * must survive that destroy however far the call got.
 *
 * Versions: 1 = the header, the crypto members and cpu_features. 2 appends the compression
 * members; they are read only from tables of version 2 or later.
 */
#ifndef SYNTH_PLUGIN_H
#define SYNTH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "synth/compress_core.h"
#include "synth/crypto_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SYNTH_PLUGIN_ABI_VERSION 2u

/* One crypto operation, validated, in host-local memory. */
struct synth_plugin;

struct synth_crypto_op {
    void *sess;            /* plugin session from session_create */
    const struct synth_plugin *plugin; /* the plugin of that session (for the data path) */
    uint32_t opcode;       /* SYNTH_OP_CRYPTO_ENCRYPT or _DECRYPT */
    uint32_t alg;          /* SYNTH_ALG_* of the session */
    const uint8_t *src;    /* input, len bytes (in the arena) */
    uint8_t *dst;          /* output, len bytes (in the arena; == src when in place) */
    uint32_t len;
    uint32_t aad_len;
    const uint8_t *aad;    /* aad_len bytes (in the arena) */
    uint8_t *tag_out;      /* encrypt: where the tag goes (in the arena) */
    uint32_t iv_len;
    uint32_t tag_len;
    uint8_t iv[SYNTH_CRYPTO_MAX_IV];   /* local copy of the IV */
    uint8_t tag[SYNTH_CRYPTO_MAX_TAG]; /* decrypt: local copy of the expected tag */
    uint32_t status;       /* out: SYNTH_ST_* */
    uint32_t result;       /* out: bytes written to dst */
};

/* Parameters of a compression context, checked by the class against the plugin's alg_mask and levels. */
struct synth_comp_ctx_params {
    uint32_t alg;        /* SYNTH_CALG_* the plugin serves */
    uint32_t direction;  /* SYNTH_COMP_DIR_* */
    int32_t level;       /* stream contexts that compress: the level, in the plugin's range */
    uint32_t oneshot;    /* 1: serves one-shot ops of any level in the range; 0: one stream */
    uint32_t max_src;    /* longest input of one call (sizes static workspaces) */
    uint32_t window_log; /* zstd: largest window accepted when decompressing and used when compressing */
};

/* One call of a compression context, over buffers the class has checked. */
struct synth_comp_io {
    const uint8_t *src; /* input: plain data in the arena, or compressed data copied to host memory */
    uint8_t *dst;       /* output space: in the arena, or host scratch */
    size_t src_len;
    size_t dst_len;
    uint64_t limit;     /* one-shot decompression: most bytes the whole output may have */
    size_t consumed;    /* out: input bytes used */
    size_t produced;    /* out: bytes written to dst (never more than dst_len) */
    uint64_t needed;    /* out: one-shot decompression with NO_SPACE: bytes the whole output needs */
    uint32_t flags;     /* out: SYNTH_COMP_IO_* */
    uint32_t reserved;
};

#define SYNTH_COMP_IO_END 0x1u     /* stream: the frame's end was read (decompress) or written (FINISH) */
#define SYNTH_COMP_IO_PENDING 0x2u /* stream: output space ran out; more output may follow */

/*
 * Compression plugin capabilities (synth_plugin.comp_caps).
 * DECODES_IN_PLACE: the plugin's decoders read each input byte they act on once (a value read for
 * a check is the value used), so decoding input that the guest changes meanwhile is decoding some
 * other fixed input, which they handle like any input. The class then decodes compressed input in
 * the arena; without this capability it decodes a private copy. Claim it only after reading the
 * decoder for double fetches.
 */
#define SYNTH_COMP_CAP_DECODES_IN_PLACE 0x1u

/*
 * Crypto plugin capabilities (synth_plugin.crypto_caps); a plugin without one is never given a
 * session that needs it (the device refuses such a session with NOT_SUPPORTED).
 * MAC_NO_IV: AES256_CBC_HMAC_SHA256 sessions whose params carry SYNTH_CRYPTO_SF_MAC_NO_IV compute
 * the tag over aad || ciphertext, leaving the IV out (crypto_core.h).
 */
#define SYNTH_CRYPTO_CAP_MAC_NO_IV 0x1u

struct synth_plugin {
    uint32_t abi_version;   /* SYNTH_PLUGIN_ABI_VERSION */
    uint32_t dev_class;     /* SYNTH_CLASS_* served */
    const char *name;       /* short, unique: "openssl", "ipsec-mb", ... */
    const char *description;
    int32_t priority;       /* higher wins when several plugins serve an algorithm */
    uint32_t crypto_caps;   /* SYNTH_CRYPTO_CAP_* (crypto plugins; 0 in tables of other classes) */

    /*
     * Probe the host: 0 if usable here, else -errno with a one-line reason in why[why_len].
     * Called once before any other function.
     */
    int (*probe)(char *why, size_t why_len);
    /* Algorithms served: bit (1 << SYNTH_ALG_*) per algorithm. */
    uint32_t (*alg_mask)(void);

    /*
     * Create a session for already-validated parameters (sizes checked against the table in
     * crypto_core.h). Returns 0 with *sess set, -ENOTSUP (algorithm not served), -EINVAL (the
     * library refused the key), -ENOMEM.
     */
    int (*session_create)(const struct synth_crypto_session_params *p, void **sess);
    /* Destroy a session and wipe its key material. */
    void (*session_destroy)(void *sess);
    /*
     * Process n operations; every op gets a status (SYNTH_ST_OK, SYNTH_ST_AUTH_FAILED with the
     * output zeroed, SYNTH_ST_INVALID, SYNTH_ST_DEVICE_ERROR). Must not allocate.
     */
    void (*crypto_burst)(struct synth_crypto_op *ops, unsigned n);
    /*
     * CPU features the plugin needs (the names /proc/cpuinfo uses, space separated; "" for
     * none). Informational: probe() decides, and says why when it refuses.
     */
    const char *cpu_features;

    /*
     * ---- Compression class (abi_version >= 2; NULL in tables of other classes) ----
     * alg_mask() above returns bits (1 << SYNTH_CALG_*). Contexts allocate, at create, everything
     * they will ever use: comp_oneshot and comp_stream never allocate, and never write more than
     * dst_len bytes, whatever the input. Library errors are mapped to statuses, never abort.
     */
    /* Compression levels of alg: 0 with *min, *max and the plugin's *dflt set, or -ENOTSUP. */
    int (*comp_levels)(uint32_t alg, int32_t *min, int32_t *max, int32_t *dflt);
    /* Bytes of host memory a context with these parameters holds (the device's memory budget). */
    size_t (*comp_ctx_size)(const struct synth_comp_ctx_params *p);
    /* Create a context: 0, -ENOTSUP (not served), -EINVAL (level or window refused), -ENOMEM. */
    int (*comp_ctx_create)(const struct synth_comp_ctx_params *p, void **ctx);
    void (*comp_ctx_destroy)(void *ctx);
    /*
     * One-shot op on a one-shot context. Compress (level in range): all of src into one complete
     * frame in dst; the class guarantees dst_len >= SYNTH_COMP_BOUND(src_len). Returns OK
     * (produced set) or DEVICE_ERROR. Decompress (level ignored): exactly one complete frame in
     * src. Returns OK; NO_SPACE with needed = the whole output's size (exact, or a bound that
     * suffices) when dst is too small and that size is at most limit; LIMIT when the output
     * exceeds limit or the frame needs a larger window than window_log; BAD_DATA for corrupt or
     * truncated input and for bytes after the frame; DEVICE_ERROR.
     */
    uint32_t (*comp_oneshot)(void *ctx, int32_t level, struct synth_comp_io *io);
    /*
     * One step of a stream context. Compress: consume input, write output, flush as asked
     * (SYNTH_FLUSH_*; FINISH is repeated until END); sets END once FINISH has written the frame's
     * end, PENDING when output space ran out with output still to come. Decompress (flush
     * ignored): consume input up to the end of the frame at most (consumed says where it
     * ended), END when it ended, PENDING as above. Returns OK, BAD_DATA, LIMIT (window too large)
     * or DEVICE_ERROR; after an error or END the class calls it no more.
     */
    uint32_t (*comp_stream)(void *ctx, uint32_t flush, struct synth_comp_io *io);
    uint32_t comp_caps; /* SYNTH_COMP_CAP_* */
    uint32_t comp_reserved;
};

/* Entry point an external plugin exports: returns its table. */
typedef const struct synth_plugin *(*synth_plugin_entry_fn)(void);
#define SYNTH_PLUGIN_ENTRY_SYMBOL "synth_plugin_entry"

/* Built-in plugins. */
const struct synth_plugin *synth_plugin_openssl(void);
const struct synth_plugin *synth_plugin_ipsecmb(void);
const struct synth_plugin *synth_plugin_afalg(void);
const struct synth_plugin *synth_plugin_zlib(void);
const struct synth_plugin *synth_plugin_isal(void);
const struct synth_plugin *synth_plugin_zstd(void);
const struct synth_plugin *synth_plugin_lz4(void);

/* The idx-th plugin of the catalog (built-ins first, then loaded ones), or NULL past the end. */
const struct synth_plugin *synth_plugin_builtin(unsigned idx);
/* A plugin of the catalog by name, or NULL. */
const struct synth_plugin *synth_plugin_find(const char *name);
/*
 * Load an external plugin (a shared object exporting SYNTH_PLUGIN_ENTRY_SYMBOL) into the catalog.
 * The table is checked (ABI version, class, complete, unique name) before it is published.
 * Returns 0 or -errno (-ENOENT dlopen failed, -EINVAL bad plugin, -ENOSPC too many), with a
 * one-line explanation in why.
 */
int synth_plugin_load(const char *path, char *why, size_t why_len);
/*
 * Probe a plugin once (built-ins: the result is remembered): 0 if usable here, else -errno; why
 * gets a one-line description either way (version and code path, or the reason it is unusable).
 */
int synth_plugin_probe(const struct synth_plugin *p, char *why, size_t why_len);

/*
 * Compression class: the usable plugins of the catalog serving alg (SYNTH_CALG_*), best first
 * (higher priority first, then catalog order), at most max of them into out. Returns how many
 * serve it (which may exceed max).
 */
unsigned synth_plugin_comp_candidates(uint32_t alg, const struct synth_plugin **out, unsigned max);
/*
 * Compression class: the plugin that serves alg in direction (SYNTH_COMP_DIR_*) at level (a
 * compression level other than 0; ignored when decompressing): pin if it is a usable compression
 * plugin that serves them, else NULL; with pin NULL, the best usable plugin of the catalog, or NULL.
 */
const struct synth_plugin *synth_plugin_comp_select(uint32_t alg, uint32_t direction, int32_t level,
                                                    const struct synth_plugin *pin);

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_PLUGIN_H */
