/* SPDX-License-Identifier: Apache-2.0 */
/* The built-in plugins, by name. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "synth/plugin.h"

typedef const struct synth_plugin *(*builtin_fn)(void);

static const builtin_fn builtins[] = {
    synth_plugin_openssl,
    synth_plugin_ipsecmb,
};

#define NBUILTIN (sizeof(builtins) / sizeof(builtins[0]))

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static int probed[NBUILTIN];
static int probe_rc[NBUILTIN];
static char probe_why[NBUILTIN][160];

const struct synth_plugin *synth_plugin_builtin(unsigned idx)
{
    return idx < NBUILTIN ? builtins[idx]() : NULL;
}

const struct synth_plugin *synth_plugin_find(const char *name)
{
    for (unsigned i = 0; i < NBUILTIN; i++)
        if (!strcmp(builtins[i]()->name, name))
            return builtins[i]();
    return NULL;
}

int synth_plugin_probe(const struct synth_plugin *p, char *why, size_t why_len)
{
    int rc;
    for (unsigned i = 0; i < NBUILTIN; i++) {
        if (builtins[i]() != p)
            continue;
        pthread_mutex_lock(&probe_lock);
        if (!probed[i]) {
            probe_why[i][0] = 0;
            probe_rc[i] = p->probe(probe_why[i], sizeof(probe_why[i]));
            probed[i] = 1;
        }
        rc = probe_rc[i];
        snprintf(why, why_len, "%s", probe_why[i]);
        pthread_mutex_unlock(&probe_lock);
        return rc;
    }
    /* Not built in: probe every time (the caller owns it). */
    if (why_len)
        why[0] = 0;
    return p->probe(why, why_len);
}
