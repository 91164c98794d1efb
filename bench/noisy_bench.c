/* SPDX-License-Identifier: Apache-2.0 */
/*
 * noisy_bench: the hot loops of bench/noisy (which compiles and drives this program).
 *
 *   noisy_bench flood PATH SIZE BURST BURSTS SECONDS CPU
 *       the noisy guest: keep BURSTS bursts of BURST encrypts of SIZE bytes in flight, as fast as
 *       the device completes them, until SECONDS have passed or SIGTERM/SIGINT arrives
 *   noisy_bench probe PATH N GAP_US SECONDS CPU [WORKER_TID]
 *       the victim guest: one 64 B encrypt, spin-poll its completion, record the round trip,
 *       nanosleep a random 0..2 x GAP_US (mean GAP_US); N samples or SECONDS, whichever first
 *   noisy_bench spin SECONDS CPU
 *       the flooder's use of the CPU without its device: keeps the CPU busy, touches no device
 *
 * flood prints {"event": "flooding"} once it is past its warm-up (the driver starts the probe
 * then), spin prints {"event": "spinning"}; both print one JSON result line when they stop.
 * probe prints one JSON result line. Any failure prints a message on stderr and exits 1.
 *
 * The op is bench/crypto's: AES-256-GCM, 12-byte IV (salt and a per-op counter, unique per op),
 * 8 bytes of AAD, in place, 16-byte tag after the payload. Slot layout in the queue's arena:
 *
 *   slot + 0    AAD (8 bytes)
 *   slot + 16   IV (12 bytes)
 *   slot + 64   payload (SIZE bytes), encrypted in place
 *   slot + 64 + SIZE   tag (16 bytes)
 *
 * Both modes check a few ops against in-process OpenSSL before and after their timed loop and
 * check the status of every completion, so a device that fails ops cannot look fast (or slow).
 *
 * The probe and the flooder share one CPU on a 2-CPU machine (the other runs the worker). A probe
 * sample is taken only while the probe holds the CPU: its clock starts after nanosleep returns, and
 * a sample during which the thread was preempted (its involuntary context switch count moved) is
 * counted as "preempted" and left out of the percentiles. Given WORKER_TID, the same holds for the
 * backend's worker thread: a sample during which the worker was switched out (its schedstat run
 * count moved: another task took its CPU, since a polling worker does not sleep while it has work
 * or within its spin window) is counted as "worker_switched" and left out. What the percentiles
 * show is the time the data path takes to answer, not the time either side waited for a CPU.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "synth/guest.h"

#include "bench_util.h"
#include "bench_gcm.h"

#define MAX_SIZE 65536u
#define PROBE_SIZE 64u
#define PROBE_WARMUP 500u
#define FLOOD_WARMUP_NS 100000000ull /* 0.1 s before "flooding" is announced */
#define STALL_NS 5000000000ull       /* no completion for this long: the device is stuck */
#define CHECK_SEQ (1ull << 62)         /* IV counters of the check ops: apart from the timed ops' */
#define FLOOD_SPI 0x4e                 /* the SPIs, hence IV salts, of the two guests (bench_gcm.h) */
#define PROBE_SPI 0x56

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* ---- flood ---- */

