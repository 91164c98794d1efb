/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host backend data path: lay out or attach a device region, serve it from worker threads.
 *
 * A device (struct synth_hdev) is one region file plus its class state (crypto sessions, ...).
 * A worker (struct synth_worker) is one thread polling the queues of the devices added to it.
 * A device belongs to at most one worker at a time; that is what lets class state go unlocked.
 * Nothing the guest writes can make these functions fail or crash: a device whose guest breaks
 * the ring protocol is marked NEEDS_RESET and skipped until its driver resets it.
 */
#ifndef SYNTH_HOST_H
#define SYNTH_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "synth/device_core.h"
#include "synth/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

struct synth_hdev;
struct synth_worker;

#define SYNTH_MAX_BURST 64u
#define SYNTH_LAT_BUCKETS 32u

/* Crypto class host parameters (synth_hdev_params.class_params). */
struct synth_crypto_host_params {
    /* Plugin per algorithm (index SYNTH_ALG_*); NULL: the best available one. */
    const struct synth_plugin *pins[SYNTH_ALG_MAX];
};

/* Per-device quotas, enforced in the data path; 0 means no limit. */
struct synth_quota {
    uint64_t ops_per_s;   /* operations per second */
    uint64_t bytes_per_s; /* payload bytes per second */
    uint32_t inflight;    /* descriptors taken from one queue per poll pass (the device's share of a worker) */
    uint32_t reserved;
};

/* A crypto device's session table when its parameters leave it 0. */
#define SYNTH_DEFAULT_MAX_SESSIONS 1024u

struct synth_hdev_params {
    const char *path;        /* region file, e.g. /dev/shm/synth-<uuid>-0 */
    const char *name;        /* device name written to the header (<= 31 chars) */
    uint32_t dev_class;      /* SYNTH_CLASS_* */
    uint32_t num_queues;     /* queue pairs */
    uint64_t region_size;    /* bytes, power of two */
    uint32_t ring_entries;   /* entries per ring, power of two */
    uint32_t max_sessions;   /* crypto: session table size (0: SYNTH_DEFAULT_MAX_SESSIONS) */
    const struct synth_plugin *plugin; /* serving plugin (NULL: the class default) */
    int32_t uid;             /* owner of the region file, -1 to keep */
    int32_t gid;             /* group of the region file, -1 to keep */
    uint32_t mode;           /* permission bits (0: 0600) */
    uint32_t generation;     /* attach: at least this generation (restart survival) */
    uint32_t class_params_size;
    const void *class_params; /* class-specific: struct synth_comp_host_params, ... (NULL: defaults) */
    const char *vault_path;   /* host-only state file (sessions, in-flight cookies); NULL: none */
    struct synth_quota quota;
};

struct synth_hdev_stats {
    uint64_t ops;                         /* completions written */
    uint64_t status[SYNTH_ST_MAX];        /* completions by status */
    uint64_t bytes_in;                    /* payload bytes of successful ops */
    uint64_t bytes_out;
    uint64_t resets;                      /* driver resets acted on */
    uint64_t ring_errors;                 /* times the device was marked NEEDS_RESET */
    uint32_t sessions;                    /* live sessions */
    uint32_t dev_status;                  /* SYNTH_DEV_* as last written by the host */
    uint32_t dev_error;                   /* SYNTH_DEVERR_* */
    uint32_t active;                      /* a driver is attached and the device is serving */
    uint32_t generation;
    uint32_t reserved;
    uint64_t throttled;                   /* poll passes that skipped the device for its quota */
    uint64_t retried;                     /* in-flight ops completed with RETRY after a re-attach */
    uint64_t restored_sessions;           /* sessions brought back from the vault at attach */
    uint64_t lat_hist[SYNTH_LAT_BUCKETS]; /* ops by service time: bucket b counts [2^b, 2^(b+1)) ns */
    uint64_t busy_ns;                     /* worker time spent processing this device's bursts */
    uint64_t lat_sum_ns;                  /* the ops' service times summed (each op counts its burst's) */
};

struct synth_hqueue_stats {
    uint64_t ops;
    uint64_t status[SYNTH_ST_MAX];
};

/* Counters of queue qi (0 on success, -EINVAL if there is no such queue). */
int synth_hdev_get_queue_stats(const struct synth_hdev *d, uint32_t qi, struct synth_hqueue_stats *st);

/*
 * Create a region file (which must not exist), allocate all its blocks, lay it out, and set up
 * its class state. The device holds an exclusive flock on the file until it is destroyed: one
 * backend per region. Returns 0 with *out set, or -errno: -EEXIST (file exists), -EINVAL (bad
 * parameters, see synth_layout_compute), -ENOSPC (the layout does not fit in region_size, or the
 * file system has no room for the region's blocks), -ENOTSUP (class without a plugin), -ENOMEM,
 * or the errno of open/ftruncate/fchown/posix_fallocate/mmap.
 */
int synth_hdev_create(const struct synth_hdev_params *p, struct synth_hdev **out);

/*
 * Attach to an existing region laid out by synth_hdev_create with the same parameters (a restarted
 * backend). The header identity and layout are rewritten from p, the generation counter is bumped
 * to max(p->generation, current + 1), and ring indices are taken over as the guest left them.
 * Returns 0 or -errno as synth_hdev_create (-ENOENT if the file does not exist, -EINVAL if its size
 * does not match, -EPROTO if it has no device header's magic, -EBUSY if another backend holds the
 * region's lock: it is served already).
 */
