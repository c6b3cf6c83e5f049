#include "fileset_int.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "beneath.h"
#include "catalog.h"
#include "clock.h"
#include "engine/names.h"
#include "filehash.h"

#define MAX_ENTRIES (1u << 20)
#define TREE_AHEAD_MIN (4u << 20) /* files a listing hashes for their tree as well */

static void end_job(struct ux_fileset *fs, int closing);

/* ---- roots ---- */

static int add_root(struct ux_fileset *fs, const char *name, const char *dir)
{
    if (fs->nroots == UX_FS_ROOTS)
        return EMFILE;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct ux_root *r = &fs->roots[fs->nroots];
    if (!(r->name = strdup(name))) {
        close(fd);
        return ENOMEM;
    }
    r->fd = fd;
    r->catalog = NULL;
    r->watch_fd = -1;
    fs->nroots++;
    return 0;
}

int ux_fileset_open(struct ux_fileset *fs, const char *dir)
{
    memset(fs, 0, sizeof *fs);
    fs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    fs->pfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (fs->efd >= 0 && fs->pfd >= 0 && epoll_ctl(fs->pfd, EPOLL_CTL_ADD, fs->efd, &ev)) {
        close(fs->pfd);
        fs->pfd = -1;
    }
    fs->nbuckets = 4096;
    fs->buckets = calloc(fs->nbuckets, sizeof *fs->buckets);
    fs->sha = ux_sha_new();
    fs->whole = ux_sha_new();
    int err = fs->efd < 0 || fs->pfd < 0 ? errno : !fs->buckets || !fs->sha || !fs->whole ? ENOMEM : add_root(fs, ".", dir);
    if (err)
        ux_fileset_close(fs);
    return err;
}

int ux_fileset_share(struct ux_fileset *fs, const char *name, const char *dir)
{
    size_t n = strlen(name);
    if (ux_name_check(name, n) || memchr(name, '/', n) || ux_name_is_own(name, n))
        return EINVAL;
    for (int i = 0; i < fs->nroots; i++)
        if (!strcmp(fs->roots[i].name, name))
            return EINVAL;
    return add_root(fs, name, dir);
}

/* The root NAME lies in and the offset of its path there: a first
 * component naming a share, else the folder. */
static int resolve(const struct ux_fileset *fs, const char *name, size_t len, size_t *rel)
{
    const char *slash = memchr(name, '/', len);
    size_t first = slash ? (size_t)(slash - name) : len;
    for (int i = 1; i < fs->nroots; i++)
        if (strlen(fs->roots[i].name) == first && !memcmp(fs->roots[i].name, name, first)) {
            *rel = slash ? first + 1 : len;
            return i;
        }
    *rel = 0;
    return 0;
}

/* ---- opening files beneath a root ---- */

