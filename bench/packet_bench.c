/* SPDX-License-Identifier: Apache-2.0 */
/*
 * packet_bench: the hot loops of bench/packet (which compiles and drives this program).
 *
 *   packet_bench raw DIR SIZE BURST SECONDS CPU_TX CPU_RX SLOTS
 *                                                 two processes pass frames through an SPSC ring of
 *                                                 SLOTS slots in a MAP_SHARED file: the baseline
 *   packet_bench tx PATH SIZE BURST SECONDS CPU   send frames on channel 0 of a packet device until
 *                                                 SIGTERM (or SECONDS)
 *   packet_bench rx PATH SIZE BURST SECONDS CPU   receive them on channel 0 of its wire peer
 *
 * Each mode prints one JSON line on stdout (rx first prints {"ready": true} once its buffers are
 * posted); any failure prints a message on stderr and exits 1.
 *
 * The work per frame is the same on both paths. Frame = 14-byte Ethernet header (broadcast,
 * ethertype 0x88B5), a 64-bit sequence number at byte 14, and the sequence's low byte in the last
 * byte. The sender's payload is written once; per frame it writes the sequence number and the last
 * byte. The frame crosses once, whole: copied into the ring slot (raw) or by the backend from the
 * sender's arena into the receiver's posted buffer (device). The receiver checks the length, that
 * sequence numbers only go up (frames arrive in order; the device may drop, the raw ring cannot)
 * and the last byte, in place.
 *
 * Scheduling. The receivers call sched_yield() when nothing has arrived, the raw producer when its
 * ring is full, and the device sender when a completion reports a drop (the receiver ran out of
 * posted buffers: it is behind): two processes sharing a CPU then hand it over instead of spinning
 * out their time slices. The device sender keeps at most 4 bursts in flight, enough to keep the
 * backend busy, few enough that it learns of drops within ~128 frames.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "synth/guest.h"

#include "bench_util.h"

#define SEQ_OFF 14u
#define MIN_SIZE 24u
static uint32_t raw_slots; /* of the raw ring, a power of two */
#define WARMUP_NS 200000000ull
#define FIRST_FRAME_NS 10000000000ull
#define MAX_BURST 256u
#define STALL_NS 10000000000ull /* no progress for this long: give up */


/* ---- the frame ---- */

static void frame_init(uint8_t *f, uint32_t size)
{
    static const uint8_t hdr[14] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5};
    uint32_t i;
    memcpy(f, hdr, sizeof(hdr));
    for (i = sizeof(hdr); i < size; i++)
        f[i] = (uint8_t)(i * 13u);
}

static inline void frame_stamp(uint8_t *f, uint32_t size, uint64_t seq)
{
    memcpy(f + SEQ_OFF, &seq, sizeof(seq));
    f[size - 1] = (uint8_t)seq;
}

/* The frame's sequence number if it is well formed, else die. */
static inline uint64_t frame_check(const uint8_t *f, uint32_t len, uint32_t size)
{
    uint64_t seq;
    if (len != size)
        die("received a %u-byte frame, expected %u", len, size);
    memcpy(&seq, f + SEQ_OFF, sizeof(seq));
    if (f[size - 1] != (uint8_t)seq || f[12] != 0x88 || f[13] != 0xb5)
        die("corrupt frame (sequence %llu)", (unsigned long long)seq);
    return seq;
}

static void print_rate(const char *mode, uint32_t size, uint32_t burst, uint64_t frames, uint64_t ns,
                       const char *extra)
{
    double s = (double)ns / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"mode\": \"%s\", \"size\": %u, \"burst\": %u, \"frames\": %llu, \"seconds\": %.6f, "
           "\"mpps\": %.4f, \"gbps\": %.4f, \"voluntary_switches\": %ld, \"involuntary_switches\": %ld, "
           "\"checked\": true%s}\n",
           mode, size, burst, (unsigned long long)frames, s, (double)frames / s / 1e6,
           (double)frames * size * 8.0 / s / 1e9, ru.ru_nvcsw, ru.ru_nivcsw, extra ? extra : "");
    fflush(stdout);
}

/* ---- raw SPSC ring between two processes ---- */

struct raw_ring {
    _Alignas(128) _Atomic uint32_t prod;
    _Alignas(128) _Atomic uint32_t cons;
    _Alignas(128) _Atomic uint32_t go;   /* the consumer is ready */
    _Atomic uint32_t done;               /* the consumer has its figure: the producer stops */
    _Alignas(128) uint8_t slots[];
};

