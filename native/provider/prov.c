/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider's entry point: its configuration (openssl.cnf), its counters (provider parameters
 * and a summary line), the algorithms it offers, and the default provider it falls back on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "prov.h"

#define SP_VERSION "1.1.0"
#define DEFAULT_TIMEOUT_MS 1000
#define ENV_DEVICE "LIBVIRT_SYNTH_OSSL_DEVICE"
#define ENV_LOG "LIBVIRT_SYNTH_OSSL_LOG"

static const OSSL_ALGORITHM ciphers[] = {
    {"AES-128-GCM:id-aes128-GCM:2.16.840.1.101.3.4.1.6", "provider=synth", sp_cipher_functions[SP_AES128_GCM],
     "AES-128-GCM on a synthetic crypto device"},
    {"AES-256-GCM:id-aes256-GCM:2.16.840.1.101.3.4.1.46", "provider=synth", sp_cipher_functions[SP_AES256_GCM],
     "AES-256-GCM on a synthetic crypto device"},
    {"ChaCha20-Poly1305", "provider=synth", sp_cipher_functions[SP_CHACHA20_POLY1305],
     "ChaCha20-Poly1305 on a synthetic crypto device"},
    {NULL, NULL, NULL, NULL},
};

#define COUNTER(name) OSSL_PARAM_DEFN(name, OSSL_PARAM_UNSIGNED_INTEGER, NULL, 0)

static const OSSL_PARAM gettable[] = {
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
    OSSL_PARAM_DEFN("synth-device", OSSL_PARAM_UTF8_PTR, NULL, 0),
    COUNTER("synth-ops"),
    COUNTER("synth-fallbacks"),
    COUNTER("synth-fallback-no-device"),
    COUNTER("synth-fallback-reset"),
    COUNTER("synth-fallback-ring-full"),
    COUNTER("synth-fallback-timeout"),
    COUNTER("synth-fallback-unsupported"),
    COUNTER("synth-fallback-busy"),
    OSSL_PARAM_END,
};

static uint64_t load(const uint64_t *v) { return __atomic_load_n(v, __ATOMIC_RELAXED); }

static uint64_t total_fallbacks(const struct sp_prov *p)
{
    uint64_t t = 0;
    for (int i = 0; i < SP_R_COUNT; i++)
        t += load(&p->fallbacks[i]);
    return t;
}

/* "device d: N ops, M fallbacks (no-device a, ...)" */
static void summary(const struct sp_prov *p, char *buf, size_t len)
{
    int n = snprintf(buf, len, "device %s: %llu ops, %llu fallbacks (", p->dev ? p->dev_name : "none",
                     (unsigned long long)load(&p->ops), (unsigned long long)total_fallbacks(p));
    for (int i = 0; i < SP_R_COUNT && n > 0 && (size_t)n < len; i++)
        n += snprintf(buf + n, len - (size_t)n, "%s%s %llu", i ? ", " : "", sp_reason_names[i],
                      (unsigned long long)load(&p->fallbacks[i]));
    if (n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ")");
}

static const OSSL_PARAM *prov_gettable(void *provctx)
{
    (void)provctx;
    return gettable;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    struct sp_prov *p = provctx;
    static char info[512]; /* buildinfo: the summary, as `openssl list -providers` prints it */
    OSSL_PARAM *q;

    if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) && !OSSL_PARAM_set_utf8_ptr(q, "libvirt-synth synthetic crypto device"))
        return 0;
    if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) && !OSSL_PARAM_set_utf8_ptr(q, SP_VERSION))
        return 0;
    if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO))) {
        summary(p, info, sizeof(info));
        if (!OSSL_PARAM_set_utf8_ptr(q, info))
            return 0;
    }
    if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) && !OSSL_PARAM_set_int(q, 1))
        return 0;
    if ((q = OSSL_PARAM_locate(params, "synth-device")) && /* asked for as a pointer or a copy */
        !(q->data_type == OSSL_PARAM_UTF8_STRING ? OSSL_PARAM_set_utf8_string(q, sp_dev_name(p))
                                                 : OSSL_PARAM_set_utf8_ptr(q, sp_dev_name(p))))
        return 0;
    if ((q = OSSL_PARAM_locate(params, "synth-ops")) && !OSSL_PARAM_set_uint64(q, load(&p->ops)))
        return 0;
    if ((q = OSSL_PARAM_locate(params, "synth-fallbacks")) && !OSSL_PARAM_set_uint64(q, total_fallbacks(p)))
        return 0;
    for (int i = 0; i < SP_R_COUNT; i++) {
        char name[64];
        snprintf(name, sizeof(name), "synth-fallback-%s", sp_reason_names[i]);
        if ((q = OSSL_PARAM_locate(params, name)) && !OSSL_PARAM_set_uint64(q, load(&p->fallbacks[i])))
            return 0;
    }
    return 1;
}

