/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_bench: the hot loops of bench/crypto (which compiles and drives this program).
 *
 *   crypto_bench inproc SIZE SECONDS CPU [openssl|ipsec-mb]
 *                                                     in-process AES-256-GCM encrypt, one core, with
 *                                                     OpenSSL EVP (default) or intel-ipsec-mb
 *   crypto_bench ipsecmb-probe                        can this build and CPU run intel-ipsec-mb?
 *   crypto_bench inproc-lat SIZE N CPU                in-process latency of single ops
 *   crypto_bench device PATH SIZE BURST BURSTS SECONDS CPU
 *                                                     the same ops through a synthetic device
 *   crypto_bench rtt PATH N CPU [gcm|nop]             single-op round trips (64 B encrypt or NOP)
 *   crypto_bench pingpong DIR N CPU_A CPU_B [line|mailbox]
 *                                                     raw shared-memory ping-pong between 2 processes
 *   crypto_bench idle-guest PATH                      attach, create a session, wait for stdin EOF
 *
 * Each mode prints one JSON line on stdout; any failure prints a message on stderr and exits 1.
 *
 * The op is what an IPsec ESP gateway does per packet: AES-256-GCM, 12-byte IV (4-byte salt and
 * an 8-byte per-packet counter, unique per op as GCM requires), 8 bytes of AAD (SPI and sequence
 * number), in-place encryption, 16-byte tag written after the payload. Both the in-process loop and
 * the device loop use the same buffer layout (bench_gcm.h) and write the IV and AAD of every op.
 *
 * intel-ipsec-mb is compiled in with -DBENCH_IPSECMB (and -lIPSec_MB), as bench/crypto builds it;
 * without it (bench/provider and bench/dpdk build it so, for rtt and pingpong) the program needs
 * OpenSSL alone and its ipsec-mb modes say how to build it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "synth/guest.h"

#include "bench_util.h"
#include "bench_gcm.h"

#define INPROC_SLOTS 64u
#define MAX_SIZE (1u << 20)
#define RTT_SIZE 64u
#define WARMUP_OPS 20000u
#define STALL_NS 5000000000ull /* no progress for this long: the device is stuck */
#define SPI 0x01 /* of every op's header (bench_gcm.h) */


/* ---- the op ---- */

static void unhex(const char *h, uint8_t *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            die("bad hex in a test vector");
        out[i] = (uint8_t)v;
    }
}

/* Known answer: GCM specification (McGrew and Viega), test case 16, AES-256, 96-bit IV, with AAD. */
struct kat {
    uint8_t key[32], iv[12], aad[20], pt[60], ct[60], tag[16];
};

static void kat_load(struct kat *k)
{
    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", k->key, 32);
    unhex("cafebabefacedbaddecaf888", k->iv, 12);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", k->aad, 20);
    unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", k->pt, 60);
    unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662", k->ct, 60);
    unhex("76fc6ece0f4e1768cddf8853bb2d551b", k->tag, 16);
}

static void gcm_kat(void)
{
    struct kat k;
    uint8_t out[60], otag[16];
    EVP_CIPHER_CTX *ctx;

    kat_load(&k);
    ctx = gcm_ctx(k.key);
    if (gcm_encrypt(ctx, k.iv, k.aad, sizeof(k.aad), k.pt, out, sizeof(k.pt), otag) < 0)
        die("EVP AES-256-GCM encrypt failed on the known-answer test");
    if (memcmp(out, k.ct, sizeof(k.ct)) || memcmp(otag, k.tag, sizeof(k.tag)))
        die("EVP AES-256-GCM does not match the known-answer test (GCM spec test case 16)");
    EVP_CIPHER_CTX_free(ctx);
}

