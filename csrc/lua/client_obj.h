/* The client userdata, shared by lclient.c (construction, driving) and
 * lclient_report.c (events and stats as Lua tables): a host fetch
 * (host/fetch.h) and the link it is on. */
#ifndef UDPXFER_LUA_CLIENT_OBJ_H
#define UDPXFER_LUA_CLIENT_OBJ_H

#include "bind.h"
#include "host/fetch.h"
#include "link_obj.h"

struct client_obj {
    struct ux_fetch f;
    struct link_obj *link;         /* NULL for a sim client */
    int sim;
    struct sim_rng seed;
};

/* An engine event as a Lua table, on top of the stack: the engine's part
 * alone, or with where a fetch's file went. */
void push_engine_event(lua_State *L, const struct ux_client *c, const struct ux_client_event *ev);
void push_client_event(lua_State *L, struct client_obj *o, const struct ux_client_event *ev);
/* The engine's counters as a table on top of the stack (STATE: NULL for the engine's own). */
void push_engine_stats(lua_State *L, const struct ux_client *c, int sim, const char *state);
/* client:stats(): the fetch's counters, per server among them. */
int client_stats(lua_State *L, struct client_obj *o);

#endif
