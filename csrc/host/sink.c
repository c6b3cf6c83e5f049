#include "sink.h"
#include "partial.h"
#include "random.h"
#include "sparse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static uint64_t region_len(const struct ux_sink *k, uint64_t r);

/* ---- the hash thread ---- */

static int write_slab(struct ux_sink *k, struct ux_slab *s);
static int commit_work(struct ux_sink *k, const char **why);

#define RESERVE_STEP (32u << 20)

/* Allocate the file's blocks a step ahead of the slabs written in order,
 * so the file stays in few extents and space taken by someone else since
 * open() checked it fails before the bytes arrive. Done as the slabs go,
 * not up front: on tmpfs reserving costs 0.2 s per GiB, and doing it all
 * beside the writes makes them contend for the inode. Not once a block of
 * zeros was seen: a file with holes would have them allocated, then
 * punched. */
static int reserve_ahead(struct ux_sink *k, uint64_t end)
{
    uint64_t reserved = __atomic_load_n(&k->reserved, __ATOMIC_RELAXED);
    if (reserved >= end || k->size <= UX_SLAB || __atomic_load_n(&k->holes, __ATOMIC_RELAXED))
        return 0; /* a file of one slab goes in one write: nothing to keep together */
    uint64_t upto = end + RESERVE_STEP < k->size ? end + RESERVE_STEP : k->size;
    int err = posix_fallocate(k->fd, (off_t)reserved, (off_t)(upto - reserved));
    __atomic_store_n(&k->reserved, upto, __ATOMIC_RELAXED);
    return err == EOPNOTSUPP || err == EINVAL ? 0 : err; /* the size is set already */
}

/* The slab's region, written if it was not, then hashed; space is
 * reserved ahead of it once it has shown whether the file starts with a
 * hole. */
static int write_and_hash(struct ux_sink *k, struct ux_slab *s, uint64_t len)
{
    int err = s->written ? 0 : write_slab(k, s);
    if (!err)
        err = reserve_ahead(k, s->region * UX_SLAB + len);
    return err ? err : ux_sha_update(k->sha, s->buf, (size_t)len) ? EIO : 0;
}

/* Under the lock, or with no thread. */
static void end_commit(struct ux_hasher *h, int err, const char *why)
{
    h->commit = UX_COMMIT_ENDED;
    h->commit_err = err;
    h->commit_why = why;
    if (h->efd >= 0)
        (void)!eventfd_write(h->efd, 1);
    pthread_cond_broadcast(&h->idle);
}

/* Takes complete slabs in file order: writes each out unless it was already
 * (so the copy into the page cache is off the receive path too), then
 * hashes it. */
