/* SPDX-License-Identifier: Apache-2.0 */
/*
 * provider-kat's shared declarations: the run's options and state, the provider's counters, one
 * AEAD message and the trace of its calls, and the functions each file gives the others. The
 * program's files, each using only the ones above it (provider_kat.c uses them all):
 *   provider_kat_report.c  a failed check, printed; hex of where two buffers differ
 *   provider_kat_msg.c     one AEAD message through EVP, its shape, what the counters show of it
 *   provider_kat_known.c   known answers: provider_vectors.h and NIST CAVP GCM files (--rsp)
 *   provider_kat_draw.c    the differential's PRNG and what it draws with it
 *   provider_kat_tls.c     the differential's TLS 1.2 records, as libssl makes them
 *   provider_kat_diff.c    the differential run: conversations on a context pair, threads
 *   provider_kat.c         main: options, set up, the counters' verdict, the summary
 */
#ifndef PK_PROVIDER_KAT_H
#define PK_PROVIDER_KAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/provider.h>

enum pk_alg { PK_AES128_GCM, PK_AES256_GCM, PK_CHACHA20_POLY1305, PK_ALG_COUNT };

#define MAX_MSG 20000u
#define MAX_AAD 300u
#define MAX_CUTS 6u
#define MAX_STEPS 40u
#define SLACK 64u                                   /* room around each buffer in the arena */
#define ARENA (2u * (MAX_MSG + 16u + SLACK) + 2u * SLACK)
#define TAG 16u

extern const char *const pk_alg_labels[PK_ALG_COUNT]; /* "aes-128-gcm", ... as cases and --unserved name them */

/* ---- the provider's counters ---- */

enum pk_counter { C_OPS, C_FALLBACKS, C_NO_DEVICE, C_RESET, C_RING_FULL, C_TIMEOUT, C_UNSUPPORTED, C_BUSY, C_COUNT };

extern const char *const pk_counter_names[C_COUNT];

struct pk_counters {
    uint64_t v[C_COUNT];
    unsigned have; /* bit per counter the provider answered */
};

/* ---- options and the run's state ---- */

struct pk_opts {
    const char *provider;
    unsigned long iterations;
    uint64_t seed;
    long only;                 /* -1: every iteration */
    int json, verbose;
    int expect_device, expect_fallback;
    unsigned unserved;         /* bit per pk_alg */
    const char *rsp[16];
    unsigned nrsp;
    unsigned threads;          /* the differential's threads */
    int no_kat, no_diff;
};

struct pk_run {
    struct pk_opts o;
    EVP_CIPHER *test[PK_ALG_COUNT], *ref[PK_ALG_COUNT];
    OSSL_PROVIDER *prov;
    int counters;              /* the provider has synth-ops */
    int threaded;              /* others run too: the counters move under us, only totals are checked */
    unsigned long kat_cases, kat_failures, diff_ops, diff_failures, failures;
    unsigned long dev_ops, other_ops;
    unsigned long dev_served;  /* device operations of algorithms the device serves */
    unsigned long dev_rejects; /* those of them that must fail authentication */
    uint64_t other_fallbacks;  /* fallbacks counted during operations of other shapes */
    uint8_t *a_test, *a_ref;   /* the two arenas */
};

/* ---- one AEAD message through EVP ---- */

enum pk_init { INIT_FULL, INIT_SPLIT, INIT_REUSE, INIT_REUSE_KEY };
enum pk_tag_at { TAG_AT_INIT, TAG_AFTER_AAD, TAG_AFTER_DATA };
extern const char *const pk_tag_at_names[TAG_AFTER_DATA + 1];

struct pk_msg {
    enum pk_alg alg;
    int enc;
    enum pk_init init;
    const uint8_t *key, *iv;       /* 12-byte IV */
    const uint8_t *aad;
    size_t aad_len;
    size_t aad_cut[MAX_CUTS];      /* the AAD's pieces, one update(NULL) each */
    unsigned n_aad;
    size_t len;                    /* the input is in the arena at in_off */
    size_t data_cut[MAX_CUTS];     /* the data's pieces, one update each (none: no update call) */
    unsigned n_data;
    const uint8_t *tag;            /* decrypt: the tag to check */
    size_t tag_len;                /* decrypt: its length; encrypt: how much of the tag to read */
    enum pk_tag_at tag_at;
    int by_params;                 /* tags through OSSL_PARAMs rather than EVP_CIPHER_CTX_ctrl */
    int dup;                       /* go on with a copy of the context after the AAD */
    size_t in_off, out_off;        /* equal: in place */
};

