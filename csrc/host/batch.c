#include "batch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "beneath.h"
#include "localfs.h"

enum { BF_WAIT, BF_READY, BF_COMMITTING, BF_SETTLED };

struct ux_bfile {
    uint8_t state;
    uint32_t got;           /* chunks in */
    uint8_t *mem;           /* a small file's bytes */
    struct ux_sink *sink;   /* a large file's */
};

static uint32_t chunks_of(const struct ux_batch *b, uint32_t f) { return b->layout.first[f + 1] - b->layout.first[f]; }

static int is_small(const struct ux_batch *b, uint32_t f) { return b->files[f].size <= UX_BATCH_SMALL; }

/* ---- results ---- */

static void settle(struct ux_batch *b, uint32_t f, enum ux_err code, const char *why, const struct stat *st)
{
    struct ux_bfile *x = &b->st[f];
    if (x->state == BF_SETTLED)
        return;
    x->state = BF_SETTLED;
    free(x->mem);
    x->mem = NULL;
    b->settled++;
    if (b->nout == b->outcap) {
        uint32_t cap = b->outcap ? 2 * b->outcap : 64;
        struct ux_batch_result *r = realloc(b->out, cap * sizeof *r);
        if (!r)
            return; /* the file is settled; its report is lost, not its state */
        b->out = r;
        b->outcap = cap;
    }
    struct ux_batch_result *r = &b->out[b->nout++];
    memset(r, 0, sizeof *r);
    r->file = f;
    r->code = code;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
    if (st)
        r->st = *st;
}

/* ---- sinks ---- */

static void watch(struct ux_batch *b, struct ux_sink *k, int on)
{
    if (b->link && ux_sink_fd(k) >= 0)
        ux_poller_watch(&b->link->poller, ux_sink_fd(k), on ? EPOLLIN : 0);
}

/* A large file's sink, opened at its first chunk in its folder beneath the root. */
static int open_sink(struct ux_batch *b, uint32_t f, const char **why)
{
    const struct ux_batch_file *bf = &b->files[f];
    const char *slash = strrchr(bf->path, '/');
    char dir[1100];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - bf->path) : 1, slash ? bf->path : ".");
    int dfd = ux_open_beneath(b->root, dir, O_RDONLY | O_DIRECTORY, UX_NO_SYMLINKS);
    *why = "cannot open the file's folder";
    if (dfd < 0)
        return errno;
    struct ux_sink *k = calloc(1, sizeof *k);
    if (!k) {
        close(dfd);
        return ENOMEM;
    }
    k->fd = k->dirfd = k->h.efd = -1;
    k->set_mode = k->set_mtime = 1;
    k->mode = bf->mode;
    k->mtime_ns = bf->mtime_ns;
    int err = ux_sink_open(k, dfd, slash ? slash + 1 : bf->path, bf->size, b->durable, why);
    close(dfd);
    if (err) {
        free(k);
        return err;
    }
    b->st[f].sink = k;
    return 0;
}

static void drop_sink(struct ux_batch *b, uint32_t f, int keep)
{
    struct ux_sink *k = b->st[f].sink;
    if (!k)
        return;
    watch(b, k, 0);
    if (keep)
        ux_sink_keep(k);
    else
        ux_sink_abort(k);
    if (b->held == k)
        b->held = NULL;
    free(k);
    b->st[f].sink = NULL;
}

static void commit_large(struct ux_batch *b, uint32_t f)
{
    struct ux_sink *k = b->st[f].sink;
    const char *why = "cannot set the file's size";
    int err = ux_sink_truncate(k, b->files[f].size);
    if (!err && !b->link)
        err = ux_sink_commit(k, b->files[f].sha256, &why);
    else if (!err) {
        ux_sink_commit_start(k, b->files[f].sha256);
        err = ux_sink_commit_ended(k) ? ux_sink_commit_result(k, &why) : EINPROGRESS;
    }
    if (err == EINPROGRESS) {
        b->st[f].state = BF_COMMITTING;
        b->committing++;
        watch(b, k, 1);
        return;
    }
    settle(b, f, err ? (err == EBADMSG ? UX_ERR_CORRUPT : UX_ERR_IO) : UX_OK,
           err == EBADMSG ? "its SHA-256 is not the listing's" : err ? why : NULL, &k->final_st);
    drop_sink(b, f, 0);
}

