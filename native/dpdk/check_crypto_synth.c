/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check-crypto-synth: drives the crypto_synth PMD through DPDK's public cryptodev API where
 * dpdk-test-crypto-perf cannot: session parameters the capabilities do not rule out, and a device
 * that needs a reset. One line of output per check ("name value"), for tests/test_dpdk_crypto.py.
 *
 *   check-crypto-synth <EAL args> -- sessions   each bad session's errno, and a good one's
 *   check-crypto-synth <EAL args> -- chain      the AES-256-CBC + HMAC-SHA-256 chain over an ESP-like
 *                                               layout (auth range = a header, then the cipher
 *                                               range): the packet and digest in hex, the packet
 *                                               after verify + decrypt, then each bad range's status
 *   check-crypto-synth <EAL args> -- reset      a burst, then (after a line on stdin, when the test
 *                                               has marked the device NEEDS_RESET) a burst that must
 *                                               fail, then (after another line) stop/start and a
 *                                               burst that must pass
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cryptodev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#define NB_OPS 64u
#define LEN 256u
#define IV_OFF (sizeof(struct rte_crypto_op) + sizeof(struct rte_crypto_sym_op))

static uint8_t dev_id;
static struct rte_mempool *sess_mp, *op_mp, *mbuf_mp;
static uint8_t key[64], aad[16], digests[NB_OPS][16];

static struct rte_crypto_sym_xform aead(enum rte_crypto_aead_algorithm algo, uint16_t klen, uint16_t ivlen,
                                        uint16_t dlen)
{
    struct rte_crypto_sym_xform x;

    memset(&x, 0, sizeof(x));
    x.type = RTE_CRYPTO_SYM_XFORM_AEAD;
    x.aead.op = RTE_CRYPTO_AEAD_OP_ENCRYPT;
    x.aead.algo = algo;
    x.aead.key.data = key;
    x.aead.key.length = klen;
    x.aead.iv.offset = IV_OFF;
    x.aead.iv.length = ivlen;
    x.aead.digest_length = dlen;
    x.aead.aad_length = sizeof(aad);
    return x;
}

/* x[0] -> x[1]: cipher encrypt then auth generate (enc), or auth verify then cipher decrypt. */
static void chain(struct rte_crypto_sym_xform x[2], int enc, uint16_t klen, uint16_t hklen, uint16_t ivlen,
                  uint16_t dlen)
{
    struct rte_crypto_sym_xform *c = &x[enc ? 0 : 1], *a = &x[enc ? 1 : 0];

    memset(x, 0, 2 * sizeof(*x));
    c->type = RTE_CRYPTO_SYM_XFORM_CIPHER;
    c->cipher.op = enc ? RTE_CRYPTO_CIPHER_OP_ENCRYPT : RTE_CRYPTO_CIPHER_OP_DECRYPT;
    c->cipher.algo = RTE_CRYPTO_CIPHER_AES_CBC;
    c->cipher.key.data = key;
    c->cipher.key.length = klen;
    c->cipher.iv.offset = IV_OFF;
    c->cipher.iv.length = ivlen;
    a->type = RTE_CRYPTO_SYM_XFORM_AUTH;
    a->auth.op = enc ? RTE_CRYPTO_AUTH_OP_GENERATE : RTE_CRYPTO_AUTH_OP_VERIFY;
    a->auth.algo = RTE_CRYPTO_AUTH_SHA256_HMAC;
    a->auth.key.data = key;
    a->auth.key.length = hklen;
    a->auth.digest_length = dlen;
    x[0].next = &x[1];
}

static void try_session(const char *name, struct rte_crypto_sym_xform x)
{
    void *s = rte_cryptodev_sym_session_create(dev_id, &x, sess_mp);

    if (s) {
        printf("%s ok\n", name);
        rte_cryptodev_sym_session_free(dev_id, s);
    } else {
        printf("%s %s\n", name, rte_errno == EINVAL ? "EINVAL" : rte_errno == ENOTSUP ? "ENOTSUP" : "other");
    }
}

