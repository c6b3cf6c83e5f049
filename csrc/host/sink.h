/* The client's output file: a temporary file beside the destination, and
 * renamed over the final name only after the whole-file SHA-256 matches.
 * Until then the final name is untouched.
 * Chunks are gathered in 1 MiB slabs (16 at most, so memory does not grow
 * with the file) and written a slab at a time: whole pages, one syscall,
 * writeback started at once; blocks of zeros are left holes, so a sparse
 * file stays sparse. The whole-file hash advances over complete
 * slabs in order while they are still in memory, so the file is normally
 * not read back at the end; a thread of its own computes it, off the
 * receive path. */
#ifndef UDPXFER_SINK_H
#define UDPXFER_SINK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "engine/hash.h"

#define UX_SLAB (1u << 20)
#define UX_NSLAB 16

struct ux_slab {
    uint64_t region;   /* bytes [region * UX_SLAB, ...) */
    uint64_t last_use;
    uint8_t *buf;
    int used, written;
    int handed;        /* given to the hash thread (its region is complete) */
    int hashing;       /* the hash thread still reads it (under the lock) */
};

/* Who writes and hashes complete slabs. */
enum ux_hasher_mode {
    UX_HASHER_OFF,    /* not started (no file open) */
    UX_HASHER_THREAD, /* a thread of its own */
    UX_HASHER_INLINE  /* no thread could be had: the caller, as slabs complete */
};

enum ux_commit_state {
    UX_COMMIT_IDLE,  /* not asked for */
    UX_COMMIT_ASKED, /* runs on the thread after the last slab */
    UX_COMMIT_ENDED  /* over: commit_err, commit_why */
};

/* The whole-file hash thread: takes complete slabs in file order, writes
 * (reserving space a step ahead) and hashes them. */
struct ux_hasher {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work, idle;
    struct ux_slab *queue[UX_NSLAB];
    int qhead, qlen, quit;
    enum ux_hasher_mode mode;
    uint64_t finished; /* slabs done, counted to wait for the next */
    int waiting;       /* the receive side waits for a slab now (tests watch it) */
    int failed; /* the first errno the thread met */
    /* Readable (an eventfd) after each slab the thread finishes and when
     * the commit ends; -1 without a thread. */
    int efd;
    enum ux_commit_state commit;
    int commit_err;
    const char *commit_why;
    uint64_t commit_readback;
    uint8_t want[UX_SHA256_LEN];
    /* Called by the thread before each slab when set: tests hold it there. */
    void (*gate)(void *arg);
    void *gate_arg;
};

struct ux_sink {
    int fd;
    int dirfd;
    int durable;
    /* Set on the file before its rename (set them before ux_sink_open:
     * they outlive it), and its stat once renamed. */
    int set_mode, set_mtime;
    uint32_t mode;
    int64_t mtime_ns;
    struct stat final_st;
    char tmp[300];
    char final[300];
    uint64_t size;
    struct ux_slab slab[UX_NSLAB];
    uint32_t *filled;  /* bytes received per region */
    uint8_t *ondisk;   /* per region: written to the file (its zeros must be punched, not skipped) */
    uint64_t regions;
    uint32_t block;    /* blocks of zeros are left holes */
    int holes;         /* a block of zeros was seen: nothing more is reserved ahead */
    uint64_t hashed;   /* the running hash covers (or is given) the bytes below */
    uint64_t clock;
    struct ux_sha *sha;
    uint8_t *scratch;  /* reading back a region that left memory */
    uint64_t readback; /* bytes read back from the file (reloads and hashing) */
    uint64_t evicted;  /* slabs written out before the hash reached them */
    uint64_t waits;    /* times the receive side waited for the hash thread's slabs, or was told to (EAGAIN) */
    uint64_t reserved; /* blocks allocated below this (the hash thread's; read by both) */
    struct ux_hasher h;
};

/* All return 0 or an errno value; *why gets a short description.
 * DIRFD is the folder the file goes to (duplicated: the caller keeps
 * it), BASE its name there. DURABLE: fsync the file and the folder before
 * and after the rename (a power cut then loses nothing committed); without
 * it the rename still happens only after the whole file is verified. */
int ux_sink_open(struct ux_sink *k, int dirfd, const char *base, uint64_t size, int durable, const char **why);
int ux_sink_write(struct ux_sink *k, uint64_t off, const uint8_t *data, size_t len);
/* The same, but EAGAIN, with nothing written, where it would wait for the
 * hash thread to free a slab: try again once ux_sink_fd is readable. */
int ux_sink_try_write(struct ux_sink *k, uint64_t off, const uint8_t *data, size_t len);
/* Readable after the hash thread finishes a slab, and when a commit ends;
 * -1 if there is no thread (nothing ever waits then). */
int ux_sink_fd(const struct ux_sink *k);
/* Take the readiness ux_sink_fd showed, before trying again. */
void ux_sink_clear(struct ux_sink *k);
/* The real size turned out smaller than reserved (legacy transfers learn
 * it from the last chunk). Returns 0 or an errno value. */
int ux_sink_truncate(struct ux_sink *k, uint64_t size);
/* Finish the hash (reading back only what left memory unhashed); on a
 * match sync and rename the file. EBADMSG on a mismatch. The work runs on
 * the hash thread, so a caller's loop goes on during the final fsync:
 * start it, wait for ux_sink_fd to be readable, take the result.
 * Either result closes the sink. */
void ux_sink_commit_start(struct ux_sink *k, const uint8_t sha256[UX_SHA256_LEN]);
/* Has a commit started with ux_sink_commit_start ended? (Its result is
 * still to be taken: ux_sink_fd stays open until then.) */
int ux_sink_commit_ended(struct ux_sink *k);
/* EINPROGRESS while the commit runs; then 0 or an errno value, with *why. */
int ux_sink_commit_result(struct ux_sink *k, const char **why);
/* Start the commit and wait for its result. */
int ux_sink_commit(struct ux_sink *k, const uint8_t sha256[UX_SHA256_LEN], const char **why);
/* Remove the temporary file, if any. Idempotent. */
void ux_sink_abort(struct ux_sink *k);
/* Close, keeping the temporary file with what was written, and every
 * complete slab (partial.h). */
void ux_sink_keep(struct ux_sink *k);

#endif
