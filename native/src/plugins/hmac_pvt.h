/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HMAC-SHA-256 from SHA-256 states keyed once (RFC 2104: the key's inner and outer pads absorbed
 * at session creation), copied by value for each operation: what the openssl plugin computes its
 * MACs with, and the ipsec-mb plugin the MAC inputs no job takes. Not EVP_MAC: EVP_MAC_init and
 * EVP_MAC_CTX_dup allocate on every call in OpenSSL 3 (the provider duplicates its digest
 * contexts), and the per-op path must not. The low-level SHA-256 functions are deprecated in 3.0
 * but present, and they run the same accelerated code (SHA-NI, AVX2) as EVP.
 */
#ifndef SYNTH_HMAC_PVT_H
#define SYNTH_HMAC_PVT_H

#define OPENSSL_SUPPRESS_DEPRECATED
#include <stddef.h>
#include <stdint.h>

#include <openssl/sha.h>

struct synthi_hmac256 {
    SHA256_CTX inner, outer; /* key material: wipe with the session */
};

/*
 * Key h with key (a key longer than a block is hashed first). If ipad and opad are not NULL, the
 * two padded key blocks are also left there, for a library that absorbs them itself; the caller
 * wipes them. Returns 0, or -EINVAL if OpenSSL fails.
 */
int synthi_hmac256_key(struct synthi_hmac256 *h, const uint8_t *key, size_t key_len, uint8_t ipad[SHA256_CBLOCK],
                       uint8_t opad[SHA256_CBLOCK]);

/* The MAC of a || b || c (any of them empty) into mac[32]. Returns 1, or 0 if OpenSSL fails. */
int synthi_hmac256(const struct synthi_hmac256 *h, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                   const uint8_t *c, size_t c_len, uint8_t mac[SHA256_DIGEST_LENGTH]);

#endif /* SYNTH_HMAC_PVT_H */
