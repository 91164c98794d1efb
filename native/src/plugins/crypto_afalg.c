/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crypto plugin over the Linux kernel crypto API (AF_ALG, type "aead"): the generic path to
 * whatever AEAD implementation the host kernel has, hardware drivers included (QAT, CCP, CAAM...).
 * Serves AES-GCM ("gcm(aes)") and ChaCha20-Poly1305 ("rfc7539(chacha20,poly1305)"). Each session
 * holds a keyed transform and an operation socket; an operation is one sendmsg (AAD, data and,
 * to decrypt, the tag, gathered from the arena) and one readv (scattered back), so two system
 * calls per op: it pays off for hardware, not for small buffers on a CPU with AES-NI.
 *
 * A kernel without AF_ALG (socket() fails with EAFNOSUPPORT) makes the plugin unavailable, with
 * that reason; the catalog then serves the algorithms with another plugin.
 *
 * Nothing here may block the worker thread that serves every other device with it:
 * - The kernel takes an operation's input into the socket's send buffer before it computes, and a
 *   sendmsg larger than that buffer (208 KiB by default) would wait forever for a read that only
 *   comes after it. Each session raises its buffer as far as the host allows and learns what it
 *   got; an operation whose AAD, data and tag do not fit completes with NOT_SUPPORTED, and every
 *   sendmsg is MSG_DONTWAIT (EAGAIN: DEVICE_ERROR, never a wait).
 * - AAD up to the device's max_aad_len (65535) is served: the kernel copies it in front of the
 *   output, and the plugin reads that copy into a per-thread sink, not a per-session buffer.
 * - A session holds two descriptors (transform and operation sockets). The plugin counts them
 *   against a budget of half the process's descriptor limit (RLIMIT_NOFILE), so that no guest
 *   can exhaust the daemon's descriptors by creating sessions: past it, NO_RESOURCES.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if_alg.h>

#include "synth/plugin.h"

#ifndef SOL_ALG
#define SOL_ALG 279
#endif

#define MAX_AAD 65535u
#define WANT_SNDBUF (4u << 20) /* asked for; the host's net.core.wmem_max caps it */

struct afalg_sess {
    int tfm;
    int op;
    uint32_t alg;
    uint32_t tag_len;
    uint64_t max_in; /* the most AAD + data + tag one sendmsg may carry on this socket */
};

static _Thread_local uint8_t aad_sink[MAX_AAD]; /* the AAD the kernel copies in front of the output */
static atomic_long fds_open;                      /* descriptors held by sessions, all devices */
static long fd_budget = 1024;                     /* set by the probe: half of RLIMIT_NOFILE */

static const char *kernel_name(uint32_t alg)
{
    switch (alg) {
    case SYNTH_ALG_AES128_GCM:
    case SYNTH_ALG_AES256_GCM:
        return "gcm(aes)";
    case SYNTH_ALG_CHACHA20_POLY1305:
        return "rfc7539(chacha20,poly1305)";
    default:
        return NULL;
    }
}

/* A keyless transform of the algorithm: 0, or -errno. */
static int open_tfm(const char *name)
{
    struct sockaddr_alg sa = {.salg_family = AF_ALG};
    int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    snprintf((char *)sa.salg_type, sizeof(sa.salg_type), "aead");
    snprintf((char *)sa.salg_name, sizeof(sa.salg_name), "%s", name);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static uint32_t mask;

static int afalg_probe(char *why, size_t why_len)
{
    int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), rc;
    if (fd < 0) {
        rc = -errno;
        snprintf(why, why_len, "the kernel has no AF_ALG: socket(AF_ALG) failed: %s", strerror(errno));
        return rc;
    }
    close(fd);
    mask = 0;
    for (uint32_t alg = SYNTH_ALG_AES128_GCM; alg <= SYNTH_ALG_CHACHA20_POLY1305; alg++) {
        int t = open_tfm(kernel_name(alg));
        if (t >= 0) {
            mask |= 1u << alg;
            close(t);
        }
    }
    if (!mask) {
        snprintf(why, why_len, "AF_ALG has no gcm(aes) or rfc7539(chacha20,poly1305) (load algif_aead)");
        return -ENOTSUP;
    }
    {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
            fd_budget = (long)(rl.rlim_cur / 2);
    }
    snprintf(why, why_len, "kernel crypto API (AF_ALG aead)");
    return 0;
}

static uint32_t afalg_alg_mask(void) { return mask; }

static void afalg_session_destroy(void *sp)
{
    struct afalg_sess *s = sp;
    if (!s)
        return;
    if (s->op >= 0)
        close(s->op);
    if (s->tfm >= 0)
        close(s->tfm);
    atomic_fetch_sub(&fds_open, 2);
    free(s);
}

/*
 * Raise the operation socket's send buffer as far as the host lets us and note what one sendmsg
 * may carry: the kernel takes up to sk_sndbuf (page-aligned) of input when its queue is empty.
 */
static int size_sndbuf(struct afalg_sess *s)
{
    int want = (int)WANT_SNDBUF, got = 0;
    socklen_t len = sizeof(got);

    setsockopt(s->op, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want)); /* capped by wmem_max: fine */
    if (getsockopt(s->op, SOL_SOCKET, SO_SNDBUF, &got, &len) < 0 || got <= 0)
        return -1;
    s->max_in = (uint64_t)got > 4096 ? ((uint64_t)got & ~4095ull) - 4096 : 0; /* a page in hand */
    return 0;
}

