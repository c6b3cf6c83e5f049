/* Lua binding of the file client: udpxfer.core.client{}. The options
 * become a host fetch (host/fetch.h: engine, output, local copy,
 * commit) on a link; drain() and step() return its events as tables
 * (lclient_report.c). Callbacks stay in Lua (get.lua, sync.lua). */
#include <string.h>

#include "bind.h"
#include "client_obj.h"
#include "dir_obj.h"
#include "host/clock.h"

#define CLIENT_MT "udpxfer.client"

static struct client_obj *check_client(lua_State *L)
{
    struct client_obj *o = luaL_checkudata(L, 1, CLIENT_MT);
    if (!o->f.live)
        luaL_error(L, "client is closed");
    return o;
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
            if (ux_addr_parse(luaL_checkstring(L, -1), UX_DEFAULT_PORT, &a))
                luaL_error(L, "bad %s address: %s", field, lua_tostring(L, -1));
            add(c, &a);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* The option `root`: a folder object (udpxfer.core.dir, borrowed) or a
 * path (the fetch opens it). */
static void read_root(lua_State *L, struct ux_fetch_spec *s)
{
    lua_getfield(L, 1, "root");
    s->root = -1;
    s->root_label = "the folder";
    if (lua_isuserdata(L, -1))
        s->root = check_dir(L, -1)->fd;
    else if (!lua_isnil(L, -1))
        s->root_path = luaL_checkstring(L, -1);
    lua_pop(L, 1); /* a path string stays alive in the options table */
    if ((s->root >= 0 || s->root_path) && !s->path)
        luaL_argerror(L, 1, "root needs path");
}

/* The option `dest`: what is under the name already ("replace", the
 * default, "check" or "force": host/fetch.h). */
static enum ux_dest read_dest(lua_State *L)
{
    static const char *const names[] = {"replace", "check", "force", NULL};
    static const enum ux_dest dests[] = {UX_DEST_REPLACE, UX_DEST_CHECK, UX_DEST_FORCE};
    lua_getfield(L, 1, "dest");
    int i = luaL_checkoption(L, -1, "replace", names);
    lua_pop(L, 1);
    return dests[i];
}

/* The options of where the bytes go and what may be reused, as a fetch spec. */
static void read_spec(lua_State *L, struct ux_fetch_spec *s)
{
    memset(s, 0, sizeof *s);
    s->memory = opt_bool(L, "memory");
    s->path = opt_str(L, "path", NULL, &s->path_len);
    s->out = opt_str(L, "out", ".", NULL);
    s->as = opt_str(L, "as", NULL, &s->as_len);
    lua_getfield(L, 1, "mode");
    if ((s->set_mode = !lua_isnil(L, -1)))
        s->mode = (uint32_t)luaL_checkinteger(L, -1);
    lua_getfield(L, 1, "mtime");
    if ((s->set_mtime = !lua_isnil(L, -1)))
        s->mtime_ns = (int64_t)luaL_checkinteger(L, -1);
    lua_getfield(L, 1, "durable");
    s->durable = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 3);
    s->resume = opt_bool(L, "resume");
    s->dest = read_dest(L);
    s->verify = opt_bool(L, "verify");
    s->basis = opt_str(L, "basis", NULL, NULL);
    s->basis_mem = (const uint8_t *)opt_str(L, "basis_data", NULL, &s->basis_len);
}

