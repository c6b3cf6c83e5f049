#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "engine/names.h"
#include "filehash.h"
#include "partial.h"

/* ---- the output ---- */

/* The basis's tree, now that the offer says the size: no byte beyond
 * it is read (a partial file may be far larger, or sparse), and the work
 * counts in the fetch's time. Not made for an offer without a tree: there
 * is nothing to compare it with. A basis that cannot be read is an empty
 * one: every chunk is fetched, and checked against its leaf. */
static void hash_basis(struct ux_fetch *f, uint64_t size)
{
    if (!f->basis_pending)
        return;
    f->basis_pending = 0;
    if (!f->eng->has_root)
        return;
    struct ux_sha *sha = ux_sha_new();
    uint64_t len = f->basis_size < size ? f->basis_size : size;
    if (!sha || ux_tree_fd(&f->basis, sha, f->basis_fd, len, f->eng->chunk_size, NULL, NULL, NULL))
        ux_tree_free(&f->basis);
    ux_sha_free(sha);
}

static int on_start(void *ud, uint64_t size, const char **why)
{
    struct ux_fetch *f = ud;
    hash_basis(f, size);
    if (f->memory) {
        *why = "cannot keep the file in memory";
        if (size > UX_FETCH_MEMORY_MAX)
            return EFBIG;
        f->mem = malloc(size ? size : 1);
        return f->mem ? 0 : ENOMEM;
    }
    int err = ux_sink_open(&f->sink, f->dirfd, f->base, size, f->durable, why);
    f->sink_open = err == 0;
    return err;
}

/* On a link a chunk the sink cannot take without waiting for its hash
 * thread is handed back (EAGAIN), so a step never waits; a fetch fed by
 * hand waits instead. */
static int on_chunk(void *ud, uint32_t index, uint64_t off, const uint8_t *data, size_t len)
{
    struct ux_fetch *f = ud;
    (void)index;
    if (f->memory) {
        memcpy(f->mem + off, data, len);
        return 0;
    }
    return f->link ? ux_sink_try_write(&f->sink, off, data, len) : ux_sink_write(&f->sink, off, data, len);
}

/* Copy LEN bytes at OFF from the basis into the output (waiting for the
 * sink if it must: the engine copies a few MiB per call). */
static int on_reuse(void *ud, uint64_t off, size_t len)
{
    struct ux_fetch *f = ud;
    if (f->basis_mem) {
        if (off > f->basis_len || len > f->basis_len - off)
            return EIO;
        if (f->memory) {
            memcpy(f->mem + off, f->basis_mem + off, len);
            return 0;
        }
        return ux_sink_write(&f->sink, off, f->basis_mem + off, len);
    }
    while (len) {
        size_t n = len < UX_SLAB ? len : UX_SLAB;
        uint8_t *dst = f->memory ? f->mem + off : f->copy;
        /* EIO if the local copy shrank: its chunks were checked against it */
        int err = ux_read_sparse(f->basis_fd, &f->basis_holes, dst, n, off);
        if (!err && !f->memory)
            err = ux_sink_write(&f->sink, off, f->copy, n);
        if (err)
            return err;
        off += n;
        len -= n;
    }
    return 0;
}

/* The sink's descriptor joins the link's epoll set while the fetch waits on it. */
static void watch_sink(struct ux_fetch *f, int on)
{
    if (!f->link || f->watching == on || ux_sink_fd(&f->sink) < 0)
        return;
    ux_poller_watch(&f->link->poller, ux_sink_fd(&f->sink), on ? EPOLLIN : 0);
    f->watching = on;
}

/* ---- on the link ---- */

static int link_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    return ux_fetch_input(e, now, p, n, a);
}

int ux_fetch_input(struct ux_fetch *f, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    if (f->held)
        ux_sink_clear(&f->sink); /* before trying again: a slab freed after this wakes us */
    int held = ux_client_input(f->eng, now, p, n, a);
    if (held != f->held) {
        f->held = held;
        watch_sink(f, held || f->committing);
    }
    return held;
}

static size_t link_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_client_output(((struct ux_fetch *)e)->eng, now, b, cap, a);
}

static void link_bounced(void *e, uint64_t now, const struct ux_addr *to)
{
    ux_client_unreachable(((struct ux_fetch *)e)->eng, now, to);
}

uint64_t ux_fetch_deadline(const struct ux_fetch *f)
{
    return f->committing ? UINT64_MAX : ux_client_deadline(f->eng);
}

static uint64_t link_deadline(void *e) { return ux_fetch_deadline(e); }

/* ---- construction ---- */

/* NAME's place: PATH beneath ROOT (its folder opened with no symlink on
 * the way), or OUT and AS. */