static void *hash_main(void *arg)
{
    struct ux_sink *k = arg;
    struct ux_hasher *h = &k->h;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (!h->qlen && !h->quit && h->commit != UX_COMMIT_ASKED)
            pthread_cond_wait(&h->work, &h->lock);
        if (!h->qlen && h->quit)
            break;
        if (!h->qlen) {
            pthread_mutex_unlock(&h->lock);
            if (h->gate)
                h->gate(h->gate_arg);
            const char *why = "";
            int err = commit_work(k, &why);
            pthread_mutex_lock(&h->lock);
            end_commit(h, err, why);
            continue;
        }
        struct ux_slab *s = h->queue[h->qhead];
        uint64_t len = region_len(k, s->region); /* the size changes only once this is drained */
        pthread_mutex_unlock(&h->lock);
        if (h->gate)
            h->gate(h->gate_arg);
        int err = write_and_hash(k, s, len);
        pthread_mutex_lock(&h->lock);
        if (err && !h->failed)
            __atomic_store_n(&h->failed, err, __ATOMIC_RELAXED);
        s->hashing = 0;
        h->qhead = (h->qhead + 1) % UX_NSLAB;
        h->qlen--;
        h->finished++;
        pthread_cond_broadcast(&h->idle);
        if (h->efd >= 0)
            (void)!eventfd_write(h->efd, 1);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* Wait until the hash thread has taken in everything given to it. */
static int hash_drain(struct ux_sink *k)
{
    struct ux_hasher *h = &k->h;
    if (h->mode == UX_HASHER_OFF)
        return 0;
    pthread_mutex_lock(&h->lock);
    while (h->qlen)
        pthread_cond_wait(&h->idle, &h->lock);
    int failed = h->failed;
    pthread_mutex_unlock(&h->lock);
    return failed;
}

/* How many slabs the hash thread has finished (to wait for the next). */
static uint64_t hash_finished(struct ux_sink *k)
{
    if (k->h.mode != UX_HASHER_THREAD)
        return 0;
    pthread_mutex_lock(&k->h.lock);
    uint64_t n = k->h.finished;
    pthread_mutex_unlock(&k->h.lock);
    return n;
}

/* Wait until the hash thread finishes a slab after the SEEN-th, or has none. */
static int hash_wait_one(struct ux_sink *k, uint64_t seen)
{
    struct ux_hasher *h = &k->h;
    pthread_mutex_lock(&h->lock);
    k->waits++;
    h->waiting = 1;
    while (h->qlen && h->finished == seen)
        pthread_cond_wait(&h->idle, &h->lock);
    h->waiting = 0;
    int failed = h->failed;
    pthread_mutex_unlock(&h->lock);
    return failed;
}

/* Files of one slab or less are written and hashed by the caller: a
 * thread would cost more than the work (a sync moves thousands). */
static int hash_start(struct ux_sink *k)
{
    struct ux_hasher *h = &k->h;
    if (pthread_mutex_init(&h->lock, NULL) || pthread_cond_init(&h->work, NULL) ||
        pthread_cond_init(&h->idle, NULL))
        return ENOMEM;
    if (k->size <= UX_SLAB) {
        h->mode = UX_HASHER_INLINE;
        h->efd = -1;
        return 0;
    }
    h->mode = UX_HASHER_THREAD;
    h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->efd < 0 || pthread_create(&h->thread, NULL, hash_main, k)) {
        h->mode = UX_HASHER_INLINE; /* no thread: write and hash here */
        if (h->efd >= 0)
            close(h->efd);
        h->efd = -1;
    }
    return 0;
}

/* An error the thread met (writing, hashing, reserving space), or 0. */
static int hash_failed(struct ux_sink *k)
{
    return k->h.mode == UX_HASHER_THREAD ? __atomic_load_n(&k->h.failed, __ATOMIC_RELAXED) : 0;
}

static int hash_give(struct ux_sink *k, struct ux_slab *s, uint64_t len)
{
    struct ux_hasher *h = &k->h;
    k->hashed += len; /* given: the running hash will cover it */
    if (h->mode == UX_HASHER_INLINE) {
        s->handed = 1;
        return write_and_hash(k, s, len);
    }
    pthread_mutex_lock(&h->lock);
    h->queue[(h->qhead + h->qlen) % UX_NSLAB] = s;
    h->qlen++;
    s->hashing = s->handed = 1;
    pthread_cond_signal(&h->work);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

static int busy_hashing(struct ux_sink *k, const struct ux_slab *s)
{
    if (k->h.mode == UX_HASHER_OFF || !s->handed)
        return 0;
    pthread_mutex_lock(&k->h.lock);
    int busy = s->hashing;
    pthread_mutex_unlock(&k->h.lock);
    return busy;
}

static void hash_stop(struct ux_sink *k)
{
    struct ux_hasher *h = &k->h;
    if (h->mode == UX_HASHER_OFF)
        return;
    if (h->mode == UX_HASHER_THREAD) {
        pthread_mutex_lock(&h->lock);
        h->quit = 1;
        pthread_cond_signal(&h->work);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->thread, NULL);
    }
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->work);
    pthread_cond_destroy(&h->idle);
    h->mode = UX_HASHER_OFF;
}

static void release_memory(struct ux_sink *k)
{
    hash_stop(k); /* before the slabs it may still read go */
    if (k->h.efd >= 0)
        close(k->h.efd);
    for (int i = 0; i < UX_NSLAB; i++)
        free(k->slab[i].buf);
    free(k->filled);
    free(k->ondisk);
    free(k->scratch);
    ux_sha_free(k->sha);
}

