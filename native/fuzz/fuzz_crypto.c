/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: a hostile guest drives a crypto device (sessions, encrypt, decrypt) served
 * by one of the crypto plugins; see fuzz.h for the input format and the oracle.
 *
 *   setup[0]   bits 0..1: the plugin (0: the class's choice per algorithm, 1 openssl, 2 ipsec-mb,
 *              3 afalg); bit 2: a session table of 2 (else 8), to reach NO_RESOURCES
 *   CREATE     q:u8 off:u16 alg:u8 variant:u8 seed:u8 [field:u8 value:u16 if variant & 0x80]
 *              [src_len:u16 if variant & 0x20]: session parameters the table in crypto_core.h
 *              allows (variant picks the key, IV and tag sizes; 0x40: IV_GEN), one field
 *              overwritten when variant & 0x80, and the SESSION_CREATE naming them
 */
#include <string.h>

#include "fuzz.h"
#include "synth/crypto_core.h"

static const uint16_t opcodes[] = {
    SYNTH_OP_CRYPTO_ENCRYPT, SYNTH_OP_CRYPTO_DECRYPT, SYNTH_OP_CRYPTO_ENCRYPT, SYNTH_OP_CRYPTO_DECRYPT,
    SYNTH_OP_CRYPTO_SESSION_CREATE, SYNTH_OP_CRYPTO_SESSION_DESTROY, SYNTH_OP_NOP,
};

static int params(struct fz_harness *h, uint8_t s, struct synth_hdev_params *p)
{
    static const char *const pins[] = {NULL, "openssl", "ipsec-mb", "afalg"};

    (void)h;
    if (pins[s & 3u]) {
        p->plugin = synth_plugin_find(pins[s & 3u]);
        if (!p->plugin)
            return -1;
    }
    p->max_sessions = (s & 4u) ? 2 : 8;
    return 0;
}

/* Sizes the ABI allows for each algorithm, picked by v. */
static void sizes(uint16_t alg, uint8_t v, struct synth_crypto_session_params *sp)
{
    static const uint8_t gcm_tags[] = {16, 15, 14, 13, 12, 8, 4};

    switch (alg) {
    case SYNTH_ALG_AES128_GCM:
    case SYNTH_ALG_AES256_GCM:
        sp->key_len = alg == SYNTH_ALG_AES128_GCM ? 16 : 32;
        sp->iv_len = 12;
        sp->tag_len = gcm_tags[v % sizeof(gcm_tags)];
        break;
    case SYNTH_ALG_CHACHA20_POLY1305:
        sp->key_len = 32;
        sp->iv_len = 12;
        sp->tag_len = 16;
        break;
    case SYNTH_ALG_AES256_CBC_HMAC_SHA256:
        sp->key_len = (uint16_t)(32 + 1 + (v * 7u) % 224u);
        sp->iv_len = 16;
        sp->tag_len = (uint8_t)(12 + v % 21u);
        break;
    default: /* HMAC-SHA-256 */
        sp->key_len = (uint16_t)(1 + (v * 13u) % 256u);
        sp->iv_len = 0;
        sp->tag_len = (uint8_t)(4 + v % 29u);
    }
}

static void create(struct fz_harness *h, struct fz_in *in)
{
    struct synth_crypto_session_params sp;
    struct synth_desc d;
    uint32_t qi = fz_u8(in) % h->layout.num_queues, off = fz_u16(in) % h->q[qi].arena_size, i;
    uint8_t alg = fz_u8(in), v = fz_u8(in), seed = fz_u8(in);

    memset(&sp, 0, sizeof(sp));
    sp.alg = alg >= 0xf0u ? alg : (uint16_t)(1u + alg % (SYNTH_ALG_MAX - 1u));
    sizes(sp.alg, v & 0x1fu, &sp);
    if (v & 0x40u)
        sp.flags = SYNTH_CRYPTO_SF_IV_GEN;
    for (i = 0; i < SYNTH_CRYPTO_MAX_KEY; i++)
        sp.key[i] = (uint8_t)(seed + i * 29u);
    if (v & 0x80u) { /* one field as the fuzzer has it */
        uint8_t field = fz_u8(in);
        uint16_t val = fz_u16(in);
        switch (field % 5u) {
        case 0: sp.alg = val; break;
        case 1: sp.key_len = val; break;
        case 2: sp.iv_len = (uint8_t)val; break;
        case 3: sp.tag_len = (uint8_t)val; break;
        default: sp.flags = val;
        }
    }
    if (off + sizeof(sp) > h->q[qi].arena_size)
        off = (uint32_t)(h->q[qi].arena_size - sizeof(sp));
    memcpy(h->q[qi].arena + off, &sp, sizeof(sp));
    memset(&d, 0, sizeof(d));
    d.opcode = SYNTH_OP_CRYPTO_SESSION_CREATE;
    d.src_off = off;
    d.src_len = (v & 0x20u) ? fz_u16(in) : (uint32_t)sizeof(sp);
    fz_submit(h, qi, &d);
}

static void outputs(struct fz_harness *h, uint32_t qi, const struct synth_desc *d)
{
    switch (d->opcode) {
    case SYNTH_OP_CRYPTO_SESSION_CREATE: /* the key is wiped from the guest's copy */
        fz_allow_arena(h, qi, d->src_off, d->src_len);
        break;
    case SYNTH_OP_CRYPTO_ENCRYPT:
        fz_allow_arena(h, qi, d->dst_off, d->dst_len);
        fz_allow_arena(h, qi, d->tag_off, SYNTH_CRYPTO_MAX_TAG);
        fz_allow_arena(h, qi, d->iv_off, 12); /* IV_GEN sessions */
        break;
    case SYNTH_OP_CRYPTO_DECRYPT:
        fz_allow_arena(h, qi, d->dst_off, d->dst_len);
        break;
    default:
        break;
    }
}

static void answer(struct fz_harness *h, uint32_t qi, const struct fz_pending *p, const struct synth_cpl *c)
{
    if (c->flags & ~SYNTH_CPL_F_PHASE)
        fz_fail(h, "queue %u: crypto completion with stream flags %#x", qi, c->flags);
    if (p->opcode == SYNTH_OP_CRYPTO_SESSION_CREATE && c->status == SYNTH_ST_OK && h->nids < FZ_MAX_IDS)
        h->ids[h->nids++] = c->result;
}

static const struct fz_class crypto = {
    .name = "crypto",
    .dev_class = SYNTH_CLASS_CRYPTO,
    .region_size = 64u << 10,
    .num_queues = 2,
    .ring_entries = 8,
    .opcodes = opcodes,
    .nopcodes = sizeof(opcodes) / sizeof(opcodes[0]),
    .features = {SYNTH_CRYPTO_F_SESSIONS, SYNTH_CRYPTO_F_OUT_OF_PLACE, SYNTH_CRYPTO_F_IV_GEN},
    .params = params,
    .create = create,
    .outputs = outputs,
    .answer = answer,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_run(&crypto, data, size); }