static int sessions(void)
{
    struct rte_crypto_sym_xform c;

    try_session("aes-256-gcm", aead(RTE_CRYPTO_AEAD_AES_GCM, 32, 12, 16));
    try_session("aes-128-gcm-tag12", aead(RTE_CRYPTO_AEAD_AES_GCM, 16, 12, 12));
    try_session("aes-192-gcm", aead(RTE_CRYPTO_AEAD_AES_GCM, 24, 12, 16));
    try_session("chacha-key16", aead(RTE_CRYPTO_AEAD_CHACHA20_POLY1305, 16, 12, 16));
    try_session("chacha-tag12", aead(RTE_CRYPTO_AEAD_CHACHA20_POLY1305, 32, 12, 12));
    try_session("gcm-iv16", aead(RTE_CRYPTO_AEAD_AES_GCM, 16, 16, 16));
    try_session("gcm-tag10", aead(RTE_CRYPTO_AEAD_AES_GCM, 16, 12, 10));
    try_session("aes-ccm", aead(RTE_CRYPTO_AEAD_AES_CCM, 16, 12, 16));
    memset(&c, 0, sizeof(c));
    c.type = RTE_CRYPTO_SYM_XFORM_CIPHER;
    c.cipher.algo = RTE_CRYPTO_CIPHER_AES_CBC;
    c.cipher.key.data = key;
    c.cipher.key.length = 16;
    try_session("cipher-only", c);
    {
        struct rte_crypto_sym_xform ch[2];
        chain(ch, 1, 32, 32, 16, 16);
        try_session("cbc-hmac", ch[0]);
        chain(ch, 0, 32, 64, 16, 32);
        try_session("hmac-cbc-verify", ch[0]);
        chain(ch, 1, 16, 32, 16, 16);
        try_session("cbc-key16", ch[0]);
        chain(ch, 1, 32, 32, 12, 16);
        try_session("cbc-iv12", ch[0]);
        chain(ch, 1, 32, 32, 16, 8);
        try_session("hmac-digest8", ch[0]);
        chain(ch, 1, 32, 32, 16, 16);
        ch[1].auth.op = RTE_CRYPTO_AUTH_OP_VERIFY;
        try_session("encrypt-then-verify", ch[0]);
        chain(ch, 1, 32, 32, 16, 16);
        ch[1].auth.algo = RTE_CRYPTO_AUTH_SHA1_HMAC;
        try_session("cbc-sha1", ch[0]);
    }
    return 0;
}

/* One op of session sess over m (auth [aoff, aoff+alen), cipher [coff, coff+clen)): its status. */
static int chain_op(void *sess, struct rte_mbuf *m, uint32_t aoff, uint32_t alen, uint32_t coff, uint32_t clen,
                    uint8_t *digest)
{
    struct rte_crypto_op *op, *out = NULL;
    int st;

    if (rte_crypto_op_bulk_alloc(op_mp, RTE_CRYPTO_OP_TYPE_SYMMETRIC, &op, 1) != 1)
        return -1;
    op->sym->m_src = m;
    op->sym->cipher.data.offset = coff;
    op->sym->cipher.data.length = clen;
    op->sym->auth.data.offset = aoff;
    op->sym->auth.data.length = alen;
    op->sym->auth.digest.data = digest;
    memset(rte_crypto_op_ctod_offset(op, uint8_t *, IV_OFF), 0xA5, 16);
    rte_crypto_op_attach_sym_session(op, sess);
    if (rte_cryptodev_enqueue_burst(dev_id, 0, &op, 1) != 1)
        return -1;
    for (unsigned spins = 0; !out && spins < 100000000u; spins++)
        if (!rte_cryptodev_dequeue_burst(dev_id, 0, &out, 1))
            out = NULL;
    if (!out)
        return -1;
    st = out->status;
    rte_crypto_op_free(out);
    return st;
}