static void reset(struct ux_sink *k)
{
    /* counters and the final file's stat, for after the end */
    uint64_t readback = k->readback, evicted = k->evicted, waits = k->waits;
    struct stat st = k->final_st;
    int set_mode = k->set_mode, set_mtime = k->set_mtime;
    uint32_t mode = k->mode;
    int64_t mtime = k->mtime_ns;
    memset(k, 0, sizeof *k);
    k->final_st = st;
    k->set_mode = set_mode, k->set_mtime = set_mtime, k->mode = mode, k->mtime_ns = mtime;
    k->fd = k->dirfd = k->h.efd = -1;
    k->readback = readback;
    k->evicted = evicted;
    k->waits = waits;
}

/* The temporary file, and the block by which its zeros are left holes. */
static int make_temp(struct ux_sink *k)
{
    k->fd = ux_partial_create(k->dirfd, k->final, 0644, k->tmp, sizeof k->tmp);
    if (k->fd < 0)
        return errno;
    k->block = ux_hole_block(k->fd);
    return 0;
}

int ux_sink_open(struct ux_sink *k, int dirfd, const char *base, uint64_t size, int durable, const char **why)
{
    reset(k);
    k->size = size;
    k->durable = durable;
    k->regions = (size + UX_SLAB - 1) / UX_SLAB;
    k->filled = calloc(k->regions ? k->regions : 1, sizeof *k->filled);
    k->ondisk = calloc(k->regions ? k->regions : 1, 1);
    k->sha = ux_sha_new();
    if (!k->filled || !k->ondisk || !k->sha || ux_sha_init(k->sha)) {
        *why = "out of memory";
        ux_sink_abort(k);
        return ENOMEM;
    }
    if (!*base || strchr(base, '/') || !strcmp(base, ".") || !strcmp(base, "..") ||
        strlen(base) >= sizeof k->final - 40) {
        *why = "unusable output name";
        ux_sink_abort(k);
        return EINVAL;
    }
    snprintf(k->final, sizeof k->final, "%s", base);
    k->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (k->dirfd < 0) {
        int err = errno;
        *why = "cannot open the output directory";
        ux_sink_abort(k);
        return err;
    }
    int err = make_temp(k);
    if (err) {
        *why = "cannot create a temporary file";
        ux_sink_abort(k);
        return err;
    }
    /* A full disk fails now, not at 99%: the free space is checked here,
     * and the blocks are reserved as the file is written (reserve_ahead). */
    struct statvfs fsinfo;
    if (fstatvfs(k->fd, &fsinfo) == 0 && (uint64_t)fsinfo.f_bavail * fsinfo.f_frsize < size)
        err = ENOSPC;
    else if (ftruncate(k->fd, (off_t)size))
        err = errno;
    else
        err = hash_start(k);
    if (err) {
        *why = "cannot reserve space for the file";
        ux_sink_abort(k);
        return err;
    }
    return 0;
}

static uint64_t region_len(const struct ux_sink *k, uint64_t r)
{
    uint64_t start = r * UX_SLAB;
    return k->size - start < UX_SLAB ? k->size - start : UX_SLAB;
}

/* Write a slab's region out and start its writeback, so the final fsync
 * has little left to do. Bytes not received yet are written too: they are
 * rewritten when they arrive (a region comes back into memory by reading it). */
