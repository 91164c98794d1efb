/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check-compress-synth: drives the compress_synth PMD through DPDK's public compressdev API where
 * dpdk-test-compress-perf cannot: transforms the capabilities do not rule out, ops with bad
 * parameters, a destination that is too small, streams, checksums, output for other decoders to
 * read, and a device that needs a reset. One line of output per check ("name value ..."), for
 * tests/test_dpdk_compress.py.
 *
 *   check-compress-synth <EAL args> -- params            each bad xform's errno, each bad op's status
 *   check-compress-synth <EAL args> -- streams N         stream create/free; N+1 streams at once
 *   check-compress-synth <EAL args> -- space             too-small destinations, stateless and stateful
 *   check-compress-synth <EAL args> -- files IN DIR [B]  IN compressed stateless in ops of B bytes (default
 *                                                        64 KiB) into DIR/oneshot.bin (records of a 4-byte
 *                                                        length and a raw deflate stream), and as one stream
 *                                                        into DIR/stream.bin; DIR/stream.bin and DIR/zlib.bin
 *                                                        decompressed as streams (DIR/<name>.out)
 *   check-compress-synth <EAL args> -- reset             a burst; (after a line on stdin, the device marked
 *                                                        NEEDS_RESET) a burst that must fail; (after another
 *                                                        line) stop/start, and a burst that must pass
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_comp.h>
#include <rte_compressdev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#define NB_OPS 64u
#define SEG 2048u   /* data per mbuf segment */
#define CHUNK 65536u /* stateless op size in "files" */

static uint8_t dev_id;
static struct rte_mempool *op_mp, *mbuf_mp;

static const char *errname(int rc)
{
    switch (-rc) {
    case 0:
        return "ok";
    case EINVAL:
        return "EINVAL";
    case ENOTSUP:
        return "ENOTSUP";
    case ENOSPC:
        return "ENOSPC";
    default:
        return "other";
    }
}

