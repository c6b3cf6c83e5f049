/* Lua binding of a batch: udpxfer.core.batch{}, files of a listing fetched
 * as one transfer (host/batch.h). The options become a batch spec and a
 * client config; drain() and step() return its events as tables: one
 * {type="file", index, ok, stat | code, message} per file, and the
 * engine's (offer, start, drop, done, error). */
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "client_obj.h"
#include "dir_obj.h"
#include "host/batch.h"

#define BATCH_MT "udpxfer.batch"

struct batch_obj {
    struct ux_batch b;
    struct ux_batch_file *files;  /* their paths copied: a listing's entry makes its strings as read */
    uint32_t nfiles;
    uint8_t listing[UX_HASH_LEN];
    struct link_obj *link;
    int sim;
    struct sim_rng seed;
};

static struct batch_obj *check_batch(lua_State *L)
{
    struct batch_obj *o = luaL_checkudata(L, 1, BATCH_MT);
    if (!o->b.live)
        luaL_error(L, "batch is closed");
    return o;
}

static void release(struct batch_obj *o)
{
    ux_batch_close(&o->b);
    for (uint32_t i = 0; o->files && i < o->nfiles; i++)
        free((char *)o->files[i].path);
    free(o->files);
    o->files = NULL;
    o->nfiles = 0;
}

/* files = { {path=, size=, sha256=, mode=, mtime=, number=}, ... } (each a
 * table or a listing's entry) */
static void read_files(lua_State *L, struct batch_obj *o, uint32_t *n)
{
    lua_getfield(L, 1, "files");
    luaL_argcheck(L, lua_istable(L, -1), 1, "files (a list) is required");
    lua_Integer len = luaL_len(L, -1);
    luaL_argcheck(L, len >= 1 && len <= 10000000, 1, "files: 1 to 10,000,000 of them");
    o->files = calloc((size_t)len, sizeof *o->files);
    if (!o->files)
        luaL_error(L, "out of memory");
    for (lua_Integer i = 1; i <= len; i++) {
        struct ux_batch_file *f = &o->files[i - 1];
        lua_geti(L, -1, i);
        luaL_argcheck(L, lua_istable(L, -1) || lua_isuserdata(L, -1), 1, "each file is a table");
        lua_getfield(L, -1, "path");
        if (!(f->path = strdup(luaL_checkstring(L, -1))))
            luaL_error(L, "out of memory");
        o->nfiles = (uint32_t)i;
        lua_getfield(L, -2, "size");
        f->size = (uint64_t)luaL_checkinteger(L, -1);
        lua_getfield(L, -3, "mode");
        f->mode = (uint32_t)luaL_checkinteger(L, -1);
        lua_getfield(L, -4, "mtime");
        f->mtime_ns = (int64_t)luaL_checkinteger(L, -1);
        lua_getfield(L, -5, "number");
        lua_Integer num = luaL_checkinteger(L, -1);
        luaL_argcheck(L, num >= 0 && num <= UINT32_MAX, 1, "a file's number is out of range");
        f->number = (uint32_t)num;
        lua_getfield(L, -6, "sha256");
        size_t hl;
        const char *hex = luaL_checklstring(L, -1, &hl);
        luaL_argcheck(L, parse_hex(hex, hl, f->sha256, UX_HASH_LEN) == 0, 1, "a file's sha256: 64 hex digits");
        lua_pop(L, 7);
    }
    lua_pop(L, 1);
    *n = (uint32_t)len;
}

