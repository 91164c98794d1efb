/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest inputs: the keys, data and sizes the host chooses, read from synth.NAME=VALUE tokens
 * of a file (the kernel command line, /proc/cmdline, in a VM) or from -p NAME=VALUE options; and
 * the deterministic text and frames that the host can compute too (docs/guest.md gives the
 * algorithms; libvirt_synth/testbed/vm.py is the host's copy).
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg.h"

#define MAX_PARAMS_FILE (64u << 10)

static const char *const words[16] = {
    "synthetic", "device", "portable", "vnf", "host", "guest", "crypto", "packet",
    "ring", "queue", "arena", "libvirt", "qemu", "plugin", "session", "frame",
};

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void sg_text(uint64_t seed, uint8_t *out, size_t len)
{
    uint64_t st = seed;
    size_t n = 0;
    while (n < len) {
        uint64_t r = splitmix64(&st);
        const char *w = words[r & 15];
        char sep = (r >> 4) % 8 == 0 ? '\n' : ' ';
        for (; *w && n < len; w++)
            out[n++] = (uint8_t)*w;
        if (n < len)
            out[n++] = (uint8_t)sep;
    }
}

size_t sg_frame_len(unsigned dev, unsigned k) { return 60u + (dev * 131u + k * 37u) % 200u; }

void sg_frame(uint64_t seed, unsigned dev, unsigned k, uint8_t *out, size_t len)
{
    static const uint8_t ethertype[2] = {0x88, 0xb5}; /* IEEE 802 local experimental */
    uint8_t hdr[14] = {0x02, 0, 0, 0, 0, (uint8_t)(dev ^ 1), 0x02, 0, 0, 0, 0, (uint8_t)dev};
    memcpy(hdr + 12, ethertype, 2);
    memcpy(out, hdr, 14);
    sg_text(seed + 1000u * (dev + 1u) + k, out + 14, len - 14);
}

uint32_t sg_crc32(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static int unhex(const char *s, struct sg_bytes *out)
{
    size_t n = strlen(s);
    uint8_t *p;
    if (n % 2)
        return -1;
    p = malloc(n / 2 + 1);
    if (!p)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1) {
            free(p);
            return -1;
        }
        p[i] = (uint8_t)v;
    }
    free(out->p);
    out->p = p;
    out->len = n / 2;
    return 0;
}