static int open_beneath(int root, const char *rel)
{
    return ux_open_beneath(root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK, UX_FOLLOW_INSIDE);
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

int ux_same_file(const struct ux_entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == (uint64_t)st->st_size &&
           e->mtime_ns == ns(st->st_mtim) && e->ctime_ns == ns(st->st_ctim);
}

/* ---- the entries, by name ---- */

static uint32_t hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

struct ux_entry *ux_find_entry(struct ux_fileset *fs, const char *name, size_t len)
{
    for (uint32_t i = fs->buckets[hash_name(name, len) % fs->nbuckets]; i; i = fs->entries[i - 1].chain) {
        struct ux_entry *e = &fs->entries[i - 1];
        if (e->name_len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
    return NULL;
}

static struct ux_entry *add_entry(struct ux_fileset *fs, const char *name, size_t len)
{
    if (fs->n == MAX_ENTRIES)
        return NULL;
    if (fs->n == fs->cap) {
        uint32_t cap = fs->cap ? fs->cap * 2 : 64;
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
    if (!(e->name = strndup(name, len)))
        return NULL;
    e->name_len = len;
    e->root = resolve(fs, name, len, &e->rel);
    uint32_t b = hash_name(name, len) % fs->nbuckets;
    e->chain = fs->buckets[b];
    fs->buckets[b] = ++fs->n;
    return e;
}

static void close_fd(struct ux_fileset *fs, struct ux_entry *e)
{
    if (e->fd < 0)
        return;
    close(e->fd);
    e->fd = -1;
    fs->open--;
}

static void drop_trees(struct ux_fileset *fs, struct ux_entry *e)
{
    for (int i = 0; i < UX_FS_TREES; i++)
        ux_drop_tree(fs, &e->trees[i]);
}

/* What an entry knew of its version goes: the file changed or is gone. */
static void forget_version(struct ux_fileset *fs, struct ux_entry *e)
{
    ux_unmap(fs, e);
    memset(&e->holes, 0, sizeof e->holes);
    for (int i = 0; i < UX_HC_SIZES; i++)
        ux_hcache_drop(&fs->hcache, &e->hashes[i]);
    drop_trees(fs, e);
}

/* E's descriptor goes for want of room, and its mapping (once what was lent is sent). */
static void evict(struct ux_fileset *fs, struct ux_entry *e)
{
    close_fd(fs, e);
    ux_unmap(fs, e);
}

/* Keep at most UX_FS_OPEN descriptors: the one opened longest ago is
 * closed (a ring of the entries opened, in order; an entry may be in it
 * more than once, or closed already). */
static void limit_open(struct ux_fileset *fs, const struct ux_entry *keep)
{
    uint32_t self = (uint32_t)(keep - fs->entries);
    if (fs->ring_tail - fs->ring_head == UX_FS_RING) { /* full of old opens: the oldest goes first */
        struct ux_entry *old = &fs->entries[fs->ring[fs->ring_head++ % UX_FS_RING]];
        if (old != keep)
            evict(fs, old);
    }
    fs->ring[fs->ring_tail++ % UX_FS_RING] = self;
    while (fs->open > UX_FS_OPEN && fs->ring_head != fs->ring_tail) {
        struct ux_entry *e = &fs->entries[fs->ring[fs->ring_head++ % UX_FS_RING]];
        if (e != keep)
            evict(fs, e);
    }
}

/* E's descriptor, reopened if the LRU closed it; -1 if the file is no
 * longer the version E describes (then it is forgotten). */
static int entry_fd(struct ux_fileset *fs, struct ux_entry *e)
{
    e->last_open = ++fs->clock;
    if (e->fd >= 0)
        return e->fd;
    int fd = open_beneath(fs->roots[e->root].fd, e->name + e->rel);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !ux_same_file(e, &st)) {
        if (fd >= 0)
            close(fd);
        forget_version(fs, e);
        e->generation = 0; /* no cookie for the old version matches again */
        return -1;
    }
    e->fd = fd;
    fs->open++;
    limit_open(fs, e);
    return fd;
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
    close_fd(fs, e);
    forget_version(fs, e);
    e->fd = fd;
    fs->open++;
    e->last_open = ++fs->clock;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = (uint64_t)st->st_size;
    e->mtime_ns = ns(st->st_mtim);
    e->ctime_ns = ns(st->st_ctim);
    e->generation = ++fs->generations;
    memcpy(e->sha256, sha, UX_HASH_LEN);
    limit_open(fs, e);
    return e;
}

static void fill_info(const struct ux_fileset *fs, const struct ux_entry *e, struct ux_file_info *out)
{
    memset(out, 0, sizeof *out);
    out->handle = (uint32_t)(e - fs->entries) + 1;
    out->generation = e->generation;
    out->size = e->size;
    memcpy(out->sha256, e->sha256, UX_HASH_LEN);
}

void ux_fileset_close(struct ux_fileset *fs)
{
    end_job(fs, 1);
    if (fs->efd >= 0)
        close(fs->efd);
    if (fs->pfd >= 0)
        close(fs->pfd);
    fs->efd = fs->pfd = -1;
    ux_prehash_free(fs);
    ux_batch_free_all(fs);
    free(fs->job_failed);
    fs->job_failed = NULL;
    for (uint32_t i = 0; i < fs->n; i++) {
        forget_version(fs, &fs->entries[i]);
        close_fd(fs, &fs->entries[i]);
        free(fs->entries[i].name);
    }
    free(fs->entries);
    free(fs->buckets);
    ux_fileset_sent(fs); /* closing: nothing is sent any more */
    free(fs->unmapq);
    fs->unmapq = NULL;
    fs->unmapq_n = fs->unmapq_cap = 0;
    fs->entries = NULL;
    fs->buckets = NULL;
    fs->n = fs->cap = 0;
    for (int i = 0; i < fs->nroots; i++) {
        ux_catalog_close(fs->roots[i].catalog);
        close(fs->roots[i].fd);
        free(fs->roots[i].name);
    }
    fs->nroots = 0;
    for (int i = 0; i < UX_FS_LISTINGS; i++)
        ux_listing_free(fs, &fs->listings[i]);
    ux_sha_free(fs->sha);
    ux_sha_free(fs->whole);
    fs->sha = fs->whole = NULL;
    ux_hcache_free(&fs->hcache);
}

/* ---- trees ---- */

static struct ux_ftree *tree_for(struct ux_entry *e, uint32_t cs) { return ux_find_tree(e->trees, UX_FS_TREES, cs); }

static void keep_tree(struct ux_fileset *fs, struct ux_entry *e, uint32_t cs, struct ux_tree *t)
{
    ux_keep_tree(fs, e->trees, UX_FS_TREES, cs, t);
}

/* ---- the hash job: large files, off the loop ---- */

static void end_job(struct ux_fileset *fs, int closing)
{
    struct ux_hashjob *j = &fs->job;
    if (!j->running || (!closing && !ux_hashjob_finished(j)))
        return;
    ux_hashjob_join(j, closing);
    uint64_t n;
    if (fs->efd >= 0)
        (void)!read(fs->efd, &n, sizeof n); /* its readiness is taken with it */
    struct ux_entry *e = closing || j->err ? NULL : ux_find_entry(fs, j->name, j->name_len);
    if (!closing && !j->err && j->want_sha)
        e = install(fs, e, j->name, j->name_len, j->fd, &j->st, j->sha256);
    else if (e && ux_same_file(e, &j->st))
        close(j->fd); /* a tree for the version it has */
    else {
        close(j->fd);
        e = NULL;
    }
    if (e && j->tree_cs && !j->err)
        keep_tree(fs, e, j->tree_cs, &j->tree);
    else
        ux_tree_free(&j->tree);
    free(fs->job_failed);
    /* a client's file that failed is hashed in the loop next; one hashed
     * ahead, maybe still being written, is just asked about again */
    fs->job_failed = j->err && !closing && !fs->job_ahead ? j->name : NULL; /* freed when forgotten */
    if (!fs->job_failed)
        free(j->name);
    j->name = NULL;
    fs->job_ahead = 0;
}

int ux_fileset_fd(const struct ux_fileset *fs) { return fs->pfd; }

void ux_fileset_settle(struct ux_fileset *fs)
{
    end_job(fs, 0);
    ux_prehash_step(fs);
}

/* Is NAME the file whose job failed last? (Once: then forgotten.) */
static int failed_off_loop(struct ux_fileset *fs, const char *name, size_t len)
{
    if (!fs->job_failed || strlen(fs->job_failed) != len || memcmp(fs->job_failed, name, len))
        return 0;
    free(fs->job_failed);
    fs->job_failed = NULL;
    return 1;
}

/* A large file goes to the thread (one at a time). Returns 1 if the
 * caller should answer "preparing" (FD taken, or kept while busy). */
int ux_hash_off_loop(struct ux_fileset *fs, const char *name, size_t len, int fd, const struct stat *st,
                         int want_sha, uint32_t tree_cs)
{
    if (!fs->async_min || (uint64_t)st->st_size < fs->async_min || failed_off_loop(fs, name, len))
        return 0;
    if (!fs->job.running && ux_hashjob_start(&fs->job, name, len, fd, st, want_sha, tree_cs, fs->efd) == 0) {
        fs->job_ahead = fs->ahead;
        if (!fs->ahead)
            fs->client_waiting_at = 0; /* a client's job: none waits now */
        fs->hashes_computed += want_sha;
        fs->work_once += want_sha ? (uint64_t)st->st_size + UX_LOOKUP_WORK : 0;
        fs->work += want_sha ? (uint64_t)st->st_size : 0;
        if (tree_cs)
            ux_charge_tree(fs, (uint64_t)st->st_size, tree_cs);
        return 1;
    }
    if (fs->job.running) {
        close(fd); /* busy with another: the client asks again */
        if (!fs->ahead)
            fs->client_waiting_at = ux_now_us(); /* and goes before any file hashed ahead */
        return 1;
    }
    return 0;
}

/* Is the thread making E's tree at CS? */
static int job_for(const struct ux_fileset *fs, const struct ux_entry *e, uint32_t cs)
{
    const struct ux_hashjob *j = &fs->job;
    return j->running && j->tree_cs == cs && j->name_len == e->name_len && !memcmp(j->name, e->name, e->name_len);
}

/* E's tree at CS into OUT's root: built here for a file under async_min,
 * else by the thread (UX_E_PREPARING meanwhile). 0 also when it cannot be
 * had (too large to keep, or not within the budgets): the offer then goes
 * without a root, and the client fetches what it lacks without comparing. */
static int want_tree(struct ux_fileset *fs, struct ux_entry *e, uint32_t cs, struct ux_file_info *out)
{
    struct ux_ftree *t = tree_for(e, cs);
    if (!t && job_for(fs, e, cs))
        return UX_E_PREPARING; /* begun, and paid for */
    if (!t && (!fs->may_tree || !ux_tree_fits(e->size, cs)))
        return 0;
    if (!t) {
        int fd = entry_fd(fs, e);
        if (fd < 0)
            return UX_E_STALE;
        struct stat st;
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd >= 0 && fstat(dup_fd, &st) == 0 && ux_hash_off_loop(fs, e->name, e->name_len, dup_fd, &st, 0, cs))
            return UX_E_PREPARING;
        if (dup_fd >= 0)
            close(dup_fd);
        struct ux_tree tree;
        ux_charge_tree(fs, e->size, cs);
        if (ux_tree_fd(&tree, fs->sha, fd, e->size, cs, NULL, NULL, NULL))
            return 0;
        keep_tree(fs, e, cs, &tree);
        t = tree_for(e, cs);
    }
    t->last_use = ++fs->clock;
    out->has_root = 1;
    ux_tree_root(&t->tree, out->root);
    return 0;
}

/* ---- the provider ---- */

/* NAME no longer names what its entry describes: close and forget it. */
static void forget_name(struct ux_fileset *fs, const char *name, size_t len)
{
    struct ux_entry *e = ux_find_entry(fs, name, len);
    if (!e || !e->generation)
        return;
    close_fd(fs, e);
    forget_version(fs, e);
    e->generation = 0;
}

static int lookup_file(struct ux_fileset *fs, const struct ux_lookup *q, struct ux_file_info *out)
{
    if (ux_name_check(q->name, q->len))
        return UX_E_REFUSED;
    fs->work += UX_LOOKUP_WORK;
    char path[UX_MAX_NAME + 1];
    memcpy(path, q->name, q->len);
    path[q->len] = 0;
    size_t rel;
    int root = resolve(fs, path, q->len, &rel);
    if (rel == q->len && root)
        return UX_E_NOTFOUND; /* the share itself is a folder */
    int fd = open_beneath(fs->roots[root].fd, path + rel);
    if (fd < 0) {
        int code = errno == EXDEV || errno == ELOOP ? UX_E_REFUSED : UX_E_NOTFOUND;
        forget_name(fs, q->name, q->len); /* a deleted file's descriptor goes with it */
        return code;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        forget_name(fs, q->name, q->len);
        return UX_E_NOTFOUND;
    }
    end_job(fs, 0);
    struct ux_entry *e = ux_find_entry(fs, q->name, q->len);
    if (e && e->generation && ux_same_file(e, &st)) {
        close(fd); /* unchanged: the cached hash stands */
    } else {
        /* A version's SHA-256 is made once, however it is asked for; its
         * tree in the same pass only within the budgets. */
        uint32_t cs = q->want_tree && fs->may_tree && ux_tree_fits((uint64_t)st.st_size, q->chunk_size)
                          ? q->chunk_size : 0;
        if (fs->may == UX_WORK_NONE) {
            close(fd); /* nothing is within the budgets now: the client asks again */
            fs->deferred = 1;
            return UX_E_PREPARING;
        }
        if (ux_hash_off_loop(fs, q->name, q->len, fd, &st, 1, cs))
            return UX_E_PREPARING;
        uint8_t sha[UX_HASH_LEN];
        struct ux_tree tree = {0};
        fs->hashes_computed++;
        fs->work_once += (uint64_t)st.st_size + UX_LOOKUP_WORK; /* its opening, too, is done once */
        fs->work += (uint64_t)st.st_size;
        if (cs)
            ux_charge_tree(fs, (uint64_t)st.st_size, cs);
        /* Both in one pass when the tree is wanted too. */
        int err = cs ? ux_tree_fd(&tree, fs->sha, fd, (uint64_t)st.st_size, cs, fs->whole, sha, NULL)
                     : ux_sha_fd(fs->sha, fd, (uint64_t)st.st_size, NULL, sha);
        if (err) {
            close(fd);
            return UX_E_IO;
        }
        if (!(e = install(fs, e, q->name, q->len, fd, &st, sha))) {
            ux_tree_free(&tree);
            return UX_E_IO;
        }
        if (cs)
            keep_tree(fs, e, cs, &tree);
    }
    fill_info(fs, e, out);
    return q->want_tree ? want_tree(fs, e, q->chunk_size, out) : 0;
}

int ux_fileset_file_hash(struct ux_fileset *fs, int root, const char *rel, const struct stat *st, uint32_t cs,
                         uint8_t out[UX_HASH_LEN])
{
    char name[UX_MAX_NAME + 1];
    size_t n = root ? (size_t)snprintf(name, sizeof name, "%s/%s", fs->roots[root].name, rel)
                    : (size_t)snprintf(name, sizeof name, "%s", rel);
    if (n >= sizeof name)
        return UX_E_REFUSED;
    struct ux_entry *e = ux_find_entry(fs, name, n);
    if (e && e->generation && ux_same_file(e, st)) {
        memcpy(out, e->sha256, UX_HASH_LEN);
        return 0;
    }
    /* A large file is hashed for its tree too, in the same pass: a client
     * holding an older copy asks for it next. */
    struct ux_file_info fi;
    struct ux_lookup q = {.kind = UX_KIND_FILE, .name = name, .len = n, .chunk_size = cs,
                          .want_tree = cs && (uint64_t)st->st_size >= TREE_AHEAD_MIN};
    int code = lookup_file(fs, &q, &fi);
    if (!code)
        memcpy(out, fi.sha256, UX_HASH_LEN);
    return code;
}

static int fs_lookup(void *ud, struct ux_lookup *q, struct ux_file_info *out)
{
    struct ux_fileset *fs = ud;
    uint64_t before = fs->work, once = fs->work_once, trees = fs->work_trees;
    fs->may = q->may;
    fs->may_tree = q->may_tree;
    fs->deferred = 0;
    int code = q->kind == UX_KIND_LISTING ? ux_listing_lookup(fs, q, out)
               : q->kind == UX_KIND_FILES ? ux_batch_lookup(fs, q, out)
                                          : lookup_file(fs, q, out);
    q->work = fs->work - before;
    q->work_once = fs->work_once - once;
    q->work_trees = fs->work_trees - trees;
    q->deferred = fs->deferred;
    fs->deferrals += fs->deferred != 0;
    fs->may = UX_WORK_NONE;
    fs->may_tree = 0;
    return code;
}

static struct ux_entry *by_handle(struct ux_fileset *fs, uint32_t handle)
{
    return handle >= 1 && handle <= fs->n && fs->entries[handle - 1].generation ? &fs->entries[handle - 1] : NULL;
}

static int file_current(struct ux_fileset *fs, uint32_t handle, struct ux_file_info *out)
{
    struct ux_entry *e = by_handle(fs, handle);
    struct stat st;
    if (!e)
        return UX_E_NOTFOUND;
    int fd = entry_fd(fs, e);
    if (fd < 0 || fstat(fd, &st) || !ux_same_file(e, &st) || st.st_nlink == 0) {
        close_fd(fs, e); /* changed in place or deleted since it was hashed */
        ux_unmap(fs, e);
        return UX_E_STALE;
    }
    fill_info(fs, e, out);
    return 0;
}

static int file_read(struct ux_fileset *fs, uint32_t handle, uint64_t off, uint8_t *buf, size_t len)
{
    struct ux_entry *e = by_handle(fs, handle);
    int fd = e ? entry_fd(fs, e) : -1;
    return fd >= 0 ? ux_read_sparse(fd, &e->holes, buf, len, off) : EBADF;
}

/* The LEN bytes at OFF, lent (LENT) where they may be: zeros of a hole
 * from memory (a fault on the mapping would take page cache for them),
 * data from the mapping; else read into BUF. */
static int bytes_at(struct ux_fileset *fs, struct ux_entry *e, int fd, uint64_t off, uint8_t *buf, size_t len,
                    const uint8_t **lent)
{
    static const uint8_t zeros[UX_MAX_CHUNK];
    if (lent && len <= sizeof zeros && ux_hole_at(fd, &e->holes, off, len))
        *lent = zeros;
    else if (lent)
        *lent = ux_lend(fs, e, fd, off, len);
    return lent && *lent ? 0 : ux_read_sparse(fd, &e->holes, buf, len, off);
}

static int file_chunk(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf, size_t len,
                      uint8_t *hash, const uint8_t **lent)
{
    struct ux_entry *e = by_handle(fs, handle);
    int fd = e ? entry_fd(fs, e) : -1;
    if (fd < 0)
        return EBADF;
    uint64_t off = (uint64_t)index * cs;
    if (!hash) /* nothing to hash: the bytes may go straight from the mapping */
        return bytes_at(fs, e, fd, off, buf, len, lent);
    struct ux_ftree *t = tree_for(e, cs);
    struct ux_hfile *keep = t ? NULL : ux_cached(fs, e, cs);
    int known = t ? (memcpy(hash, ux_tree_leaf(&t->tree, index), UX_HASH_LEN), 1)
                  : keep && ux_hcache_get(&fs->hcache, keep, index, hash);
    /* Bytes we must hash are read: only the kernel may touch the mapping. */
    int err = bytes_at(fs, e, fd, off, buf, len, known ? lent : NULL);
    if (err || known)
        return err;
    if (ux_chunk_hash(fs->sha, index, buf, len, hash))
        return EIO;
    if (keep)
        ux_hcache_put(&fs->hcache, keep, index, hash);
    return 0;
}

static int file_node(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len)
{
    struct ux_entry *e = by_handle(fs, handle);
    struct ux_ftree *t = e ? tree_for(e, cs) : NULL;
    if (!t)
        return ENOENT;
    t->last_use = ++fs->clock;
    *len = ux_tree_node_bytes(&t->tree, id, buf);
    return *len ? 0 : ENOENT;
}

static void file_opened(struct ux_fileset *fs, uint32_t handle, uint32_t cs)
{
    struct ux_entry *e = by_handle(fs, handle);
    struct ux_ftree *t = e ? tree_for(e, cs) : NULL;
    if (t)
        t->proven = 1;
}

static const char *file_name(struct ux_fileset *fs, uint32_t handle)
{
    return handle >= 1 && handle <= fs->n ? fs->entries[handle - 1].name : NULL;
}

static const struct ux_served_ops file_ops = {file_current, file_read, file_chunk, file_node, file_name, file_opened};

int ux_fileset_lookup_file(struct ux_fileset *fs, const char *name, size_t len, struct ux_file_info *out)
{
    struct ux_lookup q = {.kind = UX_KIND_FILE, .name = name, .len = len};
    return lookup_file(fs, &q, out);
}

int ux_fileset_chunk(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf, size_t len,
                     const uint8_t **lent)
{
    return file_chunk(fs, handle, cs, index, buf, len, NULL, lent);
}

/* ---- the provider: what a handle is, and who serves it ---- */

static const struct ux_served_ops *ops_of(uint32_t handle)
{
    return handle & UX_BATCH_HANDLE ? &ux_batch_ops : handle & UX_LISTING_HANDLE ? &ux_listing_ops : &file_ops;
}

static int fs_current(void *ud, uint32_t handle, struct ux_file_info *out)
{
    return ops_of(handle)->current(ud, handle, out);
}

static int fs_read(void *ud, uint32_t handle, uint64_t off, uint8_t *buf, size_t len)
{
    return ops_of(handle)->read(ud, handle, off, buf, len);
}

static int fs_chunk(void *ud, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf, size_t len,
                    uint8_t *hash, const uint8_t **lent)
{
    return ops_of(handle)->chunk(ud, handle, cs, index, buf, len, hash, lent);
}

static int fs_node(void *ud, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len)
{
    return ops_of(handle)->node(ud, handle, cs, id, buf, len);
}

static void fs_opened(void *ud, uint32_t handle, uint32_t cs) { ops_of(handle)->opened(ud, handle, cs); }

static const char *fs_name(void *ud, uint32_t handle) { return ops_of(handle)->name(ud, handle); }

struct ux_provider ux_fileset_provider(struct ux_fileset *fs)
{
    return (struct ux_provider){fs_lookup, fs_current, fs_read, fs_chunk, fs_node, fs_name, fs_opened, fs};
}