static void raw_producer(struct raw_ring *r, uint32_t slot, uint32_t size, uint32_t burst, uint64_t end_ns)
{
    uint8_t *tmpl = aligned_alloc(64, (slot + 63u) & ~63u);
    uint32_t prod = 0, cons = 0, i;
    uint64_t seq = 1;

    if (!tmpl)
        die("out of memory");
    frame_init(tmpl, size);
    while (!atomic_load_explicit(&r->go, memory_order_acquire))
        sched_yield();
    while (!atomic_load_explicit(&r->done, memory_order_relaxed) && now_ns() < end_ns) {
        uint32_t free_slots = raw_slots - (prod - cons), k;
        if (free_slots < burst) {
            cons = atomic_load_explicit(&r->cons, memory_order_acquire);
            free_slots = raw_slots - (prod - cons);
            if (free_slots == 0) {
                sched_yield();
                continue;
            }
        }
        k = free_slots < burst ? free_slots : burst;
        for (i = 0; i < k; i++) {
            uint8_t *s = r->slots + (size_t)((prod + i) & (raw_slots - 1)) * slot;
            memcpy(s, tmpl, size);
            frame_stamp(s, size, seq++);
        }
        prod += k;
        atomic_store_explicit(&r->prod, prod, memory_order_release);
    }
    free(tmpl);
}

static void raw_consumer(struct raw_ring *r, uint32_t slot, uint32_t size, uint32_t burst, double secs)
{
    uint32_t cons = 0, prod = 0, i;
    uint64_t expect = 1, frames = 0, t = 0, t0 = 0, t_last = 0, warm_end, deadline = 0, last_progress;
    int timing = 0;
    char extra[64];

    atomic_store_explicit(&r->go, 1, memory_order_release);
    last_progress = now_ns();
    warm_end = last_progress + WARMUP_NS;
    for (;;) {
        uint32_t k;
        if (prod == cons) {
            prod = atomic_load_explicit(&r->prod, memory_order_acquire);
            if (prod == cons) {
                sched_yield();
                if (now_ns() - last_progress > STALL_NS)
                    die("the producer stopped");
                continue;
            }
        }
        k = prod - cons < burst ? prod - cons : burst;
        for (i = 0; i < k; i++) {
            const uint8_t *s = r->slots + (size_t)((cons + i) & (raw_slots - 1)) * slot;
            if (frame_check(s, size, size) != expect)
                die("raw ring: expected sequence %llu", (unsigned long long)expect);
            expect++;
        }
        cons += k;
        atomic_store_explicit(&r->cons, cons, memory_order_release);
        last_progress = t = now_ns();
        if (!timing) {
            if (t >= warm_end) {
                timing = 1;
                t0 = t;
                deadline = t0 + (uint64_t)(secs * 1e9);
            }
        } else if (t < deadline) {
            frames += k;
            t_last = t;
        } else {
            break;
        }
    }
    atomic_store_explicit(&r->done, 1, memory_order_relaxed);
    snprintf(extra, sizeof(extra), ", \"slots\": %u", raw_slots);
    if (frames == 0 || t_last <= t0)
        die("no frame in the timed window");
    print_rate("raw", size, burst, frames, t_last - t0, extra);
}