static int number(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static uint32_t calg(const char *name)
{
    static const char *const names[] = {"", "deflate", "zlib", "gzip", "zstd", "lz4"};
    for (uint32_t a = 1; a < SYNTH_CALG_MAX; a++)
        if (!strcmp(name, names[a]))
            return a;
    return 0;
}

void sg_params_defaults(struct sg_params *p)
{
    memset(p, 0, sizeof(*p));
    p->key.p = malloc(64);
    p->iv.p = malloc(16);
    p->aad.p = malloc(8);
    p->data.p = malloc(96);
    if (!p->key.p || !p->iv.p || !p->aad.p || !p->data.p)
        exit(3);
    for (unsigned i = 0; i < 64; i++)
        p->key.p[i] = (uint8_t)i;
    memset(p->iv.p, 0x42, 16);
    memcpy(p->aad.p, "\x00\x00\x10\x01\x00\x00\x00\x07", 8); /* an ESP header: SPI, sequence */
    sg_text(1, p->data.p, 96);
    p->key.len = 64;
    p->iv.len = 16;
    p->aad.len = 8;
    p->data.len = 96;
    p->seed = 1;
    p->text_len = 4096;
    p->frames = 8;
    p->burst = 16;
    p->bench_ms = 500;
    p->wait_ms = 2000;
}

int sg_params_set(struct sg_params *p, const char *name, const char *value)
{
    struct sg_bytes *b = !strcmp(name, "key") ? &p->key : !strcmp(name, "iv") ? &p->iv
                       : !strcmp(name, "aad") ? &p->aad : !strcmp(name, "data") ? &p->data : NULL;
    uint64_t v;

    if (b) {
        if (unhex(value, b) < 0)
            goto bad;
        if ((b == &p->key && b->len > 64) || (b == &p->iv && b->len != 16) || (b == &p->aad && b->len > 64) ||
            (b == &p->data && b->len > 4096))
            goto bad;
        return 0;
    }
    if (!strncmp(name, "unz.", 4)) {
        const char *colon = strchr(value, ':');
        char alg[16];
        if (!colon || (size_t)(colon - value) >= sizeof(alg) || p->n_frames >= SG_MAX_FRAMES)
            goto bad;
        memcpy(alg, value, (size_t)(colon - value));
        alg[colon - value] = 0;
        p->unz[p->n_frames].alg = calg(alg);
        if (!p->unz[p->n_frames].alg || unhex(colon + 1, &p->unz[p->n_frames].data) < 0)
            goto bad;
        p->n_frames++;
        return 0;
    }
    if (!strcmp(name, "seed"))
        return number(value, UINT64_MAX, &p->seed) < 0 ? (fprintf(stderr, "synth-guest: bad synth.seed\n"), -1) : 0;
    struct {
        const char *name;
        uint32_t *dst;
        uint64_t max;
    } nums[] = {{"text", &p->text_len, 1u << 20}, {"frames", &p->frames, 64},   {"burst", &p->burst, 64},
                {"bench_ms", &p->bench_ms, 60000}, {"wait_ms", &p->wait_ms, 60000}};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (strcmp(name, nums[i].name))
            continue;
        if (number(value, nums[i].max, &v) < 0)
            goto bad;
        *nums[i].dst = (uint32_t)v;
        return 0;
    }
    return 0; /* synth.cmd and other keys are for init, or for later versions */
bad:
    fprintf(stderr, "synth-guest: bad value for synth.%s (see docs/guest.md)\n", name);
    return -1;
}

int sg_params_each(const char *path, const char *prefix, int (*set)(void *ctx, const char *name, const char *value),
                   void *ctx)
{
    FILE *f = fopen(path, "r");
    char *text, *tok, *save = NULL;
    size_t n, plen = strlen(prefix);
    int rc = 0;

    if (!f) {
        fprintf(stderr, "synth-guest: %s: %s\n", path, strerror(errno));
        return -1;
    }
    text = malloc(MAX_PARAMS_FILE + 1);
    if (!text) {
        fclose(f);
        return -1;
    }
    n = fread(text, 1, MAX_PARAMS_FILE, f);
    fclose(f);
    text[n] = 0;
    for (tok = strtok_r(text, " \t\r\n", &save); tok && rc == 0; tok = strtok_r(NULL, " \t\r\n", &save)) {
        char *eq = strchr(tok, '=');
        if (strncmp(tok, prefix, plen) || !eq)
            continue;
        *eq = 0;
        rc = set(ctx, tok + 6, eq + 1); /* the name after "synth." */
    }
    free(text);
    return rc;
}

int sg_param_u32(const struct sg_u32_param *table, size_t n, const char *name, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        char *end;
        unsigned long long v;
        if (strcmp(name, table[i].name))
            continue;
        errno = 0;
        v = strtoull(value, &end, 0);
        if (errno || end == value || *end || value[0] == '-' || v < table[i].min || v > table[i].max) {
            fprintf(stderr, "synth-guest: bad value for synth.%s: %s (%llu..%llu)\n", name, value, table[i].min,
                    table[i].max);
            return -1;
        }
        *table[i].dst = (uint32_t)v;
        return 0;
    }
    return 0; /* not one of the table's */
}

static int set_params(void *ctx, const char *name, const char *value)
{
    return sg_params_set(ctx, name, value);
}

int sg_params_file(struct sg_params *p, const char *path)
{
    return sg_params_each(path, "synth.", set_params, p);
}

volatile sig_atomic_t sg_quit;

static void on_signal(int sig)
{
    (void)sig;
    sg_quit = 1;
}

void sg_quit_on_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* a line being written is finished (sleeps return early all the same) */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

void sg_nap_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}
