/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host side of the compression class: the parameter block a backend passes when it lays out a
 * compression device (synth_hdev_params.class_params). Not part of the guest ABI: the guest sees
 * the resulting limits in struct synth_comp_cfg (compress_core.h).
 */
#ifndef SYNTH_COMPRESS_HOST_H
#define SYNTH_COMPRESS_HOST_H

#include <stdint.h>

#include "synth/compress_core.h"
#include "synth/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults (a field left 0 takes them) and bounds, checked by synth_hdev_create (-EINVAL). */
#define SYNTH_COMP_DEF_MAX_STREAMS 64u
#define SYNTH_COMP_MAX_MAX_STREAMS 4096u
#define SYNTH_COMP_DEF_MAX_CHUNK (1u << 20)
/*
 * A one-shot DECOMPRESS whose output does not fit decodes on, discarding, to report the size it
 * needs: at most this many times max_chunk (and never past max_stream_output). Beyond, LIMIT: a
 * bomb costs the worker a bounded time, and the driver can decompress it as a stream instead.
 */
#define SYNTH_COMP_COUNT_FACTOR 8u
#define SYNTH_COMP_MIN_MAX_CHUNK 4096u
#define SYNTH_COMP_MAX_MAX_CHUNK (64u << 20)
#define SYNTH_COMP_DEF_MAX_OUTPUT (1ULL << 30)
#define SYNTH_COMP_DEF_WINDOW_LOG 23u /* 8 MiB: what zstd levels up to 19 use */
#define SYNTH_COMP_MIN_WINDOW_LOG 10u
#define SYNTH_COMP_MAX_WINDOW_LOG 30u
#define SYNTH_COMP_DEF_STREAM_MEMORY (256ULL << 20)

struct synth_comp_host_params {
    uint32_t max_streams;        /* streams a device holds at once (0: 64) */
    uint32_t max_chunk;          /* longest src_len of an op, 4 KiB..64 MiB (0: 1 MiB) */
    uint64_t max_stream_output;  /* most output of one stream or one-shot count (0: 1 GiB) */
    uint64_t max_stream_memory;  /* host memory all streams of the device may hold (0: 256 MiB);
                                  * a STREAM_CREATE beyond it gets NO_RESOURCES */
    uint32_t zstd_window_log;    /* zstd window cap, 10..30 (0: 23) */
    uint32_t reserved;
    /* Per-algorithm pin (index SYNTH_CALG_*; NULL: the best usable built-in plugin). */
    const struct synth_plugin *plugin[SYNTH_CALG_MAX];
};

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_COMPRESS_HOST_H */