static enum ux_err place(struct ux_fetch *f, const struct ux_fetch_spec *s, const char *name, size_t name_len,
                         char *why, size_t cap)
{
    if (s->root >= 0) {
        if (!s->path || ux_name_check(s->path, s->path_len)) {
            snprintf(why, cap, "unsafe path");
            return UX_ERR_UNSAFE;
        }
        const char *slash = memrchr(s->path, '/', s->path_len);
        char dir[1100];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - s->path) : 1, slash ? s->path : ".");
        f->dirfd = ux_open_beneath(s->root, dir, O_RDONLY | O_DIRECTORY, UX_NO_SYMLINKS);
        if (f->dirfd < 0) {
            int err = errno;
            snprintf(why, cap, "cannot open %s in %s: %s", dir, s->root_label, strerror(err));
            return err == EXDEV || err == ELOOP ? UX_ERR_UNSAFE : UX_ERR_IO;
        }
        name = slash ? slash + 1 : s->path;
        name_len = s->path_len - (size_t)(name - s->path);
    } else {
        const char *out = s->out ? s->out : ".";
        f->dirfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (f->dirfd < 0) {
            snprintf(why, cap, "cannot open the output folder %s: %s", out, strerror(errno));
            return UX_ERR_IO;
        }
        if (s->as) {
            name = s->as;
            name_len = s->as_len;
        } else {
            const char *slash = memrchr(name, '/', name_len);
            if (slash) {
                name_len -= (size_t)(slash + 1 - name);
                name = slash + 1;
            }
        }
    }
    if (name_len < sizeof f->base && !memchr(name, 0, name_len))
        memcpy(f->base, name, name_len); /* otherwise left empty: the sink refuses it */
    if (s->root >= 0)
        snprintf(f->path, sizeof f->path, "%s/%.*s", s->root_label, (int)s->path_len, s->path);
    else
        snprintf(f->path, sizeof f->path, "%s/%s", s->out ? s->out : ".", f->base);
    return UX_OK;
}

/* What a message calls a file of mode M. */
static const char *kind_of(mode_t m)
{
    return S_ISDIR(m)    ? "a folder"
           : S_ISLNK(m)  ? "a symbolic link"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
                         : "not a regular file";
}

/* What is under the name already. A regular file is opened (never
 * through a symlink, and nothing else is opened: opening a device may act
 * on it) into *FD, to be the local copy. A folder is refused; so, unless
 * forced, is whatever else the rename would replace: what it points to,
 * or what it holds, could not be read. */
static enum ux_err check_dest(struct ux_fetch *f, const struct ux_fetch_spec *s, int *fd, char *why, size_t cap)
{
    *fd = -1;
    if (s->dest == UX_DEST_REPLACE || f->memory)
        return UX_OK;
    struct stat st;
    if (fstatat(f->dirfd, f->base, &st, AT_SYMLINK_NOFOLLOW)) {
        if (errno == ENOENT)
            return UX_OK;
        snprintf(why, cap, "cannot look at %s: %s", f->path, strerror(errno));
        return UX_ERR_IO;
    }
    int err = 0;
    if (S_ISREG(st.st_mode)) {
        *fd = openat(f->dirfd, f->base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        err = *fd < 0 ? errno : fstat(*fd, &st) ? errno : 0;
        if (*fd >= 0 && (err || !S_ISREG(st.st_mode))) { /* swapped since: judged as what it is now */
            close(*fd);
            *fd = -1;
        }
        if (*fd >= 0)
            return UX_OK;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "%s is a folder: not replaced", f->path);
        return UX_ERR_IO;
    }
    if (s->dest == UX_DEST_FORCE)
        return UX_OK;
    if (S_ISREG(st.st_mode))
        snprintf(why, cap, "%s cannot be read (%s): not replaced unless forced", f->path, strerror(err));
    else
        snprintf(why, cap, "%s is %s: not %s, and not replaced unless forced", f->path, kind_of(st.st_mode),
                 S_ISLNK(st.st_mode) ? "followed" : "written into");
    return UX_ERR_IO;
}

/* The local copy, the first there is of: one named by the caller, the
 * partial file an interrupted fetch of the name left (it holds what that
 * fetch took from the file under the name), and DEST, the file under the
 * name (taken or closed). Without resuming, none of the last two; with a
 * copy named by the caller, partial files are no use and removed. */
static void find_copy(struct ux_fetch *f, const struct ux_fetch_spec *s, int legacy, int dest)
{
    int given = s->basis || s->basis_mem;
    int resume = s->resume && !legacy && !f->memory && f->dirfd >= 0 && f->base[0];
    if (resume && given) {
        ux_partial_remove(f->dirfd, f->base);
    } else if (resume) {
        f->basis_fd = ux_partial_find(f->dirfd, f->base, f->resumed, sizeof f->resumed); /* held while open */
        if (f->basis_fd < 0) {
            f->resumed[0] = 0;
            f->basis_fd = dest;
            dest = -1;
        }
    }
    if (dest >= 0)
        close(dest);
}

