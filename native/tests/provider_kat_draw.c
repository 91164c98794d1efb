/* SPDX-License-Identifier: Apache-2.0 */
/*
 * provider-kat: the differential's PRNG (splitmix64, seeded by --seed and the conversation's
 * number) and what it draws: message and AAD lengths, their cuts into pieces, tag lengths, and
 * where the buffers lie in the arena.
 */
#include "provider_kat.h"

uint64_t pk_rnd(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

size_t pk_below(uint64_t *s, size_t n) { return n ? (size_t)(pk_rnd(s) % n) : 0; }
int pk_chance(uint64_t *s, unsigned pct) { return pk_below(s, 100) < pct; }

void pk_fill(uint64_t *s, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)pk_rnd(s);
}

size_t pk_draw_len(uint64_t *s)
{
    switch (pk_below(s, 8)) {
    case 0:
        return pk_below(s, 3); /* 0, 1, 2 */
    case 1:
        return pk_below(s, 18);
    case 2: /* around a block or a cache line */
        return 16 * (1 + pk_below(s, 20)) + pk_below(s, 3) - 1;
    case 3:
    case 4:
    case 5:
        return pk_below(s, 2049);
    default:
        return pk_below(s, MAX_MSG + 1);
    }
}

size_t pk_draw_aad(uint64_t *s)
{
    switch (pk_below(s, 6)) {
    case 0:
        return 0;
    case 1:
        return 13; /* TLS 1.2's */
    case 2:
        return 1 + pk_below(s, 20);
    default:
        return pk_below(s, MAX_AAD + 1);
    }
}

/* Cut n into pieces (some may be empty): one most of the time. */
unsigned pk_cut(uint64_t *s, size_t n, size_t *cuts, unsigned pct_many)
{
    unsigned k = pk_chance(s, pct_many) ? 2 + (unsigned)pk_below(s, MAX_CUTS - 1) : 1;
    size_t left = n;
    for (unsigned i = 0; i + 1 < k; i++) {
        cuts[i] = pk_below(s, 4) == 0 ? 0 : pk_below(s, left + 1);
        left -= cuts[i];
    }
    cuts[k - 1] = left;
    return k;
}

size_t pk_draw_taglen(uint64_t *s, enum pk_alg alg)
{
    static const size_t gcm[] = {4, 8, 12, 13, 14, 15};
    unsigned p = (unsigned)pk_below(s, 100);
    if (alg == PK_CHACHA20_POLY1305)
        return p < 90 ? 16 : 1 + pk_below(s, 16);
    return p < 70 ? 16 : p < 90 ? gcm[pk_below(s, 6)] : 1 + pk_below(s, 16);
}

/* Place the buffers: out of place (either order) or in place, at odd offsets now and then. */
void pk_place(uint64_t *s, struct pk_msg *m)
{
    size_t a = pk_below(s, 4) ? pk_below(s, 16) : pk_below(s, SLACK);
    size_t b = pk_below(s, 4) ? pk_below(s, 16) : pk_below(s, SLACK);
    switch (pk_below(s, 3)) {
    case 0:
        m->in_off = m->out_off = SLACK + a;
        break;
    case 1:
        m->in_off = SLACK + a;
        m->out_off = m->in_off + m->len + 16 + b;
        break;
    default:
        m->out_off = SLACK + a;
        m->in_off = m->out_off + m->len + 16 + b;
        break;
    }
}