static const char *stname(uint8_t st)
{
    static const char *const names[] = {"SUCCESS", "NOT_PROCESSED", "INVALID_ARGS", "ERROR", "INVALID_STATE",
                                        "OUT_OF_SPACE_TERMINATED", "OUT_OF_SPACE_RECOVERABLE"};
    return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

static struct rte_comp_xform cx(int level, enum rte_comp_huffman h, uint8_t window, enum rte_comp_checksum_type ck)
{
    struct rte_comp_xform x;

    memset(&x, 0, sizeof(x));
    x.type = RTE_COMP_COMPRESS;
    x.compress.algo = RTE_COMP_ALGO_DEFLATE;
    x.compress.deflate.huffman = h;
    x.compress.level = level;
    x.compress.window_size = window;
    x.compress.chksum = ck;
    return x;
}

static struct rte_comp_xform dx(uint8_t window, enum rte_comp_checksum_type ck)
{
    struct rte_comp_xform x;

    memset(&x, 0, sizeof(x));
    x.type = RTE_COMP_DECOMPRESS;
    x.decompress.algo = RTE_COMP_ALGO_DEFLATE;
    x.decompress.window_size = window;
    x.decompress.chksum = ck;
    return x;
}

/* A chain of mbufs holding len bytes of data (len 0: one empty segment), or room for len bytes. */
static struct rte_mbuf *chain(const uint8_t *data, size_t len)
{
    struct rte_mbuf *head = NULL;

    do {
        struct rte_mbuf *m = rte_pktmbuf_alloc(mbuf_mp);
        uint16_t n = (uint16_t)(len < SEG ? len : SEG);
        uint8_t *p;

        if (!m || !(p = (uint8_t *)rte_pktmbuf_append(m, n)))
            goto fail;
        if (data) {
            memcpy(p, data, n);
            data += n;
        }
        len -= n;
        if (!head)
            head = m;
        else if (rte_pktmbuf_chain(head, m) < 0)
            goto fail;
        continue;
    fail:
        rte_pktmbuf_free(m);
        rte_pktmbuf_free(head);
        return NULL;
    } while (len);
    return head;
}

/* Run one op to completion (enqueue, then dequeue until it comes back): its status, or -1. */
static int run(struct rte_comp_op *op)
{
    struct rte_comp_op *out;
    unsigned spins = 0;

    while (rte_compressdev_enqueue_burst(dev_id, 0, &op, 1) != 1)
        if (++spins > 100000000u)
            return -1;
    while (rte_compressdev_dequeue_burst(dev_id, 0, &out, 1) != 1)
        if (++spins > 100000000u)
            return -1;
    return out == op ? op->status : -1;
}

static struct rte_comp_op *new_op(struct rte_mbuf *src, struct rte_mbuf *dst, uint32_t len)
{
    struct rte_comp_op *op = rte_comp_op_alloc(op_mp);

    if (!op)
        return NULL;
    op->m_src = src;
    op->m_dst = dst;
    op->src.offset = 0;
    op->src.length = len;
    op->dst.offset = 0;
    op->flush_flag = RTE_COMP_FLUSH_FINAL;
    op->op_type = RTE_COMP_OP_STATELESS;
    return op;
}

static void free_op(struct rte_comp_op *op)
{
    rte_pktmbuf_free(op->m_src);
    rte_pktmbuf_free(op->m_dst);
    rte_comp_op_free(op);
}

static void try_xform(const char *name, struct rte_comp_xform x)
{
    void *p = NULL;
    int rc = rte_compressdev_private_xform_create(dev_id, &x, &p);

    printf("%s %s\n", name, errname(rc < 0 ? rc : 0));
    if (rc == 0)
        rte_compressdev_private_xform_free(dev_id, p);
}

/* One op, stateless (xform) or of stream, from 4 KiB of zeros into 8 KiB (none with no_dst): the
 * status it comes back with. */
static void try_op(const char *name, void *xform, void *stream, uint32_t src_off, uint32_t len,
                   enum rte_comp_flush_flag flush, int no_dst)
{
    static uint8_t buf[4096];
    struct rte_comp_op *op = new_op(chain(buf, sizeof(buf)), no_dst ? NULL : chain(NULL, 8192), len);
    int st;

    if (!op || !op->m_src) {
        printf("%s setup-failed\n", name);
        return;
    }
    op->src.offset = src_off;
    op->flush_flag = flush;
    if (stream) {
        op->op_type = RTE_COMP_OP_STATEFUL;
        op->stream = stream;
    } else {
        op->private_xform = xform;
    }
    st = run(op);
    printf("%s %s\n", name, st < 0 ? "lost" : stname((uint8_t)st));
    free_op(op);
}

static int params(void)
{
    struct rte_comp_xform x = cx(6, RTE_COMP_HUFFMAN_DYNAMIC, 15, RTE_COMP_CHECKSUM_NONE);
    void *xf = NULL, *st = NULL;

    try_xform("compress-dynamic", x);
    try_xform("compress-default-level", cx(RTE_COMP_LEVEL_PMD_DEFAULT, RTE_COMP_HUFFMAN_DEFAULT, 15,
                                           RTE_COMP_CHECKSUM_CRC32_ADLER32));
    try_xform("decompress-window-9", dx(9, RTE_COMP_CHECKSUM_ADLER32));
    try_xform("huffman-fixed", cx(6, RTE_COMP_HUFFMAN_FIXED, 15, RTE_COMP_CHECKSUM_NONE));
    try_xform("level-0", cx(0, RTE_COMP_HUFFMAN_DYNAMIC, 15, RTE_COMP_CHECKSUM_NONE));
    try_xform("level-10", cx(10, RTE_COMP_HUFFMAN_DYNAMIC, 15, RTE_COMP_CHECKSUM_NONE));
    try_xform("compress-window-12", cx(6, RTE_COMP_HUFFMAN_DYNAMIC, 12, RTE_COMP_CHECKSUM_NONE));
    try_xform("decompress-window-16", dx(16, RTE_COMP_CHECKSUM_NONE));
    try_xform("checksum-bad", cx(6, RTE_COMP_HUFFMAN_DYNAMIC, 15, (enum rte_comp_checksum_type)7));
    x = cx(6, RTE_COMP_HUFFMAN_DYNAMIC, 15, RTE_COMP_CHECKSUM_NONE);
    x.compress.algo = RTE_COMP_ALGO_LZS;
    try_xform("algo-lzs", x);
    x = cx(6, RTE_COMP_HUFFMAN_DYNAMIC, 15, RTE_COMP_CHECKSUM_NONE);
    x.compress.hash_algo = RTE_COMP_HASH_ALGO_SHA2_256;
    try_xform("hash-sha256", x);
    x.type = (enum rte_comp_xform_type)5;
    try_xform("type-bad", x);

    /* Ops: each finishes with its status, none reaches the device. */
    x = cx(6, RTE_COMP_HUFFMAN_DYNAMIC, 15, RTE_COMP_CHECKSUM_NONE);
    if (rte_compressdev_private_xform_create(dev_id, &x, &xf) < 0 ||
        rte_compressdev_stream_create(dev_id, &x, &st) < 0)
        return -1;
    try_op("op-no-xform", NULL, NULL, 0, 4096, RTE_COMP_FLUSH_FINAL, 0);
    try_op("op-src-beyond-chain", xf, NULL, 100, 4096, RTE_COMP_FLUSH_FINAL, 0);
    try_op("op-no-dst", xf, NULL, 0, 4096, RTE_COMP_FLUSH_FINAL, 1);
    try_op("op-stateless-flush-none", xf, NULL, 0, 4096, RTE_COMP_FLUSH_NONE, 0);
    try_op("op-stream-flush-full", NULL, st, 0, 4096, RTE_COMP_FLUSH_FULL, 0);
    try_op("op-good", xf, NULL, 0, 4096, RTE_COMP_FLUSH_FINAL, 0);
    rte_compressdev_stream_free(dev_id, st);
    rte_compressdev_private_xform_free(dev_id, xf);
    return 0;
}

static int streams(unsigned max)
{
    struct rte_comp_xform c = cx(3, RTE_COMP_HUFFMAN_DEFAULT, 15, RTE_COMP_CHECKSUM_NONE), d = dx(15, 0);
    void *s[64];
    unsigned n = 0;
    int rc = 0;

    if (max >= 64)
        return -1;
    for (unsigned i = 0; i < 3; i++) { /* create and free, again and again: nothing leaks on the device */
        for (n = 0; n < max; n++) {
            rc = rte_compressdev_stream_create(dev_id, n % 2 ? &d : &c, &s[n]);
            if (rc < 0)
                break;
        }
        printf("round-%u created %u\n", i, n);
        if (n == max) {
            void *extra = NULL;
            rc = rte_compressdev_stream_create(dev_id, &c, &extra);
            printf("round-%u one-more %s\n", i, errname(rc < 0 ? rc : 0));
            if (rc == 0)
                rte_compressdev_stream_free(dev_id, extra);
        }
        while (n)
            rte_compressdev_stream_free(dev_id, s[--n]);
    }
    return 0;
}

/* Incompressible bytes from a fixed seed. */
static void noise(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* An op of stream st on len bytes of src (none: NULL) into room bytes: "<name> STATUS consumed=N
 * produced=N". */
static void stream_space(const char *name, void *st, const uint8_t *src, uint32_t len, uint32_t room)
{
    struct rte_comp_op *op = new_op(chain(src, len), chain(NULL, room), len);
    int s;

    if (!op || !op->m_src || !op->m_dst) {
        printf("%s setup-failed\n", name);
        return;
    }
    op->op_type = RTE_COMP_OP_STATEFUL;
    op->stream = st;
    s = run(op);
    printf("%s %s consumed=%u produced=%u\n", name, s < 0 ? "lost" : stname((uint8_t)s), op->consumed, op->produced);
    free_op(op);
}

static int space(void)
{
    static uint8_t data[8192], out[16384];
    struct rte_comp_xform x = cx(6, RTE_COMP_HUFFMAN_DYNAMIC, 15, RTE_COMP_CHECKSUM_NONE), y = dx(15, 0);
    void *cxf = NULL, *dxf = NULL, *st = NULL;
    struct rte_comp_op *op;
    const uint8_t *p;
    uint32_t clen;
    int s;

    noise(data, 4096, 7);
    memset(data + 4096, 'a', 4096);
    if (rte_compressdev_private_xform_create(dev_id, &x, &cxf) < 0 ||
        rte_compressdev_private_xform_create(dev_id, &y, &dxf) < 0)
        return -1;
    /* Incompressible input into a destination smaller than it. */
    op = new_op(chain(data, 4096), chain(NULL, 1024), 4096);
    op->private_xform = cxf;
    s = run(op);
    printf("compress-small-dst %s produced=%u\n", s < 0 ? "lost" : stname((uint8_t)s), op->produced);
    free_op(op);
    /* The same with room: it fits; then decompress it into too little and into enough. */
    op = new_op(chain(data, sizeof(data)), chain(NULL, sizeof(out)), sizeof(data));
    op->private_xform = cxf;
    s = run(op);
    clen = op->produced;
    printf("compress-room %s\n", s < 0 ? "lost" : stname((uint8_t)s));
    p = s == RTE_COMP_OP_STATUS_SUCCESS ? rte_pktmbuf_read(op->m_dst, 0, clen, out) : NULL;
    if (!p)
        return -1;
    if (p != out)
        memcpy(out, p, clen);
    free_op(op);
    op = new_op(chain(out, clen), chain(NULL, 6000), clen);
    op->private_xform = dxf;
    s = run(op);
    printf("decompress-small-dst %s produced=%u\n", s < 0 ? "lost" : stname((uint8_t)s), op->produced);
    free_op(op);
    op = new_op(chain(out, clen), chain(NULL, sizeof(data)), clen);
    op->private_xform = dxf;
    s = run(op);
    printf("decompress-room %s produced=%u\n", s < 0 ? "lost" : stname((uint8_t)s), op->produced);
    free_op(op);
    /* A stream: a small destination is recoverable, the next op (no new input) takes the rest. */
    if (rte_compressdev_stream_create(dev_id, &y, &st) < 0)
        return -1;
    stream_space("stream-small-dst", st, out, clen, 6000);
    stream_space("stream-rest", st, NULL, 0, 6000);
    rte_compressdev_stream_free(dev_id, st);
    rte_compressdev_private_xform_free(dev_id, cxf);
    rte_compressdev_private_xform_free(dev_id, dxf);
    return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)n + 1)) && fread(p, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

/* Append an op's output to f. */
static int take(FILE *f, struct rte_comp_op *op, int record)
{
    static uint8_t tmp[1 << 20];
    const uint8_t *p;
    uint32_t n = op->produced;

    if (n > sizeof(tmp) || !(p = rte_pktmbuf_read(op->m_dst, op->dst.offset, n, tmp)))
        return -1;
    if (record && fwrite(&n, 4, 1, f) != 1)
        return -1;
    return n && fwrite(p, 1, n, f) != n ? -1 : 0;
}

/* Stateless, bursts of ops of chunk bytes each, one raw deflate stream per op. */
static int files_oneshot(const uint8_t *in, size_t len, size_t chunk, FILE *f)
{
    struct rte_comp_xform x = cx(6, RTE_COMP_HUFFMAN_DYNAMIC, 15, RTE_COMP_CHECKSUM_CRC32_ADLER32);
    size_t nops = (len + chunk - 1) / chunk, enq = 0, deq = 0;
    struct rte_comp_op **ops = calloc(nops, sizeof(*ops)), *out[NB_OPS];
    void *xf;
    int rc = -1;

    if (!ops || rte_compressdev_private_xform_create(dev_id, &x, &xf) < 0)
        return -1;
    for (size_t i = 0; i < nops; i++) {
        uint32_t n = (uint32_t)(i + 1 < nops ? chunk : len - i * chunk);
        ops[i] = new_op(chain(in + i * chunk, n), chain(NULL, chunk + chunk / 8 + 1024), n);
        if (!ops[i] || !ops[i]->m_src || !ops[i]->m_dst)
            goto out;
        ops[i]->private_xform = xf;
    }
    while (deq < nops) {
        enq += rte_compressdev_enqueue_burst(dev_id, 0, ops + enq, (uint16_t)RTE_MIN(nops - enq, (size_t)NB_OPS));
        unsigned n = rte_compressdev_dequeue_burst(dev_id, 0, out, NB_OPS);
        for (unsigned i = 0; i < n; i++) {
            if (out[i] != ops[deq + i] || out[i]->status != RTE_COMP_OP_STATUS_SUCCESS || take(f, out[i], 1) < 0) {
                printf("oneshot-op %s\n", stname(out[i]->status));
                goto out;
            }
            printf("oneshot %u %u %016" PRIx64 "\n", out[i]->consumed, out[i]->produced, out[i]->output_chksum);
        }
        deq += n;
    }
    rc = 0;
out:
    for (size_t i = 0; i < nops; i++)
        if (ops[i])
            free_op(ops[i]);
    free(ops);
    rte_compressdev_private_xform_free(dev_id, xf);
    return rc;
}

/* A stream over the whole input: ops of step bytes into destinations of room bytes, resubmitting
 * what a recoverable op did not consume. */
static int files_stream(const char *name, struct rte_comp_xform x, const uint8_t *in, size_t len, size_t step,
                        size_t room, FILE *f)
{
    unsigned ops = 0, recoverable = 0;
    uint64_t ck = 0;
    size_t pos = 0;
    void *st;
    int s;

    if (rte_compressdev_stream_create(dev_id, &x, &st) < 0)
        return -1;
    for (;;) {
        size_t n = len - pos < step ? len - pos : step;
        struct rte_comp_op *op = new_op(chain(in + pos, n), chain(NULL, room), (uint32_t)n);

        if (!op || !op->m_src || !op->m_dst)
            return -1;
        op->op_type = RTE_COMP_OP_STATEFUL;
        op->stream = st;
        op->flush_flag = pos + n == len ? RTE_COMP_FLUSH_FINAL : RTE_COMP_FLUSH_NONE;
        s = run(op);
        ops++;
        if (s == RTE_COMP_OP_STATUS_OUT_OF_SPACE_RECOVERABLE)
            recoverable++;
        else if (s != RTE_COMP_OP_STATUS_SUCCESS) {
            printf("%s-op %s\n", name, s < 0 ? "lost" : stname((uint8_t)s));
            return -1;
        }
        if (take(f, op, 0) < 0)
            return -1;
        pos += op->consumed;
        ck = op->output_chksum;
        free_op(op);
        if (pos == len && s == RTE_COMP_OP_STATUS_SUCCESS)
            break;
    }
    printf("%s ops=%u recoverable=%u chksum=%016" PRIx64 "\n", name, ops, recoverable, ck);
    rte_compressdev_stream_free(dev_id, st);
    return 0;
}

static FILE *open_in(const char *dir, const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return fopen(path, "wb");
}

static int files(const char *in_path, const char *dir, size_t chunk)
{
    static const char *const names[] = {"stream.bin", "zlib.bin"};
    uint8_t *in;
    size_t len;
    FILE *f;
    int rc = 0;

    if (!(in = slurp(in_path, &len)) || !(f = open_in(dir, "oneshot.bin")))
        return -1;
    rc = files_oneshot(in, len, chunk, f);
    fclose(f);
    if (rc || !(f = open_in(dir, "stream.bin"))) {
        free(in);
        return -1;
    }
    rc |= files_stream("stream-compress", cx(6, RTE_COMP_HUFFMAN_DEFAULT, 15, RTE_COMP_CHECKSUM_CRC32), in, len,
                       16384, 4096, f);
    fclose(f);
    free(in);
    for (unsigned i = 0; i < 2 && !rc; i++) {
        char path[4096], out[64];

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        snprintf(out, sizeof(out), "%.*s.out", (int)(strlen(names[i]) - 4), names[i]);
        if (!(in = slurp(path, &len)) || !(f = open_in(dir, out)))
            return -1;
        snprintf(out, sizeof(out), "stream-decompress-%.*s", (int)(strlen(names[i]) - 4), names[i]);
        rc |= files_stream(out, dx(15, RTE_COMP_CHECKSUM_ADLER32), in, len, 5000, 20000, f);
        fclose(f);
        free(in);
    }
    return rc;
}

/* Compress NB_OPS buffers; how many came back with each status (ok, error, other). */
static int burst(void *xf, unsigned *ok, unsigned *err, unsigned *other)
{
    static uint8_t data[SEG];
    struct rte_comp_op *ops[NB_OPS], *out[NB_OPS];
    unsigned enq = 0, deq = 0, spins = 0;

    *ok = *err = *other = 0;
    for (unsigned i = 0; i < NB_OPS; i++) {
        memset(data, (int)i, sizeof(data));
        ops[i] = new_op(chain(data, sizeof(data)), chain(NULL, 2 * SEG), SEG);
        if (!ops[i] || !ops[i]->m_src || !ops[i]->m_dst)
            return -1;
        ops[i]->private_xform = xf;
    }
    while (deq < NB_OPS && spins < 100000000u) {
        if (enq < NB_OPS)
            enq += rte_compressdev_enqueue_burst(dev_id, 0, ops + enq, (uint16_t)(NB_OPS - enq));
        unsigned n = rte_compressdev_dequeue_burst(dev_id, 0, out, NB_OPS);
        for (unsigned i = 0; i < n; i++) {
            if (out[i]->status == RTE_COMP_OP_STATUS_SUCCESS)
                (*ok)++;
            else if (out[i]->status == RTE_COMP_OP_STATUS_ERROR)
                (*err)++;
            else
                (*other)++;
            free_op(out[i]);
        }
        deq += n;
        spins++;
    }
    return deq == NB_OPS ? 0 : -1;
}

static int reset(void)
{
    struct rte_comp_xform x = cx(1, RTE_COMP_HUFFMAN_DEFAULT, 15, RTE_COMP_CHECKSUM_NONE);
    void *xf = NULL, *st = NULL;
    unsigned ok, err, other;
    char line[16];

    if (rte_compressdev_private_xform_create(dev_id, &x, &xf) < 0 ||
        rte_compressdev_stream_create(dev_id, &x, &st) < 0)
        return -1;
    if (burst(xf, &ok, &err, &other) < 0)
        return -1;
    printf("before ok=%u error=%u other=%u\n", ok, err, other);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin)) /* the test marks the device NEEDS_RESET */
        return -1;
    if (burst(xf, &ok, &err, &other) < 0)
        return -1;
    printf("needs-reset ok=%u error=%u other=%u\n", ok, err, other);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin)) /* the test lets the backend serve again */
        return -1;
    rte_compressdev_stop(dev_id);
    printf("start %d\n", rte_compressdev_start(dev_id));
    if (burst(xf, &ok, &err, &other) < 0)
        return -1;
    printf("after ok=%u error=%u other=%u\n", ok, err, other);
    try_op("old-stream", NULL, st, 0, 1000, RTE_COMP_FLUSH_FINAL, 0); /* its state went with the reset */
    rte_compressdev_stream_free(dev_id, st);
    if (rte_compressdev_stream_create(dev_id, &x, &st) < 0)
        return -1;
    try_op("new-stream", NULL, st, 0, 1000, RTE_COMP_FLUSH_FINAL, 0);
    rte_compressdev_stream_free(dev_id, st);
    rte_compressdev_private_xform_free(dev_id, xf);
    return 0;
}