#ifdef BENCH_IPSECMB
/* The same known answer through intel-ipsec-mb (its own key expansion: the benchmark's is KEY). */
static void imb_kat(void)
{
    struct kat k;
    struct imb_gcm g;
    uint8_t out[60], otag[16];
    char why[160];

    kat_load(&k);
    if (imb_gcm_open(&g, k.key, why, sizeof(why)) < 0)
        die("%s", why);
    imb_gcm_encrypt(&g, k.iv, k.aad, sizeof(k.aad), k.pt, out, sizeof(k.pt), otag);
    if (memcmp(out, k.ct, sizeof(k.ct)) || memcmp(otag, k.tag, sizeof(k.tag)))
        die("intel-ipsec-mb AES-256-GCM does not match the known-answer test (GCM spec test case 16)");
    imb_gcm_close(&g);
}
#endif

static void print_rate(const char *mode, uint32_t size, uint64_t ops, uint64_t ns, const char *extra)
{
    double s = (double)ns / 1e9;
    printf("{\"mode\": \"%s\", \"size\": %u, \"ops\": %llu, \"seconds\": %.6f, \"ops_per_s\": %.1f, "
           "\"gbps\": %.4f, \"checked\": true%s}\n",
           mode, size, (unsigned long long)ops, s, (double)ops / s, (double)ops * size * 8.0 / s / 1e9,
           extra ? extra : "");
    fflush(stdout);
}

/* ---- inproc ---- */

#define NO_IPSECMB "this crypto_bench was built without intel-ipsec-mb (bench/crypto builds it with " \
    "-DBENCH_IPSECMB ... -lIPSec_MB; needs libipsec-mb-dev)"

/* The in-process library of a run: OpenSSL EVP with one keyed context, or intel-ipsec-mb. */
struct inproc_lib {
    int ipsecmb;
    EVP_CIPHER_CTX *evp;
#ifdef BENCH_IPSECMB
    struct imb_gcm imb;
#endif
    char detail[160];
};

static void inproc_open(struct inproc_lib *l, const char *name)
{
    memset(l, 0, sizeof(*l));
    if (!strcmp(name, "openssl")) {
        gcm_kat();
        l->evp = gcm_ctx(KEY);
        snprintf(l->detail, sizeof(l->detail), ", \"lib\": \"openssl\", \"openssl\": \"%s\"",
                 OpenSSL_version(OPENSSL_VERSION));
        return;
    }
    if (strcmp(name, "ipsec-mb"))
        die("unknown library %s (openssl or ipsec-mb)", name);
#ifdef BENCH_IPSECMB
    {
        char why[160];
        gcm_kat(); /* the reference of the checks below */
        imb_kat();
        if (imb_gcm_open(&l->imb, KEY, why, sizeof(why)) < 0)
            die("%s", why);
        l->ipsecmb = 1;
        snprintf(l->detail, sizeof(l->detail), ", \"lib\": \"ipsec-mb\", \"ipsecmb\": \"%s\", \"arch\": \"%s\"",
                 imb_get_version_str(), imb_arch_name(l->imb.arch));
    }
#else
    die(NO_IPSECMB);
#endif
}

/* Encrypt the slot's payload in place and write its tag after it. 0 or -1. */
static inline int inproc_op(struct inproc_lib *l, uint8_t *s, uint32_t size)
{
#ifdef BENCH_IPSECMB
    if (l->ipsecmb) {
        imb_gcm_encrypt(&l->imb, s + IV_OFF, s + AAD_OFF, AAD_LEN, s + SLOT_HDR, s + SLOT_HDR, size,
                        s + SLOT_HDR + size);
        return 0;
    }
#endif
    return gcm_encrypt(l->evp, s + IV_OFF, s + AAD_OFF, AAD_LEN, s + SLOT_HDR, s + SLOT_HDR, size,
                       s + SLOT_HDR + size);
}

static void inproc_close(struct inproc_lib *l)
{
    if (l->evp)
        EVP_CIPHER_CTX_free(l->evp);
#ifdef BENCH_IPSECMB
    if (l->ipsecmb)
        imb_gcm_close(&l->imb);
#endif
}

