/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inline-gcm-test: drives the inline plugin's AES-GCM (native/inline/, linked in as the
 * freestanding object the image will carry) on cases read from stdin, one per line:
 *
 *   seal KEY IV AAD PT TAGLEN   ->  ok CT TAG
 *   open KEY IV AAD CT TAG      ->  ok PT   |   fail (the tag did not verify)
 *
 * fields in hex ("-" for empty); any other answer is "error RC". tests/test_inline_gcm.py feeds it
 * NIST's vectors and random cases, and compares with OpenSSL through the cryptography package.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inline_gcm.h"

#define MAX_TEXT (1u << 20)

static size_t unhex(const char *h, uint8_t *out, size_t max)
{
    size_t n, i;

    if (!strcmp(h, "-"))
        return 0;
    n = strlen(h) / 2;
    if (n > max)
        n = max;
    for (i = 0; i < n; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
    return n;
}

static void put_hex(const uint8_t *p, size_t n)
{
    size_t i;

    putchar(' ');
    if (!n)
        putchar('-');
    for (i = 0; i < n; i++)
        printf("%02x", p[i]);
}

int main(void)
{
    static uint8_t key_block[SGI_GCM_KEY_SIZE] __attribute__((aligned(16)));
    static uint8_t text[MAX_TEXT], out[MAX_TEXT], aad[MAX_TEXT];
    static char line[6 * MAX_TEXT];
    uint8_t key[32], iv[12], tag[16];

    while (fgets(line, sizeof(line), stdin)) {
        char *op = strtok(line, " \n"), *f[5];
        size_t key_len, aad_len, len, tag_len;
        int rc, i;

        for (i = 0; i < 5; i++)
            f[i] = strtok(NULL, " \n");
        if (!op || !f[4]) {
            puts("error bad-line");
            continue;
        }
        key_len = unhex(f[0], key, sizeof(key));
        unhex(f[1], iv, sizeof(iv));
        aad_len = unhex(f[2], aad, sizeof(aad));
        len = unhex(f[3], text, sizeof(text));
        rc = sgi_gcm_init(key_block, key, (uint32_t)key_len);
        if (rc == 0 && !strcmp(op, "seal")) {
            tag_len = (size_t)atoi(f[4]);
            rc = sgi_gcm_seal(key_block, iv, aad_len ? aad : NULL, aad_len, text, len, out, tag, (uint32_t)tag_len);
            if (rc == 0) {
                printf("ok");
                put_hex(out, len);
                put_hex(tag, tag_len);
                putchar('\n');
            }
        } else if (rc == 0) {
            tag_len = unhex(f[4], tag, sizeof(tag));
            memcpy(out, text, len); /* opened in place, as a VNF does */
            rc = sgi_gcm_open(key_block, iv, aad_len ? aad : NULL, aad_len, out, len, out, tag, (uint32_t)tag_len);
            if (rc == 0) {
                printf("ok");
                put_hex(out, len);
                putchar('\n');
            } else if (rc == -74) {
                puts(memcmp(out, text, len) ? "error wrote-on-fail" : "fail");
                rc = 0;
            }
        }
        if (rc != 0)
            printf("error %d\n", rc);
    }
    return 0;
}