static int cmd_flood(int argc, char **argv)
{
    const char *path;
    uint32_t size, burst, bursts, i, nd;
    double secs;
    struct gdev g;
    struct gslots sl;
    uint64_t seq = 1, ops = 0, submits = 0, refused = 0, t = 0, t0 = 0, warm_end, deadline, last_progress, spins = 0;
    int timing = 0;
    struct sigaction sa;

    if (argc != 6)
        die("usage: flood PATH SIZE BURST BURSTS SECONDS CPU");
    path = argv[0];
    size = (uint32_t)parse_long(argv[1], "size", 1, MAX_SIZE);
    burst = (uint32_t)parse_long(argv[2], "burst", 1, 256);
    bursts = (uint32_t)parse_long(argv[3], "bursts in flight", 1, 64);
    secs = parse_seconds(argv[4]);
    pin((int)parse_long(argv[5], "cpu", -1, CPU_SETSIZE - 1));

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    gdev_open(&g, path, 1);
    gslots_open(&sl, &g, size, burst, bursts);
    nd = sl.n < 2 ? sl.n : 2;
    for (i = 0; i < nd; i++)
        device_check(&g, sl.offs[i], size, CHECK_SEQ + i, FLOOD_SPI);

    /* Whenever a whole burst of slots is free, submit it; take completions as they come. */
    last_progress = warm_end = now_ns();
    warm_end += FLOOD_WARMUP_NS;
    deadline = warm_end + (uint64_t)(secs * 1e9);
    for (;;) {
        unsigned got;
        int stopping = stop_flag || (timing && t >= deadline);

        while (sl.nfree >= burst && !stopping) {
            unsigned sent = gslots_submit(&sl, &g, &seq, FLOOD_SPI);
            submits++;
            if (sent < burst)
                refused++;
            if (sent == 0)
                break;
        }
        got = gslots_poll(&sl, &g);
        if (got) {
            t = last_progress = now_ns();
            if (timing) {
                ops += got;
            } else if (t >= warm_end) {
                timing = 1;
                t0 = t;
                printf("{\"event\": \"flooding\", \"backend\": \"%s\"}\n", g.info.backend);
                fflush(stdout);
            }
            continue;
        }
        if (stopping && synth_q_inflight(g.q) == 0)
            break;
        cpu_relax();
        if ((++spins & 1023) == 0) {
            t = now_ns();
            if (synth_dev_needs_reset(g.dev))
                die("the device needs a reset (backend gone or ring error)");
            if (t - last_progress > STALL_NS)
                die("no completion for %llu s (%u in flight)", STALL_NS / 1000000000ull, synth_q_inflight(g.q));
        }
    }
    t = now_ns();
    for (i = 0; i < nd; i++) /* still right after the flood */
        device_check(&g, sl.offs[i], size, CHECK_SEQ + 2 + i, FLOOD_SPI);
    gslots_close(&sl, &g);
    gdev_close(&g);
    if (!timing)
        die("stopped before the warm-up ended: nothing measured");
    {
        double s = (double)(t - t0) / 1e9;
        printf("{\"mode\": \"flood\", \"size\": %u, \"burst\": %u, \"in_flight\": %u, \"ops\": %llu, "
               "\"seconds\": %.6f, \"ops_per_s\": %.1f, \"gbps\": %.4f, \"submits\": %llu, \"refused\": %llu, "
               "\"backend\": \"%s\", \"checked\": true}\n",
               size, burst, sl.n, (unsigned long long)ops, s, (double)ops / s, (double)ops * size * 8.0 / s / 1e9,
               (unsigned long long)submits, (unsigned long long)refused, g.info.backend);
    }
    return 0;
}

/* ---- spin: the flooder's CPU use without the device (the control for "alone") ---- */

static int cmd_spin(int argc, char **argv)
{
    double secs;
    uint64_t t0, t, deadline, loops = 0;
    struct sigaction sa;

    if (argc != 2)
        die("usage: spin SECONDS CPU");
    secs = parse_seconds(argv[0]);
    pin((int)parse_long(argv[1], "cpu", -1, CPU_SETSIZE - 1));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("{\"event\": \"spinning\"}\n");
    fflush(stdout);
    t = t0 = now_ns();
    deadline = t0 + (uint64_t)(secs * 1e9);
    while (!stop_flag && t < deadline) {
        unsigned k;
        for (k = 0; k < 1024; k++)
            cpu_relax();
        loops++;
        t = now_ns();
    }
    printf("{\"mode\": \"spin\", \"seconds\": %.6f, \"loops\": %llu, \"checked\": true}\n",
           (double)(t - t0) / 1e9, (unsigned long long)loops);
    return 0;
}