static int cmd_inproc(int argc, char **argv)
{
    uint32_t size, ssz, i;
    double secs;
    uint8_t *mem, *slots[INPROC_SLOTS];
    uint8_t *ref_ct, ref_tag[TAG_LEN];
    struct inproc_lib lib;
    uint64_t seq = 1, ops = 0, t0, t, deadline, warm_end;

    if (argc != 3 && argc != 4)
        die("usage: inproc SIZE SECONDS CPU [openssl|ipsec-mb]");
    size = (uint32_t)parse_long(argv[0], "size", 1, MAX_SIZE);
    secs = parse_seconds(argv[1]);
    pin((int)parse_long(argv[2], "cpu", -1, CPU_SETSIZE - 1));
    inproc_open(&lib, argc == 4 ? argv[3] : "openssl");

    ssz = slot_size(size);
    mem = aligned_alloc(4096, (size_t)ssz * INPROC_SLOTS);
    ref_ct = malloc(size);
    if (!mem || !ref_ct)
        die("out of memory");
    memset(mem, 0, (size_t)ssz * INPROC_SLOTS);
    for (i = 0; i < INPROC_SLOTS; i++) {
        slots[i] = mem + (size_t)i * ssz;
        fill_payload(slots[i] + SLOT_HDR, size, i);
    }

    /*
     * Correctness: the benchmark's op (a reused EVP context with an IV-only re-init, or ipsec-mb's
     * expanded key) against a fresh EVP context.
     */
    for (i = 0; i < 3; i++) {
        fill_hdr(slots[0], 1000 + i, SPI);
        reference_op(slots[0], size, ref_ct, ref_tag);
        if (inproc_op(&lib, slots[0], size) < 0)
            die("EVP encrypt failed");
        if (memcmp(slots[0] + SLOT_HDR, ref_ct, size) || memcmp(slots[0] + SLOT_HDR + size, ref_tag, TAG_LEN))
            die("in-place encrypt (%s) differs from a fresh EVP context", lib.ipsecmb ? "ipsec-mb" : "reused context");
    }

    warm_end = now_ns() + 100000000ull; /* 0.1 s warm-up, not counted */
    do {
        for (i = 0; i < INPROC_SLOTS; i++) {
            uint8_t *s = slots[i];
            fill_hdr(s, seq++, SPI);
            if (inproc_op(&lib, s, size) < 0)
                die("EVP encrypt failed");
        }
    } while (now_ns() < warm_end);

    t0 = now_ns();
    deadline = t0 + (uint64_t)(secs * 1e9);
    do {
        for (i = 0; i < INPROC_SLOTS; i++) {
            uint8_t *s = slots[i];
            fill_hdr(s, seq++, SPI);
            if (inproc_op(&lib, s, size) < 0)
                die("EVP encrypt failed");
        }
        ops += INPROC_SLOTS;
        t = now_ns();
    } while (t < deadline);

    /* Still right after the run. */
    fill_hdr(slots[1], 2000, SPI);
    reference_op(slots[1], size, ref_ct, ref_tag);
    if (inproc_op(&lib, slots[1], size) < 0)
        die("EVP encrypt failed");
    if (memcmp(slots[1] + SLOT_HDR, ref_ct, size) || memcmp(slots[1] + SLOT_HDR + size, ref_tag, TAG_LEN))
        die("in-place encrypt differs from a fresh EVP context after the timed run");
    inproc_close(&lib);
    free(ref_ct);
    free(mem);
    print_rate("inproc", size, ops, t - t0, lib.detail);
    return 0;
}

/* ---- ipsecmb-probe ---- */

static int cmd_ipsecmb_probe(int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        die("usage: ipsecmb-probe");
#ifdef BENCH_IPSECMB
    {
        struct imb_gcm g;
        char why[160];
        int ok = imb_gcm_open(&g, KEY, why, sizeof(why)) == 0;
        if (ok) {
            imb_gcm_close(&g);
            imb_kat();
        }
        printf("{\"mode\": \"ipsecmb-probe\", \"available\": %s, \"detail\": \"%s\", \"checked\": true}\n",
               ok ? "true" : "false", why);
    }
#else
    printf("{\"mode\": \"ipsecmb-probe\", \"available\": false, \"detail\": \"%s\", \"checked\": true}\n",
           NO_IPSECMB);
#endif
    fflush(stdout);
    return 0;
}

/* ---- inproc single-op latency (informational: the crypto part of a device round trip) ---- */

