/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AES-128-GCM and AES-256-GCM for the inline path (issue 21): code that the host will hand a guest
 * in a signed plugin image, to run inside the VNF. This is its first CPU level, AES-NI with
 * PCLMULQDQ (and SSE4.1, which every CPU with AES-NI has).
 *
 * Freestanding: no libc, no imports, no data of its own (nothing to relocate), every call given the
 * memory it works in. Built with -ffreestanding and without the compiler's memcpy/memset patterns;
 * tests/test_inline_gcm.py checks that the object imports nothing.
 *
 * Constant time: the key schedule and the block cipher are the AES instructions, GHASH is carry-less
 * multiplication, and no branch or address depends on the key, the data or the tag. The only
 * branches are on lengths, which the caller gives in the clear. The tag is compared by accumulating
 * the differences of every byte; on a mismatch, open writes nothing at all (it authenticates the
 * ciphertext before it decrypts any of it).
 *
 * GHASH works on byte-reversed blocks ("reflected" order), in which the field multiplication is a
 * 128 x 128-bit carry-less product, a shift left by one and a reduction modulo x^128 + x^7 + x^2 +
 * x + 1 (the method of Gueron and Kounavis for PCLMULQDQ). Four blocks at a time: four counter blocks
 * through the AES rounds together, and four products with H^4..H summed before one reduction. The
 * wider level (VAES, VPCLMULQDQ) comes with the image builder.
 */

/* The level this file is built for, whatever the compiler was told (the Makefile says it too). */
#pragma GCC target("aes,pclmul,sse4.1")

#include <stddef.h>
#include <stdint.h>

#include <smmintrin.h>
#include <wmmintrin.h>

#include "inline_gcm.h"

#define EINVAL_ 22
#define EBADMSG_ 74

struct gcm_key {
    __m128i rk[15];  /* round keys */
    __m128i h[4];    /* the hash key H = E(K, 0) and H^2, H^3, H^4, byte-reversed */
    uint32_t rounds; /* 10 or 14 */
};

_Static_assert(sizeof(struct gcm_key) <= SGI_GCM_KEY_SIZE, "the caller's key block holds the schedule");

static inline __m128i bswap128(__m128i x)
{
    return _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

/* One step of the AES key schedule: k with its words xored together, plus the assist word t. */
static inline __m128i schedule_step(__m128i k, __m128i t)
{
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, t);
}

#define STEP128(i, rcon) \
    rk[i] = schedule_step(rk[(i) - 1], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i) - 1], rcon), 0xff))

static void schedule128(__m128i *rk, const uint8_t *key)
{
    rk[0] = _mm_loadu_si128((const __m128i *)key);
    STEP128(1, 0x01);
    STEP128(2, 0x02);
    STEP128(3, 0x04);
    STEP128(4, 0x08);
    STEP128(5, 0x10);
    STEP128(6, 0x20);
    STEP128(7, 0x40);
    STEP128(8, 0x80);
    STEP128(9, 0x1b);
    STEP128(10, 0x36);
}

/* AES-256: even round keys from the two before with RotWord+SubWord+rcon, odd ones with SubWord. */
#define STEP256_EVEN(i, rcon) \
    rk[i] = schedule_step(rk[(i) - 2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i) - 1], rcon), 0xff))
#define STEP256_ODD(i) \
    rk[i] = schedule_step(rk[(i) - 2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i) - 1], 0), 0xaa))

static void schedule256(__m128i *rk, const uint8_t *key)
{
    rk[0] = _mm_loadu_si128((const __m128i *)key);
    rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
    STEP256_EVEN(2, 0x01);
    STEP256_ODD(3);
    STEP256_EVEN(4, 0x02);
    STEP256_ODD(5);
    STEP256_EVEN(6, 0x04);
    STEP256_ODD(7);
    STEP256_EVEN(8, 0x08);
    STEP256_ODD(9);
    STEP256_EVEN(10, 0x10);
    STEP256_ODD(11);
    STEP256_EVEN(12, 0x20);
    STEP256_ODD(13);
    STEP256_EVEN(14, 0x40);
}