struct pk_step {
    char what; /* I init, i IV init, P lengths, T set tag, A AAD, D copy, U update, F final, G get tag */
    int rc;
    long val;
};

struct pk_trace {
    unsigned n;
    struct pk_step s[MAX_STEPS];
    uint8_t tag[TAG];
    size_t out_len;
    int ok; /* every call succeeded */
};

/* ---- provider_kat_report.c: failed checks ---- */

void pk_json_str(FILE *f, const char *s);
/* One failed check, named by its case: counted in r->failures, printed (the first ones only). */
void pk_fail(struct pk_run *r, const char *cas, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* From now on every failure is printed, however many came before (the verdict on the counters). */
void pk_fail_print_all(void);
void pk_hex(char *buf, size_t size, const uint8_t *p, size_t n);
/* "at byte K of N: expected .. got .." (up to 24 bytes from the first difference). */
void pk_describe_diff(char *buf, size_t size, const uint8_t *exp, const uint8_t *got, size_t n);

/* ---- provider_kat_msg.c: one AEAD message, the counters around it ---- */

/* The counters now; 0 if the provider has none (r->counters) or does not answer. */
int pk_counters_read(struct pk_run *r, struct pk_counters *c);
/* The provider's synth-device, "" if none; a static buffer. */
const char *pk_device_name(struct pk_run *r);
/* What the counters must show after one operation of the provider under test (b: read before it). */
void pk_check_op(struct pk_run *r, const char *cas, enum pk_alg alg, int device, int reject,
                 const struct pk_counters *b);
/* Has the message the shape a device serves (see provider_kat.c)? */
int pk_device_shaped(const struct pk_msg *m);
/* Run m on *ctxp, input and output in `arena`, every call into the trace. */
void pk_run_msg(EVP_CIPHER_CTX **ctxp, EVP_CIPHER *cipher, const struct pk_msg *m, uint8_t *arena,
                struct pk_trace *t);
int pk_trace_equal(const struct pk_trace *a, const struct pk_trace *b);
void pk_describe_trace(char *buf, size_t size, const struct pk_trace *t);
/* The arena as it must be: the fill, the input at in_off, `out` (or nothing) at out_off. */
void pk_arena_expect(uint8_t *a, uint8_t fill, const struct pk_msg *m, const uint8_t *in, const uint8_t *out);
/* The reference AEAD, one shot, by the default provider: ct and the full tag. */
int pk_ref_seal(struct pk_run *r, enum pk_alg alg, int enc, const uint8_t *key, const uint8_t *iv,
                const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag,
                size_t tag_len);

/* ---- provider_kat_known.c: known answers ---- */

/* Every vector of provider_vectors.h; 0 or -ENOMEM. */
int pk_kat_builtin(struct pk_run *r);
/* Every 96-bit-IV case of a NIST CAVP GCM file; 0, -errno of fopen, -ENOMEM, or -EINVAL if it has none. */
int pk_kat_rsp(struct pk_run *r, const char *path);

/* ---- provider_kat_draw.c: the differential's draws ---- */

uint64_t pk_rnd(uint64_t *s);
size_t pk_below(uint64_t *s, size_t n);
int pk_chance(uint64_t *s, unsigned pct);
void pk_fill(uint64_t *s, uint8_t *p, size_t n);
size_t pk_draw_len(uint64_t *s);
size_t pk_draw_aad(uint64_t *s);
unsigned pk_cut(uint64_t *s, size_t n, size_t *cuts, unsigned pct_many);
size_t pk_draw_taglen(uint64_t *s, enum pk_alg alg);
void pk_place(uint64_t *s, struct pk_msg *m);

/* ---- provider_kat_tls.c: TLS 1.2 records ---- */

void pk_diff_tls12(struct pk_run *r, uint64_t *s, enum pk_alg alg, const char *iter);
void pk_diff_tls12_chacha(struct pk_run *r, uint64_t *s, const char *iter);

/* ---- provider_kat_diff.c: the differential run ---- */

/* The differential's conversations (or only --only), on --threads threads; 0, -ENOMEM or -EAGAIN. */
int pk_differential(struct pk_run *r);

#endif
