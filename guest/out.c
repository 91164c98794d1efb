/* SPDX-License-Identifier: Apache-2.0 */
/*
 * synth-guest output: JSON lines. Each line is one complete object written with one write(2) and
 * flushed, so that a serial console (where the kernel may print too) carries whole lines; and the
 * names it prints for classes and statuses.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sg.h"

static void put(struct jw *w, const char *s, size_t n)
{
    if (w->len + n + 2 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (w->len + n + 2 > cap)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) {
            fputs("synth-guest: out of memory\n", stderr);
            exit(3);
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void puts_(struct jw *w, const char *s) { put(w, s, strlen(s)); }

static void quoted(struct jw *w, const char *s)
{
    put(w, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(w, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(w, esc, 6);
        } else {
            put(w, (const char *)&c, 1);
        }
    }
    put(w, "\"", 1);
}

static void key(struct jw *w, const char *k)
{
    if (w->fields++)
        put(w, ",", 1);
    quoted(w, k);
    put(w, ":", 1);
}

void jw_begin(struct jw *w, const char *type)
{
    w->len = 0;
    w->fields = 0;
    put(w, "{", 1);
    jw_str(w, "type", type);
}

void jw_str(struct jw *w, const char *k, const char *val)
{
    key(w, k);
    quoted(w, val);
}

void jw_int(struct jw *w, const char *k, int64_t val)
{
    char num[32];
    key(w, k);
    snprintf(num, sizeof(num), "%" PRId64, val);
    puts_(w, num);
}

void jw_uint(struct jw *w, const char *k, uint64_t val)
{
    char num[32];
    key(w, k);
    snprintf(num, sizeof(num), "%" PRIu64, val);
    puts_(w, num);
}

void jw_hex64(struct jw *w, const char *k, uint64_t val)
{
    char num[32];
    snprintf(num, sizeof(num), "0x%016" PRIx64, val);
    jw_str(w, k, num);
}

void jw_hex(struct jw *w, const char *k, const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    char pair[2];
    key(w, k);
    put(w, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        pair[0] = digits[p[i] >> 4];
        pair[1] = digits[p[i] & 15];
        put(w, pair, 2);
    }
    put(w, "\"", 1);
}

void jw_raw(struct jw *w, const char *k, const char *json)
{
    key(w, k);
    puts_(w, json);
}

void jw_end(struct jw *w)
{
    size_t off = 0;
    put(w, "}\n", 2);
    fflush(stdout);
    while (off < w->len) {
        ssize_t n = write(STDOUT_FILENO, w->buf + off, w->len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    w->len = 0;
}

const char *sg_class_name(uint16_t cls)
{
    switch (cls) {
    case SYNTH_CLASS_CRYPTO:
        return "crypto";
    case SYNTH_CLASS_COMPRESS:
        return "compress";
    case SYNTH_CLASS_PACKET:
        return "packet";
    default:
        return "unknown";
    }
}

const char *sg_status(int rc)
{
    if (rc == 0)
        return "ok";
    if (rc > 0)
        return synth_status_str((uint32_t)rc);
    return strerror(-rc);
}
