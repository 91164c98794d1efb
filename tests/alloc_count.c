/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LD_PRELOAD for tests/test_no_alloc.py: counts the heap allocations made by the data path's
 * worker threads (named "synth-worker"), so a test can check that serving an operation allocates
 * nothing. Forwards to glibc's own allocator (__libc_*), so no dlsym is needed.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <sys/prctl.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static unsigned long worker_allocs;

static void count(void)
{
    char name[16] = "";
    prctl(PR_GET_NAME, name, 0, 0, 0);
    if (strcmp(name, "synth-worker") == 0)
        __atomic_add_fetch(&worker_allocs, 1, __ATOMIC_RELAXED);
}

unsigned long synth_test_worker_allocs(void) { return __atomic_load_n(&worker_allocs, __ATOMIC_RELAXED); }

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n)
{
    void *p;
    count();
    p = __libc_memalign(a, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}