/* The local copy (a given one, a partial file or the file under the
 * name); its tree at the fetch's chunk size is made once the offer comes
 * (hash_basis). With `verify` and none, an empty one: every chunk is
 * checked. */
static void open_basis(struct ux_fetch *f, const struct ux_fetch_spec *s, uint32_t cs)
{
    if (s->basis_mem) {
        struct ux_sha *sha = ux_sha_new();
        f->basis_mem = s->basis_mem;
        f->basis_len = s->basis_len;
        f->has_basis = sha && ux_tree_of(&f->basis, sha, f->basis_mem, f->basis_len, cs) == 0;
        ux_sha_free(sha);
        return;
    }
    if (s->basis && f->basis_fd < 0) /* O_NONBLOCK: a FIFO swapped in for it cannot hold the open */
        f->basis_fd = s->root >= 0 ? ux_open_beneath(s->root, s->basis, O_RDONLY | O_NONBLOCK, UX_NO_SYMLINKS)
                                   : open(s->basis, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (f->basis_fd >= 0 && fstat(f->basis_fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (f->memory || (f->copy = malloc(UX_SLAB)))) {
        f->has_basis = f->basis_pending = 1;
        f->basis_size = (uint64_t)st.st_size;
        return;
    }
    f->has_basis = s->verify;
}

static enum ux_err open_spec(struct ux_fetch *f, const struct ux_fetch_spec *s, struct ux_client_cfg *cfg,
                             struct ux_link *link, uint64_t now, char *why, size_t cap);

enum ux_err ux_fetch_open(struct ux_fetch *f, const struct ux_fetch_spec *spec, struct ux_client_cfg *cfg,
                          struct ux_link *link, uint64_t now, char *why, size_t cap)
{
    struct ux_fetch_spec s = *spec;
    if (s.root < 0 && s.root_path) {
        s.root = open(s.root_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        s.root_label = s.root_path;
        if (s.root < 0) {
            memset(f, 0, sizeof *f);
            snprintf(why, cap, "cannot open %s: %s", s.root_path, strerror(errno));
            return UX_ERR_IO;
        }
    }
    enum ux_err code = open_spec(f, &s, cfg, link, now, why, cap);
    if (s.root >= 0 && s.root != spec->root)
        close(s.root);
    return code;
}

static enum ux_err open_spec(struct ux_fetch *f, const struct ux_fetch_spec *s, struct ux_client_cfg *cfg,
                             struct ux_link *link, uint64_t now, char *why, size_t cap)
{
    memset(f, 0, sizeof *f);
    f->dirfd = f->basis_fd = -1;
    f->sink.fd = f->sink.dirfd = f->sink.h.efd = -1;
    f->link = link;
    f->memory = s->memory || cfg->kind == UX_KIND_LISTING;
    f->durable = s->durable;
    f->sink.set_mode = s->set_mode;
    f->sink.mode = s->mode;
    f->sink.set_mtime = s->set_mtime;
    f->sink.mtime_ns = s->mtime_ns;
    f->live = 1;
    enum ux_err code = UX_OK;
    if (cfg->name_len > UX_MAX_NAME || (cfg->name_len == 0 && cfg->kind == UX_KIND_FILE)) {
        snprintf(why, cap, "file name empty or too long");
        code = UX_ERR_REFUSED;
    } else if (!f->memory) {
        code = place(f, s, cfg->name, cfg->name_len, why, cap);
    }
    if (code) {
        ux_fetch_close(f);
        return code;
    }
    f->keep = !cfg->legacy;
    int dest;
    code = check_dest(f, s, &dest, why, cap);
    if (code) {
        ux_fetch_close(f);
        return code;
    }
    find_copy(f, s, cfg->legacy, dest);
    open_basis(f, s, cfg->chunk_size);
    cfg->want_tree = f->has_basis;
    cfg->basis = f->has_basis ? &f->basis : NULL;
    cfg->verify_leaves = s->verify;
    cfg->on_start = on_start;
    cfg->on_chunk = on_chunk;
    cfg->on_reuse = on_reuse;
    cfg->ud = f;
    f->eng = calloc(1, sizeof *f->eng);
    if (!f->eng || ux_client_init(f->eng, cfg, now)) {
        snprintf(why, cap, "cannot initialise the client");
        ux_fetch_close(f);
        return UX_ERR_IO;
    }
    if (link) {
        struct ux_endpoint ep = {f, link_input, link_output, link_deadline, cfg->legacy ? 0 : f->eng->xid, link_bounced};
        if (ux_link_attach(link, &ep)) {
            snprintf(why, cap, "out of memory");
            ux_fetch_close(f);
            return UX_ERR_IO;
        }
        f->attached = 1;
    }
    return UX_OK;
}

void ux_fetch_close(struct ux_fetch *f)
{
    if (!f->live)
        return;
    if (f->attached) {
        watch_sink(f, 0);
        ux_link_detach(f->link, f);
        f->attached = 0;
    }
    if (f->sink_open)
        ux_sink_abort(&f->sink); /* no-op once committed */
    f->sink_open = 0;
    if (f->dirfd >= 0)
        close(f->dirfd);
    if (f->basis_fd >= 0)
        close(f->basis_fd);
    f->dirfd = f->basis_fd = -1;
    ux_tree_free(&f->basis);
    free(f->mem);
    free(f->copy);
    f->mem = f->copy = NULL;
    if (f->eng)
        ux_client_free(f->eng);
    free(f->eng);
    f->eng = NULL;
    f->live = 0;
}

/* ---- the end: commit ---- */

/* The commit's outcome: the file in place, or the engine failed with why. */
static void commit_end(struct ux_fetch *f, int err, const char *why)
{
    f->committing = f->sink_open = 0;
    if (!err) {
        f->finished = 1;
        if (f->resumed[0])
            ux_partial_drop(f->dirfd, f->resumed, f->basis_fd);
        return;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "%s%s%s", why, err == EBADMSG ? "" : ": ", err == EBADMSG ? "" : strerror(err));
    ux_client_abort(f->eng, err == EBADMSG ? UX_ERR_CORRUPT : UX_ERR_IO, msg);
}

static int memory_commit(struct ux_fetch *f)
{
    uint8_t got[UX_HASH_LEN];
    int ok = ux_sha_init(f->eng->sha) == 0 && ux_sha_update(f->eng->sha, f->mem, f->eng->size) == 0 &&
             ux_sha_final(f->eng->sha, got) == 0 && ux_equal(got, f->eng->sha256, UX_HASH_LEN);
    commit_end(f, ok ? 0 : EBADMSG, "whole-file SHA-256 mismatch");
    return 0;
}

/* Every chunk is in: check the whole file and move it into place. This
 * runs on the sink's thread, so a step goes on while a large file is
 * synced; a fetch fed by hand waits for it. Returns 1 while it runs. */
static int commit_begin(struct ux_fetch *f)
{
    if (f->memory)
        return memory_commit(f);
    const char *why = "cannot set the file's size";
    int err = !f->sink_open ? EIO : ux_sink_truncate(&f->sink, f->eng->size);
    if (!err && !f->link)
        err = ux_sink_commit(&f->sink, f->eng->sha256, &why);
    else if (!err) {
        ux_sink_commit_start(&f->sink, f->eng->sha256);
        err = ux_sink_commit_ended(&f->sink) ? ux_sink_commit_result(&f->sink, &why) : EINPROGRESS;
    }
    f->committing = err == EINPROGRESS;
    if (f->committing)
        watch_sink(f, 1);
    else
        commit_end(f, err, why);
    return f->committing;
}

/* 1 once a running commit has ended (its outcome taken), else 0. */
static int commit_ended(struct ux_fetch *f)
{
    ux_sink_clear(&f->sink);
    if (!ux_sink_commit_ended(&f->sink))
        return 0;
    watch_sink(f, 0); /* before the result closes the descriptor */
    const char *why = "";
    int err = ux_sink_commit_result(&f->sink, &why);
    commit_end(f, err, why);
    return 1;
}

/* KEEP: leave the partial file for a fetch that resumes. */
static void abort_output(struct ux_fetch *f, int keep)
{
    if (f->sink_open) {
        watch_sink(f, 0);
        if (keep)
            ux_sink_keep(&f->sink);
        else
            ux_sink_abort(&f->sink);
    }
    f->sink_open = 0;
}

int ux_fetch_next_event(struct ux_fetch *f, struct ux_client_event *ev)
{
    if (f->committing) {
        if (!commit_ended(f))
            return 0;
        if (f->finished) {
            *ev = f->done;
            return 1;
        } /* else the abort queued an error event */
    }
    while (ux_client_next_event(f->eng, ev)) {
        if (ev->type == UXC_EV_DONE) {
            f->done = *ev;
            if (commit_begin(f))
                return 0; /* the event waits for the commit */
            if (!f->finished)
                continue; /* the abort queued an error event */
        } else if (ev->type == UXC_EV_FAIL) {
            /* What every server stopped sending, or said had changed (as
             * a restarted server says of any transfer), can be resumed: a
             * resume checks each chunk against the version then offered. */
            abort_output(f, f->keep && (f->eng->fail == UX_ERR_TIMEOUT || f->eng->fail == UX_ERR_STALE));
        }
        return 1;
    }
    return 0;
}

void ux_fetch_abort(struct ux_fetch *f, enum ux_err code, const char *msg, int keep)
{
    ux_client_abort(f->eng, code, msg);
    abort_output(f, f->keep && keep);
}
