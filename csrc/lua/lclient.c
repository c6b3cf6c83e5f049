/* Lua binding of the file client: udpxfer.core.client{}. A pollable object
 * over one fetch: the engine, its socket and its output file (the sink,
 * with a thread that writes and hashes). Callbacks stay in Lua
 * (init.lua): step() returns the events. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bind.h"
#include "engine/client.h"
#include "host/clock.h"
#include "host/sink.h"

#define CLIENT_MT "udpxfer.client"

struct client_obj {
    struct ux_client eng;
    struct ux_io io;
    struct ux_sink sink;
    int live, sim, sink_open, finished;
    struct sim_rng seed;
    int committing;                /* the sink's commit runs on its thread */
    struct ux_client_event done;   /* held back until the commit ends */
    char dir[512];
    char base[256];
    char path[800];
};

static struct client_obj *check_client(lua_State *L)
{
    struct client_obj *o = luaL_checkudata(L, 1, CLIENT_MT);
    if (!o->live)
        luaL_error(L, "client is closed");
    return o;
}

static int c_on_start(void *ud, uint64_t size, const char **why)
{
    struct client_obj *o = ud;
    int err = ux_sink_open(&o->sink, o->dir, o->base, size, why);
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
    return o->sim ? ux_sink_write(&o->sink, off, data, len) : ux_sink_try_write(&o->sink, off, data, len);
}

static int c_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a) { return ux_client_input(e, now, p, n, a); }
static size_t c_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_client_output(e, now, b, cap, a);
}

static void client_release(struct client_obj *o)
{
    if (!o->live)
        return;
    if (o->sink_open)
        ux_sink_abort(&o->sink); /* no-op once committed */
    o->sink_open = 0;
    if (!o->sim)
        ux_io_close(&o->io);
    ux_client_free(&o->eng);
    o->live = 0;
}

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