static int write_slab(struct ux_sink *k, struct ux_slab *s)
{
    uint64_t off = s->region * UX_SLAB, len = region_len(k, s->region);
    /* Zeros are left holes: punched where bytes were written, or space reserved. */
    uint64_t hole_from = k->ondisk[s->region] ? UINT64_MAX : __atomic_load_n(&k->reserved, __ATOMIC_RELAXED);
    int zeros = 0;
    int err = ux_write_sparse(k->fd, s->buf, (size_t)len, off, k->block, hole_from, &zeros);
    if (zeros)
        __atomic_store_n(&k->holes, 1, __ATOMIC_RELAXED);
    if (!err) {
        if (k->durable) /* the final fsync then has little left to do */
            sync_file_range(k->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
        s->written = k->ondisk[s->region] = 1;
    }
    return err;
}

static struct ux_slab *find_slab(struct ux_sink *k, uint64_t region)
{
    for (int i = 0; i < UX_NSLAB; i++)
        if (k->slab[i].used && k->slab[i].region == region)
            return &k->slab[i];
    return NULL;
}

/* Hash LEN bytes at the running hash's end by reading them back, adding
 * LEN to *COUNT. */
static int read_and_hash(struct ux_sink *k, size_t len, uint64_t *count)
{
    if (!k->scratch && !(k->scratch = malloc(UX_SLAB)))
        return ENOMEM;
    int err = ux_pread_full(k->fd, k->scratch, len, k->hashed);
    if (!err && ux_sha_update(k->sha, k->scratch, len))
        err = EIO;
    *count += len;
    k->hashed += len;
    return err;
}

/* The same for bytes that left memory, once the thread has caught up: the
 * hash is one sequence. */
static int hash_from_file(struct ux_sink *k, size_t len)
{
    int err = hash_drain(k);
    return err ? err : read_and_hash(k, len, &k->readback);
}

/* Hash complete regions in order: slabs still in memory go to the hash
 * thread; a region that left memory is read back and hashed here, once the
 * thread has caught up (the running hash is one sequence). */
static int advance_hash(struct ux_sink *k)
{
    while (k->hashed < k->size) {
        uint64_t r = k->hashed / UX_SLAB, len = region_len(k, r);
        if (k->filled[r] != len)
            return 0;
        struct ux_slab *s = find_slab(k, r);
        int err = s ? hash_give(k, s, len) : hash_from_file(k, (size_t)len);
        if (err)
            return err;
    }
    return 0;
}

enum slab_use { SLAB_SPARE, SLAB_HELD, SLAB_FILLING };

/* Spare (unused, or done with by the hash thread), held by the thread, or
 * still being filled here. */
static enum slab_use slab_use(struct ux_sink *k, const struct ux_slab *s)
{
    if (!s->used || (s->handed && !busy_hashing(k, s)))
        return SLAB_SPARE;
    return s->handed ? SLAB_HELD : SLAB_FILLING;
}

/* A slot for REGION: a free one or one the hash thread is done with,
 * waiting for the thread while it holds any (it is what limits a fast
 * transfer, and evicting a slab still being filled would add a write now
 * and a read back later to its work); else the least recently used one,
 * written out first. */
static int take_slab(struct ux_sink *k, uint64_t region, struct ux_slab **out)
{
    struct ux_slab *pick = NULL, *lru = NULL;
    for (;;) {
        uint64_t seen = hash_finished(k);
        int handed = 0;
        for (int i = 0; i < UX_NSLAB && !pick; i++) {
            struct ux_slab *s = &k->slab[i];
            enum slab_use use = slab_use(k, s);
            if (use == SLAB_SPARE)
                pick = s;
            else if (use == SLAB_HELD)
                handed = 1;
            else if (!lru || s->last_use < lru->last_use)
                lru = s;
        }
        if (pick || !handed)
            break;
        int err = hash_wait_one(k, seen);
        if (err)
            return err;
        lru = NULL;
    }
    if (!pick) {
        pick = lru;
        k->evicted++;
    }
    int err = pick->used && !pick->written ? write_slab(k, pick) : 0;
    if (!err && !pick->buf && !(pick->buf = malloc(k->size < UX_SLAB ? k->size : UX_SLAB)))
        err = ENOMEM;
    /* A region written before (partly) is read back so a later write of
     * the whole slab keeps what it had. */
    if (!err && k->filled[region]) {
        err = ux_pread_full(k->fd, pick->buf, (size_t)region_len(k, region), region * UX_SLAB);
        k->readback += region_len(k, region);
    }
    if (err)
        return err;
    pick->used = 1;
    pick->written = pick->handed = 0;
    pick->region = region;
    *out = pick;
    return 0;
}

/* PIECE bytes at IN within region R, which is not complete yet. */
static int write_piece(struct ux_sink *k, uint64_t r, uint64_t in, const uint8_t *data, size_t piece)
{
    struct ux_slab *s = find_slab(k, r);
    int err = s && !s->handed ? 0 : take_slab(k, r, &s);
    if (err)
        return err;
    memcpy(s->buf + in, data, piece);
    s->written = 0;
    s->last_use = ++k->clock;
    k->filled[r] += (uint32_t)piece;
    /* A complete region is written by the hash thread when the hash
     * reaches it; until then it waits here, or is written if evicted. */
    return k->filled[r] == region_len(k, r) ? advance_hash(k) : 0;
}

int ux_sink_write(struct ux_sink *k, uint64_t off, const uint8_t *data, size_t len)
{
    int err = hash_failed(k);
    while (!err && len) {
        uint64_t r = off / UX_SLAB, in = off - r * UX_SLAB;
        size_t piece = UX_SLAB - in < len ? (size_t)(UX_SLAB - in) : len;
        if (r >= k->regions || piece > region_len(k, r) - in)
            return EINVAL;
        if (k->filled[r] != region_len(k, r)) /* else a repeat of verified bytes */
            err = write_piece(k, r, in, data, piece);
        data += piece;
        off += piece;
        len -= piece;
    }
    return err;
}

/* Would writing LEN bytes at OFF wait for the hash thread? As take_slab
 * decides: the regions that need a new slab outnumber the free ones, and
 * the thread still holds some. */
static int would_wait(struct ux_sink *k, uint64_t off, size_t len)
{
    int need = 0, spare = 0, held = 0;
    for (uint64_t r = off / UX_SLAB; len && r <= (off + len - 1) / UX_SLAB && r < k->regions; r++) {
        const struct ux_slab *s = find_slab(k, r);
        need += k->filled[r] != region_len(k, r) && (!s || s->handed);
    }
    for (int i = 0; need && i < UX_NSLAB; i++) {
        enum slab_use use = slab_use(k, &k->slab[i]);
        spare += use == SLAB_SPARE;
        held += use == SLAB_HELD;
    }
    return spare < need && held;
}

int ux_sink_try_write(struct ux_sink *k, uint64_t off, const uint8_t *data, size_t len)
{
    if (k->h.mode == UX_HASHER_THREAD && would_wait(k, off, len)) {
        k->waits++;
        return EAGAIN;
    }
    return ux_sink_write(k, off, data, len);
}

/* Write out every slab whose bytes only memory holds. */
static int write_unwritten(struct ux_sink *k)
{
    for (int i = 0; i < UX_NSLAB; i++) {
        struct ux_slab *s = &k->slab[i];
        int err = s->used && !s->written ? write_slab(k, s) : 0;
        if (err)
            return err;
    }
    return 0;
}

/* Everything to the file, and no slab in use. */
static int flush_slabs(struct ux_sink *k)
{
    int err = hash_drain(k);
    if (!err)
        err = write_unwritten(k);
    for (int i = 0; i < UX_NSLAB && !err; i++)
        k->slab[i].used = 0;
    return err;
}

int ux_sink_truncate(struct ux_sink *k, uint64_t size)
{
    if (size == k->size)
        return 0;
    int err = flush_slabs(k);
    if (err)
        return err;
    if (ftruncate(k->fd, (off_t)size))
        return errno;
    k->size = size;
    return 0;
}

/* Complete the hash (writing what only memory holds, reading back what
 * it has not seen) into OUT. Runs where no slab is queued any more. */
static int finish_hash(struct ux_sink *k, uint8_t out[UX_SHA256_LEN])
{
    int err = k->h.failed ? k->h.failed : write_unwritten(k);
    while (!err && k->hashed < k->size)
        err = read_and_hash(k, k->size - k->hashed < UX_SLAB ? (size_t)(k->size - k->hashed) : UX_SLAB,
                            &k->h.commit_readback);
    return err ? err : ux_sha_final(k->sha, out) ? EIO : 0;
}

/* The commit: on the hash thread once its queue is empty, or on the
 * caller's without one. */
static int commit_work(struct ux_sink *k, const char **why)
{
    uint8_t got[UX_SHA256_LEN];
    int err = finish_hash(k, got);
    if (err) {
        *why = "cannot write or read back the received file";
        return err;
    }
    if (!ux_equal(got, k->h.want, UX_SHA256_LEN)) {
        *why = "whole-file SHA-256 mismatch";
        return EBADMSG;
    }
    if (k->set_mode && fchmod(k->fd, (mode_t)(k->mode & 07777))) {
        *why = "cannot set the file's mode";
        return errno;
    }
    if (k->set_mtime) {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = k->mtime_ns / 1000000000, .tv_nsec = k->mtime_ns % 1000000000}};
        if (ts[1].tv_nsec < 0) {
            ts[1].tv_sec--;
            ts[1].tv_nsec += 1000000000;
        }
        if (futimens(k->fd, ts)) {
            *why = "cannot set the file's mtime";
            return errno;
        }
    }
    if (k->durable && fsync(k->fd)) {
        *why = "cannot sync the received file";
        return errno;
    }
    if (renameat(k->dirfd, k->tmp, k->dirfd, k->final)) {
        *why = "cannot rename into place";
        return errno;
    }
    if (k->durable)
        fsync(k->dirfd); /* make the rename durable; failure here loses nothing */
    k->tmp[0] = 0;   /* the temporary name is gone */
    fstat(k->fd, &k->final_st); /* what it is now, for an index (rename changed its ctime) */
    return 0;
}

