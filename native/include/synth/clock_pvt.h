/* SPDX-License-Identifier: Apache-2.0 */
/* The monotonic clock in nanoseconds, for the library's own timeouts, pacing and statistics. */
#ifndef SYNTH_CLOCK_PVT_H
#define SYNTH_CLOCK_PVT_H

#include <stdint.h>
#include <time.h>

static inline uint64_t synthi_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* SYNTH_CLOCK_PVT_H */