/* ---- probe ---- */

static uint64_t pct(const uint64_t *v, uint32_t n, uint32_t per_mille)
{
    uint64_t i = (uint64_t)n * per_mille / 1000;
    return v[i < n ? i : n - 1];
}

static long ivcsw(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) < 0)
        die("getrusage: %s", strerror(errno));
    return ru.ru_nivcsw;
}

/* How many times the thread has been switched in (the third field of /proc/TID/schedstat). */
static uint64_t run_count(int fd)
{
    char buf[128];
    unsigned long long on_cpu, waited, count;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        die("reading the worker's schedstat: %s", n < 0 ? strerror(errno) : "empty");
    buf[n] = 0;
    if (sscanf(buf, "%llu %llu %llu", &on_cpu, &waited, &count) != 3)
        die("unexpected schedstat line: %s", buf);
    return count;
}

static int cmd_probe(int argc, char **argv)
{
    const char *path;
    uint32_t n, gap_us, i, kept = 0, preempted = 0, switched = 0, off, ssz = slot_size(PROBE_SIZE);
    int wfd = -1;
    double secs, sum = 0;
    struct gdev g;
    struct synth_desc d;
    struct synth_cpl c;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    uint64_t *lat, *all, seq = 1, t_start, deadline, t_end;
    uint32_t nall = 0;
    uint8_t *slot;

    if (argc != 5 && argc != 6)
        die("usage: probe PATH N GAP_US SECONDS CPU [WORKER_TID]");
    path = argv[0];
    n = (uint32_t)parse_long(argv[1], "sample count", 100, 100000000);
    gap_us = (uint32_t)parse_long(argv[2], "gap (us)", 0, 1000000);
    secs = parse_seconds(argv[3]);
    pin((int)parse_long(argv[4], "cpu", -1, CPU_SETSIZE - 1));
    if (argc == 6) {
        char sp[64];
        snprintf(sp, sizeof(sp), "/proc/%ld/schedstat", parse_long(argv[5], "worker thread id", 1, 1L << 30));
        wfd = open(sp, O_RDONLY | O_CLOEXEC);
        if (wfd < 0)
            die("open(%s): %s", sp, strerror(errno));
    }
    /* nanosleep(GAP_US) should last GAP_US, not GAP_US + the default 50 us timer slack. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

    lat = malloc((size_t)n * sizeof(*lat));
    all = malloc((size_t)n * sizeof(*all));
    if (!lat || !all)
        die("out of memory");
    gdev_open(&g, path, 1);
    off = gdev_alloc(&g, ssz);
    slot = synth_buf_ptr(g.q, off);
    memset(slot, 0, ssz);
    device_check(&g, off, PROBE_SIZE, CHECK_SEQ, PROBE_SPI);
    fill_payload(slot + SLOT_HDR, PROBE_SIZE, 0);
    slot_desc(&d, g.sess, off, PROBE_SIZE, 0);

    t_start = now_ns();
    deadline = t_start + (uint64_t)(secs * 1e9);
    for (i = 0; kept + preempted + switched < n; i++) {
        uint64_t t0, t1, spins = 0, w0 = 0, w1 = 0;
        long cs0, cs1;

        fill_hdr(slot, seq++, PROBE_SPI); /* a new IV for every op, before the clock starts */
        d.cookie = i;
        if (wfd >= 0)
            w0 = run_count(wfd);
        cs0 = ivcsw();
        t0 = now_ns();
        if (synth_q_submit_burst(g.q, &d, 1) != 1)
            die("submit refused (needs reset: %d)", synth_dev_needs_reset(g.dev));
        while (synth_q_poll_burst(g.q, &c, 1) == 0) {
            cpu_relax();
            if ((++spins & 65535) == 0 && now_ns() - t0 > STALL_NS)
                die("no completion for %llu s", STALL_NS / 1000000000ull);
        }
        t1 = now_ns();
        cs1 = ivcsw();
        if (wfd >= 0)
            w1 = run_count(wfd);
        if (c.status != SYNTH_ST_OK || c.cookie != i || c.result != PROBE_SIZE)
            die("completion: status %u (%s), cookie %llu, result %u (want ok, %u, %u)", c.status,
                synth_status_str(c.status), (unsigned long long)c.cookie, c.result, i, PROBE_SIZE);
        if (i >= PROBE_WARMUP) {
            all[nall++] = t1 - t0;
            if (cs1 != cs0) {
                preempted++; /* lost the CPU while waiting: not the backend's time */
            } else if (w1 != w0) {
                switched++; /* the worker lost its CPU meanwhile: not the data path's time */
            } else {
                lat[kept++] = t1 - t0;
                sum += (double)(t1 - t0);
            }
        }
        if (t1 >= deadline && kept >= 100)
            break;
        if (gap_us) {
            /*
             * A random pause, uniform in [0, 2 x GAP_US): with a fixed one the probe would lock onto the
             * flooder's rhythm (the flooder stops while the probe runs and restarts after it), and
             * sample the worker at the same phase of its bursts every time.
             */
            uint64_t ns;
            struct timespec ts;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ns = rng % (2ull * gap_us * 1000ull);
            ts.tv_sec = (time_t)(ns / 1000000000ull);
            ts.tv_nsec = (long)(ns % 1000000000ull);
            nanosleep(&ts, NULL);
        }
    }
    t_end = now_ns();
    if (wfd >= 0)
        close(wfd);
    device_check(&g, off, PROBE_SIZE, CHECK_SEQ + 1, PROBE_SPI);
    synth_buf_free(g.q, off, ssz);
    gdev_close(&g);
    if (kept < 100)
        die("only %u samples kept (%u preempted, %u with the worker switched out)", kept, preempted, switched);
    qsort(lat, kept, sizeof(*lat), cmp_u64);
    qsort(all, nall, sizeof(*all), cmp_u64);
    printf("{\"mode\": \"probe\", \"op\": \"aes-256-gcm-%u\", \"samples\": %u, \"preempted\": %u, "
           "\"worker_switched\": %u, "
           "\"gap_us\": %u, \"seconds\": %.6f, \"period_ns\": %.1f, "
           "\"min_ns\": %llu, \"p50_ns\": %llu, \"p90_ns\": %llu, \"p99_ns\": %llu, \"p999_ns\": %llu, "
           "\"max_ns\": %llu, \"mean_ns\": %.1f, \"all_p99_ns\": %llu, \"all_p999_ns\": %llu, "
           "\"backend\": \"%s\", \"checked\": true}\n",
           PROBE_SIZE, kept, preempted, switched, gap_us, (double)(t_end - t_start) / 1e9,
           (double)(t_end - t_start) / (double)(i + 1), (unsigned long long)lat[0],
           (unsigned long long)pct(lat, kept, 500), (unsigned long long)pct(lat, kept, 900),
           (unsigned long long)pct(lat, kept, 990), (unsigned long long)pct(lat, kept, 999),
           (unsigned long long)lat[kept - 1], sum / kept, (unsigned long long)pct(all, nall, 990),
           (unsigned long long)pct(all, nall, 999), g.info.backend);
    free(lat);
    free(all);
    return 0;
}

int main(int argc, char **argv)
{
    prog_name = "noisy_bench";
    if (argc < 2) {
        fprintf(stderr, "usage: %s flood|probe ARGS... (see the source)\n", argv[0]);
        return 2;
    }
    prog_mode = argv[1];
    if (!strcmp(argv[1], "flood"))
        return cmd_flood(argc - 2, argv + 2);
    if (!strcmp(argv[1], "probe"))
        return cmd_probe(argc - 2, argv + 2);
    if (!strcmp(argv[1], "spin"))
        return cmd_spin(argc - 2, argv + 2);
    die("unknown mode %s", argv[1]);
}
