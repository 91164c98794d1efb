/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compress_bench: the hot loops of bench/compress (which compiles and drives this program).
 *
 *   compress_bench inproc PLUGIN ALG LEVEL CORPUS CHUNK SECONDS CPU NBUF DIR
 *       one-shot ops on CHUNK-byte pieces of the CORPUS file, in this process, with the library of
 *       PLUGIN called as the plugin calls it (zlib, isal, zstd, lz4), writing into NBUF output
 *       buffers in rotation (the device run's working set); DIR is c (compress) or d
 *   compress_bench device PATH PLUGIN ALG LEVEL CORPUS CHUNK SECONDS CPU INFLIGHT DIR
 *       the same ops through the compression device at PATH, INFLIGHT of them in flight
 *
 * Both decompress the same bytes: every chunk compressed in process with the same library and
 * level. Both check their output against the corpus (and the device's compressed output with the
 * in-process library) before and after the timed window; any mismatch or error status is fatal.
 * Each mode prints one JSON line on stdout; a failure prints a message on stderr and exits 1.
 * MB/s counts plain (uncompressed) bytes, 10^6 per MB, in both directions.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define ZSTD_STATIC_LINKING_ONLY
#define LZ4F_STATIC_LINKING_ONLY
#include <errno.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <isa-l.h>
#include <lz4frame.h>
#include <zlib.h>
#include <zstd.h>

#include "synth/guest.h"

#include "bench_util.h"

#define WARMUP_NS 100000000ull
#define SPIN_NS 20000ull /* guest: spin this long for a completion, then nap */
#define NAP_NS 5000ull
#define STALL_NS 10000000000ull


static void nap_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};
    nanosleep(&ts, NULL);
}

/* ---- corpus ---- */

struct corpus {
    uint8_t *data;
    size_t len;
    uint32_t chunk;
    uint32_t n;         /* chunks (the last one may be short) */
    uint8_t **comp;     /* each chunk compressed in process */
    uint32_t *comp_len;
};

static uint32_t chunk_len(const struct corpus *c, uint32_t i)
{
    size_t off = (size_t)i * c->chunk;
    return (uint32_t)(c->len - off < c->chunk ? c->len - off : c->chunk);
}