static int l_client(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t name_len, dir_len;
    const char *name = opt_str(L, "name", NULL, &name_len);
    if (!name)
        return luaL_argerror(L, 1, "name is required");
    const char *dir = opt_str(L, "out", ".", &dir_len);
    size_t hex_len;
    const char *hex = opt_str(L, "sha256", NULL, &hex_len);
    struct client_obj *o = lua_newuserdatauv(L, sizeof *o, 1);
    memset(o, 0, sizeof *o);
    o->sink.fd = o->sink.dirfd = -1;
    luaL_setmetatable(L, CLIENT_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the name string alive */
    if (dir_len >= sizeof o->dir)
        return luaL_argerror(L, 1, "out directory path too long");
    memcpy(o->dir, dir, dir_len + 1);
    const char *slash = memrchr(name, '/', name_len);
    const char *base = slash ? slash + 1 : name;
    size_t blen = name_len - (size_t)(base - name);
    if (blen < sizeof o->base && !memchr(base, 0, blen))
        memcpy(o->base, base, blen); /* otherwise left empty: the sink refuses it */

    struct ux_client_cfg cfg = {0};
    cfg.name = name;
    cfg.name_len = name_len;
    cfg.chunk_size = (uint32_t)opt_num(L, "chunk_size", UX_DEFAULT_CHUNK);
    cfg.discover_us = (uint64_t)(opt_num(L, "discover_timeout", 10) * 1e6);
    cfg.idle_us = (uint64_t)(opt_num(L, "idle_timeout", 5) * 1e6);
    cfg.max_window = (uint32_t)opt_num(L, "window", 4096);
    if (hex) {
        if (parse_hex(hex, hex_len, cfg.want_sha256, UX_HASH_LEN))
            return luaL_argerror(L, 1, "sha256 must be 64 hex digits");
        cfg.want_sha256_set = 1;
    }
    cfg.legacy = opt_bool(L, "legacy");
    cfg.unicast = opt_bool(L, "unicast");
    cfg.on_start = c_on_start;
    cfg.on_chunk = c_on_chunk;
    cfg.ud = o;
    o->sim = opt_bool(L, "sim");
    if (cfg.chunk_size < UX_MIN_CHUNK || cfg.chunk_size > UX_MAX_CHUNK)
        return luaL_argerror(L, 1, "chunk_size out of range");
    if (name_len == 0 || name_len > UX_MAX_NAME)
        return push_fail(L, "file name empty or too long", UX_ERR_REFUSED);
    cfg.rng = engine_rng(L, o->sim, &o->seed);
    uint64_t now = start_now(L, o->sim);
    if (ux_client_init(&o->eng, &cfg, now)) {
        ux_client_free(&o->eng);
        return push_fail(L, "cannot initialise the client", UX_ERR_IO);
    }
    o->live = 1;
    add_addresses(L, &o->eng, "targets", ux_client_add_target);
    add_addresses(L, &o->eng, "exclude", ux_client_exclude);
    if (!o->sim) {
        const char *why = "";
        size_t cap = UX_DATA_OVERHEAD + cfg.chunk_size + UX_TAG_LEN;
        int err = ux_io_open(&o->io, NULL, cap < 2048 ? 2048 : cap, UX_IO_GRO, &why);
        if (err) {
            client_release(o);
            return push_errno(L, why, err, UX_ERR_IO);
        }
    }
    return 1;
}

/* The commit's outcome: the file in place, or the engine failed with why. */
static void commit_end(struct client_obj *o, int err, const char *why)
{
    o->committing = o->sink_open = 0;
    if (!err) {
        snprintf(o->path, sizeof o->path, "%s/%s", o->dir, o->base);
        o->finished = 1;
        return;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "%s%s%s", why, err == EBADMSG ? "" : ": ", err == EBADMSG ? "" : strerror(err));
    ux_client_abort(&o->eng, err == EBADMSG ? UX_ERR_CORRUPT : UX_ERR_IO, msg);
}

/* Every chunk is in: check the whole file and move it into place. This
 * runs on the sink's thread, so step() goes on while a large file is
 * synced; a sim client waits for it. Returns 1 while it runs. */
static int commit_begin(struct client_obj *o)
{
    const char *why = "cannot set the file's size";
    int err = !o->sink_open ? EIO : ux_sink_truncate(&o->sink, o->eng.size);
    if (!err && o->sim)
        err = ux_sink_commit(&o->sink, o->eng.sha256, &why);
    else if (!err) {
        ux_sink_commit_start(&o->sink, o->eng.sha256);
        err = ux_sink_commit_result(&o->sink, &why);
    }
    o->committing = err == EINPROGRESS;
    if (!o->committing)
        commit_end(o, err, why);
    return o->committing;
}

/* 1 once a running commit has ended (its outcome taken), else 0. */
static int commit_ended(struct client_obj *o)
{
    const char *why = "";
    int err = ux_sink_commit_result(&o->sink, &why);
    if (err == EINPROGRESS)
        return 0;
    commit_end(o, err, why);
    return 1;
}

/* How many servers offered, how many offered the chosen version, how many
 * versions there were: so a user sees a choice was made, and which. */
static void set_versions(lua_State *L, const struct ux_client *c, const struct ux_peer *chosen)
{
    int offers = 0, agree = 0, versions = 0;
    for (int i = 0; i < c->npeers; i++) {
        const struct ux_peer *p = &c->peers[i];
        if (!p->has_offer)
            continue;
        offers++;
        agree += p->size == chosen->size && !memcmp(p->sha256, chosen->sha256, UX_HASH_LEN);
        int first = 1; /* first peer offering this version? */
        for (int j = 0; j < i; j++)
            if (c->peers[j].has_offer && c->peers[j].size == p->size &&
                !memcmp(c->peers[j].sha256, p->sha256, UX_HASH_LEN))
                first = 0;
        versions += first;
    }
    set_int(L, "offers", offers);
    set_int(L, "servers", agree);
    set_int(L, "versions", versions);
}

static const char *drop_reason(enum ux_peer_drop d)
{
    return d == UXC_DROP_CORRUPT ? "corrupt" : d == UXC_DROP_STALE ? "stale" : "silent";
}

static void push_client_event(lua_State *L, struct client_obj *o, const struct ux_client_event *ev)
{
    struct ux_client *c = &o->eng;
    const struct ux_peer *p = ev->peer >= 0 ? &c->peers[ev->peer] : NULL;
    lua_newtable(L);
    switch (ev->type) {
    case UXC_EV_OFFER:
    case UXC_EV_START:
        set_str(L, "type", ev->type == UXC_EV_OFFER ? "offer" : "start");
        set_addr(L, "server", &p->addr);
        set_int(L, "size", (lua_Integer)p->size);
        set_int(L, "chunks", (lua_Integer)ux_chunk_count(p->size, p->chunk_size));
        set_int(L, "chunk_size", p->chunk_size);
        set_hex(L, "sha256", p->sha256);
        if (ev->type == UXC_EV_START)
            set_versions(L, c, p);
        break;
    case UXC_EV_PREPARING:
        set_str(L, "type", "preparing");
        set_addr(L, "server", &p->addr);
        break;
    case UXC_EV_DROP:
        set_str(L, "type", "drop");
        set_addr(L, "server", &p->addr);
        set_str(L, "reason", drop_reason(p->dropped));
        break;
    case UXC_EV_DONE:
        set_str(L, "type", "done");
        set_str(L, "path", o->path);
        set_int(L, "size", (lua_Integer)c->size);
        set_hex(L, "sha256", c->sha256);
        set_num(L, "elapsed", (double)(c->done_at - c->started_at) / 1e6);
        break;
    case UXC_EV_FAIL:
        set_str(L, "type", "error");
        set_str(L, "message", c->fail_msg);
        set_str(L, "code", ux_err_name(c->fail));
    }
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
    while (ux_client_next_event(&o->eng, &ev)) {
        if (ev.type == UXC_EV_DONE) {
            o->done = ev;
            if (commit_begin(o))
                return 1; /* the event waits for the commit */
            if (!o->finished)
                continue; /* the abort queued an error event */
        } else if (ev.type == UXC_EV_FAIL && o->sink_open) {
            ux_sink_abort(&o->sink);
            o->sink_open = 0;
        }
        push_client_event(L, o, &ev);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* Waiting on the sink's descriptor, not the socket: while the commit runs,
 * or while chunks wait for a slab. */
static int on_sink(const struct client_obj *o) { return o->committing || ux_io_held(&o->io); }

static int lc_step(lua_State *L)
{
    struct client_obj *o = check_client(L);
    if (o->sim)
        return luaL_error(L, "step() needs a socket; drive a sim client with input()/output()");
    if (on_sink(o))
        ux_sink_clear(&o->sink); /* what woke us: then the held datagrams go first, or the commit's end is read */
    ux_pump(&o->io, &o->eng, c_input, c_output);
    return drain_client(L, o);
}

static int lc_drain(lua_State *L) { return drain_client(L, check_client(L)); }
static int lc_input(lua_State *L) { return sim_input(L, &check_client(L)->eng, c_input); }
static int lc_output(lua_State *L) { return sim_output(L, &check_client(L)->eng, c_output); }




static int lc_deadline(lua_State *L) { return push_deadline(L, ux_client_deadline(&check_client(L)->eng)); }

/* While the commit runs, the sink's descriptor is the one to wait on,
 * without a deadline; while chunks wait for a slab, too, beside the
 * engine's deadline. */
static int lc_timeout(lua_State *L)
{
    struct client_obj *o = check_client(L);
    if (o->committing) {
        lua_pushnil(L);
        return 1;
    }
    return push_timeout(L, &o->io, ux_client_deadline(&o->eng));
}

static int lc_pollfd(lua_State *L)
{
    struct client_obj *o = check_client(L);
    lua_pushinteger(L, on_sink(o) ? ux_sink_fd(&o->sink) : o->io.fd);
    return 1;
}

static int lc_events(lua_State *L)
{
    struct client_obj *o = check_client(L);
    lua_pushstring(L, o->io.spend && !on_sink(o) ? "rw" : "r");
    return 1;
}

static const char *state_name(enum ux_client_state s)
{
    static const char *const names[] = {[UXC_DISCOVER] = "discover", [UXC_TRANSFER] = "transfer",
                                        [UXC_DONE] = "done", [UXC_FAILED] = "failed"};
    return names[s];
}

static int lc_stats(lua_State *L)
{
    struct client_obj *o = check_client(L);
    struct ux_client *c = &o->eng;
    uint64_t now = c->done_at ? c->done_at : o->sim ? c->started_at : ux_now_us();
    lua_newtable(L);
    set_str(L, "state", o->committing ? "committing" : state_name(c->state));
    set_int(L, "size", (lua_Integer)c->size);
    set_int(L, "chunks", c->count);
    set_int(L, "have", c->map.have);
    set_int(L, "bytes", (lua_Integer)c->bytes_done);
    set_int(L, "dups", c->dups);
    set_int(L, "bad", c->bad);
    set_num(L, "elapsed", (double)(now - c->started_at) / 1e6);
    set_int(L, "rx_packets", (lua_Integer)o->io.rx_packets);
    set_int(L, "tx_packets", (lua_Integer)o->io.tx_packets);
    set_int(L, "readback", (lua_Integer)o->sink.readback);
    set_int(L, "evicted", (lua_Integer)o->sink.evicted);
    set_int(L, "hash_waits", (lua_Integer)o->sink.waits);
    lua_newtable(L);
    for (int i = 0; i < c->npeers; i++) {
        const struct ux_peer *p = &c->peers[i];
        lua_newtable(L);
        set_addr(L, "server", &p->addr);
        set_bool(L, "active", p->active);
        if (p->dropped)
            set_str(L, "dropped", drop_reason(p->dropped));
        set_int(L, "bytes", (lua_Integer)p->st.bytes);
        set_int(L, "chunks", p->st.chunks);
        set_int(L, "dups", p->st.dups);
        set_int(L, "bad", p->st.bad);
        set_int(L, "lost", p->st.lost);
        set_int(L, "timeouts", p->st.timeouts);
        set_num(L, "window", p->cwnd);
        set_int(L, "stolen", p->st.stolen);
        uint64_t span = p->last_rx > p->first_data_at ? p->last_rx - p->first_data_at : 0;
        set_num(L, "rate", span ? (double)p->st.bytes * 1e6 / (double)span : 0);
        set_num(L, "rtt", p->srtt_us / 1e6);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "servers");
    return 1;
}

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
        {"events", lc_events}, {"stats", lc_stats}, {"close", lc_close}, {NULL, NULL}};
    new_class(L, CLIENT_MT, methods, lc_close);
    lua_pushcfunction(L, l_client);
    lua_setfield(L, -2, "client");
}
