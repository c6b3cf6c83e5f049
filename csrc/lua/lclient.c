/* Lua binding of the file client: udpxfer.core.client{}. One fetch: the
 * engine, attached to a link (the socket it shares with other fetches),
 * and where its bytes go: a file (the sink, with a thread that writes and
 * hashes) or memory. Callbacks stay in Lua (init.lua): drain() and step()
 * return the events. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bind.h"
#include "engine/client.h"
#include "engine/names.h"
#include "host/beneath.h"
#include "host/clock.h"
#include "host/filehash.h"
#include "host/partial.h"
#include "host/sink.h"
#include "client_obj.h"
#include "dir_obj.h"

#define CLIENT_MT "udpxfer.client"
#define MEMORY_MAX (256u << 20) /* a listing or file kept in memory */


static struct client_obj *check_client(lua_State *L)
{
    struct client_obj *o = luaL_checkudata(L, 1, CLIENT_MT);
    if (!o->live)
        luaL_error(L, "client is closed");
    return o;
}

/* ---- the output ---- */

static int c_on_start(void *ud, uint64_t size, const char **why)
{
    struct client_obj *o = ud;
    if (o->memory) {
        *why = "cannot keep the file in memory";
        if (size > MEMORY_MAX)
            return EFBIG;
        o->mem = malloc(size ? size : 1);
        return o->mem ? 0 : ENOMEM;
    }
    int err = ux_sink_open(&o->sink, o->dirfd, o->base, size, o->durable, why);
    o->sink_open = err == 0;
    return err;
}

/* Over a socket a chunk the sink cannot take without waiting for its hash
 * thread is handed back (EAGAIN), so step() never waits; a sim client,
 * fed by a spec, waits instead. */
static int c_on_chunk(void *ud, uint32_t index, uint64_t off, const uint8_t *data, size_t len)
{
    struct client_obj *o = ud;
    (void)index;
    if (o->memory) {
        memcpy(o->mem + off, data, len);
        return 0;
    }
    return o->sim ? ux_sink_write(&o->sink, off, data, len) : ux_sink_try_write(&o->sink, off, data, len);
}

/* Copy LEN bytes at OFF from the basis into the output (waiting for the
 * sink if it must: the engine copies a few MiB per call). */
static int c_on_reuse(void *ud, uint64_t off, size_t len)
{
    struct client_obj *o = ud;
    if (o->basis_mem) {
        if (off > o->basis_len || len > o->basis_len - off)
            return EIO;
        if (o->memory) {
            memcpy(o->mem + off, o->basis_mem + off, len);
            return 0;
        }
        return ux_sink_write(&o->sink, off, o->basis_mem + off, len);
    }
    while (len) {
        size_t n = len < UX_SLAB ? len : UX_SLAB;
        uint8_t *dst = o->memory ? o->mem + off : o->copy;
        ssize_t got = pread(o->basis_fd, dst, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? errno : EIO; /* the local copy shrank: its chunks were checked against it */
        int err = o->memory ? 0 : ux_sink_write(&o->sink, off, o->copy, (size_t)got);
        if (err)
            return err;
        off += (uint64_t)got;
        len -= (size_t)got;
    }
    return 0;
}

/* The sink's descriptor joins the link's epoll set while the fetch waits on it. */
static void watch_sink(struct client_obj *o, int on)
{
    if (o->sim || !o->link || !o->link->live || o->watching == on || ux_sink_fd(&o->sink) < 0)
        return;
    ux_poller_watch(&o->link->link.poller, ux_sink_fd(&o->sink), on ? EPOLLIN : 0);
    o->watching = on;
}

static int c_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    struct client_obj *o = e;
    if (o->held)
        ux_sink_clear(&o->sink); /* before trying again: a slab freed after this wakes us */
    int held = ux_client_input(o->eng, now, p, n, a);
    if (held != o->held) {
        o->held = held;
        watch_sink(o, held || o->committing);
    }
    return held;
}

static size_t c_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_client_output(((struct client_obj *)e)->eng, now, b, cap, a);
}

