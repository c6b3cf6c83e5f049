/* The server's view of what it serves: the folder (the tree ".") and any
 * named shares, safe name resolution, one cached SHA-256 per file version
 * (recomputed only when the file changes), chunk hashes kept for files
 * sent again, chunk-hash trees for clients holding a copy, and listings of
 * folders (catalog.h). Implements the engine's ux_provider.
 *
 * Files are opened on demand and at most UX_FS_OPEN stay open (the least
 * recently used is closed; it is reopened, and checked to be the same
 * file, when it is needed again), so a tree of any size is served within
 * the descriptor limit, and a deleted or replaced file does not stay open.
 *
 * A large file's SHA-256 (and tree) is computed by a thread of its own
 * (hashjob.h, one file at a time): its lookups answer UX_E_PREPARING
 * until then, and the result is taken in at the next lookup, so the
 * engine's loop never waits for it.
 *
 * What computing costs is counted in work units (a byte hashed is one,
 * an entry walked UX_ENTRY_WORK) and charged by the engine to the asker's
 * budgets; a lookup computes what is not known yet only as far as the
 * budgets let it (ux_lookup.may): otherwise it answers from what is
 * computed, "preparing" for a listing or a file's hash, an offer without
 * a root for a tree. Trees are kept per (file version, chunk size) and
 * listings per (folder, tree generation), within bounds; what a proven
 * client opened a session on goes last.
 *
 * A chunk whose hash is kept is lent from a read-only mapping of the file,
 * so the kernel copies it once, straight into the datagram. Only the kernel
 * touches the mapping (a file cut short under us fails that send with
 * EFAULT; it never raises SIGBUS here). Lent bytes stay valid until the
 * file's next lookup or close: the host sends everything queued before it
 * feeds the engine more input. */
#ifndef UDPXFER_FILESET_H
#define UDPXFER_FILESET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "engine/layout.h"
#include "engine/server.h"
#include "engine/tree.h"
#include "sparse.h"
#include "hashjob.h"
#include "hcache.h"

#define UX_FS_OPEN 256        /* served files open at once */
#define UX_FS_RING (4 * UX_FS_OPEN) /* the order they were opened in */
#define UX_FS_TREES 2         /* chunk sizes whose trees a file keeps */
#define UX_FS_ROOTS 32        /* the folder and its shares */
#define UX_FS_TREE_BYTES (512ull << 20) /* trees kept, in all */
#define UX_LOOKUP_WORK 4096   /* for opening and checking a file, or looking at a tree's events */

struct ux_catalog;

/* A chunk-hash tree at one chunk size, of a file or a listing. */
struct ux_ftree {
    uint32_t cs;              /* 0: none */
    int proven;               /* a proven client opened a session on it */
    uint64_t last_use;
    struct ux_tree tree;
};

struct ux_entry {
    char *name;               /* as served: "sub/f" or "share/sub/f" */
    size_t name_len;
    int root;                 /* the tree it is in */
    size_t rel;               /* offset of its path within that tree, in name */
    int fd;                   /* -1 while closed */
    uint64_t last_open;
    dev_t dev;
    ino_t ino;
    uint64_t size;
    int64_t mtime_ns, ctime_ns;
    uint64_t generation;
    uint8_t sha256[UX_HASH_LEN];
    struct ux_hfile hashes[UX_HC_SIZES]; /* this version's chunk hashes, per chunk size */
    struct ux_ftree trees[UX_FS_TREES];
    struct ux_extent holes;   /* where this version's data lies, as last read */
    const uint8_t *map;       /* the whole file, read-only, or NULL */
    int map_failed;           /* this version cannot be mapped: read it */
    uint32_t chain;           /* next entry in its hash bucket, +1; 0 ends */
};

#define UX_LISTING_TREES 4   /* chunk sizes whose trees a listing keeps */

/* A listing of a folder as served (catalog.c builds the text). */
struct ux_vlisting {
    char *remote;             /* what was asked for */
    char *text;
    size_t len;
    uint64_t generation;      /* this text's version (cookies bind it) */
    uint64_t catalog_gen;     /* the tree's generation it was built from */
    uint64_t waiting_gen;     /* a build at this generation waits for a file being hashed */
    uint8_t sha256[UX_HASH_LEN];
    uint64_t last_use;
    int proven;               /* a proven client opened a session on it: it goes last */
    int waiting;              /* its build waits for a file being hashed (begun, paid for) */
    struct ux_ftree trees[UX_LISTING_TREES];
};
#define UX_FS_LISTINGS 64
#define UX_FS_LISTING_BYTES (256ull << 20) /* listing texts kept, in all */
#define UX_LISTING_HANDLE 0x80000000u /* handles of listings: this bit and the slot */

/* Files of a listing asked for as one (engine/layout.h), as served. */
struct ux_vbatch {
    char *remote;             /* the folder; NULL: a free slot */
    uint8_t digest[UX_HASH_LEN]; /* the selection's, at its chunk size */
    uint32_t cs;
    uint64_t generation;
    uint64_t last_use;
    uint32_t nfiles;
    char **names;             /* each file's name as served */
    uint8_t (*sha)[UX_HASH_LEN]; /* and the SHA-256 the listing gave it */
    uint32_t *handle;         /* its file handle once looked up (0: not yet) */
    struct ux_layout layout;
};
#define UX_FS_BATCHES 16
#define UX_BATCH_HANDLE 0x40000000u   /* handles of batches: this bit and the slot */

