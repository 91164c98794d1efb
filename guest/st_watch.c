/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest watch: synthetic devices coming and going on the PCI bus (ACPI hot-plug by
 * virt-synth attach / detach). Every ~100 ms a synth_pci_scan; the devices there at start are
 * listed once ("present"), then each device that appears is "added" and each that goes is
 * "removed". A crypto device that appears is used once: an AES-256-GCM session keyed
 * synth.key[0:32], synth.data sealed with IV synth.iv[0:12] and AAD synth.aad, the ciphertext and
 * tag printed ("used") for the host to check; then the session is destroyed and the device closed
 * (unmapped), so that a detach finds the guest holding nothing. Every device is opened only for
 * as long as that takes. A device that cannot be opened right after it appears (its BAR or its
 * backend not ready yet) is tried again on each scan for a second before the failure is reported.
 * Inputs synth.watch_ms and synth.watch_events; lines and fields in docs/guest.md ("Hot-plug").
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg.h"
#include "synth/clock_pvt.h"

#define SCAN_NS 100000000ull      /* a scan every 100 ms */
#define RETRY_NS 1000000000ull    /* how long a device that appeared may fail to open */
#define OPEN_TIMEOUT_MS 250       /* one open attempt: the backend's acknowledgement */
#define WATCH_MAX 64u             /* devices tracked at once */

enum state { ST_PENDING, ST_SEEN };

struct watched {
    char bdf[16];
    enum state state;
    int initial;        /* on the bus at start: "present", not "added" */
    uint64_t first_ns;  /* when the scan first listed it */
    int last_rc;        /* the last open attempt's error (pending) */
    int mark;           /* listed by the current scan */
};

struct watch {
    const struct sg_params *p;
    const struct sg_watch_opts *o;
    struct jw w;
    struct watched devs[WATCH_MAX];
    unsigned n;
    uint64_t t0, events;
    unsigned present, added, removed, used, failed;
};

/* ---- inputs ---- */

void sg_watch_defaults(struct sg_watch_opts *o)
{
    o->ms = 60000;
    o->events = 0;
}

int sg_watch_set(struct sg_watch_opts *o, const char *name, const char *value)
{
    const struct sg_u32_param nums[] = {{"watch_ms", &o->ms, 0, UINT32_MAX}, {"watch_events", &o->events, 0, UINT32_MAX}};
    return sg_param_u32(nums, sizeof(nums) / sizeof(nums[0]), name, value);
}

static int set_opts(void *ctx, const char *name, const char *value) { return sg_watch_set(ctx, name, value); }

int sg_watch_file(struct sg_watch_opts *o, const char *path) { return sg_params_each(path, "synth.watch_", set_opts, o); }

/* ---- lines ---- */

static void begin(struct watch *s, const char *event, const char *bdf)
{
    jw_begin(&s->w, "watch");
    jw_str(&s->w, "event", event);
    jw_str(&s->w, "dev", bdf);
}

static void end(struct watch *s)
{
    jw_uint(&s->w, "t_ms", (synthi_now_ns() - s->t0) / 1000000u);
    jw_end(&s->w);
    s->events++;
}

static int limit_reached(const struct watch *s) { return s->o->events && s->events >= s->o->events; }

/* ---- the use of a crypto device that appeared ---- */

