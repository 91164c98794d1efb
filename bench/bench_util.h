/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the C hot loops of bench/ (crypto_bench.c, compress_bench.c, packet_bench.c,
 * noisy_bench.c): fatal errors, the clock, CPU pinning, argument parsing. Each program sets
 * prog_name once and prog_mode to the mode it runs; die() names both.
 */
#ifndef SYNTH_BENCH_UTIL_H
#define SYNTH_BENCH_UTIL_H

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *prog_name = "bench";
static const char *prog_mode = "?";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s %s: error: ", prog_name, prog_mode);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Pin the calling thread to cpu (-1: leave it). */
static inline void pin(int cpu)
{
    cpu_set_t set;
    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        die("sched_setaffinity(cpu %d): %s", cpu, strerror(errno));
}

static inline long parse_long(const char *s, const char *what, long lo, long hi)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 0);
    if (errno || *end || v < lo || v > hi)
        die("bad %s %s (expected %ld..%ld)", what, s, lo, hi);
    return v;
}

static inline double parse_seconds(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || !(v > 0 && v < 3600))
        die("bad duration %s", s);
    return v;
}

/* qsort comparator of uint64_t. */
static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#endif /* SYNTH_BENCH_UTIL_H */
