#include "fileset.h"
#include "filehash.h"
#include "engine/names.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_ENTRIES 65536

static void end_job(struct ux_fileset *fs, int closing);

int ux_fileset_open(struct ux_fileset *fs, const char *dir)
{
    memset(fs, 0, sizeof *fs);
    fs->root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->root < 0)
        return errno;
    fs->sha = ux_sha_new();
    if (!fs->sha) {
        close(fs->root);
        return ENOMEM;
    }
    return 0;
}

static void unmap(struct ux_entry *e)
{
    if (e->map)
        munmap((void *)e->map, e->size);
    e->map = NULL;
    e->map_failed = 0;
}

static void drop_hashes(struct ux_fileset *fs, struct ux_entry *e)
{
    for (int i = 0; i < UX_HC_SIZES; i++)
        ux_hcache_drop(&fs->hcache, &e->hashes[i]);
}

void ux_fileset_close(struct ux_fileset *fs)
{
    end_job(fs, 1);
    free(fs->job_failed);
    fs->job_failed = NULL;
    for (uint32_t i = 0; i < fs->n; i++) {
        unmap(&fs->entries[i]);
        drop_hashes(fs, &fs->entries[i]);
        free(fs->entries[i].name);
        if (fs->entries[i].fd >= 0)
            close(fs->entries[i].fd);
    }
    free(fs->entries);
    fs->entries = NULL;
    fs->n = fs->cap = 0;
    if (fs->root >= 0)
        close(fs->root);
    fs->root = -1;
    ux_sha_free(fs->sha);
    fs->sha = NULL;
    ux_hcache_free(&fs->hcache);
}

/* Open NAME strictly beneath the root: the kernel refuses "..", absolute
 * symlinks and links that climb out (RESOLVE_BENEATH). */
