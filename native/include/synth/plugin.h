/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plugin ABI: the versioned table of functions a backend plugin provides. Built-in plugins and
 * external ones (shared objects exporting `synth_plugin_entry`) use the same table. The data path
 * hands a plugin only validated, host-local operations: every pointer already checked to lie inside
 * the device's arena, the IV and the expected tag already copied out of shared memory.
 *
 * Concurrency contract: a device is served by exactly one worker thread at a time, and a session
 * belongs to one device, so session functions and burst calls on one session never run
 * concurrently. Different sessions may be used from different threads at once.
 */
#ifndef SYNTH_PLUGIN_H
#define SYNTH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "synth/crypto_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SYNTH_PLUGIN_ABI_VERSION 1u

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

struct synth_plugin {
    uint32_t abi_version;   /* SYNTH_PLUGIN_ABI_VERSION */
    uint32_t dev_class;     /* SYNTH_CLASS_* served */
    const char *name;       /* short, unique: "openssl", "ipsec-mb", ... */
    const char *description;
    int32_t priority;       /* higher wins when several plugins serve an algorithm */
    uint32_t reserved;

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
};

/* Entry point an external plugin exports: returns its table. */
typedef const struct synth_plugin *(*synth_plugin_entry_fn)(void);
#define SYNTH_PLUGIN_ENTRY_SYMBOL "synth_plugin_entry"

/* Built-in plugins. */
const struct synth_plugin *synth_plugin_openssl(void);
const struct synth_plugin *synth_plugin_ipsecmb(void);
const struct synth_plugin *synth_plugin_afalg(void);

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

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_PLUGIN_H */
