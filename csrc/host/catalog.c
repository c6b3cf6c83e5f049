#include "catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "beneath.h"
#include "engine/listing.h"
#include "engine/names.h"
#include "engine/wire.h"

#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_ATTRIB | \
                    IN_CLOSE_WRITE | IN_ONLYDIR | IN_EXCL_UNLINK)

struct cnode {
    char *path;               /* relative to the root; never "." */
    size_t len;
    uint64_t seq;             /* order of finding: of two nodes for one path the later wins */
    char type;                /* 'd', 'f', 'l'; 0 once removed (the path stays until settle) */
    struct stat st;
    char *target;             /* links */
    size_t tlen;
    int hashed;               /* sha is of the version hst describes */
    struct stat hst;
    uint8_t sha[UX_SHA256_LEN];
};

/* Paths events named, each once after sorting. */
struct pathset {
    char **p;
    size_t n, cap;
    int failed;
};

static void pathset_free(struct pathset *ps);

#define WRITTEN_MAX 1024 /* files written, kept until taken: more are not hashed ahead */
#define PENDING_MAX 65536 /* paths changed, kept until a listing applies them: more, a rescan then */
#define WRITTEN_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB)

struct ux_catalog {
    int root;
    int ino;                  /* inotify, or -1 (then every listing rescans) */
    struct stat root_st;
    struct cnode *node;       /* sorted by ux_listing_cmp, removed ones kept until compaction */
    size_t n, cap;
    struct cnode *add;        /* found since the last sort */
    size_t nadd, addcap;
    uint64_t seq;
    char **wd_path;           /* the folder each watch is on, by watch descriptor */
    int nwd;
    int watching;
    int blind;                /* a folder could not be watched: rescan for every listing */
    uint64_t generation;
    uint64_t rescans;         /* whole-tree scans, the first one included */
    uint64_t work;            /* UX_ENTRY_WORK per entry scanned or listed */
    struct pathset written;   /* files closed after writing, moved in or touched, not taken yet */
    struct pathset pending;   /* paths events named, not applied yet */
    int overflowed;           /* events were lost (or too many kept): rescan */
};

static int open_beneath(int root, const char *rel, int flags)
{
    return ux_open_beneath(root, rel, flags, UX_NO_SYMLINKS);
}

static void free_node(struct cnode *x)
{
    free(x->path);
    free(x->target);
    x->path = x->target = NULL;
    x->type = 0;
}

/* A removed node keeps its path, so the sorted part stays searchable
 * until settle() drops it. */
static void mark_removed(struct cnode *x) { x->type = 0; }

