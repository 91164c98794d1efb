/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest library, compression class: synchronous one-shot ops and streams over arena buffers.
 * Everything here is built on the generic queue calls of guest.c; see synth/guest_compress.h.
 */
#include <errno.h>
#include <string.h>

#include "synth/guest.h"
#include "synth/guest_compress.h"
#include "guest_pvt.h"

int synth_comp_get_cfg(const struct synth_dev *dev, struct synth_comp_cfg *cfg)
{
    struct synth_dev_info info;

    synth_dev_get_info(dev, &info);
    if (info.dev_class != SYNTH_CLASS_COMPRESS)
        return -ENODEV;
    memcpy(cfg, synth_dev_class_cfg(dev), sizeof(*cfg));
    return 0;
}

static int oneshot(struct synth_queue *q, uint16_t opcode, uint32_t alg, int32_t level, uint32_t src_off,
                   uint32_t src_len, uint32_t dst_off, uint32_t dst_len, uint32_t *out_len)
{
    struct synth_desc d;
    struct synth_cpl c;
    int rc;

    synth_comp_desc(&d, opcode, alg, level, src_off, src_len, dst_off, dst_len, 0);
    rc = synth_q_exec(q, &d, &c, 0);
    if (rc < 0)
        return rc;
    *out_len = c.status == SYNTH_ST_OK || c.status == SYNTH_ST_NO_SPACE ? c.result : 0;
    return (int)c.status;
}

int synth_comp_compress(struct synth_queue *q, uint32_t alg, int32_t level, uint32_t src_off, uint32_t src_len,
                        uint32_t dst_off, uint32_t dst_len, uint32_t *out_len)
{
    return oneshot(q, SYNTH_OP_COMP_COMPRESS, alg, level, src_off, src_len, dst_off, dst_len, out_len);
}

int synth_comp_decompress(struct synth_queue *q, uint32_t alg, uint32_t src_off, uint32_t src_len,
                          uint32_t dst_off, uint32_t dst_len, uint32_t *out_len)
{
    return oneshot(q, SYNTH_OP_COMP_DECOMPRESS, alg, 0, src_off, src_len, dst_off, dst_len, out_len);
}

int synth_comp_stream_create(struct synth_queue *q, const struct synth_comp_stream_params *p, uint32_t *id)
{
    return synthi_q_create_from_params(q, SYNTH_OP_COMP_STREAM_CREATE, p, sizeof(*p), id);
}

int synth_comp_stream_destroy(struct synth_queue *q, uint32_t id)
{
    return synthi_q_destroy_by_id(q, SYNTH_OP_COMP_STREAM_DESTROY, id);
}

int synth_comp_stream_op(struct synth_queue *q, uint32_t id, uint32_t flush, uint32_t src_off, uint32_t src_len,
                         uint32_t dst_off, uint32_t dst_len, uint32_t *out_len, uint16_t *flags)
{
    struct synth_desc d;
    struct synth_cpl c;
    int rc;

    synth_comp_stream_desc(&d, id, flush, src_off, src_len, dst_off, dst_len, 0);
    rc = synth_q_exec(q, &d, &c, 0);
    if (rc < 0)
        return rc;
    *out_len = c.status == SYNTH_ST_OK ? c.result : 0;
    *flags = c.status == SYNTH_ST_OK ? c.flags : 0;
    return (int)c.status;
}

int synth_comp_stream_feed(struct synth_queue *q, uint32_t id, uint32_t flush, uint32_t src_off, uint32_t src_len,
                           uint32_t dst_off, uint32_t dst_len, synth_comp_sink_fn sink, void *arg, uint16_t *flags)
{
    const uint8_t *out = synth_buf_ptr(q, dst_off);
    uint32_t n = 0;
    int rc;

    if (!out && dst_len)
        return -EINVAL;
    rc = synth_comp_stream_op(q, id, flush, src_off, src_len, dst_off, dst_len, &n, flags);
    for (;;) {
        if (rc != 0)
            return rc;
        if (n && sink(arg, out, n) != 0)
            return -ECANCELED;
        if (!(*flags & SYNTH_CPL_F_MORE))
            return 0;
        rc = synth_comp_stream_op(q, id, flush, src_off, 0, dst_off, dst_len, &n, flags);
    }
}