/* Large files whose commit has ended. */
static void collect_commits(struct ux_batch *b)
{
    for (uint32_t f = 0; b->committing && f < b->nfiles; f++) {
        struct ux_sink *k = b->st[f].sink;
        if (b->st[f].state != BF_COMMITTING)
            continue;
        ux_sink_clear(k);
        if (!ux_sink_commit_ended(k))
            continue;
        watch(b, k, 0);
        const char *why = "";
        int err = ux_sink_commit_result(k, &why);
        b->committing--;
        settle(b, f, err ? (err == EBADMSG ? UX_ERR_CORRUPT : UX_ERR_IO) : UX_OK,
               err == EBADMSG ? "its SHA-256 is not the listing's" : why, &k->final_st);
        drop_sink(b, f, 0);
    }
}

/* ---- small files ---- */

/* The folder holding PATH beneath the root: the last one is kept open, as
 * a listing's files come folder by folder. */
static int parent_of(struct ux_batch *b, const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    *base = slash ? slash + 1 : path;
    if (b->dirfd >= 0 && n == b->dirlen && !memcmp(b->dir, path, n))
        return b->dirfd;
    if (b->dirfd >= 0)
        close(b->dirfd);
    b->dirfd = ux_local_open_parent(b->root, path, base);
    b->dirlen = n; /* a name is UX_MAX_NAME bytes at most: its folder fits */
    memcpy(b->dir, path, n);
    return b->dirfd;
}

static void commit_small(struct ux_batch *b, uint32_t f)
{
    const struct ux_batch_file *bf = &b->files[f];
    uint8_t got[UX_HASH_LEN];
    uint8_t *data = b->st[f].mem;
    if (ux_sha_init(b->eng.sha) || ux_sha_update(b->eng.sha, data, bf->size) || ux_sha_final(b->eng.sha, got) ||
        !ux_equal(got, bf->sha256, UX_HASH_LEN)) {
        settle(b, f, UX_ERR_CORRUPT, "its SHA-256 is not the listing's", NULL);
        return;
    }
    struct stat st;
    const char *base;
    int dfd = parent_of(b, bf->path, &base);
    int err = dfd < 0 ? errno
                      : ux_local_put_at(dfd, base, data ? data : (const uint8_t *)"", bf->size, bf->mode, bf->mtime_ns,
                                        b->durable, &st);
    settle(b, f, err ? UX_ERR_IO : UX_OK, err ? strerror(err) : NULL, &st);
}

/* ---- the engine's callbacks ---- */

static int on_start(void *ud, uint64_t size, const char **why)
{
    (void)ud;
    (void)size;
    (void)why;
    return 0; /* each file is opened at its first chunk */
}

static int on_chunk(void *ud, uint32_t g, uint64_t voff, const uint8_t *data, size_t len)
{
    struct ux_batch *b = ud;
    (void)voff;
    uint32_t f;
    uint64_t off;
    ux_layout_chunk(&b->layout, g, &f, &off);
    struct ux_bfile *x = &b->st[f];
    if (x->state != BF_WAIT)
        return 0; /* settled already (it failed to open): its chunks go nowhere */
    if (is_small(b, f)) {
        if (!x->mem && !(x->mem = malloc(b->files[f].size ? b->files[f].size : 1)))
            return ENOMEM;
        memcpy(x->mem + off, data, len);
    } else {
        const char *why;
        int err = x->sink ? 0 : open_sink(b, f, &why);
        if (err) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s: %s", why, strerror(err));
            settle(b, f, UX_ERR_IO, msg, NULL);
            return 0;
        }
        err = b->link ? ux_sink_try_write(x->sink, off, data, len) : ux_sink_write(x->sink, off, data, len);
        if (err == EAGAIN) {
            b->held = x->sink; /* wait for its thread */
            watch(b, x->sink, 1);
        }
        if (err)
            return err;
    }
    if (++x->got == chunks_of(b, f)) {
        x->state = BF_READY;
        b->ready[b->nready++] = f;
    }
    return 0;
}

static int on_reuse(void *ud, uint64_t off, size_t len)
{
    (void)ud;
    (void)off;
    (void)len;
    return EIO; /* a batch has no local copy */
}