static int cmp_nodes(const void *a, const void *b)
{
    const struct cnode *x = a, *y = b;
    int r = ux_listing_cmp(x->path, x->len, y->path, y->len);
    return r ? r : x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The first node at or after PATH in the sorted part. */
static size_t lower_bound(const struct ux_catalog *c, const char *path, size_t len)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ux_listing_cmp(c->node[mid].path, c->node[mid].len, path, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct cnode *find(struct ux_catalog *c, const char *path, size_t len)
{
    size_t i = lower_bound(c, path, len);
    return i < c->n && c->node[i].type && c->node[i].len == len && !memcmp(c->node[i].path, path, len)
               ? &c->node[i] : NULL;
}

static void set_wd(struct ux_catalog *c, int wd, const char *path)
{
    if (wd < 0)
        return;
    if (wd >= c->nwd) {
        int n = wd + 64;
        char **p = realloc(c->wd_path, (size_t)n * sizeof *p);
        if (!p)
            return;
        memset(p + c->nwd, 0, (size_t)(n - c->nwd) * sizeof *p);
        c->wd_path = p;
        c->nwd = n;
    }
    if (!c->wd_path[wd])
        c->watching++;
    free(c->wd_path[wd]);
    c->wd_path[wd] = strdup(path);
}

static int add_node(struct ux_catalog *c, const char *path, size_t len, const struct stat *st, int dirfd,
                    const char *base)
{
    if (c->nadd == c->addcap) {
        size_t cap = c->addcap ? 2 * c->addcap : 256;
        struct cnode *a = realloc(c->add, cap * sizeof *a);
        if (!a)
            return ENOMEM;
        c->add = a;
        c->addcap = cap;
    }
    struct cnode *x = &c->add[c->nadd];
    memset(x, 0, sizeof *x);
    x->seq = ++c->seq;
    x->type = S_ISDIR(st->st_mode) ? 'd' : S_ISREG(st->st_mode) ? 'f' : 'l';
    x->st = *st;
    if (!(x->path = strndup(path, len)))
        return ENOMEM;
    x->len = len;
    if (x->type == 'l') {
        char t[4096];
        ssize_t n = readlinkat(dirfd, base, t, sizeof t);
        if (n <= 0 || (size_t)n == sizeof t || !(x->target = strndup(t, (size_t)n))) {
            free(x->path);
            return 0; /* unreadable or huge: left out */
        }
        x->tlen = (size_t)n;
    }
    c->nadd++;
    c->work += UX_SCAN_WORK;
    return 0;
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    if (!strcmp(dir, "."))
        snprintf(out, cap, "%s", name);
    else
        snprintf(out, cap, "%s/%s", dir, name);
}

/* Watch and read folder DIR (a relative path, or "."), adding what it
 * holds, and the same below each of its folders. */
static int scan(struct ux_catalog *c, const char *dir, int depth)
{
    if (depth > UX_LISTING_DEPTH)
        return 0;
    int fd = open_beneath(c->root, dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV ? 0 : errno;
    if (c->ino >= 0 && !c->blind) { /* once out of watches, every listing rescans anyway */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        int wd = inotify_add_watch(c->ino, proc, WATCH_MASK);
        if (wd < 0)
            c->blind = 1; /* out of watches (fs.inotify.max_user_watches) */
        set_wd(c, wd, dir);
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return errno;
    }
    size_t first = c->nadd;
    int err = 0;
    for (struct dirent *de; !err && (de = readdir(d));) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        struct stat st;
        if (!strcmp(name, ".") || !strcmp(name, "..") || ux_name_is_own(name, nl) ||
            fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW))
            continue;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
            continue; /* devices, sockets and pipes are not served */
        char path[UX_MAX_NAME + 2];
        join(path, sizeof path, dir, name);
        if (strlen(path) > UX_MAX_NAME)
            continue;
        err = add_node(c, path, strlen(path), &st, fd, name);
    }
    closedir(d);
    size_t last = c->nadd;
    for (size_t i = first; !err && i < last; i++)
        if (c->add[i].type == 'd') {
            char path[UX_MAX_NAME + 2];
            snprintf(path, sizeof path, "%s", c->add[i].path); /* c->add may move */
            err = scan(c, path, depth + 1);
        }
    return err;
}

/* Fold the nodes found into the sorted array, dropping removed ones. */
static int settle(struct ux_catalog *c)
{
    if (c->n + c->nadd > c->cap) {
        size_t cap = (c->n + c->nadd) * 2;
        struct cnode *p = realloc(c->node, cap * sizeof *p);
        if (!p)
            return ENOMEM;
        c->node = p;
        c->cap = cap;
    }
    memcpy(c->node + c->n, c->add, c->nadd * sizeof *c->add);
    c->n += c->nadd;
    c->nadd = 0;
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->node[i].type)
            c->node[k++] = c->node[i];
        else
            free_node(&c->node[i]);
    }
    c->n = k;
    if (c->n)
        qsort(c->node, c->n, sizeof *c->node, cmp_nodes);
    /* A path found twice (an event for something a scan found too): keep the later. */
    k = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (k && c->node[k - 1].len == c->node[i].len && !memcmp(c->node[k - 1].path, c->node[i].path, c->node[i].len)) {
            free_node(&c->node[k - 1]);
            c->node[k - 1] = c->node[i];
        } else {
            c->node[k++] = c->node[i];
        }
    }
    c->n = k;
    c->generation++;
    return 0;
}