/* While the commit runs, the sink's descriptor is the one to wait on. */
static uint64_t c_deadline(void *e)
{
    struct client_obj *o = e;
    return o->committing ? UINT64_MAX : ux_client_deadline(o->eng);
}

static void detach(struct client_obj *o)
{
    if (!o->attached)
        return;
    watch_sink(o, 0);
    if (o->link->live)
        ux_link_detach(&o->link->link, o);
    o->attached = 0;
}

static void client_release(struct client_obj *o)
{
    if (!o->live)
        return;
    detach(o);
    if (o->sink_open)
        ux_sink_abort(&o->sink); /* no-op once committed */
    o->sink_open = 0;
    if (o->dirfd >= 0)
        close(o->dirfd);
    if (o->basis_fd >= 0)
        close(o->basis_fd);
    o->dirfd = o->basis_fd = -1;
    ux_tree_free(&o->basis);
    free(o->mem);
    free(o->copy);
    o->mem = o->copy = NULL;
    if (o->eng)
        ux_client_free(o->eng);
    free(o->eng);
    o->eng = NULL;
    o->live = 0;
}

/* ---- construction ---- */

/* Each "ip:port" of the option FIELD (a list) handed to ADD; beyond the
 * engine's table they are ignored. */
static void add_addresses(lua_State *L, struct ux_client *c, const char *field,
                          int (*add)(struct ux_client *, const struct ux_addr *))
{
    lua_getfield(L, 1, field);
    if (lua_istable(L, -1)) {
        for (lua_Integer i = 1; lua_geti(L, -1, i) != LUA_TNIL; i++) {
            struct ux_addr a;
            if (ux_addr_parse(luaL_checkstring(L, -1), 10526, &a))
                luaL_error(L, "bad %s address: %s", field, lua_tostring(L, -1));
            add(c, &a);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* The output folder and name: `root` + `path` (PATH's folder beneath
 * ROOT, no symlink on the way), or `out` + `as` (default: NAME's last
 * component). Returns 0 or pushes nil, message, code (3 values). */
/* The option `root`: a folder object (udpxfer.core.dir) or a path. A new
 * descriptor for it, -1 without one (errno set), or -2 if there is none. */
static int root_fd(lua_State *L, const char **label)
{
    lua_getfield(L, 1, "root");
    int fd = -2;
    *label = "the folder";
    if (lua_isuserdata(L, -1))
        fd = fcntl(check_dir(L, -1)->fd, F_DUPFD_CLOEXEC, 0);
    else if (!lua_isnil(L, -1))
        fd = open(*label = luaL_checkstring(L, -1), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    lua_pop(L, 1); /* a path string stays alive in the options table */
    return fd;
}

static int open_output(lua_State *L, struct client_obj *o, const char *name, size_t name_len)
{
    size_t plen, alen;
    const char *root, *path = opt_str(L, "path", NULL, &plen);
    const char *out = opt_str(L, "out", ".", NULL), *as = opt_str(L, "as", NULL, &alen);
    char msg[1300];
    int rfd = root_fd(L, &root);
    if (rfd != -2) {
        if (!path)
            return luaL_argerror(L, 1, "root needs path");
        if (ux_name_check(path, plen)) {
            if (rfd >= 0)
                close(rfd);
            return push_fail(L, "unsafe path", UX_ERR_UNSAFE);
        }
        if (rfd < 0) {
            snprintf(msg, sizeof msg, "cannot open %s", root);
            return push_errno(L, msg, errno, UX_ERR_IO);
        }
        const char *slash = memrchr(path, '/', plen);
        char dir[1100];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        o->dirfd = ux_open_beneath(rfd, dir, O_RDONLY | O_DIRECTORY, UX_NO_SYMLINKS);
        int err = errno;
        close(rfd);
        if (o->dirfd < 0) {
            snprintf(msg, sizeof msg, "cannot open %s in %s", dir, root);
            return push_errno(L, msg, err, err == EXDEV || err == ELOOP ? UX_ERR_UNSAFE : UX_ERR_IO);
        }
        name = slash ? slash + 1 : path;
        name_len = plen - (size_t)(name - path);
    } else {
        o->dirfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (o->dirfd < 0) {
            snprintf(msg, sizeof msg, "cannot open the output folder %s", out);
            return push_errno(L, msg, errno, UX_ERR_IO);
        }
        if (as) {
            name = as;
            name_len = alen;
        } else {
            const char *slash = memrchr(name, '/', name_len);
            if (slash) {
                name_len -= (size_t)(slash + 1 - name);
                name = slash + 1;
            }
        }
    }
    if (name_len < sizeof o->base && !memchr(name, 0, name_len))
        memcpy(o->base, name, name_len); /* otherwise left empty: the sink refuses it */
    snprintf(o->path, sizeof o->path, "%s/%.*s", rfd != -2 ? root : out, (int)(rfd != -2 ? plen : strlen(o->base)),
             rfd != -2 ? path : o->base);
    return 0;
}

/* The partial file an interrupted fetch of this name left, as the local
 * copy (option `resume`); with a copy named by the caller, or without
 * resuming, partial files are no use and removed. */
static void find_partial(lua_State *L, struct client_obj *o, int legacy)
{
    if (o->memory || o->dirfd < 0 || !o->base[0])
        return;
    lua_getfield(L, 1, "basis");
    lua_getfield(L, 1, "basis_data");
    int given = !lua_isnil(L, -1) || !lua_isnil(L, -2);
    lua_pop(L, 2);
    int resume = opt_bool(L, "resume") && !legacy;
    if (!resume || given) {
        if (resume)
            ux_partial_remove(o->dirfd, o->base);
        return;
    }
    if (ux_partial_find(o->dirfd, o->base, o->resumed, sizeof o->resumed) == 0)
        o->basis_fd = openat(o->dirfd, o->resumed, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (o->basis_fd < 0)
        o->resumed[0] = 0;
}

/* The local copy (option `basis`, or a partial file) and its tree at the
 * fetch's chunk size. A basis that cannot be read is no basis: everything
 * is fetched. With `verify`, an empty one. */
static void open_basis(lua_State *L, struct client_obj *o, uint32_t cs)
{
    size_t blen;
    const char *basis = opt_str(L, "basis", NULL, NULL), *label, *data = opt_str(L, "basis_data", NULL, &blen);
    if (data) {
        struct ux_sha *sha = ux_sha_new();
        o->basis_mem = (const uint8_t *)data;
        o->basis_len = blen;
        o->has_basis = sha && ux_tree_of(&o->basis, sha, o->basis_mem, blen, cs) == 0;
        ux_sha_free(sha);
        return;
    }
    if (basis && o->basis_fd < 0) {
        int rfd = root_fd(L, &label);
        o->basis_fd = rfd == -2 ? open(basis, O_RDONLY | O_CLOEXEC)
                                : rfd < 0 ? -1 : ux_open_beneath(rfd, basis, O_RDONLY, UX_NO_SYMLINKS);
        if (rfd >= 0)
            close(rfd);
    }
    if (o->basis_fd < 0) {
        o->has_basis = opt_bool(L, "verify"); /* an empty tree: every chunk is checked */
        return;
    }
    struct stat st;
    struct ux_sha *sha = ux_sha_new();
    if (sha && fstat(o->basis_fd, &st) == 0 && S_ISREG(st.st_mode) &&
        ux_tree_fd(&o->basis, sha, o->basis_fd, (uint64_t)st.st_size, cs, NULL, NULL, NULL) == 0 &&
        (o->memory || (o->copy = malloc(UX_SLAB))))
        o->has_basis = 1;
    ux_sha_free(sha);
}

static int l_client(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t name_len, hex_len;
    const char *name = opt_str(L, "name", NULL, &name_len), *hex = opt_str(L, "sha256", NULL, &hex_len);
    const char *kind = opt_str(L, "kind", "file", NULL);
    if (!name)
        return luaL_argerror(L, 1, "name is required");
    if (strcmp(kind, "file") && strcmp(kind, "listing"))
        return luaL_argerror(L, 1, "kind must be \"file\" or \"listing\"");
    uint8_t key[UX_KEY_LEN];
    const uint8_t *key_p = opt_key(L, key);
    if (key_p && opt_bool(L, "legacy"))
        return push_fail(L, "legacy mode cannot use a key (the original protocol is unauthenticated)", UX_ERR_USAGE);
    struct client_obj *o = lua_newuserdatauv(L, sizeof *o, 2);
    memset(o, 0, sizeof *o);
    o->dirfd = o->basis_fd = -1;
    o->sink.fd = o->sink.dirfd = o->sink.h.efd = -1;
    luaL_setmetatable(L, CLIENT_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the name string alive */
    o->sim = opt_bool(L, "sim");
    if (!o->sim) {
        lua_getfield(L, 1, "link");
        o->link = check_link(L, -1);
        lua_setiuservalue(L, -2, 2); /* the link lives as long as its fetches */
    }
    o->memory = opt_bool(L, "memory") || !strcmp(kind, "listing");
    lua_getfield(L, 1, "mode");
    if ((o->sink.set_mode = !lua_isnil(L, -1)))
        o->sink.mode = (uint32_t)luaL_checkinteger(L, -1);
    lua_getfield(L, 1, "mtime");
    if ((o->sink.set_mtime = !lua_isnil(L, -1)))
        o->sink.mtime_ns = (int64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 2);
    lua_getfield(L, 1, "durable");
    o->durable = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);

    struct ux_client_cfg cfg = {0};
    cfg.name = name;
    cfg.name_len = name_len;
    cfg.kind = !strcmp(kind, "listing") ? UX_KIND_LISTING : UX_KIND_FILE;
    cfg.chunk_size = (uint32_t)opt_range(L, "chunk_size", UX_DEFAULT_CHUNK, UX_MIN_CHUNK, UX_MAX_CHUNK);
    cfg.discover_us = (uint64_t)(opt_range(L, "discover_timeout", 10, 0, UX_MAX_SECONDS) * 1e6);
    cfg.idle_us = (uint64_t)(opt_range(L, "idle_timeout", 5, 0, UX_MAX_SECONDS) * 1e6);
    cfg.max_window = (uint32_t)opt_range(L, "window", 4096, 0, 1 << 20);
    cfg.max_rate = (uint64_t)opt_range(L, "limit_rate", 0, 0, UX_MAX_RATE);
    cfg.rng = engine_rng(L, o->sim, &o->seed);
    uint64_t now = start_now(L, o->sim); /* options that may raise: read before anything is opened */
    if (hex) {
        if (parse_hex(hex, hex_len, cfg.want_sha256, UX_HASH_LEN))
            return luaL_argerror(L, 1, "sha256 must be 64 hex digits");
        cfg.want_sha256_set = 1;
    }
    cfg.legacy = opt_bool(L, "legacy");
    cfg.unicast = opt_bool(L, "unicast");
    cfg.on_start = c_on_start;
    cfg.on_chunk = c_on_chunk;
    cfg.on_reuse = c_on_reuse;
    cfg.ud = o;
    if (name_len > UX_MAX_NAME || (name_len == 0 && cfg.kind == UX_KIND_FILE))
        return push_fail(L, "file name empty or too long", UX_ERR_REFUSED);
    if (!o->memory) {
        int r = open_output(L, o, name, name_len);
        if (r)
            return r;
    }
    o->keep = !cfg.legacy; /* a partial file a later fetch can resume from */
    find_partial(L, o, cfg.legacy);
    open_basis(L, o, cfg.chunk_size);
    cfg.want_tree = o->has_basis;
    cfg.basis = o->has_basis ? &o->basis : NULL;
    cfg.verify_leaves = opt_bool(L, "verify");
    cfg.key = key_p;
    o->eng = calloc(1, sizeof *o->eng);
    if (!o->eng || ux_client_init(o->eng, &cfg, now)) {
        o->live = 1;
        client_release(o);
        return push_fail(L, "cannot initialise the client", UX_ERR_IO);
    }
    o->live = 1;
    add_addresses(L, o->eng, "targets", ux_client_add_target);
    add_addresses(L, o->eng, "exclude", ux_client_exclude);
    if (!o->sim) {
        struct ux_endpoint ep = {o, c_input, c_output, c_deadline, cfg.legacy ? 0 : o->eng->xid};
        if (ux_link_attach(&o->link->link, &ep)) {
            client_release(o);
            return push_fail(L, "out of memory", UX_ERR_IO);
        }
        o->attached = 1;
    }
    return 1;
}

/* ---- the end: commit ---- */

/* The commit's outcome: the file in place, or the engine failed with why. */
static void commit_end(struct client_obj *o, int err, const char *why)
{
    o->committing = o->sink_open = 0;
    if (!err) {
        o->finished = 1;
        if (o->resumed[0])
            unlinkat(o->dirfd, o->resumed, 0);
        return;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "%s%s%s", why, err == EBADMSG ? "" : ": ", err == EBADMSG ? "" : strerror(err));
    ux_client_abort(o->eng, err == EBADMSG ? UX_ERR_CORRUPT : UX_ERR_IO, msg);
}

static int memory_commit(struct client_obj *o)
{
    uint8_t got[UX_HASH_LEN];
    int ok = ux_sha_init(o->eng->sha) == 0 && ux_sha_update(o->eng->sha, o->mem, o->eng->size) == 0 &&
             ux_sha_final(o->eng->sha, got) == 0 && ux_equal(got, o->eng->sha256, UX_HASH_LEN);
    commit_end(o, ok ? 0 : EBADMSG, "whole-file SHA-256 mismatch");
    return 0;
}

/* Every chunk is in: check the whole file and move it into place. This
 * runs on the sink's thread, so a step goes on while a large file is
 * synced; a sim client waits for it. Returns 1 while it runs. */
static int commit_begin(struct client_obj *o)
{
    if (o->memory)
        return memory_commit(o);
    const char *why = "cannot set the file's size";
    int err = !o->sink_open ? EIO : ux_sink_truncate(&o->sink, o->eng->size);
    if (!err && o->sim)
        err = ux_sink_commit(&o->sink, o->eng->sha256, &why);
    else if (!err) {
        ux_sink_commit_start(&o->sink, o->eng->sha256);
        err = ux_sink_commit_ended(&o->sink) ? ux_sink_commit_result(&o->sink, &why) : EINPROGRESS;
    }
    o->committing = err == EINPROGRESS;
    if (o->committing)
        watch_sink(o, 1);
    else
        commit_end(o, err, why);
    return o->committing;
}

/* 1 once a running commit has ended (its outcome taken), else 0. */
static int commit_ended(struct client_obj *o)
{
    ux_sink_clear(&o->sink);
    if (!ux_sink_commit_ended(&o->sink))
        return 0;
    watch_sink(o, 0); /* before the result closes the descriptor */
    const char *why = "";
    int err = ux_sink_commit_result(&o->sink, &why);
    commit_end(o, err, why);
    return 1;
}

/* ---- events ---- */

/* KEEP: leave the partial file for a fetch that resumes. */
static void abort_output(struct client_obj *o, int keep)
{
    if (o->sink_open) {
        watch_sink(o, 0);
        if (keep)
            ux_sink_keep(&o->sink);
        else
            ux_sink_abort(&o->sink);
    }
    o->sink_open = 0;
}

static int drain_client(lua_State *L, struct client_obj *o)
{
    struct ux_client_event ev;
    lua_newtable(L);
    lua_Integer n = 0;
    if (o->committing) {
        if (!commit_ended(o))
            return 1;
        if (o->finished) {
            push_client_event(L, o, &o->done);
            lua_rawseti(L, -2, ++n);
        } /* else the abort queued an error event */
    }
    while (ux_client_next_event(o->eng, &ev)) {
        if (ev.type == UXC_EV_DONE) {
            o->done = ev;
            if (commit_begin(o))
                return 1; /* the event waits for the commit */
            if (!o->finished)
                continue; /* the abort queued an error event */
        } else if (ev.type == UXC_EV_FAIL) {
            /* What every server stopped sending, or said had changed (as
             * a restarted server says of any transfer), can be resumed: a
             * resume checks each chunk against the version then offered. */
            abort_output(o, o->keep && (o->eng->fail == UX_ERR_TIMEOUT || o->eng->fail == UX_ERR_STALE));
        }
        push_client_event(L, o, &ev);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* ---- methods ---- */

static int lc_step(lua_State *L)
{
    struct client_obj *o = check_client(L);
    if (o->sim)
        return luaL_error(L, "step() needs a socket; drive a sim client with input()/output()");
    if (o->link->live)
        ux_link_pump(&o->link->link);
    return drain_client(L, o);
}

static int lc_drain(lua_State *L) { return drain_client(L, check_client(L)); }

static int sim_in(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    return ux_client_input(e, now, p, n, a);
}

static int lc_input(lua_State *L) { return sim_input(L, check_client(L)->eng, sim_in); }

static size_t sim_out(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_client_output(e, now, b, cap, a);
}

static int lc_output(lua_State *L) { return sim_output(L, check_client(L)->eng, sim_out); }
static int lc_deadline(lua_State *L) { return push_deadline(L, ux_client_deadline(check_client(L)->eng)); }

static int lc_timeout(lua_State *L)
{
    struct client_obj *o = check_client(L);
    if (o->sim)
        return luaL_error(L, "timeout() needs a socket; a sim client has deadline()");
    return push_timeout(L, &o->link->link.io, c_deadline(o));
}

static int lc_pollfd(lua_State *L)
{
    struct client_obj *o = check_client(L);
    if (o->sim)
        return luaL_error(L, "a sim client has no descriptor");
    lua_pushinteger(L, ux_link_fd(&o->link->link));
    return 1;
}

static int lc_events(lua_State *L)
{
    check_client(L);
    lua_pushliteral(L, "r");
    return 1;
}

/* set_limit(bytes_per_second or 0): the rate all its servers together may send at. */
static int lc_set_limit(lua_State *L)
{
    struct client_obj *o = check_client(L);
    lua_Integer r = luaL_checkinteger(L, 2);
    luaL_argcheck(L, r >= 0, 2, "a rate of 0 or more bytes per second expected");
    o->eng->cfg.max_rate = (uint64_t)r;
    return 0;
}

/* abort([message]): the fetch fails with "closed"; its servers are told
 * (CLOSE goes out now) and its partial file is removed. */
static int lc_abort(lua_State *L)
{
    struct client_obj *o = check_client(L);
    ux_client_abort(o->eng, UX_ERR_CLOSED, luaL_optstring(L, 2, "interrupted"));
    abort_output(o, o->keep && lua_toboolean(L, 3));
    if (o->link && o->link->live)
        ux_link_pump(&o->link->link);
    return 0;
}

static int lc_stats(lua_State *L) { return client_stats(L, check_client(L)); }

static int lc_close(lua_State *L)
{
    client_release(luaL_checkudata(L, 1, CLIENT_MT));
    return 0;
}

void ux_lua_client_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"step", lc_step}, {"drain", lc_drain}, {"input", lc_input}, {"output", lc_output},
        {"deadline", lc_deadline}, {"timeout", lc_timeout}, {"pollfd", lc_pollfd},
        {"events", lc_events}, {"stats", lc_stats}, {"abort", lc_abort}, {"set_limit", lc_set_limit},
        {"close", lc_close}, {NULL, NULL}};
    new_class(L, CLIENT_MT, methods, lc_close);
    lua_pushcfunction(L, l_client);
    lua_setfield(L, -2, "client");
}