static void print_lat(const char *mode, const char *what, uint64_t *v, uint32_t n);

static int cmd_inproc_lat(int argc, char **argv)
{
    uint32_t size, n, i;
    uint8_t *slot;
    uint64_t *lat, seq = 1;
    EVP_CIPHER_CTX *ctx;
    char what[64];

    if (argc != 3)
        die("usage: inproc-lat SIZE N CPU");
    size = (uint32_t)parse_long(argv[0], "size", 1, MAX_SIZE);
    n = (uint32_t)parse_long(argv[1], "sample count", 100, 100000000);
    pin((int)parse_long(argv[2], "cpu", -1, CPU_SETSIZE - 1));
    gcm_kat();
    slot = aligned_alloc(128, slot_size(size));
    lat = malloc((size_t)n * sizeof(*lat));
    if (!slot || !lat)
        die("out of memory");
    memset(slot, 0, slot_size(size));
    fill_payload(slot + SLOT_HDR, size, 0);
    ctx = gcm_ctx(KEY);
    for (i = 0; i < WARMUP_OPS + n; i++) {
        uint64_t t0, t1;
        fill_hdr(slot, seq++, SPI);
        t0 = now_ns();
        if (gcm_encrypt(ctx, slot + IV_OFF, slot + AAD_OFF, AAD_LEN, slot + SLOT_HDR, slot + SLOT_HDR, size,
                        slot + SLOT_HDR + size) < 0)
            die("EVP encrypt failed");
        t1 = now_ns();
        if (i >= WARMUP_OPS)
            lat[i - WARMUP_OPS] = t1 - t0;
    }
    EVP_CIPHER_CTX_free(ctx);
    snprintf(what, sizeof(what), "aes-256-gcm-%u", size);
    print_lat("inproc-lat", what, lat, n);
    free(lat);
    free(slot);
    return 0;
}

/* ---- device ---- */

static int cmd_device(int argc, char **argv)
{
    const char *path;
    uint32_t size, burst, bursts, i, nd;
    double secs;
    struct gdev g;
    struct gslots sl;
    uint64_t seq = 1, ops = 0, t0 = 0, t = 0, t_last = 0, deadline = 0, warm_end, last_progress, spins = 0;
    int timing = 0;
    char extra[256];

    if (argc != 6)
        die("usage: device PATH SIZE BURST BURSTS SECONDS CPU");
    path = argv[0];
    size = (uint32_t)parse_long(argv[1], "size", 1, MAX_SIZE);
    burst = (uint32_t)parse_long(argv[2], "burst", 1, 256);
    bursts = (uint32_t)parse_long(argv[3], "bursts in flight", 1, 64);
    secs = parse_seconds(argv[4]);
    pin((int)parse_long(argv[5], "cpu", -1, CPU_SETSIZE - 1));
    gcm_kat();

    gdev_open(&g, path, 1);
    gslots_open(&sl, &g, size, burst, bursts);
    nd = sl.n < 3 ? sl.n : 3;
    for (i = 0; i < nd; i++)
        device_check(&g, sl.offs[i], size, 500 + i, SPI);

    /*
     * Pipelined loop: whenever a whole burst of slots is free, write their headers and submit them
     * as one burst; poll completions as they come. With BURSTS = 2 the backend works on one burst
     * while the guest refills the other.
     */
    last_progress = warm_end = now_ns();
    warm_end += 100000000ull; /* 0.1 s warm-up, not counted */
    for (;;) {
        unsigned got;

        while (sl.nfree >= burst && !(timing && t >= deadline))
            if (gslots_submit(&sl, &g, &seq, SPI) == 0)
                break;
        got = gslots_poll(&sl, &g);
        if (got) {
            t = now_ns();
            last_progress = t;
            if (timing) {
                if (t < deadline) {
                    ops += got;
                    t_last = t;
                } else if (synth_q_inflight(g.q) == 0) {
                    break; /* drained */
                }
            } else if (t >= warm_end) {
                timing = 1;
                t0 = t;
                deadline = t0 + (uint64_t)(secs * 1e9);
            }
            continue;
        }
        cpu_relax();
        if ((++spins & 4095) == 0) {
            if (synth_dev_needs_reset(g.dev))
                die("the device needs a reset (backend gone or ring error)");
            if (now_ns() - last_progress > STALL_NS)
                die("no completion for %llu s (%u in flight)", STALL_NS / 1000000000ull,
                    synth_q_inflight(g.q));
        }
    }
    for (i = 0; i < nd; i++) /* still right after the run */
        device_check(&g, sl.offs[i], size, 900 + i, SPI);
    snprintf(extra, sizeof(extra), ", \"burst\": %u, \"in_flight\": %u, \"backend\": \"%s\"", burst, sl.n,
             g.info.backend);
    gslots_close(&sl, &g);
    gdev_close(&g);
    if (ops == 0 || t_last <= t0)
        die("no op completed in the timed window");
    print_rate("device", size, ops, t_last - t0, extra);
    return 0;
}