static inline __m128i encrypt_block(const struct gcm_key *k, __m128i b)
{
    uint32_t i;

    b = _mm_xor_si128(b, k->rk[0]);
    for (i = 1; i < k->rounds; i++)
        b = _mm_aesenc_si128(b, k->rk[i]);
    return _mm_aesenclast_si128(b, k->rk[k->rounds]);
}

/* The 256-bit carry-less product of a and b, into hi:lo (xored in: products add up unreduced). */
static inline void clmul_add(__m128i a, __m128i b, __m128i *lo, __m128i *hi)
{
    __m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x10), _mm_clmulepi64_si128(a, b, 0x01));

    *lo = _mm_xor_si128(*lo, _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x00), _mm_slli_si128(mid, 8)));
    *hi = _mm_xor_si128(*hi, _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x11), _mm_srli_si128(mid, 8)));
}

/*
 * hi:lo, a sum of products of byte-reversed elements, as one element of GF(2^128). Shift and
 * reduction are linear, so a sum of products costs one reduction (aggregated reduction).
 */
static inline __m128i reduce(__m128i lo, __m128i hi)
{
    __m128i carry_lo, carry_hi, carry_mid, t;

    /* Shifted left by one bit across all 256 (the reflected order's off-by-one). */
    carry_lo = _mm_srli_epi32(lo, 31);
    carry_hi = _mm_srli_epi32(hi, 31);
    lo = _mm_slli_epi32(lo, 1);
    hi = _mm_slli_epi32(hi, 1);
    carry_mid = _mm_srli_si128(carry_lo, 12);
    lo = _mm_or_si128(lo, _mm_slli_si128(carry_lo, 4));
    hi = _mm_or_si128(hi, _mm_slli_si128(carry_hi, 4));
    hi = _mm_or_si128(hi, carry_mid);

    /* Reduced modulo the field polynomial: first the words that fold into lo ... */
    t = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi32(lo, 31), _mm_slli_epi32(lo, 30)), _mm_slli_epi32(lo, 25));
    carry_mid = _mm_srli_si128(t, 4);
    lo = _mm_xor_si128(lo, _mm_slli_si128(t, 12));
    /* ... then lo folded into hi. */
    t = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi32(lo, 1), _mm_srli_epi32(lo, 2)), _mm_srli_epi32(lo, 7));
    t = _mm_xor_si128(t, carry_mid);
    return _mm_xor_si128(hi, _mm_xor_si128(lo, t));
}

/* a * b in GF(2^128), both byte-reversed; the result too. */
static inline __m128i gf_mul(__m128i a, __m128i b)
{
    __m128i lo = _mm_setzero_si128(), hi = _mm_setzero_si128();

    clmul_add(a, b, &lo, &hi);
    return reduce(lo, hi);
}

/*
 * Up to 16 bytes of p as a block, zero-padded. Assembled in registers: bytes stored to the stack
 * and read back as a vector stall the load (no store forwarding), which cost a short op (an 8-byte
 * AAD, the 12-byte IV) more than its AES.
 */
static inline __m128i load_partial(const uint8_t *p, size_t n)
{
    uint64_t lo = 0, hi = 0;
    size_t i = 0;

    if (n == 16)
        return _mm_loadu_si128((const __m128i *)p);
    if (n >= 8) {
        __builtin_memcpy(&lo, p, 8);
        for (i = 8; i < n; i++)
            hi |= (uint64_t)p[i] << (8 * (i - 8));
    } else {
        for (; i < n; i++)
            lo |= (uint64_t)p[i] << (8 * i);
    }
    return _mm_set_epi64x((long long)hi, (long long)lo);
}