static void clear(struct ux_catalog *c)
{
    for (size_t i = 0; i < c->n; i++)
        free_node(&c->node[i]);
    c->n = 0;
}

static int rescan(struct ux_catalog *c)
{
    clear(c);
    c->blind = 0;
    c->rescans++;
    fstat(c->root, &c->root_st);
    int err = scan(c, ".", 0);
    return err ? err : settle(c);
}

struct ux_catalog *ux_catalog_open(int rootfd, int *err)
{
    struct ux_catalog *c = calloc(1, sizeof *c);
    if (!c) {
        *err = ENOMEM;
        return NULL;
    }
    c->root = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
    c->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (c->root < 0 || (*err = rescan(c))) {
        if (c->root < 0)
            *err = errno;
        ux_catalog_close(c);
        return NULL;
    }
    return c;
}

void ux_catalog_close(struct ux_catalog *c)
{
    if (!c)
        return;
    clear(c);
    for (size_t i = 0; i < c->nadd; i++)
        free_node(&c->add[i]);
    for (int i = 0; i < c->nwd; i++)
        free(c->wd_path[i]);
    free(c->wd_path);
    free(c->node);
    free(c->add);
    pathset_free(&c->written);
    pathset_free(&c->pending);
    if (c->root >= 0)
        close(c->root);
    if (c->ino >= 0)
        close(c->ino);
    free(c);
}

/* PATH and everything below it leave the catalog. */
static void remove_tree(struct ux_catalog *c, const char *path, size_t len)
{
    for (size_t i = lower_bound(c, path, len); i < c->n; i++) {
        struct cnode *x = &c->node[i];
        if (x->len < len || memcmp(x->path, path, len) || (x->len > len && x->path[len] != '/'))
            break;
        mark_removed(x);
    }
}

static int depth_of(const char *path)
{
    int d = 1;
    for (; *path; path++)
        d += *path == '/';
    return d;
}

/* Is folder DIR ("." or a relative path) in the settled catalog? */
static int have_folder(struct ux_catalog *c, const char *dir)
{
    if (!strcmp(dir, "."))
        return 1;
    const struct cnode *x = find(c, dir, strlen(dir));
    return x && x->type == 'd';
}

/* Is folder PATH (BASE in DFD) the very folder its watch is on? A folder
 * deleted and made again may have the same inode number; its watch went
 * with the old one, so a fresh watch (no path yet) says it is new. */
static int same_folder(struct ux_catalog *c, const char *path, const struct cnode *x, const struct stat *st,
                       int dfd, const char *base)
{
    if (x->st.st_ino != st->st_ino || x->st.st_dev != st->st_dev)
        return 0;
    if (c->ino < 0)
        return 1;
    int fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int wd = inotify_add_watch(c->ino, proc, WATCH_MASK);
    close(fd);
    return wd >= 0 && wd < c->nwd && c->wd_path[wd] && !strcmp(c->wd_path[wd], path);
}

/* Something happened to PATH: look again. A folder is kept in place only
 * while it is the same folder (a new one at its path has other contents
 * and needs a watch of its own). */
static void recheck(struct ux_catalog *c, const char *path)
{
    size_t len = strlen(path);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[UX_MAX_NAME + 2];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    struct stat st;
    int dfd = open_beneath(c->root, dir, O_RDONLY | O_DIRECTORY);
    int gone = dfd < 0 || fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) ||
               (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode));
    struct cnode *x = find(c, path, len);
    char type = gone ? 0 : S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : 'l';
    if (x && x->type == type && type != 'l' && (type != 'd' || same_folder(c, path, x, &st, dfd, base))) {
        x->st = st; /* changed in place */
    } else {
        remove_tree(c, path, len);
        /* below a folder that is new since the last settle, its scan found PATH already */
        if (!gone && have_folder(c, dir) && add_node(c, path, len, &st, dfd, base) == 0 && type == 'd')
            scan(c, path, depth_of(path));
    }
    if (dfd >= 0)
        close(dfd);
}