static void hex(const char *name, const uint8_t *p, unsigned n)
{
    printf("%s ", name);
    for (unsigned i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

static const char *status_name(int st)
{
    return st == RTE_CRYPTO_OP_STATUS_SUCCESS ? "success" : st == RTE_CRYPTO_OP_STATUS_INVALID_ARGS ? "invalid_args"
           : st == RTE_CRYPTO_OP_STATUS_AUTH_FAILED ? "auth_failed" : st < 0 ? "lost" : "other";
}

/* An ESP-like packet: a 24-byte header (authenticated, not encrypted), 64 bytes encrypted. */
#define CH_HDR 24u
#define CH_LEN 64u

static int chain_check(void)
{
    struct rte_crypto_sym_xform enc[2], dec[2];
    struct rte_mbuf *m = rte_pktmbuf_alloc(mbuf_mp);
    uint8_t digest[16], *p;
    void *se, *sd;

    for (unsigned i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(0x40 + i);
    chain(enc, 1, 32, 32, 16, 16);
    chain(dec, 0, 32, 32, 16, 16);
    se = rte_cryptodev_sym_session_create(dev_id, &enc[0], sess_mp);
    sd = rte_cryptodev_sym_session_create(dev_id, &dec[0], sess_mp);
    if (!m || !se || !sd || !(p = (uint8_t *)rte_pktmbuf_append(m, CH_HDR + CH_LEN)))
        return -1;
    for (unsigned i = 0; i < CH_HDR + CH_LEN; i++)
        p[i] = (uint8_t)i;
    printf("encrypt %s\n", status_name(chain_op(se, m, 0, CH_HDR + CH_LEN, CH_HDR, CH_LEN, digest)));
    hex("packet", p, CH_HDR + CH_LEN);
    hex("digest", digest, sizeof(digest));
    printf("decrypt %s\n", status_name(chain_op(sd, m, 0, CH_HDR + CH_LEN, CH_HDR, CH_LEN, digest)));
    hex("plain", p, CH_HDR + CH_LEN);
    p[0] ^= 1; /* the header is authenticated */
    printf("header-changed %s\n", status_name(chain_op(sd, m, 0, CH_HDR + CH_LEN, CH_HDR, CH_LEN, digest)));
    p[0] ^= 1;
    printf("cipher-not-blocks %s\n", status_name(chain_op(se, m, 0, CH_HDR + CH_LEN - 4, CH_HDR, CH_LEN - 4, digest)));
    printf("auth-ends-early %s\n", status_name(chain_op(se, m, 0, CH_HDR + CH_LEN - 16, CH_HDR, CH_LEN, digest)));
    printf("auth-starts-late %s\n", status_name(chain_op(se, m, CH_HDR + 16, CH_LEN - 16, CH_HDR, CH_LEN, digest)));
    printf("past-the-mbuf %s\n", status_name(chain_op(se, m, 0, CH_HDR + CH_LEN + 16, CH_HDR, CH_LEN + 16, digest)));
    rte_pktmbuf_free(m);
    rte_cryptodev_sym_session_free(dev_id, se);
    rte_cryptodev_sym_session_free(dev_id, sd);
    return 0;
}

/* Encrypt NB_OPS buffers; returns how many came back with each status (ok, error, other). */
static int burst(void *sess, unsigned *ok, unsigned *err, unsigned *other)
{
    struct rte_crypto_op *ops[NB_OPS], *out[NB_OPS];
    unsigned enq = 0, deq = 0, spins = 0;

    *ok = *err = *other = 0;
    if (rte_crypto_op_bulk_alloc(op_mp, RTE_CRYPTO_OP_TYPE_SYMMETRIC, ops, NB_OPS) != NB_OPS)
        return -1;
    for (unsigned i = 0; i < NB_OPS; i++) {
        struct rte_mbuf *m = rte_pktmbuf_alloc(mbuf_mp);
        if (!m || !rte_pktmbuf_append(m, LEN))
            return -1;
        memset(rte_pktmbuf_mtod(m, uint8_t *), (int)i, LEN);
        ops[i]->sym->m_src = m;
        ops[i]->sym->aead.data.offset = 0;
        ops[i]->sym->aead.data.length = LEN;
        ops[i]->sym->aead.aad.data = aad;
        ops[i]->sym->aead.digest.data = digests[i];
        memset(rte_crypto_op_ctod_offset(ops[i], uint8_t *, IV_OFF), (int)i, 12);
        rte_crypto_op_attach_sym_session(ops[i], sess);
    }
    while (deq < NB_OPS && spins < 100000000u) {
        if (enq < NB_OPS)
            enq += rte_cryptodev_enqueue_burst(dev_id, 0, ops + enq, (uint16_t)(NB_OPS - enq));
        unsigned n = rte_cryptodev_dequeue_burst(dev_id, 0, out, NB_OPS);
        for (unsigned i = 0; i < n; i++) {
            if (out[i]->status == RTE_CRYPTO_OP_STATUS_SUCCESS)
                (*ok)++;
            else if (out[i]->status == RTE_CRYPTO_OP_STATUS_ERROR)
                (*err)++;
            else
                (*other)++;
            rte_pktmbuf_free(out[i]->sym->m_src);
            rte_crypto_op_free(out[i]);
        }
        deq += n;
        spins++;
    }
    return deq == NB_OPS ? 0 : -1;
}

static int reset(void)
{
    struct rte_crypto_sym_xform x = aead(RTE_CRYPTO_AEAD_AES_GCM, 16, 12, 16);
    void *s = rte_cryptodev_sym_session_create(dev_id, &x, sess_mp);
    unsigned ok, err, other;
    char line[16];

    if (!s)
        return -1;
    if (burst(s, &ok, &err, &other) < 0)
        return -1;
    printf("before ok=%u error=%u other=%u\n", ok, err, other);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin)) /* the test marks the device NEEDS_RESET */
        return -1;
    if (burst(s, &ok, &err, &other) < 0)
        return -1;
    printf("needs-reset ok=%u error=%u other=%u\n", ok, err, other);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin)) /* the test lets the backend serve again */
        return -1;
    rte_cryptodev_stop(dev_id);
    printf("start %d\n", rte_cryptodev_start(dev_id));
    if (burst(s, &ok, &err, &other) < 0)
        return -1;
    printf("after ok=%u error=%u other=%u\n", ok, err, other);
    rte_cryptodev_sym_session_free(dev_id, s);
    return 0;
}