static inline void store_partial(uint8_t *p, __m128i b, size_t n)
{
    uint64_t w = (uint64_t)_mm_cvtsi128_si64(b);
    size_t i;

    if (n == 16) {
        _mm_storeu_si128((__m128i *)p, b);
        return;
    }
    for (i = 0; i < n; i++) {
        if (i == 8)
            w = (uint64_t)_mm_extract_epi64(b, 1);
        p[i] = (uint8_t)(w >> (8 * (i & 7)));
    }
}

/* The running hash y absorbs len bytes of p, the last block zero-padded. */
static __m128i ghash(const struct gcm_key *k, __m128i y, const uint8_t *p, uint64_t len)
{
    for (; len >= 64; p += 64, len -= 64) { /* (y + x0) H^4 + x1 H^3 + x2 H^2 + x3 H, reduced once */
        __m128i lo = _mm_setzero_si128(), hi = _mm_setzero_si128();
        clmul_add(_mm_xor_si128(y, bswap128(_mm_loadu_si128((const __m128i *)p))), k->h[3], &lo, &hi);
        clmul_add(bswap128(_mm_loadu_si128((const __m128i *)(p + 16))), k->h[2], &lo, &hi);
        clmul_add(bswap128(_mm_loadu_si128((const __m128i *)(p + 32))), k->h[1], &lo, &hi);
        clmul_add(bswap128(_mm_loadu_si128((const __m128i *)(p + 48))), k->h[0], &lo, &hi);
        y = reduce(lo, hi);
    }
    for (; len >= 16; p += 16, len -= 16)
        y = gf_mul(_mm_xor_si128(y, bswap128(_mm_loadu_si128((const __m128i *)p))), k->h[0]);
    if (len)
        y = gf_mul(_mm_xor_si128(y, bswap128(load_partial(p, (size_t)len))), k->h[0]);
    return y;
}

/* Counter block i of this IV: IV || BE32(i). */
static inline __m128i counter(__m128i iv_block, uint32_t i)
{
    return _mm_insert_epi32(iv_block, (int)__builtin_bswap32(i), 3);
}

/* out = in xor the key stream from counter 2 on (counter 1 masks the tag). */
static void ctr(const struct gcm_key *k, __m128i iv_block, const uint8_t *in, uint8_t *out, uint64_t len)
{
    uint32_t i = 2, r;

    for (; len >= 64; in += 64, out += 64, len -= 64, i += 4) { /* four blocks through the AES units at once */
        __m128i b0 = _mm_xor_si128(counter(iv_block, i), k->rk[0]);
        __m128i b1 = _mm_xor_si128(counter(iv_block, i + 1), k->rk[0]);
        __m128i b2 = _mm_xor_si128(counter(iv_block, i + 2), k->rk[0]);
        __m128i b3 = _mm_xor_si128(counter(iv_block, i + 3), k->rk[0]);
        for (r = 1; r < k->rounds; r++) {
            b0 = _mm_aesenc_si128(b0, k->rk[r]);
            b1 = _mm_aesenc_si128(b1, k->rk[r]);
            b2 = _mm_aesenc_si128(b2, k->rk[r]);
            b3 = _mm_aesenc_si128(b3, k->rk[r]);
        }
        b0 = _mm_aesenclast_si128(b0, k->rk[r]);
        b1 = _mm_aesenclast_si128(b1, k->rk[r]);
        b2 = _mm_aesenclast_si128(b2, k->rk[r]);
        b3 = _mm_aesenclast_si128(b3, k->rk[r]);
        _mm_storeu_si128((__m128i *)out, _mm_xor_si128(b0, _mm_loadu_si128((const __m128i *)in)));
        _mm_storeu_si128((__m128i *)(out + 16), _mm_xor_si128(b1, _mm_loadu_si128((const __m128i *)(in + 16))));
        _mm_storeu_si128((__m128i *)(out + 32), _mm_xor_si128(b2, _mm_loadu_si128((const __m128i *)(in + 32))));
        _mm_storeu_si128((__m128i *)(out + 48), _mm_xor_si128(b3, _mm_loadu_si128((const __m128i *)(in + 48))));
    }
    for (; len >= 16; in += 16, out += 16, len -= 16, i++) {
        __m128i ks = encrypt_block(k, counter(iv_block, i));
        _mm_storeu_si128((__m128i *)out, _mm_xor_si128(ks, _mm_loadu_si128((const __m128i *)in)));
    }
    if (len)
        store_partial(out, _mm_xor_si128(encrypt_block(k, counter(iv_block, i)), load_partial(in, (size_t)len)),
                      (size_t)len);
}

