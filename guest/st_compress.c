/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest selftest, compression class, for each algorithm the device serves:
 *   "compress"   one-shot: the text (sg_text(synth.seed, synth.text bytes)) compressed at the
 *                default level, printed for the host to decompress, and decompressed back here;
 *   "stream"     the same text through a compression stream in three chunks (SYNC after the
 *                first, FINISH after the last), printed, then through a decompression stream;
 *   "decompress" each frame the host put on the command line (synth.unz.N=ALG:HEX): length, CRC-32
 *                and the bytes, for the host to compare with what it compressed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg.h"

#define PRINT_MAX (64u << 10) /* decompressed bytes printed in full up to this size */

static const char *const alg_names[] = {"", "deflate", "zlib", "gzip", "zstd", "lz4"};

struct sink_buf {
    uint8_t *p;
    size_t len, cap;
};

static int sink(void *arg, const void *data, size_t len)
{
    struct sink_buf *b = arg;
    if (b->len + len > b->cap)
        return -ENOSPC;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* Run data through a stream in three chunks; output into out (cap bytes). 0 or a status. */
static int through_stream(struct synth_queue *q, uint32_t alg, uint16_t dir, const uint8_t *data, size_t len,
                          struct sink_buf *out, int *ended)
{
    struct synth_comp_stream_params sp = {.alg = (uint16_t)alg, .direction = dir};
    uint32_t id, chunk = (uint32_t)(len / 3 + 1), piece = 64u << 10;
    int64_t in = synth_buf_alloc(q, chunk), dst = synth_buf_alloc(q, piece);
    uint16_t flags = 0;
    int rc;

    *ended = 0;
    if (in < 0 || dst < 0) {
        rc = -ENOMEM;
        goto out;
    }
    rc = synth_comp_stream_create(q, &sp, &id);
    if (rc != 0)
        goto out;
    for (size_t off = 0; rc == 0 && off < len; off += chunk) {
        uint32_t n = (uint32_t)(len - off < chunk ? len - off : chunk);
        uint32_t flush = off + n >= len ? SYNTH_FLUSH_FINISH : off == 0 ? SYNTH_FLUSH_SYNC : SYNTH_FLUSH_NONE;
        memcpy(synth_buf_ptr(q, (uint32_t)in), data + off, n);
        rc = synth_comp_stream_feed(q, id, flush, (uint32_t)in, n, (uint32_t)dst, piece, sink, out, &flags);
    }
    *ended = rc == 0 && (flags & SYNTH_CPL_F_END);
    synth_comp_stream_destroy(q, id);
out:
    if (dst >= 0)
        synth_buf_free(q, (uint32_t)dst, piece);
    if (in >= 0)
        synth_buf_free(q, (uint32_t)in, chunk);
    return rc;
}

static void test_alg(struct sg_dev *d, struct synth_queue *q, uint32_t alg, const uint8_t *text, uint32_t len,
                     unsigned *pass, unsigned *fail)
{
    uint32_t bound = (uint32_t)synth_comp_bound(len), clen = 0, dlen = 0;
    int64_t in = synth_buf_alloc(q, len), out = synth_buf_alloc(q, bound), back = synth_buf_alloc(q, len);
    struct sink_buf sc = {malloc(bound), 0, bound}, sd = {malloc(len + 1), 0, len + 1};
    struct jw w = {0};
    int rc = -ENOMEM, drc = -1, ok, ended = 0, ended2 = 0, src = -1, drc2 = -1;

    jw_begin(&w, "compress");
    jw_str(&w, "dev", d->where);
    jw_str(&w, "alg", alg_names[alg]);
    jw_int(&w, "level", 0);
    jw_uint(&w, "input_len", len);
    jw_uint(&w, "input_crc32", sg_crc32(text, len));
    if (in >= 0 && out >= 0 && back >= 0 && sc.p && sd.p) {
        memcpy(synth_buf_ptr(q, (uint32_t)in), text, len);
        rc = synth_comp_compress(q, alg, 0, (uint32_t)in, len, (uint32_t)out, bound, &clen);
        if (rc == 0)
            drc = synth_comp_decompress(q, alg, (uint32_t)out, clen, (uint32_t)back, len, &dlen);
    }
    ok = rc == 0 && drc == 0 && dlen == len && !memcmp(synth_buf_ptr(q, (uint32_t)back), text, len);
    jw_str(&w, "compress_status", sg_status(rc));
    jw_hex(&w, "output", rc == 0 ? synth_buf_ptr(q, (uint32_t)out) : "", rc == 0 ? clen : 0);
    jw_str(&w, "roundtrip", ok ? "ok" : rc ? "not run" : sg_status(drc ? drc : -EILSEQ));
    jw_str(&w, "result", ok ? "pass" : "fail");
    jw_end(&w);
    ok ? (*pass)++ : (*fail)++;

    if (d->info.features_accepted & SYNTH_COMP_F_STREAMS) {
        if (sc.p && sd.p) {
            src = through_stream(q, alg, SYNTH_COMP_DIR_COMPRESS, text, len, &sc, &ended);
            if (src == 0 && ended)
                drc2 = through_stream(q, alg, SYNTH_COMP_DIR_DECOMPRESS, sc.p, sc.len, &sd, &ended2);
        }
        ok = src == 0 && ended && drc2 == 0 && ended2 && sd.len == len && !memcmp(sd.p, text, len);
        jw_begin(&w, "stream");
        jw_str(&w, "dev", d->where);
        jw_str(&w, "alg", alg_names[alg]);
        jw_uint(&w, "input_len", len);
        jw_str(&w, "compress_status", sg_status(src));
        jw_hex(&w, "output", sc.p ? sc.p : (uint8_t *)"", src == 0 ? sc.len : 0);
        jw_str(&w, "roundtrip", ok ? "ok" : src || !ended ? "not run" : sg_status(drc2 ? drc2 : -EILSEQ));
        jw_str(&w, "result", ok ? "pass" : "fail");
        jw_end(&w);
        ok ? (*pass)++ : (*fail)++;
    }
    free(sc.p);
    free(sd.p);
    free(w.buf);
    if (back >= 0)
        synth_buf_free(q, (uint32_t)back, len);
    if (out >= 0)
        synth_buf_free(q, (uint32_t)out, bound);
    if (in >= 0)
        synth_buf_free(q, (uint32_t)in, len);
}

/* Decompress a host-made frame; the destination grows to what NO_SPACE says is needed. */
static void test_frame(struct sg_dev *d, struct synth_queue *q, unsigned idx, const struct sg_frame *f,
                       uint32_t alg_mask, unsigned *pass, unsigned *fail)
{
    uint32_t cap = 64u << 10, n = 0;
    int64_t src = synth_buf_alloc(q, (uint32_t)f->data.len), dst = -1;
    struct jw w = {0};
    int rc = -ENOMEM;

    if (!(alg_mask & (1u << f->alg)))
        return;
    if (src >= 0) {
        memcpy(synth_buf_ptr(q, (uint32_t)src), f->data.p, f->data.len);
        for (int tries = 0; tries < 2; tries++) {
            dst = synth_buf_alloc(q, cap);
            if (dst < 0) {
                rc = -ENOMEM;
                break;
            }
            rc = synth_comp_decompress(q, f->alg, (uint32_t)src, (uint32_t)f->data.len, (uint32_t)dst, cap, &n);
            if (rc != (int)SYNTH_ST_NO_SPACE || n <= cap || n > (16u << 20))
                break;
            synth_buf_free(q, (uint32_t)dst, cap);
            dst = -1;
            cap = n;
        }
    }
    jw_begin(&w, "decompress");
    jw_str(&w, "dev", d->where);
    jw_uint(&w, "frame", idx);
    jw_str(&w, "alg", alg_names[f->alg]);
    jw_uint(&w, "input_len", f->data.len);
    jw_str(&w, "status", sg_status(rc));
    if (rc == 0) {
        const uint8_t *o = synth_buf_ptr(q, (uint32_t)dst);
        jw_uint(&w, "output_len", n);
        jw_uint(&w, "output_crc32", sg_crc32(o, n));
        jw_hex(&w, "output", o, n <= PRINT_MAX ? n : 0);
    }
    jw_str(&w, "result", rc == 0 ? "pass" : "fail");
    jw_end(&w);
    rc == 0 ? (*pass)++ : (*fail)++;
    free(w.buf);
    if (dst >= 0)
        synth_buf_free(q, (uint32_t)dst, cap);
    if (src >= 0)
        synth_buf_free(q, (uint32_t)src, (uint32_t)f->data.len);
}

void sg_compress_selftest(struct sg_dev *d, const struct sg_params *p, unsigned *pass, unsigned *fail)
{
    struct synth_queue *q = synth_dev_queue(d->dev, 0);
    struct synth_comp_cfg cfg;
    uint8_t *text = malloc(p->text_len ? p->text_len : 1);

    if (!text || synth_comp_get_cfg(d->dev, &cfg) < 0) {
        free(text);
        (*fail)++;
        return;
    }
    sg_text(p->seed, text, p->text_len);
    for (uint32_t alg = 1; alg < SYNTH_CALG_MAX; alg++)
        if (cfg.alg_mask & (1u << alg))
            test_alg(d, q, alg, text, p->text_len, pass, fail);
    for (unsigned i = 0; i < p->n_frames; i++)
        test_frame(d, q, i, &p->unz[i], cfg.alg_mask, pass, fail);
    free(text);
}