int main(int argc, char **argv)
{
    struct rte_cryptodev_config conf = {.socket_id = 0, .nb_queue_pairs = 1};
    struct rte_cryptodev_qp_conf qp = {.nb_descriptors = 256};
    int n = rte_eal_init(argc, argv), rc = 1, id;

    if (n < 0) {
        fprintf(stderr, "check-crypto-synth: EAL init failed: %s\n", rte_strerror(rte_errno));
        return 2;
    }
    argc -= n;
    argv += n;
    id = rte_cryptodev_get_dev_id("crypto_synth0");
    if (argc < 2 || id < 0) {
        fprintf(stderr, "usage: check-crypto-synth <EAL args with --vdev crypto_synth0,...> -- sessions|chain|reset\n");
        goto out;
    }
    dev_id = (uint8_t)id;
    sess_mp = rte_cryptodev_sym_session_pool_create("sess", 16, rte_cryptodev_sym_get_private_session_size(dev_id),
                                                    0, 0, 0);
    op_mp = rte_crypto_op_pool_create("ops", RTE_CRYPTO_OP_TYPE_SYMMETRIC, 2 * NB_OPS, 0, 16, 0);
    mbuf_mp = rte_pktmbuf_pool_create("mbufs", 2 * NB_OPS, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    qp.mp_session = sess_mp;
    if (!sess_mp || !op_mp || !mbuf_mp || rte_cryptodev_configure(dev_id, &conf) < 0 ||
        rte_cryptodev_queue_pair_setup(dev_id, 0, &qp, 0) < 0 || rte_cryptodev_start(dev_id) < 0) {
        fprintf(stderr, "check-crypto-synth: cannot set up crypto_synth0\n");
        goto out;
    }
    if (!strcmp(argv[1], "sessions"))
        rc = sessions();
    else if (!strcmp(argv[1], "reset"))
        rc = reset();
    else if (!strcmp(argv[1], "chain"))
        rc = chain_check();
    rc = rc ? 1 : 0;
    rte_cryptodev_stop(dev_id);
    rte_cryptodev_close(dev_id);
out:
    rte_eal_cleanup();
    return rc;
}
