/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vault: one host-only file per device (mode 0600, in the daemon's state directory, never in
 * the region) holding what a restarted backend needs and the guest must not see:
 *   - per queue, the index up to which descriptors were taken and the cookie of each taken
 *     descriptor, so that operations in flight when a backend died complete with RETRY and the
 *     right cookie;
 *   - a class area: for crypto, every live session's parameters (keys included), its id
 *     generation and its IV counter.
 * It is a MAP_SHARED mapping of a file: stores survive the death of the process (not of the host;
 * neither do the VMs). Written only by the thread serving the device.
 */
#ifndef SYNTH_VAULT_PVT_H
#define SYNTH_VAULT_PVT_H

#include <stdint.h>

#include "synth/device_core.h"

#define SYNTH_VAULT_MAGIC 0x544c554156485453ULL /* "STHVAULT" */
#define SYNTH_VAULT_VERSION 1u

struct synth_vault_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t dev_class;
    uint32_t num_queues;
    uint32_t ring_entries;
    uint64_t class_off;   /* offset of the class area */
    uint64_t class_size;
    uint64_t queue_off;   /* offset of the queue area */
    uint64_t size;        /* file size */
};

struct synth_vault_queue {
    uint32_t taken;       /* descriptors taken from the submission ring (host's next index) */
    uint32_t pad;
    uint64_t cookies[];   /* ring_entries: cookie of the descriptor taken at index i */
};

struct synth_vault {
    int fd;
    uint8_t *base;
    uint64_t size;
    struct synth_vault_hdr *hdr;
    uint32_t queue_stride;
    int restored;         /* opened an existing vault of the same geometry */
};

/*
 * Open path, or create it if it does not exist (or does not match: then it is replaced), sized
 * for the geometry. *restored tells which. Returns 0 or -errno.
 */
int synthi_vault_open(struct synth_vault *v, const char *path, uint32_t dev_class, uint32_t num_queues,
                     uint32_t ring_entries, uint64_t class_size);
void synthi_vault_close(struct synth_vault *v, int unlink_path, const char *path);

static inline struct synth_vault_queue *synthi_vault_queue(const struct synth_vault *v, uint32_t q)
{
    return (struct synth_vault_queue *)(v->base + v->hdr->queue_off + (uint64_t)q * v->queue_stride);
}

static inline void *synthi_vault_class(const struct synth_vault *v) { return v->base + v->hdr->class_off; }

#endif /* SYNTH_VAULT_PVT_H */