static int cmd_raw(int argc, char **argv)
{
    char path[512];
    uint32_t size, burst, slot;
    double secs;
    int cpu_p, cpu_c, fd, status;
    size_t bytes;
    struct raw_ring *r;
    pid_t pid;

    if (argc != 7)
        die("usage: raw DIR SIZE BURST SECONDS CPU_TX CPU_RX SLOTS");
    size = (uint32_t)parse_long(argv[1], "size", MIN_SIZE, SYNTH_PKT_MAX_FRAME);
    burst = (uint32_t)parse_long(argv[2], "burst", 1, MAX_BURST);
    secs = parse_seconds(argv[3]);
    cpu_p = (int)parse_long(argv[4], "cpu", -1, CPU_SETSIZE - 1);
    cpu_c = (int)parse_long(argv[5], "cpu", -1, CPU_SETSIZE - 1);
    raw_slots = (uint32_t)parse_long(argv[6], "slot count", 8, 1 << 16);
    if (raw_slots & (raw_slots - 1))
        die("the slot count must be a power of two");
    slot = (size + 63u) & ~63u;
    bytes = sizeof(struct raw_ring) + (size_t)raw_slots * slot;
    snprintf(path, sizeof(path), "%s/raw-ring-%d", argv[0], (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    unlink(path);
    if (ftruncate(fd, (off_t)bytes) < 0)
        die("ftruncate: %s", strerror(errno));
    r = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (r == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    close(fd);
    pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        prog_mode = "raw (producer)";
        pin(cpu_p);
        raw_producer(r, slot, size, burst, now_ns() + (uint64_t)(secs * 1e9) + STALL_NS);
        _exit(0);
    }
    pin(cpu_c);
    raw_consumer(r, slot, size, burst, secs);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("the producer failed");
    return 0;
}

/* ---- device ---- */

struct chan {
    struct synth_dev *dev;
    struct synth_pkt_chan *ch;
};

static void chan_open(struct chan *c, const char *path, uint32_t size)
{
    struct synth_pkt_chan_opts o;
    struct synth_dev_info info;
    int rc = synth_dev_open_path(path, NULL, &c->dev);

    if (rc < 0)
        die("synth_dev_open_path(%s): %s", path, strerror(-rc));
    synth_dev_get_info(c->dev, &info);
    if (info.dev_class != SYNTH_CLASS_PACKET)
        die("%s is not a packet device (class %u)", path, info.dev_class);
    memset(&o, 0, sizeof(o));
    o.buf_size = (size + 63u) & ~63u; /* buffers as small as the frames: a smaller working set */
    rc = synth_pkt_chan_open(c->dev, 0, &o, &c->ch);
    if (rc < 0)
        die("synth_pkt_chan_open: %s", strerror(-rc));
}

static void chan_close(struct chan *c)
{
    synth_pkt_chan_close(c->ch);
    synth_dev_close(c->dev);
}

static volatile sig_atomic_t stop_flag;

static void on_term(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Write every transmit buffer's payload once: per frame only the sequence number changes. */
static void tx_prefill(struct synth_pkt_chan *ch, uint32_t size)
{
    struct synth_pkt_chan_stats st;
    struct synth_pkt *all;
    uint32_t n, i;

    synth_pkt_chan_get_stats(ch, &st);
    all = calloc(st.tx_free ? st.tx_free : 1, sizeof(*all));
    if (!all)
        die("out of memory");
    n = synth_pkt_tx_alloc(ch, all, st.tx_free);
    for (i = 0; i < n; i++)
        frame_init(all[i].data, size);
    synth_pkt_tx_free(ch, all, n);
    free(all);
}

static int cmd_tx(int argc, char **argv)
{
    struct synth_pkt pkts[MAX_BURST];
    struct synth_pkt_chan_stats st;
    struct chan c;
    uint32_t size, burst, i, n, k;
    uint64_t seq = 1, sent = 0, yields = 0, dropped_seen = 0, t0, end, spins = 0;
    uint64_t max_inflight;
    double secs;
    char extra[256];

    if (argc != 5)
        die("usage: tx PATH SIZE BURST SECONDS CPU");
    size = (uint32_t)parse_long(argv[1], "size", MIN_SIZE, SYNTH_PKT_MAX_FRAME);
    burst = (uint32_t)parse_long(argv[2], "burst", 1, MAX_BURST);
    secs = parse_seconds(argv[3]);
    pin((int)parse_long(argv[4], "cpu", -1, CPU_SETSIZE - 1));
    max_inflight = 4ull * burst;
    chan_open(&c, argv[0], size);
    tx_prefill(c.ch, size);
    signal(SIGTERM, on_term);
    t0 = now_ns();
    end = t0 + (uint64_t)(secs * 1e9);
    while (((++spins & 63) || now_ns() < end) && !stop_flag) {
        synth_pkt_tx_reclaim(c.ch);
        synth_pkt_chan_get_stats(c.ch, &st);
        if (st.tx_dropped != dropped_seen) {
            /* The receiver ran out of buffers: it is behind (it may share this CPU), let it run. */
            dropped_seen = st.tx_dropped;
            yields++;
            sched_yield();
            continue;
        }
        /* A few bursts in flight keep the backend busy; more would only delay the drop signal. */
        if (sent - st.tx_ok - st.tx_dropped + burst > max_inflight) {
            cpu_relax();
            continue;
        }
        n = synth_pkt_tx_alloc(c.ch, pkts, burst);
        for (i = 0; i < n; i++) {
            frame_stamp(pkts[i].data, size, seq + i);
            pkts[i].len = size;
        }
        k = n ? synth_pkt_send_packets(c.ch, pkts, n) : 0;
        seq += k;
        sent += k;
        if (k < n)
            synth_pkt_tx_free(c.ch, pkts + k, n - k);
    }
    {
        uint64_t deadline = now_ns() + 2000000000ull;
        do {
            synth_pkt_tx_reclaim(c.ch);
            synth_pkt_chan_get_stats(c.ch, &st);
        } while (st.tx_ok + st.tx_dropped < sent && now_ns() < deadline);
    }
    if (st.tx_ok + st.tx_dropped != sent)
        die("%llu frames sent, %llu completed", (unsigned long long)sent,
            (unsigned long long)(st.tx_ok + st.tx_dropped));
    snprintf(extra, sizeof(extra), ", \"delivered\": %llu, \"dropped\": %llu, \"yields\": %llu",
             (unsigned long long)st.tx_ok, (unsigned long long)st.tx_dropped, (unsigned long long)yields);
    print_rate("tx", size, burst, sent, now_ns() - t0, extra);
    chan_close(&c);
    return 0;
}

static int cmd_rx(int argc, char **argv)
{
    struct synth_pkt pkts[MAX_BURST];
    struct chan c;
    uint32_t size, burst, i, n;
    uint64_t stretches = 0, got_since_idle = 0, last_progress = 0;
    uint64_t last = 0, frames = 0, gaps = 0, yields = 0, t, t0 = 0, t_last = 0, deadline = 0, warm_end, start;
    double secs;
    int timing = 0;
    char extra[256];

    if (argc != 5)
        die("usage: rx PATH SIZE BURST SECONDS CPU");
    size = (uint32_t)parse_long(argv[1], "size", MIN_SIZE, SYNTH_PKT_MAX_FRAME);
    burst = (uint32_t)parse_long(argv[2], "burst", 1, MAX_BURST);
    secs = parse_seconds(argv[3]);
    pin((int)parse_long(argv[4], "cpu", -1, CPU_SETSIZE - 1));
    chan_open(&c, argv[0], size);
    printf("{\"ready\": true}\n");
    fflush(stdout);
    start = now_ns();
    warm_end = 0;
    for (;;) {
        n = synth_pkt_give_me_packets(c.ch, pkts, burst);
        if (n == 0) {
            if (got_since_idle && timing)
                stretches++;
            got_since_idle = 0;
            yields++;
            sched_yield();
            t = now_ns();
            if (!warm_end && t - start > FIRST_FRAME_NS)
                die("no frame arrived within %llu s", FIRST_FRAME_NS / 1000000000ull);
            if (warm_end && t - last_progress > STALL_NS)
                die("frames stopped arriving");
            if (timing && t >= deadline)
                break;
            continue;
        }
        for (i = 0; i < n; i++) {
            uint64_t seq = frame_check(pkts[i].data, pkts[i].len, size);
            if (seq <= last)
                die("frame %llu arrived after %llu: out of order", (unsigned long long)seq,
                    (unsigned long long)last);
            gaps += seq - last - 1;
            last = seq;
        }
        synth_pkt_rx_free(c.ch, pkts, n);
        got_since_idle += n;
        last_progress = t = now_ns();
        if (!warm_end)
            warm_end = t + WARMUP_NS;
        if (!timing) {
            if (t >= warm_end) {
                timing = 1;
                t0 = t;
                deadline = t0 + (uint64_t)(secs * 1e9);
                gaps = 0;
            }
        } else if (t < deadline) {
            frames += n;
            t_last = t;
        } else {
            break;
        }
    }
    if (frames == 0 || t_last <= t0)
        die("no frame in the timed window");
    snprintf(extra, sizeof(extra), ", \"lost_in_window\": %llu, \"yields\": %llu, \"busy_stretches\": %llu",
             (unsigned long long)gaps, (unsigned long long)yields, (unsigned long long)stretches);
    print_rate("rx", size, burst, frames, t_last - t0, extra);
    chan_close(&c);
    return 0;
}

int main(int argc, char **argv)
{
    prog_name = "packet_bench";
    if (argc < 2)
        die("usage: packet_bench raw|tx|rx ... (see the source)");
    prog_mode = argv[1];
    if (!strcmp(argv[1], "raw"))
        return cmd_raw(argc - 2, argv + 2);
    if (!strcmp(argv[1], "tx"))
        return cmd_tx(argc - 2, argv + 2);
    if (!strcmp(argv[1], "rx"))
        return cmd_rx(argc - 2, argv + 2);
    die("unknown mode %s", argv[1]);
}
