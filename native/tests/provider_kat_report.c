/* SPDX-License-Identifier: Apache-2.0 */
/*
 * provider-kat: a failed check, printed with its case (plain text, or a JSON object a line with
 * --json; the first MAX_PRINTED only, until the verdict on the counters), and hex of where two
 * buffers differ, for the messages.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "provider_kat.h"

#define MAX_PRINTED 40ul                            /* failures printed in full */

void pk_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long printed;
static int print_all; /* the verdict on the counters is printed whatever came before */

/* One failed check, named by its case. */
void pk_fail(struct pk_run *r, const char *cas, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->failures++;
    pthread_mutex_lock(&print_lock);
    if (++printed > MAX_PRINTED && !print_all) {
        if (printed == MAX_PRINTED + 1)
            fprintf(stderr, "provider-kat: more failures; only the first %lu are printed\n", MAX_PRINTED);
        pthread_mutex_unlock(&print_lock);
        return;
    }
    if (r->o.json) {
        printf("{\"event\": \"fail\", \"case\": ");
        pk_json_str(stdout, cas);
        printf(", \"error\": ");
        pk_json_str(stdout, msg);
        printf("}\n");
    } else {
        printf("FAIL %s: %s\n", cas, msg);
    }
    fflush(stdout);
    pthread_mutex_unlock(&print_lock);
}

void pk_fail_print_all(void)
{
    pthread_mutex_lock(&print_lock);
    print_all = 1;
    pthread_mutex_unlock(&print_lock);
}

void pk_hex(char *buf, size_t size, const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i < n && 2 * i + 3 < size; i++)
        snprintf(buf + 2 * i, 3, "%02x", p[i]);
    buf[2 * i] = 0;
}

/* "at byte K of N: expected .. got .." (up to 24 bytes from the first difference). */
void pk_describe_diff(char *buf, size_t size, const uint8_t *exp, const uint8_t *got, size_t n)
{
    char e[64], g[64];
    size_t k = 0, m;

    while (k < n && exp[k] == got[k])
        k++;
    m = n - k < 24 ? n - k : 24;
    pk_hex(e, sizeof(e), exp + k, m);
    pk_hex(g, sizeof(g), got + k, m);
    snprintf(buf, size, "at byte %zu of %zu: expected %s, got %s", k, n, e, g);
}
