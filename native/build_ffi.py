# SPDX-License-Identifier: Apache-2.0
"""cffi build script: the only FFI() of the project. Compiles the C core into
``libvirt_synth._native`` (host data path, plugins, guest library) at install time."""

from __future__ import annotations

import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = sorted(str(p.relative_to(HERE.parent)) for p in (HERE / "src").rglob("*.c"))

CDEF = """
/* device_core.h */
#define SYNTH_MAGIC ...
#define SYNTH_ABI_MAJOR ...
#define SYNTH_ABI_MINOR ...
#define SYNTH_HEADER_SIZE ...
#define SYNTH_PAGE_SIZE ...
#define SYNTH_MAX_QUEUES ...
#define SYNTH_MIN_RING_ENTRIES ...
#define SYNTH_MAX_RING_ENTRIES ...
#define SYNTH_MIN_REGION_SIZE ...
#define SYNTH_CLASS_CRYPTO ...
#define SYNTH_CLASS_COMPRESS ...
#define SYNTH_CLASS_PACKET ...
#define SYNTH_F_RING_V1 ...
#define SYNTH_F_GENERATION ...
#define SYNTH_F_NOP ...
#define SYNTH_DRV_ACKNOWLEDGE ...
#define SYNTH_DRV_DRIVER ...
#define SYNTH_DRV_FEATURES_OK ...
#define SYNTH_DRV_DRIVER_OK ...
#define SYNTH_DEV_READY ...
#define SYNTH_DEV_NEEDS_RESET ...
#define SYNTH_DEV_FAILED ...
#define SYNTH_DEVERR_NONE ...
#define SYNTH_DEVERR_FEATURES ...
#define SYNTH_DEVERR_SQ_INDEX ...
#define SYNTH_DEVERR_CQ_INDEX ...
#define SYNTH_DEVERR_BACKEND ...
#define SYNTH_OP_NOP ...
#define SYNTH_ST_OK ...
#define SYNTH_ST_INVALID ...
#define SYNTH_ST_AUTH_FAILED ...
#define SYNTH_ST_NO_SESSION ...
#define SYNTH_ST_NOT_SUPPORTED ...
#define SYNTH_ST_NO_SPACE ...
#define SYNTH_ST_NO_RESOURCES ...
#define SYNTH_ST_RETRY ...
#define SYNTH_ST_BAD_DATA ...
#define SYNTH_ST_DEVICE_ERROR ...
#define SYNTH_ST_MAX ...
#define SYNTH_RING_ENTRIES_OFF ...
#define SYNTH_CLASS_CFG_OFF ...
#define SYNTH_QUEUE_TABLE_OFF ...

struct synth_queue_info { uint64_t sq_off; uint64_t cq_off; uint64_t arena_off; uint64_t arena_size; };
struct synth_desc {
    uint64_t cookie; uint16_t opcode; uint16_t flags; uint32_t session;
    uint32_t src_off; uint32_t src_len; uint32_t dst_off; uint32_t dst_len;
    uint32_t aad_off; uint32_t aad_len; uint32_t iv_off; uint32_t tag_off; uint32_t arg[4];
};
struct synth_cpl { uint64_t cookie; uint32_t status; uint32_t result; };
struct synth_dev_header {
    uint64_t magic; uint16_t abi_major; uint16_t abi_minor; uint16_t dev_class; uint16_t num_queues;
    uint64_t region_size; uint64_t features_offered; uint32_t header_size; uint32_t queue_table_off;
    uint32_t ring_entries; uint16_t desc_size; uint16_t cpl_size; uint32_t class_cfg_off;
    uint32_t class_cfg_size; char device_name[32]; char backend[32]; uint32_t dev_status;
    uint32_t dev_error; uint32_t generation; uint32_t acked_epoch; uint64_t heartbeat;
    uint32_t drv_status; uint32_t drv_epoch; uint64_t features_accepted; uint8_t class_cfg[768];
    struct synth_queue_info queues[64];
    ...;
};
struct synth_ring_core { uint32_t prod; uint32_t cons; ...; };

/* crypto_core.h */
#define SYNTH_OP_CRYPTO_SESSION_CREATE ...
#define SYNTH_OP_CRYPTO_SESSION_DESTROY ...
#define SYNTH_OP_CRYPTO_ENCRYPT ...
#define SYNTH_OP_CRYPTO_DECRYPT ...
#define SYNTH_ALG_AES128_GCM ...
#define SYNTH_ALG_AES256_GCM ...
#define SYNTH_ALG_CHACHA20_POLY1305 ...
#define SYNTH_ALG_AES256_CBC_HMAC_SHA256 ...
#define SYNTH_ALG_HMAC_SHA256 ...
#define SYNTH_ALG_MAX ...
#define SYNTH_CRYPTO_MAX_KEY ...
#define SYNTH_CRYPTO_MAX_IV ...
#define SYNTH_CRYPTO_MAX_TAG ...
#define SYNTH_CRYPTO_F_SESSIONS ...
#define SYNTH_CRYPTO_F_OUT_OF_PLACE ...
struct synth_crypto_cfg { uint32_t max_sessions; uint32_t alg_mask; uint32_t max_aad_len; ...; };
struct synth_crypto_session_params {
    uint16_t alg; uint16_t key_len; uint8_t iv_len; uint8_t tag_len; uint16_t flags;
    uint8_t key[256];
};

/* plugin.h */
struct synth_plugin {
    uint32_t abi_version; uint32_t dev_class; const char *name; const char *description;
    int32_t priority;
    int (*probe)(char *why, size_t why_len);
    uint32_t (*alg_mask)(void);
    ...;
};
const struct synth_plugin *synth_plugin_openssl(void);

/* host.h */
#define SYNTH_MAX_BURST ...
struct synth_hdev;
struct synth_worker;
struct synth_hdev_params {
    const char *path; const char *name; uint32_t dev_class; uint32_t num_queues;
    uint64_t region_size; uint32_t ring_entries; uint32_t max_sessions;
    const struct synth_plugin *plugin; int32_t uid; int32_t gid; uint32_t mode; uint32_t generation;
};
struct synth_hdev_stats {
    uint64_t ops; uint64_t status[...]; uint64_t bytes_in; uint64_t bytes_out; uint64_t resets;
    uint64_t ring_errors; uint32_t sessions; uint32_t dev_status; uint32_t dev_error;
    uint32_t active; uint32_t generation;
    ...;
};
int synth_hdev_create(const struct synth_hdev_params *p, struct synth_hdev **out);
int synth_hdev_attach(const struct synth_hdev_params *p, struct synth_hdev **out);
void synth_hdev_destroy(struct synth_hdev *d, int unlink_region);
void synth_hdev_get_stats(const struct synth_hdev *d, struct synth_hdev_stats *st);
const char *synth_hdev_plugin_name(const struct synth_hdev *d);
unsigned synth_hdev_poll(struct synth_hdev *d);
struct synth_worker_params { int32_t cpu; uint32_t burst; uint32_t spin_us; uint32_t max_sleep_us; };
struct synth_worker_stats { uint64_t passes; uint64_t busy_passes; uint64_t sleeps; uint64_t ops; uint32_t devices; ...; };
int synth_worker_create(const struct synth_worker_params *p, struct synth_worker **out);
int synth_worker_add(struct synth_worker *w, struct synth_hdev *d);
int synth_worker_remove(struct synth_worker *w, struct synth_hdev *d);
void synth_worker_get_stats(const struct synth_worker *w, struct synth_worker_stats *st);
void synth_worker_destroy(struct synth_worker *w);

/* guest.h */
struct synth_dev;
struct synth_queue;
struct synth_dev_info {
    uint16_t dev_class; uint16_t abi_major; uint16_t abi_minor; uint16_t num_queues;
    uint32_t ring_entries; uint32_t generation; uint64_t region_size; uint64_t arena_size;
    uint64_t features_offered; uint64_t features_accepted; uint32_t dev_status; uint32_t dev_error;
    uint32_t crypto_alg_mask; uint32_t crypto_max_sessions; char name[32]; char backend[32];
};
struct synth_open_opts { uint64_t features; int32_t timeout_ms; ...; };
int synth_dev_open_path(const char *path, const struct synth_open_opts *opts, struct synth_dev **out);
int synth_dev_open_pci(const char *bdf, const struct synth_open_opts *opts, struct synth_dev **out);
int synth_pci_scan(char (*bdfs)[16], unsigned max);
void synth_dev_close(struct synth_dev *dev);
void synth_dev_get_info(const struct synth_dev *dev, struct synth_dev_info *info);
int synth_dev_reset(struct synth_dev *dev);
int synth_dev_needs_reset(const struct synth_dev *dev);
struct synth_queue *synth_dev_queue(struct synth_dev *dev, unsigned idx);
uint64_t synth_q_arena_size(const struct synth_queue *q);
void *synth_q_arena(struct synth_queue *q);
int64_t synth_buf_alloc(struct synth_queue *q, uint32_t size);
void synth_buf_free(struct synth_queue *q, uint32_t off, uint32_t size);
void *synth_buf_ptr(struct synth_queue *q, uint32_t off);
unsigned synth_q_submit_burst(struct synth_queue *q, const struct synth_desc *d, unsigned n);
unsigned synth_q_poll_burst(struct synth_queue *q, struct synth_cpl *c, unsigned n);
unsigned synth_q_inflight(const struct synth_queue *q);
int synth_q_wait(struct synth_queue *q, int timeout_ms);
int synth_q_exec(struct synth_queue *q, const struct synth_desc *d, struct synth_cpl *c, int timeout_ms);
int synth_crypto_session_create(struct synth_queue *q, const struct synth_crypto_session_params *p,
                                uint32_t *id);
int synth_crypto_session_destroy(struct synth_queue *q, uint32_t id);
int synth_crypto_op(struct synth_queue *q, uint16_t opcode, uint32_t session, uint32_t src_off,
                    uint32_t dst_off, uint32_t len, uint32_t aad_off, uint32_t aad_len,
                    uint32_t iv_off, uint32_t tag_off);
const char *synth_status_str(uint32_t status);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "libvirt_synth._native",
    """
    #include "synth/device_core.h"
    #include "synth/crypto_core.h"
    #include "synth/plugin.h"
    #include "synth/host.h"
    #include "synth/guest.h"
    """,
    sources=SOURCES,
    include_dirs=[str(HERE / "include")],
    libraries=["crypto", "pthread"],
    define_macros=[("_GNU_SOURCE", "1")],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wno-unused-function", "-fvisibility=hidden"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
