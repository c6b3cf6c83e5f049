/* The server's cache of chunk hashes, so a file sent again is not hashed
 * again. Hashes live in an unlinked temporary file per served file (sparse:
 * an all-zero entry means "not computed yet"), which the page cache keeps
 * in memory if it can; the process holds only a small table of 16 KiB
 * blocks of it. Nothing here grows with the file. */
#ifndef UDPXFER_HCACHE_H
#define UDPXFER_HCACHE_H

#include <stdint.h>

#include "engine/hash.h"

#define UX_HC_PER_BLOCK 512 /* hashes per block: 16 KiB */
#define UX_HC_BLOCKS 64     /* blocks held in memory: 1 MiB */
#define UX_HC_FILES 32      /* temporary files open at once */
#define UX_HC_SIZES 2       /* chunk sizes cached per file: clients behind
                               different MTUs (loopback, Ethernet) */

/* One served file's cache; fd < 0 while it has none. */
struct ux_hfile {
    int fd;
    uint32_t chunk;     /* the chunk size these hashes are for */
    uint64_t id;        /* never reused, so stale blocks never match */
    uint64_t last_use;
};

struct ux_hblock {
    uint64_t id, block;
    int fd, valid, dirty;
    uint8_t h[UX_HC_PER_BLOCK * UX_SHA256_LEN];
};

struct ux_hcache {
    struct ux_hblock *blocks;
    uint64_t ids, clock;
    int files;
    int broken;         /* no temporary file could be made: stop trying */
    uint64_t hits, misses;
};

void ux_hfile_init(struct ux_hfile *f);
void ux_hcache_free(struct ux_hcache *c);
/* Give F a cache for chunk size CHUNK. Returns 0, or -1 if it cannot have
 * one (the caller then hashes every time). The caller keeps at most
 * UX_HC_FILES open, dropping the least recently used. */
int ux_hcache_open(struct ux_hcache *c, struct ux_hfile *f, uint32_t chunk);
/* Forget F's hashes (the file changed or is closed). */
void ux_hcache_drop(struct ux_hcache *c, struct ux_hfile *f);
/* 1 and OUT filled if chunk INDEX's hash is known, else 0. */
int ux_hcache_get(struct ux_hcache *c, struct ux_hfile *f, uint32_t index, uint8_t out[UX_SHA256_LEN]);
void ux_hcache_put(struct ux_hcache *c, struct ux_hfile *f, uint32_t index, const uint8_t h[UX_SHA256_LEN]);

#endif