int main(int argc, char **argv)
{
    struct rte_compressdev_config conf = {.socket_id = 0, .nb_queue_pairs = 1, .max_nb_priv_xforms = 16};
    int n = rte_eal_init(argc, argv), rc = 1, id;

    if (n < 0) {
        fprintf(stderr, "check-compress-synth: EAL init failed: %s\n", rte_strerror(rte_errno));
        return 2;
    }
    argc -= n;
    argv += n;
    id = rte_compressdev_get_dev_id("compress_synth0");
    if (argc < 2 || id < 0) {
        fprintf(stderr, "usage: check-compress-synth <EAL args with --vdev compress_synth0,...> -- "
                        "params|streams N|space|files IN DIR [B]|reset\n");
        goto out;
    }
    dev_id = (uint8_t)id;
    op_mp = rte_comp_op_pool_create("ops", 4 * NB_OPS, 0, 0, 0);
    mbuf_mp = rte_pktmbuf_pool_create("mbufs", 8192, 0, 0, RTE_PKTMBUF_HEADROOM + SEG, 0);
    if (!op_mp || !mbuf_mp || rte_compressdev_configure(dev_id, &conf) < 0 ||
        rte_compressdev_queue_pair_setup(dev_id, 0, 256, 0) < 0 || rte_compressdev_start(dev_id) < 0) {
        fprintf(stderr, "check-compress-synth: cannot set up compress_synth0\n");
        goto out;
    }
    if (!strcmp(argv[1], "params"))
        rc = params();
    else if (!strcmp(argv[1], "streams") && argc > 2)
        rc = streams((unsigned)atoi(argv[2]));
    else if (!strcmp(argv[1], "space"))
        rc = space();
    else if (!strcmp(argv[1], "files") && argc > 3)
        rc = files(argv[2], argv[3], argc > 4 ? (size_t)atoi(argv[4]) : CHUNK);
    else if (!strcmp(argv[1], "reset"))
        rc = reset();
    rc = rc ? 1 : 0;
    rte_compressdev_stop(dev_id);
    rte_compressdev_close(dev_id);
out:
    rte_eal_cleanup();
    return rc;
}