/* ---- latency ---- */

static void print_lat(const char *mode, const char *what, uint64_t *v, uint32_t n)
{
    double sum = 0;
    uint32_t i;
    qsort(v, n, sizeof(*v), cmp_u64);
    for (i = 0; i < n; i++)
        sum += (double)v[i];
    printf("{\"mode\": \"%s\", \"op\": \"%s\", \"samples\": %u, \"min_ns\": %llu, \"p50_ns\": %llu, "
           "\"p90_ns\": %llu, \"p99_ns\": %llu, \"p999_ns\": %llu, \"max_ns\": %llu, \"mean_ns\": %.1f, "
           "\"checked\": true}\n",
           mode, what, n, (unsigned long long)v[0], (unsigned long long)v[(uint64_t)n * 50 / 100],
           (unsigned long long)v[(uint64_t)n * 90 / 100], (unsigned long long)v[(uint64_t)n * 99 / 100],
           (unsigned long long)v[(uint64_t)n * 999 / 1000], (unsigned long long)v[n - 1], sum / n);
    fflush(stdout);
}

static int cmd_rtt(int argc, char **argv)
{
    const char *path;
    uint32_t n, i, off, ssz = slot_size(RTT_SIZE);
    int nop = 0;
    struct gdev g;
    struct synth_desc d;
    struct synth_cpl c;
    uint64_t *lat, seq = 1;
    uint8_t *slot;

    if (argc != 3 && argc != 4)
        die("usage: rtt PATH N CPU [gcm|nop]");
    path = argv[0];
    n = (uint32_t)parse_long(argv[1], "sample count", 100, 100000000);
    pin((int)parse_long(argv[2], "cpu", -1, CPU_SETSIZE - 1));
    if (argc == 4) {
        if (!strcmp(argv[3], "nop"))
            nop = 1;
        else if (strcmp(argv[3], "gcm"))
            die("unknown op %s (gcm or nop)", argv[3]);
    }
    gcm_kat();
    lat = malloc((size_t)n * sizeof(*lat));
    if (!lat)
        die("out of memory");
    gdev_open(&g, path, 1);
    if (nop && !(g.info.features_accepted & SYNTH_F_NOP))
        die("the device does not serve NOP");
    off = gdev_alloc(&g, ssz);
    slot = synth_buf_ptr(g.q, off);
    memset(slot, 0, ssz);
    device_check(&g, off, RTT_SIZE, 77, SPI);
    fill_payload(slot + SLOT_HDR, RTT_SIZE, 0);

    if (nop) {
        memset(&d, 0, sizeof(d));
        d.opcode = SYNTH_OP_NOP;
    } else {
        slot_desc(&d, g.sess, off, RTT_SIZE, 0);
    }
    for (i = 0; i < WARMUP_OPS + n; i++) {
        uint64_t t0, t1, spins = 0;
        unsigned got;

        if (!nop)
            fill_hdr(slot, seq++, SPI); /* a new IV for every op, before the clock starts */
        d.cookie = i;
        t0 = now_ns();
        if (synth_q_submit_burst(g.q, &d, 1) != 1)
            die("submit refused (needs reset: %d)", synth_dev_needs_reset(g.dev));
        while ((got = synth_q_poll_burst(g.q, &c, 1)) == 0) {
            cpu_relax();
            if ((++spins & 65535) == 0 && now_ns() - t0 > STALL_NS)
                die("no completion for %llu s", STALL_NS / 1000000000ull);
        }
        t1 = now_ns();
        if (c.status != SYNTH_ST_OK || c.cookie != i || c.result != (nop ? 0 : RTT_SIZE))
            die("completion: status %u (%s), cookie %llu, result %u (want ok, %u, %u)", c.status,
                synth_status_str(c.status), (unsigned long long)c.cookie, c.result, i, nop ? 0 : RTT_SIZE);
        if (i >= WARMUP_OPS)
            lat[i - WARMUP_OPS] = t1 - t0;
    }
    if (!nop)
        device_check(&g, off, RTT_SIZE, 78, SPI);
    synth_buf_free(g.q, off, ssz);
    gdev_close(&g);
    print_lat("rtt", nop ? "nop" : "aes-256-gcm-64", lat, n);
    free(lat);
    return 0;
}

