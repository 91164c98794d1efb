/* SPDX-License-Identifier: Apache-2.0 */
/* Hex strings of the known-answer programs' vectors (afalg-kat, provider-kat) into bytes. */
#ifndef SYNTH_KAT_HEX_H
#define SYNTH_KAT_HEX_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Up to max bytes of the hex string h into out; returns how many. */
static inline size_t kat_unhex(const char *h, uint8_t *out, size_t max)
{
    size_t n = strlen(h) / 2;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
    return n;
}

#endif /* SYNTH_KAT_HEX_H */
