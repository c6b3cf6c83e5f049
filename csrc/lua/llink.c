/* Lua binding of the client socket: udpxfer.core.link{}. One socket and
 * one epoll set for any number of fetches (udpxfer.core.client{link=}):
 * link:step() moves datagrams for all of them, pollfd() is the same
 * descriptor for the link's whole life. */
#include <errno.h>
#include <string.h>

#include "bind.h"
#include "host/clock.h"
#include "link_obj.h"

struct link_obj *check_link(lua_State *L, int idx)
{
    struct link_obj *o = luaL_checkudata(L, idx, LINK_MT);
    if (!o->live)
        luaL_error(L, "link is closed");
    return o;
}

static int lk_new(lua_State *L)
{
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *bind_s = opt_str(L, "bind", NULL, NULL);
    struct ux_addr bind_to;
    if (bind_s && ux_addr_parse(bind_s, 0, &bind_to))
        return push_fail(L, "bind address must be a numeric IP, with a port", UX_ERR_USAGE);
    struct link_obj *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    luaL_setmetatable(L, LINK_MT);
    const char *why = "";
    int err = ux_link_open(&o->link, bind_s ? &bind_to : NULL, &why);
    if (err)
        return push_errno(L, why, err, err == EADDRINUSE ? UX_ERR_INUSE : UX_ERR_IO);
    o->live = 1;
    return 1;
}

static int lk_step(lua_State *L)
{
    struct link_obj *o = check_link(L, 1);
    ux_link_pump(&o->link);
    return 0;
}

static int lk_pollfd(lua_State *L)
{
    lua_pushinteger(L, ux_link_fd(&check_link(L, 1)->link));
    return 1;
}

static int lk_events(lua_State *L)
{
    check_link(L, 1);
    lua_pushliteral(L, "r"); /* the epoll set is readable when anything in it is ready */
    return 1;
}

static int lk_timeout(lua_State *L)
{
    struct link_obj *o = check_link(L, 1);
    return push_timeout(L, &o->link.io, ux_link_deadline(&o->link));
}

static int lk_stats(lua_State *L)
{
    struct link_obj *o = check_link(L, 1);
    lua_newtable(L);
    set_int(L, "transfers", o->link.n);
    set_int(L, "rx_packets", (lua_Integer)o->link.io.rx_packets);
    set_int(L, "rx_bytes", (lua_Integer)o->link.io.rx_bytes);
    set_int(L, "tx_packets", (lua_Integer)o->link.io.tx_packets);
    set_int(L, "tx_bytes", (lua_Integer)o->link.io.tx_bytes);
    return 1;
}

/* set_limit(bytes_per_second or 0): what its fetches together may ask for. */
static int lk_set_limit(lua_State *L)
{
    struct link_obj *o = check_link(L, 1);
    lua_Integer r = luaL_checkinteger(L, 2);
    luaL_argcheck(L, r >= 0, 2, "a rate of 0 or more bytes per second expected");
    ux_budget_init(&o->budget, (uint64_t)r, ux_now_us());
    return 0;
}

static int lk_port(lua_State *L) { return push_port(L, &check_link(L, 1)->link.io); }

static int lk_close(lua_State *L)
{
    struct link_obj *o = luaL_checkudata(L, 1, LINK_MT);
    if (o->live)
        ux_link_close(&o->link);
    o->live = 0;
    return 0;
}

void ux_lua_link_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"step", lk_step}, {"pollfd", lk_pollfd}, {"events", lk_events}, {"timeout", lk_timeout},
        {"stats", lk_stats}, {"port", lk_port}, {"set_limit", lk_set_limit}, {"close", lk_close}, {NULL, NULL}};
    new_class(L, LINK_MT, methods, lk_close);
    lua_pushcfunction(L, lk_new);
    lua_setfield(L, -2, "link");
}
