/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest: what a VM sees of its synthetic devices, as machine-readable lines. A static
 * program on libsynth (native/build/libsynth.a); the guest image runs it from its init.
 *
 *   synth-guest probe                 the synthetic devices on the PCI bus: address, class, ABI,
 *                                     features, the plugin the host advertises
 *   synth-guest selftest              known-answer tests of each class found, and operations on
 *                                     inputs the host chose (synth.key, synth.data, ...), with their
 *                                     outputs printed so that the host can check them
 *   synth-guest bench                 a short throughput run per device
 *   synth-guest soak                  a continuous workload (synth.soak_ms) on sessions and a
 *                                     stream created once, one line per op for the host to check
 *   synth-guest watch                 devices coming and going on the PCI bus (hot-plug) for
 *                                     synth.watch_ms: each listed, each crypto one that appears
 *                                     used once (AES-256-GCM on the host's inputs) and closed
 *
 *   options: --params FILE   read synth.NAME=VALUE tokens from FILE (in a VM: /proc/cmdline)
 *            -p NAME=VALUE   one input (NAME without "synth.")
 *            DEVICE...       PCI addresses or region paths instead of scanning the PCI bus
 *                            (not watch: it scans)
 *
 * Output: one JSON object per line (docs/guest.md). Exit status: 0 every check passed, 1 a check
 * failed, 2 usage, 3 no synthetic device found (or out of memory).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg.h"

static const char usage[] =
    "usage: synth-guest [--params FILE] [-p NAME=VALUE]... probe|selftest|bench|soak\n"
    "       [DEVICE...]\n"
    "       synth-guest [--params FILE] [-p NAME=VALUE]... watch\n"
    "  DEVICE: a PCI address (0000:00:05.0) or a region path (/dev/shm/NAME); default: every\n"
    "  synthetic device on the PCI bus. Output: JSON lines (docs/guest.md).\n";

static int by_address(const void *a, const void *b) { return strcmp(a, b); }

/* Open the devices named, or every one on the PCI bus; returns how many opened (errors printed). */
static unsigned open_devices(char **names, int n_names, struct sg_dev *devs, unsigned *failed)
{
    char found[SG_MAX_DEVS][16];
    unsigned n = 0;
    int count = 0;

    if (n_names == 0) {
        count = synth_pci_scan(found, SG_MAX_DEVS);
        if (count < 0) {
            struct jw w = {0};
            jw_begin(&w, "error");
            jw_str(&w, "what", "scanning /sys/bus/pci/devices");
            jw_str(&w, "error", strerror(-count));
            jw_end(&w);
            free(w.buf);
            (*failed)++;
            return 0;
        }
        if (count > SG_MAX_DEVS)
            count = SG_MAX_DEVS;
        qsort(found, (size_t)count, sizeof(found[0]), by_address);
    }
    for (int i = 0; i < (n_names ? n_names : count); i++) {
        const char *where = n_names ? names[i] : found[i];
        struct sg_dev *d = &devs[n];
        int rc;

        if (n >= SG_MAX_DEVS)
            break;
        snprintf(d->where, sizeof(d->where), "%s", where);
        rc = strchr(where, '/') ? synth_dev_open_path(where, NULL, &d->dev) : synth_dev_open_pci(where, NULL, &d->dev);
        if (rc < 0) {
            struct jw w = {0};
            jw_begin(&w, "device");
            jw_str(&w, "dev", where);
            jw_str(&w, "error", strerror(-rc));
            jw_end(&w);
            free(w.buf);
            (*failed)++;
            continue;
        }
        synth_dev_get_info(d->dev, &d->info);
        n++;
    }
    return n;
}

static int selftest(struct sg_dev *devs, unsigned n, const struct sg_params *p, unsigned failed_open)
{
    unsigned pass = 0, fail = failed_open;
    struct jw w = {0};

    for (unsigned i = 0; i < n; i++) {
        if (devs[i].info.dev_class == SYNTH_CLASS_CRYPTO)
            sg_crypto_selftest(&devs[i], p, &pass, &fail);
        else if (devs[i].info.dev_class == SYNTH_CLASS_COMPRESS)
            sg_compress_selftest(&devs[i], p, &pass, &fail);
    }
    sg_packet_selftest(devs, n, p, &pass, &fail);
    jw_begin(&w, "summary");
    jw_str(&w, "command", "selftest");
    jw_uint(&w, "devices", n);
    jw_uint(&w, "passed", pass);
    jw_uint(&w, "failed", fail);
    jw_end(&w);
    free(w.buf);
    return fail ? 1 : 0;
}

int main(int argc, char **argv)
{
    static struct sg_dev devs[SG_MAX_DEVS];
    struct sg_params params;
    struct sg_soak_opts soak;
    struct sg_watch_opts watch;
    const char *cmd = NULL;
    unsigned n, failed = 0;
    int i, rc;

    sg_params_defaults(&params);
    sg_soak_defaults(&soak);
    sg_watch_defaults(&watch);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--params") && i + 1 < argc) {
            if (sg_params_file(&params, argv[++i]) < 0 || sg_soak_file(&soak, argv[i]) < 0 ||
                sg_watch_file(&watch, argv[i]) < 0)
                return 2;
        } else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            char *eq = strchr(argv[++i], '=');
            if (!eq) {
                fputs(usage, stderr);
                return 2;
            }
            *eq = 0;
            if (sg_params_set(&params, argv[i], eq + 1) < 0 || sg_soak_set(&soak, argv[i], eq + 1) < 0 ||
                sg_watch_set(&watch, argv[i], eq + 1) < 0)
                return 2;
        } else if (argv[i][0] == '-') {
            fputs(usage, stderr);
            return 2;
        } else {
            cmd = argv[i++];
            break;
        }
    }
    if (!cmd || (strcmp(cmd, "probe") && strcmp(cmd, "selftest") && strcmp(cmd, "bench") &&
                 strcmp(cmd, "soak") && strcmp(cmd, "watch"))) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(cmd, "watch")) {
        if (i < argc) { /* it watches the PCI bus: devices named would not come and go */
            fputs(usage, stderr);
            return 2;
        }
        return sg_watch(&params, &watch);
    }
    n = open_devices(argv + i, argc - i, devs, &failed);
    if (n == 0 && failed == 0) {
        struct jw w = {0};
        jw_begin(&w, "error");
        jw_str(&w, "what", "no synthetic device (PCI 1af4:1110 with the SYNTHDEV magic in BAR2)");
        jw_end(&w);
        free(w.buf);
        return 3;
    }
    if (!strcmp(cmd, "probe"))
        rc = sg_probe(devs, n) || failed ? 1 : 0;
    else if (!strcmp(cmd, "selftest"))
        rc = selftest(devs, n, &params, failed);
    else if (!strcmp(cmd, "soak"))
        rc = sg_soak(devs, n, &params, &soak) || failed ? 1 : 0;
    else {
        sg_bench(devs, n, &params);
        rc = failed ? 1 : 0;
    }
    for (unsigned k = 0; k < n; k++)
        synth_dev_close(devs[k].dev);
    return rc;
}
