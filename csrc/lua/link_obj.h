/* The link userdata, shared by llink.c and lclient.c. */
#ifndef UDPXFER_LUA_LINK_OBJ_H
#define UDPXFER_LUA_LINK_OBJ_H

#include "bind.h"
#include "engine/budget.h"
#include "host/link.h"

#define LINK_MT "udpxfer.link"

struct link_obj {
    struct ux_link link;
    struct ux_budget budget; /* its fetches' shared rate limit (engine/budget.h) */
    int live;
};

/* The link at IDX; raises if it is not one or is closed. */
struct link_obj *check_link(lua_State *L, int idx);

#endif
