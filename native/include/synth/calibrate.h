/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Capacity calibration: how fast one plugin serves one algorithm on one core of this host, measured
 * in-process on host buffers (no device, no rings), so that the host inventory can say what a
 * worker core delivers. Used by libvirt_synth.inventory.plugins; results are cached there.
 *
 * Crypto plugins: encrypt bursts of SYNTH_CALIB_BURST ops of `size` bytes (16 bytes of AAD, IV
 * and tag of the algorithm's usual sizes) through the plugin's crypto_burst. Compression plugins:
 * one-shot compress of `size` bytes of semi-compressible text-like data at the plugin's default
 * level (the costlier direction), through comp_oneshot. Either way the loop runs for `millis`
 * milliseconds of wall time on the calling thread.
 */
#ifndef SYNTH_CALIBRATE_H
#define SYNTH_CALIBRATE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SYNTH_CALIB_BURST 32u      /* ops per crypto_burst call */
#define SYNTH_CALIB_MAX_SIZE 65536u /* largest op size */
#define SYNTH_CALIB_MAX_MILLIS 10000u

struct synth_calib_result {
    uint64_t ops;        /* operations completed with SYNTH_ST_OK */
    uint64_t bytes;      /* input bytes of those operations */
    uint64_t ns;         /* wall time of the measured loop */
    uint64_t burst_ns_max; /* slowest burst (crypto) or op (compression), ns */
    double gbps;         /* input bits per second / 1e9 */
    double ops_per_s;
    double latency_us;   /* mean time per op, microseconds (one core, no queueing) */
    uint32_t dev_class;  /* SYNTH_CLASS_* of the plugin */
    int32_t level;       /* compression: the level measured */
};

/*
 * Measure plugin `plugin` (a catalog name) serving `alg` (SYNTH_ALG_* for crypto plugins,
 * SYNTH_CALG_* for compression plugins) on `size`-byte ops for `millis` ms.
 * Returns 0 with *out filled, or:
 *   -ENOENT   no plugin of that name in the catalog
 *   -ENODEV   the plugin cannot run on this host (its probe failed)
 *   -ENOTSUP  the plugin does not serve alg, or its class cannot be calibrated (packet)
 *   -EINVAL   size 0 or above SYNTH_CALIB_MAX_SIZE, millis 0 or above SYNTH_CALIB_MAX_MILLIS, out NULL
 *   -ENOMEM   buffers or the session/context could not be allocated
 *   -EIO      an operation completed with an error status
 */
int synth_calibrate(const char *plugin, uint32_t alg, uint32_t size, uint32_t millis,
                    struct synth_calib_result *out);

/*
 * Measure packet I/O: two packet devices (region files calibrate-packet-a and -b, created in dir
 * and removed again) joined by a virtual wire; one end sends bursts of SYNTH_CALIB_BURST frames of
 * `size` bytes, the other takes them and posts its buffers again, for `millis` ms of wall time.
 * Both guests run on the calling thread and only the host's poll passes are timed, so the result
 * is the host's own work per frame on one core (the send of one device and the receive of the
 * other), without the cross-core traffic of guests on other CPUs. ops counts frames delivered.
 * Returns 0 with *out filled, -EINVAL (size outside SYNTH_PKT_MIN_FRAME..SYNTH_PKT_MAX_FRAME,
 * millis 0 or above SYNTH_CALIB_MAX_MILLIS, NULL arguments), -EEXIST (leftover region files),
 * -EIO (no frame arrived whole), or the error of creating, wiring or opening the devices.
 */
int synth_calibrate_packet(const char *dir, uint32_t size, uint32_t millis, struct synth_calib_result *out);

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_CALIBRATE_H */