static void pathset_add(struct pathset *ps, const char *dir, const char *name)
{
    char path[UX_MAX_NAME + 2];
    if (name)
        join(path, sizeof path, dir, name);
    else
        snprintf(path, sizeof path, "%s", dir);
    if (strlen(path) > UX_MAX_NAME || !strcmp(path, "."))
        return;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 64;
        char **p = realloc(ps->p, cap * sizeof *p);
        if (!p) {
            ps->failed = 1;
            return;
        }
        ps->p = p;
        ps->cap = cap;
    }
    if (!(ps->p[ps->n] = strdup(path)))
        ps->failed = 1;
    else
        ps->n++;
}

static int cmp_paths(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return ux_listing_cmp(x, strlen(x), y, strlen(y));
}

static void pathset_free(struct pathset *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->p[i]);
    free(ps->p);
}

/* Read every pending event into PS: the entry an event names and the
 * folder holding it (whose mtime it changed). Returns 1 if the kernel's
 * queue overflowed. */
static int read_events(struct ux_catalog *c, struct pathset *ps)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int overflow = 0;
    for (;;) {
        ssize_t n = read(c->ino, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            int known = ev->wd >= 0 && ev->wd < c->nwd && c->wd_path[ev->wd];
            if (ev->mask & IN_Q_OVERFLOW) {
                overflow = 1;
            } else if (ev->mask & IN_IGNORED) {
                if (known) {
                    free(c->wd_path[ev->wd]);
                    c->wd_path[ev->wd] = NULL;
                    c->watching--;
                }
            } else if (known && ev->len && !ux_name_is_own(ev->name, strlen(ev->name))) {
                pathset_add(ps, c->wd_path[ev->wd], ev->name);
                pathset_add(ps, c->wd_path[ev->wd], NULL);
                if ((ev->mask & WRITTEN_MASK) && !(ev->mask & IN_ISDIR) && c->written.n < WRITTEN_MAX)
                    pathset_add(&c->written, c->wd_path[ev->wd], ev->name);
            }
        }
    }
    return overflow;
}

void ux_catalog_collect(struct ux_catalog *c)
{
    if (c->ino < 0 || c->blind)
        return;
    if (read_events(c, &c->pending) || c->pending.failed || c->pending.n > PENDING_MAX) {
        c->overflowed = 1;
        pathset_free(&c->pending);
        memset(&c->pending, 0, sizeof c->pending);
    }
}

void ux_catalog_refresh(struct ux_catalog *c)
{
    if (c->ino < 0 || c->blind) {
        rescan(c);
        return;
    }
    ux_catalog_collect(c);
    struct pathset ps = c->pending;
    memset(&c->pending, 0, sizeof c->pending);
    if (c->overflowed) {
        c->overflowed = 0;
        rescan(c);
    } else if (ps.n) {
        /* parents before children: a folder gone takes its entries with it first */
        qsort(ps.p, ps.n, sizeof *ps.p, cmp_paths);
        for (size_t i = 0; i < ps.n; i++)
            if (i == 0 || strcmp(ps.p[i], ps.p[i - 1]))
                recheck(c, ps.p[i]);
        settle(c);
    }
    pathset_free(&ps);
    struct stat st;
    if (fstat(c->root, &st) == 0 && (st.st_mode != c->root_st.st_mode || st.st_mtim.tv_sec != c->root_st.st_mtim.tv_sec ||
                                     st.st_mtim.tv_nsec != c->root_st.st_mtim.tv_nsec)) {
        c->root_st = st;
        c->generation++;
    }
}

uint64_t ux_catalog_generation(const struct ux_catalog *c) { return c->generation; }
int ux_catalog_fd(const struct ux_catalog *c) { return c->blind ? -1 : c->ino; }

void ux_catalog_written(struct ux_catalog *c, ux_written_fn fn, void *ud)
{
    struct pathset w = c->written;
    memset(&c->written, 0, sizeof c->written);
    for (size_t i = 0; i < w.n; i++)
        fn(ud, w.p[i]);
    pathset_free(&w);
}
uint64_t ux_catalog_size(const struct ux_catalog *c) { return c->n; }
int ux_catalog_watching(const struct ux_catalog *c) { return c->blind ? 0 : c->watching; }
uint64_t ux_catalog_rescans(const struct ux_catalog *c) { return c->rescans; }
uint64_t ux_catalog_work(const struct ux_catalog *c) { return c->work; }

