/* Lua binding of the file server: udpxfer.core.server{}. A pollable object
 * over the server engine, its socket and the served folder (host/fileset). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bind.h"
#include "engine/server.h"
#include "host/catalog.h"
#include "host/clock.h"
#include "host/fileset.h"
#include "host/listener.h"

#define SERVER_MT "udpxfer.server"

struct server_obj {
    struct ux_server eng;
    struct ux_fileset fs;
    struct ux_listener net;
    int live, sim;
    struct sim_rng seed;
};

static struct server_obj *check_server(lua_State *L)
{
    struct server_obj *o = luaL_checkudata(L, 1, SERVER_MT);
    if (!o->live)
        luaL_error(L, "server is closed");
    return o;
}

static int s_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    ux_server_input(e, now, p, n, a);
    return 0;
}
static size_t s_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    return ux_server_output(e, now, b, cap, a, t);
}

static void server_release(struct server_obj *o)
{
    if (!o->live)
        return;
    if (!o->sim)
        ux_listener_close(&o->net);
    ux_server_free(&o->eng);
    ux_fileset_close(&o->fs);
    o->live = 0;
}

/* The option `shares`: { NAME = PATH, ... }. Returns 0, or -1 with MSG. */
static int add_shares(lua_State *L, struct server_obj *o, char *msg, size_t cap)
{
    lua_getfield(L, 1, "shares");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    luaL_checktype(L, -1, LUA_TTABLE);
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
        const char *name = luaL_checkstring(L, -2), *path = luaL_checkstring(L, -1);
        int err = ux_fileset_share(&o->fs, name, path);
        if (err) {
            snprintf(msg, cap, err == EINVAL ? "bad or repeated share name %s" : "cannot serve %s=%s: %s", name,
                     path, strerror(err));
            lua_pop(L, 3);
            return -1;
        }
    }
    lua_pop(L, 1);
    return 0;
}

static int ls_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *dir = opt_str(L, "dir", NULL, NULL);
    if (!dir)
        return luaL_argerror(L, 1, "dir is required");
    const char *bind_s = opt_str(L, "bind", "::", NULL); /* IPv6 and IPv4 */
    const char *dev = opt_str(L, "interface", NULL, NULL);
    int port = (int)opt_range(L, "port", UX_DEFAULT_PORT, 0, 65535);
    uint8_t key[UX_KEY_LEN];
    const uint8_t *key_p = opt_key(L, key);
    if (key_p && opt_bool(L, "legacy"))
        return push_fail(L, "legacy mode cannot use a key (the original protocol is unauthenticated)", UX_ERR_USAGE);
    struct server_obj *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    luaL_setmetatable(L, SERVER_MT);
    o->sim = opt_bool(L, "sim");
    struct ux_addr bind_to;
    if (!o->sim && ux_addr_parse(bind_s, port, &bind_to))
        return push_fail(L, "bind address must be a numeric IP", UX_ERR_USAGE);
    /* Every option read (a bad one raises) before anything is opened. */
    struct ux_server_cfg cfg = {0};
    cfg.max_chunk = (uint32_t)opt_range(L, "max_chunk", 16384, UX_MIN_CHUNK, UX_MAX_CHUNK);
    cfg.max_sessions = (uint32_t)opt_range(L, "max_sessions", 256, 1, 65536);
    cfg.idle_us = (uint64_t)(opt_range(L, "idle_timeout", 30, 0, UX_MAX_SECONDS) * 1e6);
    cfg.corrupt_ppm = (uint32_t)(opt_range(L, "corrupt_percent", 0, 0, 100) * 10000);
    cfg.lie_ppm = (uint32_t)(opt_range(L, "lie_percent", 0, 0, 100) * 10000);
    cfg.host_sessions = (uint32_t)opt_range(L, "host_sessions", 0, 0, 65536);
    cfg.host_requests = opt_range(L, "host_requests", 0, 0, 1e9);
    cfg.work_rate = opt_range(L, "work_rate", 0, 0, 1e13);
    cfg.host_bps = (uint64_t)(opt_range(L, "host_rate", 0, 0, UX_MAX_RATE) * 8);
    cfg.total_bps = (uint64_t)(opt_range(L, "max_rate", 0, 0, UX_MAX_RATE) * 8);
    cfg.legacy = opt_bool(L, "legacy");
    cfg.legacy_bps = (uint64_t)(opt_range(L, "legacy_mbit", 80, 0, 1e6) * 1e6);
    cfg.rng = engine_rng(L, o->sim, &o->seed);
    cfg.key = key_p;
    uint64_t async_min = (uint64_t)opt_range(L, "async_hash_min", 64 << 20, 0, 9007199254740992.0);
    char msg[600];
    int err = ux_fileset_open(&o->fs, dir);
    if (err) {
        snprintf(msg, sizeof msg, "cannot serve %s", dir);
        return push_errno(L, msg, err, UX_ERR_IO);
    }
    if (add_shares(L, o, msg, sizeof msg)) {
        ux_fileset_close(&o->fs);
        return push_fail(L, msg, UX_ERR_USAGE);
    }
    cfg.files = ux_fileset_provider(&o->fs);
    o->fs.async_min = async_min;
    o->fs.watch = !o->sim; /* a sim server is driven by hand: its trees' changes wait for listings */
    if (ux_server_init(&o->eng, &cfg)) {
        ux_fileset_close(&o->fs);
        return push_fail(L, "cannot initialise the server", UX_ERR_IO);
    }
    o->live = 1;
    if (!o->sim) {
        const char *why = "";
        err = ux_listener_open(&o->net, &bind_to, dev, UX_DATA_OVERHEAD + o->eng.cfg.max_chunk + UX_SEAL_MAX, &why);
        if (err == EADDRINUSE) {
            snprintf(msg, sizeof msg, "UDP port %d is in use on %s (another server?)", port, bind_s);
            server_release(o);
            return push_fail(L, msg, UX_ERR_INUSE);
        }
        if (err) {
            if (dev)
                snprintf(msg, sizeof msg, "%s %s (%s port %d)", why, dev, bind_s, port);
            else
                snprintf(msg, sizeof msg, "%s %s port %d", why, bind_s, port);
            server_release(o);
            return push_errno(L, msg, err, err == ENODEV ? UX_ERR_USAGE : UX_ERR_IO);
        }
        err = ux_listener_also(&o->net, ux_fileset_fd(&o->fs));
        if (err) {
            server_release(o);
            return push_errno(L, "cannot watch the hashing thread", err, UX_ERR_IO);
        }
    }
    return 1;
}

