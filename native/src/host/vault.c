/* SPDX-License-Identifier: Apache-2.0 */
/* The device vault file: see vault_pvt.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vault_pvt.h"

static uint64_t page_up(uint64_t x) { return (x + 4095u) & ~(uint64_t)4095u; }

int synthi_vault_open(struct synth_vault *v, const char *path, uint32_t dev_class, uint32_t num_queues,
                     uint32_t ring_entries, uint64_t class_size)
{
    uint32_t stride = (uint32_t)(sizeof(struct synth_vault_queue) + (uint64_t)ring_entries * 8u);
    uint64_t class_off = 4096, queue_off = class_off + page_up(class_size);
    uint64_t size = queue_off + page_up((uint64_t)num_queues * stride);
    struct synth_vault_hdr want = {
        .magic = SYNTH_VAULT_MAGIC, .version = SYNTH_VAULT_VERSION, .dev_class = dev_class,
        .num_queues = num_queues, .ring_entries = ring_entries, .class_off = class_off,
        .class_size = class_size, .queue_off = queue_off, .size = size,
    };
    struct stat st;
    int rc;

    memset(v, 0, sizeof(*v));
    v->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (v->fd < 0)
        return -errno;
    if (fstat(v->fd, &st) < 0 || fchmod(v->fd, 0600) < 0)
        goto fail_errno;
    if ((uint64_t)st.st_size == size) {
        struct synth_vault_hdr have;
        if (pread(v->fd, &have, sizeof(have), 0) == (ssize_t)sizeof(have) && !memcmp(&have, &want, sizeof(want)))
            v->restored = 1;
    }
    if (!v->restored) {
        /* New, or left by a device of another shape: start empty. */
        if (ftruncate(v->fd, 0) < 0 || ftruncate(v->fd, (off_t)size) < 0)
            goto fail_errno;
    }
    v->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->base == MAP_FAILED) {
        v->base = NULL;
        goto fail_errno;
    }
    v->size = size;
    v->hdr = (struct synth_vault_hdr *)v->base;
    v->queue_stride = stride;
    if (!v->restored)
        memcpy(v->hdr, &want, sizeof(want));
    return 0;

fail_errno:
    rc = -errno;
    close(v->fd);
    v->fd = -1;
    return rc;
}

void synthi_vault_close(struct synth_vault *v, int unlink_path, const char *path)
{
    if (v->base) {
        if (unlink_path)
            memset(v->base, 0, v->size); /* wipe keys before the pages go */
        munmap(v->base, v->size);
    }
    if (v->fd >= 0)
        close(v->fd);
    if (unlink_path && path)
        unlink(path);
    memset(v, 0, sizeof(*v));
    v->fd = -1;
}
