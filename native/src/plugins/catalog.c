/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plugin catalog: the built-in plugins, then the external ones loaded from a directory with
 * dlopen (shared objects exporting synth_plugin_entry). Probing is done once per plugin and
 * remembered; the data path picks, per algorithm, the available plugin of highest priority (the
 * compression class also per level: synth_plugin_comp_select).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/plugin.h"

typedef const struct synth_plugin *(*builtin_fn)(void);

static const builtin_fn builtins[] = {
    synth_plugin_openssl,
    synth_plugin_ipsecmb,
    synth_plugin_afalg,
    synth_plugin_zlib,
    synth_plugin_isal,
    synth_plugin_zstd,
    synth_plugin_lz4,
};

#define NBUILTIN (sizeof(builtins) / sizeof(builtins[0]))
#define MAX_EXTERNAL 32u
#define NMAX (NBUILTIN + MAX_EXTERNAL)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const struct synth_plugin *external[MAX_EXTERNAL];
static unsigned nexternal;
static int probed[NMAX];
static int probe_rc[NMAX];
static char probe_why[NMAX][160];

static const struct synth_plugin *at(unsigned idx)
{
    if (idx < NBUILTIN)
        return builtins[idx]();
    idx -= (unsigned)NBUILTIN;
    return idx < __atomic_load_n(&nexternal, __ATOMIC_ACQUIRE) ? external[idx] : NULL;
}

const struct synth_plugin *synth_plugin_builtin(unsigned idx) { return at(idx); }

const struct synth_plugin *synth_plugin_find(const char *name)
{
    const struct synth_plugin *p;
    for (unsigned i = 0; (p = at(i)) != NULL; i++)
        if (!strcmp(p->name, name))
            return p;
    return NULL;
}

int synth_plugin_probe(const struct synth_plugin *p, char *why, size_t why_len)
{
    const struct synth_plugin *q;
    int rc;

    for (unsigned i = 0; (q = at(i)) != NULL; i++) {
        if (q != p)
            continue;
        pthread_mutex_lock(&lock);
        if (!probed[i]) {
            probe_why[i][0] = 0;
            probe_rc[i] = p->probe(probe_why[i], sizeof(probe_why[i]));
            probed[i] = 1;
        }
        rc = probe_rc[i];
        snprintf(why, why_len, "%s", probe_why[i]);
        pthread_mutex_unlock(&lock);
        return rc;
    }
    if (why_len)
        why[0] = 0;
    return p->probe(why, why_len);
}

/* Check an external plugin's table before anything else may use it. */
static const char *table_problem(const struct synth_plugin *p)
{
    if (!p)
        return "synth_plugin_entry returned NULL";
    if (p->abi_version != SYNTH_PLUGIN_ABI_VERSION)
        return "plugin ABI version differs from this build's";
    if (!p->name || !p->name[0] || strlen(p->name) > 31)
        return "missing or over-long name";
    if (p->dev_class != SYNTH_CLASS_CRYPTO)
        return "not a crypto plugin (the only class external plugins may serve yet)";
    if (!p->probe || !p->alg_mask || !p->session_create || !p->session_destroy || !p->crypto_burst)
        return "incomplete function table";
    if (synth_plugin_find(p->name))
        return "a plugin of that name is already loaded";
    return NULL;
}

int synth_plugin_load(const char *path, char *why, size_t why_len)
{
    synth_plugin_entry_fn entry;
    const struct synth_plugin *p;
    const char *problem;
    void *h;

    pthread_mutex_lock(&lock);
    if (nexternal >= MAX_EXTERNAL) {
        pthread_mutex_unlock(&lock);
        snprintf(why, why_len, "too many external plugins (at most %u)", MAX_EXTERNAL);
        return -ENOSPC;
    }
    pthread_mutex_unlock(&lock);
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, why_len, "dlopen: %s", dlerror());
        return -ENOENT;
    }
    *(void **)&entry = dlsym(h, SYNTH_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        snprintf(why, why_len, "no %s symbol", SYNTH_PLUGIN_ENTRY_SYMBOL);
        dlclose(h);
        return -EINVAL;
    }
    p = entry();
    pthread_mutex_lock(&lock);
    problem = table_problem(p);
    if (problem) {
        pthread_mutex_unlock(&lock);
        snprintf(why, why_len, "%s", problem);
        dlclose(h);
        return -EINVAL;
    }
    external[nexternal] = p; /* published below; the handle stays open for the process's life */
    __atomic_store_n(&nexternal, nexternal + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lock);
    snprintf(why, why_len, "loaded %s", p->name);
    return 0;
}

/* A compression plugin of this ABI that runs here and serves alg. */
static int comp_usable(const struct synth_plugin *p, uint32_t alg)
{
    char why[160];

    if (!p || p->dev_class != SYNTH_CLASS_COMPRESS || p->abi_version < 2 || !p->comp_levels ||
        !p->comp_ctx_size || !p->comp_ctx_create || !p->comp_ctx_destroy || !p->comp_oneshot || !p->comp_stream)
        return 0;
    if (alg == 0 || alg >= SYNTH_CALG_MAX || synth_plugin_probe(p, why, sizeof(why)) < 0)
        return 0;
    return (p->alg_mask() & (1u << alg)) != 0;
}

unsigned synth_plugin_comp_candidates(uint32_t alg, const struct synth_plugin **out, unsigned max)
{
    const struct synth_plugin *all[NMAX], *p;
    unsigned n = 0, i, j;

    for (i = 0; n < NMAX && (p = at(i)) != NULL; i++) {
        if (!comp_usable(p, alg))
            continue;
        /* Insertion sort by priority, stable: ties keep catalog order. */
        for (j = n; j > 0 && all[j - 1]->priority < p->priority; j--)
            all[j] = all[j - 1];
        all[j] = p;
        n++;
    }
    for (i = 0; i < n && i < max; i++)
        out[i] = all[i];
    return n;
}

static int comp_serves(const struct synth_plugin *p, uint32_t alg, uint32_t direction, int32_t level)
{
    int32_t lo, hi, dflt;

    if (!comp_usable(p, alg) || direction > SYNTH_COMP_DIR_DECOMPRESS)
        return 0;
    if (direction == SYNTH_COMP_DIR_DECOMPRESS)
        return 1;
    return p->comp_levels(alg, &lo, &hi, &dflt) == 0 && level >= lo && level <= hi;
}

const struct synth_plugin *synth_plugin_comp_select(uint32_t alg, uint32_t direction, int32_t level,
                                                    const struct synth_plugin *pin)
{
    const struct synth_plugin *cand[NMAX];
    unsigned n, i;

    if (pin)
        return comp_serves(pin, alg, direction, level) ? pin : NULL;
    n = synth_plugin_comp_candidates(alg, cand, NMAX);
    for (i = 0; i < n && i < NMAX; i++)
        if (comp_serves(cand[i], alg, direction, level))
            return cand[i];
    return NULL;
}