static const OSSL_ALGORITHM *prov_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    return operation_id == OSSL_OP_CIPHER ? ciphers : NULL;
}

static void prov_teardown(void *provctx)
{
    struct sp_prov *p = provctx;
    if (p->log) {
        char line[512];
        summary(p, line, sizeof(line));
        fprintf(stderr, "synth: %s\n", line);
    }
    sp_dev_close(p);
    for (int i = 0; i < SP_ALG_COUNT; i++)
        EVP_CIPHER_free(p->sw[i]);
    if (p->sw_default)
        OSSL_PROVIDER_unload(p->sw_default);
    OSSL_LIB_CTX_free(p->sw_libctx);
    pthread_mutex_destroy(&p->open_lock);
    free(p);
}

static const OSSL_DISPATCH prov_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query},
    {0, NULL},
};

/* The configuration: device, timeout_ms, log (section parameters in openssl.cnf); the environment's
 * LIBVIRT_SYNTH_OSSL_DEVICE and LIBVIRT_SYNTH_OSSL_LOG override device and log. */
static int configure(struct sp_prov *p, const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in)
{
    OSSL_FUNC_core_get_params_fn *get_params = NULL;
    char *device = NULL, *timeout = NULL, *log = NULL;
    const char *env = getenv(ENV_DEVICE), *env_log = getenv(ENV_LOG);

    for (; in->function_id; in++)
        if (in->function_id == OSSL_FUNC_CORE_GET_PARAMS)
            get_params = OSSL_FUNC_core_get_params(in);
    if (get_params) {
        OSSL_PARAM req[] = {
            OSSL_PARAM_utf8_ptr("device", &device, 0),
            OSSL_PARAM_utf8_ptr("timeout_ms", &timeout, 0),
            OSSL_PARAM_utf8_ptr("log", &log, 0),
            OSSL_PARAM_END,
        };
        if (!get_params(handle, req))
            return 0;
    }
    snprintf(p->device, sizeof(p->device), "%s", env && *env ? env : device ? device : "auto");
    p->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (timeout) {
        char *end;
        long v = strtol(timeout, &end, 10);
        if (*end || v < 1 || v > 600000) {
            fprintf(stderr, "synth: timeout_ms = %s is not a number of milliseconds (1..600000)\n", timeout);
            return 0;
        }
        p->timeout_ms = (int)v;
    }
    if (env_log && *env_log)
        log = (char *)env_log;
    if (log && strcmp(log, "stderr") && strcmp(log, "none")) {
        fprintf(stderr, "synth: log = %s%s: expected stderr or none\n", log, log == env_log ? " (" ENV_LOG ")" : "");
        return 0;
    }
    p->log = log && !strcmp(log, "stderr");
    return 1;
}

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                       void **provctx);

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                       void **provctx)
{
    struct sp_prov *p = calloc(1, sizeof(*p));

    static pthread_once_t once = PTHREAD_ONCE_INIT;

    if (!p)
        return 0;
    pthread_once(&once, sp_dev_init_once);
    pthread_mutex_init(&p->open_lock, NULL);
    if (!configure(p, handle, in)) {
        pthread_mutex_destroy(&p->open_lock);
        free(p);
        return 0;
    }
    *out = prov_functions;
    *provctx = p;
    return 1;
}