/* ---- raw ping-pong ---- */

/*
 * Two processes on two CPUs bounce a value through a MAP_SHARED file. Round i: A stores ask(i) in
 * its request word and spins until the response word holds reply(i); B spins until the request
 * word holds ask(i), then stores reply(i) in the response word.
 *   line:    request and response are one word of one cache line (ask 2i+1, reply 2i+2): the line
 *            goes back and forth, each side reading it and then writing it;
 *   mailbox: a word in a line of its own each way (128 bytes apart, so not an adjacent-line pair
 *            either; ask = reply = i+1): each side writes only its line and reads only the other's,
 *            as a driver and a device do with a submission and a completion ring.
 */
static inline uint64_t pp_ask(int mailbox, uint64_t i) { return mailbox ? i + 1 : 2 * i + 1; }
static inline uint64_t pp_reply(int mailbox, uint64_t i) { return mailbox ? i + 1 : 2 * i + 2; }

static int cmd_pingpong(int argc, char **argv)
{
    char path[4096];
    uint32_t n, i, total;
    int cpu_a, cpu_b, fd, status, mailbox = 0;
    _Atomic uint64_t *req, *resp, *ready;
    uint8_t *mem;
    uint64_t *lat;
    pid_t pid;

    if (argc != 4 && argc != 5)
        die("usage: pingpong DIR N CPU_A CPU_B [line|mailbox]");
    n = (uint32_t)parse_long(argv[1], "sample count", 100, 100000000);
    cpu_a = (int)parse_long(argv[2], "cpu", -1, CPU_SETSIZE - 1);
    cpu_b = (int)parse_long(argv[3], "cpu", -1, CPU_SETSIZE - 1);
    if (argc == 5) {
        if (!strcmp(argv[4], "mailbox"))
            mailbox = 1;
        else if (strcmp(argv[4], "line"))
            die("unknown ping-pong %s (line or mailbox)", argv[4]);
    }
    total = WARMUP_OPS + n;
    snprintf(path, sizeof(path), "%s/pingpong-XXXXXX", argv[0]);
    fd = mkstemp(path);
    if (fd < 0)
        die("mkstemp(%s): %s", path, strerror(errno));
    if (ftruncate(fd, 4096) < 0)
        die("ftruncate: %s", strerror(errno));
    mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    close(fd);
    req = (_Atomic uint64_t *)(void *)mem;
    resp = (_Atomic uint64_t *)(void *)(mem + (mailbox ? 256 : 0));
    ready = (_Atomic uint64_t *)(void *)(mem + 2048);   /* start flag, far away */
    lat = malloc((size_t)n * sizeof(*lat));
    if (!lat)
        die("out of memory");

    pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Peer: its own mapping of the same file, on the other CPU. */
        uint64_t k = 0, spins = 0, since = now_ns();
        uint8_t *m;
        prog_mode = "pingpong peer";
        munmap(mem, 4096);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            die("open(%s): %s", path, strerror(errno));
        m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            die("mmap: %s", strerror(errno));
        close(fd);
        req = (_Atomic uint64_t *)(void *)m;
        resp = (_Atomic uint64_t *)(void *)(m + (mailbox ? 256 : 0));
        ready = (_Atomic uint64_t *)(void *)(m + 2048);
        pin(cpu_b);
        atomic_store_explicit(ready, 1, memory_order_release);
        while (k < total) {
            if (atomic_load_explicit(req, memory_order_acquire) == pp_ask(mailbox, k)) {
                atomic_store_explicit(resp, pp_reply(mailbox, k), memory_order_release);
                k++;
                spins = 0;
                continue;
            }
            cpu_relax();
            if ((++spins & 65535) == 0) {
                uint64_t t = now_ns();
                if (spins == 65536)
                    since = t;
                else if (t - since > STALL_NS)
                    _exit(2);
            }
        }
        _exit(0);
    }
    pin(cpu_a);
    {
        uint64_t t0 = now_ns();
        while (!atomic_load_explicit(ready, memory_order_acquire)) {
            if (now_ns() - t0 > STALL_NS)
                die("the ping-pong peer did not start");
            usleep(100);
        }
    }
    unlink(path);
    for (i = 0; i < total; i++) {
        uint64_t want = pp_reply(mailbox, i), t0, t1, spins = 0;
        t0 = now_ns();
        atomic_store_explicit(req, pp_ask(mailbox, i), memory_order_release);
        while (atomic_load_explicit(resp, memory_order_acquire) != want) {
            cpu_relax();
            if ((++spins & 65535) == 0 && now_ns() - t0 > STALL_NS)
                die("the ping-pong peer stopped answering");
        }
        t1 = now_ns();
        if (i >= WARMUP_OPS)
            lat[i - WARMUP_OPS] = t1 - t0;
    }
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("the ping-pong peer failed (status 0x%x)", status);
    if (atomic_load(resp) != pp_reply(mailbox, total - 1))
        die("ping-pong response word is %llu, expected %llu", (unsigned long long)atomic_load(resp),
            (unsigned long long)pp_reply(mailbox, total - 1));
    munmap(mem, 4096);
    print_lat("pingpong", mailbox ? "mailbox" : "line", lat, n);
    free(lat);
    return 0;
}