struct ux_root {
    char *name;               /* "." or the share's name */
    int fd;
    struct ux_catalog *catalog; /* its structure, kept current; NULL until listed */
    uint32_t list_cs;         /* the chunk size its last listing was asked at */
    int watch_fd;             /* its inotify descriptor in the file set's epoll set, or -1 */
};

struct ux_mapping {
    const uint8_t *addr;
    size_t len;
};

/* A written file to hash before anyone asks (prehash.c). */
struct ux_prehash {
    char *name;               /* as served */
    size_t rel;               /* offset of its path within its tree */
    int root;
    uint32_t cs;              /* its tree's chunk size (0: none) */
};
#define UX_PREHASH_QUEUE 256

struct ux_fileset {
    struct ux_root roots[UX_FS_ROOTS];
    int nroots;
    struct ux_entry *entries;
    uint32_t n, cap;
    uint32_t *buckets, nbuckets;
    uint32_t open;            /* entries with an open descriptor */
    uint32_t ring[UX_FS_RING]; /* entries, in the order they were opened */
    uint32_t ring_head, ring_tail;
    uint64_t clock;
    uint64_t generations;
    uint64_t hashes_computed; /* how often a whole file was hashed */
    uint64_t trees_built;
    struct ux_sha *sha, *whole;
    struct ux_hcache hcache;
    uint64_t chunks_lent;     /* sent from a mapping, not read */
    uint64_t lent_pending;    /* bytes lent since the mappings were last released */
    struct ux_mapping *unmapq; /* mappings let go of: unmapped once what was lent is sent */
    uint32_t unmapq_n, unmapq_cap;
    uint64_t async_min;       /* files this large are hashed off the loop (0: never) */
    struct ux_hashjob job;
    int efd;                  /* readable when the job is done (its result not taken yet) */
    int pfd;                  /* epoll: efd and the catalogs' inotify descriptors */
    struct ux_prehash preq[UX_PREHASH_QUEUE];
    int preq_n;
    uint64_t prehashed;       /* files hashed because they were written, before anyone asked */
    int watch;                /* wake on served trees' changes to hash ahead (a socket server) */
    int ahead;                /* during prehash.c's call: the job would be a file hashed ahead */
    int job_ahead;            /* the running job is one */
    uint64_t client_waiting_at; /* when a client was last told "preparing" for want of the thread (us; 0: none waits) */
    char *job_failed;         /* the file whose job failed last, hashed in the loop next */
    struct ux_vlisting listings[UX_FS_LISTINGS];
    struct ux_vbatch batches[UX_FS_BATCHES];
    uint64_t listing_bytes;   /* their texts */
    uint64_t tree_bytes;      /* trees kept, files' and listings' */
    uint64_t work;            /* work units done, all told: a lookup is charged the difference */
    uint64_t work_once;       /* of them, files' SHA-256s (done once per version) */
    uint64_t work_trees;      /* of them, chunk-hash trees */
    enum ux_work may;         /* during a lookup: what it may compute */
    int may_tree;             /* ... and whether chunk-hash trees */
    int deferred;             /* during a lookup: it said "preparing" for want of budget */
    uint64_t deferrals;       /* such answers, all told */
};

/* Serve DIR as the tree ".". Returns 0, or an errno value. */
int ux_fileset_open(struct ux_fileset *fs, const char *dir);
/* Also serve DIR as the share NAME (a single path component): its files
 * are "NAME/...". Returns 0, EINVAL (a bad or repeated name), EMFILE (too
 * many shares) or an errno value opening DIR. */
int ux_fileset_share(struct ux_fileset *fs, const char *name, const char *dir);
void ux_fileset_close(struct ux_fileset *fs);
struct ux_provider ux_fileset_provider(struct ux_fileset *fs);

/* Readable when a file hashed off the loop is done or a served tree
 * changed; ux_fileset_settle takes the result and the changes (and the
 * readiness). */
int ux_fileset_fd(const struct ux_fileset *fs);
void ux_fileset_settle(struct ux_fileset *fs);
/* Every datagram output so far is sent: nothing lent is in use, and the
 * mappings let go of since (files changed, gone, or closed by the
 * descriptor limit) are unmapped. */
void ux_fileset_sent(struct ux_fileset *fs);

/* For listings: the SHA-256 of the file REL of root ROOT as ST describes
 * it: from the cache if that version was hashed, else hashed now (or, for
 * a large file, UX_E_PREPARING while a thread does it), with its tree at
 * chunk size CS for a file of some size. Returns 0 or a UX_E_* code. */
int ux_fileset_file_hash(struct ux_fileset *fs, int root, const char *rel, const struct stat *st, uint32_t cs,
                         uint8_t out[UX_HASH_LEN]);

#endif