/* ---- the link ---- */

int ux_batch_input(struct ux_batch *b, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    struct ux_sink *k = b->held;
    if (k) {
        ux_sink_clear(k); /* before trying again: a slab freed after this wakes us */
        watch(b, k, 0);
        b->held = NULL;
    }
    return ux_client_input(&b->eng, now, p, n, a);
}

static int link_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    return ux_batch_input(e, now, p, n, a);
}

static size_t link_output(void *e, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_client_output(&((struct ux_batch *)e)->eng, now, buf, cap, a);
}

static void link_bounced(void *e, uint64_t now, const struct ux_addr *to)
{
    ux_client_unreachable(&((struct ux_batch *)e)->eng, now, to);
}

uint64_t ux_batch_deadline(const struct ux_batch *b)
{
    if (b->nready || b->nout)
        return 0;
    return b->engine_done || b->failed ? UINT64_MAX : ux_client_deadline(&b->eng);
}

static uint64_t link_deadline(void *e) { return ux_batch_deadline(e); }

/* ---- construction ---- */

uint32_t ux_batch_ranges(const struct ux_batch_file *files, uint32_t n)
{
    uint32_t r = 0;
    for (uint32_t i = 0; i < n; i++)
        r += i == 0 || files[i].number != files[i - 1].number + 1;
    return r;
}

/* The selection the files' numbers make, its layout at chunk size CS, and
 * its DIGEST (what the servers' offers must carry). */
static enum ux_err make_selection(struct ux_batch *b, const struct ux_batch_spec *s, uint32_t cs,
                                  uint8_t digest[UX_HASH_LEN], char *why, size_t cap)
{
    struct ux_selection sel;
    memcpy(sel.listing, s->listing, UX_HASH_LEN);
    sel.nranges = 0;
    uint64_t *sizes = malloc((s->nfiles ? s->nfiles : 1) * sizeof *sizes);
    if (!sizes) {
        snprintf(why, cap, "out of memory");
        return UX_ERR_IO;
    }
    for (uint32_t i = 0; i < s->nfiles; i++) {
        sizes[i] = s->files[i].size;
        if (i && s->files[i].number <= s->files[i - 1].number) {
            free(sizes);
            snprintf(why, cap, "the files' numbers must go up");
            return UX_ERR_USAGE;
        }
        if (i && s->files[i].number == s->files[i - 1].number + 1) {
            sel.ranges[sel.nranges - 1].count++;
        } else if (sel.nranges == UX_SEL_MAX_RANGES) {
            free(sizes);
            snprintf(why, cap, "the files make more than %d ranges of numbers", UX_SEL_MAX_RANGES);
            return UX_ERR_USAGE;
        } else {
            sel.ranges[sel.nranges++] = (struct ux_range){s->files[i].number, 1};
        }
    }
    int bad = ux_layout_init(&b->layout, sizes, s->nfiles, cs);
    free(sizes);
    b->sel_len = ux_selection_encode(&sel, b->sel, sizeof b->sel);
    struct ux_sha *sha = ux_sha_new();
    bad = bad || !b->sel_len || !sha || ux_selection_digest(sha, &sel, cs, digest);
    ux_sha_free(sha);
    if (bad) {
        snprintf(why, cap, "cannot lay the files out");
        return UX_ERR_IO;
    }
    return UX_OK;
}