/* ---- idle guest ---- */

static int cmd_idle_guest(int argc, char **argv)
{
    struct gdev g;
    char buf[256];

    if (argc != 1)
        die("usage: idle-guest PATH");
    gdev_open(&g, argv[0], 1);
    printf("{\"mode\": \"idle-guest\", \"attached\": true, \"session\": %u}\n", g.sess);
    fflush(stdout);
    /* Attached, not submitting: block until the driver of the benchmark closes our stdin. */
    while (read(0, buf, sizeof(buf)) > 0) {
    }
    if (synth_dev_needs_reset(g.dev))
        die("the device needs a reset after the idle window");
    gdev_close(&g);
    return 0;
}

int main(int argc, char **argv)
{
    prog_name = "crypto_bench";
    if (argc < 2) {
        fprintf(stderr, "usage: %s inproc|ipsecmb-probe|inproc-lat|device|rtt|pingpong|idle-guest ARGS... (see the source)\n", argv[0]);
        return 2;
    }
    prog_mode = argv[1];
    if (!strcmp(argv[1], "inproc"))
        return cmd_inproc(argc - 2, argv + 2);
    if (!strcmp(argv[1], "ipsecmb-probe"))
        return cmd_ipsecmb_probe(argc - 2, argv + 2);
    if (!strcmp(argv[1], "inproc-lat"))
        return cmd_inproc_lat(argc - 2, argv + 2);
    if (!strcmp(argv[1], "device"))
        return cmd_device(argc - 2, argv + 2);
    if (!strcmp(argv[1], "rtt"))
        return cmd_rtt(argc - 2, argv + 2);
    if (!strcmp(argv[1], "pingpong"))
        return cmd_pingpong(argc - 2, argv + 2);
    if (!strcmp(argv[1], "idle-guest"))
        return cmd_idle_guest(argc - 2, argv + 2);
    die("unknown mode %s", argv[1]);
}