static int lc_new(lua_State *L)
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
    struct ux_client_cfg cfg = {0};
    cfg.name = name;
    cfg.name_len = name_len;
    cfg.kind = !strcmp(kind, "listing") ? UX_KIND_LISTING : UX_KIND_FILE;
    cfg.chunk_size = (uint32_t)opt_range(L, "chunk_size", UX_DEFAULT_CHUNK, UX_MIN_CHUNK, UX_MAX_CHUNK);
    cfg.discover_us = (uint64_t)(opt_range(L, "discover_timeout", 10, 0, UX_MAX_SECONDS) * 1e6);
    cfg.idle_us = (uint64_t)(opt_range(L, "idle_timeout", 5, 0, UX_MAX_SECONDS) * 1e6);
    cfg.max_window = (uint32_t)opt_range(L, "window", 4096, 0, 1 << 20);
    cfg.max_rate = (uint64_t)opt_range(L, "limit_rate", 0, 0, UX_MAX_RATE);
    if (hex) {
        if (parse_hex(hex, hex_len, cfg.want_sha256, UX_HASH_LEN))
            return luaL_argerror(L, 1, "sha256 must be 64 hex digits");
        cfg.want_sha256_set = 1;
    }
    cfg.legacy = opt_bool(L, "legacy");
    cfg.unicast = opt_bool(L, "unicast");
    cfg.key = key_p;
    struct ux_fetch_spec spec;
    read_spec(L, &spec);
    read_root(L, &spec);

    struct client_obj *o = lua_newuserdatauv(L, sizeof *o, 2);
    memset(o, 0, sizeof *o);
    luaL_setmetatable(L, CLIENT_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the name and basis strings alive */
    o->sim = opt_bool(L, "sim");
    if (!o->sim) {
        lua_getfield(L, 1, "link");
        o->link = check_link(L, -1);
        lua_setiuservalue(L, -2, 2); /* the link lives as long as its fetches */
        cfg.budget = &o->link->budget;
    }
    cfg.rng = engine_rng(L, o->sim, &o->seed);
    char why[1300];
    enum ux_err code = ux_fetch_open(&o->f, &spec, &cfg, o->link ? &o->link->link : NULL, start_now(L, o->sim),
                                     why, sizeof why);
    if (code)
        return push_fail(L, why, code);
    add_addresses(L, o->f.eng, "targets", ux_client_add_target);
    add_addresses(L, o->f.eng, "exclude", ux_client_exclude);
    return 1;
}

/* ---- events ---- */

static int drain_client(lua_State *L, struct client_obj *o)
{
    struct ux_client_event ev;
    lua_newtable(L);
    lua_Integer n = 0;
    while (ux_fetch_next_event(&o->f, &ev)) {
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
    return ux_fetch_input(e, now, p, n, a);
}

static int lc_input(lua_State *L) { return sim_input(L, &check_client(L)->f, sim_in); }

static size_t sim_out(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_client_output(e, now, b, cap, a);
}

static int lc_output(lua_State *L) { return sim_output(L, check_client(L)->f.eng, sim_out); }
static int lc_deadline(lua_State *L) { return push_deadline(L, ux_client_deadline(check_client(L)->f.eng)); }

static int lc_timeout(lua_State *L)
{
    struct client_obj *o = check_client(L);
    if (o->sim)
        return luaL_error(L, "timeout() needs a socket; a sim client has deadline()");
    return push_timeout(L, &o->link->link.io, ux_fetch_deadline(&o->f));
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
    o->f.eng->cfg.max_rate = (uint64_t)r;
    return 0;
}

/* abort([message]): the fetch fails with "closed"; its servers are told
 * (CLOSE goes out now) and its partial file is removed. */
static int lc_abort(lua_State *L)
{
    struct client_obj *o = check_client(L);
    ux_fetch_abort(&o->f, UX_ERR_CLOSED, luaL_optstring(L, 2, "interrupted"), lua_toboolean(L, 3));
    if (o->link && o->link->live)
        ux_link_pump(&o->link->link); /* the CLOSE goes out now */
    return 0;
}

static int lc_stats(lua_State *L) { return client_stats(L, check_client(L)); }

static int lc_close(lua_State *L)
{
    struct client_obj *o = luaL_checkudata(L, 1, CLIENT_MT);
    ux_fetch_close(&o->f);
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
    lua_pushcfunction(L, lc_new);
    lua_setfield(L, -2, "client");
}