static int lb_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t name_len, hl;
    const char *name = opt_str(L, "remote", NULL, &name_len), *hex = opt_str(L, "listing", NULL, &hl);
    luaL_argcheck(L, name != NULL, 1, "remote is required");
    uint8_t key[UX_KEY_LEN];
    struct ux_client_cfg cfg = {0};
    cfg.key = opt_key(L, key);
    cfg.name = name;
    cfg.name_len = name_len;
    cfg.chunk_size = (uint32_t)opt_range(L, "chunk_size", UX_DEFAULT_CHUNK, UX_MIN_CHUNK, UX_MAX_CHUNK);
    cfg.discover_us = (uint64_t)(opt_range(L, "discover_timeout", 5, 0, UX_MAX_SECONDS) * 1e6);
    cfg.idle_us = (uint64_t)(opt_range(L, "idle_timeout", 5, 0, UX_MAX_SECONDS) * 1e6);
    cfg.max_window = (uint32_t)opt_range(L, "window", 4096, 0, 1 << 20);
    cfg.unicast = 1;
    lua_getfield(L, 1, "root");
    int root = check_dir(L, -1)->fd;
    lua_pop(L, 1);

    struct batch_obj *o = lua_newuserdatauv(L, sizeof *o, 2);
    memset(o, 0, sizeof *o);
    luaL_setmetatable(L, BATCH_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the paths alive */
    luaL_argcheck(L, hex && parse_hex(hex, hl, o->listing, UX_HASH_LEN) == 0, 1, "listing: 64 hex digits");
    struct ux_batch_spec spec = {.root = root, .listing = o->listing};
    read_files(L, o, &spec.nfiles);
    spec.files = o->files;
    lua_getfield(L, 1, "durable");
    spec.durable = lua_toboolean(L, -1);
    lua_pop(L, 1);
    o->sim = opt_bool(L, "sim");
    if (!o->sim) {
        lua_getfield(L, 1, "link");
        o->link = check_link(L, -1);
        lua_setiuservalue(L, -2, 2); /* the link lives as long as its batches */
        cfg.budget = &o->link->budget;
    }
    cfg.rng = engine_rng(L, o->sim, &o->seed);
    char why[200];
    enum ux_err code = ux_batch_open(&o->b, &spec, &cfg, o->link ? &o->link->link : NULL, start_now(L, o->sim), why,
                                     sizeof why);
    if (code) {
        release(o);
        return push_fail(L, why, code);
    }
    lua_getfield(L, 1, "targets");
    if (lua_istable(L, -1)) {
        for (lua_Integer i = 1; lua_geti(L, -1, i) != LUA_TNIL; i++) {
            struct ux_addr a;
            if (ux_addr_parse(luaL_checkstring(L, -1), UX_DEFAULT_PORT, &a))
                luaL_error(L, "bad target address: %s", lua_tostring(L, -1));
            ux_client_add_target(&o->b.eng, &a);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
    return 1;
}

static void push_result(lua_State *L, struct batch_obj *o, const struct ux_batch_result *r)
{
    lua_newtable(L);
    set_str(L, "type", "file");
    set_int(L, "index", (lua_Integer)r->file + 1);
    set_str(L, "path", o->files[r->file].path);
    set_bool(L, "ok", r->code == UX_OK);
    if (r->code == UX_OK) {
        push_stat(L, &r->st);
        lua_setfield(L, -2, "stat");
    } else {
        set_str(L, "code", ux_err_name(r->code));
        set_str(L, "message", r->why);
    }
}

static int lb_drain(lua_State *L)
{
    struct batch_obj *o = check_batch(L);
    struct ux_batch_event ev;
    lua_newtable(L);
    for (lua_Integer n = 1; ux_batch_next_event(&o->b, &ev); n++) {
        if (ev.is_file)
            push_result(L, o, &ev.file);
        else
            push_engine_event(L, &o->b.eng, &ev.eng);
        lua_rawseti(L, -2, n);
    }
    return 1;
}

static int lb_step(lua_State *L)
{
    struct batch_obj *o = check_batch(L);
    if (o->sim)
        return luaL_error(L, "step() needs a socket; drive a sim batch with input()/output()");
    if (o->link->live)
        ux_link_pump(&o->link->link);
    return lb_drain(L);
}

static int sim_in(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    return ux_batch_input(e, now, p, n, a);
}

static size_t sim_out(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_client_output(e, now, b, cap, a);
}

static int lb_input(lua_State *L) { return sim_input(L, &check_batch(L)->b, sim_in); }
static int lb_output(lua_State *L) { return sim_output(L, &check_batch(L)->b.eng, sim_out); }
static int lb_deadline(lua_State *L) { return push_deadline(L, ux_batch_deadline(&check_batch(L)->b)); }

static int lb_timeout(lua_State *L)
{
    struct batch_obj *o = check_batch(L);
    if (o->sim)
        return luaL_error(L, "timeout() needs a socket; a sim batch has deadline()");
    return push_timeout(L, &o->link->link.io, ux_batch_deadline(&o->b));
}

static int lb_abort(lua_State *L)
{
    struct batch_obj *o = check_batch(L);
    ux_batch_abort(&o->b, UX_ERR_CLOSED, luaL_optstring(L, 2, "interrupted"));
    if (o->link && o->link->live)
        ux_link_pump(&o->link->link); /* the CLOSE goes out now */
    return 0;
}

static int lb_stats(lua_State *L)
{
    struct batch_obj *o = check_batch(L);
    push_engine_stats(L, &o->b.eng, o->sim, NULL);
    set_int(L, "files", o->b.nfiles);
    set_int(L, "files_settled", o->b.settled);
    return 1;
}

static int lb_close(lua_State *L)
{
    release(luaL_checkudata(L, 1, BATCH_MT));
    return 0;
}

void ux_lua_batch_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"step", lb_step}, {"drain", lb_drain}, {"input", lb_input}, {"output", lb_output},
        {"deadline", lb_deadline}, {"timeout", lb_timeout}, {"abort", lb_abort}, {"stats", lb_stats},
        {"close", lb_close}, {NULL, NULL}};
    new_class(L, BATCH_MT, methods, lb_close);
    lua_pushcfunction(L, lb_new);
    lua_setfield(L, -2, "batch");
}
