/* SPDX-License-Identifier: Apache-2.0 */
/* Guest library internals shared by its class files (guest.c, guest_compress.c, ...). */
#ifndef SYNTH_GUEST_PVT_H
#define SYNTH_GUEST_PVT_H

#include <stdint.h>

#include "synth/guest.h"

/*
 * Synchronous create of a class object (crypto session, compression stream) from a parameter
 * block: the block goes through a scratch arena buffer, which is wiped (it may hold a key) and
 * freed whatever happens. Returns 0 with *id set, a positive SYNTH_ST_*, or a negative errno.
 */
int synthi_q_create_from_params(struct synth_queue *q, uint16_t opcode, const void *params, uint32_t size,
                               uint32_t *id);

/* Synchronous destroy of a class object by id: 0, a positive SYNTH_ST_*, or a negative errno. */
int synthi_q_destroy_by_id(struct synth_queue *q, uint16_t opcode, uint32_t id);

#endif /* SYNTH_GUEST_PVT_H */
