/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsynth: the guest library. A VNF links it (statically if it likes) to use synthetic devices;
 * no Python and no hardware driver are needed in the guest.
 *
 * Threading: a struct synth_dev may be shared by threads; a struct synth_queue is single-producer
 * single-consumer, so use each queue (its rings and its arena buffers) from one thread at a time.
 * Give each thread its own queue.
 *
 * Return values: functions return 0 or a negative errno; the synchronous op helpers may also
 * return a positive SYNTH_ST_* status, the device's verdict on the operation.
 */
#ifndef SYNTH_GUEST_H
#define SYNTH_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "synth/crypto_core.h"
#include "synth/device_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SYNTH_PCI_VENDOR 0x1af4u  /* ivshmem */
#define SYNTH_PCI_DEVICE 0x1110u

struct synth_dev;
struct synth_queue;

struct synth_dev_info {
    uint16_t dev_class;
    uint16_t abi_major;
    uint16_t abi_minor;
    uint16_t num_queues;
    uint32_t ring_entries;
    uint32_t generation;
    uint64_t region_size;
    uint64_t arena_size;       /* per queue */
    uint64_t features_offered;
    uint64_t features_accepted;
    uint32_t dev_status;
    uint32_t dev_error;
    uint32_t crypto_alg_mask;  /* crypto devices: algorithms served */
    uint32_t crypto_max_sessions;
    char name[32];
    char backend[32];
};

struct synth_open_opts {
    uint64_t features;   /* features wanted; 0: every feature this library knows */
    int32_t timeout_ms;  /* how long to wait for the backend to acknowledge; 0: 5000 */
    uint32_t reserved;
};

/*
 * Open a device from its region file (host side: tests, the demo, tools).
 * Returns 0, -ENOENT, -EACCES, -EPROTO (not a synthetic device), -EPROTONOSUPPORT (ABI major
 * differs), -EINVAL (inconsistent layout), -ETIMEDOUT (no backend serves the region),
 * -ENOTSUP (the backend refused the features), -ENOMEM.
 */
int synth_dev_open_path(const char *path, const struct synth_open_opts *opts, struct synth_dev **out);

/*
 * Open a device by PCI address ("0000:00:05.0") inside a VM: checks vendor/device 1af4:1110, enables
 * the device if needed, maps BAR2 (sysfs resource2) and checks the magic. Errors as above, plus
 * -ENODEV (not an ivshmem device).
 */
int synth_dev_open_pci(const char *bdf, const struct synth_open_opts *opts, struct synth_dev **out);

/*
 * List synthetic devices on the PCI bus: up to max addresses into bdfs (each 16 bytes,
 * NUL-terminated), ivshmem devices whose BAR2 starts with the magic. Returns the number found
 * (which may exceed max) or a negative errno.
 */
int synth_pci_scan(char (*bdfs)[16], unsigned max);

/*
 * synth_pci_scan, keeping only the devices of dev_class (SYNTH_CLASS_*; 0: every class), as the
 * header of each BAR says. Nothing is opened: a driver looking for a class, such as the OpenSSL
 * provider's `device = auto`, so never handshakes with (and takes over) a device of another
 * class that another program drives.
 */
int synth_pci_scan_class(char (*bdfs)[16], unsigned max, uint16_t dev_class);

/*
 * Claim a device for this process before opening it: an open-file-description lock on the first
 * byte of its region file (device is a path) or of its BAR's sysfs file (a PCI address), which the
 * kernel drops when the process exits. A device has one driver at a time and a second open takes
 * it over, so drivers that several processes may run at once (the OpenSSL provider, the DPDK PMD)
 * claim first. (Backends hold flock() on regions; the two kinds of lock do not meet.) Returns a
 * descriptor (close it to let the device go), -EBUSY if another process holds the claim, or
 * another negative errno if the file cannot be opened or locked (-ENOENT, -EACCES, -ENOLCK, ...).
 */
int synth_dev_claim(const char *device);

/* Close: tell the backend (it drops this driver's sessions), unmap. */
void synth_dev_close(struct synth_dev *dev);

void synth_dev_get_info(const struct synth_dev *dev, struct synth_dev_info *info);

/*
 * The device's class configuration block (SYNTH_CLASS_CFG_SIZE bytes of the header, written by the
 * host: struct synth_crypto_cfg, struct synth_pkt_cfg, ...). Read it with relaxed loads: the host
 * may update counters in it at any time.
 */
const void *synth_dev_class_cfg(const struct synth_dev *dev);

/*
 * Reset the device (after NEEDS_RESET, or to drop all sessions): new epoch, handshake again.
 * Queues restart empty; in-flight operations are lost. Returns 0 or a negative errno as open.
 */
int synth_dev_reset(struct synth_dev *dev);

/* 1 if the backend marked the device NEEDS_RESET or FAILED. */
int synth_dev_needs_reset(const struct synth_dev *dev);

