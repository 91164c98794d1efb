/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest probe: one "device" line per synthetic device: where it is (PCI address and what
 * sysfs says of the function), its class, ABI version, features, the plugin the host advertises
 * and what the class configuration block offers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sg.h"

static const char *const crypto_algs[] = {"", "aes-128-gcm", "aes-256-gcm", "chacha20-poly1305",
                                          "aes-256-cbc-hmac-sha256", "hmac-sha256"};
static const char *const comp_algs[] = {"", "deflate", "zlib", "gzip", "zstd", "lz4"};

static void pci_fields(struct jw *w, const char *bdf)
{
    static const char *const files[] = {"vendor", "device", "class"};
    char path[160], val[32];

    if (strchr(bdf, '/'))
        return; /* a region path: not on a PCI bus */
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        FILE *f;
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, files[i]);
        f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(val, sizeof(val), f)) {
            val[strcspn(val, "\n")] = 0;
            char key[24];
            snprintf(key, sizeof(key), "pci_%s", files[i]);
            jw_str(w, key, val);
        }
        fclose(f);
    }
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource2", bdf);
    struct stat st;
    if (stat(path, &st) == 0)
        jw_uint(w, "bar2_size", (uint64_t)st.st_size);
}

/* A JSON array of the names whose bit is set in mask. */
static void names(struct jw *w, const char *key, uint32_t mask, const char *const *tab, unsigned n)
{
    char buf[256] = "[";
    size_t len = 1;
    for (unsigned a = 1; a < n; a++) {
        if (!(mask & (1u << a)))
            continue;
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\"%s\"", len > 1 ? "," : "", tab[a]);
    }
    snprintf(buf + len, sizeof(buf) - len, "]");
    jw_raw(w, key, buf);
}

static void class_fields(struct jw *w, struct sg_dev *d)
{
    if (d->info.dev_class == SYNTH_CLASS_CRYPTO) {
        names(w, "algorithms", d->info.crypto_alg_mask, crypto_algs, SYNTH_ALG_MAX);
        jw_uint(w, "max_sessions", d->info.crypto_max_sessions);
    } else if (d->info.dev_class == SYNTH_CLASS_COMPRESS) {
        struct synth_comp_cfg cfg;
        char levels[512] = "{";
        size_t len = 1;
        if (synth_comp_get_cfg(d->dev, &cfg) < 0)
            return;
        names(w, "algorithms", cfg.alg_mask, comp_algs, SYNTH_CALG_MAX);
        for (unsigned a = 1; a < SYNTH_CALG_MAX; a++) {
            if (!(cfg.alg_mask & (1u << a)))
                continue;
            len += (size_t)snprintf(levels + len, sizeof(levels) - len, "%s\"%s\":[%d,%d,%d]", len > 1 ? "," : "",
                                    comp_algs[a], cfg.levels[a].min, cfg.levels[a].max, cfg.levels[a].dflt);
        }
        snprintf(levels + len, sizeof(levels) - len, "}");
        jw_raw(w, "levels", levels);
        jw_uint(w, "max_chunk", cfg.max_chunk);
        jw_uint(w, "max_streams", cfg.max_streams);
    } else if (d->info.dev_class == SYNTH_CLASS_PACKET) {
        static const char *const link_names[] = {"none", "wire", "tap"};
        struct synth_pkt_cfg cfg;
        char links[256] = "[";
        size_t len = 1;
        if (synth_pkt_dev_counters(d->dev, &cfg) < 0)
            return;
        jw_uint(w, "channels", cfg.channels);
        jw_uint(w, "max_frame", cfg.max_frame);
        for (uint32_t c = 0; c < cfg.channels && c < SYNTH_PKT_MAX_CHANNELS; c++)
            len += (size_t)snprintf(links + len, sizeof(links) - len, "%s\"%s\"", c ? "," : "",
                                    cfg.link[c] < 3 ? link_names[cfg.link[c]] : "unknown");
        snprintf(links + len, sizeof(links) - len, "]");
        jw_raw(w, "links", links);
    }
}

int sg_probe(struct sg_dev *devs, unsigned n)
{
    struct jw w = {0};
    char abi[16];

    for (unsigned i = 0; i < n; i++) {
        struct sg_dev *d = &devs[i];
        jw_begin(&w, "device");
        jw_str(&w, "dev", d->where);
        pci_fields(&w, d->where);
        jw_str(&w, "class", sg_class_name(d->info.dev_class));
        snprintf(abi, sizeof(abi), "%u.%u", d->info.abi_major, d->info.abi_minor);
        jw_str(&w, "abi", abi);
        jw_str(&w, "name", d->info.name);
        jw_str(&w, "backend", d->info.backend);
        jw_uint(&w, "generation", d->info.generation);
        jw_uint(&w, "region_size", d->info.region_size);
        jw_uint(&w, "queues", d->info.num_queues);
        jw_uint(&w, "ring_entries", d->info.ring_entries);
        jw_uint(&w, "arena_size", d->info.arena_size);
        jw_hex64(&w, "features_offered", d->info.features_offered);
        jw_hex64(&w, "features_accepted", d->info.features_accepted);
        jw_uint(&w, "dev_status", d->info.dev_status);
        class_fields(&w, d);
        jw_end(&w);
    }
    jw_begin(&w, "summary");
    jw_str(&w, "command", "probe");
    jw_uint(&w, "devices", n);
    jw_end(&w);
    free(w.buf);
    return 0;
}
