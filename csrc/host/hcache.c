#include "hcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK_BYTES (UX_HC_PER_BLOCK * UX_SHA256_LEN)

void ux_hfile_init(struct ux_hfile *f)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

static int temp_file(void)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
        return fd;
    char path[4096];
    snprintf(path, sizeof path, "%s/udpxfer-hashes.XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static void flush(struct ux_hblock *b)
{
    /* Best effort: a block that fails to reach the file is recomputed later. */
    if (b->valid && b->dirty &&
        pwrite(b->fd, b->h, BLOCK_BYTES, (off_t)(b->block * BLOCK_BYTES)) != (ssize_t)BLOCK_BYTES)
        b->valid = 0;
    b->dirty = 0;
}

int ux_hcache_open(struct ux_hcache *c, struct ux_hfile *f, uint32_t chunk)
{
    if (c->broken)
        return -1;
    if (!c->blocks && !(c->blocks = calloc(UX_HC_BLOCKS, sizeof *c->blocks)))
        return -1;
    f->fd = temp_file();
    if (f->fd < 0) {
        c->broken = 1;
        return -1;
    }
    f->chunk = chunk;
    f->id = ++c->ids;
    f->last_use = ++c->clock;
    c->files++;
    return 0;
}

void ux_hcache_drop(struct ux_hcache *c, struct ux_hfile *f)
{
    if (f->fd < 0)
        return;
    for (int i = 0; c->blocks && i < UX_HC_BLOCKS; i++)
        if (c->blocks[i].id == f->id)
            c->blocks[i].valid = c->blocks[i].dirty = 0;
    close(f->fd);
    c->files--;
    ux_hfile_init(f);
}

void ux_hcache_free(struct ux_hcache *c)
{
    free(c->blocks);
    memset(c, 0, sizeof *c);
}

static struct ux_hblock *block_of(struct ux_hcache *c, struct ux_hfile *f, uint32_t index)
{
    uint64_t block = index / UX_HC_PER_BLOCK;
    struct ux_hblock *b = &c->blocks[(f->id * 7 + block) % UX_HC_BLOCKS];
    f->last_use = ++c->clock;
    if (b->valid && b->id == f->id && b->block == block)
        return b;
    flush(b);
    ssize_t n = pread(f->fd, b->h, BLOCK_BYTES, (off_t)(block * BLOCK_BYTES));
    if (n < 0)
        n = 0;
    memset(b->h + n, 0, BLOCK_BYTES - (size_t)n); /* beyond the end: not computed */
    b->id = f->id;
    b->fd = f->fd;
    b->block = block;
    b->valid = 1;
    return b;
}

static int is_zero(const uint8_t *p)
{
    static const uint8_t zero[UX_SHA256_LEN];
    return memcmp(p, zero, UX_SHA256_LEN) == 0;
}

int ux_hcache_get(struct ux_hcache *c, struct ux_hfile *f, uint32_t index, uint8_t out[UX_SHA256_LEN])
{
    const uint8_t *h = block_of(c, f, index)->h + (size_t)(index % UX_HC_PER_BLOCK) * UX_SHA256_LEN;
    if (is_zero(h)) {
        c->misses++;
        return 0;
    }
    c->hits++;
    memcpy(out, h, UX_SHA256_LEN);
    return 1;
}

void ux_hcache_put(struct ux_hcache *c, struct ux_hfile *f, uint32_t index, const uint8_t h[UX_SHA256_LEN])
{
    struct ux_hblock *b = block_of(c, f, index);
    memcpy(b->h + (size_t)(index % UX_HC_PER_BLOCK) * UX_SHA256_LEN, h, UX_SHA256_LEN);
    b->dirty = 1;
}
