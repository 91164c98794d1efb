/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest: shared declarations of the guest test program (see synth-guest.c for the commands
 * and docs/guest.md for the output it prints). Private to guest/: not a library.
 */
#ifndef SG_H
#define SG_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "synth/guest.h"

#define SG_MAX_DEVS 32
#define SG_MAX_FRAMES 4       /* host-made compressed frames (synth.unz.N) */

/* ---- JSON lines (out.c): one object per line on stdout, flushed at once ---- */

struct jw {
    char *buf;
    size_t len, cap;
    int fields;
};

void jw_begin(struct jw *w, const char *type);
void jw_str(struct jw *w, const char *key, const char *val);
void jw_int(struct jw *w, const char *key, int64_t val);
void jw_uint(struct jw *w, const char *key, uint64_t val);
void jw_hex(struct jw *w, const char *key, const void *data, size_t len);
void jw_hex64(struct jw *w, const char *key, uint64_t val);  /* "0x..." as a string */
void jw_raw(struct jw *w, const char *key, const char *json); /* a value already in JSON */
void jw_end(struct jw *w);

/* ---- the inputs the host chooses (params.c) ---- */

struct sg_bytes {
    uint8_t *p;
    size_t len;
};

struct sg_frame {
    uint32_t alg;       /* SYNTH_CALG_* */
    struct sg_bytes data;
};

struct sg_params {
    struct sg_bytes key;   /* synth.key: up to 64 bytes; each algorithm takes the prefix it needs */
    struct sg_bytes iv;    /* synth.iv: 16 bytes (AEADs use the first 12) */
    struct sg_bytes aad;   /* synth.aad */
    struct sg_bytes data;  /* synth.data: plaintext of the crypto ops */
    uint64_t seed;         /* synth.seed: text and frames are made from it (sg_text) */
    uint32_t text_len;     /* synth.text: bytes of text the compression test compresses */
    uint32_t frames;       /* synth.frames: frames each packet device sends */
    uint32_t burst;        /* synth.burst: ops in the crypto burst test */
    uint32_t bench_ms;     /* synth.bench_ms: length of each bench run */
    uint32_t wait_ms;      /* synth.wait_ms: how long packet receivers wait for frames */
    unsigned n_frames;
    struct sg_frame unz[SG_MAX_FRAMES]; /* synth.unz.N=ALG:HEX: frames to decompress */
};

void sg_params_defaults(struct sg_params *p);
/* Read synth.NAME=VALUE tokens from a file (e.g. /proc/cmdline): 0, or -1 with a message. */
int sg_params_file(struct sg_params *p, const char *path);
/* Each synth.NAME=VALUE token of the file whose key starts with prefix ("synth.soak_"), given to set
 * with NAME (without "synth."); 0, or the first non-zero set returned, or -1. */
int sg_params_each(const char *path, const char *prefix, int (*set)(void *ctx, const char *name, const char *value),
                   void *ctx);
/* A whole-number input of a table: NAME sets *dst if VALUE is a number in [min, max]. */
struct sg_u32_param {
    const char *name;
    uint32_t *dst;
    unsigned long long min, max;
};
int sg_param_u32(const struct sg_u32_param *table, size_t n, const char *name, const char *value);

/* The long-running commands (soak, watch): SIGTERM and SIGINT set sg_quit, which their loops check. */
extern volatile sig_atomic_t sg_quit;
void sg_quit_on_signals(void);
void sg_nap_ns(uint64_t ns);
/* One NAME=VALUE (NAME without "synth."): 0, or -1 with a message on stderr. */
int sg_params_set(struct sg_params *p, const char *name, const char *value);

/* Deterministic text: words chosen by SplitMix64(seed); the host computes the same bytes. */
void sg_text(uint64_t seed, uint8_t *out, size_t len);
/* Frame k of packet device i (docs/guest.md): len bytes, 14 <= len. */
size_t sg_frame_len(unsigned dev, unsigned k);
void sg_frame(uint64_t seed, unsigned dev, unsigned k, uint8_t *out, size_t len);
uint32_t sg_crc32(const void *data, size_t len);

/* ---- devices (synth-guest.c) ---- */

struct sg_dev {
    char where[64];   /* a PCI address, or a region path (host side) */
    struct synth_dev *dev;
    struct synth_dev_info info;
};

const char *sg_class_name(uint16_t cls);
const char *sg_status(int rc); /* a SYNTH_ST_* (> 0), a -errno (< 0), or "ok" */

/* ---- commands ---- */

int sg_probe(struct sg_dev *devs, unsigned n);
/* Selftests count into *pass and *fail; they print one line per check. */
void sg_crypto_selftest(struct sg_dev *d, const struct sg_params *p, unsigned *pass, unsigned *fail);
void sg_compress_selftest(struct sg_dev *d, const struct sg_params *p, unsigned *pass, unsigned *fail);
void sg_packet_selftest(struct sg_dev *devs, unsigned n, const struct sg_params *p, unsigned *pass,
                        unsigned *fail);
void sg_bench(struct sg_dev *devs, unsigned n, const struct sg_params *p);

/* soak (st_soak.c): its own inputs, synth.soak_ms, soak_gap_ms, soak_timeout_ms (docs/guest.md) */
struct sg_soak_opts {
    uint32_t ms;         /* synth.soak_ms: how long the soak runs; 0: until SIGTERM or SIGINT */
    uint32_t gap_ms;     /* synth.soak_gap_ms: pause between rounds */
    uint32_t timeout_ms; /* synth.soak_timeout_ms: how long one op may take */
};

void sg_soak_defaults(struct sg_soak_opts *o);
/* One NAME=VALUE (NAME without "synth."): 0 (also for names that are not the soak's), or -1. */
int sg_soak_set(struct sg_soak_opts *o, const char *name, const char *value);
/* The synth.soak_* tokens of a file: 0, or -1 with a message. */
int sg_soak_file(struct sg_soak_opts *o, const char *path);
/* The soak: its exit status (0 no op failed, 1 one did). */
int sg_soak(struct sg_dev *devs, unsigned n, const struct sg_params *p, const struct sg_soak_opts *o);

/* watch (st_watch.c): devices coming and going (hot-plug); inputs synth.watch_ms, watch_events */
struct sg_watch_opts {
    uint32_t ms;     /* synth.watch_ms: how long the watch runs; 0: until SIGTERM or SIGINT */
    uint32_t events; /* synth.watch_events: stop after this many "watch" lines; 0: no limit */
};

void sg_watch_defaults(struct sg_watch_opts *o);
/* One NAME=VALUE (NAME without "synth."): 0 (also for names that are not the watch's), or -1. */
int sg_watch_set(struct sg_watch_opts *o, const char *name, const char *value);
/* The synth.watch_* tokens of a file: 0, or -1 with a message. */
int sg_watch_file(struct sg_watch_opts *o, const char *path);
/* The watch, on the PCI bus (synth_pci_scan): its exit status (0, or 1 a device or its use failed). */
int sg_watch(const struct sg_params *p, const struct sg_watch_opts *o);

#endif /* SG_H */