static int same_version(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

struct text {
    char *p;
    size_t len, cap;
};

static int grow(struct text *t)
{
    size_t cap = t->cap ? 2 * t->cap : 65536;
    char *p = realloc(t->p, cap);
    if (!p)
        return ENOMEM;
    t->p = p;
    t->cap = cap;
    return 0;
}

static int append(struct text *t, const struct ux_lentry *e)
{
    for (;;) {
        size_t n = t->p ? ux_listing_format(e, t->p + t->len, t->cap - t->len) : 0;
        if (n) {
            t->len += n;
            return 0;
        }
        if (grow(t))
            return ENOMEM;
    }
}

int ux_catalog_listing(struct ux_catalog *c, const char *sub, size_t sublen, ux_hash_fn hash, void *ud,
                       char **text, size_t *len)
{
    int whole = sublen == 1 && sub[0] == '.';
    size_t i = 0, end = c->n;
    const struct stat *top = &c->root_st;
    if (!whole) {
        struct cnode *x = find(c, sub, sublen);
        if (!x || x->type != 'd')
            return UX_E_NOTFOUND;
        top = &x->st;
        i = (size_t)(x - c->node) + 1;
        for (end = i; end < c->n && c->node[end].len > sublen && c->node[end].path[sublen] == '/' &&
                      !memcmp(c->node[end].path, sub, sublen);
             end++)
            ;
    }
    struct text t = {0};
    struct ux_lentry e = {.type = UX_LT_DIR, .mode = top->st_mode & 07777, .mtime_ns = ns(top->st_mtim),
                          .path = ".", .path_len = 1};
    int err = grow(&t);
    if (!err) {
        memcpy(t.p, UX_LISTING_MAGIC "\n", sizeof UX_LISTING_MAGIC);
        t.len = sizeof UX_LISTING_MAGIC;
        err = append(&t, &e);
    }
    /* what a client would refuse (an entry whose folder is not listed, a
     * name it cannot take) is left out, so the rest stays usable */
    struct ux_lcheck check;
    const char *why;
    ux_lcheck_init(&check);
    ux_lcheck_next(&check, &e, &why);
    int code = 0;
    c->work += (uint64_t)(end - i) * UX_ENTRY_WORK;
    for (; !err && i < end; i++) {
        struct cnode *x = &c->node[i];
        if (!x->type)
            continue;
        memset(&e, 0, sizeof e);
        e.type = (enum ux_ltype)x->type;
        e.mode = x->st.st_mode & 07777;
        e.mtime_ns = ns(x->st.st_mtim);
        e.path = whole ? x->path : x->path + sublen + 1;
        e.path_len = whole ? x->len : x->len - sublen - 1;
        if (x->type == 'l') {
            e.target = x->target;
            e.target_len = x->tlen;
        } else if (x->type == 'f') {
            e.size = (uint64_t)x->st.st_size;
            if (!x->hashed || !same_version(&x->hst, &x->st)) {
                int r = hash(ud, x->path, &x->st, x->sha);
                x->hashed = r == 0;
                x->hst = x->st;
                if (r == UX_E_NOTFOUND || r == UX_E_REFUSED)
                    continue; /* gone since it was seen, or not a file now: not listed */
                if (r) {
                    code = code == UX_E_PREPARING ? code : r; /* keep hashing the others meanwhile */
                    continue;
                }
            }
            memcpy(e.sha256, x->sha, UX_SHA256_LEN);
        }
        if (ux_lcheck_next(&check, &e, &why))
            continue;
        err = append(&t, &e);
    }
    if (err || code) {
        free(t.p);
        return err ? UX_E_IO : code;
    }
    *text = t.p;
    *len = t.len;
    return 0;
}
