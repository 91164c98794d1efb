/* SPDX-License-Identifier: Apache-2.0 */
/* HMAC-SHA-256 from keyed SHA-256 states (hmac_pvt.h). */
#include "hmac_pvt.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

int synthi_hmac256_key(struct synthi_hmac256 *h, const uint8_t *key, size_t key_len, uint8_t ipad[SHA256_CBLOCK],
                       uint8_t opad[SHA256_CBLOCK])
{
    uint8_t k[SHA256_CBLOCK] = {0}, in[SHA256_CBLOCK], out[SHA256_CBLOCK];
    int ok;
    size_t i;

    if (key_len > sizeof(k))
        SHA256(key, key_len, k); /* a key longer than a block is hashed first */
    else
        memcpy(k, key, key_len);
    for (i = 0; i < sizeof(k); i++) {
        in[i] = k[i] ^ 0x36;
        out[i] = k[i] ^ 0x5c;
    }
    ok = SHA256_Init(&h->inner) && SHA256_Update(&h->inner, in, sizeof(in)) && SHA256_Init(&h->outer) &&
         SHA256_Update(&h->outer, out, sizeof(out));
    if (ipad && opad) {
        memcpy(ipad, in, sizeof(in));
        memcpy(opad, out, sizeof(out));
    }
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(in, sizeof(in));
    OPENSSL_cleanse(out, sizeof(out));
    return ok ? 0 : -EINVAL;
}

int synthi_hmac256(const struct synthi_hmac256 *h, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                   const uint8_t *c, size_t c_len, uint8_t mac[SHA256_DIGEST_LENGTH])
{
    SHA256_CTX ctx = h->inner;
    uint8_t inner[SHA256_DIGEST_LENGTH];
    int ok = (!a_len || SHA256_Update(&ctx, a, a_len)) && (!b_len || SHA256_Update(&ctx, b, b_len)) &&
             (!c_len || SHA256_Update(&ctx, c, c_len)) && SHA256_Final(inner, &ctx);

    ctx = h->outer;
    ok = ok && SHA256_Update(&ctx, inner, sizeof(inner)) && SHA256_Final(mac, &ctx);
    OPENSSL_cleanse(&ctx, sizeof(ctx));
    OPENSSL_cleanse(inner, sizeof(inner));
    return ok;
}