/* After a send the kernel did not take whole: a fresh operation socket, nothing queued on it. */
static void reopen_op(struct afalg_sess *s)
{
    close(s->op);
    s->op = accept4(s->tfm, NULL, 0, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (s->op < 0 || size_sndbuf(s) < 0)
        s->max_in = 0; /* every later op: NOT_SUPPORTED */
}

static int afalg_session_create(const struct synth_crypto_session_params *p, void **out)
{
    const char *name = kernel_name(p->alg);
    struct afalg_sess *s;

    if (!name)
        return -ENOTSUP;
    if (atomic_fetch_add(&fds_open, 2) + 2 > fd_budget) {
        atomic_fetch_sub(&fds_open, 2);
        return -ENOSPC; /* NO_RESOURCES: the daemon's descriptors are not the guests' to take */
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        atomic_fetch_sub(&fds_open, 2);
        return -ENOMEM;
    }
    s->op = -1;
    s->alg = p->alg;
    s->tag_len = p->tag_len;
    s->tfm = open_tfm(name);
    if (s->tfm < 0) {
        int rc = s->tfm;
        s->tfm = -1;
        afalg_session_destroy(s);
        return rc == -ENOENT ? -ENOTSUP : rc;
    }
    if (setsockopt(s->tfm, SOL_ALG, ALG_SET_KEY, p->key, p->key_len) < 0 ||
        setsockopt(s->tfm, SOL_ALG, ALG_SET_AEAD_AUTHSIZE, NULL, p->tag_len) < 0 ||
        (s->op = accept4(s->tfm, NULL, 0, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0) {
        afalg_session_destroy(s);
        return -EINVAL;
    }
    if (size_sndbuf(s) < 0) {
        afalg_session_destroy(s);
        return -EINVAL;
    }
    *out = s;
    return 0;
}

static uint32_t afalg_one(struct afalg_sess *s, struct synth_crypto_op *op)
{
    int enc = op->opcode == SYNTH_OP_CRYPTO_ENCRYPT;
    char cbuf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(struct af_alg_iv) + SYNTH_CRYPTO_MAX_IV) +
              CMSG_SPACE(sizeof(uint32_t))] = {0};
    struct msghdr msg = {0};
    struct cmsghdr *c;
    struct af_alg_iv *aiv;
    struct iovec in[3], out[3];
    int nin = 0, nout = 0;
    uint8_t tag[SYNTH_CRYPTO_MAX_TAG];
    ssize_t want, got;

    if (op->aad_len > MAX_AAD)
        return SYNTH_ST_NOT_SUPPORTED;
    if ((uint64_t)op->aad_len + op->len + (enc ? 0 : s->tag_len) > s->max_in)
        return SYNTH_ST_NOT_SUPPORTED; /* would not fit the socket: sendmsg would wait for ever */
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_ALG;
    c->cmsg_type = ALG_SET_OP;
    c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
    *(uint32_t *)(void *)CMSG_DATA(c) = enc ? ALG_OP_ENCRYPT : ALG_OP_DECRYPT;
    c = CMSG_NXTHDR(&msg, c);
    c->cmsg_level = SOL_ALG;
    c->cmsg_type = ALG_SET_IV;
    c->cmsg_len = CMSG_LEN(sizeof(struct af_alg_iv) + op->iv_len);
    aiv = (struct af_alg_iv *)(void *)CMSG_DATA(c);
    aiv->ivlen = op->iv_len;
    memcpy(aiv->iv, op->iv, op->iv_len);
    c = CMSG_NXTHDR(&msg, c);
    c->cmsg_level = SOL_ALG;
    c->cmsg_type = ALG_SET_AEAD_ASSOCLEN;
    c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
    *(uint32_t *)(void *)CMSG_DATA(c) = op->aad_len;

    if (op->aad_len)
        in[nin++] = (struct iovec){(void *)op->aad, op->aad_len};
    if (op->len)
        in[nin++] = (struct iovec){(void *)op->src, op->len};
    if (!enc)
        in[nin++] = (struct iovec){op->tag, s->tag_len};
    msg.msg_iov = in;
    msg.msg_iovlen = (size_t)nin;
    want = (ssize_t)op->aad_len + (ssize_t)op->len + (enc ? 0 : (ssize_t)s->tag_len);
    if (sendmsg(s->op, &msg, MSG_DONTWAIT) != want) {
        reopen_op(s); /* a part may be queued: never let it prefix the next op */
        return SYNTH_ST_DEVICE_ERROR;
    }

    if (op->aad_len)
        out[nout++] = (struct iovec){aad_sink, op->aad_len};
    if (op->len)
        out[nout++] = (struct iovec){op->dst, op->len};
    if (enc)
        out[nout++] = (struct iovec){tag, s->tag_len};
    want = (ssize_t)op->aad_len + (ssize_t)op->len + (enc ? (ssize_t)s->tag_len : 0);
    got = readv(s->op, out, nout);
    if (got < 0 && errno == EBADMSG) {
        memset(op->dst, 0, op->len);
        return SYNTH_ST_AUTH_FAILED;
    }
    if (got != want)
        return SYNTH_ST_DEVICE_ERROR;
    if (enc)
        memcpy(op->tag_out, tag, s->tag_len);
    return SYNTH_ST_OK;
}

static void afalg_crypto_burst(struct synth_crypto_op *ops, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        ops[i].status = afalg_one(ops[i].sess, &ops[i]);
}

static const struct synth_plugin afalg_plugin = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION,
    .dev_class = SYNTH_CLASS_CRYPTO,
    .name = "af-alg",
    .description = "Linux kernel crypto API through AF_ALG (hardware drivers: QAT, CCP, CAAM...)",
    .priority = 5,
    .probe = afalg_probe,
    .alg_mask = afalg_alg_mask,
    .session_create = afalg_session_create,
    .session_destroy = afalg_session_destroy,
    .crypto_burst = afalg_crypto_burst,
    .cpu_features = "",
};

const struct synth_plugin *synth_plugin_afalg(void) { return &afalg_plugin; }