static int open_beneath(int root, const char *name)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root, name, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS)
        return fd;
    /* Old kernel: refuse symlinks outright rather than resolve them. */
    return openat(root, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int same_file(const struct ux_entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == (uint64_t)st->st_size &&
           e->mtime_ns == ns(st->st_mtim) && e->ctime_ns == ns(st->st_ctim);
}


static struct ux_entry *find_entry(struct ux_fileset *fs, const char *name, size_t len)
{
    for (uint32_t i = 0; i < fs->n; i++)
        if (strlen(fs->entries[i].name) == len && memcmp(fs->entries[i].name, name, len) == 0)
            return &fs->entries[i];
    return NULL;
}

static struct ux_entry *add_entry(struct ux_fileset *fs, const char *name, size_t len)
{
    if (fs->n == MAX_ENTRIES)
        return NULL;
    if (fs->n == fs->cap) {
        uint32_t cap = fs->cap ? fs->cap * 2 : 16;
        struct ux_entry *e = realloc(fs->entries, cap * sizeof *e);
        if (!e)
            return NULL;
        fs->entries = e;
        fs->cap = cap;
    }
    struct ux_entry *e = &fs->entries[fs->n];
    memset(e, 0, sizeof *e);
    e->fd = -1;
    for (int i = 0; i < UX_HC_SIZES; i++)
        ux_hfile_init(&e->hashes[i]);
    e->name = strndup(name, len);
    if (!e->name)
        return NULL;
    fs->n++;
    return e;
}

static void fill_info(const struct ux_fileset *fs, const struct ux_entry *e, struct ux_file_info *out)
{
    out->handle = (uint32_t)(e - fs->entries) + 1;
    out->generation = e->generation;
    out->size = e->size;
    memcpy(out->sha256, e->sha256, UX_HASH_LEN);
}

/* FD (with stat ST) becomes the current version of NAME, hashed to SHA:
 * its entry (E, or a new one) forgets what it knew of an older version.
 * Takes FD; returns the entry, or NULL (FD closed) if none can be made. */
static struct ux_entry *install(struct ux_fileset *fs, struct ux_entry *e, const char *name, size_t len,
                                int fd, const struct stat *st, const uint8_t sha[UX_HASH_LEN])
{
    if (!e && !(e = add_entry(fs, name, len))) {
        close(fd);
        return NULL;
    }
    if (e->fd >= 0)
        close(e->fd);
    unmap(e); /* a new version */
    drop_hashes(fs, e);
    e->fd = fd;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = (uint64_t)st->st_size;
    e->mtime_ns = ns(st->st_mtim);
    e->ctime_ns = ns(st->st_ctim);
    e->generation = ++fs->generations;
    memcpy(e->sha256, sha, UX_HASH_LEN);
    return e;
}

static void *job_main(void *arg)
{
    struct ux_hashjob *j = arg;
    struct ux_sha *sha = ux_sha_new();
    int err = sha ? ux_sha_fd(sha, j->fd, (uint64_t)j->st.st_size, &j->cancel, j->sha256) : ENOMEM;
    ux_sha_free(sha);
    j->err = err;
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Hash NAME's FD in a thread of its own. Takes FD on success (0); on
 * failure (-1) the caller keeps it and hashes in the loop. */
static int start_job(struct ux_fileset *fs, const char *name, size_t len, int fd, const struct stat *st)
{
    struct ux_hashjob *j = &fs->job;
    memset(j, 0, sizeof *j);
    j->fd = fd;
    j->st = *st;
    j->name_len = len;
    if (!(j->name = strndup(name, len)))
        return -1;
    if (pthread_create(&j->thread, NULL, job_main, j)) {
        free(j->name);
        j->name = NULL;
        return -1;
    }
    j->running = 1;
    fs->hashes_computed++;
    return 0;
}

/* A finished job's file becomes current, or, if its hash failed, is
 * remembered so the next request hashes it in the loop and says why.
 * CLOSING: an unfinished one is cancelled and waited for. */
static void end_job(struct ux_fileset *fs, int closing)
{
    struct ux_hashjob *j = &fs->job;
    if (!j->running || (!closing && !__atomic_load_n(&j->done, __ATOMIC_ACQUIRE)))
        return;
    if (closing)
        __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
    pthread_join(j->thread, NULL);
    j->running = 0;
    if (j->err || closing)
        close(j->fd);
    else
        install(fs, find_entry(fs, j->name, j->name_len), j->name, j->name_len, j->fd, &j->st, j->sha256);
    free(fs->job_failed);
    fs->job_failed = j->err && !closing ? j->name : NULL; /* freed when forgotten */
    if (!fs->job_failed)
        free(j->name);
    j->name = NULL;
}

/* Is NAME the file whose hash failed off the loop last? (Once: then forgotten.) */
static int failed_off_loop(struct ux_fileset *fs, const char *name, size_t len)
{
    if (!fs->job_failed || strlen(fs->job_failed) != len || memcmp(fs->job_failed, name, len))
        return 0;
    free(fs->job_failed);
    fs->job_failed = NULL;
    return 1;
}

static void collect_job(struct ux_fileset *fs) { end_job(fs, 0); }

static int fs_lookup(void *ud, const char *name, size_t len, struct ux_file_info *out)
{
    struct ux_fileset *fs = ud;
    if (ux_name_check(name, len))
        return UX_E_REFUSED;
    char path[UX_MAX_NAME + 1];
    memcpy(path, name, len);
    path[len] = 0;
    int fd = open_beneath(fs->root, path);
    if (fd < 0)
        return errno == EXDEV || errno == ELOOP ? UX_E_REFUSED : UX_E_NOTFOUND;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return UX_E_NOTFOUND;
    }
    collect_job(fs);
    struct ux_entry *e = find_entry(fs, name, len);
    if (e && e->fd >= 0 && same_file(e, &st)) {
        close(fd); /* unchanged: the cached hash stands */
        fill_info(fs, e, out);
        return 0;
    }
    if (fs->async_min && (uint64_t)st.st_size >= fs->async_min && !failed_off_loop(fs, name, len)) {
        if (fs->job.running) { /* one large file at a time; the client asks again */
            close(fd);
            return UX_E_PREPARING;
        }
        if (start_job(fs, name, len, fd, &st) == 0)
            return UX_E_PREPARING;
    }
    uint8_t sha[UX_HASH_LEN];
    fs->hashes_computed++;
    if (ux_sha_fd(fs->sha, fd, (uint64_t)st.st_size, NULL, sha)) {
        close(fd);
        return UX_E_IO;
    }
    if (!(e = install(fs, e, name, len, fd, &st, sha)))
        return UX_E_IO;
    fill_info(fs, e, out);
    return 0;
}

static struct ux_entry *by_handle(struct ux_fileset *fs, uint32_t handle)
{
    return handle >= 1 && handle <= fs->n && fs->entries[handle - 1].fd >= 0 ? &fs->entries[handle - 1] : NULL;
}

static int fs_current(void *ud, uint32_t handle, struct ux_file_info *out)
{
    struct ux_fileset *fs = ud;
    struct ux_entry *e = by_handle(fs, handle);
    struct stat st;
    if (!e)
        return UX_E_NOTFOUND;
    if (fstat(e->fd, &st) || !same_file(e, &st))
        return UX_E_STALE; /* modified in place since it was hashed */
    fill_info(fs, e, out);
    return 0;
}

static int read_at(const struct ux_entry *e, uint64_t off, uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = pread(e->fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO; /* truncated under us */
        buf += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int fs_read(void *ud, uint32_t handle, uint64_t off, uint8_t *buf, size_t len)
{
    struct ux_entry *e = by_handle(ud, handle);
    return e ? read_at(e, off, buf, len) : EBADF;
}

#define CACHE_MIN_SIZE (4u << 20) /* below this, hashing again is cheaper than a file */

/* E's chunk hashes for chunk size CS, or NULL if it does not keep them.
 * Makes the cache on first use, in place of E's least recently used size
 * if it has all it may, and closing the least recently used cache of any
 * file if too many are open. */
static struct ux_hfile *cached(struct ux_fileset *fs, struct ux_entry *e, uint32_t cs)
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

#define RELEASE_BYTES (8u << 20) /* lent bytes between releases: bounds what the mappings add to RSS */

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

/* Chunk bytes at OFF lent from E's mapping, or NULL if it cannot be mapped. */
static const uint8_t *lend(struct ux_fileset *fs, struct ux_entry *e, uint64_t off, size_t len)
{
    if (!e->map && !e->map_failed) {
        void *m = mmap(NULL, e->size, PROT_READ, MAP_SHARED, e->fd, 0);
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

static int fs_chunk(void *ud, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf, size_t len,
                    uint8_t hash[UX_HASH_LEN], const uint8_t **lent)
{
    struct ux_fileset *fs = ud;
    struct ux_entry *e = by_handle(fs, handle);
    if (!e)
        return EBADF;
    uint64_t off = (uint64_t)index * cs;
    struct ux_hfile *keep = cached(fs, e, cs);
    int known = keep && ux_hcache_get(&fs->hcache, keep, index, hash);
    /* Bytes we must hash are read: only the kernel may touch the mapping. */
    if (known && lent && (*lent = lend(fs, e, off, len)))
        return 0;
    int err = read_at(e, off, buf, len);
    if (err || known)
        return err;
    if (ux_chunk_hash(fs->sha, index, buf, len, hash))
        return EIO;
    if (keep)
        ux_hcache_put(&fs->hcache, keep, index, hash);
    return 0;
}

static const char *fs_name(void *ud, uint32_t handle)
{
    struct ux_fileset *fs = ud;
    return handle >= 1 && handle <= fs->n ? fs->entries[handle - 1].name : NULL;
}

struct ux_provider ux_fileset_provider(struct ux_fileset *fs)
{
    return (struct ux_provider){fs_lookup, fs_current, fs_read, fs_chunk, fs_name, fs};
}