static const char *req_status(enum ux_wire_error code)
{
    switch (code) {
    case UX_E_NONE: return "ok";
    case UX_E_NOTFOUND: return "notfound";
    case UX_E_REFUSED: return "refused";
    case UX_E_PREPARING: return "preparing";
    default: return "io";
    }
}

static const char *end_reason(enum ux_server_end r)
{
    static const char *const names[] = {[UXSV_END_CLOSED] = "complete", [UXSV_END_ABORTED] = "aborted",
                                        [UXSV_END_IDLE] = "idle", [UXSV_END_STALE] = "stale",
                                        [UXSV_END_IO] = "io"};
    return names[r];
}

static int drain_server(lua_State *L, struct server_obj *o)
{
    struct ux_server_event ev;
    lua_newtable(L);
    lua_Integer n = 0;
    while (ux_server_next_event(&o->eng, &ev)) {
        lua_newtable(L);
        set_addr(L, "client", &ev.addr);
        set_str(L, "name", ev.name);
        set_int(L, "size", (lua_Integer)ev.size);
        switch (ev.type) {
        case UXSV_EV_REQUEST:
            set_str(L, "type", "request");
            set_str(L, "status", req_status(ev.code));
            break;
        case UXSV_EV_START:
            set_str(L, "type", "start");
            break;
        case UXSV_EV_END:
            set_str(L, "type", "done");
            set_str(L, "reason", end_reason(ev.reason));
            set_int(L, "bytes_sent", (lua_Integer)ev.bytes_sent);
            set_int(L, "chunks_sent", ev.chunks_sent);
            set_num(L, "elapsed", (double)ev.elapsed_us / 1e6);
            break;
        case UXSV_EV_UNAUTHENTIC:
            set_str(L, "type", "unauthentic");
            set_int(L, "sealed", ev.sealed);
            set_int(L, "keyless", ev.keyless);
            break;
        }
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int ls_step(lua_State *L)
{
    struct server_obj *o = check_server(L);
    if (o->sim)
        return luaL_error(L, "step() needs a socket; drive a sim server with input()/output()");
    ux_fileset_settle(&o->fs);
    ux_listener_pump(&o->net, &o->eng, s_input, s_output);
    if (!o->net.io.spend)
        ux_fileset_sent(&o->fs);
    return drain_server(L, o);
}

static int ls_drain(lua_State *L) { return drain_server(L, check_server(L)); }
static int ls_input(lua_State *L) { return sim_input(L, &check_server(L)->eng, s_input); }
static int ls_output(lua_State *L) { return sim_output(L, &check_server(L)->eng, s_output); }



static int ls_deadline(lua_State *L) { return push_deadline(L, ux_server_deadline(&check_server(L)->eng)); }

static int ls_timeout(lua_State *L)
{
    struct server_obj *o = check_server(L);
    return push_timeout(L, &o->net.io, o->eng.r_len ? 0 : ux_server_deadline(&o->eng));
}

/* A sim server's descriptor is readable when a file hashed off the loop
 * is done (its packets come through input()); a socket server's epoll set
 * holds that and its sockets. */
static int ls_pollfd(lua_State *L)
{
    struct server_obj *o = check_server(L);
    lua_pushinteger(L, o->sim ? ux_fileset_fd(&o->fs) : ux_listener_fd(&o->net));
    return 1;
}

static int ls_events(lua_State *L)
{
    check_server(L);
    lua_pushliteral(L, "r"); /* the epoll set is readable when a socket in it is ready */
    return 1;
}

/* stats([now]): NOW (seconds) for a sim server, whose clock is its input's. */
static int ls_stats(lua_State *L)
{
    struct server_obj *o = check_server(L);
    uint64_t now = lua_isnoneornil(L, 2) ? (o->sim ? 0 : ux_now_us()) : sim_now(L, 2);
    lua_settop(L, 1);
    lua_newtable(L);
    set_int(L, "sessions", ux_server_sessions(&o->eng));
    set_int(L, "malformed", (lua_Integer)o->eng.dropped_malformed);
    set_int(L, "limited", (lua_Integer)o->eng.guard.limited);
    set_int(L, "cookies_remembered", ux_cookie_remembered(&o->eng.guard, now));
    set_int(L, "unauthentic", (lua_Integer)o->eng.keys.failed);
    set_int(L, "files_hashed", (lua_Integer)o->fs.hashes_computed);
    set_int(L, "files_hashed_ahead", (lua_Integer)o->fs.prehashed);
    set_int(L, "files_hashing", o->fs.job.running);
    set_int(L, "chunk_hashes_cached", (lua_Integer)o->fs.hcache.hits);
    set_int(L, "chunk_hashes_computed", (lua_Integer)o->fs.hcache.misses);
    set_int(L, "chunks_lent", (lua_Integer)o->fs.chunks_lent);
    set_int(L, "trees_built", (lua_Integer)o->fs.trees_built);
    set_int(L, "trees_bytes", (lua_Integer)o->fs.tree_bytes);
    set_int(L, "listings_bytes", (lua_Integer)o->fs.listing_bytes);
    set_int(L, "work", (lua_Integer)o->eng.work_done);
    set_int(L, "work_deferred", (lua_Integer)o->eng.work_deferred);
    set_int(L, "files_open", o->fs.open);
    set_int(L, "files_known", o->fs.n);
    lua_Integer entries = 0, watches = 0, rescans = 0;
    for (int i = 0; i < o->fs.nroots; i++)
        if (o->fs.roots[i].catalog) {
            entries += (lua_Integer)ux_catalog_size(o->fs.roots[i].catalog);
            watches += ux_catalog_watching(o->fs.roots[i].catalog);
            rescans += (lua_Integer)ux_catalog_rescans(o->fs.roots[i].catalog);
        }
    set_int(L, "catalog_entries", entries);
    set_int(L, "catalog_watches", watches);
    set_int(L, "catalog_rescans", rescans);
    set_bool(L, "preparing", o->fs.job.running && !__atomic_load_n(&o->fs.job.done, __ATOMIC_ACQUIRE));
    set_int(L, "rx_packets", (lua_Integer)o->net.io.rx_packets);
    set_int(L, "tx_packets", (lua_Integer)o->net.io.tx_packets);
    set_int(L, "tx_bytes", (lua_Integer)o->net.io.tx_bytes);
    return 1;
}


static int ls_port(lua_State *L)
{
    struct server_obj *o = check_server(L);
    return o->sim ? 0 : push_port(L, &o->net.io);
}

static int ls_close(lua_State *L)
{
    server_release(luaL_checkudata(L, 1, SERVER_MT));
    return 0;
}


void ux_lua_server_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"step", ls_step}, {"drain", ls_drain}, {"input", ls_input}, {"output", ls_output},
        {"deadline", ls_deadline}, {"timeout", ls_timeout}, {"pollfd", ls_pollfd},
        {"events", ls_events}, {"stats", ls_stats}, {"port", ls_port}, {"close", ls_close},
        {NULL, NULL}};
    new_class(L, SERVER_MT, methods, ls_close);
    lua_pushcfunction(L, ls_new);
    lua_setfield(L, -2, "server");
}