/* The full 16-byte tag over aad and the ciphertext c. */
static __m128i full_tag(const struct gcm_key *k, __m128i iv_block, const uint8_t *aad, uint64_t aad_len,
                        const uint8_t *c, uint64_t len)
{
    __m128i y = ghash(k, _mm_setzero_si128(), aad, aad_len);
    y = ghash(k, y, c, len);
    /* The lengths block, BE64(bits of A) || BE64(bits of C), byte-reversed. */
    y = gf_mul(_mm_xor_si128(y, _mm_set_epi64x((long long)(aad_len * 8), (long long)(len * 8))), k->h[0]);
    return _mm_xor_si128(bswap128(y), encrypt_block(k, counter(iv_block, 1)));
}

static int tag_len_ok(uint32_t n) { return n == 4 || n == 8 || (n >= 12 && n <= 16); }

/* GCM's limits: at most 2^32 - 2 blocks of text, and lengths in bits that fit 64 bits. */
static int lengths_ok(uint64_t aad_len, uint64_t len)
{
    return len <= (((uint64_t)1 << 32) - 2) * 16 && aad_len < ((uint64_t)1 << 61);
}

int sgi_gcm_init(void *key_block, const uint8_t *key, uint32_t key_len)
{
    struct gcm_key *k = key_block;

    if (key_len == 16) {
        schedule128(k->rk, key);
        k->rounds = 10;
    } else if (key_len == 32) {
        schedule256(k->rk, key);
        k->rounds = 14;
    } else {
        return -EINVAL_;
    }
    k->h[0] = bswap128(encrypt_block(k, _mm_setzero_si128()));
    k->h[1] = gf_mul(k->h[0], k->h[0]);
    k->h[2] = gf_mul(k->h[1], k->h[0]);
    k->h[3] = gf_mul(k->h[2], k->h[0]);
    return 0;
}

int sgi_gcm_seal(const void *key_block, const uint8_t iv[12], const uint8_t *aad, uint64_t aad_len,
                 const uint8_t *in, uint64_t len, uint8_t *out, uint8_t *tag, uint32_t tag_len)
{
    const struct gcm_key *k = key_block;
    __m128i iv_block, t;

    if (!tag_len_ok(tag_len) || !lengths_ok(aad_len, len))
        return -EINVAL_;
    iv_block = load_partial(iv, 12);
    ctr(k, iv_block, in, out, len);
    t = full_tag(k, iv_block, aad, aad_len, out, len);
    store_partial(tag, t, tag_len);
    return 0;
}

int sgi_gcm_open(const void *key_block, const uint8_t iv[12], const uint8_t *aad, uint64_t aad_len,
                 const uint8_t *in, uint64_t len, uint8_t *out, const uint8_t *tag, uint32_t tag_len)
{
    const struct gcm_key *k = key_block;
    uint8_t want[16] __attribute__((aligned(16)));
    __m128i iv_block;
    uint32_t i, diff = 0;

    if (!tag_len_ok(tag_len) || !lengths_ok(aad_len, len))
        return -EINVAL_;
    iv_block = load_partial(iv, 12);
    _mm_store_si128((__m128i *)want, full_tag(k, iv_block, aad, aad_len, in, len));
    for (i = 0; i < tag_len; i++)
        diff |= (uint32_t)(want[i] ^ tag[i]);
    _mm_store_si128((__m128i *)want, _mm_setzero_si128());
    if (diff)
        return -EBADMSG_;
    ctr(k, iv_block, in, out, len);
    return 0;
}