static void load_corpus(struct corpus *c, const char *path, uint32_t chunk)
{
    FILE *f = fopen(path, "rb");
    long n;

    if (!f)
        die("open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) < 0)
        die("%s: empty or unreadable", path);
    c->data = malloc((size_t)n);
    if (!c->data || fread(c->data, 1, (size_t)n, f) != (size_t)n)
        die("reading %s failed", path);
    fclose(f);
    c->len = (size_t)n;
    c->chunk = chunk;
    c->n = (uint32_t)((c->len + chunk - 1) / chunk);
}

/* ---- the libraries, called as the plugins call them ---- */

enum { P_ZLIB, P_ISAL, P_ZSTD, P_LZ4 };

struct codec {
    int plugin;
    uint32_t alg;
    int level;
    z_stream zc, zd;
    struct isal_zstream ic;
    struct inflate_state id;
    uint8_t *level_buf;
    ZSTD_CCtx *sc;
    ZSTD_DCtx *sd;
    LZ4F_cctx *lc;
    LZ4F_dctx *ld;
    LZ4F_preferences_t prefs;
};

static int plugin_id(const char *name)
{
    if (!strcmp(name, "zlib"))
        return P_ZLIB;
    if (!strcmp(name, "isal"))
        return P_ISAL;
    if (!strcmp(name, "zstd"))
        return P_ZSTD;
    if (!strcmp(name, "lz4"))
        return P_LZ4;
    die("unknown plugin %s (zlib, isal, zstd, lz4)", name);
}

static uint32_t alg_id(const char *name)
{
    static const char *const names[] = {"", "deflate", "zlib", "gzip", "zstd", "lz4"};
    for (uint32_t i = 1; i < 6; i++)
        if (!strcmp(name, names[i]))
            return i;
    die("unknown algorithm %s", name);
}

static int wbits(uint32_t alg) { return alg == SYNTH_CALG_DEFLATE ? -15 : alg == SYNTH_CALG_GZIP ? 31 : 15; }

static void codec_init(struct codec *c, int plugin, uint32_t alg, int level)
{
    memset(c, 0, sizeof(*c));
    c->plugin = plugin;
    c->alg = alg;
    c->level = level;
    switch (plugin) {
    case P_ZLIB:
        if (deflateInit2(&c->zc, level, Z_DEFLATED, wbits(alg), 8, Z_DEFAULT_STRATEGY) != Z_OK ||
            inflateInit2(&c->zd, wbits(alg)) != Z_OK)
            die("zlib init");
        break;
    case P_ISAL:
        c->level_buf = malloc(ISAL_DEF_LVL3_DEFAULT);
        if (!c->level_buf)
            die("out of memory");
        isal_inflate_init(&c->id);
        break;
    case P_ZSTD:
        c->sc = ZSTD_createCCtx();
        c->sd = ZSTD_createDCtx();
        if (!c->sc || !c->sd || ZSTD_isError(ZSTD_CCtx_setParameter(c->sc, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c->sc, ZSTD_c_checksumFlag, 1)))
            die("zstd init");
        break;
    case P_LZ4:
        if (LZ4F_isError(LZ4F_createCompressionContext(&c->lc, LZ4F_VERSION)) ||
            LZ4F_isError(LZ4F_createDecompressionContext(&c->ld, LZ4F_VERSION)))
            die("lz4 init");
        c->prefs.frameInfo.blockSizeID = LZ4F_max64KB;
        c->prefs.frameInfo.blockMode = LZ4F_blockLinked;
        c->prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
        c->prefs.compressionLevel = level;
        c->prefs.autoFlush = 1;
        break;
    }
}

static size_t do_compress(struct codec *c, const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t r;
    int lvl;

    switch (c->plugin) {
    case P_ZLIB:
        deflateReset(&c->zc);
        c->zc.next_in = (Bytef *)(uintptr_t)src;
        c->zc.avail_in = (uInt)n;
        c->zc.next_out = dst;
        c->zc.avail_out = (uInt)cap;
        if (deflate(&c->zc, Z_FINISH) != Z_STREAM_END)
            die("deflate");
        return cap - c->zc.avail_out;
    case P_ISAL:
        lvl = c->level == -1 ? 0 : c->level;
        isal_deflate_stateless_init(&c->ic);
        c->ic.next_in = (uint8_t *)(uintptr_t)src;
        c->ic.avail_in = (uint32_t)n;
        c->ic.next_out = dst;
        c->ic.avail_out = (uint32_t)cap;
        c->ic.level = (uint32_t)lvl;
        c->ic.level_buf = lvl ? c->level_buf : NULL;
        c->ic.level_buf_size = lvl == 1 ? ISAL_DEF_LVL1_DEFAULT : lvl == 2 ? ISAL_DEF_LVL2_DEFAULT
                               : lvl == 3 ? ISAL_DEF_LVL3_DEFAULT : 0;
        c->ic.gzip_flag = c->alg == SYNTH_CALG_GZIP ? IGZIP_GZIP : c->alg == SYNTH_CALG_ZLIB ? IGZIP_ZLIB : IGZIP_DEFLATE;
        c->ic.end_of_stream = 1;
        if (isal_deflate_stateless(&c->ic) != COMP_OK)
            die("isal_deflate_stateless");
        return c->ic.total_out;
    case P_ZSTD:
        r = ZSTD_compress2(c->sc, dst, cap, src, n);
        if (ZSTD_isError(r))
            die("ZSTD_compress2: %s", ZSTD_getErrorName(r));
        return r;
    default:
        c->prefs.frameInfo.contentSize = n;
        r = LZ4F_compressFrame_usingCDict(c->lc, dst, cap, src, n, NULL, &c->prefs);
        if (LZ4F_isError(r))
            die("LZ4F_compressFrame: %s", LZ4F_getErrorName(r));
        return r;
    }
}

static size_t do_decompress(struct codec *c, const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t r, sn, dn;

    switch (c->plugin) {
    case P_ZLIB:
        inflateReset(&c->zd);
        c->zd.next_in = (Bytef *)(uintptr_t)src;
        c->zd.avail_in = (uInt)n;
        c->zd.next_out = dst;
        c->zd.avail_out = (uInt)cap;
        if (inflate(&c->zd, Z_FINISH) != Z_STREAM_END)
            die("inflate");
        return cap - c->zd.avail_out;
    case P_ISAL:
        isal_inflate_reset(&c->id);
        c->id.crc_flag = c->alg == SYNTH_CALG_GZIP ? ISAL_GZIP : c->alg == SYNTH_CALG_ZLIB ? ISAL_ZLIB : ISAL_DEFLATE;
        c->id.next_in = (uint8_t *)(uintptr_t)src;
        c->id.avail_in = (uint32_t)n;
        c->id.next_out = dst;
        c->id.avail_out = (uint32_t)cap;
        if (isal_inflate(&c->id) != ISAL_DECOMP_OK || c->id.block_state != ISAL_BLOCK_FINISH)
            die("isal_inflate");
        return cap - c->id.avail_out;
    case P_ZSTD:
        r = ZSTD_decompressDCtx(c->sd, dst, cap, src, n);
        if (ZSTD_isError(r))
            die("ZSTD_decompressDCtx: %s", ZSTD_getErrorName(r));
        return r;
    default:
        LZ4F_resetDecompressionContext(c->ld);
        sn = n;
        dn = cap;
        r = LZ4F_decompress(c->ld, dst, &dn, src, &sn, NULL);
        if (r != 0 || sn != n)
            die("LZ4F_decompress");
        return dn;
    }
}

static const char *lib_version(int plugin)
{
    static char v[64];
    switch (plugin) {
    case P_ZLIB:
        snprintf(v, sizeof(v), "zlib %s", zlibVersion());
        break;
    case P_ISAL:
        snprintf(v, sizeof(v), "ISA-L %d.%d", ISAL_MAJOR_VERSION, ISAL_MINOR_VERSION);
        break;
    case P_ZSTD:
        snprintf(v, sizeof(v), "zstd %s", ZSTD_versionString());
        break;
    default:
        snprintf(v, sizeof(v), "lz4 %d", LZ4F_getVersion());
    }
    return v;
}

/* Compress every chunk in process, checking the round trip. */
static void precompress(struct corpus *cp, struct codec *c, uint64_t *total)
{
    uint8_t *back = malloc(cp->chunk);
    uint32_t i;

    cp->comp = calloc(cp->n, sizeof(*cp->comp));
    cp->comp_len = calloc(cp->n, sizeof(*cp->comp_len));
    if (!back || !cp->comp || !cp->comp_len)
        die("out of memory");
    *total = 0;
    for (i = 0; i < cp->n; i++) {
        uint32_t n = chunk_len(cp, i);
        size_t cap = SYNTH_COMP_BOUND(n);
        cp->comp[i] = malloc(cap);
        if (!cp->comp[i])
            die("out of memory");
        cp->comp_len[i] = (uint32_t)do_compress(c, cp->data + (size_t)i * cp->chunk, n, cp->comp[i], cap);
        if (do_decompress(c, cp->comp[i], cp->comp_len[i], back, cp->chunk) != n ||
            memcmp(back, cp->data + (size_t)i * cp->chunk, n))
            die("in-process round trip of chunk %u failed", i);
        *total += cp->comp_len[i];
    }
    free(back);
}

static void print_rate(const char *mode, const char *dir, int plugin, uint64_t bytes, uint64_t ns, double ratio,
                       const char *extra)
{
    double secs = (double)ns / 1e9;
    printf("{\"mode\": \"%s\", \"dir\": \"%s\", \"lib\": \"%s\", \"bytes\": %llu, \"seconds\": %.6f, "
           "\"mbps\": %.3f, \"comp_ratio\": %.6f, \"checked\": true%s}\n",
           mode, dir, lib_version(plugin), (unsigned long long)bytes, secs, (double)bytes / secs / 1e6, ratio,
           extra ? extra : "");
    fflush(stdout);
}

/* ---- in process ---- */

static int cmd_inproc(int argc, char **argv)
{
    struct corpus cp;
    struct codec c;
    uint8_t *bufs, *out;
    uint64_t comp_total, bytes = 0, t0 = 0, t, deadline = 0, warm_end;
    uint32_t i = 0, n, chunk, nbuf, b = 0;
    size_t bsz;
    int dec, timing = 0;
    double secs;

    if (argc != 9)
        die("usage: inproc PLUGIN ALG LEVEL CORPUS CHUNK SECONDS CPU NBUF DIR");
    codec_init(&c, plugin_id(argv[0]), alg_id(argv[1]), (int)parse_long(argv[2], "level", -16, 22));
    chunk = (uint32_t)parse_long(argv[4], "chunk", 4096, 1 << 20);
    load_corpus(&cp, argv[3], chunk);
    secs = parse_seconds(argv[5]);
    pin((int)parse_long(argv[6], "cpu", -1, CPU_SETSIZE - 1));
    nbuf = (uint32_t)parse_long(argv[7], "output buffers", 1, 128);
    dec = !strcmp(argv[8], "d");
    precompress(&cp, &c, &comp_total);
    bsz = (SYNTH_COMP_BOUND(chunk) + 63) & ~(size_t)63;
    bufs = aligned_alloc(64, bsz * nbuf);
    if (!bufs)
        die("out of memory");
    memset(bufs, 0, bsz * nbuf);

    warm_end = now_ns() + WARMUP_NS;
    for (;;) {
        out = bufs + (size_t)b * bsz;
        b = b + 1 == nbuf ? 0 : b + 1;
        n = chunk_len(&cp, i);
        if (dec) {
            if (do_decompress(&c, cp.comp[i], cp.comp_len[i], out, chunk) != n)
                die("decompressed size of chunk %u", i);
        } else {
            do_compress(&c, cp.data + (size_t)i * chunk, n, out, SYNTH_COMP_BOUND(n));
        }
        i = i + 1 == cp.n ? 0 : i + 1;
        t = now_ns();
        if (timing) {
            bytes += n;
            if (t >= deadline)
                break;
        } else if (t >= warm_end) {
            timing = 1;
            t0 = t;
            deadline = t0 + (uint64_t)(secs * 1e9);
        }
    }
    /* still right after the run */
    n = chunk_len(&cp, 0);
    if (do_decompress(&c, cp.comp[0], cp.comp_len[0], out, chunk) != n || memcmp(out, cp.data, n))
        die("in-process output changed");
    print_rate("inproc", dec ? "d" : "c", c.plugin, bytes, t - t0, (double)comp_total / (double)cp.len, NULL);
    return 0;
}

/* ---- through the device ---- */

struct slot {
    uint32_t out_off;
    uint32_t chunk;
    int busy;
};

static uint32_t arena_put(struct synth_queue *q, const void *data, uint32_t len)
{
    int64_t off = synth_buf_alloc(q, len ? len : 1);
    if (off < 0)
        die("the arena is too small for the corpus (%s)", strerror((int)-off));
    memcpy(synth_buf_ptr(q, (uint32_t)off), data, len);
    return (uint32_t)off;
}

/* One checked op on chunk i (synchronous). */
static void device_check(struct synth_queue *q, struct codec *c, struct corpus *cp, const uint32_t *in_off,
                         uint32_t out_off, uint32_t i, int dec)
{
    uint32_t n = chunk_len(cp, i), got = 0;
    uint8_t *back = malloc(cp->chunk);
    const uint8_t *out = synth_buf_ptr(q, out_off);
    int st;

    if (!back)
        die("out of memory");
    if (dec)
        st = synth_comp_decompress(q, c->alg, in_off[i], cp->comp_len[i], out_off, cp->chunk, &got);
    else
        st = synth_comp_compress(q, c->alg, c->level, in_off[i], n, out_off, (uint32_t)SYNTH_COMP_BOUND(n), &got);
    if (st != 0)
        die("check op on chunk %u: %d (%s)", i, st, st > 0 ? synth_status_str((uint32_t)st) : strerror(-st));
    if (dec ? got != n || memcmp(out, cp->data + (size_t)i * cp->chunk, n)
            : do_decompress(c, out, got, back, cp->chunk) != n || memcmp(back, cp->data + (size_t)i * cp->chunk, n))
        die("device output of chunk %u differs from the corpus", i);
    free(back);
}

static int cmd_device(int argc, char **argv)
{
    struct corpus cp;
    struct codec c;
    struct synth_dev *dev;
    struct synth_queue *q;
    struct synth_comp_cfg cfg;
    struct synth_dev_info info;
    struct synth_desc *d;
    struct synth_cpl *cpl;
    struct slot *slots;
    uint32_t *in_off, *freel, nfree = 0, inflight, chunk, i, next = 0, k;
    uint64_t comp_total, bytes = 0, t0 = 0, t = 0, t_last = 0, deadline = 0, warm_end, last_progress, spins = 0;
    int dec, timing = 0, rc;
    double secs;
    char extra[128];

    if (argc != 10)
        die("usage: device PATH PLUGIN ALG LEVEL CORPUS CHUNK SECONDS CPU INFLIGHT DIR");
    codec_init(&c, plugin_id(argv[1]), alg_id(argv[2]), (int)parse_long(argv[3], "level", -16, 22));
    chunk = (uint32_t)parse_long(argv[5], "chunk", 4096, 1 << 20);
    load_corpus(&cp, argv[4], chunk);
    secs = parse_seconds(argv[6]);
    pin((int)parse_long(argv[7], "cpu", -1, CPU_SETSIZE - 1));
    inflight = (uint32_t)parse_long(argv[8], "in flight", 1, 128);
    dec = !strcmp(argv[9], "d");
    precompress(&cp, &c, &comp_total);

    rc = synth_dev_open_path(argv[0], NULL, &dev);
    if (rc < 0)
        die("opening %s: %s", argv[0], strerror(-rc));
    if (synth_comp_get_cfg(dev, &cfg) < 0 || !(cfg.alg_mask & (1u << c.alg)))
        die("%s does not serve %s", argv[0], argv[2]);
    if (cfg.max_chunk < chunk)
        die("the device takes at most %u bytes per op", cfg.max_chunk);
    q = synth_dev_queue(dev, 0);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* naps of microseconds, not the default 50 us */
    /* Zero copy: the input of every op is placed in the arena once. */
    in_off = calloc(cp.n, sizeof(*in_off));
    slots = calloc(inflight, sizeof(*slots));
    freel = calloc(inflight, sizeof(*freel));
    d = calloc(inflight, sizeof(*d));
    cpl = calloc(inflight, sizeof(*cpl));
    if (!in_off || !slots || !freel || !d || !cpl)
        die("out of memory");
    for (i = 0; i < cp.n; i++)
        in_off[i] = dec ? arena_put(q, cp.comp[i], cp.comp_len[i])
                        : arena_put(q, cp.data + (size_t)i * chunk, chunk_len(&cp, i));
    for (i = 0; i < inflight; i++) {
        int64_t off = synth_buf_alloc(q, (uint32_t)SYNTH_COMP_BOUND(chunk));
        if (off < 0)
            die("the arena is too small for %u output buffers", inflight);
        slots[i].out_off = (uint32_t)off;
        freel[nfree++] = i;
    }
    for (i = 0; i < cp.n && i < 4; i++)
        device_check(q, &c, &cp, in_off, slots[0].out_off, i, dec);

    last_progress = warm_end = now_ns();
    warm_end += WARMUP_NS;
    for (;;) {
        unsigned got, sent, m = 0;

        while (nfree > 0 && !(timing && t >= deadline)) {
            uint32_t s = freel[--nfree];
            uint32_t n = chunk_len(&cp, next);
            if (dec)
                synth_comp_desc(&d[m], SYNTH_OP_COMP_DECOMPRESS, c.alg, 0, in_off[next], cp.comp_len[next],
                                slots[s].out_off, chunk, s);
            else
                synth_comp_desc(&d[m], SYNTH_OP_COMP_COMPRESS, c.alg, c.level, in_off[next], n, slots[s].out_off,
                                (uint32_t)SYNTH_COMP_BOUND(n), s);
            slots[s].chunk = next;
            slots[s].busy = 1;
            next = next + 1 == cp.n ? 0 : next + 1;
            m++;
        }
        if (m) {
            sent = synth_q_submit_burst(q, d, m);
            for (k = sent; k < m; k++) { /* not taken: back to the free list */
                slots[d[k].cookie].busy = 0;
                freel[nfree++] = (uint32_t)d[k].cookie;
            }
        }
        got = synth_q_poll_burst(q, cpl, inflight);
        if (got) {
            uint64_t batch = 0;
            for (k = 0; k < got; k++) {
                struct slot *s = cpl[k].cookie < inflight ? &slots[cpl[k].cookie] : NULL;
                if (!s || !s->busy)
                    die("completion with unexpected cookie %llu", (unsigned long long)cpl[k].cookie);
                if (cpl[k].status != SYNTH_ST_OK || cpl[k].result == 0 ||
                    (dec && cpl[k].result != chunk_len(&cp, s->chunk)))
                    die("completion status %u (%s), result %u", cpl[k].status, synth_status_str(cpl[k].status),
                        cpl[k].result);
                batch += chunk_len(&cp, s->chunk);
                s->busy = 0;
                freel[nfree++] = (uint32_t)cpl[k].cookie;
            }
            t = now_ns();
            last_progress = t;
            if (timing) {
                if (t < deadline) {
                    bytes += batch;
                    t_last = t;
                } else if (synth_q_inflight(q) == 0) {
                    break;
                }
            } else if (t >= warm_end) {
                timing = 1;
                t0 = t;
                deadline = t0 + (uint64_t)(secs * 1e9);
            }
            continue;
        }
        /*
         * Nothing completed: an op takes tens of microseconds to milliseconds, so after a short
         * spin the guest naps instead of competing with the backend for the machine.
         */
        if (now_ns() - last_progress > SPIN_NS)
            nap_ns(NAP_NS);
        else
            cpu_relax();
        if ((++spins & 4095) == 0) {
            if (synth_dev_needs_reset(dev))
                die("the device needs a reset (backend gone or ring error)");
            if (now_ns() - last_progress > STALL_NS)
                die("no completion for %llu s (%u in flight)", STALL_NS / 1000000000ull, synth_q_inflight(q));
        }
    }
    for (i = 0; i < cp.n && i < 4; i++) /* still right after the run */
        device_check(q, &c, &cp, in_off, slots[0].out_off, cp.n - 1 - i, dec);
    synth_dev_get_info(dev, &info);
    snprintf(extra, sizeof(extra), ", \"in_flight\": %u, \"backend\": \"%.31s\"", inflight, info.backend);
    synth_dev_close(dev);
    if (bytes == 0 || t_last <= t0)
        die("no op completed in the timed window");
    print_rate("device", dec ? "d" : "c", c.plugin, bytes, t_last - t0, (double)comp_total / (double)cp.len, extra);
    return 0;
}

int main(int argc, char **argv)
{
    prog_name = "compress_bench";
    if (argc < 2) {
        fprintf(stderr, "usage: %s inproc|device ARGS... (see the source)\n", argv[0]);
        return 2;
    }
    prog_mode = argv[1];
    if (!strcmp(argv[1], "inproc"))
        return cmd_inproc(argc - 2, argv + 2);
    if (!strcmp(argv[1], "device"))
        return cmd_device(argc - 2, argv + 2);
    die("unknown mode %s", argv[1]);
}