int synth_hdev_attach(const struct synth_hdev_params *p, struct synth_hdev **out);

/* Release the device: stop serving it if a worker still does, destroy sessions, unmap; unlink the
 * region file if unlink_region. */
void synth_hdev_destroy(struct synth_hdev *d, int unlink_region);

/* Change a served device's quotas; the worker picks them up at its next pass. */
void synth_hdev_set_quota(struct synth_hdev *d, const struct synth_quota *q);

/* Copy the device's counters (safe while a worker serves it). */
void synth_hdev_get_stats(const struct synth_hdev *d, struct synth_hdev_stats *st);

/* A live crypto session, as tools see it (no key material). */
struct synth_session_info {
    uint32_t id;
    uint16_t alg;      /* SYNTH_ALG_* */
    uint16_t flags;    /* SYNTH_CRYPTO_SF_* */
    char plugin[32];
};

/*
 * Up to max live sessions of a crypto device into out; returns how many the device has (which may
 * exceed max). A snapshot: sessions may come and go meanwhile. 0 for other classes.
 */
unsigned synth_hdev_sessions(const struct synth_hdev *d, struct synth_session_info *out, unsigned max);

/*
 * Compression devices: their streams at rest, as bytes another backend re-creates them from (a
 * migration; docs/migration.md). Only while no worker serves the device. Writes up to cap bytes
 * into buf and returns the bytes needed (call with cap 0 to size it); 0 for other classes.
 */
int64_t synth_hdev_export_streams(const struct synth_hdev *d, void *buf, uint64_t cap);
/*
 * Re-create the streams of synth_hdev_export_streams on this device before a worker serves it,
 * by replaying each stream's chunks into a new context of the same plugin. Returns how many
 * came back (the others' ids give NO_SESSION), or -EINVAL for a malformed buffer.
 */
int synth_hdev_import_streams(struct synth_hdev *d, const void *buf, uint64_t len);

/* Name of the plugin serving the device. */
const char *synth_hdev_plugin_name(const struct synth_hdev *d);

/*
 * Serve the device's queues once from the calling thread (tests, single-threaded tools): returns
 * the number of descriptors completed. Must not be called on a device owned by a worker.
 */
unsigned synth_hdev_poll(struct synth_hdev *d);

struct synth_worker_params {
    int32_t cpu;            /* CPU to pin the thread to, -1 for none */
    uint32_t burst;         /* descriptors per dequeue (1..SYNTH_MAX_BURST; 0: 32) */
    uint32_t spin_us;       /* keep polling this long after the last work (0: 50) */
    uint32_t max_sleep_us;  /* longest idle sleep (0: 1000) */
    uint32_t deep_sleep_us; /* longest idle sleep after a second without work (0: 10000) */
    int32_t nice;           /* the thread's nice value (0: as the process); a worker of its own
                             * for a device whose ops may run long yields its CPU to the others */
};

struct synth_worker_stats {
    uint64_t passes;        /* poll passes over all devices */
    uint64_t busy_passes;   /* passes that found work */
    uint64_t sleeps;        /* idle sleeps */
    uint64_t ops;           /* descriptors completed */
    uint32_t devices;
    uint32_t reserved;
    uint64_t region_faults; /* devices abandoned because their region file was truncated (SIGBUS) */
};

/* Start a worker thread. Returns 0, -EINVAL, -ENOMEM or the error of pthread_create. */
int synth_worker_create(const struct synth_worker_params *p, struct synth_worker **out);
/* Hand a device to the worker. Returns 0, -EBUSY (device served by a worker), -ENOMEM. */
int synth_worker_add(struct synth_worker *w, struct synth_hdev *d);
/* Take a device back; when this returns the worker no longer touches it. 0 or -ENOENT. */
int synth_worker_remove(struct synth_worker *w, struct synth_hdev *d);
void synth_worker_get_stats(const struct synth_worker *w, struct synth_worker_stats *st);
/*
 * Once every device of the worker has been idle for idle_ms (0: never, the default), the worker
 * parks: it sleeps without a timer, and one watcher thread of the process (`synth-watcher`,
 * started by the first call, at this worker's nice value and on its CPU) looks at the rings of
 * every parked worker's devices about every 7/8 deep_sleep_us, refreshes their heartbeats every
 * 50 ms, and wakes the worker when one has work: a first op after a long idle waits no longer than
 * with deep_sleep_us naps, and the parked worker costs no wake-ups meanwhile. A park counts as one
 * sleep. While no parked worker has a device, the watcher sleeps without a timer too. A worker
 * that serves a device whose work the rings do not show (a packet device with a TAP) does not park.
 * Returns 0 or the error of pthread_create (as -errno).
 */
int synth_worker_park_when_idle(struct synth_worker *w, uint32_t idle_ms);
/* 1 while the worker is parked (synth_worker_park_when_idle), else 0. */
int synth_worker_parked(const struct synth_worker *w);
/*
 * Rounds of looks the watcher thread has made: it advances every 7/8 deep_sleep_us while some
 * parked worker has a device, so a supervisor can tell a parked worker from a stalled one.
 */
uint64_t synth_worker_watch_rounds(void);
/* Stop and join the thread; devices still added are released from it (not destroyed). */
void synth_worker_destroy(struct synth_worker *w);

#ifdef __cplusplus
}
#endif

#endif /* SYNTH_HOST_H */
