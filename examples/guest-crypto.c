/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VNF's view: open a synthetic crypto device, create an AES-256-GCM security association and
 * seal one ESP-like payload in place, zero-copy, in the device's arena.
 *
 *   cc -O2 -Inative/include examples/guest-crypto.c native/build/libsynth.a -o guest-crypto
 *   ./guest-crypto /dev/shm/demo-crypto          # host side: a region path
 *   ./guest-crypto 0000:00:05.0                  # inside a VM: a PCI address
 *
 * Prints the ciphertext and tag in hex. Key, IV and payload are fixed so that the output can be
 * checked against any AES-GCM implementation.
 */
#include <stdio.h>
#include <string.h>

#include "synth/guest.h"

static void hex(const char *label, const uint8_t *p, size_t n)
{
    printf("%s=", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    struct synth_crypto_session_params sp = {.alg = SYNTH_ALG_AES256_GCM, .key_len = 32, .iv_len = 12, .tag_len = 16};
    static const char payload[] = "synthetic devices keep VNFs portable";
    struct synth_dev *dev;
    struct synth_queue *q;
    uint32_t sid, len = sizeof(payload) - 1;
    int64_t data, aad, iv, tag;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s REGION-PATH | PCI-ADDRESS\n", argv[0]);
        return 2;
    }
    rc = strchr(argv[1], '/') ? synth_dev_open_path(argv[1], NULL, &dev) : synth_dev_open_pci(argv[1], NULL, &dev);
    if (rc < 0) {
        fprintf(stderr, "open %s: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    q = synth_dev_queue(dev, 0);
    for (int i = 0; i < 32; i++)
        sp.key[i] = (uint8_t)i;
    rc = synth_crypto_session_create(q, &sp, &sid);
    if (rc != 0) {
        fprintf(stderr, "session: %s\n", rc < 0 ? strerror(-rc) : synth_status_str((uint32_t)rc));
        synth_dev_close(dev);
        return 1;
    }

    /* Buffers live in the arena: the device reads and writes them in place. */
    data = synth_buf_alloc(q, len);
    aad = synth_buf_alloc(q, 8);
    iv = synth_buf_alloc(q, 12);
    tag = synth_buf_alloc(q, 16);
    if (data < 0 || aad < 0 || iv < 0 || tag < 0) {
        fprintf(stderr, "arena full\n");
        synth_dev_close(dev);
        return 1;
    }
    memcpy(synth_buf_ptr(q, (uint32_t)data), payload, len);
    memcpy(synth_buf_ptr(q, (uint32_t)aad), "\x00\x00\x10\x01\x00\x00\x00\x07", 8); /* SPI, seq */
    memset(synth_buf_ptr(q, (uint32_t)iv), 0x42, 12);

    rc = synth_crypto_op(q, SYNTH_OP_CRYPTO_ENCRYPT, sid, (uint32_t)data, (uint32_t)data, len,
                         (uint32_t)aad, 8, (uint32_t)iv, (uint32_t)tag);
    if (rc != 0) {
        fprintf(stderr, "encrypt: %s\n", rc < 0 ? strerror(-rc) : synth_status_str((uint32_t)rc));
        synth_dev_close(dev);
        return 1;
    }
    hex("ciphertext", synth_buf_ptr(q, (uint32_t)data), len);
    hex("tag", synth_buf_ptr(q, (uint32_t)tag), 16);

    synth_crypto_session_destroy(q, sid);
    synth_dev_close(dev);
    return 0;
}