enum ux_err ux_batch_open(struct ux_batch *b, const struct ux_batch_spec *s, struct ux_client_cfg *cfg,
                          struct ux_link *link, uint64_t now, char *why, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->dirfd = -1;
    b->live = 1;
    b->link = link;
    b->root = s->root;
    b->durable = s->durable;
    b->files = s->files;
    b->nfiles = s->nfiles;
    b->st = calloc(s->nfiles ? s->nfiles : 1, sizeof *b->st);
    b->ready = malloc((s->nfiles ? s->nfiles : 1) * sizeof *b->ready);
    if (!b->st || !b->ready) {
        snprintf(why, cap, "out of memory");
        ux_batch_close(b);
        return UX_ERR_IO;
    }
    enum ux_err code = make_selection(b, s, cfg->chunk_size, cfg->want_sha256, why, cap);
    if (code) {
        ux_batch_close(b);
        return code;
    }
    cfg->want_sha256_set = 1;
    cfg->kind = UX_KIND_FILES;
    cfg->sel = b->sel;
    cfg->sel_len = b->sel_len;
    cfg->layout = &b->layout;
    cfg->want_tree = 0;
    cfg->basis = NULL;
    cfg->on_start = on_start;
    cfg->on_chunk = on_chunk;
    cfg->on_reuse = on_reuse;
    cfg->ud = b;
    if (ux_client_init(&b->eng, cfg, now)) {
        snprintf(why, cap, "cannot initialise the client");
        ux_batch_close(b);
        return UX_ERR_IO;
    }
    /* empty files own no chunk: complete before the first datagram */
    for (uint32_t f = 0; f < b->nfiles; f++)
        if (chunks_of(b, f) == 0) {
            b->st[f].state = BF_READY;
            b->ready[b->nready++] = f;
        }
    if (link) {
        struct ux_endpoint ep = {b, link_input, link_output, link_deadline, b->eng.xid, link_bounced};
        if (ux_link_attach(link, &ep)) {
            snprintf(why, cap, "out of memory");
            ux_batch_close(b);
            return UX_ERR_IO;
        }
        b->attached = 1;
    }
    return UX_OK;
}

void ux_batch_close(struct ux_batch *b)
{
    if (!b->live)
        return;
    if (b->attached)
        ux_link_detach(b->link, b);
    b->attached = 0;
    for (uint32_t f = 0; b->st && f < b->nfiles; f++) {
        drop_sink(b, f, 0);
        free(b->st[f].mem);
    }
    if (b->dirfd >= 0)
        close(b->dirfd);
    b->dirfd = -1;
    free(b->st);
    free(b->ready);
    free(b->out);
    b->st = NULL;
    b->ready = NULL;
    b->out = NULL;
    ux_layout_free(&b->layout);
    ux_client_free(&b->eng);
    b->live = 0;
}

/* ---- events ---- */

/* The engine failed: every file not settled fails with it; a large
 * file's partial file stays where what was sent can be resumed. */
static void fail_rest(struct ux_batch *b)
{
    int keep = b->eng.fail == UX_ERR_TIMEOUT || b->eng.fail == UX_ERR_STALE || b->eng.fail == UX_ERR_CLOSED;
    for (uint32_t f = 0; f < b->nfiles; f++) {
        if (b->st[f].state == BF_SETTLED || b->st[f].state == BF_COMMITTING)
            continue;
        drop_sink(b, f, keep);
        settle(b, f, b->eng.fail, b->eng.fail_msg, NULL);
    }
    b->nready = 0;
}

int ux_batch_next_event(struct ux_batch *b, struct ux_batch_event *ev)
{
    while (b->nready) {
        uint32_t f = b->ready[--b->nready];
        if (is_small(b, f))
            commit_small(b, f);
        else if (b->st[f].sink)
            commit_large(b, f);
        else
            settle(b, f, UX_ERR_IO, "no output for the file", NULL);
    }
    collect_commits(b);
    if (b->nout) {
        ev->is_file = 1;
        ev->file = b->out[--b->nout];
        return 1;
    }
    if (b->engine_done) { /* the engine's end waits for every file's */
        if (b->settled < b->nfiles)
            return 0;
        b->engine_done = 0;
        ev->is_file = 0;
        ev->eng = b->done;
        return 1;
    }
    while (!b->failed && ux_client_next_event(&b->eng, &ev->eng)) {
        ev->is_file = 0;
        if (ev->eng.type != UXC_EV_DONE && ev->eng.type != UXC_EV_FAIL)
            return 1;
        if (ev->eng.type == UXC_EV_FAIL) {
            b->failed = 1;
            fail_rest(b);
        }
        b->done = ev->eng;
        b->engine_done = 1;
        return ux_batch_next_event(b, ev);
    }
    return 0;
}

void ux_batch_abort(struct ux_batch *b, enum ux_err code, const char *msg)
{
    ux_client_abort(&b->eng, code, msg);
    /* what large files have of their bytes stays, to be resumed */
    for (uint32_t f = 0; f < b->nfiles; f++)
        if (b->st[f].state == BF_WAIT)
            drop_sink(b, f, 1);
}
