/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Known-answer vectors shared by the static test programs that run inside the test VM
 * (native/tests/afalg_kat.c, guest/st_crypto.c): NIST CAVP GCM (96-bit IV cases, as kept under
 * tests/data/vectors) and RFC 8439 section 2.8.2. Hex strings.
 */
#ifndef SYNTH_KAT_VECTORS_H
#define SYNTH_KAT_VECTORS_H

#include <stdint.h>

#include "synth/crypto_core.h"

struct kat {
    const char *name;
    uint32_t alg;
    const char *key, *iv, *aad, *pt, *ct, *tag;
};

/* The AEAD vectors, as initialisers: `static const struct kat kats[] = {SYNTH_KAT_AEAD, ...};` */
#define SYNTH_KAT_AEAD \
    {"nist-gcm-128", SYNTH_ALG_AES128_GCM, "c939cc13397c1d37de6ae0e1cb7c423c", "b3d8cc017cbb89b39e0f67e2", \
     "24825602bd12a984e0092d3e448eda5f", "c3b3c41f113a31b73d9a5cd432103069", "93fe7d9e9bfd10348a5606e5cafa7354", \
     "0032a1dc85f1c9786925a2e71d8272dd"}, \
    {"nist-gcm-256", SYNTH_ALG_AES256_GCM, "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b", \
     "ac93a1a6145299bde902f21a", "1e0889016f67601c8ebea4943bc23ad6", "2d71bcfa914e4ac045b2aa60955fad24", \
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"}, \
    {"rfc8439-2.8.2", SYNTH_ALG_CHACHA20_POLY1305, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", \
     "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7", \
     "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a204966204920636f756c6420" \
     "6f6666657220796f75206f6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73637265656e20776f756c" \
     "642062652069742e", \
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e" \
     "060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576" \
     "d26586cec64b6116", \
     "1ae10b594f09e26a7e902ecbd0600691"},

#endif /* SYNTH_KAT_VECTORS_H */