/* Queue idx (0..num_queues-1), or NULL. */
struct synth_queue *synth_dev_queue(struct synth_dev *dev, unsigned idx);

/* Arena of a queue: zero-copy buffers, addressed by offset. */
uint64_t synth_q_arena_size(const struct synth_queue *q);
void *synth_q_arena(struct synth_queue *q);

/*
 * Arena buffers start and end on SYNTH_BUF_ALIGN bytes: an adjacent-line prefetch pair, so that
 * two buffers never share one and a buffer the guest writes never drags a line of a buffer the
 * device writes between the two cores. Within a buffer the same holds for the caller's layout:
 * keep what the guest writes for each op 128 bytes apart from what the device writes.
 */
#define SYNTH_BUF_ALIGN 128u

/* Allocate size bytes (SYNTH_BUF_ALIGN aligned) from the queue's arena: offset, or -ENOMEM / -EINVAL. */
int64_t synth_buf_alloc(struct synth_queue *q, uint32_t size);
/* Return a buffer; off and size as allocated. */
void synth_buf_free(struct synth_queue *q, uint32_t off, uint32_t size);
/* Pointer to arena offset off (no check beyond off < arena size; NULL otherwise). */
void *synth_buf_ptr(struct synth_queue *q, uint32_t off);

/* Submit up to n descriptors; returns how many were taken (burst: partial is normal). */
unsigned synth_q_submit_burst(struct synth_queue *q, const struct synth_desc *d, unsigned n);
/* Take up to n completions; returns how many. */
unsigned synth_q_poll_burst(struct synth_queue *q, struct synth_cpl *c, unsigned n);
/* Operations submitted and not yet polled. */
unsigned synth_q_inflight(const struct synth_queue *q);

/*
 * Wait until at least one completion is ready, up to timeout_ms (spin, then back off to sleeping).
 * Returns 0, -ETIMEDOUT, or -EIO if the device needs a reset.
 */
int synth_q_wait(struct synth_queue *q, int timeout_ms);

/*
 * Synchronous: submit one descriptor and wait for its completion into *c. The queue must have
 * nothing in flight. Returns 0 (see c->status), -EBUSY (ops in flight), -ETIMEDOUT, or -EIO (the
 * device needs a reset, whether or not ops are in flight). A completion with RETRY (a backend
 * restart or a move to another host lost the operation) is not returned: the descriptor is
 * submitted again, up to 8 times. Burst users see RETRY and submit again themselves.
 */
int synth_q_exec(struct synth_queue *q, const struct synth_desc *d, struct synth_cpl *c, int timeout_ms);

/* ---- crypto class ---- */

/*
 * Create a session. The parameters are copied into a scratch arena buffer, which the backend wipes
 * after reading the key. Returns 0 with *id set, a positive SYNTH_ST_* (INVALID, NOT_SUPPORTED,
 * NO_RESOURCES), or a negative errno.
 */
int synth_crypto_session_create(struct synth_queue *q, const struct synth_crypto_session_params *p,
                                uint32_t *id);
/* Destroy a session: 0, SYNTH_ST_NO_SESSION, or a negative errno. */
int synth_crypto_session_destroy(struct synth_queue *q, uint32_t id);

/* Fill an encrypt/decrypt descriptor over arena offsets (dst_off == src_off: in place). */
static inline void synth_crypto_desc(struct synth_desc *d, uint16_t opcode, uint32_t session,
                                     uint32_t src_off, uint32_t dst_off, uint32_t len,
                                     uint32_t aad_off, uint32_t aad_len, uint32_t iv_off,
                                     uint32_t tag_off, uint64_t cookie)
{
    d->cookie = cookie;
    d->opcode = opcode;
    d->flags = 0;
    d->session = session;
    d->src_off = src_off;
    d->src_len = len;
    d->dst_off = dst_off;
    d->dst_len = len;
    d->aad_off = aad_off;
    d->aad_len = aad_len;
    d->iv_off = iv_off;
    d->tag_off = tag_off;
    d->arg[0] = d->arg[1] = d->arg[2] = 0;
    d->seq = 0; /* set by the library on submission */
}

/*
 * Synchronous encrypt/decrypt of len bytes at arena offsets. Returns 0, a positive SYNTH_ST_*
 * (AUTH_FAILED, NO_SESSION, INVALID, ...), or a negative errno.
 */
int synth_crypto_op(struct synth_queue *q, uint16_t opcode, uint32_t session, uint32_t src_off,
                    uint32_t dst_off, uint32_t len, uint32_t aad_off, uint32_t aad_len,
                    uint32_t iv_off, uint32_t tag_off);

/* Short text for a SYNTH_ST_* status. */
const char *synth_status_str(uint32_t status);

#ifdef __cplusplus
}
#endif

#include "synth/guest_packet.h"
#include "synth/guest_compress.h"

#endif /* SYNTH_GUEST_H */