static void use_crypto(struct watch *s, struct watched *x, struct synth_dev *dev, const struct synth_dev_info *info)
{
    const struct sg_params *p = s->p;
    struct synth_queue *q = synth_dev_queue(dev, 0);
    struct synth_crypto_session_params sp = {.alg = SYNTH_ALG_AES256_GCM, .key_len = 32, .iv_len = 12,
                                             .tag_len = 16};
    uint32_t len = (uint32_t)p->data.len, dlen = len ? len : 1, sid = 0;
    int64_t data = -1, aad = -1, iv = -1, tag = -1;
    const char *step = "session";
    int rc, have_session = 0;

    if (!q) {
        rc = -ENODEV;
        step = "queue";
    } else if (!(info->crypto_alg_mask & (1u << SYNTH_ALG_AES256_GCM))) {
        rc = (int)SYNTH_ST_NOT_SUPPORTED;
    } else if (p->key.len < 32) {
        rc = -EINVAL;
        step = "key"; /* synth.key shorter than 32 bytes */
    } else {
        memcpy(sp.key, p->key.p, 32);
        rc = synth_crypto_session_create(q, &sp, &sid);
        memset(sp.key, 0, sizeof(sp.key));
        have_session = rc == 0;
    }
    if (rc == 0) {
        step = "buffers";
        data = synth_buf_alloc(q, dlen);
        aad = synth_buf_alloc(q, 64);
        iv = synth_buf_alloc(q, 16);
        tag = synth_buf_alloc(q, 16);
        rc = data < 0 ? (int)data : aad < 0 ? (int)aad : iv < 0 ? (int)iv : tag < 0 ? (int)tag : 0;
    }
    if (rc == 0) {
        step = "encrypt";
        memcpy(synth_buf_ptr(q, (uint32_t)data), p->data.p, len);
        memcpy(synth_buf_ptr(q, (uint32_t)aad), p->aad.p, p->aad.len);
        memcpy(synth_buf_ptr(q, (uint32_t)iv), p->iv.p, 12);
        rc = synth_crypto_op(q, SYNTH_OP_CRYPTO_ENCRYPT, sid, (uint32_t)data, (uint32_t)data, len, (uint32_t)aad,
                             (uint32_t)p->aad.len, (uint32_t)iv, (uint32_t)tag);
    }
    begin(s, "used", x->bdf);
    jw_str(&s->w, "backend", info->backend);
    jw_str(&s->w, "alg", "aes-256-gcm");
    if (rc == 0) {
        jw_hex(&s->w, "ciphertext", synth_buf_ptr(q, (uint32_t)data), len);
        jw_hex(&s->w, "tag", synth_buf_ptr(q, (uint32_t)tag), 16);
    } else {
        jw_str(&s->w, "step", step);
    }
    jw_str(&s->w, "status", sg_status(rc));
    end(s);
    rc == 0 ? s->used++ : s->failed++;
    if (tag >= 0)
        synth_buf_free(q, (uint32_t)tag, 16);
    if (iv >= 0)
        synth_buf_free(q, (uint32_t)iv, 16);
    if (aad >= 0)
        synth_buf_free(q, (uint32_t)aad, 64);
    if (data >= 0)
        synth_buf_free(q, (uint32_t)data, dlen);
    if (have_session)
        synth_crypto_session_destroy(q, sid);
}

/* ---- devices ---- */

/* Open the device to learn its class (and use it if it is a crypto device that appeared), then
 * close it. Leaves it pending while it fails to open within RETRY_NS of its first sighting. */
static void handle(struct watch *s, struct watched *x, uint64_t now, int gone)
{
    struct synth_open_opts opts = {.features = 0, .timeout_ms = OPEN_TIMEOUT_MS, .reserved = 0};
    const char *event = x->initial ? "present" : "added";
    struct synth_dev *dev = NULL;
    struct synth_dev_info info;
    int rc = gone ? x->last_rc : synth_dev_open_pci(x->bdf, &opts, &dev);

    if (rc < 0) {
        x->last_rc = rc;
        if (!gone && now - x->first_ns < RETRY_NS)
            return; /* try again on the next scan */
        begin(s, event, x->bdf);
        jw_str(&s->w, "class", "unknown");
        jw_str(&s->w, "status", sg_status(rc));
        end(s);
        s->failed++;
        x->initial ? s->present++ : s->added++;
        x->state = ST_SEEN;
        return;
    }
    synth_dev_get_info(dev, &info);
    begin(s, event, x->bdf);
    jw_str(&s->w, "class", sg_class_name(info.dev_class));
    end(s);
    x->initial ? s->present++ : s->added++;
    x->state = ST_SEEN;
    if (!x->initial && info.dev_class == SYNTH_CLASS_CRYPTO)
        use_crypto(s, x, dev, &info);
    synth_dev_close(dev);
}

static int by_address(const void *a, const void *b) { return strcmp(a, b); }

