/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AEAD entries of an inline plugin (issue 21): what a guest calls, in process, instead of a
 * round trip to the device. Freestanding C: the caller owns all memory, including the key block.
 *
 * Returns 0, -22 (EINVAL: a key that is not 16 or 32 bytes, a tag length other than 4, 8 or 12-16,
 * lengths beyond GCM's limits) or, from open, -74 (EBADMSG: the tag does not verify; nothing was
 * written to out). The IV is 12 bytes. out may be in; aad and the text may be empty (NULL with 0).
 */
#ifndef SYNTH_INLINE_GCM_H
#define SYNTH_INLINE_GCM_H

#include <stdint.h>

#define SGI_GCM_KEY_SIZE 512 /* bytes of the key block the caller provides, 16-byte aligned */

int sgi_gcm_init(void *key_block, const uint8_t *key, uint32_t key_len);
int sgi_gcm_seal(const void *key_block, const uint8_t iv[12], const uint8_t *aad, uint64_t aad_len,
                 const uint8_t *in, uint64_t len, uint8_t *out, uint8_t *tag, uint32_t tag_len);
int sgi_gcm_open(const void *key_block, const uint8_t iv[12], const uint8_t *aad, uint64_t aad_len,
                 const uint8_t *in, uint64_t len, uint8_t *out, const uint8_t *tag, uint32_t tag_len);

#endif /* SYNTH_INLINE_GCM_H */
