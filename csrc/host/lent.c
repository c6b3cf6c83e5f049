/* The file set's kept chunk hashes (hcache.h) and the mappings chunks are
 * lent from. */
#include "fileset_int.h"

#include <stdlib.h>
#include <sys/mman.h>

#define CACHE_MIN_SIZE (4u << 20)  /* below this, hashing again is cheaper than a file */
#define RELEASE_BYTES (8u << 20)   /* lent bytes between releases: bounds what the mappings add to RSS */
#define MAP_MIN_SIZE (1u << 20)    /* below this, reading costs less than mapping, faulting and unmapping */

/* Mappings lent chunks may still point into until everything output so
 * far is sent: unmapped then (ux_fileset_sent), never before. */
void ux_unmap(struct ux_fileset *fs, struct ux_entry *e)
{
    if (e->map) {
        if (fs->unmapq_n == fs->unmapq_cap) {
            uint32_t cap = fs->unmapq_cap ? 2 * fs->unmapq_cap : 64;
            struct ux_mapping *q = realloc(fs->unmapq, cap * sizeof *q);
            if (q) {
                fs->unmapq = q;
                fs->unmapq_cap = cap;
            }
        }
        if (fs->unmapq_n < fs->unmapq_cap)
            fs->unmapq[fs->unmapq_n++] = (struct ux_mapping){e->map, e->size};
        /* else (out of memory) kept mapped: an address range, not a leak of data */
    }
    e->map = NULL;
    e->map_failed = 0;
}

void ux_fileset_sent(struct ux_fileset *fs)
{
    for (uint32_t i = 0; i < fs->unmapq_n; i++)
        munmap((void *)fs->unmapq[i].addr, fs->unmapq[i].len);
    fs->unmapq_n = 0;
}

struct ux_hfile *ux_cached(struct ux_fileset *fs, struct ux_entry *e, uint32_t cs)
{
    struct ux_hfile *slot = NULL;
    for (int i = 0; i < UX_HC_SIZES; i++) {
        struct ux_hfile *f = &e->hashes[i];
        if (f->fd >= 0 && f->chunk == cs)
            return f;
        if (!slot || (slot->fd >= 0 && (f->fd < 0 || f->last_use < slot->last_use)))
            slot = f;
    }
    if (e->size < CACHE_MIN_SIZE)
        return NULL;
    ux_hcache_drop(&fs->hcache, slot);
    if (fs->hcache.files >= UX_HC_FILES) {
        struct ux_hfile *lru = NULL;
        for (uint32_t i = 0; i < fs->n; i++)
            for (int j = 0; j < UX_HC_SIZES; j++) {
                struct ux_hfile *f = &fs->entries[i].hashes[j];
                if (f->fd >= 0 && (!lru || f->last_use < lru->last_use))
                    lru = f;
            }
        if (lru)
            ux_hcache_drop(&fs->hcache, lru);
    }
    return ux_hcache_open(&fs->hcache, slot, cs) == 0 ? slot : NULL;
}

/* Drop the page-table entries of the mappings (the page cache keeps the
 * data): a mapped file would otherwise count whole in the resident size.
 * Whole mappings, not just the bytes lent: the kernel maps neighbouring
 * cached pages on each fault too. */
static void release_mappings(struct ux_fileset *fs)
{
    for (uint32_t i = 0; i < fs->n; i++)
        if (fs->entries[i].map)
            madvise((void *)fs->entries[i].map, fs->entries[i].size, MADV_DONTNEED);
    fs->lent_pending = 0;
}

const uint8_t *ux_lend(struct ux_fileset *fs, struct ux_entry *e, int fd, uint64_t off, size_t len)
{
    if (e->size < MAP_MIN_SIZE)
        return NULL;
    if (!e->map && !e->map_failed) {
        void *m = mmap(NULL, e->size, PROT_READ, MAP_SHARED, fd, 0);
        e->map = m == MAP_FAILED ? NULL : m;
        e->map_failed = !e->map;
    }
    if (!e->map)
        return NULL;
    if (fs->lent_pending >= RELEASE_BYTES)
        release_mappings(fs);
    fs->lent_pending += len;
    fs->chunks_lent++;
    return e->map + off;
}
