/* The server's view of its directory: safe name resolution, one open file
 * and one cached SHA-256 per file (recomputed only when the file changes),
 * positioned reads, chunk hashes cached for files sent again. Implements the
 * engine's ux_provider.
 *
 * A large file's SHA-256 is computed by a thread of its own (one file at a
 * time): its lookups answer UX_E_PREPARING until then, and the result is
 * taken in at the next lookup of any name, so the engine's loop never
 * waits for it.
 *
 * A chunk whose hash is kept is lent from a read-only mapping of the file,
 * so the kernel copies it once, straight into the datagram. Only the kernel
 * touches the mapping (a file cut short under us fails that send with
 * EFAULT; it never raises SIGBUS here). Lent bytes stay valid until the
 * file's next lookup or close: the host sends everything queued before it
 * feeds the engine more input. */
#ifndef UDPXFER_FILESET_H
#define UDPXFER_FILESET_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "hcache.h"
#include "engine/server.h"

struct ux_entry {
    char *name;
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t size;
    int64_t mtime_ns, ctime_ns;
    uint64_t generation;
    uint8_t sha256[UX_HASH_LEN];
    struct ux_hfile hashes[UX_HC_SIZES]; /* this version's chunk hashes, per chunk size */
    const uint8_t *map;       /* the whole file, read-only, or NULL */
    int map_failed;           /* this version cannot be mapped: read it */
};

/* A whole-file SHA-256 computed by a thread of its own, for files of
 * async_min bytes or more, so the server's loop keeps serving others. */
struct ux_hashjob {
    pthread_t thread;
    int running;               /* a thread exists: joined when collected */
    int done, cancel, err;     /* done and err written by the thread */
    char *name;
    size_t name_len;
    int fd;
    struct stat st;            /* the version being hashed */
    uint8_t sha256[UX_HASH_LEN];
};

struct ux_fileset {
    int root;
    struct ux_entry *entries;
    uint32_t n, cap;
    uint64_t generations;
    uint64_t hashes_computed;  /* how often a whole file was hashed */
    struct ux_sha *sha;
    struct ux_hcache hcache;
    uint64_t chunks_lent;      /* sent from a mapping, not read */
    uint64_t lent_pending;     /* bytes lent since the mappings were last released */
    uint64_t async_min;        /* files this large are hashed off the loop (0: never) */
    struct ux_hashjob job;
    char *job_failed;          /* the file whose job failed last, hashed in the loop next */
};

/* Returns 0, or an errno value. */
int ux_fileset_open(struct ux_fileset *fs, const char *dir);
void ux_fileset_close(struct ux_fileset *fs);
struct ux_provider ux_fileset_provider(struct ux_fileset *fs);

#endif