void ux_sink_commit_start(struct ux_sink *k, const uint8_t sha256[UX_SHA256_LEN])
{
    struct ux_hasher *h = &k->h;
    memcpy(h->want, sha256, UX_SHA256_LEN);
    if (h->efd >= 0) {
        pthread_mutex_lock(&h->lock);
        h->commit = UX_COMMIT_ASKED;
        pthread_cond_signal(&h->work);
        pthread_mutex_unlock(&h->lock);
        return;
    }
    const char *why = ""; /* no thread (it comes only with its eventfd): commit here */
    int err = commit_work(k, &why);
    end_commit(h, err, why);
}

int ux_sink_fd(const struct ux_sink *k) { return k->h.efd; }

void ux_sink_clear(struct ux_sink *k)
{
    eventfd_t n;
    if (k->h.efd >= 0)
        (void)eventfd_read(k->h.efd, &n);
}

int ux_sink_commit_ended(struct ux_sink *k)
{
    pthread_mutex_lock(&k->h.lock);
    int ended = k->h.commit == UX_COMMIT_ENDED;
    pthread_mutex_unlock(&k->h.lock);
    return ended;
}

int ux_sink_commit_result(struct ux_sink *k, const char **why)
{
    struct ux_hasher *h = &k->h;
    pthread_mutex_lock(&h->lock);
    int ended = h->commit == UX_COMMIT_ENDED, err = h->commit_err;
    *why = h->commit_why;
    pthread_mutex_unlock(&h->lock);
    if (!ended)
        return EINPROGRESS;
    k->readback += h->commit_readback;
    ux_sink_abort(k); /* closes and frees; removes the temporary file unless renamed */
    return err;
}

int ux_sink_commit(struct ux_sink *k, const uint8_t sha256[UX_SHA256_LEN], const char **why)
{
    ux_sink_commit_start(k, sha256);
    pthread_mutex_lock(&k->h.lock);
    while (k->h.commit != UX_COMMIT_ENDED)
        pthread_cond_wait(&k->h.idle, &k->h.lock);
    pthread_mutex_unlock(&k->h.lock);
    return ux_sink_commit_result(k, why);
}

void ux_sink_abort(struct ux_sink *k)
{
    hash_stop(k); /* its queue written and a commit under way ended, before the descriptors go */
    if (k->tmp[0] && k->dirfd >= 0)
        unlinkat(k->dirfd, k->tmp, 0);
    if (k->fd >= 0)
        close(k->fd);
    if (k->dirfd >= 0)
        close(k->dirfd);
    release_memory(k);
    reset(k);
}

void ux_sink_keep(struct ux_sink *k)
{
    k->tmp[0] = 0;
    ux_sink_abort(k);
}
