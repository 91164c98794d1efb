/* SPDX-License-Identifier: Apache-2.0 */
/* The clock of service times: the TSC where the kernel keeps time with it (see host_pvt.h). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "host_pvt.h"
#include "synth/clock_pvt.h"

/*
 * The service time of a burst is read on the way from a guest's submission to its completion, so
 * it comes from the TSC (about 10 ns a read against 25 ns for clock_gettime in a KVM guest) where
 * the kernel itself keeps time with it; its rate is measured once against CLOCK_MONOTONIC.
 * Elsewhere ticks are nanoseconds from clock_gettime. Set up when the first device is.
 */
double synthi_ns_per_tick;

static void clock_init_once(void)
{
#if defined(__x86_64__)
    char src[16] = "";
    uint64_t n0, n1, c0, c1;
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");

    if (f) {
        if (!fgets(src, sizeof(src), f))
            src[0] = 0;
        fclose(f);
    }
    if (strcmp(src, "tsc\n") != 0)
        return;
    n0 = synthi_now_ns();
    c0 = __rdtsc();
    do
        n1 = synthi_now_ns();
    while (n1 - n0 < 2000000); /* 2 ms: the rate to about 1e-5 */
    c1 = __rdtsc();
    if (c1 > c0)
        synthi_ns_per_tick = (double)(n1 - n0) / (double)(c1 - c0);
#endif
}

void synthi_tick_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, clock_init_once);
}