/* One scan: new devices tracked (and handled), devices gone reported. 0, or a negative errno. */
static int scan(struct watch *s, int initial)
{
    char found[WATCH_MAX][16];
    int count = synth_pci_scan(found, WATCH_MAX);
    uint64_t now = synthi_now_ns();

    if (count < 0)
        return count;
    if (count > (int)WATCH_MAX)
        count = WATCH_MAX;
    qsort(found, (size_t)count, sizeof(found[0]), by_address);
    for (unsigned i = 0; i < s->n; i++)
        s->devs[i].mark = 0;
    for (int k = 0; k < count; k++) {
        unsigned i;
        for (i = 0; i < s->n && strcmp(s->devs[i].bdf, found[k]); i++)
            ;
        if (i == s->n) {
            if (s->n == WATCH_MAX)
                continue;
            memset(&s->devs[i], 0, sizeof(s->devs[i]));
            snprintf(s->devs[i].bdf, sizeof(s->devs[i].bdf), "%s", found[k]);
            s->devs[i].state = ST_PENDING;
            s->devs[i].initial = initial;
            s->devs[i].first_ns = now;
            s->n++;
        }
        s->devs[i].mark = 1;
    }
    for (unsigned i = 0; i < s->n && !limit_reached(s); i++) {
        struct watched *x = &s->devs[i];
        if (x->mark && x->state == ST_PENDING)
            handle(s, x, now, 0);
    }
    for (unsigned i = 0; i < s->n && !limit_reached(s);) {
        struct watched *x = &s->devs[i];
        if (x->mark) {
            i++;
            continue;
        }
        if (x->state == ST_PENDING)
            handle(s, x, now, 1); /* went before it would open: its failure, then its removal */
        if (limit_reached(s))
            break;
        begin(s, "removed", x->bdf);
        end(s);
        s->removed++;
        s->devs[i] = s->devs[--s->n];
    }
    return 0;
}

int sg_watch(const struct sg_params *p, const struct sg_watch_opts *o)
{
    static struct watch s;
    uint64_t stop, next;
    int rc;

    memset(&s, 0, sizeof(s));
    s.p = p;
    s.o = o;
    sg_quit_on_signals();
    s.t0 = synthi_now_ns();
    stop = s.t0 + (uint64_t)o->ms * 1000000ull;
    rc = scan(&s, 1);
    /* a device there at start that would not open yet is retried like one that appeared */
    while (rc == 0 && !sg_quit && !limit_reached(&s)) {
        unsigned pending = 0;
        for (unsigned i = 0; i < s.n; i++)
            pending += s.devs[i].initial && s.devs[i].state == ST_PENDING;
        if (!pending)
            break;
        sg_nap_ns(SCAN_NS);
        rc = scan(&s, 1);
    }
    if (rc == 0) {
        jw_begin(&s.w, "watch-start");
        jw_uint(&s.w, "watch_ms", o->ms);
        jw_uint(&s.w, "watch_events", o->events);
        jw_uint(&s.w, "interval_ms", SCAN_NS / 1000000u);
        jw_uint(&s.w, "devices", s.n);
        jw_uint(&s.w, "t_ms", (synthi_now_ns() - s.t0) / 1000000u);
        jw_end(&s.w);
    }
    next = synthi_now_ns() + SCAN_NS;
    while (rc == 0 && !sg_quit && !limit_reached(&s)) {
        uint64_t now = synthi_now_ns();
        if (o->ms && now >= stop)
            break;
        if (now < next) {
            sg_nap_ns(o->ms && stop < next ? stop - now : next - now);
            continue;
        }
        next = now + SCAN_NS;
        rc = scan(&s, 0);
    }
    if (rc < 0) {
        jw_begin(&s.w, "error");
        jw_str(&s.w, "what", "scanning the PCI bus for synthetic devices");
        jw_str(&s.w, "error", strerror(-rc));
        jw_end(&s.w);
        s.failed++;
    }
    jw_begin(&s.w, "summary");
    jw_str(&s.w, "command", "watch");
    jw_uint(&s.w, "devices", s.n);
    jw_uint(&s.w, "present", s.present);
    jw_uint(&s.w, "added", s.added);
    jw_uint(&s.w, "removed", s.removed);
    jw_uint(&s.w, "used", s.used);
    jw_uint(&s.w, "failed", s.failed);
    jw_uint(&s.w, "events", s.events);
    jw_uint(&s.w, "elapsed_ms", (synthi_now_ns() - s.t0) / 1000000u);
    jw_end(&s.w);
    free(s.w.buf);
    return s.failed ? 1 : 0;
}
